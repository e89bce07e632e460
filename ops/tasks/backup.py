"""``backup.*``: logical and snapshot backups, their listing, verification, restore and retention."""
from __future__ import annotations

import shlex
from datetime import datetime, timezone

from invoke import Collection

from ..dsn import parse
from ..secrets import protect_params
from ..errors import ConfigError, OpsError, PruneIncomplete, RestoreRefused, VerifyMismatch
from ..planapply import Plan, Step, execute
from ..retention import skew_problem, split_skewed
from .common import HELP, cli, open_repo, rerun, settings_for, target_for, task

REPO_HELP = {k: HELP[k] for k in ("repository", "stack", "dsn")}
KINDS = ("logical", "snapshot")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _age(created, now) -> str:
    """``now − created`` as ``1h05m``/``4m09s``; a time ahead within the clock-skew tolerance is 0
    (beyond it the backup is not listed: :func:`ops.retention.clock_skew`)."""
    secs = max(int((now - created).total_seconds()), 0)
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m" if secs >= 3600 else f"{secs // 60}m{secs % 60:02d}s"


@task(name="create", iterable=["db"], help={**REPO_HELP, "db": HELP["db"], "json_": HELP["json_"], "sql_root": HELP["sql_root"],
                                            "kind": "logical (pg_dump, default) or snapshot (local: pg_basebackup; AWS: RDS snapshot)"})
@cli.edge
def create(c, db=None, dsn=None, stack=None, kind="logical", repository=None, json_=False, sql_root=None):
    """Take a backup; its manifest.json is written last (no manifest, no backup)."""
    from ..backups import engine
    cli.choice(kind, "--kind", KINDS)
    target = target_for(stack, dsn, sql_root, repository=repository)
    target.repository_url()  # a bare --dsn without a repository is refused first, before anything is made
    names = target.backup_names(list(db or []) or None)
    target.ensure_up(cli.progress if not json_ else (lambda _m: None))
    repo = open_repo(target)  # created only once the databases and the server are known good
    if kind == "snapshot":
        with cli.transfer(f"snapshot → {repo.url}", enabled=not json_) as advance:
            made = target.snapshot_backup(repo, names, _now(), on_bytes=advance)
    else:
        made = []
        for d in names:
            if not json_:
                cli.progress(f"{d}: dumping to {repo.url}")
            try:
                with cli.transfer(f"{d}: pg_dump → {repo.url}", enabled=not json_) as advance:
                    m = engine.create_logical(repo, target.primary, d, stack=target.name, on_bytes=advance)
            except OpsError:
                target.after_backup(repo, d, succeeded=False, size_bytes=0, now=_now())
                raise
            target.after_backup(repo, d, succeeded=True, size_bytes=m.size_bytes, now=_now())
            made.append(m.summary())
    if json_:
        cli.emit_json(made)
        return
    cli.table("backups created", ["id", "database", "kind", "size (bytes)", "seconds", "ledger version / status"],
              [[m["id"], m["database"], m["kind"], f"{m['size_bytes']:,}" if "size_bytes" in m else "—",
                m.get("duration_s", "—"), m.get("ledger_version", m.get("status"))] for m in made], whole_first=True)


@task(name="list", iterable=["db"], help={**REPO_HELP, "db": HELP["db"], "json_": HELP["json_"]})
@cli.edge
def list_(c, db=None, dsn=None, stack=None, repository=None, json_=False):
    """Backups with a manifest, newest first, and the age of each database's newest backup."""
    from ..backups import engine
    target = target_for(stack, dsn, repository=repository)
    repo = open_repo(target, reads="backup.list")
    listings = [engine.scan_backups(repo, d) for d in target.listed_databases(list(db or []) or None)]
    now = _now()
    found, skewed = split_skewed([m for x in listings for m in x.valid], now)
    invalid = [b for x in listings for b in x.invalid]
    for b in invalid:  # on stderr in both modes: the JSON on stdout keeps the manifest shape
        cli.warn(f"invalid backup {b.id} (not listed, never restored or pruned automatically): {b.problem}")
    for m in skewed:  # the shared rule (ops.retention.clock_skew): never shown with a negative age
        cli.warn(f"invalid backup {m.id} of {m.database}: clock skew (not listed, not counted as the newest; "
                 f"prune refuses its database): {skew_problem(m.created, now)}. Next: check the clock of the host "
                 f"that took it (`timedatectl`), then `invoke backup.create` a fresh backup.")
    if json_:
        cli.emit_json([m.summary() for m in found])
        return
    cli.table(f"backups in {repo.url}", ["id", "database", "kind", "created_at", "age", "size (bytes)", "ledger"],
              [[m.id, m.database, m.kind, m.created_at, _age(m.created, now), f"{m.size_bytes:,}", m.ledger_version]
               for m in found], whole_first=True)
    newest = {}
    for m in found:
        newest.setdefault(m.database, m)
    for d, m in newest.items():
        cli.say(f"{d}: newest backup {m.id} is {_age(m.created, now)} old")




LATEST_HELP = "backup id, or latest (the newest backup of --db; with one database in the repository, --db may be left out)"


def _named_backup(target, repo, backup_id, db):
    """The manifest ``backup_id`` names: an id, or ``latest`` of the database ``--db`` (or the
    ``--dsn`` database) names."""
    from ..backups import engine
    return engine.resolve_backup(repo, backup_id, db or target.listed_databases(None)[0])


@task(name="show", help={**REPO_HELP, "backup_id": LATEST_HELP, "db": "with latest: the database"})
@cli.edge
def show(c, backup_id, dsn=None, stack=None, repository=None, db=None):
    """Print a backup's manifest."""
    target = target_for(stack, dsn, repository=repository)
    cli.say(_named_backup(target, open_repo(target, reads="backup.show"), backup_id, db).to_json().decode())


@task(name="verify", help={**REPO_HELP, "backup_id": LATEST_HELP, "json_": HELP["json_"],
                           "db": "with latest: the database"})
@cli.edge
def verify(c, backup_id, dsn=None, stack=None, repository=None, json_=False, db=None):
    """Re-hash the object against its manifest and read it with pg_restore --list; exit 7 on mismatch."""
    from ..backups import engine
    target = target_for(stack, dsn, repository=repository)
    repo = open_repo(target, reads="backup.verify")
    m = _named_backup(target, repo, backup_id, db)
    rows = engine.verify_backup(repo, m)
    if json_:
        cli.emit_json({"id": m.id, "passed": all(r[1] for r in rows),
                       "checks": [{"name": c, "passed": p, "detail": d} for c, p, d in rows]})
    else:
        cli.table(f"verify {m.id}", ["check", "passed", "detail"], [[c, "PASS" if p else "FAIL", d] for c, p, d in rows])
    failed = [r for r in rows if not r[1]]
    if failed:
        raise VerifyMismatch(f"Backup {m.id} failed verification: {'; '.join(c for c, _, _ in failed)}.",
                             f"do not restore it; take a new one with `invoke backup.create --db {m.database}`.")


@task(name="restore", help={"repository": HELP["repository"], "stack": "stack whose servers must not be overwritten "
                            "and whose repository holds the backup (default: local)",
                            "backup_id": "backup id, or latest (the newest logical backup of --db)",
                            "dsn": "target database DSN (required for a whole restore; with --table: the live database, "
                                   "default the stack's --db)",
                            "clean": "replace what the backup holds in a non-empty target (shows the plan; needs a "
                                     "confirmation or --yes)",
                            "yes": HELP["yes"],
                            "yes_overwrite_primary": "allow restoring over the stack's own primary",
                            "db": "with latest: the database whose newest backup to use; with --table also the "
                                  "database to restore into",
                            "table": "restore only SCHEMA.TABLE (rows, indexes, constraints, incoming foreign keys) "
                                     "into the live database; shows the plan, needs a confirmation or --yes",
                            "as_": "with --table: restore beside the live table under this name",
                            "accept_backup_definition": "with --table: restore the table as the backup defines it even "
                                                        "though the backup's migration ledger is not the live one and "
                                                        "the definitions differ (refused otherwise)",
                            "sql_root": HELP["sql_root"] + "; with --table: the chain that tells the live definition "
                                                           "of a dropped table when the ledgers differ"})
@cli.edge
def restore(c, backup_id, dsn=None, stack=None, repository=None, clean=False, yes=False, yes_overwrite_primary=False,
            db=None, table=None, as_=None, accept_backup_definition=False, sql_root=None):
    """Restore a logical backup into --dsn in one transaction (all or nothing), after verifying it;
    with --table, one table into the live database."""
    from ..backups import engine
    if table or as_:
        return _restore_table(backup_id, dsn, stack, repository, yes, db, table, as_, accept_backup_definition,
                              sql_root)
    if not dsn:
        raise ConfigError(["backup.restore needs --dsn TARGET (the database to restore into)"])
    dest = protect_params(parse(dsn))
    dest_db = dest.pop("dbname", None)
    if not dest_db:
        raise ConfigError(["the target DSN names no database (dbname=...)"])
    from ..targets import resolve
    # --dsn here is the destination; the stack whose servers are protected is never a bare DSN ($PGOPS_DSN too)
    stack_target = resolve(settings_for(stack, None, repository=repository, dsn_from_env=False))
    repo = open_repo(stack_target, reads="backup.restore")
    m = engine.resolve_backup(repo, backup_id, db, kind="logical")
    stack_target.guard_restore_target(dest, dest_db, allow_overwrite=yes_overwrite_primary)

    def apply() -> float:
        with cli.transfer(f"restoring {m.id}", total=m.size_bytes) as advance:
            return engine.restore(repo, m, dest, dest_db, clean=clean, protected=None,
                                  yes_overwrite_primary=yes_overwrite_primary, on_bytes=advance)
    if clean:
        p = Plan(f"restore {m.id} over database '{dest_db}' with --clean",
                 rerun("backup.restore", {"--dsn": cli.target_args(None, dsn, None)["--dsn"]}, "--backup-id", backup_id,
                       "--clean", *_opt("--stack", stack), *_opt("--repository", repository),
                       *(["--yes-overwrite-primary"] if yes_overwrite_primary else [])),
                 [Step(f"verify {m.id}, then drop and replace every object it holds in '{dest_db}' in one transaction",
                       apply, guard="the object matches its manifest; all or nothing (pg_restore --single-transaction)")])
        secs = execute(p, yes=yes, show=cli.say, recheck=lambda: _recheck_restore(m, dest, dest_db))[0]
    else:
        secs = apply()
    cli.say(f"restored {m.id} ({m.database}, {m.size_bytes:,} bytes) into {dest_db} in {secs:.1f} s")


@task(name="prune", iterable=["db"], help={**REPO_HELP, "db": HELP["db"], "json_": HELP["json_"],
                                           "apply": "really delete (default: dry run); shows the plan and needs a "
                                                    "confirmation or --yes",
                                           "yes": HELP["yes"],
                                           "force": "allow deleting more than half of the backups"})
@cli.edge
def prune(c, db=None, dsn=None, stack=None, repository=None, apply=False, force=False, yes=False, json_=False):
    """GFS retention (seed 002: 30 daily, 12 weekly, 12 monthly, 5 yearly) with safety floors; dry run by default."""
    from ..backups import engine
    target = target_for(stack, dsn, repository=repository)
    repo = open_repo(target, reads="backup.prune")  # a missing repository is not made: it holds nothing to prune
    dbs = target.repository_databases(list(db or []) or None) or None
    reports, incomplete = _prune_all(repo, dbs, apply=False, force=force)
    snapshot_plans = target.prune_snapshots(repo, apply=False, force=force, now=_now())
    if apply:
        backup_deletions = sum(1 for r in reports for i in r.plan.items if not i.keep) + \
            sum(len(r.orphans) + len(r.aborted_uploads) for r in reports)
        snapshot_deletions = sum(1 for _, plan in snapshot_plans for i in plan.items if not i.keep)
        if not json_:
            for r in reports:
                print_verdicts(f"{r.database}: prune", r.plan, False)
        p = Plan(f"prune {backup_deletions + snapshot_deletions} object(s) in {repo.url}",
                 rerun("backup.prune", cli.target_args(stack, dsn, None), "--apply", *(["--force"] if force else []),
                       *_opt("--repository", repository), *[f"--db {d}" for d in (db or [])]))
        good = [r.database for r in reports]
        applied: dict = {}  # what each step returned, by name: the reports shown afterwards

        def apply_prune():
            applied["reports"], refused = _prune_all(repo, good, apply=True, force=force)
            if refused is not None:  # a refusal met while applying (e.g. another prune holds the lock) is not ok
                applied["refused"] = refused

        def apply_snapshots():
            applied["snapshots"] = target.prune_snapshots(repo, apply=True, force=force, now=_now())
        if backup_deletions and good:
            p.steps.append(Step(f"delete the backups marked DELETE, orphans and abandoned uploads ({backup_deletions})",
                                apply_prune, guard="verdicts recomputed under the same floors at apply time"))
        if snapshot_deletions:
            p.steps.append(Step(f"delete the RDS snapshots marked DELETE ({snapshot_deletions})", apply_snapshots,
                                guard="same policy and floors over pgops-managed snapshots"))

        def recheck():  # what the repository holds now, read back after the deletions
            left = {d: len(engine.list_backups(repo, d)) for d in (dbs or good)}
            if not json_:
                cli.say("re-check: backups left — " + ", ".join(f"{d}: {n}" for d, n in left.items()))
        execute(p, yes=yes, show=(lambda _l: None) if json_ else cli.say, recheck=recheck)
        reports = applied.get("reports", reports)
        snapshot_plans = applied.get("snapshots", snapshot_plans)
        incomplete = applied.get("refused", incomplete)
    if json_:
        cli.emit_json([{"database": r.database, "applied": r.applied, "verdicts": _verdicts(r.plan),
                        "deleted": r.deleted, "orphans": r.orphans, "aborted_uploads": r.aborted_uploads,
                        "invalid": [{"id": b.id, "problem": b.problem} for b in r.invalid]} for r in reports] +
                      [{"database": d, "kind": "rds-snapshot", "applied": apply, "verdicts": _verdicts(plan)}
                       for d, plan in snapshot_plans])
    else:
        for d, plan in snapshot_plans:
            print_verdicts(f"{d}: RDS snapshots", plan, apply)
        for r in reports:
            print_verdicts(f"{r.database}: prune", r.plan, r.applied)
            if r.orphans or r.aborted_uploads:
                cli.say(f"{r.database}: orphans {len(r.orphans)}, abandoned uploads {len(r.aborted_uploads)}"
                        + ("" if r.applied else " (would be removed)"))
            for b in r.invalid:
                cli.warn(f"{r.database}: invalid backup {b.id} (never deleted automatically): {b.problem}")
    if incomplete is not None:
        raise incomplete


def _opt(flag: str, value) -> list[str]:
    """``[flag, value]`` when the option was given (for the command a refusal tells the user to rerun)."""
    return [flag, shlex.quote(str(value))] if value else []


def _prune_all(repo, dbs, **kwargs):
    """:func:`engine.prune_all`, keeping the reports of the databases that went through when others
    were refused (the refusal is raised after they are shown)."""
    from ..backups import engine
    try:
        return engine.prune_all(repo, dbs, **kwargs), None
    except PruneIncomplete as exc:
        return exc.reports, exc


def _restore_table(backup_id, dsn, stack, repository, yes, db, table, as_, accept_definition=False,
                   sql_root=None) -> None:
    """``backup.restore ID|latest --table SCHEMA.TABLE [--as NEW] [--db NAME]``: stage the table in a
    scratch database (every refusal comes here, before the plan), plan, confirm, restore, re-check
    the row count against the manifest."""
    from ..backups import engine
    from ..backups.tablerestore import apply_staged, stage_table, split_table
    from ..targets import migrations_dir, resolve
    if not table:
        raise ConfigError(["--as needs --table SCHEMA.TABLE"])
    schema, name = split_table(table)
    stack_target = resolve(settings_for(stack, None, sql_root=sql_root, repository=repository, dsn_from_env=False))
    repo = open_repo(stack_target, reads="backup.restore")
    if dsn:
        params = protect_params(parse(dsn))
        database = params.pop("dbname", None)
        if not database:
            raise ConfigError(["the DSN names no database (dbname=...)"])
        folder = db or database
    else:
        if not db:
            raise ConfigError(["--table needs the database: --db NAME (or --dsn of the live database)"])
        ref = stack_target.databases([db])[0]
        params, database, folder = stack_target.primary, ref.name, ref.folder
    m = engine.resolve_backup(repo, backup_id, database, kind="logical")
    where = f"{schema}.{as_}" if as_ else f"{schema}.{name}"
    again = ["--backup-id", backup_id, "--table", table, *_opt("--as", as_), *_opt("--db", db),
             *_opt("--stack", stack), *_opt("--repository", repository), *_opt("--sql-root", sql_root),
             *(["--accept-backup-definition"] if accept_definition else [])]
    cli.progress(f"staging {schema}.{name} of {m.id} in a scratch database")
    with stage_table(repo, m, params, database, table, as_name=as_,
                     migrations_dir=migrations_dir(stack_target.settings.sql_root, folder),
                     accept_definition=accept_definition) as st:
        rows = "?" if st.expected_rows is None else f"{st.expected_rows:,}"
        keys = ", ".join(k.label for k in st.foreign_keys) or "none"
        steps = [Step(f"restore {st.table}{f' with {len(st.relations) - 1} partition(s)' if len(st.relations) > 1 else ''} "
                      f"({rows} rows in the manifest) with its indexes, constraints, triggers and policies"
                      + (f", then add back its foreign keys ({keys}) NOT VALID, then validate each"
                         if not as_ else " (the copy gets no foreign key)"),
                      lambda: apply_staged(st),
                      guard=f"{where} does not exist in '{database}'; one transaction (pg_restore --single-transaction)")]
        p = Plan(f"restore table {schema}.{name} from {m.id} into database '{database}' as {where}",
                 rerun("backup.restore", cli.target_args(None, dsn, None), *again), steps)
        if st.ledgers_differ:
            cli.warn(f"backup {m.id} was taken at migration ledger version {st.ledger_backup}; '{database}' is at "
                     f"{st.ledger_live} now. "
                     + (f"The backup's definition of {st.table} differs and is restored as the backup has it "
                        f"(--accept-backup-definition): {'; '.join(st.definition_diff)}" if st.definition_accepted
                        else f"The definition of {st.table} is the same in both."))
        done = execute(p, yes=yes, show=cli.say)
    r = done[0]
    ok = r.expected_rows is None or r.rows == r.expected_rows
    cli.say(f"re-check: {r.restored_as} holds {r.rows:,} rows" + (f" (the manifest counted {r.expected_rows:,})"
                                                                  if r.expected_rows is not None else "")
            + f"; indexes: {', '.join(r.indexes) or 'none'}; foreign keys re-added: {', '.join(r.foreign_keys) or 'none'}")
    for nv in r.not_valid:
        if nv.add:
            cli.warn(f"foreign key {nv.key} NOT added (PostgreSQL keeps no NOT VALID key on a partitioned table): "
                     f"{nv.orphans:,} row(s) of {nv.table} have no row in {nv.references}. List them with: "
                     f"{nv.query}; fix or delete them, then run {nv.add}")
            continue
        cli.warn(f"foreign key {nv.key} left NOT VALID: {nv.orphans:,} row(s) of {nv.table} have no row in "
                 f"{nv.references} (written or deleted after the backup). List them with: {nv.query}; fix or delete "
                 f"them, then run ALTER TABLE {nv.table} VALIDATE CONSTRAINT {nv.key.rsplit('.', 1)[1]}")
    if not ok:
        raise RestoreRefused(f"Table {r.restored_as} holds {r.rows} rows, but backup {m.id} counted {r.expected_rows}.",
                             "inspect it; drop it and rerun the table restore.")
    cli.say(f"restored {r.restored_as} in {r.seconds:.1f} s")


def _recheck_restore(m, dest, dest_db) -> None:
    """After a --clean restore: every table the manifest counted holds its counted rows again."""
    from psycopg import sql

    from ..dsn import connect, tool_application_name
    with connect(dest, dbname=dest_db, autocommit=True, application_name=tool_application_name("restore")) as conn:
        off = []
        for table, rows in m.row_counts.items():
            schema, name = table.split(".", 1)
            found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))).fetchone()[0]
            if found != rows:
                off.append(f"{table}: {found} rows, backup had {rows}")
    cli.say("re-check: " + ("every table holds the backup's row count" if not off else "; ".join(off)))
    if off:
        raise RestoreRefused(f"Restore of {m.id} into '{dest_db}' finished but the row counts differ: {'; '.join(off)}.",
                             "inspect the target; rerun the restore with --clean --yes.")


