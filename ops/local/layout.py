"""Desired layout of the local stack: pure data, no I/O.

A new stack is a primary on ``base_port`` and replicas ``replica1..N`` on the following ports, each
with its own physical replication slot named after it (PostgreSQL docs, "Replication Slots"). Node
names are identities and roles move: after a switchover or a blue/green cutover the stack's
``stack.json`` records which node is the primary (:func:`layout_from_state`), and every task follows it.
During a blue/green cutover the side clients no longer reach has role :data:`FENCED`: ``local.up``
starts it when stopped but never rebuilds it, and the pooler never points at it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

DEFAULT_BASE_PORT = 54320
DEFAULT_REPLICAS = 1
MAX_REPLICAS = 8
POOLER_OFFSET = MAX_REPLICAS + 1  # the pooler listens on base_port + 9, beyond every replica port
#: the role of a blue/green cutover's old side between its switch and ``cutover.finish``: a complete
#: cluster clients are refused on (pg_hba), kept for the way back; neither primary nor replica
FENCED = "fenced"
PORT_SETTING = "`invoke local.up --port N` (or the PGOPS_LOCAL_PORT environment variable)"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


@dataclass(frozen=True)
class NodeSpec:
    """One server of the stack. ``slot`` is the physical slot a replica streams from (None on the primary)."""

    name: str
    role: str  # "primary" | "replica" | "fenced" (FENCED: a cutover's old side)
    port: int
    node_dir: Path
    slot: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.node_dir / "server.log"


@dataclass(frozen=True)
class PoolerSpec:
    """PgBouncer in front of the primary: ``port`` on loopback, its files under ``pooler_dir``."""

    port: int
    pooler_dir: Path
    name: str = "pooler"
    role: str = "pooler"

    @property
    def ini(self) -> Path:
        return self.pooler_dir / "pgbouncer.ini"

    @property
    def auth_file(self) -> Path:
        return self.pooler_dir / "userlist.txt"

    @property
    def pidfile(self) -> Path:
        return self.pooler_dir / "pgbouncer.pid"

    @property
    def log_file(self) -> Path:
        return self.pooler_dir / "pgbouncer.log"


@dataclass(frozen=True)
class StackLayout:
    """The whole stack under ``state_dir``: nodes (primary first), pgpass file and repository dir."""

    state_dir: Path
    base_port: int
    replicas: int
    nodes: tuple[NodeSpec, ...] = field(default_factory=tuple)
    pooler: PoolerSpec | None = None

    @property
    def primary(self) -> NodeSpec:
        """The node whose role is primary (exactly one in every layout this module builds)."""
        return next(n for n in self.nodes if n.role == "primary")

    @property
    def replica_nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == "replica")

    @property
    def fenced_nodes(self) -> tuple[NodeSpec, ...]:
        """Nodes with role :data:`FENCED` (a cutover's old side)."""
        return tuple(n for n in self.nodes if n.role == FENCED)

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``. Raises :class:`ConfigError` listing the stack's node names."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError([f"the local stack has no node '{name}' (its nodes: {', '.join(n.name for n in self.nodes)})"],
                          "run `invoke local.status` to see the nodes and their roles.")

    def with_roles(self, roles: dict[str, str], nodes: tuple[NodeSpec, ...] | None = None) -> "StackLayout":
        """A copy whose nodes (``nodes`` or the current ones) take the roles in ``roles`` (name → role;
        unnamed nodes keep theirs; a replica gets a slot named after it when it has none, a primary
        none). Raises :class:`ConfigError` unless exactly one node is primary."""
        def slot(n: NodeSpec, role: str) -> str | None:
            if role == "primary":
                return None
            return n.slot or (f"pgops_{n.name}" if role == "replica" else None)
        new = tuple(NodeSpec(n.name, roles.get(n.name, n.role), n.port, n.node_dir, slot(n, roles.get(n.name, n.role)))
                    for n in (self.nodes if nodes is None else nodes))
        if sum(n.role == "primary" for n in new) != 1:
            raise ConfigError(["a local stack needs exactly one primary"], "run `invoke local.status`.")
        return StackLayout(self.state_dir, self.base_port, sum(n.role == "replica" for n in new), new, self.pooler)

    def state_nodes(self) -> list[dict]:
        """The nodes as ``stack.json`` records them (read back by :func:`layout_from_state`)."""
        return [{"name": n.name, "role": n.role, "port": n.port, "dir": n.node_dir.name, "slot": n.slot}
                for n in self.nodes]

    @property
    def passfile(self) -> Path:
        return self.state_dir / "pgpass"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def repository_dir(self) -> Path:
        return self.state_dir / "repository"


