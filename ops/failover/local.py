"""The local stack's failover engine: PgBouncer PAUSE/RESUME, ``pg_ctl``, ``pg_promote()``,
``pg_rewind``, and the stack's recorded roles (``stack.json``).

Switchover (planned, zero loss), in the order that keeps client writes paused only while no server
can take them: pause the pooler → stop the primary cleanly (``pg_ctl stop -m fast``: its shutdown
checkpoint is the last WAL record and walsenders send it before they exit) → wait until the
candidate has replayed that checkpoint (``pg_controldata`` "Latest checkpoint location" <
``pg_last_wal_replay_lsn()``) → ``pg_promote()``, fence the old primary (``standby.signal``) and
record the roles → point the pooler at the new primary (ini + ``RELOAD``) → ``RESUME`` → point the
other replicas at it (``primary_conninfo`` by ALTER SYSTEM + reload, a physical slot each on the
new primary) → ``pg_rewind`` the old primary and start it as a replica. The issue lists the pooler
after the rewind; doing it before keeps the write pause to stop + replay + promote, and nothing
after it needs writes held. Any failure after the PAUSE resumes the pooler; before the promotion it
also restarts the old primary, which is then still the only primary.

Sources: PostgreSQL docs "Log-Shipping Standby Servers" (promotion; ``recovery_target_timeline =
latest`` lets the other standbys follow), "pg_rewind" (needs data checksums or ``wal_log_hints``,
and ``full_page_writes`` on the source), "Functions for Recovery Control"; PgBouncer docs, "Admin
console" (PAUSE waits for every server connection to be released; pgbouncer#715: a RESUME racing a
pending PAUSE hangs, so a PAUSE that times out is cancelled by closing its connection first).
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..dsn import connect, redact, tool_application_name
from ..errors import FailoverFailed, FailoverRefused, OpsError
from ..local.cluster import LocalStack, node_pid
from ..local.pooler import PoolerAdmin
from ..local.layout import (
    NodeSpec,
    StackLayout,
    primary_conninfo,
    render_conf,
)
from ..pgtools import chown_server, pg_bindir, run_server_cmd
from ..planapply import Plan, Step
from ..probe import WriteProbe
from .plan import (
    MAX_LAG_BYTES,
    FailoverReport,
    NodeState,
    Operation,
    choose_candidate,
    format_lsn,
    parse_lsn,
    switchover_refusals,
    wal_gap,
)

log = logging.getLogger(__name__)

PAUSE_TIMEOUT_S = 10.0     # PAUSE waits for transactions in flight; longer means a client holds one open
CATCHUP_TIMEOUT_S = 60.0   # the candidate replaying the old primary's shutdown checkpoint
PROMOTE_TIMEOUT_S = 60     # pg_promote(wait => true, wait_seconds)
STREAM_TIMEOUT_S = 60.0    # a re-pointed or rewound replica reaching state streaming
CLIENT_WAIT_S = 30.0       # a client write on the new primary; beyond PgBouncer's default server_login_retry (15 s)
PROBE_INTERVAL_S = 0.02    # the client probe's sampling interval (its figure's resolution)
_STANDBY_KEYS = ("port", "primary_conninfo", "primary_slot_name")


def _now() -> datetime:
    return datetime.now(UTC)


def _conn(stack: LocalStack, node: NodeSpec, timeout: int = 5):
    return connect(stack.conninfo(node), autocommit=True, connect_timeout=timeout,
                   application_name=tool_application_name("failover"))


# ---- measuring -----------------------------------------------------------------------------------
def measure(stack: LocalStack, node: NodeSpec) -> NodeState:
    """The node's recovery state, WAL positions and timeline; ``answers=False`` when it does not."""
    if node_pid(node) is None:
        return NodeState(node.name, False, detail=f"not running (port {node.port})")
    try:
        with _conn(stack, node) as c:
            in_rec = c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            if not in_rec:
                lsn, wal = c.execute("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())").fetchone()
                return NodeState(node.name, True, False, False, int(wal[:8], 16), parse_lsn(lsn), parse_lsn(lsn))
            replay, receive, paused = c.execute(
                "SELECT pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text, "
                "pg_get_wal_replay_pause_state() <> 'not paused'").fetchone()
            row = c.execute("SELECT status, received_tli FROM pg_stat_wal_receiver").fetchone()
    except OpsError as exc:
        return NodeState(node.name, False, detail=exc.message)
    status, tli = (row or (None, None))
    return NodeState(node.name, True, True, status == "streaming", tli, parse_lsn(replay), parse_lsn(receive),
                     bool(paused), "" if row else "no WAL receiver")


