"""The ``Dockerfile`` the scheduled jobs run on: it builds from the project's own files (every COPY
source exists and nothing it needs is excluded by .dockerignore), its PostgreSQL tools are of the
major version both stacks deploy (``pgops:engineVersion``), it runs as a non-root user, and its
default command is an invoke task the task tree has."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.config import parse_config

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "Dockerfile").read_text()
LINES = [line.strip() for line in re.sub(r"\\\n", " ", TEXT).splitlines() if line.strip() and not line.startswith("#")]


def test_every_copied_path_exists_and_is_not_dockerignored():
    ignored = [p.strip().rstrip("/") for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip()]
    copies = [line.split()[1:-1] for line in LINES if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for src in sources:
            assert (REPO / src).exists(), f"COPY {src}: no such file in the project"
            assert src.rstrip("/") not in ignored
    copied = {s.rstrip("/") for srcs in copies for s in srcs}
    assert {"ops", "sql", "runbooks", "tasks.py", "requirements.lock", "pyproject.toml"} <= copied


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_postgresql_tools_match_the_stacks_engine_version(stack):
    cfg = parse_config(stack, yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"])
    default = re.search(r"^ARG PG_MAJOR=(\d+)$", TEXT, re.M).group(1)
    assert cfg.engine_version.split(".")[0] == default
    install = next(line for line in LINES if "apt-get install" in line and "postgresql-" in line)
    assert "postgresql-client-${PG_MAJOR}" in install and "postgresql-${PG_MAJOR}" in install
    assert "PGOPS_PG_BINDIR=/usr/lib/postgresql/${PG_MAJOR}/bin" in TEXT


def test_slim_python_non_root_and_a_real_default_command():
    from ops.tasks import root
    base = next(line for line in LINES if line.startswith("FROM "))
    assert re.match(r"FROM python:3\.\d+-slim", base)
    users = [line.split()[1] for line in LINES if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    cmd = next(line for line in LINES if line.startswith("CMD "))
    argv = yaml.safe_load(cmd[4:])
    assert argv[0] == "invoke" and argv[1] in root().task_names
    assert "-c requirements.lock" in TEXT  # the pinned versions, not whatever is newest
