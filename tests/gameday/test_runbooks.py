"""One game day per runbook that answers a local fault: inject it for real, see `invoke health` call the
runbook's check critical, run the runbook's own fenced commands, see the check ok again and every row
still there.

RDS-only runbooks (rds-*.md) cannot be faulted locally; `invoke runbook.check` validates their
commands (tests/unit/test_runbooks.py).
"""
from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest

from ops.dsn import connect
from ops.pgtools import pg_bindir, run_server_cmd

from .conftest import check, follow, wait_until

pytestmark = pytest.mark.gameday
SECONDS = {"warn": "1s", "crit": "2s"}


def quick(*ids: str) -> dict:
    """Thresholds of a second or two for ``ids`` (health --set / $PGOPS_THRESHOLDS)."""
    return {f"{i}.{level}": v for i in ids for level, v in SECONDS.items()}


def _swallow(fn):
    def run():
        try:
            fn()
        except psycopg.Error:  # the session was ended by the runbook's fix: that is the point
            pass
    return run


def test_long_transaction_and_the_queries_blocked_behind_it(gs):
    before = gs.row_counts("syncscript")
    user_id = gs.query("syncscript", "SELECT id FROM users ORDER BY id LIMIT 1")[0][0]
    holder = connect(gs.params, dbname="syncscript", autocommit=True, application_name="billing-worker")
    holder_pid = holder.info.backend_pid

    def hold():  # a transaction that took a row lock and then runs for ten minutes
        holder.execute("BEGIN")
        holder.execute("UPDATE users SET name = name WHERE id = %s", (user_id,))
        holder.execute("SELECT pg_sleep(600)")
    writer_done = []

    def write():  # an ordinary write queued behind the holder's row lock
        gs.query("syncscript", "UPDATE users SET name = 'renamed by the app' WHERE id = %s", (user_id,))
        writer_done.append(True)
    threads = [threading.Thread(target=_swallow(hold), daemon=True), threading.Thread(target=write, daemon=True)]
    threads[0].start()
    wait_until(lambda: gs.query("syncscript", "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE "
                                "'SELECT pg_sleep%%'", (holder_pid,))[0][0] == 1, what="the holder to sleep")
    threads[1].start()
    limits = quick("long_transaction", "blocked_queries")
    wait_until(lambda: check(gs.health(limits), "blocked_queries", "pg1")["status"] == "critical",
               what="the writer to wait past the threshold")
    doc = gs.health(limits)
    assert check(doc, "long_transaction", "pg1")["status"] == "critical"
    assert f"pid {holder_pid}" in check(doc, "long_transaction", "pg1")["detail"]
    assert f"waits on pid(s) {holder_pid}" in check(doc, "blocked_queries", "pg1")["detail"]

    out = follow(gs, "long-transaction.md", (1, 2, 3, 4), thresholds=limits)
    assert any(f"end pid {holder_pid} on pg1" in r.stdout and "billing-worker" in r.stdout for r in out)
    for t in threads:
        t.join(30)
    after = gs.health(limits)
    assert check(after, "long_transaction", "pg1")["status"] == "ok"
    assert check(after, "blocked_queries", "pg1")["status"] == "ok"
    assert writer_done and gs.row_counts("syncscript") == before  # the queued write went through; nothing lost
    assert gs.query("syncscript", "SELECT name FROM users WHERE id = %s", (user_id,)) == [("renamed by the app",)]
    holder.close()


def test_idle_in_transaction(gs):
    before = gs.row_counts("syncscript")
    leaked = connect(gs.params, dbname="syncscript", application_name="leaky-pool")
    leaked.execute("SELECT count(*) FROM users")  # BEGIN, a read, then silence: idle in transaction
    pid = leaked.info.backend_pid
    limits = quick("idle_in_transaction")
    wait_until(lambda: check(gs.health(limits), "idle_in_transaction", "pg1")["status"] == "critical",
               what="the session to sit idle past the threshold")
    assert f"pid {pid} (postgres on syncscript)" in check(gs.health(limits), "idle_in_transaction", "pg1")["detail"]

    out = follow(gs, "idle-in-transaction.md", (1, 2, 3, 4), thresholds=limits)
    assert any(f"pid {pid} on pg1: ended" in r.stdout for r in out)
    assert check(gs.health(limits), "idle_in_transaction", "pg1")["status"] == "ok"
    with pytest.raises(psycopg.OperationalError):
        leaked.execute("SELECT 1")
    assert gs.row_counts("syncscript") == before


