"""``invoke deploy`` end to end on a fresh local stack, as the README's first line runs it."""
from __future__ import annotations

import json

from ops.dsn import connect
from ops.local.cluster import open_stack

from .conftest import destroy, free_base_port, invoke, state_dir


def test_deploy_brings_everything_to_newest_and_is_idempotent(tmp_path):
    sd = state_dir() / "stack"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(2))}
    try:
        first = invoke(["deploy", "--json"], env)
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)
        rows = {r["database"]: r for r in report["databases"]}
        assert rows["syncscript"]["version_after"] == 6 and len(rows["syncscript"]["migrations_applied"]) == 6
        assert rows["describeit"]["version_after"] == 1 and len(rows["describeit"]["migrations_applied"]) == 2
        assert rows["futuresync"]["version_after"] == 4 and len(rows["futuresync"]["migrations_applied"]) == 4
        assert rows["fluxstudio"]["version_after"] == 4 and len(rows["fluxstudio"]["migrations_applied"]) == 4
        # advent: legacy baseline and the six v2 migrations side by side; the contract waits for validation
        assert rows["advent"]["version_after"] == 6 and len(rows["advent"]["migrations_applied"]) == 7
        assert [w["version"] for w in rows["advent"]["waiting_for_validation"]] == [7]
        assert all(r["created"] and r["checks_passed"] == r["checks_total"] > 0 for r in rows.values())
        assert report["replicas_behind"] == []

        stack = open_stack(sd)
        for db in ("syncscript", "describeit", "futuresync", "fluxstudio", "advent"):
            with connect(stack.conninfo(), dbname=db) as p, connect(stack.conninfo(stack.layout.replica_nodes[0]), dbname=db) as r:
                q = "SELECT version, checksum FROM pgops.migrations ORDER BY version"
                assert p.execute(q).fetchall() == r.execute(q).fetchall() != []

        def events():
            with connect(stack.conninfo(), dbname="syncscript") as conn:
                return conn.execute("SELECT count(*) FROM pgops.migration_events").fetchone()[0]
        before = events()
        second = invoke(["deploy", "--json"], env)
        assert second.returncode == 0, second.stderr
        again = json.loads(second.stdout)
        assert all(r["migrations_applied"] == [] and not r["created"] for r in again["databases"])
        assert all(r["pre_deploy_backup"] is None for r in again["databases"])  # a waiting contract needs no backup
        assert events() == before  # a deploy that applies nothing writes nothing

        table = invoke(["deploy"], env)
        assert table.returncode == 0 and "syncscript" in table.stdout and "6 → 6" in table.stdout
        assert "6 → 6 (7 waiting for validation)" in table.stdout and "advent: 7_contract_drop_legacy is waiting" in table.stdout
    finally:
        destroy(open_stack(sd))


def test_pre_deploy_backup_then_failed_deploy_applies_nothing_half(tmp_path):
    root = tmp_path / "sql" / "shop" / "migrations"
    (root / "001_orders").mkdir(parents=True)
    (root / "001_orders" / "up.sql").write_text("CREATE TABLE orders (id int PRIMARY KEY);\n")
    sd = state_dir() / "stack"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(1))}
    common = ["--sql-root", str(tmp_path / "sql")]
    try:
        assert invoke(["local.up", "--replicas", "0"], env).returncode == 0
        first = json.loads(invoke(["deploy", *common, "--json"], env).stdout)
        assert first["databases"][0]["pre_deploy_backup"] is None  # created just now: nothing to back up
        (root / "002_lines").mkdir()
        (root / "002_lines" / "up.sql").write_text("CREATE TABLE lines (id int);\n")
        second = json.loads(invoke(["deploy", *common, "--json"], env).stdout)
        backup_id = second["databases"][0]["pre_deploy_backup"]
        listed = json.loads(invoke(["backup.list", "--db", "shop", "--json"], env).stdout)
        assert [b["id"] for b in listed] == [backup_id] and listed[0]["ledger_version"] == 1
        with connect(open_stack(sd).conninfo(), dbname="shop") as conn:
            detail = conn.execute("SELECT detail FROM pgops.migration_events WHERE event = 'up' AND version = 2").fetchone()[0]
            assert f"pre-deploy backup {backup_id}" in detail

        (root / "003_broken").mkdir()
        (root / "003_broken" / "up.sql").write_text("CREATE TABLE more (id int);\nALTER TABLE nope ADD COLUMN x int;\n")
        res = invoke(["deploy", *common], env)
        assert res.returncode == 5
        assert "'shop'" in res.stderr and "003_broken" in res.stderr and "nope" in res.stderr
        assert "Traceback" not in res.stderr
        with connect(open_stack(sd).conninfo(), dbname="shop") as conn:
            assert conn.execute("SELECT version FROM pgops.migrations ORDER BY 1").fetchall() == [(1,), (2,)]
            assert conn.execute("SELECT to_regclass('more')").fetchone()[0] is None
        assert len(json.loads(invoke(["backup.list", "--db", "shop", "--json"], env).stdout)) == 2
    finally:
        destroy(open_stack(sd))
