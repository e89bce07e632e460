"""Restore drills on real PostgreSQL: a good backup passes with exact row counts; each kind of bad
backup fails with a report saying why; nothing (process, port, data directory) outlives a drill,
not even after Ctrl-C mid-restore."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ops.backups import engine
from ops.backups.manifest import manifest_key
from ops.backups.repository import FileRepository
from ops.backups.drillreports import drill_reports as history, store_report
from ops.drills.runner import run_drill
from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir
from ops.pgtools import pg_bindir
from ops.migrations import runner
from ops.migrations.runner import Target
from ops.seeds import load_seeder

from .conftest import REPO, query

SYNC_SEED = load_seeder(DEFAULT_SQL_ROOT, "syncscript")
TABLES, seed_syncscript = SYNC_SEED.TABLES, SYNC_SEED.generate

SYNC = "syncscript"


def leftovers(root: Path = Path("/tmp")) -> tuple[list[str], list[str]]:
    """Drill servers still running and drill directories still on disk under ``root``."""
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    running = [p for p in procs if f"{root}/pgops-drill-" in p and "postgres" in p]
    dirs = [str(p) for p in root.glob("pgops-drill-*")]
    return running, dirs


_WORK_ROOT: list[Path] = []


def work_root() -> Path:
    """Engine-level drills work under a private root, so drills that other processes on this machine
    run in /tmp at the same time can neither fail "nothing left behind" nor be counted as ours."""
    if not _WORK_ROOT:
        import atexit
        import shutil

        from .conftest import state_dir
        _WORK_ROOT.append(state_dir())
        atexit.register(shutil.rmtree, _WORK_ROOT[0], True)
    return _WORK_ROOT[0]


@pytest.fixture(scope="module")
def source(pg):
    """A seeded syncscript database (module-wide: drills only read it)."""
    p = pg.conninfo()
    p.pop("dbname")
    name = "drill_src"
    query(p, "postgres", f"DROP DATABASE IF EXISTS {name}")
    query(p, "postgres", f"CREATE DATABASE {name}")
    runner.migrate(Target(name, p, migrations_dir(DEFAULT_SQL_ROOT, SYNC)))
    seed_syncscript(p, name, 1500, seed=11)
    yield p, name
    query(p, "postgres", f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def sql_root(tmp_path):
    """sql/ as the drills see it: the restored database is named drill_src, its chain is syncscript's."""
    root = tmp_path / "sql"
    (root / "drill_src").mkdir(parents=True)
    (root / "drill_src" / "migrations").symlink_to(DEFAULT_SQL_ROOT / SYNC / "migrations")
    (root / "drill_src" / "drills").symlink_to(DEFAULT_SQL_ROOT / SYNC / "drills")
    return root


def drill(repo, m, sql_root, **kw):
    root = work_root()
    report = run_drill(repo, m, sql_root=sql_root, on_report=lambda r: store_report(repo, r), work_root=root, **kw)
    assert leftovers(root) == ([], []), "a drill left a server or directory behind"
    return report


def failed(report):
    return {c.name: c.detail for c in report.checks if not c.passed}


def test_good_backup_passes_with_exact_row_counts(source, sql_root, tmp_path):
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    m = engine.create_logical(repo, params, db)
    r = drill(repo, m, sql_root)
    assert r.passed, failed(r)
    assert r.row_counts["public.users"] == 1500 and r.row_counts == m.row_counts
    names = {c.name for c in r.checks}
    assert {"checksum matches manifest", "restore finished without errors",
            "ledger newest migration matches manifest", "table public.tasks"} <= names
    assert any(n.startswith("verify 001_users_and_sessions") for n in names)
    assert any(n.startswith("drill referential_integrity") for n in names)
    assert set(r.phases) == {"fetch", "restore", "analyze", "checks", "teardown"}
    assert r.rto_seconds > 0 and r.rpo_seconds >= 0
    stored = history(repo, db)
    assert stored[0]["passed"] is True and stored[0]["backup_id"] == m.id
    assert list((tmp_path / "repo" / "drills" / db).glob("*.md"))
    # the newest drilled backup is what retention now protects
    assert engine.drill_passed_ids(repo, db) == {m.id}