def controldata(data_dir: Path) -> dict[str, str]:
    """``pg_controldata`` of a data directory as {field: value}. Raises LocalStackError when unreadable."""
    proc = run_server_cmd([str(pg_bindir() / "pg_controldata"), "-D", str(data_dir)],
                          what=f"pg_controldata of {data_dir}", env={"LC_ALL": "C", "LANG": "C"})
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in proc.stdout.splitlines()) if v}


def wal_end(data_dir: Path) -> tuple[int | None, str]:
    """The lost primary's last known WAL position and where it was read.

    ``pg_controldata`` holds only the last checkpoint, which after a crash is older than the end of
    the WAL, so the WAL is read forward from that checkpoint's redo point with ``pg_waldump`` until
    it ends ("invalid record length at X": the end of valid WAL). Falls back to the checkpoint;
    (None, why) when the directory cannot be read."""
    try:
        ctl = controldata(data_dir)
    except OpsError as exc:
        return None, f"its pg_control cannot be read: {exc.message}"
    ckpt = parse_lsn(ctl.get("Latest checkpoint location"))
    redo = ctl.get("Latest checkpoint's REDO location")
    tli = ctl.get("Latest checkpoint's TimeLineID", "1")
    proc = run_server_cmd([str(pg_bindir() / "pg_waldump"), "--quiet", f"--path={data_dir / 'pg_wal'}",
                           f"--start={redo}", f"--timeline={tli}"], what="pg_waldump", check=False)
    found = [parse_lsn(m) for m in re.findall(r"\b([0-9A-F]+/[0-9A-F]+)\b", proc.stderr or "")]
    if found and max(found) >= (ckpt or 0):
        return max(found), "end of its WAL (pg_waldump)"
    return ckpt, "its last checkpoint (pg_controldata; the WAL after it could not be read)"


def switch_point(stack: LocalStack, node: NodeSpec) -> int | None:
    """Where ``node`` (just promoted) forked from its old timeline: the last line of its newest
    timeline history file."""
    with _conn(stack, node) as c:
        wal = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        tli = int(wal[:8], 16)
        if tli <= 1:
            return None
        text = c.execute("SELECT pg_read_file(%s)", (f"pg_wal/{tli:08X}.history",)).fetchone()[0]
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return parse_lsn(rows[-1][1]) if rows else None


# ---- changing a node -------------------------------------------------------------------------------
def write_standby_config(layout: StackLayout, node: NodeSpec) -> None:
    """Make the (stopped) ``node`` start as a replica of ``layout.primary``: ``standby.signal``, and
    port, ``primary_conninfo`` and ``primary_slot_name`` in ``postgresql.auto.conf`` (other lines
    kept). Also the fence that stops a lost primary from starting as a second primary."""
    auto = node.data_dir / "postgresql.auto.conf"
    kept = []
    if auto.exists():
        for line in auto.read_text().splitlines(True):
            key = line.split("=", 1)[0].strip()
            if key not in _STANDBY_KEYS:
                kept.append(line)
    slot = node.slot or f"pgops_{node.name}"
    auto.write_text("".join(kept) + render_conf({
        "port": str(node.port),
        "primary_conninfo": "'" + primary_conninfo(layout, node).replace("'", "''") + "'",
        "primary_slot_name": f"'{slot}'"}))
    signal = node.data_dir / "standby.signal"
    signal.touch()
    for p in (auto, signal):
        chown_server(p, 0o600)


def promote_node(stack: LocalStack, node: NodeSpec) -> None:
    """``pg_promote(wait => true)`` on ``node``; raises :class:`FailoverFailed` when it does not finish
    within PROMOTE_TIMEOUT_S seconds (PostgreSQL docs, "pg_promote")."""
    with _conn(stack, node) as c:
        ok = c.execute("SELECT pg_promote(true, %s)", (PROMOTE_TIMEOUT_S,)).fetchone()[0]
    if not ok:
        raise FailoverFailed(f"promoting '{node.name}'", f"pg_promote did not finish within {PROMOTE_TIMEOUT_S} s",
                             f"read {node.log_file}, then run `invoke local.status`.")


def record_roles(stack: LocalStack, layout: StackLayout, fenced: NodeSpec | None) -> None:
    """After a promotion: fence ``fenced`` (the old primary: standby.signal, so it can only start as
    a replica), record ``layout``'s roles in ``stack.json`` and make each replica's slot on the new primary."""
    if fenced is not None:
        write_standby_config(layout, fenced)
    stack.replace_layout(layout)
    ensure_slots(stack, layout)


