"""I/O edge of the local stack: initdb, pg_ctl and pg_basebackup on loopback ports.

PostgreSQL refuses to run as root, so when pgops runs as root every server command runs as the
unprivileged ``postgres`` OS user (``subprocess`` ``user=``), and node directories are owned by it.
Bringing the stack up is idempotent and converges: nodes that are running are left alone, a node
whose postmaster was killed (stale ``postmaster.pid``) is restarted, and a half-made replica is
rebuilt from a fresh ``pg_basebackup``.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import time
from datetime import datetime, timezone
from pathlib import Path


from .. import settings
from ..dsn import connect, redact, tool_application_name
from ..pgtools import (SERVER_USER, as_server_user, chown_server, pg_bindir, pgbouncer_bin, pgbouncer_version_text,
                       run_server_cmd, server_ids)
from ..errors import ConfigError, LocalStackError, PortBusy
from .layout import (DEFAULT_BASE_PORT, DEFAULT_REPLICAS, FENCED, PORT_SETTING, NodeSpec, PoolerSpec, StackLayout,
                     layout_from_state, parse_pgbouncer_version, plan_layout, prepared_statements_note, primary_conninfo,
                     render_conf, render_pgbouncer_ini,
                     server_settings)
from .reach import ensure_reachable

log = logging.getLogger(__name__)

READY_MARK = ".pgops-ready"
START_TIMEOUT_S = 60


def default_state_dir() -> Path:
    """``$PGOPS_STATE_DIR``, else ``.pgops/local`` in the project checkout."""
    return settings.current().state_dir


def write_private(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, private (0600, owned by the server user) from its first byte.

    The file is created by ``open(O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)`` and ``fchmod``-ed to 0600
    before anything is written, so neither the umask nor a reader racing the write ever sees it
    group- or world-readable; an existing file (or symlink) at ``path`` is removed first. Raises
    ``OSError`` from the file system. (libpq ignores a passfile readable by group or others:
    PostgreSQL docs, "The Password File".)"""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        uid, gid = server_ids()
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, uid, gid)
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int, program: bytes = b"postgres") -> bool:
    """Whether ``pid`` is a live (not zombie) process whose command line names ``program``: a pid
    reused by something else does not count."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z" and program in cmd


def node_pid(node: NodeSpec) -> int | None:
    """The postmaster pid of ``node`` if one is alive for its data directory, else None."""
    pidfile = node.data_dir / "postmaster.pid"
    try:
        first = pidfile.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    if not first.isdigit():
        return None
    pid = int(first)
    return pid if _pid_alive(pid) else None


def _orphans(node: NodeSpec) -> list[int]:
    """Processes still attached to a data directory whose postmaster died (kill -9)."""
    found = []
    target = str(node.data_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == target and _pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def replica_state(node: NodeSpec) -> str:
    """What a replica-role node's directory holds: ``"complete"`` (a postmaster runs in it, or
    ``pg_basebackup`` finished — pgops' ready mark — or it has ``global/pg_control``, which a base
    backup sends last, and ``standby.signal``, written after its configuration, as every path that makes a node
    a replica leaves it: a build, a switchover's or promote's fence, a rejoin), ``"not a replica"``
    (a complete cluster with no ``standby.signal``: a primary's, never removed by ``local.up``) or
    ``"absent"`` (nothing, or an interrupted build: rebuilt from a fresh base backup)."""
    if node_pid(node) is not None or _orphans(node):
        return "complete"
    complete = (node.data_dir / "global" / "pg_control").exists()
    if (node.node_dir / READY_MARK).exists() or (complete and (node.data_dir / "standby.signal").exists()):
        return "complete"
    return "not a replica" if complete and (node.data_dir / "PG_VERSION").exists() else "absent"


def pooler_pid(pooler: PoolerSpec) -> int | None:
    """The pid in the pooler's pidfile when that process is alive, else None."""
    try:
        pid = int(pooler.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid, b"pgbouncer") else None


_PGBOUNCER_VERSION: dict[str, tuple[int, int, int] | None] = {}


def installed_pgbouncer_version() -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of the installed PgBouncer (``pgbouncer --version``, asked once a
    process); None when it prints no version. Raises :class:`LocalStackError` when it is not installed."""
    exe = str(pgbouncer_bin())
    if exe not in _PGBOUNCER_VERSION:
        _PGBOUNCER_VERSION[exe] = parse_pgbouncer_version(pgbouncer_version_text())
    return _PGBOUNCER_VERSION[exe]


def _conninfo(layout: StackLayout, node: NodeSpec) -> dict:
    return {"host": "127.0.0.1", "port": node.port, "user": "postgres", "dbname": "postgres",
            "passfile": str(layout.passfile)}


#: how long a query through the pooler may take before status and health call it stuck (a PAUSE a killed
#: cutover left behind, or a server that never answers): PgBouncer itself would hold it query_wait_timeout (120 s)
POOLER_PROBE_S = 3.0


def pooler_problem(params: dict, timeout_s: float = POOLER_PROBE_S) -> tuple[str, str] | None:
    """Send ``SELECT 1`` through the pooler (``params``: libpq parameters of it) and wait at most
    ``timeout_s`` seconds for the answer. None when it answered, else ``(kind, message)``: kind
    ``"held"`` when it accepted the query and held it past the deadline, ``"error"`` otherwise (a PAUSEd
    PgBouncer accepts the login and then holds every query: PgBouncer docs, "Admin console — PAUSE";
    1.18's console does not report a global PAUSE, so the answer is the test). Never raises."""
    import selectors
    try:
        conn = connect(params, autocommit=True, connect_timeout=max(int(timeout_s), 1),
                       application_name=tool_application_name("status"))
    except Exception as exc:  # ConnectError: the message names the target, redacted
        return "error", getattr(exc, "message", None) or redact(str(exc))
    try:
        pg = conn.pgconn
        pg.send_query(b"SELECT 1")
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(pg.socket, selectors.EVENT_READ)
            while True:
                pg.flush()
                pg.consume_input()
                if not pg.is_busy():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return "held", (f"the pooler (port {params.get('port')}) accepts connections but holds queries: no answer "
                            f"to SELECT 1 within {timeout_s:g} s (PAUSEd? `invoke cutover.status` resumes a pooler a "
                            f"killed cutover left paused)")
                sel.select(min(left, 0.05))
        error = None
        while (res := pg.get_result()) is not None:
            if res.error_message:
                error = res.error_message.decode(errors="replace").strip()
        return ("error", redact(error)) if error else None
    except Exception as exc:
        return "error", redact(str(exc))
    finally:
        conn.close()


class LocalStack:
    """The local stack under one state directory. Build with :func:`open_stack`."""

    def __init__(self, layout: StackLayout, extra_settings: dict[str, str] | None = None, throwaway: bool = False):
        self.layout = layout
        self.extra_settings = dict(extra_settings or {})
        self.throwaway = throwaway  # restore-drill targets: initdb without fsync or data checksums

    # ---- connection parameters -------------------------------------------------------------
    def conninfo(self, node: NodeSpec | None = None) -> dict:
        """libpq parameters (no password: it lives in the passfile) for ``node`` (primary by default)."""
        return _conninfo(self.layout, node or self.layout.primary)

    @property
    def exists(self) -> bool:
        return (self.layout.primary.data_dir / "PG_VERSION").exists()

    # ---- up --------------------------------------------------------------------------------
    def up(self) -> list[dict]:
        """Converge to the layout: init the primary if new, start what is stopped, build missing
        replicas. Idempotent. Returns :meth:`status`. Raises :class:`PortBusy` naming the port and
        the setting that changes it, :class:`LocalStackError` for any other failure."""
        bindir = pg_bindir()
        lay = self.layout
        self.prepare_state_dir()
        for node in lay.nodes:  # check every port first: fail before touching anything
            if node_pid(node) is None and not _port_free(node.port):
                raise PortBusy(node.port, node.name, PORT_SETTING)
        if lay.pooler is not None and pooler_pid(lay.pooler) is None and not _port_free(lay.pooler.port):
            raise PortBusy(lay.pooler.port, lay.pooler.name, PORT_SETTING)
        if not self.exists:
            self._init_primary(bindir)
        self._start(bindir, lay.primary)
        for node in lay.fenced_nodes:  # a cutover's old side: started (replicas may stream from it), never rebuilt
            self._start(bindir, node)
        for node in lay.replica_nodes:
            if replica_state(node) == "absent":
                self._build_replica(bindir, node)
            elif replica_state(node) == "not a replica":
                raise LocalStackError(
                    f"Local node '{node.name}' is recorded as a replica, but its data directory {node.data_dir} is a "
                    f"complete cluster without standby.signal (a primary's): local.up does not overwrite it.",
                    f"run `invoke failover.rejoin --node {node.name} --yes` to make it follow the primary, "
                    f"or `invoke local.status` to see the roles.")
            self._start(bindir, node)
        if lay.pooler is not None:
            self._start_pooler(lay.pooler)
        try:  # the stack's backup repository is part of the stack: 0700 (whatever the umask) before its first backup
            os.mkdir(lay.repository_dir, 0o700)
            os.chmod(lay.repository_dir, 0o700)
        except FileExistsError:
            pass
        self._write_state(bindir)
        return self.status()

    def prepare_state_dir(self) -> None:
        """Create the state directory (0711, parents 0711) and, when the servers run as another OS user,
        make every directory on its path searchable by that user — pgops' own directories get ``o+x``,
        anything else in the way is refused up front (:func:`ops.local.reach.ensure_reachable`)."""
        state = self.layout.state_dir
        if not as_server_user():
            state.mkdir(parents=True, exist_ok=True)
            return
        uid, gid = server_ids()
        gids = set(os.getgrouplist(SERVER_USER, gid))
        # the checkout and what is under it are pgops' own; above it (a 0700 home) is the user's
        own = settings.PROJECT_DIR.parent if settings.PROJECT_DIR in state.parents else None
        for p in ensure_reachable(state, own, uid, gids):
            log.info("granted the server user search (o+x) on %s", p)
        os.chmod(state, 0o711)

    def pooler_conninfo(self) -> dict:
        """libpq parameters for the pooler (what applications use): the passfile's password works
        through it (its line matches any port)."""
        return {**self.conninfo(), "port": self.layout.pooler.port}

    def _start_pooler(self, pooler: PoolerSpec) -> None:
        """Start PgBouncer as the server user (it refuses root, like PostgreSQL): config and a 0600
        auth file holding the stack's password, daemon mode, then wait until it accepts connections."""
        if pooler_pid(pooler) is not None:
            return
        exe = pgbouncer_bin()
        pooler.pooler_dir.mkdir(parents=True, exist_ok=True)
        chown_server(pooler.pooler_dir, 0o700)
        password = self.stack_password()
        write_private(pooler.auth_file, '"postgres" "' + password.replace('"', '""') + '"\n')
        chown_server(pooler.auth_file, 0o600)
        pooler.ini.write_text(render_pgbouncer_ini(self.layout, version=installed_pgbouncer_version()))
        chown_server(pooler.ini, 0o600)
        pooler.pidfile.unlink(missing_ok=True)  # stale: its process is gone (checked above)
        if not _port_free(pooler.port):
            raise PortBusy(pooler.port, pooler.name, PORT_SETTING)
        run_server_cmd([str(exe), "-d", "-q", str(pooler.ini)], what="starting the local pooler (PgBouncer)")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if pooler_pid(pooler) is not None and not _port_free(pooler.port):
                return
            time.sleep(0.05)
        tail = pooler.log_file.read_text(errors="replace")[-800:] if pooler.log_file.exists() else ""
        raise LocalStackError(f"The local pooler (PgBouncer, port {pooler.port}) did not start: {redact(tail.strip())}",
                              f"read {pooler.log_file}, fix the cause, then run `invoke local.up` again.")

    def _init_primary(self, bindir: Path) -> None:
        password = secrets.token_urlsafe(24)
        write_private(self.layout.passfile, f"127.0.0.1:*:*:postgres:{password}\n")
        self.init_node(bindir, self.layout.primary, password)

    def stack_password(self) -> str:
        """The ``postgres`` password from the stack's passfile (for a new node's initdb and the
        pooler's auth file; never logged)."""
        return self.layout.passfile.read_text().strip().split("\n", 1)[0].split(":", 4)[4]

    def init_node(self, bindir: Path, node: NodeSpec, password: str) -> None:
        """initdb a new primary-style node at ``node.node_dir`` whose ``postgres`` role has
        ``password`` (from a 0600 file removed right after), with the stack's settings. A half-made
        directory from an interrupted init is removed first. Raises :class:`LocalStackError`."""
        if node.node_dir.exists():
            shutil.rmtree(node.node_dir)  # a half-made node from an interrupted init
        node.node_dir.mkdir(parents=True)
        chown_server(node.node_dir, 0o700)
        pwfile = node.node_dir / "initpw"
        write_private(pwfile, password + "\n")
        try:
            durability = ["--no-sync"] if self.throwaway else ["--data-checksums"]
            run_server_cmd([str(bindir / "initdb"), "-D", str(node.data_dir), "-U", "postgres", "--auth-local=peer",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
                  *durability], what=f"initdb of local node '{node.name}'")
        finally:
            pwfile.unlink(missing_ok=True)
        conf = node.data_dir / "pgops.conf"
        conf.write_text("# written by pgops: local stack settings\n" + render_conf(server_settings(node, self.extra_settings)))
        chown_server(conf, 0o600)
        with open(node.data_dir / "postgresql.conf", "a") as f:
            f.write("\ninclude 'pgops.conf'\n")

    def start_node(self, node: NodeSpec) -> None:
        """Start ``node`` (no-op when it runs). Raises :class:`PortBusy` or :class:`LocalStackError`."""
        self._start(pg_bindir(), node)

    def stop_node(self, node: NodeSpec, mode: str = "fast") -> bool:
        """Stop ``node`` with ``pg_ctl stop -m mode``; returns whether it was running."""
        if node_pid(node) is None:
            return False
        run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(node.data_dir), "-m", mode, "-w", "-t", "60", "stop"],
                       what=f"stopping local node '{node.name}'")
        return True

    def replace_layout(self, layout: StackLayout) -> None:
        """Make ``layout`` (same state directory, nodes with new roles) the stack's recorded layout:
        written atomically to ``stack.json``, so every later task follows it."""
        self.layout = layout
        self._write_state(pg_bindir())

    def rebuild_replica(self, node: NodeSpec) -> None:
        """Remake replica ``node`` from a fresh ``pg_basebackup`` of the current primary and start it."""
        self.stop_node(node, "immediate")
        (node.node_dir / READY_MARK).unlink(missing_ok=True)
        bindir = pg_bindir()
        self._build_replica(bindir, node)
        self._start(bindir, node)

    def _start(self, bindir: Path, node: NodeSpec) -> None:
        if node_pid(node) is not None:
            return
        pidfile = node.data_dir / "postmaster.pid"
        if pidfile.exists():  # stale: postmaster killed; wait for orphaned children to exit
            log.info("node %s: stale postmaster.pid, recovering", node.name)
            deadline = time.monotonic() + 30
            while _orphans(node) and time.monotonic() < deadline:
                time.sleep(0.2)
            pidfile.unlink(missing_ok=True)
        if not _port_free(node.port):
            raise PortBusy(node.port, node.name, PORT_SETTING)
        node.log_file.touch()
        chown_server(node.log_file, 0o600)
        proc = run_server_cmd([str(bindir / "pg_ctl"), "-D", str(node.data_dir), "-l", str(node.log_file), "-w",
                     "-t", str(START_TIMEOUT_S), "start"], what=f"starting local node '{node.name}'", check=False)
        if proc.returncode != 0:
            tail = "".join(node.log_file.read_text(errors="replace").splitlines(True)[-8:])
            raise LocalStackError(
                f"Local node '{node.name}' (port {node.port}) did not start: {redact(tail.strip())}",
                f"read {node.log_file}, fix the cause, then run `invoke local.up` again "
                f"(or `invoke local.down --purge` to start from scratch).")

    def _build_replica(self, bindir: Path, node: NodeSpec) -> None:
        lay = self.layout
        if node_pid(node) is not None or _orphans(node):
            raise LocalStackError(f"Local node '{node.name}' still has server processes in {node.data_dir}; "
                                  f"its data directory is not removed under them.",
                                  "run `invoke local.status`, stop the node, then run `invoke local.up` again.")
        if node.node_dir.exists():
            shutil.rmtree(node.node_dir)  # an interrupted basebackup: rebuild from scratch
        node.node_dir.mkdir(parents=True)
        chown_server(node.node_dir, 0o700)
        with connect(self.conninfo(), autocommit=True, application_name=tool_application_name("local")) as conn:
            conn.execute("SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                         "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (node.slot, node.slot))
        run_server_cmd([str(bindir / "pg_basebackup"), "-D", str(node.data_dir), "-h", "127.0.0.1",
              "-p", str(lay.primary.port), "-U", "postgres", "--no-password", "-X", "stream",
              "-S", node.slot, "-c", "fast"], what=f"pg_basebackup for replica '{node.name}'",
             env={"PGPASSFILE": str(lay.passfile)})
        auto = node.data_dir / "postgresql.auto.conf"
        with open(auto, "a") as f:
            f.write(render_conf({
                "port": str(node.port),
                "primary_conninfo": "'" + primary_conninfo(lay, node).replace("'", "''") + "'",
                "primary_slot_name": f"'{node.slot}'",
            }))
        chown_server(auto, 0o600)
        (node.data_dir / "standby.signal").touch()  # last: its presence means the replica is complete
        chown_server(node.data_dir / "standby.signal", 0o600)
        (node.node_dir / READY_MARK).touch()

    def _write_state(self, bindir: Path) -> None:
        lay = self.layout
        old = self.read_state() or {}
        state = {"base_port": lay.base_port, "replicas": lay.replicas, "primary": lay.primary.name,
                 "nodes": lay.state_nodes(), "pg_bindir": str(bindir), "created_at": old.get("created_at")
                 or datetime.now(timezone.utc).isoformat(timespec="seconds")}
        tmp = lay.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(lay.state_file)

    def read_state(self) -> dict | None:
        try:
            return json.loads(self.layout.state_file.read_text())
        except (OSError, ValueError):
            return None

    # ---- status ----------------------------------------------------------------------------
    def status(self) -> list[dict]:
        """One dict per node: name, role, host, port, pid, state ("running" | "stopped" |
        "not created" | "unreachable"), replay_lag_bytes (bytes the replica's replay is behind the
        primary's current WAL position, from ``pg_stat_replication``; None on the primary or when
        the replica is not streaming)."""
        lags: dict[str, int | None] = {}
        if node_pid(self.layout.primary) is not None:
            try:
                with connect(self.conninfo(), autocommit=True, connect_timeout=3,
                             application_name=tool_application_name("status")) as conn:
                    for name, lag in conn.execute(
                            "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint "
                            "FROM pg_stat_replication"):
                        lags[name] = lag
            except Exception as exc:  # status must report, not fail
                log.debug("status: primary query failed: %s", redact(str(exc)))
        rows = []
        for node in self.layout.nodes:
            pid = node_pid(node)
            if not (node.data_dir / "PG_VERSION").exists():
                state = "not created"
            elif pid is None:
                state = "stopped"
            elif node.role == FENCED:  # pg_hba refuses the stack's own role there: the process is the check
                state = "running"
            else:
                state = "running"
                try:
                    with connect(self.conninfo(node), autocommit=True, connect_timeout=3,
                                 application_name=tool_application_name("status")) as conn:
                        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                    if in_recovery != (node.role == "replica"):
                        state = "wrong role"
                except Exception:
                    state = "unreachable"
            row = {"name": node.name, "role": node.role, "host": "127.0.0.1", "port": node.port,
                   "pid": pid, "state": state,
                   "replay_lag_bytes": lags.get(node.name) if node.role == "replica" else None}
            if node.role == FENCED:
                row["note"] = ("a blue/green cutover's old side: clients refused, kept for `invoke cutover.rollback` "
                               "until `invoke cutover.finish`")
            rows.append(row)
        if self.layout.pooler is not None:
            rows.append(self._pooler_status(self.layout.pooler))
        return rows

    def _pooler_status(self, pooler: PoolerSpec) -> dict:
        """The pooler as a node: "running" when its process is up and, while the primary runs, a query
        through it reaches the primary ("unreachable" otherwise). ``note``: what clients must know about
        the installed PgBouncer (:func:`~ops.local.layout.prepared_statements_note`; None when nothing)."""
        try:
            note = prepared_statements_note(installed_pgbouncer_version())
        except LocalStackError as exc:  # not installed: status reports, `local.up` raises
            note = str(exc)
        pid = pooler_pid(pooler)
        if not pooler.ini.exists():
            state = "not created"
        elif pid is None:
            state = "stopped"
        else:
            state = "running"
            # probe through it only when the primary runs: PgBouncer holds a query for a server
            # connection up to query_wait_timeout, so a probe would hang while the primary is down;
            # and never longer than POOLER_PROBE_S: a paused pooler holds it too
            if node_pid(self.layout.primary) is not None:
                problem = pooler_problem(self.pooler_conninfo())
                if problem is not None:
                    state = "paused" if problem[0] == "held" else "unreachable"
        return {"name": pooler.name, "role": pooler.role, "host": "127.0.0.1", "port": pooler.port, "pid": pid,
                "state": state, "replay_lag_bytes": None, "note": note}

    def wait_replicas_caught_up(self, timeout_s: float = 30.0) -> list[str]:
        """Wait until every running replica has replayed the primary's current WAL position.

        Returns the names of replicas still behind after ``timeout_s`` seconds (empty list: all caught up).
        """
        replicas = [n for n in self.layout.replica_nodes if node_pid(n) is not None]
        if not replicas:
            return []
        with connect(self.conninfo(), autocommit=True, application_name=tool_application_name("deploy")) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        behind = []
        for node in replicas:
            deadline = time.monotonic() + timeout_s
            ok = False
            with connect(self.conninfo(node), autocommit=True, application_name=tool_application_name("deploy")) as conn:
                while time.monotonic() < deadline:
                    done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]
                    if done:
                        ok = True
                        break
                    time.sleep(0.1)
            if not ok:
                behind.append(node.name)
        return behind

    # ---- down ------------------------------------------------------------------------------
    def _side_nodes(self) -> list[NodeSpec]:
        """Servers under the state directory outside the layout (a blue/green cutover's green, or
        an old blue kept after it): every ``*/data/postmaster.pid`` whose directory no node owns."""
        own = {n.node_dir for n in self.layout.nodes}
        out = []
        for pidfile in sorted(self.layout.state_dir.glob("*/data/postmaster.pid")):
            node_dir = pidfile.parent.parent
            if node_dir not in own:
                out.append(NodeSpec(node_dir.name, "other", 0, node_dir))
        return out

    def down(self, purge: bool = False) -> list[str]:
        """Stop replicas, then the primary (``pg_ctl stop -m fast``); with ``purge`` delete the whole
        state directory (data, logs, passfile, local backups). Returns what was done, one line each."""
        done = []
        pooler = self.layout.pooler
        if pooler is not None and (pid := pooler_pid(pooler)) is not None:  # clients first, then servers
            os.kill(pid, signal.SIGTERM)  # PgBouncer: SIGTERM is an immediate shutdown
            deadline = time.monotonic() + 15
            while _pid_alive(pid, b"pgbouncer") and time.monotonic() < deadline:
                time.sleep(0.05)
            done.append(f"stopped {pooler.name} (port {pooler.port})")
        for node in [*self.layout.replica_nodes, self.layout.primary, *self._side_nodes()]:
            if self.stop_node(node):
                done.append(f"stopped {node.name} (port {node.port})")
        if purge and self.layout.state_dir.exists():
            shutil.rmtree(self.layout.state_dir)
            done.append(f"purged {self.layout.state_dir}")
        return done

    def clear_stale_pid(self, node: NodeSpec, timeout_s: float = 30.0) -> bool:
        """When ``node``'s postmaster is dead (killed; a zombie counts as dead) but its
        ``postmaster.pid`` remains, wait up to ``timeout_s`` for its orphaned children to exit and
        remove the file, so tools that refuse a locked directory (``pg_rewind``'s single-user crash
        recovery) can run. Returns whether a stale file was removed."""
        pidfile = node.data_dir / "postmaster.pid"
        if node_pid(node) is not None or not pidfile.exists():
            return False
        deadline = time.monotonic() + timeout_s
        while _orphans(node) and time.monotonic() < deadline:
            time.sleep(0.2)
        pidfile.unlink(missing_ok=True)
        return True


