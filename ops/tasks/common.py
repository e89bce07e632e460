"""What every area's tasks share: option help, the task decorator, target and repository resolution."""
from __future__ import annotations

from typing import Callable

from invoke import task as invoke_task

from typing import TYPE_CHECKING

from .. import cli
from ..settings import Settings

if TYPE_CHECKING:  # annotations only: the targets load on first use (start-up time)
    from ..targets import AbstractTarget

HELP = {
    "stack": "stack name (default: local, or $PGOPS_STACK)",
    "dsn": "any PostgreSQL instead of the stack: libpq DSN including dbname (or $PGOPS_DSN)",
    "sql_root": "folder holding <database>/migrations/ (default: sql/)",
    "db": "database (folder under sql/); repeat for several; default: all",
    "json_": "print JSON for machines instead of tables",
    "repository": "file:///path or s3://bucket/prefix (default: the stack's, or $PGOPS_REPOSITORY; --dsn has none)",
    "yes": "apply the plan without asking (required when not on a terminal)",
}
RUN_KNOBS = {
    "lock_wait": "seconds to wait for another runner's advisory lock (default 60)",
    "lock_timeout": "lock_timeout per statement, seconds (default 2)",
    "statement_timeout": "statement_timeout per statement, seconds (default 0 = none)",
    "retries": "retries of a migration after a lock timeout (default 5)",
    "preflight": "long/idle-in-transaction sessions: wait | refuse | skip (default wait)",
    "max_xact_age": "preflight: transactions older than this many seconds block (default 60)",
}


def task(*args, **kwargs) -> Callable:
    """Invoke's ``@task`` without automatic short flags: no destructive option gets one, and no
    letter means two things in two tasks (``-r`` was ``--dry-run`` in one and ``--replace`` in another)."""
    kwargs.setdefault("auto_shortflags", False)
    return invoke_task(*args, **kwargs)


def settings_for(stack=None, dsn=None, sql_root=None, repository=None, dsn_from_env=True) -> Settings:
    from ..targets import resolve_settings
    return resolve_settings(stack=stack, dsn=dsn, sql_root=sql_root, repository=repository, dsn_from_env=dsn_from_env)


def target_for(stack=None, dsn=None, sql_root=None, repository=None) -> AbstractTarget:
    """Resolve the task's target once from its options and the ``PGOPS_*`` variables."""
    from ..targets import resolve
    target = resolve(settings_for(stack, dsn, sql_root, repository))
    target.require_tls()  # an AWS stack refuses a connection without TLS (seed 001)
    return target


def open_repo(target: AbstractTarget, skipped: bool = False, reads: str | None = None):
    """The target's backup repository (``--repository`` wins), or None when ``skipped``. ``reads``:
    the task's name when it only reads the repository (the refusal for a bare ``--dsn`` says so)."""
    from ..backups.repository import open_repository
    url = target.repository_url(backups_skipped=skipped, reads=reads)
    return None if url is None else open_repository(url, target.kms_key_id(), create=reads is None)


def fmt_version(v) -> str:
    return "—" if v is None else str(v)


def rerun(task_name: str, frags: dict[str, list[str]], *extra: str) -> str:
    """The command line to repeat with ``--yes`` (target options included, DSN redacted)."""
    parts = ["invoke", task_name, *extra, *[p for f in frags.values() for p in f], "--yes"]
    return " ".join(parts)


__all__ = ["HELP", "RUN_KNOBS", "task", "target_for", "settings_for", "open_repo", "fmt_version", "rerun", "cli"]
