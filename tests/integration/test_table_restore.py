"""Restore one table (issue 12): after a `DROP TABLE … CASCADE`, the table comes back from a logical
backup with its rows (the manifest's count), indexes, constraints and the foreign keys other tables
held on it; beside the live table under --as; refused over a live table; a plan that needs --yes."""
from __future__ import annotations

import json

import pytest

from .conftest import invoke, query

pytestmark = pytest.mark.integration


def dsn(params, dbname):
    return f"host=127.0.0.1 port={params['port']} user=postgres dbname={dbname} passfile={params['passfile']}"


@pytest.fixture
def backed_up(params, dbname, tmp_path):
    query(params, dbname, "CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL CHECK (name <> ''));"
                          "CREATE INDEX parent_name_idx ON parent (name);"
                          "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));"
                          "INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 300) g;"
                          "INSERT INTO child SELECT g, 1 + g % 300 FROM generate_series(1, 900) g;")
    url = (tmp_path / "repo").as_uri()
    res = invoke(["backup.create", "--dsn", dsn(params, dbname), "--repository", url, "--json"])
    assert res.returncode == 0, res.stderr
    return url, json.loads(res.stdout)[0]


def restore(params, dbname, url, *extra):
    return invoke(["backup.restore", "--backup-id", "latest", "--dsn", dsn(params, dbname), "--repository", url,
                   "--table", "public.parent", *extra])


def test_a_dropped_table_comes_back_with_its_rows_indexes_and_incoming_foreign_keys(params, dbname, backed_up):
    url, _ = backed_up
    query(params, dbname, "DROP TABLE parent CASCADE")
    refused = restore(params, dbname, url)
    assert refused.returncode == 2 and "plan: restore table public.parent" in refused.stdout
    assert query(params, dbname, "SELECT to_regclass('parent')") == [(None,)]
    done = restore(params, dbname, url, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert query(params, dbname, "SELECT count(*) FROM parent") == [(300,)]
    assert "holds 300 rows (the manifest counted 300)" in done.stdout  # the re-check against the manifest
    indexes = {r[0] for r in query(params, dbname, "SELECT indexrelid::regclass::text FROM pg_index "
                                                   "WHERE indrelid = 'parent'::regclass")}
    assert indexes == {"parent_pkey", "parent_name_idx"}
    fks = query(params, dbname, "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                                "AND conrelid = 'child'::regclass AND confrelid = 'parent'::regclass")
    assert fks == [("child_parent_id_fkey", True)]
    assert "foreign keys re-added: child.child_parent_id_fkey" in done.stdout
    with pytest.raises(Exception, match="violates check constraint"):  # its CHECK came back too
        query(params, dbname, "INSERT INTO parent VALUES (1000, '')")


def test_beside_the_live_table_and_refused_over_it(params, dbname, backed_up):
    url, _ = backed_up
    query(params, dbname, "DELETE FROM child WHERE parent_id > 100; DELETE FROM parent WHERE id > 100")
    over = restore(params, dbname, url, "--yes")
    assert over.returncode == 7 and "already exists" in over.stderr and "--as" in over.stderr
    beside = restore(params, dbname, url, "--as", "parent_restored", "--yes")
    assert beside.returncode == 0, beside.stderr
    assert query(params, dbname, "SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM parent_restored)") == [(100, 300)]
    names = {r[0] for r in query(params, dbname, "SELECT indexrelid::regclass::text FROM pg_index "
                                                 "WHERE indrelid = 'parent_restored'::regclass")}
    assert names == {"parent_pkey_parent_restored", "parent_name_idx_parent_restored"}


def test_a_child_row_without_its_parent_leaves_the_key_not_valid_and_says_so(params, dbname, backed_up):
    url, _ = backed_up
    query(params, dbname, "INSERT INTO parent VALUES (5000, 'after the backup'); INSERT INTO child VALUES (5000, 5000)")
    query(params, dbname, "DROP TABLE parent CASCADE")
    done = restore(params, dbname, url, "--yes")
    assert done.returncode == 0, done.stderr
    assert "left NOT VALID" in done.stderr and "child_parent_id_fkey" in done.stderr
    assert query(params, dbname, "SELECT convalidated FROM pg_constraint WHERE conname = 'child_parent_id_fkey'") == [(False,)]
