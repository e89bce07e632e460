"""I/O edge of restore drills on the local machine: a scratch PostgreSQL cluster of the same major
version on a free loopback port, started for the drill and always torn down (success, failure, a
failed check, Ctrl-C) unless ``keep_target``.

Phases, each timed: fetch (download + sha256 against the manifest), restore (``pg_restore -j``
stopping at the first error, or untar a physical backup and let PostgreSQL recover), analyze,
checks, teardown. The report is written whatever the outcome, to the repository under
``drills/<database>/`` and to ``json_path`` when given.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from psycopg import sql

from ..backups.engine import USER_TABLES_SQL
from ..pgtools import client_env_scope
from ..backups.manifest import Manifest
from ..backups.repository import Repository
from ..dsn import connect, describe, redact, same_endpoint, system_identity, tool_application_name
from ..errors import DrillAborted, OpsError, RepositoryError
from ..local.cluster import LocalStack, node_pid, open_stack
from ..pgtools import chown_server, pg_bindir, run_server_cmd
from ..migrations.discovery import discover
from ..migrations.runner import run_verify_script
from ..migrations.script import ScriptError, parse_script
from .report import Check, DrillReport, row_count_checks, rpo_and_clock_check

log = logging.getLogger(__name__)

# A throwaway server: durability is worthless here, restore speed is not.
DRILL_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "wal_level": "minimal",
                  "max_wal_senders": "0", "archive_mode": "off", "max_wal_size": "'8GB'",
                  "maintenance_work_mem": "'512MB'", "shared_buffers": "'512MB'", "autovacuum": "off"}
JOBS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _iso(d: datetime) -> str:
    return d.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _major(version: str) -> str:
    return version.split()[0].split(".")[0]


@contextmanager
def _phase(report: DrillReport, name: str):
    t0 = time.monotonic()
    try:
        yield
    finally:
        report.phases[name] = round(report.phases.get(name, 0.0) + time.monotonic() - t0, 3)


def _fetch(repo: Repository, m: Manifest, dest: Path,
           on_bytes: Callable[[int], None] | None = None) -> tuple[Path, list[Check]]:
    """Download (or, for a logical backup in a file repository, read in place: pg_restore runs as
    this user) and hash the object. Returns the path to restore from and the checksum check."""
    h, size = hashlib.sha256(), 0
    in_place = repo.local_path(m.object_key) if m.kind == "logical" else None
    try:
        if in_place is not None:
            with open(in_place, "rb") as f:
                while chunk := f.read(1024 * 1024):
                    h.update(chunk)
                    size += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            dest = in_place
        else:
            # private from the first byte (a physical tarball holds pg_authid); tar runs as the
            # server user, so that user owns it
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            if m.kind != "logical":
                chown_server(dest, 0o600)
            with os.fdopen(fd, "wb") as f:
                for chunk in repo.open_read(m.object_key):
                    h.update(chunk)
                    size += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
                    f.write(chunk)
    except (RepositoryError, OSError) as exc:
        return dest, [Check("checksum matches manifest", False, f"object unreadable: {exc}")]
    ok = h.hexdigest() == m.sha256 and size == m.size_bytes
    return dest, [Check("checksum matches manifest", ok,
                        f"sha256 {h.hexdigest()[:16]}… size {size}; manifest {m.sha256[:16]}… size {m.size_bytes}")]


# ---- stale drill targets ------------------------------------------------------------------------

OWNER_FILE = "owner.json"
UNOWNED_GRACE_S = 3600
"""A drill directory without an owner record (made by an older pgops, or one whose owner is between
mkdtemp and writing the record) is only treated as stale once it is this old (seconds)."""


@dataclass(frozen=True)
class StaleDrill:
    """A drill work directory whose owner process is gone, and what was done about it."""

    path: Path
    owner_pid: int | None
    reason: str
    stopped_pids: tuple[int, ...] = ()


def _proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot): with the pid, it names one process
    for the lifetime of the boot, so a reused pid is told apart (proc(5))."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[1].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] != b"Z" else None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _write_owner(work: Path) -> None:
    """Record this process (pid, start time, boot id) as the owner of a drill directory."""
    doc = {"pid": os.getpid(), "start_time": _proc_start_time(os.getpid()), "boot_id": _boot_id(),
           "created_at": _iso(datetime.now(timezone.utc))}
    fd = os.open(work / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)


def _owner_gone(work: Path, now_s: float) -> tuple[int | None, str] | None:
    """None while the owner lives; else (pid, why it counts as gone)."""
    try:
        doc = json.loads((work / OWNER_FILE).read_text())
        if doc.get("kept"):  # --keep-target: the user removes it (the report says how)
            return None
        pid, start, boot = int(doc["pid"]), doc.get("start_time"), str(doc.get("boot_id", ""))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # none yet, or being written
        age = now_s - work.lstat().st_mtime
        return None if age < UNOWNED_GRACE_S else (None, f"no readable owner record and {age / 3600:.1f} h old")
    if boot and boot != _boot_id():
        return (pid, f"owner pid {pid} ran before the last reboot")
    current = _proc_start_time(pid)
    if current is None:
        return (pid, f"owner pid {pid} is gone")
    if start is not None and current != start:
        return (pid, f"owner pid {pid} is gone (the pid now belongs to another process)")
    return None


def _processes_under(path: Path) -> list[int]:
    """Processes whose working directory is ``path`` or below (a postmaster and its backends run
    in their data directory)."""
    out, prefix = [], str(path) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (cwd == str(path) or cwd.startswith(prefix)) and _proc_start_time(int(entry.name)) is not None:
            out.append(int(entry.name))
    return out


def _stop_servers_under(work: Path) -> tuple[int, ...]:
    """Stop every PostgreSQL server whose data directory is under ``work`` (pg_ctl stop -m
    immediate, as the server user), then SIGKILL whatever still runs there. Returns the pids seen."""
    seen = _processes_under(work)
    cwds = set()
    for pid in seen:
        try:
            cwds.add(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            pass
    for pidfile in work.glob("**/postmaster.pid"):
        data_dir = pidfile.parent
        if str(data_dir) in cwds:
            run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30",
                            "stop"], what=f"stopping the stale drill target {data_dir}", check=False)
    deadline = time.monotonic() + 30
    while (left := _processes_under(work)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return tuple(seen)


def cleanup_stale_drills(work_root: Path | None = None) -> list[StaleDrill]:
    """Find and remove drill targets left by a drill process that is gone (``kill -9``, OOM, a
    lost machine): every ``pgops-drill-*`` directory under ``work_root`` (default /tmp) that this
    user owns and whose owner record (:data:`OWNER_FILE`: pid + process start time + boot id,
    written when the drill starts) names a process that no longer exists — a pid reused by another
    process does not count as the owner. Directories without a record count as stale after
    :data:`UNOWNED_GRACE_S`. Their scratch servers are stopped (pg_ctl stop -m immediate, then
    SIGKILL of anything still running in them) and the directories deleted.

    Returns one :class:`StaleDrill` per directory removed. Raises nothing for one directory that
    cannot be cleaned (logged; the others carry on). Called at the start of every drill; meant for
    ``drill.run --cleanup``. Databases left on a ``--target-dsn`` server are not found here."""
    root = Path(work_root) if work_root else Path("/tmp")
    out = []
    now_s = time.time()
    for work in sorted(root.glob("pgops-drill-*")):
        try:
            st = work.lstat()
            if not work.is_dir() or work.is_symlink() or st.st_uid != os.geteuid():
                continue  # /tmp is shared: never act on another user's directory or a symlink
            gone = _owner_gone(work, now_s)
            if gone is None:
                continue
            stopped = _stop_servers_under(work)
            shutil.rmtree(work)
            log.warning("removed stale drill target %s (%s)", work, gone[1])
            out.append(StaleDrill(work, gone[0], gone[1], stopped))
        except (OSError, OpsError) as exc:
            log.warning("could not clean up stale drill target %s: %s", work, exc)
    return out


def destroy_scratch(stack: LocalStack) -> None:
    """Stop the scratch server however it is (running, half-stopped, crashed) and delete its files."""
    node = stack.layout.primary
    pid = node_pid(node)
    if pid is not None:
        proc = run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(node.data_dir), "-m", "immediate", "-w", "-t", "30", "stop"],
                    what="stopping the drill target", check=False)
        if proc.returncode != 0 and node_pid(node) is not None:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while node_pid(node) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    shutil.rmtree(stack.layout.state_dir, ignore_errors=True)


def _counts(params: dict, dbname: str, jobs: int) -> dict[str, int]:
    """Exact row counts of every table, biggest tables first over ``jobs`` connections."""
    from concurrent.futures import ThreadPoolExecutor
    with connect(params, dbname=dbname, autocommit=True, application_name=tool_application_name("drill")) as conn:
        tables = conn.execute(USER_TABLES_SQL + "ORDER BY pg_relation_size(c.oid) DESC").fetchall()
    queue = list(tables)
    out: dict[str, int] = {}

    def worker():
        with connect(params, dbname=dbname, autocommit=True, application_name=tool_application_name("drill")) as c:
            while queue:
                try:
                    s, t = queue.pop(0)
                except IndexError:
                    return
                out[f"{s}.{t}"] = c.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(s), sql.Identifier(t))).fetchone()[0]
    with ThreadPoolExecutor(jobs) as pool:
        for f in [pool.submit(worker) for _ in range(jobs)]:
            f.result()
    return dict(sorted(out.items()))


def _schema_checks(conn, database: str, sql_root: Path, expected_ledger: int | None, check_ledger: bool) -> list[Check]:
    """Ledger, every applied migration's verify.sql, and custom drill checks on the restored copy."""
    out = []
    has_ledger = conn.execute("SELECT to_regclass('pgops.migrations') IS NOT NULL").fetchone()[0]
    applied = [r[0] for r in conn.execute("SELECT version FROM pgops.migrations ORDER BY 1")] if has_ledger else []
    if check_ledger:
        newest = applied[-1] if applied else None
        out.append(Check("ledger newest migration matches manifest", newest == expected_ledger,
                         f"restored {newest}, manifest {expected_ledger}"))
    mdir = sql_root / database / "migrations"
    if mdir.is_dir() and applied:
        chain = {m.version: m for m in discover(mdir)}
        for v in applied:
            m = chain.get(v)
            if m is not None and m.verify is not None:
                out += [Check(f"verify {r.migration}: {r.check}", r.passed, r.detail)
                        for r in run_verify_script(conn, m.folder, m.verify)]
    for f in sorted((sql_root / database / "drills").glob("*.sql")):
        try:
            script = parse_script(f.read_text())
        except ScriptError as exc:
            out.append(Check(f"drill {f.name}", False, f"does not parse: {exc}"))
            continue
        out += [Check(f"drill {f.stem}: {r.check}", r.passed, r.detail) for r in run_verify_script(conn, f.stem, script)]
    return out


