"""Scheduler: the jobs of ``ops.schedules`` run on AWS without anyone's laptop.

An ECR repository for the pgops image (``Dockerfile``: immutable tags, scanned on push, encrypted
with the stack's key), an ECS cluster and a Fargate task definition in the stack's private subnets
(a security group of its own that the database's security group admits on 5432), a task role with
the ops policy (the least-privilege policy of ``BackupStore``) and an execution role (image pull,
logs), a CloudWatch log group with retention, one EventBridge Scheduler schedule per job with the
expression and time zone ``invoke schedule.show`` prints (``Job.eventbridge``, ``Job.time_zone``),
flexible window off, a retry policy and a dead-letter queue, and alarms — a job that failed
(``pgops/JobSucceeded`` < 1, published by ``schedule.run``), messages in the dead-letter queue,
scheduler target errors — each naming ``runbooks/scheduled-job-failed.md`` (``ops.schedules.ALARMS``).

No secret is in the task definition: the container gets the stack's non-secret outputs
(``PGOPS_STACK_OUTPUTS``) and reads the master password from Secrets Manager at run time with the
task role, as every ``--stack`` task does. Sources: EventBridge Scheduler user guide ("Schedule
types": cron expressions and ``ScheduleExpressionTimezone``; "Configuring a dead-letter queue";
"Monitoring with CloudWatch": ``AWS/Scheduler`` ``TargetErrorCount``); ECS "Fargate task networking".
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.schedules import ALARMS, JOB_METRIC, Job, jobs_for

from .config import StackConfig
from .iam import assume_role_policy

CONTAINER = "pgops"


@dataclass
class SchedulerArgs:
    config: StackConfig
    key_arn: pulumi.Input[str]
    db_security_group_id: pulumi.Input[str]
    ops_policy_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    stack_outputs: dict  # name → Input: the non-secret outputs the container resolves its stack from


def stack_jobs(c: StackConfig) -> list[Job]:
    """The jobs this stack schedules: ``ops.schedules.jobs_for`` over the stack's databases."""
    return jobs_for(c.stack, c.databases, business_tz=c.schedule_time_zone, copy_to=c.copy_repository)


