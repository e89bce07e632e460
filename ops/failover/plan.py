"""The pure core of failover: LSN arithmetic, the switchover guards, the candidate choice, the
report, and the loop that runs a plan and unwinds it on failure. No I/O; ``now`` is passed in.

Sources: Patroni's switchover checks (``patroni/ha.py``: the candidate must be streaming, its lag
within ``maximum_lag_on_failover`` — 1 MiB by default — and on the leader's timeline); PostgreSQL
docs, "Log-Shipping Standby Servers" (a standby promoted after a clean shutdown of the primary has
every transaction the primary committed, once it has replayed the shutdown checkpoint) and
"pg_rewind".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from ..errors import OpsError
from ..planapply import Plan, execute

#: Patroni's default ``maximum_lag_on_failover``: a candidate further behind than this (bytes of WAL
#: not yet replayed) is refused for a switchover unless ``--force``.
MAX_LAG_BYTES = 1 << 20


def parse_lsn(text: str | None) -> int | None:
    """``'16/B374D848'`` → byte position (int); None for None or ''."""
    if not text:
        return None
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def format_lsn(pos: int | None) -> str | None:
    """Byte position → ``'X/Y'`` as PostgreSQL prints it; None stays None."""
    return None if pos is None else f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class NodeState:
    """What failover needs to know of one server. LSNs are byte positions.

    ``timeline``: the primary's current timeline, or the timeline a replica receives on;
    ``streaming``: a replica's WAL receiver is in state ``streaming``; ``replay_lsn`` /
    ``receive_lsn``: ``pg_last_wal_replay_lsn()`` / ``pg_last_wal_receive_lsn()`` (on a primary:
    ``pg_current_wal_lsn()`` in both)."""

    name: str
    answers: bool
    in_recovery: bool | None = None
    streaming: bool = False
    timeline: int | None = None
    replay_lsn: int | None = None
    receive_lsn: int | None = None
    replay_paused: bool = False
    detail: str = ""

    @property
    def position(self) -> int | None:
        """The furthest WAL this node holds: received, else replayed."""
        known = [p for p in (self.receive_lsn, self.replay_lsn) if p is not None]
        return max(known) if known else None


def switchover_refusals(primary: NodeState, candidate: NodeState, *, force: bool,
                        max_lag: int = MAX_LAG_BYTES) -> list[str]:
    """Every reason a switchover from ``primary`` to ``candidate`` is unsafe (empty: go ahead).

    The guards are Patroni's: the primary answers; the candidate answers, is in recovery and is
    streaming; it is on the primary's timeline; its replay lag (primary's current LSN − candidate's
    replayed LSN, bytes) is at most ``max_lag`` — unless ``force``, which lifts only the lag guard.
    """
    out = []
    if not primary.answers:
        out.append(f"the primary '{primary.name}' does not answer ({primary.detail or 'no connection'}); "
                   "a switchover needs it to shut down cleanly")
    if not candidate.answers:
        out.append(f"'{candidate.name}' does not answer ({candidate.detail or 'no connection'})")
        return out
    if candidate.in_recovery is False:
        out.append(f"'{candidate.name}' is not in recovery (it is already a primary)")
    if not candidate.streaming:
        out.append(f"'{candidate.name}' is not streaming from the primary (no WAL receiver in state streaming"
                   f"{': ' + candidate.detail if candidate.detail else ''})")
    if candidate.streaming and primary.timeline is not None and candidate.timeline != primary.timeline:
        out.append(f"'{candidate.name}' is on timeline {candidate.timeline}, the primary on {primary.timeline}")
    lag = replay_lag(primary, candidate)
    if lag is None and primary.answers:
        out.append(f"the replay lag of '{candidate.name}' cannot be measured")
    elif lag is not None and lag > max_lag and not force:
        paused = " (its WAL replay is paused: pg_wal_replay_resume())" if candidate.replay_paused else ""
        out.append(f"'{candidate.name}' has {lag:,} bytes of WAL not yet replayed{paused}, over the limit of "
                   f"{max_lag:,} bytes (Patroni's maximum_lag_on_failover)")
    return out


def replay_lag(primary: NodeState, candidate: NodeState) -> int | None:
    """Bytes of WAL the primary has written that ``candidate`` has not replayed (None: unknown)."""
    return wal_gap(primary.replay_lsn, candidate.replay_lsn)


def choose_candidate(replicas: list[NodeState]) -> NodeState | None:
    """The most advanced replica that answers and is in recovery (by received, then replayed WAL;
    ties go to the first listed), or None."""
    usable = [r for r in replicas if r.answers and r.in_recovery and r.position is not None]
    if not usable:
        return None
    best = max(r.position for r in usable)
    return next(r for r in usable if r.position == best)


def wal_gap(lost_end: int | None, promoted_at: int | None) -> int | None:
    """Bytes of WAL the lost primary held beyond the point the promoted replica forked at: what may
    hold acknowledged but unreplicated commits. None when either position is unknown."""
    if lost_end is None or promoted_at is None:
        return None
    return max(0, lost_end - promoted_at)


@dataclass
class StepRecord:
    """One step as it ran: UTC start, seconds, and what it found or did."""

    name: str
    started_at: str
    seconds: float
    detail: str = ""


@dataclass
class FailoverReport:
    """What a switchover or promote did. ``write_pause_s``: seconds the pooler held client queries
    (switchover: PAUSE to RESUME; promote: from the start to the pooler pointing at the new primary;
    None where pgops does not run the pooler). ``wal_gap_bytes``: promote only, None = unknown.
    ``client_write_gap_s``: what clients saw — the longest gap, in seconds, between writes a probe
    client acknowledged through the pooler from the start of the operation until its first write on
    the new primary (None where no probe ran); ``clients``: that probe's figures (``first_write_s``:
    seconds from the pooler being pointed/resumed to that write; ``errors``; ``first_error``;
    ``resolution_s``: its sampling interval)."""

    kind: str
    stack: str
    old_primary: str
    new_primary: str
    started_at: str
    steps: list[StepRecord] = field(default_factory=list)
    write_pause_s: float | None = None
    lost_primary_lsn: str | None = None
    lost_primary_source: str | None = None
    promoted_at_lsn: str | None = None
    wal_gap_bytes: int | None = None
    client_write_gap_s: float | None = None
    clients: dict | None = None
    notes: list[str] = field(default_factory=list)

    def record(self, name: str, started: datetime, seconds: float, detail: str = "") -> None:
        self.steps.append(StepRecord(name, started.isoformat(timespec="milliseconds"), round(seconds, 3), detail))

    @property
    def wal_gap_text(self) -> str:
        """The gap as a user reads it: "unknown (why)", "none", or bytes between two positions."""
        if self.kind != "promote":
            return "none (planned switchover)"
        if self.wal_gap_bytes is None:
            return f"unknown ({self.lost_primary_source or 'the lost primary cannot be read'})"
        if self.wal_gap_bytes == 0:
            return f"none: the promoted node has all WAL the lost primary wrote (up to {self.lost_primary_lsn})"
        return (f"{self.wal_gap_bytes:,} bytes: the lost primary wrote WAL up to {self.lost_primary_lsn} "
                f"({self.lost_primary_source}), the new primary forked at {self.promoted_at_lsn}; commits "
                "acknowledged in that range are not on the new primary")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["wal_gap"] = self.wal_gap_text
        return out


@dataclass
class Operation:
    """A failover ready to run: the plan shown before anything changes, the report its steps fill
    in, and ``unwind`` — what to undo when a step fails or the task is interrupted (resume the
    pooler, restart an old primary that was stopped but not replaced); it returns one line per
    thing it did."""

    plan: Plan
    report: FailoverReport
    unwind: Callable[[], list[str]] = list

    def run(self, *, yes: bool, show: Callable[[str], None]) -> FailoverReport | None:
        """Show the plan, confirm, apply (:func:`ops.planapply.execute`). On any failure after the
        first step began, run :attr:`unwind` and add what it did to the error's message. Returns the
        report (None when the plan was empty)."""
        try:
            results = execute(self.plan, yes=yes, show=show)
        except BaseException as exc:
            undone = self.unwind()
            if undone and isinstance(exc, OpsError):
                exc.message = f"{exc.message} Unwound: {'; '.join(undone)}."
            raise
        return self.report if results is not None else None