def point_pooler_at(admin: PoolerAdmin, layout: StackLayout, state: dict) -> str:
    """Point the stack's pooler at ``layout``'s primary (ini + RELOAD); ``state["pointed"]`` records it."""
    if layout.pooler is None:
        return "no pooler"
    admin.point_at(layout)
    state["pointed"] = True
    return f"pgbouncer.ini → port {layout.primary.port}, RELOAD"


def ensure_slots(stack: LocalStack, layout: StackLayout) -> None:
    """A physical slot on ``layout.primary`` for every other node (named as the layout says)."""
    with _conn(stack, layout.primary) as c:
        for n in layout.nodes:
            if n.role == "replica" and n.slot:
                c.execute("SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                          "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (n.slot, n.slot))


def repoint_running(stack: LocalStack, layout: StackLayout, node: NodeSpec) -> None:
    """Point a running replica at ``layout.primary``: ALTER SYSTEM primary_conninfo and
    primary_slot_name, then reload (the WAL receiver restarts and follows the new timeline)."""
    from psycopg import sql  # ALTER SYSTEM takes no bind parameters: quoted literals
    with _conn(stack, node) as c:
        for name, value in (("primary_conninfo", primary_conninfo(layout, node)),
                            ("primary_slot_name", node.slot or f"pgops_{node.name}")):
            c.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        c.execute("SELECT pg_reload_conf()")


