"""Discovery: numeric order, every problem reported at once, verify shape checked statically."""
import pytest

from ops.errors import DiscoveryError
from ops.migrations.discovery import discover, list_databases


def write(root, folder, **files):
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.sql").write_text(text)


def test_order_is_numeric_not_lexical(tmp_path):
    for folder in ("10_ten", "9_nine", "0002_two", "20250112093000_stamp"):
        write(tmp_path, folder, up="SELECT 1;")
    assert [m.version for m in discover(tmp_path)] == [2, 9, 10, 20250112093000]


def test_every_problem_is_reported_at_once(tmp_path):
    write(tmp_path, "001_a", up="SELECT 1;")
    write(tmp_path, "1_dup", up="SELECT 1;")
    write(tmp_path, "abc", up="SELECT 1;")
    write(tmp_path, "002_noup", down="SELECT 1;")
    write(tmp_path, "003_bad", up="SELEC 1;")
    write(tmp_path, "004_shape", up="SELECT 1;", verify="SELECT 'x', true;\nDELETE FROM t;\nSELECT * FROM t;")
    (tmp_path / "005_typo").mkdir()
    (tmp_path / "005_typo" / "up.sql").write_text("SELECT 1;")
    (tmp_path / "005_typo" / "donw.sql").write_text("SELECT 1;")
    with pytest.raises(DiscoveryError) as info:
        discover(tmp_path)
    problems = "\n".join(info.value.problems)
    assert "duplicate version 1" in problems
    assert "abc: not a migration folder" in problems
    assert "002_noup: missing up.sql" in problems
    assert "003_bad/up.sql: syntax error" in problems
    assert "returns 2 columns" in problems and "is DeleteStmt" in problems and "selects *" in problems
    assert "donw.sql: unexpected file" in problems
    assert len(info.value.problems) == 8


def test_checksum_is_sha256_of_up_sql(tmp_path):
    import hashlib
    write(tmp_path, "001_a", up="CREATE TABLE a (id int);\n")
    m = discover(tmp_path)[0]
    assert m.checksum == hashlib.sha256(b"CREATE TABLE a (id int);\n").hexdigest()
    assert m.down is None and m.verify is None


def test_verify_values_and_union_shapes_are_accepted(tmp_path):
    write(tmp_path, "001_a", up="SELECT 1;",
          verify="VALUES ('a', true, ''), ('b', false, 'x');\nSELECT 'a', true, '' UNION ALL SELECT 'b', false, '';")
    assert discover(tmp_path)[0].verify is not None


def test_missing_folder_is_an_empty_chain(tmp_path):
    assert discover(tmp_path / "nope") == []


def test_database_folders(tmp_path):
    (tmp_path / "shop" / "migrations").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    assert list_databases(tmp_path) == ["shop"]
    (tmp_path / "Bad-Name" / "migrations").mkdir(parents=True)
    with pytest.raises(DiscoveryError):
        list_databases(tmp_path)
