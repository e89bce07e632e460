"""PostgresCluster: RDS PostgreSQL primary and read replicas with the safety settings AWS and
terraform-aws-modules/rds expose: customer KMS key with rotation, private subnet group, a security
group admitting 5432 only from configured CIDRs / groups, a parameter group forcing SSL and loading
pg_stat_statements, encryption, no public access, deletion protection, ≥ 7 days of automated
backups, a final snapshot, IAM authentication, Performance Insights, Enhanced Monitoring, log
exports, storage autoscaling. The master password is a stack secret copied into Secrets Manager
(RDS-managed master passwords cannot be used with blue/green deployments); it is never an output.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StackConfig
from .iam import assume_role_policy


def rotating_key(name: str, description: str, tags: dict, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """A customer-managed KMS key with yearly rotation and a 30-day deletion window."""
    return aws.kms.Key(name, description=description, enable_key_rotation=True, deletion_window_in_days=30,
                       tags=tags, opts=opts)


@dataclass
class PostgresClusterArgs:
    config: StackConfig
    master_password: pulumi.Input[str]


class PostgresCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pgops:index:PostgresCluster", name, None, opts)
        c = args.config
        child = pulumi.ResourceOptions(parent=self)
        tags = {"pgops:stack": c.stack, "pgops:environment": c.environment, "pgops:managed": "true"}

        self.key = rotating_key(f"{name}-key", f"pgops {c.stack}: RDS, Performance Insights, secrets", tags, child)
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/pgops-{c.stack}", target_key_id=self.key.key_id, opts=child)

        self.subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=c.subnet_ids, tags=tags, opts=child)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=c.vpc_id, description=f"pgops {c.stack}: PostgreSQL 5432 from allowed sources",
            tags=tags, opts=child)
        for i, cidr in enumerate(c.allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(f"{name}-in-cidr-{i}", security_group_id=self.security_group.id,
                                             ip_protocol="tcp", from_port=5432, to_port=5432, cidr_ipv4=cidr,
                                             description="PostgreSQL", opts=child)
        for i, sg in enumerate(c.allowed_security_group_ids):
            aws.vpc.SecurityGroupIngressRule(f"{name}-in-sg-{i}", security_group_id=self.security_group.id,
                                             ip_protocol="tcp", from_port=5432, to_port=5432,
                                             referenced_security_group_id=sg, description="PostgreSQL", opts=child)

        params = [
            aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1", apply_method="pending-reboot"),
            aws.rds.ParameterGroupParameterArgs(name="shared_preload_libraries", value="pg_stat_statements",
                                                apply_method="pending-reboot"),
            aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement",
                                                value=str(c.log_min_duration_statement_ms)),
            aws.rds.ParameterGroupParameterArgs(name="rds.logical_replication",
                                                value="1" if c.logical_replication else "0",
                                                apply_method="pending-reboot"),
        ]
        self.parameter_group = aws.rds.ParameterGroup(f"{name}-params", family=c.parameter_group_family,
                                                      parameters=params, tags=tags, opts=child)

        self.monitoring_role = aws.iam.Role(f"{name}-monitoring", assume_role_policy=assume_role_policy(
            "monitoring.rds.amazonaws.com"), tags=tags, opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-monitoring-policy", role=self.monitoring_role.name,
                                     policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
                                     opts=child)

        common = dict(
            storage_encrypted=True, kms_key_id=self.key.arn, publicly_accessible=False,
            vpc_security_group_ids=[self.security_group.id], parameter_group_name=self.parameter_group.name,
            performance_insights_enabled=True, performance_insights_kms_key_id=self.key.arn,
            monitoring_interval=60, monitoring_role_arn=self.monitoring_role.arn,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"], iam_database_authentication_enabled=True,
            auto_minor_version_upgrade=True, copy_tags_to_snapshot=True, tags=tags)
        self.primary = aws.rds.Instance(
            f"{name}-primary", identifier=f"pgops-{c.stack}-primary", engine="postgres",
            engine_version=c.engine_version, instance_class=c.instance_class, allocated_storage=c.allocated_storage_gb,
            max_allocated_storage=c.max_allocated_storage_gb, storage_type="gp3", username=c.master_username,
            password=args.master_password, db_subnet_group_name=self.subnet_group.name, multi_az=c.multi_az,
            deletion_protection=c.deletion_protection, backup_retention_period=c.backup_retention_days,
            backup_window="01:00-01:30", maintenance_window="sun:03:00-sun:04:00",
            skip_final_snapshot=False, final_snapshot_identifier=f"pgops-{c.stack}-primary-final", **common,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["password"]))
        self.replicas = [
            aws.rds.Instance(f"{name}-replica-{i + 1}", identifier=f"pgops-{c.stack}-replica-{i + 1}",
                             replicate_source_db=self.primary.identifier, instance_class=c.replica_instance_class,
                             max_allocated_storage=c.max_allocated_storage_gb, skip_final_snapshot=True,
                             deletion_protection=c.deletion_protection, backup_retention_period=0, **common, opts=child)
            for i in range(c.replica_count)]
        self.cross_region_replica = None
        if c.cross_region_replica:
            far = aws.Provider(f"{name}-far", region=c.cross_region, opts=child)
            far_opts = pulumi.ResourceOptions(parent=self, provider=far)
            far_key = rotating_key(f"{name}-far-key", f"pgops {c.stack}: cross-region replica", tags, far_opts)
            far_subnets = aws.rds.SubnetGroup(f"{name}-far-subnets", subnet_ids=c.cross_region_subnet_ids, tags=tags,
                                              opts=far_opts)
            self.cross_region_replica = aws.rds.Instance(
                f"{name}-replica-far", identifier=f"pgops-{c.stack}-replica-{c.cross_region}",
                replicate_source_db=self.primary.arn, instance_class=c.replica_instance_class,
                db_subnet_group_name=far_subnets.name, storage_encrypted=True, kms_key_id=far_key.arn,
                publicly_accessible=False, skip_final_snapshot=True, deletion_protection=c.deletion_protection,
                performance_insights_enabled=True, performance_insights_kms_key_id=far_key.arn,
                iam_database_authentication_enabled=True, copy_tags_to_snapshot=True, tags=tags, opts=far_opts)

        self.secret = aws.secretsmanager.Secret(f"{name}-master", name=f"pgops/{c.stack}/master",
                                                kms_key_id=self.key.arn, tags=tags, opts=child)
        aws.secretsmanager.SecretVersion(
            f"{name}-master-version", secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(pulumi.Output.all(self.primary.address, self.primary.port,
                                                                 args.master_password).apply(
                lambda a: json.dumps({"username": c.master_username, "password": a[2], "host": a[0],
                                      "port": a[1], "engine": "postgres"}))), opts=child)
        self.register_outputs({"endpoint": self.primary.address, "secret_arn": self.secret.arn,
                               "key_arn": self.key.arn, "replica_endpoints": [r.address for r in self.replicas]})
