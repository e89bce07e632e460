"""Backups copied to a second repository (seed 002: "encrypted backups to a separate geographic
region"): the object first, its sha256 re-read from the copy and compared with the manifest, the
manifest last — so, as in the source, a copy without its manifest does not exist to any task, and a
copy that does not hash right is removed and never becomes visible.

Between two S3 repositories the object is copied server-side (boto3's managed ``copy``: CopyObject,
or UploadPartCopy parts above its multipart threshold; the bytes never pass through this machine)
and encrypted with the destination's key (SSE-KMS with ``kms_key_id``, else AES256). Anything else
(file ↔ S3, file ↔ file) is streamed through in bounded memory. The copy is verified by reading it
back in full: an ETag is no sha256 (multipart ETags hash the parts), so only the bytes prove it.

What this protects against that S3 replication does not (README, "Second-region copies"): a copy is
taken from a manifest, so deleting, overwriting or encrypting-for-ransom the source never reaches it;
replication copies every write (and, with delete-marker replication on, deletions) as it happens.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..errors import CopyFailed
from .manifest import Manifest, manifest_key
from .repository import Repository, S3Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyResult:
    """One backup's copy: ``method`` is ``server-side``, ``streamed`` or ``already copied``; ``seconds`` wall time."""

    id: str
    database: str
    kind: str
    size_bytes: int
    sha256: str
    method: str
    seconds: float
    location: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def select(manifests: list[Manifest], since: datetime | None) -> list[Manifest]:
    """The backups to copy, oldest first (so an interrupted run leaves the older ones done):
    every one created at or after ``since`` (all when None)."""
    chosen = [m for m in manifests if since is None or m.created >= since]
    return sorted(chosen, key=lambda m: m.created)


def copy_backup(src: Repository, dst: Repository, m: Manifest,
                on_bytes: Callable[[int], None] | None = None) -> CopyResult:
    """Copy one backup: object, verify its sha256 on the destination, then the manifest (its
    ``location`` rewritten to the copy's). A backup whose manifest already exists in ``dst`` with the
    same sha256 is left alone. Raises :class:`CopyFailed` (exit 7; the copied object is removed) when
    the copy does not hash to the manifest, :class:`RepositoryError` when either side fails."""
    t0 = time.monotonic()
    mkey = manifest_key(m.database, m.id)
    if dst.exists(mkey):
        try:
            there = Manifest.from_json(dst.get_bytes(mkey))
        except (ValueError, TypeError):
            there = None
        if there is not None and there.sha256 == m.sha256:
            return CopyResult(m.id, m.database, m.kind, m.size_bytes, m.sha256, "already copied",
                              time.monotonic() - t0, dst.location(m.object_key))
    if isinstance(src, S3Repository) and isinstance(dst, S3Repository):
        method = "server-side"
        dst.copy_from(src, m.object_key)
    else:
        method = "streamed"
        dst.put_stream(m.object_key, _ChunkReader(src.open_read(m.object_key), on_bytes))
    found, size = _sha256(dst, m.object_key, None if method == "streamed" else on_bytes)
    if found != m.sha256 or size != m.size_bytes:
        log.warning("copy of %s hashes to %s (%d bytes), manifest says %s (%d bytes)", m.id, found, size,
                    m.sha256, m.size_bytes)
        dst.delete(m.object_key)
        raise CopyFailed(m.id, dst.url, m.sha256, found)
    copied = dataclasses.replace(m, location=dst.location(m.object_key),
                                 note=(m.note + " " if m.note else "") + f"copy of {m.location}")
    dst.put_bytes(mkey, copied.to_json())  # last: from here on the copy exists
    return CopyResult(m.id, m.database, m.kind, m.size_bytes, m.sha256, method, round(time.monotonic() - t0, 3),
                      copied.location)


def _sha256(repo: Repository, key: str, on_bytes) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    for chunk in repo.open_read(key):
        h.update(chunk)
        size += len(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return h.hexdigest(), size


class _ChunkReader:
    """A ``read(n)`` stream over an iterator of byte chunks (what ``put_stream`` consumes)."""

    def __init__(self, chunks, on_bytes):
        self.chunks, self.buf, self.on_bytes = iter(chunks), b"", on_bytes

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                break
            if self.on_bytes:
                self.on_bytes(len(chunk))
            self.buf += chunk
        if n < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:n], self.buf[n:]
        return out
