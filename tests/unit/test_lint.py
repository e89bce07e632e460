"""Lint rules on the parse tree, each with file:line and a safe rewrite; grading by table size."""
import pytest

from ops.migrations.lint import Finding, grade, lint_script, lock_level
from ops.migrations.script import parse_script


def rules(sql):
    return [(f.rule, f.line) for f in lint_script(parse_script(sql), "x/up.sql")]


@pytest.mark.parametrize("sql,expected", [
    ("CREATE INDEX i ON orders (a);", [("PG001", 1)]),
    ("CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);", []),
    ("BEGIN;\nCREATE INDEX CONCURRENTLY i ON orders (a);\nCOMMIT;", [("PG002", 2)]),
    ("ALTER TABLE orders ADD COLUMN u uuid DEFAULT gen_random_uuid();", [("PG003", 1)]),
    ("ALTER TABLE orders ADD COLUMN at timestamptz DEFAULT now();", []),
    ("ALTER TABLE orders ALTER COLUMN a TYPE bigint;", [("PG004", 1)]),
    ("ALTER TABLE orders ADD COLUMN n int NOT NULL;", [("PG005", 1)]),
    ("ALTER TABLE orders ADD COLUMN n int NOT NULL DEFAULT 0;", []),
    ("ALTER TABLE orders ALTER COLUMN n SET NOT NULL;", [("PG005", 1)]),
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES c (id);", [("PG006", 1)]),
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES c (id) NOT VALID;", []),
    ("ALTER TABLE orders ADD CONSTRAINT ck CHECK (a > 0);", [("PG006", 1)]),
    ("DROP TABLE orders;", [("PG007", 1)]),
    ("-- pgops:destructive\nDROP TABLE orders;", []),
    ("ALTER TABLE orders DROP COLUMN a;", [("PG007", 1)]),
    ("ALTER TABLE orders RENAME COLUMN a TO b;", [("PG008", 1)]),
    ("ALTER TABLE orders RENAME TO purchases;", [("PG008", 1)]),
    ("CREATE TABLE t (at timestamp);", [("PG009", 1)]),
    ("CREATE TABLE t (at timestamptz);", []),
    ("-- nothing\n", [("PG010", 1)]),
])
def test_rules(sql, expected):
    assert rules(sql) == expected


def test_every_finding_carries_a_rewrite():
    for f in lint_script(parse_script("CREATE INDEX i ON o (a);\nDROP TABLE o;"), "f"):
        assert f.rewrite and f.message and f.file == "f"


def test_grade_by_live_size():
    f = Finding("PG001", "warning", "f", 1, "m", "r", "orders")
    assert grade(f, None, None).severity == "info"
    assert grade(f, 500, 1_000_000).severity == "low"
    assert grade(f, 500_000, 200 * 1_048_576).severity == "medium"
    assert grade(f, 5_000_000, 10).severity == "high"
    assert "5,000,000 rows" in grade(f, 5_000_000, 10).size


@pytest.mark.parametrize("sql,lock", [
    ("CREATE INDEX i ON t (a)", "SHARE"),
    ("CREATE INDEX CONCURRENTLY i ON t (a)", "SHARE UPDATE EXCLUSIVE"),
    ("ALTER TABLE t ADD COLUMN a int", "ACCESS EXCLUSIVE"),
    ("ALTER TABLE t VALIDATE CONSTRAINT c", "SHARE UPDATE EXCLUSIVE"),
    ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p (id) NOT VALID", "SHARE ROW EXCLUSIVE"),
    ("CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()", "SHARE ROW EXCLUSIVE"),
    ("INSERT INTO t VALUES (1)", "ROW EXCLUSIVE"),
])
def test_lock_levels(sql, lock):
    assert lock_level(parse_script(sql).statements[0])[0] == lock
