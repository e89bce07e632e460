"""``invoke health`` on an AWS stack also judges what SQL cannot see — storage, CPU, EBS burst
balance — from CloudWatch (moto), with the thresholds the alarms use."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest

from ops.health.checks import judge
from ops.health.cloudwatch import instance_measurements

pytestmark = pytest.mark.aws


def put(cw, instance: str, metric: str, value: float, at: datetime) -> None:
    cw.put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
        "Timestamp": at, "Value": value}])


@pytest.mark.parametrize("free_gib, cpu, balance, expected", [
    (10.0, 20.0, 95.0, {"disk_usage": "ok", "cpu": "ok", "ebs_burst_spent": "ok"}),
    (3.0, 85.0, 15.0, {"disk_usage": "warning", "cpu": "warning", "ebs_burst_spent": "warning"}),
    (1.0, 97.0, 5.0, {"disk_usage": "critical", "cpu": "critical", "ebs_burst_spent": "critical"}),
])
def test_cloudwatch_metrics_are_judged_against_the_alarm_thresholds(rds_network, free_gib, cpu, balance, expected):
    cw = boto3.client("cloudwatch")
    now = datetime.now(timezone.utc)
    inst = rds_network.primary  # AllocatedStorage=20 GiB
    put(cw, inst, "FreeStorageSpace", free_gib * 2**30, now - timedelta(seconds=90))
    put(cw, inst, "CPUUtilization", cpu, now - timedelta(seconds=90))
    put(cw, inst, "EBSByteBalance%", balance, now - timedelta(seconds=90))
    put(cw, inst, "EBSIOBalance%", 99.0, now - timedelta(seconds=90))
    got = {m.id: judge(m) for m in instance_measurements(rds_network.rds, cw, [("primary", inst)], now)}
    assert {k: r.status for k, r in got.items()} == expected
    assert got["disk_usage"].value == pytest.approx(1 - free_gib / 20)
    assert inst in got["cpu"].detail and got["cpu"].runbook == "runbooks/rds-cpu-high.md"


def test_no_datapoint_is_unknown_not_a_guess(rds_network):
    cw = boto3.client("cloudwatch")
    now = datetime.now(timezone.utc)
    put(cw, rds_network.primary, "CPUUtilization", 50.0, now - timedelta(hours=2))  # too old for the window
    got = {m.id: judge(m) for m in instance_measurements(rds_network.rds, cw, [("primary", rds_network.primary)], now)}
    assert got["disk_usage"].status == "unknown" and got["cpu"].status == "unknown"
    assert "no CPUUtilization datapoint" in got["cpu"].detail
    assert "ebs_burst_spent" not in got  # an instance without burst credits reports no balance
