"""`invoke health` against real faults on a real stack (primary + streaming replica + pooler): each
injected fault turns its own check critical with the offender named, and the exit status follows the
Nagios convention in every format."""
from __future__ import annotations

import json
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops.dsn import connect
from ops.pgtools import pg_bindir, run_server_cmd

from .conftest import destroy, invoke, query, stack_with_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = stack_with_database(tmp_path_factory.mktemp("health"), "app")
    query(st.params, "app", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
    yield st
    destroy(st)


def health(stack, *args):
    env = {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}
    res = invoke(["health", "--sql-root", str(stack.sql_root), *args], env, timeout=120)
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    return res


def checks(res, check_id):
    return [c for c in json.loads(res.stdout)["checks"] if c["id"] == check_id]


def test_a_healthy_database_is_ok_and_exit_0(stack):
    p = stack.params
    dsn = f"host=127.0.0.1 port={p['port']} user=postgres dbname=app passfile={p['passfile']}"
    res = invoke(["health", "--dsn", dsn, "--db", "app", "--sql-root", str(stack.sql_root), "--format", "json"])
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "ok" and {c["status"] for c in doc["checks"]} == {"ok"}
    assert {c["id"] for c in doc["checks"]} >= {"node_down", "connections", "long_transaction", "idle_in_transaction",
                                                "blocked_queries", "xid_wraparound", "invalid_indexes"}
    assert set(doc["checks"][0]) == {"id", "node", "status", "value", "unit", "warn", "crit", "detail", "runbook"}


def test_the_whole_stack_is_checked_and_missing_backups_are_critical(stack):
    """A database younger than the threshold has not missed a backup (ok, measured from its creation);
    one older than the threshold with no backup is critical."""
    res = health(stack, "--format", "json")
    assert res.returncode == 0, res.stdout
    nodes = {(c["id"], c["node"]) for c in json.loads(res.stdout)["checks"]}
    assert {("node_down", "pg1"), ("node_down", "pg2"), ("replica_lag", "pg2"), ("pooler", "pooler"),
            ("disk_usage", "pg1"), ("backup_age", "app"), ("drill_age", "app")} <= nodes
    age = checks(res, "backup_age")[0]
    assert age["status"] == "ok" and "no backup of app since it was created" in age["detail"], age
    time.sleep(1.1)
    res = health(stack, "--format", "json", "--set", "backup_age.warn=0.5s", "--set", "backup_age.crit=1s")
    assert res.returncode == 2
    assert checks(res, "backup_age")[0]["status"] == "critical" and "no backup" in checks(res, "backup_age")[0]["detail"]
    assert checks(res, "replica_lag")[0]["status"] == "ok" and checks(res, "pooler")[0]["status"] == "ok"


def test_idle_in_transaction_and_a_blocked_query_are_named(stack):
    with connect(stack.params, dbname="app") as holder:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # idle in transaction, holding a lock
        blocked = threading.Thread(target=lambda: query(stack.params, "app", "SELECT count(*) FROM t"), daemon=True)
        blocked.start()
        time.sleep(1.5)
        res = health(stack, "--format", "json", "--set", "idle_in_transaction.warn=0.5s",
                     "--set", "idle_in_transaction.crit=1s", "--set", "blocked_queries.warn=0.2s",
                     "--set", "blocked_queries.crit=1s")
        idle = [c for c in checks(res, "idle_in_transaction") if c["node"] == "pg1"][0]
        assert idle["status"] == "critical" and f"pid {holder.info.backend_pid}" in idle["detail"]
        assert idle["runbook"] == "runbooks/idle-in-transaction.md"
        block = [c for c in checks(res, "blocked_queries") if c["node"] == "pg1"][0]
        assert block["status"] == "critical" and str(holder.info.backend_pid) in block["detail"]
        holder.rollback()
    blocked.join(10)


def test_an_inactive_slot_and_an_invalid_index_are_critical(stack):
    query(stack.params, "postgres", "SELECT pg_create_physical_replication_slot('forgotten', true)")
    query(stack.params, "app", "INSERT INTO t VALUES (1)")
    try:
        query(stack.params, "app", "CREATE UNIQUE INDEX CONCURRENTLY t_id_unique ON t (id)")
    except Exception:  # noqa: BLE001 - the duplicate makes the build fail and leaves the index INVALID
        pass
    try:
        res = health(stack, "--format", "json", "--set", "replication_slot_retained_wal.crit=1B",
                     "--set", "replication_slot_retained_wal.warn=1B")
        slot = checks(res, "replication_slot_retained_wal")[0]
        assert slot["status"] == "critical" and "forgotten" in slot["detail"]
        idx = [c for c in checks(res, "invalid_indexes") if c["node"] == "primary/app"][0]
        assert idx["status"] == "critical" and "t_id_unique" in idx["detail"]
    finally:
        query(stack.params, "postgres", "SELECT pg_drop_replication_slot('forgotten')")
        query(stack.params, "app", "DROP INDEX IF EXISTS t_id_unique")


def test_a_stopped_replica_is_node_down_and_nagios_and_prometheus_say_so(stack):
    replica = stack.layout.replica_nodes[0]
    run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(replica.data_dir), "-m", "fast", "-w", "stop"],
                   what="stopping the replica")
    try:
        res = health(stack, "--format", "json")
        down = [c for c in checks(res, "node_down") if c["node"] == "pg2"][0]
        assert down["status"] == "critical" and res.returncode == 2
        nagios = health(stack, "--format", "nagios")
        assert nagios.returncode == 2 and len(nagios.stdout.strip().splitlines()) == 1
        assert nagios.stdout.startswith("PGOPS HEALTH CRITICAL - ") and "node_down on pg2 critical" in nagios.stdout
        prom = health(stack, "--format", "prometheus")
        assert prom.returncode == 2
        samples = {(s.labels["check"], s.labels["node"]): s.value
                   for f in text_string_to_metric_families(prom.stdout) if f.name == "pgops_health_status"
                   for s in f.samples}
        assert samples[("node_down", "pg2")] == 2 and samples[("node_down", "pg1")] == 0
    finally:
        stack.up()


