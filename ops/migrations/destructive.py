"""Which migrations destroy data: the one rule every task that applies migrations follows. Pure.

A migration is *destructive* when applying it can lose rows that exist before it runs:

- its ``up.sql`` carries ``-- pgops:destructive`` (the author's acknowledgement lint PG007 asks for)
  or ``-- pgops:gate=validation`` (the contract step of an expand/contract migration, :mod:`.gate`);
- or it holds, on a table it did not create itself earlier in the same file, ``DROP TABLE``,
  ``DROP COLUMN`` or ``TRUNCATE``; or ``DROP SCHEMA`` / ``DROP DATABASE`` (found on the parse tree,
  never by text search, so a comment or a string that mentions them does not count).

The rule (DESIGN.md, "Dry run reaches the last I/O call"): a destructive step is shown in a plan
and applied only after a confirmation on a terminal or ``--yes``. :func:`ops.migrations.runner.migrate`
enforces it under the advisory lock — a destructive migration whose version the caller did not
confirm is held back (``MigrateResult.held``), never applied — so ``deploy``, ``db.migrate`` and
any scheduled job share it instead of each carrying a copy.
"""
from __future__ import annotations

from pglast import ast

from .gate import is_gated
from .models import Migration


def _relname(rv) -> str | None:
    if rv is None:
        return None
    return f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname


def reasons(m: Migration) -> tuple[str, ...]:
    """What applying ``m`` destroys, one short phrase per statement or directive (``"DROP TABLE
    account"``, ``"-- pgops:destructive"``), in file order; empty when it destroys nothing."""
    out: list[str] = []
    if is_gated(m):
        out.append("contract migration (-- pgops:gate=validation)")
    elif "destructive" in m.up.directives:
        out.append("-- pgops:destructive")
    created: set[str] = set()
    for st in m.up.statements:
        n = st.node
        if isinstance(n, ast.CreateStmt):
            created.add(_relname(n.relation))
        elif isinstance(n, ast.DropStmt) and n.removeType.name in ("OBJECT_TABLE", "OBJECT_SCHEMA"):
            names = [".".join(s.sval for s in (obj if isinstance(obj, tuple) else (obj,))) for obj in n.objects]
            names = [x for x in names if x not in created]
            if names:
                out.append(f"{'DROP TABLE' if n.removeType.name == 'OBJECT_TABLE' else 'DROP SCHEMA'} {', '.join(names)}")
        elif isinstance(n, ast.DropdbStmt):
            out.append(f"DROP DATABASE {n.dbname}")
        elif isinstance(n, ast.TruncateStmt):
            names = [x for x in (_relname(r) for r in n.relations or ()) if x not in created]
            if names:
                out.append(f"TRUNCATE {', '.join(names)}")
        elif isinstance(n, ast.AlterTableStmt) and _relname(n.relation) not in created:
            for cmd in n.cmds or ():
                if cmd.subtype.name == "AT_DropColumn":
                    out.append(f"DROP COLUMN {_relname(n.relation)}.{cmd.name}")
    return tuple(out)


def is_destructive(m: Migration) -> bool:
    """True when :func:`reasons` finds anything."""
    return bool(reasons(m))


def describe(m: Migration) -> str:
    """``"007_contract_drop_legacy (destroys data: DROP TABLE account; …)"``, for plans and messages."""
    r = reasons(m)
    return f"{m.folder} (destroys data: {'; '.join(r)})" if r else m.folder


def hold_unconfirmed(pending: list[Migration], confirmed) -> tuple[list[Migration], list[dict]]:
    """Split ``pending`` (in apply order) at the first destructive migration whose version is not in
    ``confirmed`` (a collection of ints): (the migrations before it, the held ones from it on, each
    ``{"version", "name", "reasons"}`` — a held destructive migration and everything after it, since
    a chain applies in order)."""
    allowed = set(confirmed or ())
    for i, m in enumerate(pending):
        if m.version not in allowed and is_destructive(m):
            return pending[:i], [{"version": x.version, "name": x.name, "reasons": list(reasons(x))}
                                 for x in pending[i:]]
    return pending, []
