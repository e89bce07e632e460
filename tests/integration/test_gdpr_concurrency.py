"""``gdpr.erase`` while the application keeps writing for the subject (issue 20 §4), on real PostgreSQL with
the writers going through the stack's pooler (transaction pooling, as applications connect).

The oracle: every write the writer makes records, in the same statement, its transaction id and the
statement's snapshot (``RETURNING pg_current_xact_id(), pg_current_snapshot()``). A row of the subject that
is still there after the erasure committed is legitimate only when its transaction's first write ran on a
snapshot that already saw the erasure's commit (``pg_visible_in_snapshot`` of the erasure's xid, read from
its ``GDPR_ERASE`` audit record) — anything else was written before the commit and should be gone. Rows
are matched to writer transactions by ``xmin``; a row whose ``xmin`` is no writer's is from the set-up.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Self

import psycopg
import pytest

from ops.dsn import connect
from ops.gdpr import engine
from ops.settings import DEFAULT_SQL_ROOT

from .conftest import invoke, query
from .test_futuresync import fs, setup_tenants, uid  # noqa: F401 - fs is a fixture

pytestmark = pytest.mark.integration
SUBJECT = uid(2)
OWN = engine.load_ownership(DEFAULT_SQL_ROOT, "futuresync")
ANON_SESSIONS = 3000  # anonymous events the "claim" writer attaches to the subject, one session a statement
EXISTS = "EXISTS (SELECT 1 FROM users WHERE id = %(u)s::uuid)"  # an application writes for users that exist
STAMP = "RETURNING pg_current_xact_id()::text, pg_current_snapshot()::text"
INSERT_EVENT = ("INSERT INTO analytics_events (user_id, event_name, occurred_at) SELECT %(u)s::uuid, 'page.view', "
                f"now() WHERE {EXISTS} {STAMP}")
BLIND_INSERT = f"INSERT INTO analytics_events (user_id, event_name, occurred_at) VALUES (%(u)s, 'page.view', now()) {STAMP}"
TOUCH_USER = f"UPDATE users SET display_name = 'seen ' || clock_timestamp()::text WHERE id = %(u)s {STAMP}"
CLAIM = (f"UPDATE analytics_events SET user_id = %(u)s WHERE session_id = %(s)s AND user_id IS NULL AND {EXISTS} {STAMP}")


class Writer:
    """Application clients through the pooler, one thread and connection each, every one running its
    ``client(writer, conn, n)`` in a loop until stopped; each write's (xid8, snapshot) is recorded, the first
    one per transaction kept."""

    def __init__(self, params: dict, db: str, clients: list[Callable]):
        self.params, self.db = {**params, "prepare_threshold": None}, db
        self.stop, self.first_write, self.errors, self.writes = threading.Event(), {}, [], 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in clients]

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        while self.writes < 20:  # the application is writing for the subject before the erasure starts
            time.sleep(0.01)
            assert all(t.is_alive() for t in self.threads), self.errors
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def record(self, cur) -> None:
        with self.lock:
            for xid, snap in cur.fetchall():
                self.first_write.setdefault(int(xid) % 2**32, (int(xid), snap))
                self.writes += 1

    def run(self, client: Callable) -> None:
        n = 0
        with connect(self.params, dbname=self.db, autocommit=True, application_name="futuresync-web") as conn:
            while not self.stop.is_set():
                n += 1
                try:
                    client(self, conn, n)
                except psycopg.errors.DeadlockDetected as exc:  # the erasure's locks and the writer's: one loses
                    self.errors.append(type(exc).__name__)


def steady(w: Writer, conn, n: int) -> None:
    """Autocommit inserts, one event per transaction, back to back."""
    w.record(conn.execute(INSERT_EVENT, {"u": SUBJECT}))


def long_transaction(w: Writer, conn, n: int) -> None:
    """Five inserts in one transaction, 20 ms apart, then commit."""
    with conn.transaction():
        for _ in range(5):
            w.record(conn.execute(INSERT_EVENT, {"u": SUBJECT}))
            time.sleep(0.02)


def touch_user(w: Writer, conn, n: int) -> None:
    """An update of the subject's user row (the audit trigger logs each)."""
    w.record(conn.execute(TOUCH_USER, {"u": SUBJECT}))


def claim(w: Writer, conn, n: int) -> None:
    """An update attaching a session's anonymous events to the subject, as at sign-in."""
    w.record(conn.execute(CLAIM, {"u": SUBJECT, "s": uid(10_000 + n % ANON_SESSIONS)}))


def blind(w: Writer, conn, n: int) -> None:
    """Inserts that never check the user exists (an event pipeline): they go on after the erasure."""
    w.record(conn.execute(BLIND_INSERT, {"u": SUBJECT}))


PATTERNS = {"steady-inserts": [steady, steady], "long-transaction": [long_transaction],
            "updates": [touch_user, claim], "blind-inserts": [blind]}


def seed(params, db) -> None:
    setup_tenants(params, db)
    query(params, db, "INSERT INTO analytics_events (user_id, session_id, event_name, occurred_at) "
                      "SELECT NULL, ('00000000-0000-0000-0000-' || lpad(to_hex(10000 + g), 12, '0'))::uuid, "
                      "'page.view', now() FROM generate_series(0, %s) g", (ANON_SESSIONS - 1,))


def erase_xid(params, db) -> int | None:
    rows = query(params, db, "SELECT txid FROM audit_log WHERE operation = 'GDPR_ERASE'")
    assert len(rows) <= 1
    return rows[0][0] if rows else None


