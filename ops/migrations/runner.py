"""I/O edge of the migration engine: migrate, rollback, verify, status, plan, baseline.

Habits: plan as data, then a small loop that stops at the first failure (patroni); a transactional
migration is recorded in the same transaction that applies it; a non-transactional one leaves an
exact dirty record (statements done, the failed one) that ``--resume`` or a rollback clears, and
each of its statements is applied exactly once whatever moment the run is killed at (the progress
record commits with the statement, or the statement is judged by its effect; see
:func:`_apply_nontx`); every statement runs under ``lock_timeout``, and a lock timeout (SQLSTATE
55P03) retries the migration with exponential backoff and jitter (pgroll's approach).
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Mapping

import psycopg
from pglast import ast
from pglast.enums import ObjectType, TransactionStmtKind
from psycopg import errors as pgerr
from psycopg import sql

from ..dsn import connect, redact, tool_application_name
from ..errors import (ChecksumDrift, ConnectionLost, DirtyDatabase, LintFailed, MigrationFailed, MigrationFailedUnlocated, OutOfOrder,
                      PreflightRefused, RollbackRefused)
from . import ledger
from .destructive import hold_unconfirmed
from .discovery import discover
from .models import Migration
from .lint import Finding, grade, lint_migration, lock_level
from .locking import backoff, migration_lock, preflight
from .plan import ChainStatus, RollbackStep, compare, rollback_plan, select_pending
from .script import Script, Statement

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunOptions:
    """Knobs of a run. Times are seconds. ``preflight``: wait | refuse | skip."""

    lock_wait_s: float = 60.0
    lock_timeout_s: float = 2.0
    statement_timeout_s: float = 0.0
    retries: int = 5
    retry_base_s: float = 0.5
    preflight: str = "wait"
    max_xact_age_s: float = 60.0
    dry_run: bool = False


@dataclass
class Applied:
    version: int
    name: str
    duration_ms: int
    transactional: bool
    attempts: int = 1


@dataclass
class MigrateResult:
    """What one ``migrate`` did. ``before``/``after`` are the newest applied versions (None: none)."""

    database: str
    before: int | None
    after: int | None
    applied: list[Applied] = field(default_factory=list)
    planned: list[int] = field(default_factory=list)
    seconds: float = 0.0
    accepted: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    preflight_blockers: list[dict] = field(default_factory=list)
    waiting: list[dict] = field(default_factory=list)  # gated migrations held back: version, name, reason
    held: list[dict] = field(default_factory=list)  # destructive, not confirmed: version, name, reasons


@dataclass(frozen=True)
class Target:
    """A database to migrate: its name, libpq parameters (no dbname) and its chain folder."""

    database: str
    params: Mapping
    migrations_dir: Path

    def chain(self) -> list[Migration]:
        return discover(self.migrations_dir)


def _error_text(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip().splitlines()[0]
    if diag.sqlstate:
        text = f"{text} (SQLSTATE {diag.sqlstate})"
    if diag.message_detail:
        text += f"; {diag.message_detail}"
    return redact(text)


def _session(conn: psycopg.Connection, opts: RunOptions) -> None:
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(opts.lock_timeout_s * 1000)}ms")))
    conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{int(opts.statement_timeout_s * 1000)}ms")))


def _work_conn(target: Target, what: str, opts: RunOptions) -> psycopg.Connection:
    conn = connect(target.params, dbname=target.database, autocommit=True,
                   application_name=tool_application_name(what))
    _session(conn, opts)
    return conn


# ---- status / plan ------------------------------------------------------------------------------

def server_faults(what: str):
    """Turn a lost connection anywhere inside a runner entry point (psycopg's OperationalError or
    InterfaceError escaping it, e.g. the primary crashing mid-migration) into
    :class:`~ops.errors.ConnectionLost` naming the database and the task (exit 4)."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(target, *args, **kwargs):
            try:
                return fn(target, *args, **kwargs)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise ConnectionLost(target.database, what, redact(str(exc)).splitlines()[0] if str(exc) else
                                     type(exc).__name__) from None
        return run
    return wrap


