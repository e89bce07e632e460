"""One function per task: resolve the target, call the library, print the result.

Kept apart from ``tasks.py`` so the task file stays a thin list of Invoke collections, and apart
from the library so the library never prints.
"""
from __future__ import annotations

from pathlib import Path

from . import cli
from .deploy import deploy as run_deploy, select_databases
from .environment import Environment, migrations_dir, resolve
from .errors import ConfigError, OpsError, RollbackRefused
from .local.cluster import open_stack
from .migrations import runner
from .migrations.discovery import discover
from .migrations.lint import lint_migration
from .migrations.runner import RunOptions, Target


def _fmt_v(v):
    return "—" if v is None else str(v)


# ---- local stack --------------------------------------------------------------------------------

@cli.edge
def local_up(replicas=None, port=None, json=False):
    st = open_stack(port=cli.as_int(port, "--port"), replicas=cli.as_int(replicas, "--replicas"))
    nodes = st.up()
    _print_nodes(nodes, json, f"local stack up ({st.layout.state_dir})")


@cli.edge
def local_status(json=False):
    st = open_stack()
    _print_nodes(st.status(), json, f"local stack ({st.layout.state_dir})")


@cli.edge
def local_down(purge=False):
    st = open_stack()
    done = st.down(purge=purge)
    cli.out.print("\n".join(done) if done else "local stack: nothing running")


def _print_nodes(nodes, json, title):
    if json:
        cli.emit_json({"nodes": nodes})
        return
    cli.table(title, ["name", "role", "host", "port", "pid", "state", "replay lag (bytes)"],
              [[n["name"], n["role"], n["host"], n["port"], n["pid"], n["state"], n["replay_lag_bytes"]] for n in nodes])


# ---- deploy -------------------------------------------------------------------------------------

@cli.edge
def deploy(stack=None, db=None, dsn=None, sql_root=None, json=False, lock_wait=None, lock_timeout=None,
           repository=None, no_backup=False, yes=False):
    import os
    from .environment import stack_name
    if not (dsn or os.environ.get("PGOPS_DSN")) and stack_name(stack) != "local":
        return _deploy_aws(stack_name(stack), db, sql_root, json, yes)
    env = resolve(stack, dsn)
    repo = None if no_backup else _repository(env, repository)
    root = cli.sql_root_path(sql_root)
    dbs = list(db or []) or ([env.dsn_database] if env.dsn_database else None)
    opts = RunOptions(lock_wait_s=cli.as_float(lock_wait, "--lock-wait", 60.0),
                      lock_timeout_s=cli.as_float(lock_timeout, "--lock-timeout", 2.0))
    report = run_deploy(env, root, dbs, opts, progress=None if json else cli.progress, repository=repo)
    _print_deploy(report, json)
    for r in report.rows:
        cli.verify_or_fail(r.database, r.failed_checks)


def _print_deploy(report, json):
    if json:
        cli.emit_json(report.as_dict())
        return
    cli.table(f"deploy: stack {report.stack} ({report.seconds:.1f} s)",
              ["database", "version", "migrations applied", "seconds", "checks passed", "pre-deploy backup"],
              [[r.database + (" (created)" if r.created else ""), f"{_fmt_v(r.before)} → {_fmt_v(r.after)}",
                len(r.applied), f"{r.seconds:.2f}", f"{r.checks_passed}/{r.checks_total}", r.backup_id or "—"]
               for r in report.rows])
    if report.replicas_behind:
        cli.err.print(f"warning: replicas still replaying after 30 s: {', '.join(report.replicas_behind)}")


def _deploy_aws(stack, db, sql_root, json, yes):
    from .aws_stack import ca_bundle, deploy_aws, open_workspace
    workspace = open_workspace(stack)
    preview, report = deploy_aws(stack, workspace, yes=yes, sql_root=cli.sql_root_path(sql_root),
                                 databases=list(db or []) or None, sslrootcert=ca_bundle(),
                                 progress=None if json else cli.progress)
    if report is None:
        if json:
            cli.emit_json({"stack": stack, "preview": preview, "applied": False})
        else:
            cli.out.print(f"preview of stack {stack}: {preview}\nnothing applied: rerun with --yes to apply.")
        return
    _print_deploy(report, json)
    for r in report.rows:
        cli.verify_or_fail(r.database, r.failed_checks)


