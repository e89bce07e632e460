"""Every ``PGOPS_*`` variable, read in one place.

:class:`Settings` is plain data built by a pure function from the task's options and an
environment mapping; :func:`current` applies it to ``os.environ``. No other module reads a
``PGOPS_*`` variable: the local stack, the targets and the task edge all ask here. Option values
win over variables, variables over defaults (Invoke's and libpq's own precedence).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_SQL_ROOT = PROJECT_DIR / "sql"
DEFAULT_STATE_DIR = PROJECT_DIR / ".pgops" / "local"
DEFAULT_RDS_CA_BUNDLE = Path.home() / ".postgresql" / "rds-global-bundle.pem"

#: (variable, meaning, default) — the README's configuration table is checked against this list.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("PGOPS_STACK", "stack name for every task (`--stack` wins)", "`local`"),
    ("PGOPS_DSN", "target any PostgreSQL (`--dsn` wins)", "unset"),
    ("PGOPS_STATE_DIR", "local stack state directory (data, logs, passfile, repository)", "`.pgops/local` in the checkout"),
    ("PGOPS_LOCAL_PORT", "local primary port for a new stack (`--port` wins)", "`54320`"),
    ("PGOPS_PG_BINDIR", "PostgreSQL server binaries", "newest `/usr/lib/postgresql/*/bin`"),
    ("PGOPS_LOG_LEVEL", "log level on stderr (`DEBUG`, `INFO`, …; `DEBUG,botocore=DEBUG` names a library)", "`WARNING`"),
    ("PGOPS_REPOSITORY", "backup repository URL, `file:///path` or `s3://bucket/prefix` (`--repository` wins)",
     "the stack's; none for `--dsn`"),
    ("PGOPS_KMS_KEY_ID", "KMS key for SSE-KMS on S3 writes; without it SSE-S3 (AES256) is requested", "unset"),
    ("PGOPS_RDS_CA_BUNDLE", "CA bundle for `sslmode=verify-full` to RDS", "`~/.postgresql/rds-global-bundle.pem`"),
    ("PGOPS_THRESHOLDS", "health thresholds for this environment, `ID.warn=V,ID.crit=V` (as `--set`, which wins); "
     "read by `health` and `db.terminate`", "`ops/thresholds.py`"),
    ("PGOPS_SCHEDULE_TZ", "IANA time zone of the business-hours backup job (`schedule.*`)", "`UTC`"),
    ("PGOPS_COPY_TO", "second repository the daily scheduled job copies new backups to (`backup.copy --to`)", "unset"),
    ("PGOPS_COPY_KMS_KEY_ID", "KMS key for SSE-KMS on the second repository's writes (`backup.copy --to-kms-key`)",
     "unset"),
    ("PGOPS_STACK_OUTPUTS", "an AWS stack's outputs as JSON, instead of asking Pulumi (set by the Scheduler's task "
     "definition)", "unset"),
)


@dataclass(frozen=True)
class Settings:
    """What a task runs against, resolved once.

    ``dsn`` is the raw ``--dsn``/``$PGOPS_DSN`` text (it may hold a password: never print it; the
    targets parse it into parameters with the password wrapped). ``local_port`` is an int or None.
    ``thresholds`` are ``$PGOPS_THRESHOLDS``'s ``ID.warn=V`` items, validated where they are applied
    (:func:`ops.health.checks.parse_overrides`).
    """

    stack: str = "local"
    dsn: str | None = None
    sql_root: Path = DEFAULT_SQL_ROOT
    sql_root_given: bool = False
    repository: str | None = None
    kms_key_id: str | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    local_port: int | None = None
    pg_bindir: Path | None = None
    log_level: str = "WARNING"
    rds_ca_bundle: Path = DEFAULT_RDS_CA_BUNDLE
    thresholds: tuple[str, ...] = ()
    schedule_tz: str = "UTC"
    copy_to: str | None = None
    copy_kms_key_id: str | None = None
    stack_outputs: dict | None = None

    @property
    def pulumi_stack(self) -> str | None:
        """The Pulumi stack this run names (``--stack dev``), or None for the local stack and ``--dsn``."""
        return None if self.dsn or self.stack == "local" else self.stack


def from_options(environ: Mapping[str, str], *, stack: str | None = None, dsn: str | None = None,
                 sql_root: str | None = None, repository: str | None = None, dsn_from_env: bool = True) -> Settings:
    """Pure: ``Settings`` from task options and an environment mapping (``os.environ`` shape).
    ``dsn_from_env=False`` ignores ``$PGOPS_DSN`` (``backup.restore``: its ``--dsn`` is the
    destination, and the stack whose servers are protected is never a bare DSN).

    Raises :class:`ConfigError` listing every malformed variable at once (e.g. a non-numeric
    ``PGOPS_LOCAL_PORT``).
    """
    problems = []
    port_text = environ.get("PGOPS_LOCAL_PORT") or None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            problems.append(f"PGOPS_LOCAL_PORT='{port_text}' is not a port number")
        else:
            port = int(port_text)
    outputs = None
    if environ.get("PGOPS_STACK_OUTPUTS"):
        import json
        try:
            outputs = json.loads(environ["PGOPS_STACK_OUTPUTS"])
        except ValueError:
            outputs = None
        if not isinstance(outputs, dict):
            problems.append("PGOPS_STACK_OUTPUTS is not a JSON object of stack outputs")
    if problems:
        raise ConfigError(problems, "fix the environment variable(s) above.")
    bindir = environ.get("PGOPS_PG_BINDIR") or None
    state = environ.get("PGOPS_STATE_DIR") or None
    return Settings(
        stack=stack or environ.get("PGOPS_STACK") or "local",
        dsn=dsn or (environ.get("PGOPS_DSN") if dsn_from_env else None) or None,
        sql_root=Path(sql_root).resolve() if sql_root else DEFAULT_SQL_ROOT,
        sql_root_given=bool(sql_root),
        repository=repository or environ.get("PGOPS_REPOSITORY") or None,
        kms_key_id=environ.get("PGOPS_KMS_KEY_ID") or None,
        state_dir=Path(state).resolve() if state else DEFAULT_STATE_DIR,
        local_port=port,
        pg_bindir=Path(bindir) if bindir else None,
        log_level=environ.get("PGOPS_LOG_LEVEL") or "WARNING",
        rds_ca_bundle=Path(environ.get("PGOPS_RDS_CA_BUNDLE") or DEFAULT_RDS_CA_BUNDLE),
        thresholds=tuple(t for t in (environ.get("PGOPS_THRESHOLDS") or "").replace(",", " ").split() if t),
        schedule_tz=environ.get("PGOPS_SCHEDULE_TZ") or "UTC",
        copy_to=environ.get("PGOPS_COPY_TO") or None,
        copy_kms_key_id=environ.get("PGOPS_COPY_KMS_KEY_ID") or None,
        stack_outputs=outputs,
    )


def current(**options) -> Settings:
    """:func:`from_options` over ``os.environ`` (the process environment, read at call time)."""
    return from_options(os.environ, **options)


#: What a scheduled job's runs need from the installing environment (``schedule.install`` writes them
#: into units and cron files). Never ``PGOPS_DSN``: it may hold a password.
SCHEDULE_PASSED_ON = ("PGOPS_STATE_DIR", "PGOPS_REPOSITORY", "PGOPS_KMS_KEY_ID", "PGOPS_SCHEDULE_TZ", "PGOPS_COPY_TO",
                      "PGOPS_COPY_KMS_KEY_ID", "PGOPS_PG_BINDIR", "PGOPS_LOG_LEVEL")


def schedule_environment(environ: Mapping[str, str], stack: str) -> dict[str, str]:
    """Pure: the ``PGOPS_*`` variables of :data:`SCHEDULE_PASSED_ON` that are set, plus ``PGOPS_STACK``."""
    return {**{k: environ[k] for k in SCHEDULE_PASSED_ON if environ.get(k)}, "PGOPS_STACK": stack}


def child_environment(environ: Mapping[str, str], stack: str) -> dict[str, str]:
    """Pure: the environment of a scheduled job's steps — this one, the stack named, ``PGOPS_DSN``
    removed (a job runs against its stack, and a DSN may hold a password)."""
    env = {k: v for k, v in environ.items() if k != "PGOPS_DSN"}
    env["PGOPS_STACK"] = stack
    return env
