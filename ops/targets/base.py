"""The target interface: where the databases are, and what differs between places.

Modelled on Patroni's ``AbstractDCS`` (``patroni/dcs/__init__.py``: one abstract class, one
implementation per store, the HA loop never asks which one it has) and Barman's
``CloudInterface``. A task resolves one :class:`AbstractTarget` (``ops.targets.resolve``) and calls
its methods; a difference between the local stack, an AWS stack and a bare ``--dsn`` is a method
here, never an ``if`` in a task.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

from ..dsn import describe, same_endpoint, system_identity
from ..errors import ConfigError, OpsError, RestoreRefused
from ..migrations.discovery import list_databases
from ..settings import Settings


def select_databases(sql_root: Path, wanted: list[str] | None) -> list[str]:
    """Folders under ``sql_root`` with migrations, or ``wanted`` (deduplicated, in order).

    Raises :class:`ConfigError` naming every unknown folder at once, and when there are none.
    """
    known = list_databases(sql_root)
    if not wanted:
        if not known:
            raise ConfigError([f"no databases under {sql_root} (expected <name>/migrations/ folders)"],
                              "create one with `invoke db.new --db NAME --name init`.")
        return known
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise ConfigError([f"unknown database '{d}' (not a folder with migrations under {sql_root})" for d in unknown],
                          f"choose from: {', '.join(known) or 'none'}.")
    return list(dict.fromkeys(wanted))


@dataclass(frozen=True)
class DatabaseRef:
    """One database a task acts on: ``name`` on the server, migrated with the chain of ``folder``
    (``sql/<folder>/migrations``). They differ only for ``--dsn`` (the DSN names the database)."""

    folder: str
    name: str


class AbstractTarget(ABC):
    """A set of PostgreSQL servers holding the managed databases.

    ``name`` is the stack name (``local``, an AWS stack) or ``dsn``; ``primary`` the libpq
    parameters of the primary without ``dbname`` (the password, when there is one, is a
    :class:`ops.secrets.Secret`); ``replicas`` the same for each read replica.
    """

    name: str
    settings: Settings

    @property
    @abstractmethod
    def primary(self) -> dict: ...

    @property
    def replicas(self) -> tuple[dict, ...]:
        return ()

    # ---- selection ------------------------------------------------------------------------------
    def databases(self, wanted: list[str] | None) -> list[DatabaseRef]:
        """What ``--db`` means here: every folder under ``--sql-root`` with migrations, or those named.

        Raises :class:`ConfigError` naming every unknown folder at once.
        """
        return [DatabaseRef(f, f) for f in select_databases(self.settings.sql_root, wanted)]

    def backup_names(self, wanted: list[str] | None) -> list[str]:
        """Names of the databases a backup or drill task acts on."""
        return [d.name for d in self.databases(wanted)]

    def listed_databases(self, wanted: list[str] | None) -> list[str | None]:
        """Databases whose backups/drills a read task lists: those named, or [None] for all."""
        return list(wanted or []) or [None]

    def repository_databases(self, wanted: list[str] | None) -> list[str]:
        """Databases ``backup.prune`` acts on: those named; empty means every database the repository holds."""
        return list(wanted or [])

    # ---- lifecycle ------------------------------------------------------------------------------
    def ensure_up(self, progress: Callable[[str], None]) -> None:
        """Make the servers reachable before a task that writes (the local stack starts; others: nothing)."""

    def create_databases(self) -> bool:
        """Whether ``deploy`` creates missing databases (False for ``--dsn``: the DSN's database must exist)."""
        return True

    def wait_replicas(self) -> list[str]:
        """After a deploy: names of replicas still replaying after the wait (empty when none lag)."""
        return []

    # ---- backups --------------------------------------------------------------------------------
    @abstractmethod
    def default_repository(self, reads: str | None = None) -> str:
        """The repository URL used without ``--repository``/``$PGOPS_REPOSITORY``. ``reads``: the task
        name when the task only reads the repository (``backup.list``), so a refusal says so.

        Raises :class:`ConfigError` where there is none (a bare ``--dsn``: its dumps must not land in the
        checkout unencrypted).
        """

    def repository_url(self, backups_skipped: bool = False, reads: str | None = None) -> str | None:
        """``--repository`` / ``$PGOPS_REPOSITORY``, else :meth:`default_repository`; None when skipped."""
        if backups_skipped:
            return None
        return self.settings.repository or self.default_repository(reads)

    def kms_key_id(self) -> str | None:
        return self.settings.kms_key_id

    def snapshot_backup(self, repo, databases: list[str], now: datetime, on_bytes=None) -> list[dict]:
        """``backup.create --kind snapshot``: returns one summary dict per snapshot taken; ``on_bytes``
        is fed streamed byte counts where the snapshot streams through pgops."""
        raise ConfigError([f"--kind snapshot needs the local stack or an AWS stack, not {self.name}"],
                          "run without --dsn, or use --kind logical.")

    def after_backup(self, repo, database: str, *, succeeded: bool, size_bytes: int, now: datetime) -> None:
        """Hook after each logical backup (an AWS stack publishes its CloudWatch freshness metrics)."""

    def prune_snapshots(self, repo, *, apply: bool, force: bool, now: datetime) -> list[tuple[str, object]]:
        """Retention over platform snapshots kept outside the repository: [(database, plan)]."""
        return []

    # ---- restore guards -------------------------------------------------------------------------
    def protected_endpoints(self) -> list[dict]:
        """libpq parameters (with ``dbname``) of every server a restore or drill must never overwrite."""
        return [dict(self.primary, dbname="postgres")]

    def protected_identities(self) -> list[tuple[str, int | None]]:
        """(description, PostgreSQL system identifier or None when it cannot be read) of every
        protected server. The default connects to each; a server that does not answer gives None."""
        out = []
        for p in self.protected_endpoints():
            try:
                out.append((describe(p), system_identity(p, p.get("dbname") or "postgres")[0]))
            except OpsError:
                out.append((describe(p), None))
        return out

    SYSTEM_DATABASES = ("postgres", "template0", "template1", "rdsadmin")
    """Databases a restore onto one of the target's servers never goes into without the flag."""

    def managed_database_names(self) -> list[str]:
        """Names of the databases this target manages (a restore must not overwrite them); empty
        when there is no migration folder to name them."""
        try:
            return self.backup_names(None)
        except ConfigError:
            return []

    def beside_managed(self, dest: Mapping, dest_db: str) -> str | None:
        """Why ``dest_db`` on one of this target's servers is *not* a safe place for a restore
        (None when it is: an empty database beside the managed ones — not managed, not a system
        database, no relation outside the system schemas). Connects to ``dest``."""
        from ..dsn import connect, tool_application_name
        if dest_db in self.SYSTEM_DATABASES:
            return f"'{dest_db}' is a system database"
        if dest_db in self.managed_database_names():
            return f"'{dest_db}' is one of the databases stack {self.name} manages"
        with connect(dest, dbname=dest_db, autocommit=True, application_name=tool_application_name("guard")) as conn:
            n = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN "
                             "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'").fetchone()[0]
        return f"'{dest_db}' is not empty ({n} relations)" if n else None

    def guard_restore_target(self, dest: Mapping, dest_db: str, *, allow_overwrite: bool = False) -> None:
        """Refuse to restore over one of this target's own databases — failing closed — but not
        into an empty database beside them.

        The destination is on one of the target's servers when it is at a protected endpoint (same
        port on a loopback name, or the same host and port), when its system identifier is a
        protected server's, or when a protected server's identity cannot be read (it might be the
        destination behind another name). On such a server the restore is allowed only into an
        empty database that is neither managed nor a system one (:meth:`beside_managed`): that is
        restoring *beside* the managed databases, which overwrites nothing (issue 19 §5).
        ``allow_overwrite`` (``--yes-overwrite-primary``) lifts the guard. Raises
        :class:`~ops.errors.RestoreRefused` (exit 7).
        """
        if allow_overwrite:
            return
        where = describe({**dest, "dbname": dest_db})
        hint = ("restore into a new, empty database (`CREATE DATABASE name`) beside the managed ones or on another "
                "server, or add --yes-overwrite-primary if you mean it.")
        why: list[str | None] = []

        def refuse(message: str, next_: str = hint) -> None:
            if not why:
                why.append(self.beside_managed(dest, dest_db))
            if why[0] is not None:
                raise RestoreRefused(f"{message}: {why[0]}; nothing was restored.", next_)
        for p in self.protected_endpoints():
            if same_endpoint(p, dest):
                return refuse(f"The restore target {where} is on one of stack {self.name}'s own servers ({describe(p)})")
        identities = self.protected_identities()
        if not identities:
            return
        mine = system_identity(dest, dest_db)[0]
        for desc, ident in identities:
            if ident is None:
                return refuse(f"Cannot read the identity of stack {self.name}'s server {desc}, so pgops cannot rule "
                              f"out that the restore target {where} is that server",
                              "make that server reachable and retry, restore into a new, empty database, or add "
                              "--yes-overwrite-primary if the target is certainly not it.")
            if ident == mine:
                return refuse(f"The restore target {where} is on stack {self.name}'s own server {desc} "
                              "(same system identifier)")

    def physical_passfile(self) -> Path | None:
        """The passfile a physical (pg_basebackup) drill uses to reach the source cluster."""
        return None

    # ---- drills ---------------------------------------------------------------------------------
    def snapshot_drill(self, repo, database: str, now: Callable[[], datetime]):
        """``drill.run --kind snapshot`` on a platform snapshot; None when the target drills the
        repository's physical backup instead (the local stack)."""
        return None

    def after_drill(self, report, now: datetime) -> None:
        """Hook after each drill (an AWS stack publishes the drill metrics)."""

    def after_job(self, job: str, *, succeeded: bool, seconds: float, now: datetime) -> None:
        """Hook after each scheduled job run (``schedule.run``): the local stack records it under its
        state directory, an AWS stack publishes ``JobSucceeded``/``JobSeconds``."""

    # ---- health ---------------------------------------------------------------------------------
    def health_nodes(self) -> list[tuple[str, str, dict]]:
        """(name, role, libpq parameters) of every server ``invoke health`` checks, primary first."""
        return [("primary", "primary", self.primary)] + \
            [(f"replica{i}", "replica", p) for i, p in enumerate(self.replicas, 1)]

    def platform_measurements(self, now: datetime) -> list:
        """Health measurements only the platform can give (AWS: CloudWatch); none by default."""
        return []

    def data_directories(self) -> dict[str, str]:
        """Node name → data directory whose file system ``disk_usage`` measures (local nodes only)."""
        return {}

    def cutover_engine(self):
        """The blue/green cutover engine for this target (same methods on every target: plan,
        prepare, status, run, verify, rollback, finish). Raises :class:`ConfigError` where there is
        nothing to cut over (a bare ``--dsn``)."""
        raise ConfigError([f"{self.name} has no blue/green cutover: a DSN names one server, not a stack"],
                          "run the cutover on the stack: `invoke cutover.status --stack NAME` (or the local stack).")

    def pooler_params(self) -> dict | None:
        """libpq parameters of the pooler applications use, when the target runs one."""
        return None

    # ---- failover -------------------------------------------------------------------------------
    def switchover(self, *, to: str | None, force: bool, rerun: str):
        """``failover.switchover``: an :class:`ops.failover.plan.Operation` (plan, report, unwind)."""
        raise ConfigError([f"failover.switchover needs the local stack or an AWS stack, not {self.name}"],
                          "run it with --stack (a bare --dsn names one server, with no replica to switch to).")

    def promote(self, *, node: str | None, rerun: str):
        """``failover.promote``: an :class:`ops.failover.plan.Operation` promoting a replica after the
        primary is lost."""
        raise ConfigError([f"failover.promote needs the local stack or an AWS stack, not {self.name}"],
                          "run it with --stack (a bare --dsn names one server, with no replica to promote).")

    def rejoin(self, *, node: str | None, rerun: str):
        """``failover.rejoin``: an Operation making ``node`` a streaming replica of the primary again."""
        raise ConfigError([f"failover.rejoin needs the local stack, not {self.name}"],
                          "on AWS, replace a lost instance with `invoke deploy --stack NAME`.")

    # ---- TLS (seed 001: SSL in production) ----------------------------------------------------------
    def require_tls(self) -> None:
        """Refuse, before connecting, a connection that would not use TLS where the platform demands it.
        The local stack and a bare ``--dsn`` leave it to libpq and the DSN; an AWS stack refuses
        (:class:`~ops.errors.TlsRequired`, exit 12)."""


def without_dbname(params: Mapping) -> dict:
    out = dict(params)
    out.pop("dbname", None)
    return out
