"""The shape of the code as a checked contract (issue 10): import-linter's layers, acyclic-siblings and
forbidden contracts from pyproject.toml, no platform branching outside the target modules, and the
README's exit-code table equal to the one the code raises with."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ops.errors import EXIT_CODES, OpsError

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 kept, 0 broken" in res.stdout


def test_no_undefined_or_unused_names():
    """pyflakes' rules (ruff F): heavy imports happen inside task bodies (start-up time), so a name a
    body forgot to import would otherwise surface only as a NameError traceback at run time."""
    exe = Path(sys.executable).parent / "ruff"
    res = subprocess.run([str(exe), "check", "--select", "F,E9", "--quiet", "ops", "tasks.py", "infra", "sql",
                          "tests", "bench"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_platform_branch_outside_the_target_modules():
    offenders = []
    for path in (REPO / "ops").rglob("*.py"):
        if path.parent.name == "targets" or path.name == "settings.py":  # where the choice is made
            continue
        text = path.read_text()
        for word in ("is_aws", "isinstance(target, AwsTarget", "isinstance(target, LocalTarget",
                     "isinstance(target, DsnTarget", 'stack == "local"', 'stack != "local"', "env.local"):
            if word in text:
                offenders.append(f"{path.relative_to(REPO)}: {word}")
    assert offenders == []


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


def test_every_exit_code_a_task_can_raise_is_in_the_one_table():
    import ops.tasks.backup, ops.tasks.db, ops.tasks.deploy, ops.tasks.drill, ops.tasks.local  # noqa: E401,F401
    table = {code for code, _ in EXIT_CODES}
    used = {OpsError.exit_code} | {c.exit_code for c in all_subclasses(OpsError)}
    assert used <= table, used - table
    defined_elsewhere = [f"{c.__module__}.{c.__name__}" for c in all_subclasses(OpsError)
                         if c.__module__ != "ops.errors"]
    assert defined_elsewhere == []


def test_readme_reproduces_the_exit_code_table():
    readme = (REPO / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.M))
    assert {int(k): v for k, v in rows.items()} == dict(EXIT_CODES)


def test_pgops_variables_are_read_in_one_module_and_documented():
    from ops.settings import VARIABLES
    readers = [str(p.relative_to(REPO)) for p in (REPO / "ops").rglob("*.py")
               if re.search(r"(environ|getenv)[^\n]*[\"']PGOPS_", p.read_text()) and p.name != "settings.py"]
    assert readers == []
    readme = (REPO / "README.md").read_text()
    assert [k for k, _, _ in VARIABLES if f"| `{k}` |" not in readme] == []
