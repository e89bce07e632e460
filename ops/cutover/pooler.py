"""PgBouncer's admin console: PAUSE with a hard timeout, RESUME that never races a pending PAUSE,
RELOAD after pointing the pooler somewhere else.

PgBouncer docs ("Admin console": PAUSE waits until every server connection is released — in
transaction pooling, until each running transaction ends; RESUME; RELOAD). pgbouncer #715: a RESUME
issued while a PAUSE is still pending leaves that PAUSE hanging for ever — so a PAUSE that runs out
of time is first abandoned by closing its connection, and only then is RESUME sent.
"""
from __future__ import annotations

import logging
import selectors
import time
from typing import Mapping

from ..dsn import connect, tool_application_name
from ..errors import CutoverError

log = logging.getLogger(__name__)


class PoolerAdmin:
    """One admin-console session to the pooler at ``params`` (libpq keywords; ``dbname`` is
    replaced by ``pgbouncer``). ``paused`` is True from a PAUSE that completed until RESUME."""

    def __init__(self, params: Mapping):
        self.params = dict(params)
        self.conn = self._open()
        self.paused = False

    def _open(self):
        return connect(self.params, dbname="pgbouncer", autocommit=True, connect_timeout=5,
                       application_name=tool_application_name("cutover"))

    def pause(self, timeout_s: float) -> bool:
        """Send PAUSE and wait at most ``timeout_s`` seconds for it to complete. Returns True when
        paused; on timeout the session is closed (abandoning the PAUSE: nothing is pending any
        more) and a fresh one opened, then False is returned — the caller RESUMEs."""
        pgconn = self.conn.pgconn
        pgconn.send_query(b"PAUSE")
        sel = selectors.DefaultSelector()
        sel.register(pgconn.socket, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                pgconn.flush()
                pgconn.consume_input()
                if not pgconn.is_busy():
                    error = None
                    while (res := pgconn.get_result()) is not None:
                        if res.error_message:
                            error = res.error_message.decode(errors="replace").strip()
                    if error:
                        raise CutoverError(f"The pooler refused PAUSE: {error}.",
                                           "run `invoke cutover.status` and check the pooler with `invoke health`.")
                    self.paused = True
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sel.select(min(left, 0.05))
        finally:
            sel.close()
        log.info("PAUSE did not complete within %.3f s: abandoning it", timeout_s)
        self.conn.close()  # the pending PAUSE dies with its session (pgbouncer #715)
        self.conn = self._open()
        self.paused = True  # pause mode may be set: RESUME clears it
        return False

    def command(self, text: str) -> None:
        """Run one admin command (``RESUME``, ``RELOAD``) and wait for it."""
        self.conn.execute(text)

    def resume(self) -> None:
        """RESUME (no PAUSE of ours is pending here: :meth:`pause` either completed or was abandoned)."""
        self.conn.execute("RESUME")
        self.paused = False

    def close(self) -> None:
        self.conn.close()
