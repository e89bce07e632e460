"""The Pulumi program under pulumi.runtime.set_mocks (no CLI, no AWS), for both stack configs:
every security property, every alarm, replicas pointing at the primary, and outputs without a secret."""
from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from ops.thresholds import THRESHOLDS

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "mock-master-password-9f8e7d"


class Recorder(pulumi.runtime.Mocks):
    """Records every resource's inputs; computes the few outputs the program reads."""

    def __init__(self):
        self.resources: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        ident = state.get("identifier") or args.name
        service = args.typ.split(":")[1].split("/")[0]
        state.setdefault("arn", f"arn:aws:{service}:eu-west-1:123456789012:{args.name}")
        if args.typ == "aws:rds/instance:Instance":
            state.update(address=f"{ident}.abc.eu-west-1.rds.amazonaws.com", port=5432, identifier=ident,
                         arn=f"arn:aws:rds:eu-west-1:123456789012:db:{ident}")
        if args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = state.get("bucketPrefix", "b") + "mock"
        self.resources.append((args.typ, args.name, state))
        return [f"{args.name}-id", state]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of(self, typ: str) -> list[dict]:
        return [s for t, _, s in self.resources if t == typ]

    def named(self, typ: str, name: str) -> dict:
        return next(s for t, n, s in self.resources if t == typ and n == name)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request):
    from infra.config import parse_config
    from infra.program import build
    name = request.param
    raw = yaml.safe_load((REPO / f"Pulumi.{name}.yaml").read_text())["config"]
    rec = Recorder()
    pulumi.runtime.set_mocks(rec, project="pgops", stack=name, preview=False)
    cfg = parse_config(name, raw)
    outputs: dict = {}

    @pulumi.runtime.test
    def run():
        out = build(cfg, pulumi.Output.secret(PASSWORD))
        keys = list(out)
        return pulumi.Output.all(*out.values()).apply(lambda vals: outputs.update(zip(keys, vals)))
    run()
    return cfg, rec, outputs