def _verdicts(plan) -> list[dict]:
    """A prune plan's verdicts in the ``--json`` shape."""
    return [{"id": i.backup.id, "created_at": i.backup.created_at.isoformat(), "keep": i.keep,
             "reasons": list(i.reasons)} for i in plan.items]


def print_verdicts(title: str, plan, applied: bool) -> None:
    cli.table(f"{title} {'(applied)' if applied else '(dry run: add --apply to delete)'}",
              ["id", "created_at", "verdict", "reasons"],
              [[i.backup.id, i.backup.created_at.isoformat(), "keep" if i.keep else "DELETE", "; ".join(i.reasons)]
               for i in plan.items], whole_first=True)


@task(name="copy", iterable=["db"], help={**REPO_HELP, "db": HELP["db"], "json_": HELP["json_"],
                                          "to": "the second repository: s3://bucket/prefix (another region, its own key) "
                                                "or file:///path (default $PGOPS_COPY_TO)",
                                          "since": "only backups created in the last N h / N d, or since an ISO-8601 "
                                                   "time (default: every backup)",
                                          "to_kms_key": "KMS key for SSE-KMS on the copies (default $PGOPS_COPY_KMS_KEY_ID; "
                                                        "without one, AES256)"})
@cli.edge
def copy(c, to=None, db=None, since=None, dsn=None, stack=None, repository=None, to_kms_key=None, json_=False):
    """Copy backups to a second repository: each object (server-side between S3 buckets), its sha256
    verified on the copy, then its manifest last. Already copied backups are skipped."""
    from ..backups import engine
    from ..backups.copy import copy_backup, select
    from ..backups.repository import open_repository
    target = target_for(stack, dsn, repository=repository)
    to = to or target.settings.copy_to
    if not to:
        raise ConfigError(["backup.copy needs --to URL (the second repository), or $PGOPS_COPY_TO"])
    src = open_repo(target, reads="backup.copy")
    dst = open_repository(to, to_kms_key or target.settings.copy_kms_key_id)
    if dst.url.rstrip("/") == src.url.rstrip("/"):
        raise ConfigError([f"--to {to} is the source repository itself"], "pass another bucket or folder.")
    cutoff = parse_since(since, _now())
    names = target.repository_databases(list(db or []) or None) or engine.backup_databases(src)
    chosen = [m for d in names for m in select(engine.list_backups(src, d), cutoff)]
    done = []
    for m in chosen:
        with cli.transfer(f"{m.id}: {src.url} → {dst.url}", total=m.size_bytes, enabled=not json_) as advance:
            done.append(copy_backup(src, dst, m, on_bytes=advance))
    if json_:
        cli.emit_json([r.as_dict() for r in done])
        return
    cli.table(f"backups copied to {dst.url} (sha256 of each copy verified)",
              ["id", "database", "kind", "size (bytes)", "method", "seconds"],
              [[r.id, r.database, r.kind, f"{r.size_bytes:,}", r.method, r.seconds] for r in done], whole_first=True)
    if not done:
        cli.say(f"nothing to copy from {src.url}" + (f" since {cutoff.isoformat()}" if cutoff else ""))


