"""Restore one table from a logical backup into the live database: the responder's commonest ask,
which RDS cannot do (it restores whole instances).

How, in two phases so every refusal comes before anything in the live database changes:

*stage* (:func:`stage_table`) — the backup's whole schema goes into a scratch database on the same
server (``pg_restore --schema-only``: empty tables, so every constraint is created without
complaint). There the table's relations are found (itself and, for a partitioned table, every
partition, ``pg_partition_tree``) with the sequences they own, and every foreign key that touches
them is read (``pg_get_constraintdef`` under an empty ``search_path``, so every name is qualified)
and dropped — the table's own keys (outgoing, self-referencing) as well as the keys other tables
hold on it (incoming): the scratch database holds none of the parents' rows, so an outgoing key
would refuse every row (issue 19 §5). User triggers are disabled for the load (a ``BEFORE`` trigger
would rewrite the rows, an audit trigger would write elsewhere) and ``FORCE ROW LEVEL SECURITY``
lifted; then the rows of exactly those relations and the values of their sequences are loaded
(``pg_restore --data-only --use-list``), and triggers and RLS are put back as the backup had them.
When the backup's migration ledger is not the live one (a backup taken before a rollback, or before
a later migration), the table's definition in the backup is compared with the live one — the live
table (``--as``), or the table as the live ledger version defines it (the chain under
``--sql-root`` applied to a reference database) — and a difference refuses the restore unless the
caller accepts the backup's definition.

*apply* (:func:`apply_staged`) — ``pg_dump --table`` of those relations carries them with their
indexes, CHECK constraints, triggers, policies, grants and sequences into the live database in one
transaction (``pg_restore --single-transaction``); then every foreign key is added back, ``NOT
VALID`` first and then validated: a key whose rows have no counterpart any more (a parent deleted
after the backup, a child written after it) stays NOT VALID and is reported with its orphan count
and the query that lists them. With ``as_name`` the copy is restored beside the live table under
that name (its partitions, indexes and sequences renamed with a ``_<as_name>`` suffix) and gets no
foreign key at all (it must not block deletes of parents, nor fail on them). The scratch databases
are dropped whatever happens.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from psycopg import sql

from ..dsn import connect, redact, tool_application_name
from ..errors import OpsError, RestoreRefused
from ..pgtools import client_env_scope, pg_bindir
from .engine import verify_backup
from .manifest import Manifest
from .repository import Repository


@dataclass
class ForeignKey:
    """A foreign key to put back: ``table`` (qualified, quoted as regclass prints it) holds
    ``name`` = ``definition`` (``FOREIGN KEY (…) REFERENCES schema.parent(…) …``) on ``references``;
    ``validated`` is whether the backup had it validated."""

    table: str
    name: str
    definition: str
    references: str
    validated: bool = True
    columns: tuple[str, ...] = ()
    ref_columns: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.table}.{self.name}"


@dataclass
class NotValid:
    """A foreign key left NOT VALID: ``orphans`` rows of ``table`` have no row in ``references``;
    ``query`` lists them. ``add`` is set when the key could not be added at all (PostgreSQL keeps no
    NOT VALID key on a partitioned table): the statement that adds it once the rows are fixed."""

    key: str
    table: str
    references: str
    orphans: int
    query: str
    add: str = ""


@dataclass
class TableRestore:
    """What was restored: ``table`` (schema.name) into ``database`` as ``restored_as`` (with
    ``partitions``); ``rows`` in the restored table and ``expected_rows`` from the manifest; foreign
    keys re-added (validated) and those left NOT VALID."""

    table: str
    database: str
    restored_as: str
    rows: int
    expected_rows: int | None
    indexes: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    not_valid: list[NotValid] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class StagedTable:
    """A table ready in the scratch database, nothing changed in the live one yet.

    ``relations``: (schema, name) of the table and its partitions in the scratch database (already
    renamed for ``as_name``), the table first; ``own_keys``: its outgoing and self-referencing
    foreign keys; ``incoming``: those other tables held on it; ``ledger_backup`` / ``ledger_live``:
    the migration ledger versions (None: no ledger); ``definition_diff``: None when the ledgers
    agree (nothing compared), else the differences found (empty: same definition);
    ``definition_accepted``: the caller accepted a differing definition."""

    backup: Manifest
    params: Mapping
    database: str
    scratch: str
    table: str
    restored_as: str
    as_name: str | None
    relations: list[tuple[str, str]]
    own_keys: list[ForeignKey]
    incoming: list[ForeignKey]
    expected_rows: int | None
    ledger_backup: int | None
    ledger_live: int | None
    definition_diff: list[str] | None = None
    definition_accepted: bool = False
    attach_to: tuple[str, str] | None = None
    views: list[tuple[str, str]] = field(default_factory=list)
    policies: list[tuple[str, str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def ledgers_differ(self) -> bool:
        return self.ledger_backup != self.ledger_live

    @property
    def foreign_keys(self) -> list[ForeignKey]:
        """The keys :func:`apply_staged` adds back (none for a copy beside the live table)."""
        return [] if self.as_name else [*self.own_keys, *self.incoming]


def split_table(name: str) -> tuple[str, str]:
    """``schema.table`` (``public`` when unqualified). Raises :class:`RestoreRefused` for anything else."""
    parts = name.split(".")
    if len(parts) == 1 and parts[0]:
        return "public", parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise RestoreRefused(f"'{name}' is not a table name (schema.table).", "pass --table SCHEMA.TABLE.")


def _run(cmd: list[str], params: Mapping, dbname: str, what: str) -> bytes:
    with client_env_scope(params, dbname) as (args, env):
        proc = subprocess.run([*cmd, *args], env=env, capture_output=True)
    if proc.returncode != 0:
        raise RestoreRefused(f"{what} failed: {redact(proc.stderr.decode(errors='replace').strip()[-800:])}",
                             "fix the cause (roles, extensions the table needs), then rerun the table restore.")
    return proc.stdout


def _quote(ident: str) -> str:
    """A pg_dump ``--table`` pattern matching exactly ``ident`` (double-quoted, quotes doubled)."""
    return '"' + ident.replace('"', '""') + '"'


def _fetch(repo: Repository, m: Manifest, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in repo.open_read(m.object_key):
            f.write(chunk)


def _conn(params: Mapping, dbname: str):
    conn = connect(params, dbname=dbname, autocommit=True, application_name=tool_application_name("restore"))
    conn.execute("SET search_path = pg_catalog")  # every name the catalogue prints comes qualified
    return conn


def ledger_version(conn) -> int | None:
    """The newest version in ``pgops.migrations`` of the database ``conn`` is on (None: no ledger)."""
    if not conn.execute("SELECT to_regclass('pgops.migrations') IS NOT NULL").fetchone()[0]:
        return None
    return conn.execute("SELECT max(version) FROM pgops.migrations").fetchone()[0]


_TOC_LINE = re.compile(r"^\d+; \d+ \d+ (.*)$")


def data_entries(toc: str, relations: list[tuple[str, str]], sequences: list[tuple[str, str]]) -> list[str]:
    """The lines of a ``pg_restore --list`` output (``toc``) that load the rows of ``relations``
    (``TABLE DATA``) and set ``sequences`` (``SEQUENCE SET``), both (schema, name): a use-list
    for ``pg_restore --use-list`` that restores exactly those (``--table`` matches a bare name in
    every schema and no sequence value)."""
    wanted = [f"TABLE DATA {s} {n} " for s, n in relations] + [f"SEQUENCE SET {s} {n} " for s, n in sequences]
    out = []
    for line in toc.splitlines():
        m = _TOC_LINE.match(line)
        if m and any((m.group(1) + " ").startswith(w) for w in wanted):
            out.append(line)
    return out


DESCRIBE_SQL = """
SELECT 'column ' || quote_ident(a.attname),
       format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
       || coalesce(CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' ELSE ' DEFAULT ' END
                   || pg_get_expr(d.adbin, d.adrelid) || CASE WHEN a.attgenerated = 's' THEN ') STORED' ELSE '' END, '')
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = %(rel)s AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %(rel)s
UNION ALL
SELECT 'index ' || quote_ident(c.relname), pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %(rel)s
UNION ALL
SELECT 'trigger ' || quote_ident(tgname), pg_get_triggerdef(oid) || ' ' || tgenabled::text
  FROM pg_trigger WHERE tgrelid = %(rel)s AND NOT tgisinternal
