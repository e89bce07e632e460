"""A secret value that never prints, and the registry of secret values the log filter redacts.

:class:`Secret` holds a password (or any credential). It is deliberately *not* a ``str`` subclass:
a ``str`` subclass leaks through ``+``, ``"".join``, slicing, ``json.dumps`` and ``str.format``
(all of which use the underlying characters, not ``__str__``). Here every rendering —
``str()``, ``repr()``, f-strings, ``%s``, ``format()``, ``json.dumps(default=str)`` — gives ``***``,
concatenation with a ``str`` raises ``TypeError``, and only :meth:`Secret.reveal` returns the value.
:func:`reveal` unwraps at the last moment, where a driver or a child's environment needs the text
(``ops.dsn.connect``, ``ops.dsn.libpq_values``).

Constructing a Secret registers its value (:func:`register_secret`), so
:func:`ops.dsn.redact` — used by the log filter of :mod:`ops.logs` and by every error message —
removes it from any text, whatever syntax surrounds it (pydantic's ``SecretStr`` and Django's
``SafeExceptionReporterFilter`` follow the same two ideas: an opaque type, and scrubbing known values).
"""
from __future__ import annotations

import hmac
import threading
from typing import Any

MASK = "***"
MIN_REGISTERED_LENGTH = 4
"""Shorter values are not registered: replacing every ``ab`` in every log line would destroy the
logs and protect nothing a guess would not find."""

_lock = threading.Lock()
_registry: set[str] = set()


def register_secret(value: str) -> None:
    """Remember ``value`` (a str of at least :data:`MIN_REGISTERED_LENGTH` characters; shorter
    ones are ignored) so :func:`ops.dsn.redact` masks it in any later text. Thread-safe."""
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, str) and len(value) >= MIN_REGISTERED_LENGTH:
        with _lock:
            _registry.add(value)


def registered_secrets() -> list[str]:
    """The registered values, longest first (so a secret containing another is masked whole)."""
    with _lock:
        return sorted(_registry, key=len, reverse=True)


def forget_secrets() -> None:
    """Empty the registry (tests only)."""
    with _lock:
        _registry.clear()


class Secret:
    """An opaque credential. ``Secret("pw")`` → ``str()``/``repr()``/``format()`` give ``***``;
    ``.reveal()`` gives ``"pw"``. Equal to another Secret with the same value (constant-time
    comparison); hashable; falsy when empty. Not picklable (a pickle would hold the value)."""

    __slots__ = ("_value",)

    def __init__(self, value: "str | Secret"):
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)
        register_secret(value)

    def reveal(self) -> str:
        """The secret text. Call it only where the value leaves for the driver or a child's environment."""
        return self._value

    def __setattr__(self, name, value):
        raise AttributeError("Secret is immutable")

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo) -> "Secret":
        return self


def reveal(value: Any) -> Any:
    """``value.reveal()`` for a :class:`Secret`, ``value`` unchanged otherwise."""
    return value.reveal() if isinstance(value, Secret) else value


def reveal_all(params: dict) -> dict:
    """A copy of a mapping with every :class:`Secret` value revealed (for the driver only)."""
    return {k: reveal(v) for k, v in params.items()}


SECRET_PARAMS = ("password", "sslpassword")
"""libpq keywords whose values are secrets (PostgreSQL docs, "Parameter Key Words")."""


def protect_params(params: dict) -> dict:
    """A copy of libpq parameters with every :data:`SECRET_PARAMS` value wrapped in :class:`Secret`
    (already-wrapped and empty values are left as they are). ``ops.dsn.connect`` reveals them."""
    return {k: Secret(v) if k in SECRET_PARAMS and isinstance(v, str) and v else v for k, v in params.items()}
