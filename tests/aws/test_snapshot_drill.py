"""The AWS snapshot drill path against moto: restore into the stack's subnet group and security
groups, tagged pgops:drill, wait, check, and always tear down. The checks are real (each can fail):
a passing drill and a failing one are both shown."""
from datetime import datetime, timezone

import boto3
import pytest

from ops.backups import metrics
from ops.drills.rds import DRILL_TAG, run_snapshot_drill
from ops.drills.report import Check


@pytest.fixture
def aws(rds_network):
    rds_network.rds.create_db_snapshot(DBSnapshotIdentifier="pgops-syncscript-20261121-020000",
                                       DBInstanceIdentifier=rds_network.primary)
    return rds_network.rds, rds_network.security_group


def instances(rds):
    return {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}


def restored_copy_checks(rds, snapshot_id, subnet_group, security_groups):
    """Real checks of the restored instance against the snapshot it claims to come from and the
    stack's rules (what the RDS API can prove; moto serves no PostgreSQL for the data checks):
    same engine version, storage and database as the snapshot's source, encrypted at rest, private,
    in the stack's subnet group and security groups, tagged as a drill of that snapshot. Each check
    can fail."""
    snap = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]
    source = instances(rds)[snap["DBInstanceIdentifier"]]

    def checks(target):
        inst = instances(rds)[target.instance_id]
        tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=inst["DBInstanceArn"])["TagList"]}
        endpoint = inst["Endpoint"]
        return [
            Check("endpoint is the restored instance's", (endpoint["Address"], int(endpoint["Port"])) ==
                  (target.host, target.port), f"{target.host}:{target.port}"),
            Check("same engine version as the snapshot", inst["EngineVersion"] == snap["EngineVersion"],
                  f"{inst['EngineVersion']} vs {snap['EngineVersion']}"),
            Check("same allocated storage as the snapshot", inst["AllocatedStorage"] == snap["AllocatedStorage"],
                  f"{inst['AllocatedStorage']} GiB"),
            Check("database present", inst.get("DBName") == source.get("DBName"), str(inst.get("DBName"))),
            Check("encrypted at rest", inst.get("StorageEncrypted") is True, str(inst.get("StorageEncrypted"))),
            Check("not publicly accessible", inst.get("PubliclyAccessible") is not True,
                  str(inst.get("PubliclyAccessible"))),
            Check("in the stack's subnet group", inst["DBSubnetGroup"]["DBSubnetGroupName"] == subnet_group,
                  inst["DBSubnetGroup"]["DBSubnetGroupName"]),
            Check("in the stack's security groups",
                  [g["VpcSecurityGroupId"] for g in inst["VpcSecurityGroups"]] == security_groups, ""),
            Check("tagged as a drill of this snapshot",
                  tags.get(DRILL_TAG) == "true" and tags.get("pgops:snapshot") == snapshot_id, str(tags)),
        ]
    return checks


def encrypted_primary(rds_network, name="pgops-dev-encrypted"):
    rds_network.rds.create_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine="postgres", EngineVersion="15.4",
        AllocatedStorage=20, MasterUsername="ops", MasterUserPassword="not-a-real-secret", DBName="syncscript",
        StorageEncrypted=True, DBSubnetGroupName=rds_network.subnet_group,
        VpcSecurityGroupIds=[rds_network.security_group])
    rds_network.rds.create_db_snapshot(DBSnapshotIdentifier="pgops-syncscript-enc", DBInstanceIdentifier=name)
    return "pgops-syncscript-enc"


def test_a_passing_snapshot_drill(rds_network):
    rds, sg = rds_network.rds, rds_network.security_group
    snap = encrypted_primary(rds_network)
    reports = []
    r = run_snapshot_drill(rds, snap, "syncscript", subnet_group="pgops-dev", security_groups=[sg],
                           instance_class="db.t4g.micro", checks=restored_copy_checks(rds, snap, "pgops-dev", [sg]),
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1, on_report=reports.append)
    assert r.passed, [(c.name, c.detail) for c in r.checks if not c.passed] or r.error
    assert len(r.checks) == 10 and all(c.passed for c in r.checks)  # restore + the nine checks, each run
    assert r.rto_seconds is not None and r.error == "" and reports == [r]
    assert set(instances(rds)) == {"pgops-dev-primary", "pgops-dev-encrypted"}  # torn down


def test_a_failing_snapshot_drill_names_the_check_and_tears_down(aws):
    rds, sg = aws  # the fixture's primary is not encrypted at rest: its snapshot's copy fails that check
    snap = "pgops-syncscript-20261121-020000"
    r = run_snapshot_drill(rds, snap, "syncscript", subnet_group="pgops-dev", security_groups=[sg],
                           instance_class="db.t4g.micro", checks=restored_copy_checks(rds, snap, "pgops-dev", [sg]),
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1)
    assert not r.passed and r.rto_seconds is None
    assert [c.name for c in r.checks if not c.passed] == ["encrypted at rest"]
    assert "Restore drill FAILED" in r.to_markdown() and "| encrypted at rest | FAIL |" in r.to_markdown()
    assert set(instances(rds)) == {"pgops-dev-primary"}


def test_teardown_also_after_a_failed_check(aws):
    rds, sg = aws

    def checks(target):
        raise RuntimeError("lost the connection")
    r = run_snapshot_drill(rds, "pgops-syncscript-20261121-020000", "syncscript", subnet_group="pgops-dev",
                           security_groups=[sg], instance_class="db.t4g.micro", checks=checks,
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1)
    assert not r.passed and "lost the connection" in r.error and r.rto_seconds is None
    assert set(instances(rds)) == {"pgops-dev-primary"}


def test_drill_metrics(aws):
    cw = boto3.client("cloudwatch")
    metrics.publish_drill_metrics(cw, "syncscript", succeeded=True, rto_seconds=42.0, rpo_seconds=3600,
                                  now=datetime.now(timezone.utc))
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="pgops")["Metrics"]}
    assert names == {"DrillSucceeded", "DrillRTOSeconds", "DrillRPOSeconds"}