UNION ALL
SELECT 'policy ' || quote_ident(polname), polcmd::text || ' ' || polpermissive::text || ' ' || polroles::text || ' '
       || coalesce(pg_get_expr(polqual, polrelid), '') || ' / ' || coalesce(pg_get_expr(polwithcheck, polrelid), '')
  FROM pg_policy WHERE polrelid = %(rel)s
UNION ALL
SELECT 'row level security', CASE WHEN relrowsecurity THEN 'enabled' ELSE 'disabled' END
       || CASE WHEN relforcerowsecurity THEN ', forced' ELSE '' END FROM pg_class WHERE oid = %(rel)s
UNION ALL
SELECT 'partition key', pg_get_partkeydef(%(rel)s) WHERE pg_get_partkeydef(%(rel)s) IS NOT NULL
"""
"""(aspect, definition) of one table (``%(rel)s``: its oid): columns, constraints, indexes, triggers
(with their enabled state), policies, RLS flags and partition key; column order is not compared."""


def describe_table(conn, schema: str, name: str) -> dict[str, str] | None:
    """The table's definition as {aspect: definition} (:data:`DESCRIBE_SQL`), None when it does not
    exist on ``conn``'s database."""
    oid = conn.execute("SELECT to_regclass(%s)::oid", (sql.Identifier(schema, name).as_string(conn),)).fetchone()[0]
    if oid is None:
        return None
    return dict(conn.execute(DESCRIBE_SQL, {"rel": oid}).fetchall())