@cli.edge
def preview(stack=None, json=False):
    from .aws_stack import open_workspace
    from .environment import stack_name
    name = stack_name(stack)
    if name == "local":
        raise ConfigError(["the local stack has no Pulumi preview"], "run `invoke preview --stack NAME` for an AWS stack.")
    text = open_workspace(name).preview()
    if json:
        cli.emit_json({"stack": name, "preview": text})
    else:
        cli.out.print(f"preview of stack {name}: {text}")


# ---- db.* ---------------------------------------------------------------------------------------

def _targets(stack, dsn, sql_root, db) -> list[Target]:
    """Targets for a db.* task: ``--db`` names migration folders; ``--dsn`` names the database."""
    env = resolve(stack, dsn)
    root = cli.sql_root_path(sql_root)
    if env.dsn_database:
        folders = list(db or []) or [env.dsn_database]
        if len(folders) > 1:
            raise ConfigError(["with --dsn, pass at most one --db (the migration folder to use)"])
        return [Target(env.dsn_database, env.primary, migrations_dir(root, folders[0]))]
    return [Target(d, env.primary, migrations_dir(root, d)) for d in select_databases(root, list(db or []) or None)]


def _opts(lock_wait=None, lock_timeout=None, statement_timeout=None, retries=None, preflight="wait",
          max_xact_age=None, dry_run=False) -> RunOptions:
    return RunOptions(lock_wait_s=cli.as_float(lock_wait, "--lock-wait", 60.0),
                      lock_timeout_s=cli.as_float(lock_timeout, "--lock-timeout", 2.0),
                      statement_timeout_s=cli.as_float(statement_timeout, "--statement-timeout", 0.0),
                      retries=cli.as_int(retries, "--retries") if retries is not None else 5,
                      preflight=preflight or "wait",
                      max_xact_age_s=cli.as_float(max_xact_age, "--max-xact-age", 60.0),
                      dry_run=dry_run)


@cli.edge
def db_status(stack=None, dsn=None, sql_root=None, db=None, json=False):
    results = {}
    for t in _targets(stack, dsn, sql_root, db):
        results[t.database] = runner.status(t)
    if json:
        cli.emit_json({d: s.as_dict() for d, s in results.items()})
        return
    for d, s in results.items():
        cli.table(f"{d}: current version {_fmt_v(s.current)}, {len(s.pending)} pending",
                  ["version", "name", "state", "applied at"],
                  [[r.version, r.name, r.state, r.applied_at] for r in s.rows])
        if s.dirty:
            cli.err.print(f"[red]{d} is dirty at {s.dirty.version}_{s.dirty.name}: "
                          f"{s.dirty.statements_done}/{s.dirty.statements_total} statements done; "
                          f"run `invoke db.migrate --db {d} --resume` or `invoke db.rollback --db {d} --steps 1`[/]",
                          markup=True)
        for v, name, a, b in s.drifted:
            cli.err.print(f"[yellow]{d}: {v}_{name} changed on disk since it was applied[/]", markup=True)
        for v in s.missing:
            cli.err.print(f"[yellow]{d}: {v} is in the ledger but missing on disk[/]", markup=True)


