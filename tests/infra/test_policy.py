"""The policy pack's validators, called directly, on compliant and violating inputs."""
import json
from types import SimpleNamespace

import pytest

from infra.backup_store import tls_and_sse_policy
from infra.policy.rules import (BUCKET_POLICY, PUBLIC_ACCESS_BLOCK, RDS_INSTANCE, RULES, SSE_CONFIG,
                                bucket_public_access_blocked, bucket_sse_configured, bucket_tls_only,
                                rds_backup_retention, rds_deletion_protection_in_prod, rds_encrypted, rds_not_public)


def violations(rule, typ, props):
    found = []
    rule(SimpleNamespace(resource_type=typ, props=props), lambda msg, urn=None: found.append(msg))
    return found


GOOD_RDS = {"storageEncrypted": True, "publiclyAccessible": False, "deletionProtection": True,
            "backupRetentionPeriod": 7, "tags": {"pgops:environment": "prod"}}


@pytest.mark.parametrize("rule,bad", [
    (rds_encrypted, {"storageEncrypted": False}),
    (rds_not_public, {"publiclyAccessible": True}),
    (rds_deletion_protection_in_prod, {"deletionProtection": False}),
    (rds_backup_retention, {"backupRetentionPeriod": 1}),
])
def test_rds_rules(rule, bad):
    assert violations(rule, RDS_INSTANCE, GOOD_RDS) == []
    assert len(violations(rule, RDS_INSTANCE, {**GOOD_RDS, **bad})) == 1


def test_rds_rules_scope():
    assert violations(rds_deletion_protection_in_prod, RDS_INSTANCE,
                      {**GOOD_RDS, "deletionProtection": False, "tags": {"pgops:environment": "dev"}}) == []
    assert violations(rds_backup_retention, RDS_INSTANCE, {**GOOD_RDS, "backupRetentionPeriod": 0,
                                                           "replicateSourceDb": "pgops-prod-primary"}) == []
    assert violations(rds_encrypted, "aws:s3/bucket:Bucket", {}) == []


def test_bucket_rules():
    full = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    assert violations(bucket_public_access_blocked, PUBLIC_ACCESS_BLOCK, full) == []
    assert "restrictPublicBuckets" in violations(bucket_public_access_blocked, PUBLIC_ACCESS_BLOCK,
                                                 {**full, "restrictPublicBuckets": False})[0]
    kms = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": True}]}
    assert violations(bucket_sse_configured, SSE_CONFIG, kms) == []
    assert violations(bucket_sse_configured, SSE_CONFIG, {"rules": []})
    assert violations(bucket_tls_only, BUCKET_POLICY, {"policy": tls_and_sse_policy("arn:aws:s3:::b")}) == []
    allow_all = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]})
    assert violations(bucket_tls_only, BUCKET_POLICY, {"policy": allow_all})


def test_pack_declares_every_rule_mandatory():
    pytest.importorskip("pulumi_policy")
    import runpy
    from unittest import mock
    import pulumi_policy
    with mock.patch.object(pulumi_policy, "PolicyPack") as pack:
        runpy.run_path("infra/policy/__main__.py", run_name="__main__")
    kwargs = pack.call_args.kwargs
    assert kwargs["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert [p.name for p in kwargs["policies"]] == [r.name for r in RULES]
