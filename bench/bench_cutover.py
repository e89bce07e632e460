"""Blue/green cutover under load (issue 11): the write pause callers see, and proof per switch that no
acknowledged write was lost or duplicated.

    .venv/bin/python bench/bench_cutover.py [--repeat 20] [--rate 200] [--scale 10] [--quick]

A private stack (bench/common.py's throwaway cluster, with its PgBouncer) holds a pgbench database
(``pgbench -i``; ``pgbench_history`` gets a bigserial primary key, so sequences matter and logical
replication can carry it). ``LocalCutover.prepare`` makes green once. Then ``--repeat`` times: a
cutover (blue → green) and a rollback (green → blue), each while

* pgbench runs through the pooler at a fixed rate (``-M simple -R RATE``, 4 clients), and
* two probe writers insert ``(writer, seq)`` rows through the pooler as fast as they are
  acknowledged, logging the time of every acknowledgement, with pooler-safe settings
  (``prepare_threshold=None``), and
* two more with psycopg's defaults (the same INSERT prepared server-side from its 5th execution),
  as an application that was not told about the pooler connects (README "Connecting applications":
  PgBouncer < 1.21 cannot keep prepared statements in transaction pooling; from 1.21 ``local.up``
  sets ``max_prepared_statements`` and these must fail nothing either).

Per switch it measures: the write pause — the largest gap between consecutive acknowledged probe
writes (merged over both writers) in the window around the switch; the engine's own phase times;
pgbench's failed transactions and aborted clients; each kind of probe client's failed
transactions; probe rows acknowledged but missing on the new primary (lost) or present twice
(duplicated); duplicate-key errors after the switch. After the last
round ``cutover.finish`` runs and the replication slots left on any server are counted.

There is no raw tool to run beside it (nothing else cuts over a local cluster); the figures are the
distribution itself, p50 / p99 / max over every switch. Goal: p50 ≤ 250 ms, max ≤ 1 s, 0 failed
transactions (pgbench and the pooler-safe clients; the driver-defaults clients too on PgBouncer ≥ 1.21),
0 lost or duplicated rows, 0 slots left, in every run each way.
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time

from common import arguments, parse, psql, throwaway_cluster

from ops.cutover.local import LocalCutover
from ops.local.cluster import installed_pgbouncer_version
from ops.local.layout import format_version, prepared_statements_note
from ops.dsn import connect
from ops.pgtools import pg_bindir


class Probe:
    """Writers through the pooler; ``acks`` holds (monotonic time, writer, seq) of every acknowledged insert."""

    def __init__(self, params: dict, first_writer: int, writers: int = 2, defaults: bool = False):
        self.params = dict(params) if defaults else {**params, "prepare_threshold": None}
        self.acks: list[tuple[float, int, int]] = []
        self.errors: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(first_writer + w,), daemon=True)
                        for w in range(writers)]

    def _write(self, writer: int) -> None:
        conn, seq = None, 0
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.params, dbname="bench", autocommit=True, connect_timeout=5)
                seq += 1
                conn.execute("INSERT INTO probe (writer, seq) VALUES (%s, %s)", (writer, seq))
                with self.lock:
                    self.acks.append((time.monotonic(), writer, seq))
            except Exception as exc:  # measured: counted and reported, never hidden
                with self.lock:
                    self.errors.append((time.monotonic(), str(exc).splitlines()[0]))
                conn = None
                time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def pgbench(st, port: int, rate: int, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(pg_bindir() / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-M", "simple",
         "-R", str(rate), "-c", "4", "-j", "2", "-T", str(seconds), "bench"],
        env={**os.environ, "PGPASSFILE": str(st.layout.passfile)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def pgbench_failures(out: str, err: str) -> tuple[int, int, int]:
    """(transactions processed, failed transactions, aborted clients) from pgbench's report."""
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    aborted = len(re.findall(r"client \d+ aborted", err))
    return int(done.group(1)) if done else 0, int(failed.group(1)) if failed else 0, aborted


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = arguments(__doc__, scale=(10, 1), rate=(200, 50))
    ap.set_defaults(repeat=20)
    args = parse(ap)
    rounds = max(args.repeat, 2)
    with throwaway_cluster() as st:
        psql(st, "postgres", "-c", "CREATE DATABASE bench")
        subprocess.run([str(pg_bindir() / "pgbench"), "-i", "-q", "-s", str(args.scale), "-h", "127.0.0.1", "-p",
                        str(st.layout.primary.port), "-U", "postgres", "bench"],
                       env={**os.environ, "PGPASSFILE": str(st.layout.passfile)}, check=True, capture_output=True)
        psql(st, "bench", "-c", "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY",
             "-c", "CREATE TABLE probe (id bigserial PRIMARY KEY, writer int NOT NULL, seq int NOT NULL, "
                   "at timestamptz NOT NULL DEFAULT clock_timestamp(), UNIQUE (writer, seq))")
        cut = LocalCutover(st)
        t0 = time.monotonic()
        cut.prepare(["bench"])
        print(f"prepare: {time.monotonic() - t0:.1f} s (scale {args.scale})", flush=True)
        pooler = st.pooler_conninfo()
        rows = {"run": [], "rollback": []}
        for r in range(rounds):
            for action in ("run", "rollback"):
                bench = pgbench(st, pooler["port"], args.rate, 4)
                first = 10 * (2 * r + (action == "rollback"))
                with Probe(pooler, first_writer=first) as probe, \
                        Probe(pooler, first_writer=first + 5, defaults=True) as dprobe:
                    time.sleep(1.0)
                    t_switch = time.monotonic()
                    rep = getattr(cut, action)(budget_ms=2000)
                    t_done = time.monotonic()
                    time.sleep(1.0)
                out, err = bench.communicate(timeout=60)
                done, failed, aborted = pgbench_failures(out, err)
                acks = sorted(probe.acks)
                dacks = sorted(dprobe.acks)
                window = [a[0] for a in acks if t_switch - 0.5 <= a[0] <= t_done + 0.5]
                gap = max((b - a for a, b in zip(window, window[1:])), default=float("nan"))
                new_side = cut._side("green" if action == "run" else "blue")
                with new_side.connect("bench") as conn:
                    have = conn.execute("SELECT writer, seq, count(*) FROM probe GROUP BY 1, 2").fetchall()
                counts = {(w, s): n for w, s, n in have}
                lost = sum(1 for _, w, s in acks + dacks if (w, s) not in counts)
                dup = sum(1 for n in counts.values() if n > 1)
                dupkey = sum(1 for t, e in probe.errors + dprobe.errors if t >= t_switch and "duplicate key" in e)
                rows[action].append({"pause_ms": gap * 1000, "engine_pause_ms": rep["write_pause_ms"],
                                     "phases": rep["phases_ms"], "failed": failed, "aborted": aborted,
                                     "done": done, "lost": lost, "dup": dup, "dupkey": dupkey,
                                     "probe_errors": len(probe.errors), "defaults_errors": len(dprobe.errors),
                                     "passed": rep["passed"]})
                print(f"round {r + 1}/{rounds} {action:8s}: pause {gap * 1000:7.1f} ms (engine "
                      f"{rep['write_pause_ms']} ms), pgbench {done} tx / {failed} failed / {aborted} aborted, "
                      f"lost {lost}, dup {dup}, dup-key errors {dupkey}, failed tx: pooler-safe {len(probe.errors)}, "
                      f"driver defaults {len(dprobe.errors)}", flush=True)
        fin = cut.finish()
        left = 0
        for node in st.layout.nodes:
            with connect(st.conninfo(node), dbname="postgres", autocommit=True) as conn:
                left += conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0]
        print(f"finish: primary {fin['primary']}, replication slots left on any server: {left}")
        print(f"\nPgBouncer {format_version(installed_pgbouncer_version())}: "
              + (prepared_statements_note(installed_pgbouncer_version()) or "prepared statements pass through"))
        print(f"\ncutover under pgbench -R {args.rate} -c 4 through PgBouncer, {rounds} switches each way:")
        print(f"  {'':24s} {'cutover':>22s} {'rollback':>22s}")

        def line(name, fn):
            print(f"  {name:24s} {fn(rows['run']):>22s} {fn(rows['rollback']):>22s}")
        for q, label in ((0.5, "write pause p50 (ms)"), (0.99, "write pause p99 (ms)"), (1.0, "write pause max (ms)")):
            line(label, lambda rs, q=q: f"{pct([x['pause_ms'] for x in rs], q):.0f}")
        line("engine pause p50 (ms)", lambda rs: f"{statistics.median(x['engine_pause_ms'] for x in rs):.0f}")
        for phase in ("pause", "fence", "fence_row", "stop_incoming", "sequences", "start_reverse", "repoint",
                      "resume", "verify"):
            line(f"  {phase} p50 (ms)", lambda rs, p=phase: f"{statistics.median(x['phases'].get(p, 0) for x in rs):.1f}")
        line("pgbench tx / failed", lambda rs: f"{sum(x['done'] for x in rs)} / {sum(x['failed'] + x['aborted'] for x in rs)}")
        line("failed tx pooler-safe", lambda rs: str(sum(x["probe_errors"] for x in rs)))
        line("failed tx defaults", lambda rs: str(sum(x["defaults_errors"] for x in rs)))
        line("lost / duplicated rows", lambda rs: f"{sum(x['lost'] for x in rs)} / {sum(x['dup'] for x in rs)}")
        line("dup-key errors after", lambda rs: str(sum(x["dupkey"] for x in rs)))
        line("verified at the fence", lambda rs: f"{sum(x['passed'] for x in rs)}/{len(rs)}")
        print(f"  slots left after finish: {left}")


if __name__ == "__main__":
    main()
