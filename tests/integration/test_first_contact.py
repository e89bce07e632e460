"""First contact (issue 19 §1): `invoke local.up` run as root, as the README's Quickstart runs it, in
each way the server user's path to the state directory can be barred — a checkout whose `.pgops` was
made 0700 by the repository helper, a `PGOPS_STATE_DIR` whose parents do not exist yet, umask 077,
a 0700 directory above the stack (a home such as /root). Either the stack comes up with only search
bits added (never read on secrets or backups), or the task refuses before creating anything, naming
the directory and the fix."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ops.pgtools import as_server_user

from .conftest import REPO, free_base_port, state_dir

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not as_server_user(), reason="the server user differs from ours only as root")]


def local(args, cwd, env_extra, umask="022"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
    env.update(env_extra)
    exe = Path(sys.executable).parent / "invoke"
    return subprocess.run(["bash", "-c", f'umask {umask}; exec "$0" "$@"', str(exe), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _purge(cwd, env):
    local(["local.down", "--purge", "--yes"], cwd, env)


@pytest.mark.parametrize("umask", ["022", "077"])
def test_missing_parents_under_any_umask(umask):
    base = state_dir()
    sd = base / "not" / "yet" / "there" / "local"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(2))}
    try:
        # a read task first, as a new user might: the repository helper makes its parents — 0711, not 0700
        assert local(["backup.list"], REPO, env, umask).returncode == 0
        res = local(["local.up"], REPO, env, umask)
        assert res.returncode == 0, res.stdout + res.stderr
        for p in (base / "not", base / "not" / "yet", base / "not" / "yet" / "there", sd):
            assert _mode(p) & 0o001 and not _mode(p) & 0o004, (p, oct(_mode(p)))  # search, never list
        assert _mode(sd / "repository") == 0o700 and _mode(sd / "pgpass") == 0o600
        assert local(["local.status"], REPO, env, umask).returncode == 0
    finally:
        _purge(REPO, env)
        shutil.rmtree(base, ignore_errors=True)


def test_a_checkout_whose_pgops_directory_is_0700():
    """What the Quickstart hit: the repository helper made `.pgops` 0700 root before `local.up`."""
    base = state_dir()
    checkout = base / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO), str(checkout)], check=True)
    env = {"PGOPS_LOCAL_PORT": str(free_base_port(2))}
    try:
        for p in (checkout / ".pgops", checkout / ".pgops" / "local"):
            p.mkdir(mode=0o700)
            os.chmod(p, 0o700)
        res = local(["local.up"], checkout, env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "initpw" not in res.stderr
        assert _mode(checkout / ".pgops") == 0o701
    finally:
        _purge(checkout, env)
        shutil.rmtree(base, ignore_errors=True)


def test_a_0700_directory_above_the_stack_is_refused_up_front():
    base = state_dir()
    home = base / "home"
    home.mkdir()
    os.chmod(home, 0o700)
    sd = home / "proj" / ".pgops" / "local"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(2))}
    try:
        res = local(["local.up"], REPO, env)
        assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
        assert f"may not search {home} (mode 0700)" in res.stderr and f"chmod o+x {home}" in res.stderr
        assert "PGOPS_STATE_DIR=" in res.stderr and "server.log" not in res.stderr
        assert list(home.iterdir()) == [] and _mode(home) == 0o700  # nothing created, nothing changed
    finally:
        shutil.rmtree(base, ignore_errors=True)
