"""AWS-stack task wiring against moto: RDS snapshot backups, freshness metrics, and the snapshot
drill's teardown and report when the restored instance cannot be reached (moto serves no
PostgreSQL)."""
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from ops.backups.manifest import Manifest
from ops.backups.repository import S3Repository
from ops.backups.drillreports import drill_reports as history
from ops.settings import from_options
from ops.targets import AwsClients, AwsTarget


@pytest.fixture
def stack_env(rds_network):
    boto3.client("s3").create_bucket(Bucket="pgops-dev-backups",
                                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    outputs = {"primary_id": rds_network.primary, "subnet_group": rds_network.subnet_group,
               "security_group_id": rds_network.security_group, "region": "eu-west-1",
               "backup_repository": "s3://pgops-dev-backups/pgops"}
    clients = AwsClients(rds_network.rds, boto3.client("secretsmanager"), boto3.client("cloudwatch"))
    target = AwsTarget(from_options({}, stack="dev"), "dev", outputs, clients,
                       {"host": "unused", "port": 5432, "user": "ops", "password": "x" * 12,
                        "sslmode": "disable", "connect_timeout": 2})
    return target, clients, S3Repository("pgops-dev-backups", "pgops")


def metric_names(cw):
    return {m["MetricName"] for m in cw.list_metrics(Namespace="pgops")["Metrics"]}


def test_snapshot_backup_and_freshness(stack_env):
    env, clients, repo = stack_env
    now = datetime.now(timezone.utc)
    snaps = env.snapshot_backup(repo, ["syncscript"], now)
    assert snaps[0]["id"].startswith("pgops-syncscript-") and snaps[0]["location"] == "rds:pgops-dev-primary"
    m = Manifest("b1", "syncscript", "logical", (now - timedelta(hours=2)).isoformat(), now.isoformat(), 1.0, 10,
                 "0" * 64, "backups/syncscript/b1/dump.pgdump", "s3://x", "16.4", "pg_dump 16", 6, "0.1.0",
                 "pg_dump custom", {})
    repo.put_bytes("backups/syncscript/b1/manifest.json", m.to_json())
    repo.put_bytes("drills/syncscript/x.json", b'{"passed": true, "backup_id": "b1", "started_at": "%s"}'
                   % (now - timedelta(days=3)).isoformat().encode())
    env.after_backup(repo, "syncscript", succeeded=True, size_bytes=10, now=now)
    assert metric_names(clients.cloudwatch) == {"BackupSucceeded", "BackupAgeSeconds", "BackupSizeBytes",
                                                "PassedDrillAgeSeconds"}
    age = clients.cloudwatch.get_metric_statistics(
        Namespace="pgops", MetricName="BackupAgeSeconds", Dimensions=[{"Name": "DBName", "Value": "syncscript"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5), Period=60, Statistics=["Maximum"])
    assert age["Datapoints"][0]["Maximum"] == pytest.approx(7200, abs=5)


def test_snapshot_drill_tears_down_and_reports_when_the_target_is_unreachable(stack_env, tmp_path):
    env, clients, repo = stack_env
    env.snapshot_backup(repo, ["syncscript"], datetime.now(timezone.utc))
    r = env.snapshot_drill(repo, "syncscript", lambda: datetime.now(timezone.utc), wait_delay_s=1)
    assert not r.passed and r.error and r.rto_seconds is None
    ids = {i["DBInstanceIdentifier"] for i in clients.rds.describe_db_instances()["DBInstances"]}
    assert ids == {"pgops-dev-primary"}  # the drill instance is gone
    assert history(repo, "syncscript")[0]["passed"] is False
    assert "DrillSucceeded" in metric_names(clients.cloudwatch)


def test_prune_apply_on_an_aws_stack_prunes_its_snapshots_through_the_task(stack_env, monkeypatch, capsys):
    """`backup.prune --apply --yes` on an AWS stack: the repository's verdicts and the RDS snapshot
    verdicts are one plan; the snapshots marked DELETE are deleted, the newest kept."""
    from ops.tasks import backup as backup_tasks
    env, clients, repo = stack_env
    now = datetime.now(timezone.utc)
    m = Manifest("b1", "syncscript", "logical", now.isoformat(), now.isoformat(), 1.0, 10, "0" * 64,
                 "backups/syncscript/b1/dump.pgdump", "s3://x", "16.4", "pg_dump 16", 6, "0.1.0", "pg_dump custom", {})
    repo.put_bytes("backups/syncscript/b1/dump.pgdump", b"x")
    repo.put_bytes("backups/syncscript/b1/manifest.json", m.to_json())
    for hour in range(4):  # four snapshots of one day: GFS keeps that day's newest (and the oldest, restic's rule)
        env.snapshot_backup(repo, ["syncscript"], now + timedelta(hours=hour))
    # moto stamps snapshots with the real clock: judge them two days later, past the 1-hour floor
    monkeypatch.setattr(backup_tasks, "target_for", lambda *a, **k: env)
    monkeypatch.setattr(backup_tasks, "_now", lambda: now + timedelta(days=2))
    backup_tasks.prune.body(None, stack="dev", apply=True, yes=True, force=True, json_=True)
    doc = {d.get("kind", "repository"): d for d in __import__("json").loads(capsys.readouterr().out)}
    verdicts = doc["rds-snapshot"]["verdicts"]
    deleted = {v["id"] for v in verdicts if not v["keep"]}
    assert len(deleted) == 2 and doc["rds-snapshot"]["applied"] is True
    assert doc["repository"]["verdicts"][0]["keep"] is True
    left = {s["DBSnapshotIdentifier"] for s in clients.rds.describe_db_snapshots()["DBSnapshots"]
            if s["DBSnapshotIdentifier"].startswith("pgops-")}  # moto also keeps an automated one
    assert left == {v["id"] for v in verdicts if v["keep"]} and not left & deleted
