"""FutureSync (seed 001, issue 13): `invoke db.seed --db futuresync --users N` (the plan's `seeds:perf 5000`)
and then one `invoke db.partitions --apply --yes` on the seeded database, both timed end to end (interpreter
start-up included).

    .venv/bin/python bench/bench_futuresync.py [--users 5000] [--repeat 5] [--quick]

Each round works on a fresh database cloned from a migrated template on a throwaway cluster. The seed
fills 14 past months of `analytics_events` and `audit_log` partitions (made first by pgops's own
partition code); the partitions run then detaches CONCURRENTLY and drops the one month
`analytics_events`' 13-month retention lets go, and finds every premake month present. There is no raw
tool to compare with (pg_partman is what pgops replaces here), so the figures stand alone: median (min–max).
"""
from __future__ import annotations

import json
import statistics
import time

from common import FreshDatabases, arguments, invoke, parse, psql, throwaway_cluster

from ops.migrations import runner
from ops.migrations.runner import Target
from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir


def main() -> None:
    args = parse(arguments(__doc__, users=(5000, 200)))
    with throwaway_cluster() as st:
        psql(st, "postgres", "-c", "CREATE DATABASE fs_template")
        params = st.conninfo()
        params.pop("dbname", None)
        runner.migrate(Target("fs_template", params, migrations_dir(DEFAULT_SQL_ROOT, "futuresync")))
        fresh = FreshDatabases(st, "fs_bench", template="fs_template")
        seed_s, part_s, rows, did = [], [], {}, {}
        for r in range(args.repeat):
            fresh.prepare("x")(r)
            db = fresh.dbs["x"]
            dsn = f"host=127.0.0.1 port={params['port']} user=postgres passfile={params['passfile']} dbname={db}"
            t0 = time.perf_counter()
            seeded = invoke("db.seed", "--dsn", dsn, "--db", "futuresync", "--users", str(args.users), "--json")
            seed_s.append(time.perf_counter() - t0)
            rows = json.loads(seeded.stdout)["rows"]
            t0 = time.perf_counter()
            out = invoke("db.partitions", "--dsn", dsn, "--db", "futuresync", "--apply", "--yes", "--json")
            part_s.append(time.perf_counter() - t0)
            applied = json.loads(out.stdout)[db]["applied"]
            did = {k: sum(a["kind"] == k for a in applied) for k in ("create", "finalize", "detach", "archive", "drop")}
            fresh.drop("x")(r)
            print(f"round {r + 1}: seed {seed_s[-1]:.2f} s, partitions {part_s[-1]:.2f} s", flush=True)
    total = sum(rows.values())
    print(f"\nFutureSync, {args.users:,} users, {total:,} rows ({', '.join(f'{k} {v:,}' for k, v in rows.items())})")
    for name, xs in (("db.seed --db futuresync", seed_s), ("db.partitions --apply", part_s)):
        print(f"  {name:28s} median {statistics.median(xs):.2f} s ({min(xs):.2f}–{max(xs):.2f}), {len(xs)} rounds")
    print(f"  partitions run did: {did}")


if __name__ == "__main__":
    main()
