"""I/O edge of backups: create (logical / local physical), list, show, verify, restore, prune.

Logical backups follow the consistent-dump recipe: one REPEATABLE READ transaction exports a
snapshot, ``pg_dump -Fc --snapshot`` dumps exactly that snapshot, and the same transaction counts
every table's rows in it (concurrently with the dump), so the manifest's row counts are the dump's.
The dump streams from pg_dump's stdout into the repository (no temporary copy on disk); the manifest
is written last. Prune deletes only what :func:`ops.retention.plan_prune` marked, under a repository
lock, manifest first, and only with ``apply``; a dry run walks the same path to the last call.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from psycopg import sql
from psycopg.conninfo import make_conninfo

from .. import __version__
from ..dsn import connect, describe, redact, tool_application_name
from ..errors import OpsError
from ..local.cluster import pg_bindir
from ..secrets import reveal
from ..retention import SEED_002_POLICY, BackupFacts, PrunePlan, RetentionPolicy, plan_prune
from .manifest import (CLUSTER, LOGICAL_OBJECT, PHYSICAL_OBJECT, Manifest, backup_prefix, manifest_key,
                       new_backup_id)
from .repository import Repository, RepositoryError

log = logging.getLogger(__name__)
ORPHAN_AGE = timedelta(hours=24)


class BackupFailed(OpsError):
    """A backup could not be taken; nothing of it is visible."""

    exit_code = 7


class VerifyMismatch(OpsError):
    """A backup object does not match its manifest, or pg_restore cannot read it."""

    exit_code = 7


class RestoreRefused(OpsError):
    exit_code = 7


_ENV_KEYS = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
             "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
             "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT"}


def client_env(params: Mapping, dbname: str) -> tuple[list[str], dict]:
    """Arguments and environment for a libpq client tool: connection values go in the environment
    (PGHOST, PGPASSWORD, ...) so no password ever appears in a process listing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    rest = {}
    for k, v in params.items():
        if k in _ENV_KEYS:
            env[_ENV_KEYS[k]] = str(reveal(v))
        elif k not in ("dbname", "application_name"):
            rest[k] = v
    return ["-d", make_conninfo(dbname=dbname, **rest)], env


