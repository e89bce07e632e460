"""The plan/apply loop: shown before anything changes; --yes or a terminal "y"; exit 2 elsewhere; stops at
the first failure; re-checks after."""
from __future__ import annotations

import pytest

from ops.errors import ConfirmationRequired, OpsError, PlanAborted
from ops.planapply import Plan, Step, execute

pytestmark = pytest.mark.unit


def make(log):
    p = Plan("purge things", "invoke thing --yes")
    p.steps = [Step("first", lambda: log.append("first") or 1, guard="g1"),
               Step("second", lambda: log.append("second") or 2)]
    p.notes = ["3 backups go with it"]
    return p


def run(plan, **kw):
    shown = []
    kw.setdefault("is_interactive", lambda: False)
    kw.setdefault("ask", lambda q: pytest.fail("asked without a terminal"))
    return execute(plan, show=shown.append, **kw), shown


def test_no_terminal_no_yes_is_exit_2_after_showing_the_plan_and_nothing_runs():
    log = []
    with pytest.raises(ConfirmationRequired) as info:
        run(make(log), yes=False)
    assert info.value.exit_code == 2 and log == []
    assert "invoke thing --yes" in str(info.value)


def test_plan_is_shown_before_the_first_step():
    log, shown = [], []
    p = make(log)
    p.steps[0] = Step("first", lambda: log.append(("first", list(shown))))
    execute(p, yes=True, show=shown.append)
    assert log[0][1][:3] == ["plan: purge things", "  1. first", "  2. second"]
    assert "  note: 3 backups go with it" in log[0][1]


def test_terminal_yes_applies_terminal_no_aborts():
    log = []
    results, _ = run(make(log), yes=False, is_interactive=lambda: True, ask=lambda q: True)
    assert results == [1, 2] and log == ["first", "second"]
    log.clear()
    with pytest.raises(PlanAborted):
        run(make(log), yes=False, is_interactive=lambda: True, ask=lambda q: False)
    assert log == []


def test_dry_run_shows_and_changes_nothing_even_with_yes():
    log = []
    results, shown = run(make(log), yes=True, dry_run=True)
    assert results is None and log == [] and shown[0] == "plan: purge things"


def test_stops_at_the_first_failure_and_a_failed_guard():
    log = []
    p = make(log)
    p.steps.insert(1, Step("boom", lambda: (_ for _ in ()).throw(RuntimeError("x"))))
    with pytest.raises(RuntimeError):
        run(p, yes=True)
    assert log == ["first"]
    log.clear()
    p = make(log)
    p.steps[1] = Step("guarded", lambda: log.append("guarded"), check=lambda: "the ledger moved")
    with pytest.raises(OpsError, match="the ledger moved"):
        run(p, yes=True)
    assert log == ["first"]


def test_recheck_runs_after_apply_only():
    seen = []
    run(make([]), yes=True, recheck=lambda: seen.append("re"))
    assert seen == ["re"]
    with pytest.raises(ConfirmationRequired):
        run(make([]), yes=False, recheck=lambda: seen.append("again"))
    assert seen == ["re"]
