"""The transfer ledger beside the migration ledger (schema ``pgops``): what ``db.transfer`` and
``db.validate`` record, and what the validation gate of a contract migration reads.

Tables (created idempotently by :func:`ensure`):

- ``pgops.transfer_runs``: one row per ``db.transfer`` run (status running | finished | failed,
  rows, quarantined, longest lock in ms);
- ``pgops.transfer_progress``: per mapping, the high-water mark (the highest source key whose batch
  committed) — it commits in the same transaction as the batch, so a run killed with ``kill -9``
  resumes from it with no duplicate and no gap;
- ``pgops.transfer_quarantine``: source rows the v2 constraints rejected, with the reason and the
  row as JSON — never silently dropped;
- ``pgops.transfer_changes``: keys of legacy rows written while or after a transfer ran, captured by
  a trigger (:data:`CAPTURE_FUNCTION`) and drained by the transfer's catch-up passes;
- ``pgops.validations`` and ``pgops.validation_results``: each ``db.validate`` and each mapping's
  outcome (counts, failed columns).
"""
from __future__ import annotations

import psycopg

from .gate import GateVerdict, TransferRun, Validation, decide

DDL = r"""
CREATE SCHEMA IF NOT EXISTS pgops;
CREATE TABLE IF NOT EXISTS pgops.transfer_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spec             text NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    rows_copied      bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0,
    longest_lock_ms  integer,
    detail           text
);
CREATE TABLE IF NOT EXISTS pgops.transfer_progress (
    mapping          text PRIMARY KEY,
    run_id           bigint NOT NULL,
    high_water       bigint,
    rows_copied      bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    done             boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS pgops.transfer_quarantine (
    mapping          text NOT NULL,
    source_key       bigint NOT NULL,
    reason           text NOT NULL,
    sqlstate         text,
    row_data         jsonb,
    run_id           bigint,
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (mapping, source_key)
);
CREATE TABLE IF NOT EXISTS pgops.transfer_changes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL,
    source_key       bigint NOT NULL,
    at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS pgops.validations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    transfer_run_id  bigint,
    passed           boolean NOT NULL,
    by_user          text NOT NULL DEFAULT current_user
);
CREATE TABLE IF NOT EXISTS pgops.validation_results (
    validation_id    bigint NOT NULL REFERENCES pgops.validations (id),
    mapping          text NOT NULL,
    passed           boolean NOT NULL,
    source_rows      bigint NOT NULL,
    quarantined      bigint NOT NULL,
    target_rows      bigint NOT NULL,
    failed_columns   text[] NOT NULL DEFAULT '{}',
    detail           text NOT NULL DEFAULT '',
    PRIMARY KEY (validation_id, mapping)
);
CREATE OR REPLACE FUNCTION pgops.transfer_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO pgops.transfer_changes (source, source_key) VALUES (TG_TABLE_NAME, (to_jsonb(OLD) ->> TG_ARGV[0])::bigint);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pgops.transfer_changes (source, source_key) VALUES (TG_TABLE_NAME, (to_jsonb(NEW) ->> TG_ARGV[0])::bigint);
    END IF;
    RETURN NULL;
END
$$;
"""
CAPTURE_FUNCTION = "pgops.transfer_capture"
CAPTURE_TRIGGER = "pgops_transfer_capture"


def exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('pgops.validation_results') IS NOT NULL "
                        "AND to_regclass('pgops.transfer_changes') IS NOT NULL").fetchone()[0]


def ensure(conn: psycopg.Connection) -> None:
    """Create the transfer ledger if it is missing (idempotent; ``conn`` in autocommit)."""
    if exists(conn):
        return
    from .ledger import run_ddl
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('pgops.transfer_ledger'))")
        run_ddl(conn, DDL)


def last_transfer(conn: psycopg.Connection) -> TransferRun | None:
    if not exists(conn):
        return None
    row = conn.execute("SELECT id, started_at, finished_at, status FROM pgops.transfer_runs "
                       "ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()
    return TransferRun(*row) if row else None


def last_validation(conn: psycopg.Connection) -> Validation | None:
    if not exists(conn):
        return None
    row = conn.execute("SELECT id, at, passed FROM pgops.validations ORDER BY at DESC, id DESC LIMIT 1").fetchone()
    if not row:
        return None
    failures = tuple(f"{m}{'.' + ','.join(cols) if cols else ''}: {detail}" for m, cols, detail in conn.execute(
        "SELECT mapping, failed_columns, detail FROM pgops.validation_results WHERE validation_id = %s AND NOT passed "
        "ORDER BY mapping", (row[0],)))
    return Validation(row[0], row[1], row[2], failures)


def pending_changes(conn: psycopg.Connection) -> int:
    if not exists(conn):
        return 0
    return conn.execute("SELECT count(*) FROM pgops.transfer_changes").fetchone()[0]


def gate_verdict(conn: psycopg.Connection, database: str) -> GateVerdict:
    """Read the newest transfer run, validation and change backlog, and decide (:func:`gate.decide`)."""
    return decide(database, last_transfer(conn), last_validation(conn), pending_changes(conn))