def definition_diff(backup: dict[str, str], live: dict[str, str]) -> list[str]:
    """What differs between two :func:`describe_table` results, one phrase each: an aspect only in
    the backup, only in the live schema, or defined differently."""
    out = []
    for k in sorted(backup.keys() | live.keys()):
        if k not in live:
            out.append(f"{k} only in the backup ({backup[k]})")
        elif k not in backup:
            out.append(f"{k} only in the live schema ({live[k]})")
        elif backup[k] != live[k]:
            out.append(f"{k} differs: backup {backup[k]}, live {live[k]}")
    return out


def _reference_definition(params: Mapping, migrations_dir: Path | None, version: int | None, schema: str,
                          name: str) -> tuple[dict[str, str] | None, str]:
    """The table as the chain under ``migrations_dir`` defines it at ``version``: the chain applied
    to a reference database (dropped afterwards). Returns (definition or None when the table does
    not exist at that version, '') or (None, why it cannot be told)."""
    from ..migrations import runner
    if version is None:
        return None, "the live database has no migration ledger"
    if migrations_dir is None or not migrations_dir.is_dir():
        return None, f"no migration chain to rebuild version {version} from ({migrations_dir or 'none given'})"
    ref = f"pgops_tableref_{os.urandom(4).hex()}"
    with _conn(params, "postgres") as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(ref)))
    try:
        try:
            runner.migrate(runner.Target(ref, params, migrations_dir), to=version)
        except OpsError as exc:
            return None, f"applying the chain up to version {version} failed ({exc.message})"
        with _conn(params, ref) as conn:
            reached = ledger_version(conn)
            if reached != version:
                return None, f"the chain under {migrations_dir} reaches version {reached}, not {version}"
            return describe_table(conn, schema, name), ""
    finally:
        with _conn(params, "postgres") as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(ref)))


