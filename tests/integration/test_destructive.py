"""Plan, show, confirm, apply, re-check (issue 10) for every destructive task, and what the user reads
(issue 9 §6): without a terminal and without --yes a destructive task exits 2 and changes nothing; with
--yes it prints the plan, applies it and re-checks. Restores over a stack's own server are refused,
failing closed. Hints repeat the invocation's target; server text is printed literally; piped output
never cuts an id."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from ops.backups import engine
from ops.backups.repository import open_repository
from ops.errors import RestoreRefused
from ops.settings import from_options
from ops.targets import DsnTarget, LocalTarget

from .conftest import invoke, query

pytestmark = pytest.mark.integration


def dsn(pg, dbname):
    p = pg.conninfo()
    return f"host=127.0.0.1 port={p['port']} user=postgres dbname={dbname} passfile={p['passfile']}"


@pytest.fixture
def backed_up(pg, params, dbname, tmp_path):
    """A database with rows and one real backup in a private file repository, plus three older copies
    of it (two on the same day 40 days ago: GFS keeps one of them)."""
    query(params, dbname, "CREATE TABLE t (id int primary key, note text); "
                          "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g")
    url = (tmp_path / "repo").as_uri()
    res = invoke(["backup.create", "--dsn", dsn(pg, dbname), "--repository", url, "--json"])
    assert res.returncode == 0, res.stderr
    repo = open_repository(url)
    m = engine.list_backups(repo, dbname)[0]
    now = datetime.now(timezone.utc)
    for i, age in enumerate((timedelta(days=40, hours=2), timedelta(days=40, hours=1), timedelta(days=80)), 1):
        created = now - age
        bid = f"{created:%Y%m%dT%H%M%SZ}-00000{i}"
        key = f"backups/{dbname}/{bid}/dump.pgdump"
        repo.put_bytes(key, b"".join(repo.open_read(m.object_key)))
        old = dataclasses.replace(m, id=bid, created_at=created.isoformat(), finished_at=created.isoformat(), object_key=key)
        repo.put_bytes(f"backups/{dbname}/{bid}/manifest.json", old.to_json())
    return url, repo, m


def ids(repo, dbname):
    return sorted(b.id for b in engine.list_backups(repo, dbname))


def test_prune_apply_needs_yes_and_then_deletes_what_the_plan_showed(pg, dbname, backed_up):
    url, repo, _ = backed_up
    before = ids(repo, dbname)
    refused = invoke(["backup.prune", "--dsn", dsn(pg, dbname), "--repository", url, "--apply"])
    assert refused.returncode == 2 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert "plan: prune 1 object(s)" in refused.stdout and "DELETE" in refused.stdout
    assert ids(repo, dbname) == before  # nothing changed
    done = invoke(["backup.prune", "--dsn", dsn(pg, dbname), "--repository", url, "--apply", "--yes", "--json"])
    assert done.returncode == 0, done.stderr
    verdicts = json.loads(done.stdout)[0]
    deleted = [v["id"] for v in verdicts["verdicts"] if not v["keep"]]
    assert len(deleted) == 1 and deleted[0].endswith("-000001")  # the older of the two on one day
    assert ids(repo, dbname) == [b for b in before if b not in deleted]
    plain = invoke(["backup.prune", "--dsn", dsn(pg, dbname), "--repository", url, "--apply", "--yes"])
    assert plain.returncode == 0 and "plan: prune 0 object(s)" in plain.stdout


def test_restore_clean_needs_yes_and_replaces_the_data(pg, params, dbname, backed_up):
    url, repo, m = backed_up
    query(params, dbname, "DELETE FROM t WHERE id > 100")
    args = ["backup.restore", "--backup-id", m.id, "--repository", url, "--dsn", dsn(pg, dbname), "--clean"]
    refused = invoke(args)
    assert refused.returncode == 2 and "plan: restore" in refused.stdout and "--yes" in refused.stderr
    assert query(params, dbname, "SELECT count(*) FROM t") == [(100,)]
    done = invoke([*args, "--yes"])
    assert done.returncode == 0, done.stderr
    assert query(params, dbname, "SELECT count(*) FROM t") == [(500,)]
    assert "re-check: every table holds the backup's row count" in done.stdout


def test_restore_over_a_stacks_own_server_is_refused_by_endpoint(pg, params, dbname, backed_up):
    url, _, m = backed_up
    env = {"PGOPS_STATE_DIR": str(pg.layout.state_dir)}
    res = invoke(["backup.restore", "--backup-id", m.id, "--repository", url, "--dsn", dsn(pg, dbname)], env)
    assert res.returncode == 7 and "own server" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_next_hints_repeat_the_target_and_server_text_is_literal(pg, dbname, chain_dir):
    chain_dir({"001_bad": {"up.sql": "CREATE TABLE ok (id int);\nSELECT '[/x] [red]gone[/red]'::int;\n"}})
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root)]
    res = invoke(["db.migrate", *common])
    assert res.returncode == 5 and "Traceback" not in res.stderr
    assert "[/x] [red]gone[/red]" in res.stderr  # printed literally, not eaten as markup
    hint = res.stderr.split("Next:", 1)[1]
    assert "`invoke db.migrate --db app" in hint or f"`invoke db.migrate --db {dbname}" in hint
    assert "--dsn" in hint and "--sql-root" in hint and str(chain_dir.root) in hint


def test_piped_tables_never_cut_ids(pg, dbname, backed_up):
    url, repo, _ = backed_up
    res = invoke(["backup.list", "--dsn", dsn(pg, dbname), "--repository", url], {"COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    for bid in ids(repo, dbname):
        assert bid in res.stdout
    assert "…" not in res.stdout


class _NoEndpoints(LocalTarget):
    """The stack's servers reached under another name: only the identity check can catch it."""

    def protected_endpoints(self):
        return [{"host": "db.elsewhere.invalid", "port": 5432, "dbname": "postgres"}]


