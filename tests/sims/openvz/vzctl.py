"""The simulated `vzctl`: command dispatch, CT id resolution, config and lock checks.

Order of checks, as in the real main() (reference §1.9 "Which code a given situation returns"):
global flags; the command ("Bad command", 20); the CT id ("CT ID missing" / "ctid is not
given", 21; a bad id or unknown name, 21); vz.conf (10); the action's options; CT 0 (legacy:
only `set`, 21); CTID.conf (missing: 14 except for create/status/set, and O7's stop); the per-CT
lock (9); then the action.

Choices where the reference is silent:

* IDs 1-100 are accepted: the real tools only document them as reserved. The maximum is
  2147483644; O7 takes integer CT ids only (no UUIDs).
* Commands the simulator does not model (enter, console, runscript, suspend/resume,
  snapshots, convert, compact, legacy quota*) exit 3 with a "not simulated" message.
* exec/exec2/exec3 run the command on the host, in the CT's VE_ROOT, with VZSIM_CTID set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from . import create, lifecycle, setcmd, setopts
from .calllog import run_tool, take_fault
from .console import Exit, err, fail, out, write
from .ct import Ct
from .names import resolve_name
from .options import BadOption, Opt, getopt
from .paths import Sim
from .state import LockBusy, ct_lock

VEID_MAX = 2147483644
ACTIONS = ("set", "create", "start", "stop", "restart", "destroy", "delete", "mount", "umount",
           "status", "exec", "exec2", "exec3")
NOT_SIMULATED = ("enter", "console", "runscript", "suspend", "chkpnt", "resume", "restore",
                 "snapshot", "snapshot-switch", "snapshot-delete", "snapshot-mount",
                 "snapshot-umount", "snapshot-list", "convert", "compact", "quotaon",
                 "quotaoff", "quotainit", "register", "unregister", "reinstall", "pause",
                 "monitor", "execaction", "unset", "setrate")
VERSION_STRINGS = {"3": "vzctl version 3.0.30", "4": "vzctl version 4.11.1",
                   "7": "vzctl version 7.0.263"}

_START_OPTS = [Opt("force", False), Opt("skip_ve_setup", False), Opt("wait", False),
               Opt("skip-fsck", False), Opt("skip-remount", False)]
_STOP_OPTS = [Opt("fast", False), Opt("skip-umount", False)]

USAGE = """Usage: vzctl [--quiet|--verbose] COMMAND CTID [options]
Commands (simulated):
  create CTID --ostemplate NAME [--config NAME] [--private PATH] [--root PATH]
         [--ipadd ADDR] [--hostname NAME] [--name NAME] [--layout simfs] [--diskspace N]
  set CTID [parameters] [--save] [--setmode restart|ignore] [--force]
  start CTID [--wait] [--force]     stop CTID [--fast] [--skip-umount]
  restart | destroy | delete | mount | umount | status CTID
  exec | exec2 | exec3 CTID COMMAND [ARG...]
