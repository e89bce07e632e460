"""Retention: which backups to keep, as a verdict with reasons. Pure: no I/O, ``now`` passed in.

Layer 1, :func:`apply_policy`, is exactly restic's ``forget --keep-*`` (restic
``internal/restic/snapshot_policy.go`` ``ApplyPolicy``): backups newest first; each rule (last,
hourly, daily, weekly, monthly, yearly) walks the list with its own count and keeps the first backup
of every new calendar bucket (UTC hour, day, ISO week, month, year) until its count is used up
(-1 = unlimited); a backup kept by any rule is kept; and the oldest backup is kept while a rule still
has count left, which maximises the history kept.

Layer 2, :func:`plan_prune`, adds the safety floors that the worst days of pgBackRest, WAL-G and restic
users call for (wal-g#636, restic#4619): never delete the newest backup, nor the newest backup whose
restore drill passed, nor any backup younger than a minimum age; refuse an empty listing; refuse a
plan that deletes more than a set fraction unless forced. Order is always by the manifest's
``created_at``, never by names.

A history is not trusted blindly (issue 9 §3): a ``created_at`` more than :data:`FUTURE_TOLERANCE`
(5 minutes, room for ordinary clock skew between the backup host and the pruning host) after ``now``
would otherwise become "the newest backup" and let the truly newest one be deleted, so it stops the
prune of that database (:class:`FutureBackup`). A timestamp that is naive (no UTC offset), unparsable
or not a string makes that backup *invalid* (:func:`triage`): it is reported, never ordered against
the others and never deleted automatically. barman's ``retention_policies.py`` is the model of returning a status
per backup and deleting elsewhere (barman reads the clock itself; here ``now`` is an argument).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

from .errors import FutureBackup, RetentionRefused


@dataclass(frozen=True)
class RetentionPolicy:
    """Counts per rule; 0 = rule off, -1 = unlimited. Defaults keep everything off."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    def empty(self) -> bool:
        return not any((self.keep_last, self.keep_hourly, self.keep_daily, self.keep_weekly,
                        self.keep_monthly, self.keep_yearly))


SEED_002_POLICY = RetentionPolicy(keep_daily=30, keep_weekly=12, keep_monthly=12, keep_yearly=5)
"""Seed 002 (FluxStudio): 30 daily, 12 weekly, 12 monthly, 5 yearly."""


@dataclass(frozen=True)
class Verdict:
    """One backup's fate. ``reasons`` is never empty for a kept backup."""

    created_at: datetime
    keep: bool
    reasons: tuple[str, ...] = ()


def _utc(d: datetime) -> datetime:
    if d.tzinfo is None:
        raise ValueError(f"naive datetime {d!r}: retention needs timezone-aware UTC datetimes")
    return d.astimezone(timezone.utc)


def _hour(d: datetime, _nr: int) -> int:
    return d.year * 1_000_000 + d.month * 10_000 + d.day * 100 + d.hour


def _day(d: datetime, _nr: int) -> int:
    return d.year * 10_000 + d.month * 100 + d.day


def _week(d: datetime, _nr: int) -> int:
    year, week, _ = d.isocalendar()
    return year * 100 + week


def _month(d: datetime, _nr: int) -> int:
    return d.year * 100 + d.month


def _year(d: datetime, _nr: int) -> int:
    return d.year


def _always(_d: datetime, nr: int) -> int:
    return nr


def apply_policy(policy: RetentionPolicy, created_at: Sequence[datetime]) -> list[Verdict]:
    """restic ``forget`` semantics over backup creation times (timezone-aware; compared in UTC).

    Returns one :class:`Verdict` per backup, newest first (ties keep their input order). An empty
    policy keeps everything (restic refuses to forget without a policy). Raises ValueError for a
    naive datetime or a count below -1.
    """
    for name, count in policy.__dict__.items():
        if count < -1:
            raise ValueError(f"{name}={count}: counts are -1 (unlimited), 0 (off) or positive")
    times = sorted((_utc(d) for d in created_at), reverse=True)
    if policy.empty():
        return [Verdict(t, True, ("policy is empty: nothing is forgotten",)) for t in times]
    rules: list[list] = [  # [count left, bucket function, last bucket seen, reason]
        [policy.keep_last, _always, None, "last"],
        [policy.keep_hourly, _hour, None, "hourly"],
        [policy.keep_daily, _day, None, "daily"],
        [policy.keep_weekly, _week, None, "weekly"],
        [policy.keep_monthly, _month, None, "monthly"],
        [policy.keep_yearly, _year, None, "yearly"],
    ]
    out = []
    last_index = len(times) - 1
    for nr, t in enumerate(times):
        reasons = []
        for rule in rules:
            count, bucket, last, reason = rule
            if count > 0 or count == -1:
                val = bucket(t, nr)
                if val != last or nr == last_index:
                    rule[2] = val
                    if count > 0:
                        rule[0] -= 1
                    reasons.append(f"{reason} snapshot" if nr != last_index or val != last
                                   else f"oldest backup ({reason} rule has count left)")
        out.append(Verdict(t, bool(reasons), tuple(reasons)))
    return out


