"""``db.*``: the migration engine's tasks (status, plan, migrate, rollback, verify, new, lint, baseline, seed), and
the runbooks' fixes from ``ops.tasks.remedies`` (terminate, drop-slot, reindex-invalid)."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from invoke import Collection

from ..dsn import connect, tool_application_name
from ..errors import ChecksumDrift, ConfigError, DestructiveHeld, DirtyDatabase, RollbackRefused
from ..planapply import Plan, Step, execute
from ..seeds import load_seeder
from ..settings import DEFAULT_SQL_ROOT
from . import remedies, transfer
from .common import HELP, RUN_KNOBS, cli, fmt_version, open_repo, rerun, settings_for, target_for, task

if TYPE_CHECKING:  # annotations only: heavy modules load inside the tasks (start-up time)
    from ..migrations.runner import RunOptions, Target as MigrationTarget
    from ..targets import AbstractTarget, DatabaseRef

COMMON = {k: HELP[k] for k in ("stack", "dsn", "sql_root", "db", "json_")}
TARGET = {k: HELP[k] for k in ("stack", "dsn", "sql_root", "db")}


def migration_targets(target: AbstractTarget, db) -> list[MigrationTarget]:
    """One migration target per database the selection means on ``target``."""
    return [mt for _, mt in selected(target, db)]


def selected(target: AbstractTarget, db) -> list[tuple[DatabaseRef, MigrationTarget]]:
    """Each database the selection means, with its migration target (the folder names the chain)."""
    from ..migrations.runner import Target as MigrationTarget
    from ..targets import migrations_dir
    return [(ref, MigrationTarget(ref.name, target.primary, migrations_dir(target.settings.sql_root, ref.folder)))
            for ref in target.databases(list(db or []) or None)]


def run_options(lock_wait=None, lock_timeout=None, statement_timeout=None, retries=None, preflight="wait",
                max_xact_age=None, dry_run=False) -> RunOptions:
    """Validate the run knobs before anything runs (exit 2 on a bad one)."""
    from ..migrations.locking import PREFLIGHT_MODES
    from ..migrations.runner import RunOptions
    return RunOptions(lock_wait_s=cli.as_float(lock_wait, "--lock-wait", 60.0),
                      lock_timeout_s=cli.as_float(lock_timeout, "--lock-timeout", 2.0),
                      statement_timeout_s=cli.as_float(statement_timeout, "--statement-timeout", 0.0),
                      retries=cli.as_int(retries, "--retries", minimum=0) if retries is not None else 5,
                      preflight=cli.choice(preflight or "wait", "--preflight", PREFLIGHT_MODES),
                      max_xact_age_s=cli.as_float(max_xact_age, "--max-xact-age", 60.0),
                      dry_run=dry_run)


@task(name="status", iterable=["db"], help=COMMON)
@cli.edge
def status(c, stack=None, dsn=None, sql_root=None, db=None, json_=False):
    """Applied, pending, changed (checksum drift), missing and dirty migrations; exit 5 when dirty or drifted."""
    from ..migrations import runner
    results = {t.database: runner.status(t) for t in migration_targets(target_for(stack, dsn, sql_root), db)}
    if json_:
        cli.emit_json({d: s.as_dict() for d, s in results.items()})
    else:
        for d, s in results.items():
            cli.table(f"{d}: current version {fmt_version(s.current)}, {len(s.pending)} pending",
                      ["version", "name", "state", "applied at"],
                      [[r.version, r.name, r.state, r.applied_at] for r in s.rows])
            for v in s.missing:
                cli.warn(f"{d}: {v} is in the ledger but missing on disk")
            for w in s.waiting:
                cli.say(f"{d}: {w['version']}_{w['name']} is waiting for validation: {w['reason']}")
    for d, s in results.items():
        if s.dirty:
            x = s.dirty
            raise DirtyDatabase(d, x.version, x.name, x.statements_done, x.statements_total, x.failed_statement,
                                x.error or "interrupted")
        if s.drifted:
            raise ChecksumDrift(d, list(s.drifted))


@task(name="plan", iterable=["db"], help={**COMMON, "offline": "plan every migration without a database"})
@cli.edge
def plan(c, stack=None, dsn=None, sql_root=None, db=None, json_=False, offline=False):
    """Pending migrations, the lock each statement takes, lint graded by live table size. Changes nothing."""
    from ..migrations import runner
    from ..migrations.discovery import discover
    from ..targets import migrations_dir, select_databases
    if offline:
        root = settings_for(sql_root=sql_root).sql_root
        targets = [(d, None, migrations_dir(root, d)) for d in select_databases(root, list(db or []) or None)]
    else:
        targets = [(t.database, t, t.migrations_dir) for t in migration_targets(target_for(stack, dsn, sql_root), db)]
    output = {}
    for name, mt, mdir in targets:
        pending, statements, findings = runner.plan(mt, discover(mdir), live=not offline)
        output[name] = {"pending": [m.folder for m in pending],
                        "statements": [s.__dict__ for s in statements],
                        "findings": [f.as_dict() for f in findings]}
        if not json_:
            cli.table(f"{name}: {len(pending)} pending migration(s)",
                      ["migration", "stmt", "line", "statement", "lock", "table"],
                      [[s.migration, s.index, s.line, s.kind, s.lock, s.table] for s in statements])
            print_findings(name, findings)
    if json_:
        cli.emit_json(output)


def print_findings(name, findings):
    if findings:
        cli.table(f"{name}: lint", ["rule", "severity", "where", "message", "safe rewrite", "table size"],
                  [[f.rule, f.severity, f"{f.file}:{f.line}", f.message, f.rewrite, f.size] for f in findings])
    else:
        cli.say(f"{name}: no lint findings")


@task(name="migrate", iterable=["db", "accept_changed"], help={
    **COMMON, **RUN_KNOBS, "to": "stop after this version",
    "dry_run": "print the SQL that would run and run the preflight; change nothing",
    "resume": "finish a dirty non-transactional migration from its failed statement",
    "accept_changed": "accept that applied VERSION's up.sql changed (updates its checksum); repeatable",
    "allow_out_of_order": "apply pending versions older than the newest applied one",
    "strict": "refuse when lint finds problems in pending migrations",
    "yes": "apply migrations that destroy data (DROP TABLE/COLUMN, TRUNCATE, -- pgops:destructive, a contract "
           "migration whose gate is open) without asking",
    "repository": "where the backup before a migration that destroys data goes (default: the stack's)",
    "no_backup": "skip the backup before a migration that destroys data"})
@cli.edge
def migrate(c, stack=None, dsn=None, sql_root=None, db=None, to=None, dry_run=False, resume=False,
            accept_changed=None, allow_out_of_order=False, strict=False, json_=False, lock_wait=None,
            lock_timeout=None, statement_timeout=None, retries=None, preflight="wait", max_xact_age=None,
            yes=False, repository=None, no_backup=False):
    """Apply pending migrations under the advisory lock, one transaction each where PostgreSQL allows.
    Migrations that destroy data are shown in a plan (after a backup step) and need a "y" on a
    terminal or --yes; piped without --yes: exit 2, nothing changed."""
    from ..deploy import pending_for
    from ..migrations import runner
    from ..migrations.destructive import describe
    opts = run_options(lock_wait, lock_timeout, statement_timeout, retries, preflight, max_xact_age, dry_run)
    to_v = cli.as_int(to, "--to", minimum=0)
    accepted = tuple(cli.as_int(v, "--accept-changed") for v in (accept_changed or []))
    report = []
    target = target_for(stack, dsn, sql_root, repository)
    frags = cli.target_args(stack, dsn, sql_root)
    say = None if json_ else cli.progress
    knobs = dict(resume=resume, accept_changed=accepted, allow_out_of_order=allow_out_of_order, strict=strict)
    for ref, mt in selected(target, db):
        again = [f"--db {ref.folder}", *([f"--to {to_v}"] if to_v is not None else []),
                 *(["--resume"] if resume else []), *(f"--accept-changed {v}" for v in accepted),
                 *(["--allow-out-of-order"] if allow_out_of_order else []), *(["--strict"] if strict else []),
                 *(["--repository", shlex.quote(repository)] if repository else []),
                 *(["--no-backup"] if no_backup else [])]
        p = pending_for(mt, to=to_v)
        if dry_run or not p.needs_confirmation:  # a dry run shows what the confirmed run would do
            res = runner.migrate(mt, to=to_v, opts=opts, progress=say, confirmed=p.confirmed if dry_run else (), **knobs)
        else:
            res = migrate_destructive(target, p, to=to_v, opts=opts, yes=yes, repo=open_repo(target, skipped=no_backup),
                                      rerun=rerun("db.migrate", frags, *again), progress=say, knobs=knobs)
        if res.held:  # destructive and not in a confirmed plan (it appeared after the plan was read)
            raise DestructiveHeld([(mt.database, res.held[0])], rerun("db.migrate", frags, *again))
        if dry_run:
            for m in p.destructive:
                if m.version in res.planned:
                    cli.warn(f"{mt.database}: {describe(m)} needs a confirmation or --yes")
        blockers = dry_run_preflight(mt, opts) if dry_run else []
        report.append((mt, res, blockers))
    if json_:
        cli.emit_json([{"database": r.database, "version_before": r.before, "version_after": r.after,
                        "dry_run": dry_run, "planned": r.planned, "seconds": round(r.seconds, 3),
                        "applied": [a.__dict__ for a in r.applied], "waiting_for_validation": r.waiting,
                        **({"sql": planned_sql(mt, r.planned), "preflight_blockers": b} if dry_run else {})}
                       for mt, r, b in report])
        return
    for mt, r, blockers in report:
        if dry_run:
            cli.say(f"{r.database}: dry run, would apply {r.planned or 'nothing'}")
            for folder, text in planned_sql(mt, r.planned).items():
                cli.say(f"-- {r.database}: {folder}/up.sql\n{text.rstrip()}\n")
            cli.say(f"{r.database}: preflight: " + ("no blocking sessions" if not blockers else "; ".join(
                f"pid {b['pid']} ({b['state']}, transaction open {b['xact_age_s']:.0f} s)" for b in blockers)))
        else:
            cli.table(f"{r.database}: {fmt_version(r.before)} → {fmt_version(r.after)} ({r.seconds:.2f} s)",
                      ["version", "name", "ms", "transaction", "attempts"],
                      [[a.version, a.name, a.duration_ms, "yes" if a.transactional else "no", a.attempts]
                       for a in r.applied])
        for v in r.missing:
            cli.warn(f"warning: {r.database}: version {v} is in the ledger but missing on disk")
        for w in r.waiting:
            cli.say(f"{r.database}: {w['version']}_{w['name']} is waiting for validation: {w['reason']}")


def migrate_destructive(target, p, *, to: int | None, opts: RunOptions, yes: bool, repo, rerun: str, progress,
                        knobs: dict):
    """Apply ``p`` (:class:`ops.deploy.Pending` with migrations that destroy data) as a destructive
    plan: a backup of the database first (pre-contract for a contract migration; skipped when
    ``repo`` is None, said in a note), then the migrations, each destructive one named with what it
    destroys. Shown, then applied after a terminal "y" or ``yes``; raises
    :class:`~ops.errors.ConfirmationRequired` (exit 2, nothing changed) otherwise. Returns the
    migrate result (None when the user answered no raises :class:`~ops.errors.PlanAborted`)."""
    from ..backups.engine import create_logical
    from ..deploy import migrate_step
    from ..migrations.gate import is_gated
    mt = p.target
    kind = "pre-contract" if any(is_gated(m) for m in p.destructive) else "pre-migrate"
    plan = Plan(f"migrate database '{mt.database}': {len(p.destructive)} migration(s) that destroy data", rerun)
    taken: list[str] = []
    if repo is not None:
        plan.steps.append(Step(f"back up {mt.database} to {repo.url} ({kind})",
                               lambda: taken.append(create_logical(repo, mt.params, mt.database, stack=target.name,
                                                                   note=kind).id) or taken[-1],
                               guard="manifest written last: no manifest, no backup"))
    else:
        plan.notes.append("--no-backup: no backup is taken; what these migrations drop can then only come back "
                          "from another backup")
    step = migrate_step(p, opts=opts, progress=progress, to=to, knobs=knobs,
                        note=lambda: f"{kind} backup {taken[-1]}" if taken else f"no {kind} backup")
    plan.steps.append(step)
    done = execute(plan, yes=yes, show=cli.say)
    if taken:
        cli.say(f"{mt.database}: {kind} backup {taken[-1]} (restore with `invoke backup.restore {taken[-1]}`)")
    return done[-1]


def planned_sql(mt: MigrationTarget, versions: list[int]) -> dict[str, str]:
    """The up.sql text of each planned migration, by folder (what a dry run prints: alembic ``--sql``)."""
    chain = {m.version: m for m in mt.chain()}
    return {chain[v].folder: chain[v].up_text for v in versions if v in chain}


def dry_run_preflight(mt: MigrationTarget, opts: RunOptions) -> list[dict]:
    """The sessions the preflight would wait for or refuse on, looked up without waiting."""
    from ..migrations.locking import find_blockers
    if opts.preflight == "skip":
        return []
    with connect(mt.params, dbname=mt.database, autocommit=True,
                 application_name=tool_application_name("preflight")) as conn:
        return find_blockers(conn, opts.max_xact_age_s, [conn.info.backend_pid])


@task(name="rollback", iterable=["db"], help={
    **TARGET, **RUN_KNOBS, "to": "revert every applied version above this one", "steps": "revert the newest N",
    "dry_run": "show the plan; change nothing", "yes": HELP["yes"], "repository": HELP["repository"],
    "no_backup": "skip the backup taken before reverting"})
@cli.edge
def rollback(c, stack=None, dsn=None, sql_root=None, db=None, to=None, steps=None, dry_run=False, yes=False,
             repository=None, no_backup=False, lock_wait=None, lock_timeout=None, statement_timeout=None,
             retries=None, preflight="wait", max_xact_age=None):
    """Run down.sql newest first (--to V or --steps N) after a backup; shows the plan and needs a
    confirmation or --yes; refuses up front if any down.sql is missing."""
    from ..migrations import runner
    from ..migrations.runner import RunOptions
    opts = run_options(lock_wait, lock_timeout, statement_timeout, retries, preflight, max_xact_age)
    to_v = cli.as_int(to, "--to", minimum=0)
    steps_n = cli.as_int(steps, "--steps", minimum=1)
    if to_v is None and steps_n is None:
        raise ConfigError(["db.rollback needs --to VERSION or --steps N"], "run `invoke db.status` to list versions.")
    target = target_for(stack, dsn, sql_root, repository)
    pairs = selected(target, db)
    repo = open_repo(target, skipped=no_backup or dry_run)
    frags = cli.target_args(stack, dsn, sql_root)
    for ref, mt in pairs:
        planned, _ = runner.rollback(mt, to=to_v, steps=steps_n, opts=RunOptions(**{**opts.__dict__, "dry_run": True}))
        again = [f"--to {to_v}" if to_v is not None else f"--steps {steps_n}", f"--db {ref.folder}",
                 *(["--repository", shlex.quote(repository)] if repository else []),
                 *(["--no-backup"] if no_backup else [])]
        p = rollback_plan(mt, planned, repo, target.name, opts, frags, again)
        done = execute(p, yes=yes, dry_run=dry_run, show=cli.say,
                       recheck=lambda mt=mt: cli.say(f"{mt.database}: now at version "
                                                     f"{fmt_version(runner.status(mt).current)}"))
        if done is not None:
            reverted = [r for r in done if isinstance(r, list)]
            cli.say(f"{mt.database}: reverted {sum(len(r) for r in reverted)} migration(s)")


def rollback_plan(mt: MigrationTarget, planned, repo, stack: str, opts: RunOptions, frags, args: list[str]) -> Plan:
    """Backup first (as deploy does), then one step per migration, newest first; each step's guard
    re-reads the ledger and refuses unless that migration is still the newest applied (or dirty) one."""
    from ..backups.engine import create_logical
    from ..migrations import runner
    p = Plan(f"roll back database '{mt.database}' ({len(planned)} migration(s))", rerun("db.rollback", frags, *args))
    if planned and repo is not None:
        p.steps.append(Step(f"back up {mt.database} to {repo.url}",
                            lambda: create_logical(repo, mt.params, mt.database, stack=stack, note="pre-rollback").id,
                            guard="manifest written last: no manifest, no backup"))
    for s in planned:
        p.steps.append(Step(f"revert {s.version}_{s.name}" + (" (dirty)" if s.dirty else ""),
                            lambda v=s.version: runner.rollback(mt, steps=1, opts=opts, expect_newest=v)[1],
                            guard=f"{s.version} is still the newest applied migration",
                            check=lambda v=s.version: _still_newest(mt, v)))
    return p


def _still_newest(mt: MigrationTarget, version: int) -> str | None:
    from ..migrations import runner
    st = runner.status(mt)
    newest = st.dirty.version if st.dirty else st.current
    return None if newest == version else f"the newest applied migration is now {newest}, not {version}"


@task(name="verify", iterable=["db"], help=COMMON)
@cli.edge
def verify(c, stack=None, dsn=None, sql_root=None, db=None, json_=False):
    """Run every applied migration's verify.sql; non-zero exit on any failed check."""
    from ..migrations import runner
    results = {mt.database: runner.verify(mt) for mt in migration_targets(target_for(stack, dsn, sql_root), db)}
    if json_:
        cli.emit_json({d: [r.__dict__ for r in rs] for d, rs in results.items()})
    else:
        for d, rs in results.items():
            cli.table(f"{d}: verify", ["migration", "check", "passed", "detail"],
                      [[r.migration, r.check, "PASS" if r.passed else "FAIL", r.detail] for r in rs])
    for d, rs in results.items():
        cli.verify_or_fail(d, rs)


