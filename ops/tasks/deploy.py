"""``deploy`` and ``preview``: bring a stack to its desired state and its databases to their newest migration."""
from __future__ import annotations

import shlex

from ..errors import ConfigError, DestructiveHeld
from ..pulumi_stack import open_workspace
from .common import HELP, RUN_KNOBS, cli, fmt_version, open_repo, rerun, settings_for, task


@task(iterable=["db"], help={**{k: HELP[k] for k in ("stack", "dsn", "sql_root", "db", "json_")},
                             "lock_wait": RUN_KNOBS["lock_wait"], "lock_timeout": RUN_KNOBS["lock_timeout"],
                             "repository": "where pre-deploy backups go (default: the stack's; --dsn needs one or --no-backup)",
                             "no_backup": "skip the pre-deploy backup of databases with pending migrations",
                             "yes": "apply migrations that destroy data (DROP TABLE/COLUMN, TRUNCATE, a contract "
                                    "migration) without asking; AWS stacks: also apply the previewed changes "
                                    "(without it, preview and stop)"})
@cli.edge
def deploy(c, stack=None, db=None, dsn=None, sql_root=None, json_=False, lock_wait=None, lock_timeout=None,
           repository=None, no_backup=False, yes=False):
    """Stack up, create missing databases, back up those with pending migrations, migrate, verify, summarise.
    A migration that destroys data in an existing database is shown in the plan first and applied only
    after a "y" on a terminal or --yes; piped without --yes the deploy exits 2 before any database is
    backed up or migrated, naming the command to run."""
    from ..deploy import deploy as run_deploy, deploy_aws
    from ..migrations.runner import RunOptions
    from ..targets import ca_bundle, resolve
    opts = RunOptions(lock_wait_s=cli.as_float(lock_wait, "--lock-wait", 60.0),
                      lock_timeout_s=cli.as_float(lock_timeout, "--lock-timeout", 2.0))
    s = settings_for(stack, dsn, sql_root, repository)
    say = None if json_ else cli.progress
    show = cli.warn if json_ else cli.say  # a plan that asks is shown even with --json (on stderr)
    again = rerun("deploy", cli.target_args(stack, dsn, sql_root), *(f"--db {shlex.quote(d)}" for d in db or ()),
                  *(["--repository", shlex.quote(repository)] if repository else []), *(["--no-backup"] if no_backup else []))
    if s.pulumi_stack:  # Pulumi up first; the database steps then run on the stack's target
        preview_text, report = deploy_aws(s, open_workspace(s.stack, create=yes), yes=yes, databases=list(db or []) or None,
                                          sslrootcert=ca_bundle(s), progress=say, rerun=again, show=show)
        if report is None:
            if json_:
                cli.emit_json({"stack": s.stack, "preview": preview_text, "applied": False})
            else:
                cli.say(f"preview of stack {s.stack}: {preview_text}\nnothing applied: rerun with --yes to apply.")
            return
    else:
        target = resolve(s)
        target.databases(list(db or []) or None)  # an unknown --db is refused before the repository is made,
        target.ensure_up(say)  # and a stack that cannot come up too (deploy's own first step; idempotent)
        report = run_deploy(target, list(db or []) or None, opts, progress=say,
                            repository=open_repo(target, skipped=no_backup), yes=yes, rerun=again, show=show)
    print_deploy(report, json_)
    for r in report.rows:
        cli.verify_or_fail(r.database, r.failed_checks)
    held = [(r.database, h) for r in report.rows for h in r.held[:1]]
    if held:  # a destructive migration that appeared after the plan was shown: the runner held it
        raise DestructiveHeld(held, again)


def print_deploy(report, json_):
    if json_:
        cli.emit_json(report.as_dict())
        return
    cli.table(f"deploy: stack {report.stack} ({report.seconds:.1f} s)",
              ["database", "version", "migrations applied", "seconds", "checks passed", "pre-deploy backup"],
              [[r.database + (" (created)" if r.created else ""), f"{fmt_version(r.before)} → {fmt_version(r.after)}"
                + "".join(f" ({w['version']} waiting for validation)" for w in r.waiting),
                len(r.applied), f"{r.seconds:.2f}", f"{r.checks_passed}/{r.checks_total}", r.backup_id or "—"]
               for r in report.rows])
    for r in report.rows:
        for w in r.waiting:
            cli.say(f"{r.database}: {w['version']}_{w['name']} is waiting for validation: {w['reason']}")
        for h in r.held:
            cli.warn(f"{r.database}: {h['version']}_{h['name']} was held back (destroys data, not confirmed)")
    if report.replicas_behind:
        cli.warn(f"warning: replicas still replaying after 30 s: {', '.join(report.replicas_behind)}")


@task(help={"stack": "AWS stack name (required)", "json_": HELP["json_"]})
@cli.edge
def preview(c, stack=None, json_=False):
    """Pulumi preview of an AWS stack: what `invoke deploy --stack NAME --yes` would change."""
    s = settings_for(stack)
    if not s.pulumi_stack:
        raise ConfigError(["the local stack has no Pulumi preview"], "run `invoke preview --stack NAME` for an AWS stack.")
    text = open_workspace(s.stack).preview()
    if json_:
        cli.emit_json({"stack": s.stack, "preview": text})
    else:
        cli.say(f"preview of stack {s.stack}: {text}")
