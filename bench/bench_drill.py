"""`invoke drill.run` of a >= 1 GB database's logical backup beside the same drill done by hand with
the raw tools: initdb + start a cluster, createdb, `pg_restore -j 2`, `vacuumdb --analyze-only`, stop
and remove it (issue 5: ratio goal <= 1.15; what pgops adds is the fetch + sha256 and the checks).

    .venv/bin/python bench/bench_drill.py [--users 170000] [--repeat 5] [--quick]

Both targets are fresh clusters on this machine with the same settings (ops.drills.runner's
DRILL_SETTINGS); the drill also fetches and hashes the object, counts every table, analyzes, runs
every verify.sql and drill check, and tears its cluster down. Each round restores into a new
cluster; order alternates (bench/common.py), so neither side always runs first.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import statistics
import tempfile
from pathlib import Path

from common import Contender, arguments, compare, free_port, invoke, parse, psql, report, throwaway_cluster

from ops.dsn import connect
from ops.drills.runner import DRILL_SETTINGS, JOBS
from ops.local.cluster import open_stack
from ops.pgtools import pg_bindir


def main() -> None:
    ap = arguments(__doc__, users=(170_000, 2_000))
    args = parse(ap)
    out = Path(tempfile.mkdtemp(prefix="pgops-bench-drill-", dir="/tmp"))
    os.chmod(out, 0o755)
    repo = (out / "repo").as_uri()
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname=syncscript"
        psql(st, "postgres", "-c", "CREATE DATABASE syncscript")
        for step in (["db.migrate", "--db", "syncscript"], ["db.seed", "--users", str(args.users)],
                     ["backup.create", "--repository", repo]):
            invoke(*step, "--dsn", dsn)
        with connect(st.conninfo(), dbname="syncscript") as conn:
            size = conn.execute("SELECT pg_database_size('syncscript')").fetchone()[0]
    # the source server is gone now: its autovacuum must not compete with either restore
    dump = next((out / "repo").rglob("dump.pgdump"))
    phases: list[dict] = []
    targets: dict[int, object] = {}

    def drill(r):
        res = invoke("drill.run", "--dsn", dsn, "--repository", repo, "--json", str(out / f"drill{r}.json"), check=False)
        if res.returncode != 0:
            raise SystemExit(f"drill.run failed (exit {res.returncode}): {res.stderr[-800:]}")
        phases.append(json.loads((out / f"drill{r}.json").read_text())["phases"])

    def by_hand(r):  # the same drill with the raw tools: the same cluster settings, the same restore, analyze
        t = open_stack(out / f"raw{r}", port=free_port(), replicas=0, extra_settings=DRILL_SETTINGS, throwaway=True)
        targets[r] = t
        t.up()
        psql(t, "postgres", "-c", "CREATE DATABASE syncscript")
        env = {**os.environ, "PGPASSFILE": str(t.layout.passfile)}
        conn = ["-h", "127.0.0.1", "-p", str(t.layout.primary.port), "-U", "postgres"]
        subprocess.run([str(pg_bindir() / "pg_restore"), "-j", str(JOBS), "--no-owner", *conn, "-d", "syncscript",
                        str(dump)], env=env, check=True, capture_output=True)
        subprocess.run([str(pg_bindir() / "vacuumdb"), "--analyze-only", f"--jobs={JOBS}", *conn, "syncscript"],
                       env=env, check=True, capture_output=True)
        targets.pop(r).down(purge=True)
    raw = f"by hand: initdb, pg_restore -j {JOBS}, analyze, teardown"
    try:
        results = compare([Contender("pgops drill.run (whole drill)", drill), Contender(raw, by_hand)], args.repeat)
    finally:
        for t in targets.values():
            t.down(purge=True)
        dump_mb = dump.stat().st_size / 1e6 if dump.exists() else 0
        shutil.rmtree(out, ignore_errors=True)
    report(f"database {size / 1e9:.2f} GB, dump {dump_mb:.0f} MB; both make, fill, analyze and remove a cluster; "
           f"the drill also fetches + hashes the object and runs every check", results, baseline=raw)
    print("  drill phases, median: " + ", ".join(
        f"{k} {statistics.median(p[k] for p in phases):.1f} s" for k in phases[0]))


if __name__ == "__main__":
    main()
