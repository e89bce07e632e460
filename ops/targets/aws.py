"""An AWS stack as a target: endpoints from its Pulumi outputs, credentials from its Secrets
Manager secret (never printed), TLS verified against the RDS CA bundle, RDS snapshots and
CloudWatch metrics through boto3 with its standard retry mode.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..errors import ConfigError, OpsError
from ..secrets import Secret
from ..settings import Settings
from .base import AbstractTarget

RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


@dataclass
class AwsClients:
    rds: object
    secretsmanager: object
    cloudwatch: object = None


def boto_clients(region: str) -> AwsClients:
    """boto3 clients for ``region`` with botocore's standard retry mode (10 attempts)."""
    import boto3
    from botocore.config import Config
    cfg = Config(region_name=region, retries={"max_attempts": 10, "mode": "standard"})
    return AwsClients(boto3.client("rds", config=cfg), boto3.client("secretsmanager", config=cfg),
                      boto3.client("cloudwatch", config=cfg))


def ca_bundle(settings: Settings) -> str:
    """Path of the RDS CA bundle (``$PGOPS_RDS_CA_BUNDLE`` or ``~/.postgresql/rds-global-bundle.pem``).

    Raises :class:`ConfigError` with the download command when it is missing.
    """
    path = settings.rds_ca_bundle
    if not path.is_file():
        raise ConfigError([f"the RDS CA bundle {path} is missing (needed for sslmode=verify-full)"],
                          f"download it: `curl -fsSL -o {path} {RDS_CA_URL}` or set PGOPS_RDS_CA_BUNDLE.")
    return str(path)


