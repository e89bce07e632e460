"""Client load through the stack's pooler as applications make it (issue 19 §4), shared by the
cutover/failover integration tests and bench/bench_cutover.py. Two kinds of client run side by side:

* ``defaults``: ``psycopg.connect`` with the driver's defaults. psycopg prepares a query server-side
  from its 5th execution on a connection (``prepare_threshold=5``, psycopg docs "Prepared
  statements"), and every writer repeats the same INSERT, so it prepares.
* ``pooler-safe``: ``prepare_threshold=None``, what README "Connecting applications" tells
  applications to set when the installed PgBouncer (< 1.21) cannot track prepared statements.

Each writer runs autocommit statements (one statement, one transaction) and records every
acknowledged value and every failed transaction with its time; after a failure it reconnects, as
applications' pools do. How a test judges the two (:meth:`ClientLoad.check`): the pooler-safe
client fails no transaction; the defaults client fails none either when the pooler passes prepared
statements (PgBouncer ≥ 1.21, ``max_prepared_statements``); on an older PgBouncer its failures are
reported (a :class:`PoolerLimitation` warning in the test summary, with the count) and each must be
the documented limitation — a prepared-statement error — and nothing else.
"""
from __future__ import annotations

import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg

from ops.local.cluster import installed_pgbouncer_version
from ops.local.layout import format_version, passes_prepared_statements

FLAVOURS = {"defaults": {}, "pooler-safe": {"prepare_threshold": None}}


class PoolerLimitation(UserWarning):
    """The driver-defaults client failed through a PgBouncer that cannot track prepared statements."""


def is_prepared_statement_error(text: str) -> bool:
    """``prepared statement "_pg3_0" does not exist`` / ``... already exists`` (server errors 26000 / 42P05)."""
    return text.startswith("prepared statement ") and ("does not exist" in text or "already exists" in text)


class Writers:
    """``n`` threads of one flavour, each calling ``write(conn)`` in a loop on its own connection to
    ``params`` (libpq keywords, ``dbname`` included); ``acked`` holds what each successful call
    returned, ``failures`` (monotonic time, first line of the error) each failed transaction."""

    def __init__(self, params: dict, write: Callable[[psycopg.Connection], Any], flavour: str, n: int = 2,
                 pause_s: float = 0.0):
        self.params = {"connect_timeout": 5, **params, **FLAVOURS[flavour]}
        self.write = write
        self.flavour = flavour
        self.pause_s = pause_s
        self.acked: list[Any] = []
        self.failures: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True, name=f"{flavour}-{i}") for i in range(n)]

    def _loop(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(autocommit=True, **self.params)
                value = self.write(conn)
                with self.lock:
                    self.acked.append(value)
            except psycopg.Error as exc:
                with self.lock:
                    self.failures.append((time.monotonic(), (str(exc).strip().splitlines() or [""])[0]))
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                conn = None
                time.sleep(0.02)
            if self.pause_s:
                time.sleep(self.pause_s)
        if conn is not None:
            conn.close()

    def start(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def failed(self, since: float | None = None) -> list[str]:
        with self.lock:
            return [e for t, e in self.failures if since is None or t >= since]

    def wait_for(self, count: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.acked) >= count, (f"{self.flavour} writers stuck at {len(self.acked)} rows; "
                                          f"failures: {self.failed()[-3:]}")


class ClientLoad:
    """Both flavours at once (a context manager): ``defaults`` and ``safe`` are their :class:`Writers`."""

    def __init__(self, params: dict, write: Callable[[psycopg.Connection], Any], n: int = 2, pause_s: float = 0.0):
        self.defaults = Writers(params, write, "defaults", n, pause_s)
        self.safe = Writers(params, write, "pooler-safe", n, pause_s)
        self.flavours = (self.defaults, self.safe)

    def __enter__(self) -> "ClientLoad":
        for w in self.flavours:
            w.start()
        return self

    def __exit__(self, *exc) -> None:
        for w in self.flavours:
            w.finish()

    @property
    def acked(self) -> list[Any]:
        return self.defaults.acked + self.safe.acked

    def wait_for(self, count: int, timeout_s: float = 120) -> None:
        """Wait until each flavour has ``count`` acknowledged writes."""
        for w in self.flavours:
            w.wait_for(count, timeout_s)

    def report(self, since: float | None = None) -> dict:
        """Per flavour: acknowledged writes, failed transactions (since ``since``) and their kinds."""
        return {w.flavour: {"acknowledged": len(w.acked), "failed": len(w.failed(since)),
                            "kinds": dict(Counter(re.sub(r'"[^"]*"', '"…"', e) for e in w.failed(since)).most_common(5))}
                for w in self.flavours}

    def check(self, what: str, since: float | None = None) -> dict:
        """Judge the failed transactions since ``since`` (monotonic; None = the whole run) as the module
        docstring says, for the PgBouncer installed here. Returns :meth:`report`."""
        version = installed_pgbouncer_version()
        rep = self.report(since)
        assert not [e for w in self.flavours for e in w.failed() if "duplicate key" in e], f"{what}: {rep}"
        assert self.safe.failed(since) == [], f"{what}: the pooler-safe client failed: {rep}"
        defaults = self.defaults.failed(since)
        if passes_prepared_statements(version):
            assert defaults == [], f"{what}: PgBouncer {format_version(version)} passes prepared statements, " \
                                   f"yet the driver-defaults client failed: {rep}"
        else:
            assert all(is_prepared_statement_error(e) for e in defaults), \
                f"{what}: the driver-defaults client failed for a reason other than prepared statements: {rep}"
            if defaults:
                warnings.warn(PoolerLimitation(
                    f"{what}: {len(defaults)} failed transaction(s) of the driver-defaults client through PgBouncer "
                    f"{format_version(version)} (no prepared statements in transaction pooling before 1.21; README "
                    f"'Connecting applications'); the pooler-safe client: 0"), stacklevel=2)
        return rep