@contextlib.contextmanager
def stage_table(repo: Repository, m: Manifest, params: Mapping, database: str, table: str, *,
                as_name: str | None = None, migrations_dir: Path | None = None,
                accept_definition: bool = False) -> Iterator[StagedTable]:
    """Stage ``table`` (``schema.table``) of logical backup ``m`` for a restore into ``database`` on
    the server ``params`` reach (libpq parameters without dbname): the scratch database described in
    the module docstring, dropped when the block ends. ``migrations_dir`` is the database's chain
    (``sql/<folder>/migrations``), used only when the ledgers differ and the table is gone.

    Raises :class:`RestoreRefused` (exit 7), the live database unchanged: a physical backup; a
    backup without that table; a live table of that name without ``as_name``; a name already taken;
    an object that fails verification; a failed pg_restore into the scratch database; a table whose
    definition in the backup differs from the live one (or cannot be compared) while the ledgers
    differ, unless ``accept_definition``.
    """
    schema, name = split_table(table)
    qualified = f"{schema}.{name}"
    if m.kind != "logical":
        raise RestoreRefused(f"Backup {m.id} is a physical backup; one table restores from a logical backup.",
                             f"pick one with `invoke backup.list --db {m.database}`.")
    new_name = as_name or name
    with _conn(params, database) as conn:
        taken = conn.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, new_name).as_string(conn),)).fetchone()[0]
        live_ledger = ledger_version(conn)
        live_def = describe_table(conn, schema, name) if as_name else None
    if taken:
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
    base = [str(bindir / "pg_restore"), "--no-password", "--no-owner", "--exit-on-error"]
    with tempfile.TemporaryDirectory(prefix="pgops-table-") as work:
        dump, uselist = os.path.join(work, "backup.pgdump"), os.path.join(work, "data.list")
        _fetch(repo, m, dump)
        with _conn(params, "postgres") as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            _run([*base, "--schema-only", dump], params, scratch, "restoring the backup's schema into a scratch database")
            with _conn(params, scratch) as conn:
                found = conn.execute("SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
                                     (sql.Identifier(schema, name).as_string(conn),)).fetchone()
                if found is None or found[1] not in ("r", "p"):
                    raise RestoreRefused(f"Backup {m.id} of '{m.database}' holds no table {qualified}.",
                                         f"list its tables with `invoke backup.show {m.id}`.")
                relations = _relations(conn, found[0])
                backup_def = describe_table(conn, schema, name)
            st = StagedTable(m, params, database, scratch, qualified, f"{schema}.{new_name}", as_name,
                             [(s, n) for _, s, n, _ in relations], [], [], None, m.ledger_version, live_ledger)
            leaves = [f"{s}.{n}" for _, s, n, kind in relations if kind == "r"]
            if all(t in m.row_counts for t in leaves):
                st.expected_rows = sum(m.row_counts[t] for t in leaves)
            if st.ledgers_differ:
                if live_def is None and not as_name:
                    live_def, why = _reference_definition(params, migrations_dir, live_ledger, schema, name)
                else:
                    why = "" if live_def is not None else f"{qualified} does not exist in '{database}'"
                st.definition_diff = (definition_diff(backup_def, live_def) if live_def is not None else
                                      [f"cannot compare: {why or f'{qualified} does not exist at ledger version {live_ledger}'}"])
                if st.definition_diff and not accept_definition:
                    raise RestoreRefused(
                        f"Backup {m.id} was taken at migration ledger version {m.ledger_version}; '{database}' is at "
                        f"{live_ledger} now, and the backup's definition of {qualified} is not the live one: "
                        f"{'; '.join(st.definition_diff)}. Nothing was restored.",
                        f"pick a backup taken at version {live_ledger} (`invoke backup.list --db {m.database}` shows "
                        "each one's ledger), or add --accept-backup-definition to restore the table as the backup "
                        "defines it.")
                st.definition_accepted = bool(st.definition_diff)
            with _conn(params, scratch) as conn:
                st.own_keys, st.incoming = _take_foreign_keys(conn, [oid for oid, *_ in relations])
                st.attach_to = _detach(conn, relations[0][0])
                st.views, st.policies = _dependents(conn, [oid for oid, *_ in relations])
                sequences = _owned_sequences(conn, [oid for oid, *_ in relations])
                with _quiesced(conn, [oid for oid, *_ in relations]):
                    toc = subprocess.run([str(bindir / "pg_restore"), "--list", dump], capture_output=True,
                                         check=True).stdout.decode(errors="replace")
                    entries = data_entries(toc, st.relations, sequences)
                    if entries:
                        with open(uselist, "w") as f:
                            f.write("\n".join(entries) + "\n")
                        _run([*base, "--data-only", "--use-list", uselist, dump], params, scratch,
                             f"restoring the rows of {qualified} into the scratch database")
                if as_name:
                    st.relations = _rename(conn, relations, sequences, as_name)
            yield st
        finally:
            with _conn(params, "postgres") as c:
                c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def _dependents(conn, oids: list[int]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What ``DROP TABLE … CASCADE`` removed beyond the table and the foreign keys: the views (and
    views on them) that read it, as (schema, name), and the policies of other tables whose
    expressions read it, as (table, policy, CREATE POLICY statement)."""
    views: list[tuple[int, str, str]] = []
    frontier = list(oids)
    while frontier:
        found = conn.execute(
            "SELECT DISTINCT r.ev_class, n.nspname, c.relname FROM pg_depend d JOIN pg_rewrite r ON d.objid = r.oid "
            "JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND d.refobjid = ANY(%s) AND r.ev_class <> ALL(%s)", (frontier, oids + [v[0] for v in views])).fetchall()
        views += [tuple(f) for f in found]
        frontier = [f[0] for f in found]
    policies = [(t, name, stmt) for t, name, stmt in conn.execute(
        "SELECT DISTINCT p.polrelid::regclass::text, p.polname, format('CREATE POLICY %%I ON %%s AS %%s FOR %%s TO %%s%%s%%s', "
        "  p.polname, p.polrelid::regclass, CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
        "  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' "
        "  ELSE 'ALL' END, CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (SELECT string_agg(quote_ident(rolname), ', ') "
        "  FROM pg_roles WHERE oid = ANY(p.polroles)) END, ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', "
        "  ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')') "
        "FROM pg_depend d JOIN pg_policy p ON d.objid = p.oid WHERE d.classid = 'pg_policy'::regclass "
        "AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%s) AND p.polrelid <> ALL(%s) ORDER BY 1, 2",
        (oids, oids))]
    return [(s_, n) for _, s_, n in views], policies


def _detach(conn, oid: int) -> tuple[str, str] | None:
    """A partition restored without its parent: detached in the scratch database, so that it travels
    as a plain table with its own indexes (a partial dump of a partition re-creates its primary key
    after the ATTACH already made one), and attached again in the live database. Returns (parent,
    partition bound) or None for a table that is no partition."""
    found = conn.execute("SELECT i.inhparent::regclass::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
                         "JOIN pg_inherits i ON i.inhrelid = c.oid WHERE c.oid = %s AND c.relispartition",
                         (oid,)).fetchone()
    if found:
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.SQL(found[0]), sql.SQL(
            conn.execute("SELECT %s::regclass::text", (oid,)).fetchone()[0])))
    return tuple(found) if found else None


def _relations(conn, oid: int) -> list[tuple[int, str, str, str]]:
    """(oid, schema, name, relkind) of the table and every partition below it, the table first and
    parents before their partitions."""
    return [tuple(r) for r in conn.execute(  # pg_partition_tree has no row for a table outside any tree
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM (SELECT relid, level FROM pg_partition_tree(%(o)s) "
        "UNION SELECT %(o)s::regclass, 0) t JOIN pg_class c ON c.oid = t.relid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY t.level, c.relname", {"o": oid})]


def _owned_sequences(conn, oids: list[int]) -> list[tuple[str, str]]:
    """(schema, name) of the sequences the relations own (serial and identity columns): their
    values travel with the rows."""
    return [tuple(r) for r in conn.execute(
        "SELECT n.nspname, s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_namespace n ON n.oid = s.relnamespace WHERE d.classid = 'pg_class'::regclass "
        "AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%s) AND d.deptype IN ('a', 'i') "
        "ORDER BY 1, 2", (oids,))]


def _take_foreign_keys(conn, oids: list[int]) -> tuple[list[ForeignKey], list[ForeignKey]]:
    """Read and drop (in the scratch database) every foreign key that touches the relations: its
    root constraint (a partition's key is a clone of its parent's). Returns (the table's own keys —
    outgoing and self-referencing —, the others: keys other tables hold on it, and keys of a parent
    outside the relations that reach it — one partition restored alone — which the live database
    still has unless the ``DROP … CASCADE`` took them: :func:`apply_staged` adds only missing keys)."""
    rows = conn.execute(
        "WITH RECURSIVE touching AS (SELECT oid, conparentid FROM pg_constraint WHERE contype = 'f' "
        "AND (conrelid = ANY(%(o)s) OR confrelid = ANY(%(o)s)) UNION "
        "SELECT p.oid, p.conparentid FROM pg_constraint p JOIN touching t ON p.oid = t.conparentid) "
        "SELECT k.conrelid::regclass::text, k.conname, pg_get_constraintdef(k.oid), k.confrelid::regclass::text, "
        "k.convalidated, k.conrelid = ANY(%(o)s), k.confrelid = ANY(%(o)s), "
        "ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
        "      ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), "
        "ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
        "      ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) "
        "FROM pg_constraint k JOIN touching t ON t.oid = k.oid WHERE t.conparentid = 0 ORDER BY 1, 2",
        {"o": oids}).fetchall()
    own, incoming = [], []
    for child, cname, definition, parent, validated, is_child, is_parent, cols, ref_cols in rows:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(child), sql.Identifier(cname)))
        fk = ForeignKey(child, cname, definition.replace(" NOT VALID", ""), parent, validated, tuple(cols),
                        tuple(ref_cols))
        if is_child:
            own.append(fk)
        else:  # held on the table, or on its parent and reaching it (a CASCADE may drop both kinds)
            incoming.append(fk)
    return own, incoming


_TRIGGER_STATE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


@contextlib.contextmanager
def _quiesced(conn, oids: list[int]):
    """User triggers disabled and ``FORCE ROW LEVEL SECURITY`` lifted on the relations while the
    rows load (a trigger must not rewrite or multiply restored rows), then put back exactly as the
    backup had them (parents first: a partitioned table's statement reaches its partitions)."""
    triggers = conn.execute(
        "SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN unnest(%s::oid[]) WITH ORDINALITY AS r(oid, pos) ON r.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal ORDER BY r.pos, t.tgname", (oids,)).fetchall()
    forced = [r[0] for r in conn.execute("SELECT oid::regclass::text FROM pg_class WHERE oid = ANY(%s) "
                                         "AND relforcerowsecurity", (oids,))]
    for rel, tg, _ in triggers:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(sql.SQL(rel), sql.Identifier(tg)))
    for rel in forced:
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(sql.SQL(rel)))
    yield
    for rel, tg, state in triggers:
        conn.execute(sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(sql.SQL(rel), sql.SQL(_TRIGGER_STATE[state]),
                                                                   sql.Identifier(tg)))
    for rel in forced:
        conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(sql.SQL(rel)))


