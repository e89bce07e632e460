"""Can the server user reach the state directory? Traverse bits on the path, granted or refused up front.

When pgops runs as root the servers run as the unprivileged ``postgres`` OS user, which must be
able to *search* (``x``) every directory from ``/`` down to its data directories — and nothing more:
no read bit is ever added, so it can not list a checkout, the passfile's directory or a backup
repository (POSIX permission rules; PostgreSQL's own requirement that the data directory's owner
reaches it). :func:`unreachable` is the pure rule; :func:`ensure_reachable` applies it: directories
pgops made (the state directory, ``.pgops`` in the checkout, parents it creates now) get ``o+x``;
any other directory in the way (a 0700 home such as ``/root``) is refused, naming it and the fix.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalStackError

TRAVERSE_ONLY = 0o711  # parents pgops creates: searchable by the server user, never listable


@dataclass(frozen=True)
class DirMode:
    """What :func:`unreachable` needs to know of one directory: its owner, group and mode bits."""

    path: Path
    uid: int
    gid: int
    mode: int


def can_search(d: DirMode, uid: int, gids: set[int]) -> bool:
    """Whether a process with ``uid`` and groups ``gids`` may search ``d`` (POSIX: the owner's bits
    apply to the owner, else the group's to a member, else the others'; root is not a server user)."""
    if d.uid == uid:
        return bool(d.mode & stat.S_IXUSR)
    if d.gid in gids:
        return bool(d.mode & stat.S_IXGRP)
    return bool(d.mode & stat.S_IXOTH)


def unreachable(chain: list[DirMode], uid: int, gids: set[int]) -> list[Path]:
    """The directories of ``chain`` (``/`` first) the server user cannot search, in order."""
    return [d.path for d in chain if not can_search(d, uid, gids)]


def _chain(path: Path) -> list[DirMode]:
    out = []
    for p in [*reversed(path.parents), path]:
        st = os.stat(p)
        out.append(DirMode(p, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
    return out


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents with mode 0711 whatever the umask (``mkdir`` then
    ``chmod``: a umask of 077 would leave them 0700). Returns the directories created, top first."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    made = []
    for d in reversed(missing):
        try:
            os.mkdir(d, TRAVERSE_ONLY)
        except FileExistsError:
            continue
        os.chmod(d, TRAVERSE_ONLY)
        made.append(d)
    return made


def ensure_reachable(path: Path, owned_below: Path | None, uid: int, gids: set[int]) -> list[Path]:
    """Make every directory on the way to ``path`` searchable by ``uid``/``gids`` (the server user).

    ``path``: an absolute directory (created with 0711 parents when missing). ``owned_below``: the
    directory strictly below which every directory is pgops' own (the checkout's parent: the checkout
    and its ``.pgops``), or None. Directories at or below ``path``'s first created parent, and those strictly
    below ``owned_below``, get ``o+x`` added (never ``r``); any other directory the server user cannot
    search raises :class:`LocalStackError` naming it and the two fixes. Returns the directories changed.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    ours = {p for p in [path, *path.parents] if not p.exists()} | {path}  # what pgops is about to create
    if owned_below is not None:
        ours |= {p for p in [path, *path.parents] if owned_below in p.parents}
    for p in unreachable(_chain(existing), uid, gids):  # refuse before creating anything
        if p not in ours:
            raise LocalStackError(
                f"The server user ('postgres') cannot reach the local stack's state directory {path}: it may not "
                f"search {p} (mode {stat.S_IMODE(os.stat(p).st_mode):04o}).",
                f"let it pass with `chmod o+x {p}` (search only, no listing), or put the stack elsewhere with "
                f"`PGOPS_STATE_DIR=/var/lib/pgops/local invoke local.up`.")
    make_dirs(path)
    changed = []
    for p in unreachable(_chain(path), uid, gids):
        os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) | stat.S_IXOTH)
        changed.append(p)
    return changed
