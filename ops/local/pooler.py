"""The local stack's PgBouncer admin console: PAUSE with a hard timeout, RESUME that never races a
pending PAUSE, RELOAD after pointing the pooler at another server. Used by the blue/green cutover
and by failover.

PgBouncer docs ("Admin console": PAUSE waits until every server connection is released — in
transaction pooling, until each running transaction ends; RESUME; RELOAD re-reads the ini).
pgbouncer #715: a RESUME issued while a PAUSE is still pending leaves that PAUSE hanging for ever —
so a command that runs out of time is abandoned by closing its session (nothing stays pending), and
only then may the caller RESUME.
"""
from __future__ import annotations

import logging
import selectors
import time

from ..dsn import connect, tool_application_name
from ..pgtools import chown_server
from .cluster import LocalStack, installed_pgbouncer_version, pooler_pid
from .layout import StackLayout, render_pgbouncer_ini

log = logging.getLogger(__name__)


class PoolerAdmin:
    """Admin-console session to the stack's pooler (dbname ``pgbouncer``, as ``postgres`` with the
    stack's passfile), opened on first use and kept, so a switch pays for one login. ``what`` names
    the caller in ``application_name``."""

    def __init__(self, stack: LocalStack, what: str = "pooler"):
        self.stack = stack
        self.params = {**stack.pooler_conninfo(), "dbname": "pgbouncer", "user": "postgres"}
        self.what = what
        self._conn = None

    @property
    def running(self) -> bool:
        p = self.stack.layout.pooler
        return p is not None and pooler_pid(p) is not None

    def command(self, cmd: str, timeout_s: float = 10.0) -> None:
        """Run one admin command and wait at most ``timeout_s`` seconds. Raises TimeoutError after
        closing the session (so the command is no longer pending), RuntimeError with PgBouncer's
        message when it refuses the command."""
        if self._conn is None:
            self._conn = connect(self.params, autocommit=True, connect_timeout=5,
                                 application_name=tool_application_name(self.what))
        pg = self._conn.pgconn
        pg.send_query(cmd.encode())
        sel = selectors.DefaultSelector()
        sel.register(pg.socket, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                pg.flush()
                pg.consume_input()
                if not pg.is_busy():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    log.info("PgBouncer %s did not finish within %.3f s: abandoning it", cmd, timeout_s)
                    raise TimeoutError(f"PgBouncer {cmd} did not finish within {timeout_s:.3f} s")
                sel.select(min(left, 0.05))
        except BaseException:  # timeout, Ctrl-C, SIGTERM: the pending command dies with its session
            self.close()
            raise
        finally:
            sel.close()
        error = None
        while (res := pg.get_result()) is not None:
            if res.error_message:
                error = res.error_message.decode(errors="replace").strip()
        if error:
            raise RuntimeError(error)

    def pause(self, timeout_s: float) -> None:
        """PAUSE; raises TimeoutError (the PAUSE abandoned, pause mode possibly set: RESUME next)."""
        self.command("PAUSE", timeout_s)

    def resume(self) -> None:
        """RESUME; a pooler that is not paused is fine."""
        try:
            self.command("RESUME")
        except RuntimeError as exc:
            if "not paused" not in str(exc):
                raise

    def point_at(self, layout: StackLayout, port: int | None = None) -> None:
        """Rewrite pgbouncer.ini to send clients to ``port`` (default ``layout``'s primary) and RELOAD
        when the pooler runs (server connections to the old address close as they are released)."""
        p = layout.pooler
        p.ini.write_text(render_pgbouncer_ini(layout, version=installed_pgbouncer_version(), target_port=port))
        chown_server(p.ini, 0o600)
        if self.running:
            self.command("RELOAD")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
