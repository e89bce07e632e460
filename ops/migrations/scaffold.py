"""``db.new``: scaffold the next migration folder with its three files."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError
from .discovery import DATABASE, FOLDER, discover

SLUG = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")


def next_version(existing: list[int], widths: list[int], now: datetime) -> tuple[int, int]:
    """(version, zero-pad width) for a new migration: timestamp style (``YYYYMMDDHHMMSS``, UTC
    ``now``) when the chain already uses 14-digit versions, else the newest + 1 padded like its
    neighbours (4 digits for a new chain)."""
    if widths and max(widths) == 14:
        return int(now.strftime("%Y%m%d%H%M%S")), 14
    return (max(existing) + 1 if existing else 1), (max(widths) if widths else 4)


def scaffold(sql_root: Path, database: str, slug: str, now: datetime | None = None) -> Path:
    """Create ``<sql_root>/<database>/migrations/<version>_<slug>/`` with up.sql, down.sql and verify.sql.

    Raises :class:`ConfigError` for a bad database name or slug.
    """
    problems = []
    if not DATABASE.match(database):
        problems.append(f"database name '{database}' must match {DATABASE.pattern}")
    if not SLUG.match(slug):
        problems.append(f"migration name '{slug}' must be lower-case letters, digits and _")
    if problems:
        raise ConfigError(problems, "e.g. `invoke db.new --db syncscript --name add_orders`.")
    root = sql_root / database / "migrations"
    root.mkdir(parents=True, exist_ok=True)
    chain = discover(root)
    widths = [len(FOLDER.match(m.folder).group(1)) for m in chain]
    version, width = next_version([m.version for m in chain], widths, now or datetime.now(timezone.utc))
    path = root / f"{version:0{width}d}_{slug}"
    path.mkdir()
    (path / "up.sql").write_text(f"-- {database}: {slug}\n")
    (path / "down.sql").write_text(f"-- Revert {slug} exactly.\n")
    (path / "verify.sql").write_text(
        "-- Rows of (check text, passed boolean, detail text), e.g.\n"
        "-- SELECT 'table orders' AS \"check\", to_regclass('public.orders') IS NOT NULL AS passed, '' AS detail;\n")
    return path
