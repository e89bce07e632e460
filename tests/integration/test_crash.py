"""Crash safety of non-transactional migrations (issue 9 §2): the migrating process is killed
(SIGKILL, or SIGHUP as from a dropped SSH session) at every statement boundary, then ``--resume``
must leave every statement's effect exactly once.

How a kill lands on a boundary, deterministically and with no hook in the product: the test holds
an EXCLUSIVE lock on the table statement k writes (each statement has its own table), so the
runner's session waits there; for the moment *after* statement k ran and before its progress is
recorded, a second lock on ``pgops.dirty`` holds the progress write while the first is released.
The runner's server session is then either terminated (its work is lost) or let go on alone (as a
killed client's backend does: it finishes what it was sent) before ``--resume`` runs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from ops.dsn import connect, tool_application_name
from ops.migrations import runner
from ops.migrations.runner import RunOptions, Target

from .conftest import REPO, invoke, query

BASE = {"001_base": {"up.sql": "CREATE TABLE a1 (id int);\nCREATE TABLE a2 (id int);\nCREATE TABLE b1 (id int);\n"
                               "CREATE TABLE b2 (id int);\nCREATE TABLE c (id int);\n"
                               "INSERT INTO c SELECT g FROM generate_series(1, 1000) g;\n"}}
MIXED = {"002_mixed": {"up.sql": "INSERT INTO a1 VALUES (1);\n"
                                 "INSERT INTO a2 VALUES (2);\n"
                                 "CREATE INDEX CONCURRENTLY c_id ON c (id);\n"
                                 "INSERT INTO b1 VALUES (4);\n"
                                 "INSERT INTO b2 VALUES (5);\n"}}
GATE = {1: "a1", 2: "a2", 3: "c", 4: "b1", 5: "b2", 6: "pgops.migrations"}  # 6: the final ledger write
WORK_APP = tool_application_name("migrate")
OPTS = dict(lock_wait_s=60, lock_timeout_s=120, preflight="skip")

ENGINE = """
import json, os, sys
from pathlib import Path
from ops.migrations.runner import RunOptions, Target, migrate
spec = json.loads(os.environ["PGOPS_TEST_SPEC"])
migrate(Target(spec["db"], spec["params"], Path(spec["dir"])), opts=RunOptions(**spec["opts"]))
"""


def runner_backend(params, dbname) -> tuple[int, str, str] | None:
    rows = query(params, dbname, "SELECT pid, coalesce(wait_event_type, ''), query FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND application_name = %s", (WORK_APP,))
    return rows[0] if rows else None


def wait_until_blocked(params, dbname, proc, needle: str, timeout: float = 60) -> int:
    """Wait until the runner's session waits on a lock in a query containing ``needle``; its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the runner ended early: {proc.communicate()}"
        b = runner_backend(params, dbname)
        if b and b[1] == "Lock" and needle in b[2]:
            return b[0]
        time.sleep(0.05)
    raise AssertionError(f"the runner never blocked on {needle!r}: {runner_backend(params, dbname)}")


def lock(params, dbname, table: str, nowait: bool = False) -> psycopg.Connection | None:
    conn = connect(params, dbname=dbname)
    try:
        conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE" + (" NOWAIT" if nowait else ""))
    except psycopg.errors.LockNotAvailable:
        conn.close()
        return None
    return conn


