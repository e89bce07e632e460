"""``invoke health --serve PORT``: the checks as HTTP probes for load balancers, on waitress.

Patroni's REST API is the model: role probes (``/health``, ``/primary``, ``/replica?lag=16MB[&name=N]``)
answer with a status code and one word, nothing else — any local user can reach a loopback port, and
the checks' details hold query text, pids, user, database and path names. The details
(``/checks``: the report ``invoke health --format json`` prints) need a credential, as Patroni's
``restapi.authentication``: ``Authorization: Bearer <token>``, the token read from a 0600 file under
the state directory (:func:`token_file`).

One measurement serves concurrent requests: it is cached for ``max_age`` seconds (stated in each
answer as ``Age`` and ``Cache-Control: max-age``, RFC 9111 §5.1/§5.2.2.1) and taken by one request at
a time while the others wait for it (single flight). A request for an unknown path, a bad query or
without the credential is answered without measuring.

The server is waitress (pure-Python WSGI): a bounded pool of worker threads, a connection limit, and
an inactivity timeout on every connection, so a half-sent request or a client that stops reading is
dropped after ``CHANNEL_TIMEOUT`` seconds instead of holding a thread.
"""
from __future__ import annotations

import errno
import hmac
import json
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, OpsError
from .checks import PROBE_PATHS, overall, probe_answer, probe_request

#: waitress settings (waitress docs, "Arguments to waitress.serve"): worker threads, the connections
#: open at once beyond which new ones wait in the listen backlog, and the seconds of inactivity
#: (nothing read or written) after which a connection without a request in progress is closed —
#: the read and write timeout, checked every CLEANUP_INTERVAL seconds.
THREADS = 4
CONNECTION_LIMIT = 512
CHANNEL_TIMEOUT = 5
CLEANUP_INTERVAL = 1
DEFAULT_MAX_AGE = 2.0
TOKEN_FILE = "health-serve.token"
METHODS = ("GET", "HEAD", "OPTIONS")  # HAProxy's `option httpchk` sends OPTIONS; Patroni answers all three
DETAIL_PATH = "/checks"
_WORD = {200: "ok", 400: "bad request", 401: "unauthorized", 404: "not found", 405: "method not allowed",
         503: "unavailable"}


@dataclass(frozen=True)
class Outcome:
    """One measurement: ``results`` (CheckResult list) or ``error`` (the OpsError it raised), taken at
    ``taken`` on the ``clock`` of :class:`Measurements` (seconds)."""

    taken: float
    results: list | None = None
    error: OpsError | None = None


class Measurements:
    """A cache of one measurement, at most ``max_age`` seconds old, filled by one caller at a time.

    ``measure()`` returns the check results or raises :class:`OpsError` (cached like a result, so a
    failing target is not hammered). ``clock`` is monotonic seconds. A caller that finds the cache
    stale while another caller measures waits for that measurement and takes it whatever its age:
    the herd never measures in series. Any other exception from ``measure`` (a bug, not a verdict) is
    cached the same way, as an :class:`OpsError` naming its type and pointing at ``invoke health``
    (which shows it in full): a long-running probe server answers 503, never a 500 with a traceback
    in its log, and does not re-run a failing measurement for every request."""

    def __init__(self, measure: Callable[[], list], max_age: float = DEFAULT_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic, first: list | None = None):
        self._measure, self.max_age, self._clock = measure, max_age, clock
        self._cond = threading.Condition()
        self._outcome = None if first is None else Outcome(clock(), first)
        self._running = False
        self._generation = 0
        self.measured = 0  # measurements taken (not counting ``first``)

    def get(self) -> Outcome:
        with self._cond:
            seen = self._generation
            while True:
                if self._outcome is not None and (self._generation != seen
                                                  or self._clock() - self._outcome.taken <= self.max_age):
                    return self._outcome
                if not self._running:
                    self._running = True
                    break
                self._cond.wait()
        outcome = None
        taken = self._clock()
        try:
            try:
                outcome = Outcome(taken, results=self._measure())
            except OpsError as exc:
                outcome = Outcome(taken, error=exc)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                outcome = Outcome(taken, error=OpsError(
                    f"the health checks failed unexpectedly ({type(exc).__name__}: {exc})",
                    "run `invoke health` with the same options to see the failure in full."))
            return outcome
        finally:
            with self._cond:
                self._running = False
                if outcome is not None:
                    self._outcome = outcome
                    self._generation += 1
                    self.measured += 1
                self._cond.notify_all()

    def age(self, outcome: Outcome) -> float:
        """Seconds since ``outcome`` was taken."""
        return max(0.0, self._clock() - outcome.taken)


def token_file(state_dir: Path) -> Path:
    """``<state dir>/health-serve.token``: where the bearer token for ``/checks`` lives."""
    return Path(state_dir) / TOKEN_FILE


