"""Targets: where a task's databases are. :func:`resolve` is the one place a task's ``--stack``,
``--dsn``, ``--sql-root`` and ``--repository`` options meet the ``PGOPS_*`` variables
(:mod:`ops.settings`), and the only place that chooses an implementation.

``--dsn`` (or ``$PGOPS_DSN``) wins and gives a :class:`DsnTarget`; otherwise ``--stack`` (default
``local``) gives the :class:`LocalTarget`, and any other name an :class:`AwsTarget` read from the
Pulumi stack of that name (it must have a ``Pulumi.<name>.yaml``; it is never created here).
"""
from __future__ import annotations

from pathlib import Path

from .. import settings as settings_mod
from ..errors import ConfigError
from ..pulumi_stack import open_workspace
from ..settings import Settings
from .aws import AwsClients, AwsTarget, boto_clients, ca_bundle
from .base import AbstractTarget, DatabaseRef, select_databases
from .dsn import DsnTarget
from .local import LocalTarget

__all__ = ["AbstractTarget", "AwsClients", "AwsTarget", "DatabaseRef", "DsnTarget", "LocalTarget", "resolve",
           "resolve_settings", "select_databases", "boto_clients", "ca_bundle", "migrations_dir"]


def resolve_settings(*, stack: str | None = None, dsn: str | None = None, sql_root: str | None = None,
                     repository: str | None = None, check_sql_root: bool = True, dsn_from_env: bool = True) -> Settings:
    """Settings for one task run. Raises :class:`ConfigError` for a ``--sql-root`` that is not a folder."""
    s = settings_mod.current(stack=stack, dsn=dsn, sql_root=sql_root, repository=repository,
                             dsn_from_env=dsn_from_env)
    if check_sql_root and s.sql_root_given and not s.sql_root.is_dir():
        raise ConfigError([f"--sql-root {s.sql_root} is not a directory"],
                          "pass the folder holding <database>/migrations/.")
    return s


def resolve(s: Settings) -> AbstractTarget:
    """The target ``s`` names. Raises :class:`ConfigError` (a DSN without a database, a stack with no
    ``Pulumi.<name>.yaml`` or no outputs yet), :class:`~ops.errors.PulumiMissing` (exit 9)."""
    if s.dsn:
        return DsnTarget(s)
    if s.stack == "local":
        return LocalTarget(s)
    outputs = s.stack_outputs or open_workspace(s.stack).outputs()  # a scheduled container has no Pulumi state
    if not outputs.get("primary_endpoint"):
        raise ConfigError([f"stack '{s.stack}' has no outputs yet"], f"deploy it first: `invoke deploy --stack {s.stack} --yes`.")
    return AwsTarget.from_outputs(s, s.stack, outputs, boto_clients(outputs["region"]), sslrootcert=ca_bundle(s))


def migrations_dir(sql_root: Path, database: str) -> Path:
    """``<sql_root>/<database>/migrations``: where a database's chain lives."""
    return sql_root / database / "migrations"