def rows_from_before(params, db, xid: int, first_write: dict) -> list[tuple[str, int]]:
    """(table, xmin) of every row of the subject (an export's routes) written before the erasure committed."""
    bad = []
    with connect(params, dbname=db, autocommit=True) as conn:
        conn.execute("SET row_security = off")
        for table, rs in engine.graph(conn, OWN).items():
            q = psycopg.sql.SQL("SELECT xmin::text FROM {} WHERE {}").format(engine._ident(table),
                                                                          engine.table_pred(OWN, rs))
            for (xmin,) in conn.execute(q, {"uid": SUBJECT}).fetchall():
                seen = first_write.get(int(xmin))
                after = seen is not None and conn.execute(
                    "SELECT pg_visible_in_snapshot(%s::text::xid8, %s::pg_snapshot)", (str(xid), seen[1])).fetchone()[0]
                if not after:
                    bad.append((table, int(xmin)))
    return bad


def dsn(params: dict, port: int, db: str) -> str:
    return f"host=127.0.0.1 port={port} user={params['user']} passfile={params['passfile']} dbname={db}"


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_erase_under_a_concurrent_writer_leaves_nothing_written_before_its_commit(pg, params, fs, pattern):  # noqa: F811
    seed(params, fs)
    with Writer(pg.pooler_conninfo(), fs, PATTERNS[pattern]) as writer:
        res = invoke(["gdpr.erase", "--dsn", dsn(params, params["port"], fs), "--db", "futuresync", "--user-id", SUBJECT,
                      "--yes", "--lock-timeout", "10"])
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "add an erase rule" not in out, out
    xid = erase_xid(params, fs)
    assert xid is not None, f"the erasure did not commit (exit {res.returncode}): {out}"
    assert rows_from_before(params, fs, xid, writer.first_write) == []  # nothing from before the commit is left
    if pattern == "blind-inserts":  # it goes on writing for the erased user: said, and not exit 0 while rows exist
        left = engine.export(params, fs, OWN, SUBJECT).total
        # exit 0 only when the tool's own export found nothing (the writer may insert again before it is stopped)
        assert res.returncode == 0 or (res.returncode == 12 and "written after the commit" in out), out
        again = invoke(["gdpr.erase", "--dsn", dsn(params, params["port"], fs), "--db", "futuresync", "--user-id",
                        SUBJECT, "--yes"])  # the writer stopped: what it wrote after the commit goes too
        assert again.returncode == (0 if left else 12), again.stdout + again.stderr
        assert engine.export(params, fs, OWN, SUBJECT).total == 0
    else:  # writers that stop once the user is gone: the erasure waits for them, commits, and finds nothing
        assert res.returncode == 0, out
        assert engine.export(params, fs, OWN, SUBJECT).total == 0
        assert "fresh export finds nothing" in out


HOLDS = {"insert": (BLIND_INSERT, "public.analytics_events", "a concurrent writer kept inserting rows for user {u} into {t}"),
         "update": (TOUCH_USER, "public.users", "a concurrent writer kept inserting rows for user {u} into {t}"),
         "row-lock": ("SELECT id FROM users WHERE id = %(u)s FOR UPDATE", "public.users",
                      "a concurrent session kept rows of user {u} in {t} locked")}


@pytest.mark.parametrize("held", sorted(HOLDS))
def test_erase_gives_up_on_a_writer_that_holds_its_lock_and_erases_nothing(pg, params, fs, held):  # noqa: F811
    statement, table, cause = HOLDS[held]
    seed(params, fs)
    holder = connect({**pg.pooler_conninfo(), "prepare_threshold": None}, dbname=fs, application_name="stuck-worker")
    try:
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        holder.execute(statement, {"u": SUBJECT})  # and the transaction stays open until the erasure gave up
        before = engine.export(params, fs, OWN, SUBJECT)
        res = invoke(["gdpr.erase", "--dsn", dsn(params, params["port"], fs), "--db", "futuresync", "--user-id",
                      SUBJECT, "--yes", "--lock-timeout", "0.3", "--retries", "2"])
        after = engine.export(params, fs, OWN, SUBJECT)
    finally:
        holder.rollback()
        holder.close()
    err = " ".join(res.stderr.split())
    assert res.returncode == 12, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "add an erase rule" not in err
    assert cause.format(u=SUBJECT, t=table) in err, err
    assert f"pid {pid} (application 'stuck-worker'" in err and "3 attempt(s) of lock_timeout 0.3 s" in err, err
    assert "nothing was erased" in err and "stop the writer or retry: `invoke gdpr.erase" in err, err
    assert f"--user-id {SUBJECT}" in err and "--yes --lock-timeout 0.6 --retries 2`" in err, err
    assert erase_xid(params, fs) is None and after.rows == before.rows  # rolled back: every row still there


@pytest.mark.parametrize("held", sorted(HOLDS))
def test_erase_retries_until_a_held_lock_is_released_then_erases_everything(pg, params, fs, held):  # noqa: F811
    """The same holders, released after about a second: the attempts that timed out were rolled back and
    the erasure (its locks, and the steps that ran before a row lock stopped one) is run again, then commits."""
    statement, _, _ = HOLDS[held]
    seed(params, fs)
    holder = connect({**pg.pooler_conninfo(), "prepare_threshold": None}, dbname=fs, application_name="slow-worker")
    holder.execute(statement, {"u": SUBJECT})
    release = threading.Timer(1.0, holder.commit)
    release.start()
    try:
        res = invoke(["gdpr.erase", "--dsn", dsn(params, params["port"], fs), "--db", "futuresync", "--user-id",
                      SUBJECT, "--yes", "--json", "--lock-timeout", "0.3", "--retries", "8"])
    finally:
        release.join()
        holder.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["lock_attempts"] >= 2  # it did wait out the holder
    assert engine.export(params, fs, OWN, SUBJECT).total == 0 and erase_xid(params, fs) is not None
