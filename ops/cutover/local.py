"""Blue/green cutover of the local stack over logical replication, behind PgBouncer.

Blue is the stack's primary; green is a new cluster made by :meth:`LocalCutover.prepare` (same
roles and schema, one publication and subscription per database, initial copy). Both directions
are set up at prepare time so that no slot is created while writes are paused:

* forward: subscription ``pgops_cutover_fwd`` on green, slot ``pgops_fwd_<oid>`` on blue;
* reverse: subscription ``pgops_cutover_rev`` on blue (created disabled), slot ``pgops_rev_<oid>``
  on green (created once green has caught up).

A switch (:meth:`run`, and :meth:`rollback` in the other direction) pauses the pooler, fences the
old side in ``pg_hba.conf`` (every client connection refused and the live ones terminated — unlike
``default_transaction_read_only``, a session cannot override it; only the cutover's own role and
replication get in), writes a fence row on the old side and waits for it on the new one (logical
apply follows commit order, so every earlier commit has arrived), copies every sequence, stops the
incoming subscription, starts the opposite one from the new side's current WAL position (replication
origin advanced: PostgreSQL docs, "Replication Progress Tracking"; the walsender skips what commits
before it, so nothing loops back), points the pooler at the new side and resumes. Every step is
timed against the budget; over budget or on any error every done step is undone and the pooler is
resumed, with the old side still primary.

Sources: PostgreSQL docs "Logical Replication — Restrictions" (no DDL, sequences or large objects;
tables need a replica identity), PgBouncer admin console (PAUSE/RESUME/RELOAD), pgbouncer #715,
pgstream #1203 and pgcopydb PR #716 (sequences not carried → duplicate keys), pgcopydb #293 (slots
left behind).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

from ..dsn import connect, tool_application_name
from ..errors import CutoverAborted, CutoverError, CutoverRefused, OpsError
from ..local.cluster import LocalStack, node_pid, write_private
from ..local.layout import FENCED, NodeSpec, render_conf
from ..pgtools import chown_server, pg_bindir, run_server_cmd
from ..local.pooler import PoolerAdmin
from .checks import replication_blockers

log = logging.getLogger(__name__)

PUBLICATION = "pgops_cutover"
FWD_SUB = "pgops_cutover_fwd"
REV_SUB = "pgops_cutover_rev"
CONTROL_ROLE = "pgops_cutover"
FENCE_SCHEMA = "pgops_cutover"
#: slots a cutover makes: its two directions, and the per-table slots of the initial copy (PG 15 names
#: them pg_<subscription oid>_sync_<relid>_<system id>; an interrupted copy can leave them behind)
_OUR_SLOTS = r"^(pgops_(fwd|rev)_|pg_\d+_sync_\d+_\d+$)"
DEFAULT_LAG_BOUND_BYTES = 1024 * 1024
#: how long status watches a subscription whose error count rose: several worker restarts at the
#: stack's wal_retrieve_retry_interval (500 ms), so an apply worker failing in a loop fails again within it
_APPLY_SETTLE_S = 3.0
#: pg_dump -s lines that are not the schema: comments, session settings, psql's \restrict guard
_DUMP_NOISE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config\(|\\(un)?restrict\b)")
_APP = tool_application_name("cutover")

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1"""
# what logical replication needs to match on both sides: columns, keys, indexes, constraints
_FINGERPRINT = """
SELECT 'col ' || format('%I.%I', n.nspname, c.relname) || ' ' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
UNION ALL
SELECT 'idx ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
UNION ALL
SELECT 'con ' || format('%I.%I', n.nspname, c.relname) || ' ' || co.conname || ' '
       -- a CHECK's text is deparsed differently after a dump and restore (casts in IN lists), and
       -- replication does not depend on it: its name and kind are compared, keys in full
       || CASE WHEN co.contype = 'c' THEN 'check' ELSE pg_get_constraintdef(co.oid) END
FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'seq ' || format('%I.%I', schemaname, sequencename) FROM pg_sequences
ORDER BY 1"""
#: the oid of the database a connection is in (slot names and pg_subscription rows are per database)
_HERE_OID = "(SELECT oid FROM pg_database WHERE datname = current_database())"
_RELNAME = "format('%%I.%%I', rn.nspname, rc.relname)"
_RELJOIN = "JOIN pg_class rc ON rc.oid = r.srrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace"
_SEQUENCES = "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1"
_OWNED_SEQUENCES = """
SELECT format('%I.%I', sn.nspname, s.relname), format('%I.%I', tn.nspname, t.relname), a.attname
FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                 AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S'
UNION  -- and a sequence a column's DEFAULT nextval() names without OWNED BY
SELECT format('%I.%I', sn.nspname, s.relname), format('%I.%I', tn.nspname, t.relname), a.attname
FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
JOIN pg_class s ON s.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = ad.adrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
ORDER BY 1"""


def _exclusive(method):
    """Run a cutover command holding the cutover's lock (``flock`` on ``<state>/cutover/lock``), with
    the state re-read under it: two commands never act at once, and :meth:`LocalCutover.recover` never
    mistakes a running switch for a dead one. Raises :class:`CutoverError` naming the holder."""
    import functools

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock(method.__name__):
            if self._depth == 1:  # the outermost command reads the state; a nested one keeps it
                self.state = self._read()
            return method(self, *args, **kwargs)
    return locked


@dataclass(frozen=True)
class Side:
    """One cluster of the pair: ``name`` ("blue" | "green"), its node and libpq parameters for the
    cutover's own role (no password: it lives in the cutover's passfile)."""

    name: str
    node: NodeSpec
    params: dict

    def connect(self, dbname: str, **kw):
        return connect(self.params, dbname=dbname, autocommit=True, application_name=_APP, **kw)