def load_or_create_token(path: Path) -> str:
    """The token in ``path``, created first when missing (``secrets.token_urlsafe(32)``, the file
    opened ``O_CREAT|O_EXCL|O_NOFOLLOW`` with mode 0600 and ``fchmod``-ed, so no reader ever sees it
    wider). An existing file must be a regular file (not a symlink) owned by this user with no group
    or other permission bits, else :class:`ConfigError` naming it: a token others can read or replace
    is no credential. Rule: Patroni ``restapi.authentication`` (a secret only the operator holds)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return _read_token(path)
    token = secrets.token_urlsafe(32)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return token


def _read_token(path: Path) -> str:
    hint = f"remove it (`rm {path}`) and start `invoke health --serve` again: a new token is written, 0600."
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        why = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        raise ConfigError([f"The health token file {path} {why}"], hint) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise ConfigError([(f"The health token file {path} is not a private file of this user "
                                f"(mode {stat.filemode(st.st_mode)}, owner uid {st.st_uid}); others could read "
                                "or replace the token")], hint)
        token = os.read(fd, 4096).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)
    if len(token) < 16:
        raise ConfigError([f"The health token file {path} holds no token of at least 16 characters"], hint)
    return token


def application(cache: Measurements, token: str, redact: Callable[[str], str] = str):
    """The WSGI application (PEP 3333) answering the probes from ``cache``; ``token`` guards
    :data:`DETAIL_PATH`; ``redact`` scrubs an error's text before it reaches the detail body."""
    expected = f"Bearer {token}".encode()

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        query = environ.get("QUERY_STRING", "")
        if method not in METHODS:
            return _answer(start_response, method, 405, _WORD[405], [("Allow", ", ".join(METHODS))])
        if path == DETAIL_PATH:
            given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return _answer(start_response, method, 401, _WORD[401],
                               [("WWW-Authenticate", 'Bearer realm="pgops health"')])
            outcome = cache.get()
            if outcome.error is not None:
                code, body = 503, {"status": "unknown", "error": redact(str(outcome.error))}
            else:
                code, body = 200, {"status": overall(outcome.results), "checks": [r.as_dict() for r in outcome.results]}
            return _answer(start_response, method, code, json.dumps(body, default=str) + "\n",
                           _freshness(cache, outcome), "application/json")
        if path not in PROBE_PATHS:
            return _answer(start_response, method, 404, _WORD[404])
        target = f"{path}?{query}" if query else path
        try:
            probe_request(target)
        except ValueError as exc:
            return _answer(start_response, method, 400, f"{_WORD[400]}: {exc}")
        outcome = cache.get()
        code = 503 if outcome.error is not None else probe_answer(target, outcome.results)[0]
        return _answer(start_response, method, code, _WORD.get(code, str(code)), _freshness(cache, outcome))
    return app


def _freshness(cache: Measurements, outcome: Outcome) -> list[tuple[str, str]]:
    return [("Age", str(int(cache.age(outcome)))), ("Cache-Control", f"max-age={cache.max_age:g}")]


def _answer(start_response, method: str, code: int, text: str, headers=(), ctype="text/plain; charset=utf-8"):
    data = text.encode() if text.endswith("\n") else (text + "\n").encode()
    reason = HTTPStatus(code).phrase
    if method == "OPTIONS":  # status and headers, no body (Patroni answers OPTIONS as GET)
        data = b""
    start_response(f"{code} {reason}", [("Content-Type", ctype), ("Content-Length", str(len(data))),
                                        ("Allow", ", ".join(METHODS)), *[h for h in headers if h[0] != "Allow"]])
    return [] if method == "HEAD" else [data]


def make_server(app, port: int):
    """A waitress server bound to 127.0.0.1:``port`` (not yet running). Raises :class:`ConfigError`
    naming the port when it cannot be bound (in use, or privileged for this user)."""
    from waitress import create_server
    try:
        return create_server(app, host="127.0.0.1", port=port, threads=THREADS, connection_limit=CONNECTION_LIMIT,
                             channel_timeout=CHANNEL_TIMEOUT, cleanup_interval=CLEANUP_INTERVAL,
                             asyncore_use_poll=True, ident="pgops", expose_tracebacks=False,
                             max_request_header_size=16384, max_request_body_size=1024)
    except OSError as exc:
        why = ("is already in use by another process" if exc.errno == errno.EADDRINUSE
               else f"cannot be bound ({exc.strerror})")
        raise ConfigError([f"Port {port} on 127.0.0.1 for `health --serve` {why}"],
                          "stop that process or choose another port, e.g. `invoke health --serve 8008`; "
                          f"`ss -ltnp 'sport = :{port}'` shows who listens.") from None


def serve(port: int, measure: Callable[[], list], state_dir: Path, *, first: list | None = None,
          max_age: float = DEFAULT_MAX_AGE, redact: Callable[[str], str] = str,
          progress: Callable[[str], None] = lambda _msg: None) -> None:
    """Answer probes on 127.0.0.1:``port`` until interrupted (Ctrl-C / SIGTERM raise
    KeyboardInterrupt, re-raised after the server closed). ``measure`` as for :class:`Measurements`;
    ``first`` a measurement already taken. Raises :class:`ConfigError` for a port that cannot be
    bound or a token file that is not private."""
    path = token_file(state_dir)
    token = load_or_create_token(path)
    cache = Measurements(measure, max_age, first=first)
    # waitress warns "Task queue depth is N" for every request queued behind busy workers: a burst of
    # probes is the normal case here, not news (each line would be one more write per request)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = make_server(application(cache, token, redact), port)
    progress(f"answering /health, /primary, /replica?lag=… on http://127.0.0.1:{port} (status only); "
             f"{DETAIL_PATH} with `Authorization: Bearer $(cat {path})`")
    try:
        server.run()  # returns after closing itself on KeyboardInterrupt / SystemExit
    finally:
        server.close()
    raise KeyboardInterrupt
