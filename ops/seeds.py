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