def wait_streaming(stack: LocalStack, layout: StackLayout, node: NodeSpec, timeout_s: float = STREAM_TIMEOUT_S) -> bool:
    """Whether ``node`` reaches state streaming on ``layout.primary`` within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    with _conn(stack, layout.primary) as c:
        while True:
            row = c.execute("SELECT state FROM pg_stat_replication WHERE application_name = %s "
                            "ORDER BY state = 'streaming' DESC LIMIT 1", (node.name,)).fetchone()
            if row and row[0] == "streaming":
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def rewindable(stack: LocalStack, layout: StackLayout, node: NodeSpec) -> str | None:
    """Why ``node`` cannot be rewound against ``layout.primary`` (None: it can): pg_rewind needs data
    checksums or wal_log_hints on the target and full_page_writes on the source."""
    try:
        ctl = controldata(node.data_dir)
    except OpsError as exc:
        return exc.message
    if ctl.get("Data page checksum version", "0") == "0" and ctl.get("wal_log_hints setting") != "on":
        return "it has neither data checksums nor wal_log_hints"
    try:
        with _conn(stack, layout.primary) as c:
            if c.execute("SHOW full_page_writes").fetchone()[0] != "on":
                return f"full_page_writes is off on '{layout.primary.name}'"
    except OpsError as exc:
        return exc.message
    return None


def rejoin(stack: LocalStack, layout: StackLayout, node: NodeSpec) -> str:
    """Turn ``node`` into a streaming replica of ``layout.primary``: stop it (fast), ``pg_rewind``
    it (single-user crash recovery first when it was not shut down cleanly) — or, when it cannot be
    rewound, rebuild it with ``pg_basebackup`` — write its standby configuration, start it and wait
    until it streams. WAL only ``node`` held is discarded. Returns what was done. Raises
    :class:`FailoverFailed` naming the node and ``invoke failover.rejoin``."""
    hint = f"read {node.log_file}, then run `invoke failover.rejoin --node {node.name} --yes`."
    stack.stop_node(node, "fast")
    stack.clear_stale_pid(node)  # a killed postmaster (kill -9) leaves its lock file behind
    why_not = rewindable(stack, layout, node)
    if why_not is None:
        src = layout.primary
        # pg_rewind reads the source's timeline from its pg_control, which a just-promoted server
        # updates only at its next checkpoint; before it, pg_rewind sees one timeline and says "no
        # rewind required" (Patroni's rewind.py checkpoints after a promote for the same reason)
        with _conn(stack, src) as c:
            c.execute("CHECKPOINT")
        # a node that crashed is recovered by pg_rewind in single-user mode, which refuses standby
        # mode: lift the fence for the rewind only, and put it back whatever happens
        signal = node.data_dir / "standby.signal"
        signal.unlink(missing_ok=True)
        try:
            run_server_cmd([str(pg_bindir() / "pg_rewind"), f"--target-pgdata={node.data_dir}",
                            f"--source-server=host=127.0.0.1 port={src.port} user=postgres dbname=postgres"],
                           what=f"pg_rewind of '{node.name}' against '{src.name}'",
                           env={"PGPASSFILE": str(layout.passfile)}, timeout=600)
        except OpsError as exc:
            raise FailoverFailed(f"rejoining '{node.name}'", exc.message, hint) from None
        finally:
            write_standby_config(layout, node)
        stack.start_node(node)
        how = f"rewound with pg_rewind against '{src.name}'"
    else:
        stack.rebuild_replica(node)  # the stack's recorded layout already names the new primary
        how = f"rebuilt with pg_basebackup (pg_rewind impossible: {why_not})"
    if not wait_streaming(stack, layout, node):
        raise FailoverFailed(f"rejoining '{node.name}'", f"{how}, but it did not reach state streaming within "
                             f"{STREAM_TIMEOUT_S:.0f} s", hint)
    return f"{how}; streaming from '{layout.primary.name}'"


# ---- what clients see -----------------------------------------------------------------------------------
class ClientWatch:
    """A client of the pooler (pooler-safe settings, :class:`~ops.probe.WriteProbe` in ``xact`` mode:
    each probe a write transaction) from the first step of a switchover or promote until its first
    write on the new primary, so the report gives the pause clients saw, not only the pooler's own
    PAUSE-to-RESUME figure (issue 19: after a promote clients waited 13 s more, PgBouncer's
    ``server_login_retry``). Does nothing on a stack without a running pooler."""

    def __init__(self, stack: LocalStack, admin: PoolerAdmin):
        self.stack = stack
        self.enabled = stack.layout.pooler is not None and admin.running
        self.probe: WriteProbe | None = None

    def start(self) -> None:
        if self.enabled and self.probe is None:
            self.probe = WriteProbe({**self.stack.pooler_conninfo(), "dbname": "postgres"}, mode="xact",
                                    what="failover probe", interval_s=PROBE_INTERVAL_S).start()

    def finish(self, report: FailoverReport, since: float | None, new_name: str) -> str:
        """Wait (≤ :data:`CLIENT_WAIT_S`) for a probe write acknowledged at or after ``since`` (monotonic
        seconds: the pooler pointed at / resumed on the new primary), stop the probe and record the
        figures in ``report``. Raises :class:`FailoverFailed` when no client write gets through."""
        if self.probe is None:
            return "no pooler runs: no client probe"
        since = time.monotonic() if since is None else since
        got = self.probe.wait_acknowledged_since(since, CLIENT_WAIT_S)
        res = self.probe.stop()
        first = self.probe.first_ack_since(since)
        report.clients = {"first_write_s": None if first is None else round(first - since, 3),
                          "acknowledged": res["acknowledged"], "errors": res["errors"],
                          "first_error": res["first_error"], "resolution_s": round(PROBE_INTERVAL_S, 3)}
        if not got:
            raise FailoverFailed("client writes through the pooler",
                                 f"no write through the pooler reached '{new_name}' within {CLIENT_WAIT_S:.0f} s "
                                 f"(first error: {res['first_error'] or 'none'})",
                                 "run `invoke local.status`; read the pooler's pgbouncer.log under the state directory.")
        report.client_write_gap_s = round(res["write_pause_ms"] / 1000, 3)
        return (f"a client write through the pooler reached '{new_name}' {report.clients['first_write_s']:.3f} s after "
                f"it was pointed there; clients saw at most {report.client_write_gap_s:.3f} s between acknowledged writes")

    def abandon(self) -> None:
        if self.probe is not None and self.probe.stopped_at is None:
            self.probe.stop()


# ---- operations --------------------------------------------------------------------------------------
class _Timed:
    """Runs a step's body, recording its UTC start and seconds in the report."""

    def __init__(self, report: FailoverReport):
        self.report = report

    def __call__(self, name: str, body: Callable[[], str]) -> Callable[[], str]:
        def run() -> str:
            started, t0 = _now(), time.monotonic()
            try:
                detail = body()
            except OpsError:
                raise
            except Exception as exc:  # noqa: BLE001 - a server or PgBouncer error: one message, then unwind
                raise FailoverFailed(f"step '{name}'", redact(str(exc)).strip(),
                                     "read the message above and `invoke local.status`, then retry.") from None
            self.report.record(name, started, time.monotonic() - t0, detail)
            return detail
        return run