class LocalCutover:
    """The cutover of one local stack; its state lives in ``<state_dir>/cutover/state.json``.

    ``stack``: the :class:`LocalStack`; ``clock``: monotonic seconds (tests may inject).
    """

    def __init__(self, stack: LocalStack, clock: Callable[[], float] = time.monotonic):
        self.stack = stack
        self.clock = clock
        self.dir = stack.layout.state_dir / "cutover"
        self.state_file = self.dir / "state.json"
        self.passfile = self.dir / "pgpass"
        self.state = self._read()
        #: called with each switch step's name right after it ran; tests raise from it to prove
        #: that a failure after any step is undone
        self.after_step: Callable[[str], None] | None = None
        self._depth = 0  # how many of this object's commands hold the lock (a command's own status() nests)

    # ---- state ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, what: str, wait: bool = False):
        if self._depth:  # already held by this object's running command (prepare's and run's status())
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if not self.stack.layout.state_dir.exists():  # no stack was ever made here: nothing to exclude,
            yield  # and a refused command leaves no folder behind (issue 20 §5)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        f = open(self.dir / "lock", "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise CutoverError(f"Another cutover command holds the cutover's lock (pid and command: {holder}); "
                                   f"cutover.{what} did not start.",
                                   "wait for it to end (`invoke cutover.status` shows the phase), then run it again.") from None
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()} cutover.{what}\n")
            f.flush()
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
        finally:
            f.close()  # closing releases the flock

    def _read(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"phase": "none"}

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, default=str) + "\n")
        tmp.replace(self.state_file)

    @property
    def phase(self) -> str:
        return self.state.get("phase", "none")

    def _green_node(self) -> NodeSpec:
        g = self.state["green"]
        return NodeSpec(g["name"], "green", int(g["port"]), self.stack.layout.state_dir / g["dir"])

    def _blue_node(self) -> NodeSpec:
        """Blue as prepare recorded it (it stays blue whichever side is primary); before a prepare,
        the stack's primary."""
        b = self.state.get("blue_node")
        if b:
            return NodeSpec(b["name"], "blue", int(b["port"]), self.stack.layout.state_dir / b["dir"])
        name = self.state.get("blue")
        node = next((n for n in self.stack.layout.nodes if n.name == name), None) if name else None
        node = node or self.stack.layout.primary
        return NodeSpec(node.name, "blue", node.port, node.node_dir)

    def _side(self, name: str) -> Side:
        node = self._blue_node() if name == "blue" else self._green_node()
        return Side(name, node, {"host": "127.0.0.1", "port": node.port, "user": CONTROL_ROLE,
                                 "passfile": str(self.passfile)})

    def _any_connect(self, name: str, dbname: str = "postgres"):
        """An autocommit connection to side ``name``: as the cutover's role (which a fenced side
        lets in), else as the stack's superuser (before prepare made the role, after finish dropped
        it). Raises the superuser attempt's :class:`ConnectError` when neither gets in."""
        side = self._side(name)
        if self.passfile.exists():
            try:
                return side.connect(dbname, connect_timeout=5)
            except OpsError:
                pass
        return connect(self.stack.conninfo(side.node), dbname=dbname, autocommit=True, application_name=_APP,
                       connect_timeout=5)

    def _record_primary(self, name: str) -> None:
        """Record side ``name`` as the stack's primary in ``stack.json`` (the topology's one owner,
        :meth:`LocalStack.replace_layout`) and the other side as :data:`FENCED`: written in the step
        that points the pooler, so ``local.up``, ``db.*``, ``backup.*`` and ``health`` follow the
        switch at once. Replicas keep their roles. Idempotent."""
        lay = self.stack.layout
        blue, green = self._blue_node(), self._green_node()
        new, old = (green, blue) if name == "green" else (blue, green)
        if lay.primary.name == new.name and any(n.name == old.name and n.role == FENCED for n in lay.nodes):
            return
        rest = tuple(n for n in lay.nodes if n.name not in (blue.name, green.name))
        nodes = (NodeSpec(new.name, "primary", new.port, new.node_dir),
                 NodeSpec(old.name, FENCED, old.port, old.node_dir)) + rest
        self.stack.replace_layout(lay.with_roles({}, nodes))

    def _point_pooler(self, admin: PoolerAdmin, name: str) -> None:
        """The switch's commit step: record side ``name`` as primary, then point the pooler at the
        layout's primary (so a pooler ``local.up`` restarts points there too). Green enters
        ``stack.json`` only once it has been primary: a switch from ``ready`` undone leaves it out,
        as prepare made it."""
        if name == "blue" and self.phase in ("preparing", "ready"):
            self._record_alone("blue")
        else:
            self._record_primary(name)
        admin.point_at(self.stack.layout)

    def _admin_params(self, node: NodeSpec) -> dict:
        """The stack's own superuser on ``node`` (before the cutover's role exists)."""
        return self.stack.conninfo(node)

    def _admin(self, node: NodeSpec, db: str = "postgres"):
        """An autocommit connection to ``db`` on ``node`` as the stack's superuser."""
        return connect(self._admin_params(node), dbname=db, autocommit=True, application_name=_APP)

    def _require(self, action: str, *phases: str) -> None:
        if self.phase not in phases:
            nxt = {"none": "invoke cutover.prepare", "preparing": "invoke cutover.prepare",
                   "ready": "invoke cutover.run", "switched": "invoke cutover.verify, then invoke cutover.finish "
                   "(or invoke cutover.rollback)", "rolled_back": "invoke cutover.run or invoke cutover.finish"}
            raise CutoverError(f"cutover.{action} needs the cutover to be {' or '.join(phases)}; it is '{self.phase}'.",
                               f"run `invoke cutover.status`, then `{nxt.get(self.phase, 'invoke cutover.status')}`.")

    # ---- prepare --------------------------------------------------------------------------------
    def blue_databases(self, wanted: list[str] | None = None) -> list[str]:
        """Every non-template database on blue; ``wanted`` (names) must be all of them. The pooler
        sends every database to one server (its ``*`` entry), so a cutover of some databases would
        leave the others behind the pooler on a server that no longer has them: refused, naming
        them (:class:`CutoverRefused`), as is a name that does not exist."""
        with self._any_connect("blue") as conn:
            have = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate "
                                               "AND datallowconn ORDER BY 1")]
        if not wanted:
            return have
        missing = [d for d in wanted if d not in have]
        if missing:
            raise CutoverRefused("cutover.prepare", _guards("database_exists", [f"'{d}' does not exist on blue"
                                                                         for d in missing]),
                                 "run `invoke cutover.prepare` with databases that exist (see `psql -l`).")
        left = [d for d in have if d not in wanted]
        if left:
            raise CutoverRefused("cutover.prepare", _guards("every_database", [
                f"the pooler sends every database to the primary: after the switch {', '.join(left)} would be "
                f"missing behind it (and gone once green becomes the primary)"]),
                "run `invoke cutover.prepare` without --db: a cutover carries every database.")
        return list(dict.fromkeys(wanted))

    def preflight(self, databases: list[str]) -> list[str]:
        """What logical replication would silently break, one problem per offender: a table without
        a primary key or replica identity, large objects, unlogged tables, ``wal_level`` not logical
        (PostgreSQL docs, "Logical Replication — Restrictions"). Empty list: nothing found."""
        problems = []
        for db in databases:
            with self._any_connect("blue", db) as conn:
                if db == databases[0]:
                    level = conn.execute("SHOW wal_level").fetchone()[0]
                    if level != "logical":
                        problems.append(f"blue's wal_level is '{level}', logical replication needs 'logical' "
                                        "(ALTER SYSTEM SET wal_level = logical, then `invoke local.down` and "
                                        "`invoke local.up`)")
                keyless, unlogged, n_lo = replication_blockers(conn)
                problems += [f"{db}: table {t} has no primary key or replica identity (its updates and deletes "
                             "would not replicate)" for t in keyless]
                if n_lo:
                    problems.append(f"{db}: {n_lo} large object(s) (logical replication does not carry them)")
                problems += [f"{db}: table {t} is unlogged (logical replication does not carry it)" for t in unlogged]
        return problems

    def plan(self, action: str, **opts) -> list[str]:
        """The lines the confirmation shows for ``action`` with the options it will run with. A
        prepare that would be refused is refused here, before the confirmation (:meth:`refusals`)."""
        if action == "prepare":
            databases = self.refusals(opts.get("databases"))
            return self.plan_prepare(databases)
        if action in ("run", "rollback"):
            src, dst = ("blue", "green") if action == "run" else ("green", "blue")
            return [f"wait until {dst} has caught up with {src}, then within {opts.get('budget_ms', 2000)} ms of write "
                    f"pause: PAUSE the pooler, fence {src} (pg_hba: clients refused, sessions ended), write a fence row "
                    f"and wait for it on {dst}, copy every sequence, start replication {dst} -> {src}, point the pooler "
                    f"at {dst}, RESUME",
                    f"over budget or on any failure: undo every step, RESUME, {src} stays primary",
                    "then verify every table (count + checksum) in snapshots taken at the fence"]
        if action == "finish":
            return self.plan_finish() if self.phase != "none" else ["nothing to finish (no cutover)"]
        return [f"cutover.{action}"]

    def refusals(self, wanted: list[str] | None) -> list[str]:
        """Everything that refuses a prepare, checked before anything is made (and before the
        confirmation): the phase, the databases (:meth:`blue_databases`), what logical replication
        would break (:meth:`preflight`). Returns the databases the prepare carries; raises
        :class:`CutoverError` / :class:`CutoverRefused`."""
        if self.phase not in ("none", "preparing"):
            self._require("prepare", "none")
        databases = self.blue_databases(wanted)
        problems = self.preflight(databases)
        if problems:
            raise CutoverRefused("cutover.prepare", _guards("replicable", problems),
                                 "fix each (add a primary key or REPLICA IDENTITY FULL, move large objects to bytea, "
                                 "ALTER TABLE ... SET LOGGED), then run `invoke cutover.prepare` again.")
        return databases

    def plan_prepare(self, databases: list[str]) -> list[str]:
        return [f"initdb a green cluster on a free loopback port with blue's roles ({self.stack.layout.primary.name} "
                f"is blue)",
                f"for each of {', '.join(databases)}: copy the schema, publish every table on blue, subscribe "
                "on green with an initial copy, and set up the reverse direction (disabled)",
                "wait until every table is replicating; nothing on blue is locked or paused"]

    @_exclusive
    def prepare(self, databases: list[str] | None = None, *, target_engine_version: str | None = None,
                timeout_s: float = 600, on_progress: Callable[[str], None] | None = None) -> dict:
        """Make green and start replicating blue → green. ``databases``: names on blue.

        Re-running after an interruption starts green again from scratch (nothing half-made is
        reused). Raises :class:`CutoverRefused` naming every offender of :meth:`preflight` (before
        anything is made) and every schema difference between blue and green after the copy;
        :class:`CutoverError` when tables do not reach the ready state within ``timeout_s`` seconds.
        Returns :meth:`status`."""
        progress = on_progress or (lambda m: None)
        databases = self.refusals(databases)
        self.bindir = _green_bindir(target_engine_version)
        if self.phase == "preparing":
            progress("a previous prepare was interrupted: removing its green cluster first")
            self._teardown_green()
        self.dir.mkdir(parents=True, exist_ok=True)
        chown_server(self.dir, 0o700)
        green = self._new_green_node()
        blue = self.stack.layout.primary
        self.state = {"phase": "preparing", "databases": databases, "blue": blue.name,
                      "blue_node": {"name": blue.name, "port": blue.port, "dir": blue.node_dir.name},
                      "green": {"name": green.name, "port": green.port, "dir": green.node_dir.name,
                                "bindir": str(self.bindir)},
                      "started_at": _now(), "primary_side": "blue", "switches": []}
        self._save()
        blue = self.stack.layout.primary
        password = secrets.token_urlsafe(24)
        write_private(self.passfile, f"127.0.0.1:*:*:{CONTROL_ROLE}:{password}\n")
        with self._admin(blue) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(CONTROL_ROLE)))
            # the SCRAM verifier is computed here (libpq PQencryptPasswordConn): the password itself
            # never reaches the server, its logs or pg_stat_statements
            verifier = conn.pgconn.encrypt_password(password.encode(), CONTROL_ROLE.encode(), b"scram-sha-256")
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER REPLICATION PASSWORD {}").format(
                sql.Identifier(CONTROL_ROLE), sql.Literal(verifier.decode())))
        progress(f"green: initdb on port {green.port}")
        self.stack.init_node(self.bindir, green, self.stack.stack_password())
        conf = (blue.data_dir / "pgops.conf").read_text()
        conf = "".join(line for line in conf.splitlines(True) if not line.startswith("port ")) + render_conf(
            {"port": str(green.port)})
        (green.data_dir / "pgops.conf").write_text(conf)
        chown_server(green.data_dir / "pgops.conf", 0o600)
        self.stack.start_node(green)
        progress("green: roles from blue (pg_dumpall --roles-only)")
        self._copy_roles(blue, green)
        b, g = self._side("blue"), self._side("green")
        for db in databases:
            progress(f"{db}: schema, publication and subscription")
            with b.connect(db) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(FENCE_SCHEMA)))
                conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.fence (id bigint GENERATED ALWAYS AS IDENTITY "
                                     "PRIMARY KEY, token text NOT NULL, side text NOT NULL, "
                                     "at timestamptz NOT NULL DEFAULT now())").format(sql.Identifier(FENCE_SCHEMA)))
            if db != "postgres":
                with b.connect("postgres") as conn:
                    owner, enc, coll, ctype = conn.execute(
                        "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype "
                        "FROM pg_database WHERE datname = %s", (db,)).fetchone()
                with g.connect("postgres") as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} LC_COLLATE {} "
                                         "LC_CTYPE {}").format(sql.Identifier(db), sql.Identifier(owner),
                                                               sql.Literal(enc), sql.Literal(coll), sql.Literal(ctype)))
            self._copy_schema(db, blue, green)
            diff = self._schema_diff(db)
            if not diff:  # what dump and restore alone change (deparse noise): not a difference later
                only_b, only_g = self._dump_diff(db)
                self.state.setdefault("schema_baseline", {})[db] = {"blue": only_b, "green": only_g}
                self._save()
            if diff:
                raise CutoverRefused("cutover.prepare", _guards("schema_equal", [f"{db}: {d}" for d in diff[:10]]),
                                     "run `invoke cutover.finish --yes` to remove green, then `invoke cutover.prepare` again "
                                     "(a migration ran on blue meanwhile?).")
            with b.connect(db) as conn:
                boid = conn.execute("SELECT " + _HERE_OID).fetchone()[0]
                conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(PUBLICATION)))
            with g.connect(db) as conn:
                conn.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {}, "
                                     "copy_data = true)").format(
                    sql.Identifier(FWD_SUB), sql.Literal(_conninfo(b, db)), sql.Identifier(PUBLICATION),
                    sql.Literal(f"pgops_fwd_{boid}")))
        progress("waiting until every table on green is replicating")
        self._wait_synced(databases, timeout_s, progress)
        for db in databases:  # pg_dump -s makes them WITH NO DATA, and replication carries tables only
            with g.connect(db) as conn:
                for (mv,) in conn.execute("SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews "
                                          "ORDER BY 1").fetchall():
                    progress(f"{db}: refreshing materialized view {mv} on green")
                    conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(mv)))
        for db in databases:  # the reverse direction, disabled until a switch starts it at a quiet point
            with g.connect(db) as conn:
                goid = conn.execute("SELECT " + _HERE_OID).fetchone()[0]
                conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(PUBLICATION)))
                conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (f"pgops_rev_{goid}",))
            with b.connect(db) as conn:
                conn.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {}, "
                                     "create_slot = false, enabled = false, copy_data = false)").format(
                    sql.Identifier(REV_SUB), sql.Literal(_conninfo(g, db)), sql.Identifier(PUBLICATION),
                    sql.Literal(f"pgops_rev_{goid}")))
        for db in databases:  # the initial copy's error count is the healthy baseline (usually 0)
            with g.connect(db) as conn:
                self._apply_failures("green", db, FWD_SUB, conn)
        self.state["phase"] = "ready"
        self.state["ready_at"] = _now()
        self._save()
        return self.status()

    def _new_green_node(self) -> NodeSpec:
        lay = self.stack.layout
        used = {n.node_dir.name for n in lay.nodes}
        i = 1
        while f"green{i}" in used or (lay.state_dir / f"green{i}").exists():
            i += 1
        taken = {n.port for n in lay.nodes} | ({lay.pooler.port} if lay.pooler else set())
        port = next(p for p in range(lay.base_port + 10, min(lay.base_port + 400, 65535))
                    if p not in taken and _port_free(p))
        return NodeSpec(f"green{i}", "green", port, lay.state_dir / f"green{i}")

    def _copy_roles(self, blue: NodeSpec, green: NodeSpec) -> None:
        bindir = pg_bindir()
        dump = run_server_cmd([str(bindir / "pg_dumpall"), "--roles-only", "-h", "127.0.0.1", "-p", str(blue.port),
                               "-U", "postgres", "--no-password"], what="pg_dumpall --roles-only of blue",
                              env={"PGPASSFILE": str(self.stack.layout.passfile)}).stdout
        # the superuser exists on green already (initdb); every other statement must succeed
        dump = "\n".join(line for line in dump.splitlines() if line.strip() != "CREATE ROLE postgres;")
        script = self.dir / "roles.sql"
        write_private(script, dump + "\n")
        try:
            run_server_cmd([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                            str(green.port), "-U", "postgres", "-d", "postgres", "--no-password", "-f", str(script)],
                           what="creating blue's roles on green", env={"PGPASSFILE": str(self.stack.layout.passfile)})
        finally:
            script.unlink(missing_ok=True)

    def _copy_schema(self, db: str, blue: NodeSpec, green: NodeSpec) -> None:
        bindir = pg_bindir()
        env = {"PGPASSFILE": str(self.stack.layout.passfile)}
        dump = self.dir / "schema.sql"
        dump.unlink(missing_ok=True)
        run_server_cmd([str(bindir / "pg_dump"), "-s", "--no-publications", "--no-subscriptions", "-h", "127.0.0.1",
                        "-p", str(blue.port), "-U", "postgres", "--no-password", "-d", db, "-f", str(dump)],
                       what=f"pg_dump -s of {db} on blue", env=env)
        run_server_cmd([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                        str(green.port), "-U", "postgres", "-d", db, "--no-password", "-f", str(dump)],
                       what=f"restoring {db}'s schema on green", env=env)
        dump.unlink(missing_ok=True)

    def _schema_dump(self, side: str, db: str) -> Counter:
        """``pg_dump -s`` of ``db`` on ``side`` (as the cutover's role: a fenced side lets it in), the
        cutover's own objects left out, normalised to its statement lines (comments, ``SET`` lines and
        psql meta-commands dropped) as a multiset. Green's binaries (the newer, when versions differ)
        dump both sides alike."""
        bindir = Path((self.state.get("green") or {}).get("bindir") or pg_bindir())
        node = self._side(side).node
        out = run_server_cmd([str(bindir / "pg_dump"), "-s", "--no-publications", "--no-subscriptions", "-N",
                              FENCE_SCHEMA, "-h", "127.0.0.1", "-p", str(node.port), "-U", CONTROL_ROLE,
                              "--no-password", "-d", db], what=f"pg_dump -s of {db} on {side}",
                             env={"PGPASSFILE": str(self.passfile)}).stdout
        return Counter(line.rstrip() for line in out.splitlines() if line.strip() and not _DUMP_NOISE.match(line))

    def _dump_diff(self, db: str) -> tuple[list[str], list[str]]:
        """Lines of the normalised schema dump present on blue only, and on green only."""
        with ThreadPoolExecutor(2) as pool:
            b, g = pool.map(lambda side: self._schema_dump(side, db), ("blue", "green"))
        return sorted((b - g).elements()), sorted((g - b).elements())

    def _whole_schema_diff(self, db: str) -> list[str]:
        """Every difference between the two sides' whole schemas (``pg_dump -s``: defaults, functions,
        triggers, views, types and enum values, policies, grants — not only what replication needs)
        beyond those dump and restore made at prepare."""
        only_b, only_g = self._dump_diff(db)
        base = (self.state.get("schema_baseline") or {}).get(db) or {"blue": [], "green": []}
        new_b = sorted((Counter(only_b) - Counter(base["blue"])).elements())
        new_g = sorted((Counter(only_g) - Counter(base["green"])).elements())
        return ([f"{db}: only on blue: {x.strip()}" for x in new_b] + [f"{db}: only on green: {x.strip()}" for x in new_g])

    def _apply_failures(self, dst: str, db: str, sub: str, conn) -> str | None:
        """Whether ``sub``'s workers on side ``dst`` keep failing: its error count
        (``pg_stat_subscription_stats``, PostgreSQL 15: apply + initial-copy errors) is above the
        count last seen healthy and still rising within a few worker restarts
        (``wal_retrieve_retry_interval``), or its apply worker is absent. A count that stopped
        rising with the worker running becomes the new healthy count. Returns the problem, or None."""
        q = ("SELECT coalesce(st.apply_error_count + st.sync_error_count, 0), EXISTS (SELECT 1 FROM "
             "pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) "
             "FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid "
             "WHERE s.subname = %s AND s.subdbid = " + _HERE_OID)
        row = conn.execute(q, (sub,)).fetchone()
        if row is None:
            return None
        key = f"{dst}/{db}/{sub}"
        seen = self.state.setdefault("apply_errors", {})
        count, worker = int(row[0]), row[1]
        if count <= seen.get(key, 0):
            return None
        deadline = self.clock() + _APPLY_SETTLE_S
        rising = False
        while self.clock() < deadline:
            time.sleep(0.2)
            again, worker = conn.execute(q, (sub,)).fetchone()
            if int(again) > count:
                rising, count = True, int(again)
                break
        if not rising and worker:
            seen[key] = count  # the errors stopped (fixed on the subscriber, say): healthy again
            if self._depth:
                self._save()
            return None
        last = _last_error(self._side(dst).node.log_file)
        return (f"{db}: {dst}'s apply worker for {sub} keeps failing ({count - seen.get(key, 0)} error(s) since it "
                f"was last healthy{'; last: ' + last if last else ''})")

    def _schema_diff(self, db: str) -> list[str]:
        """Catalog lines present on one side only (columns, indexes, constraints, sequences)."""
        with self._side("blue").connect(db) as bc, self._side("green").connect(db) as gc:
            bl = {r[0] for r in bc.execute(_FINGERPRINT)}
            gl = {r[0] for r in gc.execute(_FINGERPRINT)}
        return [f"only on blue: {x}" for x in sorted(bl - gl)] + [f"only on green: {x}" for x in sorted(gl - bl)]

    def _wait_synced(self, databases: list[str], timeout_s: float, progress) -> None:
        deadline = self.clock() + timeout_s
        g = self._side("green")
        while True:
            pending = []
            for db in databases:
                with g.connect(db) as conn:
                    pending += [f"{db}:{t} ({s})" for t, s in conn.execute(
                        "SELECT " + _RELNAME + ", r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s "
                        "ON s.oid = r.srsubid " + _RELJOIN + " WHERE s.subname = %s AND r.srsubstate <> 'r'",
                        (FWD_SUB,))]
            if not pending:
                return
            if self.clock() > deadline:
                raise CutoverError(f"Green did not finish the initial copy within {timeout_s:.0f} s; still copying: "
                                   f"{', '.join(pending[:10])}.",
                                   "run `invoke cutover.status` to watch it, then `invoke cutover.prepare` again "
                                   "(it resumes), or `invoke cutover.finish --yes` to remove green.")
            time.sleep(0.2)

    # ---- status ---------------------------------------------------------------------------------
    def status(self) -> dict:
        """Phase, replication lag in bytes (toward the side that is not primary), per-table sync
        state, and every guard as ``{"name", "passed", "detail"}``. A switch left half-done by a
        killed process is finished or undone first (:meth:`recover`; listed under ``recovered``)."""
        recovered, busy = [], None
        try:
            with self._lock("status"):
                if self._depth == 1:  # not nested in a command that read it already
                    self.state = self._read()
                    recovered = self.recover()
        except CutoverError as exc:  # a command is running: report, never repair under it
            busy = exc.message
        out = {"recovered": recovered} if recovered else {}
        if busy:
            out["in_progress"] = busy
        out |= {"phase": self.phase, "primary_side": self.state.get("primary_side"),
               "databases": self.state.get("databases", []), "lag_bytes": None, "tables": [], "guards": []}
        if self.phase == "none":
            return out
        blue_node = self._blue_node()
        out["blue"] = {"node": blue_node.name, "port": blue_node.port}
        out["green"] = {"node": self.state["green"]["name"], "port": self.state["green"]["port"]}
        guards = out["guards"]

        def guard(name, passed, detail=""):
            guards.append({"name": name, "passed": bool(passed), "detail": detail})

        blue_up = node_pid(blue_node) is not None
        green_up = node_pid(self._green_node()) is not None
        guard("blue_running", blue_up, f"port {blue_node.port}")
        guard("green_running", green_up, f"port {self.state['green']['port']}")
        pooler = self.stack.layout.pooler
        from ..local.cluster import pooler_pid
        guard("pooler_running", pooler is not None and pooler_pid(pooler) is not None,
              f"port {pooler.port}" if pooler else "the stack has no pooler")
        if not (blue_up and green_up) or self.phase == "preparing":
            return out
        src, dst, sub = (("blue", "green", FWD_SUB) if self.state.get("primary_side") == "blue"
                         else ("green", "blue", REV_SUB))
        lag = 0
        not_ready = []
        schema_diffs = []
        problems = self.preflight(self.state["databases"]) if src == "blue" else []
        for db in self.state["databases"]:
            with self._side(dst).connect(db) as conn:
                rows = conn.execute(
                    "SELECT " + _RELNAME + ", r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s "
                    "ON s.oid = r.srsubid " + _RELJOIN + " WHERE s.subname = %s ORDER BY 1", (sub,)).fetchall()
                active = conn.execute("SELECT s.subenabled FROM pg_subscription s WHERE s.subname = %s "
                                      "AND s.subdbid = " + _HERE_OID,
                                      (sub,)).fetchone()
            for t, s in rows:
                out["tables"].append({"database": db, "table": t, "state": _SUBSTATE.get(s, s)})
                if s != "r":
                    not_ready.append(f"{db}:{t}")
            with self._side(src).connect(db) as conn:
                slot = conn.execute(  # each slot is named after its publisher-side database's oid
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, active "
                    "FROM pg_replication_slots WHERE slot_name = %s || " + _HERE_OID,
                    ("pgops_fwd_" if src == "blue" else "pgops_rev_",)).fetchone()
                src_tables = [r[0] for r in conn.execute(_TABLES)]
            if slot:
                lag = max(lag, int(slot[0] or 0))
            missing = sorted(set(src_tables) - {t for t, _ in rows} - {f"{FENCE_SCHEMA}.fence"})
            if missing and src == "blue":
                schema_diffs += [f"{db}: {t} is not replicated (created after prepare)" for t in missing]
            schema_diffs += self._whole_schema_diff(db)
            if not (active and active[0]):
                not_ready.append(f"{db}: subscription {sub} disabled")
            else:
                with self._side(dst).connect(db) as conn:
                    failing = self._apply_failures(dst, db, sub, conn)
                if failing:
                    not_ready.append(failing)
        out["lag_bytes"] = lag
        guard("replicating", not not_ready, ", ".join(not_ready[:10]) or "every table in state ready")
        guard("lag_under_bound", lag <= DEFAULT_LAG_BOUND_BYTES, f"{lag} bytes (bound {DEFAULT_LAG_BOUND_BYTES})")
        guard("schema_equal", not schema_diffs, "; ".join(schema_diffs[:5]) or "same schema (pg_dump -s) on both sides")
        guard("replicable", not problems, "; ".join(problems[:5]) or "every table has a replica identity")
        return out

    # ---- the switch -----------------------------------------------------------------------------
    @_exclusive
    def run(self, *, budget_ms: int = 2000, lag_wait_s: float = 60,
            on_progress: Callable[[str], None] | None = None) -> dict:
        """Switch the pooler from blue to green. Returns the report (``passed``, ``write_pause_ms``,
        ``phases_ms``, sequences set, tables and rows checked). Raises :class:`CutoverRefused` when a
        guard fails before the pause, :class:`CutoverAborted` when over ``budget_ms`` milliseconds of
        write pause or on a failure midway (blue still primary, pooler resumed)."""
        self.recover()
        self._require("run", "ready", "rolled_back")
        return self._switch("blue", "green", FWD_SUB, REV_SUB, budget_ms, lag_wait_s, "run",
                            on_progress or (lambda m: None))

    @_exclusive
    def rollback(self, *, budget_ms: int = 2000, lag_wait_s: float = 60,
                 on_progress: Callable[[str], None] | None = None) -> dict:
        """The same guarded switch from green back to blue, over the reverse replication, so no
        write acknowledged on green is lost. Raises like :meth:`run`."""
        self.recover()
        self._require("rollback", "switched")
        return self._switch("green", "blue", REV_SUB, FWD_SUB, budget_ms, lag_wait_s, "rollback",
                            on_progress or (lambda m: None))

    def _switch(self, src_name, dst_name, in_sub, back_sub, budget_ms, lag_wait_s, action, progress) -> dict:
        st = self.status()
        failed = [g for g in st["guards"] if not g["passed"] and g["name"] not in ("lag_under_bound",)]
        if failed:
            raise CutoverRefused(f"cutover.{action}", failed,
                                 "fix what the guards name (`invoke cutover.status`), then run "
                                 f"`invoke cutover.{action}` again.")
        src, dst = self._side(src_name), self._side(dst_name)
        dbs = self.state["databases"]
        report = {"action": action, "from": src_name, "to": dst_name, "budget_ms": budget_ms, "passed": False,
                  "write_pause_ms": None, "phases_ms": {}, "sequences_set": 0, "tables_checked": 0,
                  "rows_checked": 0, "mismatches": [], "sequence_problems": []}
        phases = report["phases_ms"]
        progress(f"waiting for {dst_name} to catch up")
        t = self.clock()
        self._wait_lag(src, dbs, src_name, lag_wait_s, action)
        phases["lag_wait"] = _ms(self.clock() - t)
        undo: list[tuple[str, Callable[[], None]]] = []
        with ExitStack() as stack:
            sconns = {db: stack.enter_context(src.connect(db)) for db in dbs}
            dconns = {db: stack.enter_context(dst.connect(db)) for db in dbs}
            ssnap = {db: stack.enter_context(src.connect(db)) for db in dbs}
            dsnap = {db: stack.enter_context(dst.connect(db)) for db in dbs}
            admin = PoolerAdmin(self.stack, "cutover")
            stack.callback(admin.close)
            keep = [c.info.backend_pid for c in (*sconns.values(), *ssnap.values())]
            token = secrets.token_hex(8)
            budget_s = budget_ms / 1000
            # written before anything changes: a process killed mid-switch leaves this behind, and the
            # next cutover command finishes or undoes the switch (see :meth:`recover`)
            self.state["in_switch"] = {"from": src_name, "to": dst_name, "in_sub": in_sub, "back_sub": back_sub,
                                       "dst_fenced": self._fenced(dst), "at": _now()}
            self._save()
            t0 = self.clock()

            def step(name, fn):
                t1 = self.clock()
                fn()
                phases[name] = _ms(self.clock() - t1)
                if self.after_step is not None:  # fault injection (tests): a failure right after `name`
                    self.after_step(name)
                if self.clock() - t0 > budget_s:
                    raise _OverBudget(name)

            try:
                progress("PAUSE the pooler")
                t1 = self.clock()
                try:
                    admin.pause(max(budget_s - (self.clock() - t0), 0.001))
                except TimeoutError:  # abandoned (its session closed): nothing pending, RESUME is safe
                    phases["pause"] = _ms(self.clock() - t1)
                    raise _OverBudget("pause") from None
                phases["pause"] = _ms(self.clock() - t1)
                # each undo is registered before its step runs (all are idempotent), so a step that
                # fails midway or crosses the budget is undone like the ones before it
                undo.append(("unfence " + src_name, lambda: self._unfence(src, sconns[dbs[0]])))
                step("fence", lambda: self._fence(src, sconns[dbs[0]], keep, deadline=t0 + budget_s))

                def fence_row():
                    for db in dbs:
                        sconns[db].execute(sql.SQL("INSERT INTO {}.fence (token, side) VALUES (%s, %s)").format(
                            sql.Identifier(FENCE_SCHEMA)), (token, src_name))
                    for db in dbs:  # the source's snapshot at the fence, for the verification
                        ssnap[db].execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        ssnap[db].execute("SELECT 1")
                    for db in dbs:
                        while not dconns[db].execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.fence WHERE token = %s)")
                                                     .format(sql.Identifier(FENCE_SCHEMA)), (token,)).fetchone()[0]:
                            if self.clock() - t0 > budget_s:
                                raise _OverBudget("fence_row")
                            time.sleep(0.002)
                    for db in dbs:
                        dsnap[db].execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        dsnap[db].execute("SELECT 1")
                step("fence_row", fence_row)

                def stop_incoming():
                    for db in dbs:
                        dconns[db].execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(in_sub)))
                    for db in dbs:  # the worker must be gone before anything flows back; it has nothing
                        # left to apply (the fence row arrived), so ending it now loses nothing and saves
                        # the wait until it notices it was disabled
                        dconns[db].execute("SELECT pg_terminate_backend(pid) FROM pg_stat_subscription WHERE "
                                           "subname = %s AND pid IS NOT NULL", (in_sub,))
                        while dconns[db].execute("SELECT count(*) FROM pg_stat_subscription WHERE subname = %s "
                                                 "AND pid IS NOT NULL", (in_sub,)).fetchone()[0]:
                            if self.clock() - t0 > budget_s:
                                raise _OverBudget("stop_incoming")
                            time.sleep(0.002)
                undo.append((f"enable {in_sub} on {dst_name}", lambda: [dconns[db].execute(
                    sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(in_sub))) for db in dbs]))
                step("stop_incoming", stop_incoming)

                def sequences():
                    report["sequences_set"] = sum(_copy_sequences(sconns[db], dconns[db]) for db in dbs)
                step("sequences", sequences)

                def start_back():
                    lsn = dconns[dbs[0]].execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                    for db in dbs:
                        sconns[db].execute(
                            "SELECT pg_replication_origin_advance('pg_' || oid, %s::pg_lsn) FROM pg_subscription "
                            "WHERE subname = %s AND subdbid = (SELECT oid FROM pg_database WHERE datname = "
                            "current_database())", (lsn, back_sub))
                        sconns[db].execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(back_sub)))
                undo.append((f"disable {back_sub} on {src_name}", lambda: [sconns[db].execute(
                    sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(back_sub))) for db in dbs]))
                step("start_reverse", start_back)
                if self._fenced(dst):
                    undo.append(("fence " + dst_name, lambda: self._fence(dst, dconns[dbs[0]], [])))
                    step("unfence_" + dst_name, lambda: self._unfence(dst, dconns[dbs[0]]))
                undo.append(("point the pooler back at " + src_name, lambda: self._point_pooler(admin, src_name)))
                step("repoint", lambda: self._point_pooler(admin, dst_name))
                t1 = self.clock()
                admin.resume()
                phases["resume"] = _ms(self.clock() - t1)
                report["write_pause_ms"] = _ms(self.clock() - t0)
            except BaseException as exc:
                where = exc.step if isinstance(exc, _OverBudget) else None
                undone = self._undo(undo)
                try:
                    admin.close()  # a command interrupted mid-way (Ctrl-C in PAUSE) dies with its session
                    admin.resume()
                except Exception as rexc:  # recorded; the switch stays marked for `recover`
                    log.error("RESUME after abort failed: %s", rexc)
                    report["resume_error"] = str(rexc)
                report["write_pause_ms"] = _ms(self.clock() - t0)
                report["aborted_at"] = where or type(exc).__name__
                report["undone"] = undone
                clean = "resume_error" not in report and not any("FAILED" in u for u in undone)
                if clean:
                    self.state.pop("in_switch", None)
                self.state.setdefault("switches", []).append({**report, "at": _now()})
                self._save()
                if isinstance(exc, KeyboardInterrupt):
                    raise
                what = (f"over its budget of {budget_ms} ms at step '{where}'" if where
                        else f"failed: {exc}")
                if not clean:
                    raise CutoverAborted(
                        f"cutover.{action} {what}, and undoing it did not complete ({'; '.join(undone)}"
                        f"{'; RESUME failed: ' + report['resume_error'] if 'resume_error' in report else ''}).",
                        "run `invoke cutover.status`: it finishes the undo and resumes the pooler.", report) from None
                raise CutoverAborted(f"cutover.{action} {what}; every step was undone, the pooler resumed, and "
                                     f"{src_name} is still primary (write pause {report['write_pause_ms']} ms).",
                                     f"run `invoke cutover.status`, then `invoke cutover.{action} --budget-ms N` "
                                     "with a larger budget or when fewer long transactions run.", report) from None
            self.state["phase"] = "switched" if dst_name == "green" else "rolled_back"
            self.state["primary_side"] = dst_name
            self.state.pop("in_switch", None)
            self.state["last_verification"] = {"passed": False, "pending": True, "mismatches": [
                "the verification at the fence did not finish"], "sequence_problems": []}
            self._save()
            progress("verifying every table at the fence")
            t1 = self.clock()
            self._verify_at_fence(dbs, ssnap, dsnap, report)
            phases["verify"] = _ms(self.clock() - t1)
        report["passed"] = not report["mismatches"] and not report["sequence_problems"]
        self._advance_idle_slot(src_name, dbs)
        self.state["last_verification"] = {k: report[k] for k in ("passed", "tables_checked", "rows_checked",
                                                                  "mismatches", "sequence_problems")}
        self.state.setdefault("switches", []).append({**report, "at": _now()})
        self._save()
        return report

    def recover(self) -> list[str]:
        """Finish or undo a switch whose process died (kill -9, a lost terminal) and left the pooler
        paused and a side fenced. The pooler's target is the commit point: once it names the new
        side, writes may have gone there, so the switch is finished forward (new side unfenced,
        reverse replication on, phase recorded, verification marked missing); before that every
        step is undone toward the old side. Then RESUME (no PAUSE is pending: its session died with
        the process). Idempotent; returns what it did (empty when nothing was left half-done)."""
        sw = self.state.get("in_switch")
        if not sw:
            return []
        src, dst = self._side(sw["from"]), self._side(sw["to"])
        dbs = self.state["databases"]
        done = []
        pointed = _pooler_target_port(self.stack.layout.pooler.ini) == dst.node.port
        keep, other = (dst, src) if pointed else (src, dst)
        admin = PoolerAdmin(self.stack, "cutover")
        failed = []
        try:
            # clients first: the side that stays primary is opened, the pooler (re)pointed and resumed
            try:
                with keep.connect("postgres") as conn:
                    self._unfence(keep, conn)
            except OpsError as exc:
                failed.append(f"unfencing {keep.name}: {exc.message}")
            self._point_pooler(admin, keep.name)
            if admin.running:  # a pooler killed since: local.up starts it, pointed by the layout
                admin.resume()
            done.append(f"pooler pointed at {keep.name} and resumed")
            if not pointed and sw.get("dst_fenced") and not self._fenced(other):
                try:  # a rollback killed after unfencing blue: blue is not primary, fence it again
                    with other.connect("postgres") as conn:
                        self._fence(other, conn, [])
                    done.append(f"{other.name} fenced again")
                except OpsError as exc:
                    failed.append(f"fencing {other.name}: {exc.message}")
            try:  # then replication, one direction only
                if pointed:
                    _replicate(dbs, on=(src, sw["back_sub"]), off=(dst, sw["in_sub"]))
                else:
                    _replicate(dbs, on=(dst, sw["in_sub"]), off=(src, sw["back_sub"]))
            except OpsError as exc:
                failed.append(f"replication {keep.name} -> {other.name}: {exc.message}")
        finally:
            admin.close()
        if pointed:
            self.state["phase"] = "switched" if sw["to"] == "green" else "rolled_back"
            self.state["primary_side"] = sw["to"]
            self.state["last_verification"] = {"passed": False, "mismatches": [
                "the switch's process died before verifying at the fence"], "sequence_problems": []}
            done.append(f"the pooler already pointed at {sw['to']}: finished the switch forward "
                        f"({sw['to']} is primary; run `invoke cutover.verify`)")
        else:
            done.append(f"undid the interrupted switch: {sw['from']} is primary, replication "
                        f"{sw['from']} -> {sw['to']} running again")
        if failed:
            self.state.setdefault("recoveries", []).append({"at": _now(), "done": done, "failed": failed})
            self._save()
            raise CutoverError("Recovering the interrupted switch resumed the pooler on "
                               f"{keep.name} but could not finish: {'; '.join(failed)}.",
                               "bring the named server up (`invoke local.status`), then `invoke cutover.status` again.")
        self.state.pop("in_switch", None)
        self.state.setdefault("recoveries", []).append({"at": _now(), "done": done})
        self._save()
        return done

    def _advance_idle_slot(self, idle_publisher: str, dbs: list[str]) -> None:
        """The direction not in use keeps its slot on ``idle_publisher`` (for the way back) but must
        not keep that server's WAL: move the slot to the current position (its subscription starts
        from a later quiet point anyway, by origin advance). PostgreSQL docs, "pg_replication_slot_advance"."""
        prefix = "pgops_fwd_" if idle_publisher == "blue" else "pgops_rev_"
        for db in dbs:
            try:
                with self._side(idle_publisher).connect(db) as conn:
                    for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE NOT active AND "
                                                "slot_name LIKE %s AND database = current_database()",
                                                (prefix + "%",)).fetchall():
                        conn.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (slot,))
            except (OpsError, psycopg.Error) as exc:  # best effort: the status guard shows retained WAL
                log.warning("advancing the idle slot on %s failed: %s", idle_publisher, exc)

    def _wait_lag(self, src: Side, dbs, src_name, timeout_s, action) -> None:
        deadline = self.clock() + timeout_s
        prefix = "pgops_fwd_" if src_name == "blue" else "pgops_rev_"
        while True:
            lag, inactive = 0, False
            for db in dbs:
                with src.connect(db) as conn:
                    row = conn.execute("SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))::bigint, "
                                       "bool_and(active) FROM pg_replication_slots WHERE slot_name LIKE %s "
                                       "AND database = current_database()", (prefix + "%",)).fetchone()
                    lag = max(lag, int(row[0] or 0))
                    # a subscription just enabled has no worker streaming yet (the launcher starts it
                    # within wal_retrieve_retry_interval): its fence row could not arrive in the pause
                    inactive = inactive or not row[1]
            if lag <= DEFAULT_LAG_BOUND_BYTES and not inactive:
                return
            if self.clock() > deadline:
                raise CutoverRefused(f"cutover.{action}", _guards("lag_under_bound", [(f"replication lag is {lag} bytes after {timeout_s:.0f} s "
                                                            f"(bound {DEFAULT_LAG_BOUND_BYTES})"
                                                            + (", and a subscription has no worker streaming"
                                                               if inactive else ""))]),
                                     f"run `invoke cutover.status` until lag is low, then `invoke cutover.{action}`.")
            time.sleep(0.1)

    def _hba(self, side: Side) -> tuple[Path, Path]:
        return side.node.data_dir / "pg_hba.conf", side.node.node_dir / "pg_hba.unfenced"

    def _fenced(self, side: Side) -> bool:
        return self._hba(side)[1].exists()

    def _fence(self, side: Side, conn, keep_pids: list[int], deadline: float | None = None) -> None:
        """Refuse every client connection to ``side`` except the cutover's own role and replication,
        then terminate every other client session and prove a new connection is refused."""
        hba, saved = self._hba(side)
        if not saved.exists():
            shutil.copy2(hba, saved)
        original = saved.read_text()
        fenced = ("# pgops cutover fence: clients are refused; remove by `invoke cutover.rollback` or finish\n"
                  f"host all {CONTROL_ROLE} 127.0.0.1/32 scram-sha-256\n"
                  f"host replication {CONTROL_ROLE} 127.0.0.1/32 scram-sha-256\n"
                  + "".join(line + "\n" for line in original.splitlines()
                            if len(line.split()) > 2 and line.split()[1] == "replication")
                  + "local all all reject\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n")
        _write_server_file(hba, fenced)
        conn.execute("SELECT pg_reload_conf()")
        while True:
            conn.execute("SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity WHERE backend_type = "
                         "'client backend' AND pid <> ALL(%s) AND usename IS DISTINCT FROM %s",
                         (keep_pids, CONTROL_ROLE))
            try:  # the fence holds when a fresh ordinary connection is refused by pg_hba.conf
                connect(self.stack.conninfo(side.node), dbname="postgres", autocommit=True, connect_timeout=2,
                        application_name=_APP).close()
            except OpsError as exc:
                if "pg_hba.conf rejects connection" not in str(exc):
                    raise
                left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                    "AND pid <> ALL(%s) AND usename IS DISTINCT FROM %s",
                                    (keep_pids, CONTROL_ROLE)).fetchone()[0]
                if not left:
                    return
            if deadline is not None and self.clock() > deadline:
                raise _OverBudget("fence")
            time.sleep(0.005)

    def _unfence(self, side: Side, conn) -> None:
        hba, saved = self._hba(side)
        if saved.exists():
            _write_server_file(hba, saved.read_text())
            conn.execute("SELECT pg_reload_conf()")
            saved.unlink()

    def _undo(self, undo) -> list[str]:
        done = []
        for name, fn in reversed(undo):
            try:
                fn()
                done.append(name)
            except Exception as exc:
                log.error("undo step '%s' failed: %s", name, exc)
                done.append(f"{name} FAILED: {exc}")
        return done

    def _verify_at_fence(self, dbs, ssnap, dsnap, report) -> None:
        """Per table: row count and an order-independent checksum (sum of each row's text hash) in
        the two snapshots taken at the fence; per sequence owned by a column: the new side's value
        is at least the old side's and at least the column's max at the fence."""
        for db in dbs:
            s, d = ssnap[db], dsnap[db]
            tables = [r[0] for r in s.execute(_TABLES)]
            results = {}

            def measure(conn, key):
                results[key] = {t: conn.execute(sql.SQL(
                    "SELECT count(*), coalesce(sum(hashtextextended(x::text, 0)::numeric), 0) FROM {} x").format(
                    sql.SQL(t))).fetchone() for t in tables}
            th = threading.Thread(target=measure, args=(s, "s"))
            th.start()
            measure(d, "d")
            th.join()
            for t in tables:
                report["tables_checked"] += 1
                report["rows_checked"] += int(results["s"][t][0])
                if results["s"][t] != results["d"].get(t):
                    report["mismatches"].append(f"{db}:{t} old side {results['s'][t][0]} rows, new side "
                                                f"{results['d'].get(t, (None,))[0]} rows or a different checksum")
            for seq, table, column in d.execute(_OWNED_SEQUENCES).fetchall():
                top = d.execute(sql.SQL("SELECT max({})::numeric FROM {}").format(sql.Identifier(column), sql.SQL(table))
                                ).fetchone()[0]
                old = s.execute(sql.SQL("SELECT last_value FROM {}").format(sql.SQL(seq))).fetchone()[0]
                with_now = d.execute(sql.SQL("SELECT last_value FROM {}").format(sql.SQL(seq))).fetchone()[0]
                if with_now < old or (top is not None and with_now < top):
                    report["sequence_problems"].append(f"{db}:{seq} is {with_now} on the new side; old side "
                                                       f"{old}, max({table}.{column}) {top}")
            s.execute("COMMIT")
            d.execute("COMMIT")

    # ---- verify ---------------------------------------------------------------------------------
    @_exclusive
    def verify(self) -> dict:
        """The verification recorded at the last switch's fence, plus every sequence checked now on
        the side that is primary: ≥ the other side's value and ≥ the max of its column."""
        self.recover()
        self._require("verify", "switched", "rolled_back")
        rec = dict(self.state.get("last_verification") or {})
        primary, other = (("green", "blue") if self.state["primary_side"] == "green" else ("blue", "green"))
        problems = []
        checked = 0
        for db in self.state["databases"]:
            with self._side(primary).connect(db) as p, self._side(other).connect(db) as o:
                for seq, table, column in p.execute(_OWNED_SEQUENCES).fetchall():
                    checked += 1
                    now = p.execute(sql.SQL("SELECT last_value FROM {}").format(sql.SQL(seq))).fetchone()[0]
                    theirs = o.execute(sql.SQL("SELECT last_value FROM {}").format(sql.SQL(seq))).fetchone()[0]
                    top = p.execute(sql.SQL("SELECT max({})::numeric FROM {}").format(
                        sql.Identifier(column), sql.SQL(table))).fetchone()[0]
                    if now < theirs or (top is not None and now < top):
                        problems.append(f"{db}:{seq} is {now} on {primary}; {other} has {theirs}, "
                                        f"max({table}.{column}) is {top}")
        rec["sequences_checked_now"] = checked
        rec["sequence_problems_now"] = problems
        rec["primary_side"] = primary
        rec["passed"] = bool(rec.get("passed")) and not problems
        return rec

    # ---- finish ---------------------------------------------------------------------------------
    def plan_finish(self) -> list[str]:
        if self.phase == "switched":
            return ["drop every subscription, publication, slot and fence table the cutover made, on both sides, "
                    "and check none remains",
                    f"stop old blue ({self._blue_node().name}, fenced); its data directory is kept until you remove it",
                    f"record green ({self.state['green']['name']}) as the stack's only primary and rebuild every "
                    "replica from it (pg_basebackup)",
                    "last: drop the cutover's role"]
        return ["drop every subscription, publication, slot and fence table the cutover made on blue",
                f"stop and delete green ({self.state.get('green', {}).get('name')}); blue stays primary, open to clients",
                "last: drop the cutover's role"]

    @_exclusive
    def finish(self, on_progress: Callable[[str], None] | None = None, force: bool = False) -> dict:
        """After a switch: clean both sides, stop old blue, make green the stack's only primary
        (replicas rebuilt from it). After a rollback (or from ready or an interrupted prepare): clean
        blue and remove green. Asserts no slot, publication or subscription pgops made remains.
        Returns what was done.

        Each step checks whether it is done, and the cutover's role (the only one a fenced side
        lets in) is dropped last, so a finish that failed anywhere is completed by running it again."""
        self.recover()
        self._require("finish", "ready", "rolled_back", "switched", "preparing")
        verified = self.state.get("last_verification") or {}
        if self.phase == "switched" and not verified.get("passed") and not force:
            raise CutoverRefused("cutover.finish", _guards("verified", [
                "the switch to green was not verified at its fence ("
                + "; ".join(verified.get("mismatches", []) + verified.get("sequence_problems", [])) + "); finishing "
                "removes the way back"]), "run `invoke cutover.verify`, `invoke cutover.rollback --yes` if data "
                "differs, or `invoke cutover.finish --force --yes` to finish anyway.")
        progress = on_progress or (lambda m: None)
        done = []
        promote = self.phase == "switched"
        keep, drop = ("green", "blue") if promote else ("blue", "green")
        dbs = self.state.get("databases", [])
        sides = [s for s in ("blue", "green") if self.state.get(s) and node_pid(self._side(s).node) is not None]
        for side in sides:
            for db in dbs:
                try:
                    conn = self._any_connect(side, db)
                except OpsError:
                    continue  # the database never reached green (an interrupted prepare)
                with conn:
                    done += [f"dropped subscription {sub} in {db} on {side}" for sub in _clean_database(conn)]
        for side in sides:
            with self._any_connect(side) as conn:
                done += [f"dropped slot {slot} on {side}" for slot in _drop_our_slots(conn)]
        survivor = self._side(keep)
        with self._any_connect(keep) as conn:  # the side that stays takes every client again
            self._unfence(survivor, conn)
        admin = PoolerAdmin(self.stack, "cutover")
        try:
            if promote:
                old_blue = self._blue_node()
                if self.stack.stop_node(old_blue):  # stopped while still fenced: no direct client writes last
                    progress(f"stopped old blue ({old_blue.name})")
                hba, saved = self._hba(self._side("blue"))
                if saved.exists():  # its pg_hba.conf as it was, for whoever starts that data directory again
                    _write_server_file(hba, saved.read_text())
                    saved.unlink()
                done.append(f"stopped old blue {old_blue.name} (data kept in {old_blue.node_dir}; remove it with "
                            f"`rm -rf {old_blue.node_dir}` once sure)")
                self._record_alone(keep)
                admin.point_at(self.stack.layout)  # already green; the ini now says so by the layout's own rule
                lay = self.stack.layout
                following = self._streaming_from_primary()
                for replica in lay.replica_nodes:
                    if replica.name in following:
                        continue  # rebuilt by an earlier run of this finish
                    progress(f"rebuilding replica {replica.name} from {lay.primary.name}")
                    self.stack.rebuild_replica(replica)
                    done.append(f"rebuilt replica {replica.name} from {lay.primary.name}")
            else:
                self._teardown_green(on_stopped=lambda: self._record_alone(keep))
                admin.point_at(self.stack.layout)
                done.append(f"removed green {self.state['green']['name']}")
        finally:
            admin.close()
        left = self.leftovers()
        if left:
            raise CutoverError(f"cutover.finish left replication objects behind: {', '.join(left)}.",
                               "drop them by hand (pg_drop_replication_slot / DROP SUBSCRIPTION), then run "
                               "`invoke cutover.finish` again.")
        with self._admin(survivor.node) as c:  # last: every step above may need it on a fenced side
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(CONTROL_ROLE)))
        self.passfile.unlink(missing_ok=True)
        history = self.dir / f"finished-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
        self.state["finished_at"] = _now()
        self.state["finished"] = "green is primary" if promote else "blue stays primary"
        history.write_text(json.dumps(self.state, indent=2, default=str) + "\n")
        self.state = {"phase": "none"}
        self._save()
        return {"done": done, "primary": self.stack.layout.primary.name, "leftovers": left}

    def _record_alone(self, name: str) -> None:
        """Record side ``name`` as the stack's primary and drop the other side from ``stack.json``
        (it is stopped, or about to be removed). Idempotent."""
        lay = self.stack.layout
        blue, green = self._blue_node(), self._green_node()
        new, gone = (green, blue) if name == "green" else (blue, green)
        rest = tuple(n for n in lay.nodes if n.name not in (blue.name, green.name))
        nodes = (NodeSpec(new.name, "primary", new.port, new.node_dir),) + rest
        if tuple(lay.nodes) != lay.with_roles({}, nodes).nodes:
            self.stack.replace_layout(lay.with_roles({}, nodes))

    def _streaming_from_primary(self) -> set[str]:
        """Names of the replicas streaming from the stack's recorded primary now."""
        try:
            with connect(self.stack.conninfo(), dbname="postgres", autocommit=True, application_name=_APP,
                         connect_timeout=5) as conn:
                return {r[0] for r in conn.execute("SELECT application_name FROM pg_stat_replication "
                                                   "WHERE state = 'streaming'")}
        except OpsError:
            return set()

    def leftovers(self) -> list[str]:
        """Every slot the cutover made (``pgops_(fwd|rev)_*``, and the initial copy's per-table
        ``pg_<subid>_sync_*`` ones), and every pgops publication or subscription in any
        database, on each running side (blue and green)."""
        out = []
        for side in ("blue", "green"):
            if not self.state.get(side) or node_pid(self._side(side).node) is None:
                continue
            name = self._side(side).node.name
            with self._any_connect(side) as conn:
                out += [f"slot {s} on {name}" for (s,) in conn.execute(
                    "SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ %s", (_OUR_SLOTS,))]
                out += [f"subscription {s} on {name}" for (s,) in conn.execute(
                    "SELECT subname FROM pg_subscription WHERE subname IN (%s, %s)", (FWD_SUB, REV_SUB))]
                dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn")]
            for db in dbs:
                with self._any_connect(side, db) as conn:
                    out += [f"publication {p} in {db} on {name}" for (p,) in conn.execute(
                        "SELECT pubname FROM pg_publication WHERE pubname = %s", (PUBLICATION,))]
        return out

    def _teardown_green(self, on_stopped: Callable[[], None] | None = None) -> None:
        """Stop green, call ``on_stopped`` (finish drops green from ``stack.json`` there: never a
        recorded node without a directory, nor a running one unrecorded), remove its directory
        (only once its postmaster is gone), then clean blue."""
        if not self.state.get("green"):
            return
        green = self._green_node()
        if node_pid(green) is not None:
            # DROP SUBSCRIPTION while green runs removes its slot on blue and the initial copy's
            # per-table slots (pg_<subid>_sync_<relid>_<sysid>) an interrupted prepare leaves there
            with self._any_connect("green") as c:
                green_dbs = [r[0] for r in c.execute("SELECT datname FROM pg_database WHERE datallowconn")]
            for db in green_dbs:
                with self._any_connect("green", db) as c:
                    for (sub,) in c.execute("SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM "
                                            "pg_database WHERE datname = current_database())").fetchall():
                        c.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(sub)))
                        try:
                            c.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(sub)))
                        except psycopg.Error:  # blue unreachable: drop locally, blue's slots are dropped below
                            c.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(sql.Identifier(sub)))
                            c.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(sub)))
            self.stack.stop_node(green, "immediate")
        if on_stopped is not None:
            on_stopped()
        if node_pid(green) is None:  # never a data directory under a running postmaster
            shutil.rmtree(green.node_dir, ignore_errors=True)
        with self._any_connect("blue") as conn:
            _drop_our_slots(conn)
            dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn")]
        for db in dbs:
            with self._any_connect("blue", db) as conn:
                _clean_database(conn)


