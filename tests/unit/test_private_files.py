"""The local stack's secrets are private from their first byte (issue 9 §4): the passfile and the
initdb password file are never, even for an instant, readable by group or others — whatever the umask."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ops.local import cluster
from ops.local.layout import plan_layout


@pytest.fixture
def umask0():
    old = os.umask(0)
    yield
    os.umask(old)


def test_init_primary_never_exposes_the_password_files(tmp_path, monkeypatch, umask0):
    lay = plan_layout(tmp_path / "stack", 55990, 0)
    lay.state_dir.mkdir()
    secret_files = {lay.passfile, lay.primary.node_dir / "initpw"}
    seen: list[tuple[str, int]] = []

    def observe(where):
        for p in secret_files:
            if p.exists():
                seen.append((f"{p.name} {where}", stat.S_IMODE(p.stat().st_mode)))

    real_write_text, real_write = Path.write_text, os.write

    def spy_write_text(self, *a, **kw):
        n = real_write_text(self, *a, **kw)
        observe("after write_text")
        return n

    def spy_write(fd, data):
        observe("before write")
        return real_write(fd, data)

    def fake_initdb(args, **kw):  # initdb: what it leaves behind, no server
        observe("at initdb")
        lay.primary.data_dir.mkdir()
        (lay.primary.data_dir / "postgresql.conf").write_text("")
    monkeypatch.setattr(Path, "write_text", spy_write_text)
    monkeypatch.setattr(os, "write", spy_write)
    monkeypatch.setattr(cluster, "run_server_cmd", fake_initdb)
    cluster.LocalStack(lay)._init_primary(Path("/nonexistent/bin"))
    assert any(name.startswith("pgpass") for name, _ in seen)
    assert all(mode == 0o600 for _, mode in seen), seen
    assert stat.S_IMODE(lay.passfile.stat().st_mode) == 0o600
    assert lay.passfile.read_text().startswith("127.0.0.1:*:*:postgres:")


def test_write_private_replaces_a_readable_file_and_a_symlink(tmp_path, umask0):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "pgpass"
    link.symlink_to(target)
    cluster.write_private(link, "secret\n")
    assert not link.is_symlink() and target.read_text() == "keep"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600 and link.read_text() == "secret\n"
    os.chmod(link, 0o644)
    cluster.write_private(link, "again\n")
    assert stat.S_IMODE(link.stat().st_mode) == 0o600 and link.read_text() == "again\n"
