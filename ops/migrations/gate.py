"""The validation gate on a contract migration: pure, no I/O, no clock.

A migration whose ``up.sql`` carries ``-- pgops:gate=validation`` (the contract step of an
expand/contract migration: dropping the legacy tables) may run only when the data it would destroy
is proven to have arrived. The rule, from pgroll's separate ``complete`` step and GitHub's and
Stripe's online migration write-ups (backfill, *verify*, then contract): a transfer has finished,
a validation recorded *after* that transfer passed for every mapping, and no legacy write has been
captured since (the change log is empty). Anything else keeps the gate closed, with the reason and
the next command; :func:`decide` never raises.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import Migration

DIRECTIVE = ("gate", "validation")  # -- pgops:gate=validation


@dataclass(frozen=True)
class TransferRun:
    """A row of ``pgops.transfer_runs``: ``status`` running | finished | failed; times UTC-aware."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str


@dataclass(frozen=True)
class Validation:
    """A row of ``pgops.validations``: when, whether every mapping passed, and the failures as
    ``"mapping.column: detail"`` strings (empty when it passed)."""

    id: int
    at: datetime
    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateVerdict:
    """``open``: the gated migration may run. ``reason``: one sentence naming what is missing or
    failed, and the next command (empty when open)."""

    open: bool
    reason: str = ""


def is_gated(m: Migration) -> bool:
    """True when ``m``'s up.sql carries ``-- pgops:gate=validation``."""
    return m.up.directives.get(DIRECTIVE[0]) == DIRECTIVE[1]


def decide(database: str, last_transfer: TransferRun | None, last_validation: Validation | None,
           pending_changes: int) -> GateVerdict:
    """The gate's verdict for ``database`` from the newest transfer run, the newest validation and
    the number of captured legacy changes not yet transferred (``pending_changes`` ≥ 0)."""
    transfer = f"`invoke db.transfer --db {database}`"
    validate = f"`invoke db.validate --db {database}`"
    if last_transfer is None:
        return GateVerdict(False, f"no transfer has been recorded; run {transfer}, then {validate}")
    if last_transfer.status != "finished" or last_transfer.finished_at is None:
        return GateVerdict(False, f"transfer run {last_transfer.id} (started {last_transfer.started_at.isoformat()}) "
                                  f"is {last_transfer.status}, not finished; run `invoke db.transfer --db {database} "
                                  f"--resume`, then {validate}")
    if last_validation is None or last_validation.at <= last_transfer.finished_at:
        return GateVerdict(False, f"no validation newer than transfer run {last_transfer.id} (finished "
                                  f"{last_transfer.finished_at.isoformat()}); run {validate}")
    if not last_validation.passed:
        what = "; ".join(last_validation.failures) or "a mapping failed"
        return GateVerdict(False, f"validation {last_validation.id} failed: {what}; fix the data or the mapping, "
                                  f"run {transfer} and {validate} again")
    if pending_changes > 0:
        return GateVerdict(False, f"{pending_changes} legacy write(s) were captured after validation "
                                  f"{last_validation.id} and are not in v2 yet; run {transfer}, then {validate}")
    return GateVerdict(True)
