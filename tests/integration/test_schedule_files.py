"""Files other users can steer, the schedule half (issue 20 §3): every value ``schedule.install``
writes into a systemd unit or a cron.d file is plain or refused, and ``schedule.run``'s lock lives
under the state directory (0700 folder, 0600 file, never a symlink followed).

The install property runs ``invoke schedule.install`` in-process (Invoke's own ``Program``, as the
CLI matrix does) for every value written into a file — ``--user``, ``--stack``, ``--sql-root`` and
the ``PGOPS_*`` variables passed on — × hostile text (a newline, ``;``, ``$()``, a backtick, ``#``,
``%`` which cron reads as a newline and systemd as a specifier, whitespace, quotes, non-ASCII, empty,
and any text hypothesis draws) × both targets × with and without ``--dry-run``. Each run either
refuses (exit 2, one paragraph, no Traceback, nothing written or printed) or renders exactly the
text a plain sentinel value renders, with the value where the sentinel was — same lines, same
entries — and a value no reader of the file (cron, sh, systemd) treats as syntax.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from .conftest import REPO
from .test_option_matrix import run_cli

pytestmark = pytest.mark.integration

HOSTILE = ("pgops\n* * * * * root /tmp/evil.sh\n#", "root; rm -rf /", "a;b", "$(id)", "`id`", "#c", "50%", "%h",
           "a b", "'q'", '"q"', "a\\b", "ünïcødé", "値", "a\rb", "a\u2028b", "", " ", "-x", "a\tb", "~", "*")
#: what a file's readers treat as syntax somewhere (crontab(5), systemd.syntax(7), systemd.unit(5)
#: specifiers, sh): a value holding any of these must never be written
SYNTAX = set("%$;&|`'\"\\<>(){}[]*?!~# \t\n\r") | {chr(c) for c in range(32)} | {"\x7f"}
#: option or variable → the plain sentinel a baseline run uses for it
SENTINEL = {"user": "nobody", "stack": "sentinelstack", "sql-root": "sentinelroot",
            "PGOPS_REPOSITORY": "file:///srv/sentinelrepo", "PGOPS_STATE_DIR": "/srv/sentinelstate",
            "PGOPS_COPY_TO": "file:///srv/sentinelcopy", "PGOPS_KMS_KEY_ID": "sentinelkey",
            "PGOPS_COPY_KMS_KEY_ID": "sentinelcopykey", "PGOPS_PG_BINDIR": "/srv/sentinelbin",
            "PGOPS_SCHEDULE_TZ": "America/New_York", "PGOPS_LOG_LEVEL": "INFO"}
WRITTEN = tuple(SENTINEL)


@contextlib.contextmanager
def environment(extra: dict[str, str]):
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("PGOPS_")]:
        del os.environ[k]
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sql_root(base: Path, name: str) -> Path:
    """A copy of the checkout's ``sql/`` in a folder called ``name`` (a '/' in it becomes '_')."""
    root = base / ("r-" + name.replace("/", "_").replace("\x00", ""))
    if not root.exists():
        root.mkdir(parents=True)
        for db in ("futuresync", "advent"):
            shutil.copytree(REPO / "sql" / db, root / db)
    return root


def install(base: Path, where: str, value: str, target: str, dry_run: bool) -> tuple[int, str, str, str, list[str]]:
    """Run ``schedule.install`` with ``value`` in ``where``: (exit code, stdout, stderr, the rendered
    text — the dry run's stdout or the files written, in name order —, the file names written)."""
    out_dir = base / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    args = ["schedule.install", "--target", target, "--dir", str(out_dir)]
    opts = {"user": "nobody"}
    env = {}
    if where.startswith("PGOPS_"):
        env[where] = value
    elif where == "sql-root":
        opts[where] = str(sql_root(base, value)) if value else ""
    else:
        opts[where] = value
    for k, v in opts.items():
        args.append(f"--{k}={v}")
    if dry_run:
        args.append("--dry-run")
    with environment(env):
        code, out, err, crash = run_cli(args)
    assert crash is None, f"{args!r}: uncaught {type(crash).__name__}: {crash}"
    names = sorted(p.name for p in out_dir.iterdir())
    text = out if dry_run else "".join((out_dir / n).read_text() for n in names)
    return code, out, err, text, names


