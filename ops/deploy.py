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
from .migrations.destructive import describe, is_destructive
from .migrations.gate import is_gated
from .migrations.runner import CheckResult, RunOptions, migrate, status, verify
from .migrations.runner import Target as MigrationTarget
from .planapply import Plan, Step, confirm_on_terminal, execute, interactive
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
    held: list[dict] = field(default_factory=list)  # destructive migrations not confirmed (not applied)

    def as_dict(self) -> dict:
        return {"database": self.database, "created": self.created, "version_before": self.before,
                "version_after": self.after, "migrations_applied": self.applied,
                "seconds": round(self.seconds, 3), "checks_passed": self.checks_passed,
                "checks_total": self.checks_total, "pre_deploy_backup": self.backup_id,
                "failed_checks": [c.__dict__ for c in self.failed_checks], "waiting_for_validation": self.waiting,
                "held_destructive": self.held}


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


@dataclass
class Pending:
    """What one database gets from a migrate run: ``runnable``, the pending migrations that will run
    (those held by a closed validation gate and those past ``to`` excluded), ``destructive``, the ones
    among them that destroy data (:mod:`ops.migrations.destructive`), and ``created``: the database was
    created by this run, so it holds nothing to lose and its destructive steps need no confirmation.
    ``waiting``: the gate's held migrations, as ``status`` gives them."""

    database: str
    target: MigrationTarget
    runnable: list = field(default_factory=list)
    destructive: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    created: bool = False

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.destructive) and not self.created

    @property
    def confirmed(self) -> set[int]:
        """The destructive versions the plan shows: passed to the runner once the plan is confirmed."""
        return {m.version for m in self.destructive}


def pending_for(mt: MigrationTarget, *, to: int | None = None, created: bool = False) -> Pending:
    """Read ``mt``'s ledger (no lock) and say what a migrate run up to ``to`` would apply."""
    st = status(mt)
    held = {w["version"] for w in st.waiting}
    runnable = [m for m in st.pending if m.version not in held and (to is None or m.version <= to)]
    return Pending(mt.database, mt, runnable, [m for m in runnable if is_destructive(m)], list(st.waiting), created)


def migrate_step(p: Pending, *, opts: RunOptions | None, progress: Callable[[str], None] | None,
                 note: Callable[[], str], to: int | None = None, knobs: dict | None = None) -> Step:
    """The plan step that applies ``p.runnable``: destructive migrations are named with what they
    destroy, and passed to the runner as confirmed — it re-reads the ledger under the advisory lock
    and holds back any destructive migration the plan did not show. ``knobs``: further keyword
    arguments of :func:`~ops.migrations.runner.migrate` (resume, accept_changed, ...)."""
    names = ", ".join(describe(m) for m in p.runnable) or "nothing pending"
    wait = "".join(f" ({w['version']} waiting for validation)" for w in p.waiting)
    return Step(f"{p.database}: apply {names}{wait}",
                lambda: migrate(p.target, to=to, opts=opts, progress=progress, note=note(), confirmed=p.confirmed,
                                **(knobs or {})),
                guard="destructive migrations confirmed; the ledger re-read under the advisory lock"
                if p.needs_confirmation else "")


