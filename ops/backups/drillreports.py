"""Restore-drill reports in a repository: the one module that writes and reads them.

Layout: ``drills/<database>/<started_at>Z-<backup id>.json`` (the machine report) and ``.md`` beside
it (the human one), written whatever the drill's outcome. Retention reads them for its "newest
drilled backup" floor; ``drill.history`` and the AWS freshness metrics read them too.
"""
from __future__ import annotations

import json
import logging

from .repository import Repository

log = logging.getLogger(__name__)


def store_report(repo: Repository, report) -> str:
    """Write ``report`` (a :class:`~ops.drills.report.DrillReport`) as JSON and Markdown under
    ``drills/<database>/``; returns the JSON key. Raises :class:`~ops.errors.RepositoryError`."""
    stamp = report.started_at.replace(":", "").replace("-", "").split(".")[0]
    base = f"drills/{report.database}/{stamp}Z-{report.backup_id}"
    repo.put_bytes(base + ".md", report.to_markdown().encode())
    repo.put_bytes(base + ".json", report.to_json())
    return base + ".json"


def drill_reports(repo: Repository, database: str | None = None) -> list[dict]:
    """Restore-drill reports under ``drills/<database>/`` (all databases when None), as dicts, newest
    first by ``started_at``. A report that is not a JSON object is logged and skipped."""
    out = []
    for obj in repo.list(f"drills/{database}/" if database else "drills/"):
        if not obj.key.endswith(".json"):
            continue
        try:
            doc = json.loads(repo.get_bytes(obj.key))
        except (ValueError, TypeError) as exc:
            log.warning("unreadable %s: %s", obj.key, exc)
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return sorted(out, key=lambda d: str(d.get("started_at", "")), reverse=True)


def drill_passed_ids(repo: Repository, database: str) -> set[str]:
    """Backup ids whose restore drill passed: what retention's drill floor protects."""
    return {d["backup_id"] for d in drill_reports(repo, database)
            if d.get("passed") is True and isinstance(d.get("backup_id"), str)}