def check(base: Path, where: str, value: str, target: str, dry_run: bool) -> None:
    code, out, err, text, names = install(base, where, value, target, dry_run)
    shown = f"{where}={value!r} --target {target} dry_run={dry_run} → exit {code}\nstdout: {out[-600:]}\nstderr: {err[-800:]}"
    assert "Traceback" not in out + err, shown
    if code != 0:
        assert code == 2, shown
        assert err.count("error:") == 1 and "\n\n" not in err.strip(), shown
        assert names == [] and out == "", f"a refused value still wrote or printed units:\n{shown}"
        if "\n" in value:
            assert value not in err, shown
        return
    # accepted: the text a sentinel renders, with the value exactly where the sentinel was
    if value == "" and where != "user":  # an empty --stack / --sql-root / variable means the default
        _, _, _, expected, expected_names = install(base, "user", "nobody", target, dry_run)
    else:
        assert not (set(value) & SYNTAX) and value.isascii() and value, f"a value with syntax in it was written:\n{shown}"
        _, _, _, baseline, expected_names = install(base, where, SENTINEL[where], target, dry_run)
        expected = baseline.replace(SENTINEL[where], value.replace("/", "_") if where == "sql-root" else value)
    assert names == expected_names, shown
    assert text == expected and len(text.splitlines()) == len(expected.splitlines()), shown


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("install")


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
@pytest.mark.parametrize("target", ["cron", "systemd"])
@pytest.mark.parametrize("where", WRITTEN)
def test_every_written_value_with_hostile_text_is_refused_or_plain(base, where, target, dry_run):
    for value in HOSTILE:
        check(base, where, value, target, dry_run)


@settings(max_examples=120, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(WRITTEN), target=st.sampled_from(["cron", "systemd"]), dry_run=st.booleans(),
       value=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=16),
                       st.text(alphabet="abz09_./:,=@+-%$;#` \n", max_size=10)))
def test_any_text_in_any_written_value_is_refused_or_plain(base, where, target, dry_run, value):
    value = value.replace("\x00", "")  # argv and the environment cannot hold a NUL byte
    check(base, where, value, target, dry_run)


