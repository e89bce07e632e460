"""Plan, show, confirm, apply, re-check: the one loop every destructive task goes through.

A pure function builds a :class:`Plan` (steps, each with the guard it needs); :func:`execute`
shows it before anything changes, asks on a terminal or requires ``--yes`` elsewhere (exit 2,
nothing changed), applies the steps in order and stops at the first failure, then re-checks.
Patroni's ``ctl.py`` (show the switchover/failover plan, confirm, ``--force``) and alembic's
``upgrade --sql`` (a dry run that reaches the last I/O call) are the models.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfirmationRequired, OpsError, PlanAborted


@dataclass(frozen=True)
class Step:
    """One change. ``guard`` says what must hold for it to be safe (shown with the plan);
    ``check`` re-tests that just before the step runs and returns a refusal reason or None."""

    description: str
    action: Callable[[], Any]
    guard: str = ""
    check: Callable[[], str | None] | None = None


@dataclass
class Plan:
    """What a destructive task will do. ``title`` names the task and object; ``rerun`` is the
    command line to repeat with ``--yes``; ``notes`` are shown under the steps (e.g. backups lost)."""

    title: str
    rerun: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps

    def lines(self) -> list[str]:
        """The plan as text lines, numbered, guards in brackets (what :func:`execute` shows)."""
        out = [f"plan: {self.title}"]
        for i, s in enumerate(self.steps, 1):
            out.append(f"  {i}. {s.description}" + (f"  [guard: {s.guard}]" if s.guard else ""))
        if not self.steps:
            out.append("  (nothing to do)")
        out += [f"  note: {n}" for n in self.notes]
        return out


def confirm_on_terminal(question: str) -> bool:
    """Ask on the controlling terminal; False on anything but y/yes."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def interactive() -> bool:
    """True when a person can answer: stdin and stderr are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def execute(plan: Plan, *, yes: bool, dry_run: bool = False, show: Callable[[str], None],
            recheck: Callable[[], Any] | None = None, ask: Callable[[str], bool] = confirm_on_terminal,
            is_interactive: Callable[[], bool] = interactive) -> list[Any] | None:
    """Show ``plan``; with ``dry_run`` stop there (returns None). Otherwise confirm — ``yes``, or
    a "y" on a terminal — apply each step in order and return their results, then call ``recheck``.

    Raises :class:`ConfirmationRequired` (exit 2) with no terminal and no ``yes``;
    :class:`PlanAborted` when the user answers no; whatever a step raises (the steps after it do
    not run); :class:`~ops.errors.OpsError` wrapping a failed guard.
    """
    for line in plan.lines():
        show(line)
    if dry_run or plan.empty:
        return None if dry_run else []
    if not yes:
        if not is_interactive():
            raise ConfirmationRequired(plan.title, plan.rerun)
        if not ask(f"apply these {len(plan.steps)} step(s)?"):
            raise PlanAborted(plan.title)
    results = []
    for i, s in enumerate(plan.steps, 1):
        if s.check is not None:
            reason = s.check()
            if reason:
                raise OpsError(f"{plan.title}: step {i} ({s.description}) refused: {reason}. "
                               f"Steps 1..{i - 1} were applied; nothing after.", "run the read task to inspect, then retry.")
        show(f"  applying {i}/{len(plan.steps)}: {s.description}")
        results.append(s.action())
    if recheck is not None:
        recheck()
    return results
