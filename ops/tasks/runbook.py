"""``runbook.list`` and ``runbook.check``: which runbook answers which check or alarm, and proof that
every runbook names only tasks and options that exist."""
from __future__ import annotations

from invoke import Collection

from ..errors import ConfigError
from ..settings import PROJECT_DIR
from .common import HELP, cli, task


def _load():
    from ..runbooks import parse
    return [parse(f"runbooks/{p.name}", p.read_text()) for p in sorted((PROJECT_DIR / "runbooks").glob("*.md"))]


def known_tasks() -> dict[str, tuple[set[str], set[str], int]]:
    """Every task of every area: name → (options taking a value, boolean flags, positional count)."""
    from . import root
    every = root()
    out = {}
    for name in every.task_names:
        t = every[name]
        valued, flags, positional = set(), set(), 0
        for arg in t.get_arguments():
            long_names = {n for n in arg.names if len(n) > 1}
            (flags if arg.kind is bool else valued).update(long_names)
            positional += 1 if arg.positional else 0
        out[name] = (valued, flags, positional)
    return out


@task(name="list", help={"json_": HELP["json_"]})
@cli.edge
def list_(c, json_=False):
    """Every runbook with the health checks and alarms it answers and its severity."""
    books = _load()
    if json_:
        cli.emit_json([{"runbook": b.path, "title": b.title, "severity": b.severity, "checks": list(b.checks),
                        "alarms": list(b.alarms)} for b in books])
        return
    cli.table("runbooks", ["runbook", "checks", "alarms", "severity", "title"],
              [[b.path, ", ".join(b.checks), ", ".join(b.alarms), b.severity, b.title] for b in books], whole_first=True)


@task(name="check")
@cli.edge
def check(c):
    """Fail (exit 2) when a check or alarm has no runbook, or a runbook names a task or option that does not exist."""
    from ..health.checks import LIMITS
    from ..runbooks import check as check_runbooks
    from ..schedules import ALARMS as SCHEDULE_ALARMS
    from ..thresholds import THRESHOLDS
    books = _load()
    problems = check_runbooks(books, {lim.id: lim.runbook for lim in LIMITS.values()},
                              {**{t.key: t.runbook for t in THRESHOLDS}, **SCHEDULE_ALARMS}, known_tasks())
    if problems:
        raise ConfigError(problems, "fix the runbooks named above, then run `invoke runbook.check` again.")
    cli.say(f"{len(books)} runbooks: every check and alarm has one; every command names a real task and options "
            f"({sum(len(b.commands) for b in books)} commands checked)")


ns = Collection("runbook", list_, check)
