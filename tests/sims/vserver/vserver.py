"""The `vserver` command (native-formats.md §2.4).

    vserver [-s|--sync] [-v|--verbose] [--silent] [--debug] [--] NAME COMMAND ARGS...

Order of checks, as in the real script: a bad option exits 1; `build` is handed to
vserver-build before anything else; then a missing config dir exits 5 (every command, `status`
and unknown ones included); only then does an unknown command print the usage and exit 2.
`--silent` only silences the `status` messages (and the delete prompt).

Not simulated (they exit 1 saying so): enter, chkconfig, unify, hashify, pkg, pkgmgmt,
apt-get/apt-config/apt-cache, rpm, and the legacy tool that old `NAME.conf` guests hand over to
(its warning is printed first). `suexec USER prog...` behaves like `exec` (the user is ignored).
"""

from __future__ import annotations

import sys

from . import build, lifecycle, options, state
from .guest import Guest, Legacy, resolve
from .paths import Layout
from .toolrun import ToolExit, err, out, run_tool

LONG = ["nonamespace", "--nonamespace", "--insecure", "defaulttty", "help", "debug", "strace",
        "debug-sysv", "version", "sync", "verbose", "silent"]
COMMANDS = "start|stop|restart|condrestart|status|running|exec|suexec|delete|build"
NOT_SIMULATED = ("enter", "chkconfig", "unify", "hashify", "pkg", "pkgmgmt", "apt-get",
                 "apt-config", "apt-cache", "rpm")
HELP = f"""Usage: vserver [-s|--sync] [-v|--verbose] [--silent] [--debug] [--] NAME COMMAND ARGS...

COMMAND is one of {COMMANDS}.
This is vssim, a simulator of util-vserver for tests; see tests/sims/vserver."""


def _target(argv: list[str]) -> tuple[str | None, str | None]:
    """(command, name) of a call, for fault matching; lenient about bad options."""
    try:
        _, rest = options.parse("vserver", argv, "sv", LONG)
    except options.OptionError:
        return None, None
    return (rest[1] if len(rest) > 1 else None), (rest[0] if rest else None)


def _missing(target: Guest) -> int:
    err(f"Can not find a vserver-setup at '{target.dir}/'.\n\n"
        f"Check the name '{target.arg}', or create the guest with "
        f"'vserver {target.arg} build'.\n")
    return 5


def _run(layout: Layout, argv: list[str]) -> int:
    try:
        parsed, rest = options.parse("vserver", argv, "sv", LONG)
    except options.OptionError as exc:
        raise ToolExit(1, str(exc)) from None
    flags = {opt for opt, _ in parsed}
    if "--help" in flags:
        out(HELP)
        return 0
    if "--version" in flags:
        out("vserver (vssim, the util-vserver test simulator)")
        return 0
    silent = "--silent" in flags
    sync = bool(flags & {"-s", "--sync"})
    name = rest[0] if rest else ""
    command = rest[1] if len(rest) > 1 else ""
    args = rest[2:]
    if command == "build":
        return build.build(layout, ["-n", name, *args])
    target = resolve(layout, state.load(layout), name)
    if isinstance(target, Legacy):
        err("WARNING: can not find configuration, assuming legacy method")
        raise ToolExit(1, "vssim: the legacy vserver tool is not simulated")
    if not target.path.is_dir():
        return _missing(target)
    return _dispatch(layout, target, command, args, silent, sync)


def _dispatch(layout: Layout, target: Guest, command: str, args: list[str], silent: bool,
              sync: bool) -> int:
    if command == "start":
        return lifecycle.start(layout, target, args, force_sync=sync)
    if command == "stop":
        return lifecycle.stop(layout, target, args)
    if command == "restart" or (command == "condrestart"
                                and lifecycle.is_running(layout, target)):
        lifecycle.stop(layout, target, [])
        return lifecycle.start(layout, target, [])
    if command == "condrestart":
        return 0
    if command == "status":
        return lifecycle.show_status(layout, target, silent)
    if command == "running":
        return 0 if lifecycle.is_running(layout, target) else 1
    if command == "exec":
        return lifecycle.exec_in(layout, target, args)
    if command == "suexec":
        return lifecycle.exec_in(layout, target, args[1:])
    if command == "delete":
        return lifecycle.delete(layout, target, silent)
    if command in NOT_SIMULATED:
        raise ToolExit(1, f"vssim: 'vserver NAME {command}' is not simulated")
    err(f"Usage: vserver NAME {{{COMMANDS}}}")
    return 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vserver", args, _run, _target(args))
