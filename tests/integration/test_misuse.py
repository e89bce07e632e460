"""Every task × bad input: the README's exit code, one message, never a traceback, nothing run.

Runs ``invoke`` as a user would, against a state directory of its own (no stack is started: every
case must be refused before anything connects or changes)."""
from __future__ import annotations

import pytest

from .conftest import invoke

pytestmark = pytest.mark.integration

DEAD = "host=127.0.0.1 port=1 user=nobody dbname=app connect_timeout=2"  # nothing listens on port 1

# (task and arguments, expected exit code, a phrase the message must hold)
CASES = [
    # integers, numbers and choices are checked before anything runs (exit 2)
    (["db.seed", "--users", "lots"], 2, "--users must be an integer"),
    (["db.seed", "--users", "0"], 2, "--users must be at least 1"),
    (["db.seed", "--seed", "x"], 2, "--seed must be an integer"),
    (["db.seed", "--db", "describeit"], 2, "no seed generator for 'describeit'"),
    (["db.rollback", "--steps", "-1"], 2, "--steps must be at least 1"),
    (["db.rollback", "--steps", "two"], 2, "--steps must be an integer"),
    (["db.rollback"], 2, "needs --to VERSION or --steps N"),
    (["db.rollback", "--to", "x"], 2, "--to must be an integer"),
    (["db.migrate", "--preflight", "bogus"], 2, "--preflight must be one of"),
    (["db.migrate", "--lock-wait", "soon"], 2, "--lock-wait must be a number"),
    (["db.migrate", "--lock-timeout", "-3"], 2, "--lock-timeout must be a number"),
    (["db.migrate", "--retries", "many"], 2, "--retries must be an integer"),
    (["db.migrate", "--to", "v2"], 2, "--to must be an integer"),
    (["db.migrate", "--accept-changed", "x"], 2, "--accept-changed must be an integer"),
    (["db.migrate", "--max-xact-age", "nan"], 2, "--max-xact-age must be a number"),
    (["db.baseline", "--to", "x"], 2, "--to must be an integer"),
    (["deploy", "--lock-wait", "x"], 2, "--lock-wait must be a number"),
    (["local.up", "--port", "http"], 2, "--port must be an integer"),
    (["local.up", "--replicas", "-2"], 2, "--replicas must be at least 0"),
    (["backup.create", "--kind", "incremental"], 2, "--kind must be one of logical, snapshot"),
    (["drill.run", "--kind", "full"], 2, "--kind must be one of logical, snapshot"),
    (["drill.run", "--json", "/nonexistent-dir/report.json"], 2, "does not exist"),
    # selections and roots
    (["db.status", "--db", "nosuchdb"], 2, "unknown database 'nosuchdb'"),
    (["db.plan", "--offline", "--db", "nosuchdb"], 2, "unknown database 'nosuchdb'"),
    (["db.lint", "--sql-root", "/nonexistent"], 2, "is not a directory"),
    (["db.verify", "--sql-root", "/nonexistent"], 2, "is not a directory"),
    (["deploy", "--db", "a", "--db", "b", "--dsn", DEAD, "--no-backup"], 2, "at most one --db"),
    # DSNs
    (["db.status", "--dsn", "host=x port=5432"], 2, "names no database"),
    (["db.status", "--dsn", "this is = not a dsn"], 2, "the DSN does not parse"),
    (["backup.restore", "--backup-id", "x"], 2, "needs --dsn"),
    (["backup.restore", "--backup-id", "x", "--dsn", "host=x"], 2, "names no database"),
    (["backup.create", "--dsn", DEAD], 2, "no backup repository for --dsn"),
    (["db.rollback", "--steps", "1", "--dsn", DEAD, "--db", "syncscript"], 2, "no backup repository for --dsn"),
    (["db.rollback", "--steps", "1", "--dsn", DEAD, "--db", "syncscript", "--no-backup"], 4, "Cannot connect"),
    (["db.status", "--dsn", DEAD, "--db", "syncscript"], 4, "Cannot connect"),
    # stacks
    (["db.status", "--stack", "prodd"], 2, "stack 'prodd' does not exist"),
    (["backup.list", "--stack", "prodd"], 2, "choose one of: local, dev, prod"),
    (["deploy", "--stack", "prodd"], 2, "stack 'prodd' does not exist"),
    (["preview"], 2, "the local stack has no Pulumi preview"),
    # a repository that holds nothing, or is not one
    (["backup.show", "--backup-id", "nope"], 1, "nope"),
    (["backup.verify", "--backup-id", "nope"], 1, "nope"),
    (["backup.prune", "--repository", "file://tmp/x"], 2, "file:///tmp/x"),
    (["backup.prune", "--apply", "--yes", "--repository", "file:///nonexistent-pgops-repo"], 6, "holds no backups"),
    (["drill.history", "--stack", "prodd"], 2, "stack 'prodd' does not exist"),
    (["drill.history", "--dsn", "host=x"], 2, "names no database"),
    # health: a check that cannot run is UNKNOWN (Nagios), 3
    (["health", "--format", "xml"], 3, "--format must be one of"),
    (["health", "--set", "connections.crit=lots"], 3, "is not a number"),
    # the local stack's own tasks
    (["local.status"], 3, "not running"),
    (["local.down", "--purge"], 2, "--yes"),
    (["db.new", "--db", "app", "--name", "x", "--sql-root", "/nonexistent"], 2, "is not a directory"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    state = tmp_path_factory.mktemp("misuse") / "state"
    state.mkdir()  # something for `local.down --purge` to refuse without --yes (read-only cases create nothing)
    return {"PGOPS_STATE_DIR": str(state), "PGOPS_LOCAL_PORT": "59990"}


@pytest.mark.parametrize("args,code,phrase", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_exits_with_its_code_and_one_message(env, args, code, phrase):
    res = invoke(args, env, timeout=60)
    both = res.stdout + res.stderr
    assert "Traceback" not in both, both
    assert res.returncode == code, both
    assert phrase in both, both
    assert both.count("error:") == 1, both


@pytest.mark.parametrize("variable,value,phrase", [("PGOPS_LOCAL_PORT", "abc", "PGOPS_LOCAL_PORT='abc'"),
                                                   ("PGOPS_LOG_LEVEL", "LOUD", "LOUD")])
def test_bad_environment_is_exit_2(env, variable, value, phrase):
    res = invoke(["db.status"], {**env, variable: value}, timeout=60)
    assert res.returncode == 2 and phrase in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.fixture
def read_only_dir(tmp_path):
    """A real read-only file system (tmpfs mounted ro): where even root cannot write."""
    import os
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "ro"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_unwritable_drill_report_path_is_exit_2_before_anything_runs(env, read_only_dir):
    res = invoke(["drill.run", "--json", str(read_only_dir / "report.json")], env, timeout=60)
    assert res.returncode == 2 and "cannot be written" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "drill" not in res.stdout  # refused before a drill started