class _Unreadable(DsnTarget):
    def protected_endpoints(self):
        return [{"host": "db.elsewhere.invalid", "port": 5432, "dbname": "postgres"}]

    def protected_identities(self):
        return [("primary db.elsewhere.invalid:5432", None)]


def test_restore_guard_compares_identities_from_pg_control(pg, params, dbname):
    """pg_controldata reads each local node's identity with no server connection; same identity → refused."""
    target = _NoEndpoints(from_options({}), stack=pg)
    assert [i for _, i in target.protected_identities()][0] is not None
    query(params, dbname, "CREATE TABLE t (id int)")  # a database with data: an empty one beside is allowed
    with pytest.raises(RestoreRefused, match="same system identifier"):
        target.guard_restore_target(params, dbname)
    target.guard_restore_target(params, dbname, allow_overwrite=True)  # --yes-overwrite-primary lifts it


def test_restore_guard_fails_closed_when_a_protected_server_cannot_be_identified(pg, params, dbname):
    target = _Unreadable(from_options({}, dsn=dsn(pg, dbname)))
    with pytest.raises(RestoreRefused, match="cannot rule out"):
        target.guard_restore_target(params, dbname)


def test_migrate_dry_run_prints_the_sql_and_the_preflight_and_changes_nothing(pg, params, dbname, chain_dir):
    """alembic's `upgrade --sql`: the dry run reaches the last I/O call — the SQL that would run, and
    the sessions the preflight would wait for — and writes nothing (not even the ledger schema)."""
    chain_dir({"001_t": {"up.sql": "CREATE TABLE t (id int);\n-- a comment that stays\nINSERT INTO t VALUES (1);\n"}})
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root)]
    from ops.dsn import connect
    with connect(params, dbname=dbname) as blocker:  # an idle-in-transaction session older than the limit
        blocker.execute("SELECT 1")
        res = invoke(["db.migrate", *common, "--dry-run", "--max-xact-age", "0"])
        assert res.returncode == 0, res.stderr
        assert "CREATE TABLE t (id int);" in res.stdout and "-- a comment that stays" in res.stdout
        assert "-- " + dbname + ": 001_t/up.sql" in res.stdout
        assert f"pid {blocker.info.backend_pid}" in res.stdout  # the preflight ran and named it
        doc = invoke(["db.migrate", *common, "--dry-run", "--json"])
        planned = json.loads(doc.stdout)[0]
        assert planned["dry_run"] is True and planned["planned"] == [1] and "001_t" in planned["sql"]
    assert query(params, dbname, "SELECT to_regclass('t'), to_regclass('pgops.migrations')") == [(None, None)]


