"""Seed generators live with their database: ``sql/<database>/seed.py`` (beside its migrations), not in
the generic library. This module finds and loads one.

A seed module defines ``TABLES`` (the tables it fills, in load order) and
``generate(params, database, users, seed, replace=False) -> (rows per table, seconds)``: libpq
``params`` without ``dbname``; ``users`` the scale (≥ 1); the same ``seed`` gives the same rows.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from .errors import ConfigError


def load_seeder(sql_root: Path, folder: str) -> ModuleType:
    """Import ``<sql_root>/<folder>/seed.py``. Raises :class:`ConfigError` naming the databases that
    have a seed generator when ``folder`` has none."""
    path = sql_root / folder / "seed.py"
    if not path.is_file():
        have = sorted(p.parent.name for p in sql_root.glob("*/seed.py"))
        raise ConfigError([f"no seed generator for '{folder}' ({path} does not exist)"],
                          f"seed one of: {', '.join(have) or 'none'} (`invoke db.seed --db NAME`).")
    spec = importlib.util.spec_from_file_location(f"pgops_seed_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_tables(conn, database: str, tables: list[str], root: str, replace: bool, what: str,
                   deploy_hint: str) -> None:
    """What every seed generator checks first, in its transaction on ``conn``: each of ``tables``
    exists (else :class:`~ops.errors.OpsError` naming the missing ones and ``deploy_hint``); ``root``
    (the table that says data is there, e.g. ``users``) is empty, or with ``replace`` every table is
    truncated (CASCADE) — a second data set is never mixed into the first. ``what`` names the
    schema in messages ("syncscript", "the legacy Advent")."""
    from psycopg import sql

    from .errors import OpsError
    missing = [t for t in tables if conn.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone()[0] is None]
    if missing:
        raise OpsError(f"Database '{database}' lacks {what} tables: {', '.join(missing)}.", deploy_hint)
    if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(root))).fetchone()[0]:
        if not replace:
            raise OpsError(f"Database '{database}' already has rows in {root}; seeding would mix two data sets.",
                           f"rerun with `--replace` to truncate the {what} tables first.")
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))


def check_foreign_keys(conn, database: str) -> None:
    """Every single-column foreign key of the public schema, checked set-wise (one anti-join each)
    after a load with constraints deferred or dropped; raises :class:`~ops.errors.OpsError` naming
    the constraint when a child row has no parent, so the caller's transaction rolls back."""
    from psycopg import sql

    from .errors import OpsError
    fks = conn.execute(
        "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text, a.attname, af.attname "
        "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND cardinality(c.conkey) = 1").fetchall()
    for name, child, parent, col, pcol in fks:
        bad = conn.execute(sql.SQL(
            "SELECT count(*) FROM {child} ch WHERE ch.{col} IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM {parent} p WHERE p.{pcol} = ch.{col})").format(
                child=sql.Identifier(child), parent=sql.Identifier(parent), col=sql.Identifier(col),
                pcol=sql.Identifier(pcol))).fetchone()[0]
        if bad:
            raise OpsError(f"Database '{database}': seeding broke foreign key {name} ({bad} rows of {child} "
                           f"without a {parent}); nothing was committed.",
                           "report this as a pgops bug; the seed generator and the schema disagree.")