def test_a_replica_stopped(gs):
    replica = gs.stack.layout.replica_nodes[0]
    run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(replica.data_dir), "-m", "fast", "-w", "stop"],
                   what="stopping the replica")
    gs.query("syncscript", "CREATE TABLE written_while_down AS SELECT g FROM generate_series(1, 500) g")
    before = gs.row_counts("syncscript")
    doc = gs.health()
    assert check(doc, "node_down", "pg2")["status"] == "critical"
    lag = check(doc, "replica_lag", "pg2")
    assert lag["status"] == "unknown" and "does not answer" in lag["detail"]  # a stopped replica cannot be measured

    follow(gs, "local-stack-down.md", (1, 2, 3))
    follow(gs, "replica-lag.md", (1, 2, 3, 5))
    wait_until(lambda: check(gs.health(), "replica_lag", "pg2")["value2"] == 0, what="the replica to catch up")
    after = gs.health()
    assert check(after, "node_down", "pg2")["status"] == "ok" and check(after, "replica_lag", "pg2")["status"] == "ok"
    replica_params = {**gs.params, "port": replica.port}
    from tests.integration.conftest import query
    assert query(replica_params, "syncscript", "SELECT count(*) FROM written_while_down") == [(500,)]
    assert gs.row_counts("syncscript") == before


