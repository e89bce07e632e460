"""The migration engine's data: a migration on disk and the ledger's rows. Pure: no I/O, no driver.

``plan`` and ``lint`` work on these alone, so they never import the ledger (psycopg) or discovery
(the file system).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .script import Script


@dataclass(frozen=True)
class Migration:
    """One migration folder. ``checksum`` is the sha256 (hex) of ``up.sql``'s bytes (Flyway-style);
    ``up_text`` is the decoded ``up.sql``, the same string ``up``'s statements point into."""

    version: int
    name: str
    path: Path
    up_text: str
    up: Script
    checksum: str
    down: Script | None = None
    verify: Script | None = None

    @property
    def ident(self) -> str:
        return f"{self.version}_{self.name}"

    @property
    def folder(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class AppliedRow:
    """A row of ``pgops.migrations``. ``applied_at`` is a UTC-aware datetime."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    tool_version: str
    transactional: bool = True


@dataclass(frozen=True)
class DirtyRow:
    """The non-transactional migration that stopped part-way (``statements_done`` committed)."""

    version: int
    name: str
    checksum: str
    direction: str
    statements_total: int
    statements_done: int
    failed_statement: int | None
    error: str | None
