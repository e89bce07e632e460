"""GDPR export and erasure, the I/O edge of :mod:`ops.gdpr.graph`.

The export reads every route's rows in one REPEATABLE READ, READ ONLY transaction (one consistent
snapshot) and writes one JSON file per table plus ``manifest.json`` (counts, sha256 of each file, the
routes followed) — Art. 15 access and Art. 20 portability. The erasure runs in one transaction:
nullify the columns that merely mention the subject, delete the subject's rows deepest first, then
pseudonymize the audit rows (including those the deletions just wrote), write the erasure record,
and re-export inside the same transaction: anything left rolls everything back (Art. 17). Before its
first change the erasure locks every table the subject's rows live in ``IN SHARE ROW EXCLUSIVE MODE``
(PostgreSQL docs, "Explicit Locking": it conflicts with the ROW EXCLUSIVE lock every INSERT, UPDATE
and DELETE takes, and not with reads), so no writer can add a row for the subject between the
deletions and the commit: the erasure waits for a writer whose transaction is already open (so its
rows are erased too), and a writer that comes later waits until the commit and then sees its result.
Each lock waits at most ``lock_timeout``; on a lock timeout or a deadlock the attempt rolls back and is retried (backoff with
jitter), and after the last attempt :class:`~ops.errors.GdprConcurrentWriter` names the table and
the sessions holding it.
Sessions run with ``row_security = off``, so a role that row-level security would filter gets an
error rather than a partial export or erasure.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from psycopg import errors as pgerrors
from psycopg import sql

from ..dsn import connect, tool_application_name
from ..errors import ConfigError, GdprConcurrentWriter, GdprError
from ..migrations.locking import backoff
from .graph import ForeignKey, Ownership, Route, erase_order, has_rule, parse_ownership, routes

log = logging.getLogger(__name__)

#: Table lock modes that conflict with SHARE ROW EXCLUSIVE (PostgreSQL docs, "Table-Level Lock Modes").
WRITER_MODES = ("RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                "ExclusiveLock", "AccessExclusiveLock")

HOLDERS_SQL = """
SELECT DISTINCT a.pid, coalesce(nullif(a.application_name, ''), '-'), coalesce(a.state, '-'),
       coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() AND l.mode = ANY(%(modes)s)
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (l.relation = %(t)s::regclass OR l.relation IN (SELECT relid FROM pg_partition_tree(%(t)s::regclass)))
ORDER BY 1"""

FKS_SQL = """
SELECT c.conname, cn.nspname || '.' || cc.relname, pn.nspname || '.' || pc.relname,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint c
JOIN pg_class cc ON cc.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0 AND NOT cc.relispartition
  AND cn.nspname NOT IN ('pg_catalog', 'information_schema', 'pgops')"""


def load_ownership(sql_root: Path, folder: str) -> Ownership:
    """``sql/<folder>/gdpr.json``; :class:`ConfigError` naming the databases that have one when missing."""
    path = sql_root / folder / "gdpr.json"
    if not path.is_file():
        have = sorted(p.parent.name for p in sql_root.glob("*/gdpr.json"))
        raise ConfigError([f"no GDPR ownership policy for '{folder}' ({path} does not exist)"],
                          f"use one of: {', '.join(have) or 'none'} (`invoke gdpr.export --db NAME --user-id UUID`).")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError([f"{path}: not JSON ({exc})"], f"fix {path}.") from None
    return parse_ownership(data, str(path))


def foreign_keys(conn) -> list[ForeignKey]:
    return [ForeignKey(n, child, tuple(cc), parent, tuple(pc)) for n, child, parent, cc, pc in conn.execute(FKS_SQL)]


def _ident(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split(".", 1))


def _cols(cols) -> sql.Composable:
    ids = [sql.Identifier(c) for c in cols]
    return ids[0] if len(ids) == 1 else sql.SQL("({})").format(sql.SQL(", ").join(ids))


def _declared_pred(cols: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(" OR ").join(
        sql.SQL("{} = {}::uuid").format(sql.Identifier(c), sql.Placeholder("uid")) for c in cols))


def route_pred(own: Ownership, r: Route) -> sql.Composable:
    """The WHERE clause selecting ``r``'s rows of ``r.table``, nested IN subqueries along the chain."""
    if r.declared:
        return _declared_pred(r.declared)
    if not r.hops:
        return sql.SQL("{} = {}::uuid").format(sql.Identifier(own.root_key), sql.Placeholder("uid"))
    first = r.hops[0].parent
    pred = (sql.SQL("{} = {}::uuid").format(sql.Identifier(own.root_key), sql.Placeholder("uid"))
            if first == own.root else _declared_pred(own.declared[first]))
    for h in r.hops:
        pred = sql.SQL("{cols} IN (SELECT {pcols} FROM {parent} WHERE {pred})").format(
            cols=_cols(h.cols), pcols=sql.SQL(", ").join(sql.Identifier(c) for c in h.parent_cols),
            parent=_ident(h.parent), pred=pred)
    return pred


