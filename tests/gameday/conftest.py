"""Game days: a fault injected for real on a fresh local stack (a primary, a streaming replica and the
pooler on free loopback ports under a private state directory, never a developer's stack; both
project databases deployed from ``sql/``), then the runbook's own fenced commands, read from the
Markdown with ``ops.runbooks`` and run as a responder pastes them, with the environment pointing at
that stack. Thresholds come in seconds through ``--set`` (health) and ``$PGOPS_THRESHOLDS`` (what
the runbook's commands read), so no scenario waits minutes."""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from ops.health.checks import NAGIOS_CODE
from ops.runbooks import fill, parse
from tests.integration.conftest import destroy, invoke, make_stack, query

REPO = Path(__file__).resolve().parents[2]
#: tasks that report state: their exit status says what they found (Nagios for health, 3 for a node
#: down, 5 for a dirty database), so a runbook's diagnosis step may exit non-zero; every other
#: command of a runbook is a fix and must exit 0.
READ_TASKS = {"health", "local.status", "db.status", "backup.list", "drill.history", "db.plan"}


class GameStack:
    """A deployed local stack and the environment its tasks run with."""

    def __init__(self, stack):
        self.stack = stack
        self.env = {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}
        p = stack.conninfo()
        p.pop("dbname")
        self.params = p
        self.replica_params = {**p, "port": stack.layout.replica_nodes[0].port}

    def run(self, *args: str, thresholds: dict | None = None, ok: bool = True):
        env = {**self.env, **({"PGOPS_THRESHOLDS": ",".join(f"{k}={v}" for k, v in thresholds.items())}
                              if thresholds else {})}
        res = invoke(list(args), env, timeout=300)
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        if ok:
            assert res.returncode == 0, f"invoke {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        return res

    def health(self, overrides: dict | None = None) -> dict:
        """``invoke health --format json`` with ``--set ID=V`` for each override; Nagios exit status."""
        sets = [a for k, v in (overrides or {}).items() for a in ("--set", f"{k}={v}")]
        res = self.run("health", "--format", "json", *sets, ok=False)
        doc = json.loads(res.stdout)
        assert res.returncode == NAGIOS_CODE[doc["status"]]
        return doc

    def query(self, db: str, text: str, args=None):
        return query(self.params, db, text, args)

    def row_counts(self, db: str) -> dict[str, int]:
        """Exact rows of every table of ``db`` outside pgops's own schema."""
        tables = [f"{s}.{t}" for s, t in self.query(db, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname "
                                                        "NOT IN ('pg_catalog', 'information_schema', 'pgops') ORDER BY 1, 2")]
        return {t: self.query(db, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def check(doc: dict, check_id: str, node: str) -> dict:
    """The one row of ``check_id`` on ``node`` in a health document."""
    rows = [c for c in doc["checks"] if c["id"] == check_id and c["node"] == node]
    assert len(rows) == 1, (check_id, node, doc)
    return rows[0]


def runbook(name: str):
    path = REPO / "runbooks" / name
    return parse(f"runbooks/{name}", path.read_text())


def follow(gs: GameStack, name: str, steps: tuple[int, ...], thresholds: dict | None = None,
           values: dict | None = None) -> list:
    """Run the fenced commands of ``steps`` of runbook ``name`` in order, as written (placeholders
    filled with ``values``, as the responder fills them in); returns the completed processes."""
    commands = runbook(name).step_commands(*steps)
    assert commands, f"{name} has no fenced command in steps {steps}"
    done = []
    for command in commands:
        words = shlex.split(fill(command, values or {}))
        assert words[0] == "invoke"
        done.append(gs.run(*words[1:], thresholds=thresholds, ok=words[1] not in READ_TASKS))
    return done


@pytest.fixture
def gs():
    """A fresh stack with both project databases deployed and syncscript seeded small."""
    st = make_stack(replicas=1)
    try:
        st.up()
        g = GameStack(st)
        g.run("deploy")
        g.run("db.seed", "--users", "60")
        yield g
    finally:
        destroy(st)


def wait_until(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
