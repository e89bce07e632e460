"""Desired layout of the local stack: pure data, no I/O.

A new stack is a primary ``pg1`` on ``base_port`` and replicas ``pg2..pgN+1`` on the following ports,
each with its own physical replication slot named after it (PostgreSQL docs, "Replication Slots").
Node names are identities and never carry a role, because roles move (Patroni's member names do
the same): after a switchover or a blue/green cutover the stack's
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


def node_name(offset: int) -> str:
    """The name of the node on ``base_port + offset``: ``pg1``, ``pg2``, … — an identity, not a role."""
    return f"pg{offset + 1}"


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
    nodes = [NodeSpec(node_name(0), "primary", base_port, state_dir / node_name(0))]
    for i in range(1, replicas + 1):
        nodes.append(NodeSpec(node_name(i), "replica", base_port + i, state_dir / node_name(i),
                              slot=f"pgops_{node_name(i)}"))
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
        name, port = node_name(i), base + i
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


PREPARED_STATEMENTS_SINCE = (1, 21)  # PgBouncer 1.21.0: protocol-level named prepared statements (#845)
MAX_PREPARED_STATEMENTS = 100        # the 1.21.0 release notes: "100 is probably reasonable"
POOLER_DOC = 'README, "Connecting applications"'
POOLER_SAFE_SETTINGS = ("psycopg prepare_threshold=None, JDBC prepareThreshold=0, "
                        "pgx default_query_exec_mode=simple_protocol, asyncpg statement_cache_size=0")
# How soon the pooler tries a server again after a failed login (PgBouncer default 15 s: clients of a
# promoted replica waited that long after `failover.promote` re-pointed the pooler), and how long one
# connection attempt may take (default 15 s; loopback answers or refuses at once).
SERVER_LOGIN_RETRY_S = 0.25
SERVER_CONNECT_TIMEOUT_S = 2


def parse_pgbouncer_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from ``pgbouncer --version`` output (first line ``PgBouncer 1.18.0``;
    ``1.21`` alone reads as ``(1, 21, 0)``); None when the text names no version."""
    m = re.search(r"\bpgbouncer\s+(\d+)\.(\d+)(?:\.(\d+))?", text, re.IGNORECASE)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def passes_prepared_statements(version: tuple[int, ...] | None) -> bool:
    """Whether a PgBouncer of ``version`` keeps server-side (protocol-level named) prepared statements
    working in transaction pooling once ``max_prepared_statements`` is set (PgBouncer docs,
    "max_prepared_statements", new in 1.21.0). An unknown version (None) counts as not."""
    return version is not None and tuple(version[:2]) >= PREPARED_STATEMENTS_SINCE


def format_version(version: tuple[int, ...] | None) -> str:
    return "of unknown version" if version is None else ".".join(str(v) for v in version)


def prepared_statements_note(version: tuple[int, ...] | None) -> str | None:
    """What ``local.up``/``local.status`` tell the user about prepared statements through the pooler:
    None when PgBouncer ``version`` passes them through, else one sentence naming the version, the
    driver settings applications need, and the README section."""
    if passes_prepared_statements(version):
        return None
    return (f"PgBouncer {format_version(version)} in transaction pooling cannot keep server-side prepared "
            f"statements (that needs PgBouncer ≥ {'.'.join(map(str, PREPARED_STATEMENTS_SINCE))}): clients of the "
            f"pooler must turn them off ({POOLER_SAFE_SETTINGS}); see the {POOLER_DOC} section.")


def render_pgbouncer_ini(layout: StackLayout, *, version: tuple[int, ...] | None,
                         target_port: int | None = None) -> str:
    """pgbouncer.ini for the stack's pooler: transaction pooling on loopback in front of the primary,
    SCRAM against the stack's own credentials (PgBouncer docs, "auth_type", "pool_mode"), no unix
    socket, ``postgres`` as admin (``SHOW POOLS``, and ``PAUSE``/``RESUME`` for cutovers).

    ``version``: the installed PgBouncer's ``(major, minor, patch)`` (:func:`parse_pgbouncer_version`;
    None = unknown): from 1.21 ``max_prepared_statements`` is set so drivers' server-side prepared
    statements work in transaction pooling (older versions reject the key, so it is left out).
    ``target_port``: the server it sends clients to (default the primary's port; a cutover points
    it at green). ``server_login_retry``/``server_connect_timeout`` (PgBouncer docs, both in seconds,
    default 15) are short so clients reach a new primary within a second of the pooler being pointed
    at it."""
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
        "server_login_retry": str(SERVER_LOGIN_RETRY_S),
        "server_connect_timeout": str(SERVER_CONNECT_TIMEOUT_S),
        "logfile": str(p.log_file),
        "pidfile": str(p.pidfile),
    }
    if passes_prepared_statements(version):
        settings["max_prepared_statements"] = str(MAX_PREPARED_STATEMENTS)
    return (f"; written by pgops: the local stack's pooler (PgBouncer {format_version(version)})\n[databases]\n"
            f"* = host=127.0.0.1 port={target_port or layout.primary.port}\n\n[pgbouncer]\n"
            + "".join(f"{k} = {v}\n" for k, v in settings.items()))
