"""The AWS snapshot drill path against moto: restore into the stack's subnet group and security
groups, tagged pgops:drill, wait, check, and always tear down."""
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from ops.backups import metrics
from ops.drills.rds import DRILL_TAG, run_snapshot_drill
from ops.drills.report import Check


@pytest.fixture
def aws(monkeypatch):
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{az}")["Subnet"]["SubnetId"]
                   for i, az in ((1, "a"), (2, "b"))]
        sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
        rds = boto3.client("rds")
        rds.create_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="app", SubnetIds=subnets)
        rds.create_db_instance(DBInstanceIdentifier="app-primary", DBInstanceClass="db.t4g.micro", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="ops", MasterUserPassword="not-a-real-secret",
                               DBSubnetGroupName="app-db", VpcSecurityGroupIds=[sg])
        rds.create_db_snapshot(DBSnapshotIdentifier="pgops-syncscript-20261121-020000", DBInstanceIdentifier="app-primary")
        yield rds, sg


def instances(rds):
    return {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}


def test_restore_tag_wait_check_teardown(aws):
    rds, sg = aws
    seen = {}

    def checks(target):
        inst = instances(rds)[target.instance_id]
        tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=inst["DBInstanceArn"])["TagList"]}
        seen.update(target=target, tags=tags, subnet=inst["DBSubnetGroup"]["DBSubnetGroupName"],
                    sgs=[g["VpcSecurityGroupId"] for g in inst["VpcSecurityGroups"]])
        return [Check("target endpoint answers", bool(target.host), target.host)]
    reports = []
    r = run_snapshot_drill(rds, "pgops-syncscript-20261121-020000", "syncscript", subnet_group="app-db",
                           security_groups=[sg], instance_class="db.t4g.micro", checks=checks,
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1, on_report=reports.append)
    assert r.passed and r.rto_seconds is not None and reports == [r]
    assert seen["tags"][DRILL_TAG] == "true" and seen["tags"]["pgops:snapshot"] == "pgops-syncscript-20261121-020000"
    assert seen["subnet"] == "app-db" and seen["sgs"] == [sg]
    assert set(instances(rds)) == {"app-primary"}  # torn down


def test_teardown_also_after_a_failed_check(aws):
    rds, sg = aws

    def checks(target):
        raise RuntimeError("lost the connection")
    r = run_snapshot_drill(rds, "pgops-syncscript-20261121-020000", "syncscript", subnet_group="app-db",
                           security_groups=[sg], instance_class="db.t4g.micro", checks=checks,
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1)
    assert not r.passed and "lost the connection" in r.error and r.rto_seconds is None
    assert set(instances(rds)) == {"app-primary"}


def test_drill_metrics(aws):
    cw = boto3.client("cloudwatch")
    metrics.publish_drill_metrics(cw, "syncscript", succeeded=True, rto_seconds=42.0, rpo_seconds=3600,
                                  now=datetime.now(timezone.utc))
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="pgops")["Metrics"]}
    assert names == {"DrillSucceeded", "DrillRTOSeconds", "DrillRPOSeconds"}
