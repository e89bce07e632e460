"""I/O edge of ``db.validate``: measure each mapping on both sides and record the verdicts.

Source side: the mapping's own expressions over the legacy rows it selects, minus the quarantined
keys, each value cast to the target column's type; target side: the v2 table. Per side, one scan:
the row count and, per checksummed column, ``sum`` of a 60-bit hash of ``key:value`` (order-free;
NULL hashed as a marker). The pure verdict is :func:`ops.transfer.compare.judge`; every mapping's
result is written to ``pgops.validations`` / ``pgops.validation_results`` in one transaction —
the record the contract migration's gate reads.
"""
from __future__ import annotations

from typing import Mapping as TMapping

import psycopg
from psycopg import sql

from ..dsn import connect, tool_application_name
from ..migrations import transferledger
from ..migrations.models import Migration
from . import state
from .compare import MappingResult, Side, judge
from .spec import Mapping, TransferSpec

_HASH = "('x' || substr(md5({k}::text || ':' || coalesce({v}::text, '<NULL>')), 1, 15))::bit(60)::bigint"


def _hash(key: sql.Composable, value: sql.Composable) -> sql.Composed:
    return sql.SQL("coalesce(sum(" + _HASH + "), 0)").format(k=key, v=value)


def _types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    return dict(conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                             "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())


def measure(conn: psycopg.Connection, m: Mapping) -> MappingResult:
    types = _types(conn, m.target)
    cols = [c for c in m.checksum]
    where = sql.SQL(f" AND ({m.where})") if m.where else sql.SQL("")
    total = conn.execute(sql.SQL("SELECT count(*) FROM {} s WHERE true{}").format(sql.Identifier(m.source), where)
                         ).fetchone()[0]
    key_expr = sql.SQL("({})::{}").format(sql.SQL(m.expression(m.target_key)), sql.SQL(types.get(m.target_key, "text")))
    src_items = [sql.SQL("count(*)")] + [
        _hash(sql.Identifier("__k"), sql.Identifier(c)) for c in cols]
    inner = sql.SQL(", ").join([sql.SQL("{} AS __k").format(key_expr)] + [
        sql.SQL("({})::{} AS {}").format(sql.SQL(m.expression(c)), sql.SQL(types.get(c, "text")), sql.Identifier(c))
        for c in cols])
    src = conn.execute(sql.SQL(
        "SELECT {items} FROM (SELECT {inner} FROM {s} s WHERE NOT EXISTS (SELECT 1 FROM pgops.transfer_quarantine q "
        "WHERE q.mapping = {name} AND q.source_key = s.{key}){where}) m").format(
        items=sql.SQL(", ").join(src_items), inner=inner, s=sql.Identifier(m.source), name=sql.Literal(m.name),
        key=sql.Identifier(m.key), where=where)).fetchone()
    tgt_items = [sql.SQL("count(*)")] + [_hash(sql.Identifier(m.target_key), sql.Identifier(c)) for c in cols]
    tgt = conn.execute(sql.SQL("SELECT {} FROM {} t").format(sql.SQL(", ").join(tgt_items), sql.Identifier(m.target))
                       ).fetchone()
    source = Side(src[0], {c: int(v) for c, v in zip(cols, src[1:])})
    target = Side(tgt[0], {c: int(v) for c, v in zip(cols, tgt[1:])})
    return judge(m.name, tuple(cols), total, source, target)


def validate(params: TMapping, database: str, spec: TransferSpec,
             chain: list[Migration] | None = None) -> tuple[int | None, list[MappingResult]]:
    """Measure every mapping in one REPEATABLE READ snapshot (both sides see the same moment) and
    record the results. Returns (validation id, results); (None, []) when ``chain``'s contract
    migration is applied (the transfer is finished: nothing to validate, nothing recorded; the task
    reads :func:`.state.check` to say so). Raises :class:`~ops.errors.TransferSourceMissing` when a
    legacy table is missing otherwise."""
    with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("validate")) as conn:
        if state.check(conn, database, spec, chain or [], "db.validate") is not None:
            return None, []
        transferledger.ensure(conn)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            results = [measure(conn, m) for m in spec.mappings]
        last = transferledger.last_transfer(conn)
        with conn.transaction():
            vid = conn.execute("INSERT INTO pgops.validations (transfer_run_id, passed) VALUES (%s, %s) RETURNING id",
                               (last.id if last else None, all(r.passed for r in results))).fetchone()[0]
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO pgops.validation_results (validation_id, mapping, passed, source_rows, "
                                "quarantined, target_rows, failed_columns, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                                [(vid, r.mapping, r.passed, r.source_rows, r.quarantined, r.target_rows,
                                  list(r.failed_columns), r.detail) for r in results])
        return vid, results
