"""Schedules as data: which jobs run when, for a stack, and the next run times. Pure (no I/O; ``now``
is passed in; time zones come from the standard library's tz database).

The jobs are seed 002's promises (FluxStudio, "Backup Strategy" and "Recovery Testing"): a full
logical backup daily at 02:00 UTC, hourly backups in business hours (08:00–18:00, Monday to Friday,
in a configurable time zone), retention applied daily, a restore drill monthly and a
disaster-recovery drill quarterly (a physical snapshot of the whole cluster, restored and checked).
Each job has a timeout and says what a missed run looks like. The same :class:`Job` list is what
``invoke schedule.show`` prints, what ``schedule.install`` writes as systemd timers or a crontab, and
what the Pulumi ``Scheduler`` component turns into EventBridge Scheduler schedules — one expression
and one time zone, rendered three ways.

Expressions are five-field cron (``minute hour day-of-month month day-of-week``; lists, ranges and
``/step``; day of week 0–6 with 0 = Sunday, 7 accepted as Sunday). One restriction: day of month and
day of week may not both be restricted, because cron ORs them (crontab(5)) while systemd's
``OnCalendar=`` ANDs them (systemd.time(7)) and EventBridge refuses the combination ("?" is required
in one of the two, EventBridge Scheduler "cron-based schedules") — so such an expression would mean
three different things.

Daylight saving time (a job in a time zone other than UTC): a local time that does not exist (the
spring-forward gap) is skipped that day, and an ambiguous one (the fall-back hour) runs once, at its
first occurrence — what systemd does for ``OnCalendar=`` with a time zone; EventBridge Scheduler
documents the same for time zones with DST ("runs at the first occurrence" / skips invalid times).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError, char_name

DOW_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))

#: CloudWatch alarms of the Scheduler component (infra/scheduler.py) → the runbook each names;
#: ``invoke runbook.check`` holds the runbooks to them as it does for ``ops.thresholds``.
ALARMS: dict[str, str] = {
    "job_failed": "runbooks/scheduled-job-failed.md",
    "schedule_dlq": "runbooks/scheduled-job-failed.md",
    "schedule_target_errors": "runbooks/scheduled-job-failed.md",
}
#: The metric ``schedule.run`` publishes on AWS stacks (namespace ``pgops``, dimension ``Job``).
JOB_METRIC = "JobSucceeded"


@dataclass(frozen=True)
class Cron:
    """A parsed five-field expression: the allowed values of each field (day of week 0–6, Sunday 0)
    and whether day of month / day of week were ``*``."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    any_day: bool
    any_weekday: bool