@cli.edge
def db_migrate(stack=None, dsn=None, sql_root=None, db=None, to=None, dry_run=False, resume=False,
               accept_changed=None, allow_out_of_order=False, strict=False, json=False, **knobs):
    opts = _opts(dry_run=dry_run, **knobs)
    accepted = tuple(cli.as_int(v, "--accept-changed") for v in (accept_changed or []))
    report = []
    for t in _targets(stack, dsn, sql_root, db):
        res = runner.migrate(t, to=cli.as_int(to, "--to"), resume=resume, accept_changed=accepted,
                             allow_out_of_order=allow_out_of_order, strict=strict, opts=opts,
                             progress=None if json else cli.progress)
        report.append(res)
    if json:
        cli.emit_json([{"database": r.database, "version_before": r.before, "version_after": r.after,
                        "dry_run": dry_run, "planned": r.planned, "seconds": round(r.seconds, 3),
                        "applied": [a.__dict__ for a in r.applied]} for r in report])
        return
    for r in report:
        if dry_run:
            cli.out.print(f"{r.database}: dry run, would apply {r.planned or 'nothing'}")
        else:
            cli.table(f"{r.database}: {_fmt_v(r.before)} → {_fmt_v(r.after)} ({r.seconds:.2f} s)",
                      ["version", "name", "ms", "transaction", "attempts"],
                      [[a.version, a.name, a.duration_ms, "yes" if a.transactional else "no", a.attempts]
                       for a in r.applied])
        for v in r.missing:
            cli.err.print(f"warning: {r.database}: version {v} is in the ledger but missing on disk")


@cli.edge
def db_rollback(stack=None, dsn=None, sql_root=None, db=None, to=None, steps=None, dry_run=False, **knobs):
    opts = _opts(dry_run=dry_run, **knobs)
    for t in _targets(stack, dsn, sql_root, db):
        plan, done = runner.rollback(t, to=cli.as_int(to, "--to"), steps=cli.as_int(steps, "--steps"), opts=opts,
                                     progress=cli.progress)
        cli.table(f"{t.database}: rollback plan{' (dry run)' if dry_run else ''}", ["version", "name", "dirty"],
                  [[s.version, s.name, "yes" if s.dirty else ""] for s in plan])
        if not dry_run:
            cli.out.print(f"{t.database}: reverted {len(done)} migration(s)")


@cli.edge
def db_verify(stack=None, dsn=None, sql_root=None, db=None, json=False):
    all_results = {}
    for t in _targets(stack, dsn, sql_root, db):
        all_results[t.database] = runner.verify(t)
    if json:
        cli.emit_json({d: [r.__dict__ for r in rs] for d, rs in all_results.items()})
    else:
        for d, rs in all_results.items():
            cli.table(f"{d}: verify", ["migration", "check", "passed", "detail"],
                      [[r.migration, r.check, "PASS" if r.passed else "FAIL", r.detail] for r in rs])
    for d, rs in all_results.items():
        cli.verify_or_fail(d, rs)


@cli.edge
def db_plan(stack=None, dsn=None, sql_root=None, db=None, json=False, offline=False):
    output = {}
    if offline:
        root = cli.sql_root_path(sql_root)
        targets = [(d, None, migrations_dir(root, d)) for d in select_databases(root, list(db or []) or None)]
    else:
        targets = [(t.database, t, t.migrations_dir) for t in _targets(stack, dsn, sql_root, db)]
    for name, target, mdir in targets:
        pending, statements, findings = runner.plan(target, discover(mdir), live=not offline)
        output[name] = {"pending": [m.folder for m in pending],
                        "statements": [s.__dict__ for s in statements],
                        "findings": [f.as_dict() for f in findings]}
        if not json:
            cli.table(f"{name}: {len(pending)} pending migration(s)", ["migration", "stmt", "line", "statement", "lock", "table"],
                      [[s.migration, s.index, s.line, s.kind, s.lock, s.table] for s in statements])
            _print_findings(name, findings)
    if json:
        cli.emit_json(output)


def _print_findings(name, findings):
    if findings:
        cli.table(f"{name}: lint", ["rule", "severity", "where", "message", "safe rewrite", "table size"],
                  [[f.rule, f.severity, f"{f.file}:{f.line}", f.message, f.rewrite, f.size] for f in findings])
    else:
        cli.out.print(f"{name}: no lint findings")


@cli.edge
def db_lint(sql_root=None, db=None, json=False):
    root = cli.sql_root_path(sql_root)
    output = {}
    for d in select_databases(root, list(db or []) or None):
        findings = [f for m in discover(migrations_dir(root, d)) for f in lint_migration(m)]
        output[d] = [f.as_dict() for f in findings]
        if not json:
            _print_findings(d, findings)
    if json:
        cli.emit_json(output)


