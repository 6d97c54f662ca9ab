"""What every simulated tool does around its real work: the root, faults, the call log.

Call log: each invocation appends one JSON line to `$VSSIM_ROOT/var/log/vssim.jsonl` when it
ends, `{"tool": "vserver", "argv": [...], "rc": N}` (argv without the program name; tool is
vserver, vserver-stat, vserver-info, vuname, vsched, vlimit, naddress or ip). Only
top-level invocations are logged: when `restart` or `delete` stop a guest, the real script runs
itself again, the simulator does not, so no extra line appears.

Faults: `$VSSIM_ROOT/etc/vssim-faults.json` may hold a list of
`{"tool": "vserver", "command": "start", "name": "g1", "rc": 1, "message": "...", "times": 2}`.
`command` and `name` may be null (match anything); `times` null means every time, otherwise the
entry matches that many calls (the count is written back). A matching call prints the message on
stderr and exits with rc without doing anything else. `command` is the vserver command word or
the vserver-info tag; `name` is the NAME argument as given (one trailing slash ignored).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from . import state
from .paths import Layout, NoRoot


class ToolExit(Exception):
    """End the tool with this exit status, after printing message (if any) on stderr."""

    def __init__(self, rc: int, message: str | None = None) -> None:
        super().__init__(message or f"exit {rc}")
        self.rc = rc
        self.message = message


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def append_call(layout: Layout, tool: str, argv: list[str], rc: int) -> None:
    layout.call_log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"tool": tool, "argv": argv, "rc": rc})
    with open(layout.call_log, "a") as handle:
        handle.write(line + "\n")


def _matches(entry: dict[str, Any], tool: str, command: str | None, name: str | None) -> bool:
    if entry.get("tool") != tool:
        return False
    if entry.get("command") is not None and entry["command"] != command:
        return False
    if entry.get("name") is not None and name is None:
        return False
    if entry.get("name") is not None and entry["name"] not in (name, (name or "").rstrip("/")):
        return False
    times = entry.get("times")
    return times is None or int(times) > 0


def take_fault(layout: Layout, tool: str, command: str | None,
               name: str | None) -> dict[str, Any] | None:
    """The first fault entry matching this call, with its `times` counted down."""
    if not layout.faults_file.exists():
        return None
    with state.locked(layout):
        entries = json.loads(layout.faults_file.read_text() or "[]")
        for entry in entries:
            if _matches(entry, tool, command, name):
                if entry.get("times") is not None:
                    entry["times"] = int(entry["times"]) - 1
                    layout.faults_file.write_text(json.dumps(entries, indent=2) + "\n")
                return dict(entry)
    return None


Body = Callable[[Layout, list[str]], int]


def run_tool(tool: str, argv: list[str], body: Body,
             target: tuple[str | None, str | None]) -> int:
    """Run body(layout, argv) as `tool`; target is (command, name) for fault matching."""
    try:
        layout = Layout.from_env()
    except NoRoot as exc:
        err(str(exc))
        return 2
    rc = 1
    try:
        fault = take_fault(layout, tool, *target)
        if fault is not None:
            if fault.get("message"):
                err(str(fault["message"]))
            rc = int(fault.get("rc", 1))
        else:
            rc = body(layout, argv)
    except ToolExit as exc:
        if exc.message:
            err(exc.message)
        rc = exc.rc
    finally:
        sys.stdout.flush()
        append_call(layout, tool, argv, rc)
    return rc