USER_TABLES_SQL = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ")
"""Every plain table (and leaf partition) outside the system schemas: what manifests count."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(d: datetime) -> str:
    return d.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _tool_version(tool: str) -> str:
    out = subprocess.run([str(pg_bindir() / tool), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


# ---- create -------------------------------------------------------------------------------------

def create_logical(repo: Repository, params: Mapping, database: str, *, stack: str = "local",
                   note: str = "", now: Callable[[], datetime] = _now) -> Manifest:
    """Dump ``database`` (custom format) into ``repo``; returns the manifest, written last.

    Raises :class:`BackupFailed` (the partial object is removed) when pg_dump or the upload fails.
    """
    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    key = backup_prefix(database, backup_id) + LOGICAL_OBJECT
    with connect(params, dbname=database, application_name=tool_application_name("backup")) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        tables = [f"{s}.{t}" for s, t in conn.execute(USER_TABLES_SQL + "ORDER BY 1, 2")]
        ledger_version = None
        if conn.execute("SELECT to_regclass('pgops.migrations') IS NOT NULL").fetchone()[0]:
            ledger_version = conn.execute("SELECT max(version) FROM pgops.migrations").fetchone()[0]
        args, env = client_env(params, database)
        proc = subprocess.Popen([str(pg_bindir() / "pg_dump"), "-Fc", "--no-password", f"--snapshot={snapshot}", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        counts: dict[str, int] = {}
        count_error: list[BaseException] = []

        def count_rows():  # same snapshot as the dump, while the dump streams
            try:  # one core for the counts: parallel workers would starve pg_dump
                conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                for t in tables:
                    counts[t] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(*t.split(".", 1)))).fetchone()[0]
            except BaseException as exc:  # reported below
                count_error.append(exc)
        counter = threading.Thread(target=count_rows, daemon=True)
        counter.start()
        stderr_lines: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
        drain.start()
        try:
            written = repo.put_stream(key, proc.stdout)
        except BaseException as exc:
            proc.kill()
            proc.wait()
            _discard(repo, key)
            if isinstance(exc, (RepositoryError, OSError)):
                raise BackupFailed(f"Backup of '{database}' failed while uploading to {repo.url}: {exc}",
                                   "check the repository, then run `invoke backup.create` again.") from None
            raise
        rc = proc.wait()
        drain.join()
        counter.join()
        conn.rollback()
    if rc != 0 or count_error:
        _discard(repo, key)
        why = redact(b"".join(stderr_lines).decode(errors="replace").strip()[-800:]) if rc else str(count_error[0])
        raise BackupFailed(f"Backup of '{database}' failed: pg_dump exited {rc}: {why}",
                           "fix the cause, then run `invoke backup.create` again; nothing was recorded.")
    finished = now()
    m = Manifest(backup_id, database, "logical", _iso(started), _iso(finished), round(time.monotonic() - t0, 3),
                 written.size, written.sha256, key, repo.location(key), server_version, _tool_version("pg_dump"),
                 ledger_version, __version__, "pg_dump custom", counts, stack, note)
    repo.put_bytes(manifest_key(database, backup_id), m.to_json())
    return m


def create_physical(repo: Repository, params: Mapping, *, stack: str = "local", note: str = "",
                    now: Callable[[], datetime] = _now) -> Manifest:
    """``pg_basebackup`` (tar, gzip, WAL included) of the whole cluster streamed into ``repo``."""
    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    key = backup_prefix(CLUSTER, backup_id) + PHYSICAL_OBJECT
    with connect(params, dbname="postgres", autocommit=True, application_name=tool_application_name("backup")) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]
    args, env = client_env(params, "postgres")
    proc = subprocess.Popen([str(pg_bindir() / "pg_basebackup"), "-D", "-", "-Ft", "-z", "-X", "fetch", "-c", "fast",
                             "--no-password", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        written = repo.put_stream(key, proc.stdout)
    except BaseException:
        proc.kill()
        proc.wait()
        _discard(repo, key)
        raise
    err = proc.stderr.read()
    if proc.wait() != 0:
        _discard(repo, key)
        raise BackupFailed(f"Physical backup failed: pg_basebackup: {redact(err.decode(errors='replace').strip()[-800:])}",
                           "check max_wal_senders and replication access, then run `invoke backup.create --kind snapshot`.")
    m = Manifest(backup_id, CLUSTER, "snapshot", _iso(started), _iso(now()), round(time.monotonic() - t0, 3),
                 written.size, written.sha256, key, repo.location(key), server_version,
                 _tool_version("pg_basebackup"), None, __version__, "pg_basebackup tar.gz", {}, stack, note)
    repo.put_bytes(manifest_key(CLUSTER, backup_id), m.to_json())
    return m


def _discard(repo: Repository, key: str) -> None:
    try:
        repo.delete(key)
    except Exception as exc:  # prune's orphan sweep removes it later
        log.warning("could not remove partial object %s: %s", key, exc)


# ---- list / show --------------------------------------------------------------------------------

def _documents(repo: Repository, prefix: str, suffix: str, parse: Callable[[bytes], object]) -> list:
    """Every object under ``prefix`` ending in ``suffix``, parsed; unreadable ones are logged and skipped."""
    out = []
    for obj in repo.list(prefix):
        if obj.key.endswith(suffix):
            try:
                out.append(parse(repo.get_bytes(obj.key)))
            except (ValueError, TypeError) as exc:
                log.warning("unreadable %s: %s", obj.key, exc)
    return out


def list_backups(repo: Repository, database: str | None = None) -> list[Manifest]:
    """Every backup with a manifest (others do not exist), newest first by manifest created_at."""
    found = _documents(repo, f"backups/{database}/" if database else "backups/", "/manifest.json", Manifest.from_json)
    return sorted(found, key=lambda m: m.created, reverse=True)


def find_backup(repo: Repository, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``; raises :class:`OpsError` naming the repository when absent."""
    for m in list_backups(repo):
        if m.id == backup_id:
            return m
    raise OpsError(f"No backup '{backup_id}' in {repo.url} (a backup without a manifest does not exist).",
                   "run `invoke backup.list` to see the backups.")


# ---- verify -------------------------------------------------------------------------------------

