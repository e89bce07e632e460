"""`invoke failover.switchover`, `failover.promote` and `failover.rejoin` on a real stack (primary,
two streaming replicas, PgBouncer in transaction mode), run as a user runs them, while a writer
inserts through the pooler and records every acknowledged row: nothing acknowledged is lost by a
switchover; after a `kill -9` of the primary, nothing acknowledged before the promoted replica's
fork point is lost and any loss is named by the report; every guard refusal changes nothing."""
from __future__ import annotations

import json
import os
import signal
import time
import uuid

import psycopg
import pytest

from ops.local.cluster import node_pid, open_stack

from tests.clientload import ClientLoad

from .conftest import destroy, free_base_port, invoke, query, state_dir

pytestmark = pytest.mark.integration

# pg_rewind needs full_page_writes on the source, which the other integration stacks turn off
SETTINGS = {"fsync": "off", "shared_buffers": "'128MB'"}


def make(replicas=2):
    st = open_stack(state_dir() / "stack", port=free_base_port(replicas + 1), replicas=replicas, extra_settings=SETTINGS)
    st.up()
    p = st.conninfo()
    p.pop("dbname")
    query(p, "postgres", "CREATE DATABASE app")
    query(p, "app", "CREATE TABLE acked (id bigserial PRIMARY KEY, payload text NOT NULL)")
    assert st.wait_replicas_caught_up() == []
    return st


def env(st):
    return {"PGOPS_STATE_DIR": str(st.layout.state_dir)}


def run(st, *args):
    res = invoke(list(args), env(st), timeout=300)
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    return res


def params(st, node):
    p = st.conninfo(node)
    p.pop("dbname")
    return p


def write_row(conn):
    """One acknowledged row: (id, payload, the insert LSN read after the acknowledgement — None when that
    read failed). The LSN read is measurement, never prepared; the INSERT is the client's own load."""
    payload = uuid.uuid4().hex
    rid = conn.execute("INSERT INTO acked (payload) VALUES (%s) RETURNING id", (payload,)).fetchone()[0]
    try:
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text", prepare=False).fetchone()[0]
    except psycopg.Error:
        lsn = None
    return rid, payload, lsn


def clients(st) -> ClientLoad:
    """Driver-defaults and pooler-safe writers through the pooler (tests/clientload.py)."""
    return ClientLoad({**st.pooler_conninfo(), "dbname": "app"}, write_row)


def rows_on(st, node):
    return {rid: payload for rid, payload in query(params(st, node), "app", "SELECT id, payload FROM acked")}


def streaming(st, primary):
    return {name: state for name, state in query(params(st, primary), "postgres",
                                                   "SELECT application_name, state FROM pg_stat_replication")}


def wait_until(fn, timeout=60):
    deadline = time.monotonic() + timeout
    while not fn() and time.monotonic() < deadline:
        time.sleep(0.1)
    return fn()


# ---- guards: each refusal exits non-zero, names the next command, and changes nothing ---------------------
@pytest.fixture(scope="module")
def guarded():
    st = make(2)
    yield st
    destroy(st)


def unchanged(st, before_state: bytes):
    assert st.layout.state_file.read_bytes() == before_state
    assert query(params(st, st.layout.primary), "postgres", "SELECT pg_is_in_recovery()") == [(False,)]
    with psycopg.connect(autocommit=True, **{**st.pooler_conninfo(), "dbname": "app", "connect_timeout": 5}) as c:
        c.execute("SELECT 1")  # the pooler is not paused


def test_unknown_node_is_refused(guarded):
    before = guarded.layout.state_file.read_bytes()
    res = run(guarded, "failover.switchover", "--to", "replica9", "--yes")
    assert res.returncode == 11, res.stderr
    assert "no node 'replica9'" in res.stderr and "invoke failover.switchover --to pg2" in res.stderr
    res = run(guarded, "failover.promote", "--node", "replica9", "--yes")
    assert res.returncode == 11 and "replica9" in res.stderr
    unchanged(guarded, before)


def test_without_yes_off_a_terminal_nothing_changes(guarded):
    before = guarded.layout.state_file.read_bytes()
    res = run(guarded, "failover.switchover", "--to", "pg2")
    assert res.returncode == 2 and "plan: switchover" in res.stdout and "--yes" in res.stderr
    unchanged(guarded, before)


def test_promote_is_refused_while_the_primary_runs(guarded):
    before = guarded.layout.state_file.read_bytes()
    res = run(guarded, "failover.promote", "--yes")
    assert res.returncode == 11 and "is running" in res.stderr and "invoke failover.switchover" in res.stderr
    unchanged(guarded, before)


def test_lag_over_1_mib_is_refused_unless_forced(guarded):
    before = guarded.layout.state_file.read_bytes()
    r1 = params(guarded, guarded.layout.node("pg2"))
    query(r1, "postgres", "SELECT pg_wal_replay_pause()")
    try:
        query(params(guarded, guarded.layout.primary), "app",
              "CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 3000) g")
        res = run(guarded, "failover.switchover", "--to", "pg2", "--yes")
        assert res.returncode == 11, res.stdout + res.stderr
        assert "over the limit of 1,048,576 bytes" in res.stderr and "replay is paused" in res.stderr
        assert "invoke failover.switchover --to pg2 --force" in res.stderr
        unchanged(guarded, before)
    finally:
        query(r1, "postgres", "SELECT pg_wal_replay_resume()")


