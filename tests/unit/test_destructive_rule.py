"""The one rule for migrations that destroy data (ops.migrations.destructive): what counts, on the
parse tree, and where a migrate run stops when it is not confirmed."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.migrations.destructive import hold_unconfirmed, is_destructive, reasons
from ops.migrations.models import Migration
from ops.migrations.script import parse_script

pytestmark = pytest.mark.unit

DESTRUCTIVE = {
    "DROP TABLE orders;": "DROP TABLE orders",
    "DROP TABLE IF EXISTS s.orders, lines CASCADE;": "DROP TABLE s.orders, lines",
    "ALTER TABLE orders DROP COLUMN note;": "DROP COLUMN orders.note",
    "ALTER TABLE orders ADD COLUMN x int, DROP COLUMN IF EXISTS note;": "DROP COLUMN orders.note",
    "TRUNCATE orders;": "TRUNCATE orders",
    "TRUNCATE TABLE orders, lines RESTART IDENTITY;": "TRUNCATE orders, lines",
    "DROP SCHEMA legacy CASCADE;": "DROP SCHEMA legacy",
    "DROP DATABASE scratch;": "DROP DATABASE scratch",
}
SAFE = [
    "CREATE TABLE t (id int);",
    "ALTER TABLE orders ADD COLUMN x int;",
    "CREATE INDEX i ON orders (id);",
    "DROP INDEX i;",
    "DROP VIEW v;",
    "DROP FUNCTION f();",
    "DROP TRIGGER tr ON orders;",
    "ALTER TABLE orders DROP CONSTRAINT c;",
    "ALTER TABLE orders ALTER COLUMN x DROP DEFAULT;",
    "INSERT INTO orders VALUES (1);",
    "SELECT 'DROP TABLE orders';",
    "COMMENT ON TABLE orders IS 'TRUNCATE orders; DROP TABLE orders';",
    "-- DROP TABLE orders; (a comment)\nSELECT 1;",
    "CREATE TABLE tmp (id int);\nDROP TABLE tmp;",  # created in the same file: nothing existed to lose
    "CREATE TABLE tmp (id int);\nTRUNCATE tmp;",
]


def mig(version: int, sql: str) -> Migration:
    return Migration(version, f"m{version}", Path(f"{version:03d}_m{version}"), sql, parse_script(sql), "x")


@pytest.mark.parametrize("sql,reason", DESTRUCTIVE.items())
def test_each_statement_that_destroys_data_is_found_and_named(sql, reason):
    assert reasons(mig(1, sql)) == (reason,)


@pytest.mark.parametrize("sql", SAFE)
def test_statements_that_destroy_nothing_are_not_destructive(sql):
    assert reasons(mig(1, sql)) == ()


def test_directives_make_a_migration_destructive():
    assert reasons(mig(1, "-- pgops:destructive\nUPDATE orders SET x = NULL;")) == ("-- pgops:destructive",)
    r = reasons(mig(1, "-- pgops:gate=validation\n-- pgops:destructive\nLOCK TABLE a;\nDROP TABLE a;"))
    assert r[0].startswith("contract migration") and r[1:] == ("DROP TABLE a",)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SAFE), max_size=5), st.lists(st.sampled_from(sorted(DESTRUCTIVE)), max_size=2),
       st.randoms())
def test_a_file_is_destructive_exactly_when_it_holds_a_destructive_statement(safe, bad, rnd):
    stmts = safe + bad
    rnd.shuffle(stmts)
    m = mig(1, "\n".join(stmts) or "SELECT 1;")
    assert is_destructive(m) == bool(bad)
    assert len(reasons(m)) == len(bad)  # one phrase per statement, in file order
    assert list(reasons(m)) == [DESTRUCTIVE[s] for s in stmts if s in DESTRUCTIVE]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=8), st.data())
def test_a_run_stops_at_the_first_unconfirmed_destructive_migration(kinds, data):
    pending = [mig(i + 1, "DROP TABLE t;" if bad else "CREATE TABLE t (id int);") for i, bad in enumerate(kinds)]
    confirmed = data.draw(st.sets(st.sampled_from([m.version for m in pending]))) if pending else set()
    run, held = hold_unconfirmed(pending, confirmed)
    assert run + [m for m in pending if m.version in {h["version"] for h in held}] == pending  # a split, in order
    assert all(m.version in confirmed for m in run if is_destructive(m))  # nothing unconfirmed runs
    if held:
        first = pending[len(run)]
        assert is_destructive(first) and first.version not in confirmed and held[0]["reasons"] == ["DROP TABLE t"]
    else:
        assert run == pending
