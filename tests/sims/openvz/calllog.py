"""The call log every invocation appends to, and the optional fault injection file.

Call log: `$VZSIM_ROOT/var/log/vzsim.jsonl`, one JSON object per call, written at exit::

    {"tool": "vzctl", "argv": ["start", "101"], "rc": 0}

Faults: `$VZSIM_ROOT/etc/vzsim-faults.json` is a list of::

    {"tool": "vzctl", "command": "start", "ctid": "101", "rc": 3,
     "message": "Error: something broke", "times": 1}

`command` and `ctid` may be null (match anything; for vzlist the command is "list"; a ctid
matches the CT argument as given or the numeric id it names); `times` null means forever.
A matching call prints `message` on stderr and exits with `rc` without doing anything else;
`times` is counted down in the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .console import Exit
from .paths import Sim, sim_from_env


def run_tool(tool: str, run: Callable[[Sim, list[str]], int], argv: list[str] | None,
             env: Mapping[str, str] | None) -> int:
    """A tool's `main`: the host from the environment, `run`, its exit status logged."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        sim = sim_from_env(env)
    except Exit as exc:
        return exc.rc
    try:
        rc = run(sim, args)
    except Exit as exc:
        rc = exc.rc
    log_call(sim, tool, args, rc)
    return rc


def log_call(sim: Sim, tool: str, argv: list[str], rc: int) -> None:
    sim.log_file.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"tool": tool, "argv": argv, "rc": rc}) + "\n"
    with open(sim.log_file, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.write(line)


def take_fault(sim: Sim, tool: str, command: str | None,
               ctids: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The first fault matching this call (its `times` counted down), or None."""
    path = sim.faults_file
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        faults: list[dict[str, Any]] = json.loads(path.read_text() or "[]")
        for fault in faults:
            if fault.get("tool", "vzctl") != tool:
                continue
            if fault.get("command") not in (None, command):
                continue
            if fault.get("ctid") is not None and str(fault["ctid"]) not in ctids:
                continue
            times = fault.get("times")
            if times is not None:
                if times <= 0:
                    continue
                fault["times"] = times - 1
                path.write_text(json.dumps(faults, indent=2) + "\n")
            return fault
        return None
    finally:
        os.close(fd)
