"""Measure the health checks on every node of a target (I/O edge of :mod:`ops.health.checks`).

Each query is one round trip on a short-lived autocommit connection with a statement timeout, so a
probe never waits on the locks it reports. Sources: PostgreSQL's monitoring views
(``pg_stat_activity``, ``pg_stat_replication``, ``pg_replication_slots``, ``pg_index``,
``pg_blocking_pids``), check_postgres's queries for the same actions.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Callable

import psycopg

from ..dsn import connect, tool_application_name
from ..errors import OpsError
from .checks import Measurement

PROBE_TIMEOUT_MS = 5000


def _conn(params: dict, dbname: str = "postgres"):
    c = connect(params, dbname=dbname, autocommit=True, connect_timeout=5,
                application_name=tool_application_name("health"))
    c.execute(f"SET statement_timeout = {PROBE_TIMEOUT_MS}")
    return c


def server_checks(node: str, role: str, params: dict) -> list[Measurement]:
    """Every per-server check of one node. A node that does not answer gives ``node_down`` only."""
    try:
        conn = _conn(params)
    except OpsError as exc:
        return [Measurement("node_down", node, None, exc.message, failed=True, role=role)]
    out = [Measurement("node_down", node, 0, "answers", failed=False, role=role)]
    with conn:
        used, limit = conn.execute(
            "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
            "current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int "
            "FROM pg_stat_activity").fetchone()
        out.append(Measurement("connections", node, used / max(limit, 1), f"{used} of {limit} usable connections"))
        row = conn.execute(
            "SELECT pid, extract(epoch FROM now() - xact_start), xact_start, left(query, 60) FROM pg_stat_activity "
            "WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND state <> 'idle' ORDER BY xact_start LIMIT 1").fetchone()
        out.append(Measurement("long_transaction", node, float(row[1]) if row else 0.0,
                               f"pid {row[0]}, transaction started {row[2]:%Y-%m-%dT%H:%M:%SZ}: {row[3]}" if row else ""))
        row = conn.execute(
            "SELECT pid, extract(epoch FROM now() - state_change), usename, datname FROM pg_stat_activity "
            "WHERE state LIKE 'idle in transaction%' ORDER BY state_change LIMIT 1").fetchone()
        out.append(Measurement("idle_in_transaction", node, float(row[1]) if row else 0.0,
                               f"pid {row[0]} ({row[2]} on {row[3]})" if row else ""))
        row = conn.execute(
            "SELECT pid, extract(epoch FROM now() - query_start), pg_blocking_pids(pid), left(query, 60) "
            "FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0 ORDER BY query_start LIMIT 1").fetchone()
        out.append(Measurement("blocked_queries", node, float(row[1]) if row else 0.0,
                               f"pid {row[0]} waits on pid(s) {', '.join(map(str, row[2]))}: {row[3]}" if row else ""))
        xid, mxid, db = conn.execute(
            "SELECT age(datfrozenxid), mxid_age(datminmxid), datname FROM pg_database "
            "ORDER BY greatest(age(datfrozenxid), mxid_age(datminmxid)) DESC LIMIT 1").fetchone()
        out.append(Measurement("xid_wraparound", node, float(max(xid, mxid)),
                               f"database {db}: xid age {xid:,}, multixact age {mxid:,}"))
        if role == "primary":
            slots = conn.execute(
                "SELECT slot_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
                "coalesce(wal_status, '') FROM pg_replication_slots WHERE NOT active "
                "ORDER BY 2 DESC").fetchall()
            if slots:
                name, retained, wal_status = slots[0]
                forced = "critical" if any(s[2] in ("lost", "unreserved") for s in slots) else None
                out.append(Measurement("replication_slot_retained_wal", node, float(retained),
                                       f"inactive slot {name} (wal_status {wal_status or 'n/a'})", forced=forced))
            else:
                out.append(Measurement("replication_slot_retained_wal", node, 0.0, "no inactive slot"))
    return out


def replica_lag(primary: dict, replicas: list[tuple[str, dict]]) -> list[Measurement]:
    """Replay lag of each replica: seconds since its last replayed transaction (while the primary has
    WAL it has not replayed) and bytes behind the primary's current WAL position."""
    out = []
    try:
        with _conn(primary) as conn:
            current = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    except OpsError:
        return [Measurement("replica_lag", name, None, "the primary does not answer") for name, _ in replicas]
    for name, params in replicas:
        try:
            with _conn(params) as conn:
                behind, secs = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint, "
                    "CASE WHEN pg_last_wal_replay_lsn() >= %s::pg_lsn THEN 0 "
                    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END",
                    (current, current)).fetchone()
        except OpsError:
            out.append(Measurement("replica_lag", name, None, "the replica does not answer"))
            continue
        out.append(Measurement("replica_lag", name, float(secs or 0), f"{max(behind or 0, 0):,} bytes behind",
                               value2=float(max(behind or 0, 0))))
    return out


