"""`invoke backup.create` of a >= 1 GB database beside plain `pg_dump -Fc` to the same disk
(issue 4: ratio goal <= 1.05; peak memory of pgops < 200 MB at any database size).

    .venv/bin/python bench/bench_backup.py [--users 150000] [--repeat 5] [--quick]

pgops' peak memory is the VmHWM of the invoke process (pg_dump's own memory is the same for both
and not counted), read from /proc while it runs. Harness and order (alternated, >= 5 rounds): bench/common.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Contender, arguments, compare, invoke, parse, psql, report, throwaway_cluster

from ops.dsn import connect
from ops.pgtools import pg_bindir


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
    ap = arguments(__doc__, users=(150_000, 2_000))
    args = parse(ap)
    out = Path(tempfile.mkdtemp(prefix="pgops-bench-out-", dir="/tmp"))
    peaks: list[int] = []
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname=big"
        psql(st, "postgres", "-c", "CREATE DATABASE big")
        invoke("db.migrate", "--dsn", dsn, "--db", "syncscript")
        invoke("db.seed", "--dsn", dsn, "--users", str(args.users))
        psql(st, "big", "-c", "VACUUM ANALYZE")
        with connect(st.conninfo(), dbname="big") as conn:
            size = conn.execute("SELECT pg_database_size('big')").fetchone()[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

        def pgops(r):
            _, peak = run_watching_memory([str(Path(sys.executable).parent / "invoke"), "backup.create", "--dsn", dsn,
                                           "--repository", (out / f"repo{r}").as_uri()], cwd=REPO, env=env)
            peaks.append(peak)

        def raw(r):
            run_watching_memory([str(pg_bindir() / "pg_dump"), "-Fc", "-f", str(out / f"raw{r}.dump"),
                                 "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "big"],
                                env={**env, "PGPASSFILE": str(st.layout.passfile)})
        dump_size: list[int] = []

        def remove_raw(r):
            dump_size.append((out / f"raw{r}.dump").stat().st_size)
            (out / f"raw{r}.dump").unlink()
        results = compare([Contender("pgops backup.create", pgops, cleanup=lambda r: shutil.rmtree(out / f"repo{r}")),
                           Contender("pg_dump -Fc", raw, cleanup=remove_raw)], args.repeat)
    shutil.rmtree(out, ignore_errors=True)
    report(f"database {size / 1e9:.2f} GB, dump {dump_size[0] / 1e6:.0f} MB; pgops includes sha256, row counts, "
           "manifest", results, baseline="pg_dump -Fc")
    print(f"  pgops peak memory {max(peaks) / 1e6:.0f} MB (VmHWM of the invoke process; goal < 200 MB)")


if __name__ == "__main__":
    main()
