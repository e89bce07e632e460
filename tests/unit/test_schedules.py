"""``ops.schedules`` (pure): seed 002's jobs, cron parsing with every problem at once, next runs
across DST (the spring-forward gap skipped, the fall-back hour run once), and the systemd and
EventBridge renderings of one expression."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ops.errors import ConfigError
from ops.schedules import find_job, jobs_for, next_runs, parse_cron, to_eventbridge, to_oncalendar

UTC = timezone.utc


def test_seed_002_defaults():
    jobs = {j.name: j for j in jobs_for("local", ["fluxstudio"], business_tz="Europe/Berlin", copy_to="s3://far/p")}
    assert jobs["backup-daily"].cron == "0 2 * * *" and jobs["backup-daily"].time_zone == "UTC"
    assert jobs["backup-daily"].steps[1][:3] == ("backup.copy", "--to", "s3://far/p")
    assert jobs["backup-hourly"].cron == "0 8-18 * * 1-5" and jobs["backup-hourly"].time_zone == "Europe/Berlin"
    assert jobs["drill-monthly"].cron == "30 4 1 * *"
    assert jobs["dr-drill-quarterly"].steps == (("backup.create", "--kind", "snapshot"), ("drill.run", "--kind", "snapshot"))
    assert all(j.timeout_s > 0 and j.missed for j in jobs.values())
    assert "partitions-hourly" not in jobs
    with_parts = jobs_for("local", ["a"], partitioned=("a",), partition_task="db.partitions")
    assert find_job(with_parts, "partitions-hourly").steps == (("db.partitions", "--apply", "--yes", "--db", "a"),)
    with pytest.raises(ConfigError, match="no scheduled job 'nope'"):
        find_job(with_parts, "nope")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        jobs_for("local", [], business_tz="Mars/Olympus")


def test_parse_reports_every_problem_and_refuses_dom_with_dow():
    with pytest.raises(ConfigError) as info:
        parse_cron("61 24 * * *")
    assert len(info.value.problems) == 2
    with pytest.raises(ConfigError, match="needs 5 fields"):
        parse_cron("0 2 * *")
    with pytest.raises(ConfigError, match="restricts both"):
        parse_cron("0 2 1 * 1")
    c = parse_cron("*/20 8-10,12 * * 7")
    assert c.minutes == (0, 20, 40) and c.hours == (8, 9, 10, 12) and c.weekdays == (0,)


def test_next_runs_business_hours_and_dst():
    hourly = parse_cron("0 8-18 * * 1-5")
    friday_evening = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)  # Berlin 19:30 on a Friday
    assert next_runs(hourly, "Europe/Berlin", friday_evening, 2) == [datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
                                                                    datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]
    at_0230 = parse_cron("30 2 * * *")
    spring = next_runs(at_0230, "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert spring == [datetime(2026, 3, 30, 0, 30, tzinfo=UTC), datetime(2026, 3, 31, 0, 30, tzinfo=UTC)]  # 29th skipped
    autumn = next_runs(at_0230, "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert autumn == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]  # once
    assert next_runs(parse_cron("0 0 29 2 *"), "UTC", datetime(2026, 1, 1, tzinfo=UTC)) == [datetime(2028, 2, 29, tzinfo=UTC)]
    with pytest.raises(ValueError):
        next_runs(at_0230, "UTC", datetime(2026, 1, 1))


@pytest.mark.parametrize("cron, oncalendar, eventbridge", [
    ("0 2 * * *", "*-*-* 02:00:00 UTC", "cron(0 2 * * ? *)"),
    ("0 8-18 * * 1-5", "Mon..Fri *-*-* 08..18:00:00 UTC", "cron(0 8-18 ? * MON-FRI *)"),
    ("30 5 1 1,4,7,10 *", "*-01,04,07,10-01 05:30:00 UTC", "cron(30 5 1 1,4,7,10 ? *)"),
    ("*/15 * * * 0,6", "Sat..Sun *-*-* *:00,15,30,45:00 UTC", "cron(0,15,30,45 * ? * SAT-SUN *)"),
])
def test_renderings(cron, oncalendar, eventbridge):
    c = parse_cron(cron)
    assert to_oncalendar(c, "UTC") == oncalendar and to_eventbridge(c) == eventbridge