def verify_backup(repo: Repository, m: Manifest) -> list[tuple[str, bool, str]]:
    """Re-hash the object against the manifest and, for logical backups, make ``pg_restore --list``
    read it. Returns (check, passed, detail) rows."""
    import hashlib
    h, size = hashlib.sha256(), 0
    reader = None
    if m.kind == "logical":
        reader = subprocess.Popen([str(pg_bindir() / "pg_restore"), "--list"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out_buf: list[bytes] = []
        drain = threading.Thread(target=lambda: out_buf.extend(reader.stdout), daemon=True)
        drain.start()
    rows = []
    try:
        for chunk in repo.open_read(m.object_key):
            h.update(chunk)
            size += len(chunk)
            if reader:
                try:
                    reader.stdin.write(chunk)
                except BrokenPipeError:
                    pass
    except RepositoryError as exc:
        rows.append(("object readable", False, str(exc)))
    rows.append(("size matches manifest", size == m.size_bytes, f"{size} bytes, manifest {m.size_bytes}"))
    rows.append(("sha256 matches manifest", h.hexdigest() == m.sha256, f"{h.hexdigest()[:16]}…, manifest {m.sha256[:16]}…"))
    if reader:
        try:
            reader.stdin.close()
        except BrokenPipeError:
            pass
        rc = reader.wait()
        drain.join()
        err = reader.stderr.read().decode(errors="replace").strip()
        entries = sum(1 for line in b"".join(out_buf).splitlines() if line and not line.startswith(b";"))
        rows.append(("pg_restore --list reads it", rc == 0, f"{entries} TOC entries" if rc == 0 else err[-300:]))
    return rows


# ---- restore ------------------------------------------------------------------------------------

def _system_identifier(params: Mapping, dbname: str) -> int:
    with connect(params, dbname=dbname, autocommit=True, application_name=tool_application_name("restore")) as conn:
        return conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]


def restore(repo: Repository, m: Manifest, target: Mapping, target_db: str, *, clean: bool = False,
            protected: Mapping | None = None, yes_overwrite_primary: bool = False) -> float:
    """Restore a logical backup into ``target_db`` with ``pg_restore --single-transaction`` (all or
    nothing) after checking the object against its manifest. Returns seconds taken.

    Refuses (:class:`RestoreRefused`): a physical backup; a non-empty target without ``clean``; the
    stack's own primary (same system identifier as ``protected``) without ``yes_overwrite_primary``;
    an object that fails verification.
    """
    if m.kind != "logical":
        raise RestoreRefused(f"Backup {m.id} is a physical cluster backup; backup.restore restores logical backups.",
                             "restore it with a restore drill (next release) or by hand with tar into an empty data directory.")
    if protected is not None and not yes_overwrite_primary:
        try:
            if _system_identifier(protected, "postgres") == _system_identifier(target, target_db):
                raise RestoreRefused(f"The target {describe({**target, 'dbname': target_db})} is the stack's own primary.",
                                     "restore elsewhere, or add --yes-overwrite-primary if you mean it.")
        except OpsError as exc:
            if isinstance(exc, RestoreRefused):
                raise
    with connect(target, dbname=target_db, autocommit=True, application_name=tool_application_name("restore")) as conn:
        objects = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN "
            "('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%'").fetchone()[0]
    if objects and not clean:
        raise RestoreRefused(f"Target database '{target_db}' is not empty ({objects} relations).",
                             "restore into an empty database, or add --clean to drop and replace what the backup holds.")
    failed = [r for r in verify_backup(repo, m) if not r[1]]
    if failed:
        raise VerifyMismatch(f"Backup {m.id} does not match its manifest: {'; '.join(f'{c}: {d}' for c, _, d in failed)}. "
                             "Nothing was restored.", f"pick another backup with `invoke backup.list --db {m.database}`.")
    t0 = time.monotonic()
    args, env = client_env(target, target_db)
    cmd = [str(pg_bindir() / "pg_restore"), "--no-password", "--single-transaction", "--exit-on-error", "--no-owner",
           *(["--clean", "--if-exists"] if clean else []), *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    err_buf: list[bytes] = []
    drain = threading.Thread(target=lambda: err_buf.extend(proc.stderr), daemon=True)
    drain.start()
    try:
        for chunk in repo.open_read(m.object_key):
            proc.stdin.write(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    rc = proc.wait()
    drain.join()
    if rc != 0:
        raise OpsError(f"Restore of {m.id} into '{target_db}' failed and was rolled back: "
                       f"{redact(b''.join(err_buf).decode(errors='replace').strip()[-800:])}",
                       "fix the target (roles, extensions), then run `invoke backup.restore` again.", )
    return time.monotonic() - t0


# ---- prune --------------------------------------------------------------------------------------

@dataclass
class PruneReport:
    database: str
    plan: PrunePlan
    deleted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    aborted_uploads: list[str] = field(default_factory=list)
    applied: bool = False


def drill_reports(repo: Repository, database: str | None = None) -> list[dict]:
    """Restore-drill reports under ``drills/<database>/`` (all databases when None), newest first."""
    out = _documents(repo, f"drills/{database}/" if database else "drills/", ".json", json.loads)
    return sorted(out, key=lambda d: d.get("started_at", ""), reverse=True)


def drill_passed_ids(repo: Repository, database: str) -> set[str]:
    """Backup ids whose restore drill passed: what retention's drill floor protects."""
    return {d["backup_id"] for d in drill_reports(repo, database) if d.get("passed") and d.get("backup_id")}


def _orphans(repo: Repository, database: str, now: datetime) -> list[str]:
    """Objects in backup folders that have no manifest and are older than 24 h."""
    groups: dict[str, list] = {}
    for obj in repo.list(f"backups/{database}/"):
        groups.setdefault(obj.key.rsplit("/", 1)[0], []).append(obj)
    out = []
    for folder, objs in groups.items():
        if any(o.key.endswith("/manifest.json") for o in objs):
            continue
        if all(now - o.modified >= ORPHAN_AGE for o in objs):
            out += [o.key for o in objs]
    return out


class _RepoLock:
    """Exclusive prune lock: ``locks/prune.lock`` created only if absent."""

    def __init__(self, repo: Repository):
        self.repo, self.key = repo, "locks/prune.lock"

    def __enter__(self):
        if self.repo.exists(self.key):
            holder = self.repo.get_bytes(self.key).decode(errors="replace")
            raise OpsError(f"Another prune holds {self.repo.url}/{self.key} ({holder}).",
                           "wait for it; if it crashed, delete that lock object and rerun `invoke backup.prune`.")
        self.repo.put_bytes(self.key, f"pid {os.getpid()} since {_iso(_now())}".encode())
        return self

    def __exit__(self, *exc):
        self.repo.delete(self.key)


def prune(repo: Repository, database: str, *, policy: RetentionPolicy = SEED_002_POLICY, apply: bool = False,
          force: bool = False, now: datetime | None = None, min_age: timedelta = timedelta(hours=1),
          max_delete_fraction: float = 0.5) -> PruneReport:
    """Plan retention for ``database`` and, with ``apply``, delete what the plan marks (manifest
    first, so a half-deleted backup is already invisible), orphans older than 24 h and abandoned
    multipart uploads. Without ``apply`` the same path runs and deletes nothing.
    Raises :class:`~ops.retention.RetentionRefused` for an empty listing or too large a plan.
    """
    now = now or _now()
    backups = list_backups(repo, database)
    drilled = drill_passed_ids(repo, database)
    plan = plan_prune([BackupFacts(m.id, m.created, m.id in drilled) for m in backups], policy, now,
                      min_age=min_age, max_delete_fraction=max_delete_fraction, force=force, database=database)
    report = PruneReport(database, plan, applied=apply)
    by_id = {m.id: m for m in backups}
    ctx = _RepoLock(repo) if apply else _NoLock()
    with ctx:
        for b in plan.to_delete:
            m = by_id[b.id]
            keys = [manifest_key(database, m.id)] + [o.key for o in repo.list(backup_prefix(database, m.id))
                                                     if not o.key.endswith("manifest.json")]
            for k in keys:
                _delete(repo, k, apply)
            report.deleted.append(m.id)
        for k in _orphans(repo, database, now):
            _delete(repo, k, apply)
            report.orphans.append(k)
        for up in repo.pending_uploads(f"backups/{database}/"):
            if now - up.initiated >= ORPHAN_AGE:
                if apply:
                    repo.abort_upload(up)
                report.aborted_uploads.append(up.key)
    return report


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _delete(repo: Repository, key: str, apply: bool) -> None:
    if apply:
        repo.delete(key)
    else:
        log.info("dry run: would delete %s", key)


def repository_databases(repo: Repository) -> list[str]:
    """Every database that has any object under ``backups/<database>/`` in ``repo`` — a manifest or
    only an orphan (an interrupted first backup), so retention reaches both."""
    return sorted({o.key.split("/")[1] for o in repo.list("backups/") if o.key.count("/") >= 2})
