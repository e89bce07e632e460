"""RDS manual DB snapshots: create, list, prune — the same retention policy and safety floors as the
repository's backups (:func:`ops.retention.plan_prune`). ``client`` is a boto3 ``rds`` client.

Every snapshot pgops makes is tagged ``pgops:managed=true`` and ``pgops:database=<name>``; prune
only ever considers snapshots carrying that tag, so hand-made and automated snapshots are safe.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import OpsError
from ..retention import SEED_002_POLICY, BackupFacts, PrunePlan, RetentionPolicy, plan_prune

MANAGED_TAG = "pgops:managed"
DATABASE_TAG = "pgops:database"


@dataclass(frozen=True)
class Snapshot:
    id: str
    instance: str
    database: str
    created_at: datetime  # UTC
    status: str


def create_snapshot(client, instance_id: str, database: str, now: datetime) -> Snapshot:
    """Start a manual snapshot of ``instance_id``, tagged; returns it (status ``creating`` or later)."""
    snap_id = f"pgops-{database.replace('_', '-')}-{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}"
    try:
        resp = client.create_db_snapshot(
            DBSnapshotIdentifier=snap_id, DBInstanceIdentifier=instance_id,
            Tags=[{"Key": MANAGED_TAG, "Value": "true"}, {"Key": DATABASE_TAG, "Value": database}])
    except client.exceptions.DBInstanceNotFoundFault:
        raise OpsError(f"RDS instance '{instance_id}' does not exist.", "check the stack outputs with `invoke deploy --stack NAME`.") from None
    s = resp["DBSnapshot"]
    return Snapshot(s["DBSnapshotIdentifier"], instance_id, database,
                    (s.get("SnapshotCreateTime") or now).astimezone(timezone.utc), s.get("Status", "creating"))


def list_snapshots(client, instance_id: str, database: str | None = None) -> list[Snapshot]:
    """pgops-managed manual snapshots of ``instance_id`` (optionally of one database), newest first."""
    out = []
    for page in client.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=instance_id,
                                                                          SnapshotType="manual"):
        for s in page["DBSnapshots"]:
            tags = {t["Key"]: t["Value"] for t in s.get("TagList") or client.list_tags_for_resource(
                ResourceName=s["DBSnapshotArn"])["TagList"]}
            if tags.get(MANAGED_TAG) != "true" or (database and tags.get(DATABASE_TAG) != database):
                continue
            out.append(Snapshot(s["DBSnapshotIdentifier"], instance_id, tags.get(DATABASE_TAG, ""),
                                s["SnapshotCreateTime"].astimezone(timezone.utc), s.get("Status", "")))
    return sorted(out, key=lambda s: s.created_at, reverse=True)


def prune_snapshots(client, instance_id: str, database: str, now: datetime, *,
                    policy: RetentionPolicy = SEED_002_POLICY, apply: bool = False, force: bool = False,
                    drill_passed: set[str] = frozenset(), min_age: timedelta = timedelta(hours=1),
                    max_delete_fraction: float = 0.5) -> tuple[PrunePlan, list[str]]:
    """Plan retention over the managed snapshots and, with ``apply``, delete the ones it marks.
    Returns (plan, deleted ids). Raises :class:`~ops.retention.RetentionRefused` like repository prune."""
    snaps = list_snapshots(client, instance_id, database)
    plan = plan_prune([BackupFacts(s.id, s.created_at, s.id in drill_passed) for s in snaps], policy, now,
                      min_age=min_age, max_delete_fraction=max_delete_fraction, force=force, database=database)
    deleted = []
    for b in plan.to_delete:
        if apply:
            client.delete_db_snapshot(DBSnapshotIdentifier=b.id)
        deleted.append(b.id)
    return plan, deleted
