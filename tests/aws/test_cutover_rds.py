"""RDS blue/green cutover (ops.cutover.rds): the happy path against moto, every failure state AWS
documents (and one it does not) with botocore's Stubber, option validation before any call."""
from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from ops.cutover import rds as cut
from ops.cutover.rds import RdsCutover
from ops.errors import (EXIT_CODES, ConfigError, CutoverRefused, CutoverTimeout, DeploymentFailed, RollbackUnavailable,
                        SwitchoverFailed)

pytestmark = pytest.mark.aws

SOURCE = "pgops-dev-primary"
ARN = f"arn:aws:rds:eu-west-1:123456789012:db:{SOURCE}"
GREEN = f"{SOURCE}-green-abcdef"
GREEN_ARN = f"arn:aws:rds:eu-west-1:123456789012:db:{GREEN}"
BGD = "bgd-0123456789abcdef"


class FakeTime:
    """clock/sleep pair: sleeping advances the clock, nothing waits."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


# ---- moto: the happy path ----------------------------------------------------------------------
@pytest.fixture
def rds_network(rds_network):
    """The stack's primary at the stack's default engine version (moto's own default is older)."""
    rds_network.rds.modify_db_instance(DBInstanceIdentifier=SOURCE, EngineVersion="16.4", ApplyImmediately=True)
    assert rds_network.rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["EngineVersion"] == "16.4"
    return rds_network


def test_prepare_status_run_verify_finish_against_moto(rds_network):
    rds = rds_network.rds
    t = FakeTime()
    c = RdsCutover(rds, SOURCE, clock=t.clock, sleep=t.sleep, stack="dev")
    assert c.status()["phase"] == "none"
    assert any("create blue/green deployment" in line for line in c.plan("prepare"))

    seen = []
    prepared = c.prepare(poll_s=30, timeout_s=600, on_progress=seen.append)
    assert prepared["created"] is True and prepared["phase"] == "ready"
    assert len(seen) == cut.READY_CONFIRMATIONS and t.slept == [30] * (cut.READY_CONFIRMATIONS - 1)
    did = prepared["deployment"]
    tags = {x["Key"]: x["Value"] for x in rds.describe_blue_green_deployments(
        BlueGreenDeploymentIdentifier=did)["BlueGreenDeployments"][0].get("TagList", [])}
    assert tags.get(cut.MANAGED_TAG, "true") == "true"

    again = c.prepare(poll_s=30, timeout_s=600)  # idempotent: the same deployment, nothing created
    assert again["created"] is False and again["deployment"] == did
    assert len(rds.describe_blue_green_deployments()["BlueGreenDeployments"]) == 1
    assert any(f"reuse blue/green deployment {did}" in line for line in c.plan("prepare"))

    st = c.status()
    assert st["phase"] == "ready" and st["status"] == "AVAILABLE"
    assert st["guards"][0] == {"name": "deployment_ready", "passed": True, "detail": st["guards"][0]["detail"]}
    assert all(task["status"] == "COMPLETED" for task in st["tasks"])

    report = c.run(switchover_timeout_s=300)
    assert report["passed"] is True and report["status"] == "SWITCHOVER_COMPLETED"
    assert report["write_pause_ms"] is None and report["probe"] is None  # no conninfo: no probe, and it says so
    assert any("skipped" in n for n in report["notes"])
    assert report["old_blue"] == f"{SOURCE}-old1"
    assert set(report["phases"]) >= {"guards", "switchover"}

    assert c.status()["phase"] == "switched"
    v = c.verify()
    assert v["passed"] is True, v
    ids = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert {SOURCE, f"{SOURCE}-old1"} <= ids

    with pytest.raises(RollbackUnavailable) as exc:
        c.rollback()
    assert "-old1" in str(exc.value) and "logical" in str(exc.value)

    done = c.finish()
    assert done["deleted"] is True and done["deployment"] == did
    assert done["remove_old_blue"][-1].startswith(f"aws rds delete-db-instance --db-instance-identifier {SOURCE}-old1")
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []
    ids = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert {SOURCE, f"{SOURCE}-old1"} <= ids  # DeleteTarget was not passed: both instances stay
    assert c.finish()["deleted"] is False  # idempotent
    assert c.status()["phase"] == "none"


def test_prepare_with_target_version_and_parameter_group_of_the_new_family(rds_network):
    rds = rds_network.rds
    rds.create_db_parameter_group(DBParameterGroupName="pg17", DBParameterGroupFamily="postgres17", Description="x")
    t = FakeTime()
    c = RdsCutover(rds, SOURCE, clock=t.clock, sleep=t.sleep)
    out = c.prepare(target_engine_version="17.2", target_parameter_group="pg17", poll_s=1)
    green = rds.describe_db_instances(DBInstanceIdentifier=out["target"].rsplit(":db:", 1)[1])["DBInstances"][0]
    assert green["EngineVersion"] == "17.2"
    assert green["DBParameterGroups"][0]["DBParameterGroupName"] == "pg17"


@pytest.mark.parametrize("version, family, problem", [
    ("17.2", "postgres16", "needs family postgres17"),
    (None, "postgres17", "needs family postgres16"),  # no target version: blue's major
    ("15.7", "postgres15", "older than blue"),
    ("seventeen", "postgres17", "not a PostgreSQL version"),
])
def test_parameter_group_family_must_match_the_green_major(rds_network, version, family, problem):
    rds = rds_network.rds
    rds.create_db_parameter_group(DBParameterGroupName="grp", DBParameterGroupFamily=family, Description="x")
    c = RdsCutover(rds, SOURCE, clock=FakeTime().clock, sleep=FakeTime().sleep)
    with pytest.raises(ConfigError) as exc:
        c.prepare(target_engine_version=version, target_parameter_group="grp")
    assert problem in str(exc.value)
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []  # refused before creating


def test_missing_parameter_group_and_missing_instance(rds_network):
    rds = rds_network.rds
    with pytest.raises(ConfigError, match="does not exist"):
        RdsCutover(rds, SOURCE).prepare(target_parameter_group="nope")
    with pytest.raises(ConfigError, match="'nope-primary' does not exist"):
        RdsCutover(rds, "nope-primary").prepare()


def test_run_without_a_deployment_is_refused(rds_network):
    with pytest.raises(CutoverRefused, match="no blue/green deployment") as exc:
        RdsCutover(rds_network.rds, SOURCE, stack="dev").run()
    assert "`invoke cutover.prepare --stack dev`" in str(exc.value)


def test_finish_before_switchover_is_refused_and_deletes_nothing(rds_network):
    rds = rds_network.rds
    t = FakeTime()
    c = RdsCutover(rds, SOURCE, clock=t.clock, sleep=t.sleep)
    did = c.prepare(poll_s=1)["deployment"]
    with pytest.raises(CutoverRefused, match="leave its green instance behind"):
        c.finish()
    with pytest.raises(RollbackUnavailable, match="Nothing to roll back"):
        c.rollback()
    assert [d["BlueGreenDeploymentIdentifier"] for d in rds.describe_blue_green_deployments()["BlueGreenDeployments"]] \
        == [did]


# ---- Stubber: failure states -------------------------------------------------------------------
@pytest.fixture
def stubbed():
    client = boto3.client("rds", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub


def instance(ident=SOURCE, arn=ARN, status="available", **extra):
    return {"DBInstances": [{"DBInstanceIdentifier": ident, "DBInstanceArn": arn, "DBInstanceStatus": status,
                             "Engine": "postgres", "EngineVersion": "16.4", **extra}]}


def deployment(status, tasks=("COMPLETED", "COMPLETED"), details=""):
    return {"BlueGreenDeploymentIdentifier": BGD, "BlueGreenDeploymentName": cut.deployment_name(SOURCE),
            "Source": ARN, "Target": GREEN_ARN, "Status": status, "StatusDetails": details,
            "Tasks": [{"Name": n, "Status": s} for n, s in zip(("CREATING_READ_REPLICA_OF_SOURCE", "CONFIGURE_BACKUPS"),
                                                                 tasks)],
            "SwitchoverDetails": [{"SourceMember": ARN, "TargetMember": GREEN_ARN, "Status": status}],
            "CreateTime": datetime(2026, 1, 1, tzinfo=timezone.utc)}


def expect_lookup(stub, existing=None):
    stub.add_response("describe_db_instances", instance(), {"DBInstanceIdentifier": SOURCE})
    stub.add_response("describe_blue_green_deployments", {"BlueGreenDeployments": [existing] if existing else []}, {})


def expect_poll(stub, d):
    stub.add_response("describe_blue_green_deployments", {"BlueGreenDeployments": [d]},
                      {"BlueGreenDeploymentIdentifier": BGD})


def expect_create(stub):
    stub.add_response("create_blue_green_deployment", {"BlueGreenDeployment": deployment("PROVISIONING")},
                      {"BlueGreenDeploymentName": cut.deployment_name(SOURCE), "Source": ARN,
                       "Tags": [{"Key": cut.MANAGED_TAG, "Value": "true"}]})


#: every status in which a deployment cannot become ready: AWS's documented failure states, one it
#: does not document (fail closed), a FAILED task, a deployment being deleted.
PREPARE_FAILURES = [
    ("INVALID_CONFIGURATION", ("COMPLETED", "COMPLETED"), "Replication is broken"),
    ("SWITCHOVER_FAILED", ("COMPLETED", "COMPLETED"), "Switchover failed"),
    ("PROVISIONING_FAILED", ("FAILED", "PENDING"), "Green instance could not be created"),
    ("PROVISIONING", ("FAILED", "PENDING"), ""),
    ("AVAILABLE", ("COMPLETED", "FAILED"), ""),
    ("DELETING", ("COMPLETED", "COMPLETED"), ""),
]


@pytest.mark.parametrize("status, tasks, details", PREPARE_FAILURES)
def test_prepare_ends_in_one_clear_error_for_every_failure_state(stubbed, status, tasks, details):
    client, stub = stubbed
    t = FakeTime()
    expect_lookup(stub)
    expect_create(stub)
    expect_poll(stub, deployment("PROVISIONING", ("IN_PROGRESS", "PENDING")))
    expect_poll(stub, deployment(status, tasks, details))
    with pytest.raises(DeploymentFailed) as exc:
        RdsCutover(client, SOURCE, clock=t.clock, sleep=t.sleep, stack="dev").prepare(poll_s=30, timeout_s=3600)
    stub.assert_no_pending_responses()
    err = exc.value
    assert err.exit_code == 10 and err.deployment == BGD and err.status == status
    text = str(err)
    assert BGD in text and status in text and (details in text) and "blue is still the primary" in text
    assert "--stack dev" in text and "Next:" in text


def test_prepare_reuses_an_invalid_deployment_and_reports_it(stubbed):
    client, stub = stubbed
    expect_lookup(stub, deployment("INVALID_CONFIGURATION", details="DDL on blue"))
    expect_poll(stub, deployment("INVALID_CONFIGURATION", details="DDL on blue"))
    with pytest.raises(DeploymentFailed, match="DDL on blue"):
        RdsCutover(client, SOURCE, clock=FakeTime().clock, sleep=FakeTime().sleep).prepare()
    stub.assert_no_pending_responses()  # create_blue_green_deployment was never called


def test_prepare_times_out_with_a_clear_error(stubbed):
    client, stub = stubbed
    t = FakeTime()
    expect_lookup(stub)
    expect_create(stub)
    polls = 4  # t = 0, 30, 60, 90 with timeout_s = 90
    for _ in range(polls):
        expect_poll(stub, deployment("PROVISIONING", ("IN_PROGRESS", "PENDING")))
    with pytest.raises(CutoverTimeout) as exc:
        RdsCutover(client, SOURCE, clock=t.clock, sleep=t.sleep).prepare(poll_s=30, timeout_s=90)
    stub.assert_no_pending_responses()
    assert BGD in str(exc.value) and "cutover.prepare" in str(exc.value) and "CREATING_READ_REPLICA" in str(exc.value)


def test_prepare_needs_readiness_on_consecutive_polls(stubbed):
    """AVAILABLE once, then not (terraform-provider-aws #36241): prepare keeps waiting."""
    client, stub = stubbed
    t = FakeTime()
    expect_lookup(stub, deployment("PROVISIONING", ("IN_PROGRESS", "PENDING")))
    expect_poll(stub, deployment("AVAILABLE"))
    stub.add_response("describe_db_instances", instance(GREEN, GREEN_ARN), {"DBInstanceIdentifier": GREEN})
    expect_poll(stub, deployment("AVAILABLE"))
    stub.add_response("describe_db_instances", instance(GREEN, GREEN_ARN, status="storage-optimization"),
                      {"DBInstanceIdentifier": GREEN})
    for _ in range(cut.READY_CONFIRMATIONS):
        expect_poll(stub, deployment("AVAILABLE"))
        stub.add_response("describe_db_instances", instance(GREEN, GREEN_ARN), {"DBInstanceIdentifier": GREEN})
    out = RdsCutover(client, SOURCE, clock=t.clock, sleep=t.sleep).prepare(poll_s=10)
    stub.assert_no_pending_responses()
    assert out["phase"] == "ready" and out["created"] is False and len(t.slept) == 1 + cut.READY_CONFIRMATIONS


def test_prepare_refuses_a_secrets_manager_managed_master_password(stubbed):
    client, stub = stubbed
    stub.add_response("describe_db_instances", instance(MasterUserSecret={"SecretArn": "arn:aws:secretsmanager:x"}),
                      {"DBInstanceIdentifier": SOURCE})
    with pytest.raises(ConfigError, match="Secrets Manager"):
        RdsCutover(client, SOURCE).prepare()
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("timeout", [0, 29, 3601, 10 ** 6, -300, 300.5, "300", None, True])
def test_switchover_timeout_outside_30_to_3600_is_refused_before_any_call(stubbed, timeout):
    client, stub = stubbed  # no response queued: any API call would raise
    with pytest.raises(ConfigError) as exc:
        RdsCutover(client, SOURCE).run(switchover_timeout_s=timeout)
    assert "30" in str(exc.value) and "3600" in str(exc.value) and exc.value.exit_code == 2
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("timeout", [30, 300, 3600])
def test_switchover_timeout_bounds_are_accepted(timeout):
    assert cut.validate_switchover_timeout(timeout) == timeout


def expect_ready(stub, d=None):
    expect_lookup(stub, d or deployment("AVAILABLE"))
    stub.add_response("describe_db_instances", instance(GREEN, GREEN_ARN), {"DBInstanceIdentifier": GREEN})


def expect_switchover(stub, timeout=300):
    stub.add_response("switchover_blue_green_deployment",
                      {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
                      {"BlueGreenDeploymentIdentifier": BGD, "SwitchoverTimeout": timeout})


@pytest.mark.parametrize("status", ["SWITCHOVER_FAILED", "INVALID_CONFIGURATION", "DELETING", "SOMETHING_NEW"])
def test_switchover_failure_says_blue_is_still_primary(stubbed, status):
    client, stub = stubbed
    t = FakeTime()
    expect_ready(stub)
    expect_switchover(stub, 120)
    expect_poll(stub, deployment("SWITCHOVER_IN_PROGRESS"))
    expect_poll(stub, deployment(status, details="Switchover timed out; changes rolled back"))
    with pytest.raises(SwitchoverFailed) as exc:
        RdsCutover(client, SOURCE, clock=t.clock, sleep=t.sleep, stack="dev").run(switchover_timeout_s=120)
    stub.assert_no_pending_responses()
    text = str(exc.value)
    assert BGD in text and status in text and "blue is still the primary" in text and "--stack dev" in text
    assert exc.value.exit_code == 10


def test_switchover_that_never_completes_times_out(stubbed):
    client, stub = stubbed
    t = FakeTime()
    expect_ready(stub)
    expect_switchover(stub, 30)
    poll_s = 30
    polls = (30 + cut.SWITCHOVER_GRACE_S) // poll_s + 1
    for _ in range(polls):
        expect_poll(stub, deployment("SWITCHOVER_IN_PROGRESS"))
    with pytest.raises(CutoverTimeout) as exc:
        RdsCutover(client, SOURCE, clock=t.clock, sleep=t.sleep).run(switchover_timeout_s=30, poll_s=poll_s)
    stub.assert_no_pending_responses()
    assert "rolls back" in str(exc.value) and "cutover.status" in str(exc.value)


@pytest.mark.parametrize("d, green_status", [
    (deployment("PROVISIONING", ("IN_PROGRESS", "PENDING")), None),
    (deployment("AVAILABLE", ("COMPLETED", "IN_PROGRESS")), None),
    (deployment("INVALID_CONFIGURATION"), None),
    (deployment("SWITCHOVER_COMPLETED"), None),
    (deployment("AVAILABLE"), "storage-optimization"),
    (deployment("AVAILABLE"), "modifying"),
])
def test_run_refuses_a_deployment_that_is_not_ready_without_calling_switchover(stubbed, d, green_status):
    client, stub = stubbed
    expect_lookup(stub, d)
    if green_status:
        stub.add_response("describe_db_instances", instance(GREEN, GREEN_ARN, status=green_status),
                          {"DBInstanceIdentifier": GREEN})
    with pytest.raises(CutoverRefused) as exc:
        RdsCutover(client, SOURCE).run()
    stub.assert_no_pending_responses()  # switchover_blue_green_deployment was never reached
    assert exc.value.guards[0]["name"] == "deployment_ready" and not exc.value.guards[0]["passed"]
    assert "before anything changed" in str(exc.value)


def test_aws_refusing_the_switchover_is_a_refusal_not_a_crash(stubbed):
    """AVAILABLE, then InvalidBlueGreenDeploymentStateFault anyway (terraform-provider-aws #36241)."""
    client, stub = stubbed
    expect_ready(stub)
    stub.add_client_error("switchover_blue_green_deployment", "InvalidBlueGreenDeploymentStateFault",
                          f"DB instance {GREEN} is not in available state", 400,
                          expected_params={"BlueGreenDeploymentIdentifier": BGD, "SwitchoverTimeout": 300})
    with pytest.raises(CutoverRefused, match="not in available state") as exc:
        RdsCutover(client, SOURCE, clock=FakeTime().clock, sleep=FakeTime().sleep).run()
    stub.assert_no_pending_responses()
    assert "nothing was switched" in str(exc.value)


def test_finish_deletes_without_delete_target(stubbed):
    client, stub = stubbed
    expect_lookup(stub, deployment("SWITCHOVER_COMPLETED"))
    stub.add_response("delete_blue_green_deployment", {"BlueGreenDeployment": deployment("DELETING")},
                      {"BlueGreenDeploymentIdentifier": BGD})  # exactly these params: no DeleteTarget
    old = f"{SOURCE}-old1"
    stub.add_response("describe_db_instances", instance(old, ARN + "-old1", DeletionProtection=True,
                                                        ReadReplicaDBInstanceIdentifiers=["pgops-dev-replica-1-old1"]),
                      {"DBInstanceIdentifier": old})
    out = RdsCutover(client, SOURCE).finish()
    stub.assert_no_pending_responses()
    assert out["remove_old_blue"] == [
        "aws rds delete-db-instance --db-instance-identifier pgops-dev-replica-1-old1 --skip-final-snapshot",
        f"aws rds modify-db-instance --db-instance-identifier {old} --no-deletion-protection --apply-immediately",
        f"aws rds delete-db-instance --db-instance-identifier {old} --final-db-snapshot-identifier {old}-final"]


@pytest.mark.parametrize("status, phase", [
    ("PROVISIONING", "preparing"), ("SWITCHOVER_IN_PROGRESS", "switching"), ("SWITCHOVER_COMPLETED", "switched"),
    ("INVALID_CONFIGURATION", "failed"), ("SWITCHOVER_FAILED", "failed"), ("SOMETHING_NEW", "failed"),
    ("DELETING", "none")])
def test_status_phase_of_every_status(stubbed, status, phase):
    client, stub = stubbed
    expect_lookup(stub, deployment(status))
    st = RdsCutover(client, SOURCE).status()
    stub.assert_no_pending_responses()
    assert st["phase"] == phase and st["status"] == status and st["deployment"] == BGD


def test_cutover_errors_carry_exit_code_10_and_it_is_in_the_table():
    assert (10, dict(EXIT_CODES)[10]) in EXIT_CODES
    for cls in (CutoverRefused, DeploymentFailed, CutoverTimeout, SwitchoverFailed, RollbackUnavailable):
        assert cls.exit_code == 10


def test_deployment_name_fits_aws_pattern():
    import re
    for src in (SOURCE, "a" * 80, "db_with_underscores--x"):
        name = cut.deployment_name(src)
        assert len(name) <= 60 and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*", name)


def test_plan_names_every_action_and_refuses_an_unknown_one(stubbed):
    client, stub = stubbed  # an unknown action is refused before any call
    with pytest.raises(ConfigError, match="unknown cutover action"):
        RdsCutover(client, SOURCE).plan("explode")
    for action, words in (("run", "SwitchoverTimeout 120 s"), ("verify", "SWITCHOVER_COMPLETED"),
                          ("rollback", "cannot be rolled back"), ("finish", "without its target")):
        expect_lookup(stub, deployment("AVAILABLE"))
        lines = RdsCutover(client, SOURCE).plan(action, switchover_timeout_s=120)
        assert any(words in line for line in lines), lines
    stub.assert_no_pending_responses()