def _suffixed(ident: str, as_name: str) -> str:
    return f"{ident}_{as_name}"[:63]


def _rename(conn, relations, sequences, as_name: str) -> list[tuple[str, str]]:
    """For a copy beside the live table: every index (with the constraint it backs) and owned
    sequence gets the suffix ``_<as_name>``, every partition too, the table itself becomes
    ``as_name`` — nothing collides with the live objects. Returns the new (schema, name) list."""
    for oid, schema, _, _ in relations:
        for (idx,) in conn.execute("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                   "WHERE i.indrelid = %s ORDER BY 1", (oid,)).fetchall():
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(schema, idx),
                                                                     sql.Identifier(_suffixed(idx, as_name))))
    for schema, seq in sequences:
        conn.execute(sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(sql.Identifier(schema, seq),
                                                                    sql.Identifier(_suffixed(seq, as_name))))
    out = []
    for i, (_, schema, name, _) in enumerate(relations):
        new = as_name if i == 0 else _suffixed(name, as_name)
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema, name), sql.Identifier(new)))
        out.append((schema, new))
    return out


def apply_staged(st: StagedTable) -> TableRestore:
    """Carry a staged table into the live database in one transaction, then add its foreign keys
    back (NOT VALID, then VALIDATE; a key whose rows lack their counterpart stays NOT VALID and is
    reported with its orphan count and query). Raises :class:`RestoreRefused` when pg_restore
    fails (the live database is then unchanged)."""
    bindir = pg_bindir()
    with tempfile.TemporaryDirectory(prefix="pgops-table-") as work:
        piece = os.path.join(work, "table.pgdump")
        views = []
        if not st.as_name:  # the views CASCADE dropped, unless they are there (a rerun)
            with _conn(st.params, st.database) as conn:
                views = [(s, n) for s, n in st.views if conn.execute(
                    "SELECT to_regclass(%s) IS NULL", (sql.Identifier(s, n).as_string(conn),)).fetchone()[0]]
        tables = [a for s, n in [*st.relations, *views] for a in ("--table", f"{_quote(s)}.{_quote(n)}")]
        _run([str(bindir / "pg_dump"), "--no-password", "-Fc", "--no-owner", *tables, "-f", piece],
             st.params, st.scratch, f"extracting {st.restored_as} from the scratch database")
        _run([str(bindir / "pg_restore"), "--no-password", "--no-owner", "--exit-on-error", "--single-transaction",
              piece], st.params, st.database, f"restoring {st.restored_as} into '{st.database}'")
    result = TableRestore(st.table, st.database, st.restored_as, 0, st.expected_rows,
                          partitions=[f"{s}.{n}" for s, n in st.relations[1:]])
    with _conn(st.params, st.database) as conn:
        rel = sql.Identifier(*st.relations[0])
        if st.attach_to and not st.as_name:
            parent, bound = st.attach_to
            try:
                conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(sql.SQL(parent), rel, sql.SQL(bound)))
            except Exception as exc:  # noqa: BLE001 - the parent is gone or refuses it: undo, refuse
                conn.execute(sql.SQL("DROP TABLE {}").format(rel))
                raise RestoreRefused(f"Partition {st.table} was restored but cannot be attached to {parent} "
                                     f"({bound}): {redact(str(exc)).strip()}; it was removed again, '{st.database}' "
                                     "is unchanged.", f"restore {parent} itself, or restore the partition beside it "
                                     "with --as NEW_NAME and attach it by hand.") from None
        result.rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(rel)).fetchone()[0]
        result.indexes = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass ORDER BY 1", (rel.as_string(conn),))]
        for fk in st.foreign_keys:
            if None in conn.execute("SELECT to_regclass(%s), to_regclass(%s)", (fk.table, fk.references)).fetchone():
                continue  # the other side is gone too: it brings the key back when it is restored
            if conn.execute("SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
                            (fk.name, fk.table)).fetchone():
                continue  # already there (a rerun, or the other side restored it)
            add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.SQL(fk.table), sql.Identifier(fk.name), sql.SQL(fk.definition))
            if conn.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", (fk.table,)).fetchone()[0]:
                try:  # no NOT VALID key on a partitioned table (PostgreSQL 15): added validated, or not at all
                    conn.execute(add)
                    result.foreign_keys.append(fk.label)
                except Exception as exc:  # noqa: BLE001
                    if getattr(exc, "sqlstate", None) != "23503":
                        raise
                    result.not_valid.append(_orphans(conn, fk, add.as_string(conn)))
                continue
            conn.execute(sql.SQL("{} NOT VALID").format(add))
            if not fk.validated:
                result.not_valid.append(_orphans(conn, fk))  # NOT VALID in the backup already
                continue
            try:
                conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                    sql.SQL(fk.table), sql.Identifier(fk.name)))
                result.foreign_keys.append(fk.label)
            except Exception as exc:  # noqa: BLE001 - a foreign-key violation: the key stays NOT VALID
                if getattr(exc, "sqlstate", None) != "23503":
                    raise
                result.not_valid.append(_orphans(conn, fk))
        for table, name, statement in ([] if st.as_name else st.policies):
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_policy WHERE "
                            "polrelid = to_regclass(%s) AND polname = %s)", (table, table, name)).fetchone()[0]:
                conn.execute(statement)
                result.policies.append(f"{table}.{name}")
        result.views = [f"{s}.{n}" for s, n in views]
    result.seconds = time.monotonic() - st.started
    return result