def start_engine(params, dbname, mdir) -> subprocess.Popen:
    spec = {"db": dbname, "params": dict(params), "dir": str(mdir), "opts": OPTS}
    return subprocess.Popen([sys.executable, "-c", ENGINE], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PGOPS_TEST_SPEC": json.dumps(spec), "PYTHONPATH": str(REPO)})


def start_invoke(pg, dbname, sql_root) -> subprocess.Popen:
    dsn = (f"host=127.0.0.1 port={pg.layout.primary.port} user=postgres passfile={pg.layout.passfile} "
           f"dbname={dbname}")
    exe = os.path.join(os.path.dirname(sys.executable), "invoke")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
    return subprocess.Popen([exe, "db.migrate", "--dsn", dsn, "--db", "app", "--sql-root", str(sql_root),
                             "--preflight", "skip", "--lock-timeout", "120"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_at(params, dbname, start, k: int, after: bool, orphan: str, sig: int, gates: dict = GATE) -> str:
    """Run the migration in a child process, kill it with ``sig`` at boundary ``k`` and settle its
    server session as ``orphan`` says (``terminate`` | ``finish``). Returns what was hit."""
    gate = lock(params, dbname, gates[k])
    held = None
    proc = start(params, dbname)
    try:
        pid = wait_until_blocked(params, dbname, proc, gates[k])
        hit = f"during statement {k}" if gates[k] != "pgops.migrations" else "at the final ledger write"
        if after and gates[k] != "pgops.migrations":
            held = lock(params, dbname, "pgops.dirty", nowait=True)
            if held is not None:  # the progress write is not part of statement k's own transaction
                gate.rollback()
                pid = wait_until_blocked(params, dbname, proc, "pgops.dirty")
                hit = f"after statement {k} ran, before its progress was recorded"
        proc.send_signal(sig)
        proc.wait(30)
        with connect(params, dbname=dbname, autocommit=True) as admin:
            if orphan == "terminate":
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return hit
    finally:
        if proc.poll() is None:
            proc.kill()
        for conn in (held, gate):
            if conn is not None:
                conn.rollback()
                conn.close()


def assert_exactly_once(params, dbname, t: Target) -> None:
    for table, value in (("a1", 1), ("a2", 2), ("b1", 4), ("b2", 5)):
        assert query(params, dbname, f"SELECT id, count(*) FROM {table} GROUP BY id") == [(value, 1)], table
    assert query(params, dbname, "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                 "WHERE i.indrelid = 'c'::regclass") == [("c_id", True)]
    assert query(params, dbname, "SELECT version FROM pgops.migrations ORDER BY 1") == [(1,), (2,)]
    assert runner.status(t).dirty is None


BOUNDARIES = [(k, after, orphan) for k in range(1, 6) for after in (False, True) for orphan in ("terminate", "finish")]
BOUNDARIES += [(6, False, "terminate"), (6, False, "finish")]


@pytest.mark.parametrize("k,after,orphan", BOUNDARIES,
                         ids=[f"{'after' if a else 'during'}-{k}-{o}" for k, a, o in BOUNDARIES])
def test_sigkill_at_every_boundary_then_resume_applies_each_statement_once(target, params, dbname, k, after, orphan):
    runner.migrate(target(BASE))
    t = target(MIXED)
    hit = kill_at(params, dbname, lambda p, d: start_engine(p, d, t.migrations_dir), k, after, orphan, signal.SIGKILL)
    if after:  # only CONCURRENTLY commits on its own, so only there is a window between a statement and its
        # progress; for the others the progress commits with the statement, and the kill lands during it
        assert hit.startswith("after statement") == (k == 3), hit
    st = runner.status(t)
    if st.dirty is None:  # the killed run's session finished the whole migration on its own
        assert orphan == "finish" and k == 6
    else:
        runner.migrate(t, resume=True, opts=RunOptions(**OPTS))
    assert_exactly_once(params, dbname, t)


@pytest.mark.parametrize("k,after,orphan", BOUNDARIES,
                         ids=[f"{'after' if a else 'during'}-{k}-{o}" for k, a, o in BOUNDARIES])
def test_sighup_through_invoke_at_every_boundary_then_resume_applies_each_statement_once(
        pg, target, params, dbname, chain_dir, k, after, orphan):
    """SIGHUP, as a dropped SSH session sends it, to ``invoke db.migrate`` (which unwinds like Ctrl-C)."""
    runner.migrate(target(BASE))
    t = target(MIXED)
    kill_at(params, dbname, lambda p, d: start_invoke(pg, d, chain_dir.root), k, after, orphan, signal.SIGHUP)
    done = invoke(["db.migrate", "--dsn", f"host=127.0.0.1 port={pg.layout.primary.port} user=postgres "
                   f"passfile={pg.layout.passfile} dbname={dbname}", "--db", "app", "--sql-root", str(chain_dir.root),
                   "--resume", "--preflight", "skip"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert_exactly_once(params, dbname, t)


@pytest.mark.parametrize("orphan", ["terminate", "finish"])
def test_sigkill_after_a_concurrent_index_that_is_the_first_statement(target, params, dbname, orphan):
    """Progress 0 of 2 with the index built: --resume judges statement 1 too (valid index → skipped)."""
    runner.migrate(target(BASE))
    t = target({"002_index_first": {"up.sql": "CREATE INDEX CONCURRENTLY c_id ON c (id);\nINSERT INTO a1 VALUES (1);\n"}})
    hit = kill_at(params, dbname, lambda p, d: start_engine(p, d, t.migrations_dir), 1, True, orphan, signal.SIGKILL,
                  gates={1: "c"})
    assert hit.startswith("after statement 1")
    if orphan == "terminate":  # the index exists, its progress record does not
        assert runner.status(t).dirty.statements_done == 0
    runner.migrate(t, resume=True, opts=RunOptions(**OPTS))
    assert query(params, dbname, "SELECT count(*) FROM a1") == [(1,)]
    assert query(params, dbname, "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                 "WHERE i.indrelid = 'c'::regclass") == [("c_id", True)]
    assert runner.status(t).dirty is None


def test_resume_waits_for_the_killed_runs_session_to_finish(target, params, dbname):
    """A killed client's server session goes on with the batch it was sent (statement 2 and its
    progress), blocked here on a lock. A --resume started meanwhile must wait for it and then see
    its progress, not run statement 2 a second time."""
    import threading
    runner.migrate(target(BASE))
    t = target(MIXED)
    gate = lock(params, dbname, "a2")
    proc = start_engine(params, dbname, t.migrations_dir)
    try:
        wait_until_blocked(params, dbname, proc, "a2")
        proc.kill()
        proc.wait(30)
        errors = []

        def resume():
            try:
                runner.migrate(t, resume=True, opts=RunOptions(**OPTS))
            except Exception as exc:  # surfaced below
                errors.append(exc)
        th = threading.Thread(target=resume)
        th.start()
        time.sleep(1.5)  # the resume is waiting (for the orphan, or behind its row lock)
        assert th.is_alive()
        gate.commit()  # the orphan finishes statement 2 and its progress, then goes
        th.join(60)
        assert not errors
    finally:
        if proc.poll() is None:
            proc.kill()
        gate.close()
    assert_exactly_once(params, dbname, t)