def _field(text: str, name: str, lo: int, hi: int) -> tuple[set[int], bool]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{name}: step '{step_text}' is not a positive integer")
            step = int(step_text)
        if part == "*":
            first, last = lo, hi
        elif "-" in part:
            a, _, b = part.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"{name}: '{part}' is not a range of numbers")
            first, last = int(a), int(b)
        elif part.isdigit():
            first = last = int(part)
            if step > 1:  # "5/15" means 5-hi/15 (crontab(5) extension, as cronie reads it)
                last = hi
        else:
            raise ValueError(f"{name}: '{part}' is not a number, range or *")
        if not lo <= first <= last <= hi:
            raise ValueError(f"{name}: '{part}' is outside {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return values, text == "*"


def parse_cron(text: str) -> Cron:
    """Parse a five-field cron expression. Raises :class:`ConfigError` naming every bad field at once
    (and a restricted day of month together with a restricted day of week; see the module docstring)."""
    parts = text.split()
    if len(parts) != 5:
        raise ConfigError([f"cron expression '{text}' needs 5 fields (minute hour day-of-month month day-of-week), "
                           f"not {len(parts)}"])
    problems, sets = [], []
    for part, (name, lo, hi) in zip(parts, _FIELDS):
        try:
            sets.append(_field(part, name, lo, hi))
        except ValueError as exc:
            problems.append(f"cron expression '{text}': {exc}")
            sets.append((set(), False))
    if not problems and not sets[2][1] and not sets[4][1]:
        problems.append(f"cron expression '{text}' restricts both day of month and day of week (cron ORs them, "
                        "systemd ANDs them, EventBridge refuses them): restrict one")
    if problems:
        raise ConfigError(problems)
    weekdays = {d % 7 for d in sets[4][0]}
    return Cron(text, *(tuple(sorted(s)) for s, _ in sets[:4]), tuple(sorted(weekdays)), sets[2][1], sets[4][1])


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ConfigError` when the tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError([f"time zone {name!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin)"],
                          "set PGOPS_SCHEDULE_TZ (or pgops:scheduleTimeZone) to a name from `timedatectl list-timezones`.") from None


def next_runs(cron: Cron, tz_name: str, now: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` run times strictly after ``now`` (an aware datetime), as aware UTC datetimes.
    Days are walked in the job's time zone; DST as the module docstring says. Raises ValueError for a
    naive ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = zone(tz_name)
    out: list[datetime] = []
    day: date = now.astimezone(tz).date()
    for _ in range(366 * 8):  # any valid expression matches within 8 years (29 February is in 1-12)
        if day.month in cron.months and _day_matches(cron, day):
            for h in cron.hours:
                for m in cron.minutes:
                    local = datetime.combine(day, time(h, m), tz)  # fold=0: the first of an ambiguous pair
                    utc = local.astimezone(timezone.utc)
                    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                        continue  # does not exist (spring-forward gap)
                    if utc > now:
                        out.append(utc)
                        if len(out) == count:
                            return out
        day += timedelta(days=1)
    return out


def _day_matches(cron: Cron, day: date) -> bool:
    dom = day.day in cron.days
    dow = (day.isoweekday() % 7) in cron.weekdays
    if cron.any_day and cron.any_weekday:
        return True
    if cron.any_day:
        return dow
    return dom if cron.any_weekday else dom or dow


# ---- renderings --------------------------------------------------------------------------------------

def _runs(values: tuple[int, ...], fmt=str, sep: str = "..") -> str:
    """``(8, 9, 10, 12)`` → ``8..10,12`` (systemd) or ``8-10,12`` (EventBridge with ``sep='-'``)."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(fmt(values[i]) if j == i else f"{fmt(values[i])}{sep}{fmt(values[j])}")
        i = j + 1
    return ",".join(out)


def _full(values: tuple[int, ...], lo: int, hi: int) -> bool:
    """Whether a cron field lists every value of its range (written ``*``)."""
    return values == tuple(range(lo, hi + 1))


def to_oncalendar(cron: Cron, tz_name: str) -> str:
    """systemd.time(7) calendar event, e.g. ``Mon..Fri *-*-* 08..18:00:00 Europe/Berlin``."""
    full = _full
    monday_first = tuple(sorted((d - 1) % 7 for d in cron.weekdays))  # systemd ranges run Mon..Sun
    dow = "" if cron.any_weekday else _runs(monday_first, lambda d: DOW_NAMES[(d + 1) % 7]) + " "
    month = "*" if full(cron.months, 1, 12) else _runs(cron.months, lambda v: f"{v:02d}")
    day = "*" if cron.any_day else _runs(cron.days, lambda v: f"{v:02d}")
    hour = "*" if full(cron.hours, 0, 23) else _runs(cron.hours, lambda v: f"{v:02d}")
    minute = "*" if full(cron.minutes, 0, 59) else _runs(cron.minutes, lambda v: f"{v:02d}")
    return f"{dow}*-{month}-{day} {hour}:{minute}:00 {tz_name}"


def to_eventbridge(cron: Cron) -> str:
    """EventBridge Scheduler's six-field ``cron(minutes hours day-of-month month day-of-week year)``:
    ``?`` in whichever day field is unrestricted, day-of-week as names (EventBridge counts 1 = SUN)."""
    full = _full
    minute = "*" if full(cron.minutes, 0, 59) else _runs(cron.minutes, sep="-")
    hour = "*" if full(cron.hours, 0, 23) else _runs(cron.hours, sep="-")
    month = "*" if full(cron.months, 1, 12) else _runs(cron.months, sep="-")
    if cron.any_weekday:
        day, dow = ("*" if cron.any_day else _runs(cron.days, sep="-")), "?"
    else:
        day = "?"
        dow = _runs(tuple(sorted((d - 1) % 7 for d in cron.weekdays)), lambda d: DOW_NAMES[(d + 1) % 7].upper(), "-")
    return f"cron({minute} {hour} {day} {month} {dow} *)"


# ---- the jobs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One scheduled job. ``steps``: the ``invoke`` command lines it runs in order, each a tuple of
    arguments (task name first), stopping at the first that fails; ``timeout_s``: seconds for the
    whole job; ``missed``: what shows when a run is missed or fails, and who notices."""

    name: str
    cron: str
    time_zone: str
    steps: tuple[tuple[str, ...], ...]
    timeout_s: int
    description: str
    missed: str
    databases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def parsed(self) -> Cron:
        return parse_cron(self.cron)

    def next_run(self, now: datetime) -> datetime:
        return next_runs(self.parsed, self.time_zone, now, 1)[0]

    @property
    def oncalendar(self) -> str:
        return to_oncalendar(self.parsed, self.time_zone)

    @property
    def eventbridge(self) -> str:
        return to_eventbridge(self.parsed)

    def as_dict(self, now: datetime) -> dict:
        """The ``schedule.show --json`` shape."""
        return {"name": self.name, "cron": self.cron, "time_zone": self.time_zone,
                "next_run": self.next_run(now).isoformat(), "timeout_s": self.timeout_s,
                "steps": [" ".join(("invoke",) + s) for s in self.steps], "description": self.description,
                "missed": self.missed, "systemd_oncalendar": self.oncalendar,
                "eventbridge_expression": self.eventbridge}


def jobs_for(stack: str, databases: list[str], *, business_tz: str = "UTC", copy_to: str | None = None,
             partitioned: tuple[str, ...] = (), partition_task: str | None = None) -> list[Job]:
    """Seed 002's schedule for ``stack`` over ``databases`` (folder names; each step names them with
    ``--db``). ``business_tz``: IANA zone of the business-hours job (``PGOPS_SCHEDULE_TZ``); ``copy_to``:
    a second repository URL (``PGOPS_COPY_TO``) the daily job copies each new backup to; ``partitioned``
    and ``partition_task``: databases holding partitions and the task that maintains them (hourly);
    no partition job without both. Raises :class:`ConfigError` for an unknown time zone."""
    zone(business_tz)
    dbs = tuple(databases)
    db_args = tuple(a for d in dbs for a in ("--db", d))
    daily_steps: list[tuple[str, ...]] = [("backup.create", *db_args)]
    if copy_to:
        daily_steps.append(("backup.copy", "--to", copy_to, "--since", "26h", *db_args))
    jobs = [
        Job("backup-daily", "0 2 * * *", "UTC", tuple(daily_steps), 2 * 3600,
            "full logical backup of every database (seed 002: daily at 02:00 UTC)"
            + (", then a copy to the second repository" if copy_to else ""),
            "no new backup: the backup_age alarm / health check goes critical after 26 h "
            "(runbooks/backup-stale-or-failed.md)", dbs),
        Job("backup-hourly", "0 8-18 * * 1-5", business_tz, (("backup.create", *db_args),), 50 * 60,
            f"logical backup every hour 08:00-18:00 Monday-Friday ({business_tz}; seed 002: hourly in business hours)",
            "a gap in `invoke backup.list`; the daily backup still bounds the loss at 26 h (backup_age)", dbs),
        Job("prune-daily", "30 3 * * *", "UTC", (("backup.prune", "--apply", "--yes", *db_args),), 3600,
            "retention: 30 daily, 12 weekly, 12 monthly, 5 yearly (seed 002), with prune's safety floors",
            "the repository grows; nothing is lost (prune never deletes the newest or the newest drilled backup)", dbs),
        Job("drill-monthly", "30 4 1 * *", "UTC", (("drill.run", *db_args),), 3 * 3600,
            "restore drill of each database's newest logical backup (seed 002: monthly restore tests)",
            "the drill_age alarm / health check goes critical after 35 days without a passed drill "
            "(runbooks/restore-drill-failed.md)", dbs),
        Job("dr-drill-quarterly", "30 5 1 1,4,7,10 *", "UTC",
            (("backup.create", "--kind", "snapshot"), ("drill.run", "--kind", "snapshot")), 6 * 3600,
            "disaster-recovery drill: a snapshot of the whole cluster taken and restored into a scratch server "
            "(seed 002: quarterly DR drills; the January run is the annual full recovery)",
            "no snapshot drill in the repository's drill history for the quarter (`invoke drill.history`)", dbs),
    ]
    if partitioned and partition_task:
        jobs.append(Job("partitions-hourly", "5 * * * *", "UTC",
                        ((partition_task, "--apply", "--yes", *(a for d in partitioned for a in ("--db", d))),), 15 * 60,
                        "create upcoming partitions and detach expired ones",
                        "inserts fail once the newest partition's range is past (no default partition)",
                        tuple(partitioned)))
    for j in jobs:
        j.parsed  # every expression is valid (raises ConfigError otherwise)
    return jobs


def find_job(jobs: list[Job], name: str) -> Job:
    """The job called ``name``; :class:`ConfigError` listing the jobs otherwise."""
    for j in jobs:
        if j.name == name:
            return j
    raise ConfigError([f"no scheduled job '{name}'; the jobs are: {', '.join(j.name for j in jobs)}"],
                      "see them with `invoke schedule.show`.")


# ---- values written into unit and cron files ---------------------------------------------------------

#: What a value written into a systemd unit or a cron.d file may hold: ASCII letters, digits and
#: ``_ . / : , = @ + -``. Everything else means something to one of the file's readers: a line break
#: ends the entry (crontab(5), systemd.syntax(7)); ``%`` is a newline in a cron command (crontab(5))
#: and a specifier in a unit (systemd.unit(5) "Specifiers"); ``$`` is variable expansion in
#: ``ExecStart=`` (systemd.service(5) "Command lines") and in sh; ``;``, ``&``, ``|``, backtick, quotes,
#: ``\``, ``<>``, ``()``, ``*?[]~!{}`` are sh syntax (cron runs the command through ``SHELL``); ``#``
#: starts a comment; whitespace separates fields. Non-ASCII text is refused too (cron implementations
#: read bytes). An allow-list, so a character no one thought of is refused, not written.
PLAIN_VALUE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:,=@+-")
#: A plain OS user name: POSIX portable user names (letters, digits, ``. _ -``, not starting with
#: ``-``; POSIX.1-2017 3.437 "User Name", 3.282 "Portable Filename Character Set"), at most 32
#: characters (useradd(8)); the name must also exist (``pwd.getpwnam``, checked at the task edge).
_USER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _first_bad(value: str, allowed: frozenset) -> tuple[int, str] | None:
    for i, ch in enumerate(value):
        if ch not in allowed:
            return i, ch
    return None


def file_value_problems(values: dict[str, str]) -> list[str]:
    """Pure: every problem with ``values`` (``what it is`` → its text, e.g. ``"--stack"`` or
    ``"PGOPS_REPOSITORY"``) that ``schedule.install`` would write into a unit or cron file: empty,
    or a character outside :data:`PLAIN_VALUE` (named by code point and position; the value itself
    is never quoted, it may come from the environment). Empty list when all are plain."""
    problems = []
    for what, value in values.items():
        if value == "":
            problems.append(f"{what} is empty")
            continue
        bad = _first_bad(value, PLAIN_VALUE)
        if bad:
            problems.append(f"{what} holds {char_name(bad[1])} at character {bad[0] + 1}, which a unit or cron file "
                            "would read as syntax (only ASCII letters, digits and _ . / : , = @ + - are written)")
    return problems


def user_name_problems(name: str) -> list[str]:
    """Pure: why ``name`` is not a plain OS user name (see :data:`_USER_CHARS`); empty list when it is."""
    if name == "":
        return ["--user is empty"]
    bad = _first_bad(name, _USER_CHARS)
    if bad:
        return [f"--user holds {char_name(bad[1])} at character {bad[0] + 1}: a user name is ASCII letters, digits "
                "and . _ - only"]
    if name.startswith("-") or len(name) > 32:
        return ["--user starts with '-' or is longer than 32 characters: not a user name"]
    return []
