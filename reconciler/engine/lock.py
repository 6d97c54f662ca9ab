"""One writer per state directory: an flock on STATE/agent.lock, held by the agent for its
life and by `apply` and `import` while they run, so two of them never change one host and its
journal at once (as Terraform locks its state).

The kernel drops the lock when the process dies, however it dies, so a stale lock file never
blocks a restart. The file holds the holder's pid and role ("agent", "apply", "import"), for
the message the refused process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import NamedTuple

from reconciler.errors import SafetyError
from reconciler.fsio import private_dir

LOCK_NAME = "agent.lock"  # the name agents have always locked; an older agent still excludes us


class Holder(NamedTuple):
    pid: int  # -1 when the lock file does not say
    role: str  # "" when the lock file does not say

    @property
    def is_agent(self) -> bool:
        """Agents from before roles wrote only their pid: a holder without a role is one."""
        return self.role in ("agent", "")


class StateLock:
    def __init__(self, state_dir: str | Path, role: str) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.role = role
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SafetyError naming who holds it; never waits."""
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise SafetyError(f"cannot lock state directory {self.path.parent}: "
                              f"{exc.strerror}; choose one you can write with --state-dir"
                              ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(fd)
            os.close(fd)
            raise SafetyError(self._refusal(other)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.role}\n".encode())
        self._fd = fd

    def _refusal(self, other: Holder) -> str:
        who = f" (pid {other.pid})" if other.pid > 0 else ""
        where = f"state directory {self.path.parent} (lock {self.path})"
        if self.role == "agent":
            kind = "agent" if other.is_agent else other.role
            return (f"another reconciler {kind}{who} is already running on {where}; one agent "
                    "per state directory")
        if other.is_agent:
            return (f"a reconciler agent{who} is running on {where} and applies the specs "
                    f"itself; stop it before running {self.role}, or use another --state-dir")
        return (f"another reconciler {other.role}{who} is running on {where}; wait for it to "
                "finish")

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> Holder:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        words = os.read(fd, 64).decode().split()
    except (OSError, UnicodeDecodeError):
        return Holder(-1, "")
    pid = int(words[0]) if words and words[0].isdigit() else -1
    return Holder(pid, words[1] if len(words) > 1 else "")


def holder(state_dir: str | Path) -> Holder | None:
    """Who holds the state directory's lock, or None when nobody does."""
    path = Path(state_dir) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