@cli.edge
def db_new(db, name, sql_root=None):
    from .migrations.scaffold import scaffold
    path = scaffold(cli.sql_root_path(sql_root) if sql_root else _default_root_for_new(), db, name)
    cli.out.print(f"created {path}/ (up.sql, down.sql, verify.sql)")


def _default_root_for_new() -> Path:
    from .environment import DEFAULT_SQL_ROOT
    DEFAULT_SQL_ROOT.mkdir(exist_ok=True)
    return DEFAULT_SQL_ROOT


@cli.edge
def db_baseline(to, stack=None, dsn=None, sql_root=None, db=None, dry_run=False):
    v = cli.as_int(to, "--to")
    if v is None:
        raise RollbackRefused("db.baseline needs --to VERSION.", "run `invoke db.status` to list versions.")
    for t in _targets(stack, dsn, sql_root, db):
        marked = runner.baseline(t, v, _opts(dry_run=dry_run))
        cli.out.print(f"{t.database}: {'would record' if dry_run else 'recorded'} {len(marked)} migration(s) as "
                      f"applied up to {v}: {', '.join(m.folder for m in marked)}")


@cli.edge
def db_seed(db="syncscript", users=1000, seed=42, stack=None, dsn=None, replace=False, json=False):
    from .seeddata import seed_syncscript
    env = resolve(stack, dsn)
    database = env.dsn_database or db
    if db != "syncscript":
        raise ConfigError([f"db.seed knows the syncscript schema only, not '{db}'"], "run `invoke db.seed --db syncscript`.")
    counts, seconds = seed_syncscript(env.primary, database, cli.as_int(users, "--users"), cli.as_int(seed, "--seed"),
                                      replace=replace)
    if json:
        cli.emit_json({"database": database, "seconds": round(seconds, 3), "rows": counts})
    else:
        cli.table(f"{database}: seeded in {seconds:.1f} s", ["table", "rows"], [[k, f"{v:,}"] for k, v in counts.items()])


# ---- backup.* -----------------------------------------------------------------------------------

def _repository(env: Environment, url: str | None):
    import os
    from .backups.repository import open_repository
    url = url or os.environ.get("PGOPS_REPOSITORY") or env.repository
    if not url:  # --dsn with no repository: the local stack's default directory
        url = open_stack().layout.repository_dir.as_uri()
    return open_repository(url, os.environ.get("PGOPS_KMS_KEY_ID"))


def _backup_databases(env: Environment, db, sql_root=None) -> list[str]:
    if env.dsn_database:
        return [env.dsn_database]
    return select_databases(cli.sql_root_path(sql_root), list(db or []) or None)


