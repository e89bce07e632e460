"""Which rows belong to a data subject, pure: the ownership graph walked outward from the root table
(``users``) along foreign keys, plus ownership declared for tables that have no foreign key to it
(a partitioned analytics table, the audit log), plus the erasure action of every route.

Rules and sources:

- GDPR Art. 15 (right of access) and Art. 20 (portability: "structured, commonly used and
  machine-readable") ask for every row relating to the subject; Art. 17 (erasure) asks for them gone.
- A row is the subject's when it references one of the subject's rows — the root row, or a row that is
  itself the subject's — through a foreign key (a chain of any length: ``time_entries`` →
  ``daily_actions`` → ``users``), or when a declared column holds the subject's id.
- A foreign key that merely *mentions* the subject (``organizations.created_by``,
  ``organization_members.invited_by``) is a ``nullify`` route: the column is exported and set to NULL
  on erasure, the row is someone else's and the walk stops there.
- ``pseudonymize`` (the audit log): the row stays, with the subject's id replaced by a pseudonym
  (GDPR Art. 4(5)), as the accountability the audit trail exists for requires.
- Cycle-safe: a path never visits a table twice, and the root table is never re-entered (a
  self-reference from ``users`` to ``users`` names another person). Paths are capped at ``max_depth``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

ACTIONS = ("delete", "nullify", "pseudonymize")


@dataclass(frozen=True)
class ForeignKey:
    """``child(child_cols) REFERENCES parent(parent_cols)``; tables as ``schema.table``."""

    name: str
    child: str
    child_cols: tuple[str, ...]
    parent: str
    parent_cols: tuple[str, ...]


@dataclass(frozen=True)
class Hop:
    """One step outward: ``table(cols)`` references ``parent(parent_cols)``."""

    table: str
    cols: tuple[str, ...]
    parent: str
    parent_cols: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """How rows of ``table`` belong to the subject: ``hops`` from the root outward (empty for the root
    itself and for a declared column), or ``declared`` columns holding the subject's id directly."""

    table: str
    action: str
    hops: tuple[Hop, ...] = ()
    declared: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        return len(self.hops)

    def describe(self) -> str:
        if self.declared:
            return f"{self.table}.{'/'.join(self.declared)} = subject (declared)"
        if not self.hops:
            return f"{self.table}: the subject's own row"
        chain = " → ".join(f"{h.table}.{','.join(h.cols)}" for h in reversed(self.hops))
        return f"{chain} → {self.hops[0].parent}"


@dataclass(frozen=True)
class Ownership:
    """``root``/``root_key``: where the subject lives. ``declared``: table → columns holding the
    subject's id with no foreign key. ``rules``: ``schema.table`` or ``schema.table.column`` → action
    (a column rule wins; default ``delete``). ``scrub_keys``: JSON keys removed from pseudonymized rows.
    ``audit``: the table that receives the erasure record."""

    root: str
    root_key: str
    declared: dict[str, tuple[str, ...]]
    rules: dict[str, str]
    scrub_keys: tuple[str, ...] = ()
    audit: str | None = None


def parse_ownership(data: dict, source: str) -> Ownership:
    """Ownership from ``sql/<database>/gdpr.json``. Raises :class:`ConfigError` listing every problem."""
    problems = []
    root = data.get("root") or {}
    if not root.get("table") or not root.get("key"):
        problems.append(f"{source}: root needs table and key")
    rules = dict(data.get("erase") or {})
    for k, v in rules.items():
        if v not in ACTIONS:
            problems.append(f"{source}: erase rule {k}: {v!r} is not one of {', '.join(ACTIONS)}")
    declared = {}
    for t, cols in (data.get("owned_by") or {}).items():
        if isinstance(cols, str):
            cols = [cols]
        if not cols or not all(isinstance(c, str) for c in cols):
            problems.append(f"{source}: owned_by {t}: expected a column name or a list of them")
            continue
        declared[t] = tuple(cols)
    if problems:
        raise ConfigError(problems, f"fix {source}.")
    return Ownership(root["table"], root["key"], declared, rules, tuple(data.get("scrub_keys") or ()),
                     data.get("audit_table"))


def _action(own: Ownership, table: str, cols: tuple[str, ...]) -> str:
    if len(cols) == 1 and f"{table}.{cols[0]}" in own.rules:
        return own.rules[f"{table}.{cols[0]}"]
    return own.rules.get(table, "delete")


def routes(own: Ownership, fks: list[ForeignKey], max_depth: int = 8) -> dict[str, list[Route]]:
    """Every route by which rows of each table belong to the subject, root first. Deterministic
    (foreign keys in name order)."""
    out: dict[str, list[Route]] = {own.root: [Route(own.root, "delete")]}
    by_parent: dict[str, list[ForeignKey]] = {}
    for fk in sorted(fks, key=lambda f: (f.parent, f.child, f.name)):
        by_parent.setdefault(fk.parent, []).append(fk)

    def walk(table: str, hops: tuple[Hop, ...], seen: frozenset[str]) -> None:
        if len(hops) >= max_depth:
            return
        for fk in by_parent.get(table, []):
            if fk.child in seen or fk.child == own.root:
                continue  # cycle, or another person's row of the root table
            action = _action(own, fk.child, fk.child_cols)
            path = (*hops, Hop(fk.child, fk.child_cols, fk.parent, fk.parent_cols))
            out.setdefault(fk.child, []).append(Route(fk.child, action, path))
            if action == "delete":
                walk(fk.child, path, seen | {fk.child})

    walk(own.root, (), frozenset({own.root}))
    for table, cols in sorted(own.declared.items()):
        action = own.rules.get(table, "delete")
        out.setdefault(table, []).append(Route(table, action, declared=cols))
        if action == "delete":
            walk(table, (), frozenset({own.root, table}))  # rows referencing a declared-owned row are owned too
    return out


def erase_order(by_table: dict[str, list[Route]], root: str) -> list[str]:
    """Tables to delete from, deepest routes first and the root last, so no child is left pointing at
    a deleted parent mid-transaction (whatever ON DELETE the foreign keys say)."""
    deletable = {t: max(r.depth for r in rs if r.action == "delete")
                 for t, rs in by_table.items() if t != root and any(r.action == "delete" for r in rs)}
    return [*sorted(deletable, key=lambda t: (-deletable[t], t)), root]


def has_rule(own: Ownership, table: str) -> bool:
    """Whether ``sql/<db>/gdpr.json`` already says how ``table`` is erased: an ``erase`` rule for the table
    or one of its columns (``schema.table`` / ``schema.table.column``), or an ``owned_by`` declaration (its
    rows are then erased by the default rule, ``delete``, as the policy states). A table reached only
    through foreign keys, which the policy never names, has none."""
    return (table in own.rules or table in own.declared
            or any(k.startswith(f"{table}.") and k.count(".") == table.count(".") + 1 for k in own.rules))
