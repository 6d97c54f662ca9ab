"""File writes and reads the project trusts: one home for writing a file atomically, and for
opening a file only if it is what it claims to be.

Atomic: a temporary file in the same directory, written, flushed to disk, then renamed over
the target, so a reader (or a crash) sees the old file or the new one, never half of either.
Neither the temporary file nor the target is ever reached through a symlink: a link planted
where our file should be makes the write fail, never redirects it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomic(path: str | Path, data: bytes | str, mode: int = 0o600) -> None:
    """Replace `path` with `data`. OSError (ENOSPC, EACCES, ELOOP ...) when it cannot."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)  # not narrowed by the umask
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.islink(path):
            raise OSError(40, "refusing to replace a symbolic link", str(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_regular(path: str | Path, flags: int = os.O_RDONLY, mode: int = 0o600,
                 follow: bool = False) -> int:
    """A descriptor of `path`, opened without blocking (a FIFO or a device never stalls us)
    and, unless `follow`, without following a symlink at its last component; OSError
    unless it is a regular file."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW),
                 mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "not a regular file", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | Path, limit: int, follow: bool = False) -> bytes:
    """The bytes of a regular file, at most `limit` + 1 of them (so a caller can tell "too
    big"); OSError for anything else (a FIFO, a device, a directory, a symlink if not
    `follow`)."""
    fd = open_regular(path, follow=follow)
    try:
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_dir(path: str | Path, tighten: bool = False) -> Path:
    """Make `path` (and parents) if missing; a directory we create is 0700. With `tighten`,
    an existing one we own loses group and other access too (the state directory holds the
    journal, saved secrets' digests, the lock)."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if tighten:
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            path.chmod(0o700)
    return path
