"""Connection strings: parsing, redaction and connecting, with no secret ever leaving this module.

Redaction follows alembic's ``obfuscate_url_pw`` and barman's ``redact_passwords``, hardened so
that no syntax defeats it (issue 9 §4): the password is replaced by ``***`` in

* a text that *is* a DSN: libpq parses it (``conninfo_to_dict``) and every form of its ``password``
  and ``sslpassword`` values (raw, percent-encoded, conninfo-escaped, JSON-escaped) is masked;
* free text: URL userinfo up to the LAST ``@`` of the URL, which ends at whitespace as libpq's URLs do
  (``postgresql://u:p@ss@word@host`` masks ``p@ss@word``; text after the URL is left as it is), ``password=`` / ``sslpassword=`` / ``PGPASSWORD=`` / ``"password": "..."`` /
  ``'password': '...'`` in bare, single-quoted (with ``\\'`` escapes), double-quoted and
  backslash-escaped-quote (JSON inside JSON, botocore's ``Response body``) forms, URL query
  ``?password=``, and a Secrets Manager ``SecretString`` through the end of its line;
* any value of at least 4 characters registered through :func:`ops.secrets.register_secret` (every :class:`ops.secrets.Secret`).

Over-redaction is accepted: a rule that may swallow a little text after a password is preferred to
one that may leave a piece of it.
"""
from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote, quote_plus

from . import __version__
from .errors import ConnectError, ConfigError
from .secrets import MASK, MIN_REGISTERED_LENGTH, Secret, register_secret, registered_secrets, reveal_all

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_EOL = r"(?=[\r\n]|\Z)"
# scheme://user:PASSWORD@host — the password runs to the last '@' of the URL (an unencoded '@', ':' or
# '/' cannot end it early), and the URL ends at whitespace: libpq refuses a raw space in a URL
# ("use percent-encoded spaces"), so text after it is never part of one (issue 20 §1).
_URL_PW = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:)(?P<pw>\S*)(?P<at>@)", re.IGNORECASE)
# any key ending in "password" (password, sslpassword, PGPASSWORD, db_password), quoted or not,
# followed by '=' or ':'; the value in any quoting.
_KEY_PW = re.compile(
    r"(?P<key>\b\w*password\\*[\"']?\s*[:=]\s*)"
    r"(?P<val>(?P<bs>\\+)\".*?(?:(?<!\\)(?P=bs)\"|" + _EOL + ")"  # \"...\" (JSON inside a JSON string)
    r"|\"(?:[^\"\\\r\n]|\\.)*(?:\"|" + _EOL + ")"                  # "..." JSON
    r"|'(?:[^'\\\r\n]|\\.)*(?:'|" + _EOL + ")"                     # '...' libpq conninfo, Python repr
    r"|\S+)",                                                       # bare
    re.IGNORECASE)
_SECRET_STRING = re.compile(r"(?P<key>\bSecret(?:String|Binary)\\*[\"']?\s*[:=]\s*)(?P<val>[^\r\n]+)")
_DSN_SECRET_KEYS = ("password", "sslpassword")


