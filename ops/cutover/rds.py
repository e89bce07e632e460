"""The RDS half of the blue/green cutover, through the RDS Blue/Green Deployments API (boto3).

:class:`RdsCutover` has the interface the local logical-replication engine has — ``plan``,
``prepare``, ``status``, ``run``, ``verify``, ``rollback``, ``finish`` — and returns JSON-able dicts;
every expected failure is an :class:`~ops.errors.OpsError` the task edge maps to an exit code.

What AWS does and pgops adds, rule by rule (sources in brackets):

* ``prepare`` creates the deployment (``create_blue_green_deployment``) and polls until the status is
  ``AVAILABLE``, every task ``COMPLETED`` and the green instance ``available`` — boto3 has no waiter
  for it. A deployment that reports ``AVAILABLE`` once can still refuse a switchover (eventual
  consistency: terraform-provider-aws #36241, fixed there by requiring the state on consecutive polls,
  PR #36244; a green still in ``storage-optimization``: #47493), so readiness must be seen
  :data:`READY_CONFIRMATIONS` polls in a row. A deployment that already exists for the instance is
  reused, so a re-run does nothing twice.
* ``run`` checks, before ``switchover_blue_green_deployment``: the deployment is ready (the call is
  refused with ``InvalidBlueGreenDeploymentStateFault`` otherwise — #36241); ``SwitchoverTimeout`` is
  30–3600 s (AWS RDS User Guide, "Switching a blue/green deployment: switchover timeout"); and AWS's
  switchover guardrails, run as SQL on blue first so a refusal is explained rather than a bare
  fault: long-running transactions (guardrail "long-running active writes or DDL"), replication lag
  of blue's replicas and replication slots (guardrail "replication lag"), and what logical
  replication does not carry (User Guide "Limitations for blue/green deployments — RDS for
  PostgreSQL ... logical replication"): tables without a primary key or ``REPLICA IDENTITY FULL``/
  ``USING INDEX`` (UPDATE/DELETE cannot be replicated), unlogged tables (not replicated), large
  objects (``pg_largeobject_metadata``; not replicated).
* (The guardrail SQL is :mod:`ops.cutover.checks`, the probe :mod:`ops.cutover.probe`: both are
  engine-neutral.)
* During the switchover a client-side probe writes numbered rows through the endpoint and measures
  the largest gap between acknowledged writes (``write_pause_ms``), then proves on the new primary
  that every acknowledged row arrived. AWS publishes neither.
* A switchover that fails or exceeds its timeout is rolled back by AWS ("any changes are rolled back
  and no changes are made to either environment"), so blue is still the primary.
* There is no lossless rollback after a switchover: old blue is renamed ``<id>-old1``, read-only and
  no longer replicating (User Guide "After switchover"). ``rollback`` says so; ``finish`` deletes the
  deployment without ``DeleteTarget`` (not allowed once switched over) and prints how to remove
  ``-old1``.
* Blue/green deployments do not support a master password managed by Secrets Manager
  (``ManageMasterUserPassword``; User Guide "General limitations"): ``prepare`` refuses it up front.

``client`` is a boto3 ``rds`` client. ``conninfo`` is the libpq parameters of blue's endpoint (the
stack's primary; a password as :class:`~ops.secrets.Secret`); without it the SQL guardrails and the
probe are skipped and the report says so. ``clock`` (seconds, monotonic) and ``sleep`` are injected
so tests never wait.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from ..dsn import connect, tool_application_name
from ..errors import (
    ConfigError,
    CutoverRefused,
    CutoverTimeout,
    DeploymentFailed,
    OpsError,
    RollbackUnavailable,
    SwitchoverFailed,
)
from .checks import LONG_TRANSACTION_S, MAX_LAG_BYTES, blue_guards
from .checks import guard as _guard
from .probe import PROBE_TABLE, WriteProbe, create_probe_table

log = logging.getLogger(__name__)

#: SwitchoverTimeout bounds in seconds (AWS RDS User Guide, "Switchover timeout"; default 300).
SWITCHOVER_TIMEOUT_MIN_S, SWITCHOVER_TIMEOUT_MAX_S = 30, 3600
#: Consecutive polls that must see the deployment ready (terraform-provider-aws #36241 / PR #36244).
READY_CONFIRMATIONS = 2
#: Seconds pgops keeps polling past SwitchoverTimeout before it reports a timeout (AWS rolls back at it).
SWITCHOVER_GRACE_S = 60
#: Seconds the probe keeps writing after the switchover completed, waiting for its first acknowledged write.
PROBE_TAIL_S = 30.0

STATUS_PHASE = {"PROVISIONING": "preparing", "AVAILABLE": "preparing", "SWITCHOVER_IN_PROGRESS": "switching",
                "SWITCHOVER_COMPLETED": "switched", "INVALID_CONFIGURATION": "failed", "SWITCHOVER_FAILED": "failed",
                "DELETING": "none"}
#: Statuses prepare waits through; every other status but AVAILABLE (documented or not, e.g.
#: ``PROVISIONING_FAILED``) ends the wait with :class:`DeploymentFailed` — fail closed.
WAITING_STATUSES = ("PROVISIONING",)
MANAGED_TAG = "pgops:managed"


def deployment_name(instance_id: str) -> str:
    """The name pgops gives the deployment of ``instance_id`` (≤ 60 characters, AWS's pattern
    ``[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*``)."""
    base = re.sub(r"[^a-zA-Z0-9]+", "-", instance_id).strip("-")
    return f"pgops-bg-{base}"[:60].rstrip("-")


def validate_switchover_timeout(seconds) -> int:
    """``seconds`` as an int in 30–3600, else :class:`ConfigError` (before any API call)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or int(seconds) != seconds \
            or not SWITCHOVER_TIMEOUT_MIN_S <= seconds <= SWITCHOVER_TIMEOUT_MAX_S:
        raise ConfigError([(f"--switchover-timeout-s {seconds!r} is outside {SWITCHOVER_TIMEOUT_MIN_S}–"
                           f"{SWITCHOVER_TIMEOUT_MAX_S} seconds (whole seconds; the range RDS accepts for "
                           "SwitchoverTimeout); nothing was called")],
                          "rerun `invoke cutover.run` with --switchover-timeout-s between 30 and 3600 (default 300).")
    return int(seconds)


def major_of(version: str) -> int:
    """PostgreSQL major version of an RDS engine version (``"16.4"`` → 16)."""
    m = re.match(r"^(\d+)(?:\.\d+)*$", version or "")
    if not m:
        raise ConfigError([f"engine version {version!r} is not a PostgreSQL version such as 16.4"],
                          "pass --target-engine-version as MAJOR.MINOR (`aws rds describe-db-engine-versions "
                          "--engine postgres` lists them).")
    return int(m.group(1))


def _ident(arn: str | None) -> str | None:
    """Instance identifier of an RDS instance ARN (``arn:aws:rds:r:a:db:NAME`` → NAME)."""
    return arn.rsplit(":db:", 1)[-1] if arn and ":db:" in arn else arn


# ---- the engine --------------------------------------------------------------------------------
class RdsCutover:
    """Blue/green cutover of the RDS PostgreSQL instance ``source_instance_id`` (the stack's primary).

    ``rds_client``: boto3 ``rds`` client. ``conninfo``: libpq parameters of blue's endpoint, for the
    SQL guardrails and the write probe (None: both skipped, and reports say so). ``clock``: monotonic
    seconds; ``sleep``: seconds → None. ``stack``: the stack name the hints repeat (``--stack NAME``).
    ``long_transaction_s`` / ``max_lag_bytes``: guardrail limits (see :func:`blue_guards`).
    """

    def __init__(self, rds_client, source_instance_id: str, *, conninfo: dict | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 stack: str | None = None, long_transaction_s: float = LONG_TRANSACTION_S,
                 max_lag_bytes: int = MAX_LAG_BYTES):
        self.rds = rds_client
        self.source = source_instance_id
        self.conninfo = dict(conninfo) if conninfo else None
        self.clock = clock
        self.sleep = sleep
        self.long_transaction_s = long_transaction_s
        self.max_lag_bytes = max_lag_bytes
        self._opt = f" --stack {stack}" if stack else ""
        self.name = deployment_name(source_instance_id)

    def _cmd(self, task: str, extra: str = "") -> str:
        return f"`invoke cutover.{task}{extra}{self._opt}`"

    # ---- AWS reads ------------------------------------------------------------------------------
    def _instance(self, instance_id: str) -> dict | None:
        try:
            return self.rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        except self.rds.exceptions.DBInstanceNotFoundFault:
            return None

    def _blue(self) -> dict:
        inst = self._instance(self.source)
        if inst is None:
            raise ConfigError([f"RDS instance '{self.source}' does not exist"],
                              "check the stack's primary_id output (`invoke deploy --stack NAME` shows it).")
        return inst

    def _find(self, arn: str | None = None) -> dict | None:
        """The deployment whose source or target is the instance named ``source_instance_id`` now
        (before a switchover: blue; after: green, renamed), or pgops's by name; newest first,
        ``DELETING`` ones last."""
        if arn is None:
            inst = self._instance(self.source)
            arn = inst["DBInstanceArn"] if inst else None
        found = [d for page in self.rds.get_paginator("describe_blue_green_deployments").paginate()
                 for d in page["BlueGreenDeployments"]
                 if (arn and arn in (d.get("Source"), d.get("Target"))) or d.get("BlueGreenDeploymentName") == self.name]
        found.sort(key=lambda d: (d.get("Status") != "DELETING", str(d.get("CreateTime") or "")), reverse=True)
        return found[0] if found else None

    def _describe(self, deployment_id: str) -> dict:
        return self.rds.describe_blue_green_deployments(
            BlueGreenDeploymentIdentifier=deployment_id)["BlueGreenDeployments"][0]

    def _readiness(self, d: dict) -> dict:
        """The ``deployment_ready`` guard: AVAILABLE, every task COMPLETED, the green instance available
        (terraform-provider-aws #36241, #47493). Reads the green instance only when the rest holds."""
        did, status = d["BlueGreenDeploymentIdentifier"], d.get("Status")
        pending = [f"{t.get('Name')} {t.get('Status')}" for t in d.get("Tasks") or [] if t.get("Status") != "COMPLETED"]
        if status != "AVAILABLE":
            return _guard("deployment_ready", False, f"deployment {did} is {status}, not AVAILABLE"
                          + (f"; tasks not completed: {', '.join(pending)}" if pending else ""))
        if pending:
            return _guard("deployment_ready", False, f"deployment {did} tasks not completed: {', '.join(pending)}")
        green_id = _ident(d.get("Target"))
        green = self._instance(green_id) if green_id else None
        state = green.get("DBInstanceStatus") if green else "missing"
        if state != "available":
            return _guard("deployment_ready", False, f"green instance {green_id} is {state}, not available")
        return _guard("deployment_ready", True, f"deployment {did} AVAILABLE, every task COMPLETED, "
                                                f"green {green_id} available")

    def _failed(self, d: dict) -> DeploymentFailed:
        did = d["BlueGreenDeploymentIdentifier"]
        if d.get("Status") == "DELETING":
            return DeploymentFailed(did, "DELETING", d.get("StatusDetails") or "", d.get("Tasks") or [],
                                    f"wait until `aws rds describe-blue-green-deployments --blue-green-deployment-identifier "
                                    f"{did}` no longer finds it, then rerun {self._cmd('prepare')}.")
        return DeploymentFailed(
            did, d.get("Status", "?"), d.get("StatusDetails") or "", d.get("Tasks") or [],
            f"read AWS's events with `aws rds describe-events --source-type blue-green-deployment --source-identifier "
            f"{did}`, remove it and its green instance with `aws rds delete-blue-green-deployment "
            f"--blue-green-deployment-identifier {did} --delete-target`, then rerun {self._cmd('prepare')}.")

    def _summary(self, d: dict | None, guards: list[dict]) -> dict:
        if d is None:
            return {"phase": "none", "deployment": None, "name": None, "status": None, "status_details": "",
                    "source": None, "target": None, "tasks": [], "switchover_details": [], "guards": guards}
        status = d.get("Status")
        phase = STATUS_PHASE.get(status, "failed")
        if status == "AVAILABLE" and any(g["name"] == "deployment_ready" and g["passed"] for g in guards):
            phase = "ready"
        return {"phase": phase, "deployment": d["BlueGreenDeploymentIdentifier"],
                "name": d.get("BlueGreenDeploymentName"), "status": status,
                "status_details": d.get("StatusDetails") or "", "source": d.get("Source"), "target": d.get("Target"),
                "tasks": [{"name": t.get("Name"), "status": t.get("Status")} for t in d.get("Tasks") or []],
                "switchover_details": [{"source": s.get("SourceMember"), "target": s.get("TargetMember"),
                                        "status": s.get("Status")} for s in d.get("SwitchoverDetails") or []],
                "guards": guards}

    # ---- plan -----------------------------------------------------------------------------------
    def plan(self, action: str, **opts) -> list[str]:
        """Human lines describing what ``action`` (prepare, run, verify, rollback, finish) will do with
        ``opts`` (the keyword arguments of that method). Reads the deployment; changes nothing."""
        if action not in ("prepare", "run", "verify", "rollback", "finish"):
            raise ConfigError([f"unknown cutover action '{action}'"], "choose prepare, run, verify, rollback or finish.")
        d = self._find()
        did = d["BlueGreenDeploymentIdentifier"] if d else None
        where = f"deployment {did} ({d.get('Status')})" if d else "no deployment yet"
        if action == "prepare":
            if d:
                return [f"reuse blue/green deployment {did} of {self.source} ({d.get('Status')}); create nothing",
                        ("wait until it is AVAILABLE with every task COMPLETED and green available "
                        f"({READY_CONFIRMATIONS} polls in a row)")]
            version, group = opts.get("target_engine_version"), opts.get("target_parameter_group")
            return [f"create blue/green deployment '{self.name}' of RDS instance {self.source} (blue stays primary)",
                    f"green engine version: {version or 'same as blue'}; parameter group: {group or 'same as blue'}",
                    *([("a major version upgrade replicates logically: blue's parameter group needs "
                       "rds.logical_replication=1, and DDL or large-object changes on blue break it")] if version else []),
                    *(["create table pgops.cutover_probe on blue first (the write probe's table)"] if self.conninfo else []),
                    (f"wait until AVAILABLE with every task COMPLETED (poll every {opts.get('poll_s', 30)} s, "
                    f"up to {opts.get('timeout_s', 3600)} s)")]
        if action == "run":
            timeout = opts.get("switchover_timeout_s", 300)
            return [f"{where}: refuse unless AVAILABLE with every task COMPLETED and green available",
                    "run the switchover guardrails on blue: long transactions, replication lag, tables without a "
                    "primary key, unlogged tables, large objects" if self.conninfo else
                    "SQL guardrails skipped: no connection to blue given",
                    (f"switch over (SwitchoverTimeout {timeout} s): blue {self.source} becomes {self.source}-old1 "
                    f"(read-only, no longer replicating), green takes the name {self.source} and its endpoint"),
                    f"probe writes through the endpoint and measure the write pause (budget {opts.get('budget_ms', 2000)} ms)"
                    if self.conninfo and opts.get("probe", True) else "no write probe",
                    "there is no lossless way back once switched"]
        if action == "verify":
            return [(f"{where}: check it is SWITCHOVER_COMPLETED, {self.source} is green and takes writes, "
                    f"{self.source}-old1 exists")]
        if action == "rollback":
            return ["refuse: an RDS switchover cannot be rolled back losslessly"]
        return [f"delete {where} without its target (both instances stay)",
                f"print how to remove {self.source}-old1 once you are sure"]

    # ---- prepare --------------------------------------------------------------------------------
    def _validate_target(self, blue: dict, version: str | None, group: str | None) -> None:
        problems = []
        blue_version = blue.get("EngineVersion") or ""
        if blue.get("Engine") not in (None, "postgres"):
            problems.append(f"instance {self.source} runs {blue.get('Engine')}, not postgres")
        if blue.get("MasterUserSecret"):
            problems.append(f"instance {self.source} has its master password managed by Secrets Manager, which "
                            "blue/green deployments do not support (AWS RDS User Guide, general limitations)")
        major = None
        if version is not None:
            try:
                major = major_of(version)
                if blue_version and major_of(blue_version) > major:
                    problems.append(f"target engine version {version} is older than blue's {blue_version}")
            except ConfigError as exc:
                problems += exc.problems
        elif blue_version:
            major = major_of(blue_version)
        if group is not None:
            try:
                groups = self.rds.describe_db_parameter_groups(DBParameterGroupName=group)["DBParameterGroups"]
            except self.rds.exceptions.DBParameterGroupNotFoundFault:
                groups = []
            family = groups[0].get("DBParameterGroupFamily") if groups else None
            if not groups:
                problems.append(f"parameter group '{group}' does not exist")
            else:
                if major is not None and family != f"postgres{major}":
                    problems.append(f"parameter group '{group}' is of family {family}, but the green engine version "
                                    f"{version or blue_version} needs family postgres{major}")
        if problems:
            raise ConfigError(problems, "create a parameter group of the right family (`aws rds "
                                        "create-db-parameter-group --db-parameter-group-family postgresNN ...`) or "
                                        f"fix the options, then rerun {self._cmd('prepare')}.")

    def prepare(self, *, target_engine_version: str | None = None, target_parameter_group: str | None = None,
                poll_s: float = 30, timeout_s: float = 3600, on_progress: Callable[[dict], None] | None = None) -> dict:
        """Create (or reuse) the deployment and wait until it is ready.

        ``target_engine_version``: e.g. ``"17.2"`` (None: blue's); ``target_parameter_group``: a DB
        parameter group whose family is ``postgres<major of the green version>``; ``poll_s`` /
        ``timeout_s``: seconds between polls / before giving up; ``on_progress``: called with the
        status dict after every poll. Returns :meth:`status`'s dict plus ``created`` (bool) and
        ``elapsed_s``. A deployment that exists for the instance is reused (options not re-applied);
        one already switching or switched is returned as it is.

        Raises :class:`ConfigError` (instance missing; engine/family mismatch; Secrets-Manager-managed
        master password) before any change, :class:`DeploymentFailed` (INVALID_CONFIGURATION, a FAILED
        task, SWITCHOVER_FAILED, DELETING or any undocumented status), :class:`CutoverTimeout`.
        """
        start = self.clock()
        blue = self._blue()
        self._validate_target(blue, target_engine_version, target_parameter_group)
        d = self._find(blue["DBInstanceArn"])
        created = False
        if d is None:
            if self.conninfo:
                create_probe_table(self.conninfo)
            kwargs = {"BlueGreenDeploymentName": self.name, "Source": blue["DBInstanceArn"],
                      "Tags": [{"Key": MANAGED_TAG, "Value": "true"}]}
            if target_engine_version:
                kwargs["TargetEngineVersion"] = target_engine_version
            if target_parameter_group:
                kwargs["TargetDBParameterGroupName"] = target_parameter_group
            d = self.rds.create_blue_green_deployment(**kwargs)["BlueGreenDeployment"]
            created = True
            log.info("created blue/green deployment %s of %s", d["BlueGreenDeploymentIdentifier"], self.source)
        did = d["BlueGreenDeploymentIdentifier"]
        if d.get("Status") in ("SWITCHOVER_IN_PROGRESS", "SWITCHOVER_COMPLETED"):
            return {**self._summary(d, []), "created": False, "elapsed_s": round(self.clock() - start, 3)}
        seen_ready = 0
        while True:
            d = self._describe(did)
            status = d.get("Status")
            failed_task = any(t.get("Status") == "FAILED" for t in d.get("Tasks") or [])
            if failed_task or (status not in WAITING_STATUSES and status != "AVAILABLE"):
                raise self._failed(d)
            ready = self._readiness(d)
            summary = self._summary(d, [ready])
            if on_progress:
                on_progress(summary)
            seen_ready = seen_ready + 1 if ready["passed"] else 0
            if seen_ready >= READY_CONFIRMATIONS:
                return {**summary, "created": created, "elapsed_s": round(self.clock() - start, 3)}
            waited = self.clock() - start
            if waited >= timeout_s:
                raise CutoverTimeout(
                    f"blue/green deployment {did} to become ready", waited, ready["detail"],
                    f"it keeps provisioning on AWS's side: check it with {self._cmd('status')} and rerun "
                    f"{self._cmd('prepare')} (it reuses the deployment), or raise --timeout-s.")
            self.sleep(poll_s)

    # ---- status ---------------------------------------------------------------------------------
    def sql_guards(self) -> list[dict]:
        return blue_guards(self.conninfo, long_transaction_s=self.long_transaction_s,
                           max_lag_bytes=self.max_lag_bytes) if self.conninfo else []

    def status(self) -> dict:
        """``{"phase", "deployment", "name", "status", "status_details", "source", "target", "tasks",
        "switchover_details", "guards"}``. ``phase``: ``none`` (no deployment, or one being deleted),
        ``preparing``, ``ready``, ``switching``, ``switched``, ``failed`` (never ``rolled_back``: RDS
        has no rollback). ``guards``: readiness and, before a switch with ``conninfo``, the SQL guardrails."""
        d = self._find()
        guards = []
        if d is None or d.get("Status") in ("PROVISIONING", "AVAILABLE"):
            guards = ([self._readiness(d)] if d else []) + self.sql_guards()
        return self._summary(d, guards)

    # ---- run ------------------------------------------------------------------------------------
    def run(self, *, budget_ms: int = 2000, switchover_timeout_s: int = 300, probe: bool = True,
            poll_s: float = 5, on_progress: Callable[[str], None] | None = None) -> dict:
        """Guard, switch over, measure. ``budget_ms``: the write pause (ms) the report calls passed;
        ``switchover_timeout_s``: SwitchoverTimeout, 30–3600 s, checked before any API call;
        ``probe``: run the write probe (needs ``conninfo``); ``poll_s``: seconds between status polls.

        Returns ``{"passed", "deployment", "status", "write_pause_ms", "budget_ms", "probe",
        "phases" (seconds per phase), "guards", "old_blue", "notes"}``; ``passed`` needs the switchover
        completed, every acknowledged probe row on the new primary and the pause within budget. An
        over-budget pause cannot be undone on RDS: ``passed`` is false and the switch stands.

        Raises :class:`ConfigError` (timeout out of range), :class:`CutoverRefused` (no deployment,
        not ready, a failed guardrail, or AWS's ``InvalidBlueGreenDeploymentStateFault``) with nothing
        switched, :class:`SwitchoverFailed` (SWITCHOVER_FAILED or any failure status: AWS rolled back,
        blue is primary), :class:`CutoverTimeout` (still not completed SwitchoverTimeout + 60 s later).
        """
        timeout = validate_switchover_timeout(switchover_timeout_s)
        phases: dict[str, float] = {}
        notes: list[str] = []
        t = self.clock()
        d = self._find()
        if d is None:
            raise CutoverRefused("Switchover", [_guard("deployment_ready", False,
                                                       f"no blue/green deployment of {self.source}")],
                                 f"create one with {self._cmd('prepare')}.")
        did = d["BlueGreenDeploymentIdentifier"]
        guards = [self._readiness(d)] + self.sql_guards()
        if not self.conninfo:
            notes.append("SQL guardrails and the write probe were skipped: no connection to blue was given")
        phases["guards"] = round(self.clock() - t, 3)
        failed = [g for g in guards if not g["passed"]]
        if failed:
            if d.get("Status") == "SWITCHOVER_COMPLETED":
                hint = f"it has switched over already: check it with {self._cmd('verify')}, then {self._cmd('finish')}."
            elif guards[0]["passed"]:
                hint = (f"fix what is named (end the transactions, add primary keys or a replica identity, export and "
                        f"remove large objects, wait for the lag), check with {self._cmd('status')}, then rerun "
                        f"{self._cmd('run')}.")
            else:
                hint = (f"wait until {self._cmd('status')} shows phase ready and every guard passing (rerun "
                        f"{self._cmd('prepare')} to wait for it), then rerun {self._cmd('run')}.")
            raise CutoverRefused(f"Switchover of blue/green deployment {did}", failed, hint)
        prober = WriteProbe(self.conninfo, clock=self.clock).start() if (probe and self.conninfo) else None
        try:
            t = self.clock()
            try:
                self.rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=did, SwitchoverTimeout=timeout)
            except self.rds.exceptions.InvalidBlueGreenDeploymentStateFault as exc:
                raise CutoverRefused(f"Switchover of blue/green deployment {did}", [_guard(
                    "deployment_ready", False, f"AWS refused: {exc.response['Error'].get('Message', exc)}")],
                    f"nothing was switched; wait until {self._cmd('status')} shows phase ready, then rerun "
                    f"{self._cmd('run')}.") from None
            status = self._wait_switchover(did, timeout, poll_s)
            phases["switchover"] = round(self.clock() - t, 3)
            done_at = self.clock()
            if prober is not None:
                prober.wait_acknowledged_since(done_at, PROBE_TAIL_S)
                phases["probe_tail"] = round(self.clock() - done_at, 3)
        finally:
            probe_result = prober.stop() if prober is not None else None
        lost: list[int] = []
        if prober is not None:
            try:
                lost = prober.lost_writes()
            except OpsError as exc:
                notes.append(f"could not read the probe rows back: {exc.message}")
                lost = list(prober.acked_ids)
            probe_result["lost"] = len(lost)
            if probe_result["mode"] == "read":
                notes.append(f"{PROBE_TABLE} does not exist on blue, so the probe measured reads (SELECT 1), not writes")
        pause = probe_result["write_pause_ms"] if probe_result else None
        passed = status == "SWITCHOVER_COMPLETED" and not lost and (pause is None or pause <= budget_ms)
        if pause is not None and pause > budget_ms:
            notes.append(f"write pause {pause} ms exceeded the budget of {budget_ms} ms; an RDS switchover cannot "
                         "be undone, so green stays primary")
        return {"passed": passed, "deployment": did, "status": status, "write_pause_ms": pause, "budget_ms": budget_ms,
                "probe": probe_result, "phases": phases, "guards": guards, "old_blue": f"{self.source}-old1",
                "notes": notes}

    def _wait_switchover(self, did: str, timeout_s: int, poll_s: float) -> str:
        start = self.clock()
        while True:
            d = self._describe(did)
            status = d.get("Status")
            if status == "SWITCHOVER_COMPLETED":
                return status
            if status not in ("SWITCHOVER_IN_PROGRESS", "AVAILABLE"):
                raise SwitchoverFailed(did, status or "?", d.get("StatusDetails") or "",
                                       f"read AWS's events with `aws rds describe-events --source-type "
                                       f"blue-green-deployment --source-identifier {did}`, check with "
                                       f"{self._cmd('status')}, then rerun {self._cmd('run')}.")
            waited = self.clock() - start
            if waited >= timeout_s + SWITCHOVER_GRACE_S:
                raise CutoverTimeout(
                    f"the switchover of blue/green deployment {did} (SwitchoverTimeout {timeout_s} s)", waited,
                    status, f"AWS rolls back a switchover that exceeds SwitchoverTimeout, so blue should still be the "
                            f"primary: confirm with {self._cmd('status')} before anything else.")
            self.sleep(poll_s)

    # ---- verify ---------------------------------------------------------------------------------
    def verify(self) -> dict:
        """After a switchover: ``{"passed", "deployment", "checks": [{"name", "passed", "detail"}]}`` —
        the deployment is SWITCHOVER_COMPLETED, the instance named ``source_instance_id`` is green,
        ``<id>-old1`` exists, and (with ``conninfo``) the endpoint takes writes on a primary."""
        d = self._find()
        checks = [_guard("switched", bool(d) and d.get("Status") == "SWITCHOVER_COMPLETED",
                         f"deployment {d['BlueGreenDeploymentIdentifier']} is {d.get('Status')}" if d
                         else f"no blue/green deployment of {self.source} (finished already, or never prepared)")]
        now = self._instance(self.source)
        old = self._instance(f"{self.source}-old1")
        checks.append(_guard("green_has_the_name", bool(now) and now.get("DBInstanceStatus") == "available",
                             f"{self.source}: engine {now.get('EngineVersion')}, {now.get('DBInstanceStatus')}"
                             if now else f"{self.source} does not exist"))
        checks.append(_guard("old_blue_kept", old is not None,
                             f"{self.source}-old1 {old.get('DBInstanceStatus')}" if old
                             else f"{self.source}-old1 does not exist"))
        if self.conninfo:
            try:
                with connect(self.conninfo, dbname=self.conninfo.get("dbname") or "postgres", autocommit=True,
                             application_name=tool_application_name("cutover verify")) as conn:
                    rec, ro, ver = conn.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
                                                "current_setting('server_version')").fetchone()
                checks.append(_guard("endpoint_takes_writes", not rec and ro == "off",
                                     f"PostgreSQL {ver}, in recovery: {rec}, transaction_read_only: {ro}"))
            except OpsError as exc:
                checks.append(_guard("endpoint_takes_writes", False, exc.message))
        return {"passed": all(c["passed"] for c in checks),
                "deployment": d["BlueGreenDeploymentIdentifier"] if d else None, "checks": checks}

    # ---- rollback -------------------------------------------------------------------------------
    def rollback(self, **_options):
        """Always raises :class:`RollbackUnavailable`: after an RDS switchover old blue is renamed
        ``-old1``, read-only and no longer replicating, so going back would lose every write
        acknowledged on green (AWS RDS User Guide, "After switchover"); before one there is nothing
        to roll back. The message names the logical path instead."""
        d = self._find()
        if d and d.get("Status") == "SWITCHOVER_COMPLETED":
            raise RollbackUnavailable(
                f"Blue/green deployment {d['BlueGreenDeploymentIdentifier']} has switched over, and an RDS switchover "
                f"cannot be rolled back without loss: old blue {self.source}-old1 is read-only and no longer "
                "replicating, so every write acknowledged on green since the switch would be lost. Nothing was changed.",
                "keep green and fix forward; if you need a way back that loses nothing, cut over with the logical path "
                "(logical replication with reverse replication: `invoke cutover.prepare` / `invoke cutover.run` / "
                "`invoke cutover.rollback` on a logical target), not RDS Blue/Green.")
        what = (f"blue/green deployment {d['BlueGreenDeploymentIdentifier']} is {d.get('Status')}" if d
                else f"there is no blue/green deployment of {self.source}")
        raise RollbackUnavailable(
            f"Nothing to roll back: {what}, and blue {self.source} is still the primary. Nothing was changed.",
            f"to abandon the deployment and its green instance run `aws rds delete-blue-green-deployment "
            f"--blue-green-deployment-identifier {d['BlueGreenDeploymentIdentifier']} --delete-target`."
            if d else f"check with {self._cmd('status')}.")

    # ---- finish ---------------------------------------------------------------------------------
    def _removal(self) -> tuple[list[str], list[str]]:
        old_id = f"{self.source}-old1"
        old = self._instance(old_id)
        if old is None:
            return [], [f"{old_id} does not exist (already removed)"]
        cmds = [f"aws rds delete-db-instance --db-instance-identifier {r} --skip-final-snapshot"
                for r in old.get("ReadReplicaDBInstanceIdentifiers") or []]
        if old.get("DeletionProtection"):
            cmds.append(f"aws rds modify-db-instance --db-instance-identifier {old_id} --no-deletion-protection "
                        "--apply-immediately")
        cmds.append(f"aws rds delete-db-instance --db-instance-identifier {old_id} "
                    f"--final-db-snapshot-identifier {old_id}-final")
        return cmds, []

    def finish(self, on_progress: Callable[[str], None] | None = None) -> dict:
        """Delete the switched-over deployment WITHOUT ``DeleteTarget`` (not allowed after a switchover;
        both instances stay). Returns ``{"deployment", "deleted", "old_blue", "remove_old_blue": [aws CLI
        commands, in order], "notes"}``. Idempotent: with the deployment already gone it returns the
        commands. Raises :class:`CutoverRefused` before a switchover (deleting then would leave green
        behind as a stray instance)."""
        d = self._find()
        notes = ["keep old blue until you are sure: it is the last copy of the data as it was at the switch",
                 ("update the stack's Pulumi config (engineVersion, parameterGroupFamily) to green's and run "
                 "`pulumi refresh`, so the next deploy neither reverts green nor tracks -old1")]
        if d is None:
            cmds, extra = self._removal()
            return {"deployment": None, "deleted": False, "old_blue": f"{self.source}-old1", "remove_old_blue": cmds,
                    "notes": [f"no blue/green deployment of {self.source} left (already finished)", *extra, *notes]}
        did = d["BlueGreenDeploymentIdentifier"]
        if d.get("Status") != "SWITCHOVER_COMPLETED":
            raise CutoverRefused(f"Finishing blue/green deployment {did}", [_guard(
                "switched", False, f"it is {d.get('Status')}, not SWITCHOVER_COMPLETED; deleting it now would leave "
                                   "its green instance behind")],
                f"switch over first with {self._cmd('run')}, or abandon it with `aws rds delete-blue-green-deployment "
                f"--blue-green-deployment-identifier {did} --delete-target`.")
        self.rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=did)
        cmds, extra = self._removal()
        return {"deployment": did, "deleted": True, "old_blue": f"{self.source}-old1", "remove_old_blue": cmds,
                "notes": [*extra, *notes]}
