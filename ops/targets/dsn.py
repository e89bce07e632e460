"""A bare ``--dsn``: any PostgreSQL pgops did not provision, one database, no platform around it."""
from __future__ import annotations

from ..dsn import parse
from ..errors import ConfigError
from ..secrets import protect_params
from ..settings import Settings
from .base import AbstractTarget, DatabaseRef, select_databases


class DsnTarget(AbstractTarget):
    """The database named by ``--dsn``/``$PGOPS_DSN``; ``--db`` names the migration folder to use."""

    def __init__(self, settings: Settings):
        self.name = "dsn"
        self.settings = settings
        params = protect_params(parse(settings.dsn or ""))
        database = params.pop("dbname", None)
        if not database:
            raise ConfigError(["the DSN names no database (dbname=...)"], "add dbname=NAME to the DSN.")
        self.database = database
        self._primary = params

    @property
    def primary(self) -> dict:
        return dict(self._primary)

    def databases(self, wanted: list[str] | None) -> list[DatabaseRef]:
        folders = list(dict.fromkeys(wanted or [])) or [self.database]
        if len(folders) > 1:
            raise ConfigError([f"with --dsn, pass at most one --db (the migration folder to use), not {', '.join(folders)}"])
        return [DatabaseRef(select_databases(self.settings.sql_root, folders)[0], self.database)]

    def backup_names(self, wanted: list[str] | None) -> list[str]:
        return [self.database]

    def listed_databases(self, wanted: list[str] | None) -> list[str | None]:
        return [self.database]

    def repository_databases(self, wanted: list[str] | None) -> list[str]:
        return [self.database]

    def create_databases(self) -> bool:
        return False

    def default_repository(self, reads: str | None = None) -> str:
        if reads:  # a task that only reads (issue 20 §5): nothing is written, name what is missing
            raise ConfigError([f"{reads} --dsn (database '{self.database}') has no backup repository to read: a bare "
                               "--dsn has none of its own"],
                              f"name the repository its backups are in: `invoke {reads} --repository file:///path` "
                              "(or s3://bucket/prefix, or set PGOPS_REPOSITORY).")
        raise ConfigError([f"no backup repository for --dsn database '{self.database}': pgops will not write an "
                           "unencrypted dump of an unmanaged database into the checkout"],
                          "pass --repository file:///path or s3://bucket/prefix (or set PGOPS_REPOSITORY), "
                          "or --no-backup where the task offers it.")

    def protected_endpoints(self) -> list[dict]:
        return [dict(self._primary, dbname=self.database)]