def test_an_inactive_slot_keeping_wal(gs):
    gs.query("postgres", "SELECT pg_create_physical_replication_slot('reporting_replica', true)")
    gs.query("syncscript", "CREATE TABLE wal_filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
    gs.query("postgres", "SELECT pg_switch_wal()")
    before = gs.row_counts("syncscript")
    limits = {"replication_slot_retained_wal.warn": "64kB", "replication_slot_retained_wal.crit": "1MB"}
    slot = check(gs.health(limits), "replication_slot_retained_wal", "pg1")
    assert slot["status"] == "critical" and slot["value"] >= 2**20
    name = re.search(r"inactive slot (\S+)", slot["detail"]).group(1)  # what the responder reads off the alert
    assert name == "reporting_replica"

    follow(gs, "replication-slot-retained-wal.md", (1, 3, 4), values={"<slot>": name})
    assert check(gs.health(limits), "replication_slot_retained_wal", "pg1")["status"] == "ok"
    assert gs.query("postgres", "SELECT slot_name, active FROM pg_replication_slots") == [("pgops_pg2", True)]  # the stack's own replica's slot stays
    assert gs.row_counts("syncscript") == before


def test_an_invalid_index_from_a_failed_concurrent_build(gs):
    before = gs.row_counts("syncscript")
    with connect(gs.params, dbname="syncscript") as writer:  # an open write makes the build wait ...
        writer.execute("UPDATE users SET name = name WHERE false")
        with connect(gs.params, dbname="syncscript", autocommit=True) as build:
            build.execute("SET statement_timeout = '1s'")
            with pytest.raises(psycopg.errors.QueryCanceled):  # ... past its statement_timeout: the build fails
                build.execute("CREATE INDEX CONCURRENTLY users_name_idx ON users (name)")
        writer.rollback()
    assert gs.query("syncscript", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_name_idx'::regclass") == [(False,)]
    idx = check(gs.health(), "invalid_indexes", "primary/syncscript")
    assert idx["status"] == "critical" and "users_name_idx" in idx["detail"]

    follow(gs, "invalid-index.md", (1, 3, 4))
    assert check(gs.health(), "invalid_indexes", "primary/syncscript")["status"] == "ok"
    assert gs.query("syncscript", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_name_idx'::regclass") == [(True,)]
    assert gs.row_counts("syncscript") == before


def test_a_dropped_table_comes_back_and_the_responders_path_is_timed(gs):
    gs.run("backup.create", "--db", "syncscript")
    before = gs.row_counts("syncscript")
    fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.users'::regclass"
    incoming = gs.query("syncscript", fks)[0][0]
    assert incoming > 5
    gs.query("syncscript", "DROP TABLE users CASCADE")  # the mistake
    assert gs.query("syncscript", "SELECT to_regclass('public.users')") == [(None,)]

    started = time.monotonic()  # the alert: from here the responder follows the runbook
    out = follow(gs, "table-dropped-or-rows-deleted.md", (1, 2, 5),
                 values={"<database>": "syncscript", "<schema.table>": "public.users"})
    seconds = time.monotonic() - started
    print(f"\ngame day: table dropped -> table back in {seconds:.1f} s ({before['public.users']} users)")
    assert f"holds {before['public.users']:,} rows (the manifest counted {before['public.users']:,})" in \
        "".join(r.stdout for r in out)
    assert gs.row_counts("syncscript") == before and gs.query("syncscript", fks)[0][0] == incoming


def test_a_stale_backup(gs):
    gs.run("backup.create")
    stale = {c["node"]: c for c in gs.health()["checks"] if c["id"] == "backup_age"}
    time.sleep(1.5)
    doc = gs.health({"backup_age.warn": "1s", "backup_age.crit": "1s"})
    for db in ("syncscript", "describeit"):
        assert check(doc, "backup_age", db)["status"] == "critical"
    before = gs.row_counts("syncscript")

    follow(gs, "backup-stale-or-failed.md", (1, 2, 3, 4))
    after = gs.health()
    for db in ("syncscript", "describeit"):
        fresh = check(after, "backup_age", db)
        assert fresh["status"] == "ok" and fresh["detail"] != stale[db]["detail"]  # a newer backup is the newest
        assert check(after, "drill_age", db)["status"] == "ok"  # and it was drilled
    assert gs.row_counts("syncscript") == before


def test_a_failed_restore_drill(gs):
    gs.run("backup.create")
    dumps = sorted((gs.stack.layout.state_dir / "repository").rglob("dump.pgdump"))
    assert dumps, list((gs.stack.layout.state_dir / "repository").rglob("*"))
    for dump in dumps:  # the objects change after they were written (bit rot, a bad copy)
        with dump.open("r+b") as f:
            f.seek(100)
            f.write(b"\0rot\0")
    failed = gs.run("drill.run", ok=False)
    assert failed.returncode == 8, failed.stdout + failed.stderr
    doc = gs.health({"drill_age.warn": "1h", "drill_age.crit": "2h"})
    for db in ("syncscript", "describeit"):
        assert check(doc, "drill_age", db)["status"] == "critical"
    before = gs.row_counts("syncscript")

    out = follow(gs, "restore-drill-failed.md", (1, 3, 4, 5))
    assert "checksum matches manifest" in out[0].stdout  # the history names the failed check
    after = gs.health({"drill_age.warn": "1h", "drill_age.crit": "2h"})
    for db in ("syncscript", "describeit"):
        assert check(after, "drill_age", db)["status"] == "ok"
    assert gs.row_counts("syncscript") == before


def test_a_migration_refused_by_a_leaked_transaction(gs):
    gs.run("db.rollback", "--db", "syncscript", "--steps", "1", "--no-backup", "--yes")  # 006 is pending again
    before = gs.row_counts("syncscript")
    leaked = connect(gs.params, dbname="syncscript", application_name="report-job")
    leaked.execute("SELECT count(*) FROM users")  # idle in transaction past the preflight's 5 s grace
    time.sleep(5.5)
    failed = gs.run("db.migrate", "--preflight", "refuse", ok=False)
    assert failed.returncode == 5 and "preflight found 1 session(s)" in failed.stderr, failed.stderr
    assert "invoke db.terminate --check" in failed.stderr  # the message names the next command

    limits = quick("long_transaction", "idle_in_transaction")
    follow(gs, "migration-failed.md", (1, 7, 8), thresholds=limits)
    status = gs.run("db.status", "--db", "syncscript", "--json").stdout
    import json
    doc = json.loads(status)["syncscript"]
    assert doc["current"] == 6 and doc["pending"] == []
    assert {k: v for k, v in gs.row_counts("syncscript").items() if k in before} == before
    leaked.close()


def test_the_primary_lost(gs):
    """Writes acknowledged through the pooler, then kill -9 of the primary's postmaster; the runbook's
    promote, rejoin and check steps as written. Every write acknowledged before the kill that the
    replica had replayed — all of them, after the sync below — is on the new primary, writes go on
    through the pooler, and the old primary comes back as a streaming replica."""
    import os
    import signal

    from ops.local.cluster import node_pid, open_stack

    gs.query("syncscript", "CREATE TABLE acked (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    pooler = {**gs.stack.pooler_conninfo(), "prepare_threshold": None}
    with connect(pooler, dbname="syncscript", autocommit=True) as conn:
        acked = [conn.execute("INSERT INTO acked DEFAULT VALUES RETURNING id").fetchone()[0] for _ in range(200)]
    assert gs.stack.wait_replicas_caught_up() == []  # what the replica has replayed is what a promote keeps
    before = gs.row_counts("syncscript")
    old = gs.stack.layout.primary
    os.kill(node_pid(old), signal.SIGKILL)
    wait_until(lambda: node_pid(old) is None, what="the primary to die")
    doc = gs.health()
    assert check(doc, "node_down", old.name)["status"] == "critical"

    follow(gs, "primary-lost.md", (1, 3, 4, 5))
    stack = open_stack(gs.stack.layout.state_dir)
    new = stack.layout.primary
    assert new.name != old.name and old.name in [n.name for n in stack.layout.replica_nodes]
    params = {**gs.params, "port": new.port}
    from tests.integration.conftest import query
    assert {r[0] for r in query(params, "syncscript", "SELECT id FROM acked")} >= set(acked)
    with connect(pooler, dbname="syncscript", autocommit=True) as conn:  # writes go on, no key collision
        conn.execute("INSERT INTO acked DEFAULT VALUES")
    after = gs.health()
    assert all(c["status"] == "ok" for c in after["checks"] if c["id"] in ("node_down", "replica_lag")), after
    for table, rows in before.items():  # no table lost rows (acked grew by the insert above)
        assert query(params, "syncscript", f"SELECT count(*) FROM {table}")[0][0] >= rows, table