def run_drill(repo: Repository, m: Manifest, *, sql_root: Path, protected: list[dict] = (),
              keep_target: bool = False, work_root: Path | None = None, jobs: int = JOBS,
              progress: Callable[[str], None] | None = None, now: Callable[[], datetime] | None = None,
              passfile_for_physical: Path | None = None,
              on_report: Callable[[DrillReport], None] | None = None,
              target: dict | None = None, on_bytes: Callable[[int], None] | None = None) -> DrillReport:
    """Restore ``m`` into a scratch cluster and check it; returns the report. ``on_bytes`` is fed
    the size of each chunk fetched from the repository (a progress bar).

    ``target``: libpq parameters of an existing server (``--target-dsn``) to restore a logical
    backup into instead: a database ``pgops_drill_<hex>`` is created there and dropped at teardown.

    ``on_report`` is called with the finished report whatever the outcome — also after Ctrl-C,
    before KeyboardInterrupt is re-raised — so the report is always written. ``protected``: libpq
    parameters of the stack's nodes, which the target must never be."""
    say = progress or (lambda _m: None)
    clock = now or (lambda: datetime.now(timezone.utc))
    started = clock()
    t0 = time.monotonic()
    rpo, clock_checks = rpo_and_clock_check(started, m.created)
    report = DrillReport(m.database, m.id, m.kind, _iso(started), m.created_at, rpo_seconds=rpo, checks=clock_checks)
    try:  # targets of drills killed with SIGKILL: never let cleaning up stop this drill
        for stale in cleanup_stale_drills(work_root):
            say(f"removed a stale drill target: {stale.path} ({stale.reason})")
    except Exception as exc:
        log.warning("stale drill cleanup failed: %s", exc)
    work = Path(tempfile.mkdtemp(prefix="pgops-drill-", dir=str(work_root) if work_root else "/tmp"))
    _write_owner(work)
    os.chmod(work, 0o755)
    scratch: LocalStack | None = None
    starter = None
    conn_params: dict = {}
    restore_db = m.database
    created_db = False
    try:
        if target is not None and m.kind != "logical":
            raise DrillAborted("--target-dsn takes logical backups only; physical ones restore into a scratch cluster", "")
        local_major = _major(subprocess.run([str(pg_bindir() / "postgres"), "--version"], capture_output=True,
                                            text=True).stdout.split()[-1])
        if _major(m.server_version) != local_major:
            raise DrillAborted(f"Backup {m.id} is from PostgreSQL {m.server_version}; this machine runs {local_major}.",
                               "run the drill where the same major version is installed.")
        say(f"fetching {m.object_key}")
        if target is None:
            scratch = open_stack(work / "target", port=_free_port(), replicas=0, extra_settings=DRILL_SETTINGS,
                                 throwaway=True)
            conn_params = scratch.conninfo()
        else:
            conn_params = dict(target)
            restore_db = f"pgops_drill_{os.urandom(4).hex()}"
        maintenance_db = conn_params.pop("dbname", None) or "postgres"
        if scratch is not None and m.kind == "logical":  # initdb and start the target while the object is fetched
            from concurrent.futures import ThreadPoolExecutor
            pool = ThreadPoolExecutor(1)
            starter = pool.submit(scratch.up)
            pool.shutdown(wait=False)
        with _phase(report, "fetch"):
            dump, fetched = _fetch(repo, m, work / ("dump.pgdump" if m.kind == "logical" else "base.tar.gz"), on_bytes)
            report.checks += fetched
        if not report.checks[-1].passed:
            if starter is not None:
                starter.exception()  # let it finish before teardown
            raise DrillAborted("the backup object does not match its manifest")
        with _phase(report, "restore"):
            say("starting the drill target")
            if starter is not None:
                starter.result()
            elif scratch is not None:
                _unpack_physical(scratch, dump, passfile_for_physical)
            _guard(conn_params, maintenance_db, protected, physical=m.kind != "logical",
                   existing_server=scratch is None)
            if scratch is not None:
                report.target = f"127.0.0.1:{scratch.layout.primary.port} (scratch cluster {scratch.layout.state_dir})"
            else:
                report.target = f"{conn_params.get('host')}:{conn_params.get('port', 5432)}/{restore_db} (--target-dsn)"
            if m.kind == "logical":
                with connect(conn_params, dbname=maintenance_db, autocommit=True,
                             application_name=tool_application_name("drill")) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restore_db)))
                created_db = True
            report.checks.append(_restore(conn_params, restore_db, m, dump, jobs, say))
        if not report.checks[-1].passed:
            raise DrillAborted("the restore did not finish")
        databases = [restore_db] if m.kind == "logical" else _databases(scratch)
        target_params = conn_params
        with _phase(report, "analyze"):
            for db in databases:
                with client_env_scope(target_params, db) as (args, env):
                    env["PGOPTIONS"] = "-c default_statistics_target=10"  # plans for the checks, not for production
                    proc = subprocess.run([str(pg_bindir() / "vacuumdb"), "--analyze-only", f"--jobs={jobs}",
                                           "--no-password", "--quiet", "--dbname", args[1]], env=env,
                                          capture_output=True, text=True)
                if proc.returncode != 0:
                    raise DrillAborted(f"ANALYZE failed: {redact(proc.stderr.strip()[-300:])}", "")
        say("checking the restored data")
        with _phase(report, "checks"):
            for db in databases:
                found = _counts(target_params, db, jobs)
                with connect(target_params, dbname=db, autocommit=True,
                             application_name=tool_application_name("drill")) as conn:
                    prefix = "" if m.kind == "logical" else f"{db}."
                    report.row_counts.update({prefix + k: v for k, v in found.items()})
                    if m.kind == "logical":
                        report.checks += row_count_checks(m.row_counts, found)
                    source_db = m.database if m.kind == "logical" else db  # sql/<name>/ of the backed-up database
                    report.checks += [Check(f"{prefix}{c.name}", c.passed, c.detail) for c in
                                      _schema_checks(conn, source_db, sql_root, m.ledger_version, m.kind == "logical")]
        if report.passed:
            report.rto_seconds = round(time.monotonic() - t0, 3)
    except DrillAborted as exc:
        report.error = str(exc) if not report.checks or report.checks[-1].passed else report.checks[-1].name + " failed"
    except OpsError as exc:
        report.error = redact(str(exc))
    except KeyboardInterrupt:
        report.error = "interrupted (Ctrl-C)"
        raise
    finally:
        # Teardown must complete even when Ctrl-C lands in it (or its pending signal surfaces here
        # after pg_restore, in the same process group, already died of it): retry until done.
        late_interrupt = False
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            report.error = "interrupted (Ctrl-C)"
        while True:
            try:
                with _phase(report, "teardown"):
                    _teardown(report, starter, scratch, created_db, keep_target, conn_params, maintenance_db,
                              restore_db, work, m)
                break
            except KeyboardInterrupt:
                late_interrupt = True
                report.error = "interrupted (Ctrl-C)"
        report.finished_at = _iso(clock())
        if on_report is not None:
            on_report(report)
        if late_interrupt:
            raise KeyboardInterrupt
    return report


