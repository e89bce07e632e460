"""The ledger: schema ``pgops`` in each managed database.

``pgops.migrations`` holds one row per applied migration (Flyway's schema history, sqitch's
``changes``); ``pgops.migration_events`` is append-only (a trigger refuses UPDATE, DELETE and
TRUNCATE) and records up / down / verify / failed / baseline / accept_changed / resume;
``pgops.dirty`` holds at most one row: the non-transactional migration that stopped part-way;
its ``statements_done`` commits in the same transaction as the statement it counts whenever that
statement may run in a transaction block (see ``runner._apply_nontx``).
"""
from __future__ import annotations


import psycopg
from psycopg import sql

from .. import __version__
from .models import AppliedRow, DirtyRow

LEDGER_DDL = r"""
CREATE SCHEMA IF NOT EXISTS pgops;
CREATE TABLE IF NOT EXISTS pgops.migrations (
    version       bigint PRIMARY KEY,
    name          text NOT NULL,
    checksum      text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    applied_by    text NOT NULL DEFAULT current_user,
    duration_ms   integer NOT NULL,
    tool_version  text NOT NULL,
    transactional boolean NOT NULL DEFAULT true
);
CREATE TABLE IF NOT EXISTS pgops.migration_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    event        text NOT NULL CHECK (event IN ('up', 'down', 'verify', 'failed', 'baseline',
                                                'accept_changed', 'resume')),
    version      bigint,
    name         text,
    checksum     text,
    duration_ms  integer,
    by_user      text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL,
    detail       text,
    error        text
);
CREATE TABLE IF NOT EXISTS pgops.dirty (
    version          bigint PRIMARY KEY,
    name             text NOT NULL,
    checksum         text NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('up', 'down')),
    statements_total integer NOT NULL,
    statements_done  integer NOT NULL,
    failed_statement integer,
    error            text,
    since            timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION pgops.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pgops.migration_events is append-only';
END
$$;
CREATE OR REPLACE TRIGGER migration_events_append_only
    BEFORE UPDATE OR DELETE ON pgops.migration_events
    FOR EACH ROW EXECUTE FUNCTION pgops.events_append_only();
CREATE OR REPLACE TRIGGER migration_events_no_truncate
    BEFORE TRUNCATE ON pgops.migration_events
    FOR EACH STATEMENT EXECUTE FUNCTION pgops.events_append_only();
"""


def ledger_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('pgops.dirty') IS NOT NULL "
                        "AND to_regclass('pgops.migration_events') IS NOT NULL").fetchone()[0]


def ensure_ledger(conn: psycopg.Connection) -> None:
    """Create the ledger schema if it is missing (idempotent; call under the advisory lock)."""
    if ledger_exists(conn):
        return
    with conn.transaction():
        run_ddl(conn, LEDGER_DDL)


def run_ddl(conn: psycopg.Connection, ddl: str) -> None:
    """Execute a DDL script statement by statement, split on its parse tree (pglast, never on
    ``;``), in the caller's transaction. Used for pgops's own schemas (the ledger, the transfer ledger)."""
    from .script import parse_script
    for st in parse_script(ddl).statements:
        conn.execute(st.text)


def read_applied(conn: psycopg.Connection) -> dict[int, AppliedRow]:
    """Applied migrations by version; empty when the ledger does not exist yet."""
    if not ledger_exists(conn):
        return {}
    rows = conn.execute("SELECT version, name, checksum, applied_at, applied_by, duration_ms, tool_version, "
                        "transactional FROM pgops.migrations ORDER BY version").fetchall()
    return {r[0]: AppliedRow(*r) for r in rows}


def read_dirty(conn: psycopg.Connection) -> DirtyRow | None:
    if not ledger_exists(conn):
        return None
    row = conn.execute("SELECT version, name, checksum, direction, statements_total, statements_done, "
                       "failed_statement, error FROM pgops.dirty ORDER BY version LIMIT 1").fetchone()
    return DirtyRow(*row) if row else None


