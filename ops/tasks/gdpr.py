"""``gdpr.*``: export (GDPR Art. 15 access, Art. 20 portability) and erasure (Art. 17) of one user's data,
found by walking foreign keys outward from the root table plus declared ownership (sql/<db>/gdpr.json)."""
from __future__ import annotations

from pathlib import Path

from invoke import Collection

from ..errors import ConfigError
from ..planapply import Plan, Step, execute
from .common import HELP, cli, rerun, target_for, task

OPTS = {"stack": HELP["stack"], "dsn": HELP["dsn"], "sql_root": HELP["sql_root"],
        "db": "database whose sql/<db>/gdpr.json says who owns what (default futuresync)",
        "user_id": "the data subject's id (UUID), required", "json_": HELP["json_"]}


def _resolve(stack, dsn, sql_root, db, user_id):
    from ..gdpr.engine import check_uuid, load_ownership
    if not user_id:
        raise ConfigError(["--user-id is required"], "pass the user's UUID: `invoke gdpr.export --user-id UUID`.")
    uid = check_uuid(user_id)
    target = target_for(stack, dsn, sql_root)
    ref = target.databases([db])[0]
    return target, ref, load_ownership(target.settings.sql_root, ref.folder), uid


@task(name="export", help={**OPTS, "out": "folder to write (default ./gdpr-exports/<db>-<user>-<UTC time>/)"})
@cli.edge
def export(c, user_id=None, db="futuresync", out=None, stack=None, dsn=None, sql_root=None, json_=False):
    """Write every row that belongs to --user-id, one JSON file per table and a manifest (counts, sha256, the
    routes followed), from one consistent snapshot. Files 0600, folder 0700: they hold personal data."""
    from ..gdpr import engine
    target, ref, own, uid = _resolve(stack, dsn, sql_root, db, user_id)
    now = engine.now_utc()
    exp = engine.export(target.primary, ref.name, own, uid)
    folder = Path(out) if out else Path("gdpr-exports") / f"{ref.name}-{uid}-{now:%Y%m%dT%H%M%SZ}"
    manifest = engine.write_export(exp, folder, ref.name, now)
    if json_:
        cli.emit_json({"out": str(folder), **manifest})
        return
    cli.table(f"{ref.name}: {exp.total} row(s) of user {uid} → {folder}/", ["table", "rows", "found through"],
              [[t, len(r), "; ".join(exp.routes[t])] for t, r in sorted(exp.rows.items())])


@task(name="erase", help={**OPTS, "yes": HELP["yes"], "dry_run": "show the plan with row counts; change nothing",
                          "lock_timeout": "seconds each table lock of the erasure may wait (default 5)",
                          "retries": "attempts after the first when a lock times out or deadlocks (default 3, at most 20; "
                                     "backoff 0.2 s × 2^n with jitter)"})
@cli.edge
def erase(c, user_id=None, db="futuresync", yes=False, dry_run=False, lock_timeout=None, retries=None, stack=None,
          dsn=None, sql_root=None, json_=False):
    """Erase --user-id in one transaction: lock every table the user's rows live in IN SHARE ROW EXCLUSIVE
    MODE (writers wait until the commit, readers go on; retried on a lock timeout), nullify columns that only
    mention them, delete their rows deepest first, pseudonymize their audit rows, write an erasure record to
    the audit log, re-export (anything left rolls it all back), commit; then export again: rows found there
    were written after the commit by a writer still running (non-zero exit). Destructive: plan first, then a
    confirmation or --yes. Raises GdprError (exit 12): GdprConcurrentWriter when the locks are not granted
    in any attempt, GdprWrittenAfterErasure for rows written after the commit."""
    from ..errors import GdprWrittenAfterErasure
    from ..gdpr import engine
    target, ref, own, uid = _resolve(stack, dsn, sql_root, db, user_id)
    timeout = cli.as_float(lock_timeout, "--lock-timeout", 5.0, minimum=0.001)
    tries = cli.as_int(retries, "--retries", minimum=0, maximum=20) if retries is not None else 3
    frags = cli.target_args(stack, dsn, sql_root)
    again = rerun("gdpr.erase", frags, f"--db {ref.folder}", f"--user-id {uid}")
    e = engine.begin_erasure(target.primary, ref.name, own, uid, lock_timeout_s=timeout, retries=tries,
                             command=f"{again} --lock-timeout {timeout * 2:g} --retries {tries}")
    now = engine.now_utc()
    with e.conn:
        counts = e.counts()
        plan = Plan(f"erase user {uid} from database '{ref.name}'", again)
        plan.steps.append(Step(f"lock {', '.join(e.lock_order())} IN SHARE ROW EXCLUSIVE MODE until the commit "
                               "(writers wait, readers go on)", e.lock,
                               guard=f"lock_timeout {timeout:g} s per table, {tries} retries; nothing changed yet"))
        for kind, table, what in engine.steps_for(e):
            n = counts.get(table, {}).get(kind, 0)
            plan.steps.append(Step(f"{table}: {n} row(s): {what}", lambda k=kind, t=table: e.step(k, t),
                                   guard="inside the erasure's one transaction"))
        plan.steps.append(Step(f"write the erasure record to {own.audit} (under pseudonym {e.pseudonym}), re-export "
                               "inside the transaction (any row left rolls everything back), commit",
                               lambda: e.record_and_prove(now), guard="the re-export finds nothing"))
        backups = retention_note(target, ref.name)  # opens and lists the repository: once
        plan.notes.append(backups)
        done = execute(plan, yes=yes, dry_run=dry_run, show=(lambda _: None) if json_ else cli.say)
    if done is None:
        if json_:
            cli.emit_json({"database": ref.name, "user_id": uid, "dry_run": True, "counts": counts})
        return
    after = engine.export(target.primary, ref.name, own, uid)
    if after.total:  # the locks kept writers out until the commit: these were written after it
        raise GdprWrittenAfterErasure(uid, ref.name, {t: len(r) for t, r in after.rows.items() if r}, again)
    result = {"database": ref.name, "user_id": uid, "pseudonym": e.pseudonym, "steps": e.done,
              "rows_found_after": after.total, "lock_attempts": e.attempts, "backups": backups}
    if json_:
        cli.emit_json(result)
        return
    cli.table(f"{ref.name}: user {uid} erased; a fresh export finds nothing",
              ["table", "deleted", "nullified", "pseudonymized"],
              [[t, d.get("deleted", ""), d.get("nullified", ""), d.get("pseudonymized", "")] for t, d in e.done.items()])
    cli.say(result["backups"])


def retention_note(target, database: str) -> str:
    """How long backups still hold the erased data: the retention policy in force (ops.retention) and the
    backups of this database now in the repository."""
    from ..retention import SEED_002_POLICY as p
    held = ""
    try:
        from ..backups.engine import list_backups
        from .common import open_repo
        repo = open_repo(target)
        backups = list_backups(repo, database) if repo is not None else []
        if backups:
            held = (f" {len(backups)} backup(s) of {database} in {repo.url} (oldest {backups[-1].created:%Y-%m-%d}) "
                    "hold the data until retention prunes them;")
    except Exception:  # noqa: BLE001 - the note must not stop an erasure that already committed
        held = " (the repository could not be listed);"
    return (f"Backups taken before the erasure still hold this user's data:{held} under the retention policy in force "
            f"({p.keep_daily} daily, {p.keep_weekly} weekly, {p.keep_monthly} monthly, {p.keep_yearly} yearly) "
            f"the last copy ages out after at most {p.keep_yearly} years; a restore must re-run this erasure.")


ns = Collection("gdpr", export, erase)
