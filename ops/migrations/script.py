"""A SQL file as PostgreSQL's own parser sees it (pglast): statements, lines, transaction mode.

Statements are split by the parser, never on ``;``, so ``$$`` bodies, DO blocks and quoted
identifiers survive. A file that holds a statement PostgreSQL refuses inside a transaction block
("cannot run inside a transaction block": CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY,
VACUUM, ALTER SYSTEM, CREATE/DROP DATABASE and TABLESPACE, DISCARD ALL, …) or its own BEGIN/COMMIT
runs statement by statement outside a transaction, exactly as ``psql -f`` would. Directive comments
override: ``-- pgops:transaction=off`` / ``-- pgops:transaction=on``; ``-- pgops:destructive``
acknowledges DROP TABLE / DROP COLUMN for lint; ``-- pgops:gate=validation`` marks a contract migration
that waits for a passing ``db.validate`` (:mod:`ops.migrations.gate`).

Text fidelity: a statement's ``text`` runs from its first token to the end of its last token (the
scanner's token boundaries), so it never starts or ends inside a comment and never holds the ``;``.
Any two texts joined with ``;`` therefore reach the server as the same statements psql sends.

Cost: linear in the file size and bounded in memory. The file is parsed in windows of about
:data:`WINDOW` characters cut after a ``;`` token (found by libpg_query's scanner); a window that ends
inside a construct holding ``;`` (``BEGIN ATOMIC … END``) fails "at end of input" and is retried
twice as long. Statements keep offsets into the one copy of the text, not copies of it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.parser import ParseError, parse_sql_json, scan, split

_ANY_DIRECTIVE = re.compile(r"^\s*--\s*pgops:(\S*)", re.MULTILINE | re.IGNORECASE)
_KNOWN_DIRECTIVES = re.compile(r"(transaction\s*=?\s*(on|off|yes|no|true|false)|destructive|gate\s*=\s*validation)$",
                               re.IGNORECASE)


def _check_directives(sql: str) -> None:
    """Refuse a ``-- pgops:`` comment that is not a known directive (a misspelt
    ``pgops:no-transaction`` must not silently run the file in a transaction). Raises
    :class:`ScriptError` naming the line."""
    for m in _ANY_DIRECTIVE.finditer(sql):
        rest = sql[m.start(1):sql.find("\n", m.start(1)) if "\n" in sql[m.start(1):] else len(sql)].strip()
        if not _KNOWN_DIRECTIVES.match(rest):
            raise ScriptError(f"unknown directive '-- pgops:{rest}' (known: -- pgops:transaction=off, "
                              "-- pgops:transaction=on, -- pgops:destructive, -- pgops:gate=validation)", sql.count("\n", 0, m.start()) + 1)


_DIRECTIVE = re.compile(r"^\s*--\s*pgops:([a-z_]+)(?:\s*=\s*([a-z0-9_]+))?", re.MULTILINE | re.IGNORECASE)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
WINDOW = 1 << 19  # characters parsed at once (≈ 0.5 MiB); memory use is a small multiple of it
BOM = "\ufeff"


class ScriptError(ValueError):
    """The file does not parse; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, eq=False, slots=True)
class Statement:
    """One top-level statement: 1-based index and starting line, node type (libpg_query name, e.g.
    ``CreateStmt``) and its exact text, from its first token to the end of its last one (no leading
    or trailing comment, no ``;``). ``node`` is the pglast AST, built on first use (lint, plan)."""

    index: int  # 1-based position in the file
    line: int
    kind: str
    source: str = field(repr=False)  # the whole file's text, shared by every statement
    start: int = field(repr=False)  # character offsets of the text in ``source``
    end: int = field(repr=False)
    needs_no_transaction: bool = False
    _node: ast.Node | None = field(default=None, repr=False)  # cache of the AST

    @property
    def text(self) -> str:
        return self.source[self.start:self.end]

    @property
    def node(self) -> ast.Node:
        if self._node is None:
            object.__setattr__(self, "_node", pglast.parse_sql(self.text)[0].stmt)
        return self._node

    @property
    def tree(self) -> dict:
        """The raw libpg_query JSON tree of the statement (parsed again on each call)."""
        (_kind, tree), = json.loads(parse_sql_json(self.text))["stmts"][0]["stmt"].items()
        return tree

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Statement):
            return NotImplemented
        return (self.index, self.line, self.kind, self.text) == (other.index, other.line, other.kind, other.text)

    def __hash__(self) -> int:
        return hash((self.index, self.line, self.kind, self.text))