def table_pred(own: Ownership, rs: list[Route]) -> sql.Composable:
    return sql.SQL(" OR ").join(sql.SQL("({})").format(route_pred(own, r)) for r in rs)


@dataclass
class Export:
    """Rows per table (``schema.table`` → list of JSON objects) and the routes followed."""

    user_id: str
    rows: dict[str, list] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.rows.values())


def graph(conn, own: Ownership) -> dict[str, list[Route]]:
    by_table = routes(own, foreign_keys(conn))
    missing = [t for t in by_table if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
    if missing:
        raise ConfigError([f"the GDPR policy names table(s) missing from the database: {', '.join(missing)}"],
                          "deploy the database first (`invoke deploy`).")
    return by_table


def collect(conn, own: Ownership, user_id: str, by_table: dict[str, list[Route]]) -> Export:
    """Every route's rows, on ``conn``'s current snapshot."""
    out = Export(user_id)
    for table, rs in by_table.items():
        q = sql.SQL("SELECT to_jsonb(t) FROM {t} t WHERE {pred} ORDER BY to_jsonb(t)::text").format(
            t=_ident(table), pred=table_pred(own, rs))
        out.rows[table] = [r[0] for r in conn.execute(q, {"uid": user_id})]
        out.routes[table] = [f"{r.action}: {r.describe()}" for r in rs]
    return out


def session(params: Mapping, database: str, what: str):
    conn = connect(params, dbname=database, application_name=tool_application_name(what))
    conn.execute("SET row_security = off")
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def check_uuid(user_id: str) -> str:
    try:
        return str(uuid.UUID(str(user_id)))
    except ValueError:
        raise ConfigError([f"--user-id {user_id!r} is not a UUID"], "pass the user's id, e.g. "
                          "`invoke gdpr.export --db futuresync --user-id 2b6f0cc9-...`.") from None


def export(params: Mapping, database: str, own: Ownership, user_id: str) -> Export:
    """Read every row belonging to ``user_id`` in one consistent, read-only snapshot."""
    with session(params, database, "gdpr-export") as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return collect(conn, own, user_id, graph(conn, own))


def write_export(exp: Export, out: Path, database: str, now: datetime) -> dict:
    """One ``<schema.table>.json`` per table (tables with no rows too: the subject learns they were
    searched) and ``manifest.json`` written last, with counts and sha256. Files are 0600, the folder 0700."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    files = {}
    for table, rows in sorted(exp.rows.items()):
        data = (json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n").encode()
        path = out / f"{table}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        files[table] = {"file": path.name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest(),
                        "routes": exp.routes[table]}
    manifest = {"kind": "gdpr-export", "database": database, "user_id": exp.user_id, "created_at": now.isoformat(),
                "rows": exp.total, "tables": files,
                "legal_basis": "GDPR Art. 15 (access) and Art. 20 (portability): JSON, one file per table"}
    fd = os.open(out / "manifest.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


@dataclass
class Erasure:
    """An open erasure: the connection holding its one transaction, the routes, the pseudonym, and
    what each step did (table → rows)."""

    conn: object
    own: Ownership
    user_id: str
    by_table: dict[str, list[Route]]
    pseudonym: str
    done: dict[str, dict] = field(default_factory=dict)
    database: str = ""
    lock_timeout_s: float = 5.0
    retries: int = 3
    command: str = "invoke gdpr.erase --yes"
    attempts: int = 0
    ran: list[tuple[str, str]] = field(default_factory=list)

    def lock_order(self) -> list[str]:
        """Every table of the graph (the subject's rows live there, or are nullified or pseudonymized there):
        the root first, the audit table last — triggers write it after the table they fire on, so an
        application transaction takes its lock last too (fewer deadlocks)."""
        return sorted(self.by_table, key=lambda t: (t == self.own.audit, t != self.own.root, t))

    def _attempt_settings(self) -> None:
        # SET LOCAL: a rollback between attempts undoes session() settings made in the same transaction
        self.conn.execute("SET LOCAL row_security = off")
        self.conn.execute("SET LOCAL TimeZone = 'UTC'")
        _set_lock_timeout(self.conn, self.lock_timeout_s)

    def holders(self, table: str, modes: tuple[str, ...] = WRITER_MODES) -> list[str]:
        """The other sessions holding ``table`` (or one of its partitions) in one of ``modes``, as text
        ("pid 123 (application 'web', idle in transaction, transaction open 40 s)")."""
        try:
            rows = self.conn.execute(HOLDERS_SQL, {"modes": list(modes), "t": table}).fetchall()
            self.conn.rollback()
        except Exception:  # noqa: BLE001 - only a description for the message; the erasure already failed
            log.debug("listing the lock holders of %s failed", table, exc_info=True)
            return []
        return [f"pid {pid} (application {app!r}, {state}, transaction open {age} s)" for pid, app, state, age in rows]

    def lock(self) -> int:
        """Lock every table of :meth:`lock_order` ``IN SHARE ROW EXCLUSIVE MODE`` for the rest of the
        transaction: writers of those tables wait until the commit, readers go on. Each lock waits at most
        ``lock_timeout_s``; after a lock timeout (55P03) or a deadlock (40P01) the transaction is rolled
        back and the attempt retried, 0.2 s × 2^n with jitter apart, at most ``retries`` times for the whole
        erasure (:meth:`step`'s retries count too). Returns the attempt number; raises
        :class:`GdprConcurrentWriter` after the last one (nothing changed)."""
        while True:
            self.attempts += 1
            table = None
            try:
                self._attempt_settings()
                for table in self.lock_order():
                    self.conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(_ident(table)))
                return self.attempts
            except (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected) as exc:
                self._give_up_or_wait(table, exc, rows=False)

    def _give_up_or_wait(self, table: str, exc: Exception, rows: bool) -> None:
        self.conn.rollback()
        log.info("erasure of %s: lock on %s not granted (%s), attempt %d of %d", self.user_id, table,
                 type(exc).__name__, self.attempts, self.retries + 1)
        if self.attempts > self.retries:
            modes = (*WRITER_MODES, "RowShareLock") if rows else WRITER_MODES
            raise GdprConcurrentWriter(self.user_id, self.database, table, self.attempts, self.lock_timeout_s,
                                       self.holders(table, modes), self.command, rows=rows) from None
        time.sleep(backoff(self.attempts - 1, 0.2))

    def step(self, kind: str, table: str) -> int:
        """Run one erasure step (``nullify``, ``delete``, ``pseudonymize``) on ``table``; returns its rows.
        With the tables locked only a session holding row locks (``SELECT … FOR UPDATE/SHARE``) can still
        make a step wait: after a lock timeout or a deadlock the transaction is rolled back, the tables
        locked again (:meth:`lock`) and the steps run so far replayed, within the erasure's ``retries``;
        then :class:`GdprConcurrentWriter` (nothing changed)."""
        replay = False
        while True:
            current = table
            try:
                if replay:
                    self.done.clear()
                    self.lock()
                    for k, t in self.ran:
                        current = t
                        getattr(self, k)(t)
                    current = table
                n = getattr(self, kind)(table)
                self.ran.append((kind, table))
                return n
            except (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected) as exc:
                self._give_up_or_wait(current, exc, rows=True)
                replay = True

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows each table holds for the subject, by action (what the plan shows)."""
        out = {}
        for table, rs in self.by_table.items():
            for action in sorted({r.action for r in rs}):
                sel = [r for r in rs if r.action == action]
                n = self.conn.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {p}").format(
                    t=_ident(table), p=table_pred(self.own, sel)), {"uid": self.user_id}).fetchone()[0]
                out.setdefault(table, {})[action] = n
        return out

    def nullify(self, table: str) -> int:
        n = 0
        for r in (r for r in self.by_table[table] if r.action == "nullify"):
            col = r.hops[-1].cols if r.hops else r.declared
            sets = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in col)
            n += self.conn.execute(sql.SQL("UPDATE {t} SET {s} WHERE {p}").format(
                t=_ident(table), s=sets, p=route_pred(self.own, r)), {"uid": self.user_id}).rowcount
        self.done.setdefault(table, {})["nullified"] = n
        return n

    def delete(self, table: str) -> int:
        sel = [r for r in self.by_table[table] if r.action == "delete"]
        n = self.conn.execute(sql.SQL("DELETE FROM {t} WHERE {p}").format(t=_ident(table), p=table_pred(self.own, sel)),
                              {"uid": self.user_id}).rowcount
        self.done.setdefault(table, {})["deleted"] = n
        return n

    def pseudonymize(self, table: str) -> int:
        """Replace the subject's id by the pseudonym in the declared columns and inside every jsonb column
        (also removing ``scrub_keys``), for every row a route selects."""
        sel = [r for r in self.by_table[table] if r.action == "pseudonymize"]
        cols = sorted({c for r in sel for c in r.declared})
        jsonb = [c for (c,) in self.conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND atttypid = 'jsonb'::regtype "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,))]
        sets = [sql.SQL("{c} = CASE WHEN {c} = {u}::uuid THEN {p}::uuid ELSE {c} END").format(
            c=sql.Identifier(c), u=sql.Placeholder("uid"), p=sql.Placeholder("pseudonym")) for c in cols]
        sets += [sql.SQL("{c} = replace({c}::text, {u}::text, {p}::text)::jsonb - {keys}::text[]").format(
            c=sql.Identifier(c), u=sql.Placeholder("uid"), p=sql.Placeholder("pseudonym"),
            keys=sql.Placeholder("keys")) for c in jsonb]
        n = self.conn.execute(sql.SQL("UPDATE {t} SET {s} WHERE {p}").format(
            t=_ident(table), s=sql.SQL(", ").join(sets), p=table_pred(self.own, sel)),
            {"uid": self.user_id, "pseudonym": self.pseudonym, "keys": list(self.own.scrub_keys)}).rowcount
        self.done.setdefault(table, {})["pseudonymized"] = n
        return n

    def record_and_prove(self, now: datetime) -> int:
        """Write the erasure record to the audit table (under the pseudonym), re-export inside the
        transaction — any row left raises :class:`GdprError` and the caller's rollback undoes it all —
        and commit. Returns the audit record's row count (1)."""
        n = 0
        if self.own.audit:
            n = self.conn.execute(sql.SQL(
                "INSERT INTO {t} (table_name, operation, row_id, new_data) VALUES (%s, 'GDPR_ERASE', %s, %s)").format(
                    t=_ident(self.own.audit)),
                (self.own.root.split(".", 1)[1], self.pseudonym,
                 json.dumps({"erased_at": now.isoformat(), "pseudonym": self.pseudonym, "by": tool_application_name("gdpr-erase"),
                             "tables": self.done}, sort_keys=True))).rowcount
        left = collect(self.conn, self.own, self.user_id, self.by_table)
        if left.total:
            raise leftover_error(self.own, self.user_id, self.database,
                                 {t: len(r) for t, r in left.rows.items() if r}, self.command)
        self.conn.commit()
        return n


def _set_lock_timeout(conn, seconds: float) -> None:
    """``SET LOCAL lock_timeout`` to ``seconds`` (whole milliseconds, at least 1: 0 would mean no limit)."""
    conn.execute(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")


def leftover_error(own: Ownership, user_id: str, database: str, left: dict[str, int], command: str) -> GdprError:
    """The refusal when the re-export inside the erasure's transaction still finds rows. The tables were
    locked against writers, so no concurrent insert put them there; an erase rule is advised only for a
    table that has none (:func:`~ops.gdpr.graph.has_rule`) — for the others the rule ran and something in
    the database (a trigger, a rule, an ON DELETE action) wrote rows for the subject again."""
    found = ", ".join(f"{t}: {n}" for t, n in sorted(left.items()))
    ruleless = sorted(t for t in left if not has_rule(own, t))
    ruled = sorted(t for t in left if has_rule(own, t))
    hints = []
    if ruleless:
        hints.append(f"add an erase rule (delete, nullify or pseudonymize) for {', '.join(ruleless)} to "
                     f"sql/<database>/gdpr.json")
    if ruled:
        hints.append(f"the erase rules for {', '.join(ruled)} ran, so look for a trigger, rule or ON DELETE action "
                     "that writes rows for the user during the erasure (`\\d TABLE` in psql)")
    return GdprError(user_id, f"Erasure of user {user_id} from database '{database}': {sum(left.values())} row(s) "
                     f"still found after the erasure steps, with every table locked against writers ({found}); the "
                     "transaction was rolled back, nothing was erased.",
                     "; ".join(hints) + f"; then rerun `{command}`.")


def begin_erasure(params: Mapping, database: str, own: Ownership, user_id: str, lock_timeout_s: float = 5.0,
                  retries: int = 3, command: str = "invoke gdpr.erase --yes") -> Erasure:
    """Open the erasure's transaction (nothing locked yet: :meth:`Erasure.lock` is its first step).
    ``lock_timeout_s``: seconds each table lock may wait; ``retries``: attempts after the first;
    ``command``: the command line messages tell the user to run again. Raises :class:`GdprError` when
    nothing of the subject is found — neither the root row nor any row an export would find (rows a
    writer added after an earlier erasure are erased without the root row)."""
    conn = session(params, database, "gdpr-erase")
    try:
        _set_lock_timeout(conn, lock_timeout_s)
        by_table = graph(conn, own)
        root = conn.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {k} = %s::uuid").format(
            t=_ident(own.root), k=sql.Identifier(own.root_key)), (user_id,)).fetchone()[0]
        if not root and not collect(conn, own, user_id, by_table).total:
            raise GdprError(user_id, f"Database '{database}': no row in {own.root} has {own.root_key} = {user_id}; "
                            "nothing to erase (already erased, or a wrong id).",
                            f"check with `invoke gdpr.export --db {database} --user-id {user_id}`.")
        pseudonym = str(uuid.uuid4())
        return Erasure(conn, own, user_id, by_table, pseudonym, database=database, lock_timeout_s=lock_timeout_s,
                       retries=retries, command=command)
    except BaseException:
        conn.close()
        raise


def steps_for(e: Erasure) -> list[tuple[str, str, str]]:
    """(kind, table, description) in the order they must run: nullify, delete deepest first and the
    root last, pseudonymize."""
    out = []
    for table, rs in e.by_table.items():
        if any(r.action == "nullify" for r in rs):
            out.append(("nullify", table, "set to NULL: " + "; ".join(r.describe() for r in rs if r.action == "nullify")))
    for table in erase_order(e.by_table, e.own.root):
        out.append(("delete", table, "delete: " + "; ".join(r.describe() for r in e.by_table[table] if r.action == "delete")))
    for table, rs in e.by_table.items():
        if any(r.action == "pseudonymize" for r in rs):
            out.append(("pseudonymize", table, "pseudonymize (subject id → pseudonym, personal keys removed): "
                        + "; ".join(r.describe() for r in rs if r.action == "pseudonymize")))
    return out


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
