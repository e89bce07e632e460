"""Shared bench helpers: a private throwaway cluster, and the one measuring harness every benchmark uses.

The harness (:func:`compare`, :func:`report`) — issue 9 §7, "honest measurements":

* every contender runs ``repeats`` times (≥ 5 unless ``--quick``), each run on its own fresh
  object (a ``prepare`` step, untimed, makes it: a new database, a new target cluster);
* the order alternates so no contender always runs first or on a warm cache: with two contenders
  A B, B A, B A, A B, ... (ABBA); with n, round r uses rotation r mod n, reversed on odd passes;
* the result is the median with min–max of each contender, and the ratio of medians to the baseline
  with its spread: the min–max of the per-round paired ratios (same round, adjacent in time).

Benchmarks print results; they never assert on time (timings belong in the README table, not in tests).
Every benchmark takes ``--quick`` (small data, 2 rounds: proves it runs, measures nothing).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ops.local.cluster import LocalStack, open_stack  # noqa: E402
from ops.local.layout import POOLER_OFFSET  # noqa: E402
from ops.pgtools import pg_bindir  # noqa: E402

MIN_REPEATS = 5
QUICK_REPEATS = 2


def free_port() -> int:
    """A free loopback port whose pooler port (port + POOLER_OFFSET) is free too."""
    while True:
        p = random.randint(30000, 60000)
        with socket.socket() as s, socket.socket() as pooler:
            try:
                s.bind(("127.0.0.1", p))
                pooler.bind(("127.0.0.1", p + POOLER_OFFSET))
                return p
            except OSError:
                continue


@contextlib.contextmanager
def throwaway_cluster(**settings):
    """A primary with no replicas in a private state directory, removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="pgops-bench-", dir="/tmp"))
    os.chmod(d, 0o755)
    st = open_stack(d / "stack", port=free_port(), replicas=0, **settings)
    try:
        st.up()
        yield st
    finally:
        st.down(purge=True)
        shutil.rmtree(d, ignore_errors=True)


def password(st: LocalStack) -> str:
    return st.layout.passfile.read_text().strip().rsplit(":", 1)[1]


def psql(st: LocalStack, db: str, *args: str) -> None:
    subprocess.run([str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                    str(st.layout.primary.port), "-U", "postgres", "-d", db, *args],
                   env={**os.environ, "PGPASSFILE": str(st.layout.passfile)}, check=True, capture_output=True)


class FreshDatabases:
    """One fresh database per contender and round: ``prepare(key)`` creates ``<prefix>_<n>`` (from
    ``template`` when given) and checkpoints, so no contender pays for another's dirty pages;
    ``drop(key)`` removes it; ``dbs[key]`` names the current one."""

    def __init__(self, st: LocalStack, prefix: str, template: str | None = None):
        self.st, self.prefix, self.template = st, prefix, template
        self.dbs: dict[str, str] = {}
        self._n = 0

    def prepare(self, key: str):
        def run(_round):
            self._n += 1
            self.dbs[key] = f"{self.prefix}_{self._n}"
            psql(self.st, "postgres", "-c", f"CREATE DATABASE {self.dbs[key]}"
                 + (f" TEMPLATE {self.template}" if self.template else ""))
            psql(self.st, "postgres", "-c", "CHECKPOINT")
        return run

    def drop(self, key: str):
        return lambda _round: psql(self.st, "postgres", "-c", f"DROP DATABASE {self.dbs[key]}")


def invoke(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``invoke <args>`` from the checkout with this interpreter's venv."""
    return subprocess.run([str(Path(sys.executable).parent / "invoke"), *args], cwd=REPO, env=env,
                          check=check, capture_output=True, text=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def arguments(doc: str, **sizes) -> argparse.ArgumentParser:
    """The common options: ``--repeat`` (default and minimum 5) and ``--quick``; ``sizes`` are
    benchmark-specific ``name=(full, quick)`` integer options (``--users`` etc.)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=MIN_REPEATS, help=f"rounds (at least {MIN_REPEATS})")
    ap.add_argument("--quick", action="store_true",
                    help=f"small sizes and {QUICK_REPEATS} rounds: checks the benchmark runs; the figures mean nothing")
    for name, (full, _quick) in sizes.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"default {full}")
    ap.set_defaults(_sizes=sizes)
    return ap


def parse(ap: argparse.ArgumentParser) -> argparse.Namespace:
    args = ap.parse_args()
    for name, (full, quick) in args._sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.quick:
        args.repeat = QUICK_REPEATS
    elif args.repeat < MIN_REPEATS:
        ap.error(f"--repeat must be at least {MIN_REPEATS} (use --quick for a smoke run)")
    return args


@dataclass
class Contender:
    """One way of doing the work. ``run(i)`` is timed; ``prepare(i)`` (untimed) makes the fresh
    object run ``i`` works on; ``cleanup(i)`` (untimed) removes it. ``i`` counts this contender's runs."""

    name: str
    run: Callable[[int], object]
    prepare: Callable[[int], object] | None = None
    cleanup: Callable[[int], object] | None = None


def round_order(n: int, r: int) -> list[int]:
    """Indices of the contenders in round ``r``: rotation ``r % n``, reversed on odd passes
    (two contenders: AB BA BA AB AB BA ...)."""
    rot = list(range(n))[r % n:] + list(range(n))[:r % n]
    return rot[::-1] if (r // n) % 2 else rot


def compare(contenders: list[Contender], repeats: int, progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run every contender ``repeats`` times in alternated order; returns seconds per run, per contender,
    in round order (so ``results[a][i]`` and ``results[b][i]`` are the same round)."""
    results: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(repeats):
        for idx in round_order(len(contenders), r):
            c = contenders[idx]
            if c.prepare:
                c.prepare(r)
            try:
                results[c.name].append(timed(lambda: c.run(r)))
            finally:
                if c.cleanup:
                    c.cleanup(r)
            if progress:
                progress(f"round {r + 1}/{repeats} {c.name}: {results[c.name][-1]:.3f} s")
    return results


def report(title: str, results: dict[str, list[float]], baseline: str, unit: str = "s") -> None:
    """Print median (min–max) per contender and, against ``baseline``, the ratio of medians with the
    min–max of the per-round ratios."""
    n = len(next(iter(results.values())))
    print(f"{title} — {n} rounds, order alternated, median (min–max):")
    base = results[baseline]
    for name, secs in results.items():
        line = f"  {name:34s} {statistics.median(secs):8.3f} {unit} ({min(secs):.3f}–{max(secs):.3f})"
        if name != baseline:
            paired = [a / b for a, b in zip(secs, base)]
            line += (f"   ratio to {baseline}: {statistics.median(secs) / statistics.median(base):.2f}"
                     f" (per round {min(paired):.2f}–{max(paired):.2f})")
        print(line, flush=True)
