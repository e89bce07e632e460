"""The responder's path for "a table was dropped" (issue 12: under 10 minutes for syncscript seeded with
100,000 users): from the alert to the table back, following runbooks/table-dropped-or-rows-deleted.md.

    .venv/bin/python bench/bench_table_restore.py [--users 100000] [--repeat 5] [--quick]

A private stack (bench/common.py's throwaway cluster) is deployed, seeded and backed up once. Each round,
untimed, drops ``public.users`` with CASCADE (every foreign key other tables held on it goes too); the
timed part runs the runbook's fenced commands of steps 1 and 2, read from the Markdown as the game day
reads them (``backup.list``, then ``backup.restore latest --table public.users --yes``: the schema and the
table's rows into a scratch database, the table with its indexes and constraints into the live one, the
incoming foreign keys re-added and validated, the row count re-checked), each through ``invoke`` with its
interpreter start-up. Each round checks the table holds the seeded rows and its foreign keys again.
"""
from __future__ import annotations

import os
import shlex

from common import Contender, arguments, compare, invoke, parse, psql, report, throwaway_cluster

from ops.dsn import connect
from ops.runbooks import fill, parse as parse_runbook
from ops.settings import PROJECT_DIR

RUNBOOK = "table-dropped-or-rows-deleted.md"
VALUES = {"<database>": "syncscript", "<schema.table>": "public.users"}
INCOMING = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.users'::regclass"


def main() -> None:
    args = parse(arguments(__doc__, users=(100_000, 500)))
    book = parse_runbook(f"runbooks/{RUNBOOK}", (PROJECT_DIR / "runbooks" / RUNBOOK).read_text())
    commands = [shlex.split(fill(c, VALUES))[1:] for c in book.step_commands(1, 2)]
    with throwaway_cluster() as st:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")},
               "PGOPS_STATE_DIR": str(st.layout.state_dir)}
        invoke("deploy", env=env)
        invoke("db.seed", "--db", "syncscript", "--users", str(args.users), env=env)
        invoke("backup.create", "--db", "syncscript", env=env)
        params = st.conninfo()
        params.pop("dbname")
        with connect(params, dbname="syncscript", autocommit=True) as conn:
            users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
            incoming = conn.execute(INCOMING).fetchone()[0]
        print(f"syncscript: {users:,} users, {incoming} foreign keys point at users; runbook steps 1-2: "
              + " ; ".join("invoke " + " ".join(c) for c in commands), flush=True)

        def drop(_round):
            psql(st, "syncscript", "-c", "DROP TABLE public.users CASCADE")

        def respond(_round):
            for c in commands:
                invoke(*c, env=env)

        def check(_round):
            with connect(params, dbname="syncscript", autocommit=True) as conn:
                back = (conn.execute("SELECT count(*) FROM users").fetchone()[0], conn.execute(INCOMING).fetchone()[0])
            if back != (users, incoming):
                raise SystemExit(f"restore incomplete: {back} (users, incoming foreign keys), expected {(users, incoming)}")
        results = compare([Contender("alert -> table back (runbook steps 1-2)", respond, drop, check)], args.repeat,
                          progress=print)
    report(f"table restore, syncscript with {args.users:,} users (goal: under 600 s)", results,
           "alert -> table back (runbook steps 1-2)")


if __name__ == "__main__":
    main()
