"""Batch planning, throttling and progress arithmetic for a transfer. Pure: no I/O, no clock
(times are passed in).

- Batches are key ranges ``(low, high]`` of the source's integer key holding at most ``batch_size``
  rows (gh-ost and pt-online-schema-change copy by ranges of a unique key; Stripe's and GitHub's
  backfills do the same), each copied in its own short transaction with the high-water mark.
- Throttling follows gh-ost: before each batch, pause while a replica replays more than
  ``max_lag_s`` seconds (or ``max_lag_bytes``) behind, or while more than ``max_lock_waiters``
  other sessions wait on a lock; resume when it clears, and never pause longer than
  ``max_pause_s`` for one batch (then go on and say so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Throttle limits. Seconds, bytes, sessions. Defaults: gh-ost's ``--max-lag-millis`` 1500,
    16 MiB of WAL, any lock waiter, at most 60 s of pause per batch."""

    max_lag_s: float = 1.5
    max_lag_bytes: int = 16 << 20
    max_lock_waiters: int = 0
    max_pause_s: float = 60.0
    sleep_s: float = 0.25


@dataclass(frozen=True)
class Load:
    """What the edge measured before a batch: the worst replica's replay lag in seconds and bytes,
    and how many other sessions of the database wait on a lock."""

    lag_s: float = 0.0
    lag_bytes: int = 0
    lock_waiters: int = 0


def throttle_reason(load: Load, limits: Limits) -> str | None:
    """Why the next batch should wait (None: go)."""
    if load.lag_s > limits.max_lag_s:
        return f"replica replay lag {load.lag_s:.1f} s > {limits.max_lag_s:g} s"
    if load.lag_bytes > limits.max_lag_bytes:
        return f"replica replay lag {load.lag_bytes:,} bytes > {limits.max_lag_bytes:,}"
    if load.lock_waiters > limits.max_lock_waiters:
        return f"{load.lock_waiters} session(s) waiting on locks"
    return None


def keep_waiting(paused_s: float, limits: Limits) -> bool:
    """Whether a throttled batch may still wait (False once ``max_pause_s`` is spent)."""
    return paused_s < limits.max_pause_s


def batch_range(low: int | None, nth_key: int | None, max_key: int | None) -> tuple[int, int] | None:
    """The next range ``(low, high]``: ``low`` is the high-water mark (None: before the first key),
    ``nth_key`` the key of the ``batch_size``-th row above it (None when fewer rows remain),
    ``max_key`` the source's highest key when the run started. None when nothing is left."""
    if max_key is None or (low is not None and low >= max_key):
        return None
    lo = low if low is not None else -(2 ** 63)
    hi = max_key if nth_key is None else min(nth_key, max_key)
    return (lo, hi)


def rate_and_eta(done: int, total: int, elapsed_s: float) -> tuple[float, float | None]:
    """Rows per second so far and the seconds left at that rate (None before any row)."""
    if done <= 0 or elapsed_s <= 0:
        return 0.0, None
    rate = done / elapsed_s
    return rate, max(0.0, (total - done) / rate)


def batches_left(rows_left: int, batch_size: int) -> int:
    return math.ceil(max(rows_left, 0) / batch_size) if batch_size > 0 else 0
