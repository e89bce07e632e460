"""A SQL file as PostgreSQL's own parser sees it (pglast): statements, lines, transaction mode.

Statements are split by the parser, never on ``;``, so ``$$`` bodies, DO blocks and quoted
identifiers survive. A file that holds a statement PostgreSQL refuses inside a transaction block
("cannot run inside a transaction block": CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY,
VACUUM, ALTER SYSTEM, CREATE/DROP DATABASE and TABLESPACE) or its own BEGIN/COMMIT runs statement by
statement outside a transaction, exactly as ``psql -f`` would. Directive comments override:
``-- pgops:transaction=off`` / ``-- pgops:transaction=on``; ``-- pgops:destructive`` acknowledges
DROP TABLE / DROP COLUMN for lint.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property

import pglast
from pglast import ast
from pglast.parser import ParseError, parse_sql_json

_DIRECTIVE = re.compile(r"^\s*--\s*pgops:([a-z_]+)(?:\s*=\s*([a-z0-9_]+))?", re.MULTILINE | re.IGNORECASE)


class ScriptError(ValueError):
    """The file does not parse; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Statement:
    """One top-level statement: its exact text, 1-based starting line, node type and raw parse tree
    (libpg_query JSON). ``node`` is the pglast AST, built on first use (lint, plan)."""

    index: int  # 1-based position in the file
    text: str
    line: int
    kind: str
    tree: dict = field(repr=False, compare=False, default_factory=dict)

    @cached_property
    def node(self) -> ast.Node:
        return pglast.parse_sql(self.text)[0].stmt

    @property
    def needs_no_transaction(self) -> bool:
        return refuses_transaction(self.kind, self.tree)


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
    index builds/drops/reindex, VACUUM, ALTER SYSTEM, database and tablespace DDL)."""
    if kind in ("IndexStmt", "DropStmt"):
        return bool(tree.get("concurrent"))
    if kind == "ReindexStmt":
        return any(p.get("DefElem", {}).get("defname") == "concurrently" for p in tree.get("params", ()))
    if kind == "VacuumStmt":
        return bool(tree.get("is_vacuumcmd"))
    return kind in _NO_TX_KINDS


def parse_script(sql: str) -> Script:
    """Parse SQL text into a :class:`Script`.

    Raises :class:`ScriptError` (with the 1-based line) when PostgreSQL's parser rejects the text.
    Splitting uses libpg_query's JSON tree (fast); the pglast AST is built lazily per statement.
    """
    directives = {m.group(1).lower(): (m.group(2) or "yes").lower() for m in _DIRECTIVE.finditer(sql)}
    data = sql.encode("utf-8")
    try:
        raw = json.loads(parse_sql_json(sql))["stmts"]
    except ParseError as exc:
        loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        line = data.count(b"\n", 0, min(loc, len(data))) + 1
        raise ScriptError(f"{exc.args[0]} at line {line}", line) from None
    stmts = []
    for i, rs in enumerate(raw, start=1):  # libpg_query locations are byte offsets
        start = rs.get("stmt_location", 0)
        end = start + rs["stmt_len"] if rs.get("stmt_len") else len(data)
        chunk = data[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        (kind, tree), = rs["stmt"].items()
        stmts.append(Statement(i, chunk.decode("utf-8").strip(), data.count(b"\n", 0, start + lead) + 1, kind, tree))
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
