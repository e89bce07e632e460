"""Retention: restic forget semantics (hand-checked examples and properties) and the safety floors."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ops.errors import RetentionRefused
from ops.retention import (SEED_002_POLICY, BackupFacts, RetentionPolicy, apply_policy,
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


# ---- untrusted histories: skewed (future), duplicate and malformed timestamps ---------------------

from ops.errors import FutureBackup  # noqa: E402
from ops.retention import FUTURE_TOLERANCE, InvalidBackup, parse_created_at, triage  # noqa: E402

MIN_AGE = timedelta(hours=1)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))])
past = st.builds(lambda ago, tz: (NOW - ago).astimezone(tz),
                 st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)), offsets)
skewed = st.builds(lambda ahead, tz: (NOW + ahead).astimezone(tz),
                   st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3)), offsets)
# (raw created_at as a manifest would hold it, kind)
stamps = st.one_of(
    past.map(lambda d: (d.isoformat(), "valid")),
    skewed.map(lambda d: (d.isoformat(), "valid")),
    past.map(lambda d: (d.replace(tzinfo=None).isoformat(), "malformed")),  # naive
    st.sampled_from(["", "yesterday", "2026-13-45T00:00:00+00:00", "2026-11-21T25:00:00Z", "null"])
      .map(lambda s: (s, "malformed")),
    st.sampled_from([None, 1763726400, 3.5, ["2026-11-21T00:00:00+00:00"], {"t": 1}]).map(lambda v: (v, "malformed")),
)


@st.composite
def histories(draw):
    """Backups with unique ids whose raw created_at may be skewed into the future, malformed, or a
    duplicate of another backup's (same instant, possibly written with another offset)."""
    pool = draw(st.lists(stamps, min_size=1, max_size=25))
    n = draw(st.integers(min_value=1, max_value=40))
    picks = [draw(st.sampled_from(pool)) for _ in range(n)]  # repeats = duplicate timestamps
    drilled = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return [(f"b{i:02d}", raw, kind, d) for i, ((raw, kind), d) in enumerate(zip(picks, drilled))]


@settings(max_examples=400, deadline=None)
@given(policies, histories(), st.booleans())
def test_floors_hold_over_skewed_duplicate_and_malformed_histories(policy, history, force):
    valid, invalid = triage([(i, raw, d) for i, raw, _, d in history])
    assert {b.id for b in valid} == {i for i, _, kind, _ in history if kind == "valid"}
    assert {b.id for b in invalid} == {i for i, _, kind, _ in history if kind == "malformed"}
    assert all(b.created_at.tzinfo is not None for b in valid)
    future = {b.id for b in valid if b.created_at - NOW > FUTURE_TOLERANCE}
    try:
        plan = plan_prune(valid, policy, NOW, min_age=MIN_AGE, max_delete_fraction=1.0 if force else 0.5,
                          force=force, database="app", invalid=invalid)
    except FutureBackup as exc:  # the prune of this database stops, naming every skewed backup
        assert future and set(exc.backup_ids) == future and exc.exit_code == 6
        assert all(b in str(exc) for b in future) and "app" in str(exc)
        return
    except RetentionRefused as exc:
        assert not future
        assert "would delete" in str(exc) and not force  # only the >50 % floor may refuse here
        return
    assert not future
    # every backup appears exactly once: in the verdicts or as invalid
    assert sorted([i.backup.id for i in plan.items] + [b.id for b in plan.invalid]) == sorted(h[0] for h in history)
    deleted = {b.id for b in plan.to_delete}
    assert not deleted & {b.id for b in invalid}, "an invalid backup is never deleted automatically"
    if valid:
        newest = max(b.created_at for b in valid)
        assert any(b.created_at == newest for b in plan.to_keep), "the newest valid backup is kept"
        drilled = [b.created_at for b in valid if b.drill_passed]
        if drilled:
            assert any(b.drill_passed and b.created_at == max(drilled) for b in plan.to_keep), \
                "the newest drilled backup is kept"
        for b in valid:
            if NOW - b.created_at < MIN_AGE:
                assert b.id not in deleted, f"{b.id} is younger than the minimum age"
    for item in plan.items:
        assert item.reasons


def test_a_future_backup_stops_the_prune_and_is_named():
    # the case: a skewed backup later the same UTC day takes the daily slot of the truly newest
    backups = [facts(2), facts(1), BackupFacts("true-newest", NOW - timedelta(hours=2)),
               BackupFacts("skewed", NOW + timedelta(hours=1, minutes=30))]
    with pytest.raises(FutureBackup) as info:
        plan_prune(backups, SEED_002_POLICY, NOW, force=True, database="app")
    assert info.value.backup_ids == ["skewed"] and "skewed" in str(info.value) and "'app'" in str(info.value)
    within = [facts(1), BackupFacts("slightly-ahead", NOW + FUTURE_TOLERANCE - timedelta(seconds=1))]
    assert {b.id for b in plan_prune(within, SEED_002_POLICY, NOW).to_keep} == {"b1", "slightly-ahead"}


def test_malformed_timestamps_are_invalid_not_fatal():
    for raw in ("2026-11-21T12:00:00", "nonsense", None, 7, ""):
        with pytest.raises(ValueError):
            parse_created_at(raw)
    assert parse_created_at("2026-11-21T13:00:00+01:00") == NOW
    valid, invalid = triage([("ok", NOW.isoformat(), False), ("naive", "2026-11-21T12:00:00", True)])
    assert [b.id for b in valid] == ["ok"] and [b.id for b in invalid] == ["naive"]
    assert "naive" in invalid[0].problem
    plan = plan_prune([*valid, BackupFacts("naive-facts", datetime(2026, 1, 1))], RetentionPolicy(keep_last=1), NOW,
                      invalid=invalid)
    assert [b.id for b in plan.to_keep] == ["ok"] and {b.id for b in plan.invalid} == {"naive", "naive-facts"}
    only_invalid = plan_prune([], SEED_002_POLICY, NOW, invalid=[InvalidBackup("x", "unreadable")])
    assert only_invalid.items == () and only_invalid.to_delete == []