def _teardown(report: DrillReport, starter, scratch: LocalStack | None, created_db: bool, keep_target: bool,
              conn_params: dict, maintenance_db: str, restore_db: str, work: Path, m: Manifest) -> None:
    """Stop and delete the drill target (or, with keep_target, say how to reach and remove it)."""
    if starter is not None:  # never tear down under a target that is still starting
        try:
            starter.exception(timeout=120)
        except Exception:  # a failed start is torn down like any other
            pass
    keep = keep_target and not report.error.startswith("interrupted")
    if keep:  # kept on purpose: stale-drill cleanup must leave it alone once this process exits
        try:
            (work / OWNER_FILE).write_text(json.dumps({"kept": True, "kept_at": _iso(datetime.now(timezone.utc))}))
        except OSError as exc:
            log.warning("could not mark %s as kept: %s", work, exc)
    if keep and scratch is not None:
        report.kept_target = (f"psql 'host=127.0.0.1 port={scratch.layout.primary.port} user=postgres "
                              f"dbname={m.database} passfile={scratch.layout.passfile}'; remove with: "
                              f"pg_ctl -D {scratch.layout.primary.data_dir} stop && rm -rf {work}")
    elif keep and created_db:
        report.kept_target = f"database {restore_db} on {report.target}; remove with: DROP DATABASE {restore_db}"
    else:
        if scratch is not None:
            destroy_scratch(scratch)
        elif created_db:
            _drop_database(conn_params, maintenance_db, restore_db)
        shutil.rmtree(work, ignore_errors=True)