@dataclass(frozen=True)
class BackupFacts:
    """What the safety floors need to know of a backup: its id, manifest created_at (UTC) and
    whether a restore drill of it passed."""

    id: str
    created_at: datetime
    drill_passed: bool = False


@dataclass(frozen=True)
class PruneItem:
    backup: BackupFacts
    keep: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PrunePlan:
    items: tuple[PruneItem, ...] = field(default_factory=tuple)
    invalid: tuple[InvalidBackup, ...] = ()  # listed, never deleted

    @property
    def to_delete(self) -> list[BackupFacts]:
        return [i.backup for i in self.items if not i.keep]

    @property
    def to_keep(self) -> list[BackupFacts]:
        return [i.backup for i in self.items if i.keep]


FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far a backup's created_at may lie after ``now`` (clock skew between hosts) before the prune
of its database is refused."""


def clock_skew(created: datetime, now: datetime) -> timedelta | None:
    """The one rule every consumer of a backup's ``created_at`` applies (prune, ``backup.list``,
    drills' RPO, ``health``'s ``backup_age``, the BackupAgeSeconds metric): how far ``created``
    (aware) lies after ``now`` (aware) when that is more than :data:`FUTURE_TOLERANCE`, else None.
    Such a time is clock skew between the host that wrote the manifest and this one: the backup is
    not ordered, aged or drilled as if it were the newest."""
    ahead = _utc(created) - _utc(now)
    return ahead if ahead > FUTURE_TOLERANCE else None


def skew_problem(created: datetime, now: datetime) -> str | None:
    """:func:`clock_skew` as the sentence a listing, a drill check or a health detail shows; None
    when ``created`` is within the tolerance."""
    ahead = clock_skew(created, now)
    if ahead is None:
        return None
    return (f"created_at {_utc(created).isoformat()} lies {_span(ahead)} after now ({_utc(now).isoformat()}), "
            f"beyond the {_span(FUTURE_TOLERANCE)} clock-skew tolerance: the clock of the host that wrote it is wrong")


def split_skewed(items: Sequence, now: datetime, created=lambda m: m.created) -> tuple[list, list]:
    """``items`` (order kept) split into those whose ``created(item)`` passes :func:`clock_skew` and
    those it flags: ``(trusted, skewed)``."""
    trusted, skewed = [], []
    for item in items:
        (skewed if clock_skew(created(item), now) else trusted).append(item)
    return trusted, skewed


def _span(d: timedelta) -> str:
    secs = int(d.total_seconds())
    if secs >= 86400:
        return f"{secs // 86400} d {secs % 86400 // 3600} h"
    if secs >= 3600:
        return f"{secs // 3600} h {secs % 3600 // 60} min"
    return f"{secs // 60} min" if secs % 60 == 0 else f"{secs // 60} min {secs % 60} s"


@dataclass(frozen=True)
class InvalidBackup:
    """A backup whose manifest cannot be trusted (unreadable JSON, naive or unparsable created_at,
    id not matching its folder). Listed with ``problem``; never deleted automatically."""

    id: str
    problem: str


def parse_created_at(value: object) -> datetime:
    """An ISO-8601 ``created_at`` with a UTC offset → aware UTC datetime.

    Raises ValueError naming the problem for a naive time (no offset), an unparsable string or a
    value that is not a string (JSON null, a number)."""
    if isinstance(value, datetime):
        d = value
    elif isinstance(value, str):
        try:
            d = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"created_at {value!r} is not an ISO-8601 timestamp") from None
    else:
        raise ValueError(f"created_at {value!r} is not a timestamp string")
    if d.tzinfo is None or d.utcoffset() is None:
        raise ValueError(f"created_at {value!r} has no UTC offset (naive time)")
    return d.astimezone(timezone.utc)


def triage(records: Sequence[tuple[str, object, bool]]) -> tuple[list["BackupFacts"], list[InvalidBackup]]:
    """Split raw ``(id, created_at, drill_passed)`` records into valid :class:`BackupFacts` (UTC) and
    :class:`InvalidBackup` rows (see :func:`parse_created_at`). Pure."""
    valid, invalid = [], []
    for backup_id, raw, drilled in records:
        try:
            valid.append(BackupFacts(backup_id, parse_created_at(raw), bool(drilled)))
        except ValueError as exc:
            invalid.append(InvalidBackup(backup_id, str(exc)))
    return valid, invalid


def plan_prune(backups: Sequence[BackupFacts], policy: RetentionPolicy, now: datetime, *,
               min_age: timedelta = timedelta(hours=1), max_delete_fraction: float = 0.5,
               force: bool = False, database: str = "",
               invalid: Sequence[InvalidBackup] = ()) -> PrunePlan:
    """The retention verdict with safety floors, newest first. Pure.

    ``now``: UTC datetime; ``min_age``: backups younger than this are always kept;
    ``max_delete_fraction``: 0..1, refuse a plan deleting more than this share of the backups
    unless ``force``; ``invalid``: backups already found untrustworthy (:func:`triage`), carried
    into the plan's ``invalid`` and never deleted. A backup in ``backups`` with a naive
    ``created_at`` is moved to ``invalid`` too.

    Raises :class:`RetentionRefused` for an empty listing with nothing invalid either (never
    forceable: restic#4619) or too large a deletion, and :class:`FutureBackup` (never forceable)
    when a created_at lies more than :data:`FUTURE_TOLERANCE` after ``now``.
    """
    now = _utc(now)
    where = f" of database '{database}'" if database else ""
    invalid = list(invalid)
    good = []
    for b in backups:
        if b.created_at.tzinfo is None or b.created_at.utcoffset() is None:
            invalid.append(InvalidBackup(b.id, f"created_at {b.created_at.isoformat()} has no UTC offset (naive time)"))
        else:
            good.append(b)
    backups = good
    if not backups and not invalid:
        raise RetentionRefused(f"The backup listing{where} is empty; refusing to prune anything.",
                               "check the repository URL and credentials with `invoke backup.list`.")
    _, future = split_skewed(backups, now, created=lambda b: b.created_at)
    if future:
        raise FutureBackup(database, future, now, FUTURE_TOLERANCE)
    if not backups:
        return PrunePlan((), tuple(invalid))
    ordered = sorted(backups, key=lambda b: _utc(b.created_at), reverse=True)
    verdicts = apply_policy(policy, [b.created_at for b in ordered])
    newest_drilled = next((b.id for b in ordered if b.drill_passed), None)
    items = []
    for i, (b, v) in enumerate(zip(ordered, verdicts)):
        reasons = list(v.reasons)
        if i == 0:
            reasons.append("newest backup (safety floor)")
        if b.id == newest_drilled:
            reasons.append("newest backup whose restore drill passed (safety floor)")
        if now - _utc(b.created_at) < min_age:
            reasons.append(f"younger than the minimum age {min_age} (safety floor)")
        items.append(PruneItem(b, bool(reasons), tuple(reasons) or ("not kept by any rule",)))
    plan = PrunePlan(tuple(items), tuple(invalid))
    share = len(plan.to_delete) / len(items)
    if share > max_delete_fraction and not force:
        raise RetentionRefused(
            f"The prune plan{where} would delete {len(plan.to_delete)} of {len(items)} backups "
            f"({share:.0%}, above the {max_delete_fraction:.0%} limit).",
            "review it with `invoke backup.prune` (dry run), then rerun with `--apply --force` if it is right.")
    return plan


__all__ = ["RetentionPolicy", "SEED_002_POLICY", "Verdict", "apply_policy", "BackupFacts", "PruneItem",
           "PrunePlan", "RetentionRefused", "plan_prune", "FUTURE_TOLERANCE", "FutureBackup", "InvalidBackup",
           "parse_created_at", "triage"]
