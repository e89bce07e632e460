"""``drill.*``: restore drills (a backup restored into a throwaway server, checked, timed) and their history."""
from __future__ import annotations

import json as jsonlib
import os
from datetime import datetime, timezone
from pathlib import Path

from invoke import Collection

from ..backups.manifest import CLUSTER
from ..dsn import parse
from ..secrets import protect_params
from ..errors import ConfigError, DrillFailed, OpsError
from .common import HELP, cli, open_repo, target_for, task

KINDS = ("logical", "snapshot")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _report_path(path: str | None) -> Path | None:
    """Check ``--json PATH`` can be written before the drill starts (exit 2 otherwise)."""
    if not path:
        return None
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir() or not parent.is_dir():
        raise ConfigError([f"--json {path}: {'is a directory' if p.is_dir() else f'folder {parent} does not exist'}"],
                          "pass a writable file path.")
    if not os.access(p if p.exists() else parent, os.W_OK):
        raise ConfigError([f"--json {path} cannot be written (permission denied)"], "pass a writable file path.")
    return p


def _write_report(path: Path, doc) -> None:
    try:
        path.write_text(jsonlib.dumps(doc, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ConfigError([f"--json {path}: the drill ran (its report is in the repository) but the copy could not "
                           f"be written: {exc.strerror}"], "read it with `invoke drill.history`.") from None


@task(name="run", iterable=["db"], help={
    **{k: HELP[k] for k in ("repository", "stack", "dsn", "db", "sql_root")}, "backup": "backup id, or latest (default)",
    "kind": "logical (default) or snapshot (local: the physical backup; AWS: an RDS snapshot)",
    "json_": "also write the JSON report to this PATH", "keep_target": "keep the scratch server and print how to reach it",
    "target_dsn": "restore a logical backup into a temporary database on this server instead of a scratch cluster",
    "cleanup": "only remove drill targets left by killed drills (their owner process is gone), then exit"})
@cli.edge
def run(c, db=None, dsn=None, stack=None, backup="latest", kind="logical", repository=None, json_=None,
        keep_target=False, sql_root=None, target_dsn=None, cleanup=False):
    """Restore a backup into a throwaway server, check the data, report RTO/RPO; exit 8 when it fails.
    Every drill first removes stale drill targets of killed drills (what --cleanup does alone)."""
    from ..backups import engine
    from ..backups.drillreports import store_report
    from ..drills.runner import cleanup_stale_drills, run_drill
    if cleanup:
        rows = cleanup_stale_drills()
        cli.table(f"stale drill targets removed: {len(rows)}", ["directory", "owner pid", "reason"],
                  [[str(s.path), s.owner_pid, s.reason] for s in rows], whole_first=True)
        return
    cli.choice(kind, "--kind", KINDS)
    report_path = _report_path(json_)
    scratch = protect_params(parse(target_dsn)) if target_dsn else None
    target = target_for(stack, dsn, sql_root, repository)
    names = target.backup_names(list(db or []) or None) if not (backup and backup != "latest") else []
    repo = open_repo(target)  # after the selection is known good: a refused --db makes no repository
    reports = []
    if kind == "snapshot":
        platform = [target.snapshot_drill(repo, d, _now) for d in names]
        if platform and all(r is not None for r in platform):
            if report_path is not None:
                _write_report(report_path, platform[0].to_dict() if len(platform) == 1 else [r.to_dict() for r in platform])
            print_drills(platform)
            return
    manifests = [engine.find_backup(repo, backup)] if backup and backup != "latest" else \
        [latest(repo, d, kind) for d in ([CLUSTER] if kind == "snapshot" else names)]

    def keep(report):  # runs whatever the outcome, Ctrl-C included
        reports.append(report)
        store_report(repo, report)
    try:
        for m in manifests:
            with cli.transfer(f"drill {m.id}: fetch + sha256", total=m.size_bytes) as advance:
                run_drill(repo, m, sql_root=target.settings.sql_root, protected=target.protected_endpoints(),
                          keep_target=keep_target, progress=cli.progress,
                          passfile_for_physical=target.physical_passfile(), on_report=keep, target=scratch,
                          on_bytes=advance)
            target.after_drill(reports[-1], _now())
    finally:
        if report_path is not None and reports:
            doc = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
            _write_report(report_path, doc)
    print_drills(reports)


def latest(repo, database: str, kind: str):
    """The newest backup of ``database`` of ``kind``; raises :class:`OpsError` naming the command that makes one."""
    from ..backups import engine
    found = [m for m in engine.list_backups(repo, database) if m.kind == kind]
    if not found:
        raise OpsError(f"No {kind} backup of '{database}' in {repo.url}.",
                       f"take one with `invoke backup.create --db {database}" + (" --kind snapshot`." if kind == "snapshot" else "`."))
    return found[0]


def print_drills(reports):
    for r in reports:
        cli.table(f"drill {'PASSED' if r.passed else 'FAILED'}: {r.database} from {r.backup_id}",
                  ["check", "passed", "detail"], [[c.name, "PASS" if c.passed else "FAIL", c.detail] for c in r.checks])
        rto = "—" if r.rto_seconds is None else f"{r.rto_seconds:.1f} s"
        rpo = "— (the backup's clock is skewed)" if r.rpo_seconds is None else f"{r.rpo_seconds:.0f} s"
        cli.say(f"RTO {rto} · RPO {rpo} · phases " +
                ", ".join(f"{k} {v:.1f} s" for k, v in r.phases.items()))
        if r.kept_target:
            cli.say(f"target kept: {r.kept_target}")
    failed = [r for r in reports if not r.passed]
    if failed:
        raise DrillFailed(failed)


@task(name="history", iterable=["db"], help={**{k: HELP[k] for k in ("repository", "stack", "dsn", "db", "json_")}})
@cli.edge
def history(c, db=None, dsn=None, stack=None, repository=None, json_=False):
    """Past restore drills with their outcome, RTO and RPO."""
    from ..backups.drillreports import drill_reports
    target = target_for(stack, dsn, repository=repository)
    repo = open_repo(target, reads="drill.history")
    items = [h for d in target.listed_databases(list(db or []) or None) for h in drill_reports(repo, d)]
    if json_:
        cli.emit_json([{k: h.get(k) for k in ("database", "backup_id", "kind", "started_at", "passed", "rto_seconds",
                                              "rpo_seconds", "phases", "error")} for h in items])
        return
    cli.table(f"restore drills in {repo.url}", ["started_at", "database", "backup", "result", "RTO (s)", "RPO (s)",
                                                 "failed checks"],
              [[h.get("started_at"), h.get("database"), h.get("backup_id"), "PASS" if h.get("passed") else "FAIL",
                h.get("rto_seconds"), h.get("rpo_seconds"), _failed_checks(h)] for h in items])


def _failed_checks(report: dict) -> str:
    """What a failed drill's report names: its failed checks with their detail, or its error (the runbook's step 1)."""
    failed = [f"{c.get('name')}: {c.get('detail')}" for c in report.get("checks") or [] if not c.get("passed")]
    return "; ".join(failed) or (report.get("error") or "")


ns = Collection("drill", run, history)
