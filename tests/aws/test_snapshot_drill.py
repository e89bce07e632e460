"""The AWS snapshot drill path against moto: restore into the stack's subnet group and security
groups, tagged pgops:drill, wait, check, and always tear down."""
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
    r = run_snapshot_drill(rds, "pgops-syncscript-20261121-020000", "syncscript", subnet_group="pgops-dev",
                           security_groups=[sg], instance_class="db.t4g.micro", checks=checks,
                           now=lambda: datetime.now(timezone.utc), wait_delay_s=1, on_report=reports.append)
    assert r.passed and r.rto_seconds is not None and reports == [r]
    assert seen["tags"][DRILL_TAG] == "true" and seen["tags"]["pgops:snapshot"] == "pgops-syncscript-20261121-020000"
    assert seen["subnet"] == "pgops-dev" and seen["sgs"] == [sg]
    assert set(instances(rds)) == {"pgops-dev-primary"}  # torn down


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
