"""``cutover.*``: blue/green cutover — logical replication behind the pooler on the local stack, the
RDS Blue/Green Deployments API on an AWS stack. The same six verbs on both; each target's engine
(``AbstractTarget.cutover_engine``) says what they do there."""
from __future__ import annotations

from invoke import Collection

from ..errors import ConfigError
from .common import HELP, cli, rerun, target_for, task

TARGET = {k: HELP[k] for k in ("stack", "dsn")}


def _engine(stack, dsn):
    target = target_for(stack=stack, dsn=dsn)
    engine = target.cutover_engine()
    # resolving a local target already recovered a switch whose process died: the engine reports it
    engine.recovered_at_start = list(getattr(target, "recovered", None) or [])
    return engine, cli.target_args(stack, dsn, None)


def _call(fn, **opts):
    """Call an engine method with the options the user gave; an option this target's engine does
    not take is a :class:`ConfigError` naming it (e.g. ``--target-engine-version`` on the local stack
    is fine, ``--switchover-timeout`` is RDS only)."""
    try:
        return fn(**opts)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        name = str(exc).split("'")[1].replace("_", "-")
        raise ConfigError([f"--{name} does not apply to this stack's cutover"],
                          "run `invoke --help cutover.<verb>` and drop that option.") from None


def _confirm(engine, action: str, yes: bool, frags, run, *extra: str, quiet: bool = False, **opts):
    """Show the engine's plan for ``action`` (on stderr when stdout carries JSON), ask or take
    ``--yes`` (without either and without a terminal: exit 2, nothing changed), then call ``run``
    and return its result."""
    from ..planapply import Plan, Step, execute
    plan = Plan(f"cutover.{action}", rerun(f"cutover.{action}", frags, *extra),
                [Step(f"cutover.{action}", run)], notes=engine.plan(action, **opts))
    return execute(plan, yes=yes, show=lambda line: cli.console(True).print(line) if quiet else cli.say(line))[0]


def _print_report(report: dict, json_, title: str) -> None:
    if json_:
        cli.emit_json(report)
        return
    rows = [[k, v] for k, v in report.items() if not isinstance(v, (dict, list))]
    cli.table(title, ["field", "value"], rows)
    for key in ("phases_ms",):
        if report.get(key):
            cli.table("phase times (ms)", ["phase", "ms"], [[k, v] for k, v in report[key].items()])
    for key in ("mismatches", "sequence_problems", "undone", "done", "notes"):
        for line in report.get(key) or []:
            cli.say(f"{key}: {line}")


@task(iterable=["db"], help={**TARGET, "db": "database to carry (repeatable; default every database on blue)",
                             "target_engine_version": "green's PostgreSQL version (default: blue's); RDS: e.g. 16.4",
                             "target_parameter_group": "RDS only: green's parameter group (of the new version's family)",
                             "timeout": "seconds to wait for green to be ready (default 600 local, 3600 RDS)",
                             "yes": HELP["yes"], "json_": HELP["json_"]})
@cli.edge
def prepare(c, stack=None, dsn=None, db=None, target_engine_version=None, target_parameter_group=None, timeout=None,
            yes=False, json_=False):
    """Make green and replicate blue to it; refuses what logical replication would silently break."""
    engine, frags = _engine(stack, dsn)
    opts = {}
    if db:
        opts["databases"] = list(db)
    if target_engine_version:
        opts["target_engine_version"] = str(target_engine_version)
    if target_parameter_group:
        opts["target_parameter_group"] = str(target_parameter_group)
    if timeout is not None:
        opts["timeout_s"] = cli.as_float(timeout, "--timeout", 600.0, minimum=1.0)
    report = _confirm(engine, "prepare", yes, frags, lambda: _call(engine.prepare, on_progress=_progress, **opts),
                      quiet=json_, **opts)
    _print_report(report, json_, "cutover prepared")


def _progress(event) -> None:
    """Engines report a line of text, or (RDS) the deployment's summary while it is polled."""
    if isinstance(event, dict):
        event = f"deployment {event.get('deployment')}: {event.get('status')} ({event.get('phase')})"
    cli.progress(str(event))


@task(help={**TARGET, "json_": HELP["json_"]})
@cli.edge
def status(c, stack=None, dsn=None, json_=False):
    """Phase, lag in bytes, per-table sync state and every guard as a named pass/fail row."""
    engine, _ = _engine(stack, dsn)
    st = engine.status()
    if engine.recovered_at_start:
        st = {**st, "recovered": engine.recovered_at_start + list(st.get("recovered") or [])}
    for line in st.get("recovered") or []:
        cli.warn(f"recovered an interrupted switch: {line}")
    if json_:
        cli.emit_json(st)
        return
    cli.say(f"phase: {st['phase']}  lag: {st.get('lag_bytes')} bytes")
    if st.get("tables"):
        cli.table("tables", ["database", "table", "state"],
                  [[t.get("database", ""), t.get("table", ""), t.get("state", "")] for t in st["tables"]])
    if st.get("guards"):
        cli.table("guards", ["guard", "passed", "detail"],
                  [[g["name"], "pass" if g["passed"] else "FAIL", g.get("detail", "")] for g in st["guards"]])