@server_faults("db.status")
def status(target: Target) -> ChainStatus:
    """Compare disk and ledger without taking the lock. Raises DiscoveryError / ConnectError."""
    chain = target.chain()
    with connect(target.params, dbname=target.database, autocommit=True,
                 application_name=tool_application_name("status")) as conn:
        return with_gates(conn, target.database, compare(chain, ledger.read_applied(conn), ledger.read_dirty(conn)))


def with_gates(conn: psycopg.Connection, database: str, st: ChainStatus) -> ChainStatus:
    """``st`` with each pending ``-- pgops:gate=validation`` migration whose gate is closed shown as
    ``waiting`` (state "waiting for validation") with the gate's reason (:mod:`.gate`)."""
    import dataclasses

    from . import transferledger
    from .gate import is_gated
    gated = [m for m in st.pending if is_gated(m)]
    if not gated:
        return st
    verdict = transferledger.gate_verdict(conn, database)
    if verdict.open:
        return st
    waiting = tuple({"version": m.version, "name": m.name, "reason": verdict.reason} for m in gated)
    held = {m.version for m in gated}
    rows = tuple(dataclasses.replace(r, state="waiting for validation") if r.version in held and r.state == "pending"
                 else r for r in st.rows)
    return dataclasses.replace(st, rows=rows, waiting=waiting)


def hold_at_gate(conn: psycopg.Connection, database: str, pending: list[Migration], to: int | None,
                 result: MigrateResult) -> list[Migration]:
    """The pending migrations to apply now: all of them, or those before the first gated one whose
    gate is closed (recorded in ``result.waiting``). An explicit ``to`` at or past that migration
    raises :class:`~ops.errors.ValidationGateClosed` naming what failed (exit 14)."""
    from ..errors import ValidationGateClosed
    from . import transferledger
    from .gate import is_gated
    for i, m in enumerate(pending):
        if not is_gated(m):
            continue
        verdict = transferledger.gate_verdict(conn, database)
        if verdict.open:
            return pending
        if to is not None and to >= m.version:
            raise ValidationGateClosed(database, m.folder, verdict.reason)
        result.waiting.append({"version": m.version, "name": m.name, "reason": verdict.reason})
        return pending[:i]
    return pending


@dataclass
class PlannedStatement:
    migration: str
    index: int
    line: int
    kind: str
    lock: str
    table: str | None


def plan(target: Target | None, chain: list[Migration], live: bool = True) -> tuple[list[Migration], list[PlannedStatement], list[Finding]]:
    """Pending migrations, the lock each statement takes, and lint findings graded by live table size.

    With ``live`` False (or no target) every migration in ``chain`` is planned and findings keep
    their static severity. Changes nothing.
    """
    pending = chain
    sizes: dict[str, tuple[int | None, int | None]] = {}
    conn = None
    if live and target is not None:
        conn = connect(target.params, dbname=target.database, autocommit=True, application_name=tool_application_name("plan"))
    try:
        if conn is not None:
            pending = list(compare(chain, ledger.read_applied(conn), ledger.read_dirty(conn)).pending)
        statements, findings = [], []
        for m in pending:
            for st in m.up.statements:
                lock, table = lock_level(st)
                statements.append(PlannedStatement(m.folder, st.index, st.line, st.kind, lock, table))
            for f in lint_migration(m):
                if conn is not None and f.table:
                    if f.table not in sizes:
                        sizes[f.table] = _table_size(conn, f.table)
                    f = grade(f, *sizes[f.table])
                findings.append(f)
        return pending, statements, findings
    finally:
        if conn is not None:
            conn.close()


def _table_size(conn: psycopg.Connection, table: str) -> tuple[int | None, int | None]:
    row = conn.execute("SELECT c.oid, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
                       "WHERE c.oid = to_regclass(%s)", (table,)).fetchone()
    if not row:
        return None, None
    oid, rows, size = row
    if rows < 0:  # never analyzed: count, bounded
        rows = conn.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1000001) s").format(
            sql.Identifier(*table.split(".")))).fetchone()[0]
    return rows, size


# ---- migrate ------------------------------------------------------------------------------------

