"""`invoke deploy --stack NAME` through the Automation API boundary: the workspace is faked (no
Pulumi CLI here), AWS is moto, and the "RDS endpoint" in the stack outputs is a real local
PostgreSQL, so the database steps after `up` really run."""
from __future__ import annotations

import json

import boto3
import pytest

from ops.deploy import deploy_aws
from ops.settings import from_options
from ops.targets import AwsClients
from ops.backups.engine import list_backups
from ops.backups.repository import S3Repository

from .conftest import invoke, query


class FakeWorkspace:
    def __init__(self, outputs):
        self._outputs, self.calls = outputs, []

    def preview(self):
        self.calls.append("preview")
        return "{'create': 42}"

    def up(self):
        self.calls.append("up")
        return dict(self._outputs)

    def outputs(self):
        return dict(self._outputs)


@pytest.fixture
def aws(moto_aws):
    return None


def test_preview_only_without_yes_then_up_and_database_steps(aws, pg, tmp_path):
    p = pg.conninfo()
    password = pg.layout.passfile.read_text().strip().rsplit(":", 1)[1]
    rds = boto3.client("rds")
    for ident in ("pgops-dev-primary", "pgops-dev-replica-1"):
        rds.create_db_instance(DBInstanceIdentifier=ident, DBInstanceClass="db.t4g.micro", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="postgres", MasterUserPassword="x" * 12)
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="pgops/dev/master",
                           SecretString=json.dumps({"username": "postgres", "password": password}))["ARN"]
    boto3.client("s3").create_bucket(Bucket="pgops-dev-backups",
                                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    outputs = {"primary_endpoint": "127.0.0.1", "primary_port": p["port"], "primary_id": "pgops-dev-primary",
               "replica_endpoints": [], "replica_ids": ["pgops-dev-replica-1"], "master_secret_arn": arn,
               "backup_repository": "s3://pgops-dev-backups/pgops", "region": "eu-west-1"}
    root = tmp_path / "sql"
    (root / "awsapp" / "migrations" / "001_init").mkdir(parents=True)
    (root / "awsapp" / "migrations" / "001_init" / "up.sql").write_text("CREATE TABLE t (id int);\n")
    clients = lambda region: AwsClients(boto3.client("rds", region_name=region), boto3.client("secretsmanager", region_name=region))
    ws = FakeWorkspace(outputs)

    settings = from_options({}, stack="dev", sql_root=str(root))
    preview, report = deploy_aws(settings, ws, yes=False, databases=None, clients_for=clients)
    assert report is None and ws.calls == ["preview"] and "42" in preview

    _, report = deploy_aws(settings, ws, yes=True, databases=None, clients_for=clients,
                           sslmode="disable", wait_delay_s=1)
    assert ws.calls == ["preview", "preview", "up"]
    row = report.rows[0]
    assert (row.database, row.created, row.after, row.checks_total) == ("awsapp", True, 1, 0)
    (root / "awsapp" / "migrations" / "002_more").mkdir()
    (root / "awsapp" / "migrations" / "002_more" / "up.sql").write_text("CREATE TABLE u (id int);\n")
    _, report = deploy_aws(settings, ws, yes=True, databases=None, clients_for=clients,
                           sslmode="disable", wait_delay_s=1)
    backups = list_backups(S3Repository("pgops-dev-backups", "pgops"), "awsapp")
    assert [b.id for b in backups] == [report.rows[0].backup_id] and report.rows[0].after == 2
    p.pop("dbname")
    query(p, "postgres", "DROP DATABASE awsapp WITH (FORCE)")


def test_cli_without_pulumi_says_how_to_install_it():
    env = {"PATH": "/usr/bin:/bin"}  # no pulumi anywhere
    for args in (["deploy", "--stack", "dev"], ["preview", "--stack", "prod"], ["db.status", "--stack", "dev"]):
        res = invoke(args, env)
        assert res.returncode == 9, res.stderr
        assert "pulumi" in res.stderr and "get.pulumi.com" in res.stderr and "Traceback" not in res.stderr
