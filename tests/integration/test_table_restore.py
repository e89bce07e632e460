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
    assert "foreign keys re-added: public.child.child_parent_id_fkey" in done.stdout
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


# ---- issue 19 §5: every table of every schema, the project's and one it did not write -------------

from psycopg import sql  # noqa: E402

from ops.backups import engine  # noqa: E402
from ops.backups.repository import FileRepository  # noqa: E402
from ops.backups.tablerestore import restore_table  # noqa: E402
from ops.migrations import runner  # noqa: E402
from ops.migrations.discovery import list_databases  # noqa: E402
from ops.settings import DEFAULT_SQL_ROOT  # noqa: E402
from ops.seeds import load_seeder  # noqa: E402
from ops.targets import migrations_dir  # noqa: E402

from .conftest import pg_dump_schema  # noqa: E402

TABLES_SQL = ("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition "
              "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgops') "
              "AND n.nspname NOT LIKE 'pg_toast%' "
              "AND (i.inhparent IS NULL OR c.oid = (SELECT min(j.inhrelid) FROM pg_inherits j WHERE j.inhparent = "
              "i.inhparent)) ORDER BY 1, 2")
"""Every table and partitioned table, and one partition of each (the others are restored the same way:
each month's partition of futuresync would add a minute)."""


def digest(params, db, schema, name):
    """Row count and a checksum of every row of one table (partitions included)."""
    return query(params, db, sql.SQL("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                                     "FROM {} x").format(sql.Identifier(schema, name)))[0]


def sequences(params, db):
    return query(params, db, "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2")


def round_tripped(params, db, tmp_path):
    """``db`` backed up and restored whole into a new database, which is backed up in turn: returns
    (that database, its repository folder, its manifest). PostgreSQL prints some expressions
    differently once they went through a dump (``IN`` lists over varchar), so the table restores are
    compared with a database already at that fixed point."""
    first = FileRepository(tmp_path / "first")
    m = engine.create_logical(first, params, db)
    copy = db + "_rt"
    query(params, "postgres", f'CREATE DATABASE "{copy}"')
    engine.restore(first, m, params, copy)
    repo = tmp_path / "repo"
    return copy, repo, engine.create_logical(FileRepository(repo), params, copy)


def drop_and_restore_each(pg, params, db, repo, m):
    """For every table (partitioned parents and leaf partitions too): DROP TABLE … CASCADE, restore it
    from ``m``, and demand the whole schema, its rows and every sequence as they were. Returns the
    failures (one line each), so one run names them all."""
    schema_before, seq_before = pg_dump_schema(pg, db), sequences(params, db)
    failures = []
    for schema, name in query(params, db, TABLES_SQL):
        rows_before = digest(params, db, schema, name)
        query(params, db, sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(schema, name)))
        try:
            r = restore_table(FileRepository(repo), m, params, db, f"{schema}.{name}")
        except Exception as exc:  # noqa: BLE001 - collected: the test names every table that fails
            failures.append(f"{schema}.{name}: {exc}")
            break  # the table is gone: later tables' schema checks would all fail for it
        if r.not_valid:
            failures.append(f"{schema}.{name}: left NOT VALID {[n.key for n in r.not_valid]}")
        if digest(params, db, schema, name) != rows_before or r.rows != r.expected_rows:
            failures.append(f"{schema}.{name}: rows differ ({r.rows} restored, manifest {r.expected_rows})")
        if pg_dump_schema(pg, db) != schema_before:
            failures.append(f"{schema}.{name}: the schema differs after the restore")
        if sequences(params, db) != seq_before:
            failures.append(f"{schema}.{name}: sequence values differ")
    return failures


@pytest.mark.parametrize("folder", list_databases(DEFAULT_SQL_ROOT))
def test_every_table_of_every_project_database_comes_back_as_it_was(pg, params, dbname, tmp_path, folder):
    """Outgoing, incoming and self-referencing keys, partitions, RLS, identity and generated
    columns, triggers: whatever sql/<folder> holds, each table dropped with CASCADE comes back with
    the schema, rows and sequences it had (it failed on the first table with an outgoing key)."""
    runner.migrate(runner.Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, folder)))
    if (DEFAULT_SQL_ROOT / folder / "seed.py").exists():
        load_seeder(DEFAULT_SQL_ROOT, folder).generate(params, dbname, 12, seed=5)
    copy, repo, m = round_tripped(params, dbname, tmp_path)
    try:
        assert drop_and_restore_each(pg, params, copy, repo, m) == []
    finally:
        query(params, "postgres", f'DROP DATABASE "{copy}" WITH (FORCE)')


