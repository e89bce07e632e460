"""Backups on real PostgreSQL into both repositories: a directory, and S3 through a moto server
(real HTTP, so the multipart streaming path runs)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from psycopg import sql

from ops import errors
from ops.backups import engine
from ops.backups.repository import FileRepository, S3Repository
from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir
from ops.migrations import runner
from ops.migrations.runner import Target
from ops.retention import RetentionPolicy
from ops.seeds import load_seeder

from .conftest import REPO, invoke, query

SYNC_SEED = load_seeder(DEFAULT_SQL_ROOT, "syncscript")
TABLES, seed_syncscript = SYNC_SEED.TABLES, SYNC_SEED.generate



@pytest.fixture
def s3_env(moto_endpoint, monkeypatch):
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(params=["file", "s3"])
def repo(request, tmp_path):
    if request.param == "file":
        return FileRepository(tmp_path / "repo")
    request.getfixturevalue("s3_env")
    bucket = "b" + os.urandom(4).hex()
    boto3.client("s3").create_bucket(Bucket=bucket)
    return S3Repository(bucket, "pgops/backups-test", part_size=5 * 1024 * 1024)  # S3's minimum part


@pytest.fixture
def seeded(params, dbname):
    t = Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, "syncscript"))
    runner.migrate(t)
    seed_syncscript(params, dbname, 4000, seed=3)  # a dump of 5-10 MiB: two S3 parts
    return dbname


def table_digest(params, db):
    return {t: query(params, db, sql.SQL("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                                         "FROM {} x").format(sql.Identifier(t)))[0] for t in TABLES}


def new_db(params, name):
    query(params, "postgres", f'CREATE DATABASE "{name}"')
    return name


def test_create_list_verify_restore_round_trip(repo, params, seeded):
    m = engine.create_logical(repo, params, seeded)
    assert m.ledger_version == 6 and m.row_counts["public.users"] == 4000
    assert m.row_counts["pgops.migrations"] == 6
    assert [b.id for b in engine.list_backups(repo, seeded)] == [m.id]
    assert all(ok for _, ok, _ in engine.verify_backup(repo, m))
    if isinstance(repo, S3Repository):
        head = repo.s3.head_object(Bucket=repo.bucket, Key=repo._key(m.object_key))
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ETag"].strip('"').endswith("-2")  # streamed as a two-part multipart upload
    target = new_db(params, seeded + "_r")
    try:
        engine.restore(repo, m, params, target)
        assert table_digest(params, target) == table_digest(params, seeded)
        with pytest.raises(errors.RestoreRefused):  # not empty any more
            engine.restore(repo, m, params, target)
        engine.restore(repo, m, params, target, clean=True)
        assert table_digest(params, target) == table_digest(params, seeded)
    finally:
        query(params, "postgres", f'DROP DATABASE "{target}"')


def test_flipped_byte_fails_verify_and_restore(repo, params, seeded):
    m = engine.create_logical(repo, params, seeded)
    data = bytearray(repo.get_bytes(m.object_key))
    data[len(data) // 2] ^= 0xFF
    if isinstance(repo, FileRepository):
        (repo.root / m.object_key).write_bytes(bytes(data))
    else:
        repo.s3.put_object(Bucket=repo.bucket, Key=repo._key(m.object_key), Body=bytes(data))
    rows = {c: ok for c, ok, _ in engine.verify_backup(repo, m)}
    assert rows["sha256 matches manifest"] is False and rows["size matches manifest"] is True
    target = new_db(params, seeded + "_x")
    try:
        with pytest.raises(errors.VerifyMismatch):
            engine.restore(repo, m, params, target)
        assert query(params, target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    finally:
        query(params, "postgres", f'DROP DATABASE "{target}"')


def test_prune_deletes_only_the_verdict_manifest_first(repo, params, dbname):
    query(params, dbname, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    base = datetime.now(timezone.utc) - timedelta(days=10)
    made = [engine.create_logical(repo, params, dbname, now=lambda d=d: base + timedelta(days=d)) for d in range(4)]
    now = base + timedelta(days=5)
    dry = engine.prune(repo, dbname, policy=RetentionPolicy(keep_daily=2), now=now)
    assert sorted(dry.deleted) == sorted(m.id for m in made[:2]) and not dry.applied
    assert len(engine.list_backups(repo, dbname)) == 4  # dry run deleted nothing
    done = engine.prune(repo, dbname, policy=RetentionPolicy(keep_daily=2), now=now, apply=True)
    assert sorted(done.deleted) == sorted(m.id for m in made[:2])
    assert [m.id for m in engine.list_backups(repo, dbname)] == [made[3].id, made[2].id]
    assert not repo.list(f"backups/{dbname}/{made[0].id}/")
    assert not repo.exists("locks/prune.lock")


def test_abandoned_multipart_upload_is_aborted_by_prune(s3_env, params, dbname):
    bucket = "b" + os.urandom(4).hex()
    boto3.client("s3").create_bucket(Bucket=bucket)
    repo = S3Repository(bucket, "p")
    query(params, dbname, "CREATE TABLE t (id int)")
    engine.create_logical(repo, params, dbname)
    repo.s3.create_multipart_upload(Bucket=bucket, Key=f"p/backups/{dbname}/x/dump.pgdump")
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    assert engine.prune(repo, dbname, now=later).aborted_uploads  # dry run lists it
    engine.prune(repo, dbname, now=later, apply=True)
    assert repo.pending_uploads(f"backups/{dbname}/") == []


def test_kill_during_backup_leaves_nothing_visible_and_prune_removes_the_orphan(pg, params, seeded, tmp_path):
    repo_dir = tmp_path / "repo"
    p = pg.conninfo()
    dsn = f"host=127.0.0.1 port={p['port']} user=postgres passfile={p['passfile']} dbname={seeded}"
    # slow the dump down so it is surely mid-stream when killed: a pipe nobody reads fast
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "invoke") if (REPO / ".venv").exists() else "invoke",
                             "backup.create", "--dsn", dsn, "--repository", repo_dir.as_uri()],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(repo_dir.rglob("*.partial")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the task and its pg_dump
    proc.wait()
    repo = FileRepository(repo_dir)
    partial = list(repo_dir.rglob("*.partial"))
    assert partial, "the backup finished before it could be killed"
    assert engine.list_backups(repo, seeded) == []  # no manifest, no backup
    ok = engine.create_logical(repo, params, seeded)  # a good one, so prune has a listing
    assert engine.prune(repo, seeded, apply=True).orphans == []  # too young to be an orphan yet
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    report = engine.prune(repo, seeded, now=later, apply=True)
    assert [k.rsplit("/", 1)[1] for k in report.orphans] == ["dump.pgdump.partial"]
    assert not list(repo_dir.rglob("*.partial"))
    assert [m.id for m in engine.list_backups(repo, seeded)] == [ok.id]


def test_cli_with_dsn_on_an_unmanaged_database(pg, params, dbname, tmp_path):
    query(params, dbname, "CREATE TABLE notes (id serial PRIMARY KEY, body text); "
                          "INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 50) g")
    p = pg.conninfo()
    dsn = f"host=127.0.0.1 port={p['port']} user=postgres passfile={p['passfile']} dbname={dbname}"
    repo = (tmp_path / "r").as_uri()
    made = invoke(["backup.create", "--dsn", dsn, "--repository", repo, "--json"])
    assert made.returncode == 0, made.stderr
    listed = json.loads(invoke(["backup.list", "--dsn", dsn, "--repository", repo, "--json"]).stdout)
    assert [b["database"] for b in listed] == [dbname]
    assert {"id", "database", "kind", "created_at", "size_bytes", "sha256", "location"} <= set(listed[0])
    bid = listed[0]["id"]
    assert invoke(["backup.verify", bid, "--dsn", dsn, "--repository", repo]).returncode == 0
    shown = json.loads(invoke(["backup.show", bid, "--dsn", dsn, "--repository", repo]).stdout)
    assert shown["row_counts"]["public.notes"] == 50
    target = new_db(params, dbname + "_t")
    try:
        tdsn = dsn.rsplit("dbname=", 1)[0] + f"dbname={target}"
        res = invoke(["backup.restore", bid, "--dsn", tdsn, "--repository", repo])
        assert res.returncode == 0, res.stderr
        assert query(params, target, "SELECT count(*) FROM notes") == [(50,)]
        again = invoke(["backup.restore", bid, "--dsn", tdsn, "--repository", repo])
        assert again.returncode == 7 and "not empty" in again.stderr and "--clean" in again.stderr
    finally:
        query(params, "postgres", f'DROP DATABASE "{target}"')
    pruned = invoke(["backup.prune", "--dsn", dsn, "--repository", repo])
    assert pruned.returncode == 0 and "dry run" in pruned.stdout and "keep" in pruned.stdout  # table wraps reasons
    verdicts = json.loads(invoke(["backup.prune", "--dsn", dsn, "--repository", repo, "--json"]).stdout)
    assert [v["keep"] for v in verdicts[0]["verdicts"]] == [True] and verdicts[0]["applied"] is False
    assert "newest backup (safety floor)" in verdicts[0]["verdicts"][0]["reasons"]
    missing = invoke(["backup.verify", "nope", "--dsn", dsn, "--repository", repo])
    assert missing.returncode == 1 and "No backup 'nope'" in missing.stderr


def test_restore_over_the_stacks_primary_needs_the_flag(pg, params, dbname, tmp_path):
    repo = FileRepository(tmp_path / "r")
    query(params, dbname, "CREATE TABLE t (id int)")
    m = engine.create_logical(repo, params, dbname)
    query(params, dbname, "DROP TABLE t")
    with pytest.raises(errors.RestoreRefused) as info:
        engine.restore(repo, m, params, dbname, protected=params)
    assert "own primary" in str(info.value)
    gone = {**params, "port": 1, "connect_timeout": 2}  # a primary that does not answer: refused, not ignored
    with pytest.raises(errors.RestoreRefused, match="cannot rule out"):
        engine.restore(repo, m, params, dbname, protected=gone)
    engine.restore(repo, m, params, dbname, protected=params, yes_overwrite_primary=True)


# ---- retention through the engine on a file repository (issue 9 §3) -------------------------------

from ops.backups.manifest import Manifest, backup_prefix, manifest_key  # noqa: E402
from ops.errors import OpsError  # noqa: E402
from ops.errors import FutureBackup, RetentionRefused  # noqa: E402

NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


def fake_backup(repo, database, backup_id, created_at, *, manifest: bytes | None = None):
    """A backup as the engine writes it (object, then manifest), with any created_at text."""
    key = backup_prefix(database, backup_id) + "dump.pgdump"
    repo.put_bytes(key, b"dump of " + backup_id.encode())
    m = Manifest(backup_id, database, "logical", created_at, created_at, 1.0, 10, "0" * 64, key, repo.location(key),
                 "15.0", "pg_dump 15", None, "0", "pg_dump custom")
    repo.put_bytes(manifest_key(database, backup_id), m.to_json() if manifest is None else manifest)
    return backup_id


def age(key_path, hours):
    t = (datetime.now(timezone.utc) - timedelta(hours=hours)).timestamp()
    os.utime(key_path, (t, t))


def test_a_skewed_manifest_stops_the_prune_of_its_database_and_deletes_nothing(tmp_path):
    repo = FileRepository(tmp_path / "repo")
    for d in (3, 2):
        fake_backup(repo, "app", f"old{d}", (NOW - timedelta(days=d)).isoformat())
    fake_backup(repo, "app", "true-newest", (NOW - timedelta(hours=2)).isoformat())
    fake_backup(repo, "app", "skewed", (NOW + timedelta(hours=1, minutes=30)).isoformat())
    before = sorted(o.key for o in repo.list("backups/"))
    with pytest.raises(FutureBackup) as info:  # a plain `backup.prune --apply`
        engine.prune(repo, "app", now=NOW, apply=True)
    assert info.value.exit_code == 6 and "skewed" in str(info.value) and "'app'" in str(info.value)
    assert sorted(o.key for o in repo.list("backups/")) == before
    assert not repo.exists("locks/prune.lock")


def test_one_database_problem_never_stops_the_others(tmp_path):
    now = datetime.now(timezone.utc)
    repo = FileRepository(tmp_path / "repo")
    for d in range(4):  # "good": keep_last=1 deletes the three older ones
        fake_backup(repo, "good", f"g{d}", (now - timedelta(days=d + 1)).isoformat())
    fake_backup(repo, "skew", "s0", (now - timedelta(days=1)).isoformat())
    fake_backup(repo, "skew", "s-future", (now + timedelta(days=1)).isoformat())
    fake_backup(repo, "bad", "b-ok", (now - timedelta(days=2)).isoformat())
    fake_backup(repo, "bad", "b-naive", "2026-11-20T12:00:00")
    fake_backup(repo, "bad", "b-garbage", "not a time")
    fake_backup(repo, "bad", "b-json", "", manifest=b"{ truncated")
    orphan = backup_prefix("orph", "o1") + "dump.pgdump.partial"  # an interrupted first backup
    repo.put_bytes(orphan, b"half a dump")
    age(repo.root / orphan, 48)
    # listing and finding never crash on the invalid ones
    listing = engine.scan_backups(repo)
    assert {b.id for b in listing.invalid} == {"b-naive", "b-garbage", "b-json"}
    assert [m.id for m in engine.list_backups(repo, "bad")] == ["b-ok"]
    assert engine.find_backup(repo, "g0").id == "g0"
    with pytest.raises(OpsError, match="b-naive.*invalid manifest.*no UTC offset"):
        engine.find_backup(repo, "b-naive")
    with pytest.raises(errors.PruneIncomplete) as info:
        engine.prune_all(repo, policy=RetentionPolicy(keep_last=1), apply=True, force=True, now=now)
    err = info.value
    assert err.exit_code == 6 and set(err.failures) == {"skew"} and isinstance(err.failures["skew"], FutureBackup)
    assert "[skew]" in str(err) and "s-future" in str(err)
    reports = {r.database: r for r in err.reports}
    assert set(reports) == {"good", "bad", "orph"}
    assert sorted(reports["good"].deleted) == ["g1", "g2", "g3"]
    assert [m.id for m in engine.list_backups(repo, "good")] == ["g0"]
    assert {b.id for b in reports["bad"].invalid} == {"b-naive", "b-garbage", "b-json"}
    assert reports["bad"].deleted == []  # invalid backups are never deleted automatically
    assert all(repo.exists(manifest_key("bad", b)) for b in ("b-naive", "b-garbage", "b-json", "b-ok"))
    assert reports["orph"].orphans == [orphan] and not repo.exists(orphan)  # swept without any manifest
    assert len(engine.list_backups(repo, "skew")) == 2  # untouched


def test_prune_refuses_an_empty_or_mistyped_repository(tmp_path):
    empty = FileRepository(tmp_path / "mistyped")
    with pytest.raises(errors.EmptyRepository) as info:
        engine.prune_all(empty, apply=True)
    assert isinstance(info.value, RetentionRefused) and info.value.exit_code == 6
    assert empty.url in str(info.value) and "invoke backup.list --repository" in str(info.value)
    repo = FileRepository(tmp_path / "repo")
    fake_backup(repo, "app", "a1", (NOW - timedelta(days=1)).isoformat())
    with pytest.raises(errors.EmptyRepository) as info:  # a database the repository has nothing of
        engine.prune_all(repo, ["ap"], now=NOW, apply=True)
    assert "'ap'" in str(info.value)
    assert [r.database for r in engine.prune_all(repo, now=NOW)] == ["app"]


# ---- private objects, file URLs, the user's libpq environment (issue 9 §4/§5) ----------------------

def modes(root):
    return {p.relative_to(root).as_posix() or ".": p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_file_repository_objects_and_folders_are_private_from_the_first_byte(params, dbname, tmp_path):
    from ops.backups.repository import open_repository
    query(params, dbname, "CREATE TABLE secret (v text); INSERT INTO secret VALUES ('hash')")
    old = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        repo = open_repository((tmp_path / "deep" / "repo").as_uri())
        seen = []
        m = engine.create_logical(repo, params, dbname)
        import io
        partial_repo = FileRepository(tmp_path / "p")
        stream = io.BytesIO(b"x" * 10)

        class Watch(io.RawIOBase):  # record the partial object's mode after its first byte is written
            calls = 0

            def read(self, n=-1):
                Watch.calls += 1
                if Watch.calls == 2:
                    seen.extend(p.stat().st_mode & 0o777 for p in (tmp_path / "p").rglob("*.partial"))
                return stream.read(4)
        partial_repo.put_stream("backups/a/b/dump.pgdump", Watch())
    finally:
        os.umask(old)
    assert seen == [0o600]
    got = modes(tmp_path / "deep")
    # the root's missing parents are search-only (a state directory above it must stay reachable by the
    # server user, issue 19 §1); the repository itself and everything in it is private
    assert got["."] == 0o711 and got["repo"] == 0o700
    files = {k: v for k, v in got.items() if (tmp_path / "deep" / k).is_file()}
    assert f"repo/{m.object_key}" in files and set(files.values()) == {0o600}
    assert {v for k, v in got.items() if k not in files and k != "."} == {0o700}
    assert set(modes(tmp_path / "p").values()) <= {0o600, 0o700}


def test_a_file_url_with_a_host_part_is_refused(tmp_path):
    from ops.backups.repository import open_repository
    from ops.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        open_repository("file://tmp/x")
    assert info.value.exit_code == 2 and "file://tmp/x" in str(info.value) and "file:///tmp/x" in str(info.value)
    assert not os.path.exists("/x")


@pytest.fixture
def passfile_only(pg, params, monkeypatch):
    """Connection parameters with no password and no passfile: the password is only in $PGPASSFILE."""
    bare = {k: v for k, v in params.items() if k != "passfile"}
    monkeypatch.setenv("PGPASSFILE", str(pg.layout.passfile))
    return bare


def test_client_tools_see_the_users_libpq_environment(passfile_only, dbname, tmp_path, sql_root_for):
    from ops.drills.runner import run_drill
    query(passfile_only, dbname, "CREATE TABLE notes (id int); INSERT INTO notes SELECT generate_series(1, 30)")
    repo = FileRepository(tmp_path / "r")
    m = engine.create_logical(repo, passfile_only, dbname)  # psycopg counts, pg_dump dumps: both via PGPASSFILE
    assert m.row_counts == {"public.notes": 30}
    target = new_db(passfile_only, dbname + "_t")
    try:
        engine.restore(repo, m, passfile_only, target)
        assert query(passfile_only, target, "SELECT count(*) FROM notes") == [(30,)]
    finally:
        query(passfile_only, "postgres", f'DROP DATABASE "{target}"')
    r = run_drill(repo, m, sql_root=sql_root_for(dbname), target=dict(passfile_only, dbname="postgres"))
    assert r.passed, [c for c in r.checks if not c.passed] or r.error


@pytest.fixture
def sql_root_for(tmp_path):
    def make(db):
        root = tmp_path / "sql"
        (root / db).mkdir(parents=True, exist_ok=True)
        return root
    return make


def test_no_secret_reaches_a_client_tools_argv(pg, params, dbname, tmp_path, monkeypatch, sql_root_for):
    from ops.drills.runner import run_drill
    password = pg.layout.passfile.read_text().strip().rsplit(":", 1)[1]
    secret = {k: v for k, v in params.items() if k != "passfile"}
    secret.update(password=password, sslpassword="ssl-key-secret-42")
    argvs, envs = [], []
    real = subprocess.Popen

    class Spy(real):  # records what every child process (pg_dump, pg_restore, vacuumdb, ...) is given
        def __init__(self, args, *a, **kw):
            argvs.append([str(x) for x in args])
            envs.append(kw.get("env") or {})
            super().__init__(args, *a, **kw)
    monkeypatch.setattr(subprocess, "Popen", Spy)
    query(params, dbname, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    repo = FileRepository(tmp_path / "r")
    m = engine.create_logical(repo, secret, dbname)
    target = new_db(params, dbname + "_t")
    try:
        engine.restore(repo, m, secret, target)
    finally:
        query(params, "postgres", f'DROP DATABASE "{target}"')
    r = run_drill(repo, m, sql_root=sql_root_for(dbname), target=dict(secret, dbname="postgres"))
    assert r.passed, r.error
    tools = [a for a in argvs if os.path.basename(a[0]) in ("pg_dump", "pg_restore", "vacuumdb")]
    assert {os.path.basename(a[0]) for a in tools} == {"pg_dump", "pg_restore", "vacuumdb"}
    for argv in argvs:
        joined = " ".join(argv)
        assert password not in joined and "ssl-key-secret-42" not in joined
        assert "password=" not in joined  # neither password= nor sslpassword=
    assert any(e.get("PGPASSWORD") == password for e in envs)
    # the sslpassword went through a private service file, removed afterwards
    files = [e["PGSERVICEFILE"] for e in envs if e.get("PGSERVICEFILE")]
    assert files and not any(os.path.exists(f) for f in files)


# ---- faults during backup.create (issue 9 §2): one clear error, nothing left behind ---------------

def big_table(params, db, rows=400_000):
    """~10 MiB of poorly compressible rows: a dump that spans two 5 MiB S3 parts and outlasts a pipe."""
    query(params, db, "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v "
                      f"FROM generate_series(1, {rows}) g")


def objects(repo, database):
    return [o.key for o in repo.list(f"backups/{database}/")]


def test_primary_crash_mid_dump_is_a_clear_error_with_nothing_left(tmp_path):
    from ops.pgtools import pg_bindir, run_server_cmd

    from .conftest import destroy, make_stack
    stack = make_stack(0)
    stack.up()
    try:
        p = stack.conninfo()
        p.pop("dbname")
        query(p, "postgres", "CREATE DATABASE crashme")
        big_table(p, "crashme")

        class CrashingRepo(FileRepository):
            def put_stream(self, key, stream):
                first = stream.read(65536)  # pg_dump is streaming the table
                run_server_cmd([str(pg_bindir() / "pg_ctl"), "-D", str(stack.layout.primary.data_dir), "-m",
                                "immediate", "-w", "stop"], what="crashing the primary")
                import io
                return super().put_stream(key, io.BufferedReader(Joined(first, stream)))
        repo = CrashingRepo(tmp_path / "repo")
        with pytest.raises(errors.BackupFailed) as info:
            engine.create_logical(repo, p, "crashme")
        msg = str(info.value)
        assert info.value.exit_code == 7 and "'crashme'" in msg and repo.url in msg
        assert "invoke backup.create --db crashme" in msg and "Traceback" not in msg
        assert objects(repo, "crashme") == [] and not list((tmp_path / "repo").rglob("*.partial"))
    finally:
        destroy(stack)


class Joined:
    """A raw stream of ``first`` followed by the rest of ``stream``."""

    def __init__(self, first, stream):
        self.first, self.stream = first, stream

    def readable(self):
        return True

    def readinto(self, b):
        data = self.first[:len(b)] if self.first else self.stream.read(len(b))
        self.first = self.first[len(data):] if self.first else b""
        b[:len(data)] = data
        return len(data)

    closed = False

    def close(self):
        pass


def cut_connection(repo, *operations):
    """A botocore hook that fails the named S3 operations as a dropped TCP connection would."""
    from botocore.exceptions import ConnectionClosedError

    def cut(request, **_):
        raise ConnectionClosedError(endpoint_url=request.url)
    for op in operations:
        repo.s3.meta.events.register(f"before-send.s3.{op}", cut, unique_id=f"cut-{op}")
    return lambda: [repo.s3.meta.events.unregister(f"before-send.s3.{op}", unique_id=f"cut-{op}") for op in operations]


@pytest.fixture
def s3_repo(s3_env):
    from botocore.config import Config
    bucket = "b" + os.urandom(4).hex()
    boto3.client("s3").create_bucket(Bucket=bucket)
    client = boto3.client("s3", config=Config(retries={"max_attempts": 2, "mode": "standard"}))
    return S3Repository(bucket, "p", client=client, part_size=5 * 1024 * 1024)


def test_cut_s3_connection_mid_upload_aborts_the_multipart_upload(s3_repo, params, dbname):
    big_table(params, dbname)
    cut_connection(s3_repo, "UploadPart")  # the first part goes through CreateMultipartUpload, then the cut
    with pytest.raises(errors.BackupFailed) as info:
        engine.create_logical(s3_repo, params, dbname)
    msg = str(info.value)
    assert info.value.exit_code == 7 and f"'{dbname}'" in msg and s3_repo.url in msg and "upload" in msg
    assert s3_repo.pending_uploads("backups/") == []  # aborted, not abandoned
    assert objects(s3_repo, dbname) == []


def test_connection_still_cut_at_abort_names_the_upload_and_prune_aborts_it(s3_repo, params, dbname):
    big_table(params, dbname)
    restore_link = cut_connection(s3_repo, "UploadPart", "AbortMultipartUpload", "DeleteObject")
    with pytest.raises(errors.BackupFailed) as info:
        engine.create_logical(s3_repo, params, dbname)
    restore_link()
    msg = str(info.value)
    assert "could not be aborted" in msg and "backup.prune --apply" in msg
    left = s3_repo.pending_uploads("backups/")
    assert len(left) == 1 and left[0].upload_id in msg
    engine.create_logical(s3_repo, params, dbname)  # a good one, so the database has a listing
    report = engine.prune(s3_repo, dbname, now=datetime.now(timezone.utc) + timedelta(hours=25), apply=True)
    assert report.aborted_uploads == [left[0].key] and s3_repo.pending_uploads("backups/") == []


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (root only): writes past it fail with ENOSPC from the kernel."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_disk_full_at_the_manifest_write_leaves_no_backup(small_disk, params, dbname):
    query(params, dbname, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")

    class FillsUp(FileRepository):  # the disk fills (another writer) right before the manifest
        def put_bytes(self, key, data):
            if key.endswith("manifest.json"):
                fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
                try:
                    while os.write(fd, b"\0" * 4096):
                        pass
                except OSError:
                    pass
                finally:
                    os.close(fd)
            return super().put_bytes(key, data)
    repo = FillsUp(small_disk / "repo")
    with pytest.raises(errors.BackupFailed) as info:
        engine.create_logical(repo, params, dbname)
    msg = str(info.value)
    assert info.value.exit_code == 7 and "manifest" in msg and "No space left" in msg and repo.url in msg
    assert objects(repo, dbname) == [] and engine.list_backups(repo, dbname) == []


# ---- issue 19 §5: latest everywhere; an empty database beside the managed ones ---------------------

def test_show_and_verify_accept_latest(params, dbname, tmp_path):
    query(params, dbname, "CREATE TABLE t (id int)")
    dsn = f"host=127.0.0.1 port={params['port']} user=postgres passfile={params['passfile']} dbname={dbname}"
    repo = (tmp_path / "r").as_uri()
    made = [json.loads(invoke(["backup.create", "--dsn", dsn, "--repository", repo, "--json"]).stdout)[0]["id"]
            for _ in range(2)]
    shown = invoke(["backup.show", "latest", "--dsn", dsn, "--repository", repo])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == made[1]
    checked = invoke(["backup.verify", "latest", "--dsn", dsn, "--repository", repo, "--json"])
    assert checked.returncode == 0 and json.loads(checked.stdout)["id"] == made[1]
    other = invoke(["backup.show", "latest", "--db", "nothing_here", "--repository", repo])
    assert other.returncode == 1 and "No backup of 'nothing_here'" in other.stderr


def test_the_guard_tells_an_empty_database_beside_the_managed_ones_from_them(pg, params, dbname, tmp_path):
    """A stack server: a new, empty database beside the managed ones takes a restore without
    --yes-overwrite-primary; a managed one, a system one and a non-empty one are refused."""
    from ops.settings import from_options
    from ops.targets import DsnTarget, LocalTarget
    repo = FileRepository(tmp_path / "r")
    query(params, dbname, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    m = engine.create_logical(repo, params, dbname)
    local = LocalTarget(from_options({}), stack=pg)  # the test server is this stack's primary
    beside = new_db(params, dbname + "_beside")
    try:
        local.guard_restore_target(params, beside)
        engine.restore(repo, m, params, beside)
        assert query(params, beside, "SELECT count(*) FROM t") == [(1,)]
        with pytest.raises(errors.RestoreRefused, match="not empty"):  # now it holds data
            local.guard_restore_target(params, beside)
    finally:
        query(params, "postgres", f'DROP DATABASE "{beside}"')
    with pytest.raises(errors.RestoreRefused, match="system database"):
        local.guard_restore_target(params, "postgres")
    managed = DsnTarget(from_options({}, dsn=f"host=127.0.0.1 port={params['port']} user=postgres "
                                          f"passfile={params['passfile']} dbname={dbname}"))
    empty = new_db(params, dbname + "_e")
    try:
        query(params, dbname, "DROP TABLE t")  # empty, but the target's own database
        with pytest.raises(errors.RestoreRefused, match="databases stack dsn manages"):
            managed.guard_restore_target(params, dbname)
        managed.guard_restore_target(params, empty)
        managed.guard_restore_target(params, dbname, allow_overwrite=True)
    finally:
        query(params, "postgres", f'DROP DATABASE "{empty}"')
