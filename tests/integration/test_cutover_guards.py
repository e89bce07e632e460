"""Cutover guards that must see what logical replication does not carry (issue 19 §3): every kind of
schema change made on blue after prepare, an apply worker failing in a loop, a prepare of part of
what the pooler serves, refusals shown before the confirmation; and a pooler left PAUSEd by a
killed switch, reported within seconds and lifted by the next command of any kind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ops.cutover.local import LocalCutover
from ops.local.cluster import open_stack
from ops.local.pooler import PoolerAdmin

from .conftest import TEST_SETTINGS, destroy, free_base_port, invoke, state_dir

pytestmark = pytest.mark.integration


def _shop_stack():
    stack = open_stack(state_dir() / "stack", port=free_base_port(1), replicas=0, extra_settings=TEST_SETTINGS)
    stack.up()
    with psycopg.connect(**stack.conninfo(), autocommit=True) as c:
        c.execute("CREATE DATABASE shop")
    with psycopg.connect(**{**stack.conninfo(), "dbname": "shop"}, autocommit=True) as c:
        c.execute("CREATE TYPE mood AS ENUM ('happy', 'calm')")
        c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, mood mood)")
        c.execute("CREATE TABLE audit (id bigserial PRIMARY KEY, order_id bigint)")
        c.execute("INSERT INTO orders (note, mood) SELECT 'seed', 'calm' FROM generate_series(1, 100)")
    return stack


@pytest.fixture(scope="module")
def prepared():
    stack = _shop_stack()
    cut = LocalCutover(stack)
    cut.prepare()
    yield stack, {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}
    destroy(open_stack(stack.layout.state_dir))


def _guards(stack) -> dict[str, dict]:
    return {g["name"]: g for g in LocalCutover(open_stack(stack.layout.state_dir)).status()["guards"]}


def _blue(stack, sql_text: str) -> None:
    with psycopg.connect(**{**stack.conninfo(), "dbname": "shop"}, autocommit=True) as c:
        c.execute(sql_text)


#: (change on blue, what the guard must name, the change undone)
SCHEMA_CHANGES = [
    ("ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'walk-in'", "DEFAULT 'walk-in'",
     "ALTER TABLE orders ALTER COLUMN note DROP DEFAULT"),
    ("CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit (order_id) "
     "VALUES (NEW.id); RETURN NEW; END$$; CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW "
     "EXECUTE FUNCTION audit_order()", "orders_audit",
     "DROP TRIGGER orders_audit ON orders; DROP FUNCTION audit_order()"),
    ("CREATE VIEW calm_orders AS SELECT id FROM orders WHERE mood = 'calm'", "calm_orders", "DROP VIEW calm_orders"),
    ("CREATE POLICY own_rows ON orders USING (note <> '')", "own_rows", "DROP POLICY own_rows ON orders"),
    ("GRANT SELECT ON orders TO PUBLIC", "GRANT SELECT", "REVOKE SELECT ON orders FROM PUBLIC"),
    ("ALTER TABLE orders ADD CONSTRAINT note_short CHECK (length(note) < 100)", "note_short",
     "ALTER TABLE orders DROP CONSTRAINT note_short"),
]


@pytest.mark.parametrize("change, named, undo", SCHEMA_CHANGES, ids=[c[1] for c in SCHEMA_CHANGES])
def test_a_schema_change_on_blue_after_prepare_fails_schema_equal(prepared, change, named, undo):
    """Each change is one that logical replication does not carry and the old column/key/index
    fingerprint did not see; undone, the guard passes again (prepare's dump/restore noise is no
    difference)."""
    stack, _ = prepared
    assert _guards(stack)["schema_equal"]["passed"], _guards(stack)["schema_equal"]
    _blue(stack, change)
    try:
        g = _guards(stack)["schema_equal"]
        assert not g["passed"] and named in g["detail"] and "only on blue" in g["detail"], g
    finally:
        _blue(stack, undo)
    assert _guards(stack)["schema_equal"]["passed"]


def _until(pred, what: str, limit_s: float = 60):
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_an_enum_value_added_on_blue_fails_schema_equal_and_replicating_until_green_has_it(prepared):
    """An enum value added on blue and used: green's apply worker fails on every row in a loop. Both
    guards fail (and so `run` refuses instead of aborting on its budget); adding the value on green
    too lets the worker catch up, and the guards pass again."""
    stack, env = prepared
    _blue(stack, "ALTER TYPE mood ADD VALUE 'sad'")
    _blue(stack, "INSERT INTO orders (note, mood) VALUES ('x', 'sad')")
    _until(lambda: not _guards(stack)["replicating"]["passed"], "the apply worker's errors were never reported")
    g = _guards(stack)
    assert "keeps failing" in g["replicating"]["detail"] and "'sad'" in g["schema_equal"]["detail"], g
    run = invoke(["cutover.run", "--yes"], env)
    assert run.returncode == 10 and "keeps failing" in run.stderr and "larger budget" not in run.stderr, run.stderr
    cut = LocalCutover(open_stack(stack.layout.state_dir))
    with cut._side("green").connect("shop") as c:
        c.execute("ALTER TYPE mood ADD VALUE 'sad'")
    _until(lambda: all(g["passed"] for g in _guards(stack).values()), "the guards never passed after the fix")


def test_a_pooler_paused_by_anyone_is_reported_within_seconds_not_hung(prepared):
    """`local.status` and `health` while the pooler is PAUSEd (here by hand): each ends in seconds,
    naming the pooler; on the old code each waited for the query through it (query_wait_timeout,
    120 s, then a traceback)."""
    stack, env = prepared
    admin = PoolerAdmin(stack, "test")
    admin.pause(10)
    try:
        st = invoke(["local.status"], env, timeout=60)
        assert st.returncode == 3 and "holds every query" in st.stderr, st.stdout + st.stderr
        sql_root = stack.layout.state_dir.parent / "sql"
        (sql_root / "shop" / "migrations").mkdir(parents=True, exist_ok=True)
        h = invoke(["health", "--format", "json", "--sql-root", str(sql_root)], env, timeout=60)
        assert "Traceback" not in h.stderr, h.stderr
        pooler = [c for c in json.loads(h.stdout)["checks"] if c["id"] == "pooler"]
        assert pooler and pooler[0]["status"] == "critical" and "holds queries" in pooler[0]["detail"], h.stdout
    finally:
        admin.resume()
        admin.close()


def test_a_switch_killed_in_pause_is_undone_by_the_next_command_of_any_kind(prepared):
    """kill -9 of `cutover.run` while its PAUSE waits behind an open transaction, then `local.status`
    (not a cutover command): it recovers the switch (pooler resumed, blue primary) and exits 0."""
    stack, env = prepared
    sd = stack.layout.state_dir
    holder = psycopg.connect(**{**stack.pooler_conninfo(), "dbname": "shop"}, prepare_threshold=None)
    holder.execute("INSERT INTO orders (note) VALUES ('held')")
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}, **env}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "cutover.run", "--yes", "--budget-ms",
                             "60000"], cwd=Path(__file__).resolve().parents[2], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _until(lambda: "in_switch" in (sd / "cutover" / "state.json").read_text() or proc.poll() is not None,
           "the switch never started")
    time.sleep(0.5)  # PAUSE sent, waiting for the held transaction
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    holder.commit()
    holder.close()
    st = invoke(["local.status"], env, timeout=60)
    assert st.returncode == 0 and "recovered an interrupted cutover switch" in st.stderr, st.stdout + st.stderr
    got = []

    def write():
        with psycopg.connect(**{**stack.pooler_conninfo(), "dbname": "shop"}, autocommit=True,
                             prepare_threshold=None) as conn:
            got.append(conn.execute("INSERT INTO orders (note) VALUES ('after') RETURNING id").fetchone()[0])
    t = threading.Thread(target=write, daemon=True)
    t.start()
    t.join(30)
    assert got, "the pooler is still paused"
    assert LocalCutover(open_stack(sd)).phase == "ready"


def test_prepare_refuses_a_subset_and_a_keyless_table_in_its_plan_before_asking():
    """`cutover.prepare --db shop` while the pooler also serves `postgres` (and every other database):
    refused in the plan (exit 10, naming what would be left behind), not after a confirmation — the
    old code carried shop alone and the switch made every other database vanish behind the pooler.
    A keyless table is refused there too."""
    stack = _shop_stack()
    try:
        env = {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}
        sub = invoke(["cutover.prepare", "--db", "shop"], env)  # no --yes, no terminal
        assert sub.returncode == 10 and "postgres" in sub.stderr and "without --db" in sub.stderr, sub.stderr
        _blue(stack, "CREATE TABLE shop_log (line text)")
        keyless = invoke(["cutover.prepare"], env)
        assert keyless.returncode == 10 and "public.shop_log has no primary key" in keyless.stderr, keyless.stderr
        assert LocalCutover(stack).phase == "none" and not list(stack.layout.state_dir.glob("green*"))
    finally:
        destroy(stack)
