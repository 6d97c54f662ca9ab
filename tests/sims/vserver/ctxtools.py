"""`vuname`, `vsched` and `vlimit` on a running context (native-formats.md §2.6), as commands.

They change the kernel state only, never a config file (the real tools persist nothing), and
take the forms the reference lists:

    vuname --xid X -s -t TAG=VALUE [-t TAG=VALUE...]     (-g --xid X TAG... prints them)
    vuname --xid X --dir DIR [--missingok]               (each file of DIR names a TAG)
    vsched --xid X [--force] --dir DIR [--missingok]
    vsched --xid X [--fill-rate N] [--interval N] ... [--cpu-id N] [--bucket-id N]
           [--idle-time] [--force]
    vlimit --xid X [-M|-S|-H] --RESOURCE VALUE ... [--dir DIR [--missingok]]

X is a number, or a guest as the C library resolves ids (cfgstyle.xidopt2xid). No running
context with that XID: "No such process", exit 1 (vuname, vsched) or 255 (vlimit). A bad value
fails as the real tool does (vsched: 255 for an option, 1 for a file; vlimit: 255). Running a
program after `--` (the tools' chain form) is not simulated here: the start chain is
lifecycle.py's business.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import cfgstyle, limits, numbers, options, sched, state, tree
from .paths import Layout
from .state import Context, State
from .toolrun import ToolExit, out, run_tool

UTS_TAGS = ("context", "sysname", "nodename", "release", "version", "machine", "domainname")
SCHED_OPTIONS = {"fill-rate": "fill-rate", "interval": "interval", "tokens": "tokens",
                 "tokens-min": "tokens-min", "tokens-max": "tokens-max",
                 "prio-bias": "priority-bias", "priority-bias": "priority-bias",
                 "fill-rate2": "fill-rate2", "interval2": "interval2", "cpu-id": "cpu-id",
                 "bucket-id": "bucket-id"}


def _context(layout: Layout, st: State, xid_text: str | None, tool: str, rc: int) -> Context:
    if not xid_text:
        raise ToolExit(rc, f"{tool}: no --xid given (the simulator has no current context)")
    xid = cfgstyle.xidopt2xid(layout, st, xid_text)
    ctx = state.get_context(st, xid) if xid is not None else None
    if ctx is None:
        raise ToolExit(rc, f"{tool}: context {xid_text}: No such process")
    return ctx


def _no_program(tool: str, rest: list[str]) -> None:
    if rest:
        raise ToolExit(1, f"vssim: running a program after {tool} is not simulated")


# ---------------------------------------------------------------------------- vuname

def _vuname(layout: Layout, argv: list[str]) -> int:
    try:
        parsed, rest = options.parse("vuname", argv, "gst:", ["xid=", "dir=", "missingok",
                                                             "help", "version"])
    except options.OptionError as exc:
        raise ToolExit(1, str(exc)) from None
    xid_text, directory, missing_ok, do_set = None, None, False, False
    values: dict[str, str] = {}
    for opt, value in parsed:
        if opt == "--xid":
            xid_text = value
        elif opt == "--dir":
            directory = value
        elif opt == "--missingok":
            missing_ok = True
        elif opt == "-s":
            do_set = True
        elif opt == "-g":
            do_set = False
        elif opt == "-t":
            tag, sep, text = value.partition("=")
            if not sep or tag not in UTS_TAGS:
                raise ToolExit(1, f"vuname: '{value}' is not TAG=VALUE with a valid TAG")
            values[tag] = text
    with state.transaction(layout) as st:
        ctx = _context(layout, st, xid_text, "vuname", 1)
        if directory is not None:
            path = Path(directory)
            if not path.is_dir():
                if missing_ok:
                    return 0
                raise ToolExit(1, f"vuname: {directory}: No such file or directory")
            for tag in UTS_TAGS:
                found = tree.whole(path / tag)
                if found is not None:
                    values[tag] = found
            do_set = True
        if do_set:
            _no_program("vuname", rest)
            ctx["uts"].update(values)
            return 0
    for tag in rest or UTS_TAGS:
        out(str(ctx["uts"].get(tag, "")))
    return 0


# ---------------------------------------------------------------------------- vsched

def _vsched(layout: Layout, argv: list[str]) -> int:
    long = [*(f"{name}=" for name in SCHED_OPTIONS), "xid=", "dir=", "missingok", "force",
            "idle-time", "help", "version"]
    try:
        parsed, rest = options.parse("vsched", argv, "", long)
    except options.OptionError as exc:
        raise ToolExit(1, str(exc)) from None
    _no_program("vsched", rest)
    xid_text, directory, missing_ok, idle = None, None, False, False
    change = sched.SchedSet()
    for opt, value in parsed:
        key = opt[2:]
        if key == "xid":
            xid_text = value
        elif key == "dir":
            directory = value
        elif key == "missingok":
            missing_ok = True
        elif key == "idle-time":
            idle = True
        elif key in SCHED_OPTIONS:
            number = numbers.option_value(value)
            if number is None:
                raise ToolExit(255, f"vsched: the value of '--{key}' is not an integer")
            change.values[SCHED_OPTIONS[key]] = number
    if directory is not None and change.values:
        raise ToolExit(1, "vssim: vsched with both --dir and value options is not simulated")
    with state.transaction(layout) as st:
        ctx = _context(layout, st, xid_text, "vsched", 1)
        try:
            if directory is not None:
                if not Path(directory).is_dir() and not missing_ok:
                    raise ToolExit(1, f"vsched: {directory}: No such file or directory")
                ctx["sched"] = sched.from_dir(Path(directory), int(st["cpus"]), ctx["sched"])
            else:
                sched.apply(ctx["sched"], int(st["cpus"]), change, idle)
        except sched.SchedError as exc:
            raise ToolExit(exc.rc, str(exc)) from None
    return 0


# ---------------------------------------------------------------------------- vlimit

def _vlimit(layout: Layout, argv: list[str]) -> int:
    xid_text, directory, missing_ok = None, None, False
    given: dict[str, dict[str, limits.Limit]] = {}
    mask: set[str] = set()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--xid", "-c") and args:
            xid_text = args.pop(0)
        elif arg == "--dir" and args:
            directory = args.pop(0)
        elif arg == "--missingok":
            missing_ok = True
        elif arg in ("-M", "-S", "-H"):
            mask.add({"-M": "min", "-S": "soft", "-H": "hard"}[arg])
        elif arg.startswith("--") and arg[2:] in limits.RLIMITS and args:
            value = numbers.limit_value(args.pop(0).encode())
            if value is None:
                raise ToolExit(255, "Can not parse limit")
            for kind in mask or {"hard"}:
                given.setdefault(arg[2:], {})[kind] = value
            mask = set()
        elif arg == "--":
            _no_program("vlimit", args)
            break
        else:
            raise ToolExit(255, f"vlimit: unrecognized option '{arg}'\nTry 'vlimit --help' for "
                                "more information.")
    with state.transaction(layout) as st:
        ctx = _context(layout, st, xid_text, "vlimit", 255)
        if directory is not None:
            if not Path(directory).is_dir() and not missing_ok:
                raise ToolExit(255, f"vlimit: {directory}: No such file or directory")
            try:
                from_dir = limits.read_rlimits(Path(directory))
            except limits.LimitError as exc:
                raise ToolExit(exc.rc, str(exc)) from None
            for res, values in from_dir.items():  # a limit set on the command line wins
                for kind, value in values.items():
                    given.setdefault(res, {}).setdefault(kind, value)
        for res, values in given.items():
            ctx["rlimits"].setdefault(res, {}).update(values)
    return 0


def vuname(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vuname", args, _vuname, (None, None))


def vsched(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vsched", args, _vsched, (None, None))


def vlimit(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vlimit", args, _vlimit, (None, None))
