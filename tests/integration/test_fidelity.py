"""pgops applies a file exactly as ``psql -X -v ON_ERROR_STOP=1 --single-transaction -f`` does
(issue 9 §1): same schema for every layout psql accepts, and honest blame when a failure cannot be
located to one statement."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from ops.dsn import connect
from ops.errors import MigrationFailed, MigrationFailedUnlocated
from ops.local.cluster import pg_bindir
from ops.migrations import runner
from ops.migrations.runner import Target
from tests.sqllayout import layouts

from .conftest import pg_dump_schema, query


def psql_file(pg, dbname: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                           "-h", "127.0.0.1", "-p", str(pg.layout.primary.port), "-U", "postgres", "-d", dbname,
                           "-f", str(path)],
                          env={**os.environ, "PGPASSFILE": str(pg.layout.passfile)}, capture_output=True, text=True)


def fresh_dbs(pg, n: int) -> list[str]:
    names = ["f_" + uuid.uuid4().hex[:12] for _ in range(n)]
    with connect(pg.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return names


def drop_dbs(pg, names: list[str]) -> None:
    with connect(pg.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migration_dir(data: bytes) -> Path:
    root = Path(tempfile.mkdtemp(prefix="pgops-fidelity-"))
    (root / "migrations" / "001_layout").mkdir(parents=True)
    (root / "migrations" / "001_layout" / "up.sql").write_bytes(data)
    return root


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(max_size=4))
def test_pgops_leaves_the_schema_psql_leaves(pg, params, layout):
    """Property: for statements laid out in any way psql accepts (comments before/after ';', ';' on
    its own line, no final ';', comment-only tail, CRLF, blank lines, BOM), the schema pgops leaves
    is the schema ``psql --single-transaction -f`` leaves (pg_dump --schema-only, pgops schema aside)."""
    by_psql, by_pgops = fresh_dbs(pg, 2)
    root = migration_dir(layout.data())
    try:
        up = root / "migrations" / "001_layout" / "up.sql"
        done = psql_file(pg, by_psql, up)
        assert done.returncode == 0, done.stderr  # the layout is one psql accepts
        runner.migrate(Target(by_pgops, params, root / "migrations"))
        assert query(params, by_pgops, "SELECT version FROM pgops.migrations") == [(1,)]
        assert pg_dump_schema(pg, by_pgops, exclude_pgops=True) == pg_dump_schema(pg, by_psql)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        drop_dbs(pg, [by_psql, by_pgops])


@pytest.mark.parametrize("up", [
    "CREATE TABLE t (id int) -- see ticket 123\n",
    "CREATE TABLE t (id int);\nCREATE TABLE u (id int)\n-- only comments\n-- follow\n",
    "CREATE TABLE t (id int) -- see ticket 123\n;\nCREATE TABLE u (id int);\n",
])
def test_statement_ending_in_a_line_comment_does_not_swallow_the_next(target, params, dbname, up):
    """The three reproductions of issue 9 §1 (each failed with: syntax error at or near "INSERT")."""
    runner.migrate(target({"001_t": {"up.sql": up}}))
    assert query(params, dbname, "SELECT to_regclass('t') IS NOT NULL") == [(True,)]
    assert query(params, dbname, "SELECT version FROM pgops.migrations") == [(1,)]


def test_failure_that_no_statement_reproduces_is_not_blamed_on_one(target, params, dbname):
    """A deferred FK is checked at COMMIT: the batch fails, the statement-by-statement replay (always
    rolled back, never committed) passes. The error must not name a statement it cannot know."""
    t = target({"001_deferred": {"up.sql":
                "CREATE TABLE p (id int PRIMARY KEY);\n"
                "CREATE TABLE c (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n"
                "INSERT INTO c VALUES (1);\n"}})
    with pytest.raises(MigrationFailed) as info:
        runner.migrate(t)
    e = info.value
    assert isinstance(e, MigrationFailedUnlocated) and e.exit_code == 5
    assert e.statement is None and e.line is None
    assert "cannot be located to one statement" in str(e) and "violates foreign key" in e.error
    assert "statement 3" not in str(e)
    assert query(params, dbname, "SELECT to_regclass('p')") == [(None,)]
    detail = query(params, dbname, "SELECT detail FROM pgops.migration_events WHERE event = 'failed'")
    assert "not located" in detail[0][0]
