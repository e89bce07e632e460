"""The pure core of failover: LSNs, Patroni's switchover guards, the candidate, the WAL gap."""
from ops.failover.plan import (
    MAX_LAG_BYTES,
    FailoverReport,
    NodeState,
    choose_candidate,
    format_lsn,
    parse_lsn,
    switchover_refusals,
    wal_gap,
)

PRIMARY = NodeState("primary", True, False, False, 1, parse_lsn("0/5000000"), parse_lsn("0/5000000"))


def replica(name="replica1", replay="0/5000000", streaming=True, timeline=1, receive=None, **kw):
    return NodeState(name, True, True, streaming, timeline, parse_lsn(replay), parse_lsn(receive or replay), **kw)


def test_lsn_round_trip():
    assert parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848" and parse_lsn(None) is None


def test_a_streaming_caught_up_replica_on_the_same_timeline_passes():
    assert switchover_refusals(PRIMARY, replica(), force=False) == []


def test_each_guard_refuses_and_force_lifts_only_the_lag():
    behind = replica(replay=format_lsn(PRIMARY.replay_lsn - MAX_LAG_BYTES - 1), replay_paused=True)
    assert "over the limit" in switchover_refusals(PRIMARY, behind, force=False)[0]
    assert "replay is paused" in switchover_refusals(PRIMARY, behind, force=False)[0]
    assert switchover_refusals(PRIMARY, behind, force=True) == []
    assert "not streaming" in " ".join(switchover_refusals(PRIMARY, replica(streaming=False), force=True))
    assert "timeline 2" in " ".join(switchover_refusals(PRIMARY, replica(timeline=2), force=True))
    assert "does not answer" in switchover_refusals(PRIMARY, NodeState("replica1", False), force=True)[0]


def test_the_most_advanced_replica_is_chosen_by_received_wal():
    a, b = replica("replica1", "0/4000000", receive="0/4800000"), replica("replica2", "0/4500000")
    assert choose_candidate([a, b]).name == "replica1"
    assert choose_candidate([NodeState("replica1", False)]) is None


def test_the_wal_gap_is_unknown_without_both_positions():
    assert wal_gap(None, 5) is None and wal_gap(10, 4) == 6 and wal_gap(4, 10) == 0
    r = FailoverReport("promote", "local", "primary", "replica1", "t", lost_primary_source="its data directory is missing")
    assert r.wal_gap_text.startswith("unknown (its data directory is missing")