def _rewrite(repo, m, data: bytes, **manifest_changes):
    (repo.root / m.object_key).write_bytes(data)
    new = replace(m, **manifest_changes)
    repo.put_bytes(manifest_key(m.database, m.id), new.to_json())
    return new


@pytest.mark.parametrize("case", ["flipped byte", "truncated dump", "manifest of another dump",
                                  "table dropped from dump", "row count off by one", "failing verify check"])
def test_bad_backups_fail_with_a_reason(case, source, sql_root, tmp_path):
    import hashlib
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    if case == "failing verify check":
        query(params, db, "DROP INDEX idx_users_email")
        try:
            m = engine.create_logical(repo, params, db)
        finally:
            query(params, db, "CREATE INDEX idx_users_email ON users(email)")
    else:
        m = engine.create_logical(repo, params, db)
    data = (repo.root / m.object_key).read_bytes()
    if case == "flipped byte":
        b = bytearray(data)
        b[len(b) // 3] ^= 0x01
        m = _rewrite(repo, m, bytes(b))
    elif case == "truncated dump":
        cut = data[: len(data) * 2 // 3]
        m = _rewrite(repo, m, cut, size_bytes=len(cut), sha256=hashlib.sha256(cut).hexdigest())
    elif case == "manifest of another dump":
        other = engine.create_logical(repo, params, "postgres")
        m = _rewrite(repo, m, data, sha256=other.sha256, size_bytes=other.size_bytes)
    elif case == "table dropped from dump":
        args = ["-h", "127.0.0.1", "-p", str(params["port"]), "-U", "postgres", "-d", db]
        partial = subprocess.run([str(pg_bindir() / "pg_dump"), "-Fc", "-T", "public.savings_goals", *args],
                                 env={**os.environ, "PGPASSFILE": params["passfile"]}, capture_output=True,
                                 check=True).stdout
        m = _rewrite(repo, m, partial, size_bytes=len(partial), sha256=hashlib.sha256(partial).hexdigest())
    elif case == "row count off by one":
        counts = dict(m.row_counts)
        counts["public.expenses"] += 1
        m = _rewrite(repo, m, data, row_counts=counts)
    r = drill(repo, m, sql_root)
    assert not r.passed and r.rto_seconds is None
    why = failed(r)
    expected = {
        "flipped byte": "checksum matches manifest",
        "truncated dump": "restore finished without errors",
        "manifest of another dump": "checksum matches manifest",
        "table dropped from dump": "table public.savings_goals",
        "row count off by one": "table public.expenses",
        "failing verify check": "verify 001_users_and_sessions: index idx_users_email",
    }[case]
    assert expected in why, why
    stored = history(repo, db)[0]
    assert stored["passed"] is False and any(c["name"] == expected and not c["passed"] for c in stored["checks"])


@pytest.mark.parametrize("how", ["ctrl-c to the process group", "SIGTERM to the task", "SIGHUP to the task"])
def test_ctrl_c_mid_restore_leaves_nothing(how, pg, tmp_path):
    p = pg.conninfo()
    p.pop("dbname")
    db = "drill_big"
    query(p, "postgres", f"DROP DATABASE IF EXISTS {db}")
    query(p, "postgres", f"CREATE DATABASE {db}")
    try:
        runner.migrate(Target(db, p, migrations_dir(DEFAULT_SQL_ROOT, SYNC)))
        seed_syncscript(p, db, 25000, seed=5)
        repo_dir = tmp_path / "repo"
        engine.create_logical(FileRepository(repo_dir), p, db)
        dsn = f"host=127.0.0.1 port={p['port']} user=postgres passfile={p['passfile']} dbname={db}"
        # A terminal's Ctrl-C: SIGINT to the whole foreground group, with SIGINT at its default
        # disposition (a backgrounded CI shell starts children with SIGINT ignored).
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "invoke"), "drill.run", "--dsn", dsn, "--repository",
                                 repo_dir.as_uri(), "--json", str(tmp_path / "report.json")],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            if "pg_restore" in ps and "pgops-drill-" in ps:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the drill never reached the restore phase")
        time.sleep(0.3)
        if how.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground process group
        elif how.startswith("SIGHUP"):
            os.kill(proc.pid, signal.SIGHUP)  # a dropped SSH session
        else:
            os.kill(proc.pid, signal.SIGTERM)  # a scheduler's stop: only the task is told
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert leftovers() == ([], [])
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["passed"] is False and "interrupted" in report["error"]
        stored = history(FileRepository(repo_dir), db)
        assert stored and stored[0]["error"] == report["error"]
    finally:
        query(p, "postgres", f"DROP DATABASE IF EXISTS {db}")


