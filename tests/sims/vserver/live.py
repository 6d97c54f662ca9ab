"""Changing a running context the way the low-level tools do (native-formats.md §2.6).

Plain functions for tests, the same changes as the `vsched`, `vuname` and `vlimit` commands
(ctxtools.py) without running one. They change only the kernel state, never the config files
(the real tools persist nothing either). Each raises
LookupError when no context has that XID, and the parsing errors of the real tools
(sched.SchedError, limits.LimitError) for bad values.
"""

from __future__ import annotations

from pathlib import Path

from . import limits, sched, state
from .paths import Layout
from .state import Context, State


def _context(st: State, xid: int) -> Context:
    ctx = state.get_context(st, xid)
    if ctx is None:
        raise LookupError(f"no running context {xid}")
    return ctx


def set_uts(layout: Layout, xid: int, **fields: str) -> None:
    """vuname --xid X --set -t FIELD=VALUE ...; FIELD as in uts/ (nodename, domainname...)."""
    with state.transaction(layout) as st:
        _context(st, xid)["uts"].update(fields)


def set_sched(layout: Layout, xid: int, values: dict[str, int], *, cpu_id: int | None = None,
              bucket_id: int | None = None, idle_time: bool = False) -> None:
    """vsched --xid X --fill-rate ... [--cpu-id N] [--bucket-id B] [--idle-time].

    Like the real tool, idle time is switched off unless idle_time is given again.
    """
    with state.transaction(layout) as st:
        ctx = _context(st, xid)
        change = sched.SchedSet(values={**values})
        if cpu_id is not None:
            change.values["cpu-id"] = cpu_id
        if bucket_id is not None:
            change.values["bucket-id"] = bucket_id
        sched.apply(ctx["sched"], int(st["cpus"]), change, idle_time)


def set_sched_from_dir(layout: Layout, xid: int, directory: Path) -> None:
    """vsched --xid X --dir DIR --missingok: re-read a sched/ tree onto the running context."""
    with state.transaction(layout) as st:
        ctx = _context(st, xid)
        ctx["sched"] = sched.from_dir(directory, int(st["cpus"]), ctx["sched"])


def set_rlimits_from_dir(layout: Layout, xid: int, directory: Path) -> None:
    """vlimit --xid X --dir DIR --missingok: the files found replace those limits."""
    with state.transaction(layout) as st:
        ctx = _context(st, xid)
        ctx["rlimits"].update(limits.read_rlimits(directory))
