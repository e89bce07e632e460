"""``local.*``: the local stack (primary + streaming replicas on loopback ports)."""
from __future__ import annotations

from invoke import Collection

from ..errors import LocalStackError
from ..planapply import Plan, Step, execute
from ..settings import current
from .common import HELP, cli, task


@task(help={"replicas": "streaming replicas (default 1, or the existing count)",
            "port": "primary port; replicas take the next ones (default 54320 or $PGOPS_LOCAL_PORT)",
            "json_": HELP["json_"]})
@cli.edge
def up(c, replicas=None, port=None, json_=False):
    """Start the local stack (primary + N streaming replicas); idempotent, recovers a crashed node."""
    from ..local.cluster import open_stack
    st = open_stack(current().state_dir, port=cli.as_int(port, "--port", minimum=1),
                    replicas=cli.as_int(replicas, "--replicas", minimum=0))
    _recover(st)
    print_nodes(st.up(), json_, f"local stack up ({st.layout.state_dir})")


def _recover(st) -> None:
    """A cutover switch killed mid-way is finished or undone first (the pooler resumed, ``stack.json``
    and the pooler agreeing), so the stack is never brought up around a half-made switch."""
    from ..cutover.local import recover_interrupted
    for line in recover_interrupted(st):
        cli.warn(f"recovered an interrupted cutover switch: {line}")


@task(help={"json_": HELP["json_"]})
@cli.edge
def status(c, json_=False):
    """Show every local node: role, port, pid, state, replay lag in bytes; exit 3 when a node is down."""
    from ..local.cluster import open_stack
    st = open_stack(current().state_dir)
    _recover(st)
    nodes = st.status()
    print_nodes(nodes, json_, f"local stack ({st.layout.state_dir})")
    down = [n["name"] for n in nodes if n["state"] != "running"]
    held = [n["name"] for n in nodes if n["state"] == "paused"]
    if held:
        raise LocalStackError(f"Local stack {', '.join(held)} holds every query (PAUSEd, and no cutover command "
                              "that could resume it is recorded as interrupted).",
                              "run `invoke cutover.status` (a cutover or failover in progress shows there); if "
                              "nothing runs, resume it: `psql -h 127.0.0.1 -p <pooler port> -U postgres pgbouncer "
                              "-c RESUME`.")
    if down:
        raise LocalStackError(f"Local stack node(s) not running: {', '.join(down)}.", "start them with `invoke local.up`.")


@task(help={"purge": "also delete the state directory (data, logs, local backups); shows the plan first",
            "yes": HELP["yes"]})
@cli.edge
def down(c, purge=False, yes=False):
    """Stop the local stack (replicas first); --purge deletes its data and backups after a confirmation."""
    from ..local.cluster import open_stack
    st = open_stack(current().state_dir)
    if not purge:
        done = st.down()
        cli.say("\n".join(done) if done else "local stack: nothing running")
        return
    plan = purge_plan(st)
    results = execute(plan, yes=yes, show=cli.say,
                      recheck=lambda: cli.say(f"re-check: {st.layout.state_dir} "
                                              f"{'still exists' if st.layout.state_dir.exists() else 'is gone'}"))
    for r in results or []:
        cli.say("\n".join(r) if r else "local stack: nothing running")


def purge_plan(st) -> Plan:
    """``local.down --purge``: stop every node, then delete the state directory; the note says how
    many backups the local repository holds (they go with it)."""
    from ..backups.engine import list_backups
    from ..backups.repository import open_repository
    repo_dir = st.layout.repository_dir
    backups = list_backups(open_repository(repo_dir.as_uri())) if repo_dir.is_dir() else []
    plan = Plan(f"purge the local stack in {st.layout.state_dir}", "invoke local.down --purge --yes")
    if not st.layout.state_dir.exists():
        return plan
    plan.steps.append(Step(f"stop every node and delete {st.layout.state_dir} (data directories, logs, passfile, "
                           f"repository)", lambda: st.down(purge=True),
                           guard="nodes stopped replicas first, fast shutdown"))
    plan.notes.append(f"{len(backups)} backup(s) in {repo_dir} will be deleted with it")
    return plan


def print_nodes(nodes, json_, title):
    if json_:
        cli.emit_json({"nodes": nodes})
        return
    cli.table(title, ["name", "role", "host", "port", "pid", "state", "replay lag (bytes)"],
              [[n["name"], n["role"], n["host"], n["port"], n["pid"], n["state"], n["replay_lag_bytes"]] for n in nodes])
    for n in nodes:  # the pooler's limits (PgBouncer cannot keep prepared statements), a fenced node's phase
        if n.get("note"):
            cli.say(f"note ({n['name']}): {n['note']}")


ns = Collection("local", up, status, down)
