"""Which PostgreSQL a task talks to: the local stack, or any server through ``--dsn``.

``Environment`` is plain data; :func:`resolve` is the I/O edge. Stack names follow DESIGN.md:
``local`` (the default, ``$PGOPS_STACK``) is the stack on this machine; ``--dsn`` (or ``$PGOPS_DSN``)
targets any PostgreSQL the toolkit did not provision.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .dsn import parse
from .errors import ConfigError
from .local.cluster import LocalStack, open_stack

DEFAULT_SQL_ROOT = Path(__file__).resolve().parents[1] / "sql"


@dataclass(frozen=True)
class Environment:
    """Stack name, primary and replica connection parameters (libpq keywords, never a password),
    the databases a task acts on by default, and the repository URL for backups."""

    stack: str
    primary: dict
    replicas: tuple[dict, ...] = ()
    dsn_database: str | None = None
    repository: str | None = None
    region: str | None = None
    local: LocalStack | None = field(default=None, compare=False)
    outputs: dict = field(default_factory=dict, compare=False)  # an AWS stack's (non-secret) Pulumi outputs

    @property
    def is_aws(self) -> bool:
        return bool(self.outputs)


def stack_name(stack: str | None) -> str:
    return stack or os.environ.get("PGOPS_STACK") or "local"


def resolve(stack: str | None = None, dsn: str | None = None, state_dir: Path | None = None) -> Environment:
    """Resolve the target of a task.

    ``dsn`` (or ``$PGOPS_DSN``) wins: its database is the default target. Otherwise ``stack``
    (default ``local``); any other name is an AWS stack read through Pulumi (raises
    :class:`~ops.aws_stack.PulumiMissing` without the CLI). Raises :class:`ConfigError` for a DSN
    without a database.
    """
    dsn = dsn or os.environ.get("PGOPS_DSN")
    if dsn:
        params = parse(dsn)
        dbname = params.pop("dbname", None)
        if not dbname:
            raise ConfigError(["the DSN names no database (dbname=...)"], "add dbname=NAME to the DSN.")
        return Environment("dsn", params, dsn_database=dbname)
    name = stack_name(stack)
    if name != "local":  # an AWS stack: endpoints from its Pulumi outputs, credentials from its secret
        from .aws_stack import boto_clients, ca_bundle, environment_from_outputs, open_workspace
        outputs = open_workspace(name).outputs()
        if not outputs.get("primary_endpoint"):
            raise ConfigError([f"stack '{name}' has no outputs yet"], f"deploy it first: `invoke deploy --stack {name} --yes`.")
        return environment_from_outputs(name, outputs, boto_clients(outputs["region"]), sslrootcert=ca_bundle(),
                                        wait=False)
    st = open_stack(state_dir)
    params = st.conninfo()
    params.pop("dbname", None)
    replicas = []
    for node in st.layout.replica_nodes:
        p = st.conninfo(node)
        p.pop("dbname", None)
        replicas.append(p)
    return Environment("local", params, tuple(replicas), repository=st.layout.repository_dir.as_uri(), local=st)


def migrations_dir(sql_root: Path, database: str) -> Path:
    return sql_root / database / "migrations"
