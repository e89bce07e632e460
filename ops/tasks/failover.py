"""``failover.*``: a planned switchover, the promotion of a replica after the primary is lost, and
bringing an old primary back as a replica. Each shows its plan first (``--yes`` off a terminal)."""
from __future__ import annotations

from invoke import Collection

from .common import HELP, cli, rerun, target_for, task

TARGET = {k: HELP[k] for k in ("stack", "dsn")}


@task(help={**TARGET, "to": "the replica to promote (default: the most advanced streaming one; local stack only)",
            "force": "switch over even when the replica's replay lag is over 1 MiB (the other guards still hold)",
            "yes": HELP["yes"], "json_": HELP["json_"]})
@cli.edge
def switchover(c, to=None, force=False, yes=False, json_=False, stack=None, dsn=None):
    """Planned change of primary, losing nothing: guards, PAUSE, clean stop, promote, re-point, rewind, RESUME."""
    target = target_for(stack, dsn)
    extra = [*(["--to", to] if to else []), *(["--force"] if force else [])]
    op = target.switchover(to=to, force=force, rerun=_rerun("failover.switchover", stack, dsn, extra))
    _present(op.run(yes=yes, show=cli.progress if json_ else cli.say), json_)


@task(help={**TARGET, "node": "the replica to promote (default: the most advanced one)", "yes": HELP["yes"],
            "json_": HELP["json_"]})
@cli.edge
def promote(c, node=None, yes=False, json_=False, stack=None, dsn=None):
    """The primary is lost: promote a replica, re-point the others and the pooler, report the WAL gap."""
    target = target_for(stack, dsn)
    op = target.promote(node=node, rerun=_rerun("failover.promote", stack, dsn, ["--node", node] if node else []))
    _present(op.run(yes=yes, show=cli.progress if json_ else cli.say), json_)


@task(help={**TARGET, "node": "the node to bring back as a streaming replica (default: every replica not "
                             "streaming from the primary, e.g. the old primary after a promote)",
            "yes": HELP["yes"], "json_": HELP["json_"]})
@cli.edge
def rejoin(c, node=None, yes=False, json_=False, stack=None, dsn=None):
    """Make NODE (default: every replica not streaming) follow the primary again: pg_rewind (or pg_basebackup), start, wait."""
    target = target_for(stack, dsn)
    op = target.rejoin(node=node, rerun=_rerun("failover.rejoin", stack, dsn, ["--node", node] if node else []))
    _present(op.run(yes=yes, show=cli.progress if json_ else cli.say), json_)


def _rerun(name: str, stack, dsn, extra: list[str]) -> str:
    return rerun(name, cli.target_args(stack, dsn, None), *extra)


def _present(report, json_: bool) -> None:
    if report is None:
        return
    if json_:
        cli.emit_json(report.as_dict())
        return
    cli.table(f"{report.kind}: {report.old_primary} → {report.new_primary} ({report.stack})",
              ["step", "started (UTC)", "seconds", "detail"],
              [[s.name, s.started_at, f"{s.seconds:.3f}", s.detail] for s in report.steps])
    if report.write_pause_s is not None:
        cli.say(f"write pause: {report.write_pause_s:.3f} s (client queries held by the pooler)")
    if report.client_write_gap_s is not None:
        c = report.clients or {}
        cli.say(f"clients saw: {report.client_write_gap_s:.3f} s at most between acknowledged writes through the "
                f"pooler (a probe every {c.get('resolution_s', 0):.2f} s); the first write on the new primary was "
                f"acknowledged {c.get('first_write_s', 0):.3f} s after the pooler was pointed at it")
    cli.say(f"WAL the new primary lacks: {report.wal_gap_text}")
    for note in report.notes:
        cli.say(f"note: {note}")


ns = Collection("failover", switchover, promote, rejoin)
