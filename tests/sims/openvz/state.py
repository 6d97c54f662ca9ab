"""The simulated kernel: which CTs are mounted and running, and what was pushed into them.

`$VZSIM_ROOT/proc/vz/state.json` holds::

    {"cts": {"101": {"mounted": true, "running": true, "started_at": 1700000000.0,
                      "params": {"HOSTNAME": "web1", "IP_ADDRESS": "10.0.0.1/24",
                                 "NUMPROC": "240:240", ...},
                      "held": {"numproc": [12, 30, 0]}}}}

`params` are the values the CT received at start or from a live `set` (UBCs and disk limits as
`barrier:limit` numbers, lists space-separated), so a test can tell whether `set` applied a
value live. A top-level `boots` map counts every start per CTID (kept across stops; tests
count restarts with it). `held` is optional (held, maxheld, failcnt per UBC, 0 when absent);
tests may write it to shape vzlist output. Updates happen under an exclusive flock on
`state.json.lock` and are written to a temp file that is renamed over the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .paths import Sim


def _new_ct() -> dict[str, Any]:
    return {"mounted": False, "running": False, "params": {}}


class KernelState:
    def __init__(self, sim: Sim) -> None:
        self.path = sim.state_file
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        data.setdefault("cts", {})
        return data

    def read(self) -> dict[str, Any]:
        with self._locked(fcntl.LOCK_SH):
            return self._load()

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the state lock; the new state is renamed into place."""
        with self._locked(fcntl.LOCK_EX):
            data = self._load()
            yield data
            tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)

    def ct(self, ctid: str) -> dict[str, Any]:
        """A snapshot of one CT's kernel state (all False when the kernel never saw it)."""
        entry: dict[str, Any] = self.read()["cts"].get(ctid, _new_ct())
        return entry

    def is_running(self, ctid: str) -> bool:
        return bool(self.ct(ctid).get("running"))

    def is_mounted(self, ctid: str) -> bool:
        return bool(self.ct(ctid).get("mounted"))

    def running_ids(self) -> list[str]:
        return [c for c, v in self.read()["cts"].items() if v.get("running")]

    def update_ct(self, ctid: str, **changes: Any) -> dict[str, Any]:
        with self.edit() as data:
            entry = data["cts"].setdefault(ctid, _new_ct())
            entry.update(changes)
            if not entry.get("mounted") and not entry.get("running"):
                data["cts"].pop(ctid)  # the kernel forgets CTs that are down and unmounted
            return dict(entry)

    def count_boot(self, ctid: str) -> None:
        """One more start of this CT (`boots` survives stops, as a host's boot log would)."""
        with self.edit() as data:
            boots = data.setdefault("boots", {})
            boots[ctid] = int(boots.get(ctid, 0)) + 1

    def push_params(self, ctid: str, params: dict[str, str]) -> None:
        """Apply parameters to a running CT (a live `set`)."""
        with self.edit() as data:
            entry = data["cts"].setdefault(ctid, _new_ct())
            entry.setdefault("params", {}).update(params)


class LockBusy(Exception):
    """Another process holds the CT lock."""


@contextlib.contextmanager
def ct_lock(lockdir: Path, ctid: str) -> Iterator[None]:
    """The per-CT lock: a non-blocking flock on LOCKDIR/CTID.lck (raises LockBusy)."""
    lockdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lockdir / f"{ctid}.lck", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(ctid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