def recover_interrupted(stack: LocalStack) -> list[str]:
    """What any pgops command on the local stack runs first: when a cutover switch's process died
    mid-way (``in_switch`` recorded: the pooler may be PAUSEd, a side fenced, ``stack.json`` and the
    pooler half re-pointed) and no cutover command holds the lock now, finish or undo it
    (:meth:`LocalCutover.recover`), which RESUMEs the pooler. Returns what was done; never raises (a
    running cutover command, or a recovery that could not finish, is logged and left for
    ``invoke cutover.status``)."""
    try:
        recorded = json.loads((stack.layout.state_dir / "cutover" / "state.json").read_text())
    except (OSError, ValueError):
        return []
    if not recorded.get("in_switch"):
        return []
    cut = LocalCutover(stack)
    try:
        with cut._lock("recover"):
            cut.state = cut._read()
            return cut.recover()
    except OpsError as exc:
        log.warning("an interrupted cutover switch was not recovered: %s", exc.message)
        return []


def _green_bindir(version: str | None) -> Path:
    """Server binaries for green: the stack's (blue's) when ``version`` is None, else
    ``/usr/lib/postgresql/<major>/bin`` of an installed major at least blue's. Raises :class:`ConfigError`."""
    from ..errors import ConfigError
    blue = pg_bindir()
    if version is None:
        return blue
    major = str(version).split(".")[0]
    path = Path("/usr/lib/postgresql") / major / "bin"
    problems = []
    if not major.isdigit():
        problems.append(f"--target-engine-version {version} is not a PostgreSQL version")
    elif not (path / "initdb").exists():
        problems.append(f"PostgreSQL {major} is not installed on this machine (no {path}/initdb)")
    elif blue.parent.name.isdigit() and int(major) < int(blue.parent.name):
        problems.append(f"green's version {major} is older than blue's {blue.parent.name}")
    if problems:
        raise ConfigError(problems, f"install it (`apt-get install postgresql-{major}`) or choose an installed "
                                    "version, then run `invoke cutover.prepare` again.")
    return path


