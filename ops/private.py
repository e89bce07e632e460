"""Folders and files no other local user can steer: folders 0700, files 0600, never a symlink
followed, never a folder someone else made (issue 20 §3).

The rules are the ones a shared machine needs: a name in a world-writable place can be taken first
by any user (CWE-377, "Insecure Temporary File"), and a symlink planted at a path makes the owner's
process write or lock wherever it points (CWE-59, "Link Following"). So: files are opened with
``O_NOFOLLOW`` (open(2): "If the trailing component … is a symbolic link, then the open fails, with
the error ELOOP"); a folder that exists is used only when ``lstat`` finds a real directory owned by
this user and closed to group and others, and it is never chmod-ed (it may be someone else's,
e.g. ``/tmp``); a folder made here is made with ``mkdir(…, 0o700)``, which fails if anything is
already there. Every refusal is raised through the caller's ``fail(message, hint)`` so it carries the
task's exit code.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

from .errors import OpsError

Fail = Callable[[str, str], OpsError]


def private_dir(path: Path, what: str, fail: Fail) -> Path:
    """The folder ``path`` (``what`` names it in a message), made 0700 (missing parents too) when it
    does not exist; an existing one must be a real directory (not a symlink) owned by this user with
    no group or other permission bits — it is never chmod-ed. Raises ``fail(...)`` otherwise, or
    when it cannot be made (the OS error's text is named)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.mkdir(path, 0o700)
        return path
    except FileExistsError:
        pass
    except OSError as exc:
        raise fail(f"{what} {path} cannot be made: {exc.strerror or exc}.",
                   "make the folder writable (or point PGOPS_STATE_DIR elsewhere), then rerun.") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise fail(f"{what} {path} is a symbolic link; pgops does not follow links for private files.",
                   f"remove the link (`rm {path}`), then rerun: the folder is made again, 0700.")
    if not stat.S_ISDIR(st.st_mode):
        raise fail(f"{what} {path} exists and is not a folder.", "move it away, then rerun.")
    if st.st_uid != os.geteuid():
        raise fail(f"{what} {path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); "
                   "it is not used and not changed.", "remove it or run as its owner, then rerun.")
    if st.st_mode & 0o077:
        raise fail(f"{what} {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                   "it is not used and not changed.", f"run `chmod 700 {path}`, then rerun.")
    return path


def open_lock_file(path: Path, fail: Fail) -> int:
    """Open (creating it 0600) the lock file ``path`` for ``flock``: ``O_NOFOLLOW`` (a symlink there is
    refused, never followed), and an existing file must be a regular file owned by this user.
    Returns the descriptor; raises ``fail(...)`` otherwise."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise fail(f"Lock file {path} is a symbolic link; it is refused, not followed.",
                       f"remove the link (`rm {path}`), then rerun.") from None
        raise fail(f"Lock file {path} cannot be opened: {exc.strerror or exc}.",
                   "check the state directory's permissions, then rerun.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise fail(f"Lock file {path} is not a regular file of this user (uid {st.st_uid}); it is not used.",
                   f"remove it (`rm {path}`), then rerun.")
    return fd
