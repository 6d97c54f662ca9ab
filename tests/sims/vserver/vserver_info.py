"""`vserver-info [-q] ID TAG [ARG]` (native-formats.md §2.5).

Tags simulated:
* RUNNING: prints `1` when the guest (or a numeric XID) has a running context, else exits 1
  without output. Unlike `vserver NAME running` it does not look at the process count.
* CONTEXT [BOOL]: the running XID, else (unless BOOL is false) the static `context` file.
* VDIR [1]: the guest root as `CFGDIR/vdir` (a path through the link, as the real tool prints
  it); with a true argument the physical path.
* CFGDIR, NAME (the `name` file without trailing newlines, else the dir basename; an empty
  `name` file counts as none).
* For an XID: ID (its config dir), INITPID, UTS [FIELD] (unset fields show the host's),
  XIDTYPE [TYPE...]. For a pid: XID, NID, TAG, INITPID_PID (pids are the fake init pids in the
  state; any other live pid is a host process, XID 0).
* FEATURE NAME (exit status only), APIVER, SYSINFO, PXID (always fails, as the real one).
Not simulated (exit 1 saying so): APPDIR, CANONIFY, VERIFYCAP, VERIFYPROC.
Without ID and TAG it prints the SYSINFO text and exits 0. IDs are resolved as in cfgstyle.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from . import cfgstyle, numbers, options, state
from .paths import Layout
from .state import State, get_context
from .toolrun import ToolExit, out, run_tool

TAGS = ("CONTEXT", "ID", "RUNNING", "VDIR", "NAME", "CFGDIR", "APPDIR", "INITPID", "INITPID_PID",
        "XID", "APIVER", "UTS", "SYSINFO", "FEATURE", "PXID", "CANONIFY", "VERIFYCAP",
        "VERIFYPROC", "XIDTYPE", "NID", "TAG")
NOT_SIMULATED = ("APPDIR", "CANONIFY", "VERIFYCAP", "VERIFYPROC")
FEATURES = {"VKILL", "IATTR", "RLIMIT", "MIGRATE", "NAMESPACE", "SCHED", "VINFO", "VHI",
            "VSHELPER", "VWAIT", "VNET", "VSTAT", "PPTAG", "PIDSPACE", "SPACES", "PERSISTENT",
            "PIVOT_ROOT", "DYNAMIC"}
UTS_FIELDS = ("context", "sysname", "nodename", "release", "version", "machine", "domainname")
API_VERSION = "0x00020308"

Answer = str | None


def _str2bool(text: str) -> bool:
    # C: atoi(s) != 0, or s[0] in "yYtT" (the empty string counts: strchr finds its NUL)
    parsed = numbers.strtol(text, 10)
    return parsed.value != 0 or text == "" or text[0] in "yYtT" or text.lower() == "true"


def _host_uts(field: str) -> str:
    uname = os.uname()
    return {"sysname": uname.sysname, "nodename": uname.nodename, "release": uname.release,
            "version": uname.version, "machine": uname.machine}.get(field, "(none)")


class Query:
    def __init__(self, layout: Layout, st: State, ident: str, extra: list[str]) -> None:
        self.layout, self.st, self.ident, self.extra = layout, st, ident, extra
        self.style = cfgstyle.style_of(layout, ident)

    def _xid(self) -> int | None:
        return cfgstyle.xidopt2xid(self.layout, self.st, self.ident) if self.ident else 0

    def _pid_context(self) -> tuple[int, dict[str, object] | None]:
        pid = numbers.strtol(self.ident, 10).value
        for ctx in self.st["contexts"].values():
            if int(ctx["initpid"]) == pid:
                return pid, ctx
        if pid > 0 and os.path.exists(f"/proc/{pid}"):
            return pid, None
        raise ToolExit(1, "vc_get_task_xid(): No such process")

    def name(self) -> Answer:
        return cfgstyle.display_name(self.layout, self.ident, self.style)

    def vdir(self) -> Answer:
        if self.style is cfgstyle.Style.NONE:
            return None
        if self.style is cfgstyle.Style.LEGACY:
            path = str(self.layout.default_vserverdir / self.ident)
        else:
            path = f"{cfgstyle.cfg_path(self.layout, self.ident, self.style)}/vdir"
        if not os.path.isdir(path):
            return None
        physical = bool(self.extra) and numbers.strtol(self.extra[0], 10).value != 0
        return os.path.realpath(path) if physical else path

    def cfgdir(self) -> Answer:
        if self.style in (cfgstyle.Style.NONE, cfgstyle.Style.LEGACY):
            return None
        path = cfgstyle.cfg_path(self.layout, self.ident, self.style)
        return str(path) if path.is_dir() else None

    def running(self) -> Answer:
        parsed = numbers.strtol(self.ident)
        if self.ident and parsed.end == len(self.ident) and parsed.value >= 0:
            return "1" if get_context(self.st, parsed.value) else None
        xid = cfgstyle.vserver_ctx(self.layout, self.st, self.ident, honor_static=False)
        return None if xid is None else "1"

    def context(self) -> Answer:
        honor = not self.extra or _str2bool(self.extra[0])
        xid = cfgstyle.vserver_ctx(self.layout, self.st, self.ident, honor_static=honor)
        return None if xid is None else str(xid)

    def id(self) -> Answer:
        xid = self._xid()
        return None if xid is None else cfgstyle.cfgdir_of_xid(self.st, xid)

    def initpid(self) -> Answer:
        xid = self._xid()
        ctx = get_context(self.st, xid) if xid is not None else None
        if ctx is None:
            raise ToolExit(1, "vc_get_vx_info(): No such process")
        return str(ctx["initpid"])

    def uts(self) -> Answer:
        xid = self._xid()
        ctx = get_context(self.st, xid) if xid is not None else None
        if ctx is None:
            raise ToolExit(1, "vc_get_vhi_name(): No such process")
        if self.extra and self.extra[0] not in UTS_FIELDS:
            raise ToolExit(1, f"vserver-info: unknown uts field '{self.extra[0]}'")
        fields = [self.extra[0]] if self.extra else list(UTS_FIELDS)
        values = [str(ctx["uts"].get(f, _host_uts(f))) for f in fields]
        return values[0] if self.extra else " ".join(values) + " "

    def by_pid(self, key: str) -> Answer:
        _, ctx = self._pid_context()
        if key == "initpid":
            return None if ctx is None else str(ctx["initpid"])
        return "0" if ctx is None else str(ctx[key])

    def xidtype(self) -> Answer:
        xid = self._xid()
        if xid is None or xid < 0 or xid > state.LAST_XID:
            kind = "invalid"
        else:
            kind = ("main" if xid == 0 else "watch" if xid == 1 else
                    "dynamic" if xid >= state.FIRST_DYNAMIC_XID else "static")
        if self.extra and kind not in (e.lower() for e in self.extra):
            return None
        return kind


def sysinfo() -> str:
    return ("Versions:\n"
            f"                   Kernel: {os.uname().release}\n"
            f"                   VS-API: {API_VERSION}\n"
            "             util-vserver: vssim (test simulator)\n\n"
            f"Features: {' '.join(sorted(FEATURES))}\n")


def _answer(query: Query, tag: str) -> Answer:
    handlers: dict[str, Callable[[], Answer]] = {
        "NAME": query.name, "VDIR": query.vdir, "CFGDIR": query.cfgdir,
        "RUNNING": query.running, "CONTEXT": query.context, "ID": query.id,
        "INITPID": query.initpid, "UTS": query.uts, "XIDTYPE": query.xidtype,
        "XID": lambda: query.by_pid("xid"), "NID": lambda: query.by_pid("nid"),
        "TAG": lambda: query.by_pid("tag"), "INITPID_PID": lambda: query.by_pid("initpid"),
        "APIVER": lambda: API_VERSION, "PXID": lambda: None,
    }
    return handlers[tag]()


def _run(layout: Layout, argv: list[str]) -> int:
    try:
        parsed, rest = options.parse("vserver-info", argv, "ql", ["help", "version"],
                                     permute=True)
    except options.OptionError as exc:
        raise ToolExit(1, f"{exc}\nTry 'vserver-info --help' for more information.") from None
    flags = {opt for opt, _ in parsed}
    if "--help" in flags:
        out("Usage: vserver-info [-ql] <vserver>|<pid>|<context> <tag>")
        return 0
    if "--version" in flags:
        out("vserver-info (vssim, the util-vserver test simulator)")
        return 0
    if "-l" in flags:
        out("Valid tags are: " + ", ".join(TAGS))
        return 0
    if len(rest) < 2:
        sys.stdout.write(sysinfo())
        sys.stderr.write("\nNo vserver and tag given: showed SYSINFO; see '--help'.\n")
        return 0
    ident, tag, extra = rest[0], rest[1], rest[2:]
    if tag not in TAGS:
        raise ToolExit(1, f"vserver-info: unknown tag '{tag}'; '-l' lists the valid tags")
    if tag in NOT_SIMULATED:
        raise ToolExit(1, f"vssim: vserver-info tag '{tag}' is not simulated")
    if tag == "SYSINFO":
        sys.stdout.write(sysinfo())
        return 0
    if tag == "FEATURE":
        return 0 if extra and extra[0].upper() in FEATURES else 1
    result = _answer(Query(layout, state.load(layout), ident, extra), tag)
    if result is None:
        return 1
    if "-q" not in flags:
        out(result)
    return 0


def _target(argv: list[str]) -> tuple[str | None, str | None]:
    try:
        _, rest = options.parse("vserver-info", argv, "ql", ["help", "version"], permute=True)
    except options.OptionError:
        return None, None
    return (rest[1] if len(rest) > 1 else None), (rest[0] if rest else None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vserver-info", args, _run, _target(args))