@dataclass(frozen=True)
class Script:
    """A parsed SQL file. ``transactional`` is the mode it runs in; ``mode_reason`` says why."""

    statements: tuple[Statement, ...]
    directives: dict[str, str] = field(default_factory=dict)
    transactional: bool = True
    mode_reason: str = "default: one transaction per migration"
    has_transaction_control: bool = False

    @property
    def empty(self) -> bool:
        return not self.statements


_NO_TX_KINDS = {"CreatedbStmt", "DropdbStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterSystemStmt"}


def refuses_transaction(kind: str, tree: dict) -> bool:
    """True when PostgreSQL refuses a statement of node type ``kind`` (fields ``tree``) inside a
    transaction block (PreventInTransactionBlock callers in the PostgreSQL source: CONCURRENTLY
    index builds/drops/reindex, REINDEX SYSTEM/DATABASE, VACUUM, CLUSTER of every table, DISCARD ALL,
    DETACH PARTITION CONCURRENTLY, ALTER SYSTEM, database and tablespace DDL)."""
    if kind in ("IndexStmt", "DropStmt"):
        return bool(tree.get("concurrent"))
    if kind == "ReindexStmt":
        return (any(p.get("DefElem", {}).get("defname") == "concurrently" for p in tree.get("params", ()))
                or tree.get("kind") in ("REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"))
    if kind == "VacuumStmt":
        return bool(tree.get("is_vacuumcmd"))
    if kind == "ClusterStmt":
        return "relation" not in tree
    if kind == "DiscardStmt":
        return tree.get("target") == "DISCARD_ALL"
    if kind == "AlterTableStmt":
        return any(c.get("AlterTableCmd", {}).get("subtype") == "AT_DetachPartition"
                   and c["AlterTableCmd"].get("def", {}).get("PartitionCmd", {}).get("concurrent")
                   for c in tree.get("cmds", ()))
    return kind in _NO_TX_KINDS


