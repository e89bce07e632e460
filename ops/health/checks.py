"""Health checks as data and verdicts, pure: no I/O. ``ops.health.probe`` measures; this module judges
and renders.

Thresholds come from :mod:`ops.thresholds`, the table the CloudWatch alarms are built from (one
source, two consumers): a check whose alarm exists there takes its critical value from the alarm.
Rules: check_postgres (each action has warn/crit; ``hot_standby_delay`` is critical only when the
lag in bytes *and* in time are both over, so an idle primary never alarms), the Nagios plugin
guidelines (status 0 ok, 1 warning, 2 critical, 3 unknown; one status line with perfdata), the
Prometheus text exposition format.
"""
from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlsplit
from dataclasses import asdict, dataclass, field, replace

from ..errors import ConfigError
from ..thresholds import THRESHOLDS

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
NAGIOS_CODE = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}
_ALARM = {t.key: t for t in THRESHOLDS}


@dataclass(frozen=True)
class Limit:
    """Warn and crit for one check id, in ``unit``; ``higher_is_worse`` False for e.g. free space.
    ``warn2``/``crit2`` are a second dimension that must *also* be over (replica lag: bytes)."""

    id: str
    unit: str
    warn: float
    crit: float
    runbook: str
    description: str
    warn2: float | None = None
    crit2: float | None = None
    unit2: str = ""
    lower_is_worse: bool = False


LIMITS: dict[str, Limit] = {limit.id: limit for limit in (
    Limit("node_down", "", 1, 1, "runbooks/local-stack-down.md", "a node does not answer"),
    Limit("connections", "ratio", 0.8, _ALARM["connections"].threshold, _ALARM["connections"].runbook,
          "client connections over max_connections − superuser_reserved_connections"),
    Limit("replica_lag", "s", 30, _ALARM["replica_lag"].threshold, _ALARM["replica_lag"].runbook,
          "replay lag in seconds and bytes (both must be over)", warn2=16 * 2**20, crit2=64 * 2**20, unit2="B"),
    Limit("long_transaction", "s", 300, 900, "runbooks/long-transaction.md", "the oldest open transaction"),
    Limit("idle_in_transaction", "s", 60, 300, "runbooks/idle-in-transaction.md",
          "the longest a session has sat idle inside a transaction"),
    Limit("blocked_queries", "s", 30, 120, "runbooks/long-transaction.md",
          "the longest a query has waited on a lock held by another session (pg_blocking_pids)"),
    Limit("xid_wraparound", "xids", 5e8, _ALARM["txid"].threshold, _ALARM["txid"].runbook,
          "age of the oldest datfrozenxid / datminmxid"),
    Limit("replication_slot_retained_wal", "B", 2**30, 5 * 2**30, "runbooks/replication-slot-retained-wal.md",
          "WAL an inactive replication slot keeps (wal_status lost/unreserved is critical)"),
    Limit("invalid_indexes", "indexes", 1, 1, "runbooks/invalid-index.md",
          "indexes left INVALID by a failed CREATE INDEX CONCURRENTLY"),
    Limit("disk_usage", "ratio", 0.8, 1 - _ALARM["storage"].threshold, _ALARM["storage"].runbook,
          "used fraction of the file system holding the data directory"),
    Limit("backup_age", "s", 25 * 3600, _ALARM["backup_age"].threshold, _ALARM["backup_age"].runbook,
          "age of the newest good backup (none: critical)"),
    Limit("drill_age", "s", 30 * 86400, _ALARM["drill_age"].threshold, _ALARM["drill_age"].runbook,
          "age of the newest passed restore drill (none: critical)"),
    Limit("pooler", "", 1, 1, "runbooks/local-stack-down.md", "the pooler does not pass a query to the primary"),
    Limit("cpu", "%", 80, _ALARM["cpu"].threshold, _ALARM["cpu"].runbook,
          "CPUUtilization of the RDS instance (AWS stacks, CloudWatch)"),
    Limit("ebs_burst_spent", "%", 100 - 2 * _ALARM["ebs_byte_balance"].threshold,
          100 - _ALARM["ebs_byte_balance"].threshold, _ALARM["ebs_byte_balance"].runbook,
          "EBS burst balance spent: 100 − the lower of EBSByteBalance% and EBSIOBalance% (AWS stacks, CloudWatch)"),
    # seed 001 / issue 13: monthly partitions kept by `invoke db.partitions` (pg_partman's premake, its default-partition pain)
    Limit("partitions_ahead", "months", 2, 1, "runbooks/partitions.md",
          "whole months with a partition after the current one (critical under one)", lower_is_worse=True),
    Limit("partition_default_rows", "rows", 1, 1e12, "runbooks/partitions.md",
          "rows in a partitioned table's default partition (warning only: crit is 1e12; their month has no partition)"),
)}


