"""A client-side write probe for cutovers and failovers: a thread that writes through an endpoint
(the pooler, a DNS name) and records when each write was acknowledged, so the write pause callers saw
(the largest gap between acknowledged writes) is measured, and every acknowledged row can be looked
for on the new primary. Neither RDS Blue/Green nor the logical-replication tools publish either
figure (issue 11); after `failover.promote` clients waited 13 s more than the pooler-side figure
said (issue 19), which only a client can see.

The probe is a pooler-safe client (``prepare_threshold=None``, psycopg docs "Prepared statements"):
a PgBouncer in transaction pooling before 1.21 cannot keep server-side prepared statements, and the
probe measures the switch, not that limit.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable

from .dsn import connect, redact, tool_application_name
from .errors import CutoverError, OpsError

PROBE_TABLE = "pgops.cutover_probe"


class WriteProbe:
    """A thread that writes numbered rows into :data:`PROBE_TABLE` through ``conninfo`` (or runs
    ``SELECT 1`` when the table does not exist — a table created on blue while a deployment exists
    would be DDL on blue, which breaks logical replication) every ``interval_s`` seconds,
    reconnecting after every error, and records the ``clock()`` time of each acknowledgement.
    ``mode="xact"`` writes without a table: each probe is a transaction that takes a transaction id
    (``SELECT pg_current_xact_id()``), which only a primary can do and which commits a WAL record
    (PostgreSQL docs, "Transaction ID and Snapshot Information Functions"); failover uses it.

    ``result()`` gives ``write_pause_ms``: the largest gap, in milliseconds, between consecutive
    acknowledgements, the probe's start and its stop included — so a probe that never got an
    acknowledgement after the switch reports the whole wait. ``resolution_ms`` is the sampling
    interval the figure includes.
    """

    def __init__(self, conninfo: dict, *, clock: Callable[[], float] = time.monotonic, interval_s: float = 0.05,
                 statement_timeout_ms: int = 2000, mode: str | None = None, what: str = "cutover probe"):
        if mode not in (None, "xact"):
            raise ValueError(f"probe mode {mode!r}: None (decided from the table) or 'xact'")
        self.conninfo = {**conninfo, "prepare_threshold": None}
        self.dbname = conninfo.get("dbname") or "postgres"
        self.clock = clock
        self.interval_s = interval_s
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.run_id = uuid.uuid4().hex
        self.fixed_mode = mode
        self.what = what
        self.mode = mode or "write"
        self.acks: list[float] = []
        self.acked_ids: list[int] = []
        self.errors = 0
        self.first_error = ""
        self.started_at = self.stopped_at = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgops-cutover-probe", daemon=True)

    def _connect(self):
        conn = connect(self.conninfo, dbname=self.dbname, autocommit=True, connect_timeout=2,
                       application_name=tool_application_name(self.what))
        conn.execute(f"SET statement_timeout = {self.statement_timeout_ms}")
        return conn

    def start(self) -> WriteProbe:
        """Decide the mode on one connection (raises :class:`~ops.errors.ConnectError` when blue does
        not answer), then start writing."""
        if self.fixed_mode is None:
            with self._connect() as conn:
                self.mode = "write" if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (PROBE_TABLE,)
                                                    ).fetchone()[0] else "read"
        self.started_at = self.clock()
        self._thread.start()
        return self

    def _loop(self) -> None:
        import psycopg
        conn, n = None, 0
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                if self.mode == "write":
                    conn.execute(f"INSERT INTO {PROBE_TABLE} (run_id, n) VALUES (%s, %s)", (self.run_id, n))
                    self.acked_ids.append(n)
                    n += 1
                elif self.mode == "xact":
                    conn.execute("SELECT pg_current_xact_id()")
                else:
                    conn.execute("SELECT 1")
                self.acks.append(self.clock())
            except (OpsError, psycopg.Error) as exc:  # every error is a gap; reconnect (DNS may now name green)
                self.errors += 1
                self.first_error = self.first_error or redact(str(exc)).strip()[:200]
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                    conn = None
            self._stop.wait(self.interval_s)
        if conn is not None:
            conn.close()

    def _writable(self, attempts: int = 30):
        """A connection to a server that takes writes: right after a switchover a cached DNS answer
        can still name old blue (read-only), whose rows stop at the switch."""
        for _ in range(attempts):
            conn = self._connect()
            if conn.execute("SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"
                            ).fetchone()[0]:
                return conn
            conn.close()
            time.sleep(1)
        raise CutoverError(f"The endpoint still names a read-only server after {attempts} attempts; the probe rows "
                           "cannot be read back from the new primary.")

    def first_ack_since(self, t: float) -> float | None:
        """The ``clock()`` time of the first acknowledgement at or after ``t``; None when there is none yet."""
        return next((a for a in self.acks if a >= t), None)

    def acknowledged_since(self, t: float) -> bool:
        return bool(self.acks) and self.acks[-1] >= t

    def wait_acknowledged_since(self, t: float, timeout_s: float) -> bool:
        """Wait (real time, at most ``timeout_s`` seconds) for an acknowledgement at ``clock()`` ≥ ``t``."""
        deadline = time.monotonic() + timeout_s
        while not self.acknowledged_since(t) and time.monotonic() < deadline and self._thread.is_alive():
            self._stop.wait(self.interval_s / 2)
        return self.acknowledged_since(t)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=30)
        self.stopped_at = self.clock()
        return self.result()

    def result(self) -> dict:
        edges = [self.started_at, *self.acks, self.stopped_at if self.stopped_at is not None else self.clock()]
        gap = max((b - a for a, b in itertools.pairwise(edges)), default=0.0)
        return {"mode": self.mode, "run_id": self.run_id, "acknowledged": len(self.acks), "errors": self.errors,
                "first_error": self.first_error, "write_pause_ms": round(gap * 1000, 1),
                "resolution_ms": round(self.interval_s * 1000, 1)}

    def lost_writes(self) -> list[int]:
        """Acknowledged probe rows missing on the server the endpoint now names (empty in read mode)."""
        if self.mode != "write" or not self.acked_ids:
            return []
        with self._writable() as conn:
            found = {r[0] for r in conn.execute(f"SELECT n FROM {PROBE_TABLE} WHERE run_id = %s",
                                                (self.run_id,)).fetchall()}
        return [i for i in self.acked_ids if i not in found]


def create_probe_table(conninfo: dict) -> None:
    """Create :data:`PROBE_TABLE` on blue (idempotent). Only before a deployment exists: DDL on blue
    afterwards would break a logical-replication deployment (User Guide, PostgreSQL limitations)."""
    with connect(conninfo, dbname=conninfo.get("dbname") or "postgres", autocommit=True,
                 application_name=tool_application_name("cutover prepare")) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS pgops")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                     "run_id text NOT NULL, n bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