def _pick(stack: LocalStack, name: str | None, what: str, flag: str) -> NodeSpec | None:
    """The replica named by ``flag``; raises FailoverRefused for an unknown node or the primary."""
    if name is None:
        return None
    lay = stack.layout
    names = [n.name for n in lay.replica_nodes]
    if name not in {n.name for n in lay.nodes}:
        raise FailoverRefused(what, [f"the local stack has no node '{name}' (replicas: {', '.join(names) or 'none'})"],
                              f"choose a replica: `invoke {flag} {names[0] if names else 'NODE'}`, "
                              "see them with `invoke local.status`.")
    node = lay.node(name)
    if node.role != "replica":
        raise FailoverRefused(what, [f"'{name}' is the primary, not a replica"],
                              f"choose a replica: `invoke {flag} {names[0] if names else 'NODE'}`.")
    return node


def switchover(stack: LocalStack, *, to: str | None, force: bool, rerun: str,
               max_lag: int = MAX_LAG_BYTES) -> Operation:
    """Plan a switchover of the local stack to ``to`` (default: the most advanced streaming replica).

    The guards run now and again just before the first step; a refusal raises
    :class:`FailoverRefused` (exit 11) having changed nothing. ``force`` lifts only the lag guard.
    """
    what = "switchover"
    lay = stack.layout
    old = lay.primary
    cand_node = _pick(stack, to, what, "failover.switchover --to")
    if cand_node is None:
        states = [measure(stack, n) for n in lay.replica_nodes]
        best = choose_candidate([s for s in states if s.streaming])
        if best is None:
            raise FailoverRefused(what, ["no replica is streaming from the primary"] +
                                  [f"'{s.name}': {s.detail or 'not streaming'}" for s in states],
                                  "run `invoke local.status` and `invoke local.up`, then retry.")
        cand_node = lay.node(best.name)

    def refusals() -> list[str]:
        return switchover_refusals(measure(stack, old), measure(stack, cand_node), force=force, max_lag=max_lag)
    reasons = refusals()
    if reasons:
        hint = "run `invoke local.status`, fix the replica (`invoke local.up`), then retry"
        if any("over the limit" in r for r in reasons):
            hint = (f"wait for '{cand_node.name}' to catch up (resume its replay if paused) and retry, or accept "
                    f"losing nothing but waiting longer with `invoke failover.switchover --to {cand_node.name} --force`")
        raise FailoverRefused(f"{what} to '{cand_node.name}'", reasons, hint + ".")

    new_layout = lay.with_roles({cand_node.name: "primary", old.name: "replica"})
    new_primary = new_layout.node(cand_node.name)
    old_as_replica = new_layout.node(old.name)
    others = [n for n in new_layout.replica_nodes if n.name != old.name]
    admin = PoolerAdmin(stack, "failover")
    has_pooler = lay.pooler is not None and admin.running
    report = FailoverReport("switchover", "local", old.name, cand_node.name, _now().isoformat(timespec="seconds"))
    timed = _Timed(report)
    state = {"paused_at": None, "resumed": False, "stopped": False, "promote_called": False, "promoted": False,
             "pointed": False, "checkpoint": None}
    rewind_note = rewindable(stack, new_layout, old)  # judged on the candidate as source once promoted
    clients = ClientWatch(stack, admin)

    def pause() -> str:
        if not has_pooler:
            return "no pooler runs: clients of the primary see it stop"
        clients.start()
        try:
            admin.pause(PAUSE_TIMEOUT_S)
        except TimeoutError:
            admin.resume()  # the PAUSE was abandoned with its session: nothing is pending (pgbouncer #715)
            raise
        state["paused_at"] = time.monotonic()
        return f"PgBouncer on port {lay.pooler.port} paused"

    def stop_old() -> str:
        stack.stop_node(old, "fast")
        state["stopped"] = True
        state["checkpoint"] = parse_lsn(controldata(old.data_dir)["Latest checkpoint location"])
        return f"'{old.name}' stopped (fast); shutdown checkpoint at {format_lsn(state['checkpoint'])}"

    def catch_up() -> str:
        ckpt = state["checkpoint"]
        deadline = time.monotonic() + CATCHUP_TIMEOUT_S
        with _conn(stack, cand_node) as c:
            while True:
                replayed = parse_lsn(c.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0])
                if replayed is not None and replayed > ckpt:
                    return f"'{cand_node.name}' replayed up to {format_lsn(replayed)}"
                if time.monotonic() > deadline:
                    raise FailoverFailed(f"switchover to '{cand_node.name}'",
                                         f"it replayed only up to {format_lsn(replayed)} of the shutdown checkpoint at "
                                         f"{format_lsn(ckpt)} within {CATCHUP_TIMEOUT_S:.0f} s",
                                         "run `invoke local.status`, then retry `invoke failover.switchover`.")
                time.sleep(0.05)

    def promote() -> str:
        state["promote_called"] = True
        promote_node(stack, cand_node)
        state["promoted"] = True
        record_roles(stack, new_layout, old_as_replica)  # fence: the old primary can only start as a replica
        return f"'{cand_node.name}' promoted; roles recorded in {lay.state_file.name}; '{old.name}' fenced (standby.signal)"

    def point_pooler() -> str:
        return point_pooler_at(admin, new_layout, state)

    def resume() -> str:
        if not has_pooler:
            return "no pooler"
        admin.resume()
        state["resumed"] = True
        state["resumed_at"] = time.monotonic()
        report.write_pause_s = round(state["resumed_at"] - state["paused_at"], 3)
        return f"RESUME; client writes were held {report.write_pause_s:.3f} s"

    def watch_clients() -> str:
        return clients.finish(report, state.get("resumed_at"), cand_node.name)

    def repoint_others() -> str:
        for n in others:
            repoint_running(stack, new_layout, n) if node_pid(n) is not None else write_standby_config(new_layout, n)
        behind = [n.name for n in others if node_pid(n) is not None and not wait_streaming(stack, new_layout, n)]
        if behind:
            raise FailoverFailed("re-pointing replicas", f"{', '.join(behind)} did not reach state streaming from "
                                 f"'{new_primary.name}'", f"run `invoke failover.rejoin --node {behind[0]} --yes`.")
        return ", ".join(f"'{n.name}'" for n in others) + f" stream from '{new_primary.name}'" if others else "no other replicas"

    def rewind_old() -> str:
        return rejoin(stack, new_layout, old_as_replica)

    guard = (f"'{cand_node.name}' streaming, on the primary's timeline, replay lag ≤ {max_lag:,} bytes"
             + (" (lifted by --force)" if force else ""))
    plan = Plan(f"switchover of the local stack from '{old.name}' to '{cand_node.name}'", rerun)
    plan.steps += [
        Step(f"pause the pooler (PgBouncer PAUSE on port {lay.pooler.port if lay.pooler else '—'}, at most "
             f"{PAUSE_TIMEOUT_S:.0f} s)", timed("pause pooler", pause), guard,
             check=lambda: "; ".join(refusals()) or None),
        Step(f"stop '{old.name}' cleanly (pg_ctl stop -m fast)", timed("stop old primary", stop_old)),
        Step(f"wait until '{cand_node.name}' has replayed the shutdown checkpoint (≤ {CATCHUP_TIMEOUT_S:.0f} s)",
             timed("replay shutdown checkpoint", catch_up)),
        Step(f"promote '{cand_node.name}' (pg_promote), fence '{old.name}', record the new roles",
             timed("promote", promote)),
        Step(f"point the pooler at '{cand_node.name}' (port {new_primary.port}: pgbouncer.ini, RELOAD)",
             timed("point pooler", point_pooler)),
        Step("resume the pooler (RESUME)", timed("resume pooler", resume)),
        Step(f"wait for a client write through the pooler on '{cand_node.name}' (≤ {CLIENT_WAIT_S:.0f} s) and "
             "report the longest gap clients saw", timed("client writes", watch_clients)),
        Step("point " + (", ".join(f"'{n.name}'" for n in others) or "no other replica") +
             f" at '{cand_node.name}' (primary_conninfo, slot, reload)", timed("re-point replicas", repoint_others)),
        Step(f"rewind '{old.name}' with pg_rewind and start it as a replica of '{cand_node.name}'"
             + (f" (or rebuild it with pg_basebackup: {rewind_note})" if rewind_note else ""),
             timed("rejoin old primary", rewind_old)),
    ]
    plan.notes.append("client queries wait in the pooler from PAUSE to RESUME; nothing acknowledged is lost")

    def unwind() -> list[str]:
        done = []
        clients.abandon()
        try:
            if state["stopped"] and not state["promoted"]:
                safe = not state["promote_called"]
                if not safe:
                    s = measure(stack, cand_node)
                    safe = s.answers and bool(s.in_recovery)
                if safe:
                    stack.start_node(old)
                    done.append(f"restarted '{old.name}' as the primary ('{cand_node.name}' was not promoted)")
                else:
                    done.append(f"did NOT restart '{old.name}': '{cand_node.name}' may have been promoted; "
                                "check with `invoke local.status`")
            if state["promoted"] and not state["pointed"] and lay.pooler is not None:
                admin.point_at(new_layout)
                done.append(f"pointed the pooler at '{cand_node.name}'")
        except Exception as exc:  # noqa: BLE001 - unwinding reports, the pooler must still resume
            done.append(f"unwinding failed: {redact(str(exc))}")
        if state["paused_at"] is not None and not state["resumed"]:
            try:
                admin.resume()
                done.append("resumed the pooler")
            except Exception as exc:  # noqa: BLE001
                done.append(f"RESUME failed ({redact(str(exc))}): run it on the admin console "
                            f"(psql -h 127.0.0.1 -p {lay.pooler.port} -U postgres pgbouncer)")
        return done
    return Operation(plan, report, unwind)