@dataclass(frozen=True)
class Measurement:
    """What a probe saw: ``value`` in the check's unit (None: could not be measured → unknown),
    ``value2`` the second dimension, ``detail`` naming the offender (pid, index, slot, replica).
    ``failed`` is a boolean check's verdict (node_down, pooler); ``forced`` a status the measurement
    itself decides (a slot whose WAL is lost is critical whatever its size)."""

    id: str
    node: str
    value: float | None
    detail: str = ""
    value2: float | None = None
    failed: bool | None = None
    forced: str | None = None
    role: str | None = None  # node_down: the node's recorded role ("primary" | "replica"), for the probes


@dataclass(frozen=True)
class CheckResult:
    """One row of ``invoke health``: the JSON shape the issue fixes."""

    id: str
    node: str
    status: str
    value: float | None
    unit: str
    warn: float
    crit: float
    detail: str
    runbook: str
    extra: dict = field(default_factory=dict)
    role: str | None = None  # node_down: the node's recorded role, read by the HTTP probes

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d.pop("role")
        d.update(self.extra)
        return d


def parse_overrides(items: list[str] | None, limits: dict[str, Limit] = LIMITS) -> dict[str, Limit]:
    """``--set ID.warn=V`` / ``--set ID.crit=V`` (and ``warn2``/``crit2``) applied to ``limits``.
    Values are numbers, optionally with a unit suffix (``16MB``, ``2GB``, ``30s``, ``5min``, ``2h``,
    ``3d``). Raises :class:`ConfigError` listing every bad item at once."""
    out = dict(limits)
    problems = []
    for item in items or []:
        m = re.fullmatch(r"([a-z_]+)\.(warn2?|crit2?)=(.+)", item.strip())
        if not m:
            problems.append(f"--set {item!r}: expected ID.warn=VALUE or ID.crit=VALUE")
            continue
        check, which, raw = m.groups()
        if check not in out:
            problems.append(f"--set {item!r}: unknown check id '{check}' (known: {', '.join(sorted(out))})")
            continue
        try:
            out[check] = replace(out[check], **{which: parse_quantity(raw)})
        except ValueError as exc:
            problems.append(f"--set {item!r}: {exc}")
    if problems:
        raise ConfigError(problems, "run `invoke health --help` for the check ids.")
    return out


_UNITS = {"": 1, "b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40, "s": 1, "ms": 0.001,
          "min": 60, "h": 3600, "d": 86400, "%": 0.01}


def parse_quantity(raw: str) -> float:
    """``"16MB"`` → 16777216, ``"5min"`` → 300, ``"90%"`` → 0.9, ``"0.5"`` → 0.5. Raises ValueError."""
    m = re.fullmatch(r"\s*(-?[0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-z%]*)\s*", raw.lower())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"'{raw}' is not a number with an optional unit (B, kB, MB, GB, ms, s, min, h, d, %)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def judge(m: Measurement, limits: dict[str, Limit] = LIMITS) -> CheckResult:
    """The verdict for one measurement under ``limits``. Higher values are worse for every check;
    a two-dimensional check (replica lag) is over a level only when both dimensions are."""
    lim = limits[m.id]
    extra = {} if lim.unit2 == "" else {"value2": m.value2, "unit2": lim.unit2, "warn2": lim.warn2, "crit2": lim.crit2}
    if m.forced:
        status = m.forced
    elif m.failed is not None:
        status = CRITICAL if m.failed else OK
    elif m.value is None or (isinstance(m.value, float) and math.isnan(m.value)):
        status = UNKNOWN
    else:
        def over(level: float, level2: float | None) -> bool:
            if (m.value >= level) if lim.lower_is_worse else (m.value < level):
                return False
            return level2 is None or (m.value2 is not None and m.value2 >= level2)
        status = CRITICAL if over(lim.crit, lim.crit2) else WARNING if over(lim.warn, lim.warn2) else OK
    return CheckResult(m.id, m.node, status, m.value, lim.unit, lim.warn, lim.crit, m.detail, lim.runbook, extra, m.role)


def overall(results: list[CheckResult]) -> str:
    """The worst status, Nagios order (critical > warning > unknown > ok); no checks is unknown."""
    if not results:
        return UNKNOWN
    for s in (CRITICAL, WARNING, UNKNOWN):
        if any(r.status == s for r in results):
            return s
    return OK


