"""The step journal: one JSON line per plan and per step start/finish, in the state directory.

Written before and after each step, flushed at once, so after a crash the record shows what was
under way; the next pass re-observes and converges, it never trusts the journal over the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reconciler.errors import StateError
from reconciler.fsio import private_dir

MAX_BYTES = 64 * 1024 * 1024  # a journal past this size is set aside at the next plan


class Journal:
    """The journal of one writer (the state directory's lock keeps it so). When the file is
    over a size, `rotate_if_full` sets it aside as `journal.jsonl.1` (replacing the one
    before) and starts a new one: an unattended agent's journal stays bounded, and a plan's
    records are never split, as rotation happens only between plans."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "journal.jsonl"
        self._lock = threading.Lock()
        try:
            private_dir(self.path.parent)
            self._fh = self._open()
        except OSError as exc:
            raise self._error(exc) from None

    def _open(self) -> TextIO:
        """Append-only, 0600, never through a symlink planted at its name."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600)
        return os.fdopen(fd, "a", buffering=1)

    def _error(self, exc: OSError) -> StateError:
        return StateError(f"cannot write the journal {self.path}: {exc.strerror or exc}")

    def rotate_if_full(self, max_bytes: int = MAX_BYTES) -> bool:
        """Start a new file if this one is over `max_bytes`; True when it did."""
        with self._lock:
            try:
                self._fh.flush()
                if os.fstat(self._fh.fileno()).st_size <= max_bytes:
                    return False
                self._fh.close()
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
                self._fh = self._open()
            except OSError as exc:
                raise self._error(exc) from None
            return True

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event,
                  **fields}
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with self.writing() as put:
            put(line)

    @contextmanager
    def writing(self) -> Iterator[Callable[[str], object]]:
        """Write one record in pieces (a plan of 10,000 objects is streamed), under the lock:
        `put(text)`; a failed write (a full disk) is a StateError."""
        with self._lock:
            try:
                yield self._fh.write
            except OSError as exc:
                raise self._error(exc) from None

    def sync(self) -> None:
        with self._lock:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._fh.close()


def read(state_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete record; a torn last line (a killed writer) is skipped."""
    path = Path(state_dir) / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().split("\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
