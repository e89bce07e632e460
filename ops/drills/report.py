"""Drill report model and RTO/RPO arithmetic. Pure: no I/O, times passed in.

RTO = wall time from the drill's start until its checks passed (None when they did not);
RPO = drill start − the backup's created_at (the data a restore from this backup would lose).
These are the definitions AWS Backup restore testing reports (restore time) extended with the
data checks it leaves to a Lambda.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

PHASES = ("fetch", "restore", "analyze", "checks", "teardown")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class DrillReport:
    """Everything a drill found. Times are UTC ISO-8601; durations in seconds."""

    database: str
    backup_id: str
    kind: str
    started_at: str
    backup_created_at: str
    target: str = ""
    finished_at: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    error: str = ""
    kept_target: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks) and not self.error

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    def to_markdown(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        lines = [f"# Restore drill {status}: {self.database} from {self.backup_id}", "",
                 f"- kind: {self.kind}", f"- started: {self.started_at}", f"- finished: {self.finished_at}",
                 f"- backup created: {self.backup_created_at}", f"- target: {self.target or '—'}",
                 f"- RTO: {_secs(self.rto_seconds)}", f"- RPO: {_secs(self.rpo_seconds)}"]
        if self.error:
            lines += [f"- error: {self.error}"]
        lines += ["", "| phase | seconds |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in self.phases.items()]
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {c.detail.replace('|', '/')} |" for c in self.checks]
        return "\n".join(lines) + "\n"


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} s"


def rpo_seconds(started: datetime, backup_created: datetime) -> float:
    """Seconds between the backup's creation and the drill's start (both timezone-aware)."""
    return (started - backup_created).total_seconds()


def rpo_and_clock_check(started: datetime, backup_created: datetime) -> tuple[float | None, list[Check]]:
    """The drill's RPO (seconds, rounded to ms) and its clock check, by the shared rule
    :func:`ops.retention.clock_skew`: a backup dated beyond the tolerance after the drill's start has
    no RPO (None, never negative) and a failing ``backup created_at`` check, so the drill cannot
    pass; within the tolerance the RPO is 0 at least and no check is added."""
    from ..retention import skew_problem
    problem = skew_problem(backup_created, started)
    if problem is not None:
        return None, [Check("backup created_at", False, f"{problem}; RPO cannot be measured")]
    return round(max(rpo_seconds(started, backup_created), 0.0), 3), []


def row_count_checks(expected: dict[str, int], found: dict[str, int | None]) -> list[Check]:
    """One check per manifest table: present in the restored copy with exactly the manifest's rows."""
    out = []
    for table, rows in sorted(expected.items()):
        got = found.get(table)
        if got is None:
            out.append(Check(f"table {table}", False, f"missing from the restored copy (manifest: {rows} rows)"))
        else:
            out.append(Check(f"table {table}", got == rows, f"{got} rows, manifest {rows}"))
    return out
