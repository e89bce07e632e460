"""Tasks as a user runs them against any PostgreSQL (--dsn): exit codes, messages, JSON, and the
psql equivalence of plain SQL chains."""
from __future__ import annotations

import json
import os
import subprocess

from ops.pgtools import pg_bindir

from .conftest import invoke, pg_dump_schema, query

GOLANG_MIGRATE_STYLE = {
    "001_init": {
        "up.sql": "BEGIN;\nCREATE TABLE \"weird;name\" (id serial PRIMARY KEY, note text DEFAULT 'a;b');\n"
                  "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.note := NEW.note || ';';\n"
                  "  RETURN NEW;\nEND\n$$;\nCOMMIT;\n",
        "down.sql": "DROP FUNCTION bump();\nDROP TABLE \"weird;name\";\n"},
    "002_more": {
        "up.sql": "DO $$ BEGIN EXECUTE 'CREATE TABLE done (x int)'; END $$;\n"
                  "CREATE INDEX CONCURRENTLY idx_note ON \"weird;name\" (note);\n"
                  "COMMENT ON TABLE done IS 'it''s; done';\n",
        "down.sql": "DROP TABLE done;\nDROP INDEX CONCURRENTLY idx_note;\n"},
}


def dsn(pg, dbname, password=None):
    p = pg.conninfo()
    base = f"host=127.0.0.1 port={p['port']} user=postgres dbname={dbname}"
    return base + (f" password={password}" if password else f" passfile={p['passfile']}")


def test_plain_sql_chain_applies_exactly_as_psql_would(pg, params, dbname, chain_dir):
    mdir = chain_dir(GOLANG_MIGRATE_STYLE)
    res = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root), "--json"])
    assert res.returncode == 0, res.stderr
    # the same files through psql, one by one, into a second database
    other = dbname + "_psql"
    query(params, "postgres", f'CREATE DATABASE "{other}"')
    try:
        for folder in sorted(GOLANG_MIGRATE_STYLE):
            subprocess.run([str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(params["port"]), "-U", "postgres", "-d", other, "-f", str(mdir / folder / "up.sql")],
                           env={**os.environ, "PGPASSFILE": params["passfile"]}, check=True, capture_output=True)
        assert pg_dump_schema(pg, dbname, exclude_pgops=True) == pg_dump_schema(pg, other, exclude_pgops=True)
    finally:
        query(params, "postgres", f'DROP DATABASE "{other}"')


def test_status_plan_verify_rollback_json(pg, params, dbname, chain_dir, tmp_path):
    chain_dir({"001_t": {"up.sql": "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 20000);\n",
                         "down.sql": "DROP TABLE t;\n",
                         "verify.sql": "SELECT 'rows', count(*) = 20000, count(*)::text FROM t;\n"},
               "002_idx": {"up.sql": "CREATE INDEX idx_t ON t (id);\n", "down.sql": "DROP INDEX idx_t;\n"}})
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root)]
    assert invoke(["db.migrate", *common, "--to", "1"]).returncode == 0
    query(params, dbname, "ANALYZE t")
    status = json.loads(invoke(["db.status", *common, "--json"]).stdout)[dbname]
    assert status["current"] == 1 and status["pending"] == [2]
    plan = json.loads(invoke(["db.plan", *common, "--json"]).stdout)[dbname]
    assert plan["pending"] == ["002_idx"]
    assert plan["statements"][0]["lock"] == "SHARE"
    finding = plan["findings"][0]
    assert finding["rule"] == "PG001" and finding["severity"] == "medium" and "20,000 rows" in finding["size"]
    assert invoke(["db.migrate", *common]).returncode == 0
    verify = invoke(["db.verify", *common, "--json"])
    assert verify.returncode == 0 and json.loads(verify.stdout)[dbname][0]["passed"] is True
    query(params, dbname, "DELETE FROM t WHERE id = 1")
    failing = invoke(["db.verify", *common])
    assert failing.returncode == 5 and "rows" in failing.stderr and "19999" in failing.stderr
    dry = invoke(["db.rollback", *common, "--steps", "2", "--dry-run"])
    assert dry.returncode == 0 and query(params, dbname, "SELECT count(*) FROM pgops.migrations") == [(2,)]
    # destructive: without a terminal and without --yes it exits 2 and changes nothing
    refused = invoke(["db.rollback", *common, "--to", "0", "--repository", (tmp_path / "repo").as_uri()])
    assert refused.returncode == 2 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert "plan: roll back database" in refused.stdout and "revert 2_idx" in refused.stdout
    assert query(params, dbname, "SELECT count(*) FROM pgops.migrations") == [(2,)]
    assert not list((tmp_path / "repo").rglob("manifest.json"))  # not even the pre-rollback backup
    done = invoke(["db.rollback", *common, "--to", "0", "--repository", (tmp_path / "repo").as_uri(), "--yes"])
    assert done.returncode == 0, done.stderr
    assert query(params, dbname, "SELECT to_regclass('t')") == [(None,)]
    backups = json.loads(invoke(["backup.list", "--dsn", dsn(pg, dbname), "--repository", (tmp_path / "repo").as_uri(),
                                 "--json"]).stdout)
    assert len(backups) == 1 and backups[0]["database"] == dbname  # the pre-rollback backup, taken first
    assert "now at version —" in done.stdout


