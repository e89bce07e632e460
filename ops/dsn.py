"""Connection strings: parsing, redaction and connecting, with no secret ever leaving this module.

Redaction follows alembic's ``obfuscate_url_pw`` and barman's ``redact_passwords``: the password is
replaced by ``***`` whether the DSN is a ``key=value`` string or a ``postgresql://`` URL.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping

import psycopg
from psycopg import conninfo as _conninfo

from . import __version__
from .errors import ConnectError, ConfigError

log = logging.getLogger(__name__)

_URL_PW = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KV_PW = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with every password in a DSN (URL or key=value) replaced by ``***``.

    Works on whole messages too, so driver errors that echo a conninfo are safe to show.
    """
    text = _URL_PW.sub(r"\1***\3", text)
    return _KV_PW.sub(r"\1***", text)


def parse(dsn: str) -> dict[str, str]:
    """Parse a libpq DSN (``key=value`` or URL) into a dict of connection parameters.

    Raises :class:`ConfigError` naming the redacted DSN when libpq cannot parse it.
    """
    try:
        return dict(_conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError as exc:
        raise ConfigError([f"cannot parse DSN '{redact(dsn)}': {redact(str(exc))}"],
                          "pass a libpq DSN such as 'host=db.example port=5432 dbname=app user=ops'.") from None


def describe(params: Mapping[str, Any]) -> str:
    """A short, secret-free description of a connection: ``user@host:port/dbname``."""
    return (f"{params.get('user', '')}@{params.get('host', 'localhost')}:"
            f"{params.get('port', 5432)}/{params.get('dbname', '')}")


def connect(params: Mapping[str, Any], *, dbname: str | None = None, autocommit: bool = False,
            application_name: str = "pgops", connect_timeout: int = 10) -> psycopg.Connection:
    """Open a psycopg connection from connection parameters.

    ``params``: libpq keywords (host, port, user, dbname, passfile, sslmode, ...); ``dbname``
    overrides the one in ``params``. Raises :class:`ConnectError` with the redacted target on failure.
    """
    kwargs = dict(params)
    if dbname is not None:
        kwargs["dbname"] = dbname
    kwargs.setdefault("connect_timeout", connect_timeout)
    kwargs["application_name"] = application_name
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        target = describe(kwargs)
        raise ConnectError(
            f"Cannot connect to {target}: {redact(str(exc)).strip()}",
            "check the server is up (`invoke local.status` for the local stack) and the DSN is right.",
        ) from None


def tool_application_name(what: str) -> str:
    """The ``application_name`` pgops sessions carry, e.g. ``pgops/0.1.0 migrate``."""
    return f"pgops/{__version__} {what}"
