"""Hypothesis strategies that lay statements out in every way ``psql -f`` accepts.

A layout is: optional UTF-8 BOM, then per statement optional blank lines and leading comments, the
statement, optionally a ``--`` or ``/* */`` comment before the separator, the ``;`` on the same line
or on a line of its own (after a ``--`` comment it must be on the next line, else it is commented
out), optionally a comment after it; the last statement may have no ``;``; then an optional
comment-only tail. Line endings are LF or CRLF for the whole file.

Used by tests/unit/test_script.py (splitter) and tests/integration/test_fidelity.py (psql vs pgops).
"""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

# Executable on a fresh database in any order and any number (names carry the statement's number i);
# each holds something a naive splitter or joiner trips on: ';', '--', '/*' inside strings, quoted
# identifiers, dollar bodies, BEGIN ATOMIC bodies, comments inside the statement, non-ASCII text.
TEMPLATES = [
    lambda i: f"CREATE TABLE \"odd;name_{i}\" (id int PRIMARY KEY, v text DEFAULT ';--/*')",
    lambda i: (f"CREATE FUNCTION f_{i}() RETURNS text LANGUAGE plpgsql AS $body$\nBEGIN\n"
               f"  RETURN 'a;b'; -- inner; comment\nEND $body$"),
    lambda i: f"CREATE FUNCTION g_{i}() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND",
    lambda i: f"CREATE TABLE t_{i} (\n  id int, -- a column; with a comment\n  note text /* block; */\n)",
    lambda i: f"CREATE VIEW v_{i} AS SELECT 'café ü; --' AS x",
    lambda i: f"DO $$ BEGIN EXECUTE 'CREATE TABLE d_{i} (a int)'; END $$",
    lambda i: f"CREATE TABLE s_{i} AS SELECT E'x\\';y' AS z",
    lambda i: f"CREATE SEQUENCE q_{i} /* a comment; inside */ START 5",
]

LEAD = ["", "\n", "\n\n", "-- leading note; with a semicolon\n", "/* leading\n block */\n", "/* a */ "]
BEFORE_SEP = ["", " ", " -- trailing note; see ticket 123", " /* trailing; block */", "\n-- own-line note"]
SEP = [";", "\n;", " ;"]
AFTER_SEP = ["", " -- after the separator", " /* after */", "  "]
TAIL = ["", "-- only comments follow\n", "/* tail; block */\n", "\n\n-- end ; of file\n-- really\n"]


@dataclass
class Layout:
    text: str  # the file as psql reads it (LF or CRLF, maybe BOM)
    statements: list[str]  # the statements as written, without ';'
    lines: list[int]  # 1-based line of each statement's first token

    def data(self) -> bytes:
        return self.text.encode("utf-8")


@st.composite
def layouts(draw, min_size: int = 1, max_size: int = 5) -> Layout:
    picks = draw(st.lists(st.integers(0, len(TEMPLATES) - 1), min_size=min_size, max_size=max_size))
    stmts = [TEMPLATES[t](i) for i, t in enumerate(picks)]
    crlf = draw(st.booleans())
    bom = draw(st.booleans())
    out, lines = [], []
    for n, stmt in enumerate(stmts):
        out.append(draw(st.sampled_from(LEAD)))
        lines.append("".join(out).count("\n") + 1)
        out.append(stmt)
        before = draw(st.sampled_from(BEFORE_SEP))
        out.append(before)
        last = n == len(stmts) - 1
        if last and draw(st.booleans()):  # no final separator
            out.append("\n" if "--" in before else "")
        else:
            sep = draw(st.sampled_from(SEP))
            if "--" in before and not sep.startswith("\n"):
                sep = "\n" + sep.lstrip()
            out.append(sep)
            out.append(draw(st.sampled_from(AFTER_SEP)))
        out.append("\n")
    out.append(draw(st.sampled_from(TAIL)))
    text = "".join(out)
    if crlf:
        text = text.replace("\n", "\r\n")
        stmts = [s.replace("\n", "\r\n") for s in stmts]
    return Layout(("\ufeff" if bom else "") + text, stmts, lines)