def _guards(name: str, details: list[str]) -> list[dict]:
    """Failed guards in the shape :class:`CutoverRefused` carries, one per offender."""
    return [{"name": name, "passed": False, "detail": d} for d in details]


class _OverBudget(Exception):
    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


_SUBSTATE = {"i": "initialize", "d": "copying", "f": "finished copy", "s": "synchronized", "r": "ready"}


def _replicate(dbs: list[str], *, on: tuple[Side, str], off: tuple[Side, str]) -> None:
    """In every database: disable subscription ``off[1]`` on side ``off[0]``, then enable
    ``on[1]`` on ``on[0]`` — replication runs in one direction only (idempotent)."""
    for db in dbs:
        with off[0].connect(db) as o, on[0].connect(db) as n:
            o.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(off[1])))
            n.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(on[1])))


def _pooler_target_port(ini: Path) -> int | None:
    """The port the pooler's ``[databases]`` entry sends clients to (from the ini pgops wrote)."""
    import re
    m = re.search(r"^\* = host=\S+ port=(\d+)", ini.read_text(), re.M)
    return int(m.group(1)) if m else None


def _copy_sequences(src, dst) -> int:
    """Set every sequence on ``dst`` to its state on ``src`` (last_value and is_called), one round
    trip each way. Returns how many were set."""
    names = [r[0] for r in src.execute(_SEQUENCES)]
    if not names:
        return 0
    q = sql.SQL(" UNION ALL ").join(sql.SQL("SELECT {}, last_value, is_called FROM {}").format(
        sql.Literal(n), sql.SQL(n)) for n in names)
    rows = src.execute(q).fetchall()
    dst.execute(sql.SQL("SELECT ") + sql.SQL(", ").join(
        sql.SQL("setval({}::regclass, {}, {})").format(sql.Literal(n), sql.Literal(v), sql.Literal(c))
        for n, v, c in rows))
    return len(rows)


