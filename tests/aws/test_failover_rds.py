"""failover on an AWS stack against moto: a Multi-AZ switchover is a reboot with ForceFailover, a
single-AZ one is refused with the reason; promote calls promote_read_replica on a replica of the
stack's primary once the primary no longer answers SQL, refuses unknown nodes, and states the
Pulumi drift it creates with the command that reconciles it."""
import boto3
import pytest

from ops.errors import FailoverRefused
from ops.settings import from_options
from ops.targets import AwsClients, AwsTarget


def calls(rds, operation):
    """Record the parameters of every ``operation`` call the client makes (moto still serves it)."""
    seen = []
    rds.meta.events.register(f"provide-client-params.rds.{operation}", lambda params, **_: seen.append(dict(params)))
    return seen


def target(rds, replica_ids=()):
    outputs = {"primary_id": "pgops-dev-primary", "replica_ids": list(replica_ids), "region": "eu-west-1"}
    unreachable = {"host": "127.0.0.1", "port": 1, "user": "ops", "password": "x" * 12, "sslmode": "disable",
                   "connect_timeout": 2}
    return AwsTarget(from_options({}, stack="dev"), "dev", outputs,
                     AwsClients(rds, boto3.client("secretsmanager"), boto3.client("cloudwatch")),
                     unreachable, tuple(unreachable for _ in replica_ids))


def test_single_az_switchover_is_refused_with_the_reason(rds_network):
    reboots = calls(rds_network.rds, "RebootDBInstance")
    with pytest.raises(FailoverRefused) as err:
        target(rds_network.rds).switchover(to=None, force=False, rerun="invoke failover.switchover --stack dev --yes")
    assert "single-AZ" in str(err.value) and "invoke deploy --stack dev --yes" in str(err.value)
    assert err.value.exit_code == 11 and reboots == []


def test_multi_az_switchover_reboots_with_force_failover_and_states_the_drift(rds_network):
    rds = rds_network.rds
    rds.modify_db_instance(DBInstanceIdentifier="pgops-dev-primary", MultiAZ=True, ApplyImmediately=True)
    reboots = calls(rds, "RebootDBInstance")
    op = target(rds).switchover(to=None, force=False, rerun="invoke failover.switchover --stack dev --yes")
    shown = []
    report = op.run(yes=True, show=shown.append)
    assert reboots == [{"DBInstanceIdentifier": "pgops-dev-primary", "ForceFailover": True}]
    assert [s.name for s in report.steps] == ["reboot with failover"]
    assert any("pulumi refresh --stack dev" in n for n in report.notes)
    assert any("plan:" in line for line in shown)


def test_promote_calls_promote_read_replica_and_names_the_drift(rds_network):
    rds = rds_network.rds
    rds.create_db_instance_read_replica(DBInstanceIdentifier="pgops-dev-replica1",
                                        SourceDBInstanceIdentifier="pgops-dev-primary")
    promoted = calls(rds, "PromoteReadReplica")
    op = target(rds, ["pgops-dev-replica1"]).promote(node=None, rerun="invoke failover.promote --stack dev --yes")
    report = op.run(yes=True, show=lambda _: None)
    assert [p["DBInstanceIdentifier"] for p in promoted] == ["pgops-dev-replica1"]
    assert report.new_primary == "pgops-dev-replica1" and report.wal_gap_bytes is None
    assert "unknown" in report.wal_gap_text
    drift = [n for n in report.notes if "Pulumi drift" in n]
    assert drift and "pulumi refresh --stack dev" in drift[0] and "invoke deploy --stack dev" in drift[0]


def test_promote_refuses_an_unknown_node_and_a_non_replica(rds_network):
    rds = rds_network.rds
    promoted = calls(rds, "PromoteReadReplica")
    rds.create_db_instance(DBInstanceIdentifier="pgops-dev-other", DBInstanceClass="db.t4g.micro", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="ops", MasterUserPassword="not-a-real-secret")
    with pytest.raises(FailoverRefused) as err:
        target(rds, ["pgops-dev-other"]).promote(node="nope", rerun="r")
    assert "no read replica 'nope'" in str(err.value) and "--node pgops-dev-other" in str(err.value)
    with pytest.raises(FailoverRefused) as err:
        target(rds, ["pgops-dev-other"]).promote(node="pgops-dev-other", rerun="r")
    assert "not a read replica of 'pgops-dev-primary'" in str(err.value)
    assert promoted == []
