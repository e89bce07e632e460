"""Issue 20 §5: bounds for every numeric option and policy field, and one clock-skew rule for every
consumer of a backup's created_at (prune, backup.list, drills' RPO, health's backup_age)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ops import cli
from ops.errors import ConfigError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
HOSTILE_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", str(2 ** 63), str(-2 ** 63 - 1),
                   "1_000", "٣", "５", "1e3", " ", "0x10", "-1"]


@given(st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.floats().map(repr), st.text(max_size=8)))
@settings(max_examples=300, derandomize=True)
def test_seconds_options_are_finite_and_bounded_or_config_errors(value):
    try:
        n = cli.as_float(value, "--lock-timeout", 2.0)
    except ConfigError as exc:
        assert "--lock-timeout" in str(exc) and "\n" not in str(exc)
        return
    assert math.isfinite(n) and 0 <= n <= cli.SECONDS_MAX_OPTION
    int(n * 1000)  # what the runner does with it: never an OverflowError


@given(st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(min_value=-2 ** 80, max_value=2 ** 80).map(str),
                 st.text(max_size=8)))
@settings(max_examples=300, derandomize=True)
def test_integer_options_are_ascii_and_bounded_or_config_errors(value):
    try:
        n = cli.as_int(value, "--retries", minimum=0)
    except ConfigError as exc:
        assert "--retries" in str(exc)
        return
    assert n is None or 0 <= n <= cli.INT_MAX_OPTION
    assert n is None or str(value).strip().lstrip("+").lstrip("0") in (str(n), "") or n == 0


@pytest.mark.parametrize("text", ["99999999999d", "99999999999999999999h", "0001-01-01T00:00:00+14:00",
                                  "2999-01-01T00:00:00+00:00", "nan", "1e308d", "٣d"])
def test_since_overflow_future_and_junk_are_config_errors(text):
    from ops.tasks.backup import parse_since
    with pytest.raises(ConfigError):
        parse_since(text, NOW)


@pytest.mark.parametrize("policy,phrase", [
    ({"premake": 100000}, "premake must be an integer from 1 to 120"),
    ({"premake": True}, "premake must be an integer"),
    ({"premake": 3.0}, "premake must be an integer"),
    ({"retention_months": 10 ** 6}, "retention_months must be an integer from 1 to 1200"),
    ({"retention_months": False}, "retention_months must be an integer"),
    ({"keep_table": "false"}, "keep_table must be true or false"),
    ({"retention": 13}, "unknown policy field"),
])
def test_partition_policy_fields_are_bounded_and_typed(policy, phrase):
    from ops.partitions.plan import parse_policy
    with pytest.raises(ConfigError) as exc:
        parse_policy("public.events", f"pgops:partitions {json.dumps(policy)}")
    assert phrase in str(exc.value)


def test_partition_policy_bounds_accept_the_seed_policies():
    from ops.partitions.plan import MAX_PREMAKE, parse_policy
    assert parse_policy("t", 'pgops:partitions {"interval": "month", "premake": 3, "retention_months": 84}').premake == 3
    assert parse_policy("t", f'pgops:partitions {{"premake": {MAX_PREMAKE}, "keep_table": true}}').keep_table is True


# ---- one clock-skew rule ---------------------------------------------------------------------------

@dataclass
class FakeManifest:
    id: str
    created: datetime


ahead = st.integers(min_value=-10 * 86400, max_value=400 * 86400).map(lambda s: timedelta(seconds=s))


@given(ahead)
def test_every_consumer_applies_the_same_rule(delta):
    """prune refuses, backup.list leaves out, a drill fails, health is critical — exactly when
    clock_skew says so, and no consumer ever shows a negative age or RPO."""
    from ops.drills.report import rpo_and_clock_check
    from ops.health.probe import repository_ages
    from ops.errors import FutureBackup
    from ops.retention import BackupFacts, SEED_002_POLICY, clock_skew, plan_prune, split_skewed
    created = NOW + delta
    skewed = clock_skew(created, NOW) is not None
    old = FakeManifest("old", NOW - timedelta(days=3))
    new = FakeManifest("new", created)
    trusted, flagged = split_skewed([new, old], NOW)
    assert (new in flagged) == skewed and old in trusted
    try:
        plan_prune([BackupFacts("old", old.created), BackupFacts("new", created)], SEED_002_POLICY, NOW)
        refused = False
    except FutureBackup:
        refused = True
    assert refused == skewed
    rpo, checks = rpo_and_clock_check(NOW, created)
    assert (rpo is None and len(checks) == 1 and not checks[0].passed) if skewed else (rpo >= 0 and not checks)
    [age, _drill] = repository_ages(None, ["app"], NOW, lambda r, d: [], lambda r, d: sorted([new, old], key=lambda m: m.created, reverse=True))
    if skewed:
        assert age.forced == "critical" and "clock skew" in age.detail and "new" in age.detail
        assert age.value == pytest.approx(3 * 86400)  # the newest trustworthy backup's age, not hidden
    else:
        assert age.forced is None and age.value == (NOW - max(created, old.created)).total_seconds()


def test_backup_list_age_is_never_negative_within_the_tolerance():
    from ops.tasks.backup import _age
    assert _age(NOW + timedelta(minutes=4), NOW) == "0m00s"


def test_read_only_tasks_with_a_bare_dsn_name_the_missing_repository_not_a_dump():
    from ops.settings import from_options
    from ops.targets import resolve
    target = resolve(from_options({}, dsn="host=127.0.0.1 port=1 dbname=app user=x"))
    with pytest.raises(ConfigError) as exc:
        target.repository_url(reads="backup.list")
    text = str(exc.value)
    assert "dump" not in text and "writ" not in text
    assert "backup.list --dsn" in text and "`invoke backup.list --repository file:///path`" in text
