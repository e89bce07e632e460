"""The server user's path to the state directory: the pure rule over every mode/owner, and its repair
on real directories (issue 19 §1: a 0700 ``.pgops``, missing parents, umask 077, a 0700 home)."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ops.errors import LocalStackError
from ops.local.reach import DirMode, can_search, ensure_reachable, make_dirs, unreachable

pytestmark = pytest.mark.unit
SERVER = 1001


@given(mode=st.integers(0, 0o777), owner=st.sampled_from([0, SERVER]), group=st.sampled_from([0, 50]),
       member=st.booleans())
def test_search_follows_posix_owner_group_other_order(mode, owner, group, member):
    d = DirMode("/x", owner, group, mode)
    gids = {50} if member else {99}
    if owner == SERVER:
        want = bool(mode & 0o100)
    elif group in gids:
        want = bool(mode & 0o010)
    else:
        want = bool(mode & 0o001)
    assert can_search(d, SERVER, gids) is want
    assert unreachable([d], SERVER, gids) == ([] if want else ["/x"])


def test_owner_without_x_is_refused_even_when_others_may():  # POSIX: the owner's bits alone apply
    assert not can_search(DirMode("/x", SERVER, 0, 0o607), SERVER, set())


@pytest.fixture
def base():
    """A directory under /tmp every user can search (pytest's own tmp_path sits below a 0700 one)."""
    d = Path(tempfile.mkdtemp(prefix="pgops-reach-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_missing_parents_are_made_traverse_only_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        made = make_dirs(tmp_path / "a" / "b" / "state")
    finally:
        os.umask(old)
    assert made == [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "state"]
    assert {_mode(p) for p in made} == {0o711}


def test_our_0700_directories_get_search_only_and_a_foreign_one_is_refused(base):
    """The .pgops a repository made 0700 is ours: o+x added, never o+r. A 0700 directory above
    the checkout (a home) is the user's: refused, naming it and both fixes. Nothing is changed then."""
    tmp_path = base
    checkout = tmp_path / "checkout"
    state = checkout / ".pgops" / "local"
    state.mkdir(parents=True)
    for p in (checkout / ".pgops", state):
        os.chmod(p, 0o700)
    changed = ensure_reachable(state, tmp_path, SERVER, set())
    assert set(changed) == {checkout / ".pgops", state}
    assert _mode(checkout / ".pgops") == 0o701 and not _mode(state) & 0o004

    home = tmp_path / "home"
    foreign = home / "proj" / ".pgops" / "local"
    foreign.mkdir(parents=True)
    os.chmod(home, 0o700)
    with pytest.raises(LocalStackError) as err:
        ensure_reachable(foreign, home, SERVER, set())
    assert f"search {home}" in err.value.message and f"chmod o+x {home}" in err.value.hint
    assert "PGOPS_STATE_DIR=" in err.value.hint and _mode(home) == 0o700


def test_a_refusal_creates_nothing(base):
    home = base / "home"
    home.mkdir()
    os.chmod(home, 0o700)
    with pytest.raises(LocalStackError):
        ensure_reachable(home / "a" / "b" / "state", None, SERVER, set())
    assert list(home.iterdir()) == []
