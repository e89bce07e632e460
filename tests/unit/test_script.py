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


# ---- text fidelity: every layout psql accepts (issue 9 §1) ----------------------------------------

from unittest import mock  # noqa: E402

from pglast.parser import scan  # noqa: E402

from ops.migrations import script as script_mod  # noqa: E402
from tests.sqllayout import layouts  # noqa: E402


def _assert_faithful(layout, parsed):
    assert len(parsed.statements) == len(layout.statements)
    for got, want, line in zip(parsed.statements, layout.statements, layout.lines):
        assert pglast.parse_sql(got.text) == pglast.parse_sql(want)
        assert got.line == line
        tokens = scan(got.text)  # from its first token to the end of its last: no comment, no ';'
        assert tokens[0].start == 0 and tokens[-1].end == len(got.text) - 1
        assert tokens[-1].name not in ("SQL_COMMENT", "C_COMMENT", "';'")
    # what the runner sends (texts joined with ';', then its own ledger INSERT) splits back the same
    joined = ";\n".join([s.text for s in parsed.statements] + ["INSERT INTO ledger VALUES (1)"])
    again = parse_script(joined)
    assert [s.text for s in again.statements] == [s.text for s in parsed.statements] + ["INSERT INTO ledger VALUES (1)"]


@settings(max_examples=200, deadline=None)
@given(layouts())
def test_every_psql_layout_splits_into_the_written_statements(layout):
    """Property: trailing comments before/after ';', ';' on its own line, no final ';', a
    comment-only tail, CRLF, blank lines and a BOM all yield exactly the statements written, at
    their lines, with texts that can be joined with ';' (the runner's batch) without gluing."""
    _assert_faithful(layout, parse_script(layout.text))


@settings(max_examples=100, deadline=None)
@given(layouts(min_size=2, max_size=8), st.integers(min_value=1, max_value=64))
def test_parsing_in_small_windows_gives_the_same_statements(layout, window):
    """Property: the bounded-memory windowed parse (windows cut after a ';' token, grown when a cut
    falls inside BEGIN ATOMIC … END or a string) gives the same statements as one parse."""
    whole = parse_script(layout.text)
    with mock.patch.object(script_mod, "WINDOW", window):
        small = parse_script(layout.text)
    assert small == whole
    _assert_faithful(layout, small)


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (id int) -- see ticket 123\n;\nSELECT 1;\n",
    "CREATE TABLE t (id int) -- see ticket 123\n",
    "CREATE TABLE t (id int)\n-- nothing else but comments\n/* really */\n",
    "CREATE TABLE t (id int) /* block */ -- line\n;",
])
def test_statement_text_never_ends_in_a_comment(sql):
    assert parse_script(sql).statements[0].text == "CREATE TABLE t (id int)"


def test_utf8_bom_is_dropped_as_psql_drops_it():
    s = parse_script("\ufeffCREATE TABLE t (id int);\n")
    assert [st.text for st in s.statements] == ["CREATE TABLE t (id int)"]


def test_syntax_error_line_in_non_ascii_text():
    with pytest.raises(ScriptError) as info:  # pglast reports a shifted position for non-ASCII text
        parse_script("SELECT 'éééé';\nSELECT 'ü';\nSELEC 2;\n")
    assert info.value.line == 3


@pytest.mark.parametrize("window", [4, 16, 1 << 19])
def test_syntax_error_far_into_a_large_file_names_its_line(window):
    sql = "INSERT INTO t VALUES (1, 'a;b');\n" * 300 + "INSERT INTO t VALUES (2,;\n" + "SELECT 1;\n" * 10
    with mock.patch.object(script_mod, "WINDOW", window), pytest.raises(ScriptError) as info:
        parse_script(sql)
    assert info.value.line == 301


def test_unterminated_string_at_the_end_is_an_error_at_its_line():
    with mock.patch.object(script_mod, "WINDOW", 8), pytest.raises(ScriptError) as info:
        parse_script("SELECT 1;\nSELECT 2;\nSELECT 'abc;\nSELECT 3;\n")
    assert "unterminated" in str(info.value) and info.value.line == 3


def test_statements_share_one_copy_of_the_text():
    sql = "SELECT 1;\nSELECT 2;\n"
    s = parse_script(sql)
    assert all(st.source is sql for st in s.statements)


@pytest.mark.parametrize("text", ["-- pgops:no-transaction\nSELECT 1;", "SELECT 1;\n--pgops:transactional=off\n",
                                  "-- pgops:destructve\nDROP TABLE t;", "-- pgops:\nSELECT 1;"])
def test_an_unknown_directive_is_refused_not_ignored(text):
    """A misspelt directive must not silently run a file in the mode it was meant to leave."""
    with pytest.raises(ScriptError, match="unknown directive"):
        parse_script(text)


@pytest.mark.parametrize("text,transactional", [("-- pgops:transaction=off\nSELECT 1;", False),
                                                 ("-- PGOPS:Transaction = ON\nVACUUM;", True),
                                                 ("-- pgops:destructive\nSELECT 1;", True)])
def test_known_directives_still_apply(text, transactional):
    assert parse_script(text).transactional is transactional
