"""Long work shows progress on a terminal (rows or bytes, and a rate) and stays quiet in a pipe."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, invoke

pytestmark = pytest.mark.integration


def on_terminal(args: list[str], env_extra: dict) -> tuple[int, str]:
    """Run ``invoke ARGS`` with stdin/stdout/stderr on a pseudo-terminal; returns (exit code, output)."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
    env.update(env_extra, COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), *args], cwd=REPO, env=env,
                            stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_seed_and_backup_show_rows_bytes_and_rates_on_a_terminal_only(pg, params, dbname, tmp_path):
    from ops.migrations.runner import Target, migrate
    from ops.settings import DEFAULT_SQL_ROOT
    from ops.targets import migrations_dir
    migrate(Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, "syncscript")))
    dsn = f"host=127.0.0.1 port={params['port']} user=postgres dbname={dbname} passfile={params['passfile']}"
    code, out = on_terminal(["db.seed", "--dsn", dsn, "--users", "300"], {})
    assert code == 0, out
    assert "rows/s" in out and "seeding" in out
    url = (tmp_path / "repo").as_uri()
    code, out = on_terminal(["backup.create", "--dsn", dsn, "--repository", url], {})
    assert code == 0, out
    # bytes streamed so far (the rate column fills in once rich has two samples: longer dumps)
    assert "pg_dump" in out and ("kB" in out or "MB" in out)
    piped = invoke(["backup.create", "--dsn", dsn, "--repository", url])
    assert piped.returncode == 0 and "/s" not in piped.stderr  # no bar in a pipe
