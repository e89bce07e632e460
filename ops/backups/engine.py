"""I/O edge of backups: create (logical / local physical), list, show, verify, restore, prune.

Logical backups follow the consistent-dump recipe: one REPEATABLE READ transaction exports a
snapshot, ``pg_dump -Fc --snapshot`` dumps exactly that snapshot, and the same transaction counts
every table's rows in it (concurrently with the dump), so the manifest's row counts are the dump's.
The dump streams from pg_dump's stdout into the repository (no temporary copy on disk); the manifest
is written last. Prune deletes only what :func:`ops.retention.plan_prune` marked, under a repository
lock, manifest first, and only with ``apply``; a dry run walks the same path to the last call.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from psycopg import sql

from .. import __version__
from ..dsn import connect, describe, redact, same_endpoint, system_identity, tool_application_name
from ..errors import (BackupFailed, EmptyRepository, OpsError, PruneIncomplete, RepositoryError,
                      RestoreRefused, VerifyMismatch)
from ..pgtools import client_env_scope, pg_bindir
from ..retention import (SEED_002_POLICY, BackupFacts, InvalidBackup, PrunePlan, RetentionPolicy, parse_created_at,
                         plan_prune)
from .manifest import (CLUSTER, LOGICAL_OBJECT, PHYSICAL_OBJECT, Manifest, backup_prefix, manifest_key,
                       new_backup_id)
from .drillreports import drill_passed_ids
from .repository import Repository

log = logging.getLogger(__name__)
ORPHAN_AGE = timedelta(hours=24)


USER_TABLES_SQL = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ")
"""Every plain table (and leaf partition) outside the system schemas: what manifests count."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Metered:
    """A read-only byte stream that reports the size of every chunk read to ``on_bytes``."""

    def __init__(self, raw, on_bytes: Callable[[int], None]):
        self.raw, self.on_bytes = raw, on_bytes

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        if chunk:
            self.on_bytes(len(chunk))
        return chunk


def metered(stream, on_bytes: Callable[[int], None] | None):
    """``stream`` itself, or wrapped so each chunk read is reported to ``on_bytes`` (bytes)."""
    return stream if on_bytes is None else _Metered(stream, on_bytes)


