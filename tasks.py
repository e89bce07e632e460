"""Invoke collections: parse options, call ``ops.commands``. No logic lives here.

    invoke deploy | local.up | local.status | local.down | db.status | db.plan | db.migrate |
    db.rollback | db.verify | db.new | db.lint | db.baseline | db.seed
"""
from invoke import Collection, task

from ops import commands as cmd

COMMON = {
    "stack": "stack name (default: local, or $PGOPS_STACK)",
    "dsn": "any PostgreSQL instead of the stack: libpq DSN including dbname (or $PGOPS_DSN)",
    "sql_root": "folder holding <database>/migrations/ (default: sql/)",
    "db": "database (folder under sql/); repeat for several; default: all",
    "json": "print JSON for machines instead of tables",
}
TARGET = {k: v for k, v in COMMON.items() if k != "json"}
RUN_KNOBS = {
    "lock_wait": "seconds to wait for another runner's advisory lock (default 60)",
    "lock_timeout": "lock_timeout per statement, seconds (default 2)",
    "statement_timeout": "statement_timeout per statement, seconds (default 0 = none)",
    "retries": "retries of a migration after a lock timeout (default 5)",
    "preflight": "long/idle-in-transaction sessions: wait | refuse | skip (default wait)",
    "max_xact_age": "preflight: transactions older than this many seconds block (default 60)",
}


@task(iterable=["db"], help={**COMMON, "lock_wait": RUN_KNOBS["lock_wait"], "lock_timeout": RUN_KNOBS["lock_timeout"],
                             "repository": "where pre-deploy backups go (default: the stack's repository)",
                             "no_backup": "skip the pre-deploy backup of databases with pending migrations",
                             "yes": "AWS stacks: apply the previewed changes (without it, preview and stop)"})
def deploy(c, stack=None, db=None, dsn=None, sql_root=None, json=False, lock_wait=None, lock_timeout=None,
           repository=None, no_backup=False, yes=False):
    """Stack up, create missing databases, back up those with pending migrations, migrate, verify, summarise."""
    cmd.deploy(stack=stack, db=db, dsn=dsn, sql_root=sql_root, json=json, lock_wait=lock_wait, lock_timeout=lock_timeout,
               repository=repository, no_backup=no_backup, yes=yes)


@task(help={"stack": "AWS stack name (required)", "json": COMMON["json"]})
def preview(c, stack=None, json=False):
    """Pulumi preview of an AWS stack: what `invoke deploy --stack NAME --yes` would change."""
    cmd.preview(stack=stack, json=json)


# ---- local.* ------------------------------------------------------------------------------------
@task(help={"replicas": "streaming replicas (default 1, or the existing count)",
            "port": "primary port; replicas take the next ones (default 54320 or $PGOPS_LOCAL_PORT)",
            "json": COMMON["json"]})
def up(c, replicas=None, port=None, json=False):
    """Start the local stack (primary + N streaming replicas); idempotent, recovers a crashed node."""
    cmd.local_up(replicas=replicas, port=port, json=json)


@task(help={"json": COMMON["json"]})
def status(c, json=False):
    """Show every local node: role, port, pid, state, replay lag in bytes."""
    cmd.local_status(json=json)


@task(help={"purge": "also delete the state directory (data, logs, local backups)"})
def down(c, purge=False):
    """Stop the local stack (replicas first); --purge deletes its data."""
    cmd.local_down(purge=purge)


local = Collection("local", up, status, down)


# ---- db.* ---------------------------------------------------------------------------------------
@task(name="status", iterable=["db"], help=COMMON)
def db_status(c, stack=None, dsn=None, sql_root=None, db=None, json=False):
    """Applied, pending, changed (checksum drift), missing and dirty migrations."""
    cmd.db_status(stack=stack, dsn=dsn, sql_root=sql_root, db=db, json=json)


@task(name="plan", iterable=["db"], help={**COMMON, "offline": "plan every migration without a database"})
def db_plan(c, stack=None, dsn=None, sql_root=None, db=None, json=False, offline=False):
    """Pending migrations, the lock each statement takes, lint graded by live table size. Changes nothing."""
    cmd.db_plan(stack=stack, dsn=dsn, sql_root=sql_root, db=db, json=json, offline=offline)