def _age(created, now) -> str:
    secs = int((now - created).total_seconds())
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m" if secs >= 3600 else f"{secs // 60}m{secs % 60:02d}s"


@cli.edge
def backup_create(db=None, dsn=None, stack=None, kind="logical", repository=None, json=False):
    from datetime import datetime, timezone
    from .backups import engine
    env = resolve(stack, dsn)
    repo = _repository(env, repository)
    if kind not in ("logical", "snapshot"):
        raise ConfigError([f"--kind must be logical or snapshot, not '{kind}'"])
    if env.local is not None:
        env.local.up()
    clients = None
    if env.is_aws:
        from .aws_stack import boto_clients
        clients = boto_clients(env.region)
    now = lambda: datetime.now(timezone.utc)  # noqa: E731
    made = []
    if kind == "snapshot" and env.is_aws:
        from .aws_stack import snapshot_backups
        snaps = snapshot_backups(env, clients, _backup_databases(env, db), now())
        if json:
            cli.emit_json([{"id": s.id, "database": s.database, "kind": "snapshot", "created_at": s.created_at.isoformat(),
                            "status": s.status, "location": f"rds:{s.instance}"} for s in snaps])
        else:
            cli.table("RDS snapshots started", ["id", "database", "status"], [[s.id, s.database, s.status] for s in snaps],
                      whole_first=True)
        return
    if kind == "snapshot":
        if env.stack != "local":
            raise ConfigError(["--kind snapshot needs the local stack or an AWS stack, not --dsn"],
                              "run without --dsn, or use --kind logical.")
        made.append(engine.create_physical(repo, env.primary, stack=env.stack))
    else:
        from .aws_stack import publish_freshness
        for d in _backup_databases(env, db):
            if not json:
                cli.progress(f"{d}: dumping to {repo.url}")
            try:
                m = engine.create_logical(repo, env.primary, d, stack=env.stack)
            except OpsError:
                if clients is not None:
                    publish_freshness(env, clients, repo, d, succeeded=False, size_bytes=0, now=now())
                raise
            made.append(m)
            if clients is not None:
                publish_freshness(env, clients, repo, d, succeeded=True, size_bytes=m.size_bytes, now=now())
    if json:
        cli.emit_json([m.summary() for m in made])
    else:
        cli.table("backups created", ["id", "database", "kind", "size (bytes)", "seconds", "ledger version"],
                  [[m.id, m.database, m.kind, f"{m.size_bytes:,}", m.duration_s, m.ledger_version] for m in made],
                  whole_first=True)


@cli.edge
def backup_list(db=None, dsn=None, stack=None, repository=None, json=False):
    from datetime import datetime, timezone
    from .backups import engine
    env = resolve(stack, dsn)
    repo = _repository(env, repository)
    dbs = [env.dsn_database] if env.dsn_database else (list(db or []) or [None])
    found = [m for d in dbs for m in engine.list_backups(repo, d)]
    if json:
        cli.emit_json([m.summary() for m in found])
        return
    now = datetime.now(timezone.utc)
    cli.table(f"backups in {repo.url}", ["id", "database", "kind", "created_at", "age", "size (bytes)", "ledger"],
              [[m.id, m.database, m.kind, m.created_at, _age(m.created, now), f"{m.size_bytes:,}", m.ledger_version]
               for m in found], whole_first=True)
    newest = {}
    for m in found:
        newest.setdefault(m.database, m)
    for d, m in newest.items():
        cli.out.print(f"{d}: newest backup {m.id} is {_age(m.created, now)} old")


@cli.edge
def backup_show(backup_id, dsn=None, stack=None, repository=None):
    from .backups import engine
    repo = _repository(resolve(stack, dsn), repository)
    cli.out.print(engine.find_backup(repo, backup_id).to_json().decode())


@cli.edge
def backup_verify(backup_id, dsn=None, stack=None, repository=None, json=False):
    from .backups import engine
    repo = _repository(resolve(stack, dsn), repository)
    m = engine.find_backup(repo, backup_id)
    rows = engine.verify_backup(repo, m)
    if json:
        cli.emit_json({"id": m.id, "passed": all(r[1] for r in rows),
                       "checks": [{"name": c, "passed": p, "detail": d} for c, p, d in rows]})
    else:
        cli.table(f"verify {m.id}", ["check", "passed", "detail"], [[c, "PASS" if p else "FAIL", d] for c, p, d in rows])
    failed = [r for r in rows if not r[1]]
    if failed:
        raise engine.VerifyMismatch(f"Backup {m.id} failed verification: {'; '.join(c for c, _, _ in failed)}.",
                                    f"do not restore it; take a new one with `invoke backup.create --db {m.database}`.")


@cli.edge
def backup_restore(backup_id, dsn, stack=None, repository=None, clean=False, yes_overwrite_primary=False):
    from .backups import engine
    from .dsn import parse
    if not dsn:
        raise ConfigError(["backup.restore needs --dsn TARGET (the database to restore into)"])
    target = parse(dsn)
    target_db = target.pop("dbname", None)
    if not target_db:
        raise ConfigError(["the target DSN names no database (dbname=...)"])
    local = resolve(stack)
    repo = _repository(local, repository)
    m = engine.find_backup(repo, backup_id)
    protected = local.primary if local.local is not None and local.local.exists else None
    secs = engine.restore(repo, m, target, target_db, clean=clean, protected=protected,
                          yes_overwrite_primary=yes_overwrite_primary)
    cli.out.print(f"restored {m.id} ({m.database}, {m.size_bytes:,} bytes) into {target_db} in {secs:.1f} s")


@cli.edge
def backup_prune(db=None, dsn=None, stack=None, repository=None, apply=False, force=False, json=False):
    from .backups import engine
    env = resolve(stack, dsn)
    repo = _repository(env, repository)
    dbs = [env.dsn_database] if env.dsn_database else (list(db or []) or sorted(
        {o.key.split("/")[1] for o in repo.list("backups/") if o.key.count("/") >= 2}))
    reports = [engine.prune(repo, d, apply=apply, force=force) for d in dbs]
    snapshot_plans = []
    if env.is_aws:  # the same policy and floors over the stack's pgops-managed RDS snapshots
        from datetime import datetime, timezone
        from .aws_stack import boto_clients
        from .backups import rds
        client = boto_clients(env.region).rds
        for d in sorted({s.database for s in rds.list_snapshots(client, env.outputs["primary_id"])}):
            plan, _ = rds.prune_snapshots(client, env.outputs["primary_id"], d, datetime.now(timezone.utc),
                                          apply=apply, force=force, drill_passed=engine.drill_passed_ids(repo, d))
            snapshot_plans.append((d, plan))
    if json:
        cli.emit_json([{"database": r.database, "applied": r.applied,
                        "verdicts": [{"id": i.backup.id, "created_at": i.backup.created_at.isoformat(), "keep": i.keep,
                                      "reasons": list(i.reasons)} for i in r.plan.items],
                        "deleted": r.deleted, "orphans": r.orphans, "aborted_uploads": r.aborted_uploads}
                       for r in reports] +
                      [{"database": d, "kind": "rds-snapshot", "applied": apply,
                        "verdicts": [{"id": i.backup.id, "created_at": i.backup.created_at.isoformat(), "keep": i.keep,
                                      "reasons": list(i.reasons)} for i in plan.items]} for d, plan in snapshot_plans])
        return
    for d, plan in snapshot_plans:
        _print_verdicts(f"{d}: RDS snapshots", plan, apply)
    for r in reports:
        _print_verdicts(f"{r.database}: prune", r.plan, r.applied)
        if r.orphans or r.aborted_uploads:
            cli.out.print(f"{r.database}: orphans {len(r.orphans)}, abandoned uploads {len(r.aborted_uploads)}"
                          + ("" if r.applied else " (would be removed)"))


def _print_verdicts(title: str, plan, applied: bool) -> None:
    cli.table(f"{title} {'(applied)' if applied else '(dry run: add --apply to delete)'}",
              ["id", "created_at", "verdict", "reasons"],
              [[i.backup.id, i.backup.created_at.isoformat(), "keep" if i.keep else "DELETE", "; ".join(i.reasons)]
               for i in plan.items], whole_first=True)


# ---- drill.* ------------------------------------------------------------------------------------

@cli.edge
def drill_run(db=None, dsn=None, stack=None, backup="latest", kind="logical", repository=None, json=None,
              keep_target=False, sql_root=None, target_dsn=None):
    from pathlib import Path as _P
    from .backups import engine
    from .backups.manifest import CLUSTER
    from .drills.runner import run_drill, store_report
    from .dsn import parse
    env = resolve(stack, dsn)
    repo = _repository(env, repository)
    root = cli.sql_root_path(sql_root)
    if kind not in ("logical", "snapshot"):
        raise ConfigError([f"--kind must be logical or snapshot, not '{kind}'"])
    if kind == "snapshot" and env.is_aws:  # restore an RDS snapshot into a throwaway instance
        from datetime import datetime, timezone
        from .aws_stack import aws_snapshot_drill, boto_clients
        clients = boto_clients(env.region)
        reports = [aws_snapshot_drill(env, clients, repo, d, root, lambda: datetime.now(timezone.utc))
                   for d in _backup_databases(env, db, sql_root)]
        _print_drills(reports)
        return
    if backup and backup != "latest":
        manifests = [engine.find_backup(repo, backup)]
    else:
        dbs = [CLUSTER] if kind == "snapshot" else _backup_databases(env, db, sql_root)
        manifests = []
        for d in dbs:
            found = [m for m in engine.list_backups(repo, d) if m.kind == kind]
            if not found:
                raise OpsError(f"No {kind} backup of '{d}' in {repo.url}.",
                                      f"take one with `invoke backup.create --db {d}`" +
                                      (" --kind snapshot`." if kind == "snapshot" else "`."))
            manifests.append(found[0])
    protected = []
    if env.local is not None:
        protected = [env.local.conninfo(n) for n in env.local.layout.nodes]
    else:
        protected = [dict(env.primary, dbname=env.dsn_database)]
    reports = []

    def keep(report):  # runs whatever the outcome, Ctrl-C included
        reports.append(report)
        store_report(repo, report)
    try:
        for m in manifests:
            run_drill(repo, m, sql_root=root, protected=protected, keep_target=keep_target, progress=cli.progress,
                      passfile_for_physical=env.local.layout.passfile if env.local is not None else None,
                      on_report=keep, target=parse(target_dsn) if target_dsn else None)
            if env.is_aws:
                from datetime import datetime, timezone
                from .aws_stack import boto_clients
                from .backups.metrics import publish_drill_metrics
                r = reports[-1]
                publish_drill_metrics(boto_clients(env.region).cloudwatch, m.database, succeeded=r.passed,
                                      rto_seconds=r.rto_seconds, rpo_seconds=r.rpo_seconds,
                                      now=datetime.now(timezone.utc))
    finally:
        if json:
            doc = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
            _P(json).write_text(__import__("json").dumps(doc, indent=2, sort_keys=True) + "\n")
    _print_drills(reports)


def _print_drills(reports):
    for r in reports:
        cli.table(f"drill {'PASSED' if r.passed else 'FAILED'}: {r.database} from {r.backup_id}",
                  ["check", "passed", "detail"], [[c.name, "PASS" if c.passed else "FAIL", c.detail] for c in r.checks])
        rto = "—" if r.rto_seconds is None else f"{r.rto_seconds:.1f} s"
        cli.out.print(f"RTO {rto} · RPO {r.rpo_seconds:.0f} s · phases " +
                      ", ".join(f"{k} {v:.1f} s" for k, v in r.phases.items()))
        if r.kept_target:
            cli.out.print(f"target kept: {r.kept_target}")
    failed = [r for r in reports if not r.passed]
    if failed:
        raise DrillFailed(failed)


class DrillFailed(OpsError):
    exit_code = 8

    def __init__(self, reports):
        why = "; ".join(f"{r.database} from {r.backup_id}: " + (r.error or ", ".join(
            c.name for c in r.checks if not c.passed)) for r in reports)
        super().__init__(f"Restore drill failed: {why}.",
                         "read the report (`invoke drill.history`), then take a fresh backup with "
                         "`invoke backup.create` and drill it again.")


@cli.edge
def drill_history(db=None, dsn=None, stack=None, repository=None, json=False):
    from .drills.runner import history
    env = resolve(stack, dsn)
    repo = _repository(env, repository)
    dbs = [env.dsn_database] if env.dsn_database else (list(db or []) or [None])
    items = [h for d in dbs for h in history(repo, d)]
    if json:
        cli.emit_json([{k: h.get(k) for k in ("database", "backup_id", "kind", "started_at", "passed", "rto_seconds",
                                              "rpo_seconds", "phases", "error")} for h in items])
        return
    cli.table(f"restore drills in {repo.url}", ["started_at", "database", "backup", "result", "RTO (s)", "RPO (s)"],
              [[h.get("started_at"), h.get("database"), h.get("backup_id"), "PASS" if h.get("passed") else "FAIL",
                h.get("rto_seconds"), h.get("rpo_seconds")] for h in items])