def test_wrong_password_is_redacted_and_exits_cleanly(pg, dbname):
    res = invoke(["db.status", "--dsn", dsn(pg, dbname, password="hunter2-secret"), "--db", "syncscript"])
    assert res.returncode == 4
    assert "hunter2" not in res.stderr + res.stdout
    assert "Cannot connect to postgres@127.0.0.1" in res.stderr and "Traceback" not in res.stderr


def test_malformed_chain_reports_all_problems_with_exit_code(chain_dir, pg, dbname):
    chain_dir({"001_a": {"up.sql": "SELEC 1;"}, "xyz": {"up.sql": "SELECT 1;"}})
    res = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root)])
    assert res.returncode == 5 and "2 problem(s)" in res.stderr and "Traceback" not in res.stderr


def test_bad_option_is_clear(tmp_path):
    res = invoke(["db.migrate", "--dsn", "host=127.0.0.1 dbname=x", "--to", "soon"])
    assert res.returncode == 2 and "--to must be an integer" in res.stderr


def test_new_and_lint(tmp_path):
    res = invoke(["db.new", "--db", "shop", "--name", "add_orders", "--sql-root", str(tmp_path)])
    assert res.returncode == 0 and (tmp_path / "shop" / "migrations" / "0001_add_orders" / "up.sql").exists()
    (tmp_path / "shop" / "migrations" / "0001_add_orders" / "up.sql").write_text("DROP TABLE legacy;\n")
    lint = json.loads(invoke(["db.lint", "--sql-root", str(tmp_path), "--json"]).stdout)
    assert [f["rule"] for f in lint["shop"]] == ["PG007"]
    assert lint["shop"][0]["file"] == "0001_add_orders/up.sql"


def test_deploy_with_dsn_migrates_the_dsn_database_with_the_named_chain(pg, params, dbname, chain_dir, tmp_path):
    chain_dir({"001_t": {"up.sql": "CREATE TABLE t (id int);\n",
                         "verify.sql": "SELECT 't exists', to_regclass('t') IS NOT NULL, '';\n"}})
    common = ["--dsn", dsn(pg, dbname), "--db", "app", "--sql-root", str(chain_dir.root),
              "--repository", (tmp_path / "repo").as_uri()]
    first = invoke(["deploy", *common, "--json"])
    assert first.returncode == 0, first.stderr
    row = json.loads(first.stdout)["databases"][0]
    assert (row["database"], row["created"], row["version_after"], row["checks_passed"]) == (dbname, False, 1, 1)
    chain_dir({"002_u": {"up.sql": "CREATE TABLE u (id int);\n"}})
    second = json.loads(invoke(["deploy", *common, "--json"]).stdout)["databases"][0]
    assert second["version_after"] == 2 and second["pre_deploy_backup"]
    two = invoke(["deploy", "--dsn", dsn(pg, dbname), "--db", "app", "--db", "other", "--sql-root", str(chain_dir.root)])
    assert two.returncode == 2