@server_faults("db.migrate")
def migrate(target: Target, *, to: int | None = None, resume: bool = False, accept_changed: tuple[int, ...] = (),
            allow_out_of_order: bool = False, strict: bool = False, opts: RunOptions | None = None,
            progress: Progress | None = None, note: str = "", confirmed: Collection[int] = ()) -> MigrateResult:
    """Apply pending migrations (up to ``to``) under the advisory lock.

    ``confirmed``: versions of destructive migrations (:mod:`.destructive`) the caller showed in a
    plan and had confirmed (a terminal answer or ``--yes``). A destructive pending migration not in
    it is held back with everything after it (``result.held``; read under the lock, so a migration
    that appeared after the plan was shown is never applied unconfirmed). A dirty migration resumed
    with ``resume`` was confirmed when it started and is not held.

    Refuses, before changing anything: a dirty database without ``resume`` (:class:`DirtyDatabase`),
    checksum drift not listed in ``accept_changed`` (:class:`ChecksumDrift`), pending versions older
    than the newest applied one without ``allow_out_of_order`` (:class:`OutOfOrder`), lint findings
    with ``strict`` (:class:`LintFailed`), and preflight blockers (:class:`PreflightRefused`).
    A failing transactional migration raises :class:`MigrationFailed` with the ledger unchanged; a
    failing non-transactional one raises :class:`DirtyDatabase`.
    """
    opts = opts or RunOptions()
    say = progress or (lambda _msg: None)
    t0 = time.monotonic()
    chain = target.chain()
    with migration_lock(target.params, target.database, opts.lock_wait_s) as lock_conn, \
            _work_conn(target, "migrate", opts) as conn:
        if not opts.dry_run:
            ledger.ensure_ledger(conn)
        if not opts.dry_run:  # a killed run's session may still be finishing what it was sent
            _wait_for_orphans(conn, target.database, opts.lock_wait_s, [lock_conn.info.backend_pid])
        st = compare(chain, ledger.read_applied(conn), ledger.read_dirty(conn))
        result = MigrateResult(target.database, st.current, st.current, missing=list(st.missing))
        if st.dirty and not resume:
            d = st.dirty
            raise DirtyDatabase(target.database, d.version, d.name, d.statements_done, d.statements_total,
                                d.failed_statement, d.error or "interrupted",
                                ledger.invalid_indexes(conn))
        drift = [d for d in st.drifted if d[0] not in accept_changed]
        if drift:
            raise ChecksumDrift(target.database, drift)
        pending = hold_at_gate(conn, target.database, select_pending(st, to), to, result)
        pending, result.held = hold_unconfirmed(pending, confirmed)
        ooo = [m.version for m in pending if st.current is not None and m.version < st.current]
        if ooo and not allow_out_of_order:
            raise OutOfOrder(target.database, ooo, st.current)
        if strict:
            findings = [f for m in pending for f in lint_migration(m) if f.severity in ("warning", "error")]
            if findings:
                lines = "; ".join(f"{f.rule} {f.file}:{f.line} {f.message}" for f in findings)
                raise LintFailed(f"Database '{target.database}': --strict and lint found {len(findings)} problem(s): {lines}.",
                                 f"rewrite as suggested by `invoke db.lint --db {target.database}`, or drop --strict.")
        dirty_m = None
        if st.dirty and resume:
            dirty_m = next((m for m in chain if m.version == st.dirty.version), None)
            if dirty_m is None:
                raise RollbackRefused(f"Database '{target.database}' is dirty at {st.dirty.version}_{st.dirty.name} "
                                      "but that folder is missing on disk.", "restore the folder, then run --resume again.")
            if dirty_m.checksum != st.dirty.checksum:
                raise ChecksumDrift(target.database, [(dirty_m.version, dirty_m.name, st.dirty.checksum, dirty_m.checksum)])
        result.planned = ([dirty_m.version] if dirty_m else []) + [m.version for m in pending]
        if opts.dry_run:
            result.seconds = time.monotonic() - t0
            return result
        if pending or dirty_m:
            result.preflight_blockers = preflight(conn, target.database, opts.preflight, opts.max_xact_age_s,
                                                  opts.lock_wait_s, [lock_conn.info.backend_pid])
        for v in accept_changed:
            m = next((m for m in chain if m.version == v), None)
            if m and any(d[0] == v for d in st.drifted):
                with conn.transaction():
                    ledger.update_checksum(conn, v, m.checksum)
                    ledger.record_event(conn, "accept_changed", v, m.name, m.checksum,
                                        detail="ledger checksum updated from disk by --accept-changed")
                result.accepted.append(v)
        if dirty_m is not None:
            say(f"resuming {dirty_m.folder} at statement {(st.dirty.failed_statement or st.dirty.statements_done + 1)}")
            result.applied.append(_apply_nontx(conn, target, dirty_m, dirty_m.up, "up", opts, start=st.dirty.statements_done,
                                               resumed=True))
            result.after = dirty_m.version if result.after is None else max(result.after, dirty_m.version)
        for m in pending:
            say(f"applying {m.folder}")
            if m.up.transactional:
                applied = _apply_tx(conn, target, m, m.up, "up", opts, note)
            else:
                applied = _apply_nontx(conn, target, m, m.up, "up", opts, note=note)
            result.applied.append(applied)
            result.after = m.version if result.after is None else max(result.after, m.version)
        result.seconds = time.monotonic() - t0
        return result