def _guard(params: dict, maintenance_db: str, protected: list[dict], physical: bool,
           existing_server: bool = False) -> None:
    """The drill target must not be one of the stack's servers, judged by endpoint, data directory
    and — for a logical drill, whose target is a fresh initdb or a separate server — system
    identifier (a physical copy shares its source's identifier by design). ``existing_server``
    (``--target-dsn``): a protected server whose identity cannot be read refuses the drill (fail closed).
    Raises :class:`DrillAborted`."""
    my_sysid, my_dir = system_identity(params, maintenance_db, 3)
    for p in protected:
        if same_endpoint(p, params):
            raise DrillAborted(f"the drill target's endpoint {params.get('host')}:{params.get('port', 5432)} "
                               "is one of the stack's servers", "")
        try:
            sysid, data_dir = system_identity({k: v for k, v in p.items() if k != "dbname"},
                                              p.get("dbname") or "postgres", 3)
        except OpsError:
            if existing_server:  # --target-dsn: fail closed, an unreadable server might be it under another name
                raise DrillAborted(f"cannot read the identity of the stack's server {describe(p)}, so the drill "
                                   "target cannot be told apart from it", "make it reachable, or drill into a "
                                   "scratch cluster (without --target-dsn).") from None
            continue  # a scratch cluster is a fresh initdb on a free port: a down stack node cannot be it
        if data_dir == my_dir or (not physical and sysid == my_sysid):
            raise DrillAborted("the drill target is one of the stack's servers (same system identifier or "
                               "data directory)", "")


