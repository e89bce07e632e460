"""The Scheduler component through the program's real entry point (``infra/__main__.py`` with config
as the CLI passes it, strings), for both stacks: ECR, the Fargate task definition in the private
subnets with a security group the database admits, roles, a log group with the configured retention,
one EventBridge Scheduler schedule per job with exactly the expression and time zone of
``ops.schedules`` (what ``invoke schedule.show`` prints) running ``invoke schedule.run NAME``, a DLQ,
alarms that name their runbook — and no secret anywhere in the task definition."""
from __future__ import annotations

import json

import pytest
import yaml

from ops.schedules import ALARMS, jobs_for
from tests.infra.test_entry_point import REPO, cli_config, run_entry_point
from tests.infra.test_stack import PASSWORD


@pytest.fixture(scope="module", params=["dev", "prod"])
def built(request):
    mp = pytest.MonkeyPatch()
    try:
        stack = request.param
        rec = run_entry_point(mp, stack, {**cli_config(stack), "pgops:masterPassword": PASSWORD})
    finally:
        mp.undo()
    raw = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    return stack, raw, rec


def test_one_schedule_per_job_with_the_schedule_modules_expression_and_zone(built):
    stack, raw, rec = built
    jobs = jobs_for(stack, raw["pgops:databases"], business_tz=raw.get("pgops:scheduleTimeZone", "UTC"))
    schedules = {s["name"]: s for s in rec.of("aws:scheduler/schedule:Schedule")}
    assert set(schedules) == {f"pgops-{stack}-{j.name}" for j in jobs}
    dlq = rec.named("aws:sqs/queue:Queue", "scheduler-dlq")
    for j in jobs:
        s = schedules[f"pgops-{stack}-{j.name}"]
        assert s["scheduleExpression"] == j.eventbridge and s["scheduleExpressionTimezone"] == j.time_zone
        assert s["flexibleTimeWindow"]["mode"] == "OFF" and s["state"] == "ENABLED"
        target = s["target"]
        command = json.loads(target["input"])["containerOverrides"][0]["command"]
        assert command == ["invoke", "schedule.run", j.name]
        assert target["deadLetterConfig"]["arn"] == dlq["arn"]
        assert target["retryPolicy"]["maximumRetryAttempts"] >= 1
        ecs = target["ecsParameters"]
        assert ecs["launchType"] == "FARGATE"
        net = ecs["networkConfiguration"]
        assert net["subnets"] == raw["pgops:subnetIds"] and net["assignPublicIp"] is False
    hourly = schedules[f"pgops-{stack}-backup-hourly"]
    assert hourly["scheduleExpression"] == "cron(0 8-18 ? * MON-FRI *)"
    assert hourly["scheduleExpressionTimezone"] == raw["pgops:scheduleTimeZone"]
    assert schedules[f"pgops-{stack}-backup-daily"]["scheduleExpression"] == "cron(0 2 * * ? *)"


def test_task_definition_roles_network_and_logs(built):
    stack, raw, rec = built
    td = rec.named("aws:ecs/taskDefinition:TaskDefinition", "scheduler-task-definition")
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    containers = json.loads(td["containerDefinitions"])
    (c,) = containers
    assert c["logConfiguration"]["logDriver"] == "awslogs"
    logs = rec.named("aws:cloudwatch/logGroup:LogGroup", "scheduler-logs")
    assert logs["retentionInDays"] == raw.get("pgops:scheduleLogRetentionDays", 90)
    assert c["logConfiguration"]["options"]["awslogs-group"] == logs["name"]
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert env["PGOPS_STACK"] == stack
    outputs = json.loads(env["PGOPS_STACK_OUTPUTS"])
    assert outputs["primary_endpoint"] and outputs["master_secret_arn"] and outputs["backup_repository"].startswith("s3://")
    # no secret: the password is read from Secrets Manager at run time, never put in the definition
    assert PASSWORD not in td["containerDefinitions"] and "secrets" not in c
    assert not any("PASSWORD" in k or "SECRET_ACCESS" in k for k in env)
    repo = rec.named("aws:ecr/repository:Repository", "scheduler-images")
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert c["image"].endswith(":0.1.0")
    attachments = {a["policyArn"] for a in rec.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    ops_policy = rec.named("aws:iam/policy:Policy", "backups-ops-policy")
    assert ops_policy["arn"] in attachments
    assert "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy" in attachments
    assert td["taskRoleArn"] and td["executionRoleArn"] and td["taskRoleArn"] != td["executionRoleArn"]
    rules = rec.of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    admits = [r for r in rules if r.get("referencedSecurityGroupId") == "scheduler-tasks-id"]
    assert len(admits) == 1 and admits[0]["fromPort"] == 5432 and admits[0]["securityGroupId"] == "pg-sg-id"
    invoker = json.loads(rec.named("aws:iam/rolePolicy:RolePolicy", "scheduler-invoker-policy")["policy"])
    actions = {s["Action"] for s in invoker["Statement"]}
    assert actions == {"ecs:RunTask", "iam:PassRole", "sqs:SendMessage"}


def test_alarms_on_failed_runs_name_the_runbook(built):
    stack, raw, rec = built
    alarms = {a["name"]: a for a in rec.of("aws:cloudwatch/metricAlarm:MetricAlarm")}
    jobs = jobs_for(stack, raw["pgops:databases"], business_tz=raw.get("pgops:scheduleTimeZone", "UTC"))
    mine = {n: a for n, a in alarms.items() if "-job-failed-" in n or "-schedule-" in n}
    assert set(mine) == {f"pgops-{stack}-job-failed-{j.name}" for j in jobs} | {
        f"pgops-{stack}-schedule-dlq", f"pgops-{stack}-schedule-target-errors"}
    for a in mine.values():
        assert "runbooks/scheduled-job-failed.md" in a["alarmDescription"] and a["alarmActions"]
    assert (REPO / ALARMS["job_failed"]).is_file()
    failed = mine[f"pgops-{stack}-job-failed-backup-daily"]
    assert (failed["namespace"], failed["metricName"]) == ("pgops", "JobSucceeded")
    assert failed["dimensions"] == {"Stack": stack, "Job": "backup-daily"}