def _wait_for_orphans(conn: psycopg.Connection, database: str, wait_s: float, exclude_pids: list[int]) -> None:
    """Wait up to ``wait_s`` seconds for the sessions of an earlier, killed run to end.

    A killed client's server backend goes on with the statement (batch) it was sent until it next
    talks to the client, and the advisory lock went with the client; the dirty record is only the
    truth once that backend is gone. Any other active pgops migrate/rollback session on this
    database is such an orphan, since a live runner holds the lock we now hold. Raises
    :class:`PreflightRefused` naming the sessions when they outlast the wait.
    """
    names = [tool_application_name("migrate"), tool_application_name("rollback")]

    def orphans() -> list[dict]:
        rows = conn.execute(
            "SELECT pid, application_name, state, extract(epoch FROM now() - coalesce(xact_start, query_start))::float8 "
            "FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY(%s) "
            "AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
            (names, exclude_pids)).fetchall()
        return [{"pid": r[0], "application_name": r[1], "state": r[2], "xact_age_s": r[3] or 0.0} for r in rows]
    deadline = time.monotonic() + wait_s
    found = orphans()
    while found and time.monotonic() < deadline:
        log.info("waiting for %d session(s) of an interrupted run to end", len(found))
        time.sleep(0.2)
        found = orphans()
    if found:
        raise PreflightRefused(database, found)


def _record_failure(conn: psycopg.Connection, m: Migration, direction: str, st: Statement | None, err: str) -> None:
    where = f"statement {st.index} (line {st.line})" if st else "not located to one statement (the replay passed)"
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        with conn.transaction():
            ledger.record_event(conn, "failed", m.version, m.name, m.checksum,
                                detail=f"{direction}: {where}", error=err)
    except psycopg.Error as exc:  # the failure itself is what matters; log the bookkeeping problem
        log.warning("could not record the failure event: %s", redact(str(exc)))


