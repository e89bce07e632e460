"""The local stack as a target: real servers on loopback ports under one state directory."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from ..local.cluster import LocalStack, open_stack
from ..pgtools import pg_bindir, run_server_cmd
from ..settings import Settings
from .base import AbstractTarget, without_dbname


class LocalTarget(AbstractTarget):
    """``--stack local`` (the default): the primary + replicas of :mod:`ops.local.cluster`."""

    def __init__(self, settings: Settings, stack: LocalStack | None = None):
        self.name = "local"
        self.settings = settings
        self.stack = stack or open_stack(settings.state_dir)
        if stack is None:  # a cutover switch killed mid-way leaves the pooler PAUSEd: lifted before anything else
            from ..cutover.local import recover_interrupted
            self.recovered = recover_interrupted(self.stack)

    @property
    def primary(self) -> dict:
        return without_dbname(self.stack.conninfo())

    @property
    def replicas(self) -> tuple[dict, ...]:
        return tuple(without_dbname(self.stack.conninfo(n)) for n in self.stack.layout.replica_nodes)

    def ensure_up(self, progress: Callable[[str], None]) -> None:
        progress("bringing up the local stack")
        self.stack.up()

    def wait_replicas(self) -> list[str]:
        return self.stack.wait_replicas_caught_up()

    def after_job(self, job: str, *, succeeded: bool, seconds: float, now: datetime) -> None:
        """``<state dir>/schedule/<job>.json``: the last run's outcome, seconds and time (UTC)."""
        import json
        folder = self.settings.state_dir / "schedule"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{job}.json").write_text(json.dumps({"job": job, "succeeded": succeeded, "seconds": round(seconds, 3),
                                                        "finished_at": now.isoformat()}) + "\n")

    def default_repository(self, reads: str | None = None) -> str:
        return self.stack.layout.repository_dir.as_uri()

    def snapshot_backup(self, repo, databases: list[str], now: datetime, on_bytes=None) -> list[dict]:
        """A physical backup of the whole cluster (pg_basebackup) into the repository; ``on_bytes``
        is fed each streamed chunk's size."""
        from ..backups.engine import create_physical
        return [create_physical(repo, self.primary, stack=self.name, on_bytes=on_bytes).summary()]

    def protected_endpoints(self) -> list[dict]:
        if not self.stack.exists:
            return []
        return [self.stack.conninfo(n) for n in self.stack.layout.nodes]

    def protected_identities(self) -> list[tuple[str, int | None]]:
        """Read from each node's ``pg_control`` with ``pg_controldata``: no server needs to be running."""
        out = []
        for node in self.stack.layout.nodes:
            if not (node.data_dir / "PG_VERSION").exists():
                continue
            proc = run_server_cmd([str(pg_bindir() / "pg_controldata"), "-D", str(node.data_dir)],
                                  what=f"reading pg_control of local node '{node.name}'", check=False,
                                  env={"LC_ALL": "C", "LANG": "C"})
            ident = next((int(line.split(":", 1)[1]) for line in proc.stdout.splitlines()
                          if line.startswith("Database system identifier:")), None)
            out.append((f"local node {node.name} (port {node.port})", ident))
        return out

    def physical_passfile(self) -> Path | None:
        return self.stack.layout.passfile

    def health_nodes(self) -> list[tuple[str, str, dict]]:
        lay = self.stack.layout  # primary first (the interface's promise), wherever a switchover moved it
        return [(n.name, n.role, without_dbname(self.stack.conninfo(n))) for n in (lay.primary, *lay.replica_nodes)]

    def data_directories(self) -> dict[str, str]:
        return {n.name: str(n.data_dir) for n in self.stack.layout.nodes if n.data_dir.exists()}

    def cutover_engine(self):
        """Logical replication to a green cluster behind the stack's pooler (:mod:`ops.cutover.local`)."""
        from ..cutover.local import LocalCutover
        return LocalCutover(self.stack)

    def pooler_params(self) -> dict | None:
        if self.stack.layout.pooler is None or not self.stack.layout.pooler.ini.exists():
            return None
        return without_dbname(self.stack.pooler_conninfo())

    def switchover(self, *, to: str | None, force: bool, rerun: str):
        from ..failover.local import switchover
        return switchover(self.stack, to=to, force=force, rerun=rerun)

    def promote(self, *, node: str | None, rerun: str):
        from ..failover.local import promote
        return promote(self.stack, node=node, rerun=rerun)

    def rejoin(self, *, node: str | None, rerun: str):
        from ..failover.local import rejoin_plan
        return rejoin_plan(self.stack, node=node, rerun=rerun)
