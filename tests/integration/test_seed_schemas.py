"""Every database under sql/ round-trips on real PostgreSQL: migrate → verify passes → rollback to
nothing leaves no objects but the ledger → migrate again gives an identical schema (pg_dump)."""
from __future__ import annotations

import pytest

from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir
from ops.migrations import runner
from ops.migrations.discovery import discover, list_databases
from ops.migrations.runner import Target
from ops.seeds import load_seeder

from .conftest import pg_dump_schema, query

SYNC_SEED = load_seeder(DEFAULT_SQL_ROOT, "syncscript")
TABLES, seed_syncscript = SYNC_SEED.TABLES, SYNC_SEED.generate

DATABASES = list_databases(DEFAULT_SQL_ROOT)


def test_both_seed_databases_are_managed():
    assert {"syncscript", "describeit"} <= set(DATABASES)
    assert "futuresync" in DATABASES  # seed 001 (issue 13)
    assert "fluxstudio" in DATABASES  # seed 002
    assert "advent" in DATABASES  # seed 004


@pytest.mark.parametrize("folder", DATABASES)
def test_round_trip(pg, params, dbname, folder):
    t = Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, folder))
    chain = discover(t.migrations_dir)
    res = runner.migrate(t, confirmed={m.version for m in chain})
    if res.waiting:  # a gated contract migration (advent): prove the (empty) transfer, then it applies
        assert [a.version for a in res.applied] == [m.version for m in chain if m.version < res.waiting[0]["version"]]
        res.applied += transfer_and_validate(params, dbname, folder)
    assert [a.version for a in res.applied] == [m.version for m in chain]
    results = runner.verify(t)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]
    first = pg_dump_schema(pg, dbname)

    runner.rollback(t, steps=len(chain))
    leftovers = query(params, dbname,
                      "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgops', 'pg_toast') "
                      "UNION ALL SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                      "WHERE n.nspname = 'public'")
    assert leftovers == []
    assert query(params, dbname, "SELECT count(*) FROM pgops.migrations") == [(0,)]

    if runner.migrate(t, confirmed={m.version for m in chain}).waiting:  # destructive steps confirmed, as --yes does
        transfer_and_validate(params, dbname, folder)
    assert pg_dump_schema(pg, dbname) == first


def transfer_and_validate(params, dbname, folder):
    """Run the database's declared transfer and validation, then migrate through its gate."""
    from ops.tasks.transfer import load_spec
    from ops.transfer.engine import transfer
    from ops.transfer.validate import validate
    spec = load_spec(DEFAULT_SQL_ROOT, folder)
    transfer(params, dbname, spec)
    assert all(r.passed for r in validate(params, dbname, spec)[1])
    chain = discover(migrations_dir(DEFAULT_SQL_ROOT, folder))  # the contract destroys the legacy tables: confirmed here
    return runner.migrate(Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, folder)),
                          confirmed={m.version for m in chain}).applied


def test_describeit_checklist_has_every_seed_check(pg, params, dbname):
    t = Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, "describeit"))
    runner.migrate(t, to=0)
    query(params, dbname, "INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 5) g")
    query(params, dbname, "INSERT INTO learning_sessions (user_id, status, questions_answered, correct_answers) "
                          "SELECT id, 'active', 10, 7 FROM users")
    runner.migrate(t)
    checks = {r.check: r for r in runner.verify(t) if r.migration == "001_add_missing_tables"}
    assert set(checks) == {"Tables Created", "RLS Enabled", "RLS Policies", "RLS Policy Coverage", "Indexes Created",
                           "Triggers Created", "Functions Created", "Foreign Keys", "Unique Constraints",
                           "Initial Data", "All columns present"}
    assert all(c.passed for c in checks.values()), checks
    assert checks["RLS Policies"].detail == "12/12"
    # the session completion trigger keeps user_progress current
    query(params, dbname, "UPDATE learning_sessions SET status = 'completed', completed_at = now()")
    assert query(params, dbname, "SELECT min(completed_sessions), min(correct_answers) FROM user_progress") == [(1, 14)]
    # a broken object makes its check fail
    query(params, dbname, "DROP POLICY user_progress_service_all ON user_progress")
    checks = {r.check: r for r in runner.verify(t)}
    assert not checks["RLS Policies"].passed and checks["RLS Policies"].detail == "11/12"


def test_seed_is_deterministic_and_referentially_consistent(pg, params, dbname):
    t = Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, "syncscript"))
    runner.migrate(t)
    counts, _ = seed_syncscript(params, dbname, 200, seed=7)
    assert set(counts) == set(TABLES) and all(counts[tbl] > 0 for tbl in TABLES)
    assert counts["users"] == 200 and counts["tasks"] == 600

    def fingerprint():
        return {tbl: query(params, dbname, f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {tbl} t")[0][0]
                for tbl in TABLES}
    first = fingerprint()
    seed_syncscript(params, dbname, 200, seed=7, replace=True)
    assert fingerprint() == first
    seed_syncscript(params, dbname, 200, seed=8, replace=True)
    assert fingerprint()["users"] != first["users"]
    assert all(r.passed for r in runner.verify(t))


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in DEFAULT_SQL_ROOT.glob("*/seed.py")))
def test_every_seed_generator_refuses_a_database_without_its_schema(params, dbname, folder):
    """An empty database: each generator names the missing tables and the deploy to run, and
    writes nothing (ops.seeds.prepare_tables, shared by every generator)."""
    from ops.errors import OpsError

    seeder = load_seeder(DEFAULT_SQL_ROOT, folder)
    with pytest.raises(OpsError) as err:
        seeder.generate(params, dbname, 1, 1)
    assert "lacks" in err.value.message and f"invoke deploy --db {folder}" in err.value.hint
