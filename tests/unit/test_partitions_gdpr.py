"""Pure cores of issue 13: the partition plan from the clock, the GDPR ownership graph, TLS refusal
to an AWS stack, the lower-is-worse health check."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ops.errors import ConfigError, TlsRequired
from ops.gdpr.graph import ForeignKey, erase_order, parse_ownership, routes
from ops.health.checks import Measurement, judge
from ops.partitions.plan import (Partition, Policy, TableState, add_months, months_ahead, parse_bound, parse_policy,
                                 partition_name, plan_table, utc)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def monthly(table, first: date, n: int, **kw):
    return tuple(Partition(partition_name(table, add_months(first, i)), utc(add_months(first, i)),
                           utc(add_months(first, i + 1)), **kw) for i in range(n))


def test_premake_from_the_clock_not_the_data():
    st = TableState("public", "events", "occurred_at", Policy(premake=3), ())
    p = plan_table(st, NOW)
    assert [(a.kind, a.partition) for a in p.actions] == [
        ("create", "events_p2026_03"), ("create", "events_p2026_04"), ("create", "events_p2026_05"),
        ("create", "events_p2026_06")]
    assert p.actions[0].lower == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert p.actions[-1].upper == datetime(2026, 7, 1, tzinfo=timezone.utc)
    assert (p.ahead_before, p.ahead_after) == (-1, 3)
    # a month later the same state needs one more month; December rolls into the next year
    later = plan_table(TableState("public", "events", "occurred_at", Policy(premake=3),
                                  monthly("events", date(2026, 3, 1), 4)), datetime(2026, 4, 1, tzinfo=timezone.utc))
    assert [a.partition for a in later.actions] == ["events_p2026_07"]
    assert [a.partition for a in plan_table(TableState("s", "e", "k", Policy(premake=1)),
                                            datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)).actions] == ["e_p2026_12", "e_p2027_01"]
    with pytest.raises(ValueError):
        plan_table(st, datetime(2026, 3, 15))


def test_default_rows_are_moved_into_the_month_created_for_them():
    parts = (*monthly("audit", date(2026, 3, 1), 4), Partition("audit_default", is_default=True))
    st = TableState("public", "audit", "logged_at", Policy(premake=3, retention_months=84), parts,
                    {date(2026, 9, 1): 7, date(2026, 4, 1): 0, date(2001, 1, 1): 2})
    p = plan_table(st, NOW)
    assert [(a.kind, a.partition, a.move_rows) for a in p.actions] == [("create", "audit_p2026_09", 7)]
    assert any("2001-01" in n and "older than retention" in n for n in p.notes)


def test_retention_detaches_concurrently_only_without_a_default_then_archives_and_drops():
    parts = monthly("ev", date(2024, 12, 1), 20)  # 2024-12 .. 2026-07
    st = TableState("public", "ev", "t", Policy(premake=3, retention_months=13), parts)
    p = plan_table(st, NOW, archive=True)
    # cutoff 2025-02-15: 2024-12 and 2025-01 end on or before it
    assert [(a.kind, a.partition) for a in p.actions] == [
        ("detach", "ev_p2024_12"), ("archive", "ev_p2024_12"), ("drop", "ev_p2024_12"),
        ("detach", "ev_p2025_01"), ("archive", "ev_p2025_01"), ("drop", "ev_p2025_01")]
    assert all(a.concurrently for a in p.actions if a.kind == "detach")
    with_default = TableState("public", "ev", "t", Policy(retention_months=13, keep_table=True),
                              (*parts, Partition("ev_default", is_default=True)))
    q = plan_table(with_default, NOW)
    assert [a.kind for a in q.actions] == ["detach", "detach"] and not any(a.concurrently for a in q.actions)


def test_a_pending_detach_is_finalized_first():
    parts = (*monthly("ev", date(2026, 3, 1), 4), Partition("ev_p2020_01", utc(date(2020, 1, 1)), utc(date(2020, 2, 1)),
                                                            detach_pending=True))
    p = plan_table(TableState("public", "ev", "t", Policy(retention_months=13), parts), NOW)
    assert [(a.kind, a.partition) for a in p.actions] == [("finalize", "ev_p2020_01"), ("drop", "ev_p2020_01")]


def test_months_ahead_counts_a_gap_as_the_end():
    parts = (*monthly("e", date(2026, 3, 1), 2), *monthly("e", date(2026, 6, 1), 3))
    assert months_ahead(parts, NOW) == 1
    assert months_ahead((), NOW) == -1


def test_policy_and_bounds_parsing():
    assert parse_policy("t", 'Events. pgops:partitions {"interval": "month", "premake": 2, "retention_months": 13}') == \
        Policy(2, 13, False)
    assert parse_policy("t", "no policy") is None
    with pytest.raises(ConfigError) as err:
        parse_policy("public.t", 'pgops:partitions {"interval": "week", "premake": 0, "retention_months": -1}')
    assert len(err.value.problems) == 3 and "public.t" in str(err.value)
    with pytest.raises(ConfigError):
        parse_policy("t", "pgops:partitions {oops")
    assert parse_bound("FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')") == \
        (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert parse_bound("DEFAULT") is None and parse_bound("FOR VALUES FROM (MINVALUE) TO ('2026-01-01')") is None
    assert len(partition_name("x" * 70, date(2026, 1, 1))) == 63


def own(**kw):
    base = {"root": {"table": "public.users", "key": "id"},
            "owned_by": {"public.events": "user_id"},
            "erase": {"public.orgs.created_by": "nullify", "public.audit": "pseudonymize"}}
    return parse_ownership({**base, **kw}, "gdpr.json")


def fk(name, child, col, parent, pcol="id"):
    return ForeignKey(name, child, (col,), parent, (pcol,))


def test_ownership_graph_follows_chains_stops_at_nullify_and_survives_cycles():
    fks = [fk("v_u", "public.visions", "user_id", "public.users"),
           fk("a_v", "public.actions", "vision_id", "public.visions"),
           fk("t_a", "public.time", "action_id", "public.actions"),
           fk("o_u", "public.orgs", "created_by", "public.users"),
           fk("m_o", "public.members", "org_id", "public.orgs"),
           fk("v_a", "public.visions", "best_action", "public.actions"),  # a cycle visions ⇄ actions
           fk("u_u", "public.users", "referred_by", "public.users")]       # a self-reference: another person
    r = routes(own(), fks)
    assert set(r) == {"public.users", "public.visions", "public.actions", "public.time", "public.orgs", "public.events"}
    assert [x.action for x in r["public.orgs"]] == ["nullify"]  # and members of that org are not the user's
    assert [len(x.hops) for x in r["public.time"]] == [3]
    assert r["public.users"][0].hops == () and r["public.events"][0].declared == ("user_id",)
    order = erase_order(r, "public.users")
    assert order[-1] == "public.users" and order.index("public.time") < order.index("public.actions") < \
        order.index("public.visions")
    assert "public.orgs" not in order


def test_ownership_policy_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_ownership({"root": {}, "erase": {"x": "shred"}, "owned_by": {"t": []}}, "gdpr.json")
    assert len(err.value.problems) == 3


def test_aws_stack_refuses_a_connection_without_tls():
    from ops.settings import from_options
    from ops.targets import AwsClients, AwsTarget
    node = {"host": "db.example", "port": 5432, "user": "ops"}
    for mode in ("disable", "allow", "prefer", None):
        t = AwsTarget(from_options({}, stack="dev"), "dev", {}, AwsClients(None, None),
                      {**node, **({"sslmode": mode} if mode else {})})
        with pytest.raises(TlsRequired) as err:
            t.require_tls()
        assert err.value.exit_code == 12 and "db.example" in str(err.value) and "verify-full" in str(err.value)
    AwsTarget(from_options({}, stack="dev"), "dev", {}, AwsClients(None, None), {**node, "sslmode": "verify-full"},
              ({**node, "sslmode": "verify-full"},)).require_tls()
    replica_plain = AwsTarget(from_options({}, stack="dev"), "dev", {}, AwsClients(None, None),
                              {**node, "sslmode": "verify-full"}, ({**node, "host": "r1", "sslmode": "disable"},))
    with pytest.raises(TlsRequired, match="replica1"):
        replica_plain.require_tls()


def test_partitions_ahead_is_worse_when_lower():
    assert [judge(Measurement("partitions_ahead", "n", v)).status for v in (-1, 0, 1, 2, 3)] == \
        ["critical", "critical", "warning", "ok", "ok"]
    assert judge(Measurement("partition_default_rows", "n", 3)).status == "warning"
    assert judge(Measurement("connections", "n", 0.95)).status == "critical"  # higher-is-worse unchanged
