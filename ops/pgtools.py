"""The PostgreSQL client and server programs, in one place: where they are (``pg_bindir``), how a
client tool connects exactly as psycopg would (``client_env``, ``client_env_scope``: the user's
libpq environment kept, DSN values winning, no secret in argv), and how a server command runs as
the unprivileged ``postgres`` OS user when pgops runs as root (``run_server_cmd``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

from psycopg.conninfo import make_conninfo

from . import settings
from .dsn import redact
from .errors import LocalStackError, OpsError
from .secrets import reveal

log = logging.getLogger(__name__)

SERVER_USER = "postgres"


def pg_bindir() -> Path:
    """Directory of the PostgreSQL server binaries: ``$PGOPS_PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/<major>/bin`` (Debian layout), else the directory of ``initdb`` on PATH.

    Raises :class:`LocalStackError` with the install command when no server is installed.
    """
    configured = settings.current().pg_bindir
    if configured:
        return configured
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise LocalStackError("No PostgreSQL server binaries (initdb, pg_ctl) are installed on this machine.",
                          "run `scripts/setup.sh` (installs Debian's postgresql-15), or set PGOPS_PG_BINDIR.")


def pgbouncer_bin() -> Path:
    """The PgBouncer executable (Debian's ``pgbouncer`` package: ``/usr/sbin/pgbouncer``).

    Raises :class:`LocalStackError` with the install command when it is missing.
    """
    found = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
                                               if Path(p).is_file()), None)
    if not found:
        raise LocalStackError("PgBouncer (the local stack's pooler) is not installed on this machine.",
                              "run `scripts/setup.sh` (installs Debian's pgbouncer), then `invoke local.up`.")
    return Path(found)


def pgbouncer_version_text() -> str:
    """What ``pgbouncer --version`` prints (``PgBouncer 1.18.0`` and library lines); the I/O half of
    :func:`ops.local.layout.parse_pgbouncer_version`. Raises :class:`LocalStackError` when PgBouncer is
    not installed or does not answer."""
    exe = pgbouncer_bin()
    try:
        proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=10, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalStackError(f"`{exe} --version` did not answer: {exc}",
                              "check the PgBouncer install (`scripts/setup.sh`), then run `invoke local.up`.") from None
    return proc.stdout + proc.stderr


def as_server_user() -> bool:
    """True when pgops runs as root: server commands then run as :data:`SERVER_USER`."""
    return os.geteuid() == 0


def server_ids() -> tuple[int, int]:
    """(uid, gid) server processes and their directories belong to. Raises :class:`LocalStackError`."""
    if not as_server_user():
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise LocalStackError(f"pgops runs as root but the OS user '{SERVER_USER}' does not exist.",
                              "install Debian's postgresql package (creates it) or run as an unprivileged user.") from None
    return pw.pw_uid, pw.pw_gid


def run_server_cmd(args: list[str], *, what: str, env: dict | None = None, check: bool = True,
         timeout: float | None = 300, hint: str | None = None) -> subprocess.CompletedProcess:
    """Run a server command (as ``postgres`` when we are root); no shell, arguments as a list.

    Raises :class:`LocalStackError` (exit 3) carrying the command's own error output and ``hint``
    (default: fix what the output names, then `invoke local.up`) when it exits non-zero and ``check``."""
    kwargs: dict = {}
    if as_server_user():
        uid, gid = server_ids()
        kwargs.update(user=uid, group=gid, extra_groups=[])
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    full_env.update(env or {})
    log.debug("running %s", args[0])
    proc = subprocess.run(args, cwd="/", env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        tail = redact((proc.stderr or proc.stdout or "").strip()[-1500:])
        raise LocalStackError(f"{what} failed (exit {proc.returncode}): {tail}",
                              hint or "fix the cause the error names, then run `invoke local.up` again.")
    return proc


def chown_server(path: Path, mode: int) -> None:
    """Give ``path`` to the server user with permission bits ``mode``."""
    uid, gid = server_ids()
    os.chown(path, uid, gid)
    os.chmod(path, mode)


_SECRET_KEYS = {"sslpassword"}
"""Secret libpq keywords with no environment variable: passed through a private service file."""


def client_env(params: Mapping, dbname: str) -> tuple[list[str], dict]:
    """Arguments and environment for a libpq client tool (pg_dump, pg_restore, psql, pg_basebackup,
    vacuumdb), so that it connects exactly as psycopg does with the same ``params``.

    The user's own libpq environment (PGPASSFILE, PGSSLMODE, PGSERVICE, PGSSLROOTCERT, ... — every
    ``PG*`` variable, as psycopg honours them) is kept. Every non-secret value from ``params`` goes
    into the ``-d`` conninfo, where it wins over the environment and a service file exactly as it
    does for psycopg. No secret is ever in the returned arguments (a process listing shows argv to
    every local user): the password travels as PGPASSWORD in the environment. ``sslpassword`` has
    no environment variable: use :func:`client_env_scope`, which writes it to a private 0600
    service file; here it raises ValueError rather than reach argv. Returns
    ``(["-d", conninfo], env)``.
    """
    env = dict(os.environ)
    rest = {}
    for k, v in params.items():
        if k == "password":
            env["PGPASSWORD"] = str(reveal(v))
        elif k in _SECRET_KEYS:
            raise ValueError(f"{k} cannot be passed to a client tool without a service file; use client_env_scope")
        elif k != "dbname" and v is not None:
            rest[k] = v
    return ["-d", make_conninfo(dbname=dbname, **rest)], env


@contextlib.contextmanager
def client_env_scope(params: Mapping, dbname: str):
    """:func:`client_env` for a block, also for ``params`` holding ``sslpassword``: secret keywords
    without an environment variable go to a service file created 0600 from its first byte
    (``PGSERVICEFILE`` + ``PGSERVICE``) and removed when the block ends. Yields ``(args, env)``."""
    secrets_ = {k: v for k, v in params.items() if k in _SECRET_KEYS}
    if not secrets_:
        yield client_env(params, dbname)
        return
    if "service" in params or os.environ.get("PGSERVICE"):
        raise OpsError("A connection using both a libpq service and sslpassword cannot be handed to the "
                       "client tools without putting the secret in their argv.",
                       "put sslpassword in the service's own pg_service.conf entry instead.")
    args, env = client_env({k: v for k, v in params.items() if k not in _SECRET_KEYS}, dbname)
    fd, path = tempfile.mkstemp(prefix="pgops-service-", suffix=".conf")  # mkstemp: 0600, O_EXCL
    try:
        with os.fdopen(fd, "w") as f:
            f.write("[pgops]\n" + "".join(f"{k}={reveal(v)}\n" for k, v in secrets_.items()))
        env["PGSERVICEFILE"], env["PGSERVICE"] = path, "pgops"
        yield args, env
    finally:
        os.unlink(path)
