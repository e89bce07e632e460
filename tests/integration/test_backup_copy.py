"""``backup.copy`` between two S3 buckets in two regions, each with its own KMS key, through a moto
server (real HTTP, subprocesses included): objects copied server-side and re-hashed, manifests last,
``backup.list --repository`` on the copy shows them, a second run copies nothing, a corrupted copy
never becomes visible, and a restore drill from the copy passes."""
from __future__ import annotations

import json

import boto3
import pytest

from ops.backups import engine
from ops.backups.copy import copy_backup
from ops.backups.repository import S3Repository
from ops.errors import CopyFailed
from ops.local.cluster import open_stack

from .conftest import destroy, free_base_port, invoke, state_dir



def _bucket_and_key(endpoint: str, region: str, name: str) -> str:
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    boto3.client("s3", **kw).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return boto3.client("kms", **kw).create_key(Description=f"pgops copy {region}")["KeyMetadata"]["Arn"]


def test_copy_to_a_second_region_verifies_and_drills(moto_endpoint, tmp_path):
    src_key = _bucket_and_key(moto_endpoint, "eu-west-1", "pgops-src")
    dst_key = _bucket_and_key(moto_endpoint, "eu-central-1", "pgops-far")
    sd = state_dir() / "stack"
    aws = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    env = {**aws, "PGOPS_STATE_DIR": str(sd), "PGOPS_LOCAL_PORT": str(free_base_port(1)),
           "PGOPS_REPOSITORY": "s3://pgops-src/pgops", "PGOPS_KMS_KEY_ID": src_key}
    far = "s3://pgops-far/pgops"
    try:
        assert invoke(["local.up", "--replicas", "0"], env).returncode == 0
        assert invoke(["deploy", "--db", "fluxstudio"], env).returncode == 0
        assert invoke(["db.seed", "--db", "fluxstudio", "--users", "300"], env).returncode == 0
        made = json.loads(invoke(["backup.create", "--db", "fluxstudio", "--json"], env).stdout)
        res = invoke(["backup.copy", "--to", far, "--to-kms-key", dst_key, "--db", "fluxstudio", "--since", "1h",
                      "--json"], env)
        assert res.returncode == 0, res.stderr
        copied = json.loads(res.stdout)
        assert [c["id"] for c in copied] == [made[0]["id"]] and copied[0]["method"] == "server-side"
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-central-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        head = s3.head_object(Bucket="pgops-far", Key=f"pgops/backups/fluxstudio/{made[0]['id']}/dump.pgdump")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(dst_key.split("/")[-1])
        listed = json.loads(invoke(["backup.list", "--repository", far, "--json"], env).stdout)
        assert [b["id"] for b in listed] == [made[0]["id"]] and listed[0]["sha256"] == made[0]["sha256"]
        assert listed[0]["location"].startswith("s3://pgops-far/")
        again = json.loads(invoke(["backup.copy", "--to", far, "--to-kms-key", dst_key, "--json"], env).stdout)
        assert [c["method"] for c in again] == ["already copied"]

        drill = invoke(["drill.run", "--db", "fluxstudio", "--repository", far, "--json", str(tmp_path / "d.json")], env)
        assert drill.returncode == 0, drill.stderr[-3000:]
        report = json.loads((tmp_path / "d.json").read_text())
        assert report["passed"] is True and report["backup_id"] == made[0]["id"]
    finally:
        destroy(open_stack(sd))


def test_a_copy_that_does_not_hash_right_never_becomes_visible(moto_endpoint, monkeypatch):
    for k, v in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    _bucket_and_key(moto_endpoint, "eu-west-1", "pgops-a")
    _bucket_and_key(moto_endpoint, "eu-central-1", "pgops-b")
    src, dst = S3Repository("pgops-a", "p"), S3Repository("pgops-b", "p")
    from ops.backups.manifest import Manifest
    body = b"not really a dump"
    src.put_bytes("backups/shop/b1/dump.pgdump", body)
    m = Manifest("b1", "shop", "logical", "2026-11-20T02:00:00+00:00", "2026-11-20T02:00:01+00:00", 1.0, len(body),
                 "0" * 64, "backups/shop/b1/dump.pgdump", src.location("backups/shop/b1/dump.pgdump"), "15", "15",
                 1, "0.1.0", "pg_dump custom")
    src.put_bytes("backups/shop/b1/manifest.json", m.to_json())
    with pytest.raises(CopyFailed) as info:
        copy_backup(src, dst, m)
    assert "b1" in str(info.value) and "pgops-b" in str(info.value)
    assert dst.list("backups/") == [] and engine.list_backups(dst) == []
