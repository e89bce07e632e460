"""Partition maintenance, the I/O edge of :mod:`ops.partitions.plan`: read the catalog, apply the plan.

Every step is one short transaction (or, for ``DETACH ... CONCURRENTLY`` / ``FINALIZE``, one statement
in autocommit, as PostgreSQL requires) under ``lock_timeout``, retried with exponential backoff and
jitter on SQLSTATE 55P03, so a queue of application queries behind a waiting DDL statement never waits
longer than the lock timeout (the lock pile-ups of pg_partman #240/#531/#796). A new month is created
as a plain table with its CHECK constraint and then ATTACHed — SHARE UPDATE EXCLUSIVE on the parent,
where ``CREATE TABLE ... PARTITION OF`` takes ACCESS EXCLUSIVE (PostgreSQL docs, "Partition
Maintenance"). Sessions run with ``row_security = off``: a role that RLS would filter gets an error
instead of silently moving or archiving a part of the rows.
"""
from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable, Mapping

from psycopg import errors as pgerrors, sql

from ..dsn import connect, tool_application_name
from ..errors import PartitionError, PartitionLockTimeout
from ..migrations.locking import backoff
from .plan import Action, Partition, TableState, parse_bound, parse_policy

log = logging.getLogger(__name__)

TABLES_SQL = """
SELECT n.nspname, c.relname, a.attname, obj_description(c.oid, 'pg_class')
FROM pg_partitioned_table pt
JOIN pg_class c ON c.oid = pt.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
WHERE pt.partstrat = 'r' AND pt.partnatts = 1 AND NOT c.relispartition
  AND obj_description(c.oid, 'pg_class') LIKE '%pgops:partitions%'
ORDER BY 1, 2"""

PARTITIONS_SQL = """
SELECT p.relname, pg_get_expr(p.relpartbound, p.oid), i.inhdetachpending
FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
WHERE i.inhparent = %s::regclass ORDER BY 1"""


@dataclass(frozen=True)
class Knobs:
    """``lock_timeout_s`` per statement; ``retries`` after a lock timeout (backoff 0.2 s × 2^n, jitter)."""

    lock_timeout_s: float = 1.0
    retries: int = 5


def session(params: Mapping, database: str):
    conn = connect(params, dbname=database, autocommit=True, application_name=tool_application_name("partitions"))
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET row_security = off")
    return conn


def in_recovery(conn) -> bool:
    return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def read_states(conn, tables: list[str] | None = None) -> list[TableState]:
    """Every range-partitioned table with a ``pgops:partitions`` policy (``tables``: only these names,
    bare or ``schema.table``), with its partitions (bounds in UTC) and the rows of its default
    partition per month."""
    out = []
    for schema, table, key, comment in conn.execute(TABLES_SQL).fetchall():
        if tables and table not in tables and f"{schema}.{table}" not in tables:
            continue
        policy = parse_policy(f"{schema}.{table}", comment)
        parts = []
        qualified = sql.Identifier(schema, table).as_string(conn)
        for name, expr, pending in conn.execute(PARTITIONS_SQL, (qualified,)).fetchall():
            if expr == "DEFAULT":
                parts.append(Partition(name, is_default=True, detach_pending=pending))
                continue
            bounds = parse_bound(expr)
            parts.append(Partition(name, *(bounds or (None, None)), detach_pending=pending))
        default_rows: dict[date, int] = {}
        default = next((p for p in parts if p.is_default), None)
        if default is not None:
            for month, rows in conn.execute(sql.SQL(
                    "SELECT date_trunc('month', {k} AT TIME ZONE 'UTC')::date, count(*) FROM {d} GROUP BY 1").format(
                        k=sql.Identifier(key), d=sql.Identifier(schema, default.name))):
                default_rows[month] = rows
        out.append(TableState(schema, table, key, policy, tuple(parts), default_rows))
    return out


def _with_retries(what: str, knobs: Knobs, fn: Callable[[int], object], on_timeout: Callable[[], None] | None = None):
    for attempt in range(knobs.retries + 1):
        try:
            return fn(attempt)
        except pgerrors.LockNotAvailable:
            if on_timeout is not None:
                on_timeout()
            if attempt == knobs.retries:
                raise PartitionLockTimeout(what, knobs.lock_timeout_s, attempt + 1) from None
            time.sleep(backoff(attempt, 0.15))
            log.info("%s: lock_timeout, retry %d", what, attempt + 1)


def _lock_timeout(conn, knobs: Knobs, local: bool) -> None:
    ms = max(1, int(knobs.lock_timeout_s * 1000))
    conn.execute(f"SET {'LOCAL ' if local else ''}lock_timeout = {ms}")


