"""Seed 004 (Advent) moved online at a realistic size: legacy rows → v2 with writers running.

    .venv/bin/python bench/bench_transfer.py [--users 17000] [--repeat 5] [--writers 2] [--quick]

A private cluster (bench/common.py) is deployed (`invoke deploy --db advent`: legacy + v2, the
contract waiting) and seeded once (`invoke db.seed --db advent --users N`: ≈ 60 legacy rows per
account, 17,000 accounts ≈ 1.02 M rows). Each round works on a fresh copy (CREATE DATABASE …
TEMPLATE, untimed) and measures, through `invoke` as an operator runs it:

* `db.transfer` while ``--writers`` sessions write to the legacy tables (insert analytics events and
  chat messages, rename accounts, one statement per autocommit transaction): wall time, rows/s, the
  longest lock the transfer took (trigger install, final catch-up under SHARE locks) and the write
  pause the legacy writers saw (their slowest statement during the transfer, beside their slowest
  before it);
* after the writers stop, `db.transfer --resume` (catch-up) and `db.validate` (must pass);
* `db.migrate --yes` with its pre-contract backup (the contract drops the legacy tables);
* the rollback the seed promises in < 30 minutes: `backup.restore` of that pre-contract backup into an
  empty database, then the legacy row counts compared with the source.
"""
from __future__ import annotations

import json
import statistics
import threading
import time

from common import arguments, invoke, parse, psql, throwaway_cluster

from ops.dsn import connect


def dsn(st, db: str) -> str:
    p = st.conninfo()
    return f"host=127.0.0.1 port={p['port']} user=postgres dbname={db} passfile={p['passfile']}"


class Writers:
    """``n`` threads writing to legacy tables; records each statement's latency (seconds)."""

    def __init__(self, params: dict, db: str, n: int):
        self.params, self.db, self.n = params, db, n
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (start monotonic, latency)
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]

    def run(self, w: int) -> None:
        try:
            with connect(self.params, dbname=self.db, autocommit=True) as conn:
                i = 0
                while not self.stop.is_set():
                    i += 1
                    for q, a in (("INSERT INTO analytics_event (account_id, event_type, payload) VALUES (%s, 'day_open', "
                                  "jsonb_build_object('day', 3, 'ms', 120, 'calendar_id', %s))", (1 + i % 1000, 1 + i % 1000)),
                                 ("UPDATE account SET name = %s WHERE id = %s", (f"writer {w} {i}", 1 + (i * 7 + w) % 1000)),
                                 ("INSERT INTO chat_message (chat_id, role, content) VALUES (%s, 'user', %s)",
                                  (1 + i % 400, f"live {w}/{i} ✓"))):
                        t0 = time.monotonic()
                        conn.execute(q, a)
                        self.samples.append((t0, time.monotonic() - t0))
                    time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.errors.append(repr(exc))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def worst(self, start: float, end: float) -> float:
        return max((lat for t, lat in self.samples if start <= t <= end), default=0.0)

    def count(self, start: float, end: float) -> int:
        return sum(1 for t, _ in self.samples if start <= t <= end)


def run_json(*args: str) -> dict | list:
    res = invoke(*args, "--json", check=False)
    if res.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args[:1])} failed ({res.returncode}): {res.stderr}")
    return json.loads(res.stdout)


