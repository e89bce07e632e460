"""Storage behind one small interface, two implementations: ``file:///path`` and ``s3://bucket/prefix``.

Modelled on barman's ``CloudInterface`` and patroni's ``AbstractDCS``: every backup feature is
written once against :class:`Repository`, so it runs locally and on AWS alike.

S3 (boto3): the endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, so any
S3-compatible store works; retries use boto3's ``standard`` retry mode (throttling and 5xx, backoff
with jitter); uploads are multipart in fixed-size parts (bounded memory: one part in flight),
server-side encryption is always requested (SSE-KMS with the stack's key when given, else AES256),
and a failed upload is aborted (barman#259).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol
from urllib.parse import urlparse

from ..errors import ConfigError, RepositoryError

PART_SIZE = 16 * 1024 * 1024  # bytes; S3 minimum is 5 MiB
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # UTC


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime  # UTC


@dataclass(frozen=True)
class Written:
    size: int  # bytes
    sha256: str  # hex


class Repository(Protocol):
    url: str

    def put_stream(self, key: str, stream: BinaryIO) -> Written: ...
    def put_bytes(self, key: str, data: bytes) -> Written: ...
    def open_read(self, key: str) -> Iterator[bytes]: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def pending_uploads(self, prefix: str) -> list[PendingUpload]: ...
    def abort_upload(self, upload: PendingUpload) -> None: ...
    def location(self, key: str) -> str: ...
    def local_path(self, key: str) -> Path | None: ...


def _hash_copy(stream: BinaryIO, sink) -> Written:
    h, size = hashlib.sha256(), 0
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            break
        h.update(chunk)
        size += len(chunk)
        sink(chunk)
    return Written(size, h.hexdigest())


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dirs(path: Path, stop: Path | None = None, parents_mode: int = PRIVATE_DIR) -> None:
    """Create ``path`` with mode 0700 from the start and every missing parent (below ``stop``) with
    ``parents_mode``: ``mkdir(mode)`` for each level, not ``mkdir -p`` (whose parents get the umask's
    default). A repository root's parents are made 0711 (search, no listing): a local stack's state
    directory above it must stay reachable by the server user (issue 19 §1). Existing directories are
    left as they are."""
    missing = []
    p = path
    while not p.exists() and p != p.parent and p != stop:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        mode = PRIVATE_DIR if d == path else parents_mode
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            continue
        os.chmod(d, mode)  # the umask cut mkdir's mode (077 would make a 0711 parent 0700)


class FileRepository:
    """A directory. Writes go to ``<key>.partial`` and are renamed into place when complete.

    Backups hold every row of a database (and a physical one ``pg_authid``'s password hashes), so
    objects are created 0600 and folders 0700 from their first byte (``os.open`` with a mode,
    ``O_EXCL``), whatever the umask: no other local user can read them (issue 9 §4).
    """

    def __init__(self, root: Path):
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise RepositoryError(f"Key '{key}' escapes the repository {self.url}.")
        return p

    def put_stream(self, key: str, stream: BinaryIO) -> Written:
        path = self._path(key)
        make_private_dirs(path.parent)
        tmp = path.with_name(path.name + ".partial")
        tmp.unlink(missing_ok=True)  # a leftover of a killed writer: never reuse its mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
        try:
            with os.fdopen(fd, "wb") as f:
                written = _hash_copy(stream, f.write)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return written

    def put_bytes(self, key: str, data: bytes) -> Written:
        import io
        return self.put_stream(key, io.BytesIO(data))

    def open_read(self, key: str) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb")
        except FileNotFoundError:
            raise RepositoryError(f"Object '{key}' is missing from {self.url}.",
                                  "run `invoke backup.list` to see what the repository holds.") from None
        with f:
            while chunk := f.read(READ_CHUNK):
                yield chunk

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.open_read(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root / prefix
        if not base.exists():
            return []
        out = []
        for p in sorted(base.rglob("*")) if base.is_dir() else [base]:
            if p.is_file():
                st = p.stat()
                out.append(ObjectInfo(p.relative_to(self.root).as_posix(), st.st_size,
                                      datetime.fromtimestamp(st.st_mtime, timezone.utc)))
        return out

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        return []  # a file write is one rename; interrupted ones are *.partial objects, listed above

    def abort_upload(self, upload: PendingUpload) -> None:
        raise RepositoryError("file repositories have no multipart uploads")

    def location(self, key: str) -> str:
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        """The object's file, so readers (pg_restore -j) can use it in place without a copy."""
        return self._path(key)


class S3Repository:
    """``s3://bucket/prefix``. ``kms_key_id``: SSE-KMS key; without it SSE-S3 (AES256)."""

    def __init__(self, bucket: str, prefix: str, kms_key_id: str | None = None, client=None,
                 part_size: int = PART_SIZE):
        import boto3
        from botocore.config import Config
        if part_size < 5 * 1024 * 1024:
            raise ConfigError([f"S3 part size {part_size} bytes is below the S3 minimum of 5 MiB"])
        self.part_size = part_size
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.kms_key_id = kms_key_id
        self.s3 = client or boto3.client("s3", config=Config(retries={"max_attempts": 10, "mode": "standard"}))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def copy_from(self, src: "S3Repository", key: str) -> None:
        """Copy object ``key`` of ``src`` to the same key here, server-side (S3 CopyObject, multipart
        for large objects through boto3's managed copy), encrypted with this repository's key.
        Raises :class:`RepositoryError`."""
        self._call(f"copy {key}", self.s3.copy, {"Bucket": src.bucket, "Key": src._key(key)},
                   self.bucket, self._key(key), ExtraArgs=self._sse(), SourceClient=src.s3)

    def _sse(self) -> dict:
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def _call(self, what: str, fn, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise RepositoryError(f"Object for {what} is missing from {self.url}.",
                                      "run `invoke backup.list` to see what the repository holds.") from None
            raise RepositoryError(f"S3 {what} on {self.url} failed: {code} {exc.response.get('Error', {}).get('Message', '')}",
                                  "check credentials, the bucket policy and the KMS key grants.") from None
        except BotoCoreError as exc:
            raise RepositoryError(f"S3 {what} on {self.url} failed: {exc}",
                                  "check AWS_ENDPOINT_URL, network and credentials.") from None

    def put_stream(self, key: str, stream: BinaryIO) -> Written:
        """Multipart upload in ``part_size`` parts (memory: one part); aborted on any failure."""
        k = self._key(key)
        h, size = hashlib.sha256(), 0
        first = _read_full(stream, self.part_size)
        h.update(first)
        size += len(first)
        if len(first) < self.part_size:  # small object: one PUT
            self._call(f"put {key}", self.s3.put_object, Bucket=self.bucket, Key=k, Body=first, **self._sse())
            return Written(size, h.hexdigest())
        upload = self._call(f"start upload {key}", self.s3.create_multipart_upload, Bucket=self.bucket, Key=k,
                            **self._sse())["UploadId"]
        parts = []
        try:
            part, n = first, 1
            while part:
                resp = self._call(f"upload part {n} of {key}", self.s3.upload_part, Bucket=self.bucket, Key=k,
                                  UploadId=upload, PartNumber=n, Body=part)
                parts.append({"ETag": resp["ETag"], "PartNumber": n})
                part = _read_full(stream, self.part_size)
                h.update(part)
                size += len(part)
                n += 1
            self._call(f"complete upload {key}", self.s3.complete_multipart_upload, Bucket=self.bucket, Key=k,
                       UploadId=upload, MultipartUpload={"Parts": parts})
        except BaseException as exc:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=k, UploadId=upload)
            except Exception as abort_exc:  # the connection is still cut: say what is left and how it goes
                if isinstance(exc, Exception):
                    raise RepositoryError(
                        f"{exc} The multipart upload {upload} of {key} could not be aborted either "
                        f"({type(abort_exc).__name__}: {abort_exc}); it holds no visible backup.",
                        "once S3 is reachable, `invoke backup.prune --apply` aborts uploads abandoned for 24 h "
                        f"(or now: aws s3api abort-multipart-upload --bucket {self.bucket} --key {k} "
                        f"--upload-id {upload}).") from None
            raise
        return Written(size, h.hexdigest())

    def put_bytes(self, key: str, data: bytes) -> Written:
        self._call(f"put {key}", self.s3.put_object, Bucket=self.bucket, Key=self._key(key), Body=data, **self._sse())
        return Written(len(data), hashlib.sha256(data).hexdigest())

    def open_read(self, key: str) -> Iterator[bytes]:
        body = self._call(f"get {key}", self.s3.get_object, Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.open_read(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False

    def list(self, prefix: str) -> list[ObjectInfo]:
        out = []
        paginator = self.s3.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self._call(f"list {prefix}", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)))):
            for o in page.get("Contents", []):
                out.append(ObjectInfo(o["Key"][strip:], o["Size"], o["LastModified"].astimezone(timezone.utc)))
        return out

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", self.s3.delete_object, Bucket=self.bucket, Key=self._key(key))

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        resp = self._call("list multipart uploads", self.s3.list_multipart_uploads, Bucket=self.bucket,
                          Prefix=self._key(prefix))
        strip = len(self.prefix) + 1 if self.prefix else 0
        return [PendingUpload(u["Key"][strip:], u["UploadId"], u["Initiated"].astimezone(timezone.utc))
                for u in resp.get("Uploads", [])]

    def abort_upload(self, upload: PendingUpload) -> None:
        self._call(f"abort upload {upload.key}", self.s3.abort_multipart_upload, Bucket=self.bucket,
                   Key=self._key(upload.key), UploadId=upload.upload_id)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def local_path(self, key: str) -> Path | None:
        return None


