"""``schedule.*``: the jobs of ``ops.schedules`` shown with their next runs, run one exactly as a
scheduler would (lock, timeout, logging, exit code, metrics), and installed as systemd timers or a
cron file for this machine. On AWS the Pulumi ``Scheduler`` component runs the same jobs."""
from __future__ import annotations

import json as jsonlib
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from invoke import Collection

from ..errors import ConfigError, JobAlreadyRunning, JobFailed, ScheduleError
from ..settings import PROJECT_DIR, child_environment, schedule_environment
from .common import HELP, cli, settings_for, target_for, task

TARGETS = ("systemd", "cron")
SCHEDULE_HELP = {"stack": HELP["stack"], "sql_root": HELP["sql_root"]}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _jobs(stack, sql_root):
    """The stack's jobs: databases are the folders under the SQL root; the partition job
    (``db.partitions --apply --yes``) when a database's migrations declare ``PARTITION BY``."""
    from ..migrations.discovery import list_databases
    from ..schedules import jobs_for
    s = settings_for(stack, None, sql_root, dsn_from_env=False)
    dbs = list_databases(s.sql_root)
    partitioned = tuple(d for d in dbs if any("PARTITION BY" in p.read_text().upper()
                                              for p in (s.sql_root / d / "migrations").glob("*/up.sql")))
    return s, jobs_for(s.stack, dbs, business_tz=s.schedule_tz, copy_to=s.copy_to, partitioned=partitioned,
                       partition_task="db.partitions")


@task(name="show", help={**SCHEDULE_HELP, "json_": HELP["json_"]})
@cli.edge
def show(c, stack=None, sql_root=None, json_=False):
    """Every scheduled job: cron expression, time zone, next run (UTC), timeout, steps, what a missed run looks like."""
    _, jobs = _jobs(stack, sql_root)
    now = _now()
    if json_:
        cli.emit_json([j.as_dict(now) for j in jobs])
        return
    cli.table("scheduled jobs", ["job", "cron", "time zone", "next run (UTC)", "timeout", "runs", "if missed"],
              [[j.name, j.cron, j.time_zone, j.next_run(now).strftime("%Y-%m-%d %H:%M"), f"{j.timeout_s // 60} min",
                " && ".join(" ".join(("invoke",) + s) for s in j.steps), j.missed] for j in jobs], whole_first=True)


@task(name="run", help={**SCHEDULE_HELP, "name": "job name (see `invoke schedule.show`)"})
@cli.edge
def run(c, name, stack=None, sql_root=None):
    """Run one job as the scheduler does: under its lock (runs never overlap), each step in order with
    the job's timeout, one JSON log line per step on stderr, exit 13 when a step fails, metrics after."""
    s, jobs = _jobs(stack, sql_root)
    from ..schedules import find_job
    job = find_job(jobs, name)
    target = target_for(stack, None, sql_root)
    lock = _lock_path(s, job.name)
    import fcntl
    from ..private import open_lock_file, private_dir
    private_dir(lock.parent, "The lock folder", ScheduleError)
    fd = open_lock_file(lock, ScheduleError)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobAlreadyRunning(job.name, str(lock)) from None
        started = time.monotonic()
        failure = None
        try:
            for step in job.steps:
                failure = _run_step(job, step, s, sql_root, started)
                if failure:
                    break
        except BaseException:  # interrupted (SIGTERM from systemd or ECS): recorded as failed, then unwound
            _finish(target, job, s, started, False)
            raise
        seconds = _finish(target, job, s, started, failure is None)
        if failure:
            raise failure
        cli.say(f"job {job.name}: {len(job.steps)} step(s) passed in {seconds:.1f} s")
    finally:
        os.close(fd)


def _finish(target, job, s, started: float, ok: bool) -> float:
    """The job's log line and the target's record or metrics; returns the job's seconds."""
    seconds = time.monotonic() - started
    _log({"event": "job", "job": job.name, "stack": s.stack, "succeeded": ok, "seconds": round(seconds, 3)})
    target.after_job(job.name, succeeded=ok, seconds=seconds, now=_now())
    return seconds


def _lock_path(s, job: str) -> Path:
    """``<state dir>/locks/schedule-<stack tag>-<job>.lock``: in the state directory's own ``locks/``
    folder (0700, made by :func:`ops.private.private_dir`), not the world-writable temp directory,
    where any local user could take a predictable name first and stop every run (issue 20 §3). The
    tag is a hash of the stack name (a stack may be ``org/project/stack``)."""
    import hashlib
    tag = hashlib.sha256(s.stack.encode()).hexdigest()[:12]
    return s.state_dir / "locks" / f"schedule-{tag}-{job}.lock"


