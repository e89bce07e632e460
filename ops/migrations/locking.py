"""One runner per database, and no migration that queues behind a long transaction.

The advisory lock is session-level, taken with ``pg_try_advisory_lock`` in a polling loop bounded by
``--lock-wait``, on a dedicated autocommit connection that never holds a transaction open, so it can
never deadlock with CREATE INDEX CONCURRENTLY (which waits for every open transaction;
golang-migrate#137, flyway#3497). The preflight lists transactions older than a limit and
idle-in-transaction sessions (pypi/warehouse#11704: a migration queued behind a long query takes the
site down) and waits for them, refuses, or skips.
"""
from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from typing import Iterator, Mapping

import psycopg

from ..dsn import connect, tool_application_name
from ..errors import ConfigError, LockHeld, PreflightRefused


def backoff(attempt: int, base: float, cap: float = 10.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based) after a lock timeout: exponential with
    jitter, ``base * 2^attempt * U(0.5, 1.5)``, at most ``cap`` (AWS Architecture Blog, "Exponential
    Backoff And Jitter"). Shared by the migration runner, partition maintenance and the transfer."""
    return min(cap, base * (2 ** attempt) * random.uniform(0.5, 1.5))

log = logging.getLogger(__name__)

# Two-int advisory key: 'pgop' / 'migr'. Advisory locks are already scoped to the current database.
LOCK_KEY = (0x7067_6F70, 0x6D69_6772)
PREFLIGHT_MODES = ("wait", "refuse", "skip")
IDLE_IN_TX_GRACE_S = 5


def lock_holder(conn: psycopg.Connection) -> dict | None:
    """Who holds the migration lock: pid, application_name, since (backend start, UTC ISO)."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())", LOCK_KEY).fetchone()
    if not row:
        return None
    return {"pid": row[0], "application_name": row[1], "since": row[2].isoformat(timespec="seconds")}


@contextmanager
def migration_lock(params: Mapping, database: str, wait_s: float) -> Iterator[psycopg.Connection]:
    """Hold the database's migration advisory lock for the ``with`` block.

    ``wait_s``: seconds to keep trying before :class:`LockHeld` (naming the holder) is raised.
    Yields the lock connection (autocommit, never in a transaction).
    """
    conn = connect(params, dbname=database, autocommit=True, application_name=tool_application_name("migrate-lock"))
    try:
        start = time.monotonic()
        while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]:
            if time.monotonic() - start >= wait_s:
                raise LockHeld(database, time.monotonic() - start, lock_holder(conn))
            time.sleep(0.2)
        yield conn
    finally:
        try:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock_all()")
        finally:
            conn.close()


def find_blockers(conn: psycopg.Connection, max_xact_age_s: float, exclude_pids: list[int]) -> list[dict]:
    """Sessions on the current database whose transaction is older than ``max_xact_age_s`` seconds,
    or that sit idle in transaction for more than 5 s; each {pid, application_name, state, xact_age_s}."""
    rows = conn.execute(
        "SELECT pid, coalesce(application_name, ''), state, extract(epoch FROM now() - xact_start)::float8 "
        "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND xact_start IS NOT NULL AND NOT (pid = ANY(%s)) AND pid <> pg_backend_pid() "
        "AND (xact_start < now() - make_interval(secs => %s) "
        "     OR (state LIKE 'idle in transaction%%' AND state_change < now() - make_interval(secs => %s))) "
        "ORDER BY xact_start", (exclude_pids, max_xact_age_s, IDLE_IN_TX_GRACE_S)).fetchall()
    return [{"pid": r[0], "application_name": r[1], "state": r[2], "xact_age_s": r[3]} for r in rows]


def preflight(conn: psycopg.Connection, database: str, mode: str, max_xact_age_s: float, wait_s: float,
              exclude_pids: list[int]) -> list[dict]:
    """Check for sessions that would block the migration's locks.

    ``mode``: ``wait`` (poll up to ``wait_s`` seconds for them to finish, then refuse), ``refuse``
    (fail at once) or ``skip``. Returns the blockers seen at first look (empty when none).
    Raises :class:`PreflightRefused` listing them, :class:`ConfigError` for an unknown mode.
    """
    if mode not in PREFLIGHT_MODES:
        raise ConfigError([f"--preflight must be one of {', '.join(PREFLIGHT_MODES)}, not '{mode}'"])
    if mode == "skip":
        return []
    first = blockers = find_blockers(conn, max_xact_age_s, exclude_pids)
    if blockers and mode == "wait":
        deadline = time.monotonic() + wait_s
        while blockers and time.monotonic() < deadline:
            log.info("preflight: waiting for %d blocking session(s)", len(blockers))
            time.sleep(0.5)
            blockers = find_blockers(conn, max_xact_age_s, exclude_pids)
    if blockers:
        raise PreflightRefused(database, blockers)
    return first