def invalid_indexes(primary: dict, databases: list[str]) -> list[Measurement]:
    """Indexes left INVALID (a failed CREATE INDEX CONCURRENTLY), counted per database."""
    out = []
    for db in databases:
        try:
            with _conn(primary, db) as conn:
                names = [r[0] for r in conn.execute(
                    "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1")]
        except OpsError as exc:
            out.append(Measurement("invalid_indexes", f"primary/{db}", None, exc.message))
            continue
        out.append(Measurement("invalid_indexes", f"primary/{db}", float(len(names)), ", ".join(names)))
    return out


def disk_usage(paths: dict[str, str]) -> list[Measurement]:
    """Used fraction of the file system under each node's data directory (``statvfs``)."""
    out = []
    for node, path in paths.items():
        try:
            st = os.statvfs(path)
        except OSError as exc:
            out.append(Measurement("disk_usage", node, None, f"{path}: {exc.strerror}"))
            continue
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        out.append(Measurement("disk_usage", node, 1 - free / total if total else None,
                               f"{path}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"))
    return out


def database_created(primary: dict, databases: list[str]) -> dict[str, datetime]:
    """When each of ``databases`` came under management (UTC): the modification time of its
    ``base/<oid>/PG_VERSION`` (written once, by CREATE DATABASE) where the role may call
    ``pg_stat_file``, else the first entry of its migration ledger. Databases with neither, or that
    do not answer, are left out (their freshness is then judged from backups alone)."""
    out: dict[str, datetime] = {}
    for db in databases:
        try:
            with _conn(primary, db) as conn:
                try:
                    row = conn.execute("SELECT (pg_stat_file('base/' || oid || '/PG_VERSION')).modification "
                                       "FROM pg_database WHERE datname = current_database()").fetchone()
                except psycopg.Error:  # not allowed (RDS): the ledger's first entry instead
                    row = None
                if (row is None or row[0] is None) and \
                        conn.execute("SELECT to_regclass('pgops.migrations')").fetchone()[0] is not None:
                    row = conn.execute("SELECT min(applied_at) FROM pgops.migrations").fetchone()
        except (OpsError, psycopg.Error):
            continue
        if row is not None and row[0] is not None:
            out[db] = row[0].astimezone(timezone.utc)
    return out


def repository_ages(repo, databases: list[str], now: datetime,
                    drill_reports: Callable, list_backups: Callable,
                    created: dict[str, datetime] | None = None) -> list[Measurement]:
    """``backup_age`` and ``drill_age`` per database from the repository.

    Freshness is measured from the later of the database's creation (``created``: name → UTC
    datetime, see :func:`database_created`) and its newest backup / passed drill: a database younger
    than the threshold has not missed one (issue 19 §1). A database with neither a known creation
    time nor a backup is critical. A backup dated in the future beyond the clock-skew tolerance
    (:func:`ops.retention.clock_skew`, the rule prune and drills apply) never counts as the newest:
    ``backup_age`` is then critical, naming it, with the age of the newest trustworthy backup as
    its value (a skewed backup would otherwise hide every missed backup after it)."""
    from ..retention import skew_problem, split_skewed
    created = created or {}
    out = []
    for db in databases:
        born = created.get(db)
        young = f"; {db} was created {born:%Y-%m-%d %H:%M}Z" if born else ""
        backups, skewed = split_skewed(list_backups(repo, db), now)
        if skewed:
            trusted = (f"newest trustworthy backup {backups[0].id}" if backups else "no trustworthy backup")
            out.append(Measurement("backup_age", db, (now - backups[0].created).total_seconds() if backups else None,
                                   f"clock skew: backup {skewed[0].id} {skew_problem(skewed[0].created, now)}"
                                   f"{f' (and {len(skewed) - 1} more)' if len(skewed) > 1 else ''}; {trusted}",
                                   forced="critical"))
        elif backups and (born is None or backups[0].created >= born):
            age = (now - backups[0].created).total_seconds()
            out.append(Measurement("backup_age", db, age, f"newest backup {backups[0].id}"))
        elif born is not None:
            out.append(Measurement("backup_age", db, max((now - born).total_seconds(), 0.0),
                                   f"no backup of {db} since it was created {born:%Y-%m-%d %H:%M}Z"))
        else:
            out.append(Measurement("backup_age", db, None, f"no backup of {db} in {repo.url}", forced="critical"))
        reports = drill_reports(repo, db)
        passed = [d for d in reports if d.get("passed") is True]
        started = datetime.fromisoformat(passed[0]["started_at"]) if passed else None
        if started is not None and (born is None or started >= born):
            out.append(Measurement("drill_age", db, (now - started).total_seconds(),
                                   f"newest passed drill of {passed[0].get('backup_id')}"))
        elif any(d.get("passed") is False for d in reports):  # drills ran, none passed
            out.append(Measurement("drill_age", db, None, f"no passed restore drill of {db}: its drills failed",
                                   forced="critical"))
        elif born is not None:
            out.append(Measurement("drill_age", db, max((now - born).total_seconds(), 0.0),
                                   f"no passed restore drill of {db} yet{young}"))
        else:
            out.append(Measurement("drill_age", db, None, f"no passed restore drill of {db}", forced="critical"))
    return out