def _value_forms(value: str) -> set[str]:
    """Every spelling of ``value`` a DSN or a log line may carry."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value),
             value.replace("\\", "\\\\").replace("'", "\\'"), json.dumps(value)[1:-1]}
    return {f for f in forms if f}


def _dsn_secrets(text: str) -> set[str]:
    """Password values of ``text`` when libpq parses it as a DSN (empty otherwise)."""
    if "=" not in text and "://" not in text:
        return set()
    from psycopg import conninfo as _conninfo
    try:
        params = _conninfo.conninfo_to_dict(text)
    except Exception:  # not a DSN: free text, left to the regular expressions
        return set()
    return {str(params[k]) for k in _DSN_SECRET_KEYS if params.get(k)}


def redact(text: str) -> str:
    """Return ``text`` with every password replaced by ``***`` (see the module docstring for the forms).

    ``text``: a DSN, or any message (driver errors, log lines) that may embed DSNs. Never raises.
    """
    if not text:
        return text
    text = str(text)
    forms: set[str] = set()
    for value in _dsn_secrets(text):
        if len(value) >= MIN_REGISTERED_LENGTH:  # shorter ones: the rules below only (no "p" → "***" everywhere)
            forms |= _value_forms(value)
    for value in registered_secrets():  # every spelling, longest first: masking the raw value inside its
        forms |= _value_forms(value)     # escaped form would leave a '\\' that escapes the closing quote
    known = sorted(forms, key=len, reverse=True)
    text = _mask(text, known)  # before the rules, so no rule can cut a known value in two
    text = _SECRET_STRING.sub(lambda m: m["key"] + MASK, text)
    text = _URL_PW.sub(lambda m: m["head"] + MASK + m["at"], text)
    text = _KEY_PW.sub(_key_mask, text)
    return _mask(text, known)


def _key_mask(m: re.Match) -> str:
    """``password='***'`` for ``password='...'``: the quotes around a value are not the value."""
    val = m["val"]
    if len(val) >= 2 and val[0] in "'\"" and val[-1] == val[0] and val != MASK:
        return m["key"] + val[0] + MASK + val[0]
    return m["key"] + MASK


def _mask(text: str, values: list[str]) -> str:
    for value in values:
        if value and value in text:
            text = text.replace(value, MASK)
    return text


_USERINFO_HINT = "if the user name or password holds '/', '?' or '@', percent-encode it (%2F, %3F, %40)"
_LIBPQ_PROBLEMS = (
    ("invalid percent-encoded token", "a '%' is not followed by two hex digits: encode '%' as %25"),
    ("forbidden value %00", "a percent-encoded value holds %00"),
    ("unexpected spaces found", "a URL part holds a space: encode it as %20"),
    ("missing \"=\" after", "a key=value item has no '=' (a value with a space or quote must be single-quoted, "
                            "with \\' and \\\\ escaped)"),
    ("unterminated quoted string", "a quoted value is not closed (escape a quote inside it as \\')"),
    ("invalid connection option", "a keyword is not a libpq connection parameter"),
    ("invalid URI query parameter", "the URL's query part (after '?') names a keyword that is not a libpq "
                                    f"connection parameter; {_USERINFO_HINT}"),
    ("URI query parameter", f"the URL's query part (after '?') is not key=value pairs; {_USERINFO_HINT}"),
    ("IPv6 host address", "the URL's [IPv6] host is malformed"),
    ("unexpected character", "the URL's host part holds an unexpected character"),
)
_DSN_HINT = ("fix the DSN (it is not printed: it may hold a password): in a postgresql:// URL percent-encode the "
             "password ('@' as %40, ':' as %3A, '/' as %2F, '%' as %25), or use the key=value form "
             "host=H port=P dbname=D user=U password='...'.")
_URL_SCHEMES = ("postgresql://", "postgres://")


def _libpq_problem(message: str) -> str:
    """What libpq's parse error says is wrong, without the fragment of the DSN libpq quotes in it
    (that fragment may be a piece of the password)."""
    for needle, text in _LIBPQ_PROBLEMS:
        if needle in message:
            return text
    return re.sub(r'"[^"]*"', '"…"', message.strip().splitlines()[0] if message.strip() else "unknown error")


def _url_userinfo_problem(dsn: str) -> str | None:
    """libpq ends a URL's userinfo at the first '@' found before any '/' (``conninfo_uri_parse_options``
    in fe-connect.c); an '@' left after that point (before the query) means the user name or password
    holds an unencoded '@' or '/', and libpq would read the rest of it as host, port or database name."""
    rest = dsn.split("://", 1)[1]
    cut = len(rest)
    for stop in ("@", "/"):
        if stop in rest:
            cut = min(cut, rest.index(stop))
    start = cut + 1 if cut < len(rest) and rest[cut] == "@" else 0
    tail = rest[start:].split("?", 1)[0]
    if "@" in tail:
        return ("the URL has an '@' after its user-info part: encode '@' in the password (or user name) as %40 "
                "and '/' as %2F (an '@' in the database name as %40 too)")
    return None


def parse(dsn: str) -> dict[str, str]:
    """Parse a libpq DSN (``key=value`` or URL) into a dict of connection parameters, by libpq's own
    rules (``psycopg.conninfo.conninfo_to_dict``, i.e. ``PQconninfoParse``), and register its
    ``password``/``sslpassword`` values (:func:`ops.secrets.register_secret`) so :func:`redact` masks
    them by value in any later text.

    Raises :class:`ConfigError` (exit 2) saying which part is wrong — never echoing the DSN or the
    fragment libpq quotes — when libpq cannot parse it, or when a URL's userinfo holds an unencoded
    '@' or '/' (libpq would take the rest of the password for the host, port or database name);
    both problems at once when both hold (``%@x@host``: the '%' and the '@'), and a reminder to
    encode '/', '?' and '@' when a URL holding an '@' does not parse (``u:7/%?@host``: libpq stops
    at the '/' and never reaches the '@').
    """
    import psycopg
    from psycopg import conninfo as _conninfo
    url = dsn.strip().lower().startswith(_URL_SCHEMES)
    userinfo = _url_userinfo_problem(dsn.strip()) if url else None
    also = [f"and {userinfo}"] if userinfo else []
    try:
        params = dict(_conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError as exc:
        problem = _libpq_problem(str(exc))
        if url and not also and "@" in dsn and _USERINFO_HINT not in problem:
            also = [f"and {_USERINFO_HINT}"]  # a '/' or '?' in the password hides where its '@' ends
        raise ConfigError([f"the DSN does not parse: {problem}", *also], _DSN_HINT) from None
    except UnicodeDecodeError:  # a %-escape decoding to bytes that are not UTF-8 (psycopg decodes the values)
        raise ConfigError(["the DSN does not parse: a percent-encoded value is not UTF-8 (encode '%' as %25)", *also],
                          _DSN_HINT) from None
    if userinfo:
        raise ConfigError([f"the DSN cannot be used: {userinfo}"], _DSN_HINT)
    for key in _DSN_SECRET_KEYS:
        if params.get(key):
            register_secret(str(params[key]))
    return params


def redacted_dsn(dsn: str) -> str:
    """``dsn`` with its password masked, for a hint to repeat; ``'<DSN>'`` when it does not parse
    (a DSN :func:`parse` refuses is never echoed). Never raises."""
    try:
        parse(dsn)
    except ConfigError:
        return "<DSN>"
    return redact(dsn)


def describe(params: Mapping[str, Any]) -> str:
    """A short, secret-free description of a connection: ``user@host:port/dbname``."""
    return (f"{params.get('user', '')}@{params.get('host', 'localhost')}:"
            f"{params.get('port', 5432)}/{params.get('dbname', '')}")


def connect(params: Mapping[str, Any], *, dbname: str | None = None, autocommit: bool = False,
            application_name: str = "pgops", connect_timeout: int = 10) -> "psycopg.Connection":
    """Open a psycopg connection from connection parameters.

    ``params``: libpq keywords (host, port, user, dbname, passfile, sslmode, ...); a value may be a
    :class:`~ops.secrets.Secret` (``password``, ``sslpassword``), revealed only in the call to the
    driver. ``dbname`` overrides the one in ``params``. The session never uses server-side prepared
    statements (``prepare_threshold=None`` unless ``params`` sets it; psycopg docs, "Prepared
    statements"): a ``--dsn`` may point at a transaction-pooling PgBouncer older than 1.21, where
    another client's statement of the same name exists on the server connection it is handed.
    Raises :class:`ConnectError` with the redacted target on failure.
    """
    import psycopg
    kwargs = dict(params)
    if dbname is not None:
        kwargs["dbname"] = dbname
    kwargs.setdefault("connect_timeout", connect_timeout)
    kwargs.setdefault("prepare_threshold", None)
    kwargs["application_name"] = application_name
    try:
        return psycopg.connect(autocommit=autocommit, **reveal_all(kwargs))
    except psycopg.OperationalError as exc:
        target = describe(kwargs)
        secrets = [v.reveal() for v in kwargs.values()  # a shorter one would mask every 'p' of the message
                   if isinstance(v, Secret) and len(v.reveal()) >= MIN_REGISTERED_LENGTH]
        text = redact(_mask(str(exc), sorted(secrets, key=len, reverse=True))).strip()
        raise ConnectError(
            f"Cannot connect to {target}: {text}",
            "check the server is up (`invoke local.status` for the local stack) and the DSN is right.",
        ) from None


_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


def endpoints(params: Mapping[str, Any]) -> set[tuple[str, int]]:
    """Every (host, port) a libpq parameter set may reach — multi-host lists included — with loopback
    names (and Unix socket directories) folded into ``"loopback"``; a malformed port counts as 5432."""
    hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
    ports = str(params.get("port") or "5432").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    out = set()
    for h, p in zip(hosts, ports + ["5432"] * (len(hosts) - len(ports))):
        h = h.strip().lower()
        h = "loopback" if h in _LOOPBACK or h.startswith("/") else h
        out.add((h, int(p) if p.strip().isdigit() else 5432))
    return out


def same_endpoint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two libpq parameter sets can reach the same server (same port, and the same host or
    both loopback)."""
    return bool(endpoints(a) & endpoints(b))


def system_identity(params: Mapping[str, Any], dbname: str, timeout_s: int = 5) -> tuple[int, str]:
    """(``system_identifier``, ``data_directory``) of the server ``params`` reach. Raises
    :class:`ConnectError`."""
    with connect(params, dbname=dbname, autocommit=True, connect_timeout=timeout_s,
                 application_name=tool_application_name("guard")) as conn:
        sysid, data_dir = conn.execute("SELECT system_identifier, current_setting('data_directory') "
                                       "FROM pg_control_system()").fetchone()
        return int(sysid), data_dir


def tool_application_name(what: str) -> str:
    """The ``application_name`` pgops sessions carry, e.g. ``pgops/0.1.0 migrate``."""
    return f"pgops/{__version__} {what}"