def test_a_check_that_cannot_run_is_unknown_exit_3(stack):
    res = health(stack, "--set", "nosuch.warn=1")
    assert res.returncode == 3 and "unknown check id" in res.stderr
    res = health(stack, "--format", "xml")
    assert res.returncode == 3 and "--format must be one of" in res.stderr


def test_serve_answers_load_balancer_probes(stack):
    """Role probes answer a status and one word (Patroni's REST API); the report is /checks, behind
    the token in the state directory (tests/integration/test_health_serve.py covers load, idle
    connections and another OS user)."""
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from pathlib import Path

    from .conftest import REPO
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PGOPS_STATE_DIR": str(stack.layout.state_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "health", "--sql-root", str(stack.sql_root),
                             "--serve", str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def get(path, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                code, body = get("/primary")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        assert (code, body) == (200, "ok\n")
        assert get("/replica?lag=16MB&name=pg2") == (200, "ok\n")
        assert get("/replica?lag=16MB&name=nosuch") == (503, "unavailable\n")
        # a new database without a backup yet does not pull a working node (issue 19 §1)
        assert get("/health") == (200, "ok\n")
        assert get("/nowhere")[0] == 404 and get("/replica?lag=lots")[0] == 400
        assert get("/checks")[0] == 401
        token = (Path(stack.layout.state_dir) / "health-serve.token").read_text().strip()
        code, body = get("/checks", {"Authorization": f"Bearer {token}"})
        doc = json.loads(body)
        assert code == 200 and {c["id"] for c in doc["checks"]} >= {"node_down", "replica_lag", "backup_age"}
        assert doc["status"] == "ok" and all(set(c) >= {"detail", "runbook"} for c in doc["checks"])
    finally:
        proc.terminate()
        proc.wait(10)