def main() -> None:
    args = parse(arguments(__doc__, users=(17_000, 300), writers=(2, 1)))
    rounds = []
    with throwaway_cluster() as st:
        env_db = {"PGOPS_STATE_DIR": str(st.layout.state_dir)}
        import os
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}, **env_db}
        invoke("deploy", "--db", "advent", env=env)
        seeded = json.loads(invoke("db.seed", "--db", "advent", "--users", str(args.users), "--json", env=env).stdout)
        legacy_rows = sum(seeded["rows"].values())
        print(f"seeded {legacy_rows:,} legacy rows in {seeded['seconds']:.1f} s", flush=True)
        psql(st, "postgres", "-c", "CHECKPOINT")
        params = st.conninfo()
        params.pop("dbname", None)
        for r in range(args.repeat):
            db = f"advent_r{r}"
            psql(st, "postgres", "-c", f"CREATE DATABASE {db} TEMPLATE advent")
            psql(st, "postgres", "-c", "CHECKPOINT")
            target = ["--dsn", dsn(st, db), "--db", "advent"]
            with Writers(params, db, args.writers) as w:
                time.sleep(2.0)
                t0 = time.monotonic()
                rep = run_json("db.transfer", *target)[0]
                t1 = time.monotonic()
                time.sleep(1.0)
            before = w.worst(0, t0)
            catch = run_json("db.transfer", *target, "--resume")[0]
            val = run_json("db.validate", *target)
            assert all(v["passed"] for v in val[db]["mappings"]), val
            repo = (st.layout.state_dir / "bench-repo").as_uri()
            counts = {t: n for t, n in connect(params, dbname=db, autocommit=True).execute(
                "SELECT 'account', count(*) FROM account UNION ALL SELECT 'chat_message', count(*) FROM chat_message "
                "UNION ALL SELECT 'analytics_event', count(*) FROM analytics_event")}
            t2 = time.monotonic()
            mig = invoke("db.migrate", *target, "--repository", repo, "--yes", check=False)
            t3 = time.monotonic()
            assert mig.returncode == 0, mig.stderr
            backup_id = next(line.split("pre-contract backup ")[1].split()[0] for line in mig.stdout.splitlines()
                             if "pre-contract backup " in line)
            psql(st, "postgres", "-c", f"CREATE DATABASE {db}_restored")
            t4 = time.monotonic()
            res = invoke("backup.restore", backup_id, "--dsn", dsn(st, f"{db}_restored"), "--repository", repo,
                         "--yes-overwrite-primary",
                         env=env, check=False)
            t5 = time.monotonic()
            assert res.returncode == 0, res.stderr
            with connect(params, dbname=f"{db}_restored", autocommit=True) as conn:
                back = {t: n for t, n in conn.execute(
                    "SELECT 'account', count(*) FROM account UNION ALL SELECT 'chat_message', count(*) FROM chat_message "
                    "UNION ALL SELECT 'analytics_event', count(*) FROM analytics_event")}
            assert back == counts, (back, counts)
            rounds.append({"transfer_s": rep["seconds"], "rows": rep["rows_copied"] + rep["quarantined"],
                           "rate": (rep["rows_copied"] + rep["quarantined"]) / rep["seconds"],
                           "quarantined": rep["quarantined"], "caught_up": rep["caught_up"] + catch["caught_up"],
                           "longest_lock_ms": rep["longest_lock_ms"], "final_lock_ms": rep["final_lock_ms"],
                           "trigger_lock_ms": rep["trigger_lock_ms"], "write_pause_ms": w.worst(t0, t1) * 1000,
                           "write_pause_before_ms": before * 1000, "writes": w.count(t0, t1),
                           "contract_with_backup_s": t3 - t2, "restore_s": t5 - t4, "writer_errors": w.errors})
            print(json.dumps(rounds[-1]), flush=True)
            for d in (db, f"{db}_restored"):
                psql(st, "postgres", "-c", f"DROP DATABASE {d}")
    print(f"\nAdvent transfer, {legacy_rows:,} legacy rows, {args.writers} writer(s), {len(rounds)} round(s): "
          "median (min–max)")
    for key, unit in (("transfer_s", "s"), ("rate", "rows/s"), ("longest_lock_ms", "ms"), ("final_lock_ms", "ms"),
                      ("trigger_lock_ms", "ms"), ("write_pause_ms", "ms"), ("write_pause_before_ms", "ms"),
                      ("writes", ""), ("caught_up", ""), ("quarantined", ""), ("contract_with_backup_s", "s"),
                      ("restore_s", "s")):
        vals = [r[key] for r in rounds]
        print(f"  {key:24} {statistics.median(vals):>12,.1f} ({min(vals):,.1f}–{max(vals):,.1f}) {unit}")


if __name__ == "__main__":
    main()
