"""Journeys over the local stack's topology (issue 19 §2): random chains of the tasks an operator runs
— `failover.switchover`, `kill -9` of the primary then `failover.promote`, `failover.rejoin`,
`local.down` + `local.up`, a killed PgBouncer then `local.up`, `deploy`, `backup.create` — each run
as a user runs it (the `invoke` command line), with writes through the pooler as an application
makes them (psycopg with its defaults). After every step:

* ``stack.json`` records exactly one primary, and every running node's recovery state matches its
  recorded role;
* the pooler points at the running primary, and a write through it succeeds; no acknowledged write is lost;
* ``local.status`` exits 0 when every node runs, and 3 naming the node when one is down (a node
  killed and not yet rejoined or restarted);
* no data directory was replaced under a running postmaster (same pid before and after → same directory).

The default run takes a few bounded examples; ``pytest -m soak`` runs many more.
"""
from __future__ import annotations

import json
import os
import signal
import time
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ops.errors import LocalStackError, PortBusy
from ops.local.cluster import node_pid, open_stack, pooler_pid

from .conftest import destroy, free_base_port, invoke, state_dir

# pg_rewind (rejoin) needs full_page_writes on the source
SETTINGS = {"fsync": "off", "shared_buffers": "'128MB'"}
MIGRATION = "CREATE TABLE IF NOT EXISTS step_{n} (id bigint PRIMARY KEY);\n"


def _started_stack():
    """A primary + one replica + pooler on free ports; a port taken between the probe and the bind
    (other test runs share the machine) is retried on another range."""
    for attempt in range(3):
        st = open_stack(state_dir() / "stack", port=free_base_port(2), replicas=1, extra_settings=SETTINGS)
        try:
            st.up()
            return st
        except (PortBusy, LocalStackError):
            destroy(st)
            if attempt == 2:
                raise


