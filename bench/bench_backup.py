"""`invoke backup.create` of a >= 1 GB database beside plain `pg_dump -Fc` to the same disk
(issue 4: ratio goal <= 1.05; peak memory of pgops < 200 MB at any database size).

    .venv/bin/python bench/bench_backup.py [--users 150000] [--repeat 2]

pgops' peak memory is the VmHWM of the invoke process (pg_dump's own memory is the same for both
and not counted), read from /proc while it runs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, psql, throwaway_cluster

from ops.dsn import connect
from ops.local.cluster import pg_bindir


def run_watching_memory(cmd: list[str], **kw) -> tuple[float, int]:
    """Run ``cmd``; return (seconds, peak resident set of that process in bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    peak = 0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr.read().decode()[-500:]}")
    return time.perf_counter() - t0, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=150_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    bin_dir = Path(sys.executable).parent
    out = Path(tempfile.mkdtemp(prefix="pgops-bench-out-", dir="/tmp"))
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname=big"
        psql(st, "postgres", "-c", "CREATE DATABASE big")
        subprocess.run([str(bin_dir / "invoke"), "db.migrate", "--dsn", dsn, "--db", "syncscript"], cwd=REPO,
                       check=True, capture_output=True)
        subprocess.run([str(bin_dir / "invoke"), "db.seed", "--dsn", dsn, "--users", str(args.users)], cwd=REPO,
                       check=True, capture_output=True)
        with connect(st.conninfo(), dbname="big") as conn:
            size = conn.execute("SELECT pg_database_size('big')").fetchone()[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        results: dict[str, list[float]] = {"pgops backup.create": [], "pg_dump -Fc": []}
        peaks = []
        for r in range(args.repeat):
            def pgops():
                repo = out / f"repo{r}"
                secs, peak = run_watching_memory([str(bin_dir / "invoke"), "backup.create", "--dsn", dsn,
                                                  "--repository", repo.as_uri()], cwd=REPO, env=env)
                peaks.append(peak)
                return secs

            def raw():
                secs, _ = run_watching_memory([str(pg_bindir() / "pg_dump"), "-Fc", "-f", str(out / f"raw{r}.dump"),
                                               "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "big"],
                                              env={**env, "PGPASSFILE": str(st.layout.passfile)})
                return secs
            order = [("pgops backup.create", pgops), ("pg_dump -Fc", raw)]
            for name, fn in (order if r % 2 == 0 else order[::-1]):
                results[name].append(fn())
    dump_size = (out / "raw0.dump").stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"database {size / 1e9:.2f} GB, dump {dump_size / 1e6:.0f} MB, median of {args.repeat} runs:")
    print(f"  pgops backup.create  {med['pgops backup.create']:7.1f} s   (sha256, row counts, manifest included)")
    print(f"  pg_dump -Fc          {med['pg_dump -Fc']:7.1f} s")
    print(f"  ratio                {med['pgops backup.create'] / med['pg_dump -Fc']:.3f}")
    print(f"  pgops peak memory    {max(peaks) / 1e6:.0f} MB (VmHWM of the invoke process)")


if __name__ == "__main__":
    main()