def promote(stack: LocalStack, *, node: str | None, rerun: str) -> Operation:
    """Plan the promotion of ``node`` (default: the most advanced replica) after the primary is lost.

    Refused (:class:`FailoverRefused`, nothing changed) while the primary runs or answers — that is
    a switchover's job. The plan's notes say how much WAL the lost primary may have held that the
    candidate lacks (:func:`wal_end`), before anything is confirmed.
    """
    what = "promote"
    lay = stack.layout
    old = lay.primary
    chosen = _pick(stack, node, what, "failover.promote --node")
    lost = measure(stack, old)
    if lost.answers or node_pid(old) is not None:
        raise FailoverRefused(what, [f"the primary '{old.name}' (port {old.port}) is running"],
                              "for a planned change of primary run `invoke failover.switchover` instead.")
    states = {n.name: measure(stack, n) for n in lay.replica_nodes}
    cand = states[chosen.name] if chosen else choose_candidate(list(states.values()))
    if cand is None or not cand.answers or not cand.in_recovery:
        why = [f"'{s.name}': {s.detail or ('not in recovery' if s.answers else 'does not answer')}" for s in states.values()]
        raise FailoverRefused(what, ["no replica can be promoted" if cand is None else f"'{cand.name}' cannot be promoted",
                                     *why], "start the replicas with `invoke local.up`, then retry.")
    cand_node = lay.node(cand.name)
    lost_end, lost_source = wal_end(old.data_dir) if (old.data_dir / "PG_VERSION").exists() else \
        (None, "its data directory is missing")
    new_layout = lay.with_roles({cand_node.name: "primary", old.name: "replica"})
    new_primary = new_layout.node(cand_node.name)
    others = [n for n in new_layout.replica_nodes if n.name != old.name]
    admin = PoolerAdmin(stack, "failover")
    report = FailoverReport("promote", "local", old.name, cand_node.name, _now().isoformat(timespec="seconds"),
                            lost_primary_lsn=format_lsn(lost_end), lost_primary_source=lost_source)
    timed = _Timed(report)
    t0 = time.monotonic()
    state = {"promoted": False, "pointed": False}
    clients = ClientWatch(stack, admin)

    def do_promote() -> str:
        clients.start()
        promote_node(stack, cand_node)
        state["promoted"] = True
        fork = switch_point(stack, cand_node)
        report.promoted_at_lsn = format_lsn(fork)
        report.wal_gap_bytes = wal_gap(lost_end, fork)
        fence = (old.data_dir / "PG_VERSION").exists() and node_pid(old) is None  # it can only start as a replica
        record_roles(stack, new_layout, new_layout.node(old.name) if fence else None)
        fenced = f"; '{old.name}' fenced (standby.signal)" if fence else ""
        return f"'{cand_node.name}' promoted at {report.promoted_at_lsn}; roles recorded{fenced}"

    def point_pooler() -> str:
        done = point_pooler_at(admin, new_layout, state)
        state["pointed_at"] = time.monotonic()
        report.write_pause_s = round(state["pointed_at"] - t0, 3)
        return done

    def watch_clients() -> str:
        return clients.finish(report, state.get("pointed_at"), cand_node.name)

    def repoint_others() -> str:
        out = []
        for n in others:
            s = states[n.name]
            if node_pid(n) is None:
                write_standby_config(new_layout, n)
                out.append(f"'{n.name}' (stopped) configured to follow on start")
            elif s.position is not None and report.promoted_at_lsn and s.position > parse_lsn(report.promoted_at_lsn):
                out.append(f"'{n.name}' was ahead of the fork point: " + rejoin(stack, new_layout, n))
            else:
                repoint_running(stack, new_layout, n)
                if not wait_streaming(stack, new_layout, n):
                    raise FailoverFailed(f"re-pointing '{n.name}'", f"it did not reach state streaming from "
                                         f"'{new_primary.name}'", f"run `invoke failover.rejoin --node {n.name} --yes`.")
                out.append(f"'{n.name}' streams from '{new_primary.name}'")
        return "; ".join(out) or "no other replicas"

    plan = Plan(f"promote '{cand_node.name}' of the local stack (primary '{old.name}' is lost)", rerun)
    plan.steps += [
        Step(f"promote '{cand_node.name}' (pg_promote), fence '{old.name}' so it can only start as a replica, "
             "record the new roles", timed("promote", do_promote),
             f"'{old.name}' not running; '{cand_node.name}' in recovery",
             check=lambda: (f"'{old.name}' is running again" if node_pid(old) is not None else None)),
        Step(f"point the pooler at '{cand_node.name}' (port {new_primary.port}: pgbouncer.ini, RELOAD)",
             timed("point pooler", point_pooler)),
        Step(f"wait for a client write through the pooler on '{cand_node.name}' (≤ {CLIENT_WAIT_S:.0f} s) and "
             "report the longest gap clients saw", timed("client writes", watch_clients)),
        Step("point " + (", ".join(f"'{n.name}'" for n in others) or "no other replica") + f" at '{cand_node.name}'",
             timed("re-point replicas", repoint_others)),
    ]
    behind = wal_gap(lost_end, cand.position)
    plan.notes.append(f"the lost primary's WAL ends at {format_lsn(lost_end) or 'unknown'} ({lost_source}); "
                      f"'{cand.name}' holds WAL up to {format_lsn(cand.position)}: "
                      + ("unknown loss" if behind is None else f"{behind:,} bytes may be lost"))
    plan.notes.append(f"afterwards bring '{old.name}' back as a replica with `invoke failover.rejoin --node {old.name} --yes` "
                      "(discards the WAL only it holds)")

    def unwind() -> list[str]:
        done = []
        clients.abandon()
        if state["promoted"] and not state["pointed"] and lay.pooler is not None:
            try:
                admin.point_at(new_layout)
                done.append(f"pointed the pooler at '{cand_node.name}'")
            except Exception as exc:  # noqa: BLE001
                done.append(f"pointing the pooler failed: {redact(str(exc))}")
        return done
    return Operation(plan, report, unwind)


