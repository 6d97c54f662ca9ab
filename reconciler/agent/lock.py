"""One agent per state directory: an flock on STATE/agent.lock, held for the agent's life.

The kernel drops the lock when the process dies, however it dies, so a stale lock file never
blocks a restart. The file holds the holder's pid, for the message the second agent prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from reconciler.errors import SafetyError

LOCK_NAME = "agent.lock"


class AgentLock:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise SafetyError(
                f"another reconciler agent{who} is already running on state directory "
                f"{self.path.parent} (lock {self.path}); one agent per state directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def holder(state_dir: str | Path) -> int | None:
    """The pid of the running agent on this state directory, or None when none runs."""
    path = Path(state_dir) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
