"""Alarm thresholds as data: one table that the Pulumi Alarms component (infra/) turns into
CloudWatch alarms and that ``invoke health`` reads too (``ops.health.checks``). Pure.

Sources: AWS "Recommended alarms" for Amazon RDS (CPUUtilization, DatabaseConnections,
FreeableMemory, FreeStorageSpace, MaximumUsedTransactionIDs, ReplicaLag, ReadLatency, WriteLatency,
DBLoad, EBSByteBalance%, EBSIOBalance%) and the toolkit's own namespace ``pgops`` (seed 002: alerts
on backup completion; issue 6: backup age > 26 h, no passed restore drill in 35 days).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    """One alarm. ``threshold`` is absolute unless ``relative_to`` names what it is a fraction of
    (``max_connections``, ``memory_bytes``, ``allocated_storage_bytes``, ``vcpus``), resolved per
    instance by the Alarms component. ``per`` is ``instance`` | ``replica`` | ``database``."""

    key: str
    namespace: str
    metric: str
    statistic: str  # Average | Maximum | Minimum | p90 (extended statistic)
    comparison: str  # GreaterThanThreshold | LessThanThreshold
    threshold: float
    period_s: int
    evaluation_periods: int
    datapoints: int
    runbook: str
    per: str = "instance"
    relative_to: str | None = None
    treat_missing: str = "missing"
    description: str = ""


RDS = "AWS/RDS"
PGOPS = "pgops"

THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("cpu", RDS, "CPUUtilization", "Average", "GreaterThanThreshold", 90, 60, 5, 5,
              "runbooks/rds-cpu-high.md", description="CPU above 90 % for 5 minutes"),
    Threshold("connections", RDS, "DatabaseConnections", "Average", "GreaterThanThreshold", 0.9, 60, 5, 5,
              "runbooks/rds-connections-high.md", relative_to="max_connections",
              description="connections above 90 % of max_connections"),
    Threshold("memory", RDS, "FreeableMemory", "Average", "LessThanThreshold", 0.25, 60, 15, 15,
              "runbooks/rds-memory-low.md", relative_to="memory_bytes",
              description="freeable memory below 25 % of the instance's memory for 15 minutes"),
    Threshold("storage", RDS, "FreeStorageSpace", "Minimum", "LessThanThreshold", 0.10, 60, 5, 5,
              "runbooks/rds-storage-low.md", relative_to="allocated_storage_bytes",
              description="free storage below 10 % of allocated (kept with autoscaling: it stops at its ceiling)"),
    Threshold("txid", RDS, "MaximumUsedTransactionIDs", "Average", "GreaterThanThreshold", 1e9, 60, 5, 5,
              "runbooks/rds-txid-wraparound.md", description="transaction IDs used above 1 billion: wraparound risk"),
    Threshold("replica_lag", RDS, "ReplicaLag", "Maximum", "GreaterThanThreshold", 60, 60, 10, 10,
              "runbooks/replica-lag.md", per="replica", description="replica more than 60 s behind for 10 minutes"),
    Threshold("read_latency", RDS, "ReadLatency", "p90", "GreaterThanThreshold", 0.02, 60, 5, 5,
              "runbooks/rds-latency-high.md", description="p90 read latency above 20 ms"),
    Threshold("write_latency", RDS, "WriteLatency", "p90", "GreaterThanThreshold", 0.02, 60, 5, 5,
              "runbooks/rds-latency-high.md", description="p90 write latency above 20 ms"),
    Threshold("dbload", RDS, "DBLoad", "Average", "GreaterThanThreshold", 1.0, 60, 15, 15,
              "runbooks/rds-dbload-high.md", relative_to="vcpus", description="DB load above the vCPU count"),
    Threshold("ebs_byte_balance", RDS, "EBSByteBalance%", "Average", "LessThanThreshold", 10, 60, 3, 3,
              "runbooks/rds-ebs-balance-low.md", description="EBS byte burst balance below 10 %"),
    Threshold("ebs_io_balance", RDS, "EBSIOBalance%", "Average", "LessThanThreshold", 10, 60, 3, 3,
              "runbooks/rds-ebs-balance-low.md", description="EBS I/O burst balance below 10 %"),
    Threshold("backup_age", PGOPS, "BackupAgeSeconds", "Maximum", "GreaterThanThreshold", 26 * 3600, 3600, 1, 1,
              "runbooks/backup-stale-or-failed.md", per="database", treat_missing="breaching",
              description="newest good backup older than 26 h (missing data counts as breaching)"),
    Threshold("drill_age", PGOPS, "PassedDrillAgeSeconds", "Maximum", "GreaterThanThreshold", 35 * 86400, 86400, 1, 1,
              "runbooks/restore-drill-failed.md", per="database", treat_missing="breaching",
              description="no passed restore drill in 35 days (missing data counts as breaching)"),
)


def resolve(t: Threshold, facts: dict[str, float]) -> float:
    """The absolute threshold for an instance: ``t.threshold`` times ``facts[t.relative_to]``.
    Raises KeyError naming the missing fact."""
    return t.threshold * facts[t.relative_to] if t.relative_to else t.threshold
