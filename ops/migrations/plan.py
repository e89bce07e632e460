"""Pure planning: compare the chain on disk with the ledger and decide what to run.

No I/O. The rules are Flyway's ``validate`` (checksum drift, applied-but-missing) and its
``outOfOrder`` switch, sqitch's revert-in-reverse-order, and golang-migrate's dirty flag, made
explicit so every refusal names the migration.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import RollbackRefused
from .models import AppliedRow, DirtyRow, Migration


@dataclass(frozen=True)
class StatusRow:
    """One version as ``db.status`` shows it. ``state``: applied | pending | changed | missing | dirty."""

    version: int
    name: str
    state: str
    applied_at: str | None = None
    checksum_disk: str | None = None
    checksum_ledger: str | None = None


@dataclass(frozen=True)
class ChainStatus:
    rows: tuple[StatusRow, ...]
    pending: tuple[Migration, ...]
    drifted: tuple[tuple[int, str, str, str], ...]  # (version, name, ledger checksum, disk checksum)
    missing: tuple[int, ...]
    out_of_order: tuple[int, ...]
    dirty: DirtyRow | None = None
    current: int | None = None
    waiting: tuple[dict, ...] = ()  # pending gated migrations held back (version, name, reason): see .gate

    def as_dict(self) -> dict:
        return {"current": self.current, "pending": [m.version for m in self.pending],
                "drifted": [d[0] for d in self.drifted], "missing": list(self.missing),
                "out_of_order": list(self.out_of_order),
                "dirty": None if not self.dirty else {
                    "version": self.dirty.version, "name": self.dirty.name, "direction": self.dirty.direction,
                    "statements_done": self.dirty.statements_done, "statements_total": self.dirty.statements_total,
                    "failed_statement": self.dirty.failed_statement, "error": self.dirty.error},
                "migrations": [r.__dict__ for r in self.rows], "waiting_for_validation": list(self.waiting)}


def compare(disk: list[Migration], applied: dict[int, AppliedRow], dirty: DirtyRow | None = None) -> ChainStatus:
    """Compare the migrations on disk with the ledger's applied rows (and the dirty row, if any)."""
    by_version = {m.version: m for m in disk}
    newest = max(applied) if applied else None
    rows, pending, drifted, missing, ooo = [], [], [], [], []
    for v in sorted(set(by_version) | set(applied)):
        m, a = by_version.get(v), applied.get(v)
        if a and not m:
            missing.append(v)
            rows.append(StatusRow(v, a.name, "missing", a.applied_at.isoformat(), None, a.checksum))
        elif a and m:
            state = "applied" if a.checksum == m.checksum else "changed"
            if state == "changed":
                drifted.append((v, m.name, a.checksum, m.checksum))
            rows.append(StatusRow(v, m.name, state, a.applied_at.isoformat(), m.checksum, a.checksum))
        elif m:
            state = "dirty" if dirty and dirty.version == v else "pending"
            if state == "pending":
                pending.append(m)
                if newest is not None and v < newest:
                    ooo.append(v)
            rows.append(StatusRow(v, m.name, state, None, m.checksum, None))
    return ChainStatus(tuple(rows), tuple(pending), tuple(drifted), tuple(missing), tuple(ooo), dirty, newest)


def select_pending(status: ChainStatus, to: int | None) -> list[Migration]:
    """Pending migrations in ascending order, up to and including version ``to`` when given."""
    return [m for m in status.pending if to is None or m.version <= to]


@dataclass(frozen=True)
class RollbackStep:
    version: int
    name: str
    migration: Migration
    dirty: bool = False


def rollback_plan(disk: list[Migration], applied: dict[int, AppliedRow], dirty: DirtyRow | None,
                  to: int | None = None, steps: int | None = None) -> list[RollbackStep]:
    """Which migrations to revert, newest first.

    ``to``: revert every applied version above it; ``steps``: revert the newest N (a dirty migration
    counts as the first). Exactly one of them. Raises :class:`RollbackRefused` naming every migration
    that has no ``down.sql`` or is missing on disk, before anything runs.
    """
    if (to is None) == (steps is None):
        raise RollbackRefused("db.rollback needs exactly one of --to VERSION or --steps N.",
                              "run `invoke db.status` to see versions, then e.g. `invoke db.rollback --steps 1`.")
    if steps is not None and steps < 1:
        raise RollbackRefused(f"--steps must be at least 1, not {steps}.", "run `invoke db.rollback --steps 1`.")
    by_version = {m.version: m for m in disk}
    candidates: list[tuple[int, str, bool]] = []
    if dirty is not None:
        candidates.append((dirty.version, dirty.name, True))
    candidates += [(v, applied[v].name, False) for v in sorted(applied, reverse=True)]
    if to is not None:
        chosen = [c for c in candidates if c[0] > to]
    else:
        chosen = candidates[:steps]
    problems = []
    plan = []
    for v, name, is_dirty in chosen:
        m = by_version.get(v)
        if m is None:
            problems.append(f"{v}_{name} is in the ledger but its folder is missing on disk")
        elif m.down is None:
            problems.append(f"{m.folder} has no down.sql")
        else:
            plan.append(RollbackStep(v, name, m, is_dirty))
    if problems:
        raise RollbackRefused(f"Cannot roll back: {'; '.join(problems)}. Nothing was changed.",
                              "add the missing down.sql (or restore the folder), or roll back to a later "
                              "version with `invoke db.rollback --to VERSION`.")
    return plan
