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

from ops.backups import engine
from ops.backups.repository import FileRepository, S3Repository
from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir
from ops.migrations import runner
from ops.migrations.runner import Target
from ops.retention import RetentionPolicy
from ops.seeddata import TABLES, seed_syncscript

from .conftest import REPO, free_base_port, invoke, query


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer
    port = free_base_port(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


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
        with pytest.raises(engine.RestoreRefused):  # not empty any more
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
        with pytest.raises(engine.VerifyMismatch):
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
    with pytest.raises(engine.RestoreRefused) as info:
        engine.restore(repo, m, params, dbname, protected=params)
    assert "own primary" in str(info.value)
    engine.restore(repo, m, params, dbname, protected=params, yes_overwrite_primary=True)