def rejoin_plan(stack: LocalStack, *, node: str | None, rerun: str) -> Operation:
    """Plan ``failover.rejoin``: make replica ``node`` (a lost or old primary, or a replica that
    diverged) stream from the current primary again with pg_rewind (or pg_basebackup). Without
    ``node``: every replica that is not streaming from the primary — what a responder means after a
    promote, without having to know which node the lost primary was (its name is not a role)."""
    lay = stack.layout
    if node is None:
        targets = [n for n in lay.replica_nodes if not measure(stack, n).streaming]
    else:
        targets = [_pick(stack, node, "rejoin", "failover.rejoin --node")]
    names = ", ".join(f"'{n.name}'" for n in targets) or "no replica"
    prim = measure(stack, lay.primary)
    if not prim.answers or prim.in_recovery:
        raise FailoverRefused(f"rejoin of {names}", [f"the primary '{lay.primary.name}' does not answer as a primary"],
                              "run `invoke local.status`; after losing the primary run `invoke failover.promote`.")
    report = FailoverReport("rejoin", "local", lay.primary.name, lay.primary.name, _now().isoformat(timespec="seconds"))
    plan = Plan(f"rejoin {names} to the local stack as replica(s) of '{lay.primary.name}'", rerun)
    for target in targets:
        why_not = rewindable(stack, lay, target)
        plan.steps.append(Step(f"stop '{target.name}', " + ("rewind it with pg_rewind" if why_not is None else
                                                           f"rebuild it with pg_basebackup ({why_not})")
                               + f", start it as a replica of '{lay.primary.name}'",
                               _Timed(report)(f"rejoin {target.name}", lambda t=target: rejoin(stack, lay, t)),
                               f"'{lay.primary.name}' answers as the primary"))
        plan.notes.append(f"WAL that only '{target.name}' holds (beyond the point the primary forked) is discarded")
    if not targets:
        plan.notes.append("every replica streams from the primary: nothing to rejoin")
    return Operation(plan, report)
