"""Running a host tool, the one way every driver does: the argv as a list (never a shell),
stdin from /dev/null, `LC_ALL=C` so the parsers read the messages and numbers they expect,
output as text with undecodable bytes replaced. A missing tool is a PermanentError carrying
the driver's install hint; one that outlasts its timeout is killed and a TransientError.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.drivers.text import last_line
from reconciler.errors import PermanentError, TransientError


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    rc: int
    out: str
    err: str

    def why(self) -> str:
        """The tool's own message: the last non-blank line of stderr, else of stdout."""
        return last_line(self.err) or last_line(self.out) or f"exit status {self.rc}"


@dataclass(frozen=True)
class Running:
    """A started tool; `.result()` waits for it."""

    argv: tuple[str, ...]
    proc: subprocess.Popen[str]

    def result(self, timeout: float) -> Result:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise timed_out(self.argv, timeout) from None
        return Result(self.argv, self.proc.returncode, out, err)


def run(argv: Sequence[str], timeout: float, missing: str) -> Result:
    """Run `argv` to its end. `missing`: the error's text when the program is not there."""
    assert all(isinstance(a, str) for a in argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, errors="replace",
                              check=False, stdin=subprocess.DEVNULL, timeout=timeout,
                              env=_env())
    except FileNotFoundError:
        raise PermanentError(missing) from None
    except subprocess.TimeoutExpired:
        raise timed_out(argv, timeout) from None
    return Result(tuple(argv), done.returncode, done.stdout, done.stderr)


def spawn(argv: Sequence[str], missing: str) -> Running:
    """Start `argv` now (for an observe that waits for it later)."""
    assert all(isinstance(a, str) for a in argv)
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                env=_env())
    except FileNotFoundError:
        raise PermanentError(missing) from None
    return Running(tuple(argv), proc)


def timed_out(argv: Sequence[str], timeout: float) -> TransientError:
    return TransientError(f"{' '.join(argv)} did not finish in {timeout:.0f} s", delay=2.0)


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}  # read at each call: PATH may change after import
