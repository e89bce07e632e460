"""Start-up cost of a read task: `invoke db.status --dsn ...` beside `psql -X -c 'select 1'` against
the same migrated database (issue 9 §7: goal, a read task under 0.2 s median here).

    .venv/bin/python bench/bench_startup.py [--repeat 20] [--quick]

Both are whole processes started from a shell's point of view (interpreter start, imports, connect,
query, exit). Harness and order: bench/common.py.
"""
from __future__ import annotations

import os
import statistics
import subprocess

from common import Contender, arguments, compare, invoke, parse, psql, report, throwaway_cluster

from ops.pgtools import pg_bindir

GOAL_S = 0.2


def main() -> None:
    ap = arguments(__doc__)
    ap.set_defaults(repeat=20)
    args = parse(ap)
    if args.quick:
        args.repeat = 3
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname=syncscript"
        psql(st, "postgres", "-c", "CREATE DATABASE syncscript")
        invoke("db.migrate", "--dsn", dsn, "--db", "syncscript")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PGOPS_"))}
        codes: list[int] = []

        def status(_r):
            codes.append(invoke("db.status", "--dsn", dsn, env=env, check=False).returncode)

        def select_1(_r):
            subprocess.run([str(pg_bindir() / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                            "-d", "syncscript", "-c", "select 1"], env={**env, "PGPASSFILE": str(st.layout.passfile)},
                           check=True, capture_output=True)
        status(0)  # one untimed run: a first-ever run compiles .pyc files, which no user pays twice
        codes.clear()
        results = compare([Contender("invoke db.status --dsn", status), Contender("psql -X -c 'select 1'", select_1)],
                          args.repeat)
    report("start-up of a read task", results, baseline="psql -X -c 'select 1'")
    median = statistics.median(results["invoke db.status --dsn"])
    print(f"  goal: db.status median < {GOAL_S} s: {'met' if median < GOAL_S else 'NOT met'}"
          f"; db.status exit codes {sorted(set(codes))}")


if __name__ == "__main__":
    main()