def _apply_tx(conn: psycopg.Connection, target: Target, m: Migration, script: Script, direction: str,
              opts: RunOptions, note: str = "") -> Applied:
    """Run ``script`` and its ledger change in one transaction; retry it whole on lock timeout.

    The success path is one round trip: BEGIN, the parsed statements, the ledger row and the event,
    COMMIT, sent as one simple-protocol batch (as ``psql -1`` runs a file, minus a round trip per
    statement). Joining the texts with ``;`` is safe because each text runs from its first token to
    the end of its last (:mod:`.script`): none ends inside a ``--`` comment. When it fails, the
    transaction is rolled back and the statements are replayed one by one inside a transaction that
    is always rolled back, to name the statement and line that failed; when the replay passes,
    :class:`MigrationFailedUnlocated` says no one statement can be blamed.
    """
    file = "up.sql" if direction == "up" else "down.sql"
    ledger_change = (ledger.applied_row_sql(m.version, m.name, m.checksum, True) if direction == "up"
                     else ledger.removed_row_sql(m.version))
    attempt = 0
    while True:
        attempt += 1
        event = ledger.event_sql(direction, m.version, m.name, m.checksum,
                                 f"{len(script.statements)} statement(s), attempt {attempt}" + (f"; {note}" if note else ""))
        parts = [st.text for st in script.statements] + [ledger_change.as_string(conn), event.as_string(conn)]
        batch = "BEGIN;\n" + ";\n".join(parts) + ";\nCOMMIT;"
        t0 = time.monotonic()
        try:
            conn.execute(batch, prepare=False)
            return Applied(m.version, m.name, int((time.monotonic() - t0) * 1000), True, attempt)
        except psycopg.Error as exc:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            if isinstance(exc, pgerr.LockNotAvailable) and attempt <= opts.retries:
                delay = backoff(attempt - 1, opts.retry_base_s)
                log.warning("%s %s: lock timeout, retry %d/%d in %.1fs", target.database, m.folder,
                            attempt, opts.retries, delay)
                time.sleep(delay)
                continue
            err = _error_text(exc)
            failed = _locate_failure(conn, script)
            hint = ""
            if isinstance(exc, pgerr.LockNotAvailable):
                err += f" after {attempt} attempt(s)"
                hint = ("find the session holding the lock (pg_locks), then rerun; or raise "
                        "--lock-timeout / --retries.")
            elif direction == "down":
                hint = f"fix {m.folder}/down.sql, then run `invoke db.rollback --db {target.database}` again."
            _record_failure(conn, m, direction, failed, err)
            if failed is None:  # the replay passed: blaming any one statement would be a guess
                raise MigrationFailedUnlocated(target.database, m.version, m.name, err, hint,
                                               folder=m.folder, file=file) from None
            raise MigrationFailed(target.database, m.version, m.name, failed.index, failed.line, err, hint,
                                  folder=m.folder, file=file) from None


def _locate_failure(conn: psycopg.Connection, script: Script) -> Statement | None:
    """Replay ``script`` statement by statement in a transaction that is always rolled back and
    return the first statement that fails; None when the replay succeeds (a deferred constraint
    checked at COMMIT, the ledger write, a lock that has since been released): then no statement is
    to blame and the caller says so (:class:`MigrationFailedUnlocated`)."""
    try:
        with conn.transaction(force_rollback=True):
            for st in script.statements:
                try:
                    with conn.transaction():  # savepoint: keep going is pointless, stop at the first error
                        conn.execute(st.text, prepare=False)
                except psycopg.Error:
                    return st
    except psycopg.Error:
        return None
    return None


def _apply_nontx(conn: psycopg.Connection, target: Target, m: Migration, script: Script, direction: str,
                 opts: RunOptions, start: int = 0, note: str = "", resumed: bool = False) -> Applied:
    """Run ``script`` statement by statement outside a migration-wide transaction (as ``psql -f``
    would), keeping an exact progress record in ``pgops.dirty``; on success record the ledger change
    and clear it in one transaction.

    Exactly once under a kill at any moment (issue 9 §2): a statement that may run in a transaction
    block is sent as one batch ``BEGIN; <progress := its index>; <statement>; COMMIT``, so it and
    its progress record commit together or not at all; inside a file's own BEGIN … COMMIT the
    progress record joins that transaction just before its COMMIT. A statement that may not run in a
    transaction block (CONCURRENTLY, VACUUM, …) commits on its own and its progress record follows;
    when a run stops between the two, ``--resume`` judges the statement by its effect
    (:func:`_effect_present`): a valid index of that name exists → skipped; an INVALID one → dropped
    and rebuilt; a database/tablespace already created or dropped → skipped; otherwise run again
    (VACUUM, REINDEX, ALTER SYSTEM have the same effect twice).

    ``start``: statements already committed by an earlier run; ``resumed``: this is ``--resume``
    of that run (statement ``start + 1`` is then judged by its effect).
    """
    total = len(script.statements)
    t0 = time.monotonic()
    with conn.transaction():
        ledger.set_dirty(conn, m.version, m.name, m.checksum, direction, total, start)
        if resumed:
            ledger.record_event(conn, "resume", m.version, m.name, m.checksum, detail=f"{direction} from statement {start + 1}")
    attempts = 1
    for st in script.statements[start:]:
        if resumed and st.index == start + 1 and _effect_present(conn, st):
            log.info("%s statement %d (line %d) already took effect before the interruption; recording it as done",
                     m.folder, st.index, st.line)
            ledger.advance_dirty(conn, m.version, st.index)
            continue
        attempt = 0
        while True:
            attempt += 1
            outside = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # not in the file's own block
            try:
                _run_one(conn, m, st)
                break
            except pgerr.LockNotAvailable as exc:
                if outside and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")  # our own BEGIN … COMMIT batch: nothing of it remains
                if attempt <= opts.retries and outside:
                    time.sleep(backoff(attempt - 1, opts.retry_base_s))
                    continue
                _fail_nontx(conn, target, m, script, direction, st, _error_text(exc) + f" after {attempt} attempt(s)")
            except psycopg.Error as exc:
                _fail_nontx(conn, target, m, script, direction, st, _error_text(exc))
        attempts = max(attempts, attempt)
    ms = int((time.monotonic() - t0) * 1000)
    with conn.transaction():
        if direction == "up":
            ledger.record_applied(conn, m.version, m.name, m.checksum, ms, False)
        else:
            ledger.remove_applied(conn, m.version)
        ledger.clear_dirty(conn, m.version)
        ledger.record_event(conn, direction, m.version, m.name, m.checksum, ms,
                            detail=f"{total} statement(s) outside a transaction ({script.mode_reason})"
                            + (f"; {note}" if note else ""))
    return Applied(m.version, m.name, ms, False, attempts)


