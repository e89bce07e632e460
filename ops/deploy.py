"""``invoke deploy``: servers up → create databases → pre-deploy backup → migrate → verify → summary.

Plan as data, then a loop that stops at the first failure (patroni ``ha.py``). Each database's
migrations are atomic per migration (see :mod:`ops.migrations.runner`); a failure names the
database and migration and leaves nothing half-applied.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from psycopg import errors, sql

from .backups.engine import create_logical
from .dsn import connect, tool_application_name
from .migrations.gate import is_gated
from .migrations.runner import CheckResult, RunOptions, migrate, status, verify
from .migrations.runner import Target as MigrationTarget
from .pulumi_stack import StackWorkspace
from .settings import Settings
from .targets import AbstractTarget, AwsClients, AwsTarget, boto_clients, migrations_dir


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
    waiting: list[dict] = field(default_factory=list)  # gated (contract) migrations waiting for validation

    def as_dict(self) -> dict:
        return {"database": self.database, "created": self.created, "version_before": self.before,
                "version_after": self.after, "migrations_applied": self.applied,
                "seconds": round(self.seconds, 3), "checks_passed": self.checks_passed,
                "checks_total": self.checks_total, "pre_deploy_backup": self.backup_id,
                "failed_checks": [c.__dict__ for c in self.failed_checks], "waiting_for_validation": self.waiting}


@dataclass
class DeployReport:
    stack: str
    rows: list[DeployRow]
    replicas_behind: list[str]
    seconds: float

    def as_dict(self) -> dict:
        return {"stack": self.stack, "databases": [r.as_dict() for r in self.rows],
                "replicas_behind": self.replicas_behind, "seconds": round(self.seconds, 3)}


def ensure_database(params: dict, database: str) -> bool:
    """CREATE DATABASE when missing. Returns True when this call created it.

    Two first deploys racing both see it missing; the loser's CREATE DATABASE fails with
    duplicate_database (42P04) or, when the catalogs collide first, unique_violation (23505) on
    ``pg_database_datname_index`` — either means "it exists now", which is all a deploy needs.
    """
    with connect(params, dbname="postgres", autocommit=True, application_name=tool_application_name("deploy")) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            return False
        return True


def deploy(target: AbstractTarget, databases: list[str] | None = None, opts: RunOptions | None = None,
           progress: Callable[[str], None] | None = None, repository=None) -> DeployReport:
    """Deploy every selected database of ``target`` (whose servers are brought up first).

    A database that already existed and has pending migrations is backed up first (seed 002's
    pre-migration backup) into ``repository`` (a :class:`~ops.backups.repository.Repository`; None
    skips it); the backup id is in the report and in the ledger's ``up`` events. For a ``--dsn``
    target the DSN's database (which must exist) is migrated with the chain of the one folder named.
    Raises the first :class:`~ops.errors.OpsError` met (migration failures name database and
    migration; a failed backup stops the deploy before anything is applied). Failed verify checks do
    not raise: they are in the report for the caller to exit on.
    """
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    refs = target.databases(databases)
    target.ensure_up(say)
    rows = []
    for ref in refs:
        start = time.monotonic()
        created = ensure_database(target.primary, ref.name) if target.create_databases() else False
        mt = MigrationTarget(ref.name, target.primary, migrations_dir(target.settings.sql_root, ref.folder))
        backup_id = None
        st = status(mt)  # a migration waiting for validation will not run: it needs no backup
        runnable = [m for m in st.pending if m.version not in {w["version"] for w in st.waiting}]
        if repository is not None and not created and runnable:
            contract = any(is_gated(m) for m in runnable)  # the gate is open: the legacy tables go
            say(f"{ref.name}: {'pre-contract' if contract else 'pre-deploy'} backup to {repository.url}")
            backup_id = create_logical(repository, target.primary, ref.name, stack=target.name,
                                       note="pre-contract" if contract else "pre-deploy").id
        say(f"{ref.name}: migrating")
        res = migrate(mt, opts=opts, progress=lambda m, db=ref.name: say(f"{db}: {m}"),
                      note=f"pre-deploy backup {backup_id}" if backup_id else "")
        checks = verify(mt, record=bool(res.applied))  # a deploy that applies nothing writes nothing
        failed = [c for c in checks if not c.passed]
        rows.append(DeployRow(ref.name, created, res.before, res.after, [f"{a.version}_{a.name}" for a in res.applied],
                              time.monotonic() - start, len(checks) - len(failed), len(checks), failed, backup_id,
                              res.waiting))
    return DeployReport(target.name, rows, target.wait_replicas(), time.monotonic() - t0)


def deploy_aws(settings: Settings, workspace: StackWorkspace, *, yes: bool, databases: list[str] | None,
               clients_for: Callable[[str], AwsClients] = boto_clients, sslmode: str = "verify-full",
               sslrootcert: str | None = None, progress: Callable[[str], None] | None = None,
               wait_delay_s: float = 30) -> tuple[str, DeployReport | None]:
    """``invoke deploy --stack NAME``: preview → without ``yes`` stop → up → read the outputs →
    wait until the instances are available → the database steps of :func:`deploy` (pre-deploy
    backup to the stack's S3 repository, migrate, verify) over ``sslmode`` TLS.

    Returns (preview text, report or None when only previewed).
    """
    from .backups.repository import open_repository
    say = progress or (lambda _m: None)
    say(f"previewing stack {settings.stack}")
    preview = workspace.preview()
    if not yes:
        return preview, None
    say(f"updating stack {settings.stack}")
    outputs = workspace.up()
    say("waiting for the instances to be available")
    target = AwsTarget.from_outputs(settings, settings.stack, outputs, clients_for(outputs["region"]), sslmode=sslmode,
                                    sslrootcert=sslrootcert, wait=True, wait_delay_s=wait_delay_s)
    repo = open_repository(target.repository_url(), target.kms_key_id())
    return preview, deploy(target, databases, repository=repo, progress=say)