class Scheduler(pulumi.ComponentResource):
    def __init__(self, name: str, args: SchedulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pgops:index:Scheduler", name, None, opts)
        c = args.config
        child = pulumi.ResourceOptions(parent=self)
        tags = {"pgops:stack": c.stack, "pgops:environment": c.environment}
        self.jobs = stack_jobs(c)

        self.repository = aws.ecr.Repository(
            f"{name}-images", name=f"pgops-{c.stack}", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS",
                                                                                     kms_key=args.key_arn)],
            tags=tags, opts=child)
        aws.ecr.LifecyclePolicy(f"{name}-images-lifecycle", repository=self.repository.name, policy=json.dumps({
            "rules": [{"rulePriority": 1, "description": "keep the 20 newest images",
                       "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
                       "action": {"type": "expire"}}]}), opts=child)
        self.log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/pgops/{c.stack}/jobs",
                                                 retention_in_days=c.schedule_log_retention_days, tags=tags, opts=child)
        self.cluster = aws.ecs.Cluster(f"{name}-cluster", name=f"pgops-{c.stack}", settings=[
            aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")], tags=tags, opts=child)

        self.execution_role = aws.iam.Role(f"{name}-execution", assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
                                           tags=tags, opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-execution-policy", role=self.execution_role.name,
                                     policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
                                     opts=child)
        aws.iam.RolePolicy(f"{name}-execution-kms", role=self.execution_role.id, policy=pulumi.Output.from_input(
            args.key_arn).apply(lambda k: json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": k}]})), opts=child)
        self.task_role = aws.iam.Role(f"{name}-task", assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
                                      tags=tags, opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-task-ops-policy", role=self.task_role.name,
                                     policy_arn=args.ops_policy_arn, opts=child)

        self.security_group = aws.ec2.SecurityGroup(f"{name}-tasks", vpc_id=c.vpc_id,
                                                    description=f"pgops {c.stack}: scheduled jobs (Fargate)",
                                                    tags=tags, opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-tasks-out", security_group_id=self.security_group.id,
                                        ip_protocol="-1", cidr_ipv4="0.0.0.0/0",
                                        description="PostgreSQL, S3, Secrets Manager, ECR, CloudWatch", opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-db-admits-tasks", security_group_id=args.db_security_group_id,
                                         referenced_security_group_id=self.security_group.id, ip_protocol="tcp",
                                         from_port=5432, to_port=5432, description="pgops scheduled jobs",
                                         opts=child)

        environment = {"PGOPS_STACK": c.stack, "PGOPS_SCHEDULE_TZ": c.schedule_time_zone, "AWS_REGION": c.region}
        if c.copy_repository:
            environment["PGOPS_COPY_TO"] = c.copy_repository
        if c.copy_kms_key_id:
            environment["PGOPS_COPY_KMS_KEY_ID"] = c.copy_kms_key_id
        keys = list(args.stack_outputs)
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task-definition", family=f"pgops-{c.stack}-jobs", cpu="1024", memory="4096",
            network_mode="awsvpc", requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role.arn, task_role_arn=self.task_role.arn,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX",
                                                                       cpu_architecture="X86_64"),
            ephemeral_storage=aws.ecs.TaskDefinitionEphemeralStorageArgs(size_in_gib=100),  # drills restore here
            container_definitions=pulumi.Output.all(self.repository.repository_url, self.log_group.name,
                                                    *args.stack_outputs.values()).apply(
                lambda a: json.dumps([{
                    "name": CONTAINER, "image": f"{a[0]}:{c.scheduler_image_tag}", "essential": True,
                    "command": ["invoke", "schedule.show"],
                    "environment": [{"name": k, "value": v} for k, v in sorted({
                        **environment, "PGOPS_STACK_OUTPUTS": json.dumps(dict(zip(keys, a[2:])), sort_keys=True),
                    }.items())],
                    "logConfiguration": {"logDriver": "awslogs", "options": {
                        "awslogs-group": a[1], "awslogs-region": c.region, "awslogs-stream-prefix": "job"}},
                }])),
            tags=tags, opts=child)

        self.dead_letter_queue = aws.sqs.Queue(f"{name}-dlq", name=f"pgops-{c.stack}-schedule-dlq",
                                               message_retention_seconds=14 * 86400, sqs_managed_sse_enabled=True,
                                               tags=tags, opts=child)
        self.scheduler_role = aws.iam.Role(f"{name}-invoker", assume_role_policy=assume_role_policy("scheduler.amazonaws.com"),
                                           tags=tags, opts=child)
        aws.iam.RolePolicy(f"{name}-invoker-policy", role=self.scheduler_role.id, policy=pulumi.Output.all(
            self.task_definition.arn_without_revision, self.cluster.arn, self.task_role.arn, self.execution_role.arn,
            self.dead_letter_queue.arn).apply(lambda a: json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": f"{a[0]}:*",
                 "Condition": {"ArnLike": {"ecs:cluster": a[1]}}},
                {"Effect": "Allow", "Action": "iam:PassRole", "Resource": [a[2], a[3]],
                 "Condition": {"StringLike": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": a[4]}]})), opts=child)

        self.group = aws.scheduler.ScheduleGroup(f"{name}-group", name=f"pgops-{c.stack}", tags=tags, opts=child)
        self.schedules: dict[str, aws.scheduler.Schedule] = {}
        for job in self.jobs:
            self.schedules[job.name] = aws.scheduler.Schedule(
                f"{name}-{job.name}", name=f"pgops-{c.stack}-{job.name}", group_name=self.group.name,
                description=job.description[:512], schedule_expression=job.eventbridge,
                schedule_expression_timezone=job.time_zone, state="ENABLED",
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(
                    arn=self.cluster.arn, role_arn=self.scheduler_role.arn,
                    ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                        task_definition_arn=self.task_definition.arn, launch_type="FARGATE", task_count=1,
                        network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                            subnets=c.subnet_ids, security_groups=[self.security_group.id], assign_public_ip=False)),
                    input=json.dumps({"containerOverrides": [
                        {"name": CONTAINER, "command": ["invoke", "schedule.run", job.name]}]}),
                    dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=self.dead_letter_queue.arn),
                    retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(maximum_event_age_in_seconds=3600,
                                                                             maximum_retry_attempts=3)),
                opts=child)

        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        common = dict(alarm_actions=[args.alarm_topic_arn], ok_actions=[args.alarm_topic_arn], tags=tags, opts=child)
        for job in self.jobs:
            self.alarms[f"job_failed-{job.name}"] = aws.cloudwatch.MetricAlarm(
                f"{name}-failed-{job.name}", name=f"pgops-{c.stack}-job-failed-{job.name}", namespace="pgops",
                metric_name=JOB_METRIC, dimensions={"Stack": c.stack, "Job": job.name}, statistic="Minimum",
                period=3600, evaluation_periods=1, threshold=1, comparison_operator="LessThanThreshold",
                treat_missing_data="notBreaching",
                alarm_description=f"scheduled job {job.name} failed ({' && '.join(' '.join(s) for s in job.steps)}). "
                                  f"Runbook: {ALARMS['job_failed']}", **common)
        self.alarms["schedule_dlq"] = aws.cloudwatch.MetricAlarm(
            f"{name}-dlq-not-empty", name=f"pgops-{c.stack}-schedule-dlq", namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible", dimensions={"QueueName": self.dead_letter_queue.name},
            statistic="Maximum", period=300, evaluation_periods=1, threshold=0, comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_description=f"a scheduled job could not be started (its event is in the dead-letter queue). "
                              f"Runbook: {ALARMS['schedule_dlq']}", **common)
        self.alarms["schedule_target_errors"] = aws.cloudwatch.MetricAlarm(
            f"{name}-target-errors", name=f"pgops-{c.stack}-schedule-target-errors", namespace="AWS/Scheduler",
            metric_name="TargetErrorCount", dimensions={"ScheduleGroup": self.group.name}, statistic="Sum",
            period=300, evaluation_periods=1, threshold=0, comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_description=f"EventBridge Scheduler could not run a job's ECS task (RunTask failed). "
                              f"Runbook: {ALARMS['schedule_target_errors']}", **common)
        self.register_outputs({"repository_url": self.repository.repository_url, "cluster_arn": self.cluster.arn,
                               "dead_letter_queue_arn": self.dead_letter_queue.arn})
