"""Runbooks that name only what exists (issue 12): front matter ties each health check and alarm to its
runbook; every `invoke …` a runbook names is a real task with real options."""
from __future__ import annotations

from pathlib import Path

import pytest

from ops.health.checks import LIMITS
from ops.runbooks import check, command_problems, parse
from ops.tasks.runbook import known_tasks
from ops.thresholds import THRESHOLDS

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
CHECKS = {lim.id: lim.runbook for lim in LIMITS.values()}
ALARMS = {t.key: t.runbook for t in THRESHOLDS}
ALARMS.update(__import__("ops.schedules", fromlist=["ALARMS"]).ALARMS)  # the Scheduler component's alarms


def books(edit=None):
    out = []
    for p in sorted((REPO / "runbooks").glob("*.md")):
        text = p.read_text()
        if edit and p.name == edit[0]:
            text = text.replace(edit[1], edit[2])
        out.append(parse(f"runbooks/{p.name}", text))
    return out


def test_the_projects_runbooks_pass():
    assert check(books(), CHECKS, ALARMS, known_tasks()) == []
    assert sum(len(b.commands) for b in books()) > 30


@pytest.mark.parametrize("edit,expected", [
    (("backup-stale-or-failed.md", "invoke backup.create\n", "invoke backup.create --dbs x\n"), "has no option --dbs"),
    (("restore-drill-failed.md", "invoke drill.history", "invoke drill.histroy"), "no task 'drill.histroy'"),
    (("replica-lag.md", "checks: [replica_lag]", "checks: []"), "does not list check 'replica_lag'"),
    (("invalid-index.md", "checks: [invalid_indexes]", "checks: [invalid_indexes, bogus]"), "unknown check 'bogus'"),
    (("local-stack-down.md", "---\nchecks", "--\nchecks"), "no front matter"),
    (("table-dropped-or-rows-deleted.md", "--table <schema.table> --yes", "--tables <schema.table> --yes"),
     "has no option --tables"),  # a fenced command inside a list item
])
def test_a_runbook_edited_to_name_something_wrong_fails(edit, expected):
    problems = check(books(edit), CHECKS, ALARMS, known_tasks())
    assert any(expected in p for p in problems), problems
    assert any(edit[0] in p for p in problems)


def test_commands_fenced_and_inline_with_placeholders():
    text = ("---\nchecks: []\nseverity: warning\n---\n# t\n\n1. `invoke db.status --db <database>`\n"
            "   ```\n   invoke backup.verify <id>\n   invoke db.rollback --steps 1 --yes\n   ```\n")
    rb = parse("runbooks/x.md", text)
    assert sorted(c for _, c in rb.commands) == sorted(["invoke db.status --db <database>", "invoke backup.verify <id>",
                                                  "invoke db.rollback --steps 1 --yes"])
    tasks = known_tasks()
    assert command_problems("invoke backup.verify <id> extra", tasks) == [
        "`invoke backup.verify <id> extra`: task 'backup.verify' takes no argument 'extra'"]
    assert command_problems("invoke db.rollback --steps=1 --yes", tasks) == []


def test_split_table_names():
    from ops.backups.tablerestore import split_table
    from ops.errors import RestoreRefused
    assert split_table("t") == ("public", "t") and split_table("app.t") == ("app", "t")
    for bad in ("", "a.b.c", ".t", "a."):
        with pytest.raises(RestoreRefused):
            split_table(bad)


@pytest.mark.parametrize("edit,expected", [
    (("long-transaction.md", "invoke db.terminate --check long_transaction --yes",
      "invoke db.terminate --pid <pid> --yes"), "placeholder <pid> in a fenced command"),
    (("idle-in-transaction.md", "invoke db.terminate --check idle_in_transaction --yes",
      "invoke db.terminate --check --yes"), "option --check of task 'db.terminate' needs a value"),
    (("invalid-index.md", "invoke db.reindex-invalid --yes", "invoke db.reindex-invalid --concurrently --yes"),
     "task 'db.reindex-invalid' has no option --concurrently"),
])
def test_fenced_commands_are_pasteable_and_name_real_options(edit, expected):
    problems = check(books(edit), CHECKS, ALARMS, known_tasks())
    assert any(expected in p and edit[0] in p for p in problems), problems


def test_every_runbook_has_fenced_commands_and_fix_steps_know_their_step():
    for rb in books():
        assert rb.fenced, f"{rb.path} has no fenced invoke command"
    text = ("---\nchecks: []\nseverity: warning\n---\n# t\n\n```\ninvoke health\n```\n1. one\n   ```\n   invoke db.status\n"
            "   ```\n2. two `invoke db.verify`\n   - sub\n     ```\n     invoke db.migrate\n     invoke db.verify\n     ```\n")
    rb = parse("runbooks/x.md", text)
    assert [(s, c) for _, s, c in rb.fenced] == [(0, "invoke health"), (1, "invoke db.status"), (2, "invoke db.migrate"),
                                                 (2, "invoke db.verify")]
    assert rb.step_commands(2, 1) == ["invoke db.status", "invoke db.migrate", "invoke db.verify"]


def test_fill_placeholders():
    from ops.runbooks import fill
    assert fill("invoke db.drop-slot --slot <slot> --yes", {"<slot>": "s1"}) == "invoke db.drop-slot --slot s1 --yes"
    with pytest.raises(ValueError, match="no value for <schema.table>"):
        fill("invoke backup.restore latest --db <database> --table <schema.table>", {"<database>": "d"})
