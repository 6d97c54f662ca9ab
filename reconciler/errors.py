"""The exception tree every layer raises and the CLI maps to exit codes.

ReconcilerError
 ├── SpecError            a spec file is wrong (file, line, column, message)
 ├── ConfigError          agent config or command-line options are wrong
 ├── PlanError            a saved plan cannot be used (stale, corrupt, other driver)
 ├── SafetyError          a pass was refused by a safety rule (removal breaker, lock)
 ├── StateError           the state directory cannot be used (a full disk, a malformed file)
 └── DriverError          a back-end call failed
      ├── TransientError  worth retrying after `delay` seconds (busy, timeout)
      └── PermanentError  retrying will not help (bad config, missing tool)
"""

from __future__ import annotations

import errno
import subprocess
from dataclasses import dataclass

from reconciler.text import printable


class ReconcilerError(Exception):
    """Base of every error the project raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where in a spec file something is: 1-based line and column, 0 when unknown."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{max(self.line, 1)}:{max(self.col, 1)}"


class SpecError(ReconcilerError):
    """A spec is invalid. Carries where and what, as compilers print it."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def at(self, location: Location) -> SpecError:
        """The same error, placed in a file (keeps a more precise line if known)."""
        if self.location is not None and self.location.line:
            return SpecError(self.message, Location(location.file, self.location.line,
                                                    self.location.col))
        return SpecError(self.message, location)

    def __str__(self) -> str:
        where = printable(self.location) if self.location else "<spec>:1:1"
        return f"{where}: error: {printable(self.message)}"


class ConfigError(ReconcilerError):
    """Options or the agent config file are wrong."""


class PlanError(ReconcilerError):
    """A saved plan cannot be applied."""


class SafetyError(ReconcilerError):
    """A safety rule refused the whole pass."""


class StateError(ReconcilerError):
    """The state directory (journal, status, lock) cannot be written or read."""


class DriverError(ReconcilerError):
    """A back-end operation failed."""


class TransientError(DriverError):
    """A failure worth retrying later."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(DriverError):
    """A failure that retrying will not fix."""


# failures of the file system or a tool that a later try can get past
_TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.EINTR,
                               errno.ENOBUFS, errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE,
                               errno.ETXTBSY})


def as_driver_error(exc: BaseException, what: str) -> DriverError:
    """The one mapping of the file system's and the tools' errors into ours: busy, timed out
    and interrupted are transient; everything else is permanent."""
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, subprocess.TimeoutExpired):
        return TransientError(f"{what}: {exc.cmd!r} did not finish in {exc.timeout:.0f} s",
                              delay=2.0)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        message = f"{what}: {exc.strerror or exc}{where}"
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientError(message)
        return PermanentError(message)
    return PermanentError(f"{what}: {exc}")
