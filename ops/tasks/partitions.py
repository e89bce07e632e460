"""``db.partitions``: monthly partitions kept by pgops (plan from the clock, applied in short transactions
under ``lock_timeout``); added to the ``db`` collection by :mod:`ops.tasks.db`."""
from __future__ import annotations

import shlex

from ..planapply import Plan, Step, execute
from .common import HELP, cli, open_repo, rerun, target_for, task

DESTRUCTIVE = ("detach", "archive", "drop")


@task(name="partitions", iterable=["db"], help={
    "stack": HELP["stack"], "dsn": HELP["dsn"], "sql_root": HELP["sql_root"], "db": HELP["db"],
    "json_": HELP["json_"], "yes": HELP["yes"], "repository": HELP["repository"],
    "apply": "carry the plan out (without it: show the plan, change nothing)",
    "archive": "pg_dump each partition retention detaches into the backup repository (sha256 in a manifest) "
               "before dropping it",
    "lock_timeout": "lock_timeout of each step, seconds (default 1)",
    "retries": "retries of a step after a lock timeout (default 5; backoff 0.2 s × 2^n with jitter)"})
@cli.edge
def partitions(c, stack=None, dsn=None, sql_root=None, db=None, apply=False, yes=False, archive=False,
               repository=None, lock_timeout=None, retries=None, json_=False):
    """Keep monthly partitions: create the current month and `premake` months ahead (as a plain table with
    its CHECK constraint, then ATTACH), move rows out of a default partition first, finish interrupted
    detaches (FINALIZE), detach what retention lets go (CONCURRENTLY where there is no default partition),
    archive (--archive) and drop. Policies are the `pgops:partitions` JSON in each table's comment. A
    no-op on a replica. Raises PartitionError / PartitionLockTimeout (exit 12)."""
    from ..partitions import maintain
    from ..partitions.plan import plan_table
    knobs = maintain.Knobs(lock_timeout_s=cli.as_float(lock_timeout, "--lock-timeout", 1.0, minimum=0.001),
                           retries=cli.as_int(retries, "--retries", minimum=0) if retries is not None else 5)
    target = target_for(stack, dsn, sql_root, repository)
    now = maintain.now_utc()
    repo = open_repo(target) if (archive and apply) else None
    frags = cli.target_args(stack, dsn, sql_root)
    report = {}
    for ref in target.databases(list(db or []) or None):
        params = target.primary
        with maintain.session(params, ref.name) as conn:
            replica = maintain.in_recovery(conn)
            states = [] if replica else maintain.read_states(conn)
        plans = [plan_table(s, now, archive=archive) for s in states]
        entry = {"replica": replica, "now": now.isoformat(), "tables": [
            {"table": f"{p.schema}.{p.table}", "premake": s.policy.premake, "retention_months": s.policy.retention_months,
             "partitions": sum(1 for x in s.partitions if not x.is_default), "default_partition": s.default_name,
             "default_rows": sum(s.default_rows.values()),
             "pending_detach": [x.name for x in s.partitions if x.detach_pending],
             "months_ahead": p.ahead_before, "months_ahead_after": p.ahead_after,
             "actions": [{"kind": a.kind, "partition": a.partition, "description": a.describe(),
                          "move_rows": a.move_rows, "concurrently": a.concurrently} for a in p.actions],
             "notes": list(p.notes)} for s, p in zip(states, plans)], "applied": []}
        report[ref.name] = entry
        if not json_:
            if replica:
                cli.say(f"{ref.name}: the server is a replica (in recovery); nothing to do")
            cli.table(f"{ref.name}: partitioned tables ({'plan' if not apply else 'applying'})",
                      ["table", "partitions", "months ahead", "after", "default rows", "pending detach", "steps"],
                      [[t["table"], t["partitions"], t["months_ahead"], t["months_ahead_after"], t["default_rows"],
                        ", ".join(t["pending_detach"]) or "—", len(t["actions"])] for t in entry["tables"]])
            for p in plans:
                for n in p.notes:
                    cli.warn(f"{ref.name}: {n}")
        if not apply:
            if not json_:
                for p in plans:
                    for a in p.actions:
                        cli.say(f"  would {a.describe()}")
            continue
        state_of = {(s.schema, s.table): s for s in states}
        again = [f"--db {ref.folder}", "--apply", *(["--archive"] if archive else []),
                 *(["--repository", shlex.quote(repository)] if repository else [])]
        plan = Plan(f"partition maintenance of database '{ref.name}'", rerun("db.partitions", frags, *again))
        for p in plans:
            for a in p.actions:
                plan.steps.append(_step(params, ref.name, state_of[(a.schema, a.table)], a, knobs, repo, now,
                                        entry["applied"]))
        destructive = any(a.kind in DESTRUCTIVE for p in plans for a in p.actions)
        execute(plan, yes=yes or not destructive, show=(lambda _: None) if json_ else cli.say)
    if json_:
        cli.emit_json(report)


def _step(params, database, state, a, knobs, repo, now, applied: list) -> Step:
    from ..partitions import maintain

    def record(result=None):
        applied.append({"kind": a.kind, "partition": a.partition, **({"result": result} if result is not None else {})})
        return result

    if a.kind == "create":
        return Step(a.describe(), lambda: record({"rows_moved": maintain.create(params, database, state, a, knobs)}),
                    guard=f"lock_timeout {knobs.lock_timeout_s:g} s, {knobs.retries} retries; one transaction")
    if a.kind == "finalize":
        return Step(a.describe(), lambda: record(maintain.finalize(params, database, a, knobs)),
                    guard="the detach is still pending")
    if a.kind == "detach":
        return Step(a.describe(), lambda: record(maintain.detach(params, database, a, knobs)),
                    guard=f"outside retention; lock_timeout {knobs.lock_timeout_s:g} s")
    if a.kind == "archive":
        return Step(a.describe(), lambda: record(maintain.archive(repo, params, database, a, now)),
                    guard="the partition is detached", check=lambda: _attached(params, database, a))
    return Step(a.describe(), lambda: record(maintain.drop(params, database, a, knobs)),
                guard="detached" + (", and its archive's manifest exists" if repo is not None else ""),
                check=lambda: _attached(params, database, a) or (
                    None if repo is None or maintain.has_archive(repo, database, a)
                    else f"no archive manifest for {a.partition} in {repo.url}"))


def _attached(params, database, a) -> str | None:
    from ..partitions import maintain
    with maintain.session(params, database) as conn:
        return f"{a.partition} is attached to {a.table}" if maintain.is_attached(conn, a.schema, a.partition) else None
