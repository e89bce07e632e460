"""The migration engine against real PostgreSQL: concurrency, locks, failure paths, drift."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from ops.dsn import connect
from ops.errors import (ChecksumDrift, DirtyDatabase, LockHeld, MigrationFailed, OutOfOrder, PreflightRefused,
                        RollbackRefused)
from ops.migrations import runner
from ops.migrations.locking import LOCK_KEY
from ops.migrations.runner import RunOptions

from .conftest import query

T = {"001_items": {"up.sql": "CREATE TABLE items (id int PRIMARY KEY, name text);\n",
                   "down.sql": "DROP TABLE items;\n",
                   "verify.sql": "SELECT 'items exists' AS \"check\", to_regclass('items') IS NOT NULL AS passed, '' AS detail;\n"}}


def ledger(params, dbname):
    return query(params, dbname, "SELECT version, checksum FROM pgops.migrations ORDER BY version")


def test_two_concurrent_runners_apply_each_migration_once(target, params, dbname):
    t = target({**T, "002_slow": {"up.sql": "SELECT pg_sleep(1.5);\nINSERT INTO items VALUES (1, 'once');\n"}})
    results, errors = [], []

    def run():
        try:
            results.append(runner.migrate(t, opts=RunOptions(lock_wait_s=30)))
        except Exception as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(len(r.applied) for r in results) == [0, 2]
    assert query(params, dbname, "SELECT count(*) FROM items") == [(1,)]
    assert [v for v, _ in ledger(params, dbname)] == [1, 2]
    ups = query(params, dbname, "SELECT count(*) FROM pgops.migration_events WHERE event = 'up'")
    assert ups == [(2,)]


def test_second_runner_gives_up_naming_the_holder(target, params, dbname):
    t = target(T)
    with connect(params, dbname=dbname, autocommit=True, application_name="someone-else") as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
        with pytest.raises(LockHeld) as info:
            runner.migrate(t, opts=RunOptions(lock_wait_s=0.6))
        assert info.value.holder["pid"] == holder.info.backend_pid
        assert info.value.holder["application_name"] == "someone-else"
        assert "someone-else" in str(info.value) and "--lock-wait" in str(info.value)
    assert query(params, dbname, "SELECT to_regclass('items')") == [(None,)]


def test_concurrently_migration_completes_under_the_advisory_lock(target, params, dbname):
    t = target({**T,
                "002_fill": {"up.sql": "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 5000) g;\n"},
                "003_index": {"up.sql": "CREATE INDEX CONCURRENTLY idx_items_name ON items (name);\n",
                              "down.sql": "DROP INDEX CONCURRENTLY idx_items_name;\n"}})
    res = runner.migrate(t, opts=RunOptions(lock_wait_s=5))
    assert [a.transactional for a in res.applied] == [True, True, False]
    valid = query(params, dbname, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_items_name'::regclass")
    assert valid == [(True,)]
    assert query(params, dbname, "SELECT transactional FROM pgops.migrations WHERE version = 3") == [(False,)]
    runner.rollback(t, steps=1)
    assert query(params, dbname, "SELECT to_regclass('idx_items_name')") == [(None,)]


def test_lock_timeout_is_retried_until_the_lock_is_free(target, params, dbname):
    t = target(T)
    runner.migrate(t)
    t2 = target({"002_add_col": {"up.sql": "ALTER TABLE items ADD COLUMN note text;\n"}})
    held = threading.Event()

    def hold():
        with connect(params, dbname=dbname) as conn:
            conn.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
            held.set()
            time.sleep(3)
            conn.rollback()
    th = threading.Thread(target=hold)
    th.start()
    held.wait(5)
    start = time.monotonic()
    res = runner.migrate(t2, opts=RunOptions(lock_timeout_s=0.3, retries=20, retry_base_s=0.2, preflight="skip"))
    th.join()
    assert res.applied[0].attempts > 1
    assert time.monotonic() - start >= 2.5  # it really waited for the holder, not around it
    assert query(params, dbname, "SELECT count(*) FROM information_schema.columns "
                                 "WHERE table_name = 'items' AND column_name = 'note'") == [(1,)]


def test_failing_transactional_migration_leaves_ledger_and_schema_unchanged(target, params, dbname):
    t = target(T)
    runner.migrate(t)
    before_tables = query(params, dbname, "SELECT relname FROM pg_class WHERE relkind = 'r' ORDER BY 1")
    t2 = target({"002_broken": {"up.sql": "CREATE TABLE orders (id int);\n\nINSERT INTO nowhere VALUES (1);\n"}})
    with pytest.raises(MigrationFailed) as info:
        runner.migrate(t2)
    e = info.value
    assert (e.version, e.statement, e.line) == (2, 2, 3)
    assert "nowhere" in e.error and "002_broken" in str(e)
    assert [v for v, _ in ledger(params, dbname)] == [1]
    assert query(params, dbname, "SELECT relname FROM pg_class WHERE relkind = 'r' ORDER BY 1") == before_tables
    failed = query(params, dbname, "SELECT version, error FROM pgops.migration_events WHERE event = 'failed'")
    assert failed[0][0] == 2 and "nowhere" in failed[0][1]


def test_failing_non_transactional_migration_is_dirty_until_resumed(target, params, dbname):
    t = target({**T, "002_dupes": {"up.sql": "INSERT INTO items VALUES (1, 'same'), (2, 'same');\n"}})
    runner.migrate(t)
    t2 = target({"003_unique": {
        "up.sql": "CREATE TABLE audit (id int);\n"
                  "CREATE UNIQUE INDEX CONCURRENTLY idx_items_name_u ON items (name);\n"
                  "CREATE INDEX CONCURRENTLY idx_audit_id ON audit (id);\n",
        "down.sql": "DROP INDEX CONCURRENTLY IF EXISTS idx_audit_id;\n"
                    "DROP INDEX CONCURRENTLY IF EXISTS idx_items_name_u;\nDROP TABLE IF EXISTS audit;\n"}})
    with pytest.raises(DirtyDatabase) as info:
        runner.migrate(t2)
    e = info.value
    assert (e.done, e.total, e.failed) == (1, 3, 2)
    assert any("idx_items_name_u" in i for i in e.invalid_indexes)
    assert "--resume" in str(e) and "db.rollback" in str(e)
    st = runner.status(t2)
    assert st.dirty.version == 3 and st.dirty.statements_done == 1 and st.dirty.failed_statement == 2
    with pytest.raises(DirtyDatabase):  # a plain migrate refuses while dirty
        runner.migrate(t2)
    query(params, dbname, "UPDATE items SET name = 'other' WHERE id = 2")
    res = runner.migrate(t2, resume=True)
    assert [a.version for a in res.applied] == [3]
    assert runner.status(t2).dirty is None
    assert query(params, dbname, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    assert [v for v, _ in ledger(params, dbname)] == [1, 2, 3]


def test_checksum_drift_is_refused_unless_accepted(target, chain_dir, params, dbname):
    t = target(T)
    runner.migrate(t)
    (t.migrations_dir / "001_items" / "up.sql").write_text("CREATE TABLE items (id int PRIMARY KEY, name text); -- edited\n")
    assert runner.status(t).drifted[0][0] == 1
    with pytest.raises(ChecksumDrift) as info:
        runner.migrate(t)
    assert "--accept-changed 1" in str(info.value)
    res = runner.migrate(t, accept_changed=(1,))
    assert res.accepted == [1]
    assert runner.status(t).drifted == ()


def test_out_of_order_is_refused_unless_allowed(target, params, dbname):
    t = target({**T, "003_later": {"up.sql": "CREATE TABLE later (id int);\n"}})
    runner.migrate(t)
    t = target({"002_forgotten": {"up.sql": "CREATE TABLE forgotten (id int);\n"}})
    with pytest.raises(OutOfOrder) as info:
        runner.migrate(t)
    assert info.value.pending == [2]
    runner.migrate(t, allow_out_of_order=True)
    assert [v for v, _ in ledger(params, dbname)] == [1, 2, 3]


def test_preflight_sees_a_long_transaction(target, params, dbname):
    t = target(T)
    with connect(params, dbname=dbname, application_name="long-report") as other:
        other.execute("SELECT 1")  # opens a transaction (psycopg is not autocommit)
        time.sleep(1.5)
        with pytest.raises(PreflightRefused) as info:
            runner.migrate(t, opts=RunOptions(preflight="refuse", max_xact_age_s=1))
        assert info.value.blockers[0]["pid"] == other.info.backend_pid
        assert "long-report" in str(info.value)
        with pytest.raises(PreflightRefused):  # wait mode gives up after the wait limit
            runner.migrate(t, opts=RunOptions(preflight="wait", max_xact_age_s=1, lock_wait_s=1))
    assert query(params, dbname, "SELECT count(*) FROM pgops.migrations") == [(0,)]
    assert len(runner.migrate(t, opts=RunOptions(preflight="refuse", max_xact_age_s=1)).applied) == 1


def test_rollback_without_down_is_refused_before_anything_runs(target, params, dbname):
    t = target({**T, "002_nodown": {"up.sql": "CREATE TABLE nodown (id int);\n"},
                "003_more": {"up.sql": "CREATE TABLE more (id int);\n", "down.sql": "DROP TABLE more;\n"}})
    runner.migrate(t)
    with pytest.raises(RollbackRefused) as info:
        runner.rollback(t, to=0)
    assert "002_nodown has no down.sql" in str(info.value)
    assert [v for v, _ in ledger(params, dbname)] == [1, 2, 3]
    runner.rollback(t, steps=1)
    assert [v for v, _ in ledger(params, dbname)] == [1, 2]


def test_verify_reports_failures_and_wrong_shapes(target, params, dbname):
    t = target({**T, "002_checks": {"up.sql": "SELECT 1;\n",
                                    "verify.sql": "SELECT 'always fails' AS \"check\", false AS passed, 'on purpose' AS detail;\n"
                                                  "SELECT 'not boolean', 1, '';\n"}})
    runner.migrate(t)
    results = runner.verify(t)
    by_check = {r.check: r for r in results}
    assert by_check["items exists"].passed
    assert not by_check["always fails"].passed and by_check["always fails"].detail == "on purpose"
    assert not by_check["not boolean"].passed and "not boolean" in by_check["not boolean"].detail


def test_dry_run_changes_nothing(target, params, dbname):
    t = target(T)
    res = runner.migrate(t, opts=RunOptions(dry_run=True))
    assert res.planned == [1] and res.applied == []
    assert query(params, dbname, "SELECT to_regclass('pgops.migrations'), to_regclass('items')") == [(None, None)]


def test_baseline_records_without_running(target, params, dbname):
    query(params, dbname, "CREATE TABLE items (id int PRIMARY KEY, name text)")
    t = target({**T, "002_next": {"up.sql": "CREATE TABLE next (id int);\n"}})
    marked = runner.baseline(t, 1)
    assert [m.version for m in marked] == [1]
    res = runner.migrate(t)
    assert [a.version for a in res.applied] == [2]
    assert query(params, dbname, "SELECT event FROM pgops.migration_events ORDER BY id") == [("baseline",), ("up",)]


def test_events_are_append_only(target, params, dbname):
    runner.migrate(target(T))
    with pytest.raises(psycopg.errors.RaiseException):
        query(params, dbname, "DELETE FROM pgops.migration_events")


def test_empty_migration_is_a_recorded_no_op(target, params, dbname):
    res = runner.migrate(target({**T, "002_nothing_yet": {"up.sql": "-- written later\n"}}))
    assert [a.version for a in res.applied] == [1, 2]
    assert [v for v, _ in ledger(params, dbname)] == [1, 2]