def record_applied(conn: psycopg.Connection, version: int, name: str, checksum: str, duration_ms: int,
                   transactional: bool) -> None:
    conn.execute("INSERT INTO pgops.migrations (version, name, checksum, duration_ms, tool_version, transactional) "
                 "VALUES (%s, %s, %s, %s, %s, %s)",
                 (version, name, checksum, duration_ms, __version__, transactional))


SERVER_DURATION_MS = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int"


def applied_row_sql(version: int, name: str, checksum: str, transactional: bool) -> sql.Composed:
    """INSERT of a ledger row whose duration_ms is measured by the server (transaction start → now)."""
    return sql.SQL("INSERT INTO pgops.migrations (version, name, checksum, duration_ms, tool_version, transactional) "
                   "VALUES ({}, {}, {}, " + SERVER_DURATION_MS + ", {}, {})").format(
        sql.Literal(version), sql.Literal(name), sql.Literal(checksum), sql.Literal(__version__),
        sql.Literal(transactional))


def removed_row_sql(version: int) -> sql.Composed:
    return sql.SQL("DELETE FROM pgops.migrations WHERE version = {}").format(sql.Literal(version))


def event_sql(event: str, version: int, name: str, checksum: str, detail: str) -> sql.Composed:
    """INSERT of an event row, duration measured by the server like :func:`applied_row_sql`."""
    return sql.SQL("INSERT INTO pgops.migration_events (event, version, name, checksum, duration_ms, tool_version, "
                   "detail) VALUES ({}, {}, {}, {}, " + SERVER_DURATION_MS + ", {}, {})").format(
        sql.Literal(event), sql.Literal(version), sql.Literal(name), sql.Literal(checksum),
        sql.Literal(__version__), sql.Literal(detail))


def remove_applied(conn: psycopg.Connection, version: int) -> None:
    conn.execute("DELETE FROM pgops.migrations WHERE version = %s", (version,))


def update_checksum(conn: psycopg.Connection, version: int, checksum: str) -> None:
    conn.execute("UPDATE pgops.migrations SET checksum = %s WHERE version = %s", (checksum, version))


def record_event(conn: psycopg.Connection, event: str, version: int | None = None, name: str | None = None,
                 checksum: str | None = None, duration_ms: int | None = None, detail: str | None = None,
                 error: str | None = None) -> None:
    conn.execute("INSERT INTO pgops.migration_events (event, version, name, checksum, duration_ms, tool_version, "
                 "detail, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (event, version, name, checksum, duration_ms, __version__, detail, error))


def set_dirty(conn: psycopg.Connection, version: int, name: str, checksum: str, direction: str,
              total: int, done: int, failed: int | None = None, error: str | None = None) -> None:
    conn.execute(
        "INSERT INTO pgops.dirty (version, name, checksum, direction, statements_total, statements_done, "
        "failed_statement, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (version) DO UPDATE SET direction = EXCLUDED.direction, checksum = EXCLUDED.checksum, "
        "statements_total = EXCLUDED.statements_total, statements_done = EXCLUDED.statements_done, "
        "failed_statement = EXCLUDED.failed_statement, error = EXCLUDED.error",
        (version, name, checksum, direction, total, done, failed, error))


def advance_dirty_sql(version: int, done: int) -> sql.Composed:
    """UPDATE of the dirty row's progress to ``done`` statements, as text to send inside the same
    transaction (or batch) as the statement it records, so the two commit together."""
    return sql.SQL("UPDATE pgops.dirty SET statements_done = {} WHERE version = {}").format(
        sql.Literal(done), sql.Literal(version))


def advance_dirty(conn: psycopg.Connection, version: int, done: int) -> None:
    conn.execute(advance_dirty_sql(version, done))


def clear_dirty(conn: psycopg.Connection, version: int) -> None:
    conn.execute("DELETE FROM pgops.dirty WHERE version = %s", (version,))


def invalid_indexes(conn: psycopg.Connection) -> list[str]:
    """Indexes left INVALID (e.g. by a failed CREATE INDEX CONCURRENTLY), as qualified names."""
    return [r[0] for r in conn.execute(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE NOT i.indisvalid ORDER BY 1")]