def deploy(target: AbstractTarget, databases: list[str] | None = None, opts: RunOptions | None = None,
           progress: Callable[[str], None] | None = None, repository=None, *, yes: bool = False,
           rerun: str = "invoke deploy --yes", show: Callable[[str], None] | None = None,
           is_interactive: Callable[[], bool] = interactive, ask: Callable[[str], bool] = confirm_on_terminal
           ) -> DeployReport:
    """Deploy every selected database of ``target`` (whose servers are brought up first).

    The run is a plan (:mod:`ops.planapply`): per database a pre-deploy backup when it already
    existed and has migrations to run (seed 002's pre-migration backup, into ``repository``, a
    :class:`~ops.backups.repository.Repository`; None skips it; the id is in the report and in the
    ledger's ``up`` events), the migrations, then verify. When a migration to run destroys data
    (:mod:`ops.migrations.destructive`, e.g. a contract migration whose gate is open) in a database
    that existed before this run, the plan is shown with ``show`` and applied only with ``yes`` or a
    "y" on a terminal; otherwise :class:`~ops.errors.ConfirmationRequired` (exit 2) is raised
    before any backup or migration of any database ran — ``rerun`` is the command it names. Without
    a destructive step nothing is asked (the plan's lines go to ``progress``).

    For a ``--dsn`` target the DSN's database (which must exist) is migrated with the chain of the
    one folder named. Raises the first :class:`~ops.errors.OpsError` met (migration failures name
    database and migration; a failed backup stops the deploy before anything is applied). Failed
    verify checks do not raise: they are in the report for the caller to exit on.
    """
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    refs = target.databases(databases)
    target.ensure_up(say)
    rows: list[DeployRow] = []
    plan = Plan(f"deploy stack '{target.name}'", rerun)
    destructive = False
    for ref in refs:
        created = ensure_database(target.primary, ref.name) if target.create_databases() else False
        mt = MigrationTarget(ref.name, target.primary, migrations_dir(target.settings.sql_root, ref.folder))
        p = pending_for(mt, created=created)
        destructive = destructive or p.needs_confirmation
        row = DeployRow(ref.name, created, None, None, [], 0.0, 0, 0)
        rows.append(row)
        started = [0.0]
        if repository is not None and not created and p.runnable:
            # a migration waiting for validation will not run: it needs no backup
            kind = "pre-contract" if any(is_gated(m) for m in p.runnable) else "pre-deploy"

            def backup(row=row, ref=ref, kind=kind, started=started):
                started[0] = time.monotonic()
                row.backup_id = create_logical(repository, target.primary, ref.name, stack=target.name, note=kind).id
                return row.backup_id
            plan.steps.append(Step(f"{ref.name}: {kind} backup to {repository.url}", backup,
                                   guard="manifest written last: no manifest, no backup"))

        ms = migrate_step(p, opts=opts, progress=lambda m, db=ref.name: say(f"{db}: {m}"),
                          note=lambda row=row: f"pre-deploy backup {row.backup_id}" if row.backup_id else "")

        def apply(p=p, row=row, started=started, ms=ms):
            started[0] = started[0] or time.monotonic()
            res = ms.action()
            checks = verify(p.target, record=bool(res.applied))  # a deploy that applies nothing writes nothing
            failed = [c for c in checks if not c.passed]
            row.before, row.after, row.applied = res.before, res.after, [f"{a.version}_{a.name}" for a in res.applied]
            row.seconds = time.monotonic() - started[0]
            row.checks_passed, row.checks_total, row.failed_checks = len(checks) - len(failed), len(checks), failed
            row.waiting, row.held = res.waiting, res.held
            return res
        plan.steps.append(Step(ms.description + ", then verify", apply, guard=ms.guard))
    execute(plan, yes=yes or not destructive, show=(show or say) if destructive else say,
            is_interactive=is_interactive, ask=ask)
    return DeployReport(target.name, rows, target.wait_replicas(), time.monotonic() - t0)


def deploy_aws(settings: Settings, workspace: StackWorkspace, *, yes: bool, databases: list[str] | None,
               clients_for: Callable[[str], AwsClients] = boto_clients, sslmode: str = "verify-full",
               sslrootcert: str | None = None, progress: Callable[[str], None] | None = None,
               wait_delay_s: float = 30, rerun: str = "invoke deploy --yes",
               show: Callable[[str], None] | None = None) -> tuple[str, DeployReport | None]:
    """``invoke deploy --stack NAME``: preview → without ``yes`` stop → up → read the outputs →
    wait until the instances are available → the database steps of :func:`deploy` (pre-deploy
    backup to the stack's S3 repository, migrate, verify) over ``sslmode`` TLS. ``yes`` also confirms
    the migrations that destroy data (the deploy's plan shows them); ``rerun``/``show`` as for :func:`deploy`.

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
    return preview, deploy(target, databases, repository=repo, progress=say, yes=yes, rerun=rerun, show=show)
