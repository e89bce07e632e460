"""``schedule.*`` on a fresh local stack: every job runs as the scheduler runs it (and exits 0), a
failing step and an overlapping run exit 13, and what ``schedule.install`` writes is parsed back and
its calendar expressions checked by ``systemd-analyze calendar`` against ``ops.schedules``' own next runs."""
from __future__ import annotations

import configparser
import fcntl
import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timezone


from ops.local.cluster import open_stack
from ops.schedules import jobs_for, next_runs, parse_cron

from .conftest import destroy, free_base_port, invoke, state_dir

SECRET = "hunter2-not-for-logs"


def test_every_job_runs_on_the_local_stack_and_failures_exit_13(tmp_path):
    sd = state_dir() / "stack"
    copy = tmp_path / "copy"
    env = {"PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(1)),
           "PGOPS_COPY_TO": copy.as_uri(), "PGOPS_SCHEDULE_TZ": "Europe/Berlin"}
    try:
        assert invoke(["local.up", "--replicas", "0"], env).returncode == 0
        assert invoke(["deploy", "--json"], env).returncode == 0
        shown = json.loads(invoke(["schedule.show", "--json"], env).stdout)
        assert [j["name"] for j in shown] == ["backup-daily", "backup-hourly", "prune-daily", "drill-monthly",
                                              "dr-drill-quarterly", "partitions-hourly"]
        assert shown[-1]["steps"] == ["invoke db.partitions --apply --yes --db futuresync"], shown[-1]  # its partitions
        assert all(j["cron"] and j["time_zone"] and datetime.fromisoformat(j["next_run"]) > datetime.now(timezone.utc)
                   for j in shown)
        assert shown[1]["time_zone"] == "Europe/Berlin" and "backup.copy" in shown[0]["steps"][1]
        for job in [j["name"] for j in shown]:
            res = invoke(["schedule.run", job], env)
            assert res.returncode == 0, (job, res.stderr[-3000:])
            lines = [json.loads(line) for line in res.stderr.splitlines() if line.startswith('{"ts"')]
            assert lines[-1]["event"] == "job" and lines[-1]["succeeded"] is True
            record = json.loads((sd / "schedule" / f"{job}.json").read_text())
            assert record["succeeded"] is True
        listed = json.loads(invoke(["backup.list", "--repository", copy.as_uri(), "--json"], env).stdout)
        assert {b["database"] for b in listed} == {"syncscript", "describeit", "fluxstudio", "futuresync", "advent"}

        # a failing step: the copy target is refused, the job exits 13 naming the step
        bad = invoke(["schedule.run", "backup-daily"], {**env, "PGOPS_COPY_TO": "ftp://nowhere/x"})
        assert bad.returncode == 13, bad.stderr[-2000:]
        assert "backup-daily" in bad.stderr and "backup.copy" in bad.stderr and "Traceback" not in bad.stderr
        assert json.loads((sd / "schedule" / "backup-daily.json").read_text())["succeeded"] is False

        # runs never overlap: with the job's lock held, a second run does nothing and exits 13
        from ops.settings import from_options
        from ops.tasks.schedule import _lock_path
        lock = _lock_path(from_options(env), "prune-daily")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            again = invoke(["schedule.run", "prune-daily"], env)
        assert again.returncode == 13 and "already running" in again.stderr
        assert invoke(["schedule.run", "no-such-job"], env).returncode == 2
    finally:
        destroy(open_stack(sd))


def test_install_systemd_units_parse_and_their_calendars_agree_with_systemd(tmp_path):
    env = {"PGOPS_SCHEDULE_TZ": "America/New_York", "PGOPS_DSN": f"host=db password={SECRET} dbname=x",
           "PGOPS_STATE_DIR": str(tmp_path / "state")}
    res = invoke(["schedule.install", "--target", "systemd", "--dir", str(tmp_path), "--user", "nobody"], env)
    assert res.returncode == 0, res.stderr
    jobs = jobs_for("local", ["describeit", "fluxstudio", "futuresync", "syncscript"], business_tz="America/New_York",
                    partitioned=("futuresync",), partition_task="db.partitions")
    written = sorted(p.name for p in tmp_path.glob("pgops-*"))
    assert written == sorted([f"pgops-{j.name}.{ext}" for j in jobs for ext in ("service", "timer")])
    analyze = shutil.which("systemd-analyze")
    base = datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc)  # the weekend before US DST begins
    for j in jobs:
        timer, service = configparser.ConfigParser(), configparser.ConfigParser(interpolation=None, strict=False)
        timer.read(tmp_path / f"pgops-{j.name}.timer")
        service.read(tmp_path / f"pgops-{j.name}.service")
        assert timer["Timer"]["Persistent"] == "true" and timer["Timer"]["Unit"] == f"pgops-{j.name}.service"
        assert timer["Install"]["WantedBy"] == "timers.target"
        assert service["Service"]["Type"] == "oneshot" and service["Service"]["User"] == "nobody"
        assert int(service["Service"]["TimeoutStartSec"]) == j.timeout_s + 60
        assert service["Service"]["ExecStart"].endswith(f"schedule.run {j.name}")
        cal = timer["Timer"]["OnCalendar"]
        if analyze:
            out = subprocess.run([analyze, "calendar", "--iterations=5", f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", cal],
                                 capture_output=True, text=True, env={**os.environ, "TZ": "UTC", "LC_ALL": "C"})
            assert out.returncode == 0, out.stderr
            elapses = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
                       for m in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out.stdout)]
            assert elapses == next_runs(parse_cron(j.cron), j.time_zone, base, 5), (j.name, cal)
    text = "".join(p.read_text() for p in tmp_path.glob("pgops-*")) + res.stdout + res.stderr
    assert SECRET not in text and "PGOPS_DSN" not in text


def test_install_cron_file_parses_and_dry_run_writes_nothing(tmp_path):
    res = invoke(["schedule.install", "--target", "cron", "--dir", str(tmp_path), "--user", "nobody"],
                 {"PGOPS_STACK": "local"})
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "pgops").read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#") and "=" not in line.split()[0]]
    jobs = jobs_for("local", ["describeit", "fluxstudio", "futuresync", "syncscript"], partitioned=("futuresync",),
                    partition_task="db.partitions")
    assert len(entries) == len(jobs)
    for j, line in zip(jobs, entries):
        fields = line.split(None, 6)
        assert " ".join(fields[:5]) == j.cron and fields[5] == "nobody"
        assert f"timeout {j.timeout_s + 60} " in fields[6] and fields[6].endswith(f"schedule.run {j.name}")
        assert lines[lines.index(line) - 1] == f"CRON_TZ={j.time_zone}"
    dry = tmp_path / "dry"
    dry.mkdir()
    out = invoke(["schedule.install", "--target", "systemd", "--dir", str(dry), "--dry-run"])
    assert out.returncode == 0 and "OnCalendar=*-*-* 02:00:00 UTC" in out.stdout and list(dry.iterdir()) == []
    assert invoke(["schedule.install", "--target", "launchd"]).returncode == 2
