"""AWS stacks: the Pulumi Automation API at its boundary, and the database steps of a deploy on RDS.

``invoke deploy --stack NAME``: preview → without ``--yes`` show it and stop → with it, up → read the
outputs → wait until the instances are available → the same database steps as the local deploy
(pre-deploy backup to the stack's S3 bucket, migrate, verify), connecting with
``sslmode=verify-full`` and the RDS CA bundle, credentials read from the stack's Secrets Manager
secret → summary. Everything Pulumi is behind :class:`StackWorkspace`, so the flow is tested
without the CLI by faking the workspace.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .errors import ConfigError, OpsError

PROJECT_DIR = Path(__file__).resolve().parents[1]
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


class PulumiMissing(OpsError):
    exit_code = 9

    def __init__(self, stack: str):
        super().__init__(
            f"Stack '{stack}' is an AWS stack managed by Pulumi, and the `pulumi` CLI is not installed on this "
            "machine (the Automation API drives it).",
            "install it with `curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`), run "
            "`pulumi login` (or `pulumi login --local`), then rerun the command.")


class StackWorkspace(Protocol):
    """The three things pgops asks of a Pulumi stack."""

    def preview(self) -> str: ...
    def up(self) -> dict: ...
    def outputs(self) -> dict: ...


class _AutomationWorkspace:
    def __init__(self, stack):
        self.stack = stack

    def preview(self) -> str:
        res = self.stack.preview(on_output=lambda _l: None)
        return f"{res.change_summary}"

    def up(self) -> dict:
        res = self.stack.up(on_output=lambda _l: None)
        return {k: v.value for k, v in res.outputs.items() if not v.secret}

    def outputs(self) -> dict:
        return {k: v.value for k, v in self.stack.outputs().items() if not v.secret}


def open_workspace(stack: str, project_dir: Path = PROJECT_DIR) -> StackWorkspace:
    """The Automation API stack ``stack`` of the project in ``project_dir``.

    Raises :class:`PulumiMissing` (exit 9) when the ``pulumi`` CLI is not on PATH.
    """
    if shutil.which("pulumi") is None:
        raise PulumiMissing(stack)
    from pulumi import automation as auto
    return _AutomationWorkspace(auto.create_or_select_stack(stack_name=stack, work_dir=str(project_dir)))


def ca_bundle() -> str:
    """Path of the RDS CA bundle: ``$PGOPS_RDS_CA_BUNDLE`` or ``~/.postgresql/rds-global-bundle.pem``."""
    path = Path(os.environ.get("PGOPS_RDS_CA_BUNDLE", Path.home() / ".postgresql" / "rds-global-bundle.pem"))
    if not path.is_file():
        raise ConfigError([f"the RDS CA bundle {path} is missing (needed for sslmode=verify-full)"],
                          f"download it: `curl -fsSL -o {path} {RDS_CA_URL}` or set PGOPS_RDS_CA_BUNDLE.")
    return str(path)


@dataclass
class AwsClients:
    rds: object
    secretsmanager: object
    cloudwatch: object = None


def boto_clients(region: str) -> AwsClients:
    import boto3
    from botocore.config import Config
    cfg = Config(region_name=region, retries={"max_attempts": 10, "mode": "standard"})
    return AwsClients(boto3.client("rds", config=cfg), boto3.client("secretsmanager", config=cfg),
                      boto3.client("cloudwatch", config=cfg))


def snapshot_backups(env, clients: AwsClients, databases: list[str], now) -> list:
    """``backup.create --kind snapshot`` on an AWS stack: one tagged manual snapshot of the primary
    per database asked for (the snapshot holds the whole instance; the tag names the database)."""
    from .backups import rds
    return [rds.create_snapshot(clients.rds, env.outputs["primary_id"], d, now) for d in databases]


def publish_freshness(env, clients: AwsClients, repo, database: str, *, succeeded: bool, size_bytes: int, now) -> None:
    """After a backup on an AWS stack: BackupSucceeded / BackupAgeSeconds / BackupSizeBytes, and
    PassedDrillAgeSeconds when a drill of this database ever passed (none published: the 35-day
    alarm treats the missing data as breaching)."""
    from datetime import datetime
    from .backups import engine, metrics
    from .drills.runner import history
    newest = engine.list_backups(repo, database)
    age = (now - newest[0].created).total_seconds() if newest else 10 ** 9
    metrics.publish_backup_metrics(clients.cloudwatch, database, succeeded=succeeded, age_seconds=age,
                                   size_bytes=size_bytes, now=now)
    passed = [h for h in history(repo, database) if h.get("passed")]
    if passed:
        drilled = datetime.fromisoformat(passed[0]["started_at"])
        clients.cloudwatch.put_metric_data(Namespace=metrics.NAMESPACE, MetricData=[{
            "MetricName": "PassedDrillAgeSeconds", "Dimensions": [{"Name": "DBName", "Value": database}],
            "Timestamp": now, "Value": (now - drilled).total_seconds(), "Unit": "Seconds"}])


def environment_from_outputs(stack: str, outputs: dict, clients: AwsClients, *, sslmode: str = "verify-full",
                             sslrootcert: str | None = None, wait: bool = True,
                             wait_delay_s: float = 30, wait_attempts: int = 60):
    """An :class:`~ops.environment.Environment` for a deployed stack: endpoints from the outputs,
    credentials from the master secret (never printed), TLS verified against the RDS CA bundle."""
    from .environment import Environment
    ids = [outputs["primary_id"], *outputs.get("replica_ids", [])]
    if wait:
        waiter = clients.rds.get_waiter("db_instance_available")
        for i in ids:
            waiter.wait(DBInstanceIdentifier=i, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts})
    secret = json.loads(clients.secretsmanager.get_secret_value(SecretId=outputs["master_secret_arn"])["SecretString"])
    tls = {"sslmode": sslmode, **({"sslrootcert": sslrootcert} if sslrootcert else {})}
    primary = {"host": outputs["primary_endpoint"], "port": int(outputs.get("primary_port", 5432)),
               "user": secret["username"], "password": secret["password"], **tls}
    replicas = tuple({**primary, "host": h} for h in outputs.get("replica_endpoints", []))
    return Environment(stack, primary, replicas, repository=outputs.get("backup_repository"),
                       region=outputs.get("region"), outputs=dict(outputs))


def deploy_aws(stack: str, workspace: StackWorkspace, *, yes: bool, sql_root: Path, databases: list[str] | None,
               clients_for: Callable[[str], AwsClients] = boto_clients, sslmode: str = "verify-full",
               sslrootcert: str | None = None, progress: Callable[[str], None] | None = None,
               wait_delay_s: float = 30):
    """Preview, and with ``yes`` apply, then run the database steps. Returns (preview text, report
    or None when only previewed)."""
    from .backups.repository import open_repository
    from .deploy import deploy
    say = progress or (lambda _m: None)
    say(f"previewing stack {stack}")
    preview = workspace.preview()
    if not yes:
        return preview, None
    say(f"updating stack {stack}")
    outputs = workspace.up()
    clients = clients_for(outputs["region"])
    say("waiting for the instances to be available")
    env = environment_from_outputs(stack, outputs, clients, sslmode=sslmode, sslrootcert=sslrootcert,
                                   wait_delay_s=wait_delay_s)
    repo = open_repository(outputs["backup_repository"], outputs.get("kms_key_arn"))
    return preview, deploy(env, sql_root, databases, repository=repo, progress=say)


def aws_snapshot_drill(env, clients: AwsClients, repo, database: str, sql_root: Path, now, *,
                       instance_class: str = "db.t4g.medium", wait_delay_s: float = 30, on_report=None):
    """``drill.run --kind snapshot`` on an AWS stack: restore the newest pgops snapshot of
    ``database`` into a throwaway instance in the stack's subnet group and security group, run the
    data checks against it (ledger, every applied verify.sql, drill checks), delete it. The report
    is stored in the stack's repository; the drill metrics are published."""
    from .backups import metrics, rds
    from .drills.rds import run_snapshot_drill
    from .drills.report import Check
    from .drills.runner import _schema_checks, store_report
    from .dsn import connect, tool_application_name
    snaps = [s for s in rds.list_snapshots(clients.rds, env.outputs["primary_id"], database) if s.status == "available"]
    if not snaps:
        raise OpsError(f"No available pgops snapshot of '{database}' on stack {env.stack}.",
                       f"take one with `invoke backup.create --stack {env.stack} --db {database} --kind snapshot`.")

    def checks(target) -> list:
        params = {**env.primary, "host": target.host, "port": target.port}
        with connect(params, dbname=database, autocommit=True, application_name=tool_application_name("drill")) as conn:
            found = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                                 "'public'::regnamespace").fetchone()[0]
            return [Check("restored database has tables", found > 0, f"{found} tables in public")] + \
                _schema_checks(conn, database, sql_root, None, check_ledger=False)

    def finish(report):
        store_report(repo, report)
        if on_report:
            on_report(report)
        metrics.publish_drill_metrics(clients.cloudwatch, database, succeeded=report.passed,
                                      rto_seconds=report.rto_seconds, rpo_seconds=report.rpo_seconds, now=now())
    return run_snapshot_drill(clients.rds, snaps[0].id, database, subnet_group=env.outputs["subnet_group"],
                              security_groups=[env.outputs["security_group_id"]], instance_class=instance_class,
                              checks=checks, now=now, wait_delay_s=wait_delay_s, on_report=finish)
