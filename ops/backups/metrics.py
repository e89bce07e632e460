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