def _run_one(conn: psycopg.Connection, m: Migration, st: Statement) -> None:
    """Run one statement of a non-transactional script and record its progress (see _apply_nontx)."""
    status = conn.info.transaction_status
    progress = ledger.advance_dirty_sql(m.version, st.index).as_string(conn)
    if status == psycopg.pq.TransactionStatus.INTRANS:  # inside the file's own BEGIN … COMMIT
        if st.kind == "TransactionStmt" and st.node.kind == TransactionStmtKind.TRANS_STMT_COMMIT:
            conn.execute(progress, prepare=False)  # commits with the file's transaction, or not at all
        conn.execute(st.text, prepare=False)
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and not (
                st.kind == "TransactionStmt" and st.node.kind == TransactionStmtKind.TRANS_STMT_COMMIT):
            conn.execute(progress, prepare=False)  # ROLLBACK ended it: nothing of the block remains
        return
    if st.kind == "TransactionStmt" or st.needs_no_transaction:
        conn.execute(st.text, prepare=False)  # BEGIN opens the file's block; the others commit alone
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute(progress, prepare=False)
        return
    try:
        conn.execute(f"BEGIN;\n{progress};\n{st.text};\nCOMMIT;", prepare=False)
    except pgerr.ActiveSqlTransaction:  # refuses a transaction block although not known to: run it alone
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        log.info("%s statement %d cannot run in a transaction block; running it on its own", m.folder, st.index)
        conn.execute(st.text, prepare=False)
        conn.execute(progress, prepare=False)


def _effect_present(conn: psycopg.Connection, st: Statement) -> bool:
    """Whether statement ``st``, which cannot run in a transaction block and so could not commit
    together with its progress record, already took effect before a run was interrupted.

    CREATE INDEX CONCURRENTLY with a name: a valid index of that name in the table's schema → True;
    an INVALID one (an interrupted or failed build) is dropped CONCURRENTLY → False (rebuild); none →
    False. DROP INDEX CONCURRENTLY: True when none of its indexes exists. CREATE/DROP DATABASE and
    TABLESPACE: True when the object already exists / is already gone. Anything else (VACUUM,
    REINDEX, ALTER SYSTEM, CLUSTER, DISCARD, an unnamed index) → False: it runs again. A statement
    that may run in a transaction block committed with its progress record, so it is never judged.
    """
    if not st.needs_no_transaction:
        return False
    n = st.node
    if isinstance(n, ast.IndexStmt) and n.idxname:
        table = ".".join(sql.Identifier(p).as_string(conn) for p in (n.relation.schemaname, n.relation.relname) if p)
        row = conn.execute(
            "SELECT i.indisvalid AND i.indisready, quote_ident(ns.nspname) || '.' || quote_ident(c.relname) "
            "FROM pg_class t JOIN pg_class c ON c.relnamespace = t.relnamespace AND c.relname = %s "
            "JOIN pg_namespace ns ON ns.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE t.oid = to_regclass(%s)", (n.idxname, table)).fetchone()
        if row is None:
            return False
        if row[0]:
            return True
        log.info("dropping INVALID index %s before rebuilding it", row[1])
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.SQL(row[1])))
        return False
    if isinstance(n, ast.DropStmt) and n.removeType == ObjectType.OBJECT_INDEX:
        names = [".".join(sql.Identifier(p.sval).as_string(conn) for p in obj) for obj in n.objects]
        return all(conn.execute("SELECT to_regclass(%s) IS NULL", (name,)).fetchone()[0] for name in names)
    if isinstance(n, (ast.CreatedbStmt, ast.DropdbStmt)):
        exists = conn.execute("SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)", (n.dbname,)).fetchone()[0]
        return exists if isinstance(n, ast.CreatedbStmt) else not exists
    if isinstance(n, (ast.CreateTableSpaceStmt, ast.DropTableSpaceStmt)):
        exists = conn.execute("SELECT EXISTS (SELECT FROM pg_tablespace WHERE spcname = %s)",
                              (n.tablespacename,)).fetchone()[0]
        return exists if isinstance(n, ast.CreateTableSpaceStmt) else not exists
    return False