def test_physical_snapshot_drill_recovers_and_checks(pg, source, sql_root, tmp_path):
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    m = engine.create_physical(repo, params)
    assert m.kind == "snapshot" and m.database == "_cluster"
    r = drill(repo, m, sql_root, protected=[pg.conninfo()], passfile_for_physical=pg.layout.passfile)
    assert r.passed, (r.error, failed(r))
    assert r.row_counts[f"{db}.public.users"] == 1500
    assert any(c.name.startswith(f"{db}.verify 001_users_and_sessions") for c in r.checks)
    # the stack's server is still the one it was: the drill never touched it
    assert query(params, db, "SELECT count(*) FROM users") == [(1500,)]


def test_cli_drill_failure_exits_8_and_names_the_check(pg, source, tmp_path):
    params, db = source
    repo_dir = tmp_path / "repo"
    repo = FileRepository(repo_dir)
    m = engine.create_logical(repo, params, db)
    counts = dict(m.row_counts)
    counts["public.users"] -= 1
    repo.put_bytes(manifest_key(db, m.id), replace(m, row_counts=counts).to_json())
    p = pg.conninfo()
    dsn = f"host=127.0.0.1 port={p['port']} user=postgres passfile={p['passfile']} dbname={db}"
    res = subprocess.run([str(REPO / ".venv" / "bin" / "invoke"), "drill.run", "--dsn", dsn, "--repository",
                          repo_dir.as_uri(), "--json", str(tmp_path / "r.json")], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 8 and "table public.users" in res.stderr and "Traceback" not in res.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {"passed", "database", "backup_id", "rto_seconds", "rpo_seconds", "phases", "checks", "row_counts"} <= set(doc)
    hist = subprocess.run([str(REPO / ".venv" / "bin" / "invoke"), "drill.history", "--dsn", dsn, "--repository",
                           repo_dir.as_uri(), "--json"], cwd=REPO, capture_output=True, text=True)
    assert json.loads(hist.stdout)[0]["passed"] is False
    assert leftovers() == ([], [])


def test_target_dsn_drill_uses_a_temporary_database_and_never_the_stack(pg, source, sql_root, tmp_path):
    from .conftest import destroy, make_stack
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    m = engine.create_logical(repo, params, db)
    other = make_stack(0)
    other.up()
    try:
        r = drill(repo, m, sql_root, protected=[pg.conninfo()], target=other.conninfo())
        assert r.passed, (r.error, failed(r))
        assert "--target-dsn" in r.target and r.row_counts == m.row_counts
        p = other.conninfo()
        assert query({k: v for k, v in p.items() if k != "dbname"}, "postgres",
                     "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgops_drill_%'") == [(0,)]
        refused = drill(repo, m, sql_root, protected=[pg.conninfo()], target=pg.conninfo())
        assert not refused.passed and "one of the stack's servers" in refused.error
    finally:
        destroy(other)


def test_ctrl_c_landing_in_teardown_still_tears_down_and_reports(source, sql_root, tmp_path, monkeypatch):
    """The pending SIGINT can surface only once teardown has begun (pg_restore, in the same process
    group, died of it first): teardown must finish, the report say so, and Ctrl-C still win."""
    import ops.drills.runner as dr
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    m = engine.create_logical(repo, params, db)
    real = dr.destroy_scratch
    calls = []

    def interrupted_once(stack):
        calls.append(stack)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(stack)
    monkeypatch.setattr(dr, "destroy_scratch", interrupted_once)
    reports = []
    with pytest.raises(KeyboardInterrupt):
        run_drill(repo, m, sql_root=sql_root, on_report=reports.append, work_root=work_root())
    assert len(calls) == 2 and reports[0].error == "interrupted (Ctrl-C)"
    assert leftovers(work_root()) == ([], [])


# ---- drills killed with SIGKILL: stale targets found and removed (issue 9 §2) ----------------------

from ops.drills.runner import OWNER_FILE, _proc_start_time, cleanup_stale_drills  # noqa: E402

from .conftest import state_dir  # noqa: E402


def servers_under(root: Path) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(str(root) + "/"):
                out.append(int(entry.name))
        except OSError:
            continue
    return out


def test_a_drill_killed_with_sigkill_is_cleaned_up_by_the_next_drill(source, sql_root, tmp_path):
    import shutil
    import sys
    params, db = source
    repo = FileRepository(tmp_path / "repo")
    m = engine.create_logical(repo, params, db)
    work_root = state_dir()  # drills in their own root: never touch another test's /tmp/pgops-drill-*
    try:
        # a drill that hangs in the restore phase, its scratch server (512 MB shared_buffers) up
        script = ("import sys, time\nfrom pathlib import Path\nfrom ops.backups import engine\n"
                  "from ops.backups.repository import FileRepository\nfrom ops.drills import runner\n"
                  "runner._restore = lambda *a, **k: time.sleep(3600)\n"
                  "repo = FileRepository(Path(sys.argv[1]))\n"
                  "runner.run_drill(repo, engine.find_backup(repo, sys.argv[2]), sql_root=Path(sys.argv[3]), "
                  "work_root=Path(sys.argv[4]))\n")
        proc = subprocess.Popen([sys.executable, "-c", script, str(repo.root), m.id, str(sql_root), str(work_root)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        def ready():  # the scratch postmaster accepts connections (initdb's bootstrap backend writes a lock file too)
            return any([line.strip() for line in pid.read_text().splitlines()[7:8]] == ["ready"]
                       for pid in work_root.glob("pgops-drill-*/target/**/postmaster.pid"))
        while not ready() or not servers_under(work_root):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.1)
        time.sleep(1)
        proc.kill()  # kill -9 the drill process alone: no teardown runs
        proc.wait()
        time.sleep(0.5)
        stale_dirs = list(work_root.glob("pgops-drill-*"))
        assert len(stale_dirs) == 1 and servers_under(work_root), "the kill left nothing to clean up"
        # the next drill finds the stale target first, stops its server and removes it
        said = []
        r = run_drill(repo, m, sql_root=sql_root, work_root=work_root, progress=said.append)
        assert r.passed, failed(r)
        assert servers_under(work_root) == [] and list(work_root.iterdir()) == []
        assert any(str(stale_dirs[0]) in s and f"owner pid {proc.pid} is gone" in s for s in said), said
    finally:
        for pid in servers_under(work_root):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(work_root, ignore_errors=True)


def test_cleanup_judges_owners_by_pid_and_start_time(tmp_path):
    def drill_dir(name, owner):
        d = tmp_path / f"pgops-drill-{name}"
        d.mkdir()
        if owner is not None:
            (d / OWNER_FILE).write_text(json.dumps(owner))
        return d
    me = {"pid": os.getpid(), "start_time": _proc_start_time(os.getpid()),
          "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip()}
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = drill_dir("alive", me)
    reused = drill_dir("reused", {**me, "start_time": me["start_time"] - 1})  # same pid, another process
    gone = drill_dir("gone", {**me, "pid": dead.pid})
    rebooted = drill_dir("rebooted", {**me, "boot_id": "another-boot"})
    kept = drill_dir("kept", {"kept": True})  # --keep-target: the user removes it
    young = drill_dir("young", None)  # no record yet (or an older pgops): spared for an hour
    old = drill_dir("old", None)
    t = time.time() - 7200
    os.utime(old, (t, t))
    (tmp_path / "pgops-drill-file").write_text("not a directory")
    removed = {s.path.name: s for s in cleanup_stale_drills(tmp_path)}
    assert set(removed) == {"pgops-drill-reused", "pgops-drill-gone", "pgops-drill-rebooted", "pgops-drill-old"}
    assert "another process" in removed["pgops-drill-reused"].reason
    assert removed["pgops-drill-gone"].owner_pid == dead.pid
    assert alive.exists() and kept.exists() and young.exists()
    assert not reused.exists() and not gone.exists() and not rebooted.exists() and not old.exists()
