"""The partition plan, pure: from the clock (``now`` passed in), a table's policy and the catalog's
view of its partitions, the steps that keep it — never from the data, so future partitions exist
before rows arrive (pg_partman's recurring "no future partitions until new data" pain, #374/#617/#782).

Rules and their sources:

- **Premake** (pg_partman ``premake``, default 4 there, 3 here as seed 001's plan asks): the month
  holding ``now`` and the next ``premake`` months must each have a partition.
- **Retention** (pg_partman ``retention``): a partition whose upper bound is at or before
  ``now - retention_months`` is detached; then archived to the backup repository when asked
  (``--archive``), then dropped unless the policy keeps the table (pg_partman ``retention_keep_table``).
- **Rows in the default partition** (pg_partman's "updated partition constraint for default partition
  would be violated", #247/#510/#620/#623/#652): a month with rows in the default is created with those
  rows moved out in the same transaction, before the ATTACH would find them. Rows older than retention
  stay, and are reported.
- **Detach** (PostgreSQL docs, ALTER TABLE ... DETACH PARTITION): ``CONCURRENTLY`` only where the table
  has no default partition (PostgreSQL refuses it otherwise); a detach left pending by an interrupted
  ``CONCURRENTLY`` is finished with ``FINALIZE`` before anything else.

Policies are data: the JSON after ``pgops:partitions`` in the table's comment, set by its migration.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from ..errors import ConfigError

POLICY_TAG = "pgops:partitions"
DEFAULT_PREMAKE = 3
MAX_NAME = 63  # NAMEDATALEN - 1
#: Bounds of a policy's counts. pg_partman's ``premake`` defaults to 4 and is meant as a short
#: runway; 120 months (10 years) ahead is already far past any plan, and with ``retention_months``
#: up to 1200 (100 years: a 7-year audit trail is seed 001's longest) a table stays near 1,300 monthly
#: partitions — inside the "up to a few thousand partitions" PostgreSQL's docs call well handled
#: (5.12.6, "Best Practices for Declarative Partitioning"). ``"premake": 100000`` would be 8,333 years.
MAX_PREMAKE = 120
MAX_RETENTION_MONTHS = 1200
POLICY_FIELDS = frozenset({"interval", "premake", "retention_months", "keep_table"})


@dataclass(frozen=True)
class Policy:
    """One table's policy. ``premake``: months created ahead of the current one (≥ 1);
    ``retention_months``: months kept behind ``now`` (None: keep forever); ``keep_table``: detach but
    do not drop (pg_partman ``retention_keep_table``)."""

    premake: int = DEFAULT_PREMAKE
    retention_months: int | None = None
    keep_table: bool = False


@dataclass(frozen=True)
class Partition:
    """A partition as the catalog shows it: bounds in UTC (None for the default partition),
    ``detach_pending`` when an interrupted ``DETACH ... CONCURRENTLY`` left it awaiting FINALIZE."""

    name: str
    lower: datetime | None = None
    upper: datetime | None = None
    is_default: bool = False
    detach_pending: bool = False


@dataclass(frozen=True)
class TableState:
    """What the edge read: ``schema.table``, its partition key column, its policy, its partitions, and
    rows found in its default partition per month (first day of the month, UTC → rows)."""

    schema: str
    table: str
    key: str
    policy: Policy
    partitions: tuple[Partition, ...] = ()
    default_rows: dict[date, int] = field(default_factory=dict)

    @property
    def has_default(self) -> bool:
        return any(p.is_default for p in self.partitions)

    @property
    def default_name(self) -> str | None:
        return next((p.name for p in self.partitions if p.is_default), None)


@dataclass(frozen=True)
class Action:
    """One step. ``kind``: ``finalize`` | ``create`` | ``detach`` | ``archive`` | ``drop``.
    ``create``: ``lower``/``upper`` bounds, ``move_rows`` rows to move out of the default first.
    ``detach``: ``concurrently`` when the table has no default partition."""

    kind: str
    schema: str
    table: str
    partition: str
    lower: datetime | None = None
    upper: datetime | None = None
    move_rows: int = 0
    concurrently: bool = False

    def describe(self) -> str:
        where = f"{self.schema}.{self.table}"
        if self.kind == "create":
            moved = f", moving {self.move_rows:,} row(s) out of the default partition first" if self.move_rows else ""
            return (f"create {self.partition} [{self.lower:%Y-%m-%d}, {self.upper:%Y-%m-%d}) as a plain table with its "
                    f"CHECK constraint, then ATTACH to {where}{moved}")
        if self.kind == "finalize":
            return f"finish the interrupted detach of {self.partition} from {where} (DETACH ... FINALIZE)"
        if self.kind == "detach":
            how = "CONCURRENTLY" if self.concurrently else "(plain: the table has a default partition)"
            return f"detach {self.partition} from {where} {how}"
        if self.kind == "archive":
            return f"archive the detached {self.partition} to the backup repository (pg_dump -Fc, sha256 in a manifest)"
        return f"drop the detached {self.partition}"


@dataclass(frozen=True)
class TablePlan:
    """The actions for one table, what the plan leaves as it is (``notes``) and ``ahead``: whole
    months covered after the current one once the plan is applied (health's ``partitions_ahead``)."""

    schema: str
    table: str
    actions: tuple[Action, ...]
    notes: tuple[str, ...]
    ahead_before: int
    ahead_after: int


def parse_policy(table: str, comment: str | None) -> Policy | None:
    """The policy in a table comment: ``... pgops:partitions {"interval": "month", "premake": 3,
    "retention_months": 13, "keep_table": false}``. None when the comment has no tag. Raises
    :class:`ConfigError` naming the table and listing every problem at once: malformed JSON, an unknown
    field, an interval other than a month, a premake outside 1..:data:`MAX_PREMAKE` or a
    retention_months outside 1..:data:`MAX_RETENTION_MONTHS` (JSON integers only: ``true`` is not 1),
    a keep_table that is not a JSON boolean."""
    if not comment or POLICY_TAG not in comment:
        return None
    raw = comment.split(POLICY_TAG, 1)[1].strip()
    try:
        data, _ = json.JSONDecoder().raw_decode(raw)
    except ValueError:
        raise ConfigError([f"table {table}: the {POLICY_TAG} comment is not JSON ({raw[:60]!r})"],
                          f'fix it with COMMENT ON TABLE {table} IS \'... {POLICY_TAG} {{"interval": "month", '
                          '"premake": 3, "retention_months": 13}\' in a migration.') from None
    problems = []
    if not isinstance(data, dict):
        problems.append(f"table {table}: the {POLICY_TAG} policy must be a JSON object")
        data = {}
    unknown = sorted(set(data) - POLICY_FIELDS)
    if unknown:
        problems.append(f"table {table}: unknown policy field(s) {', '.join(map(repr, unknown))} "
                        f"(known: {', '.join(sorted(POLICY_FIELDS))})")
    if data.get("interval", "month") != "month":
        problems.append(f"table {table}: interval {data.get('interval')!r} is not supported (only 'month')")
    premake = data.get("premake", DEFAULT_PREMAKE)
    retention = data.get("retention_months")
    keep_table = data.get("keep_table", False)
    if not _whole(premake) or not 1 <= premake <= MAX_PREMAKE:
        problems.append(f"table {table}: premake must be an integer from 1 to {MAX_PREMAKE}, not {premake!r}")
    if retention is not None and (not _whole(retention) or not 1 <= retention <= MAX_RETENTION_MONTHS):
        problems.append(f"table {table}: retention_months must be an integer from 1 to {MAX_RETENTION_MONTHS} "
                        f"or absent, not {retention!r}")
    if not isinstance(keep_table, bool):
        problems.append(f"table {table}: keep_table must be true or false, not {keep_table!r}")
    if problems:
        raise ConfigError(problems, "fix the table comment in a migration, then run `invoke db.partitions`.")
    return Policy(premake=premake, retention_months=retention, keep_table=keep_table)


def _whole(v: object) -> bool:
    """A JSON integer: ``true``/``false`` are not (Python's bool is an int subclass), nor is ``3.0``."""
    return isinstance(v, int) and not isinstance(v, bool)


def month_start(d: datetime | date) -> date:
    return date(d.year, d.month, 1)


def add_months(m: date, n: int) -> date:
    y, mo = divmod(m.year * 12 + (m.month - 1) + n, 12)
    return date(y, mo + 1, 1)


def utc(m: date) -> datetime:
    return datetime(m.year, m.month, m.day, tzinfo=timezone.utc)


def partition_name(table: str, m: date) -> str:
    """``<table>_pYYYY_MM``, the table part shortened so the name fits PostgreSQL's 63 bytes."""
    suffix = f"_p{m:%Y_%m}"
    return table[:MAX_NAME - len(suffix)] + suffix


def _covered(partitions, m: date) -> bool:
    lo, hi = utc(m), utc(add_months(m, 1))
    return any(not p.is_default and not p.detach_pending and p.lower is not None and p.upper is not None
               and p.lower <= lo and hi <= p.upper for p in partitions)


def _overlaps(partitions, m: date) -> bool:
    lo, hi = utc(m), utc(add_months(m, 1))
    return any(not p.is_default and p.lower is not None and p.upper is not None and p.lower < hi and lo < p.upper
               for p in partitions)


def months_ahead(partitions, now: datetime) -> int:
    """Whole months after the current one covered without a gap (-1: not even the current month)."""
    m, n = month_start(now), -1
    while _covered(partitions, m) and n < 1200:
        n += 1
        m = add_months(m, 1)
    return n


def plan_table(state: TableState, now: datetime, *, archive: bool = False) -> TablePlan:
    """The steps for one table at ``now`` (aware, UTC): finalize pending detaches, create the missing
    months from the current one through ``premake`` ahead (and any month holding rows in the default
    partition that retention keeps), detach what retention lets go (then archive, then drop)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    s, t, pol = state.schema, state.table, state.policy
    actions: list[Action] = []
    notes: list[str] = []
    for p in state.partitions:
        if p.detach_pending:
            actions.append(Action("finalize", s, t, p.name))
    current = month_start(now)
    cutoff = None
    if pol.retention_months is not None:
        y, mo = divmod(now.year * 12 + now.month - 1 - pol.retention_months, 12)
        day = min(now.day, 28)
        cutoff = now.replace(year=y, month=mo + 1, day=day)
    wanted = {add_months(current, i) for i in range(pol.premake + 1)}
    for m, rows in state.default_rows.items():
        if rows and (cutoff is None or utc(add_months(m, 1)) > cutoff):
            wanted.add(month_start(m))
        elif rows:
            notes.append(f"{s}.{t}: {rows:,} row(s) of {m:%Y-%m} in the default partition are older than retention "
                         f"({pol.retention_months} months); left there")
    existing = state.partitions
    for m in sorted(wanted):
        if _covered(existing, m):
            continue
        if _overlaps(existing, m):
            notes.append(f"{s}.{t}: {m:%Y-%m} overlaps a partition that does not cover it whole; not created")
            continue
        moved = state.default_rows.get(m, 0)
        actions.append(Action("create", s, t, partition_name(t, m), utc(m), utc(add_months(m, 1)), move_rows=moved))
    if cutoff is not None:
        for p in sorted(state.partitions, key=lambda p: (p.lower or utc(date(1, 1, 1)))):
            if p.is_default or p.detach_pending or p.upper is None or p.upper > cutoff:
                continue
            actions.append(Action("detach", s, t, p.name, p.lower, p.upper, concurrently=not state.has_default))
            if archive:
                actions.append(Action("archive", s, t, p.name, p.lower, p.upper))
            if not pol.keep_table:
                actions.append(Action("drop", s, t, p.name, p.lower, p.upper))
    for p in state.partitions:
        if p.detach_pending and pol.retention_months is not None and p.upper is not None and cutoff is not None \
                and p.upper <= cutoff:
            if archive:
                actions.append(Action("archive", s, t, p.name, p.lower, p.upper))
            if not pol.keep_table:
                actions.append(Action("drop", s, t, p.name, p.lower, p.upper))
    after = [*[p for p in state.partitions if not p.detach_pending],
             *[Partition(a.partition, a.lower, a.upper) for a in actions if a.kind == "create"]]
    return TablePlan(s, t, tuple(actions), tuple(notes), months_ahead(state.partitions, now), months_ahead(after, now))


_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def parse_bound(expr: str) -> tuple[datetime, datetime] | None:
    """``FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`` (as
    ``pg_get_expr`` prints it with ``TimeZone = UTC``) → aware bounds; None for anything else
    (DEFAULT, MINVALUE/MAXVALUE, a non-time key)."""
    m = _BOUND.fullmatch(expr.strip())
    if not m:
        return None
    try:
        lo, hi = (datetime.fromisoformat(x) for x in m.groups())
    except ValueError:
        return None
    if lo.tzinfo is None or hi.tzinfo is None:
        return None
    return lo.astimezone(timezone.utc), hi.astimezone(timezone.utc)
