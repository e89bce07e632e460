"""A mapping's validation verdict from what each side measured. Pure.

The proof a transfer is complete (what pgroll, Reshape and the GitHub/Stripe write-ups leave to the
operator): per mapping, ``source rows − quarantined rows = target rows``, and for each mapped column
the sum of a 60-bit hash of ``(key, value)`` over every row agrees on both sides — order-free, so a
changed, missing or extra row shows up in the column it touched.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Side:
    """One side's measurement: ``rows`` counted and ``sums`` per column (a big integer each)."""

    rows: int
    sums: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MappingResult:
    mapping: str
    passed: bool
    source_rows: int
    quarantined: int
    target_rows: int
    failed_columns: tuple[str, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict:
        return {"mapping": self.mapping, "passed": self.passed, "source_rows": self.source_rows,
                "quarantined": self.quarantined, "target_rows": self.target_rows,
                "failed_columns": list(self.failed_columns), "detail": self.detail}


def judge(mapping: str, columns: tuple[str, ...], source_total: int, source: Side, target: Side) -> MappingResult:
    """Compare ``source`` (the mapped, non-quarantined legacy rows; ``source_total`` counts the
    quarantined too) with ``target`` over ``columns``."""
    quarantined = source_total - source.rows
    failed = tuple(c for c in columns if source.sums.get(c) != target.sums.get(c))
    problems = []
    if source.rows != target.rows:
        problems.append(f"legacy {source_total:,} rows − {quarantined:,} quarantined = {source.rows:,}, "
                        f"v2 has {target.rows:,}")
    if failed:
        problems.append(f"checksum differs in column(s) {', '.join(failed)}")
    return MappingResult(mapping, not problems, source_total, quarantined, target.rows, failed,
                         "; ".join(problems) or f"{target.rows:,} rows, {len(columns)} column checksum(s) agree")
