"""A CloudWatch dashboard with the same metrics the alarms watch."""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from ops.thresholds import THRESHOLDS

from .config import StackConfig


def dashboard_body(c: StackConfig, primary_id: str, replica_ids: list[str]) -> str:
    widgets = []
    for i, t in enumerate(THRESHOLDS):
        if t.per == "instance":
            metrics = [[t.namespace, t.metric, "DBInstanceIdentifier", primary_id]]
        elif t.per == "replica":
            metrics = [[t.namespace, t.metric, "DBInstanceIdentifier", r] for r in replica_ids]
        else:
            metrics = [[t.namespace, t.metric, "DBName", db] for db in c.databases]
        widgets.append({"type": "metric", "x": (i % 3) * 8, "y": (i // 3) * 6, "width": 8, "height": 6,
                        "properties": {"title": f"{t.metric} ({t.key})", "region": c.region, "stat": t.statistic,
                                       "period": t.period_s, "metrics": metrics}})
    return json.dumps({"widgets": widgets})


class Dashboard(pulumi.ComponentResource):
    def __init__(self, name: str, config: StackConfig, primary_id, replica_ids: list,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("pgops:index:Dashboard", name, None, opts)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=f"pgops-{config.stack}",
            dashboard_body=pulumi.Output.all(primary_id, *replica_ids).apply(
                lambda ids: dashboard_body(config, ids[0], list(ids[1:]))),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"name": self.dashboard.dashboard_name})