def parse_since(text, now: datetime):
    """``--since``: ``Nh``/``Nd``/``Nm`` (hours, days, minutes before ``now``) or an ISO-8601 time with
    a zone; None when not given. The cutoff must lie between ``datetime.min`` (year 1, Python's
    earliest) and :data:`~ops.retention.FUTURE_TOLERANCE` after ``now``. Raises
    :class:`ConfigError` (exit 2) otherwise — never an OverflowError (``99999999999d``)."""
    import re
    from datetime import timedelta
    from ..retention import FUTURE_TOLERANCE
    if not text:
        return None
    text = str(text).strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    shown = cli._shown(text)
    if re.fullmatch(r"[0-9]+[mhd]", text):
        try:
            return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        except OverflowError:
            raise ConfigError([f"--since {shown} reaches before the year 1"],
                              "pass a shorter span (e.g. 30d) or leave --since out to copy every backup.") from None
    try:
        when = datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError([f"--since must be Nh, Nd, Nm or an ISO-8601 time with a zone, not {shown}"])
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:
        raise ConfigError([f"--since {shown} lies outside the years 1 to 9999 in UTC"]) from None
    if when - now > FUTURE_TOLERANCE:
        raise ConfigError([f"--since {shown} lies in the future (now is {now.isoformat()}): nothing could be copied"],
                          "pass a time in the past, or leave --since out to copy every backup.")
    return when


ns = Collection("backup", create, list_, show, verify, restore, prune, copy)
