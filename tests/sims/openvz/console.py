"""Output helpers and the exit exception shared by vzctl and vzlist.

The tools never call sys.exit themselves: they raise `Exit` and `main()` turns it into a return
code, so tests can run them in-process many times. Streams are looked up at call time so that
`contextlib.redirect_stdout` captures the output.
"""

from __future__ import annotations

import sys


class Exit(Exception):
    """Stop the tool with exit status `rc`."""

    def __init__(self, rc: int) -> None:
        super().__init__(rc)
        self.rc = rc


def out(msg: str) -> None:
    """A stdout line (the real tools' logger level 0)."""
    sys.stdout.write(msg + "\n")


def err(msg: str) -> None:
    """A stderr line (the real tools' logger level -1)."""
    sys.stderr.write(msg + "\n")


def write(text: str) -> None:
    """Raw stdout text, for table and JSON output built piece by piece."""
    sys.stdout.write(text)


def fail(rc: int, *msgs: str) -> Exit:
    """Print `msgs` on stderr and return an `Exit` for the caller to raise."""
    for msg in msgs:
        err(msg)
    return Exit(rc)
