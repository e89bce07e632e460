"""Backup freshness metrics for CloudWatch, namespace ``pgops``, dimension ``DBName`` — what the
stack's backup-age alarm (> 26 h, missing data breaching) watches. ``client`` is a boto3
``cloudwatch`` client."""
from __future__ import annotations

from datetime import datetime

NAMESPACE = "pgops"


def publish_backup_metrics(client, database: str, *, succeeded: bool, age_seconds: float, size_bytes: int,
                           now: datetime) -> None:
    """Put ``BackupSucceeded`` (1/0), ``BackupAgeSeconds`` (seconds since the newest good backup) and
    ``BackupSizeBytes`` (bytes) for ``database`` at ``now`` (UTC)."""
    dims = [{"Name": "DBName", "Value": database}]
    client.put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "BackupSucceeded", "Dimensions": dims, "Timestamp": now, "Value": 1.0 if succeeded else 0.0,
         "Unit": "Count"},
        {"MetricName": "BackupAgeSeconds", "Dimensions": dims, "Timestamp": now, "Value": float(age_seconds),
         "Unit": "Seconds"},
        {"MetricName": "BackupSizeBytes", "Dimensions": dims, "Timestamp": now, "Value": float(size_bytes),
         "Unit": "Bytes"},
    ])


def publish_drill_metrics(client, database: str, *, succeeded: bool, rto_seconds: float | None,
                          rpo_seconds: float | None, now: datetime) -> None:
    """Put ``DrillSucceeded`` (1/0), ``DrillRTOSeconds`` and ``DrillRPOSeconds`` for ``database``
    (RTO only when the drill passed) — what the "no passed drill in 35 days" alarm watches."""
    dims = [{"Name": "DBName", "Value": database}]
    data = [{"MetricName": "DrillSucceeded", "Dimensions": dims, "Timestamp": now, "Value": 1.0 if succeeded else 0.0,
             "Unit": "Count"}]
    if rto_seconds is not None:
        data.append({"MetricName": "DrillRTOSeconds", "Dimensions": dims, "Timestamp": now, "Value": float(rto_seconds),
                     "Unit": "Seconds"})
    if rpo_seconds is not None:
        data.append({"MetricName": "DrillRPOSeconds", "Dimensions": dims, "Timestamp": now, "Value": float(rpo_seconds),
                     "Unit": "Seconds"})
    client.put_metric_data(Namespace=NAMESPACE, MetricData=data)


def publish_passed_drill_age(client, database: str, *, age_seconds: float, now: datetime) -> None:
    """Put ``PassedDrillAgeSeconds`` (seconds since the newest passed drill of ``database``), what the
    35-day drill alarm watches (CloudWatch cannot evaluate a 35-day window of DrillSucceeded itself)."""
    client.put_metric_data(Namespace=NAMESPACE, MetricData=[{
        "MetricName": "PassedDrillAgeSeconds", "Dimensions": [{"Name": "DBName", "Value": database}],
        "Timestamp": now, "Value": float(age_seconds), "Unit": "Seconds"}])


def publish_job_metrics(client, stack: str, job: str, *, succeeded: bool, seconds: float, now: datetime) -> None:
    """Put ``JobSucceeded`` (1/0) and ``JobSeconds`` for a scheduled job (dimensions ``Stack``, ``Job``)
    — what the Scheduler component's job-failed alarm watches (``ops.schedules.JOB_METRIC``)."""
    dims = [{"Name": "Stack", "Value": stack}, {"Name": "Job", "Value": job}]
    client.put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "JobSucceeded", "Dimensions": dims, "Timestamp": now, "Value": 1.0 if succeeded else 0.0,
         "Unit": "Count"},
        {"MetricName": "JobSeconds", "Dimensions": dims, "Timestamp": now, "Value": float(seconds), "Unit": "Seconds"},
    ])
