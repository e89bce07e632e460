"""Connection strings: parsing, redaction and connecting, with no secret ever leaving this module.

Redaction follows alembic's ``obfuscate_url_pw`` and barman's ``redact_passwords``, hardened so
that no syntax defeats it (issue 9 §4): the password is replaced by ``***`` in

* a text that *is* a DSN: libpq parses it (``conninfo_to_dict``) and every form of its ``password``
  and ``sslpassword`` values (raw, percent-encoded, conninfo-escaped, JSON-escaped) is masked;
* free text: URL userinfo up to the LAST ``@`` of the line (``postgresql://u:p@ss@word@host`` masks
  ``p@ss@word``), ``password=`` / ``sslpassword=`` / ``PGPASSWORD=`` / ``"password": "..."`` /
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
from .secrets import MASK, MIN_REGISTERED_LENGTH, Secret, registered_secrets, reveal_all

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_EOL = r"(?=[\r\n]|\Z)"
# scheme://user:PASSWORD@host — the password runs to the last '@' on the line, so an unencoded '@',
# ':' or '/' in it cannot end it early.
_URL_PW = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:)(?P<pw>[^\r\n]*)(?P<at>@)", re.IGNORECASE)
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
    known = sorted(forms, key=len, reverse=True) + registered_secrets()
    text = _mask(text, known)  # before the rules, so no rule can cut a known value in two
    text = _SECRET_STRING.sub(lambda m: m["key"] + MASK, text)
    text = _URL_PW.sub(lambda m: m["head"] + MASK + m["at"], text)
    text = _KEY_PW.sub(lambda m: m["key"] + MASK, text)
    return _mask(text, known)


def _mask(text: str, values: list[str]) -> str:
    for value in values:
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def parse(dsn: str) -> dict[str, str]:
    """Parse a libpq DSN (``key=value`` or URL) into a dict of connection parameters.

    Raises :class:`ConfigError` naming the redacted DSN when libpq cannot parse it, or when a URL's
    userinfo holds an unencoded ``@`` (libpq would take the rest of the password for the host name).
    """
    import psycopg
    from psycopg import conninfo as _conninfo
    try:
        params = dict(_conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError as exc:
        raise ConfigError([f"cannot parse DSN '{redact(dsn)}': {redact(str(exc))}"],
                          "pass a libpq DSN such as 'host=db.example port=5432 dbname=app user=ops'.") from None
    if "@" in str(params.get("host", "")) and "://" in dsn:
        # libpq ends the userinfo at the FIRST '@': the rest of an unencoded password becomes the
        # host name, which every message naming the server would then print.
        raise ConfigError([f"the DSN '{redact(dsn)}' has an unencoded '@' in its user or password"],
                          "percent-encode it ('@' is %40), or use the key=value form with password='...'.")
    return params


def describe(params: Mapping[str, Any]) -> str:
    """A short, secret-free description of a connection: ``user@host:port/dbname``."""
    return (f"{params.get('user', '')}@{params.get('host', 'localhost')}:"
            f"{params.get('port', 5432)}/{params.get('dbname', '')}")


def connect(params: Mapping[str, Any], *, dbname: str | None = None, autocommit: bool = False,
            application_name: str = "pgops", connect_timeout: int = 10) -> "psycopg.Connection":
    """Open a psycopg connection from connection parameters.

    ``params``: libpq keywords (host, port, user, dbname, passfile, sslmode, ...); a value may be a
    :class:`~ops.secrets.Secret` (``password``, ``sslpassword``), revealed only in the call to the
    driver. ``dbname`` overrides the one in ``params``. Raises :class:`ConnectError` with the
    redacted target on failure.
    """
    import psycopg
    kwargs = dict(params)
    if dbname is not None:
        kwargs["dbname"] = dbname
    kwargs.setdefault("connect_timeout", connect_timeout)
    kwargs["application_name"] = application_name
    try:
        return psycopg.connect(autocommit=autocommit, **reveal_all(kwargs))
    except psycopg.OperationalError as exc:
        target = describe(kwargs)
        secrets = [v.reveal() for v in kwargs.values() if isinstance(v, Secret)]
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
