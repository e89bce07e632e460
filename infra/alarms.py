"""Alarms: an SNS topic encrypted with KMS, email subscriptions, and one CloudWatch alarm per
threshold in :mod:`ops.thresholds` (AWS's recommended RDS alarms plus the ``pgops`` namespace), each
with alarm and OK actions to the topic and a description naming its runbook file."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.thresholds import THRESHOLDS, Threshold, resolve

from .config import StackConfig


@dataclass
class AlarmsArgs:
    config: StackConfig
    key_arn: pulumi.Input[str]
    primary_id: pulumi.Input[str]
    replica_ids: list[pulumi.Input[str]]


def instance_facts(c: StackConfig) -> dict[str, float]:
    return {"max_connections": c.max_connections, "memory_bytes": c.memory_gb * 1024 ** 3,
            "allocated_storage_bytes": c.allocated_storage_gb * 1024 ** 3, "vcpus": c.vcpus}


class Alarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pgops:index:Alarms", name, None, opts)
        c = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-topic", name=f"pgops-{c.stack}-alarms", kms_master_key_id=args.key_arn,
                                   tags={"pgops:stack": c.stack}, opts=child)
        for i, email in enumerate(c.alarm_emails):
            aws.sns.TopicSubscription(f"{name}-email-{i}", topic=self.topic.arn, protocol="email", endpoint=email,
                                      opts=child)
        facts = instance_facts(c)
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for t in THRESHOLDS:
            if t.per == "instance":
                self._alarm(name, t, "primary", {"DBInstanceIdentifier": args.primary_id}, facts, c)
            elif t.per == "replica":
                for i, rid in enumerate(args.replica_ids):
                    self._alarm(name, t, f"replica-{i + 1}", {"DBInstanceIdentifier": rid}, facts, c)
            else:
                for db in c.databases:
                    self._alarm(name, t, db, {"DBName": db}, facts, c)
        self.register_outputs({"topic_arn": self.topic.arn})

    def _alarm(self, name: str, t: Threshold, target: str, dims: dict, facts: dict, c: StackConfig) -> None:
        stat = {"extended_statistic": t.statistic} if t.statistic.startswith("p") else {"statistic": t.statistic}
        key = f"{t.key}-{target}"
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{name}-{key}", name=f"pgops-{c.stack}-{key}", namespace=t.namespace, metric_name=t.metric,
            dimensions=dims, period=t.period_s, evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints, threshold=resolve(t, facts), comparison_operator=t.comparison,
            treat_missing_data=t.treat_missing, alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn],
            alarm_description=f"{t.description} on {target}. Runbook: {t.runbook}",
            tags={"pgops:stack": c.stack}, opts=pulumi.ResourceOptions(parent=self), **stat)
