"""The Pulumi Automation API at its boundary: which AWS stacks exist, preview, up, outputs.

Everything Pulumi is behind :class:`StackWorkspace`, so the flows above it are tested without the
CLI by faking the workspace. Read-only tasks only ever *select* a stack; only ``invoke deploy
--stack NAME --yes`` may create one — and only one that has a ``Pulumi.<NAME>.yaml``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

from .errors import PulumiMissing, StackNotFound
from .settings import PROJECT_DIR


class StackWorkspace(Protocol):
    """The three things pgops asks of a Pulumi stack."""

    def preview(self) -> str: ...
    def up(self) -> dict: ...
    def outputs(self) -> dict: ...


class _AutomationWorkspace:
    def __init__(self, stack):
        self.stack = stack

    def preview(self) -> str:
        res = self.stack.preview(on_output=lambda _l: None)
        return f"{res.change_summary}"

    def up(self) -> dict:
        res = self.stack.up(on_output=lambda _l: None)
        return {k: v.value for k, v in res.outputs.items() if not v.secret}

    def outputs(self) -> dict:
        return {k: v.value for k, v in self.stack.outputs().items() if not v.secret}


def known_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    """AWS stacks configured in the project: one per ``Pulumi.<name>.yaml``."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def open_workspace(stack: str, project_dir: Path = PROJECT_DIR, *, create: bool = False) -> StackWorkspace:
    """The Automation API stack ``stack`` of the project in ``project_dir``.

    ``create``: create the stack when Pulumi has none of that name (``deploy --yes`` only); otherwise
    it is selected, never created. Raises :class:`StackNotFound` (exit 2) when the project has no
    ``Pulumi.<stack>.yaml``, and :class:`PulumiMissing` (exit 9) when the ``pulumi`` CLI is not on PATH.
    """
    known = known_stacks(project_dir)
    if stack not in known:
        raise StackNotFound(stack, known)
    if shutil.which("pulumi") is None:
        raise PulumiMissing(stack)
    from pulumi import automation as auto
    pick = auto.create_or_select_stack if create else auto.select_stack
    return _AutomationWorkspace(pick(stack_name=stack, work_dir=str(project_dir)))