FOREIGN_SCHEMA = """
CREATE SCHEMA "Sales Ops";
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched_at := clock_timestamp(); RETURN NEW; END $$;
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO audit_log (tbl, op) VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$;
CREATE TABLE audit_log (id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL);
CREATE TABLE tenants (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, region text NOT NULL,
                      name text NOT NULL, UNIQUE (id, region));
CREATE TABLE "Sales Ops"."Customer Accounts" (
    id serial PRIMARY KEY, tenant_id int NOT NULL, region text NOT NULL,
    referred_by int REFERENCES "Sales Ops"."Customer Accounts" (id) ON DELETE SET NULL,
    email text NOT NULL, email_lower text GENERATED ALWAYS AS (lower(email)) STORED,
    touched_at timestamptz,
    FOREIGN KEY (tenant_id, region) REFERENCES tenants (id, region) ON UPDATE CASCADE);
CREATE UNIQUE INDEX accounts_email ON "Sales Ops"."Customer Accounts" (email_lower);
CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON "Sales Ops"."Customer Accounts"
    FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER accounts_audit AFTER INSERT ON "Sales Ops"."Customer Accounts" FOR EACH ROW EXECUTE FUNCTION audit();
ALTER TABLE "Sales Ops"."Customer Accounts" DISABLE TRIGGER accounts_audit;
ALTER TABLE "Sales Ops"."Customer Accounts" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Sales Ops"."Customer Accounts" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_only ON "Sales Ops"."Customer Accounts"
    USING (tenant_id = current_setting('app.tenant', true)::int);
CREATE TABLE invoices (id bigint GENERATED BY DEFAULT AS IDENTITY, account_id int NOT NULL
                           REFERENCES "Sales Ops"."Customer Accounts" (id),
                       issued date NOT NULL, amount numeric(12, 2) CHECK (amount >= 0),
                       PRIMARY KEY (id, issued)) PARTITION BY RANGE (issued);
CREATE TABLE invoices_2025 PARTITION OF invoices FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE invoices_2026 PARTITION OF invoices FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE invoices_other PARTITION OF invoices DEFAULT;
CREATE TRIGGER invoices_audit AFTER INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION audit();
CREATE TABLE invoice_lines (invoice_id bigint, issued date, line int, text text,
                            PRIMARY KEY (invoice_id, issued, line),
                            FOREIGN KEY (invoice_id, issued) REFERENCES invoices (id, issued) ON DELETE CASCADE);
CREATE VIEW account_invoices AS SELECT a.email, count(*) AS invoices
    FROM "Sales Ops"."Customer Accounts" a JOIN invoices i ON i.account_id = a.id GROUP BY 1;
CREATE VIEW big_accounts AS SELECT * FROM account_invoices WHERE invoices > 5;
ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY lines_of_invoices ON invoice_lines FOR SELECT
    USING (EXISTS (SELECT 1 FROM invoices i WHERE i.id = invoice_id AND i.issued = invoice_lines.issued));
CREATE TABLE notes (id int PRIMARY KEY, account_id int);
INSERT INTO notes VALUES (1, 1), (2, 999);
ALTER TABLE notes ADD CONSTRAINT notes_account FOREIGN KEY (account_id)
    REFERENCES "Sales Ops"."Customer Accounts" (id) NOT VALID;
INSERT INTO tenants (region, name) SELECT (ARRAY['eu', 'us'])[1 + g % 2], 't' || g FROM generate_series(1, 4) g;
INSERT INTO "Sales Ops"."Customer Accounts" (tenant_id, region, referred_by, email)
    SELECT 1 + g % 4, (ARRAY['eu', 'us'])[1 + (1 + g % 4) % 2], NULLIF(g - 1, 0), 'User' || g || '@X.org'
    FROM generate_series(1, 40) g;
INSERT INTO invoices (account_id, issued, amount)
    SELECT 1 + g % 40, date '2025-01-01' + g * 3, g FROM generate_series(1, 300) g;
INSERT INTO invoice_lines SELECT id, issued, l, 'line' FROM invoices, generate_series(1, 2) l;
"""
"""A schema pgops did not write: quoted names with spaces in a second schema, a composite outgoing
key, a self-reference, identity (ALWAYS and BY DEFAULT), serial and generated columns, a BEFORE
trigger that rewrites rows and a disabled AFTER trigger, FORCE RLS with a policy, a partitioned
table with a default partition, an incoming key on it, views (and a view on a view) and another
table's policy that read the tables (CASCADE drops them), and a NOT VALID key whose orphan predates
the backup."""


def test_every_table_of_a_schema_the_project_did_not_write_comes_back_as_it_was(pg, params, dbname, tmp_path):
    query(params, dbname, FOREIGN_SCHEMA)
    repo = tmp_path / "repo"
    m = engine.create_logical(FileRepository(repo), params, dbname)
    failures = drop_and_restore_each(pg, params, dbname, repo, m)
    # notes.notes_account was NOT VALID in the backup (row 2 has no account): it stays so, named
    assert failures == ["Sales Ops.Customer Accounts: left NOT VALID ['public.notes.notes_account']",
                        "public.notes: left NOT VALID ['public.notes.notes_account']"]
    query(params, dbname, 'INSERT INTO "Sales Ops"."Customer Accounts" (tenant_id, region, email) '
                          "VALUES (1, 'us', 'new@x.org')")  # the serial goes on where it was: no collision
    assert query(params, dbname, "SELECT count(*) FROM audit_log") == [(300,)]  # no trigger fired on restore


