"""``health``: every check on every node of the target, judged against the alarms' thresholds.

Exit status follows the Nagios plugin convention for every format: 0 ok, 1 warning, 2 critical,
3 unknown — including a bad option or an unreachable repository (Nagios guidelines: a plugin that
cannot check says UNKNOWN).
"""
from __future__ import annotations

from datetime import datetime, timezone

from ..errors import ConfigError, OpsError
from .common import HELP, cli, settings_for, target_for, task

FORMATS = ("table", "json", "nagios", "prometheus")


@task(iterable=["db", "set_"], help={
    **{k: HELP[k] for k in ("stack", "dsn", "sql_root", "db")},
    "repository": "where backup_age and drill_age look (default: the stack's; with --dsn: only when given)",
    "format_": "table (default) | json | nagios | prometheus",
    "set_": "override a threshold for this run: ID.warn=V or ID.crit=V (units: B kB MB GB ms s min h d %); repeatable",
    "serve": "answer HTTP probes on 127.0.0.1:PORT until stopped: /health, /primary, /replica?lag=16MB[&name=pg2] "
             "(status only); /checks (the report) with the token in <state dir>/health-serve.token",
    "max_age": "--serve: seconds one measurement answers probes for (default 2; 0-60)"})
@cli.edge
def health(c, stack=None, dsn=None, sql_root=None, db=None, repository=None, format_="table", set_=None, serve=None,
           max_age=None):
    """One check per row (id, node, status, value, warn, crit, detail, runbook); Nagios exit status."""
    try:
        if max_age is not None and serve is None:
            raise ConfigError([f"--max-age {max_age} applies to --serve only"], "add `--serve PORT`, or drop --max-age.")
        if serve is not None:
            return _serve(serve, max_age, lambda: _measure(stack, dsn, sql_root, db, repository, set_),
                          settings_for(stack, dsn, sql_root, repository).state_dir)
        cli.choice(format_, "--format", FORMATS)
        results = _measure(stack, dsn, sql_root, db, repository, set_)
    except OpsError as exc:
        exc.exit_code = 3  # UNKNOWN: the checks could not run
        raise
    from ..health.checks import NAGIOS_CODE, overall, render_nagios, render_prometheus
    status = overall(results)
    if format_ == "json":
        cli.emit_json({"status": status, "checks": [r.as_dict() for r in results]})
    elif format_ == "nagios":
        cli.say(render_nagios(results))
    elif format_ == "prometheus":
        cli.say(render_prometheus(results).rstrip("\n"))
    else:
        cli.table(f"health: {status.upper()}", ["check", "node", "status", "value", "warn", "crit", "detail", "runbook"],
                  [[r.id, r.node, r.status.upper() if r.status != "ok" else "ok", _show(r.value, r.unit),
                    _show(r.warn, r.unit), _show(r.crit, r.unit), r.detail, r.runbook] for r in results])
    raise SystemExit(NAGIOS_CODE[status])


def _measure(stack, dsn, sql_root, db, repository, set_) -> list:
    from ..backups.drillreports import drill_reports
    from ..backups.engine import list_backups
    from ..backups.repository import open_repository
    from ..health.checks import judge, parse_overrides
    from ..health.probe import measure_all
    target = target_for(stack, dsn, sql_root, repository)
    limits = parse_overrides([*target.settings.thresholds, *(set_ or [])])  # $PGOPS_THRESHOLDS, then --set wins
    databases = target.backup_names(list(db or []) or None)
    try:
        url = target.repository_url()
    except ConfigError:
        url = None  # --dsn without --repository: no backup checks rather than a guess
    repo = open_repository(url, target.kms_key_id()) if url else None
    now = datetime.now(timezone.utc)
    measured = measure_all(target.health_nodes(), databases=databases, data_dirs=target.data_directories(),
                           pooler_params=target.pooler_params(), repo=repo, now=now,
                           drill_reports=drill_reports, list_backups=list_backups,
                           platform=lambda: target.platform_measurements(now))
    return [judge(m, limits) for m in measured]


def _serve(port, max_age, measure, state_dir) -> None:
    """Options and target checked, and measured once, before listening (exit 3 when wrong): the port
    a TCP port (1–65535, RFC 793), ``--max-age`` seconds from 0 to 60 (a probe answer older than a
    minute says nothing about now)."""
    from ..dsn import redact
    from ..health.serve import DEFAULT_MAX_AGE, serve
    try:
        port = cli.as_int(port, "--serve", minimum=1, maximum=65535)
        if port is None:  # `--serve ''`: as_int reads an empty value as "not given"
            raise ConfigError(["--serve needs a TCP port number from 1 to 65535"])
        age = cli.as_float(max_age, "--max-age", DEFAULT_MAX_AGE, maximum=60)
    except ConfigError as exc:
        exc.hint = ("choose a free TCP port and a cache age in seconds, e.g. "
                    "`invoke health --serve 8008 --max-age 2` (8008 is Patroni's REST port).")
        raise
    serve(port, measure, state_dir, first=measure(), max_age=age, redact=redact, progress=cli.progress)


def _show(v, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "ratio":
        return f"{v:.0%}"
    if unit == "B":
        return f"{v / 2**20:,.1f} MiB"
    if unit == "s":
        return f"{v:,.0f} s" if v >= 10 else f"{v:.1f} s"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:.3g}"

