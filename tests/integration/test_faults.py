"""Faults at awkward moments end in one message with the documented exit code and nothing half-done
(issue 9 §2): the primary crashing mid-migration, two first deploys racing to CREATE DATABASE."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops.deploy import ensure_database
from ops.pgtools import pg_bindir, run_server_cmd

from .conftest import REPO, destroy, make_stack, query

pytestmark = pytest.mark.integration


@pytest.fixture
def crashable():
    stack = make_stack(0)
    stack.up()
    yield stack
    destroy(stack)


@pytest.mark.parametrize("mode", ["transactional", "non-transactional"])
def test_primary_crash_mid_migration_is_one_message_and_resumable(crashable, tmp_path, mode):
    p = crashable.conninfo()
    p.pop("dbname")
    query(p, "postgres", "CREATE DATABASE crashdb")
    mdir = tmp_path / "sql" / "app" / "migrations"
    body = ("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nSELECT pg_sleep(4);\nINSERT INTO t VALUES (2);\n")
    if mode == "non-transactional":
        body = "-- pgops:transaction=off\n" + body
    (mdir / "001_slow").mkdir(parents=True)
    (mdir / "001_slow" / "up.sql").write_text(body)
    dsn = f"host=127.0.0.1 port={p['port']} user=postgres dbname=crashdb passfile={p['passfile']}"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "db.migrate", "--dsn", dsn, "--db", "app",
                             "--sql-root", str(tmp_path / "sql")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        busy = query(p, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' "
                                    "AND pid <> pg_backend_pid()")
        if busy[0][0]:
            break
        time.sleep(0.05)
    run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(crashable.layout.primary.data_dir), "-m", "immediate",
                    "-w", "stop"], what="crashing the primary")
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in out + err, err
    assert proc.returncode == 4, err  # ConnectionLost: the README's "lost connection … exit 4"
    assert "crashdb" in err and "connection to the server was lost" in err and err.count("error:") == 1
    crashable.up()  # crash recovery
    if mode == "transactional":  # rolled back whole: nothing recorded, nothing created
        assert query(p, "crashdb", "SELECT to_regclass('t')") == [(None,)]
    res = subprocess.run([str(Path(sys.executable).parent / "invoke"), "db.migrate", "--dsn", dsn, "--db", "app",
                          "--sql-root", str(tmp_path / "sql"), *(["--resume"] if mode == "non-transactional" else [])],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert query(p, "crashdb", "SELECT id FROM t ORDER BY id") == [(1,), (2,)]  # each row exactly once


def test_two_first_deploys_racing_to_create_the_database(pg, params):
    """Both see it missing; the loser's CREATE DATABASE fails (duplicate_database or a unique
    violation on pg_database): either way "it exists now", never a traceback."""
    for attempt in range(5):
        name = f"race_{attempt}_{int(time.time() * 1000) % 100000}"
        results, errors = [], []
        gate = threading.Barrier(4)

        def go():
            gate.wait()
            try:
                results.append(ensure_database(params, name))
            except Exception as exc:  # noqa: BLE001 - the assertion below names it
                errors.append(exc)
        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == [] and sorted(results) == [False, False, False, True]
        finally:
            query(params, "postgres", f'DROP DATABASE IF EXISTS "{name}"')
