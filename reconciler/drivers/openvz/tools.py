"""Running vzctl and vzlist (argument lists, never a shell) and pure parsers of their output.

The parsers take text and return data, so they are tested from captured output without a
host. Exit codes are mapped here, once (reference §1.9): a locked container (9), a tool that
timed out (15) or could not stop a container yet (33) is worth retrying; everything else is
permanent and carries the tool's own last message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from reconciler.drivers import process
from reconciler.drivers.openvz.native import Version
from reconciler.drivers.process import Result, Running
from reconciler.drivers.text import last_line, lines, words
from reconciler.errors import ConfigError, PermanentError, TransientError

# vzctl exit codes worth a retry (§1.9): locked, exec timeout, unable to stop
TRANSIENT_CODES = {9: "the container is locked by another vzctl", 15: "timed out",
                   33: "unable to stop the container"}
ALREADY_RUNNING = 32
NOT_RUNNING = 31
_UPTIME = re.compile(r"(\d+)d(\d+)h:(\d+)m:(\d+)s\Z")  # vzlist's table: 000d01h:02m:03s
# vzlist status words that mean the container runs (O7 `paused` is frozen: `vzctl start`
# resumes it, so it counts as stopped here)
RUNNING = "running"


# ---------------------------------------------------------------------------- parsers


def parse_version(text: str) -> Version:
    """`vzctl --version`: `vzctl version 4.11.1` (legacy) or `vzctl version 7.0.263`."""
    for line in lines(text):
        match = re.search(r"\bversion\s+(\d+)\.", line)
        if match:
            major = int(match.group(1))
            if major in (3, 4):
                return Version("legacy", major)
            if major == 7:
                return Version("7", 7)
            raise ConfigError(f"openvz: vzctl {match.group(1)}.x is not a version this driver "
                              "knows (3, 4 or 7); set `version: legacy` or `version: 7`")
    raise ConfigError("openvz: cannot tell the vzctl version from `vzctl --version` "
                      f"({last_line(text) or 'no output'!r}); set `version: legacy` or "
                      "`version: 7`")


def parse_status_json(text: str) -> dict[str, str]:
    """`vzlist -a -j -o ctid,status`: CTID -> status. Only these two fields are asked for:
    vzlist prints strings without JSON escaping, and everything else is read from the
    config files anyway. Legacy prints the CTID as a number, OpenVZ 7 as a string."""
    try:
        rows = json.loads(text or "[]")
    except ValueError as exc:
        raise PermanentError(f"vzlist printed JSON that does not parse: {exc}") from None
    out: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else ():
        if isinstance(row, dict) and row.get("ctid") is not None:
            out[str(row["ctid"]).strip()] = str(row.get("status") or "")
    return out


def parse_status_table(text: str) -> dict[str, str]:
    """`vzlist -a -H -t -o ctid,status` (vzctl 3.x has no -j): `       101 running`."""
    out: dict[str, str] = {}
    for line in lines(text):
        parts = words(line)
        if len(parts) >= 2 and parts[0].isdigit():
            out[str(int(parts[0]))] = parts[1]
    return out


def parse_status_line(text: str) -> tuple[bool, bool, str]:
    """`vzctl status CTID`: (exists, mounted, run word), e.g. `CTID 101 exist mounted
    running`; OpenVZ 7 says `VEID` and may say `paused` or `suspended`."""
    for line in lines(text):
        parts = words(line)
        if len(parts) >= 5 and parts[0] in ("CTID", "VEID"):
            return parts[2] == "exist", parts[3] == "mounted", parts[4]
    return False, False, ""


def template_names(files: Sequence[str]) -> frozenset[str]:
    """OS templates in TEMPLATE/cache: `<name>.tar`, `.tar.gz`, `.tar.bz2`, `.tar.xz`."""
    out = set()
    for name in files:
        match = re.fullmatch(r"(.+)\.tar(?:\.gz|\.bz2|\.xz)?", name)
        if match and not name.startswith("."):
            out.add(match.group(1))
    return frozenset(out)


# ---------------------------------------------------------------------------- running


def parse_uptime(text: str) -> float | None:
    """Seconds from vzlist's `uptime` (the table's `DDDd HHh:MMm:SSs`, or JSON's seconds);
    None for `-` (not running) or `0.000` (unknown)."""
    value = last_line(text).strip()
    found = _UPTIME.match(value)
    if found:
        days, hours, minutes, seconds = map(int, found.groups())
        return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    try:
        return float(value) or None
    except ValueError:
        return None


def error_for(result: Result, what: str) -> TransientError | PermanentError:
    """The one mapping of a failed vzctl/vzlist call to our errors, with the tool's message."""
    message = f"{what}: {result.why()} (exit {result.rc})"
    if result.rc in TRANSIENT_CODES:
        return TransientError(f"{message}; {TRANSIENT_CODES[result.rc]}", delay=2.0)
    return PermanentError(message)


_MISSING = "{} not found: is vzctl installed?"


class Tools:
    """vzctl and vzlist at the configured paths."""

    def __init__(self, vzctl: str, vzlist: str, timeout: float) -> None:
        self.vzctl = vzctl
        self.vzlist = vzlist
        self.timeout = timeout

    def run(self, tool: str, args: Sequence[str], *, timeout: float | None = None) -> Result:
        return process.run([tool, *args], timeout or self.timeout, _MISSING.format(tool))

    def vz(self, *args: str, timeout: float | None = None) -> Result:
        return self.run(self.vzctl, args, timeout=timeout)

    def checked(self, *args: str, timeout: float | None = None) -> Result:
        result = self.vz(*args, timeout=timeout)
        if result.rc != 0:
            raise error_for(result, f"vzctl {' '.join(args[:2])}")
        return result

    def version(self) -> Version:
        result = self.run(self.vzctl, ["--version"])
        return parse_version(result.out + "\n" + result.err)

    def listing_argv(self, version: Version) -> list[str]:
        if version.json:
            return [self.vzlist, "-a", "-j", "-o", "ctid,status"]
        return [self.vzlist, "-a", "-H", "-t", "-o", "ctid,status"]

    def listing_soon(self, version: Version) -> Running:
        """The listing, started now; `.result()` waits for it."""
        argv = self.listing_argv(version)
        return process.spawn(argv, _MISSING.format(argv[0]))

    @staticmethod
    def statuses(result: Result, version: Version) -> dict[str, str]:
        """CTID -> vzlist status. No container at all is not an error (legacy prints
        "Container(s) not found" and exits 0 without CTID arguments)."""
        if result.rc != 0:
            raise error_for(result, "vzlist")
        if version.json:
            return parse_status_json(result.out)
        return parse_status_table(result.out)