class TopologyJourney(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.stack = _started_stack()
        self.sql_root = self.stack.layout.state_dir.parent / "sql"
        self.migrations = 0
        self._add_migration()
        self.env = {"PGOPS_STATE_DIR": str(self.stack.layout.state_dir), "PGOPS_SQL_ROOT": str(self.sql_root)}
        self.down: set[str] = set()  # nodes killed and not yet brought back
        self.acked: list[str] = []
        self.log: list[str] = []
        self.run("deploy", "--sql-root", str(self.sql_root), "--no-backup")
        self.dirs = self._dirs()

    # ---- helpers -------------------------------------------------------------------------------
    def run(self, *args, ok=True):
        res = invoke(list(args), self.env, timeout=300)
        self.log.append(f"{' '.join(args)} → {res.returncode}")
        assert "Traceback" not in res.stdout + res.stderr, res.stderr
        if ok:
            assert res.returncode == 0, f"{args}: {res.stdout[-1500:]}\n{res.stderr[-1500:]}\n{self.log}"
        return res

    def fresh(self):
        return open_stack(self.stack.layout.state_dir)

    def _add_migration(self):
        self.migrations += 1
        d = self.sql_root / "app" / "migrations" / f"{self.migrations:03d}_step_{self.migrations}"
        d.mkdir(parents=True)
        (d / "up.sql").write_text(MIGRATION.format(n=self.migrations))
        (d / "down.sql").write_text(f"DROP TABLE step_{self.migrations};\n")

    def _dirs(self):
        """node name → (postmaster pid, inode of its data directory) for every running node."""
        out = {}
        for n in self.fresh().layout.nodes:
            pid = node_pid(n)
            if pid is not None:
                out[n.name] = (pid, os.stat(n.data_dir).st_ino)
        return out

    def _write(self):
        payload = uuid.uuid4().hex
        with psycopg.connect(**{**self.fresh().pooler_conninfo(), "dbname": "app", "connect_timeout": 10},
                             autocommit=True) as conn:  # psycopg's defaults, as an application connects
            conn.execute("CREATE TABLE IF NOT EXISTS journey (payload text PRIMARY KEY)")
            conn.execute("INSERT INTO journey VALUES (%s)", (payload,))
        self.acked.append(payload)

    def _all_streaming(self) -> bool:
        return not self.down

    # ---- rules ---------------------------------------------------------------------------------
    def _streaming(self) -> set[str]:
        st = self.fresh()
        with psycopg.connect(**st.conninfo(), connect_timeout=10, autocommit=True) as c:
            return {r[0] for r in c.execute("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")}

    @precondition(lambda self: self._all_streaming())
    @rule()
    def switchover(self):
        st = self.fresh()
        st.wait_replicas_caught_up()
        if not self._streaming() & {n.name for n in st.layout.replica_nodes}:
            # e.g. an old primary started by local.up after a promote that cannot follow: refused, nothing changed
            res = self.run("failover.switchover", "--yes", ok=False)
            assert res.returncode == 11 and "not streaming" in res.stderr, (res.stderr, self.log)
            assert self.fresh().layout.primary.name == st.layout.primary.name
            return
        self.run("failover.switchover", "--yes")

    @precondition(lambda self: self._all_streaming())
    @rule()
    def kill_primary_and_promote(self):
        st = self.fresh()
        if st.wait_replicas_caught_up():  # a replica that cannot follow: a kill now would lose acked writes
            return
        assert self._streaming(), self.log  # asynchronous replication: what was acked has arrived
        old = st.layout.primary
        os.kill(node_pid(old), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while node_pid(old) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        self.run("failover.promote", "--yes")
        self.down.add(old.name)

    @rule()
    def rejoin(self):
        self.run("failover.rejoin", "--yes")  # no --node: every replica not streaming (the lost primary)
        self.down.clear()

    @rule()
    def down_and_up(self):
        self.run("local.down")
        self.run("local.up")
        self.down.clear()

    @rule()
    def local_up(self):
        self.run("local.up")
        self.down.clear()

    @rule()
    def pooler_killed_then_local_up(self):
        pid = pooler_pid(self.fresh().layout.pooler)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.run("local.up")
        self.down.clear()

    @rule()
    def deploy_a_new_migration(self):
        self._add_migration()
        self.run("deploy", "--sql-root", str(self.sql_root))
        self.down.clear()  # deploy brings the stack up first

    @rule()
    def backup(self):
        self.run("backup.create", "--db", "app", "--sql-root", str(self.sql_root))
        self.down.clear()  # a write task brings the local stack up first (target.ensure_up)

    # ---- invariants ----------------------------------------------------------------------------
    @invariant()
    def one_recorded_role_per_running_node_and_the_pooler_on_the_primary(self):
        st = self.fresh()
        recorded = json.loads(st.layout.state_file.read_text())
        assert sum(n["role"] == "primary" for n in recorded["nodes"]) == 1, recorded
        for n in st.layout.nodes:
            if node_pid(n) is None:
                assert n.name in self.down, (n.name, self.log)
                continue
            with psycopg.connect(**st.conninfo(n), connect_timeout=10, autocommit=True) as c:
                in_recovery = c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            assert in_recovery == (n.role == "replica"), (n.name, n.role, self.log)
        ini = st.layout.pooler.ini.read_text()
        assert f"port={st.layout.primary.port}" in ini, (ini, self.log)

    @invariant()
    def a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost(self):
        self._write()
        st = self.fresh()
        params = {**st.conninfo(), "dbname": "app"}
        with psycopg.connect(**params, connect_timeout=10) as c:
            have = {r[0] for r in c.execute("SELECT payload FROM journey")}
        assert set(self.acked) <= have, (set(self.acked) - have, self.log)

    @invariant()
    def local_status_exits_0_unless_a_killed_node_is_still_down(self):
        res = self.run("local.status", ok=False)
        if self.down:
            assert res.returncode == 3 and all(n in res.stderr for n in self.down), (res.stderr, self.log)
        else:
            assert res.returncode == 0, (res.stdout, res.stderr, self.log)

    @invariant()
    def no_data_directory_replaced_under_a_running_postmaster(self):
        now = self._dirs()
        for name, (pid, inode) in self.dirs.items():
            if name in now and now[name][0] == pid:
                assert now[name][1] == inode, (name, self.log)
        self.dirs = now

    def teardown(self):
        destroy(self.stack)


SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
#: real servers: no replay or shrinking of a failing journey (its steps' log is in the assertion), no example database
PHASES = dict(phases=[Phase.explicit, Phase.generate], database=None)


@pytest.mark.integration
def test_topology_journeys():
    """A few bounded journeys in the default run (each step is a real task on a real stack)."""
    TopologyJourney.TestCase.settings = settings(max_examples=3, stateful_step_count=6, deadline=None,
                                                  suppress_health_check=SUPPRESS, **PHASES)
    TopologyJourney.TestCase().runTest()


@pytest.mark.soak
def test_topology_journeys_soak():
    """The long run: many more and longer journeys (``pytest -m soak``)."""
    TopologyJourney.TestCase.settings = settings(max_examples=int(os.environ.get("PGOPS_SOAK_EXAMPLES", "40")),
                                                  stateful_step_count=15, deadline=None, suppress_health_check=SUPPRESS,
                                                  **PHASES)
    TopologyJourney.TestCase().runTest()


@pytest.mark.integration
def test_local_up_after_a_switchover_or_promote_keeps_every_node_and_deploy_still_works():
    """The named failure, as a chain: switchover → local.up → local.up → deploy, then kill -9 →
    promote → local.up. On the old code the first local.up deleted the new replica's data directory
    under its running postmaster (no ready mark on a node that became a replica by switchover)."""
    j = TopologyJourney()
    try:
        j.switchover()
        j.no_data_directory_replaced_under_a_running_postmaster()
        for _ in range(2):
            j.local_up()
            j.no_data_directory_replaced_under_a_running_postmaster()
            j.local_status_exits_0_unless_a_killed_node_is_still_down()
        j.deploy_a_new_migration()
        j.one_recorded_role_per_running_node_and_the_pooler_on_the_primary()
        j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost()
        j.kill_primary_and_promote()
        j.local_status_exits_0_unless_a_killed_node_is_still_down()  # exit 3 naming the killed node
        j.local_up()  # the fenced old primary starts as a replica (standby.signal), never rebuilt or primary
        j.one_recorded_role_per_running_node_and_the_pooler_on_the_primary()
        j.no_data_directory_replaced_under_a_running_postmaster()
        j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost()
        j.rejoin()  # the runbook's `failover.rejoin --yes`: no node name needed
        j.kill_primary_and_promote()
        j.rejoin()
        j.one_recorded_role_per_running_node_and_the_pooler_on_the_primary()
        j.local_status_exits_0_unless_a_killed_node_is_still_down()
        j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost()
    finally:
        j.teardown()