def _run_step(job, step: tuple[str, ...], s, sql_root, started: float) -> JobFailed | None:
    """One step as a child ``invoke`` in the project directory; SIGTERM at the job's deadline (every
    task unwinds on it), SIGKILL 30 s later. Returns the failure, or None."""
    import subprocess
    argv = [sys.executable, "-m", "invoke", *step]
    if sql_root and cli.takes(step[0], "--sql-root"):
        argv += ["--sql-root", sql_root]
    env = child_environment(os.environ, s.stack)
    text = " ".join(("invoke",) + step)
    _log({"event": "step-start", "job": job.name, "step": text})
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=PROJECT_DIR, env=env)
    timed_out = False
    try:
        proc.wait(timeout=max(1.0, job.timeout_s - (t0 - started)))
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    seconds = time.monotonic() - t0
    _log({"event": "step", "job": job.name, "step": text, "exit_code": proc.returncode, "timed_out": timed_out,
          "seconds": round(seconds, 3)})
    if timed_out or proc.returncode != 0:
        return JobFailed(job.name, text, proc.returncode, seconds, timed_out=timed_out)
    return None


def _log(record: dict) -> None:
    """One JSON line on stderr (journald, cron mail and CloudWatch Logs keep it)."""
    sys.stderr.write(jsonlib.dumps({"ts": _now().isoformat(timespec="seconds"), **record}) + "\n")
    sys.stderr.flush()


@task(name="install", help={**SCHEDULE_HELP, "target": "systemd (a .service and .timer per job) or cron (one cron.d file)",
                            "dir": "where to write (default /etc/systemd/system, or /etc/cron.d)",
                            "user": "OS user the jobs run as: an existing, plain user name (default: the current user)",
                            "dry_run": "print what would be written; write nothing"})
@cli.edge
def install(c, target="systemd", stack=None, sql_root=None, dir=None, user=None, dry_run=False):
    """Write the jobs as systemd timers (Persistent=true, a timeout each) or a cron.d file for this machine.
    Calendar expressions are checked with `systemd-analyze calendar` when it is installed."""
    cli.choice(target, "--target", TARGETS)
    if dir == "":
        raise ConfigError(["--dir is empty"], "pass the folder to write, or leave --dir out for the default.")
    s, jobs = _jobs(stack, sql_root)
    run_as = _run_as(user)
    env = schedule_environment(os.environ, s.stack)
    root = str(s.sql_root) if s.sql_root_given else None
    _check_file_values(s, env, root)
    files = (_systemd_units(jobs, env, run_as, root) if target == "systemd" else
             {"pgops": _cron_file(jobs, env, run_as, root)})
    if target == "systemd":
        _check_calendars(jobs)
    folder = Path(dir or ("/etc/systemd/system" if target == "systemd" else "/etc/cron.d"))
    if dry_run:
        for fname, text in files.items():
            cli.say(f"# {folder / fname}\n{text}")
        return
    if not folder.is_dir():
        raise ConfigError([f"--dir {folder} is not a directory"], "create it or pass another --dir.")
    for fname, text in files.items():
        (folder / fname).write_text(text)
    cli.say(f"wrote {len(files)} file(s) to {folder}")
    if target == "systemd":
        timers = " ".join(f"pgops-{j.name}.timer" for j in jobs)
        cli.say(f"next: systemctl daemon-reload && systemctl enable --now {timers}")
    else:
        cli.say("cron reads /etc/cron.d itself; the file needs a cron that honours CRON_TZ (cronie, systemd-cron)")


def _run_as(user: str | None) -> str:
    """The OS user the jobs run as: ``--user`` (default: the current user), a plain name
    (:func:`ops.schedules.user_name_problems`) that exists on this machine (``pwd.getpwnam``).
    Raises :class:`ConfigError` (exit 2) otherwise, before anything is written or printed."""
    import pwd
    from ..schedules import user_name_problems
    name = pwd.getpwuid(os.getuid()).pw_name if user is None else user
    problems = user_name_problems(name)
    if not problems:
        try:
            pwd.getpwnam(name)
        except KeyError:
            problems = [f"--user {name}: no such user on this machine (getent passwd {name} finds nothing)"]
    if problems:
        raise ConfigError(problems, "pass an existing user with --user (create one with `useradd --system NAME`); "
                                    "nothing was written.")
    return name


