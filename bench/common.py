"""Shared bench helpers: a private throwaway cluster and a stopwatch. Benchmarks print results;
they never assert on time (timings belong in the README table, not in tests)."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ops.local.cluster import LocalStack, open_stack, pg_bindir  # noqa: E402


def free_port() -> int:
    while True:
        p = random.randint(30000, 60000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue


@contextlib.contextmanager
def throwaway_cluster():
    """A primary with no replicas in a private state directory, removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="pgops-bench-", dir="/tmp"))
    os.chmod(d, 0o755)
    st = open_stack(d / "stack", port=free_port(), replicas=0)
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


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