@task(name="new", help={"db": "database folder", "name": "migration slug", "sql_root": HELP["sql_root"]})
@cli.edge
def new(c, db, name, sql_root=None):
    """Scaffold the next migration: <version>_<name>/{up,down,verify}.sql."""
    from ..migrations.scaffold import scaffold
    if sql_root:
        root = settings_for(sql_root=sql_root).sql_root
    else:
        root = DEFAULT_SQL_ROOT
        root.mkdir(exist_ok=True)
    path = scaffold(root, db, name)
    cli.say(f"created {path}/ (up.sql, down.sql, verify.sql)")


@task(name="lint", iterable=["db"], help={k: HELP[k] for k in ("sql_root", "db", "json_")})
@cli.edge
def lint(c, sql_root=None, db=None, json_=False):
    """Lint every migration's up.sql on its parse tree (rule, file:line, message, safe rewrite)."""
    from ..migrations.discovery import discover
    from ..migrations.lint import lint_migration
    from ..targets import migrations_dir, select_databases
    root = settings_for(sql_root=sql_root).sql_root
    output = {}
    for d in select_databases(root, list(db or []) or None):
        findings = [f for m in discover(migrations_dir(root, d)) for f in lint_migration(m)]
        output[d] = [f.as_dict() for f in findings]
        if not json_:
            print_findings(d, findings)
    if json_:
        cli.emit_json(output)


