"""The task edge: what the user reads.

Tables go to stdout through rich; progress and errors to stderr; ``--json`` prints JSON on stdout
and nothing else there. Every expected failure (:class:`~ops.errors.OpsError`) becomes one
paragraph on stderr and the error's exit code (:data:`ops.errors.EXIT_CODES`) — never a
traceback. User and server text is printed literally, never as rich markup. Every "Next:" hint
repeats the invocation's ``--dsn``/``--stack``/``--sql-root`` so the suggested command targets
the same database. The library below never prints; the task modules call these.
"""
from __future__ import annotations

import contextlib
import functools
import json as jsonlib
import math
import re
import shlex
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator

from . import settings
from .dsn import redact, redacted_dsn
from .logs import configure_logging
from .errors import BackupError, ConfigError, ConnectError, OpsError, VerifyFailed, char_name

_WIDE = 400  # columns when stdout is not a terminal: piped output never cuts an id or a name


@functools.cache
def console(stderr: bool = False):
    """The rich console for stdout (tables, results) or stderr (progress, errors): literal text
    (no markup, no emoji codes, no highlighting), 400 columns wide when not a terminal. Created on
    first use so a task's start-up does not pay for rich."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False,
                   width=None if stream.isatty() else _WIDE)


def _text(*parts):
    from rich.text import Text
    return Text.assemble(*parts)

#: every task's long option names (``"stack"``, ``"dsn"``, ``"sql-root"``, ...), registered by
#: :func:`ops.tasks.root` from the task tree itself: a hint naming a task gets the invocation's
#: target options appended only when that task takes them (no list to keep in step by hand).
TASK_OPTIONS: dict[str, frozenset[str]] = {}


def register_task_options(options: dict[str, frozenset[str]]) -> None:
    """Record each task's long option names (called once the task tree is composed)."""
    TASK_OPTIONS.update(options)


def takes(task: str, flag: str) -> bool:
    """Whether ``invoke TASK`` accepts ``flag`` (e.g. ``--sql-root``)."""
    return flag.lstrip("-") in TASK_OPTIONS.get(task, ())


_INVOKE = re.compile(r"`invoke ([a-z]+(?:\.[a-z-]+)?)([^`]*)`")


def target_args(stack: str | None, dsn: str | None, sql_root: str | None) -> dict[str, list[str]]:
    """The invocation's target options as hint fragments (the DSN redacted, shell-quoted)."""
    frags = {}
    if dsn:
        frags["--dsn"] = ["--dsn", shlex.quote(redacted_dsn(dsn))]
    elif stack:
        frags["--stack"] = ["--stack", shlex.quote(stack)]
    if sql_root:
        frags["--sql-root"] = ["--sql-root", shlex.quote(sql_root)]
    return frags


def with_target_args(text: str, frags: dict[str, list[str]]) -> str:
    """Append the invocation's target options to every `` `invoke TASK …` `` in ``text`` that takes
    them and does not already name them."""
    if not frags:
        return text

    def add(m: re.Match) -> str:
        task, rest = m.group(1), m.group(2)
        extra = []
        for flag, frag in frags.items():
            if takes(task, flag) and flag not in rest and not (flag in ("--dsn", "--stack")
                                                               and ("--dsn" in rest or "--stack" in rest)):
                extra += frag
        return f"`invoke {task}{rest}{' ' + ' '.join(extra) if extra else ''}`"
    return _INVOKE.sub(add, text)