def plan_layout(state_dir: Path, base_port: int = DEFAULT_BASE_PORT,
                replicas: int = DEFAULT_REPLICAS, pooler: bool = True) -> StackLayout:
    """Compute the stack layout.

    ``state_dir``: absolute directory (only ``[A-Za-z0-9_./+-]``, since it is written into
    ``primary_conninfo``); ``base_port``: TCP port of the primary, replicas take the next ones;
    ``replicas``: 0..8; ``pooler``: a PgBouncer on ``base_port + 9``. Raises :class:`ConfigError` listing every invalid value at once.
    """
    problems = []
    if not state_dir.is_absolute():
        problems.append(f"state directory '{state_dir}' must be an absolute path")
    if not _SAFE_PATH.match(str(state_dir)):
        problems.append(f"state directory '{state_dir}' may hold only letters, digits and _ . / + -")
    if not 1024 <= base_port <= 65535 - POOLER_OFFSET:
        problems.append(f"port {base_port} is outside 1024..{65535 - POOLER_OFFSET}")
    if not 0 <= replicas <= MAX_REPLICAS:
        problems.append(f"replicas={replicas} is outside 0..{MAX_REPLICAS}")
    if problems:
        raise ConfigError(problems, "fix the values and run `invoke local.up` again.")
    nodes = [NodeSpec("primary", "primary", base_port, state_dir / "primary")]
    for i in range(1, replicas + 1):
        nodes.append(NodeSpec(f"replica{i}", "replica", base_port + i, state_dir / f"replica{i}",
                              slot=f"pgops_replica{i}"))
    spec = PoolerSpec(base_port + POOLER_OFFSET, state_dir / "pooler") if pooler else None
    return StackLayout(state_dir, base_port, replicas, tuple(nodes), spec)


def layout_from_state(state_dir: Path, recorded: dict, replicas: int | None = None,
                      pooler: bool = True) -> StackLayout:
    """The layout a ``stack.json`` records: its nodes with their current roles when it lists them
    (stacks made before roles could move list only ``base_port`` and ``replicas``: the initial layout).
    ``replicas`` above the recorded count adds replicas on the first free ports after ``base_port``."""
    base = recorded["base_port"]
    if "nodes" not in recorded:
        return plan_layout(state_dir, base, recorded["replicas"] if replicas is None else replicas, pooler)
    nodes = [NodeSpec(r["name"], r["role"], int(r["port"]), state_dir / r["dir"], r.get("slot"))
             for r in recorded["nodes"]]
    want = len([n for n in nodes if n.role == "replica"]) if replicas is None else replicas
    used = {n.port for n in nodes} | {n.name for n in nodes}
    i = 1
    while sum(n.role == "replica" for n in nodes) < want:
        name, port = f"replica{i}", base + i
        if name not in used and port not in used and i <= MAX_REPLICAS:
            nodes.append(NodeSpec(name, "replica", port, state_dir / name, slot=f"pgops_{name}"))
        i += 1
        if i > 4 * MAX_REPLICAS:
            raise ConfigError([f"no free port for another replica after {base}"], "run `invoke local.status`.")
    spec = PoolerSpec(base + POOLER_OFFSET, state_dir / "pooler") if pooler else None
    return StackLayout(state_dir, base, sum(n.role == "replica" for n in nodes), tuple(nodes), spec)


def server_settings(node: NodeSpec, extra: dict[str, str] | None = None) -> dict[str, str]:
    """postgresql.conf settings every local node runs with: loopback only, no unix socket,
    streaming replication enabled, pg_stat_statements loaded (what RDS parameter groups set too)."""
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(node.port),
        "unix_socket_directories": "''",
        "wal_level": "logical",  # logical replication is what a blue/green cutover streams over
        "max_wal_senders": "20",
        "max_replication_slots": "20",
        "max_worker_processes": "16",
        "max_logical_replication_workers": "12",
        "wal_retrieve_retry_interval": "'500ms'",  # how soon a re-enabled subscription's worker starts
        "hot_standby": "on",
        "shared_preload_libraries": "'pg_stat_statements'",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
        "log_min_duration_statement": "1000",
        "shared_buffers": "'512MB'",
        "max_wal_size": "'4GB'",
        "checkpoint_timeout": "'15min'",
    }
    settings.update(extra or {})
    return settings


def render_conf(settings: dict[str, str]) -> str:
    """Render settings as postgresql.conf lines (values already quoted where PostgreSQL needs it)."""
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


def primary_conninfo(layout: StackLayout, node: NodeSpec) -> str:
    """The ``primary_conninfo`` a replica uses: loopback, password from the stack's passfile."""
    return (f"host=127.0.0.1 port={layout.primary.port} user=postgres "
            f"passfile={layout.passfile} application_name={node.name}")


def render_pgbouncer_ini(layout: StackLayout, target_port: int | None = None) -> str:
    """pgbouncer.ini for the stack's pooler: transaction pooling on loopback in front of the primary,
    SCRAM against the stack's own credentials (PgBouncer docs, "auth_type", "pool_mode"), no unix
    socket, ``postgres`` as admin (``SHOW POOLS``, and ``PAUSE``/``RESUME`` for cutovers). ``target_port``: the server it sends
    clients to (default the primary's port; a cutover points it at green)."""
    p = layout.pooler
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(p.port),
        "unix_socket_dir": "",
        "auth_type": "scram-sha-256",
        "auth_file": str(p.auth_file),
        "admin_users": "postgres",
        "stats_users": "postgres",
        "pool_mode": "transaction",
        "max_client_conn": "500",
        "default_pool_size": "20",
        "server_tls_sslmode": "disable",
        "ignore_startup_parameters": "extra_float_digits,options",
        "logfile": str(p.log_file),
        "pidfile": str(p.pidfile),
    }
    return ("; written by pgops: the local stack's pooler\n[databases]\n"
            f"* = host=127.0.0.1 port={target_port or layout.primary.port}\n\n[pgbouncer]\n"
            + "".join(f"{k} = {v}\n" for k, v in settings.items()))
