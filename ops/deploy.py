"""``invoke deploy`` on the local stack: stack up → create databases → migrate → verify → summary.

Plan as data, then a loop that stops at the first failure (patroni ``ha.py``). Each database's
migrations are atomic per migration (see :mod:`ops.migrations.runner`); a failure names the
database and migration and leaves nothing half-applied.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psycopg import sql

from .dsn import connect, tool_application_name
from .environment import Environment, migrations_dir
from .errors import ConfigError
from .migrations.discovery import list_databases
from .backups.engine import create_logical
from .migrations.runner import CheckResult, RunOptions, Target, migrate, status, verify


@dataclass
class DeployRow:
    """One database's outcome. Versions are the newest applied (None: none); seconds is wall time."""

    database: str
    created: bool
    before: int | None
    after: int | None
    applied: list[str]
    seconds: float
    checks_passed: int
    checks_total: int
    failed_checks: list[CheckResult] = field(default_factory=list)
    backup_id: str | None = None

    def as_dict(self) -> dict:
        return {"database": self.database, "created": self.created, "version_before": self.before,
                "version_after": self.after, "migrations_applied": self.applied,
                "seconds": round(self.seconds, 3), "checks_passed": self.checks_passed,
                "checks_total": self.checks_total, "pre_deploy_backup": self.backup_id,
                "failed_checks": [c.__dict__ for c in self.failed_checks]}


@dataclass
class DeployReport:
    stack: str
    rows: list[DeployRow]
    replicas_behind: list[str]
    seconds: float

    def as_dict(self) -> dict:
        return {"stack": self.stack, "databases": [r.as_dict() for r in self.rows],
                "replicas_behind": self.replicas_behind, "seconds": round(self.seconds, 3)}


def select_databases(sql_root: Path, wanted: list[str] | None) -> list[str]:
    """The databases to deploy: every folder under ``sql_root`` with migrations, or ``wanted``.
    Raises :class:`ConfigError` naming every unknown database at once."""
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


def ensure_database(params: dict, database: str) -> bool:
    """CREATE DATABASE when missing. Returns True when it was created."""
    with connect(params, dbname="postgres", autocommit=True, application_name=tool_application_name("deploy")) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return True


def deploy(env: Environment, sql_root: Path, databases: list[str] | None = None, opts: RunOptions | None = None,
           progress: Callable[[str], None] | None = None, repository=None) -> DeployReport:
    """Deploy every selected database of ``env`` (the local stack is brought up first).

    A database that already existed and has pending migrations is backed up first (seed 002's
    pre-migration backup) into ``repository`` (a :class:`~ops.backups.repository.Repository`; None
    skips it); the backup id is in the report and in the ledger's ``up`` events.
    With a ``--dsn`` environment the DSN's database (which must exist) is migrated with the chain of
    the one folder in ``databases``.
    Raises the first :class:`~ops.errors.OpsError` met (migration failures name database and
    migration; a failed backup stops the deploy before anything is applied). Failed verify checks do
    not raise: they are in the report for the caller to exit on.
    """
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    folders = select_databases(sql_root, databases)
    if env.dsn_database:  # --dsn: one existing database, migrated with the chain of the one folder named
        if len(folders) != 1:
            raise ConfigError(["with --dsn, deploy targets the DSN's one database; pass one --db (its migration folder)"])
        plan = [(folders[0], env.dsn_database)]
    else:
        plan = [(f, f) for f in folders]
    if env.local is not None:
        say("bringing up the local stack")
        env.local.up()
    rows = []
    for folder, db in plan:
        start = time.monotonic()
        created = False if env.dsn_database else ensure_database(env.primary, db)
        target = Target(db, env.primary, migrations_dir(sql_root, folder))
        backup_id = None
        if repository is not None and not created and status(target).pending:
            say(f"{db}: pre-deploy backup to {repository.url}")
            backup_id = create_logical(repository, env.primary, db, stack=env.stack, note="pre-deploy").id
        say(f"{db}: migrating")
        res = migrate(target, opts=opts, progress=lambda m, db=db: say(f"{db}: {m}"),
                      note=f"pre-deploy backup {backup_id}" if backup_id else "")
        checks = verify(target, record=bool(res.applied))  # a deploy that applies nothing writes nothing
        failed = [c for c in checks if not c.passed]
        rows.append(DeployRow(db, created, res.before, res.after, [f"{a.version}_{a.name}" for a in res.applied],
                              time.monotonic() - start, len(checks) - len(failed), len(checks), failed, backup_id))
    behind = env.local.wait_replicas_caught_up() if env.local is not None else []
    return DeployReport(env.stack, rows, behind, time.monotonic() - t0)
