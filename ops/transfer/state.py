"""Where a database stands in its expand/contract transfer, read before any transfer statement runs.

Once the contract migration (the chain's ``-- pgops:gate=validation`` migration) is in the ledger the
legacy tables are gone by design: the transfer is *finished*, a state every transfer-related task
(``db.transfer``, its ``--dry-run``, ``db.validate``, a scheduled transfer) reports and exits 0 on,
instead of failing on a missing table. A legacy table missing while the contract is not applied is
something else — dropped by hand, or a wrong database — and is refused naming the tables
(:class:`~ops.errors.TransferSourceMissing`, exit 14) before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..errors import TransferSourceMissing
from ..migrations import ledger
from ..migrations.gate import is_gated
from ..migrations.models import Migration
from .spec import TransferSpec


@dataclass(frozen=True)
class ContractApplied:
    """The contract migration ``version`` (folder ``folder``) was applied at ``applied_at`` (UTC)."""

    database: str
    version: int
    folder: str
    applied_at: datetime

    def message(self) -> str:
        return (f"{self.database}: transfer finished; contract applied at version {self.version} "
                f"({self.folder}, {self.applied_at:%Y-%m-%d %H:%M} UTC): the legacy tables are gone, "
                "nothing is left to transfer or validate")

    def as_dict(self) -> dict:
        return {"database": self.database, "state": "finished", "contract_version": self.version,
                "contract_migration": self.folder, "contract_applied_at": self.applied_at.isoformat()}


def contract_applied(conn: psycopg.Connection, database: str, chain: list[Migration]) -> ContractApplied | None:
    """The applied contract migration of ``chain`` (the first gated one in the ledger), or None."""
    applied = ledger.read_applied(conn)
    for m in chain:
        if is_gated(m) and m.version in applied:
            return ContractApplied(database, m.version, m.folder, applied[m.version].applied_at)
    return None


def missing_sources(conn: psycopg.Connection, spec: TransferSpec) -> list[str]:
    """The legacy tables of ``spec`` that do not exist (resolved on the session's search_path)."""
    return [s for s in spec.sources() if conn.execute("SELECT to_regclass(%s) IS NULL", (s,)).fetchone()[0]]


def check(conn: psycopg.Connection, database: str, spec: TransferSpec, chain: list[Migration],
          task: str) -> ContractApplied | None:
    """:class:`ContractApplied` when the contract is in the ledger (the caller reports it and stops);
    None when the transfer can run. Raises :class:`~ops.errors.TransferSourceMissing` naming the
    legacy tables that are missing while the contract is not applied."""
    done = contract_applied(conn, database, chain)
    if done is not None:
        return done
    missing = missing_sources(conn, spec)
    if missing:
        raise TransferSourceMissing(database, missing, task)
    return None
