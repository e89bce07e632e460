"""Seed 002's "rollback in under 15 minutes", measured: fluxstudio seeded with --users N on a fresh
local stack, then `invoke db.rollback --db fluxstudio --steps 4 --yes` (its pre-rollback backup
included) timed, then the pre-migration backup restored into an empty database with
`invoke backup.restore` and timed.

    .venv/bin/python bench/bench_fluxstudio_rollback.py --users 20000
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.conftest import destroy, free_base_port, invoke, state_dir  # noqa: E402
from ops.local.cluster import open_stack  # noqa: E402
from ops.dsn import connect  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20000)
    args = ap.parse_args()
    sd = state_dir() / "stack"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(1))}

    def run(*argv):
        t0 = time.monotonic()
        res = invoke(list(argv), env, timeout=3600)
        if res.returncode:
            raise SystemExit(f"{argv}: exit {res.returncode}\n{res.stderr[-2000:]}")
        return res, time.monotonic() - t0
    try:
        run("local.up", "--replicas", "0")
        run("deploy", "--db", "fluxstudio")
        seeded, seed_s = run("db.seed", "--db", "fluxstudio", "--users", str(args.users), "--json")
        rows = sum(json.loads(seeded.stdout)["rows"].values()) if "rows" in seeded.stdout else None
        backup, backup_s = run("backup.create", "--db", "fluxstudio", "--json")
        made = json.loads(backup.stdout)[0]
        _, rollback_s = run("db.rollback", "--db", "fluxstudio", "--steps", "4", "--yes")
        stack = open_stack(sd)
        with connect(stack.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE flux_restored")
        p = stack.conninfo()
        dsn = f"host={p['host']} port={p['port']} user={p['user']} dbname=flux_restored passfile={p.get('passfile', '')}"
        _, restore_s = run("backup.restore", made["id"], "--dsn", dsn, "--yes-overwrite-primary")  # a fresh database on the same server
        print(json.dumps({"users": args.users, "rows": rows, "seed_s": round(seed_s, 1), "backup_s": round(backup_s, 1),
                          "dump_bytes": made["size_bytes"], "rollback_4_with_backup_s": round(rollback_s, 1),
                          "restore_s": round(restore_s, 1)}))
    finally:
        destroy(open_stack(sd))


if __name__ == "__main__":
    main()
