"""The stack: wires the components from typed config. ``build`` returns the stack outputs; no
secret is among them (the master password lives only in Secrets Manager)."""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .alarms import Alarms, AlarmsArgs
from .backup_store import BackupStore, BackupStoreArgs
from .config import StackConfig
from .dashboard import Dashboard
from .database import PostgresCluster, PostgresClusterArgs
from .scheduler import Scheduler, SchedulerArgs
from .iam import assume_role_policy


def build(c: StackConfig, master_password: pulumi.Input[str]) -> dict:
    db = PostgresCluster("pg", PostgresClusterArgs(c, master_password))
    store = BackupStore("backups", BackupStoreArgs(c, db.key.arn, pulumi.Output.all(
        db.primary.arn, *[r.arn for r in db.replicas]), db.secret.arn))
    alarms = Alarms("alarms", AlarmsArgs(c, db.key.arn, db.primary.identifier, [r.identifier for r in db.replicas]))
    Dashboard("dash", c, db.primary.identifier, [r.identifier for r in db.replicas])
    if c.aws_backup_plan:
        _aws_backup_plan(c, db)
    outputs = {
        "primary_endpoint": db.primary.address,
        "primary_port": db.primary.port,
        "primary_id": db.primary.identifier,
        "replica_endpoints": [r.address for r in db.replicas],
        "replica_ids": [r.identifier for r in db.replicas],
        "backup_bucket": store.bucket.bucket,
        "backup_repository": store.bucket.bucket.apply(lambda b: f"s3://{b}/{c.backup_prefix}"),
        "kms_key_arn": db.key.arn,
        "alarm_topic_arn": alarms.topic.arn,
        "master_secret_arn": db.secret.arn,
        "subnet_group": db.subnet_group.name,
        "security_group_id": db.security_group.id,
        "ops_policy_arn": store.ops_policy.arn,
        "databases": c.databases,
        "region": c.region,
    }
    scheduler = Scheduler("scheduler", SchedulerArgs(c, db.key.arn, db.security_group.id, store.ops_policy.arn,
                                                     alarms.topic.arn, dict(outputs)))
    outputs.update(scheduler_cluster=scheduler.cluster.name, scheduler_image_repository=scheduler.repository.repository_url,
                   scheduler_dead_letter_queue=scheduler.dead_letter_queue.url)
    for k, v in outputs.items():
        pulumi.export(k, v)
    return outputs


def _aws_backup_plan(c: StackConfig, db: PostgresCluster) -> None:
    """AWS Backup rules mirroring seed 002's retention: daily 30 d, weekly 12 w, monthly 12 m, yearly 5 y."""
    vault = aws.backup.Vault("aws-backup-vault", name=f"pgops-{c.stack}", kms_key_arn=db.key.arn)
    copy = []
    if c.cross_region:
        far = aws.Provider("aws-backup-far", region=c.cross_region)
        far_vault = aws.backup.Vault("aws-backup-vault-far", name=f"pgops-{c.stack}-copy",
                                     opts=pulumi.ResourceOptions(provider=far))
        copy = [aws.backup.PlanRuleCopyActionArgs(destination_vault_arn=far_vault.arn,
                                                  lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=30))]
    rules = [("daily", "cron(0 2 * * ? *)", 30), ("weekly", "cron(0 2 ? * SUN *)", 84),
             ("monthly", "cron(0 2 1 * ? *)", 365), ("yearly", "cron(0 2 1 1 ? *)", 5 * 365)]
    plan = aws.backup.Plan("aws-backup-plan", name=f"pgops-{c.stack}", rules=[
        aws.backup.PlanRuleArgs(rule_name=n, target_vault_name=vault.name, schedule=s,
                                lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=d), copy_actions=copy)
        for n, s, d in rules])
    role = aws.iam.Role("aws-backup-role", assume_role_policy=assume_role_policy("backup.amazonaws.com"))
    aws.iam.RolePolicyAttachment("aws-backup-role-policy", role=role.name,
                                 policy_arn="arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup")
    aws.backup.Selection("aws-backup-selection", name=f"pgops-{c.stack}", plan_id=plan.id, iam_role_arn=role.arn,
                         resources=[db.primary.arn])
