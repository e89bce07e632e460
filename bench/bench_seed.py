"""`invoke db.seed --users N` beside `psql -f` loading the same rows the same way (issue 2: 100,000
users in under a minute here; issue 9 §7: the baseline does the same work).

    .venv/bin/python bench/bench_seed.py [--users 100000] [--repeat 5] [--quick]

Same work on both sides, into a fresh migrated syncscript database each run (cloned from a template):
one transaction with ``session_replication_role = replica`` (per-row FK triggers off), the secondary
indexes dropped before the load and rebuilt after it, every foreign key checked once set-wise
(the same anti-joins as ``sql/syncscript/seed.py``), commit, ``ANALYZE``. What differs is only where the rows
come from: pgops generates them in the server (``INSERT ... SELECT generate_series``); the baseline
``COPY``s a ``pg_dump --data-only`` of the rows pgops generated. pgops' time includes its interpreter
start-up. Harness and order: bench/common.py.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from common import Contender, FreshDatabases, arguments, compare, invoke, parse, psql, report, throwaway_cluster

from ops.dsn import connect
from ops.pgtools import pg_bindir
from ops.seeds import load_seeder
from ops.settings import DEFAULT_SQL_ROOT

TABLES = load_seeder(DEFAULT_SQL_ROOT, "syncscript").TABLES

SECONDARY_INDEXES = (
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(i.indexrelid) "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)")
FOREIGN_KEYS = (
    "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, a.attname, af.attname "
    "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
    "WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND cardinality(c.conkey) = 1")


def baseline_script(conn, data_file: Path) -> str:
    """The psql script doing pgops' seed work around a COPY of ``data_file``."""
    drops, creates = [], []
    for t in TABLES:
        for name, definition in conn.execute(SECONDARY_INDEXES, (f"public.{t}",)).fetchall():
            drops.append(f"DROP INDEX {name};")
            creates.append(definition + ";")
    checks = [f"SELECT count(*) FROM public.{child} ch WHERE ch.{col} IS NOT NULL AND NOT EXISTS "
              f"(SELECT 1 FROM public.{parent} p WHERE p.{pcol} = ch.{col});"
              for child, parent, col, pcol in conn.execute(FOREIGN_KEYS).fetchall()]
    return "\n".join([
        "BEGIN;", "SET LOCAL max_parallel_workers_per_gather = 0;", "SET LOCAL synchronous_commit = off;",
        "SET LOCAL session_replication_role = replica;", "SET LOCAL maintenance_work_mem = '256MB';",
        *drops, f"\\i {data_file}", *creates, "SET LOCAL session_replication_role = origin;", *checks,
        "COMMIT;", "ANALYZE;", ""])


def main() -> None:
    ap = arguments(__doc__, users=(100_000, 2_000))
    args = parse(ap)
    with throwaway_cluster() as st, tempfile.TemporaryDirectory(prefix="pgops-bench-seed-") as tmp:
        port = st.layout.primary.port
        base = f"host=127.0.0.1 port={port} user=postgres passfile={st.layout.passfile}"
        psql(st, "postgres", "-c", "CREATE DATABASE seed_template")
        invoke("db.migrate", "--dsn", f"{base} dbname=seed_template", "--db", "syncscript")
        psql(st, "postgres", "-c", "CREATE DATABASE seed_source TEMPLATE seed_template")
        invoke("db.seed", "--dsn", f"{base} dbname=seed_source", "--users", str(args.users))
        data = Path(tmp) / "rows.sql"
        subprocess.run([str(pg_bindir() / "pg_dump"), "--data-only", *[f"--table=public.{t}" for t in TABLES],
                        "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "seed_source", "-f", str(data)],
                       env={**os.environ, "PGPASSFILE": str(st.layout.passfile)}, check=True)
        psql(st, "postgres", "-c", "DROP DATABASE seed_source")
        script = Path(tmp) / "load.sql"
        with connect(st.conninfo(), dbname="seed_template") as conn:
            script.write_text(baseline_script(conn, data))
        fresh = FreshDatabases(st, "seed", template="seed_template")
        dbs = fresh.dbs

        results = compare([
            Contender("pgops db.seed", lambda _r: invoke("db.seed", "--dsn", f"{base} dbname={dbs['pgops']}",
                                                         "--users", str(args.users), "--json"),
                      fresh.prepare("pgops"), fresh.drop("pgops")),
            Contender("psql: same load, COPY of the rows", lambda _r: psql(st, dbs["psql"], "-f", str(script)),
                      fresh.prepare("psql"), fresh.drop("psql")),
        ], args.repeat)
    report(f"seed of {args.users} users (load, index rebuild, FK check, ANALYZE)", results,
           baseline="psql: same load, COPY of the rows")


if __name__ == "__main__":
    main()
