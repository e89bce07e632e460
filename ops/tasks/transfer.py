"""``db.transfer`` and ``db.validate``: the online data transfer of an expand/contract migration and
its proof. (The contract migration itself is applied by ``db.migrate``/``deploy`` as a destructive plan.)"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, ValidationFailed
from .common import HELP, cli, target_for, task

if TYPE_CHECKING:
    from ..transfer.spec import TransferSpec

TARGET = {k: HELP[k] for k in ("stack", "dsn", "sql_root")}
DB = "database folder under sql/ with a transfer.toml; repeatable; default: every one that has one"


def load_spec(sql_root, folder: str) -> TransferSpec:
    """Read ``<sql_root>/<folder>/transfer.toml``. Raises :class:`ConfigError` when there is none,
    :class:`~ops.errors.TransferSpecError` when it is malformed."""
    from ..transfer.spec import FILE, parse_spec
    path = sql_root / folder / FILE
    if not path.is_file():
        have = sorted(p.parent.name for p in sql_root.glob(f"*/{FILE}"))
        raise ConfigError([f"database '{folder}' declares no transfer ({path} does not exist)"],
                          f"transfer one of: {', '.join(have) or 'none'} (`invoke db.transfer --db NAME`).")
    return parse_spec(path.read_text(encoding="utf-8"), str(path))


def _selected(target, db):
    """(database ref, its transfer spec, its migration chain) for each database the selection means."""
    from ..migrations.discovery import discover
    from ..targets import migrations_dir
    from ..transfer.spec import FILE
    root = target.settings.sql_root
    names = list(db or []) or sorted(p.parent.name for p in root.glob(f"*/{FILE}"))
    if not names:
        raise ConfigError([f"no database under {root} declares a transfer ({FILE})"], "")
    return [(ref, load_spec(root, ref.folder), discover(migrations_dir(root, ref.folder)))
            for ref in target.databases(names)]


@task(name="transfer", iterable=["db"], help={
    **TARGET, "db": DB, "json_": HELP["json_"],
    "batch_size": "rows per batch, each its own short transaction (default 5000)",
    "resume": "go on from each mapping's recorded high-water mark (after a crash or kill -9)",
    "dry_run": "show each mapping's rows and batches left and the captured-change backlog; change nothing",
    "max_lag": "pause while a replica replays more than this many seconds behind (default 1.5)",
    "max_lock_waiters": "pause while more than N other sessions wait on a lock (default 0)",
    "lock_timeout": "lock_timeout of every transfer statement, seconds (default 2)"})
@cli.edge
def transfer(c, stack=None, dsn=None, sql_root=None, db=None, batch_size=None, resume=False, dry_run=False,
             max_lag=None, max_lock_waiters=None, lock_timeout=None, json_=False):
    """Copy legacy rows into v2 online: batches by key range in short transactions, throttled by replica
    lag and lock waits, resumable, idempotent; rejected rows quarantined; legacy writes caught up."""
    from ..transfer.batches import Limits
    from ..transfer.engine import transfer as run
    size = cli.as_int(batch_size, "--batch-size", minimum=1) or 5000
    limits = Limits(max_lag_s=cli.as_float(max_lag, "--max-lag", 1.5),
                    max_lock_waiters=cli.as_int(max_lock_waiters, "--max-lock-waiters", minimum=0) or 0)
    lock_ms = int(cli.as_float(lock_timeout, "--lock-timeout", 2.0, minimum=0.001) * 1000)
    target = target_for(stack, dsn, sql_root)
    reports = []
    for ref, spec, chain in _selected(target, db):
        with cli.rows_eta(f"transfer {ref.name}", enabled=not (json_ or dry_run)) as (set_total, advance):
            rep = run(target.primary, ref.name, spec, batch_size=size, resume=resume, dry_run=dry_run, limits=limits,
                      lock_timeout_ms=lock_ms, progress=advance, totals=set_total,
                      say=None if json_ else cli.progress, chain=chain)
        reports.append(rep)
        if json_:
            continue
        if rep.finished is not None:
            cli.say(rep.finished.message())
            continue
        if dry_run:
            cli.table(f"{ref.name}: transfer plan (dry run, batch size {size}; nothing changed)",
                      ["mapping", "source", "target", "high-water mark", "rows left", "batches"],
                      [[p["mapping"], p["source"], p["target"], p["high_water"] if p["high_water"] is not None else "—",
                        f"{p['rows_left']:,}", p["batches"]] for p in rep.plan])
            continue
        d = rep.as_dict()
        cli.table(f"{ref.name}: transfer run {rep.run_id}: {d['rows_copied']:,} rows in {rep.seconds:.1f} s "
                  f"({d['rate_rows_per_s'] or 0:,.0f} rows/s), {d['quarantined']:,} quarantined, "
                  f"{rep.caught_up:,} captured change(s) caught up, longest lock {rep.longest_lock_ms:.1f} ms",
                  ["mapping", "rows", "quarantined", "batches", "high-water mark"],
                  [[m.mapping, f"{m.rows_copied:,}", f"{m.quarantined:,}", m.batches, m.high_water] for m in rep.mappings])
        if d["quarantined"]:
            cli.warn(f"{ref.name}: {d['quarantined']:,} row(s) rejected by v2 constraints are in "
                     "pgops.transfer_quarantine with their reason (SELECT mapping, source_key, reason FROM "
                     "pgops.transfer_quarantine)")
        cli.say(f"{ref.name}: next: `invoke db.validate --db {ref.folder}`")
    if json_:
        cli.emit_json([r.as_dict() for r in reports])


@task(name="validate", iterable=["db"], help={**TARGET, "db": DB, "json_": HELP["json_"]})
@cli.edge
def validate(c, stack=None, dsn=None, sql_root=None, db=None, json_=False):
    """Prove each mapping: legacy rows − quarantined = v2 rows, and a checksum per mapped column agrees;
    recorded in the ledger (the contract migration's gate reads it); exit 14 on any failure. After the
    contract migration the transfer is finished: said, exit 0."""
    from ..dsn import connect, tool_application_name
    from ..transfer import state
    from ..transfer.validate import validate as run
    target = target_for(stack, dsn, sql_root)
    out, finished = {}, {}
    for ref, spec, chain in _selected(target, db):
        with connect(target.primary, dbname=ref.name, autocommit=True,
                     application_name=tool_application_name("validate")) as conn:
            done = state.contract_applied(conn, ref.name, chain)
        if done is not None:
            finished[ref.name] = done
            if not json_:
                cli.say(done.message())
            continue
        vid, results = run(target.primary, ref.name, spec, chain)
        out[ref.name] = (vid, results)
        if not json_:
            cli.table(f"{ref.name}: validation {vid}", ["mapping", "result", "legacy rows", "quarantined", "v2 rows", "detail"],
                      [[r.mapping, "PASS" if r.passed else "FAIL", f"{r.source_rows:,}", f"{r.quarantined:,}",
                        f"{r.target_rows:,}", r.detail] for r in results])
    if json_:
        cli.emit_json({**{d: {"state": "validated", "validation_id": v, "passed": all(r.passed for r in rs),
                              "mappings": [r.as_dict() for r in rs]} for d, (v, rs) in out.items()},
                       **{d: {**f.as_dict(), "validation_id": None, "passed": True, "mappings": []}
                          for d, f in finished.items()}})
    for d, (_v, rs) in out.items():
        failed = [(r.mapping, list(r.failed_columns), r.detail) for r in rs if not r.passed]
        if failed:
            raise ValidationFailed(d, failed)


TASKS = (transfer, validate)
