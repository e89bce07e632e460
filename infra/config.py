"""Typed stack configuration for the Pulumi program, validated with every error reported at once
(patroni ``config.py`` habit). Keys live under the ``pgops:`` namespace of ``Pulumi.<stack>.yaml``;
the README lists every one."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

# vCPUs, memory (GiB) and RDS's default max_connections (LEAST(DBInstanceClassMemory/9531392, 5000))
# for the classes the stack configs use; other classes need pgops:vcpus / memoryGb / maxConnections.
INSTANCE_FACTS = {
    "db.t4g.micro": (2, 1), "db.t4g.small": (2, 2), "db.t4g.medium": (2, 4), "db.t4g.large": (2, 8),
    "db.m6g.large": (2, 8), "db.m6g.xlarge": (4, 16), "db.m7g.large": (2, 8), "db.m7g.xlarge": (4, 16),
    "db.r6g.large": (2, 16), "db.r6g.xlarge": (4, 32), "db.r7g.large": (2, 16), "db.r7g.xlarge": (4, 32),
}


CONFIG_KEYS = ("environment", "region", "vpcId", "subnetIds", "allowedCidrs", "allowedSecurityGroupIds",
               "engineVersion", "parameterGroupFamily", "instanceClass", "allocatedStorageGb", "maxAllocatedStorageGb",
               "multiAz", "replicaCount", "replicaInstanceClass", "backupRetentionDays", "deletionProtection",
               "logMinDurationStatementMs", "logicalReplication", "masterUsername", "databases", "alarmEmails",
               "vcpus", "memoryGb", "maxConnections", "crossRegion", "crossRegionReplica", "crossRegionSubnetIds",
               "objectLockDays", "backupPrefix", "iaAfterDays", "glacierAfterDays", "noncurrentExpireDays",
               "awsBackupPlan")
CONFIG_KEYS += ("scheduleTimeZone", "scheduleLogRetentionDays", "schedulerImageTag", "copyRepository", "copyKmsKeyId")
"""Every ``pgops:`` key the program reads (plus the secret ``pgops:masterPassword``)."""

LIST_KEYS = frozenset({"subnetIds", "allowedCidrs", "allowedSecurityGroupIds", "databases", "alarmEmails",
                       "crossRegionSubnetIds"})
"""Keys whose value is a list; the Pulumi CLI hands them to the program as JSON text."""


class ConfigInvalid(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: str
    region: str
    vpc_id: str
    subnet_ids: list[str]
    allowed_cidrs: list[str]
    allowed_security_group_ids: list[str]
    engine_version: str
    parameter_group_family: str
    instance_class: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    multi_az: bool
    replica_count: int
    replica_instance_class: str
    backup_retention_days: int
    deletion_protection: bool
    log_min_duration_statement_ms: int
    logical_replication: bool
    master_username: str
    databases: list[str]
    alarm_emails: list[str]
    vcpus: int
    memory_gb: float
    max_connections: int
    cross_region: str | None = None
    cross_region_replica: bool = False
    cross_region_subnet_ids: list[str] = field(default_factory=list)
    object_lock_days: int = 0
    backup_prefix: str = "pgops"
    ia_after_days: int = 30
    glacier_after_days: int = 90
    noncurrent_expire_days: int = 30
    aws_backup_plan: bool = False
    schedule_time_zone: str = "UTC"
    schedule_log_retention_days: int = 90
    scheduler_image_tag: str = "0.1.0"
    copy_repository: str | None = None
    copy_kms_key_id: str | None = None


def _get(raw: Mapping[str, Any], key: str, default=None):
    return raw.get(f"pgops:{key}", raw.get(key, default))


def parse_config(stack: str, raw: Mapping[str, Any], region: str | None = None) -> StackConfig:
    """Build a :class:`StackConfig` from a stack's config mapping (``pgops:key`` → value).

    Raises :class:`ConfigInvalid` listing every problem: missing keys, wrong types, and the safety
    rules (backup retention ≥ 7 days, deletion protection on in prod, storage ceiling ≥ allocation,
    at most 5 replicas, no public CIDR 0.0.0.0/0).
    """
    problems: list[str] = []

    def need(key, typ, default=None, required=False):
        v = _get(raw, key, default)
        if v is None:
            if required:
                problems.append(f"pgops:{key} is required")
            return default
        if typ is bool and isinstance(v, str):
            if v.lower() not in ("true", "false"):
                problems.append(f"pgops:{key} must be true or false, not {v!r}")
                return default
            v = v.lower() == "true"
        if typ in (int, float) and isinstance(v, str):
            try:
                v = typ(v)
            except ValueError:
                problems.append(f"pgops:{key} must be a number, not {v!r}")
                return default
        if typ is list and not isinstance(v, list):
            problems.append(f"pgops:{key} must be a list")
            return default
        if typ is not list and not isinstance(v, typ) and not (typ is float and isinstance(v, int)):
            problems.append(f"pgops:{key} must be {typ.__name__}, not {type(v).__name__}")
            return default
        return v

    environment = need("environment", str, "dev")
    region = region or _get(raw, "aws:region") or need("region", str, None, required=True)
    instance_class = need("instanceClass", str, "db.t4g.micro")
    facts = INSTANCE_FACTS.get(instance_class)
    vcpus = need("vcpus", int, facts[0] if facts else None, required=not facts)
    memory_gb = need("memoryGb", float, facts[1] if facts else None, required=not facts)
    default_conns = min(int((memory_gb or 0) * 1024 ** 3 / 9531392), 5000) if memory_gb else None
    cfg = dict(
        stack=stack, environment=environment, region=region,
        vpc_id=need("vpcId", str, required=True),
        subnet_ids=need("subnetIds", list, None, required=True) or [],
        allowed_cidrs=need("allowedCidrs", list, []),
        allowed_security_group_ids=need("allowedSecurityGroupIds", list, []),
        engine_version=need("engineVersion", str, "16.4"),
        parameter_group_family=need("parameterGroupFamily", str, "postgres16"),
        instance_class=instance_class,
        allocated_storage_gb=need("allocatedStorageGb", int, 20),
        max_allocated_storage_gb=need("maxAllocatedStorageGb", int, 100),
        multi_az=need("multiAz", bool, environment == "prod"),
        replica_count=need("replicaCount", int, 1),
        replica_instance_class=need("replicaInstanceClass", str, instance_class),
        backup_retention_days=need("backupRetentionDays", int, 7),
        deletion_protection=need("deletionProtection", bool, True),
        log_min_duration_statement_ms=need("logMinDurationStatementMs", int, 1000),
        logical_replication=need("logicalReplication", bool, False),
        master_username=need("masterUsername", str, "pgops_admin"),
        databases=need("databases", list, ["syncscript", "describeit", "futuresync", "fluxstudio", "advent"]),
        alarm_emails=need("alarmEmails", list, []),
        vcpus=vcpus, memory_gb=memory_gb,
        max_connections=need("maxConnections", int, default_conns, required=default_conns is None),
        cross_region=need("crossRegion", str, None),
        cross_region_replica=need("crossRegionReplica", bool, False),
        cross_region_subnet_ids=need("crossRegionSubnetIds", list, []),
        object_lock_days=need("objectLockDays", int, 0),
        backup_prefix=need("backupPrefix", str, "pgops"),
        ia_after_days=need("iaAfterDays", int, 30),
        glacier_after_days=need("glacierAfterDays", int, 90),
        noncurrent_expire_days=need("noncurrentExpireDays", int, 30),
        aws_backup_plan=need("awsBackupPlan", bool, False),
        schedule_time_zone=need("scheduleTimeZone", str, "UTC"),
        schedule_log_retention_days=need("scheduleLogRetentionDays", int, 90),
        scheduler_image_tag=need("schedulerImageTag", str, "0.1.0"),
        copy_repository=need("copyRepository", str, None),
        copy_kms_key_id=need("copyKmsKeyId", str, None),
    )
    if environment not in ("dev", "prod"):
        problems.append(f"pgops:environment must be dev or prod, not {environment!r}")
    if isinstance(cfg["backup_retention_days"], int) and cfg["backup_retention_days"] < 7:
        problems.append("pgops:backupRetentionDays must be at least 7")
    if environment == "prod" and cfg["deletion_protection"] is False:
        problems.append("pgops:deletionProtection cannot be false in prod")
    if isinstance(cfg["max_allocated_storage_gb"], int) and isinstance(cfg["allocated_storage_gb"], int) \
            and cfg["max_allocated_storage_gb"] < cfg["allocated_storage_gb"]:
        problems.append("pgops:maxAllocatedStorageGb must be at least pgops:allocatedStorageGb")
    if isinstance(cfg["replica_count"], int) and not 0 <= cfg["replica_count"] <= 5:
        problems.append("pgops:replicaCount must be 0..5")
    if any(c in ("0.0.0.0/0", "::/0") for c in cfg["allowed_cidrs"] or []):
        problems.append("pgops:allowedCidrs may not open the database to the internet (0.0.0.0/0)")
    if not cfg["allowed_cidrs"] and not cfg["allowed_security_group_ids"]:
        problems.append("pgops:allowedCidrs or pgops:allowedSecurityGroupIds must admit someone")
    if cfg["cross_region_replica"] and not (cfg["cross_region"] and cfg["cross_region_subnet_ids"]):
        problems.append("pgops:crossRegionReplica needs pgops:crossRegion and pgops:crossRegionSubnetIds")
    problems += _schedule_problems(cfg)
    if problems:
        raise ConfigInvalid(problems)
    return StackConfig(**cfg)


#: CloudWatch Logs' accepted retention periods (PutRetentionPolicy), days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


def _schedule_problems(cfg: dict) -> list[str]:
    """The Scheduler's keys: an IANA time zone, a retention CloudWatch accepts, a copy repository URL."""
    from ops.errors import ConfigError
    from ops.schedules import zone
    out = []
    try:
        zone(str(cfg["schedule_time_zone"]))
    except ConfigError:
        out.append(f"pgops:scheduleTimeZone must be an IANA time zone (e.g. Europe/Berlin), not {cfg['schedule_time_zone']!r}")
    if cfg["schedule_log_retention_days"] not in LOG_RETENTION_DAYS:
        out.append(f"pgops:scheduleLogRetentionDays must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    if cfg["copy_repository"] and not str(cfg["copy_repository"]).startswith("s3://"):
        out.append("pgops:copyRepository must be an s3://bucket/prefix URL")
    return out


def decode_cli_config(strings: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Turn config as the Pulumi CLI hands it to a Python program into typed values.

    The CLI passes every value as a string (``PULUMI_CONFIG``: a JSON object mapping
    ``"project:key"`` to a string; see ``pulumi.runtime.config.get_config``): a plain string as it
    is (``pgops:environment`` → ``dev``), a number or bool as its text (``20``, ``false``), a list or
    object as its JSON text (``["subnet-a","subnet-b"]``). ``strings``: ``"pgops:key"`` → that string.
    Returns (values for :func:`parse_config`, problems): list keys (:data:`LIST_KEYS`) are decoded
    from JSON; numbers and bools are left as text for :func:`parse_config` to convert and check;
    everything else stays a string — so ``pgops:environment: dev`` is never read as JSON.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []
    for full, value in strings.items():
        key = full.split(":", 1)[-1]
        if key in LIST_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                problems.append(f"{full} must be a list (YAML [a, b], passed by the CLI as JSON text), not {value!r}")
                continue
        out[full] = value
    return out, problems


def parse_cli_config(stack: str, strings: Mapping[str, str], region: str | None = None) -> StackConfig:
    """:func:`decode_cli_config` then :func:`parse_config`; raises :class:`ConfigInvalid` listing
    the problems of both at once."""
    raw, problems = decode_cli_config(strings)
    try:
        config = parse_config(stack, raw, region)
    except ConfigInvalid as exc:
        raise ConfigInvalid(problems + exc.problems) from None
    if problems:
        raise ConfigInvalid(problems)
    return config
