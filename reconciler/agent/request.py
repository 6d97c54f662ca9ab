"""`reconciler reconcile`: ask the running agent for a full pass now, and wait for its answer.

The agent's pid is the one its state lock records; SIGUSR1 asks, as SIGHUP asks for a reload.
A signal needs no listening socket (the HTTP endpoint may be off, or on a management address
where a POST would let anyone who reaches it ask) and no right beyond the one to signal the
agent's user. The agent writes what the pass it ran for the newest request did into the
status file's `request`:

    {"received": "...", "answered": "...", "plan_id": "...", "trigger": "request",
     "scope": "full", "result": "succeeded", "steps": {...}, "notes": [...], "commit": "..."}
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from reconciler.engine.lock import holder
from reconciler.errors import StateError

from .status import iso, read_status

REQUEST_SIGNAL = signal.SIGUSR1
POLL_EVERY = 0.1  # seconds between reads of the status file while waiting


def agent_pid(state_dir: str | Path) -> int:
    """The pid of the agent running on `state_dir`; StateError when none does, or when this
    user cannot tell (the service's state directory is root's)."""
    path = Path(state_dir)
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise StateError(f"cannot read the state directory {path}: permission denied; run "
                         "this as the agent's user (root for the systemd service)")
    held = holder(path)
    if held is None or held.pid <= 0:
        raise StateError(f"no agent runs on the state directory {path}")
    if not held.is_agent:
        raise StateError(f"no agent runs on the state directory {path}: a reconciler "
                         f"{held.role} (pid {held.pid}) holds it")
    return held.pid


def ask(pid: int) -> float:
    """Signal the agent; returns when it was asked (wall time, as the agent records it)."""
    asked = time.time()
    try:
        os.kill(pid, REQUEST_SIGNAL)
    except ProcessLookupError:
        raise StateError(f"the agent (pid {pid}) stopped before it could be asked") from None
    except PermissionError:
        raise StateError(f"not allowed to signal the agent (pid {pid}): it runs as another "
                         "user; run this as that user (root for the systemd service)") from None
    return asked


def wait_answer(state_dir: str | Path, pid: int, asked: float, timeout: float) -> dict[str, Any]:
    """The status file's `request` once it answers a request made at `asked` or later;
    StateError when the agent stops first or `timeout` seconds pass (0: no limit)."""
    since = iso(asked) or ""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while True:
        request = (read_status(state_dir) or {}).get("request")
        if isinstance(request, dict) and str(request.get("received") or "") >= since:
            return request
        held = holder(state_dir)
        if held is None or held.pid != pid:
            raise StateError(f"the agent (pid {pid}) stopped before it ran the pass")
        if deadline is not None and time.monotonic() >= deadline:
            raise StateError(f"no answer from the agent (pid {pid}) within {timeout:g} s; it "
                             "may still run the pass (`reconciler status` shows the last one)")
        time.sleep(POLL_EVERY)
