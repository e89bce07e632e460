"""I/O edge of a transfer: batched, throttled, resumable, idempotent copy from legacy to v2, with
change capture, catch-up under a brief lock and a quarantine.

The shape is gh-ost's (a changelog of writes, a throttled row copy by key range, a cut-over under a
short lock) done with PostgreSQL's tools, and pgroll's expand/contract around it:

1. An ``AFTER INSERT OR UPDATE OR DELETE`` trigger on every legacy table records the key of each row
   written (``pgops.transfer_changes``) — it never touches v2, so a legacy writer can never fail
   because of v2's constraints.
2. Each mapping is copied in key ranges of ``batch_size`` rows, one short transaction per batch:
   ``INSERT … SELECT … ON CONFLICT (target_key) DO UPDATE`` (idempotent: a batch copied twice leaves
   one row) and the mapping's high-water mark, committed together — ``kill -9`` loses at most the
   batch in flight and ``--resume`` goes on from the mark, no duplicate, no gap.
3. A batch a v2 constraint rejects (SQLSTATE class 23, or 22: a bad cast) is split in halves under
   savepoints until each rejected row is alone; it goes to ``pgops.transfer_quarantine`` with the
   constraint and message, its stale v2 copy (if any) is removed; the rest of the batch commits.
4. Catch-up: the captured keys are drained — re-copied, or deleted from v2 when the legacy row is
   gone — in passes without a lock until the backlog is under one batch, then one last pass under
   ``LOCK TABLE … IN SHARE MODE`` on the legacy tables (reads go on, writes wait), timed: that is
   the longest lock the transfer takes, reported and recorded.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping as TMapping

import psycopg
from psycopg import errors as pgerr
from psycopg import sql

from ..dsn import connect, redact, tool_application_name
from ..errors import TransferFailed
from ..migrations import transferledger
from ..migrations.locking import backoff
from .batches import Limits, Load, batch_range, keep_waiting, throttle_reason
from ..migrations.models import Migration
from . import state
from .spec import Mapping, TransferSpec
from .state import ContractApplied

log = logging.getLogger(__name__)

REJECTED = (pgerr.IntegrityError, pgerr.DataError)  # SQLSTATE classes 23 and 22: the row, not the run


@dataclass
class MappingReport:
    mapping: str
    rows_copied: int = 0
    quarantined: int = 0
    batches: int = 0
    high_water: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TransferReport:
    """What one run did. Seconds are wall time; locks in milliseconds (each lock the run took on
    the legacy tables: trigger installs and the final catch-up)."""

    database: str
    run_id: int | None
    dry_run: bool
    mappings: list[MappingReport] = field(default_factory=list)
    caught_up: int = 0
    seconds: float = 0.0
    final_lock_ms: float = 0.0
    trigger_lock_ms: float = 0.0
    throttled_s: float = 0.0
    plan: list[dict] = field(default_factory=list)
    finished: ContractApplied | None = None  # the contract is applied: nothing was (or will be) transferred

    @property
    def rows(self) -> int:
        return sum(m.rows_copied for m in self.mappings)

    @property
    def longest_lock_ms(self) -> float:
        return max(self.final_lock_ms, self.trigger_lock_ms)

    def as_dict(self) -> dict:
        if self.finished is not None:
            return {**self.finished.as_dict(), "run_id": None, "dry_run": self.dry_run, "rows_copied": 0,
                    "quarantined": 0, "caught_up": 0, "mappings": [], "plan": []}
        return {"database": self.database, "state": "planned" if self.dry_run else "transferred",
                "run_id": self.run_id, "dry_run": self.dry_run,
                "rows_copied": self.rows, "quarantined": sum(m.quarantined for m in self.mappings),
                "caught_up": self.caught_up, "seconds": round(self.seconds, 3),
                "rate_rows_per_s": round(self.rows / self.seconds, 1) if self.seconds else None,
                "longest_lock_ms": round(self.longest_lock_ms, 1), "final_lock_ms": round(self.final_lock_ms, 1),
                "trigger_lock_ms": round(self.trigger_lock_ms, 1), "throttled_s": round(self.throttled_s, 2),
                "mappings": [m.as_dict() for m in self.mappings], "plan": self.plan}


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _select(m: Mapping, predicate: sql.Composable) -> sql.Composed:
    """``SELECT <expressions> FROM <source> s WHERE <predicate> [AND (<where>)]``."""
    exprs = sql.SQL(", ").join(sql.SQL("{} AS {}").format(sql.SQL(e), _ident(c)) for c, e in m.columns)
    cond = predicate if not m.where else sql.SQL("{} AND ({})").format(predicate, sql.SQL(m.where))
    return sql.SQL("SELECT {} FROM {} s WHERE {}").format(exprs, _ident(m.source), cond)


def upsert_sql(m: Mapping, predicate: sql.Composable) -> sql.Composed:
    cols = sql.SQL(", ").join(_ident(c) for c in m.target_columns)
    sets = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(_ident(c), _ident(c))
                              for c in m.target_columns if c != m.target_key)
    return sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT ({}) DO UPDATE SET {}").format(
        _ident(m.target), cols, _select(m, predicate), _ident(m.target_key), sets)


def _range(m: Mapping) -> sql.Composed:
    return sql.SQL("s.{k} > %(lo)s AND s.{k} <= %(hi)s").format(k=_ident(m.key))


def _keys(m: Mapping) -> sql.Composed:
    return sql.SQL("s.{} = ANY(%(keys)s)").format(_ident(m.key))


class Copier:
    """Copies rows of one mapping on ``conn`` (autocommit; callers open the transaction)."""

    def __init__(self, conn: psycopg.Connection, m: Mapping, run_id: int):
        self.conn, self.m, self.run_id = conn, m, run_id
        self.by_range = upsert_sql(m, _range(m))
        self.by_range_unquarantined = upsert_sql(m, sql.SQL(
            "{} AND NOT EXISTS (SELECT 1 FROM pgops.transfer_quarantine q WHERE q.mapping = %(mapping)s "
            "AND q.source_key = s.{})").format(_range(m), _ident(m.key)))
        self.by_keys = upsert_sql(m, _keys(m))

    def foreign_keys(self) -> list[tuple[str, str, str, str]]:
        """The target's single-column foreign keys whose column is mapped: (constraint, column,
        parent table, parent column) — read once from the catalog."""
        if not hasattr(self, "_fks"):
            rows = self.conn.execute(
                "SELECT c.conname, a.attname, c.confrelid::regclass::text, pa.attname FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1] "
                "WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s) AND cardinality(c.conkey) = 1",
                (self.m.target,)).fetchall()
            self._fks = [r for r in rows if r[1] in self.m.target_columns]
        return self._fks

    def precheck_parents(self, lo: int, hi: int) -> int:
        """Quarantine, set-wise, the rows of ``(lo, hi]`` whose parent row is missing from v2 (an
        orphan, or a child of a quarantined parent: the bulk of rejected rows), with the reason
        PostgreSQL gives for a foreign key violation, so the batch rarely needs bisecting."""
        m, total = self.m, 0
        for conname, col, parent, pcol in self.foreign_keys():
            cond = _range(m) if not m.where else sql.SQL("{} AND ({})").format(_range(m), sql.SQL(m.where))
            head = (f'insert or update on table "{m.target}" violates foreign key constraint "{conname}" '
                    f"(constraint {conname}); Key ({col})=(")
            tail = f') is not present in table "{parent}".'
            total += self.conn.execute(sql.SQL(
                "INSERT INTO pgops.transfer_quarantine (mapping, source_key, reason, sqlstate, row_data, run_id) "
                "SELECT {name}, o.k, {head} || o.v || {tail}, '23503', o.row_data, {run} FROM ("
                "SELECT s.{key} AS k, ({fk}) AS v, to_jsonb(s) AS row_data FROM {src} s WHERE {cond}) o "
                "WHERE o.v IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{pcol} = o.v) "
                "ON CONFLICT (mapping, source_key) DO UPDATE SET reason = EXCLUDED.reason, sqlstate = EXCLUDED.sqlstate, "
                "row_data = EXCLUDED.row_data, run_id = EXCLUDED.run_id, at = clock_timestamp()").format(
                name=sql.Literal(m.name), head=sql.Literal(head), tail=sql.Literal(tail), run=sql.Literal(self.run_id),
                key=_ident(m.key), fk=sql.SQL(m.expression(col)), src=_ident(m.source), cond=cond,
                parent=sql.Identifier(*parent.split(".")), pcol=_ident(pcol)), {"lo": lo, "hi": hi}).rowcount
        return total

    def copy_range(self, lo: int, hi: int) -> tuple[int, int]:
        """Copy ``(lo, hi]``; returns (rows copied, rows quarantined). Inside the caller's
        transaction: earlier verdicts on the range are dropped and decided again."""
        m, params = self.m, {"lo": lo, "hi": hi, "mapping": self.m.name}
        self.conn.execute("DELETE FROM pgops.transfer_quarantine WHERE mapping = %s AND source_key > %s "
                          "AND source_key <= %s", (m.name, lo, hi))
        try:
            with self.conn.transaction():
                pre = self.precheck_parents(lo, hi)
        except REJECTED:  # a foreign key expression that cannot be computed: the bisection decides
            pre = 0
        if pre:  # a stale copy of a row now rejected goes (its legacy row changed since)
            self.conn.execute(sql.SQL("DELETE FROM {t} t WHERE t.{tk} IN (SELECT source_key FROM pgops.transfer_quarantine "
                                      "WHERE mapping = %s AND source_key > %s AND source_key <= %s)").format(
                t=_ident(m.target), tk=_ident(m.target_key)), (m.name, lo, hi))
        try:
            with self.conn.transaction():
                return self.conn.execute(self.by_range_unquarantined, params).rowcount, pre
        except REJECTED:
            keys = [r[0] for r in self.conn.execute(
                sql.SQL("SELECT s.{k} FROM {src} s WHERE {p} AND NOT EXISTS (SELECT 1 FROM pgops.transfer_quarantine q "
                        "WHERE q.mapping = %(mapping)s AND q.source_key = s.{k}) ORDER BY 1").format(
                    k=_ident(m.key), src=_ident(m.source),
                    p=_range(m) if not m.where else sql.SQL("{} AND ({})").format(_range(m), sql.SQL(m.where))), params)]
            n, q = self.copy_keys(keys)
            return n, q + pre

    def copy_keys(self, keys: list[int]) -> tuple[int, int]:
        """Copy the rows with these source keys, bisecting around rejected ones (quarantined)."""
        if not keys:
            return 0, 0
        try:
            with self.conn.transaction():
                n = self.conn.execute(self.by_keys, {"keys": keys}).rowcount
            self.conn.execute("DELETE FROM pgops.transfer_quarantine WHERE mapping = %s AND source_key = ANY(%s)",
                              (self.m.name, keys))
            return n, 0
        except REJECTED as exc:
            if len(keys) == 1:
                self.quarantine(keys[0], exc)
                return 0, 1
        half = len(keys) // 2
        a = self.copy_keys(keys[:half])
        b = self.copy_keys(keys[half:])
        return a[0] + b[0], a[1] + b[1]

    def quarantine(self, key: int, exc: psycopg.Error) -> None:
        m, d = self.m, exc.diag
        reason = redact(f"{d.message_primary or exc}" + (f" (constraint {d.constraint_name})" if d.constraint_name else "")
                        + (f"; {d.message_detail}" if (d.message_detail or "").startswith("Key (") else ""))
        self.conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(_ident(m.target), _ident(m.target_key)), (key,))
        self.conn.execute(
            sql.SQL("INSERT INTO pgops.transfer_quarantine (mapping, source_key, reason, sqlstate, row_data, run_id) "
                    "SELECT %s, %s, %s, %s, (SELECT to_jsonb(s) FROM {} s WHERE s.{} = %s), %s "
                    "ON CONFLICT (mapping, source_key) DO UPDATE SET reason = EXCLUDED.reason, "
                    "sqlstate = EXCLUDED.sqlstate, row_data = EXCLUDED.row_data, run_id = EXCLUDED.run_id, "
                    "at = clock_timestamp()").format(_ident(m.source), _ident(m.key)),
            (m.name, key, reason, d.sqlstate, key, self.run_id))

    def remove_gone(self, keys: list[int]) -> None:
        """Delete v2 rows (and quarantine entries) whose legacy row is gone or no longer matches."""
        m = self.m
        cond = sql.SQL("s.{k} = t.{tk}").format(k=_ident(m.key), tk=_ident(m.target_key))
        if m.where:
            cond = sql.SQL("{} AND ({})").format(cond, sql.SQL(m.where))
        self.conn.execute(sql.SQL("DELETE FROM {t} t WHERE t.{tk} = ANY(%s) AND NOT EXISTS (SELECT 1 FROM {s} s WHERE {c})")
                          .format(t=_ident(m.target), tk=_ident(m.target_key), s=_ident(m.source), c=cond), (keys,))
        cond_q = sql.SQL("s.{k} = q.source_key").format(k=_ident(m.key))
        if m.where:
            cond_q = sql.SQL("{} AND ({})").format(cond_q, sql.SQL(m.where))
        self.conn.execute(sql.SQL("DELETE FROM pgops.transfer_quarantine q WHERE q.mapping = %s AND q.source_key = ANY(%s) "
                                  "AND NOT EXISTS (SELECT 1 FROM {s} s WHERE {c})").format(s=_ident(m.source), c=cond_q),
                          (m.name, keys))


def measure_load(conn: psycopg.Connection) -> Load:
    """Replica replay lag (seconds, bytes) from ``pg_stat_replication`` and the number of other
    sessions of this database waiting on a lock."""
    lag_s, lag_b = conn.execute(
        "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8, "
        "coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication").fetchone()
    waiters = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()[0]
    return Load(lag_s, lag_b, waiters)


def _with_lock_retry(fn: Callable[[], float], what: str, attempts: int = 20) -> float:
    for i in range(attempts):
        try:
            return fn()
        except pgerr.LockNotAvailable:
            log.info("%s: lock not available (attempt %d); retrying", what, i + 1)
            time.sleep(backoff(i, 0.1, cap=2.0))
    return fn()


def install_capture(conn: psycopg.Connection, spec: TransferSpec, lock_timeout_ms: int) -> float:
    """Create the capture trigger on each legacy table that lacks it; returns the longest lock
    (ms) one install held. Each install is its own short transaction under ``lock_timeout``."""
    longest = 0.0
    for source, key in spec.sources().items():
        has = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s)",
                           (source, transferledger.CAPTURE_TRIGGER)).fetchone()[0]
        if has:
            continue

        def create(source=source, key=key) -> float:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
                t0 = time.monotonic()
                conn.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                                     "EXECUTE FUNCTION {}({})").format(
                    _ident(transferledger.CAPTURE_TRIGGER), _ident(source),
                    sql.Identifier(*transferledger.CAPTURE_FUNCTION.split(".")), sql.Literal(key)))
                return (time.monotonic() - t0) * 1000
        longest = max(longest, _with_lock_retry(create, f"capture trigger on {source}"))
    return longest


Progress = Callable[[str, int], None]
FINAL_BACKLOG = 50  # captured changes left for the locked pass: the lock is held while they are applied


def transfer(params: TMapping, database: str, spec: TransferSpec, *, batch_size: int = 5000, resume: bool = False,
             dry_run: bool = False, limits: Limits | None = None, lock_timeout_ms: int = 2000,
             progress: Progress | None = None, totals: Callable[[int], None] | None = None,
             say: Callable[[str], None] | None = None, only: tuple[str, ...] = (),
             chain: list[Migration] | None = None) -> TransferReport:
    """Run (or with ``dry_run`` plan) the transfer of ``spec`` in ``database``.

    ``batch_size``: rows per batch (≥ 1). ``resume``: continue each mapping from its recorded
    high-water mark instead of from the first key. ``progress(mapping, rows)`` after each batch;
    ``totals(rows)`` once with the rows to copy. ``chain``: the database's migrations; when its
    contract migration is in the ledger the transfer is finished and the report says so
    (``report.finished``), having read nothing else and written nothing (:mod:`.state`). Raises
    :class:`~ops.errors.TransferSourceMissing` when a legacy table is missing otherwise (nothing
    written), :class:`~ops.errors.TransferFailed` when a batch fails for a reason that is not a
    rejected row (the run is recorded as failed; committed batches stay).
    """
    limits = limits or Limits()
    say = say or (lambda _m: None)
    advance = progress or (lambda _m, _n: None)
    t0 = time.monotonic()
    report = TransferReport(database, None, dry_run)
    mappings = [m for m in spec.mappings if not only or m.name in only]
    with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("transfer")) as conn:
        report.finished = state.check(conn, database, spec, chain or [], "db.transfer")
        if report.finished is not None:
            report.seconds = time.monotonic() - t0
            return report
        ledger_there = transferledger.exists(conn)
        marks = dict(conn.execute("SELECT mapping, high_water FROM pgops.transfer_progress").fetchall()) \
            if ledger_there and resume else {}
        work = []
        for m in mappings:
            low = marks.get(m.name)
            mx = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(_ident(m.key), _ident(m.source))).fetchone()[0]
            left = conn.execute(sql.SQL("SELECT count(*) FROM {} s WHERE s.{} > %s{}").format(
                _ident(m.source), _ident(m.key), sql.SQL(f" AND ({m.where})") if m.where else sql.SQL("")),
                (low if low is not None else -(2 ** 63),)).fetchone()[0]
            work.append((m, low, mx, left))
            report.plan.append({"mapping": m.name, "source": m.source, "target": m.target, "high_water": low,
                                "rows_left": left, "batches": -(-left // batch_size)})
        backlog = transferledger.pending_changes(conn) if ledger_there else 0
        report.plan.append({"mapping": "(catch-up)", "source": "pgops.transfer_changes", "target": "v2",
                            "high_water": None, "rows_left": backlog, "batches": -(-backlog // batch_size)})
        if dry_run:
            report.seconds = time.monotonic() - t0
            return report
        transferledger.ensure(conn)
        with conn.transaction():
            conn.execute("UPDATE pgops.transfer_runs SET status = 'failed', detail = coalesce(detail, 'interrupted') "
                         "WHERE status = 'running'")
            report.run_id = conn.execute("INSERT INTO pgops.transfer_runs (spec, detail) VALUES (%s, %s) RETURNING id",
                                         (",".join(m.name for m in mappings),
                                          f"batch_size={batch_size} resume={resume}")).fetchone()[0]
        current = "(setup)"
        try:
            report.trigger_lock_ms = install_capture(conn, spec, lock_timeout_ms)
            if totals:
                totals(sum(w[3] for w in work))
            for m, low, mx, _left in work:
                current = m.name
                mr = MappingReport(m.name, high_water=low)
                report.mappings.append(mr)
                copier = Copier(conn, m, report.run_id)
                if low is None:
                    with conn.transaction():
                        conn.execute("INSERT INTO pgops.transfer_progress (mapping, run_id, high_water, rows_copied) "
                                     "VALUES (%s, %s, NULL, 0) ON CONFLICT (mapping) DO UPDATE SET run_id = EXCLUDED.run_id, "
                                     "high_water = NULL, rows_copied = 0, done = false, updated_at = clock_timestamp()",
                                     (m.name, report.run_id))
                nth = sql.SQL("SELECT s.{k} FROM {s} s WHERE s.{k} > %s ORDER BY s.{k} OFFSET %s LIMIT 1").format(
                    k=_ident(m.key), s=_ident(m.source))
                while True:
                    report.throttled_s += _throttle(conn, limits, say)
                    lo_key = mr.high_water if mr.high_water is not None else -(2 ** 63)
                    row = conn.execute(nth, (lo_key, batch_size - 1)).fetchone()
                    rng = batch_range(mr.high_water, row[0] if row else None, mx)
                    if rng is None:
                        break
                    lo, hi = rng
                    with conn.transaction():
                        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
                        n, q = copier.copy_range(lo, hi)
                        conn.execute("UPDATE pgops.transfer_progress SET high_water = %s, rows_copied = rows_copied + %s, "
                                     "run_id = %s, updated_at = clock_timestamp() WHERE mapping = %s",
                                     (hi, n + q, report.run_id, m.name))
                    mr.rows_copied += n
                    mr.quarantined += q
                    mr.batches += 1
                    mr.high_water = hi
                    advance(m.name, n + q)
                with conn.transaction():
                    conn.execute("UPDATE pgops.transfer_progress SET done = true WHERE mapping = %s", (m.name,))
                _advance_identity(conn, m)
            current = "(catch-up)"
            report.caught_up, report.final_lock_ms = catch_up(conn, spec, batch_size, report.run_id, lock_timeout_ms, say)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error as exc:
            _finish(params, database, report, "failed", f"{current}: {redact(str(exc)).splitlines()[0]}")
            raise TransferFailed(database, current, redact(str(exc)).splitlines()[0]) from None
        except BaseException:
            _finish(params, database, report, "failed", f"{current}: interrupted")
            raise
        report.seconds = time.monotonic() - t0
        _finish(params, database, report, "finished", None, conn)
        return report


def _finish(params, database: str, report: TransferReport, status: str, detail: str | None, conn=None) -> None:
    """Record the run's outcome (on a fresh connection when the run's own is unusable)."""
    q = ("UPDATE pgops.transfer_runs SET status = %s, finished_at = clock_timestamp(), rows_copied = %s, "
         "rows_quarantined = %s, longest_lock_ms = %s, detail = coalesce(%s, detail) WHERE id = %s")
    args = (status, report.rows, sum(m.quarantined for m in report.mappings), int(report.longest_lock_ms), detail,
            report.run_id)
    try:
        if conn is not None:
            conn.execute(q, args)
            return
        with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("transfer")) as c:
            c.execute(q, args)
    except psycopg.Error:
        log.warning("could not record transfer run %s as %s", report.run_id, status)


def _throttle(conn: psycopg.Connection, limits: Limits, say: Callable[[str], None]) -> float:
    paused = 0.0
    while (reason := throttle_reason(measure_load(conn), limits)) is not None:
        if not keep_waiting(paused, limits):
            say(f"throttle: still {reason} after {paused:.0f} s; going on")
            break
        if paused == 0.0:
            log.info("throttled: %s", reason)
        time.sleep(limits.sleep_s)
        paused += limits.sleep_s
    return paused


def _advance_identity(conn: psycopg.Connection, m: Mapping) -> None:
    """Move the target key's identity past the copied keys, so v2's own inserts never collide."""
    seq = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (m.target, m.target_key)).fetchone()[0]
    if seq:
        conn.execute(sql.SQL("SELECT setval(%s, greatest((SELECT max({k}) FROM {t}), 1))").format(
            k=_ident(m.target_key), t=_ident(m.target)), (seq,))


def _drain(conn: psycopg.Connection, spec: TransferSpec, limit: int, run_id: int) -> int:
    """One chunk of the change log, applied and deleted in the caller's transaction. Returns the
    number of change rows consumed."""
    rows = conn.execute("DELETE FROM pgops.transfer_changes WHERE id IN (SELECT id FROM pgops.transfer_changes "
                        "ORDER BY id LIMIT %s) RETURNING source, source_key", (limit,)).fetchall()
    by_source: dict[str, set[int]] = {}
    for source, key in rows:
        by_source.setdefault(source, set()).add(key)
    for m in spec.mappings:  # parents first
        keys = sorted(by_source.get(m.source, ()))
        if keys:
            c = Copier(conn, m, run_id)
            c.copy_keys(keys)
            c.remove_gone(keys)
    return len(rows)


def catch_up(conn: psycopg.Connection, spec: TransferSpec, batch_size: int, run_id: int, lock_timeout_ms: int,
             say: Callable[[str], None]) -> tuple[int, float]:
    """Drain captured legacy writes: unlocked passes while more than :data:`FINAL_BACKLOG` wait (at most 50),
    then the last pass under ``LOCK TABLE <legacy tables> IN SHARE MODE``. Returns (changes applied,
    milliseconds the lock was held)."""
    done = 0
    for _ in range(50):  # gh-ost's cut-over waits for the backlog to be small before it locks
        if transferledger.pending_changes(conn) <= FINAL_BACKLOG:
            break
        with conn.transaction():
            done += _drain(conn, spec, batch_size, run_id)
    tables = sql.SQL(", ").join(_ident(s) for s in spec.sources())

    def locked() -> float:  # from the moment the lock is granted until COMMIT has released it
        nonlocal done
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tables))
            t0 = time.monotonic()
            while True:
                n = _drain(conn, spec, batch_size, run_id)
                done += n
                if n < batch_size:
                    break
        return (time.monotonic() - t0) * 1000
    held = _with_lock_retry(locked, "final catch-up")
    say(f"final catch-up held SHARE locks on {len(spec.sources())} legacy table(s) for {held:.1f} ms")
    return done, held