def _read_full(stream: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads from pipes."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def open_repository(url: str, kms_key_id: str | None = None, *, create: bool = True) -> Repository:
    """``file:///abs/path`` or ``s3://bucket[/prefix]``. Raises :class:`ConfigError` otherwise.
    ``create=False`` (a task that only reads): a missing file repository is not made, it lists empty."""
    u = urlparse(url)
    if u.scheme == "file":
        if u.netloc:  # file://tmp/x is host "tmp", path "/x": it would silently write to /x
            raise ConfigError([f"repository URL '{url}' has a host part ('{u.netloc}'); a file repository URL is "
                               f"file:// followed by an absolute path"],
                              f"pass --repository file:///{u.netloc}{u.path} (three slashes).")
        if not u.path.startswith("/"):
            raise ConfigError([f"repository URL '{url}' needs an absolute path (file:///path)"])
        root = Path(u.path)
        if create:
            make_private_dirs(root, parents_mode=0o711)
        return FileRepository(root)
    if u.scheme == "s3" and u.netloc:
        return S3Repository(u.netloc, u.path, kms_key_id)
    raise ConfigError([f"repository URL '{url}' is neither file:///path nor s3://bucket/prefix"],
                      "pass --repository file:///var/backups/pgops or --repository s3://bucket/prefix.")