def _fail_nontx(conn: psycopg.Connection, target: Target, m: Migration, script: Script, direction: str,
                st: Statement, err: str) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")  # a file with its own BEGIN: its open transaction is lost, as in psql
    row = conn.execute("SELECT statements_done FROM pgops.dirty WHERE version = %s", (m.version,)).fetchone()
    done = row[0] if row else 0
    with conn.transaction():
        ledger.set_dirty(conn, m.version, m.name, m.checksum, direction, len(script.statements), done, st.index, err)
        ledger.record_event(conn, "failed", m.version, m.name, m.checksum,
                            detail=f"{direction}: statement {st.index} (line {st.line}) outside a transaction", error=err)
    raise DirtyDatabase(target.database, m.version, m.name, done, len(script.statements), st.index,
                        f"{err} (line {st.line})", ledger.invalid_indexes(conn))


# ---- rollback -----------------------------------------------------------------------------------

@server_faults("db.rollback")
def rollback(target: Target, *, to: int | None = None, steps: int | None = None, opts: RunOptions | None = None,
             progress: Progress | None = None, expect_newest: int | None = None) -> tuple[list[RollbackStep], list[Applied]]:
    """Run ``down.sql`` of applied migrations newest first, each recorded in the ledger.

    ``expect_newest``: refuse (:class:`RollbackRefused`, nothing reverted) unless the newest applied
    (or dirty) version is this one — checked under the advisory lock, so a deploy that committed a
    newer migration since the plan was shown is never reverted by mistake.

    Returns (plan, done). With ``opts.dry_run`` only the plan. Raises :class:`RollbackRefused` before
    anything runs when a migration to revert has no ``down.sql``; :class:`MigrationFailed` when a
    down script fails (that step rolled back, earlier steps stay reverted).
    """
    opts = opts or RunOptions()
    say = progress or (lambda _msg: None)
    chain = target.chain()
    with migration_lock(target.params, target.database, opts.lock_wait_s) as lock_conn, \
            _work_conn(target, "rollback", opts) as conn:
        if not opts.dry_run:
            _wait_for_orphans(conn, target.database, opts.lock_wait_s, [lock_conn.info.backend_pid])
        applied = ledger.read_applied(conn)
        dirty = ledger.read_dirty(conn)
        if not applied and not dirty:
            raise RollbackRefused(f"Database '{target.database}' has no applied migrations to roll back.",
                                  f"run `invoke db.status --db {target.database}` to see its state.")
        steps_plan = rollback_plan(chain, applied, dirty, to=to, steps=steps)
        if expect_newest is not None and (not steps_plan or steps_plan[0].version != expect_newest):
            newest = steps_plan[0].version if steps_plan else None
            raise RollbackRefused(f"Database '{target.database}': the newest applied migration is now {newest}, "
                                  f"not {expect_newest} as planned; nothing was reverted.",
                                  f"run `invoke db.status --db {target.database}` and plan the rollback again.")
        if opts.dry_run or not steps_plan:
            return steps_plan, []
        done = []
        for step in steps_plan:
            m = step.migration
            say(f"reverting {m.folder}")
            if step.dirty and m.down.transactional:
                with conn.transaction():
                    for s in m.down.statements:
                        conn.execute(s.text, prepare=False)
                    ledger.clear_dirty(conn, m.version)
                    ledger.record_event(conn, "down", m.version, m.name, m.checksum,
                                        detail="reverted a dirty (partly applied) migration")
                done.append(Applied(m.version, m.name, 0, True))
            elif m.down.transactional:
                done.append(_apply_tx(conn, target, m, m.down, "down", opts))
            else:
                done.append(_apply_nontx(conn, target, m, m.down, "down", opts))
        return steps_plan, done


