"""Mandatory rules of the pgops policy pack, as plain validators ``(args, report_violation)``.

``args`` has ``resource_type`` and ``props`` (the resource's inputs, camelCase), as
``pulumi_policy.ResourceValidationArgs`` does; the pack in ``__main__.py`` wraps each rule in a
``ResourceValidationPolicy``, and the tests call them directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

RDS_INSTANCE = "aws:rds/instance:Instance"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE_CONFIG = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    validate: Callable


def rds_encrypted(args, report):
    if args.resource_type == RDS_INSTANCE and args.props.get("storageEncrypted") is not True:
        report("RDS instances must set storageEncrypted: true (with the stack's KMS key).", None)


def rds_not_public(args, report):
    if args.resource_type == RDS_INSTANCE and args.props.get("publiclyAccessible") is True:
        report("RDS instances must not be publicly accessible.", None)


def rds_deletion_protection_in_prod(args, report):
    if args.resource_type != RDS_INSTANCE:
        return
    tags = args.props.get("tags") or {}
    if tags.get("pgops:environment") == "prod" and args.props.get("deletionProtection") is not True:
        report("RDS instances in prod must have deletionProtection: true.", None)


def rds_backup_retention(args, report):
    if args.resource_type != RDS_INSTANCE or args.props.get("replicateSourceDb"):
        return  # read replicas take no automated backups of their own
    if (args.props.get("backupRetentionPeriod") or 0) < 7:
        report("RDS primaries must keep automated backups for at least 7 days (backupRetentionPeriod >= 7).", None)


def bucket_public_access_blocked(args, report):
    if args.resource_type == PUBLIC_ACCESS_BLOCK:
        off = [k for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
               if args.props.get(k) is not True]
        if off:
            report(f"S3 public access must be fully blocked; not set: {', '.join(off)}.", None)


def bucket_sse_configured(args, report):
    if args.resource_type != SSE_CONFIG:
        return
    rules = args.props.get("rules") or []
    algos = [((r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")) for r in rules]
    if not algos or any(a not in ("aws:kms", "aws:kms:dsse", "AES256") for a in algos):
        report("S3 buckets must have default server-side encryption (aws:kms preferred).", None)


def bucket_tls_only(args, report):
    if args.resource_type != BUCKET_POLICY:
        return
    raw = args.props.get("policy")
    try:
        doc = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        report("The bucket policy is not valid JSON.", None)
        return
    statements = doc.get("Statement", [])
    denies_plain = any(s.get("Effect") == "Deny" and
                       (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
                       for s in statements)
    if not denies_plain:
        report("S3 bucket policies must deny requests without TLS (aws:SecureTransport = false).", None)


RULES = (
    Rule("rds-storage-encrypted", "RDS storage is encrypted", rds_encrypted),
    Rule("rds-not-public", "RDS instances are not publicly accessible", rds_not_public),
    Rule("rds-deletion-protection-prod", "RDS instances in prod have deletion protection", rds_deletion_protection_in_prod),
    Rule("rds-backup-retention-7d", "RDS primaries keep automated backups >= 7 days", rds_backup_retention),
    Rule("s3-public-access-blocked", "S3 public access is fully blocked", bucket_public_access_blocked),
    Rule("s3-sse-configured", "S3 default encryption is configured", bucket_sse_configured),
    Rule("s3-tls-only", "S3 bucket policies deny non-TLS access", bucket_tls_only),
)
