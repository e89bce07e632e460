"""Retention: restic forget semantics (hand-checked examples and properties) and the safety floors."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ops.retention import (SEED_002_POLICY, BackupFacts, RetentionPolicy, RetentionRefused, apply_policy,
                           plan_prune)

UTC = timezone.utc


def at(*args):
    return datetime(*args, tzinfo=UTC)


def kept(policy, times):
    return [v.created_at for v in apply_policy(policy, times) if v.keep]


# ---- hand-checked examples (worked by hand from restic's ApplyPolicy) ----------------------------

def test_keep_daily_takes_the_newest_of_each_day():
    times = [at(2026, 1, d, h) for d in (1, 2, 3) for h in (9, 18)]
    assert kept(RetentionPolicy(keep_daily=2), times) == [at(2026, 1, 3, 18), at(2026, 1, 2, 18)]


def test_oldest_backup_is_kept_while_a_rule_has_count_left():
    times = [at(2026, 1, d, h) for d in (1, 2, 3) for h in (9, 18)]
    verdicts = apply_policy(RetentionPolicy(keep_daily=5), times)
    assert [v.created_at for v in verdicts if v.keep] == [at(2026, 1, 3, 18), at(2026, 1, 2, 18),
                                                           at(2026, 1, 1, 18), at(2026, 1, 1, 9)]
    assert verdicts[-1].reasons == ("oldest backup (daily rule has count left)",)


def test_oldest_is_not_kept_once_counts_run_out():
    times = [at(2026, 1, d) for d in range(1, 11)]
    assert kept(RetentionPolicy(keep_daily=3), times) == [at(2026, 1, 10), at(2026, 1, 9), at(2026, 1, 8)]


def test_unlimited_rule_keeps_one_per_bucket_and_the_oldest():
    times = [at(2026, 1, 1, h) for h in (1, 2)] + [at(2026, 2, 1, 1)]
    assert kept(RetentionPolicy(keep_monthly=-1), times) == [at(2026, 2, 1, 1), at(2026, 1, 1, 2), at(2026, 1, 1, 1)]


def test_weekly_uses_iso_weeks_and_rules_combine():
    # 2026-01-04 is a Sunday (ISO week 1), 2026-01-05 a Monday (week 2)
    times = [at(2026, 1, 3), at(2026, 1, 4), at(2026, 1, 5), at(2026, 1, 6)]
    v = apply_policy(RetentionPolicy(keep_last=1, keep_weekly=2), times)
    assert [(x.created_at.day, x.keep, x.reasons) for x in v] == [
        (6, True, ("last snapshot", "weekly snapshot")),
        (5, False, ()),
        (4, True, ("weekly snapshot",)),
        (3, False, ()),
    ]


def test_buckets_are_utc():
    cet = timezone(timedelta(hours=1))
    # 00:30 CET on the 2nd is 23:30 UTC on the 1st: same UTC day as the 1st's noon backup
    times = [datetime(2026, 1, 2, 0, 30, tzinfo=cet), at(2026, 1, 1, 12)]
    assert len(kept(RetentionPolicy(keep_daily=1), times)) == 1


def test_empty_policy_keeps_everything_and_naive_times_are_refused():
    assert all(v.keep for v in apply_policy(RetentionPolicy(), [at(2026, 1, 1), at(2025, 1, 1)]))
    with pytest.raises(ValueError):
        apply_policy(SEED_002_POLICY, [datetime(2026, 1, 1)])


def test_seed_002_policy_over_two_years_of_daily_backups():
    times = [at(2024, 1, 1) + timedelta(days=i) for i in range(731)]
    k = kept(SEED_002_POLICY, times)
    # 30 dailies, then weeklies/monthlies/yearlies reach further back, and the oldest is kept
    assert k[:30] == [times[-1 - i] for i in range(30)]
    assert times[0] in k
    assert 30 < len(k) <= 30 + 12 + 12 + 5 + 1


# ---- properties ----------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
counts = st.sampled_from([-1, 0, 1, 2, 3, 5])
policies = st.builds(RetentionPolicy, keep_last=counts, keep_hourly=counts, keep_daily=counts,
                     keep_weekly=counts, keep_monthly=counts, keep_yearly=counts)


@settings(max_examples=300, deadline=None)
@given(policies, st.lists(instants, min_size=1, max_size=60, unique=True))
def test_properties(policy, times):
    verdicts = apply_policy(policy, times)
    assert [v.created_at for v in verdicts] == sorted(times, reverse=True)  # newest first
    assert all(v.reasons for v in verdicts if v.keep)  # every kept backup has a reason
    kept_set = {v.created_at for v in verdicts if v.keep}
    assert max(times) in kept_set  # never deletes the newest (some rule always keeps it)
    # idempotent: applying the policy to what it kept keeps all of it
    assert {v.created_at for v in apply_policy(policy, list(kept_set)) if v.keep} == kept_set
    # the kept set contains what each rule alone keeps
    for field in policy.__dataclass_fields__:
        alone = RetentionPolicy(**{field: getattr(policy, field)})
        if not alone.empty():
            assert set(kept(alone, times)) <= kept_set


# ---- safety floors -------------------------------------------------------------------------------

NOW = at(2026, 11, 21, 12)


def facts(days_ago, drill=False):
    return BackupFacts(f"b{days_ago}", NOW - timedelta(days=days_ago), drill)


def test_floors_keep_newest_drilled_and_young_backups():
    backups = [facts(d) for d in range(1, 11)] + [facts(0.01)]
    backups[8] = facts(9, drill=True)
    plan = plan_prune(backups, RetentionPolicy(keep_last=1), NOW, max_delete_fraction=1.0)
    keep = {b.id for b in plan.to_keep}
    assert keep == {"b0.01", "b9"}  # keep_last takes the newest; b9 only by the drill floor
    reasons = {i.backup.id: i.reasons for i in plan.items}
    assert any("restore drill passed" in r for r in reasons["b9"])
    assert any("newest backup (safety floor)" in r for r in reasons["b0.01"])
    young = plan_prune([facts(0.01), facts(0.02)], RetentionPolicy(keep_last=1), NOW, max_delete_fraction=1.0)
    assert all(i.keep for i in young.items)  # both younger than an hour


def test_refuses_empty_listing_even_forced():
    with pytest.raises(RetentionRefused):
        plan_prune([], SEED_002_POLICY, NOW, force=True)


def test_refuses_deleting_more_than_half_unless_forced():
    backups = [facts(d) for d in range(1, 11)]
    with pytest.raises(RetentionRefused) as info:
        plan_prune(backups, RetentionPolicy(keep_last=2), NOW)
    assert "8 of 10" in str(info.value) and "--force" in str(info.value)
    assert len(plan_prune(backups, RetentionPolicy(keep_last=2), NOW, force=True).to_delete) == 8


def test_order_is_by_created_at_not_by_id():
    backups = [BackupFacts("zzz-oldest", NOW - timedelta(days=3)), BackupFacts("aaa-newest", NOW - timedelta(days=2))]
    plan = plan_prune(backups, RetentionPolicy(keep_last=1), NOW)
    assert [b.id for b in plan.to_keep] == ["aaa-newest"]