@task(name="migrate", iterable=["db", "accept_changed"], help={
    **COMMON, **RUN_KNOBS, "to": "stop after this version", "dry_run": "show what would run; change nothing",
    "resume": "finish a dirty non-transactional migration from its failed statement",
    "accept_changed": "accept that applied VERSION's up.sql changed (updates its checksum); repeatable",
    "allow_out_of_order": "apply pending versions older than the newest applied one",
    "strict": "refuse when lint finds problems in pending migrations"})
def db_migrate(c, stack=None, dsn=None, sql_root=None, db=None, to=None, dry_run=False, resume=False,
               accept_changed=None, allow_out_of_order=False, strict=False, json=False, lock_wait=None,
               lock_timeout=None, statement_timeout=None, retries=None, preflight="wait", max_xact_age=None):
    """Apply pending migrations under the advisory lock, one transaction each where PostgreSQL allows."""
    cmd.db_migrate(stack=stack, dsn=dsn, sql_root=sql_root, db=db, to=to, dry_run=dry_run, resume=resume,
                   accept_changed=accept_changed, allow_out_of_order=allow_out_of_order, strict=strict, json=json,
                   lock_wait=lock_wait, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                   retries=retries, preflight=preflight, max_xact_age=max_xact_age)


@task(name="rollback", iterable=["db"], help={
    **TARGET, **RUN_KNOBS, "to": "revert every applied version above this one", "steps": "revert the newest N",
    "dry_run": "show the plan; change nothing"})
def db_rollback(c, stack=None, dsn=None, sql_root=None, db=None, to=None, steps=None, dry_run=False, lock_wait=None,
                lock_timeout=None, statement_timeout=None, retries=None, preflight="wait", max_xact_age=None):
    """Run down.sql newest first (--to V or --steps N); refuses up front if any down.sql is missing."""
    cmd.db_rollback(stack=stack, dsn=dsn, sql_root=sql_root, db=db, to=to, steps=steps, dry_run=dry_run,
                    lock_wait=lock_wait, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                    retries=retries, preflight=preflight, max_xact_age=max_xact_age)


@task(name="verify", iterable=["db"], help=COMMON)
def db_verify(c, stack=None, dsn=None, sql_root=None, db=None, json=False):
    """Run every applied migration's verify.sql; non-zero exit on any failed check."""
    cmd.db_verify(stack=stack, dsn=dsn, sql_root=sql_root, db=db, json=json)


@task(name="new", help={"db": "database folder", "name": "migration slug", "sql_root": COMMON["sql_root"]})
def db_new(c, db, name, sql_root=None):
    """Scaffold the next migration: <version>_<name>/{up,down,verify}.sql."""
    cmd.db_new(db=db, name=name, sql_root=sql_root)


@task(name="lint", iterable=["db"], help={"sql_root": COMMON["sql_root"], "db": COMMON["db"], "json": COMMON["json"]})
def db_lint(c, sql_root=None, db=None, json=False):
    """Lint every migration's up.sql on its parse tree (rule, file:line, message, safe rewrite)."""
    cmd.db_lint(sql_root=sql_root, db=db, json=json)


@task(name="baseline", iterable=["db"], help={**TARGET, "to": "version the existing database is at",
                                              "dry_run": "show what would be recorded"})
def db_baseline(c, to, stack=None, dsn=None, sql_root=None, db=None, dry_run=False):
    """Record an existing database as at version --to without running anything."""
    cmd.db_baseline(to=to, stack=stack, dsn=dsn, sql_root=sql_root, db=db, dry_run=dry_run)


@task(name="seed", help={"db": "database (syncscript)", "users": "number of users (default 1000)",
                         "seed": "random seed; same seed, same rows (default 42)", "stack": COMMON["stack"],
                         "dsn": COMMON["dsn"], "replace": "truncate existing syncscript data first",
                         "json": COMMON["json"]})
def db_seed(c, db="syncscript", users=1000, seed=42, stack=None, dsn=None, replace=False, json=False):
    """Fill every syncscript table with realistic, referentially consistent rows."""
    cmd.db_seed(db=db, users=users, seed=seed, stack=stack, dsn=dsn, replace=replace, json=json)


dbns = Collection("db", db_status, db_plan, db_migrate, db_rollback, db_verify, db_new, db_lint, db_baseline, db_seed)
ns = Collection(deploy, preview, local, dbns)


# ---- backup.* -----------------------------------------------------------------------------------
REPO_HELP = {"repository": "file:///path or s3://bucket/prefix (default: the stack's, or $PGOPS_REPOSITORY)",
             "stack": COMMON["stack"], "dsn": COMMON["dsn"]}