def test_an_outgoing_key_whose_parent_went_after_the_backup_is_left_not_valid_and_named(params, dbname, tmp_path):
    query(params, dbname, "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE projects (id int PRIMARY KEY, "
                          "user_id int REFERENCES users (id)); INSERT INTO users SELECT generate_series(1, 5); "
                          "INSERT INTO projects SELECT g, 1 + g % 5 FROM generate_series(1, 20) g")
    url = (tmp_path / "repo").as_uri()
    assert invoke(["backup.create", "--dsn", dsn(params, dbname), "--repository", url]).returncode == 0
    query(params, dbname, "DROP TABLE projects CASCADE; DELETE FROM users WHERE id = 3")
    done = invoke(["backup.restore", "latest", "--dsn", dsn(params, dbname), "--repository", url,
                   "--table", "public.projects", "--yes"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert query(params, dbname, "SELECT count(*) FROM projects") == [(20,)]
    assert query(params, dbname, "SELECT convalidated FROM pg_constraint WHERE conname = 'projects_user_id_fkey'") \
        == [(False,)]
    said = " ".join(done.stderr.split())
    assert "public.projects.projects_user_id_fkey left NOT VALID: 4 row(s) of public.projects" in said
    assert "VALIDATE CONSTRAINT projects_user_id_fkey" in said
    listed = said.split("List them with: ", 1)[1].split("; fix", 1)[0]
    assert len(query(params, dbname, listed)) == 4  # the query it gives lists exactly the orphans


def test_a_backup_from_before_a_rollback_is_named_and_a_changed_table_refused_unless_accepted(params, dbname,
                                                                                              tmp_path, chain_dir):
    """Ledger 2 in the backup, 1 live (002 rolled back): a table 002 changed is refused, naming the
    column and index it would bring back; --accept-backup-definition restores it as the backup has it;
    a table 002 did not touch is restored with the ledgers named."""
    chain_dir({"001_init": {"up.sql": "CREATE TABLE users (id int PRIMARY KEY);\nCREATE TABLE projects (id int "
                                      "PRIMARY KEY, user_id int REFERENCES users (id));\n",
                            "down.sql": "DROP TABLE projects;\nDROP TABLE users;\n"},
               "002_archive": {"up.sql": "ALTER TABLE projects ADD COLUMN archived_at timestamptz;\n"
                                         "CREATE INDEX projects_archived_idx ON projects (archived_at);\n",
                               "down.sql": "DROP INDEX projects_archived_idx;\n"
                                           "ALTER TABLE projects DROP COLUMN archived_at;\n"}})
    common = ["--dsn", dsn(params, dbname), "--db", "app", "--sql-root", str(chain_dir.root)]
    assert invoke(["db.migrate", *common]).returncode == 0
    query(params, dbname, "INSERT INTO users SELECT generate_series(1, 3); INSERT INTO projects VALUES (1, 1), (2, 2)")
    url = (tmp_path / "repo").as_uri()
    assert invoke(["backup.create", "--dsn", dsn(params, dbname), "--repository", url]).returncode == 0
    assert invoke(["db.rollback", *common, "--to", "1", "--yes", "--repository", url]).returncode == 0
    query(params, dbname, "DROP TABLE projects CASCADE; DROP TABLE users CASCADE")
    table = ["backup.restore", "latest", *common, "--repository", url, "--yes", "--table"]
    refused = invoke([*table, "public.projects"])
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 7, refused.stdout + refused.stderr
    assert "ledger version 2" in said and "is at 1 now" in said
    assert "column archived_at only in the backup" in said and "index projects_archived_idx only in the backup" in said
    assert "--accept-backup-definition" in said
    assert query(params, dbname, "SELECT to_regclass('projects')") == [(None,)]  # nothing changed
    same = invoke([*table, "public.users"])  # 002 did not touch users: restored, the ledgers named
    assert same.returncode == 0, same.stdout + same.stderr
    assert "ledger version 2; '" in same.stderr and "is the same in both" in " ".join(same.stderr.split())
    accepted = invoke([*table, "public.projects", "--accept-backup-definition"])
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "archived_at" in accepted.stderr
    assert query(params, dbname, "SELECT count(archived_at), count(*) FROM projects") == [(0, 2)]
    assert query(params, dbname, "SELECT convalidated FROM pg_constraint WHERE conname = 'projects_user_id_fkey'") \
        == [(True,)]
