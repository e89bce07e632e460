"""Lint on the parse tree: the migration hazards squawk and Atlas name, each with the safe rewrite.

Rules (ids are stable):

- ``PG001`` index built without CONCURRENTLY on an existing table (blocks writes for the build).
- ``PG002`` CONCURRENTLY inside an explicit transaction (PostgreSQL refuses it).
- ``PG003`` ADD COLUMN with a volatile default (rewrites the table; PostgreSQL 11+ only avoids the
  rewrite for non-volatile defaults).
- ``PG004`` column type change (rewrites the table under ACCESS EXCLUSIVE).
- ``PG005`` NOT NULL column without default added, or SET NOT NULL, on an existing table.
- ``PG006`` FOREIGN KEY or CHECK added to an existing table without NOT VALID (full scan under lock).
- ``PG007`` DROP TABLE / DROP COLUMN without the ``-- pgops:destructive`` acknowledgement.
- ``PG008`` rename of a table or column (breaks the running application; expand/contract instead).
- ``PG009`` ``timestamp`` without time zone.
- ``PG010`` empty migration file.

"Existing table" statically means one not created earlier in the same file; ``db.plan`` against a
live database grades each finding by the table's real size instead (:func:`grade`).
Lock levels follow the PostgreSQL manual, "Explicit Locking — Table-level Locks".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from pglast import ast

from .models import Migration
from .script import Script, Statement

VOLATILE_FUNCS = {"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v4", "clock_timestamp",
                  "timeofday", "nextval", "txid_current", "statement_timestamp"}


@dataclass(frozen=True)
class Finding:
    """One lint finding. ``table`` is the table it touches (schema-qualified when written so)."""

    rule: str
    severity: str  # "warning" | "error" | "info"; plan grading may add "low" | "medium" | "high"
    file: str
    line: int
    message: str
    rewrite: str
    table: str | None = None
    size: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _relname(rv: ast.RangeVar | None) -> str | None:
    if rv is None:
        return None
    return f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname


def _is_timestamp(tn: ast.TypeName | None) -> bool:
    if tn is None or not tn.names:
        return False
    return tn.names[-1].sval == "timestamp"


def _volatile(expr) -> str | None:
    """Name of a volatile function called anywhere inside ``expr`` (walks the node tree)."""
    if isinstance(expr, ast.FuncCall):
        name = expr.funcname[-1].sval
        if name in VOLATILE_FUNCS:
            return name
    if isinstance(expr, ast.Node):
        for attr in expr:
            found = _volatile(getattr(expr, attr))
            if found:
                return found
    elif isinstance(expr, tuple):
        for item in expr:
            found = _volatile(item)
            if found:
                return found
    return None


def lock_level(st: Statement) -> tuple[str, str | None]:
    """The strongest table-level lock ``st`` takes and on which table (None when it takes none)."""
    n = st.node
    if isinstance(n, ast.CreateStmt):
        refs = [c.pktable for e in (n.tableElts or ()) for c in (getattr(e, "constraints", None) or ())
                if isinstance(c, ast.Constraint) and c.pktable is not None]
        refs += [e.pktable for e in (n.tableElts or ()) if isinstance(e, ast.Constraint) and e.pktable is not None]
        if refs:
            return "SHARE ROW EXCLUSIVE", _relname(refs[0])
        return "none (new table)", _relname(n.relation)
    if isinstance(n, ast.IndexStmt):
        return ("SHARE UPDATE EXCLUSIVE" if n.concurrent else "SHARE"), _relname(n.relation)
    if isinstance(n, ast.AlterTableStmt):
        levels = []
        for cmd in n.cmds or ():
            sub = cmd.subtype.name if hasattr(cmd.subtype, "name") else str(cmd.subtype)
            if sub in ("AT_ValidateConstraint", "AT_SetStatistics", "AT_ClusterOn", "AT_DropCluster"):
                levels.append(1)
            elif sub == "AT_AddConstraint" and isinstance(cmd.def_, ast.Constraint) and cmd.def_.contype.name == "CONSTR_FOREIGN":
                levels.append(2)
            elif sub in ("AT_EnableTrig", "AT_DisableTrig", "AT_EnableTrigAll", "AT_DisableTrigAll"):
                levels.append(2)
            else:
                levels.append(3)
        return ["SHARE UPDATE EXCLUSIVE", "SHARE ROW EXCLUSIVE", "ACCESS EXCLUSIVE"][max(levels or [3]) - 1], _relname(n.relation)
    if isinstance(n, ast.DropStmt):
        return ("SHARE UPDATE EXCLUSIVE" if n.concurrent else "ACCESS EXCLUSIVE"), None
    if isinstance(n, (ast.RenameStmt, ast.TruncateStmt, ast.CreatePolicyStmt, ast.AlterPolicyStmt)):
        rel = getattr(n, "relation", None) or getattr(n, "table", None)
        if isinstance(n, ast.TruncateStmt):
            rel = n.relations[0] if n.relations else None
        return "ACCESS EXCLUSIVE", _relname(rel)
    if isinstance(n, ast.CreateTrigStmt):
        return "SHARE ROW EXCLUSIVE", _relname(n.relation)
    if isinstance(n, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
        return "ROW EXCLUSIVE", _relname(n.relation)
    if isinstance(n, ast.VacuumStmt):
        return ("SHARE UPDATE EXCLUSIVE" if n.is_vacuumcmd else "SHARE UPDATE EXCLUSIVE (analyze)"), None
    if isinstance(n, ast.ReindexStmt):
        conc = any(getattr(p, "defname", "") == "concurrently" for p in (n.params or ()))
        return ("SHARE UPDATE EXCLUSIVE" if conc else "ACCESS EXCLUSIVE"), _relname(n.relation)
    if isinstance(n, ast.RefreshMatViewStmt):
        return ("EXCLUSIVE" if n.concurrent else "ACCESS EXCLUSIVE"), _relname(n.relation)
    if isinstance(n, ast.SelectStmt):
        return "ACCESS SHARE", None
    return "none", None


def lint_script(script: Script, file: str) -> list[Finding]:
    """Findings for one parsed file (usually an ``up.sql``). Pure."""
    out: list[Finding] = []
    if script.empty:
        out.append(Finding("PG010", "warning", file, 1, "empty migration file: it applies nothing",
                           "write the change, or delete the folder if it is not needed"))
        return out
    created: set[str] = set()
    destructive_ok = "destructive" in script.directives
    for st in script.statements:
        n, f = st.node, (lambda rule, sev, msg, fix, table=None: out.append(
            Finding(rule, sev, file, st.line, msg, fix, table)))
        if isinstance(n, ast.CreateStmt):
            created.add(_relname(n.relation))
            for col in n.tableElts or ():
                if isinstance(col, ast.ColumnDef) and _is_timestamp(col.typeName):
                    f("PG009", "warning", f"column {col.colname} is timestamp without time zone",
                      f"declare {col.colname} as timestamptz (timestamp with time zone)", _relname(n.relation))
        elif isinstance(n, ast.IndexStmt):
            table = _relname(n.relation)
            if n.concurrent and script.has_transaction_control:
                f("PG002", "error", "CREATE INDEX CONCURRENTLY inside an explicit transaction block: PostgreSQL refuses it",
                  "remove BEGIN/COMMIT from this file and put the index in its own migration", table)
            elif n.concurrent and script.transactional:
                f("PG002", "error", "CREATE INDEX CONCURRENTLY forced into a transaction by pgops:transaction=on",
                  "drop the directive: pgops runs CONCURRENTLY files outside a transaction", table)
            elif not n.concurrent and table not in created:
                f("PG001", "warning", f"index {n.idxname or ''} on existing table {table} built without CONCURRENTLY "
                  "blocks writes for the whole build",
                  "CREATE INDEX CONCURRENTLY ... in a migration of its own (pgops runs it outside a transaction)", table)
        elif isinstance(n, ast.AlterTableStmt):
            table = _relname(n.relation)
            existing = table not in created
            for cmd in n.cmds or ():
                sub = cmd.subtype.name
                d = cmd.def_
                if sub == "AT_AddColumn" and isinstance(d, ast.ColumnDef):
                    cons = d.constraints or ()
                    default = next((c for c in cons if c.contype.name == "CONSTR_DEFAULT"), None)
                    notnull = any(c.contype.name == "CONSTR_NOTNULL" for c in cons)
                    if _is_timestamp(d.typeName):
                        f("PG009", "warning", f"column {d.colname} is timestamp without time zone",
                          f"declare {d.colname} as timestamptz", table)
                    vol = _volatile(default.raw_expr) if default is not None else None
                    if vol and existing:
                        f("PG003", "warning", f"ADD COLUMN {d.colname} with volatile default {vol}() rewrites {table}",
                          "add the column without a default, backfill in batches, then SET DEFAULT", table)
                    if notnull and default is None and existing:
                        f("PG005", "error", f"ADD COLUMN {d.colname} NOT NULL without a default fails on a non-empty {table}",
                          "add it nullable, backfill, add CHECK (col IS NOT NULL) NOT VALID, VALIDATE, then SET NOT NULL", table)
                    if existing and any(c.contype.name == "CONSTR_FOREIGN" and not c.skip_validation for c in cons):
                        f("PG006", "warning", f"ADD COLUMN {d.colname} REFERENCES validates every row of {table} under lock",
                          "add the column, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and VALIDATE CONSTRAINT later", table)
                elif sub == "AT_AlterColumnType":
                    f("PG004", "warning", f"changing the type of {table}.{cmd.name} rewrites the table under ACCESS EXCLUSIVE",
                      "add a new column, backfill in batches, switch readers, then drop the old one", table)
                elif sub == "AT_SetNotNull" and existing:
                    f("PG005", "warning", f"SET NOT NULL on {table}.{cmd.name} scans the table under ACCESS EXCLUSIVE",
                      "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL", table)
                elif sub == "AT_AddConstraint" and isinstance(d, ast.Constraint) and existing:
                    if d.contype.name in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not d.skip_validation:
                        kind = "FOREIGN KEY" if d.contype.name == "CONSTR_FOREIGN" else "CHECK"
                        f("PG006", "warning", f"{kind} {d.conname or ''} on existing table {table} without NOT VALID "
                          "scans every row under lock",
                          f"ADD CONSTRAINT ... {kind} ... NOT VALID, then VALIDATE CONSTRAINT in a later migration", table)
                elif sub == "AT_DropColumn" and not destructive_ok:
                    f("PG007", "error", f"DROP COLUMN {cmd.name} on {table} destroys data",
                      "add the comment `-- pgops:destructive` to acknowledge it (after a backup)", table)
        elif isinstance(n, ast.DropStmt) and n.removeType.name == "OBJECT_TABLE" and not destructive_ok:
            names = ", ".join(".".join(s.sval for s in obj) for obj in n.objects)
            f("PG007", "error", f"DROP TABLE {names} destroys data",
              "add the comment `-- pgops:destructive` to acknowledge it (after a backup)", names)
        elif isinstance(n, ast.RenameStmt) and n.renameType.name in ("OBJECT_TABLE", "OBJECT_COLUMN"):
            what = "table" if n.renameType.name == "OBJECT_TABLE" else f"column {n.subname}"
            f("PG008", "warning", f"renaming {what} of {_relname(n.relation)} breaks the running application",
              "expand/contract: add the new name (view or column), move readers and writers, drop the old one later",
              _relname(n.relation))
    return out


def lint_migration(m: Migration) -> list[Finding]:
    """Lint a migration's ``up.sql``; file paths are ``<folder>/up.sql``."""
    return lint_script(m.up, f"{m.folder}/up.sql")


def grade(finding: Finding, rows: int | None, size_bytes: int | None) -> Finding:
    """Grade a finding by the live size of the table it touches (pgops' own rule, not from the
    anchor tools): absent table → ``info``; < 10,000 rows and < 100 MB → ``low``; < 1,000,000 rows
    and < 1 GB → ``medium``; larger → ``high``. ``rows`` and ``size_bytes`` are None when absent."""
    if rows is None or size_bytes is None:
        return replace(finding, severity="info", size="table does not exist yet")
    size = f"{rows:,} rows, {size_bytes / 1_048_576:.1f} MiB"
    if rows < 10_000 and size_bytes < 100 * 1_048_576:
        sev = "low"
    elif rows < 1_000_000 and size_bytes < 1024 * 1_048_576:
        sev = "medium"
    else:
        sev = "high"
    return replace(finding, severity=sev, size=size)
