"""The local stack's lifecycle on real servers: up, idempotent up, killed postmaster, busy port,
down, purge, and the CLI's JSON shape."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from ops.dsn import connect
from ops.errors import PortBusy
from ops.local.cluster import installed_pgbouncer_version, node_pid, open_stack, pooler_pid
from ops.local.layout import (
    MAX_PREPARED_STATEMENTS,
    POOLER_OFFSET,
    SERVER_CONNECT_TIMEOUT_S,
    SERVER_LOGIN_RETRY_S,
    format_version,
    parse_pgbouncer_version,
    passes_prepared_statements,
)
from ops.pgtools import pg_bindir, pgbouncer_bin

from .conftest import TEST_SETTINGS, destroy, free_base_port, invoke, make_stack, state_dir


@pytest.fixture
def stack():
    st = make_stack(replicas=1)
    yield st
    destroy(st)


def test_lifecycle(stack):
    nodes = stack.up()
    assert [(n["name"], n["role"], n["state"]) for n in nodes] == [("pg1", "primary", "running"),
                                                                   ("pg2", "replica", "running"),
                                                                   ("pooler", "pooler", "running")]
    assert nodes[2]["port"] == stack.layout.base_port + POOLER_OFFSET
    # the replica streams from its slot
    with connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE ping (id int)")
        conn.execute("INSERT INTO ping VALUES (42)")
        assert conn.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall() == [("pgops_pg2", True)]
    assert stack.wait_replicas_caught_up(30) == []
    with connect(stack.conninfo(stack.layout.replica_nodes[0]), autocommit=True) as conn:
        assert conn.execute("SELECT id FROM ping").fetchall() == [(42,)]
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    lag = stack.status()[1]["replay_lag_bytes"]
    assert isinstance(lag, int) and lag >= 0

    # idempotent: a second up changes nothing
    pids = [n["pid"] for n in nodes]
    assert [n["pid"] for n in stack.up()] == pids

    # a killed postmaster (stale postmaster.pid) is recovered by up
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while node_pid(stack.layout.primary) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.status()[0]["state"] == "stopped"
    assert (stack.layout.primary.data_dir / "postmaster.pid").exists()
    nodes = stack.up()
    assert nodes[0]["state"] == "running" and nodes[0]["pid"] != pids[0]
    with connect(stack.conninfo(), autocommit=True) as conn:
        assert conn.execute("SELECT id FROM ping").fetchall() == [(42,)]

    # down stops everything (the pooler first), purge deletes the state directory
    assert stack.down()[0].startswith("stopped pooler")
    assert [n["state"] for n in stack.status()] == ["stopped", "stopped", "stopped"]
    stack.down(purge=True)
    assert not stack.layout.state_dir.exists()


def test_busy_port_names_the_port_and_the_setting():
    base = free_base_port(2)
    st = open_stack(state_dir() / "stack", port=base, replicas=1, extra_settings=TEST_SETTINGS)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 1))
        squatter.listen()
        with pytest.raises(PortBusy) as info:
            st.up()
    msg = str(info.value)
    assert str(base + 1) in msg and "pg2" in msg and "PGOPS_LOCAL_PORT" in msg and "--port" in msg
    assert not st.exists  # it checked before touching anything
    destroy(st)


def test_cli_status_json_and_exit_codes():
    sd = state_dir() / "stack"
    port = free_base_port(2)
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(port)}
    try:
        up = invoke(["local.up", "--replicas", "1", "--json"], env)
        assert up.returncode == 0, up.stderr
        doc = json.loads(invoke(["local.status", "--json"], env).stdout)
        keys = {"name", "role", "host", "port", "pid", "state", "replay_lag_bytes"}
        assert [set(n) for n in doc["nodes"]] == [keys, keys, keys | {"note"}]  # the pooler's note (PgBouncer's limits)
        assert [(n["role"], n["port"]) for n in doc["nodes"]] == [("primary", port), ("replica", port + 1),
                                                                   ("pooler", port + POOLER_OFFSET)]
        assert all(n["host"] == "127.0.0.1" and n["state"] == "running" for n in doc["nodes"])
        bad = invoke(["local.up", "--port", str(port + 5)], env)
        assert bad.returncode == 2 and "already runs on port" in bad.stderr and "Traceback" not in bad.stderr
        refused = invoke(["local.down", "--purge"], env)  # destructive, no terminal, no --yes
        assert refused.returncode == 2 and "--yes" in refused.stderr and "0 backup(s)" in refused.stdout
        assert sd.exists() and json.loads(invoke(["local.status", "--json"], env).stdout)["nodes"][0]["state"] == "running"
        stopped = invoke(["local.down"], env)
        assert stopped.returncode == 0
        down = invoke(["local.status", "--json"], env)  # a read task reporting nodes down exits non-zero
        assert down.returncode == 3 and {n["state"] for n in json.loads(down.stdout)["nodes"]} == {"stopped"}
        assert invoke(["local.down", "--purge", "--yes"], env).returncode == 0
        assert not sd.exists()
    finally:
        destroy(open_stack(sd))


def admin(stack, command: str) -> str:
    """A command on PgBouncer's admin console (simple query protocol only: psql, not psycopg)."""
    import subprocess
    p = stack.pooler_conninfo()
    return subprocess.run([str(pg_bindir() / "psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(p["port"]),
                           "-U", "postgres", "-d", "pgbouncer", "-c", command],
                          env={**os.environ, "PGPASSFILE": p["passfile"]}, capture_output=True, text=True,
                          check=True).stdout


def test_pooler_in_transaction_mode_with_the_stacks_credentials_and_recovered_after_kill_9():
    st = make_stack(replicas=0)
    try:
        st.up()
        # the passfile's password works through it (SCRAM on both sides), and it reaches the primary
        with connect(st.pooler_conninfo(), autocommit=True) as conn:
            assert conn.execute("SELECT current_setting('port')::int").fetchone()[0] == st.layout.primary.port
        config = dict(line.split("|")[:2] for line in admin(st, "SHOW CONFIG").splitlines() if "|" in line)
        assert config["pool_mode"] == "transaction" and config["listen_addr"] == "127.0.0.1"
        assert config["auth_type"] == "scram-sha-256"
        # what the running PgBouncer took from the ini rendered for its version (issue 19 §4)
        assert float(config["server_login_retry"]) == SERVER_LOGIN_RETRY_S  # default 15 s: clients waited that long
        assert float(config["server_connect_timeout"]) == SERVER_CONNECT_TIMEOUT_S
        version = installed_pgbouncer_version()
        assert version == parse_pgbouncer_version(subprocess.run([str(pgbouncer_bin()), "--version"], capture_output=True,
                                                                  text=True).stdout)
        row = st.status()[-1]
        if passes_prepared_statements(version):
            assert config["max_prepared_statements"] == str(MAX_PREPARED_STATEMENTS) and row["note"] is None
        else:
            assert "max_prepared_statements" not in config
            assert format_version(version) in row["note"] and "Connecting applications" in row["note"]
        env = {"PGOPS_STATE_DIR": str(st.layout.state_dir)}
        for task in ("local.up", "local.status"):  # the CLI says it to the user, and puts it in --json
            shown = invoke([task], env)
            assert shown.returncode == 0, shown.stdout + shown.stderr
            assert (row["note"] is None) == ("note (pooler)" not in " ".join(shown.stdout.split())), shown.stdout
            as_json = json.loads(invoke([task, "--json"], env).stdout)["nodes"]
            assert [n["note"] for n in as_json if n["role"] == "pooler"] == [row["note"]]
        assert oct(st.layout.pooler.auth_file.stat().st_mode & 0o777) == "0o600"  # it holds the password
        # transaction pooling: two transactions of one client may run on different server sessions, so a
        # session-level SET does not outlive its transaction's server connection in general; what holds
        # is that the client sees each statement answered
        with connect(st.pooler_conninfo(), autocommit=True) as conn:
            assert [conn.execute("SELECT %s::int", (i,)).fetchone()[0] for i in range(3)] == [0, 1, 2]
        # kill -9: status says so (the CLI exits 3), up restarts it on the same port
        pid = pooler_pid(st.layout.pooler)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pooler_pid(st.layout.pooler) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert st.status()[-1]["state"] == "stopped"
        row = st.up()[-1]
        assert row["state"] == "running" and row["pid"] != pid
    finally:
        destroy(st)


def test_busy_pooler_port_is_named_before_anything_starts():
    base = free_base_port(1)
    st = open_stack(state_dir() / "stack", port=base, replicas=0, extra_settings=TEST_SETTINGS)
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", base + POOLER_OFFSET))
            squatter.listen()
            with pytest.raises(PortBusy) as info:
                st.up()
        assert str(base + POOLER_OFFSET) in str(info.value) and "pooler" in str(info.value)
        assert not st.exists
    finally:
        destroy(st)
