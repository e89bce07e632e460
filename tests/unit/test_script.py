"""Statement splitting and transaction mode from the parse tree (pglast), never from ';'."""
import pglast
import pytest
from hypothesis import given, settings, strategies as st

from ops.migrations.script import ScriptError, parse_script


def test_dollar_quotes_do_blocks_and_quoted_identifiers_survive():
    sql = ('CREATE TABLE "odd;name" (v text DEFAULT \';\');\n'
           "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
           "DO $$ BEGIN RAISE NOTICE 'a;b'; END $$;\n"
           "-- a comment; with a semicolon\n"
           "SELECT ';' AS x;\n")
    s = parse_script(sql)
    assert [st.kind for st in s.statements] == ["CreateStmt", "CreateFunctionStmt", "DoStmt", "SelectStmt"]
    assert [st.line for st in s.statements] == [1, 2, 3, 5]
    assert s.statements[1].text.endswith("$body$")
    assert s.transactional


@pytest.mark.parametrize("stmt", [
    "CREATE INDEX CONCURRENTLY i ON t (a)",
    "DROP INDEX CONCURRENTLY i",
    "REINDEX INDEX CONCURRENTLY i",
    "VACUUM t",
    "ALTER SYSTEM SET work_mem = '8MB'",
    "CREATE DATABASE x",
])
def test_statements_postgres_refuses_in_a_transaction(stmt):
    s = parse_script(f"CREATE TABLE t (a int);\n{stmt};\n")
    assert not s.transactional and "cannot run in a transaction block" in s.mode_reason


@pytest.mark.parametrize("stmt", ["CREATE INDEX i ON t (a)", "ANALYZE t", "REINDEX INDEX i", "DROP INDEX i"])
def test_statements_fine_in_a_transaction(stmt):
    assert parse_script(f"{stmt};").transactional


def test_file_with_its_own_begin_commit_runs_like_psql():
    s = parse_script("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\n")
    assert not s.transactional and s.has_transaction_control


def test_directives_force_either_mode():
    assert not parse_script("-- pgops:transaction=off\nCREATE TABLE t (a int);").transactional
    forced = parse_script("-- pgops:transaction=on\nCREATE INDEX CONCURRENTLY i ON t (a);")
    assert forced.transactional and forced.mode_reason.startswith("directive")
    assert "destructive" in parse_script("-- pgops:destructive\nDROP TABLE t;").directives


def test_empty_file_is_a_legal_no_op():
    assert parse_script("-- nothing yet\n").empty


def test_syntax_error_names_the_line():
    with pytest.raises(ScriptError) as info:
        parse_script("SELECT 1;\nSELEC 2;\n")
    assert info.value.line == 2


def test_non_ascii_text_keeps_statements_whole():
    s = parse_script("-- café § naïve\nCREATE TABLE t (a text DEFAULT 'ü');\nSELECT 'é';\n")
    assert s.statements[0].text == "CREATE TABLE t (a text DEFAULT 'ü')"
    assert s.statements[1].text == "SELECT 'é'"


idents = st.text(alphabet="abc;$' xyz", min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(idents, idents, st.booleans()), min_size=1, max_size=6))
def test_split_round_trips_any_chain_of_statements(parts):
    """Property: for statements whose identifiers, literals and $$ bodies hold ';', quotes and '$',
    the split yields exactly those statements, each parsing to the same tree as the original."""
    stmts = []
    for i, (ident, literal, as_function) in enumerate(parts):
        quoted_ident = '"' + f"{ident}_{i}".replace('"', '""') + '"'
        quoted_lit = "'" + literal.replace("'", "''") + "'"
        if as_function:
            body = f"SELECT {quoted_lit}::text"
            tag = "$fn$"
            stmts.append(f"CREATE FUNCTION f{i}() RETURNS text LANGUAGE sql AS {tag} {body} {tag}")
        else:
            stmts.append(f"CREATE TABLE {quoted_ident} (c text DEFAULT {quoted_lit})")
    script = parse_script(";\n".join(stmts) + ";\n")
    assert len(script.statements) == len(stmts)
    for got, want in zip(script.statements, stmts):
        assert pglast.parse_sql(got.text) == pglast.parse_sql(want)