def pooler(name: str, params: dict) -> Measurement:
    """The pooler passes a query to the primary within a few seconds (a PAUSEd pooler holds it:
    failed, never a hang; :func:`ops.local.cluster.pooler_problem`)."""
    from ..local.cluster import pooler_problem
    problem = pooler_problem({**params, "dbname": params.get("dbname") or "postgres"})
    if problem is None:
        return Measurement("pooler", name, 0, f"port {params.get('port')}", failed=False)
    return Measurement("pooler", name, None, problem[1], failed=True)


def measure_all(nodes: list[tuple[str, str, dict]], *, databases: list[str], data_dirs: dict[str, str],
                pooler_params: dict | None, repo, now: datetime, drill_reports: Callable,
                list_backups: Callable, platform: Callable[[], list[Measurement]] | None = None) -> list[Measurement]:
    """Every check of a target. ``nodes``: (name, role, libpq params without dbname), primary first;
    ``data_dirs``: node name → data directory (local nodes; empty elsewhere); ``pooler_params``: the
    pooler's parameters when one runs; ``repo``: the backup repository (None: no backup checks);
    ``platform``: the measurements only the platform has (CloudWatch on an AWS stack)."""
    out: list[Measurement] = []
    for name, role, params in nodes:
        out += server_checks(name, role, params)
    primary = nodes[0][2]
    primary_up = next(m for m in out if m.id == "node_down" and m.node == nodes[0][0]).failed is False
    out += replica_lag(primary, [(n, p) for n, r, p in nodes if r == "replica"]) if primary_up else \
        [Measurement("replica_lag", n, None, "the primary does not answer") for n, r, _ in nodes if r == "replica"]
    if primary_up:
        out += invalid_indexes(primary, databases)
        out += partition_checks(primary, databases, now)
    out += disk_usage(data_dirs)
    if platform is not None:
        out += platform()
    if pooler_params is not None:  # PgBouncer holds a query while the primary is down: do not probe then
        out.append(pooler("pooler", pooler_params) if primary_up else
                   Measurement("pooler", "pooler", None, "not probed: the primary does not answer"))
    if repo is not None:
        created = database_created(primary, databases) if primary_up else {}
        out += repository_ages(repo, databases, now, drill_reports, list_backups, created)
    return out


def partition_checks(primary: dict, databases: list[str], now: datetime) -> list[Measurement]:
    """``partitions_ahead`` (whole months covered after the current one) and ``partition_default_rows``
    for every table with a ``pgops:partitions`` policy (:mod:`ops.partitions`)."""
    from ..partitions.maintain import read_states
    from ..partitions.plan import months_ahead
    out = []
    for db in databases:
        try:
            with _conn(primary, db) as conn:
                conn.execute("SET TimeZone = 'UTC'")
                states = read_states(conn)
        except OpsError as exc:
            out.append(Measurement("partitions_ahead", f"primary/{db}", None, exc.message))
            continue
        for s in states:
            node = f"primary/{db}/{s.table}"
            out.append(Measurement("partitions_ahead", node, float(months_ahead(s.partitions, now)),
                                   f"premake {s.policy.premake}; `invoke db.partitions --db {db} --apply`"))
            rows = sum(s.default_rows.values())
            out.append(Measurement("partition_default_rows", node, float(rows),
                                   f"{s.default_name}: months {', '.join(f'{m:%Y-%m}' for m in sorted(s.default_rows))}"
                                   if rows else (f"{s.default_name} empty" if s.default_name else "no default partition")))
    return out
