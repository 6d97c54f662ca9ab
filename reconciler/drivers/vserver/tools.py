"""util-vserver's commands, run with argument lists (never a shell), and pure parsers of what
they print (reference native-formats §2.4-§2.6).

    vserver NAME build|start|stop|status|delete    the guest's life (the `vserver` script)
    vserver-stat                                    the running contexts, one row each
    vuname, vsched, vlimit, naddress, ip            a running context changed in place

Exit codes are mapped once, in `failure`: a timeout and `vcontext`'s 254 (the context is
still in use, e.g. by a guest that is stopping) are worth retrying; everything else (a bad
option 1, usage 2, no such guest 5, a failed start 1/255) is not. The tool's own message goes
with the error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.drivers import process
from reconciler.drivers.process import Result, Running
from reconciler.drivers.text import lines, words
from reconciler.errors import DriverError, PermanentError, TransientError
from reconciler.model.names import NAME_RE

# the default program of each tool (found on PATH), by its option name
TOOLS = {"vserver": "vserver", "vserver_stat": "vserver-stat", "vuname": "vuname",
         "vsched": "vsched", "vlimit": "vlimit", "naddress": "naddress", "ip": "ip"}
STAT_HEADER = "CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME"
NAME_COLUMN = 55  # vserver-stat's NAME starts here (§2.5)
RETRY = {254}  # vcontext: the context exists (still in use)


# ---------------------------------------------------------------------------- parsers


@dataclass(frozen=True)
class StatRow:
    xid: int
    procs: int
    name: str


def parse_stat(text: str) -> dict[int, StatRow]:
    """`vserver-stat`: the running contexts by XID. Rows are fixed columns (§2.5): the first
    seven fields in the first 55 characters, the display name (cut to 20, possibly empty or
    holding blanks) after them. Lines that are not rows (the header) are skipped."""
    rows: dict[int, StatRow] = {}
    for row in lines(text):
        fields = words(row[:NAME_COLUMN])
        if len(fields) != 7 or not fields[0].isdigit() or not fields[1].isdigit():
            continue
        xid = int(fields[0])
        rows[xid] = StatRow(xid, int(fields[1]), row[NAME_COLUMN:])
    return rows


def message(out: str, err: str) -> str:
    """The lines a failing util-vserver command printed, joined (its last line alone is
    usually only "Failed to start vserver 'NAME'")."""
    found = [ln.strip() for ln in lines(err or out) if ln.strip()]
    return " | ".join(found[-3:])


# ---------------------------------------------------------------------------- running


def failure(result: Result, what: str) -> DriverError:
    """The error of a failed command: transient for a context still in use, else permanent."""
    why = message(result.out, result.err) or f"exit status {result.rc}"
    text = f"{what}: {os.path.basename(result.argv[0])} exited {result.rc}: {why}"
    if result.rc in RETRY:
        return TransientError(text, delay=2.0)
    return PermanentError(text)


def check_name(name: str) -> str:
    """Names reach command lines and paths: the model checked them, we check again."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise PermanentError(f"refusing guest name {name!r}")
    return name


class Tools:
    """The util-vserver programs, by option name (`vserver`, `vserver_stat`, ...)."""

    def __init__(self, paths: Mapping[str, str], timeout: float = 120.0,
                 build_timeout: float = 3600.0) -> None:
        self.paths = {**TOOLS, **paths}
        self.timeout = timeout
        self.build_timeout = build_timeout

    def argv(self, tool: str, args: Sequence[str]) -> list[str]:
        return [self.paths[tool], *args]

    def run(self, tool: str, args: Sequence[str], timeout: float | None = None) -> Result:
        return process.run(self.argv(tool, args), timeout or self.timeout, self._missing(tool))

    def spawn(self, tool: str, args: Sequence[str]) -> Running:
        return process.spawn(self.argv(tool, args), self._missing(tool))

    def _missing(self, tool: str) -> str:
        return (f"{self.paths[tool]} not found: is util-vserver installed (or the driver "
                f"option {tool} set)?")

    def checked(self, tool: str, args: Sequence[str], what: str,
                timeout: float | None = None) -> Result:
        result = self.run(tool, args, timeout)
        if result.rc != 0:
            raise failure(result, what)
        return result

    # ---- queries
    def stat_soon(self) -> Running:
        return self.spawn("vserver_stat", [])

    def stat(self, running: Running | None = None) -> dict[int, StatRow]:
        result = (running or self.stat_soon()).result(self.timeout)
        if result.rc != 0:
            raise failure(result, "vserver-stat")
        return parse_stat(result.out)

    def status(self, name: str) -> bool:
        """`vserver NAME status`: 0 running, 3 stopped (§2.4); anything else is an error."""
        result = self.run("vserver", ["--silent", check_name(name), "status"])
        if result.rc in (0, 3):
            return result.rc == 0
        raise failure(result, f"vserver {name} status")

    # ---- the guest's life
    def build(self, name: str, args: Sequence[str]) -> None:
        self.checked("vserver", [check_name(name), "build", *args], f"build {name}",
                     timeout=self.build_timeout)

    def start(self, name: str) -> None:
        self.checked("vserver", [check_name(name), "start"], f"start {name}")

    def stop(self, name: str) -> None:
        self.checked("vserver", [check_name(name), "stop"], f"stop {name}")

    def delete(self, name: str) -> None:
        # --silent: delete asks "Are you sure" otherwise (§2.4); stdin is /dev/null anyway
        self.checked("vserver", ["--silent", check_name(name), "delete"], f"delete {name}")