def _check_file_values(s, env: dict, sql_root: str | None) -> None:
    """Every other value ``install`` writes into a unit or cron file — the stack, the SQL root, the
    ``PGOPS_*`` variables passed on, the checkout's path and the ``invoke`` executable — must be plain
    (:func:`ops.schedules.file_value_problems`); raises :class:`ConfigError` (exit 2) naming each one."""
    from ..schedules import file_value_problems
    values = {"--stack (PGOPS_STACK)": s.stack, **{k: v for k, v in env.items() if k != "PGOPS_STACK"},
              "the checkout's path": str(PROJECT_DIR), "the invoke executable": str(_invoke_exe())}
    if sql_root:
        values["--sql-root"] = sql_root
    problems = file_value_problems(values)
    if problems:
        raise ConfigError(problems, "use values made of ASCII letters, digits and _ . / : , = @ + - (move or "
                                    "rename a folder, unset a variable), then rerun; nothing was written.")


def _invoke_exe() -> Path:
    venv = PROJECT_DIR / ".venv" / "bin" / "invoke"
    return venv if venv.exists() else Path(sys.executable).parent / "invoke"


def _command(job, sql_root) -> str:
    parts = [str(_invoke_exe()), "schedule.run", job.name] + (["--sql-root", sql_root] if sql_root else [])
    return " ".join(shlex.quote(p) for p in parts)


def _systemd_units(jobs, env: dict, user: str, sql_root) -> dict[str, str]:
    """``pgops-<job>.service`` (Type=oneshot; TimeoutStartSec = the job's timeout + 60 s, a backstop
    behind ``schedule.run``'s own) and ``pgops-<job>.timer`` (``Persistent=true``: a run missed while
    the machine was off starts at the next boot — systemd.timer(5)). Overlap: a oneshot unit never
    starts twice while active, and ``schedule.run`` takes the job's lock for manual runs too."""
    out = {}
    envs = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted(env.items()))
    for j in jobs:
        out[f"pgops-{j.name}.service"] = (
            f"[Unit]\nDescription=pgops scheduled job {j.name}: {j.description}\n"
            "Wants=network-online.target\nAfter=network-online.target\n\n"
            f"[Service]\nType=oneshot\nUser={user}\nWorkingDirectory={PROJECT_DIR}\n{envs}"
            f"ExecStart={_command(j, sql_root)}\nTimeoutStartSec={j.timeout_s + 60}\n")
        out[f"pgops-{j.name}.timer"] = (
            f"[Unit]\nDescription=pgops schedule for {j.name} (cron '{j.cron}' in {j.time_zone})\n\n"
            f"[Timer]\nOnCalendar={j.oncalendar}\nPersistent=true\nUnit=pgops-{j.name}.service\n\n"
            "[Install]\nWantedBy=timers.target\n")
    return out


def _cron_file(jobs, env: dict, user: str, sql_root) -> str:
    """A cron.d file (crontab(5) with a user field): ``CRON_TZ`` before each job, the command under
    ``timeout`` (the job's timeout + 60 s, a backstop), runs serialised by ``schedule.run``'s lock."""
    lines = ["# pgops scheduled jobs (invoke schedule.install --target cron); missed runs are not caught up by cron.",
             "SHELL=/bin/sh"]
    lines += [f"{k}={v}" for k, v in sorted(env.items())]
    for j in jobs:
        lines += [f"# {j.name}: {j.description}", f"CRON_TZ={j.time_zone}",
                  f"{j.cron} {user} cd {shlex.quote(str(PROJECT_DIR))} && timeout {j.timeout_s + 60} {_command(j, sql_root)}"]
    return "\n".join(lines) + "\n"


def _check_calendars(jobs) -> None:
    """Each job's ``OnCalendar=`` through ``systemd-analyze calendar`` (skipped when not installed)."""
    import shutil
    import subprocess
    exe = shutil.which("systemd-analyze")
    if not exe:
        return
    bad = []
    for j in jobs:
        res = subprocess.run([exe, "calendar", j.oncalendar], capture_output=True, text=True)
        if res.returncode != 0:
            bad.append(f"{j.name}: OnCalendar={j.oncalendar}: {res.stderr.strip()}")
    if bad:
        raise ConfigError(bad, "report this as a pgops bug (ops/schedules.py to_oncalendar).")


ns = Collection("schedule", show, run, install)
