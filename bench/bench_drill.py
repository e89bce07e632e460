"""`invoke drill.run` of a >= 1 GB database's logical backup beside plain `pg_restore -j 2` of the
same file into an empty cluster (issue 5: ratio goal <= 1.15 with checks included).

    .venv/bin/python bench/bench_drill.py [--users 170000]

Both targets are fresh clusters on this machine with the same settings (ops.drills.runner's
DRILL_SETTINGS); the drill also fetches and hashes the object, counts every table, analyzes, runs
every verify.sql and drill check, and tears its cluster down.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, free_port, psql, throwaway_cluster

from ops.dsn import connect
from ops.drills.runner import DRILL_SETTINGS, JOBS
from ops.local.cluster import open_stack, pg_bindir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=170_000)
    args = ap.parse_args()
    bin_dir = Path(sys.executable).parent
    out = Path(tempfile.mkdtemp(prefix="pgops-bench-drill-", dir="/tmp"))
    os.chmod(out, 0o755)
    repo = (out / "repo").as_uri()
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname=syncscript"
        psql(st, "postgres", "-c", "CREATE DATABASE syncscript")
        for step in (["db.migrate", "--db", "syncscript"], ["db.seed", "--users", str(args.users)],
                     ["backup.create", "--repository", repo]):
            subprocess.run([str(bin_dir / "invoke"), *step, "--dsn", dsn], cwd=REPO, check=True, capture_output=True)
        with connect(st.conninfo(), dbname="syncscript") as conn:
            size = conn.execute("SELECT pg_database_size('syncscript')").fetchone()[0]
    # the source server is gone now: its autovacuum must not compete with either restore
    t0 = time.perf_counter()
    res = subprocess.run([str(bin_dir / "invoke"), "drill.run", "--dsn", dsn, "--repository", repo, "--json",
                          str(out / "drill.json")], cwd=REPO, capture_output=True, text=True)
    drill_s = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(res.stderr[-800:])
    phases = json.loads((out / "drill.json").read_text())["phases"]
    dump = next((out / "repo").rglob("dump.pgdump"))
    dump_mb = dump.stat().st_size / 1e6
    target = open_stack(out / "raw", port=free_port(), replicas=0, extra_settings=DRILL_SETTINGS, throwaway=True)
    target.up()
    try:
        psql(target, "postgres", "-c", "CREATE DATABASE syncscript")
        t0 = time.perf_counter()
        subprocess.run([str(pg_bindir() / "pg_restore"), "-j", str(JOBS), "--no-owner", "-h", "127.0.0.1",
                        "-p", str(target.layout.primary.port), "-U", "postgres", "-d", "syncscript", str(dump)],
                       env={**os.environ, "PGPASSFILE": str(target.layout.passfile)}, check=True, capture_output=True)
        raw_s = time.perf_counter() - t0
    finally:
        target.down(purge=True)
        shutil.rmtree(out, ignore_errors=True)
    print(f"database {size / 1e9:.2f} GB, dump {dump_mb:.0f} MB:")
    print(f"  pgops drill.run (fetch, restore -j {JOBS}, analyze, checks, teardown)  {drill_s:7.1f} s")
    print(f"  pg_restore -j {JOBS} into an empty cluster                             {raw_s:7.1f} s")
    print(f"  ratio {drill_s / raw_s:.3f}")
    print("  drill phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))


if __name__ == "__main__":
    main()