def hinted_command(stderr: str) -> list[str]:
    """The `invoke …` command a refusal tells the user to run, as argv."""
    import re
    import shlex
    cmd = re.search(r"run `(invoke [^`]+)`", stderr).group(1)
    return shlex.split(cmd)[1:]


def test_the_command_a_refusal_names_is_the_same_one_with_yes(pg, params, dbname, backed_up, chain_dir, tmp_path):
    """Copying the hint must act on the same repository, target and folder as the refused command."""
    url, repo, _ = backed_up
    refused = invoke(["backup.prune", "--dsn", dsn(pg, dbname), "--repository", url, "--apply"])
    again = hinted_command(refused.stderr)
    assert again[-1] == "--yes" and url in again
    assert invoke(again).returncode == 0 and len(ids(repo, dbname)) == 3
    chain_dir({"001_t": {"up.sql": "CREATE TABLE u (id int);\n", "down.sql": "DROP TABLE u;\n"}})
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root)]
    assert invoke(["db.migrate", *common]).returncode == 0
    refused = invoke(["db.rollback", *common, "--steps", "1", "--no-backup"])
    assert refused.returncode == 2
    again = hinted_command(refused.stderr)
    assert "--db" in again and again[again.index("--db") + 1] == "app" and "--no-backup" in again
    done = invoke(again)
    assert done.returncode == 0, done.stderr
    assert query(params, dbname, "SELECT to_regclass('u')") == [(None,)]


def test_restore_protects_the_stack_even_when_pgops_dsn_is_set(pg, params, dbname, backed_up):
    """$PGOPS_DSN names a database for other tasks; it never replaces the stack whose servers a restore
    must not overwrite."""
    url, _, m = backed_up
    env = {"PGOPS_STATE_DIR": str(pg.layout.state_dir), "PGOPS_DSN": "host=db.elsewhere.invalid dbname=other"}
    res = invoke(["backup.restore", "--backup-id", m.id, "--repository", url, "--dsn", dsn(pg, dbname)], env)
    assert res.returncode == 7 and "own server" in res.stderr, res.stderr


def test_a_rollback_step_never_reverts_a_migration_committed_after_the_plan(params, dbname, chain_dir):
    """The guard is re-checked under the advisory lock: a deploy that applied a newer migration
    between the plan and the step makes the step refuse, reverting nothing."""
    from ops.errors import RollbackRefused
    from ops.migrations import runner
    from ops.migrations.runner import Target
    mdir = chain_dir({"001_a": {"up.sql": "CREATE TABLE a (id int);\n", "down.sql": "DROP TABLE a;\n"}})
    mt = Target(dbname, params, mdir)
    runner.migrate(mt)
    planned_newest = 1
    chain_dir({"002_b": {"up.sql": "CREATE TABLE b (id int);\n", "down.sql": "DROP TABLE b;\n"}})
    runner.migrate(mt)  # the concurrent deploy
    with pytest.raises(RollbackRefused, match="now 2, not 1"):
        runner.rollback(mt, steps=1, expect_newest=planned_newest)
    assert query(params, dbname, "SELECT to_regclass('a') IS NOT NULL, to_regclass('b') IS NOT NULL") == [(True, True)]


