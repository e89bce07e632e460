"""Discover (read, checksum, parse) one generated data migration of many INSERTs, as every
command that discovers migrations does, and print the time and the peak memory of the process.

    .venv/bin/python bench/bench_parse.py [--mb 4 50] [--repeat 1]

Each measurement runs in a fresh child process, so its peak resident set size (ru_maxrss) is the
cost of that one discovery plus the interpreter (printed alongside: "interpreter alone"). The rows
hold ';', '--' and '/*' inside strings (so the splitter must look at every statement's tail).
Issue 9 §1: before, 4 MB took 34 s / 301 MB and 50 MB did not finish in 300 s (2.3 GB).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO


def write_migration(root: Path, megabytes: float) -> tuple[Path, int]:
    """``root/migrations/0001_data/up.sql`` of about ``megabytes`` MB; returns (folder, statements)."""
    folder = root / "migrations" / "0001_data"
    folder.mkdir(parents=True)
    target = int(megabytes * 1_000_000)
    written = n = 0
    with open(folder / "up.sql", "w", encoding="utf-8") as f:
        f.write("-- generated data migration\nCREATE TABLE items (id bigint PRIMARY KEY, name text, note text);\n")
        while written < target:
            rows = []
            for _ in range(1000):
                n += 1
                rows.append(f"INSERT INTO items (id, name, note) VALUES ({n}, 'name {n}', "
                            f"'a note; with -- dashes and /* stars */ and café');\n")
            chunk = "".join(rows)
            f.write(chunk)
            written += len(chunk.encode("utf-8"))
    return folder.parent, n + 1


CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from ops.migrations.discovery import discover
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
chain = discover(Path(sys.argv[1]))
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "statements": len(chain[0].up.statements),
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "base_kb": base}))
"""


def measure(mdir: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(mdir), str(REPO)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, nargs="+", default=[4, 50])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print("discover() of one data migration (read + sha256 + parse), fresh process each run:")
    for mb in args.mb:
        work = Path(tempfile.mkdtemp(prefix="pgops-bench-parse-"))
        try:
            mdir, count = write_migration(work, mb)
            size = (mdir / "0001_data" / "up.sql").stat().st_size
            runs = [measure(mdir) for _ in range(args.repeat)]
            secs = [r["seconds"] for r in runs]
            peak = max(r["peak_kb"] for r in runs) / 1024
            base = min(r["base_kb"] for r in runs) / 1024
            assert all(r["statements"] == count for r in runs)
            print(f"  {size / 1e6:6.1f} MB, {count:,} statements: median {statistics.median(secs):6.2f} s "
                  f"(min {min(secs):.2f}, max {max(secs):.2f}), peak RSS {peak:6.0f} MiB "
                  f"(interpreter alone {base:.0f} MiB), {size / 1e6 / statistics.median(secs):.1f} MB/s")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
