"""Running the lxc-* tools (argument lists, never a shell) and pure parsers of what they print.

The parsers take text and return data, so they are tested from captured output
(tests/drivers/lxc/fixtures/) without a host, the way pyinfra separates facts from commands.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from reconciler.drivers import process
from reconciler.drivers.lxc.mapping import CgroupLayout
from reconciler.drivers.process import Result, Running
from reconciler.drivers.text import lines, words
from reconciler.errors import PermanentError
from reconciler.model.names import NAME_RE

# LXC states (LXC5 src/lxc/state.c): all but these count as running in the model
RUNNING_STATES = frozenset({"RUNNING", "STARTING", "FROZEN", "FREEZING", "THAWED"})
KNOWN_STATES = RUNNING_STATES | {"STOPPED", "STOPPING", "ABORTING"}


# ---------------------------------------------------------------------------- parsers


def parse_names(text: str) -> set[str]:
    """`lxc-ls -1 [--active]`: one container name per line."""
    return {line.strip() for line in lines(text) if line.strip()}


def parse_info_state(text: str) -> str | None:
    """`lxc-info -sH`: the bare state word (older versions print `State: RUNNING`)."""
    for line in lines(text):
        word = line.split(":", 1)[-1].strip()
        if word in KNOWN_STATES:
            return word
    return None


def parse_cgroup_layout(mounts: str, unified_controllers: str = "") -> CgroupLayout:
    """Which controllers are v1 hierarchies, from /proc/self/mounts, and which are enabled on
    cgroup2 (its cgroup.controllers file)."""
    v1: set[str] = set()
    has_v2 = False
    for line in lines(mounts):
        parts = words(line)
        if len(parts) < 4:
            continue
        if parts[2] == "cgroup":
            v1.update(o for o in parts[3].split(",") if o in _CONTROLLERS)
        elif parts[2] == "cgroup2":
            has_v2 = True
    v2 = set(words(unified_controllers.strip("\n"))) if has_v2 else set()
    return CgroupLayout(frozenset(v1), frozenset(v2 - v1))


_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                          "pids", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma",
                          "misc"})


def parse_template_comment(text: str) -> tuple[str | None, tuple[str, ...]]:
    """The template and its arguments, from the comment lxc-create writes at the top:

        # Template used to create this container: /usr/share/lxc/templates/lxc-busybox
        # Parameters passed to the template: -d debian -r bookworm
    """
    template = None
    options: tuple[str, ...] = ()
    for line in lines(text)[:20]:
        if line.startswith("# Template used to create this container:"):
            path = line.split(":", 1)[1].strip()
            base = os.path.basename(path)
            template = base[4:] if base.startswith("lxc-") else base or None
        elif line.startswith("# Parameters passed to the template:"):
            options = tuple(words(line.split(":", 1)[1]))
    return template, options


# ---------------------------------------------------------------------------- running


def check_name(name: str) -> str:
    """Names reach command lines and paths: the model checked them, we check again."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise PermanentError(f"refusing container name {name!r}")
    return name


def _checked(result: Result, name: str | None, check: bool) -> Result:
    if check and result.rc != 0:
        raise PermanentError(f"{result.argv[0]} {name or ''} failed: {result.why()}")
    return result


def _not_found(tool: str) -> str:
    return f"{tool} not found: is LXC installed (apt install lxc)?"


class Tools:
    """The lxc-* commands for one lxcpath (`-P` on every call)."""

    def __init__(self, lxcpath: str, timeout: float = 120.0) -> None:
        self.lxcpath = lxcpath
        self.timeout = timeout

    def _argv(self, tool: str, name: str | None, args: Sequence[str]) -> list[str]:
        argv = [tool, "-P", self.lxcpath]
        if name is not None:
            argv += ["-n", check_name(name)]
        argv += list(args)
        return argv

    def run(self, tool: str, name: str | None, args: Sequence[str] = (), *,
            timeout: float | None = None, check: bool = True) -> Result:
        result = process.run(self._argv(tool, name, args), timeout or self.timeout,
                             _not_found(tool))
        return _checked(result, name, check)

    def spawn(self, tool: str, name: str | None, args: Sequence[str] = ()) -> Running:
        """`run` in two halves: the tool starts now, `finish` waits for it."""
        return process.spawn(self._argv(tool, name, args), _not_found(tool))

    def finish(self, running: Running, check: bool = True) -> Result:
        return _checked(running.result(self.timeout), None, check)

    # ---- queries
    def active_soon(self) -> Running:
        """`active` started now, for `parse_names(finish(...).out)` later."""
        return self.spawn("lxc-ls", None, ["--active", "-1"])

    def active(self) -> set[str]:
        """Containers that are not STOPPED (running, frozen, starting, stopping).

        `lxc-ls --active -1` costs one process for all of them (9 ms for 30 here), where
        `lxc-ls -f -F NAME,STATE` asks every container for its details (98 ms for 30)."""
        return parse_names(self.run("lxc-ls", None, ["--active", "-1"]).out)

    def state(self, name: str) -> str | None:
        result = self.run("lxc-info", name, ["-sH"], check=False)
        return parse_info_state(result.out) if result.rc == 0 else None

    # ---- actions
    def create(self, name: str, template: str, config_file: str,
               options: Sequence[str] = ()) -> None:
        args = ["-t", template, "-f", config_file]
        if options:
            args += ["--", *options]
        self.run("lxc-create", name, args, timeout=max(self.timeout, 600))

    def start(self, name: str) -> None:
        self.run("lxc-start", name, ["-d"])

    def wait(self, name: str, state: str, timeout: float) -> bool:
        result = self.run("lxc-wait", name, ["-s", state, "-t", str(int(max(timeout, 1)))],
                          check=False, timeout=timeout + 10)
        return result.rc == 0

    def stop(self, name: str, timeout: float) -> Result:
        """Clean stop (lxc.signal.halt), then lxc-stop kills after `timeout`; 0 kills now.
        Exit status 2 means it was not running."""
        args = ["-k"] if timeout <= 0 else ["-t", str(int(timeout))]
        return self.run("lxc-stop", name, args, check=False, timeout=max(timeout, 0) + 30)

    def cgroup_set(self, name: str, file: str, value: str) -> Result:
        return self.run("lxc-cgroup", name, [file, value], check=False)

    def destroy(self, name: str) -> Result:
        return self.run("lxc-destroy", name, [], check=False)

    def attach(self, name: str, args: Sequence[str], timeout: float = 30) -> Result:
        """`lxc-attach` with `args` (its options, then `--` and the command)."""
        return self.run("lxc-attach", name, args, check=False, timeout=timeout)