@pytest.mark.parametrize("user", ["pgops-no-such-user", "nosuchuser42"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
def test_a_user_that_does_not_exist_is_refused(base, user, dry_run):
    out_dir = base / "nouser"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    args = ["schedule.install", "--target", "cron", "--dir", str(out_dir), f"--user={user}"] + (["--dry-run"] if dry_run else [])
    with environment({}):
        code, out, err, crash = run_cli(args)
    assert crash is None and code == 2 and f"--user {user}: no such user" in err and out == "", (code, out, err)
    assert list(out_dir.iterdir()) == []
    for ok in ("nobody", "root"):  # an existing one is written as the cron entries' user field
        with environment({}):
            code, out, err, _ = run_cli(["schedule.install", "--target", "cron", "--dry-run", f"--user={ok}"])
        entries = [line.split(None, 6) for line in out.splitlines()
                   if line and not line.startswith("#") and "=" not in line.split()[0]]
        assert code == 0 and entries and all(e[5] == ok for e in entries), (code, err)


# ---- schedule.run's lock ---------------------------------------------------------------------------

NOBODY = pwd.getpwnam("nobody")


def run_env(tmp_path: Path) -> dict[str, str]:
    """A state directory with no stack, a dead port and no PostgreSQL binaries: a job's step starts
    and fails fast (nothing to prune), which is all a lock test needs to see."""
    sql = tmp_path / "sql"
    if not sql.exists():
        sql.mkdir()
        shutil.copytree(REPO / "sql" / "advent", sql / "advent")
    from .conftest import free_base_port
    return {"PGOPS_STATE_DIR": str(tmp_path / "state"), "PGOPS_LOCAL_PORT": str(free_base_port(1)),
            "PGOPS_PG_BINDIR": str(tmp_path / "no-postgresql-bin")}


def schedule_run(tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    from .conftest import invoke
    return invoke(["schedule.run", "prune-daily", "--sql-root", str(tmp_path / "sql")], env, timeout=120)


def started(res: subprocess.CompletedProcess) -> bool:
    """Whether the job got past its lock and started its first step."""
    return '"event": "step-start"' in res.stderr


def test_a_lock_taken_by_another_user_in_tmp_does_not_stop_the_job(tmp_path):
    env = run_env(tmp_path)
    import hashlib
    import tempfile
    # the name main used: /tmp/pgops-schedule-<sha256(state dir \0 stack)[:12]>-<job>.lock, predictable by anyone
    tag = hashlib.sha256(f"{Path(env['PGOPS_STATE_DIR']).resolve()}\0local".encode()).hexdigest()[:12]
    squatted = Path(tempfile.gettempdir()) / f"pgops-schedule-{tag}-prune-daily.lock"
    squatted.unlink(missing_ok=True)
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c", "import fcntl, sys, time\n"
         f"f = open({str(squatted)!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)"],
        user=NOBODY.pw_uid, group=NOBODY.pw_gid, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert squatted.stat().st_uid == NOBODY.pw_uid
        res = schedule_run(tmp_path, env)
        assert "already running" not in res.stderr and started(res), res.stderr[-2000:]
        assert "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()
        squatted.unlink(missing_ok=True)
    locks = Path(env["PGOPS_STATE_DIR"]) / "locks"
    assert stat.S_IMODE(locks.lstat().st_mode) == 0o700
    files = list(locks.iterdir())
    assert len(files) == 1 and files[0].name.endswith("-prune-daily.lock")
    assert stat.S_IMODE(files[0].lstat().st_mode) == 0o600 and stat.S_ISREG(files[0].lstat().st_mode)
    # the lock still serialises runs: held, a second run does nothing and exits 13
    from ops.settings import from_options
    from ops.tasks.schedule import _lock_path
    assert _lock_path(from_options(env), "prune-daily") == files[0]
    with open(files[0], "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        again = schedule_run(tmp_path, env)
    assert again.returncode == 13 and "already running" in again.stderr and not started(again)


@pytest.mark.parametrize("planted", ["missing-target", "existing-target", "locks-folder"])
def test_a_symlink_planted_at_the_lock_is_refused_not_followed(tmp_path, planted, request):
    env = run_env(tmp_path)
    from ops.settings import from_options
    from ops.tasks.schedule import _lock_path
    lock = _lock_path(from_options(env), "prune-daily")
    victim = tmp_path / "victim"
    if planted == "locks-folder":  # the folder the issue names: <state dir>/locks
        victim.mkdir()
        locks = Path(env["PGOPS_STATE_DIR"]) / "locks"
        locks.parent.mkdir(parents=True)
        locks.symlink_to(victim)
    else:  # wherever the implementation locks (on main: a name in /tmp)
        lock.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if planted == "existing-target":
            victim.write_text("not a lock\n")
            os.chmod(victim, 0o644)
        lock.symlink_to(victim)
        request.addfinalizer(lambda: lock.unlink(missing_ok=True))
    before = (victim.exists(), victim.read_text() if victim.is_file() else None,
              sorted(victim.iterdir()) if victim.is_dir() else None)
    res = schedule_run(tmp_path, env)
    assert res.returncode == 13 and not started(res), res.stderr[-2000:]
    assert "symbolic link" in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.count("error:") == 1 and "\n\n" not in res.stderr.strip()
    after = (victim.exists(), victim.read_text() if victim.is_file() else None,
             sorted(victim.iterdir()) if victim.is_dir() else None)
    assert after == before
    if planted == "existing-target":
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_lock_folder_open_to_others_is_refused_and_left_alone(tmp_path):
    env = run_env(tmp_path)
    locks = Path(env["PGOPS_STATE_DIR"]) / "locks"
    locks.mkdir(parents=True)
    os.chmod(locks, 0o777)
    res = schedule_run(tmp_path, env)
    assert res.returncode == 13 and not started(res) and "chmod 700" in res.stderr, res.stderr[-2000:]
    assert stat.S_IMODE(locks.stat().st_mode) == 0o777 and list(locks.iterdir()) == []
