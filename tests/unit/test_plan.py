"""Pure planning: ledger vs disk, drift, missing, out-of-order, dirty, rollback plans."""
from datetime import datetime, timezone

import pytest

from ops.errors import RollbackRefused
from ops.migrations.discovery import checksum_of
from ops.migrations.models import AppliedRow, DirtyRow, Migration
from ops.migrations.plan import compare, rollback_plan, select_pending
from ops.migrations.script import parse_script

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def mig(v, up="SELECT 1;", down="SELECT 1;"):
    from pathlib import Path
    return Migration(v, f"m{v}", Path(f"{v:03d}_m{v}"), up, parse_script(up), checksum_of(up.encode()),
                     parse_script(down) if down is not None else None, None)


def row(m, checksum=None):
    return AppliedRow(m.version, m.name, checksum or m.checksum, NOW, "ops", 5, "0.1.0")


def test_compare_classifies_every_version():
    disk = [mig(1), mig(2), mig(3), mig(5)]
    applied = {1: row(disk[0]), 2: row(disk[1], checksum="0" * 64), 3: row(disk[2]), 4: row(mig(4))}
    st = compare(disk, applied)
    assert [(r.version, r.state) for r in st.rows] == [(1, "applied"), (2, "changed"), (3, "applied"),
                                                       (4, "missing"), (5, "pending")]
    assert st.current == 4 and [m.version for m in st.pending] == [5]
    assert st.drifted[0][:2] == (2, "m2") and st.missing == (4,) and st.out_of_order == ()


def test_out_of_order_and_to():
    disk = [mig(1), mig(2), mig(3)]
    st = compare(disk, {1: row(disk[0]), 3: row(disk[2])})
    assert st.out_of_order == (2,)
    assert [m.version for m in select_pending(compare(disk, {}), to=2)] == [1, 2]


def test_dirty_version_is_not_pending():
    disk = [mig(1), mig(2)]
    dirty = DirtyRow(2, "m2", disk[1].checksum, "up", 3, 1, 2, "boom")
    st = compare(disk, {1: row(disk[0])}, dirty)
    assert [r.state for r in st.rows] == ["applied", "dirty"] and st.pending == ()


def test_rollback_plan_newest_first_with_to_and_steps():
    disk = [mig(1), mig(2), mig(3)]
    applied = {m.version: row(m) for m in disk}
    assert [s.version for s in rollback_plan(disk, applied, None, to=1)] == [3, 2]
    assert [s.version for s in rollback_plan(disk, applied, None, steps=1)] == [3]
    assert [s.version for s in rollback_plan(disk, applied, None, steps=99)] == [3, 2, 1]


def test_rollback_plan_counts_a_dirty_migration_first():
    disk = [mig(1), mig(2)]
    dirty = DirtyRow(2, "m2", disk[1].checksum, "up", 3, 1, 2, "boom")
    plan = rollback_plan(disk, {1: row(disk[0])}, dirty, steps=1)
    assert [(s.version, s.dirty) for s in plan] == [(2, True)]


def test_rollback_refuses_naming_every_missing_down():
    disk = [mig(1), mig(2, down=None), mig(3, down=None)]
    applied = {m.version: row(m) for m in disk}
    applied[4] = row(mig(4))
    with pytest.raises(RollbackRefused) as info:
        rollback_plan(disk, applied, None, to=0)
    msg = str(info.value)
    assert "002_m2 has no down.sql" in msg and "003_m3 has no down.sql" in msg and "4_m4 is in the ledger" in msg


@pytest.mark.parametrize("kwargs", [{}, {"to": 1, "steps": 1}, {"steps": 0}])
def test_rollback_needs_exactly_one_valid_target(kwargs):
    with pytest.raises(RollbackRefused):
        rollback_plan([mig(1)], {1: row(mig(1))}, None, **kwargs)
