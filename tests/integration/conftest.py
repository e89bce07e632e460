"""Real PostgreSQL for integration tests: clusters started with initdb/pg_ctl on free loopback
ports under private state directories (never a developer's stack), torn down afterwards."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from psycopg import sql

from ops.dsn import connect
from ops.local.cluster import LocalStack, open_stack
from ops.local.layout import POOLER_OFFSET
from ops.migrations.runner import Target

REPO = Path(__file__).resolve().parents[2]
TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off",
                 "shared_buffers": "'128MB'"}


def free_base_port(count: int) -> int:
    """A base port with ``count`` consecutive free loopback ports after it, and the pooler's port
    (base + POOLER_OFFSET) free too."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        ok = True
        for p in [*range(base, base + count), base + POOLER_OFFSET]:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def state_dir() -> Path:
    """A private state directory the postgres OS user can traverse (mkdtemp is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="pgops-test-", dir="/tmp"))
    os.chmod(d, 0o755)
    return d


def make_stack(replicas: int = 0) -> LocalStack:
    return open_stack(state_dir() / "stack", port=free_base_port(replicas + 1), replicas=replicas,
                      extra_settings=TEST_SETTINGS)


def stack_with_database(root: Path, database: str, replicas: int = 1) -> LocalStack:
    """A started stack (primary, ``replicas`` streaming replicas, pooler) with ``database`` created and
    an sql root ``root/sql`` managing it (one migration, ``SELECT 1``); ``stack.sql_root`` is that
    root and ``stack.params`` the primary's conninfo without a dbname. Tear down with :func:`destroy`."""
    st = make_stack(replicas=replicas)
    st.up()
    p = st.conninfo()
    p.pop("dbname")
    query(p, "postgres", f"CREATE DATABASE {database}")
    (root / "sql" / database / "migrations" / "001_init").mkdir(parents=True)
    (root / "sql" / database / "migrations" / "001_init" / "up.sql").write_text("SELECT 1;\n")
    st.sql_root, st.params = root / "sql", p
    return st


def destroy(stack: LocalStack) -> None:
    try:
        stack.down(purge=True)
    finally:
        shutil.rmtree(stack.layout.state_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto server on a free loopback port (real HTTP), for S3 reached by pgops and its subprocesses."""
    from moto.server import ThreadedMotoServer
    port = free_base_port(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def pg():
    """One primary (no replicas) shared by engine tests; each test gets its own database."""
    stack = make_stack(0)
    stack.up()
    yield stack
    destroy(stack)


@pytest.fixture
def dbname(pg):
    """A fresh, empty database on the shared server; dropped after the test."""
    name = "t_" + uuid.uuid4().hex[:12]
    with connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def params(pg):
    p = pg.conninfo()
    p.pop("dbname")
    return p


@pytest.fixture
def chain_dir(tmp_path):
    """Write a migration chain: chain_dir({"001_a": {"up.sql": "...", "down.sql": "..."}})."""
    root = tmp_path / "sql"

    def write(folders: dict, database: str = "app") -> Path:
        mdir = root / database / "migrations"
        for folder, files in folders.items():
            (mdir / folder).mkdir(parents=True, exist_ok=True)
            for fname, text in files.items():
                (mdir / folder / fname).write_text(text)
        return mdir
    write.root = root
    return write


@pytest.fixture
def target(params, dbname, chain_dir):
    def make(folders: dict) -> Target:
        return Target(dbname, params, chain_dir(folders))
    return make


def query(params, dbname, text, args=None):
    with connect(params, dbname=dbname, autocommit=True) as conn:
        cur = conn.execute(text, args)
        return cur.fetchall() if cur.description else []


def invoke(args: list[str], env_extra: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``invoke ARGS`` in the repository as a user would; returns the completed process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
    env.update(env_extra or {})
    exe = Path(sys.executable).parent / "invoke"
    return subprocess.run([str(exe), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def pg_dump_schema(stack: LocalStack, dbname: str, exclude_pgops: bool = False) -> str:
    from ops.pgtools import pg_bindir
    args = [str(pg_bindir() / "pg_dump"), "--schema-only", "--no-owner", "-h", "127.0.0.1",
            "-p", str(stack.layout.primary.port), "-U", "postgres", "-d", dbname]
    if exclude_pgops:
        args += ["--exclude-schema", "pgops"]
    out = subprocess.run(args, env={**os.environ, "PGPASSFILE": str(stack.layout.passfile)},
                         capture_output=True, text=True, check=True).stdout
    return "\n".join(l for l in out.splitlines() if not l.startswith("-- Dumped") and "restrict" not in l)