def test_a_replica_that_is_not_streaming_is_refused(guarded):
    before = guarded.layout.state_file.read_bytes()
    r2 = params(guarded, guarded.layout.node("pg3"))
    conninfo = query(r2, "postgres", "SHOW primary_conninfo")[0][0]
    query(r2, "postgres", "ALTER SYSTEM SET primary_conninfo = ''")
    query(r2, "postgres", "SELECT pg_reload_conf()")
    try:
        assert wait_until(lambda: query(r2, "postgres", "SELECT count(*) FROM pg_stat_wal_receiver") == [(0,)])
        res = run(guarded, "failover.switchover", "--to", "pg3", "--yes")
        assert res.returncode == 11 and "'pg3' is not streaming" in res.stderr, res.stderr
        assert "invoke local.status" in res.stderr
        unchanged(guarded, before)
    finally:
        query(r2, "postgres", f"ALTER SYSTEM SET primary_conninfo = '{conninfo}'")
        query(r2, "postgres", "SELECT pg_reload_conf()")


# ---- switchover: zero loss under writes through the pooler --------------------------------------------
def test_switchover_loses_no_acknowledged_write_and_the_old_primary_follows():
    st = make(2)
    try:
        with clients(st) as writer:
            writer.wait_for(50)
            res = run(st, "failover.switchover", "--to", "pg2", "--yes", "--json")
            assert res.returncode == 0, res.stdout + res.stderr
            report = json.loads(res.stdout)
            assert report["old_primary"] == "pg1" and report["new_primary"] == "pg2"
            assert [s["name"] for s in report["steps"]][:4] == ["pause pooler", "stop old primary",
                                                               "replay shutdown checkpoint", "promote"]
            assert report["write_pause_s"] is not None and report["write_pause_s"] >= 0
            _clients_seen(report)
            writer.wait_for(max(len(w.acked) for w in writer.flavours) + 50)  # writes go on, on the new primary
        writer.check("switchover")  # the whole run: PAUSE holds queries, a pooler-safe client fails none

        now = open_stack(st.layout.state_dir)
        assert now.layout.primary.name == "pg2"
        rows = rows_on(now, now.layout.primary)
        missing = [(rid, p) for rid, p, _ in writer.acked if rows.get(rid) != p]
        assert missing == [] and len({rid for rid, _, _ in writer.acked}) == len(writer.acked)
        assert streaming(now, now.layout.primary) == {"pg1": "streaming", "pg3": "streaming"}
        assert query(params(now, now.layout.node("pg1")), "postgres", "SELECT pg_is_in_recovery()") == [(True,)]
        status = run(st, "local.status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        roles = {n["name"]: n["role"] for n in json.loads(status.stdout)["nodes"]}
        assert roles == {"pg1": "replica", "pg2": "primary", "pg3": "replica", "pooler": "pooler"}
    finally:
        destroy(st)


# ---- promote after kill -9 of the primary ------------------------------------------------------------------
def test_promote_after_the_primary_is_killed_keeps_what_was_replicated_and_names_the_gap():
    st = make(2)
    try:
        with clients(st) as writer:
            writer.wait_for(50)
            os.kill(node_pid(st.layout.primary), signal.SIGKILL)
            assert wait_until(lambda: node_pid(st.layout.primary) is None)
            res = run(st, "failover.promote", "--yes", "--json")
            promoted = time.monotonic()
            assert res.returncode == 0, res.stdout + res.stderr
            report = json.loads(res.stdout)
            assert report["kind"] == "promote" and report["new_primary"] in ("pg2", "pg3")
            assert report["promoted_at_lsn"] and report["lost_primary_lsn"], report
            assert "pg_waldump" in report["lost_primary_source"]
            _clients_seen(report)
            # the pooler-side figure ends when the pooler is pointed; clients can write only after it
            assert report["client_write_gap_s"] >= report["write_pause_s"] - report["clients"]["resolution_s"], report
            before = {w.flavour: len(w.acked) for w in writer.flavours}
            writer.wait_for(max(before.values()) + 50)
        # both kinds fail while the primary is dead; once the promote has returned, judge them
        writer.check("promote", since=promoted)
        before_acked = writer.defaults.acked[:before["defaults"]] + writer.safe.acked[:before["pooler-safe"]]
        after_acked = writer.defaults.acked[before["defaults"]:] + writer.safe.acked[before["pooler-safe"]:]

        now = open_stack(st.layout.state_dir)
        new = now.layout.primary
        assert new.name == report["new_primary"]
        rows = rows_on(now, new)
        fork = _lsn(report["promoted_at_lsn"])
        replicated = [(rid, p) for rid, p, lsn in writer.acked if lsn is not None and _lsn(lsn) <= fork]
        assert replicated and [(rid, p) for rid, p in replicated if rows.get(rid) != p] == []
        assert [(rid, p) for rid, p, _ in after_acked if rows.get(rid) != p] == []  # after the promote
        assert before_acked
        lost = [(rid, p) for rid, p, _ in writer.acked if rows.get(rid) != p]
        if lost:  # acknowledged but never replicated: the report must say WAL was lost
            assert report["wal_gap_bytes"] and report["wal_gap_bytes"] > 0, (lost, report)
        other = "pg3" if new.name == "pg2" else "pg2"
        assert streaming(now, new).get(other) == "streaming"

        res = run(st, "failover.rejoin", "--node", "pg1", "--yes", "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        assert streaming(now, new) == {other: "streaming", "pg1": "streaming"}
    finally:
        destroy(st)


def _clients_seen(report):
    """The report measures what a client of the pooler saw: a probe's figures, a write on the new primary."""
    steps = [s["name"] for s in report["steps"]]
    assert "client writes" in steps and steps.index("client writes") > steps.index("point pooler"), steps
    assert report["client_write_gap_s"] is not None and report["client_write_gap_s"] > 0, report
    assert report["clients"]["acknowledged"] >= 1 and report["clients"]["first_write_s"] >= 0, report


def _lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)