def test_primary_security_properties(stack):
    cfg, rec, _ = stack
    p = rec.named("aws:rds/instance:Instance", "pg-primary")
    assert p["storageEncrypted"] is True and p["kmsKeyId"]
    assert p["publiclyAccessible"] is False
    assert p["deletionProtection"] is True
    assert p["backupRetentionPeriod"] >= 7
    assert p["copyTagsToSnapshot"] is True
    assert p["skipFinalSnapshot"] is False and p["finalSnapshotIdentifier"]
    assert p["iamDatabaseAuthenticationEnabled"] is True
    assert p["performanceInsightsEnabled"] is True
    assert p["monitoringInterval"] == 60 and p["monitoringRoleArn"]
    assert p["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert p["maxAllocatedStorage"] >= p["allocatedStorage"]
    assert p["multiAz"] is cfg.multi_az
    assert p["engine"] == "postgres"
    keys = rec.of("aws:kms/key:Key")
    assert keys and all(k["enableKeyRotation"] is True for k in keys)


def test_network_admits_5432_only_from_configured_sources(stack):
    cfg, rec, _ = stack
    rules = rec.of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rules and all(r["fromPort"] == 5432 and r["toPort"] == 5432 and r["ipProtocol"] == "tcp" for r in rules)
    assert sorted(r["cidrIpv4"] for r in rules if "cidrIpv4" in r) == sorted(cfg.allowed_cidrs)
    assert sorted(r["referencedSecurityGroupId"] for r in rules if "referencedSecurityGroupId" in r) == \
        sorted(cfg.allowed_security_group_ids + ["scheduler-tasks-id"])  # + the scheduled jobs' own group
    assert not any(r.get("cidrIpv4") == "0.0.0.0/0" for r in rules)
    assert rec.named("aws:rds/subnetGroup:SubnetGroup", "pg-subnets")["subnetIds"] == cfg.subnet_ids


def test_parameter_group(stack):
    cfg, rec, _ = stack
    params = {p["name"]: p["value"] for p in rec.named("aws:rds/parameterGroup:ParameterGroup", "pg-params")["parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert "pg_stat_statements" in params["shared_preload_libraries"]
    assert params["log_min_duration_statement"] == str(cfg.log_min_duration_statement_ms)
    assert params["rds.logical_replication"] == ("1" if cfg.logical_replication else "0")


def test_replicas_point_at_the_primary(stack):
    cfg, rec, _ = stack
    primary = rec.named("aws:rds/instance:Instance", "pg-primary")
    replicas = [s for t, n, s in rec.resources if t == "aws:rds/instance:Instance" and "replica" in n]
    assert len(replicas) == cfg.replica_count
    for r in replicas:
        assert r["replicateSourceDb"] == primary["identifier"]
        assert r["publiclyAccessible"] is False and r["storageEncrypted"] is True


def test_master_password_lives_only_in_secrets_manager(stack):
    _, rec, outputs = stack
    secret = rec.of("aws:secretsmanager/secret:Secret")[0]
    assert secret["kmsKeyId"]
    assert len(rec.of("aws:secretsmanager/secretVersion:SecretVersion")) == 1
    assert PASSWORD not in json.dumps(outputs, default=str)
    for key in ("primary_endpoint", "replica_endpoints", "backup_bucket", "kms_key_arn", "alarm_topic_arn",
                "master_secret_arn"):
        assert outputs[key], key
    assert not any("password" in k.lower() for k in outputs)


def test_backup_bucket_is_locked_down(stack):
    cfg, rec, _ = stack
    assert rec.of("aws:s3/bucketVersioning:BucketVersioning")[0]["versioningConfiguration"]["status"] == "Enabled"
    sse = rec.of("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0]["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" and sse["bucketKeyEnabled"] is True
    pab = rec.of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert rec.of("aws:s3/bucketOwnershipControls:BucketOwnershipControls")[0]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    policy = json.loads(rec.of("aws:s3/bucketPolicy:BucketPolicy")[0]["policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sids["DenyUnencryptedPuts"]["Effect"] == "Deny"
    rules = {r["id"]: r for r in rec.of("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0]["rules"]}
    assert rules["abort-incomplete-multipart"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] > 0
    assert [t["storageClass"] for t in rules["colder-storage-for-old-backups"]["transitions"]] == ["STANDARD_IA", "GLACIER_IR"]
    assert bool(rec.of("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")) == (cfg.object_lock_days > 0)
    assert bool(rec.of("aws:s3/bucketReplicationConfig:BucketReplicationConfig")) == bool(cfg.cross_region)


def test_ops_policy_is_least_privilege(stack):
    cfg, rec, _ = stack
    doc = json.loads(rec.of("aws:iam/policy:Policy")[0]["policy"])
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["PgopsMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "pgops"}}
    assert sids["ReadWriteBackups"]["Resource"].endswith(f"/{cfg.backup_prefix}/*")
    assert sids["DeleteOnlyDrillInstances"]["Resource"].endswith(":db:pgops-drill-*")
    assert not any(s.get("Resource") == "*" for k, s in sids.items() if k != "PgopsMetrics")


def test_every_alarm(stack):
    cfg, rec, outputs = stack
    alarms = {a["name"]: a for a in rec.of("aws:cloudwatch/metricAlarm:MetricAlarm")}
    topic = rec.of("aws:sns/topic:Topic")[0]
    assert topic["kmsMasterKeyId"]
    assert len(rec.of("aws:sns/topicSubscription:TopicSubscription")) == len(cfg.alarm_emails)
    facts = {"max_connections": cfg.max_connections, "memory_bytes": cfg.memory_gb * 1024 ** 3,
             "allocated_storage_bytes": cfg.allocated_storage_gb * 1024 ** 3, "vcpus": cfg.vcpus}
    expected = 0
    for t in THRESHOLDS:
        targets = {"instance": [("primary", {"DBInstanceIdentifier": f"pgops-{cfg.stack}-primary"})],
                   "replica": [(f"replica-{i + 1}", {"DBInstanceIdentifier": f"pgops-{cfg.stack}-replica-{i + 1}"})
                               for i in range(cfg.replica_count)],
                   "database": [(db, {"DBName": db}) for db in cfg.databases]}[t.per]
        for target, dims in targets:
            expected += 1
            a = alarms[f"pgops-{cfg.stack}-{t.key}-{target}"]
            assert (a["namespace"], a["metricName"]) == (t.namespace, t.metric)
            assert a.get("extendedStatistic", a.get("statistic")) == t.statistic
            want = t.threshold * facts[t.relative_to] if t.relative_to else t.threshold
            assert a["threshold"] == pytest.approx(want)
            assert (a["period"], a["evaluationPeriods"], a["datapointsToAlarm"]) == (t.period_s, t.evaluation_periods, t.datapoints)
            assert a["comparisonOperator"] == t.comparison and a["dimensions"] == dims
            assert a["alarmActions"] == a["okActions"] == [topic["arn"]]
            assert t.runbook in a["alarmDescription"] and (REPO / t.runbook).is_file()
            assert a["treatMissingData"] == t.treat_missing
    scheduler = [n for n in alarms if "-job-failed-" in n or "-schedule-" in n]  # tests/infra/test_scheduler.py
    assert len(alarms) - len(scheduler) == expected
    cpu = alarms[f"pgops-{cfg.stack}-cpu-primary"]
    assert (cpu["threshold"], cpu["evaluationPeriods"], cpu["period"]) == (90, 5, 60)
    assert alarms[f"pgops-{cfg.stack}-backup_age-syncscript"]["treatMissingData"] == "breaching"


def test_dashboard_and_aws_backup_plan(stack):
    cfg, rec, _ = stack
    body = json.loads(rec.of("aws:cloudwatch/dashboard:Dashboard")[0]["dashboardBody"])
    assert len(body["widgets"]) == len(THRESHOLDS)
    plans = rec.of("aws:backup/plan:Plan")
    assert bool(plans) == cfg.aws_backup_plan
    if plans:
        rules = {r["ruleName"]: r for r in plans[0]["rules"]}
        assert {n: r["lifecycle"]["deleteAfter"] for n, r in rules.items()} == {
            "daily": 30, "weekly": 84, "monthly": 365, "yearly": 1825}
        assert all(r.get("copyActions") for r in rules.values()) == bool(cfg.cross_region)