def _clean_database(conn) -> list[str]:
    """In the database ``conn`` is in: drop the cutover's subscriptions (disabled and detached from
    their slots first, so no publisher is contacted — the slots go by :func:`_drop_our_slots`), its
    publication and its fence schema. Returns the subscriptions dropped."""
    dropped = []
    for sub in (FWD_SUB, REV_SUB):
        if conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s AND subdbid = " + _HERE_OID,
                        (sub,)).fetchone():
            ident = sql.Identifier(sub)
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
            dropped.append(sub)
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(PUBLICATION)))
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(FENCE_SCHEMA)))
    return dropped


def _drop_our_slots(conn) -> list[str]:
    """Drop every slot the cutover made on the server ``conn`` reaches (:data:`_OUR_SLOTS`)."""
    slots = [r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ %s",
                                        (_OUR_SLOTS,)).fetchall()]
    for slot in slots:
        _drop_slot(conn, slot)
    return slots


def _drop_slot(conn, slot: str) -> None:
    """Drop ``slot``, first terminating a walsender still holding it."""
    for _ in range(50):
        pid = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if pid is None:
            return
        if pid[0] is not None:
            if not slot.startswith("pgops_"):
                return  # an initial-copy slot someone is reading (another subscriber's copy): not ours to end
            conn.execute("SELECT pg_terminate_backend(%s, 1000)", (pid[0],))
            time.sleep(0.05)
            continue
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        return


def _conninfo(side: Side, db: str) -> str:
    """Connection string a subscription uses: the cutover's role, password from its passfile."""
    from psycopg.conninfo import make_conninfo
    p = side.params
    return make_conninfo(host=p["host"], port=str(p["port"]), user=p["user"], dbname=db, passfile=p["passfile"])


def _last_error(log_file: Path) -> str | None:
    """The last ``ERROR:`` line in the tail of a server log (redacted, at most 300 characters)."""
    from ..dsn import redact
    try:
        with open(log_file, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 65536, 0))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    lines = [ln for ln in tail.splitlines() if "ERROR:" in ln]
    return redact(lines[-1].split("ERROR:", 1)[1].strip())[:300] if lines else None


def _write_server_file(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".pgops-tmp")
    tmp.write_text(text)
    chown_server(tmp, 0o600)
    tmp.replace(path)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