def _line_at(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1


def _text_end(sql: str, start: int, end: int) -> int:
    """End offset of the last token of the statement ``sql[start:end]``: trailing whitespace and
    comments (``-- …`` up to the end of a line, ``/* … */``) dropped, using the PostgreSQL scanner."""
    end = start + len(sql[start:end].rstrip())
    last_line = sql.rfind("\n", start, end) + 1
    if "--" not in sql[max(start, last_line):end] and not sql.endswith("*/", start, end):
        return end  # cannot end in a comment: a line comment runs to the end of its line
    tokens = [t for t in scan(sql[start:end]) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    return start + tokens[-1].end + 1 if tokens else end


def _window_end(sql: str, pos: int, size: int) -> int:
    """An offset after ``pos`` just past a ``;`` token, at most ``size`` characters on, cut where
    the scanner sees statement boundaries (never in a string, comment or dollar quote); ``len(sql)``
    when the rest is shorter, ``-1`` when no boundary lies inside the window."""
    if len(sql) - pos <= size:
        return len(sql)
    window = sql[pos:pos + size]
    if not window.isascii():  # same length, same strings/comments/quotes: see _error_line
        window = _NON_ASCII.sub("_", window)
    for _ in range(2):
        try:
            slices = split(window, with_parser=False, only_slices=True)
            break
        except ParseError as exc:  # an unterminated string/comment where the window cuts a token
            at = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            if at is None or at <= 0:
                return -1
            window = window[:at]
    else:
        return -1
    if len(slices) < 2:
        return -1
    return pos + slices[-1].start  # before the last (maybe truncated) statement, after the ';' ending the one before


def _error_line(sql: str, pos: int, chunk: str, exc: ParseError) -> int:
    """1-based line of a parse error in ``chunk`` (which starts at ``pos`` in ``sql``).

    pglast maps libpg_query's error position as if it were a byte offset although it is a character
    offset, so for non-ASCII text the error is located again on a copy with every non-ASCII
    character replaced by ``_`` (same length in characters; same tokens in all but contrived cases);
    when that copy fails differently, the chunk's first line is named."""
    at = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
    if not chunk.isascii():
        try:
            parse_sql_json(_NON_ASCII.sub("_", chunk))
            at = None
        except ParseError as again:
            same = again.args[0] == exc.args[0]
            at = again.args[1] if same and len(again.args) > 1 and isinstance(again.args[1], int) else None
    if at is None:
        at = len(chunk.rstrip()) if "end of input" in exc.args[0] else len(chunk) - len(chunk.lstrip())
    return _line_at(sql, pos + min(at, len(chunk)))


def parse_script(sql: str) -> Script:
    """Parse SQL text into a :class:`Script`.

    Raises :class:`ScriptError` (with the 1-based line) when PostgreSQL's parser rejects the text.
    A UTF-8 byte order mark opening the text is dropped, as ``psql -f`` drops it (checked against
    psql 15: a BOM-prefixed file applies); a BOM anywhere else is a syntax error in both. Linear
    time; memory bounded by :data:`WINDOW` plus the text and one small object per statement.
    """
    if sql.startswith(BOM):  # psql drops a byte order mark that opens the file (MainLoop, UTF-8)
        sql = sql[1:]
    _check_directives(sql)
    directives = {m.group(1).lower(): (m.group(2) or "yes").lower() for m in _DIRECTIVE.finditer(sql)}
    stmts: list[Statement] = []
    pos, line_pos, line = 0, 0, 1
    size = WINDOW
    while pos < len(sql):
        end = _window_end(sql, pos, size)
        if end < 0:
            size *= 2
            continue
        chunk = sql[pos:end]
        try:
            raw = json.loads(parse_sql_json(chunk))["stmts"]
        except ParseError as exc:
            if end < len(sql) and ("end of input" in exc.args[0] or "unterminated" in exc.args[0]):
                size *= 2  # the cut fell inside BEGIN ATOMIC … END or the like: take more
                continue
            line = _error_line(sql, pos, chunk, exc)
            raise ScriptError(f"{exc.args[0]} at line {line}", line) from None
        ascii_chunk = chunk.isascii()
        data = None if ascii_chunk else chunk.encode("utf-8")
        b_cursor = c_cursor = 0

        def char_offset(b: int) -> int:  # byte offset in the chunk → character offset, moving forward
            nonlocal b_cursor, c_cursor
            if ascii_chunk:
                return b
            c_cursor += len(data[b_cursor:b].decode("utf-8"))
            b_cursor = b
            return c_cursor

        for rs in raw:  # libpg_query locations are byte offsets; stmt_location is the first token's
            (kind, tree), = rs["stmt"].items()
            b_start = rs.get("stmt_location", 0)
            start = pos + char_offset(b_start)
            stop = pos + (char_offset(b_start + rs["stmt_len"]) if rs.get("stmt_len") else len(chunk))
            start += len(sql[start:stop]) - len(sql[start:stop].lstrip())
            line += sql.count("\n", line_pos, start)
            line_pos = start
            stmts.append(Statement(len(stmts) + 1, line, kind, sql, start, _text_end(sql, start, stop),
                                   refuses_transaction(kind, tree)))
        del raw
        pos, size = end, WINDOW
    has_tx = any(s.kind == "TransactionStmt" for s in stmts)
    mode = directives.get("transaction")
    if mode in ("off", "no", "false"):
        transactional, reason = False, "directive pgops:transaction=off"
    elif mode in ("on", "yes", "true"):
        transactional, reason = True, "directive pgops:transaction=on"
    elif has_tx:
        transactional, reason = False, "the file manages its own BEGIN/COMMIT (run as psql would)"
    elif any(s.needs_no_transaction for s in stmts):
        first = next(s for s in stmts if s.needs_no_transaction)
        transactional, reason = False, f"statement {first.index} ({first.kind}, line {first.line}) cannot run in a transaction block"
    else:
        transactional, reason = True, "default: one transaction per migration"
    return Script(tuple(stmts), directives, transactional, reason, has_tx)