@task(name="baseline", iterable=["db"], help={**TARGET, "to": "version the existing database is at",
                                              "dry_run": "show what would be recorded"})
@cli.edge
def baseline(c, to=None, stack=None, dsn=None, sql_root=None, db=None, dry_run=False):
    """Record an existing database as at version --to without running anything."""
    from ..migrations import runner
    v = cli.as_int(to, "--to", minimum=0)
    if v is None:
        raise RollbackRefused("db.baseline needs --to VERSION.", "run `invoke db.status` to list versions.")
    for mt in migration_targets(target_for(stack, dsn, sql_root), db):
        marked = runner.baseline(mt, v, run_options(dry_run=dry_run))
        cli.say(f"{mt.database}: {'would record' if dry_run else 'recorded'} {len(marked)} migration(s) as "
                f"applied up to {v}: {', '.join(m.folder for m in marked)}")


@task(name="seed", help={"db": "database whose sql/<db>/seed.py fills it (default syncscript)", "sql_root": HELP["sql_root"], "users": "number of users (default 1000)",
                         "seed": "random seed; same seed, same rows (default 42)", "stack": HELP["stack"],
                         "dsn": HELP["dsn"], "replace": "truncate existing syncscript data first",
                         "json_": HELP["json_"]})
@cli.edge
def seed(c, db="syncscript", users=None, seed=None, stack=None, dsn=None, sql_root=None, replace=False, json_=False):
    """Fill a database with realistic, referentially consistent rows from its sql/<db>/seed.py."""
    n_users = cli.as_int(users, "--users", minimum=1) or 1000  # option values stay strings: we parse them
    seed_n = cli.as_int(seed, "--seed")
    seed_n = 42 if seed_n is None else seed_n
    target = target_for(stack, dsn, sql_root)
    seeder = load_seeder(target.settings.sql_root, db)
    database = target.databases([db])[0].name
    with cli.row_progress(f"seeding {database}", len(seeder.TABLES), enabled=not json_) as advance:
        counts, seconds = seeder.generate(target.primary, database, n_users, seed_n, replace=replace,
                                          progress=advance)
    if json_:
        cli.emit_json({"database": database, "seconds": round(seconds, 3), "rows": counts})
    else:
        cli.table(f"{database}: seeded in {seconds:.1f} s", ["table", "rows"], [[k, f"{v:,}"] for k, v in counts.items()])


ns = Collection("db", status, plan, migrate, rollback, verify, new, lint, baseline, seed,
                *remedies.TASKS,  # terminate, drop-slot, reindex-invalid: the runbooks' fixes (ops/tasks/remedies.py)
                *transfer.TASKS)  # transfer, validate: expand/contract data transfer (ops/tasks/transfer.py)


from .partitions import partitions as _partitions  # noqa: E402 - db.partitions lives in its own module
ns.add_task(_partitions)
