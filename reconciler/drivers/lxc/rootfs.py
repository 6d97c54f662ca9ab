"""Reading and writing files inside a container's root filesystem from the host, safely.

A root inside a privileged container can replace `/etc` with a symlink to any host path. A
plain `open(rootfs + "/etc/resolv.conf", "w")` from the host would then follow it and write
to the host's own file. Every path component here is opened with O_NOFOLLOW relative to the
previous one (openat), so a symlink anywhere in the path is an error, never a redirect; only
regular files are read, never blocking, at most MAX_READ bytes.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress

from reconciler.errors import PermanentError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_READ = 1 << 20


def _open_parent(root: str, relpath: str) -> tuple[int, str]:
    parts = [p for p in relpath.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise PermanentError(f"bad path inside a rootfs: {relpath!r}")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError:
        os.close(fd)
        raise
    return fd, parts[-1]


def read_file(root: str, relpath: str) -> str | None:
    """The file's text (at most MAX_READ bytes), or None when it, or a directory on the way,
    is missing, a symlink or not a regular file. Opened without blocking: a guest's root is
    the guest's to fill, and a FIFO it plants at etc/resolv.conf must not stall an observe."""
    try:
        dir_fd, leaf = _open_parent(root, relpath)
    except OSError:
        return None
    try:
        fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fh.read(MAX_READ).decode("utf-8", "replace")


def write_file(root: str, relpath: str, text: str, mode: int | None = None) -> None:
    """Replace the file atomically (temp file + rename in the same directory), keeping the
    old file's permission bits unless `mode` is given."""
    try:
        dir_fd, leaf = _open_parent(root, relpath)
    except OSError as exc:
        raise PermanentError(f"cannot open {relpath} in {root}: {exc.strerror}") from None
    tmp = f".{leaf}.reconciler-{os.getpid()}"
    if mode is None:
        try:
            mode = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode & 0o7777
        except OSError:
            mode = 0o644
    try:
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=dir_fd)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise PermanentError(f"cannot write {relpath} in {root}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