def _drop_database(params: dict, maintenance_db: str, dbname: str) -> None:
    try:
        with connect(params, dbname=maintenance_db, autocommit=True,
                     application_name=tool_application_name("drill")) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    except OpsError as exc:
        log.warning("could not drop drill database %s: %s", dbname, exc)


def _restore(params: dict, dbname: str, m: Manifest, dump: Path, jobs: int, say) -> Check:
    if m.kind != "logical":
        return Check("restore finished without errors", True, "physical backup recovered to consistency and started")
    if m.roles:  # a fresh cluster has only its superuser; policies and grants name the database's roles
        with connect(params, dbname=dbname, autocommit=True, application_name=tool_application_name("drill")) as conn:
            have = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
            for role in m.roles:
                if role not in have:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    say(f"pg_restore -j {jobs}")
    with client_env_scope(params, dbname) as (args, env):
        # with the roles made above, owners restore as they were (a verify.sql may check them); a backup
        # from before manifests recorded roles restores without owners
        owners = [] if m.roles else ["--no-owner"]
        proc = subprocess.run([str(pg_bindir() / "pg_restore"), "--no-password", "--exit-on-error", *owners,
                               "-j", str(jobs), *args, str(dump)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return Check("restore finished without errors", False, redact(proc.stderr.strip()[-600:]))
    return Check("restore finished without errors", True, f"pg_restore -j {jobs} exit 0")


def _unpack_physical(scratch: LocalStack, tarball: Path, passfile: Path | None) -> None:
    node = scratch.layout.primary
    scratch.layout.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch.layout.state_dir, 0o755)
    node.data_dir.mkdir(parents=True)
    chown_server(node.node_dir, 0o700)
    chown_server(node.data_dir, 0o700)
    run_server_cmd(["tar", "-xzf", str(tarball), "-C", str(node.data_dir)], what="unpacking the physical backup")
    with open(node.data_dir / "postgresql.auto.conf", "a") as f:
        f.write(f"port = {node.port}\n" + "".join(f"{k} = {v}\n" for k, v in DRILL_SETTINGS.items()
                                                  if k not in ("wal_level", "max_wal_senders")))
    (node.data_dir / "standby.signal").unlink(missing_ok=True)
    if passfile is None or not passfile.exists():
        raise DrillAborted("a physical drill needs the source cluster's passfile to connect", "")
    shutil.copy(passfile, scratch.layout.passfile)
    chown_server(scratch.layout.passfile, 0o600)
    scratch.up()


def _databases(scratch: LocalStack) -> list[str]:
    with connect(scratch.conninfo(), autocommit=True, application_name=tool_application_name("drill")) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate "
                                           "AND datname <> 'postgres' ORDER BY 1")]
