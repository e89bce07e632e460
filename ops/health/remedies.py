"""What a responder does about a failing check, as I/O on one server: find the sessions a check flags and
end them, drop an inactive replication slot, rebuild INVALID indexes (the I/O edge of the runbooks'
fix steps; ``ops.tasks.remedies`` wraps each in a plan).

The sessions each check flags are selected with the same predicates ``ops.health.probe`` measures
(``pg_stat_activity``: ``xact_start`` for long transactions, ``state_change`` for idle in transaction,
``pg_blocking_pids`` for blocked queries), so ending them turns that check ok. Sessions whose
``application_name`` starts with ``pgops/`` (a migration, a backup, a drill pgops runs) are listed but
never ended. Sources: PostgreSQL's ``pg_terminate_backend(pid, timeout)`` (waits for the backend to
exit), ``pg_drop_replication_slot``, ``REINDEX INDEX CONCURRENTLY`` (rebuilds an INVALID index without
blocking writes); check_postgres's ``txn_time``/``txn_idle`` actions for the selection.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..dsn import connect, tool_application_name
from ..errors import RemedyError

#: checks whose offenders are sessions ``db.terminate`` can end
SESSION_CHECKS = ("long_transaction", "idle_in_transaction", "blocked_queries")
PGOPS_PREFIX = "pgops/"
TERMINATE_WAIT_MS = 5000  # pg_terminate_backend waits this long for the backend to exit

_AGE = {  # seconds the check measures for a session, as ops.health.probe measures it
    "long_transaction": "extract(epoch FROM now() - a.xact_start)",
    "idle_in_transaction": "extract(epoch FROM now() - a.state_change)",
}
_WHERE = {
    "long_transaction": "a.xact_start IS NOT NULL AND a.state <> 'idle'",
    "idle_in_transaction": "a.state LIKE 'idle in transaction%%'",
}


@dataclass(frozen=True)
class Session:
    """One server session a check flags; ``age_s`` is what the check measures for it (seconds)."""

    node: str
    pid: int
    backend_start: datetime
    xact_start: datetime | None
    user: str
    application_name: str
    database: str
    client: str
    state: str
    age_s: float
    query: str

    @property
    def is_pgops(self) -> bool:
        return self.application_name.startswith(PGOPS_PREFIX)

    def describe(self) -> str:
        return (f"pid {self.pid} on {self.node} ({self.user}@{self.database}, application '{self.application_name}', "
                f"client {self.client or 'local'}, {self.state}, {self.age_s:,.0f} s): {' '.join(self.query.split())[:60]}")


def _conn(params: dict, dbname: str = "postgres", what: str = "remedy"):
    return connect(params, dbname=dbname, autocommit=True, connect_timeout=5, application_name=tool_application_name(what))


def offenders(node: str, params: dict, check: str, older_than_s: float) -> list[Session]:
    """Sessions on one server that ``check`` flags at ``older_than_s`` seconds, oldest first; for
    ``blocked_queries`` the sessions holding the locks (the blockers of any query waiting that long),
    aged by the longest wait they cause. This connection is never one of them."""
    cols = ("a.pid, a.backend_start, a.xact_start, coalesce(a.usename, ''), coalesce(a.application_name, ''), "
            "coalesce(a.datname, ''), coalesce(host(a.client_addr), ''), coalesce(a.state, ''), {age}, "
            "coalesce(a.query, '')")
    if check == "blocked_queries":
        text = ("WITH waits AS (SELECT unnest(pg_blocking_pids(pid)) AS blocker, "
                "extract(epoch FROM now() - query_start) AS waited FROM pg_stat_activity "
                "WHERE cardinality(pg_blocking_pids(pid)) > 0), "
                "worst AS (SELECT blocker, max(waited) AS waited FROM waits GROUP BY blocker) "
                f"SELECT {cols.format(age='w.waited')} FROM worst w JOIN pg_stat_activity a ON a.pid = w.blocker "
                "WHERE w.waited >= %s AND a.pid <> pg_backend_pid() ORDER BY w.waited DESC")
    elif check in _AGE:
        text = (f"SELECT {cols.format(age=_AGE[check])} FROM pg_stat_activity a "
                f"WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND {_WHERE[check]} "
                f"AND {_AGE[check]} >= %s ORDER BY 9 DESC")
    else:
        raise ValueError(f"no sessions to end for check {check}")
    with _conn(params) as conn:
        rows = conn.execute(text, (older_than_s,)).fetchall()
    return [Session(node, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], float(r[8]), r[9]) for r in rows]


def terminate(params: dict, s: Session) -> bool:
    """End session ``s`` if it is still the same session in the same transaction and not pgops's own
    (checked in the same statement that ends it, so a reused pid or a new transaction is never ended).
    True when it was ended; False when it had already gone or moved on."""
    with _conn(params) as conn:
        row = conn.execute(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity WHERE pid = %s AND backend_start = %s "
            "AND xact_start IS NOT DISTINCT FROM %s AND coalesce(application_name, '') NOT LIKE %s",
            (TERMINATE_WAIT_MS, s.pid, s.backend_start, s.xact_start, PGOPS_PREFIX + "%")).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class Slot:
    """A replication slot on the primary; ``retained_bytes`` the WAL it keeps behind the current position."""

    name: str
    kind: str
    database: str | None
    active: bool
    active_pid: int | None
    wal_status: str
    retained_bytes: int


def slots(params: dict) -> dict[str, Slot]:
    """Every replication slot on the server, by name."""
    with _conn(params) as conn:
        rows = conn.execute(
            "SELECT slot_name, slot_type, database, active, active_pid, coalesce(wal_status, ''), "
            "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint FROM pg_replication_slots "
            "ORDER BY slot_name").fetchall()
    return {r[0]: Slot(*r) for r in rows}


def drop_slot(params: dict, slot: Slot) -> None:
    """Drop ``slot`` (a logical one from its own database, as PostgreSQL requires). PostgreSQL itself
    refuses an active slot, so a consumer that came back between the plan and this step is safe."""
    import psycopg
    try:
        with _conn(params, slot.database or "postgres") as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot.name,))
    except psycopg.Error as exc:
        raise RemedyError(slot.name, f"Replication slot '{slot.name}' was not dropped: {str(exc).strip()}.",
                          "run `invoke health --format json` to see whether its consumer is back.") from None


@dataclass(frozen=True)
class InvalidIndex:
    """An index PostgreSQL marks INVALID (``pg_index.indisvalid`` false) in ``database``."""

    database: str
    schema: str
    name: str
    table: str
    definition: str
    building: bool  # a CREATE INDEX CONCURRENTLY still running on it (its session is in pg_stat_progress_create_index)


def invalid_indexes(params: dict, database: str) -> list[InvalidIndex]:
    """The INVALID indexes of one database, whether a build is still running on each."""
    with _conn(params, database) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid), "
            "EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT i.indisvalid ORDER BY 1, 2").fetchall()
    return [InvalidIndex(database, *r) for r in rows]


def still_invalid(params: dict, ix: InvalidIndex) -> str | None:
    """A refusal reason unless ``ix`` still exists, is still INVALID and no build runs on it."""
    now = {(i.schema, i.name): i for i in invalid_indexes(params, ix.database)}
    cur = now.get((ix.schema, ix.name))
    if cur is None:
        return f"{ix.schema}.{ix.name} is no longer INVALID (rebuilt or dropped meanwhile)"
    if cur.building:
        return f"a CREATE INDEX CONCURRENTLY is still building {ix.schema}.{ix.name}"
    return None


def reindex(params: dict, ix: InvalidIndex) -> None:
    """``REINDEX INDEX CONCURRENTLY`` of ``ix``: a new index is built beside it without blocking writes,
    then swapped in. Raises :class:`RemedyError` with PostgreSQL's reason (a duplicate key for a unique
    index, a lock timeout) and the index's definition."""
    import psycopg
    from psycopg import sql
    try:
        with _conn(params, ix.database, "reindex") as conn:
            conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(ix.schema, ix.name)))
    except psycopg.Error as exc:
        raise RemedyError(f"{ix.schema}.{ix.name}",
                          f"REINDEX INDEX CONCURRENTLY {ix.schema}.{ix.name} in database '{ix.database}' failed: "
                          f"{str(exc).strip()}. The index stays INVALID ({ix.definition}).",
                          f"fix the cause (for a unique index: the duplicate rows), then run "
                          f"`invoke db.reindex-invalid --db {ix.database} --yes`.") from None
