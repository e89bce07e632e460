"""Blue/green switchover guardrails as SQL on the server that is primary now ("blue"): what AWS checks
before an RDS switchover (AWS RDS User Guide, "Switching a blue/green deployment: switchover
guardrails") and what logical replication does not carry (User Guide, "Limitations for blue/green
deployments — RDS for PostgreSQL ... logical replication"; PostgreSQL docs "Logical Replication:
Restrictions"). Each guard is ``{"name", "passed", "detail"}``; the details name every object.
"""
from __future__ import annotations

from ..dsn import connect, tool_application_name
from ..errors import OpsError

#: A transaction open at least this long on blue refuses the switchover (guardrail "long-running
#: active writes or DDL"; AWS publishes no number, so this is pgops's).
LONG_TRANSACTION_S = 60.0
#: Replication lag (bytes behind blue's current WAL position) that refuses the switchover: one WAL segment.
MAX_LAG_BYTES = 16 * 1024 * 1024

_BLOCKERS = """
SELECT format('%I.%I', n.nspname, c.relname), c.relpersistence
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
  AND (c.relpersistence = 'u' OR (c.relpersistence = 'p' AND (c.relreplident = 'n'
       OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
       OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                                AND i.indisreplident)))))
ORDER BY 1"""


def replication_blockers(conn) -> tuple[list[str], list[str], int]:
    """What logical replication would silently not carry in the database ``conn`` is connected to
    (PostgreSQL docs, "Logical Replication: Restrictions" and "Replica Identity"): tables (``schema.table``)
    whose UPDATE/DELETE cannot be replicated — no primary key under REPLICA IDENTITY DEFAULT, NOTHING, or
    USING INDEX of a dropped index —, unlogged tables, and the number of large objects. Tables an
    extension owns are its own business and left out. Used by both cutover engines."""
    rels = conn.execute(_BLOCKERS).fetchall()
    large = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
    return [r for r, p in rels if p == "p"], [r for r, p in rels if p == "u"], int(large)


def names(rows: list[str], limit: int = 10) -> str:
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(rows[:limit]) + more


def guard(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "detail": detail}


def blue_guards(conninfo: dict, *, long_transaction_s: float = LONG_TRANSACTION_S,
                max_lag_bytes: int = MAX_LAG_BYTES) -> list[dict]:
    """AWS's switchover guardrails, as SQL on blue: one ``{"name", "passed", "detail"}`` per guard.

    ``conninfo``: libpq parameters of blue (``dbname`` optional, default ``postgres``);
    ``long_transaction_s``: seconds a client transaction may have been open; ``max_lag_bytes``: bytes
    a streaming replica or logical slot may be behind ``pg_current_wal_lsn()``. Every database that
    accepts connections is inspected (``rdsadmin`` excepted). Never raises for a database problem:
    a server that cannot be reached gives a failed ``blue_reachable`` guard.
    """
    app = tool_application_name("cutover guards")
    home = conninfo.get("dbname") or "postgres"
    try:
        conn = connect(conninfo, dbname=home, autocommit=True, application_name=app, connect_timeout=5)
    except OpsError as exc:
        return [guard("blue_reachable", False, exc.message)]
    guards = [guard("blue_reachable", True, "blue answers")]
    with conn:
        conn.execute("SET statement_timeout = 10000")
        long = conn.execute(
            "SELECT pid, coalesce(usename, ''), coalesce(datname, ''), state, "
            "extract(epoch FROM now() - xact_start)::float8 FROM pg_stat_activity "
            "WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND now() - xact_start >= make_interval(secs => %s) ORDER BY xact_start",
            (float(long_transaction_s),)).fetchall()
        guards.append(guard(
            "long_transactions", not long,
            names([f"pid {p} ({u} on {d}, {s}, open {a:.0f} s)" for p, u, d, s, a in long]) if long
            else f"no client transaction open {long_transaction_s:g} s or longer"))
        lag = conn.execute(
            "SELECT 'replica ' || coalesce(nullif(application_name, ''), client_addr::text, pid::text), "
            "state, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint "
            "FROM pg_stat_replication UNION ALL "
            "SELECT 'slot ' || slot_name, CASE WHEN active THEN 'active' ELSE 'inactive' END, "
            "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint "
            "FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY 1").fetchall()
        behind = [f"{n} {s}, {b} bytes behind" for n, s, b in lag
                  if b > max_lag_bytes or s not in ("streaming", "active")]
        guards.append(guard(
            "replication_lag", not behind,
            names(behind) if behind else (f"{len(lag)} replica(s)/logical slot(s), each within {max_lag_bytes} bytes"
                                           if lag else "no replica streaming from blue and no logical slot")))
        databases = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'rdsadmin' "
            "ORDER BY datname").fetchall()]
    no_key, unlogged, large, unreachable = [], [], [], []
    for db in databases:
        try:
            c = connect(conninfo, dbname=db, autocommit=True, application_name=app, connect_timeout=5)
        except OpsError as exc:
            unreachable.append(f"{db}: {exc.message}")
            continue
        with c:
            c.execute("SET statement_timeout = 10000")
            keyless, unlogged_here, n = replication_blockers(c)
            no_key += [f"{db}.{t}" for t in keyless]
            unlogged += [f"{db}.{t}" for t in unlogged_here]
            if n:
                large.append(f"{db}: {n} large object(s)")
    if unreachable:
        guards.append(guard("databases_reachable", False, names(unreachable)))
    guards.append(guard("primary_keys", not no_key,
                         f"tables whose UPDATE/DELETE cannot be replicated (no primary key, REPLICA IDENTITY "
                         f"DEFAULT without one, or NOTHING): {names(no_key)}"
                         if no_key else f"every table in {len(databases)} database(s) has a primary key or replica identity"))
    guards.append(guard("unlogged_tables", not unlogged,
                         f"unlogged tables (not replicated): {names(unlogged)}" if unlogged else "no unlogged table"))
    guards.append(guard("large_objects", not large,
                         f"large objects (not replicated): {names(large)}" if large else "no large object"))
    return guards
