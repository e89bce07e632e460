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

import re
from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.parser import ParseError

_DIRECTIVE = re.compile(r"^\s*--\s*pgops:([a-z_]+)(?:\s*=\s*([a-z0-9_]+))?", re.MULTILINE | re.IGNORECASE)
_DB_OBJECT_STMTS = (ast.CreatedbStmt, ast.DropdbStmt, ast.CreateTableSpaceStmt, ast.DropTableSpaceStmt,
                    ast.AlterSystemStmt)


class ScriptError(ValueError):
    """The file does not parse; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Statement:
    """One top-level statement: its exact text, 1-based starting line, and parse node."""

    index: int  # 1-based position in the file
    text: str
    line: int
    node: ast.Node

    @property
    def kind(self) -> str:
        return type(self.node).__name__

    @property
    def needs_no_transaction(self) -> bool:
        return refuses_transaction(self.node)


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


def refuses_transaction(node: ast.Node) -> bool:
    """True when PostgreSQL refuses ``node`` inside a transaction block (PreventInTransactionBlock
    callers in the PostgreSQL source: CONCURRENTLY index builds/drops/reindex, VACUUM, ALTER SYSTEM,
    database and tablespace DDL)."""
    if isinstance(node, ast.IndexStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.DropStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.ReindexStmt):
        return any(getattr(p, "defname", "") == "concurrently" for p in (node.params or ()))
    if isinstance(node, ast.VacuumStmt):
        return bool(node.is_vacuumcmd)
    return isinstance(node, _DB_OBJECT_STMTS)


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def parse_script(sql: str) -> Script:
    """Parse SQL text into a :class:`Script`.

    Raises :class:`ScriptError` (with the 1-based line) when PostgreSQL's parser rejects the text.
    pglast reports statement locations as character offsets into ``sql``.
    """
    directives = {m.group(1).lower(): (m.group(2) or "yes").lower() for m in _DIRECTIVE.finditer(sql)}
    try:
        raw = pglast.parse_sql(sql)
    except ParseError as exc:
        loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        line = _line_at(sql, min(loc, len(sql)))
        raise ScriptError(f"{exc.args[0]} at line {line}", line) from None
    stmts = []
    for i, rs in enumerate(raw, start=1):
        start = rs.stmt_location or 0
        end = start + rs.stmt_len if rs.stmt_len else len(sql)
        chunk = sql[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        stmts.append(Statement(i, chunk.strip(), _line_at(sql, start + lead), rs.stmt))
    has_tx = any(isinstance(s.node, ast.TransactionStmt) for s in stmts)
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
