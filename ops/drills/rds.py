"""Snapshot drills on AWS: restore an RDS snapshot into a throwaway instance in the stack's subnet
group and security groups, tagged ``pgops:drill``, run the checks against it, and delete it
afterwards whatever happens. ``client`` is a boto3 ``rds`` client.

RDS reports an instance "available" before its blocks are loaded from S3 (lazy loading), so the
checks — which read every table — are what prove the restore, not the status.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .report import Check, DrillReport, rpo_and_clock_check

DRILL_TAG = "pgops:drill"


@dataclass(frozen=True)
class DrillTarget:
    instance_id: str
    host: str
    port: int


def _iso(d: datetime) -> str:
    return d.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def run_snapshot_drill(client, snapshot_id: str, database: str, *, subnet_group: str, security_groups: list[str],
                       instance_class: str, checks: Callable[[DrillTarget], list[Check]], now: Callable[[], datetime],
                       wait_delay_s: float = 30, wait_attempts: int = 120,
                       on_report: Callable[[DrillReport], None] | None = None) -> DrillReport:
    """Restore ``snapshot_id`` into ``pgops-drill-<snapshot>``, wait until available, run
    ``checks`` against its endpoint, and always delete the instance (no final snapshot).

    ``checks`` receives the target endpoint and returns named checks (the same data checks as a
    local drill, connecting with the stack's credentials). Returns the report; ``on_report`` is
    called with it whatever happens.
    """
    started = now()
    t0 = time.monotonic()
    snap = client.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]
    created = snap["SnapshotCreateTime"].astimezone(timezone.utc)
    rpo, clock_checks = rpo_and_clock_check(started, created)
    report = DrillReport(database, snapshot_id, "snapshot", _iso(started), _iso(created), rpo_seconds=rpo,
                         checks=clock_checks)
    instance_id = f"pgops-drill-{snapshot_id}"[:63].rstrip("-")
    created_instance = False
    try:
        t = time.monotonic()
        client.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=instance_id, DBSnapshotIdentifier=snapshot_id, DBInstanceClass=instance_class,
            DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=security_groups, PubliclyAccessible=False,
            MultiAZ=False, DeletionProtection=False, CopyTagsToSnapshot=False,
            Tags=[{"Key": DRILL_TAG, "Value": "true"}, {"Key": "pgops:database", "Value": database},
                  {"Key": "pgops:snapshot", "Value": snapshot_id}])
        created_instance = True
        client.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=instance_id, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts})
        inst = client.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        target = DrillTarget(instance_id, inst["Endpoint"]["Address"], int(inst["Endpoint"]["Port"]))
        report.target = f"{target.host}:{target.port} ({instance_id})"
        report.checks.append(Check("restore finished without errors", inst["DBInstanceStatus"] == "available",
                                   f"instance {instance_id} {inst['DBInstanceStatus']}"))
        report.phases["restore"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        report.checks += checks(target)
        report.phases["checks"] = round(time.monotonic() - t, 3)
        if report.passed:
            report.rto_seconds = round(time.monotonic() - t0, 3)
    except Exception as exc:  # reported; teardown below runs regardless
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        t = time.monotonic()
        if created_instance:
            client.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True,
                                      DeleteAutomatedBackups=True)
            client.get_waiter("db_instance_deleted").wait(
                DBInstanceIdentifier=instance_id, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts})
        report.phases["teardown"] = round(time.monotonic() - t, 3)
        report.finished_at = _iso(now())
        if on_report is not None:
            on_report(report)
    return report
