"""The RDS cutover's switchover guardrails and write probe against real PostgreSQL: each thing logical
replication would not carry (a table without a primary key, an unlogged table, a large object) and a
long open transaction make ``run()`` refuse before any switchover call (botocore's Stubber holds no
response for one); a clean database passes, and a full prepare → run → verify with the probe loses
no acknowledged write (RDS API in moto, blue = a real cluster)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from ops.cutover import rds as cut
from ops.cutover.checks import blue_guards
from ops.cutover.probe import PROBE_TABLE
from ops.cutover.rds import RdsCutover
from ops.dsn import connect
from ops.errors import CutoverRefused
from ops.secrets import Secret

pytestmark = [pytest.mark.integration, pytest.mark.aws]

SOURCE = "pgops-it-primary"
ARN = f"arn:aws:rds:eu-west-1:123456789012:db:{SOURCE}"
GREEN = f"{SOURCE}-green-abcdef"
GREEN_ARN = f"arn:aws:rds:eu-west-1:123456789012:db:{GREEN}"
BGD = "bgd-0123456789abcdef"


@pytest.fixture
def blue(pg, dbname):
    """libpq parameters of 'blue': a fresh database on a real cluster (dropped after the test)."""
    return {**pg.conninfo(), "dbname": dbname}


def sql(params, *statements):
    with connect(params, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def ready_client():
    """An rds client whose Stubber answers exactly the reads of a ready deployment, and nothing else:
    a switchover call would fail the test with an unexpected-call error."""
    client = boto3.client("rds", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    d = {"BlueGreenDeploymentIdentifier": BGD, "BlueGreenDeploymentName": cut.deployment_name(SOURCE),
         "Source": ARN, "Target": GREEN_ARN, "Status": "AVAILABLE",
         "Tasks": [{"Name": "CREATING_READ_REPLICA_OF_SOURCE", "Status": "COMPLETED"}],
         "CreateTime": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    stub.add_response("describe_db_instances", {"DBInstances": [
        {"DBInstanceIdentifier": SOURCE, "DBInstanceArn": ARN, "DBInstanceStatus": "available"}]},
        {"DBInstanceIdentifier": SOURCE})
    stub.add_response("describe_blue_green_deployments", {"BlueGreenDeployments": [d]}, {})
    stub.add_response("describe_db_instances", {"DBInstances": [
        {"DBInstanceIdentifier": GREEN, "DBInstanceArn": GREEN_ARN, "DBInstanceStatus": "available"}]},
        {"DBInstanceIdentifier": GREEN})
    stub.activate()
    return client, stub


def test_a_clean_database_passes_every_guard(blue):
    sql(blue, "CREATE TABLE keyed (id int PRIMARY KEY)", "CREATE TABLE full_identity (x int)",
        "ALTER TABLE full_identity REPLICA IDENTITY FULL")
    guards = blue_guards(blue)
    assert [g for g in guards if not g["passed"]] == []
    assert {g["name"] for g in guards} >= {"blue_reachable", "long_transactions", "replication_lag", "primary_keys",
                                           "unlogged_tables", "large_objects"}


@pytest.mark.parametrize("setup, guard, named", [
    (["CREATE TABLE no_key (x int)"], "primary_keys", "public.no_key"),
    (["CREATE TABLE ident_nothing (id int PRIMARY KEY)", "ALTER TABLE ident_nothing REPLICA IDENTITY NOTHING"],
     "primary_keys", "public.ident_nothing"),
    (["CREATE TABLE part (x int) PARTITION BY RANGE (x)"], "primary_keys", "public.part"),
    (["CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)"], "unlogged_tables", "public.scratch"),
    (["SELECT lo_create(0)"], "large_objects", "1 large object"),
])
def test_what_logical_replication_would_not_carry_refuses_before_any_switchover_call(blue, setup, guard, named):
    sql(blue, *setup)
    client, stub = ready_client()
    with pytest.raises(CutoverRefused) as exc:
        RdsCutover(client, SOURCE, conninfo=blue).run(switchover_timeout_s=300)
    stub.assert_no_pending_responses()  # every read answered, switchover never called
    failed = {g["name"]: g for g in exc.value.guards}
    assert guard in failed and named in failed[guard]["detail"] and named in str(exc.value)
    assert "deployment_ready" not in failed


def test_a_long_open_transaction_refuses_before_any_switchover_call(blue):
    sql(blue, "CREATE TABLE t (id int PRIMARY KEY)")
    holder = connect(blue)
    try:
        holder.execute("INSERT INTO t VALUES (1)")  # open transaction, idle in transaction
        pid = holder.info.backend_pid
        client, stub = ready_client()
        with pytest.raises(CutoverRefused) as exc:
            # any open client transaction counts as long here, so the test waits for nothing
            RdsCutover(client, SOURCE, conninfo=blue, long_transaction_s=0).run()
        stub.assert_no_pending_responses()
        failed = {g["name"]: g for g in exc.value.guards}
        assert f"pid {pid}" in failed["long_transactions"]["detail"]
    finally:
        holder.close()


def test_an_unreachable_blue_refuses_and_no_password_reaches_the_message(blue):
    client, stub = ready_client()
    gone = {**blue, "port": 1, "password": Secret("cutover-pw-never-shown")}
    with pytest.raises(CutoverRefused) as exc:
        RdsCutover(client, SOURCE, conninfo=gone).run()
    stub.assert_no_pending_responses()
    assert exc.value.guards[0]["name"] == "blue_reachable"
    assert "cutover-pw-never-shown" not in str(exc.value) + json.dumps(exc.value.guards)


def test_prepare_run_verify_finish_with_the_write_probe(blue, moto_aws):
    rds = boto3.client("rds")
    rds.create_db_instance(DBInstanceIdentifier=SOURCE, DBInstanceClass="db.t4g.micro", Engine="postgres",
                           EngineVersion="16.4", AllocatedStorage=20, MasterUsername="ops",
                           MasterUserPassword="not-a-real-secret")
    c = RdsCutover(rds, SOURCE, conninfo=blue, sleep=lambda s: None)
    assert c.prepare(poll_s=0)["phase"] == "ready"
    st = c.status()
    assert st["phase"] == "ready" and all(g["passed"] for g in st["guards"]), st["guards"]
    report = c.run(budget_ms=10 ** 9, poll_s=0)
    probe = report["probe"]
    assert report["passed"] is True, report
    assert probe["mode"] == "write" and probe["acknowledged"] >= 1 and probe["lost"] == 0
    assert isinstance(report["write_pause_ms"], float) and report["write_pause_ms"] == probe["write_pause_ms"]
    with connect(blue) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {PROBE_TABLE} WHERE run_id = %s", (probe["run_id"],)).fetchone()[0]
    assert rows == probe["acknowledged"]
    v = c.verify()
    assert v["passed"] is True, v
    assert {x["name"] for x in v["checks"]} >= {"switched", "old_blue_kept", "endpoint_takes_writes"}
    assert c.finish()["deleted"] is True