@task(name="create", iterable=["db"], help={**REPO_HELP, "db": COMMON["db"], "json": COMMON["json"],
                                            "kind": "logical (pg_dump, default) or snapshot (local: pg_basebackup)"})
def backup_create(c, db=None, dsn=None, stack=None, kind="logical", repository=None, json=False):
    """Take a backup; its manifest.json is written last (no manifest, no backup)."""
    cmd.backup_create(db=db, dsn=dsn, stack=stack, kind=kind, repository=repository, json=json)


@task(name="list", iterable=["db"], help={**REPO_HELP, "db": COMMON["db"], "json": COMMON["json"]})
def backup_list(c, db=None, dsn=None, stack=None, repository=None, json=False):
    """Backups with a manifest, newest first, and the age of each database's newest backup."""
    cmd.backup_list(db=db, dsn=dsn, stack=stack, repository=repository, json=json)


@task(name="show", help={**REPO_HELP, "backup_id": "backup id"})
def backup_show(c, backup_id, dsn=None, stack=None, repository=None):
    """Print a backup's manifest."""
    cmd.backup_show(backup_id=backup_id, dsn=dsn, stack=stack, repository=repository)


@task(name="verify", help={**REPO_HELP, "backup_id": "backup id", "json": COMMON["json"]})
def backup_verify(c, backup_id, dsn=None, stack=None, repository=None, json=False):
    """Re-hash the object against its manifest and read it with pg_restore --list; exit 7 on mismatch."""
    cmd.backup_verify(backup_id=backup_id, dsn=dsn, stack=stack, repository=repository, json=json)


@task(name="restore", help={**REPO_HELP, "backup_id": "backup id", "dsn": "target database DSN (required)",
                            "clean": "replace what the backup holds in a non-empty target",
                            "yes_overwrite_primary": "allow restoring over the stack's own primary"})
def backup_restore(c, backup_id, dsn=None, stack=None, repository=None, clean=False, yes_overwrite_primary=False):
    """Restore a logical backup into --dsn in one transaction (all or nothing), after verifying it."""
    cmd.backup_restore(backup_id=backup_id, dsn=dsn, stack=stack, repository=repository, clean=clean,
                       yes_overwrite_primary=yes_overwrite_primary)


@task(name="prune", iterable=["db"], help={**REPO_HELP, "db": COMMON["db"], "json": COMMON["json"],
                                           "apply": "really delete (default: dry run)",
                                           "force": "allow deleting more than half of the backups"})
def backup_prune(c, db=None, dsn=None, stack=None, repository=None, apply=False, force=False, json=False):
    """GFS retention (seed 002: 30 daily, 12 weekly, 12 monthly, 5 yearly) with safety floors; dry run by default."""
    cmd.backup_prune(db=db, dsn=dsn, stack=stack, repository=repository, apply=apply, force=force, json=json)


backupns = Collection("backup", backup_create, backup_list, backup_show, backup_verify, backup_restore, backup_prune)
ns.add_collection(backupns)


# ---- drill.* ------------------------------------------------------------------------------------
@task(name="run", iterable=["db"], help={
    **REPO_HELP, "db": COMMON["db"], "backup": "backup id, or latest (default)",
    "kind": "logical (default) or snapshot (physical backup of the local cluster)",
    "json": "also write the JSON report to this PATH", "keep_target": "keep the scratch server and print how to reach it",
    "sql_root": COMMON["sql_root"],
    "target_dsn": "restore a logical backup into a temporary database on this server instead of a scratch cluster"})
def drill_run(c, db=None, dsn=None, stack=None, backup="latest", kind="logical", repository=None, json=None,
              keep_target=False, sql_root=None, target_dsn=None):
    """Restore a backup into a throwaway server, check the data, report RTO/RPO; exit 8 when it fails."""
    cmd.drill_run(db=db, dsn=dsn, stack=stack, backup=backup, kind=kind, repository=repository, json=json,
                  keep_target=keep_target, sql_root=sql_root, target_dsn=target_dsn)


@task(name="history", iterable=["db"], help={**REPO_HELP, "db": COMMON["db"], "json": COMMON["json"]})
def drill_history(c, db=None, dsn=None, stack=None, repository=None, json=False):
    """Past restore drills with their outcome, RTO and RPO."""
    cmd.drill_history(db=db, dsn=dsn, stack=stack, repository=repository, json=json)


drillns = Collection("drill", drill_run, drill_history)
ns.add_collection(drillns)