def _iso(d: datetime) -> str:
    return d.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _tool_version(tool: str) -> str:
    out = subprocess.run([str(pg_bindir() / tool), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


# ---- create -------------------------------------------------------------------------------------

def _failed(database: str, repo: Repository, what: str, hint_cmd: str) -> BackupFailed:
    return BackupFailed(f"Backup of '{database}' to {repo.url} failed: {what}. The partial backup was removed; "
                        "nothing was recorded.", f"fix the cause, then run `{hint_cmd}` again.")


def stream_tool(repo: Repository, key: str, proc: subprocess.Popen, database: str, hint: str,
                 on_bytes: Callable[[int], None] | None, on_abort: Callable[[], None] = lambda: None):
    """Stream a client tool's stdout (pg_dump, pg_basebackup) into ``key`` while draining its stderr.

    A failed upload kills the tool, calls ``on_abort`` and raises :class:`BackupFailed` (the caller
    removes the partial object). Returns (written, the tool's exit code, its stderr bytes)."""
    err_buf: list[bytes] = []
    drain = threading.Thread(target=lambda: err_buf.extend(proc.stderr), daemon=True)
    drain.start()
    streamed = False
    try:
        written = repo.put_stream(key, metered(proc.stdout, on_bytes))
        streamed = True
    except (RepositoryError, OSError) as exc:
        raise _failed(database, repo, f"the upload failed: {redact(str(exc))}", hint) from None
    finally:
        if not streamed:
            if proc.poll() is None:
                proc.kill()
            on_abort()
        rc = proc.wait()
        drain.join(timeout=30)
    return written, rc, b"".join(err_buf)


def create_logical(repo: Repository, params: Mapping, database: str, *, stack: str = "local",
                   note: str = "", now: Callable[[], datetime] = _now,
                   on_bytes: Callable[[int], None] | None = None) -> Manifest:
    """Dump ``database`` (custom format) into ``repo``; returns the manifest, written last.
    ``on_bytes`` is called with the size of each chunk streamed (a progress bar's feed).

    Raises :class:`BackupFailed` (exit 7) naming the database, the repository and the next command
    whenever the backup cannot complete — pg_dump or the server dies, the connection drops, the
    upload fails, the manifest cannot be written (disk full) — after removing every object of the
    backup (dump and manifest), so nothing of it is visible or left behind. ConnectError (exit 4)
    when the database cannot be reached at all. Ctrl-C also removes the partial objects.
    """
    import psycopg
    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    key = backup_prefix(database, backup_id) + LOGICAL_OBJECT
    mkey = manifest_key(database, backup_id)
    hint = f"invoke backup.create --db {database}"
    proc = None
    try:
        with connect(params, dbname=database, application_name=tool_application_name("backup")) as conn:
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                server_version = conn.execute("SHOW server_version").fetchone()[0]
                tables = [f"{s}.{t}" for s, t in conn.execute(USER_TABLES_SQL + "ORDER BY 1, 2")]
                # every role but the built-in ones (the dump's owner included: a drill restores owners)
                roles = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^(pg_|rds)' "
                                                    "ORDER BY 1")]
                ledger_version = None
                if conn.execute("SELECT to_regclass('pgops.migrations') IS NOT NULL").fetchone()[0]:
                    ledger_version = conn.execute("SELECT max(version) FROM pgops.migrations").fetchone()[0]
                with client_env_scope(params, database) as (args, env):
                    proc = subprocess.Popen([str(pg_bindir() / "pg_dump"), "-Fc", "--no-password",
                                             f"--snapshot={snapshot}", *args],
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
                    def stop_counts():  # the upload failed: nothing will use the counts
                        with contextlib.suppress(Exception):
                            conn.cancel()
                    try:
                        written, rc, tool_err = stream_tool(repo, key, proc, database, hint, on_bytes, stop_counts)
                    finally:
                        counter.join(timeout=60)
                if rc != 0:
                    why = redact(tool_err.decode(errors="replace").strip()[-800:])
                    raise _failed(database, repo, f"pg_dump exited {rc}: {why}", hint)
                if count_error:
                    raise _failed(database, repo, f"counting rows in the dump's snapshot failed: "
                                  f"{redact(str(count_error[0])).strip()}", hint)
                conn.rollback()
            except psycopg.Error as exc:  # the server died or the connection dropped mid-backup
                raise _failed(database, repo, f"the database connection failed: {redact(str(exc)).strip()}",
                              hint) from None
        finished = now()
        m = Manifest(backup_id, database, "logical", _iso(started), _iso(finished), round(time.monotonic() - t0, 3),
                     written.size, written.sha256, key, repo.location(key), server_version, _tool_version("pg_dump"),
                     ledger_version, __version__, "pg_dump custom", counts, stack, note, roles)
        try:
            repo.put_bytes(mkey, m.to_json())
        except (RepositoryError, OSError) as exc:
            raise _failed(database, repo, f"writing the manifest failed: {redact(str(exc))}", hint) from None
        return m
    except psycopg.Error as exc:  # raised while leaving the connection (server gone)
        _discard_all(repo, key, mkey)
        raise _failed(database, repo, f"the database connection failed: {redact(str(exc)).strip()}", hint) from None
    except BaseException:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _discard_all(repo, key, mkey)
        raise


def create_physical(repo: Repository, params: Mapping, *, stack: str = "local", note: str = "",
                    now: Callable[[], datetime] = _now, on_bytes: Callable[[int], None] | None = None) -> Manifest:
    """``pg_basebackup`` (tar, gzip, WAL included) of the whole cluster streamed into ``repo``.

    Raises :class:`BackupFailed` like :func:`create_logical`, every partial object removed."""
    import psycopg
    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    key = backup_prefix(CLUSTER, backup_id) + PHYSICAL_OBJECT
    mkey = manifest_key(CLUSTER, backup_id)
    hint = "invoke backup.create --kind snapshot"
    proc = None
    try:
        try:
            with connect(params, dbname="postgres", autocommit=True,
                         application_name=tool_application_name("backup")) as conn:
                server_version = conn.execute("SHOW server_version").fetchone()[0]
        except psycopg.Error as exc:
            raise _failed(CLUSTER, repo, f"the database connection failed: {redact(str(exc)).strip()}", hint) from None
        with client_env_scope(params, "postgres") as (args, env):
            proc = subprocess.Popen([str(pg_bindir() / "pg_basebackup"), "-D", "-", "-Ft", "-z", "-X", "fetch", "-c",
                                     "fast", "--no-password", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env)
            written, rc, tool_err = stream_tool(repo, key, proc, CLUSTER, hint, on_bytes)
        if rc != 0:
            raise BackupFailed(f"Physical backup to {repo.url} failed: pg_basebackup: "
                               f"{redact(tool_err.decode(errors='replace').strip()[-800:])}. "
                               "The partial backup was removed; nothing was recorded.",
                               "check max_wal_senders and replication access, then run "
                               "`invoke backup.create --kind snapshot`.")
        m = Manifest(backup_id, CLUSTER, "snapshot", _iso(started), _iso(now()), round(time.monotonic() - t0, 3),
                     written.size, written.sha256, key, repo.location(key), server_version,
                     _tool_version("pg_basebackup"), None, __version__, "pg_basebackup tar.gz", {}, stack, note)
        try:
            repo.put_bytes(mkey, m.to_json())
        except (RepositoryError, OSError) as exc:
            raise _failed(CLUSTER, repo, f"writing the manifest failed: {redact(str(exc))}", hint) from None
        return m
    except BaseException:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _discard_all(repo, key, mkey)
        raise


def _discard(repo: Repository, key: str) -> None:
    try:
        repo.delete(key)
    except Exception as exc:  # prune's orphan sweep removes it later
        log.warning("could not remove partial object %s: %s", key, exc)


def _discard_all(repo: Repository, *keys: str) -> None:
    """Remove every object of a failed backup (manifest first, so nothing stays visible)."""
    for k in sorted(keys, key=lambda k: not k.endswith("manifest.json")):
        _discard(repo, k)


# ---- list / show --------------------------------------------------------------------------------

@dataclass
class BackupListing:
    """What a repository holds for one database (or all): ``valid`` manifests newest first by
    created_at, and ``invalid`` backups (unreadable manifest JSON, naive or unparsable created_at, id
    not matching its folder), which are listed with their problem and never deleted automatically."""

    valid: list[Manifest] = field(default_factory=list)
    invalid: list[InvalidBackup] = field(default_factory=list)


def scan_backups(repo: Repository, database: str | None = None) -> BackupListing:
    """Read every ``backups/<database>/<id>/manifest.json`` (all databases when None) and sort the
    trustworthy ones newest first by created_at. One bad manifest never hides the others."""
    out = BackupListing()
    for obj in repo.list(f"backups/{database}/" if database else "backups/"):
        if not obj.key.endswith("/manifest.json"):
            continue
        folder_id = obj.key.rsplit("/", 2)[-2]
        try:
            m = Manifest.from_json(repo.get_bytes(obj.key))
            created = parse_created_at(m.created_at)
            if m.id != folder_id:
                raise ValueError(f"manifest id {m.id!r} does not match its folder {folder_id!r}")
        except (ValueError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
            log.warning("invalid backup %s: %s", obj.key, exc)
            out.invalid.append(InvalidBackup(folder_id, f"{obj.key}: {exc}"))
            continue
        out.valid.append((created, m))
    out.valid = [m for _, m in sorted(out.valid, key=lambda cm: cm[0], reverse=True)]
    return out


def list_backups(repo: Repository, database: str | None = None) -> list[Manifest]:
    """Every backup with a trustworthy manifest (others do not exist, see :func:`scan_backups` for the
    invalid ones), newest first by manifest created_at."""
    return scan_backups(repo, database).valid


def find_backup(repo: Repository, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``; raises :class:`OpsError` naming the repository when absent,
    or naming the problem when its manifest is invalid (see :func:`scan_backups`)."""
    listing = scan_backups(repo)
    for m in listing.valid:
        if m.id == backup_id:
            return m
    for bad in listing.invalid:
        if bad.id == backup_id:
            raise OpsError(f"Backup '{backup_id}' in {repo.url} has an invalid manifest ({bad.problem}); "
                           "it cannot be used, and prune never deletes it automatically.",
                           "run `invoke backup.list` to pick another backup.")
    raise OpsError(f"No backup '{backup_id}' in {repo.url} (a backup without a manifest does not exist).",
                   "run `invoke backup.list` to see the backups.")


def resolve_backup(repo: Repository, backup_id: str, database: str | None = None, *,
                   kind: str | None = None) -> Manifest:
    """The manifest ``backup_id`` names: a backup id (:func:`find_backup`), or ``latest`` — the
    newest backup (of ``kind`` when given: ``logical``/``snapshot``) of ``database``; without a
    database, of the one database the repository holds backups of. Raises :class:`OpsError`
    (exit 1) when there is none, :class:`~ops.errors.ConfigError` (exit 2) when ``latest`` is
    ambiguous (several databases, no ``database``), and what :func:`find_backup` raises."""
    from ..errors import ConfigError
    if backup_id != "latest":
        return find_backup(repo, backup_id)
    found = [m for m in list_backups(repo, database) if kind is None or m.kind == kind]
    if database is None and len({m.database for m in found}) > 1:
        raise ConfigError([f"'latest' needs --db: {repo.url} holds backups of "
                           f"{', '.join(sorted({m.database for m in found}))}"], "add --db NAME.")
    if not found:
        what = f"{kind} backup" if kind else "backup"
        of = f" of '{database}'" if database else ""
        raise OpsError(f"No {what}{of} in {repo.url} (a backup without a manifest does not exist).",
                       f"take one with `invoke backup.create{f' --db {database}' if database else ''}`.")
    return found[0]


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

def restore(repo: Repository, m: Manifest, target: Mapping, target_db: str, *, clean: bool = False,
            protected: Mapping | None = None, yes_overwrite_primary: bool = False,
            on_bytes: Callable[[int], None] | None = None) -> float:
    """Restore a logical backup into ``target_db`` with ``pg_restore --single-transaction`` (all or
    nothing) after checking the object against its manifest. Returns seconds taken.

    Refuses (:class:`RestoreRefused`): a physical backup; a non-empty target without ``clean``; the
    stack's own primary ``protected`` — same endpoint or system identifier, or an identity that cannot
    be read (fail closed) — without ``yes_overwrite_primary``; an object that fails verification.
    """
    if m.kind != "logical":
        raise RestoreRefused(f"Backup {m.id} is a physical cluster backup; backup.restore restores logical backups.",
                             "restore it with a restore drill (next release) or by hand with tar into an empty data directory.")
    if protected is not None and not yes_overwrite_primary:  # the same rules as the targets' guard: fail closed
        where, hint = describe({**target, "dbname": target_db}), "restore elsewhere, or add --yes-overwrite-primary if you mean it."
        if same_endpoint(protected, target):
            raise RestoreRefused(f"The target {where} is the stack's own primary (same endpoint).", hint)
        try:
            theirs = system_identity(protected, "postgres")[0]
        except OpsError:
            raise RestoreRefused(f"Cannot read the identity of the stack's own primary {describe(protected)}, so pgops "
                                 f"cannot rule out that {where} is it; nothing was restored.", hint) from None
        if theirs == system_identity(target, target_db)[0]:
            raise RestoreRefused(f"The target {where} is the stack's own primary (same system identifier).", hint)
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
    with client_env_scope(target, target_db) as (args, env):  # the service file lives until pg_restore ends
        cmd = [str(pg_bindir() / "pg_restore"), "--no-password", "--single-transaction", "--exit-on-error",
               "--no-owner", *(["--clean", "--if-exists"] if clean else []), *args]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                env=env)
        err_buf: list[bytes] = []
        drain = threading.Thread(target=lambda: err_buf.extend(proc.stderr), daemon=True)
        drain.start()
        try:
            for chunk in repo.open_read(m.object_key):
                if on_bytes:
                    on_bytes(len(chunk))
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:  # the object could not be read, Ctrl-C: pg_restore's transaction rolls back
            proc.kill()
            proc.wait()
            drain.join(timeout=30)
            raise
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
    invalid: list[InvalidBackup] = field(default_factory=list)  # listed, never deleted


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

    Invalid backups (:func:`scan_backups`) are reported in ``invalid`` and never deleted. A database
    with no manifest at all still has its old orphans (an interrupted first backup) swept.
    Raises :class:`EmptyRepository` when the repository holds nothing at all for ``database``,
    :class:`~ops.retention.FutureBackup` when a created_at lies in the future (nothing is deleted),
    :class:`~ops.retention.RetentionRefused` for too large a plan.
    """
    now = now or _now()
    listing = scan_backups(repo, database)
    drilled = drill_passed_ids(repo, database)
    facts = [BackupFacts(m.id, m.created, m.id in drilled) for m in listing.valid]
    if not facts and not listing.invalid:
        if not repo.list(f"backups/{database}/") and not repo.pending_uploads(f"backups/{database}/"):
            raise EmptyRepository(repo.url, [database])
        plan = PrunePlan()  # only orphans / abandoned uploads: nothing to plan, sweep below
    else:
        plan = plan_prune(facts, policy, now, min_age=min_age, max_delete_fraction=max_delete_fraction,
                          force=force, database=database, invalid=listing.invalid)
    report = PruneReport(database, plan, applied=apply, invalid=list(plan.invalid))
    by_id = {m.id: m for m in listing.valid}
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


def backup_databases(repo: Repository) -> list[str]:
    """Database names that have anything (a manifest, an orphan) under ``backups/``."""
    return sorted({o.key.split("/")[1] for o in repo.list("backups/") if o.key.count("/") >= 2})


def prune_all(repo: Repository, databases: list[str] | None = None, **kwargs) -> list[PruneReport]:
    """:func:`prune` every database in ``databases`` (default: every database the repository has
    objects for), each on its own: one database's refusal or failure never stops the others.
    ``kwargs`` are :func:`prune`'s.

    Returns the reports when every database went through. Raises :class:`EmptyRepository` when
    the repository holds nothing for any database asked for (or nothing at all), else
    :class:`PruneIncomplete` (exit 6) naming each failed database after the others were pruned;
    its ``reports`` holds theirs.
    """
    dbs = list(databases or []) or backup_databases(repo)
    if not dbs:
        raise EmptyRepository(repo.url, [])
    reports, failures = [], {}
    for d in dbs:
        try:
            reports.append(prune(repo, d, **kwargs))
        except OpsError as exc:
            failures[d] = exc
    if failures and all(isinstance(e, EmptyRepository) for e in failures.values()) and not reports:
        raise EmptyRepository(repo.url, dbs)
    if failures:
        raise PruneIncomplete(repo.url, reports, failures)
    return reports


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

