"""Health verdicts, overrides and renderings (pure): the thresholds are the alarms' own; replica lag is
critical only when bytes and seconds are both over (check_postgres); Nagios and Prometheus output
parse as their consumers parse them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ops.errors import ConfigError
from ops.health.checks import (CRITICAL, LIMITS, NAGIOS_CODE, OK, UNKNOWN, WARNING, Measurement, judge, overall,
                               parse_overrides, parse_quantity, render_nagios, render_prometheus)
from ops.thresholds import THRESHOLDS

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_one_source_of_thresholds_for_alarms_and_health():
    alarm = {t.key: t for t in THRESHOLDS}
    assert LIMITS["replica_lag"].crit == alarm["replica_lag"].threshold == 60
    assert LIMITS["connections"].crit == alarm["connections"].threshold
    assert LIMITS["backup_age"].crit == alarm["backup_age"].threshold
    assert LIMITS["drill_age"].crit == alarm["drill_age"].threshold
    assert LIMITS["xid_wraparound"].crit == alarm["txid"].threshold
    assert LIMITS["disk_usage"].crit == pytest.approx(1 - alarm["storage"].threshold)


def test_every_check_names_a_runbook_that_exists():
    assert [lim.runbook for lim in LIMITS.values() if not (REPO / lim.runbook).is_file()] == []


@pytest.mark.parametrize("secs,bytes_,status", [(0, 0, OK), (120, 0, OK),  # idle primary: old replay time, no bytes
                                                (120, 100 * 2**20, CRITICAL), (45, 20 * 2**20, WARNING),
                                                (45, 100 * 2**20, WARNING), (120, 20 * 2**20, WARNING),
                                                (10, 100 * 2**20, OK)])
def test_replica_lag_needs_both_dimensions_over(secs, bytes_, status):
    assert judge(Measurement("replica_lag", "replica1", secs, value2=bytes_)).status == status


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False), st.sampled_from(sorted(LIMITS)))
def test_a_higher_value_is_never_judged_better(value, check):
    if LIMITS[check].unit2 or LIMITS[check].lower_is_worse:  # partitions_ahead: worse when lower
        return
    rank = {OK: 0, WARNING: 1, CRITICAL: 2}
    a = judge(Measurement(check, "n", value)).status
    b = judge(Measurement(check, "n", value * 2 + 1)).status
    assert rank[b] >= rank[a]


def test_unmeasured_forced_and_boolean_checks():
    assert judge(Measurement("connections", "p", None)).status == UNKNOWN
    assert judge(Measurement("backup_age", "db", None, forced=CRITICAL)).status == CRITICAL
    assert judge(Measurement("node_down", "replica1", None, failed=True)).status == CRITICAL
    assert judge(Measurement("node_down", "replica1", 0, failed=False)).status == OK
    assert overall([]) == UNKNOWN
    assert overall([judge(Measurement("connections", "p", 0.1)), judge(Measurement("connections", "q", None))]) == UNKNOWN
    assert overall([judge(Measurement("connections", "p", 0.85)), judge(Measurement("connections", "q", None))]) == WARNING


def test_overrides_with_units_and_every_problem_at_once():
    lim = parse_overrides(["idle_in_transaction.crit=2s", "replica_lag.crit2=16MB", "disk_usage.warn=50%",
                           "long_transaction.warn=5min"])
    assert lim["idle_in_transaction"].crit == 2 and lim["replica_lag"].crit2 == 16 * 2**20
    assert lim["disk_usage"].warn == 0.5 and lim["long_transaction"].warn == 300
    assert LIMITS["idle_in_transaction"].crit == 300  # the table itself is untouched
    with pytest.raises(ConfigError) as info:
        parse_overrides(["nosuch.warn=1", "connections.crit=lots", "connections=1"])
    assert len(info.value.problems) == 3
    assert parse_quantity("1.5GB") == 1.5 * 2**30 and parse_quantity("250ms") == 0.25


def results():
    return [judge(Measurement("connections", "primary", 0.05, "3 of 97")),
            judge(Measurement("replica_lag", "replica1", 120.0, "100 MiB behind", value2=100 * 2**20)),
            judge(Measurement("long_transaction", "primary", 400.0, 'pid 42 | "quoted"\n\tsecond line')),
            judge(Measurement("backup_age", "sync\"script", None, "none", forced=CRITICAL))]


def test_nagios_one_status_line_with_perfdata():
    line = render_nagios(results())
    assert "\n" not in line
    head, perf = line.split(" | ")
    assert head.startswith("PGOPS HEALTH CRITICAL - ") and "replica_lag on replica1 critical" in head
    assert "|" not in head.replace(" | ", "")  # the detail's own '|' cannot cut the perfdata
    for item in perf.split(" "):
        assert re.fullmatch(r"'[^']+'=[-0-9.e]+(s|B|%)?;[-0-9.e]*;[-0-9.e]*", item), item
    assert NAGIOS_CODE[overall(results())] == 2


def test_prometheus_output_parses_with_the_reference_parser():
    families = {f.name: f for f in text_string_to_metric_families(render_prometheus(results()))}
    status = {(s.labels["check"], s.labels["node"]): s.value for s in families["pgops_health_status"].samples}
    assert status[("replica_lag", "replica1")] == 2 and status[("connections", "primary")] == 0
    assert status[("backup_age", 'sync"script')] == 2  # label escaping survives the parser
    values = {s.labels["check"]: s.value for s in families["pgops_health_value"].samples}
    assert values["long_transaction"] == 400 and "backup_age" not in values


def test_probe_answers_follow_patroni_semantics():
    from ops.health.checks import probe_answer
    roles = {"primary": "primary", "replica1": "replica", "replica2": "replica"}
    up = [judge(Measurement("node_down", n, 0, failed=False, role=r)) for n, r in roles.items()]
    lag = [judge(Measurement("replica_lag", "replica1", 1.0, value2=1024.0)),
           judge(Measurement("replica_lag", "replica2", 90.0, value2=100 * 2**20))]
    assert probe_answer("/primary", up + lag)[0] == 200
    assert probe_answer("/replica?lag=16MB", up + lag) == (200, {"replicas_within_lag": ["replica1"],
                                                                  "lag_limit_bytes": 16 * 2**20})
    assert probe_answer("/replica?lag=16MB&name=replica2", up + lag)[0] == 503
    assert probe_answer("/health", up + lag)[0] == 503  # replica2 is critically behind
    down = [judge(Measurement("node_down", "primary", None, failed=True, role="primary"))] + up[1:]
    assert probe_answer("/primary", down)[0] == 503 and probe_answer("/health", down)[0] == 503
    assert probe_answer("/health", up)[0] == 200 and probe_answer("/x", up)[0] == 404


def test_probes_follow_roles_not_names_after_a_role_change():
    """After a switchover the node named 'primary' is a replica: /primary asks for the role."""
    from ops.health.checks import probe_answer
    swapped = [judge(Measurement("node_down", "primary", 0, failed=False, role="replica")),
               judge(Measurement("node_down", "replica1", 0, failed=False, role="primary"))]
    assert probe_answer("/primary", swapped)[0] == 200
    dead_new_primary = [swapped[0], judge(Measurement("node_down", "replica1", None, failed=True, role="primary"))]
    assert probe_answer("/primary", dead_new_primary)[0] == 503  # the node named 'primary' does not count


def test_missed_backups_and_database_checks_do_not_fail_node_probes():
    from ops.health.checks import probe_answer
    up = [judge(Measurement("node_down", "pg1", 0, failed=False, role="primary")),
          judge(Measurement("pooler", "pooler", 0, failed=False))]
    stale = [judge(Measurement("backup_age", "syncscript", None, "no backup", forced="critical")),
             judge(Measurement("invalid_indexes", "primary/app", 3.0))]
    assert {r.status for r in stale} == {"critical"}
    assert probe_answer("/health", up + stale)[0] == 200 and probe_answer("/primary", up + stale)[0] == 200
    pooler_down = [up[0], judge(Measurement("pooler", "pooler", None, failed=True))]
    assert probe_answer("/health", pooler_down + stale)[0] == 503


def _backup(db, created):
    from types import SimpleNamespace
    return SimpleNamespace(id=f"{db}-{created:%Y%m%dT%H%M%SZ}", created=created)


@given(born_ago=st.floats(0, 90 * 86400), backup_ago=st.one_of(st.none(), st.floats(0, 90 * 86400)),
       drill_ago=st.one_of(st.none(), st.floats(0, 90 * 86400)), known=st.booleans())
def test_freshness_runs_from_the_later_of_creation_and_the_last_backup(born_ago, backup_ago, drill_ago, known):
    """backup_age / drill_age = now − max(created, newest backup or drill); unknown creation and no
    backup stays critical. A database younger than the threshold has not missed one."""
    from datetime import datetime, timedelta, timezone
    from ops.health.probe import repository_ages
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    born = now - timedelta(seconds=born_ago)
    backups = [_backup("db", now - timedelta(seconds=backup_ago))] if backup_ago is not None else []
    drills = [{"passed": True, "started_at": (now - timedelta(seconds=drill_ago)).isoformat(), "backup_id": "x"}] \
        if drill_ago is not None else []
    out = repository_ages(SimpleRepo(), ["db"], now, lambda r, d: drills, lambda r, d: backups,
                          {"db": born} if known else {})
    by = {m.id: m for m in out}
    for check, ago in (("backup_age", backup_ago), ("drill_age", drill_ago)):
        m = by[check]
        if not known:
            assert (m.forced == "critical" and m.value is None) if ago is None else abs(m.value - ago) < 1e-3
            continue
        expected = born_ago if ago is None else min(ago, born_ago)
        assert m.forced is None and abs(m.value - expected) < 1e-3
        if expected < judge(m).warn:
            assert judge(m).status == "ok"  # younger than the threshold: nothing missed


class SimpleRepo:
    url = "file:///nowhere"


def test_a_young_database_whose_drills_all_failed_is_critical():
    from datetime import datetime, timedelta, timezone
    from ops.health.probe import repository_ages
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    failed = [{"passed": False, "started_at": (now - timedelta(minutes=5)).isoformat()}]
    out = repository_ages(SimpleRepo(), ["db"], now, lambda r, d: failed, lambda r, d: [],
                          {"db": now - timedelta(hours=1)})
    drill = next(m for m in out if m.id == "drill_age")
    assert judge(drill).status == "critical" and "failed" in drill.detail