"""


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    return run_tool("vzctl", _run, argv, env)


def _run(sim: Sim, args: list[str]) -> int:
    args = list(args)  # the caller logs the original argv
    verbose = 0
    skiplock = False
    while args and args[0] in ("--verbose", "--quiet", "--version", "--skiplock", "--help"):
        flag = args.pop(0)
        if flag == "--verbose":
            verbose += 1
        elif flag == "--version":
            out(VERSION_STRINGS[sim.version])
            return 0
        elif flag == "--help":
            write(USAGE)
            return 0
        elif flag == "--skiplock":
            skiplock = True
        # --quiet: the simulator keeps its messages; tests read them
    if not args:
        write(USAGE)
        return 20
    command, rest = args[0], args[1:]
    if command not in ACTIONS:
        if command in NOT_SIMULATED:
            if not sim.legacy and command in ("quotaon", "quotaoff", "quotainit"):
                err(f"Warning: The '{command}' action is deprecated")
                return 0
            raise fail(3, f"vzsim: 'vzctl {command}' is not simulated")
        raise fail(20, f"Bad command: {command}")
    _injected_fault(sim, command, rest[0] if rest else None)
    if not rest:
        raise fail(21, "CT ID missing" if sim.legacy else "ctid is not given")
    arg = rest[0]
    if command == "status":
        verbose = -1  # legacy status shows only stderr messages, whatever --verbose says
    ctid, by_name = _resolve(sim, command, arg)
    if not sim.vz_conf.is_file():
        raise fail(10, f"Unable to open {sim.vz_conf}: No such file or directory")
    ct = Ct(sim, ctid, verbose)
    ct.load()
    request = _parse_action(ct, command, rest[1:])
    if sim.legacy and ctid == "0" and command != "set":
        raise fail(21, "Only set actions are allowed for CT0")
    if by_name and sim.legacy and ct.conf.get("NAME") not in (None, arg):
        raise fail(21, f"Unable to find container by name {arg}")
    if not ct.conf_path.exists():
        allowed = ("create", "status", "set") if sim.legacy else (
            "create", "status", "set", "stop")
        if command not in allowed:
            raise fail(14, "Container config file does not exist" if sim.legacy else
                       "Container configuration file does not exist")
    if skiplock or not _locks(sim, command):
        return _dispatch(ct, command, request)
    try:
        with ct_lock(ct.lockdir(), ctid):
            return _dispatch(ct, command, request)
    except LockBusy:
        raise fail(9, "Container already locked" if sim.legacy else
                   "Cannot lock the Container") from None


def _injected_fault(sim: Sim, command: str, arg: str | None) -> None:
    ids: tuple[str, ...] = ()
    if arg is not None:
        resolved = resolve_name(sim, arg) or (str(int(arg)) if arg.strip().isdigit() else arg)
        ids = (arg, resolved)
    fault = take_fault(sim, "vzctl", command, ids)
    if fault is not None:
        if fault.get("message"):
            err(str(fault["message"]))
        raise Exit(int(fault.get("rc", 1)))


def _resolve(sim: Sim, command: str, arg: str) -> tuple[str, bool]:
    """CTID from an id or a name; returns (ctid, given_by_name)."""
    bad = f"Bad CT ID {arg}" if sim.legacy else f"Invalid ctid is specified: {arg}"
    m = re.fullmatch(r"\s*([+-]?\d+)", arg)
    if m is not None and (sim.legacy or command == "create"):
        number = int(m.group(1))
        if number > 2**31 - 1 or number < -(2**31):
            m = None  # does not fit an int: the legacy tool tries it as a name
        elif number < 0 or number > VEID_MAX:
            raise fail(21, bad)
        else:
            return str(number), False
    named = resolve_name(sim, arg)
    if named is not None:
        return named, True
    if m is not None and not sim.legacy:
        number = int(m.group(1))
        if 0 <= number <= VEID_MAX:
            return str(number), False
    raise fail(21, bad)


def _parse_action(ct: Ct, command: str, args: list[str]) -> object:
    legacy = ct.sim.legacy
    if command == "set":
        return setopts.parse_args(ct, args)
    if command == "create":
        return create.parse_args(ct, args)
    if command.startswith("exec"):
        return args
    table: list[Opt] = []
    if command in ("start", "restart"):
        table += _START_OPTS
    if command in ("stop", "restart"):
        table += _STOP_OPTS
    if not legacy and command == "stop":
        table.append(Opt("force", False))
    try:
        found, rest = getopt("vzctl", args, table + _START_OPTS + _STOP_OPTS)
    except BadOption:
        raise Exit(20) from None
    for opt, _value in found:
        if opt not in table:
            raise fail(20, f"Option --{opt.name} is not applicable to {command} command")
    if rest:
        err("Invalid extra arguments: " + "".join(f"{w} " for w in rest))
        raise Exit(20)
    return {opt.name: True for opt, _value in found}


def _locks(sim: Sim, command: str) -> bool:
    """Both versions lock the CT for every simulated action but exec* and status."""
    return not (command.startswith("exec") or command == "status")


def _dispatch(ct: Ct, command: str, request: object) -> int:
    if command == "set":
        assert isinstance(request, setopts.SetRequest)
        return setcmd.run(ct, request)
    if command == "create":
        assert isinstance(request, dict)
        return create.create(ct, request)
    if command.startswith("exec"):
        assert isinstance(request, list)
        return lifecycle.execute(ct, command, request)
    opts = request if isinstance(request, dict) else {}
    if command == "start":
        return lifecycle.start(ct, force=bool(opts.get("force")), wait=bool(opts.get("wait")))
    if command == "stop":
        return lifecycle.stop(ct, fast=bool(opts.get("fast")),
                              skip_umount=bool(opts.get("skip-umount")))
    if command == "restart":
        return lifecycle.restart(ct, force=bool(opts.get("force")),
                                 wait=bool(opts.get("wait")), fast=bool(opts.get("fast")))
    if command in ("destroy", "delete"):
        return lifecycle.destroy(ct)
    if command == "mount":
        return lifecycle.mount(ct)
    if command == "umount":
        return lifecycle.umount(ct)
    return lifecycle.status(ct)