class AwsTarget(AbstractTarget):
    """A deployed Pulumi stack (``--stack dev``). ``outputs`` are its non-secret stack outputs."""

    def __init__(self, settings: Settings, name: str, outputs: dict, clients: AwsClients, primary: dict,
                 replicas: tuple[dict, ...] = ()):
        self.name = name
        self.settings = settings
        self.outputs = dict(outputs)
        self.clients = clients
        self._primary = dict(primary)
        self._replicas = tuple(replicas)

    @classmethod
    def from_outputs(cls, settings: Settings, name: str, outputs: dict, clients: AwsClients, *,
                     sslmode: str = "verify-full", sslrootcert: str | None = None, wait: bool = False,
                     wait_delay_s: float = 30, wait_attempts: int = 60) -> "AwsTarget":
        """Endpoints from the stack outputs, credentials from the master secret (Secrets Manager),
        TLS against the RDS CA bundle. ``wait``: block until every instance is available
        (boto3 waiter, ``wait_delay_s`` seconds between ``wait_attempts`` polls)."""
        ids = [outputs["primary_id"], *outputs.get("replica_ids", [])]
        if wait:
            waiter = clients.rds.get_waiter("db_instance_available")
            for i in ids:
                waiter.wait(DBInstanceIdentifier=i, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts})
        secret = json.loads(clients.secretsmanager.get_secret_value(SecretId=outputs["master_secret_arn"])["SecretString"])
        tls = {"sslmode": sslmode, **({"sslrootcert": sslrootcert} if sslrootcert else {})}
        primary = {"host": outputs["primary_endpoint"], "port": int(outputs.get("primary_port", 5432)),
                   "user": secret["username"], "password": Secret(secret["password"]), **tls}
        replicas = tuple({**primary, "host": h} for h in outputs.get("replica_endpoints", []))
        return cls(settings, name, outputs, clients, primary, replicas)

    @property
    def primary(self) -> dict:
        return dict(self._primary)

    @property
    def replicas(self) -> tuple[dict, ...]:
        return self._replicas

    @property
    def region(self) -> str:
        return self.outputs["region"]

    def default_repository(self, reads: str | None = None) -> str:
        repo = self.outputs.get("backup_repository")
        if not repo:
            raise ConfigError([f"stack '{self.name}' has no backup_repository output"],
                              f"deploy it: `invoke deploy --stack {self.name} --yes`.")
        return repo

    def kms_key_id(self) -> str | None:
        return self.settings.kms_key_id or self.outputs.get("kms_key_arn")

    def protected_endpoints(self) -> list[dict]:
        return [dict(p, dbname="postgres") for p in (self._primary, *self._replicas)]

    # ---- snapshots ------------------------------------------------------------------------------
    def snapshot_backup(self, repo, databases: list[str], now: datetime, on_bytes=None) -> list[dict]:
        """One tagged manual RDS snapshot of the primary per database (the snapshot holds the whole
        instance; the tag names the database)."""
        from ..backups import rds
        snaps = [rds.create_snapshot(self.clients.rds, self.outputs["primary_id"], d, now) for d in databases]
        return [{"id": s.id, "database": s.database, "kind": "snapshot", "created_at": s.created_at.isoformat(),
                 "status": s.status, "location": f"rds:{s.instance}"} for s in snaps]

    def prune_snapshots(self, repo, *, apply: bool, force: bool, now: datetime) -> list[tuple[str, object]]:
        """The same GFS policy and floors over the stack's pgops-managed RDS snapshots."""
        from ..backups import rds
        from ..backups.drillreports import drill_passed_ids
        instance = self.outputs["primary_id"]
        plans = []
        for d in sorted({s.database for s in rds.list_snapshots(self.clients.rds, instance)}):
            plan, _ = rds.prune_snapshots(self.clients.rds, instance, d, now, apply=apply, force=force,
                                          drill_passed=drill_passed_ids(repo, d))
            plans.append((d, plan))
        return plans

    # ---- metrics --------------------------------------------------------------------------------
    def after_backup(self, repo, database: str, *, succeeded: bool, size_bytes: int, now: datetime) -> None:
        """BackupSucceeded / BackupAgeSeconds / BackupSizeBytes, and PassedDrillAgeSeconds when a drill
        of this database ever passed (none published: the 35-day alarm treats missing data as breaching)."""
        from ..backups import engine, metrics
        from ..backups.drillreports import drill_reports
        from ..retention import split_skewed
        newest, _ = split_skewed(engine.list_backups(repo, database), now)  # a skewed one never resets the age
        age = (now - newest[0].created).total_seconds() if newest else 10 ** 9
        metrics.publish_backup_metrics(self.clients.cloudwatch, database, succeeded=succeeded, age_seconds=age,
                                       size_bytes=size_bytes, now=now)
        passed = [h for h in drill_reports(repo, database) if h.get("passed")]
        if passed:
            drilled = datetime.fromisoformat(passed[0]["started_at"])
            metrics.publish_passed_drill_age(self.clients.cloudwatch, database,
                                             age_seconds=(now - drilled).total_seconds(), now=now)

    def after_drill(self, report, now: datetime) -> None:
        from ..backups.metrics import publish_drill_metrics
        publish_drill_metrics(self.clients.cloudwatch, report.database, succeeded=report.passed,
                              rto_seconds=report.rto_seconds, rpo_seconds=report.rpo_seconds, now=now)

    def after_job(self, job: str, *, succeeded: bool, seconds: float, now: datetime) -> None:
        from ..backups.metrics import publish_job_metrics
        publish_job_metrics(self.clients.cloudwatch, self.name, job, succeeded=succeeded, seconds=seconds, now=now)

    # ---- drills ---------------------------------------------------------------------------------
    def snapshot_drill(self, repo, database: str, now: Callable[[], datetime], *,
                       instance_class: str = "db.t4g.medium", wait_delay_s: float = 30, on_report=None):
        """Restore the newest pgops snapshot of ``database`` into a throwaway instance in the stack's
        subnet group and security group, run the data checks (ledger, every applied verify.sql,
        drill checks), delete it. The report is stored in the repository; drill metrics published."""
        from ..backups import rds
        from ..drills.rds import run_snapshot_drill
        from ..drills.report import Check
        from ..backups.drillreports import store_report
        from ..drills.runner import _schema_checks
        from ..dsn import connect, tool_application_name
        snaps = [s for s in rds.list_snapshots(self.clients.rds, self.outputs["primary_id"], database)
                 if s.status == "available"]
        if not snaps:
            raise OpsError(f"No available pgops snapshot of '{database}' on stack {self.name}.",
                           f"take one with `invoke backup.create --stack {self.name} --db {database} --kind snapshot`.")

        def checks(target) -> list:
            params = {**self._primary, "host": target.host, "port": target.port}
            with connect(params, dbname=database, autocommit=True,
                         application_name=tool_application_name("drill")) as conn:
                found = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                                     "'public'::regnamespace").fetchone()[0]
                return [Check("restored database has tables", found > 0, f"{found} tables in public")] + \
                    _schema_checks(conn, database, self.settings.sql_root, None, check_ledger=False)

        def finish(report):
            store_report(repo, report)
            if on_report:
                on_report(report)
            self.after_drill(report, now())
        return run_snapshot_drill(self.clients.rds, snaps[0].id, database, subnet_group=self.outputs["subnet_group"],
                                  security_groups=[self.outputs["security_group_id"]], instance_class=instance_class,
                                  checks=checks, now=now, wait_delay_s=wait_delay_s, on_report=finish)

    def cutover_engine(self):
        """The RDS Blue/Green Deployments API on the stack's primary instance (:mod:`ops.cutover.rds`),
        guardrail SQL and the write probe over the stack's primary endpoint."""
        from ..cutover.rds import RdsCutover
        return RdsCutover(self.clients.rds, self.outputs["primary_id"], conninfo={**self.primary, "dbname": "postgres"},
                          stack=self.name)

    # ---- failover -------------------------------------------------------------------------------
    def switchover(self, *, to: str | None, force: bool, rerun: str):
        """A Multi-AZ failover of the primary (``reboot_db_instance(ForceFailover=True)``)."""
        from ..failover import rds
        return rds.switchover(self.clients.rds, self.name, self.outputs["primary_id"], to=to, rerun=rerun)

    def promote(self, *, node: str | None, rerun: str):
        """``promote_read_replica`` of one of the stack's replicas after the primary is lost."""
        from ..failover import rds
        ids = list(self.outputs.get("replica_ids", []))
        return rds.promote(self.clients.rds, self.name, self.outputs["primary_id"], ids, node=node,
                           primary_params=self._primary, replica_params=dict(zip(ids, self._replicas)), rerun=rerun)

    def platform_measurements(self, now: datetime) -> list:
        """Storage, CPU and EBS burst balance of every instance of the stack from CloudWatch
        (:mod:`ops.health.cloudwatch`), named as :meth:`health_nodes` names them."""
        from ..health.cloudwatch import instance_measurements
        ids = [self.outputs["primary_id"], *self.outputs.get("replica_ids", [])]
        names = ["primary"] + [f"replica{i}" for i in range(1, len(ids))]
        return instance_measurements(self.clients.rds, self.clients.cloudwatch, list(zip(names, ids)), now)

    # ---- TLS ------------------------------------------------------------------------------------------
    TLS_MODES = ("require", "verify-ca", "verify-full")

    def require_tls(self) -> None:
        """Every node's ``sslmode`` must guarantee TLS (require, verify-ca, verify-full; the stack's own
        parameters say verify-full). Raises :class:`~ops.errors.TlsRequired` naming the node otherwise."""
        from ..errors import TlsRequired
        nodes = [("primary", self._primary), *((f"replica{i}", r) for i, r in enumerate(self._replicas, 1))]
        for name, params in nodes:
            mode = str(params.get("sslmode") or "")
            if mode not in self.TLS_MODES:
                raise TlsRequired(self.name, f"{name} ({params.get('host')})", mode)
