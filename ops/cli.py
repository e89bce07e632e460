"""The task edge: what the user reads. Tables and progress on stderr/stdout through rich; ``--json``
prints machine-readable JSON on stdout and nothing else there. Every expected failure
(:class:`~ops.errors.OpsError`) becomes one paragraph on stderr and the error's exit code — never a
traceback. The library below never prints; ``tasks.py`` only parses options and calls these.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from .dsn import redact
from .errors import ConfigError, OpsError, VerifyFailed

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def edge(fn: Callable) -> Callable:
    """Map expected failures to a message and exit code; Ctrl-C to exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _terminate_like_ctrl_c()
        logging.basicConfig(level=os.environ.get("PGOPS_LOG_LEVEL", "WARNING"),
                            format="%(levelname)s %(name)s: %(message)s")
        try:
            return fn(*args, **kwargs)
        except OpsError as exc:
            err.print(f"[bold red]error:[/] {redact(str(exc))}", markup=True)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[bold red]interrupted[/]", markup=True)
            raise SystemExit(130) from None
    return wrapper


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (systemd, cron timeouts, CI) unwinds like Ctrl-C, so every ``finally`` runs: no drill
    target, partial backup or lock outlives a terminated task."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def progress(msg: str) -> None:
    err.print(f"[dim]· {msg}[/]", markup=True)


def table(title: str, columns: list[str], rows: list[list[Any]], whole_first: bool = False) -> None:
    """Print a table; ``whole_first`` never wraps the first column (ids a user copies)."""
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, no_wrap=whole_first and i == 0)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    out.print(t)


def as_int(value: Any, option: str) -> int | None:
    """Parse an integer option; raises :class:`ConfigError` naming the option."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError([f"{option} must be an integer, not '{value}'"]) from None


def as_float(value: Any, option: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError([f"{option} must be a number of seconds, not '{value}'"]) from None


def sql_root_path(sql_root: str | None) -> Path:
    from .environment import DEFAULT_SQL_ROOT
    root = Path(sql_root).resolve() if sql_root else DEFAULT_SQL_ROOT
    if not root.is_dir():
        raise ConfigError([f"--sql-root {root} is not a directory"], "pass the folder holding <database>/migrations/.")
    return root


def verify_or_fail(database: str, results: list) -> None:
    failed = [(r.migration, r.check, r.detail) for r in results if not r.passed]
    if failed:
        raise VerifyFailed(database, failed, results)
