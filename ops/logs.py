"""Logging for the task edge: one stderr handler on the root logger whose every record is redacted.

``PGOPS_LOG_LEVEL`` syntax (parsed by :func:`parse_spec`)::

    PGOPS_LOG_LEVEL=DEBUG                      # root (every pgops logger) at DEBUG; AWS/HTTP libraries stay at WARNING
    PGOPS_LOG_LEVEL=DEBUG,botocore=DEBUG       # ... and botocore at DEBUG too (its records are redacted as well)
    PGOPS_LOG_LEVEL=INFO,ops.migrations=DEBUG  # any logger by name; a bare level is the root's

Comma-separated items; a bare level (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``, any
case) sets the root logger, ``name=LEVEL`` sets the logger ``name``. Unset or empty means WARNING.
botocore, boto3, urllib3 and s3transfer log request and response bodies at DEBUG (a Secrets Manager
``GetSecretValue`` body holds the master password), so they stay at WARNING unless named.

Redaction (:class:`RedactingFilter`) is applied to the formatted message, the exception text and the
stack text of every record reaching the handler, using :func:`ops.dsn.redact` (DSN passwords, JSON
``"password"`` fields, ``SecretString`` bodies, ``sslpassword=``, and every value registered through
:func:`ops.secrets.register_secret`); the formatter redacts its output once more.
"""
from __future__ import annotations

import logging
import sys
from typing import IO

from .dsn import redact
from .errors import ConfigError

QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
"""Loggers kept at WARNING unless ``PGOPS_LOG_LEVEL`` names them."""
FORMAT = "%(levelname)s %(name)s: %(message)s"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_MARK = "_pgops_handler"


def parse_spec(spec: str | None) -> tuple[str, dict[str, str]]:
    """``"DEBUG,botocore=DEBUG"`` → ``("DEBUG", {"botocore": "DEBUG"})``.

    Raises :class:`ConfigError` (exit 2) listing every malformed item at once."""
    root, named, problems = "WARNING", {}, []
    for item in (spec or "").replace(" ", ",").split(","):
        if not item:
            continue
        name, sep, level = item.rpartition("=")
        level = level.upper()
        if level not in _LEVELS or (sep and not name):
            problems.append(f"PGOPS_LOG_LEVEL item '{item}' is not LEVEL or logger=LEVEL "
                            f"(LEVEL one of {', '.join(_LEVELS)})")
        elif sep:
            named[name] = level
        else:
            root = level
    if problems:
        raise ConfigError(problems, "set e.g. PGOPS_LOG_LEVEL=DEBUG or PGOPS_LOG_LEVEL=DEBUG,botocore=DEBUG.")
    return root, named


class RedactingFilter(logging.Filter):
    """Rewrites each record so that nothing downstream can render a secret: ``msg`` becomes the
    redacted formatted message (``args`` cleared), ``exc_text``/``stack_info`` the redacted texts.
    Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the pieces, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str | None, *, stream: IO[str] | None = None) -> logging.Handler:
    """Configure the root logger from a ``PGOPS_LOG_LEVEL`` value (syntax in the module docstring).

    Installs one handler writing to ``stream`` (default: ``sys.stderr`` at call time) with
    :class:`RedactingFilter` and :class:`RedactingFormatter`, replacing the one a previous call
    installed (idempotent); adds the filter to any other handler already on the root logger, so
    every record a root handler emits is redacted. Sets :data:`QUIET_LOGGERS` to WARNING unless
    named. Returns the handler. Raises :class:`ConfigError` for a malformed value.
    """
    root_level, named = parse_spec(level)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(RedactingFormatter(FORMAT))
    for h in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(root_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(named.get(name, "WARNING"))
    for name, lvl in named.items():
        logging.getLogger(name).setLevel(lvl)
    return handler
