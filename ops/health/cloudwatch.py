"""What SQL cannot see on an AWS stack, from CloudWatch: storage, CPU and EBS burst balance per RDS
instance, as health measurements judged like every other check.

Sources: AWS "Recommended alarms" for Amazon RDS (FreeStorageSpace against allocated storage,
CPUUtilization, EBSByteBalance% / EBSIOBalance%) — the same metrics the stack's alarms watch
(``ops/thresholds.py``). Each is the newest datapoint of the last ``window_s`` seconds; none is
"unknown" (the check could not be measured), never a guess.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from .checks import Measurement

NAMESPACE = "AWS/RDS"


def _latest(cloudwatch, instance: str, metric: str, stat: str, now: datetime, window_s: int) -> float | None:
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance}],
        StartTime=now - timedelta(seconds=window_s), EndTime=now, Period=60, Statistics=[stat])["Datapoints"]
    if not points:
        return None
    return float(max(points, key=lambda p: p["Timestamp"])[stat])


def instance_measurements(rds, cloudwatch, nodes: list[tuple[str, str]], now: datetime,
                          window_s: int = 600) -> list[Measurement]:
    """``disk_usage`` (1 − FreeStorageSpace / AllocatedStorage, a fraction), ``cpu`` (CPUUtilization,
    %) and ``ebs_burst_spent`` (100 − the lower of EBSByteBalance% and EBSIOBalance%, %; instances
    without burst credits report neither and are skipped) per ``(node name, instance id)``.
    ``now``: aware UTC datetime. boto3 errors propagate (the task maps them)."""
    out = []
    for node, instance in nodes:
        described = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        allocated = float(described.get("AllocatedStorage") or 0) * 2**30
        free = _latest(cloudwatch, instance, "FreeStorageSpace", "Minimum", now, window_s)
        if free is None or not allocated:
            out.append(Measurement("disk_usage", node, None, f"{instance}: no FreeStorageSpace datapoint in the last "
                                                             f"{window_s} s"))
        else:
            out.append(Measurement("disk_usage", node, max(0.0, 1 - free / allocated),
                                   f"{instance}: {free / 2**30:.1f} GiB free of {allocated / 2**30:.0f} GiB allocated"))
        cpu = _latest(cloudwatch, instance, "CPUUtilization", "Average", now, window_s)
        out.append(Measurement("cpu", node, cpu, f"{instance}: CPUUtilization" if cpu is not None else
                               f"{instance}: no CPUUtilization datapoint in the last {window_s} s"))
        balances = [b for b in (_latest(cloudwatch, instance, m, "Average", now, window_s)
                                for m in ("EBSByteBalance%", "EBSIOBalance%")) if b is not None]
        if balances:
            out.append(Measurement("ebs_burst_spent", node, 100 - min(balances),
                                   f"{instance}: lowest EBS burst balance {min(balances):.0f} %"))
    return out