KINDS = {  # each kind of statement that destroys data, after a migration that created the data
    "drop table": "DROP TABLE notes;\n",
    "drop column": "ALTER TABLE notes DROP COLUMN body;\n",
    "truncate": "TRUNCATE notes;\n",
    "drop schema": "DROP SCHEMA archive CASCADE;\n",
    "acknowledged": "-- pgops:destructive\nUPDATE notes SET body = NULL;\n",
}
FIRST = {"001_notes": {"up.sql": "CREATE TABLE notes (id int PRIMARY KEY, body text);\nCREATE SCHEMA archive;\n"
                                 "CREATE TABLE archive.old (id int);\nINSERT INTO notes VALUES (1, 'keep me');\n"}}


def _intact(params, dbname):
    return query(params, dbname, "SELECT (SELECT body FROM notes WHERE id = 1), to_regclass('archive.old') IS NOT NULL, "
                                 "(SELECT max(version) FROM pgops.migrations)")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_runner_never_applies_an_unconfirmed_destructive_migration(params, dbname, chain_dir, kind):
    """The rule sits under the advisory lock, for every caller: held (with what it destroys), the
    migrations before it applied; applied only when its version is confirmed."""
    from ops.migrations import runner
    from ops.migrations.runner import Target
    mdir = chain_dir({**FIRST, "002_bad": {"up.sql": KINDS[kind]}, "003_after": {"up.sql": "CREATE TABLE z (id int);\n"}})
    mt = Target(dbname, params, mdir)
    res = runner.migrate(mt)
    assert [a.version for a in res.applied] == [1] and [h["version"] for h in res.held] == [2, 3]
    assert res.held[0]["reasons"] and _intact(params, dbname) == [("keep me", True, 1)]
    res = runner.migrate(mt, confirmed={2})
    assert [a.version for a in res.applied] == [2, 3] and res.held == []


@pytest.mark.parametrize("task", ["deploy", "db.migrate", "db.migrate --allow-out-of-order", "db.migrate --to 2"])
def test_every_task_that_migrates_shows_the_plan_and_needs_yes(pg, params, dbname, chain_dir, tmp_path, task):
    """deploy and db.migrate (with any of its knobs) share the rule: piped without --yes, the plan
    names what the migration destroys, exit 2, nothing changed — not even the backup; the command the
    refusal names applies it (after a backup)."""
    chain_dir(FIRST)
    repo = (tmp_path / "repo").as_uri()
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root), "--repository", repo]
    assert invoke(["db.migrate", *common]).returncode == 0
    chain_dir({"002_bad": {"up.sql": KINDS["drop column"]}})
    refused = invoke([*task.split(), *common])
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "002_bad (destroys data: DROP COLUMN notes.body)" in refused.stdout and "nothing was changed" in refused.stderr
    assert _intact(params, dbname) == [("keep me", True, 1)] and not list(tmp_path.rglob("manifest.json"))
    dry = invoke(["db.migrate", *common, "--dry-run"])
    assert dry.returncode == 0 and "would apply [2]" in dry.stdout and "needs a confirmation or --yes" in dry.stderr
    done = invoke(hinted_command(refused.stderr))
    assert done.returncode == 0, done.stderr
    assert query(params, dbname, "SELECT max(version) FROM pgops.migrations") == [(2,)]
    assert len(list(tmp_path.rglob("manifest.json"))) == 1  # the backup before it


def test_a_terminal_answer_no_applies_nothing(pg, params, dbname, chain_dir):
    from ops.deploy import deploy
    from ops.errors import PlanAborted
    from ops.settings import from_options
    chain_dir(FIRST)
    target = DsnTarget(from_options({}, dsn=dsn(pg, dbname), sql_root=str(chain_dir.root)))
    deploy(target, ["app"])
    chain_dir({"002_bad": {"up.sql": KINDS["truncate"]}})
    asked = []
    with pytest.raises(PlanAborted):
        deploy(target, ["app"], is_interactive=lambda: True, ask=lambda q: asked.append(q) or False)
    assert asked and _intact(params, dbname) == [("keep me", True, 1)]
    deploy(target, ["app"], is_interactive=lambda: True, ask=lambda q: True)
    assert query(params, dbname, "SELECT count(*) FROM notes") == [(0,)]
