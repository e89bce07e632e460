"""BackupStore: the S3 repository pgops writes backups to, locked down the way AWS's S3 security
best practices ask: versioning, SSE-KMS default encryption with a bucket key, public access fully
blocked, BucketOwnerEnforced ownership, a policy denying non-TLS access and unencrypted puts,
lifecycle rules (abort incomplete multipart uploads after 1 day, expire noncurrent versions, move old
backups to colder classes), optional Object Lock and replication to a second region (seed 002:
encrypted copy in a second region). Also the least-privilege IAM policy for the ops role.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StackConfig
from .database import rotating_key
from .iam import assume_role_policy


@dataclass
class BackupStoreArgs:
    config: StackConfig
    key_arn: pulumi.Input[str]
    instance_arns: pulumi.Input[list]
    secret_arn: pulumi.Input[str]


def _bucket_hardening(name: str, bucket: aws.s3.Bucket, key_arn, opts: pulumi.ResourceOptions) -> aws.s3.BucketPolicy:
    aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                            opts=opts)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-sse", bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=key_arn),
            bucket_key_enabled=True)], opts=opts)
    aws.s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
                                   opts=opts)
    aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                   rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                                   opts=opts)
    return aws.s3.BucketPolicy(f"{name}-policy", bucket=bucket.id, policy=bucket.arn.apply(tls_and_sse_policy), opts=opts)


def tls_and_sse_policy(bucket_arn: str) -> str:
    """Deny any request without TLS, and any PutObject that asks for no server-side encryption."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyUnencryptedPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/*", "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}},
    ]})


class BackupStore(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pgops:index:BackupStore", name, None, opts)
        c = args.config
        child = pulumi.ResourceOptions(parent=self)
        tags = {"pgops:stack": c.stack, "pgops:environment": c.environment, "pgops:managed": "true"}
        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket_prefix=f"pgops-{c.stack}-backups-",
                                    object_lock_enabled=c.object_lock_days > 0, force_destroy=False, tags=tags,
                                    opts=child)
        self.policy = _bucket_hardening(name, self.bucket, args.key_arn, child)
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=self.bucket.id, rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-multipart", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1)),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=c.noncurrent_expire_days)),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="colder-storage-for-old-backups", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{c.backup_prefix}/backups/"),
                transitions=[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=c.ia_after_days,
                                                                                   storage_class="STANDARD_IA"),
                             aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=c.glacier_after_days,
                                                                                   storage_class="GLACIER_IR")]),
        ], opts=child)
        if c.object_lock_days > 0:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock", bucket=self.bucket.id,
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode="GOVERNANCE", days=c.object_lock_days)), opts=child)
        self.replica_bucket = None
        if c.cross_region:
            self._replication(name, c, args, tags)
        self.ops_policy = aws.iam.Policy(f"{name}-ops-policy", description=f"pgops {c.stack}: least privilege for ops tasks",
                                         policy=pulumi.Output.all(self.bucket.arn, args.key_arn, args.instance_arns,
                                                                  args.secret_arn).apply(
                                             lambda a: ops_policy_document(a[0], c.backup_prefix, a[1], a[2], a[3])),
                                         tags=tags, opts=child)
        self.register_outputs({"bucket": self.bucket.bucket, "ops_policy_arn": self.ops_policy.arn})

    def _replication(self, name, c: StackConfig, args: BackupStoreArgs, tags):
        far = aws.Provider(f"{name}-far", region=c.cross_region, opts=pulumi.ResourceOptions(parent=self))
        far_opts = pulumi.ResourceOptions(parent=self, provider=far)
        far_key = rotating_key(f"{name}-far-key", f"pgops {c.stack}: backup copy in {c.cross_region}", tags, far_opts)
        self.replica_bucket = aws.s3.Bucket(f"{name}-copy", bucket_prefix=f"pgops-{c.stack}-copy-", tags=tags,
                                            opts=far_opts)
        _bucket_hardening(f"{name}-copy", self.replica_bucket, far_key.arn, far_opts)
        role = aws.iam.Role(f"{name}-replication", assume_role_policy=assume_role_policy("s3.amazonaws.com"), tags=tags,
            opts=pulumi.ResourceOptions(parent=self))
        aws.iam.RolePolicy(f"{name}-replication-policy", role=role.id, policy=pulumi.Output.all(
            self.bucket.arn, self.replica_bucket.arn, args.key_arn, far_key.arn).apply(lambda a: json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": a[0]},
                    {"Effect": "Allow", "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                                                   "s3:GetObjectVersionTagging"], "Resource": f"{a[0]}/*"},
                    {"Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                     "Resource": f"{a[1]}/*"},
                    {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": a[2]},
                    {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": a[3]}]})),
            opts=pulumi.ResourceOptions(parent=self))
        aws.s3.BucketReplicationConfig(
            f"{name}-replication-config", bucket=self.bucket.id, role=role.arn,
            rules=[aws.s3.BucketReplicationConfigRuleArgs(
                id="copy-to-second-region", status="Enabled",
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(status="Disabled"),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled")),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=self.replica_bucket.arn,
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=far_key.arn)))],
            opts=pulumi.ResourceOptions(parent=self))


def ops_policy_document(bucket_arn: str, prefix: str, key_arn: str, instance_arns: list[str], secret_arn: str) -> str:
    """Least privilege for the ops role: the bucket prefix, the KMS key, snapshot / restore /
    blue-green actions on the stack's instances, the master secret, and PutMetricData for ``pgops``."""
    region_account = ":".join(instance_arns[0].split(":")[3:5]) if instance_arns else "*:*"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ListBackupPrefix", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
         "Resource": bucket_arn, "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}},
        {"Sid": "ReadWriteBackups", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts"], "Resource": f"{bucket_arn}/{prefix}/*"},
        {"Sid": "UseStackKey", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
                                                            "kms:DescribeKey"], "Resource": key_arn},
        {"Sid": "SnapshotsAndDrills", "Effect": "Allow",
         "Action": ["rds:CreateDBSnapshot", "rds:AddTagsToResource", "rds:DescribeDBSnapshots",
                    "rds:DeleteDBSnapshot", "rds:RestoreDBInstanceFromDBSnapshot", "rds:DescribeDBInstances",
                    "rds:ListTagsForResource"],
         "Resource": instance_arns + [f"arn:aws:rds:{region_account}:snapshot:pgops-*",
                                      f"arn:aws:rds:{region_account}:db:pgops-drill-*",
                                      f"arn:aws:rds:{region_account}:subgrp:*",
                                      f"arn:aws:rds:{region_account}:pg:*"]},
        {"Sid": "DeleteOnlyDrillInstances", "Effect": "Allow", "Action": ["rds:DeleteDBInstance"],
         "Resource": f"arn:aws:rds:{region_account}:db:pgops-drill-*"},
        {"Sid": "BlueGreen", "Effect": "Allow",
         "Action": ["rds:CreateBlueGreenDeployment", "rds:SwitchoverBlueGreenDeployment",
                    "rds:DeleteBlueGreenDeployment", "rds:DescribeBlueGreenDeployments"],
         "Resource": instance_arns + [f"arn:aws:rds:{region_account}:deployment:*"]},
        {"Sid": "MasterSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_arn},
        {"Sid": "PgopsMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "pgops"}}},
    ]})