def render_nagios(results: list[CheckResult]) -> str:
    """One status line, then perfdata (Nagios plugin guidelines: ``'label'=value[UOM];warn;crit``)."""
    status = overall(results)
    bad = [r for r in results if r.status in (CRITICAL, WARNING, UNKNOWN)]
    summary = ", ".join(f"{r.id} on {r.node} {r.status}" + (f" ({' '.join(r.detail.split())})" if r.detail else "")
                        for r in bad) or f"{len(results)} checks ok"
    perf = " ".join(f"'{r.id}_{r.node}'={_num(r.value)}{_uom(r.unit)};{_num(r.warn)};{_num(r.crit)}"
                    for r in results if r.value is not None)
    return f"PGOPS HEALTH {status.upper()} - {summary.replace('|', '/')}" + (f" | {perf}" if perf else "")


def render_prometheus(results: list[CheckResult]) -> str:
    """Prometheus text exposition: ``pgops_health_status`` (0 ok, 1 warning, 2 critical, 3 unknown)
    and ``pgops_health_value`` per check and node."""
    lines = ["# HELP pgops_health_status Check status (0 ok, 1 warning, 2 critical, 3 unknown).",
             "# TYPE pgops_health_status gauge"]
    lines += [f'pgops_health_status{{check="{r.id}",node="{_label(r.node)}"}} {NAGIOS_CODE[r.status]}' for r in results]
    lines += ["# HELP pgops_health_value Measured value of the check, in its unit.",
              "# TYPE pgops_health_value gauge"]
    lines += [f'pgops_health_value{{check="{r.id}",node="{_label(r.node)}",unit="{r.unit}"}} {_num(r.value)}'
              for r in results if r.value is not None]
    return "\n".join(lines) + "\n"


def _num(v) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _uom(unit: str) -> str:
    return {"s": "s", "B": "B", "ratio": "", "": ""}.get(unit, "")


def _label(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


PROBE_PATHS = ("/health", "/primary", "/replica")


def probe_request(path: str) -> tuple[str, float, str | None]:
    """``(endpoint, lag limit in bytes, replica name or None)`` for a probe's request target, e.g.
    ``"/replica?lag=16MB&name=pg2"`` → ``("/replica", 16777216.0, "pg2")``; the limit is 16 MB unless
    ``lag`` is given. Raises LookupError for a path not in :data:`PROBE_PATHS` (HTTP 404) and
    ValueError for a ``lag`` that is not a finite size ≥ 0 (HTTP 400: ``lag=abc`` and ``lag=-5`` alike)."""
    url = urlsplit(path)
    if url.path not in PROBE_PATHS:
        raise LookupError(f"no endpoint {url.path}; try {', '.join(PROBE_PATHS)}?lag=16MB")
    q = {k: v[-1] for k, v in parse_qs(url.query).items()}
    raw = q.get("lag", "16MB")
    limit = parse_quantity(raw)
    if not (math.isfinite(limit) and limit >= 0):
        raise ValueError(f"lag must be a size of at least 0 (B, kB, MB, GB), not '{raw}'")
    return url.path, limit, q.get("name")


def probe_answer(path: str, results: list) -> tuple[int, dict]:
    """HTTP status and JSON body for a load balancer's probe, Patroni's REST API semantics over the
    stack's checks. The probes judge the nodes, not the backups or a database's contents (issue 19
    §1): ``/health`` 200 unless a check of a server (a node or the pooler) is critical — a missed
    backup or drill is ``invoke health``'s business, not a reason to pull a working primary;
    ``/primary`` 200 when the node whose recorded *role* is primary answers (node names are
    identities, roles move); ``/replica?lag=16MB[&name=N]`` 200 when that replica (any replica without
    ``name``) answers and is at most ``lag`` bytes behind. Unknown paths: 404; a bad ``lag``: 400
    (:func:`probe_request`)."""
    try:
        endpoint, limit, name = probe_request(path)
    except LookupError as exc:
        return 404, {"error": str(exc)}
    except ValueError as exc:
        return 400, {"error": str(exc)}
    body = {"status": overall(results), "checks": [r.as_dict() for r in results]}
    downs = [r for r in results if r.id == "node_down"]
    servers = {r.node for r in downs} | {r.node for r in results if r.id == "pooler"}
    up = {r.node for r in downs if r.status == "ok"}
    primaries = {r.node for r in downs if r.role == "primary"}
    if endpoint == "/health":
        return (503 if any(r.status == CRITICAL for r in results if r.node in servers) else 200), body
    if endpoint == "/primary":
        ok = bool(primaries & up)
        return (200 if ok else 503), {"primary": ok}
    lags = {r.node: r.extra.get("value2") for r in results if r.id == "replica_lag"}
    ok = [n for n, lag in lags.items() if n in up and lag is not None and lag <= limit and (name or n) == n]
    return (200 if ok else 503), {"replicas_within_lag": ok, "lag_limit_bytes": limit}
