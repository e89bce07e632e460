"""Cutover journeys (issue 19 §3): random chains of cutover commands — prepare, run, rollback,
finish, status, verify — mixed with `local.up`, a killed PgBouncer then `local.up`, a failure injected
right after a switch step, and `kill -9` of a switch or a finish at a chosen step (the command runs in
a forked child that SIGKILLs itself there), with writes through the pooler. After every step:

* each running server under the state directory has exactly one recorded role (``stack.json``, or
  the cutover's state for a green not switched to yet), and exactly one is primary;
* the pooler points at the recorded primary, which runs and is not fenced, and a write through the
  pooler succeeds; no acknowledged write is lost;
* ``invoke local.status`` exits 0;
* no data directory was removed or replaced under a running postmaster;
* with no cutover in progress (after ``finish``), no slot, publication or subscription pgops made remains.

The default run takes a few bounded examples; ``pytest -m soak`` runs many more.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ops.cutover.local import LocalCutover
from ops.errors import CutoverAborted
from ops.local.cluster import _pid_alive, node_pid, open_stack, pooler_pid

from .conftest import TEST_SETTINGS, destroy, free_base_port, invoke, state_dir

#: the next command after a kill: any pgops command, not only a cutover one
NEXT_COMMANDS = ["local.status", "local.up", "cutover.status", "db.status", "health"]
SWITCH_STEPS = ["fence", "fence_row", "stop_incoming", "sequences", "start_reverse", "repoint"]


def _killed_at(sd, method: str, step: str) -> None:
    """In a forked child: run ``LocalCutover.<method>`` and SIGKILL the process right after ``step``
    (a switch step, or for finish its first progress line)."""
    def child():
        cut = LocalCutover(open_stack(sd))

        def die(name):
            if name == step or step == "*":
                os.kill(os.getpid(), signal.SIGKILL)
        cut.after_step = die
        try:
            if method == "finish":
                cut.finish(force=True, on_progress=lambda line: die("*"))
            else:
                getattr(cut, method)()
        finally:
            os._exit(0)
    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(300)
    assert proc.exitcode is not None, "the killed command never ended"


class CutoverJourney(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.stack = open_stack(state_dir() / "stack", port=free_base_port(2), replicas=1, extra_settings=TEST_SETTINGS)
        self.stack.up()
        self.sd = self.stack.layout.state_dir
        sql_root = self.sd.parent / "sql"  # a managed database for db.status and backup.create
        mig = sql_root / "shop" / "migrations" / "001_marks"
        mig.mkdir(parents=True)
        (mig / "up.sql").write_text("CREATE TABLE marks (id bigint PRIMARY KEY);\n")
        (mig / "down.sql").write_text("DROP TABLE marks;\n")
        self.sql_root = str(sql_root)
        self.env = {"PGOPS_STATE_DIR": str(self.sd)}
        with psycopg.connect(**self.stack.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE shop")
        with psycopg.connect(**{**self.stack.conninfo(), "dbname": "shop"}, autocommit=True) as c:
            c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL)")
            c.execute("INSERT INTO orders (note) SELECT 'seed' FROM generate_series(1, 200)")
        self.acked: list[int] = []
        self.log: list[str] = []
        self.dirs = self._dirs()

    # ---- helpers -------------------------------------------------------------------------------
    def cut(self) -> LocalCutover:
        return LocalCutover(open_stack(self.sd))

    def phase(self) -> str:
        return self.cut().phase

    def run(self, *args, ok=True):
        res = invoke(list(args), self.env, timeout=300)
        self.log.append(f"{' '.join(args)} → {res.returncode}")
        assert "Traceback" not in res.stdout + res.stderr, res.stderr
        if ok:
            assert res.returncode == 0, f"{args}: {res.stdout[-1500:]}\n{res.stderr[-1500:]}\n{self.log}"
        return res

    def _dirs(self) -> dict[str, tuple[int, int]]:
        """data directory → (postmaster pid, inode) for every server running under the state directory."""
        out = {}
        for pidfile in self.sd.glob("*/data/postmaster.pid"):
            data = pidfile.parent
            try:
                pid = int(pidfile.read_text().split("\n", 1)[0])
                if _pid_alive(pid):
                    out[str(data)] = (pid, os.stat(data).st_ino)
            except (OSError, ValueError):
                continue
        return out

    # ---- rules ---------------------------------------------------------------------------------
    @initialize()
    def a_cutover_is_prepared(self):
        """Every journey starts inside a cutover (hypothesis' first, simplest journeys would
        otherwise be local.up alone); finish and prepare again are rules."""
        self.prepare()

    @precondition(lambda self: self.phase() in ("none", "preparing"))
    @rule()
    def prepare(self):
        self.log.append("prepare")
        self.cut().prepare()

    @precondition(lambda self: self.phase() in ("ready", "rolled_back"))
    @rule()
    def run_switch(self):
        self.log.append("run")
        assert self.cut().run()["passed"]

    @precondition(lambda self: self.phase() == "switched")
    @rule()
    def rollback(self):
        self.log.append("rollback")
        assert self.cut().rollback()["passed"]

    @precondition(lambda self: self.phase() in ("ready", "rolled_back", "switched"))
    @rule(action=st.sampled_from(["run", "rollback"]), step=st.sampled_from(SWITCH_STEPS))
    def a_switch_fails_after_a_step(self, action, step):
        cut = self.cut()
        if (action == "run") != (cut.phase in ("ready", "rolled_back")):
            action = "rollback" if action == "run" else "run"
        self.log.append(f"{action} failing after {step}")

        def fail(name):
            if name == step:
                raise RuntimeError(f"injected after {name}")
        cut.after_step = fail
        try:
            getattr(cut, action)()
        except CutoverAborted as exc:
            assert "every step was undone" in exc.message, exc.message

    @precondition(lambda self: self.phase() in ("ready", "rolled_back", "switched"))
    @rule(step=st.sampled_from(SWITCH_STEPS), then=st.sampled_from(NEXT_COMMANDS))
    def a_switch_killed_after_a_step_then_any_command(self, step, then):
        """kill -9 mid-switch (the pooler PAUSEd, a side fenced), then the next pgops command of
        any kind: it finishes or undoes the switch before anything else."""
        action = "run" if self.phase() in ("ready", "rolled_back") else "rollback"
        self.log.append(f"{action} kill -9 after {step}")
        _killed_at(self.sd, action, step)
        if then in ("db.status", "health"):  # health's exit reflects backup ages: only no hang, no traceback
            self.run(then, "--db", "shop", "--sql-root", self.sql_root, ok=then == "db.status")
        else:
            self.run(then)

    @precondition(lambda self: self.phase() != "none")
    @rule()
    def finish(self):
        self.log.append("finish")
        res = self.cut().finish(force=True)
        assert res["leftovers"] == []

    @precondition(lambda self: self.phase() in ("switched", "rolled_back"))
    @rule()
    def finish_killed_then_finished(self):
        """kill -9 of finish at its first progress line; running it again completes it."""
        self.log.append("finish kill -9")
        _killed_at(self.sd, "finish", "*")
        self.finish()

    @rule()
    def status_and_verify(self):
        self.log.append("status")
        cut = self.cut()
        st_ = cut.status()
        assert "in_progress" not in st_, st_
        if cut.phase in ("switched", "rolled_back"):
            cut.verify()

    @rule()
    def local_up(self):
        self.run("local.up")

    @rule()
    def pooler_killed_then_local_up(self):
        pid = pooler_pid(open_stack(self.sd).layout.pooler)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.run("local.up")

    # ---- invariants ----------------------------------------------------------------------------
    @invariant()
    def each_running_server_has_one_recorded_role_and_the_pooler_is_on_the_primary(self):
        stack = open_stack(self.sd)
        recorded = json.loads(stack.layout.state_file.read_text())
        roles: dict[str, list[str]] = {}
        for n in recorded["nodes"]:
            roles.setdefault(str(self.sd / n["dir"] / "data"), []).append(n["role"])
        cut = LocalCutover(stack)
        if cut.phase in ("preparing", "ready"):  # a green nothing switched to yet: the cutover's own
            g = cut.state["green"]
            roles.setdefault(str(self.sd / g["dir"] / "data"), []).append("green")
        for data in self._dirs():
            assert len(roles.get(data, [])) == 1, (data, roles, self.log)
        assert sum(r == ["primary"] for r in roles.values()) == 1, (roles, self.log)
        primary = stack.layout.primary
        assert node_pid(primary) is not None, (primary, self.log)
        assert not (primary.node_dir / "pg_hba.unfenced").exists(), ("the primary is fenced", self.log)
        assert f"port={primary.port}\n" in stack.layout.pooler.ini.read_text(), self.log
        if pooler_pid(stack.layout.pooler) is None:
            self.run("local.up")

    @invariant()
    def a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost(self):
        stack = open_stack(self.sd)
        got: list = []

        def write():
            try:
                with psycopg.connect(**{**stack.pooler_conninfo(), "dbname": "shop", "connect_timeout": 10},
                                     autocommit=True, prepare_threshold=None) as conn:
                    got.append(conn.execute("INSERT INTO orders (note) VALUES ('j') RETURNING id").fetchone()[0])
            except psycopg.Error as exc:
                got.append(exc)
        t = threading.Thread(target=write, daemon=True)
        t.start()
        t.join(60)  # a paused pooler would hold it until query_wait_timeout
        assert got and isinstance(got[0], int), (got, self.log)
        self.acked.append(got[0])
        with psycopg.connect(**{**stack.conninfo(), "dbname": "shop", "connect_timeout": 10}) as c:
            have = {r[0] for r in c.execute("SELECT id FROM orders")}
        assert set(self.acked) <= have, (set(self.acked) - have, self.log)

    @invariant()
    def local_status_exits_0(self):
        res = self.run("local.status", ok=False)
        assert res.returncode == 0, (res.stdout, res.stderr, self.log)

    @invariant()
    def no_data_directory_removed_under_a_running_postmaster(self):
        now = self._dirs()
        for data, (pid, inode) in self.dirs.items():
            if not _pid_alive(pid):
                continue  # stopped (a zombie nobody reaped counts as stopped): its directory may go
            assert data in now and now[data] == (pid, inode), (data, self.log)
        self.dirs = now

    @invariant()
    def nothing_replication_left_without_a_cutover(self):
        cut = self.cut()
        if cut.phase != "none":
            return
        stack = open_stack(self.sd)
        for node in stack.layout.nodes:
            if node_pid(node) is None or node.role != "primary":
                continue
            with psycopg.connect(**stack.conninfo(node), connect_timeout=10) as c:
                assert c.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'"
                                 ).fetchone()[0] == 0, self.log
                assert c.execute("SELECT count(*) FROM pg_subscription").fetchone()[0] == 0, self.log
            with psycopg.connect(**{**stack.conninfo(node), "dbname": "shop"}, connect_timeout=10) as c:
                assert c.execute("SELECT count(*) FROM pg_publication").fetchone()[0] == 0, self.log

    def teardown(self):
        destroy(self.stack)


SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
#: no shrinking: each step is a real command taking seconds, and the failing journey is printed as it ran
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_cutover_journeys():
    """A few bounded journeys in the default run (each step a real command on a real stack)."""
    CutoverJourney.TestCase.settings = settings(max_examples=3, stateful_step_count=8, deadline=None,
                                                suppress_health_check=SUPPRESS, phases=PHASES)
    CutoverJourney.TestCase().runTest()


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_cutover_journeys_soak():
    """The long run: many more and longer journeys (``pytest -m soak``)."""
    CutoverJourney.TestCase.settings = settings(max_examples=int(os.environ.get("PGOPS_SOAK_EXAMPLES", "30")),
                                                stateful_step_count=15, deadline=None, suppress_health_check=SUPPRESS,
                                                phases=PHASES)
    CutoverJourney.TestCase().runTest()


@pytest.mark.integration
def test_every_phase_the_stack_follows_the_recorded_primary_and_rollback_then_finish_ends():
    """The named chains: prepare → run → (PgBouncer killed, `local.up` as advised, `local.status`,
    `db.status`, `backup.create`, `health`) → rollback → finish → prepare again. On the old code
    `local.status` exited 3 after `run`, the restarted pooler pointed at fenced blue, and `finish`
    after `rollback` was refused on fenced green and every later command dead-ended."""
    j = CutoverJourney()
    try:
        j.prepare()
        prepared = j.cut().status()
        assert "in_progress" not in prepared, prepared  # prepare's own lock is not "another command"
        for step in (j.run_switch, j.pooler_killed_then_local_up, j.rollback, j.pooler_killed_then_local_up):
            step()
            j.each_running_server_has_one_recorded_role_and_the_pooler_is_on_the_primary()
            j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost()
            j.local_status_exits_0()
            for task in ("db.status", "backup.create"):
                j.run(task, "--db", "shop", "--sql-root", j.sql_root)
            health = j.run("health", "--format", "json", "--sql-root", j.sql_root, ok=False)
            assert "the primary does not answer" not in health.stdout, health.stdout
            assert not [c for c in json.loads(health.stdout)["checks"]
                        if c["id"] in ("node_down", "pooler") and c["status"] != "ok"], health.stdout
        j.finish()  # after a rollback: green removed, blue stays
        j.nothing_replication_left_without_a_cutover()
        j.local_status_exits_0()
        for args in (["cutover.status", "--json"], ["cutover.prepare", "--yes", "--json"]):
            res = j.run(*args)
            assert "another cutover command" not in res.stdout.lower(), res.stdout
        j.each_running_server_has_one_recorded_role_and_the_pooler_is_on_the_primary()
        j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost()
        j.no_data_directory_removed_under_a_running_postmaster()
    finally:
        j.teardown()


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_a_journey_through_every_rule():
    """One fixed journey through every rule, the invariants checked after each step (the bounded
    random run above may not reach them all): a failure after the commit step, kill -9 before and
    after it followed by a non-cutover command, a killed PgBouncer in both phases, a killed finish."""
    j = CutoverJourney()
    steps = [
        j.a_cutover_is_prepared,
        lambda: j.a_switch_fails_after_a_step("run", "repoint"),
        lambda: j.a_switch_killed_after_a_step_then_any_command("fence_row", "local.status"),
        j.run_switch,
        j.pooler_killed_then_local_up,
        lambda: j.a_switch_killed_after_a_step_then_any_command("repoint", "local.up"),  # rollback, committed
        j.status_and_verify,
        lambda: j.a_switch_killed_after_a_step_then_any_command("start_reverse", "health"),  # run, undone
        j.run_switch,
        j.finish_killed_then_finished,
        j.prepare,
        j.finish,
    ]
    invariants = [j.each_running_server_has_one_recorded_role_and_the_pooler_is_on_the_primary,
                  j.a_write_through_the_pooler_succeeds_and_nothing_acknowledged_is_lost, j.local_status_exits_0,
                  j.no_data_directory_removed_under_a_running_postmaster, j.nothing_replication_left_without_a_cutover]
    try:
        for step in steps:
            step()
            for check in invariants:
                check()
        assert j.phase() == "none"
    finally:
        j.teardown()