def edge(fn: Callable) -> Callable:
    """Wrap a task body: expected failures → one paragraph + exit code; Ctrl-C, SIGTERM and
    SIGHUP → exit 130 after every ``finally`` ran."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _signals_unwind_like_ctrl_c()
        frags = target_args(kwargs.get("stack"), kwargs.get("dsn"), kwargs.get("sql_root"))
        try:
            one_line_values(kwargs)
            configure_logging(settings.current().log_level)
            return fn(*args, **kwargs)
        except OpsError as exc:
            console(True).print(_text(("error: ", "bold red"), with_target_args(redact(str(exc)), frags)))
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            console(True).print(_text(("interrupted", "bold red")))
            raise SystemExit(130) from None
        except Exception as exc:  # noqa: BLE001 - only the families below; anything else is a bug and re-raised
            foreign = foreign_error(exc)
            if foreign is None:
                raise
            console(True).print(_text(("error: ", "bold red"), with_target_args(redact(str(foreign)), frags)))
            raise SystemExit(foreign.exit_code) from None
    return wrapper


def one_line_values(options: dict[str, Any]) -> None:
    """Refuse an option value holding a control character (C0/C1, DEL, tab) or a Unicode line or
    paragraph separator, before the task reads it: every value a task quotes in a message, a log, a
    unit file or a report stays one line, so no value can forge a second line or a terminal escape
    (issue 20 §5). The value itself is never echoed (it may be a DSN with a password). Raises
    :class:`ConfigError` (exit 2) naming the option and the character's position."""
    import unicodedata
    for key, value in options.items():
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if not isinstance(item, str):
                continue
            for i, ch in enumerate(item):
                if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
                    flag = "--" + key.rstrip("_").replace("_", "-")
                    raise ConfigError([f"{flag} holds {char_name(ch)} at character {i + 1}: option values "
                                       "are one line of printable text"],
                                      f"pass {flag} again without it (a pasted line break or escape sequence).")


def foreign_error(exc: Exception) -> OpsError | None:
    """An expected failure raised by a library rather than by pgops, as the OpsError the user reads:
    AWS (botocore: no credentials, an API error, an endpoint out of reach) → exit 4 or 7; the Pulumi
    Automation API (a failed preview or up) → exit 7. None for anything else (a bug: let it show)."""
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith("botocore"):
        if name in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError", "EndpointConnectionError",
                    "ConnectTimeoutError", "ReadTimeoutError", "ProxyConnectionError"):
            return ConnectError(f"AWS could not be reached or no credentials were found: {exc}.",
                                "check `aws sts get-caller-identity` (AWS_PROFILE, AWS_REGION), then rerun.")
        return BackupError(f"AWS refused the request: {exc}.",
                           "check the stack's IAM permissions and resources (`invoke preview --stack NAME`), then rerun.")
    if module.startswith("pulumi.automation"):
        return BackupError(f"Pulumi failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else name}.",
                           "run `pulumi preview` in the project for the full output, fix it, then rerun.")
    return None


def _signals_unwind_like_ctrl_c() -> None:
    """SIGTERM (systemd, cron timeouts, CI) and SIGHUP (a dropped SSH session) unwind like Ctrl-C,
    so every ``finally`` runs: no drill target, partial backup or lock outlives a killed task."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGHUP, handler)


def emit_json(data: Any) -> None:
    sys.stdout.write(jsonlib.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def progress(msg: str) -> None:
    console(True).print(_text((f"· {msg}", "dim")))


@contextlib.contextmanager
def transfer(description: str, total: int | None = None, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr fed with byte counts: yields ``advance(n_bytes)``. Shows bytes,
    total when known, the rate and elapsed time; drawn only on a terminal (cron and pipes stay clean)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                               TransferSpeedColumn)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeElapsedColumn(), console=console(True), transient=True,
                  disable=not (enabled and console(True).is_terminal)) as bar:
        task = bar.add_task(description, total=total)
        bar.refresh()  # the first frame even for work shorter than one refresh period
        try:
            yield lambda n: bar.advance(task, n)
        finally:
            bar.refresh()  # the last frame: bytes done and the rate


@contextlib.contextmanager
def row_progress(description: str, steps: int, enabled: bool = True) -> Iterator[Callable[[str, int], None]]:
    """A rich progress bar over ``steps`` named steps (e.g. tables) that also counts rows and their
    rate: yields ``advance(step_name, rows)``. Drawn only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    started = time.monotonic()
    total = [0]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(True), transient=True, disable=not (enabled and console(True).is_terminal)) as bar:
        task = bar.add_task(description, total=steps)

        def advance(name: str, rows: int) -> None:
            total[0] += rows
            rate = total[0] / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=1, description=f"{description}: {name} · {total[0]:,} rows · {rate:,.0f} rows/s")
        yield advance


def say(msg: str) -> None:
    console().print(_text(msg))


def warn(msg: str, style: str = "yellow") -> None:
    console(True).print(_text((msg, style)))


def table(title: str, columns: list[str], rows: list[list[Any]], whole_first: bool = False) -> None:
    """Print a table of literal text. The first column (ids, names a user copies) is never
    wrapped or cut; other cells fold rather than end in an ellipsis."""
    from rich.table import Table
    from rich.text import Text
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    t = Table(title=Text(title), title_justify="left")
    for i, c in enumerate(columns):
        if i == 0:
            width = max([len(c), *(len(r[0]) for r in cells)]) if cells else len(c)
            t.add_column(Text(c), no_wrap=True, min_width=width, overflow="fold")
        else:
            t.add_column(Text(c), overflow="fold")
    for r in cells:
        t.add_row(*[Text(v) for v in r])
    console().print(t)


