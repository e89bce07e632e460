"""A transfer declaration: ``sql/<database>/transfer.toml``, beside the migrations. Pure: parses
text, reads no file.

Each ``[[mapping]]`` names a legacy ``source`` table and its integer ``key``, an optional ``where``
filter over the source alias ``s`` (a table split by kind, as ``analytics_event`` is), the v2
``target`` table and its ``target_key`` (the column that holds the source key: the copy upserts on
it, so a batch copied twice leaves one row), and ``[mapping.columns]``: target column = SQL
expression over ``s``. ``checksum`` lists the columns the validation hashes (default: all). The
validation that proves a mapping is therefore declared with it: the count of source rows (minus the
quarantined) equals the target's, and a checksum per mapped column agrees on both sides. Mappings
run in file order, so parents come before children (their foreign keys hold).

Every problem is reported at once (:class:`~ops.errors.TransferSpecError`), patroni ``config.py``
style; expressions and filters are checked with PostgreSQL's own parser (pglast).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

import pglast
from pglast.parser import ParseError

from ..errors import TransferSpecError

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
FILE = "transfer.toml"


@dataclass(frozen=True)
class Mapping:
    """One legacy → v2 mapping. ``columns``: (target column, SQL expression over ``s``) in order."""

    name: str
    source: str
    key: str
    target: str
    target_key: str
    columns: tuple[tuple[str, str], ...]
    where: str | None = None
    checksum: tuple[str, ...] = ()

    @property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def expression(self, column: str) -> str:
        return dict(self.columns)[column]


@dataclass(frozen=True)
class TransferSpec:
    mappings: tuple[Mapping, ...]

    def sources(self) -> dict[str, str]:
        """Each legacy table with its key column, in first-use order."""
        out: dict[str, str] = {}
        for m in self.mappings:
            out.setdefault(m.source, m.key)
        return out

    def mapping(self, name: str) -> Mapping:
        return next(m for m in self.mappings if m.name == name)


def _parses(fragment: str, as_where: bool) -> str | None:
    text = f"SELECT 1 FROM t s WHERE {fragment}" if as_where else f"SELECT {fragment} FROM t s"
    try:
        stmts = pglast.parse_sql(text)
    except ParseError as exc:
        return str(exc.args[0])
    return None if len(stmts) == 1 else "more than one statement"


def parse_spec(text: str, path: str = FILE) -> TransferSpec:
    """Parse a declaration. Raises :class:`TransferSpecError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TransferSpecError(path, [f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    raw = data.get("mapping")
    if not isinstance(raw, list) or not raw:
        raise TransferSpecError(path, ["no [[mapping]] declared"])
    mappings, names, keys = [], set(), {}
    for i, m in enumerate(raw, 1):
        where = f"mapping {i} ({m.get('name', '?')})"
        for field in ("name", "source", "key", "target", "target_key"):
            v = m.get(field)
            if not isinstance(v, str) or not IDENT.match(v):
                problems.append(f"{where}: '{field}' must be a lower-case identifier, not {v!r}")
        cols = m.get("columns")
        if not isinstance(cols, dict) or not cols:
            problems.append(f"{where}: [mapping.columns] must map target columns to SQL expressions")
            cols = {}
        for col, expr in cols.items():
            if not IDENT.match(col):
                problems.append(f"{where}: column name {col!r} is not a lower-case identifier")
            if not isinstance(expr, str):
                problems.append(f"{where}: column {col}: the expression must be a string")
            elif (err := _parses(expr, False)):
                problems.append(f"{where}: column {col}: {err}")
        if m.get("target_key") and m.get("target_key") not in cols:
            problems.append(f"{where}: target_key '{m.get('target_key')}' must be one of its columns")
        filt = m.get("where")
        if filt is not None and (not isinstance(filt, str) or (err := _parses(filt, True))):
            problems.append(f"{where}: where: {err if isinstance(filt, str) else 'must be a string'}")
        checksum = m.get("checksum", list(cols))
        if not isinstance(checksum, list) or any(c not in cols for c in checksum):
            problems.append(f"{where}: checksum must list some of its columns")
            checksum = list(cols)
        name = m.get("name")
        if name in names:
            problems.append(f"{where}: duplicate mapping name '{name}'")
        names.add(name)
        src, key = m.get("source"), m.get("key")
        if src in keys and keys[src] != key:
            problems.append(f"{where}: source {src} is keyed by '{keys[src]}' in an earlier mapping, not '{key}'")
        keys.setdefault(src, key)
        unknown = set(m) - {"name", "source", "key", "target", "target_key", "columns", "where", "checksum"}
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        mappings.append(Mapping(str(name), str(src), str(key), str(m.get("target")), str(m.get("target_key")),
                                tuple((str(c), str(e)) for c, e in cols.items()), filt, tuple(checksum)))
    if problems:
        raise TransferSpecError(path, problems)
    return TransferSpec(tuple(mappings))