@task(help={**TARGET, "budget_ms": "largest write pause allowed, ms (default 2000); over it: undo, resume, exit 10",
            "switchover_timeout": "RDS only: SwitchoverTimeout, 30-3600 s (default 300)",
            "yes": HELP["yes"], "json_": "also write the report as JSON to this file ('-' for stdout)"})
@cli.edge
def run(c, stack=None, dsn=None, budget_ms=None, switchover_timeout=None, yes=False, json_=None):
    """Switch the pooler (local) or the endpoint (RDS) to green: guarded, timed, undone when over budget."""
    engine, frags = _engine(stack, dsn)
    opts = {"budget_ms": cli.as_int(budget_ms, "--budget-ms", minimum=1) or 2000}
    if switchover_timeout is not None:
        opts["switchover_timeout_s"] = cli.as_int(switchover_timeout, "--switchover-timeout", minimum=1)
    report = _aborted_report(json_, lambda: _confirm(
        engine, "run", yes, frags, lambda: _call(engine.run, on_progress=_progress, **opts), quiet=bool(json_), **opts))
    _finish_report(report, json_, "cutover.run")


@task(help={**TARGET, "json_": HELP["json_"]})
@cli.edge
def verify(c, stack=None, dsn=None, json_=False):
    """Per table count + checksum on both sides at the fence; every sequence ahead of its column."""
    engine, _ = _engine(stack, dsn)
    report = engine.verify()
    _print_report(report, json_, "cutover verification")
    if not report.get("passed"):
        from ..errors import CutoverUnverified
        raise CutoverUnverified("cutover.verify found differences (listed above).",
                           "run `invoke cutover.rollback` if green lost or changed data, else investigate before "
                           "`invoke cutover.finish`.")


@task(help={**TARGET, "budget_ms": "largest write pause allowed, ms (default 2000)", "yes": HELP["yes"],
            "json_": "also write the report as JSON to this file ('-' for stdout)"})
@cli.edge
def rollback(c, stack=None, dsn=None, budget_ms=None, yes=False, json_=None):
    """Switch back to blue over the reverse replication: no write acknowledged on green is lost."""
    engine, frags = _engine(stack, dsn)
    opts = {"budget_ms": cli.as_int(budget_ms, "--budget-ms", minimum=1) or 2000}
    report = _aborted_report(json_, lambda: _confirm(
        engine, "rollback", yes, frags, lambda: _call(engine.rollback, on_progress=_progress, **opts),
        quiet=bool(json_), **opts))
    _finish_report(report, json_, "cutover.rollback")


@task(help={**TARGET, "yes": HELP["yes"], "json_": HELP["json_"],
            "force": "finish even though the switch was not verified at its fence (removes the way back)"})
@cli.edge
def finish(c, stack=None, dsn=None, yes=False, json_=False, force=False):
    """Drop every slot, publication and subscription the cutover made; green becomes the stack's primary."""
    engine, frags = _engine(stack, dsn)
    opts = {"force": True} if force else {}
    report = _confirm(engine, "finish", yes, frags, lambda: _call(engine.finish, on_progress=_progress, **opts),
                      *(["--force"] if force else []), quiet=json_)
    _print_report(report, json_, "cutover finished")


def _aborted_report(json_path, switch):
    """Run ``switch``; when it aborts, its report (timed steps, what was undone) still goes to
    ``--json`` before the error is raised."""
    from ..errors import CutoverAborted
    try:
        return switch()
    except CutoverAborted as exc:
        if json_path:
            _write_json(exc.report, json_path)
        raise


def _write_json(report: dict, json_path) -> None:
    import json
    text = json.dumps(report, indent=2, default=str)
    if json_path == "-" or json_path is True:
        print(text)
    else:
        with open(json_path, "w") as f:
            f.write(text + "\n")


def _finish_report(report: dict, json_path, title: str) -> None:
    if json_path:
        _write_json(report, json_path)
    if json_path not in ("-", True):
        _print_report(report, False, title)
    if not report.get("passed"):
        from ..errors import CutoverUnverified
        raise CutoverUnverified(f"{title} switched, but its verification failed: "
                           + "; ".join((report.get("mismatches") or []) + (report.get("sequence_problems") or [])
                                       + ([] if report.get("mismatches") or report.get("sequence_problems")
                                          else [str(report.get("notes") or "see the report")])) + ".",
                           "run `invoke cutover.verify`, and `invoke cutover.rollback` if data differs.")


ns = Collection("cutover", prepare, status, run, verify, rollback, finish)
