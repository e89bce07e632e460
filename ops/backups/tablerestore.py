"""Restore one table from a logical backup into the live database: the responder's commonest ask,
which RDS cannot do (it restores whole instances).

How: the backup's schema and that one table's rows are restored into a scratch database on the same
server (``pg_restore --schema-only``, then ``--data-only --table``); from there ``pg_dump --table``
carries the table with its indexes, constraints and triggers into the live database in one
transaction (``pg_restore --single-transaction``), and the foreign keys *from other tables* that
pointed at it — the ones a ``DROP TABLE … CASCADE`` removed — are added back (``NOT VALID`` first,
then validated; a child row whose parent is gone leaves the key NOT VALID and is reported). With
``as_name`` the copy is restored beside the live table under that name (indexes and constraints
renamed with it) so rows can be compared and copied back; no foreign key is added then. The scratch
database is dropped whatever happens.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Mapping

from psycopg import sql

from ..dsn import connect, redact, tool_application_name
from ..errors import RestoreRefused
from ..pgtools import client_env_scope, pg_bindir
from .engine import verify_backup
from .manifest import Manifest
from .repository import Repository


@dataclass
class TableRestore:
    """What was restored: ``table`` (schema.name) into ``database`` as ``restored_as``; ``rows`` in
    the restored table and ``expected_rows`` from the manifest; foreign keys re-added, and those
    left NOT VALID because child rows have no parent."""

    table: str
    database: str
    restored_as: str
    rows: int
    expected_rows: int | None
    indexes: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    not_valid: list[str] = field(default_factory=list)
    seconds: float = 0.0


def split_table(name: str) -> tuple[str, str]:
    """``schema.table`` (``public`` when unqualified). Raises :class:`RestoreRefused` for anything else."""
    parts = name.split(".")
    if len(parts) == 1 and parts[0]:
        return "public", parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise RestoreRefused(f"'{name}' is not a table name (schema.table).", "pass --table SCHEMA.TABLE.")


def _run(cmd: list[str], params: Mapping, dbname: str, what: str, stdin=None) -> None:
    with client_env_scope(params, dbname) as (args, env):
        proc = subprocess.run([*cmd, *args], env=env, capture_output=True, stdin=stdin)
    if proc.returncode != 0:
        raise RestoreRefused(f"{what} failed: {redact(proc.stderr.decode(errors='replace').strip()[-800:])}",
                             "fix the cause (roles, extensions the table needs), then rerun the table restore.")


def _quote(ident: str) -> str:
    """A pg_dump ``--table`` pattern matching exactly ``ident`` (double-quoted, quotes doubled)."""
    return '"' + ident.replace('"', '""') + '"'


def _fetch(repo: Repository, m: Manifest, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in repo.open_read(m.object_key):
            f.write(chunk)


def restore_table(repo: Repository, m: Manifest, params: Mapping, database: str, table: str, *,
                  as_name: str | None = None) -> TableRestore:
    """Restore ``table`` (``schema.table``) of logical backup ``m`` into ``database`` on the server
    ``params`` reach (libpq parameters without dbname), in place when the table is gone, or beside
    it as ``as_name``. Raises :class:`RestoreRefused` (exit 7): a physical backup, a backup without
    that table, a live table of that name without ``as_name``, a name already taken, an object that
    fails verification, a failed pg_restore (the live database is then unchanged).
    """
    t0 = time.monotonic()
    schema, name = split_table(table)
    qualified = f"{schema}.{name}"
    if m.kind != "logical":
        raise RestoreRefused(f"Backup {m.id} is a physical backup; one table restores from a logical backup.",
                             f"pick one with `invoke backup.list --db {m.database}`.")
    if m.row_counts and qualified not in m.row_counts:
        raise RestoreRefused(f"Backup {m.id} of '{m.database}' holds no table {qualified}.",
                             f"list its tables with `invoke backup.show {m.id}`.")
    new_name = as_name or name
    with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("restore")) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, new_name).as_string(conn),)).fetchone()[0]
    if exists:
        raise RestoreRefused(
            f"Table {schema}.{new_name} already exists in '{database}'; nothing was restored.",
            "restore beside it with --as NEW_NAME to compare and copy rows back." if not as_name
            else "choose another --as name.")
    failed = [r for r in verify_backup(repo, m) if not r[1]]
    if failed:
        raise RestoreRefused(f"Backup {m.id} does not match its manifest ({'; '.join(c for c, _, _ in failed)}); "
                             "nothing was restored.", f"pick another with `invoke backup.list --db {m.database}`.")
    scratch = f"pgops_table_{os.urandom(4).hex()}"
    bindir = pg_bindir()
    with tempfile.TemporaryDirectory(prefix="pgops-table-") as work:
        dump, piece = os.path.join(work, "backup.pgdump"), os.path.join(work, "table.pgdump")
        _fetch(repo, m, dump)
        with connect(params, dbname="postgres", autocommit=True, application_name=tool_application_name("restore")) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            base = [str(bindir / "pg_restore"), "--no-password", "--no-owner", "--exit-on-error"]
            _run([*base, "--schema-only", dump], params, scratch, "restoring the backup's schema into a scratch database")
            _run([*base, "--data-only", "--schema", schema, "--table", name, dump], params, scratch,
                 f"restoring the rows of {qualified} into the scratch database")
            incoming = _prepare(params, scratch, schema, name, as_name)
            _run([str(bindir / "pg_dump"), "--no-password", "-Fc", "--no-owner", "--table",
                  f"{_quote(schema)}.{_quote(new_name)}",
                  "-f", piece], params, scratch, f"extracting {schema}.{new_name} from the scratch database")
            _run([*base, "--single-transaction", piece], params, database,
                 f"restoring {schema}.{new_name} into '{database}'")
        finally:
            with connect(params, dbname="postgres", autocommit=True,
                         application_name=tool_application_name("restore")) as c:
                c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    result = TableRestore(qualified, database, f"{schema}.{new_name}", 0, m.row_counts.get(qualified))
    with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("restore")) as conn:
        ident = sql.Identifier(schema, new_name)
        result.rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
        result.indexes = [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
            (ident.as_string(conn),))]
        if not as_name:
            for child, cname, definition in incoming:
                exists = conn.execute("SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
                                      (cname, child)).fetchone()
                if exists or conn.execute("SELECT to_regclass(%s)", (child,)).fetchone()[0] is None:
                    continue
                conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                    sql.SQL(child), sql.Identifier(cname), sql.SQL(definition.replace(" NOT VALID", ""))))
                result.foreign_keys.append(f"{child}.{cname}")
                try:
                    conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                        sql.SQL(child), sql.Identifier(cname)))
                except Exception:  # noqa: BLE001 - rows whose parent is gone: keep it NOT VALID, report it
                    result.not_valid.append(f"{child}.{cname}")
    result.seconds = time.monotonic() - t0
    return result


def _prepare(params: Mapping, scratch: str, schema: str, name: str, as_name: str | None) -> list[tuple[str, str, str]]:
    """In the scratch database: read the foreign keys other tables hold on the table (child table
    text, constraint name, definition), then drop them there (they must not travel with the table),
    and with ``as_name`` rename the table and its indexes and constraints (suffix ``_<as_name>``) so
    nothing collides with the live objects."""
    with connect(params, dbname=scratch, autocommit=True, application_name=tool_application_name("restore")) as conn:
        rel = sql.Identifier(schema, name).as_string(conn)
        incoming = [(r[0], r[1], r[2]) for r in conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid <> confrelid", (rel,))]
        for child, cname, _ in incoming:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(child), sql.Identifier(cname)))
        if as_name:
            for (cname,) in conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", (rel,)).fetchall():
                conn.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    sql.Identifier(schema, name), sql.Identifier(cname), sql.Identifier(f"{cname}_{as_name}"[:63])))
            for (idx,) in conn.execute(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",  # renamed with it
                    (rel,)).fetchall():
                conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(schema, idx), sql.Identifier(f"{idx}_{as_name}"[:63])))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema, name),
                                                                      sql.Identifier(as_name)))
    return incoming