def create(params: Mapping, database: str, state: TableState, a: Action, knobs: Knobs) -> int:
    """Create ``a.partition`` as a plain table (the parent's columns, defaults and CHECK constraints),
    add the CHECK constraint that proves its bounds, move the default partition's rows of that month
    into it, ATTACH it, drop the now-redundant CHECK (as the PostgreSQL docs advise) — one transaction.
    Returns the rows moved.

    A table with a default partition is first locked ``IN SHARE ROW EXCLUSIVE MODE`` (the whole
    tree: writers wait, readers go on) for that short transaction. Without it an application
    INSERT that routed its row to the default partition before the ATTACH committed (ATTACH takes
    only SHARE UPDATE EXCLUSIVE on the parent, so the INSERT planned against the old partition set)
    waits for the default partition's ACCESS EXCLUSIVE lock and then fails with "new row for
    relation ... violates partition constraint" — maintenance must never fail an application write.
    With it, writers queue on the parent for at most the step (bounded by ``lock_timeout`` while it
    waits, then the move and the ATTACH's scan of the default partition), and their INSERT then sees
    the new partition. pg_partman's ``partition_data_proc`` moves default rows under a lock for the
    same reason. A table without a default partition needs no lock: a row for a month with no
    partition fails with or without maintenance, which is why ``premake`` creates months ahead."""
    part = sql.Identifier(a.schema, a.partition)
    parent = sql.Identifier(a.schema, a.table)
    key = sql.Identifier(state.key)
    check = sql.Identifier(f"{a.partition}_bounds"[:63])
    lo, hi = sql.Literal(a.lower.isoformat()), sql.Literal(a.upper.isoformat())

    def attempt(_):
        with session(params, database) as conn, conn.transaction():
            _lock_timeout(conn, knobs, local=True)
            if state.default_name:  # first, so no lock is upgraded later (the order writers take too)
                conn.execute(sql.SQL("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE").format(t=parent))
            conn.execute(sql.SQL("CREATE TABLE {p} (LIKE {t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE "
                                 "INCLUDING COMPRESSION)").format(p=part, t=parent))
            conn.execute(sql.SQL("ALTER TABLE {p} ADD CONSTRAINT {c} CHECK ({k} IS NOT NULL AND {k} >= {lo}::timestamptz "
                                 "AND {k} < {hi}::timestamptz)").format(p=part, c=check, k=key, lo=lo, hi=hi))
            conn.execute(sql.SQL("ALTER TABLE {p} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY").format(p=part))
            moved = 0
            if state.default_name:
                default = sql.Identifier(a.schema, state.default_name)
                moved = conn.execute(sql.SQL(
                    "WITH moved AS (DELETE FROM {d} WHERE {k} >= {lo}::timestamptz AND {k} < {hi}::timestamptz "
                    "RETURNING *) INSERT INTO {p} SELECT * FROM moved").format(
                        d=default, k=key, lo=lo, hi=hi, p=part)).rowcount
            conn.execute(sql.SQL("ALTER TABLE {t} ATTACH PARTITION {p} FOR VALUES FROM ({lo}) TO ({hi})").format(
                t=parent, p=part, lo=lo, hi=hi))
            conn.execute(sql.SQL("ALTER TABLE {p} DROP CONSTRAINT {c}").format(p=part, c=check))
            return moved
    return _with_retries(f"create {a.schema}.{a.partition}", knobs, attempt)


def detach_pending(conn, schema: str, partition: str) -> bool:
    row = conn.execute("SELECT i.inhdetachpending FROM pg_inherits i WHERE i.inhrelid = %s::regclass",
                       (sql.Identifier(schema, partition).as_string(conn),)).fetchone()
    return bool(row and row[0])


def is_attached(conn, schema: str, partition: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s))",
                        (sql.Identifier(schema, partition).as_string(conn),)).fetchone()[0]


def finalize(params: Mapping, database: str, a: Action, knobs: Knobs) -> None:
    """``ALTER TABLE parent DETACH PARTITION p FINALIZE`` (autocommit: it cannot run in a transaction block)."""
    def attempt(_):
        with session(params, database) as conn:
            if not detach_pending(conn, a.schema, a.partition):
                return  # finished meanwhile (or by another run)
            _lock_timeout(conn, knobs, local=False)
            conn.execute(sql.SQL("ALTER TABLE {t} DETACH PARTITION {p} FINALIZE").format(
                t=sql.Identifier(a.schema, a.table), p=sql.Identifier(a.schema, a.partition)))
    _with_retries(f"finalize the detach of {a.schema}.{a.partition}", knobs, attempt)


