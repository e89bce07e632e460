"""Failover on an AWS stack, through the RDS API (boto3).

``failover.switchover`` is a Multi-AZ failover: ``reboot_db_instance(ForceFailover=True)`` moves
the primary onto its synchronous standby in the other AZ, with the same endpoint (AWS docs, "Multi-AZ
DB instance deployments": "Rebooting a DB instance with failover"). A single-AZ instance has no
standby, so it is refused with the reason. ``failover.promote`` turns a read replica into a
standalone instance with ``promote_read_replica`` (AWS docs, "Promoting a read replica to be a
standalone DB instance"); the promoted instance has its own endpoint.

The guards SQL can check run where the endpoints answer (the primary must be gone for a promote, as
locally; the candidate's replay position is read for the report); a Multi-AZ standby is invisible
to SQL and synchronous, so it has no lag to judge. Both operations leave Pulumi's state behind what
AWS has — the report says which and how to reconcile it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..dsn import connect, tool_application_name
from ..errors import FailoverRefused, OpsError
from ..planapply import Plan, Step
from .plan import FailoverReport, Operation, format_lsn, parse_lsn


def _now() -> datetime:
    return datetime.now(UTC)


def describe(rds, instance: str) -> dict:
    """``describe_db_instances`` of one instance; raises FailoverRefused when it does not exist."""
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise FailoverRefused("failover", [f"RDS instance '{instance}' does not exist"],
                              "check the stack's outputs with `invoke preview`.") from None


def _sql_replay(params: dict) -> tuple[bool, int | None, str]:
    """(answers, last replayed LSN or None, detail) of a server over SQL."""
    try:
        with connect(params, dbname="postgres", autocommit=True, connect_timeout=5,
                     application_name=tool_application_name("failover")) as c:
            rec, lsn = c.execute("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
                                 "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text").fetchone()
        return True, parse_lsn(lsn), "in recovery" if rec else "primary"
    except OpsError as exc:
        return False, None, exc.message


def _wait_available(rds, instance: str, delay_s: float, attempts: int) -> None:
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=instance,
                                                 WaiterConfig={"Delay": delay_s, "MaxAttempts": attempts})


def _timed(report: FailoverReport, name: str, body: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        started, t0 = _now(), time.monotonic()
        detail = body()
        report.record(name, started, time.monotonic() - t0, detail)
        return detail
    return run


def switchover(rds, stack: str, primary_id: str, *, to: str | None, rerun: str,
               wait_delay_s: float = 15, wait_attempts: int = 80) -> Operation:
    """Plan a Multi-AZ failover of ``primary_id``. Raises :class:`FailoverRefused` (nothing changed)
    for a single-AZ instance, an instance that is not ``available``, or ``to`` (the standby of a
    Multi-AZ instance has no name of its own)."""
    what = f"switchover of RDS instance '{primary_id}'"
    inst = describe(rds, primary_id)
    reasons = []
    if to is not None:
        reasons.append(f"--to {to}: a Multi-AZ failover goes to the instance's own standby, which has no identifier; "
                       "to make a read replica the primary use failover.promote")
    if not inst.get("MultiAZ"):
        reasons.append(f"'{primary_id}' is single-AZ (MultiAZ false): it has no standby to fail over to, and "
                       "RDS rejects ForceFailover on it")
    if inst.get("DBInstanceStatus") != "available":
        reasons.append(f"'{primary_id}' is {inst.get('DBInstanceStatus')}, not available")
    if reasons:
        hint = (f"enable Multi-AZ (multiAz: true in Pulumi.{stack}.yaml, then `invoke deploy --stack {stack} --yes`), "
                f"or, if the primary is lost, promote a replica with `invoke failover.promote --stack {stack}`.")
        raise FailoverRefused(what, reasons, hint)
    az = inst.get("AvailabilityZone")
    report = FailoverReport("switchover", stack, f"{primary_id} ({az})", primary_id, _now().isoformat(timespec="seconds"))

    def reboot() -> str:
        rds.reboot_db_instance(DBInstanceIdentifier=primary_id, ForceFailover=True)
        _wait_available(rds, primary_id, wait_delay_s, wait_attempts)
        new_az = describe(rds, primary_id).get("AvailabilityZone")
        report.new_primary = f"{primary_id} ({new_az})"
        return f"rebooted with failover; available in {new_az}"

    plan = Plan(what, rerun)
    plan.steps.append(Step(f"reboot '{primary_id}' with ForceFailover=True and wait until it is available",
                           _timed(report, "reboot with failover", reboot),
                           "Multi-AZ, available (the standby is synchronous: no lag to judge)",
                           check=lambda: None if describe(rds, primary_id).get("DBInstanceStatus") == "available"
                           else f"'{primary_id}' is no longer available"))
    report.notes.append(f"Pulumi drift: the primary now runs in the former standby's availability zone, not {az}; "
                        f"`pulumi refresh --stack {stack}` records it (the endpoint is unchanged), and "
                        f"`invoke deploy --stack {stack}` then shows no change")
    plan.notes += ["connections are dropped during the failover (typically 60–120 s); the endpoint stays the same",
                   report.notes[-1]]
    return Operation(plan, report)


def promote(rds, stack: str, primary_id: str, replica_ids: list[str], *, node: str | None,
            primary_params: dict, replica_params: dict[str, dict], rerun: str,
            wait_delay_s: float = 15, wait_attempts: int = 80) -> Operation:
    """Plan ``promote_read_replica`` of ``node`` (default: the only replica, or the most advanced
    one that answers SQL). Refused (:class:`FailoverRefused`, nothing changed) while the primary
    answers SQL, for an unknown node, or a node that is not a read replica of ``primary_id``."""
    what = "promote"
    hint_node = f"`invoke failover.promote --stack {stack} --node {replica_ids[0] if replica_ids else 'ID'}`"
    if node is not None and node not in replica_ids:
        raise FailoverRefused(what, [(f"stack '{stack}' has no read replica '{node}' (its replicas: "
                                     f"{', '.join(replica_ids) or 'none'})")], f"name one: {hint_node}.")
    if not replica_ids:
        raise FailoverRefused(what, [f"stack '{stack}' has no read replica to promote"],
                              f"restore the primary from a snapshot, or add replicas with `invoke deploy --stack {stack}`.")
    answers, _, detail = _sql_replay(primary_params)
    if answers:
        raise FailoverRefused(what, [f"the primary '{primary_id}' answers SQL ({detail})"],
                              f"for a planned change run `invoke failover.switchover --stack {stack}` instead.")
    positions = {r: _sql_replay(replica_params[r]) for r in replica_ids if r in replica_params}
    if node is None:
        reachable = {r: p[1] for r, p in positions.items() if p[0] and p[1] is not None}
        if reachable:
            node = max(reachable, key=lambda r: reachable[r])
        elif len(replica_ids) == 1:
            node = replica_ids[0]
        else:
            raise FailoverRefused(what, ["no replica answers SQL, so the most advanced cannot be chosen"],
                                  f"name one: {hint_node}.")
    inst = describe(rds, node)
    reasons = []
    if inst.get("ReadReplicaSourceDBInstanceIdentifier") != primary_id:
        reasons.append(f"'{node}' is not a read replica of '{primary_id}'")
    if inst.get("DBInstanceStatus") != "available":
        reasons.append(f"'{node}' is {inst.get('DBInstanceStatus')}, not available")
    if reasons:
        raise FailoverRefused(what, reasons, "run `invoke health --stack " + stack + "` to see the instances.")
    retention = describe(rds, primary_id).get("BackupRetentionPeriod") or 7
    report = FailoverReport("promote", stack, primary_id, node, _now().isoformat(timespec="seconds"),
                            lost_primary_source="RDS: the lost primary's WAL cannot be read")
    replayed = positions.get(node, (False, None, ""))[1]
    report.promoted_at_lsn = format_lsn(replayed)

    def do_promote() -> str:
        rds.promote_read_replica(DBInstanceIdentifier=node, BackupRetentionPeriod=retention)
        _wait_available(rds, node, wait_delay_s, wait_attempts)
        return f"'{node}' promoted (backup retention {retention} days); available"

    plan = Plan(f"promote read replica '{node}' of stack {stack} (primary '{primary_id}' is lost)", rerun)
    plan.steps.append(Step(f"promote_read_replica '{node}' and wait until it is available",
                           _timed(report, "promote", do_promote), f"'{primary_id}' does not answer SQL",
                           check=lambda: (f"'{primary_id}' answers SQL again" if _sql_replay(primary_params)[0] else None)))
    report.notes += [
        (f"applications must use '{node}'s own endpoint ({inst.get('Endpoint', {}).get('Address', 'see the RDS console')}); "
        "the stack's primary endpoint still names the lost instance"),
        (f"Pulumi drift: '{node}' is no longer a replica, but Pulumi's state still has it replicating from '{primary_id}'. "
        f"Run `pulumi refresh --stack {stack}` to record what AWS has, then make Pulumi.{stack}.yaml describe "
        f"'{node}' as the primary before `invoke deploy --stack {stack}` (a deploy before that would try to make it "
        "a replica again)"),
    ]
    plan.notes += [(f"WAL the lost primary held beyond '{node}'s replay position "
                   f"({report.promoted_at_lsn or 'unknown'}) is lost; its size is unknown on RDS"), *report.notes]
    return Operation(plan, report)
