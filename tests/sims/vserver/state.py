"""The simulated kernel: running contexts and what starts applied to the host.

One JSON file, `$VSSIM_ROOT/proc/virtual/state.json`, replaced atomically and changed only under
an exclusive `flock` on a lock file next to it. Layout (all keys always present):

    {
      "version": 1,
      "page_size": 4096,            # vserver-stat multiplies page counts by this
      "cpus": 2,                    # CPUs of the host: sched values are kept per CPU
      "devices": ["lo", "eth0"],    # host NICs; addresses on other devices are refused
      "next_dynamic_xid": 49152,    # dynamic XIDs count up from here
      "next_pid": 20000,            # fake pids handed to guest init processes
      "addresses": [ ... ],         # addresses on host NICs, each with its "owner" config dir
      "mounts": [ ... ],            # mounts made from fstab files, each with its "owner"
      "contexts": {"<xid>": { ... }}, # running contexts, see lifecycle.py for the fields
      "boots": {"<config dir>": N}    # successful starts per guest, kept across stops (the
                                      # simulator's bookkeeping for tests counting restarts)
    }

`VSSIM_NOW` (seconds since the epoch, optional) freezes the clock for uptimes and run-file times.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from .paths import Layout

State = dict[str, Any]
Context = dict[str, Any]

FIRST_DYNAMIC_XID = 49152
LAST_XID = 65535


def default_state() -> State:
    return {
        "version": 1,
        "page_size": 4096,
        "cpus": 2,
        "devices": ["lo", "eth0"],
        "next_dynamic_xid": FIRST_DYNAMIC_XID,
        "next_pid": 20000,
        "addresses": [],
        "mounts": [],
        "contexts": {},
        "boots": {},
    }


def now() -> float:
    frozen = os.environ.get("VSSIM_NOW")
    return float(frozen) if frozen else time.time()


def load(layout: Layout) -> State:
    try:
        text = layout.state_file.read_text()
    except FileNotFoundError:
        return default_state()
    state: State = {**default_state(), **json.loads(text)}
    return state


def save(layout: Layout, state: State) -> None:
    layout.statedir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=layout.statedir, prefix=".state.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, layout.state_file)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """The one lock serialising changes to the kernel state and to `.defaults/context.next`."""
    layout.statedir.mkdir(parents=True, exist_ok=True)
    with open(layout.state_lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def transaction(layout: Layout) -> Iterator[State]:
    """Load under the lock, let the caller change it, save it when the block ends normally."""
    with locked(layout):
        state = load(layout)
        yield state
        save(layout, state)


def get_context(state: State, xid: int) -> Context | None:
    ctx: Context | None = state["contexts"].get(str(xid))
    return ctx


def uts_context(state: State, xid: int) -> str | None:
    """`vuname --get --xid X context`: the config dir a running context was started from."""
    ctx = get_context(state, xid)
    return None if ctx is None else str(ctx["uts"].get("context", ""))


def allocate_dynamic_xid(state: State) -> int | None:
    start: int = max(int(state["next_dynamic_xid"]), FIRST_DYNAMIC_XID)
    candidates: list[int] = [*range(start, LAST_XID + 1), *range(FIRST_DYNAMIC_XID, start)]
    for xid in candidates:
        if str(xid) not in state["contexts"]:
            state["next_dynamic_xid"] = xid + 1 if xid < LAST_XID else FIRST_DYNAMIC_XID
            return xid
    return None


def allocate_pid(state: State) -> int:
    pid = int(state["next_pid"])
    state["next_pid"] = pid + 1
    return pid
