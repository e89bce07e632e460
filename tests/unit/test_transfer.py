"""Pure cores of the Advent transfer: the declaration, batch ranges and throttling, the validation
verdict and the contract gate."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ops.errors import TransferSpecError
from ops.migrations.gate import TransferRun, Validation, decide, is_gated
from ops.migrations.models import Migration
from ops.migrations.script import ScriptError, parse_script
from ops.settings import DEFAULT_SQL_ROOT
from ops.transfer.batches import Limits, Load, batch_range, batches_left, keep_waiting, rate_and_eta, throttle_reason
from ops.transfer.compare import Side, judge
from ops.transfer.spec import parse_spec

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)

GOOD = """
[[mapping]]
name = "account"
source = "account"
key = "id"
target = "account_v2"
target_key = "id"
where = "s.email IS NOT NULL"
checksum = ["email"]
[mapping.columns]
id = "s.id"
email = "lower(s.email)"
"""


def test_advent_declaration_parses_with_parents_first():
    spec = parse_spec((DEFAULT_SQL_ROOT / "advent" / "transfer.toml").read_text())
    names = [m.name for m in spec.mappings]
    assert names.index("account") < names.index("child") < names.index("calendar") < names.index("calendar_day")
    assert set(spec.sources()) == {"account", "child", "calendar", "calendar_day", "chat_record", "chat_message",
                                   "surprise_config", "analytics_event"}
    assert spec.mapping("surprise_video").where == "s.video_url IS NOT NULL"


def test_declaration_fields():
    m = parse_spec(GOOD).mappings[0]
    assert m.target_columns == ("id", "email") and m.checksum == ("email",) and m.expression("email") == "lower(s.email)"


def test_every_problem_is_reported_at_once():
    bad = GOOD.replace('target_key = "id"', 'target_key = "nope"').replace('lower(s.email)', 'lower(s.email') \
        .replace('key = "id"\ntarget', 'key = "Id;"\ntarget').replace('checksum = ["email"]', 'checksum = ["zzz"]\nextra = 1')
    with pytest.raises(TransferSpecError) as exc:
        parse_spec(bad, "x/transfer.toml")
    text = str(exc.value)
    assert "x/transfer.toml" in text and len(exc.value.problems) == 5
    for part in ("'key' must be a lower-case identifier", "column email", "target_key 'nope'", "checksum", "unknown field"):
        assert part in text
    with pytest.raises(TransferSpecError, match="no \\[\\[mapping\\]\\]"):
        parse_spec("")
    with pytest.raises(TransferSpecError, match="not valid TOML"):
        parse_spec("[[mapping]\n")


def test_batch_ranges_follow_the_high_water_mark():
    assert batch_range(None, 500, 1000) == (-(2 ** 63), 500)
    assert batch_range(500, 1000, 1000) == (500, 1000)
    assert batch_range(500, None, 700) == (500, 700)  # fewer than a batch left: take the rest
    assert batch_range(500, 900, 700) == (500, 700)  # rows inserted after the start are the trigger's
    assert batch_range(1000, None, 1000) is None and batch_range(None, None, None) is None
    assert batches_left(10001, 5000) == 3 and batches_left(0, 5000) == 0


def test_throttle_like_gh_ost():
    lim = Limits(max_lag_s=1.5, max_lag_bytes=1000, max_lock_waiters=0, max_pause_s=10)
    assert throttle_reason(Load(), lim) is None
    assert "replay lag 2.0 s" in throttle_reason(Load(lag_s=2.0), lim)
    assert "bytes" in throttle_reason(Load(lag_bytes=5000), lim)
    assert "1 session(s) waiting on locks" == throttle_reason(Load(lock_waiters=1), lim)
    assert keep_waiting(9.9, lim) and not keep_waiting(10, lim)


def test_rate_and_eta():
    assert rate_and_eta(0, 100, 1.0) == (0.0, None)
    assert rate_and_eta(50, 100, 5.0) == (10.0, 5.0)


def test_judge_names_mapping_and_column():
    cols = ("email", "name")
    same = Side(9, {"email": 1, "name": 2})
    ok = judge("account", cols, 10, same, Side(9, {"email": 1, "name": 2}))
    assert ok.passed and ok.quarantined == 1 and ok.failed_columns == ()
    bad = judge("account", cols, 10, same, Side(9, {"email": 1, "name": 3}))
    assert not bad.passed and bad.failed_columns == ("name",) and "name" in bad.detail
    short = judge("account", cols, 10, same, Side(8, {"email": 1, "name": 2}))
    assert not short.passed and "v2 has 8" in short.detail


def _migration(text: str) -> Migration:
    from pathlib import Path
    return Migration(7, "contract", Path("007_contract"), text, parse_script(text), "x")


def test_gate_directive():
    assert is_gated(_migration("-- pgops:gate=validation\nDROP TABLE t;\n"))
    assert not is_gated(_migration("DROP TABLE t;\n"))
    with pytest.raises(ScriptError, match="gate=validation"):
        parse_script("-- pgops:gate=maybe\nSELECT 1;\n")


def test_gate_decision():
    done = TransferRun(3, T0, T0 + timedelta(minutes=5), "finished")
    later = T0 + timedelta(minutes=6)
    assert "no transfer" in decide("advent", None, None, 0).reason
    assert "--resume" in decide("advent", TransferRun(3, T0, None, "running"), None, 0).reason
    assert "no validation newer than transfer run 3" in decide("advent", done, Validation(1, T0, True), 0).reason
    failed = decide("advent", done, Validation(2, later, False, ("account.display_name: checksum differs",)), 0)
    assert not failed.open and "account.display_name" in failed.reason
    assert "2 legacy write(s)" in decide("advent", done, Validation(2, later, True), 2).reason
    assert decide("advent", done, Validation(2, later, True), 0).open