# ---- verify -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    migration: str
    check: str
    passed: bool
    detail: str


def run_verify_script(conn: psycopg.Connection, label: str, script: Script) -> list[CheckResult]:
    """Run a verify script read-only and rolled back; each row must be (text, boolean, text).

    A statement that errors or returns the wrong shape becomes one failed row naming why.
    """
    out = []
    for st in script.statements:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                cur = conn.execute(st.text, prepare=False)
                cols = cur.description or []
                rows = cur.fetchall()
        except psycopg.Error as exc:
            out.append(CheckResult(label, f"statement {st.index} (line {st.line})", False, _error_text(exc)))
            continue
        if len(cols) != 3:
            out.append(CheckResult(label, f"statement {st.index} (line {st.line})", False,
                                   f"returned {len(cols)} columns; verify rows are (check, passed, detail)"))
            continue
        for check, passed, detail in rows:
            if not isinstance(passed, bool):
                out.append(CheckResult(label, str(check), False, f"passed is {type(passed).__name__}, not boolean"))
            else:
                out.append(CheckResult(label, str(check), passed, "" if detail is None else str(detail)))
    return out


@server_faults("db.verify")
def verify(target: Target, record: bool = True) -> list[CheckResult]:
    """Run every applied migration's ``verify.sql`` in version order. Returns every row; the caller
    decides the exit code (:class:`VerifyFailed` when any row failed)."""
    chain = {m.version: m for m in target.chain()}
    with connect(target.params, dbname=target.database, autocommit=True,
                 application_name=tool_application_name("verify")) as conn:
        applied = ledger.read_applied(conn)
        results = []
        for v in sorted(applied):
            m = chain.get(v)
            if m is None or m.verify is None:
                continue
            results += run_verify_script(conn, m.folder, m.verify)
        if record and applied and not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            failed = sum(1 for r in results if not r.passed)
            with conn.transaction():
                ledger.record_event(conn, "verify", max(applied), applied[max(applied)].name,
                                    detail=f"{len(results)} check(s), {failed} failed")
        return results


# ---- baseline -----------------------------------------------------------------------------------

@server_faults("db.baseline")
def baseline(target: Target, to: int, opts: RunOptions | None = None) -> list[Migration]:
    """Record an existing database as being at version ``to`` without running anything (Flyway
    ``baseline``). Every migration on disk up to ``to`` is written to the ledger with duration 0.
    Refuses when the ledger already has rows or ``to`` is not a version on disk."""
    opts = opts or RunOptions()
    chain = target.chain()
    if to not in {m.version for m in chain}:
        raise RollbackRefused(f"Version {to} is not a migration under {target.migrations_dir}.",
                              f"run `invoke db.status --db {target.database}` to list versions.")
    with migration_lock(target.params, target.database, opts.lock_wait_s), _work_conn(target, "baseline", opts) as conn:
        ledger.ensure_ledger(conn)
        if ledger.read_applied(conn):
            raise RollbackRefused(f"Database '{target.database}' already has applied migrations; baseline is for "
                                  "databases that have never been migrated by pgops.",
                                  f"run `invoke db.status --db {target.database}`.")
        marked = [m for m in chain if m.version <= to]
        if opts.dry_run:
            return marked
        with conn.transaction():
            for m in marked:
                ledger.record_applied(conn, m.version, m.name, m.checksum, 0, m.up.transactional)
                ledger.record_event(conn, "baseline", m.version, m.name, m.checksum, 0,
                                    detail=f"recorded as applied by db.baseline --to {to}; nothing ran")
        return marked