#: The largest number an integer option takes unless it names a tighter bound: PostgreSQL's ``bigint``
#: (the ledger's ``version`` column; PostgreSQL docs, "Numeric Types"). Larger values end in an
#: OverflowError somewhere below the edge, so they are refused here.
INT_MAX_OPTION = 2 ** 63 - 1
#: The longest duration a seconds option takes: PostgreSQL's ``*_timeout`` settings are ``int``
#: milliseconds, at most INT_MAX = 2147483647 ms ≈ 24.8 days (``lock_timeout``, ``statement_timeout``
#: in guc_tables.c); no pgops wait is longer than a timeout the server itself can hold.
SECONDS_MAX_OPTION = 2147483.647
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def as_int(value: Any, option: str, *, minimum: int | None = None, maximum: int = INT_MAX_OPTION) -> int | None:
    """Parse an integer option (None/"" → None): ASCII digits with an optional sign, nothing else
    (no ``1e3``, no ``1_000``, no non-ASCII digits). Raises :class:`ConfigError` (exit 2) naming the
    option when it is not an integer, below ``minimum`` or above ``maximum`` (default
    :data:`INT_MAX_OPTION`)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or _INTEGER.fullmatch(str(value))):
        raise ConfigError([f"{option} must be an integer, not {_shown(value)}"])
    n = int(value)
    if minimum is not None and n < minimum:
        raise ConfigError([f"{option} must be at least {minimum}, not {n}"])
    if n > maximum:
        raise ConfigError([f"{option} must be at most {maximum:,}, not {_shown(value)}"])
    return n


def as_float(value: Any, option: str, default: float, *, minimum: float = 0.0,
             maximum: float = SECONDS_MAX_OPTION) -> float:
    """Parse a number of seconds (None/"" → ``default``): a finite decimal number from ``minimum`` to
    ``maximum`` (default :data:`SECONDS_MAX_OPTION`, PostgreSQL's longest timeout). Raises
    :class:`ConfigError` (exit 2) for anything else — NaN, ±inf, ``1e308``, a negative number."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    try:
        n = float(text) if text.isascii() and "_" not in text else float("nan")
    except (TypeError, ValueError):
        raise ConfigError([f"{option} must be a number of seconds, not {_shown(value)}"]) from None
    if not math.isfinite(n) or not minimum <= n <= maximum:
        raise ConfigError([f"{option} must be a number of seconds from {minimum:g} to {maximum:g}, "
                           f"not {_shown(value)}"])
    return n


def _shown(value: Any) -> str:
    """An option value as an error quotes it: one line, at most 60 characters (a newline in a value
    never splits the paragraph)."""
    text = repr(str(value))
    return text if len(text) <= 60 else text[:57] + "…'"


def choice(value: Any, option: str, allowed: tuple[str, ...]) -> str:
    """Validate an enumerated option; raises :class:`ConfigError` (exit 2) listing the choices."""
    if value not in allowed:
        raise ConfigError([f"{option} must be one of {', '.join(allowed)}, not '{value}'"])
    return value


def verify_or_fail(database: str, results: list) -> None:
    failed = [(r.migration, r.check, r.detail) for r in results if not r.passed]
    if failed:
        raise VerifyFailed(database, failed, results)


@contextlib.contextmanager
def rows_eta(description: str, enabled: bool = True) -> Iterator[tuple[Callable[[int], None], Callable[[str, int], None]]]:
    """A rich progress bar on stderr over a row count: yields ``(set_total(rows), advance(label, rows))``
    and shows rows done of the total, the rate (rows/s) and the ETA. Drawn only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    started = time.monotonic()
    done = [0]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console(True), transient=True,
                  disable=not (enabled and console(True).is_terminal)) as bar:
        task = bar.add_task(description, total=None, rate="")

        def set_total(rows: int) -> None:
            bar.update(task, total=rows)

        def advance(label: str, rows: int) -> None:
            done[0] += rows
            rate = done[0] / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=rows, description=f"{description}: {label}", rate=f"{rate:,.0f} rows/s")
        yield set_total, advance