def detach(params: Mapping, database: str, a: Action, knobs: Knobs) -> None:
    """Detach ``a.partition``: ``CONCURRENTLY`` in autocommit when the table has no default partition
    (an attempt cut short by the lock timeout in its second phase leaves the detach pending, and the
    next attempt FINALIZEs it); otherwise a plain DETACH in a short transaction."""
    parent, part = sql.Identifier(a.schema, a.table), sql.Identifier(a.schema, a.partition)

    def attempt(_):
        with session(params, database) as conn:
            if not is_attached(conn, a.schema, a.partition):
                return
            _lock_timeout(conn, knobs, local=False)
            if detach_pending(conn, a.schema, a.partition):
                conn.execute(sql.SQL("ALTER TABLE {t} DETACH PARTITION {p} FINALIZE").format(t=parent, p=part))
            elif a.concurrently:
                conn.execute(sql.SQL("ALTER TABLE {t} DETACH PARTITION {p} CONCURRENTLY").format(t=parent, p=part))
            else:
                with conn.transaction():
                    conn.execute(sql.SQL("ALTER TABLE {t} DETACH PARTITION {p}").format(t=parent, p=part))
    _with_retries(f"detach {a.schema}.{a.partition}", knobs, attempt)


def drop(params: Mapping, database: str, a: Action, knobs: Knobs) -> None:
    """DROP the detached partition; refuses one that is attached again."""
    def attempt(_):
        with session(params, database) as conn, conn.transaction():
            if is_attached(conn, a.schema, a.partition):
                raise PartitionError(f"Partition {a.schema}.{a.partition} of database '{database}' is attached to "
                                     f"{a.schema}.{a.table}; it was not dropped.",
                                     f"run `invoke db.partitions --db {database}` to see the plan again.")
            _lock_timeout(conn, knobs, local=True)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {p}").format(p=sql.Identifier(a.schema, a.partition)))
    _with_retries(f"drop {a.schema}.{a.partition}", knobs, attempt)


def archive_key(database: str, a: Action, now: datetime) -> str:
    return f"partitions/{database}/{a.schema}.{a.table}/{a.partition}-{now:%Y%m%dT%H%M%SZ}/"


def archive(repo, params: Mapping, database: str, a: Action, now: datetime) -> dict:
    """``pg_dump -Fc`` of the detached partition streamed into ``repo`` under
    ``partitions/<database>/<schema.table>/<partition>-<UTC time>/dump.pgdump``, then ``manifest.json``
    (rows, bounds, size, sha256) written last: no manifest, no archive. Returns the manifest."""
    from ..backups.engine import stream_tool
    from ..pgtools import client_env_scope, pg_bindir
    prefix = archive_key(database, a, now)
    with session(params, database) as conn:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {p}").format(p=sql.Identifier(a.schema, a.partition))).fetchone()[0]
        server_version = conn.execute("SHOW server_version").fetchone()[0]
    table_arg = sql.Identifier(a.schema, a.partition).as_string(None)
    with client_env_scope(params, database) as (args, env):
        proc = subprocess.Popen([str(pg_bindir() / "pg_dump"), "-Fc", "--no-password", "-t", table_arg, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        # the backups' streaming: stderr drained beside stdout, the tool killed if the upload fails
        written, code, err_bytes = stream_tool(repo, prefix + "dump.pgdump", proc, database,
                                               f"invoke db.partitions --db {database} --apply --archive", None)
    err = err_bytes.decode(errors="replace")
    if code != 0:
        repo.delete(prefix + "dump.pgdump")
        raise PartitionError(f"Archiving partition {a.schema}.{a.partition} of database '{database}' failed: pg_dump "
                             f"exited {code} ({err.strip()[:300]}); it was detached and kept, not dropped.",
                             f"fix the cause, then run `invoke db.partitions --db {database} --apply --archive`.")
    manifest = {"kind": "partition-archive", "database": database, "schema": a.schema, "table": a.table,
                "partition": a.partition, "lower": a.lower.isoformat() if a.lower else None,
                "upper": a.upper.isoformat() if a.upper else None, "rows": rows, "size_bytes": written.size,
                "sha256": written.sha256, "location": repo.location(prefix + "dump.pgdump"),
                "created_at": now.isoformat(), "server_version": server_version, "format": "pg_dump -Fc"}
    repo.put_bytes(prefix + "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def has_archive(repo, database: str, a: Action) -> bool:
    return any(o.key.endswith("/manifest.json") and f"/{a.partition}-" in o.key
               for o in repo.list(f"partitions/{database}/{a.schema}.{a.table}/"))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
