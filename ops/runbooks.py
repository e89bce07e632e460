"""Runbooks as data: each ``runbooks/*.md`` opens with front matter naming the health checks and
alarms it answers and its severity, then steps whose commands are ``invoke …`` lines a responder
can paste (GitLab's runbooks: every alert carries its runbook). Pure: parsing and the consistency
rules; the task edge reads the files and knows the tasks.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import yaml

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_INLINE = re.compile(r"`(invoke [^`\n]+)`")
_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)  # also fences indented in a list item
_STEP = re.compile(r"^(\d+)\.\s", re.M)  # a numbered step of the runbook (a top-level list item)
_PLACEHOLDER = re.compile(r"<[^<>\s]+>")
#: What a pasted command may still leave to the responder: objects only they can name (the database and
#: table they lost; the slot the check's detail names). Anything else (``<pid>``, ``<id>``) has no place
#: in a fenced command: a task finds it.
PLACEHOLDERS = ("<database>", "<schema.table>", "<slot>")


@dataclass(frozen=True)
class Runbook:
    """``path`` relative to the project; ``checks``/``alarms`` the ids it answers; ``commands`` every
    ``invoke …`` command it names (fenced blocks and inline code), with the line each is on; ``fenced``
    the fenced ones as (line, step number, command) in file order, step 0 before the first step."""

    path: str
    title: str
    severity: str
    checks: tuple[str, ...]
    alarms: tuple[str, ...]
    commands: tuple[tuple[int, str], ...] = field(default_factory=tuple)
    problems: tuple[str, ...] = ()
    fenced: tuple[tuple[int, int, str], ...] = ()

    def step_commands(self, *steps: int) -> list[str]:
        """The fenced commands of the numbered ``steps``, in the order the runbook gives them (what a
        responder pastes, and what a game day runs)."""
        return [command for _, step, command in self.fenced if step in steps]


def parse(path: str, text: str) -> Runbook:
    """Parse one runbook; malformed front matter is reported in ``problems``, never raised."""
    problems = []
    meta = {}
    m = _FRONT.match(text)
    if not m:
        problems.append(f"{path}: no front matter (--- checks: [...], alarms: [...], severity: ... ---)")
    else:
        try:
            meta = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{path}: front matter is not YAML: {exc}")
        if not isinstance(meta, dict):
            problems.append(f"{path}: front matter is not a mapping")
            meta = {}
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), path)
    commands, fenced = [], []
    steps = [(m.start(), int(m.group(1))) for m in _STEP.finditer(text)]
    for fence in _FENCE.finditer(text):
        start = text.count("\n", 0, fence.start(1)) + 1
        step = next((n for at, n in reversed(steps) if at < fence.start()), 0)
        for i, line in enumerate(fence.group(1).splitlines()):
            if line.strip().startswith("invoke "):
                commands.append((start + i, line.strip()))
                fenced.append((start + i, step, line.strip()))
    for inline in _INLINE.finditer(text):
        commands.append((text.count("\n", 0, inline.start()) + 1, inline.group(1).strip()))
    as_tuple = lambda v: tuple(str(x) for x in (v or []))  # noqa: E731
    return Runbook(path, title, str(meta.get("severity", "")), as_tuple(meta.get("checks")),
                   as_tuple(meta.get("alarms")), tuple(sorted(set(commands))), tuple(problems), tuple(fenced))


def check(runbooks: list[Runbook], check_ids: dict[str, str], alarm_ids: dict[str, str],
          tasks: dict[str, tuple[set[str], set[str], int]]) -> list[str]:
    """Every problem at once: a check or alarm whose named runbook is missing or does not list it, a
    runbook naming an unknown check/alarm id, and a command naming a task or option that does not
    exist. ``check_ids``/``alarm_ids``: id → the runbook path it names; ``tasks``: task name →
    (options taking a value, flags, number of positional arguments)."""
    problems = [p for rb in runbooks for p in rb.problems]
    by_path = {rb.path: rb for rb in runbooks}
    for kind, ids, listed in (("check", check_ids, lambda rb: rb.checks), ("alarm", alarm_ids, lambda rb: rb.alarms)):
        for ident, path in sorted(ids.items()):
            rb = by_path.get(path)
            if rb is None:
                problems.append(f"{kind} '{ident}' names runbook {path}, which does not exist")
            elif ident not in listed(rb):
                problems.append(f"{path}: does not list {kind} '{ident}' in its front matter")
        for rb in runbooks:
            for ident in listed(rb):
                if ident not in ids:
                    problems.append(f"{rb.path}: lists unknown {kind} '{ident}'")
    for rb in runbooks:
        for line, command in rb.commands:
            problems += [f"{rb.path}:{line}: {p}" for p in command_problems(command, tasks)]
        for line, _, command in rb.fenced:
            problems += [f"{rb.path}:{line}: `{command}`: placeholder {p} in a fenced command; a responder pastes it "
                         f"unchanged (allowed: {', '.join(PLACEHOLDERS)})"
                         for p in _PLACEHOLDER.findall(command) if p not in PLACEHOLDERS]
    return problems


def fill(command: str, values: dict[str, str]) -> str:
    """``command`` with its placeholders replaced (``{"<slot>": "forgotten"}``); raises ValueError
    naming any left unfilled."""
    for key, value in values.items():
        command = command.replace(key, value)
    left = _PLACEHOLDER.findall(command)
    if left:
        raise ValueError(f"`{command}`: no value for {', '.join(left)}")
    return command


def command_problems(command: str, tasks: dict[str, tuple[set[str], set[str], int]]) -> list[str]:
    """What is wrong with one ``invoke TASK [options]`` line (placeholders like ``<database>`` are values)."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return [f"`{command}`: {exc}"]
    if len(words) < 2 or words[0] != "invoke":
        return [f"`{command}`: not an invoke command"]
    name = words[1]
    if name not in tasks:
        return [f"`{command}`: no task '{name}'"]
    valued, flags, positional = tasks[name]
    problems, seen_positional, i = [], 0, 2
    while i < len(words):
        w = words[i]
        if w.startswith("--"):
            opt = w[2:].split("=", 1)[0]
            if opt in valued:
                if "=" not in w and (i + 1 >= len(words) or words[i + 1].startswith("--")):
                    problems.append(f"`{command}`: option --{opt} of task '{name}' needs a value")
                i += 1 if "=" in w else 2
                continue
            if opt not in flags:
                problems.append(f"`{command}`: task '{name}' has no option --{opt}")
            i += 1
        else:
            seen_positional += 1
            if seen_positional > positional:
                problems.append(f"`{command}`: task '{name}' takes no argument '{w}'")
            i += 1
    return problems
