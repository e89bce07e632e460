"""``db.terminate``, ``db.drop-slot``, ``db.reindex-invalid``: the fixes the runbooks name for a failing
health check, each a plan shown before it changes anything (confirmation on a terminal, or ``--yes``).

They join the ``db`` collection (``ops.tasks.db.ns``); the I/O is ``ops.health.remedies``.
"""
from __future__ import annotations

from ..errors import ConfigError, RemedyError
from ..planapply import Plan, Step, execute
from .common import HELP, cli, rerun, target_for, task

TARGET = {k: HELP[k] for k in ("stack", "dsn")}


@task(name="terminate", help={
    **TARGET,
    "check": "the health check whose offenders to end: long_transaction | idle_in_transaction | blocked_queries "
             "(blocked_queries ends the sessions holding the locks)",
    "older_than": "seconds the check must measure for a session to be ended (default: the check's warn threshold "
                  "from ops/thresholds.py, or $PGOPS_THRESHOLDS)",
    "dry_run": "show the plan; end nothing",
    "yes": HELP["yes"]})
@cli.edge
def terminate(c, check=None, older_than=None, stack=None, dsn=None, dry_run=False, yes=False):
    """End the sessions a health check flags, on every server of the target, with pg_terminate_backend
    (their open transaction rolls back). Never pgops's own sessions (application_name 'pgops/…') nor this one."""
    from ..health.checks import parse_overrides
    from ..health.remedies import SESSION_CHECKS, terminate as end
    if check is None:
        raise ConfigError([f"db.terminate needs --check, one of {', '.join(SESSION_CHECKS)}"],
                          "run `invoke health` to see which check fails.")
    cli.choice(check, "--check", SESSION_CHECKS)
    target = target_for(stack, dsn)
    default = parse_overrides(list(target.settings.thresholds))[check].warn
    threshold = cli.as_float(older_than, "--older-than", default)
    nodes = [(name, params) for name, _, params in target.health_nodes()]
    found = [s for name, params in nodes for s in _answering(name, params, check, threshold)]
    ours = [s for s in found if s.is_pgops]
    params_of = dict(nodes)
    p = Plan(f"end the sessions {check} flags (≥ {threshold:g} s)",
             rerun("db.terminate", cli.target_args(stack, dsn, None), "--check", check,
                   *(["--older-than", str(older_than)] if older_than is not None else [])),
             [Step(f"end {s.describe()}", lambda s=s: (s, end(params_of[s.node], s)),
                   guard="still the same session and transaction, and not a pgops session")
              for s in found if not s.is_pgops],
             [f"not ended, pgops's own (let it finish): {s.describe()}" for s in ours])
    done = execute(p, yes=yes, dry_run=dry_run, show=cli.say)
    for s, ended in done or []:
        cli.say(f"pid {s.pid} on {s.node}: " + ("ended" if ended else "had already finished or moved on"))
    if done is not None:
        left = [s for name, params in nodes for s in _answering(name, params, check, threshold) if not s.is_pgops]
        cli.say(f"re-check: {check}: " + ("no session left over the threshold" if not left else
                                          "still over: " + "; ".join(s.describe() for s in left)))


def _answering(node: str, params: dict, check: str, threshold: float) -> list:
    """The offenders on one server; a server that does not answer has none to end (node_down says so)."""
    from ..errors import ConnectError
    from ..health.remedies import offenders
    try:
        return offenders(node, params, check, threshold)
    except ConnectError as exc:
        cli.warn(f"{node}: not checked: {exc.message}")
        return []


@task(name="drop-slot", help={**TARGET, "slot": "the replication slot to drop (the health check's detail names it)",
                              "dry_run": "show the plan; drop nothing", "yes": HELP["yes"]})
@cli.edge
def drop_slot(c, slot=None, stack=None, dsn=None, dry_run=False, yes=False):
    """Drop an inactive replication slot on the primary so the WAL it keeps can be recycled. Refuses an
    active slot (its consumer is reading) and an unknown one (the message lists the slots)."""
    from ..health.remedies import drop_slot as drop, slots
    if not slot:
        raise ConfigError(["db.drop-slot needs --slot NAME"], "run `invoke health --format json`: "
                          "replication_slot_retained_wal names the slot.")
    target = target_for(stack, dsn)
    have = slots(target.primary)
    s = have.get(slot)
    if s is None:
        raise RemedyError(slot, f"No replication slot '{slot}' on the primary (slots: {', '.join(have) or 'none'}).",
                          "run `invoke health --format json` for the slot the check names.")
    if s.active:
        raise RemedyError(slot, f"Replication slot '{slot}' is active (pid {s.active_pid} reads from it); dropping it "
                          "would cut its consumer off.", "stop the consumer first, or leave the slot.")

    def still_inactive() -> str | None:
        now = slots(target.primary).get(slot)
        return "it no longer exists" if now is None else f"it is active again (pid {now.active_pid})" if now.active else None
    p = Plan(f"drop replication slot '{slot}'",
             rerun("db.drop-slot", cli.target_args(stack, dsn, None), "--slot", slot),
             [Step(f"drop {s.kind} slot {slot}" + (f" of database {s.database}" if s.database else "") +
                   f" (inactive, wal_status {s.wal_status or 'n/a'}, keeping {s.retained_bytes / 2**20:,.1f} MiB of WAL)",
                   lambda: drop(target.primary, s), guard="the slot is still inactive", check=still_inactive)],
             ["a consumer that still needs this slot must be rebuilt afterwards (a replica: from a new base backup)"])
    if execute(p, yes=yes, dry_run=dry_run, show=cli.say) is not None:
        cli.say(f"re-check: slot '{slot}' " + ("is gone" if slot not in slots(target.primary) else "still exists"))


@task(name="reindex-invalid", iterable=["db"], help={**TARGET, "sql_root": HELP["sql_root"], "db": HELP["db"],
                                                      "dry_run": "show the plan; rebuild nothing", "yes": HELP["yes"]})
@cli.edge
def reindex_invalid(c, stack=None, dsn=None, sql_root=None, db=None, dry_run=False, yes=False):
    """Rebuild every INVALID index (left by a failed CREATE INDEX CONCURRENTLY) with REINDEX INDEX
    CONCURRENTLY, one at a time, without blocking writes. An index a build is still working on is left alone."""
    from ..health.remedies import invalid_indexes, reindex, still_invalid
    target = target_for(stack, dsn, sql_root)
    refs = target.databases(list(db or []) or None)
    found = [ix for ref in refs for ix in invalid_indexes(target.primary, ref.name)]
    building = [ix for ix in found if ix.building]
    p = Plan(f"rebuild {len(found) - len(building)} INVALID index(es)",
             rerun("db.reindex-invalid", cli.target_args(stack, dsn, sql_root), *[f"--db {d}" for d in db or []]),
             [Step(f"REINDEX INDEX CONCURRENTLY {ix.schema}.{ix.name} on {ix.table} in {ix.database}",
                   lambda ix=ix: reindex(target.primary, ix), guard="still INVALID, no build running on it",
                   check=lambda ix=ix: still_invalid(target.primary, ix))
              for ix in found if not ix.building],
             [f"{ix.database}: {ix.schema}.{ix.name} is being built right now: left alone" for ix in building])
    if execute(p, yes=yes, dry_run=dry_run, show=cli.say) is not None:
        left = [f"{ix.database}: {ix.schema}.{ix.name}" for ref in refs for ix in invalid_indexes(target.primary, ref.name)]
        cli.say("re-check: " + ("no INVALID index left" if not left else "still INVALID: " + ", ".join(left)))


TASKS = (terminate, drop_slot, reindex_invalid)
