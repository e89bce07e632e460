"""`invoke db.seed --users N` on a freshly deployed syncscript database (issue 2: 100,000 users
in under a minute here), beside `psql -f` replaying a plain-SQL dump of the same rows.

    .venv/bin/python bench/bench_seed.py [--users 100000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, psql, throwaway_cluster, timed

from ops.local.cluster import pg_bindir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    bin_dir = Path(sys.executable).parent
    with throwaway_cluster() as st:
        port = st.layout.primary.port
        base = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile}"
        for db in ("seeded", "replayed"):
            psql(st, "postgres", "-c", f"CREATE DATABASE {db}")
            subprocess.run([str(bin_dir / "invoke"), "db.migrate", "--dsn", f"{base} dbname={db}", "--db",
                            "syncscript"], cwd=REPO, check=True, capture_output=True)
        seed_s = timed(lambda: subprocess.run(
            [str(bin_dir / "invoke"), "db.seed", "--dsn", f"{base} dbname=seeded", "--users", str(args.users),
             "--json"], cwd=REPO, check=True, capture_output=True))
        with tempfile.NamedTemporaryFile(suffix=".sql") as dump:
            subprocess.run([str(pg_bindir() / "pg_dump"), "--data-only", "--disable-triggers", "-h", "127.0.0.1",
                            "-p", str(port), "-U", "postgres", "-d", "seeded", "-n", "public", "-f", dump.name],
                           env={**os.environ, "PGPASSFILE": str(st.layout.passfile)}, check=True)
            replay_s = timed(lambda: psql(st, "replayed", "-1", "-f", dump.name))
    print(f"db.seed --users {args.users}: {seed_s:.1f} s (generate + load + index + FK check + ANALYZE)")
    print(f"psql -1 -f of a pg_dump --data-only of the same rows: {replay_s:.1f} s   ratio {seed_s / replay_s:.2f}")


if __name__ == "__main__":
    main()