def _orphans(conn, fk: ForeignKey, add: str = "") -> NotValid:
    """The rows of ``fk.table`` that ``fk`` (MATCH SIMPLE: a NULL in the key exempts the row) finds no
    row of ``fk.references`` for: their count and the query that lists them; ``add`` the statement
    that adds the key when it could not be added."""
    mine, theirs = fk.columns, fk.ref_columns
    query = sql.SQL("SELECT c.* FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
        sql.SQL(fk.table), sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(x)) for x in mine),
        sql.SQL(fk.references), sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(t), sql.Identifier(c)) for c, t in zip(mine, theirs)))
    text = query.as_string(conn)
    count = conn.execute(sql.SQL("SELECT count(*) FROM ({}) o").format(query)).fetchone()[0]
    return NotValid(fk.label, fk.table, fk.references, count, text, add)


def restore_table(repo: Repository, m: Manifest, params: Mapping, database: str, table: str, *,
                  as_name: str | None = None, migrations_dir: Path | None = None,
                  accept_definition: bool = False) -> TableRestore:
    """:func:`stage_table`, then :func:`apply_staged`: restore ``table`` of ``m`` into ``database``
    in place (the table is gone) or beside it as ``as_name``. Raises what they raise."""
    with stage_table(repo, m, params, database, table, as_name=as_name, migrations_dir=migrations_dir,
                     accept_definition=accept_definition) as st:
        return apply_staged(st)
