"""RDS snapshot create / list / prune and the freshness metrics, against moto."""
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from ops.backups import metrics, rds
from ops.errors import RetentionRefused
from ops.retention import RetentionPolicy


@pytest.fixture
def aws(rds_network):
    return rds_network.rds


def test_create_list_tags(aws):
    now = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
    s = rds.create_snapshot(aws, "pgops-dev-primary", "syncscript", now)
    assert s.id == "pgops-syncscript-20261121-020000"
    aws.create_db_snapshot(DBSnapshotIdentifier="hand-made", DBInstanceIdentifier="pgops-dev-primary")
    listed = rds.list_snapshots(aws, "pgops-dev-primary")
    assert [x.id for x in listed] == [s.id]  # the untagged, hand-made snapshot is never ours
    tags = {t["Key"]: t["Value"] for t in aws.describe_db_snapshots(DBSnapshotIdentifier=s.id)["DBSnapshots"][0]["TagList"]}
    assert tags == {"pgops:managed": "true", "pgops:database": "syncscript"}


def test_prune_dry_run_then_apply_keeps_hand_made(aws):
    aws.create_db_snapshot(DBSnapshotIdentifier="hand-made", DBInstanceIdentifier="pgops-dev-primary")
    ids = [rds.create_snapshot(aws, "pgops-dev-primary", "syncscript", datetime(2026, 11, d, 2, tzinfo=timezone.utc)).id
           for d in range(10, 14)]
    # moto stamps SnapshotCreateTime with the real clock; prune must order by it, so judge from later
    now = datetime.now(timezone.utc) + timedelta(days=1)
    plan, would = rds.prune_snapshots(aws, "pgops-dev-primary", "syncscript", now,
                                      policy=RetentionPolicy(keep_last=2), max_delete_fraction=0.5)
    assert len(would) == 2 and len(plan.to_keep) == 2
    assert len(rds.list_snapshots(aws, "pgops-dev-primary")) == 4  # dry run deleted nothing
    _, deleted = rds.prune_snapshots(aws, "pgops-dev-primary", "syncscript", now, policy=RetentionPolicy(keep_last=2),
                                     apply=True)
    left = {s.id for s in rds.list_snapshots(aws, "pgops-dev-primary")}
    assert left == set(ids) - set(deleted) and len(left) == 2
    all_ids = {s["DBSnapshotIdentifier"] for s in aws.describe_db_snapshots()["DBSnapshots"]}
    assert "hand-made" in all_ids


def test_prune_refuses_empty_listing(aws):
    with pytest.raises(RetentionRefused):
        rds.prune_snapshots(aws, "pgops-dev-primary", "syncscript", datetime.now(timezone.utc), apply=True)


def test_backup_metrics(aws):
    cw = boto3.client("cloudwatch")
    now = datetime.now(timezone.utc)
    metrics.publish_backup_metrics(cw, "syncscript", succeeded=True, age_seconds=120, size_bytes=4096, now=now)
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="pgops")["Metrics"]}
    assert names == {"BackupSucceeded", "BackupAgeSeconds", "BackupSizeBytes"}
    stats = cw.get_metric_statistics(Namespace="pgops", MetricName="BackupAgeSeconds",
                                     Dimensions=[{"Name": "DBName", "Value": "syncscript"}],
                                     StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                     Period=60, Statistics=["Maximum"])
    assert stats["Datapoints"][0]["Maximum"] == 120
