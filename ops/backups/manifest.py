"""The backup manifest: the last object written, and the only proof a backup exists.

WAL-G's sentinel and pgBackRest's manifest are the model: a backup without its ``manifest.json``
does not exist to any task, so a crash mid-backup leaves nothing visible (only an orphan that
prune removes). Pure: no I/O.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

CLUSTER = "_cluster"  # the "database" of a physical (whole-cluster) backup
LOGICAL_OBJECT = "dump.pgdump"
PHYSICAL_OBJECT = "base.tar.gz"


@dataclass(frozen=True)
class Manifest:
    """Everything known of one backup. Times are UTC ISO-8601; sizes in bytes; ``sha256`` hex of the
    object's bytes; ``row_counts`` maps ``schema.table`` to exact rows in the dump's snapshot."""

    id: str
    database: str
    kind: str  # "logical" | "snapshot"
    created_at: str
    finished_at: str
    duration_s: float
    size_bytes: int
    sha256: str
    object_key: str
    location: str
    server_version: str
    dump_tool_version: str
    ledger_version: int | None
    tool_version: str
    format: str  # "pg_dump custom" | "pg_basebackup tar.gz"
    row_counts: dict[str, int] = field(default_factory=dict)
    stack: str = "local"
    note: str = ""
    #: roles that existed when the dump was taken (pg_dump leaves roles out: PostgreSQL docs, "pg_dump —
    #: Notes"); a restore drill creates the missing ones so policies and grants naming them restore
    roles: list[str] = field(default_factory=list)

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware UTC datetime; ValueError for a naive or unparsable one."""
        from ..retention import parse_created_at
        return parse_created_at(self.created_at)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        doc = json.loads(data)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

    def summary(self) -> dict:
        """The ``backup.list --json`` shape."""
        return {"id": self.id, "database": self.database, "kind": self.kind, "created_at": self.created_at,
                "size_bytes": self.size_bytes, "sha256": self.sha256, "location": self.location,
                "ledger_version": self.ledger_version, "duration_s": self.duration_s}


def new_backup_id(now: datetime) -> str:
    """Sortable, unique id: ``20261121T023000Z-3fa9c2``. Ordering always uses the manifest's
    created_at, never this name."""
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def backup_prefix(database: str, backup_id: str) -> str:
    return f"backups/{database}/{backup_id}/"


def manifest_key(database: str, backup_id: str) -> str:
    return backup_prefix(database, backup_id) + "manifest.json"