def open_stack(state_dir: Path | None = None, port: int | None = None, replicas: int | None = None,
               extra_settings: dict[str, str] | None = None, throwaway: bool = False) -> LocalStack:
    """The local stack under ``state_dir`` (default :func:`default_state_dir`).

    An existing stack keeps the port recorded in its ``stack.json``; asking for another raises
    :class:`ConfigError`. ``port`` defaults to ``$PGOPS_LOCAL_PORT`` or 54320; ``replicas`` to the
    recorded count or 1. Fewer replicas than exist is refused (purge first).
    """
    state_dir = (state_dir or default_state_dir()).resolve()
    recorded = None
    try:
        recorded = json.loads((state_dir / "stack.json").read_text())
    except (OSError, ValueError):
        pass
    if port is None:
        port = settings.current().local_port
    if recorded:
        if port is not None and port != recorded["base_port"]:
            raise ConfigError([f"the local stack in {state_dir} already runs on port {recorded['base_port']}, not {port}"],
                              "run `invoke local.down --purge` first to move it to another port.")
        port = recorded["base_port"]
        if replicas is not None and replicas < recorded["replicas"]:
            raise ConfigError([f"the local stack has {recorded['replicas']} replicas; shrinking to {replicas} is not supported"],
                              "run `invoke local.down --purge` and `invoke local.up --replicas N`.")
        replicas = recorded["replicas"] if replicas is None else replicas
    if recorded:
        layout = layout_from_state(state_dir, recorded, replicas, pooler=not throwaway)
    else:
        layout = plan_layout(state_dir, DEFAULT_BASE_PORT if port is None else port,
                             DEFAULT_REPLICAS if replicas is None else replicas, pooler=not throwaway)
    return LocalStack(layout, extra_settings, throwaway)
