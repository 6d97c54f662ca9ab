"""Reading the config tree into what a start would do (util-vserver's generateOptions).

Follows native-formats.md §2.2-§2.3: which scalars are read by an unguarded `read` (and so fail a
`set -e` start when empty or without a trailing newline), interface inheritance and mask2prefix,
init styles. `strict` is the start/stop case (`set -e`); `exec` reads the same files leniently,
where only hard aborts (an unknown init style) stop it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import numbers, tree
from .paths import Layout
from .toolrun import err

DEFAULT_ENV = ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]
DEFAULT_KILLSEQ = ["15", "5", "9"]
INHERITED = ("dev", "prefix", "mask", "bcast", "scope", "extip")


class Abort(Exception):
    """The start/stop script ends here with this status; messages were printed already."""

    def __init__(self, rc: int = 1) -> None:
        super().__init__(f"abort {rc}")
        self.rc = rc


class Reader:
    """Shell reads with or without `set -e`."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def check(self, result: tree.Scalar) -> str:
        if not result.ok and self.strict:
            raise Abort(1)  # `read` failed under set -e; the shell prints nothing
        return result.value

    def value(self, *paths: Path) -> str | None:
        """getFileValue: None when no candidate exists (the variable keeps its default)."""
        result = tree.get_file_value(*paths)
        return None if result is None else self.check(result)


@dataclass
class Interface:
    path: str
    ip: str
    prefix: str
    dev: str
    nodev: bool
    name: str = ""
    bcast: str = ""
    peer: str = ""
    extip: str = ""
    indirect: bool = False
    down: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}/{self.prefix}" if self.prefix else self.ip

    def host_address(self) -> dict[str, object]:
        """What `ip addr add` gets for this interface."""
        entry: dict[str, object] = {"dev": self.dev, "address": self.address}
        if self.indirect:
            entry["indirect"] = True
            if self.extip:
                entry["extip"] = self.extip
        elif ":" not in self.ip:  # IPv6 addresses get no broadcast
            entry["broadcast"] = self.bcast or "+"
        if self.name:
            entry["label"] = f"{self.dev}:{self.name}"
        if self.peer:
            entry["peer"] = self.peer
        entry["up"] = not self.down
        return entry


@dataclass
class InitPlan:
    style: str
    start: list[str]
    stop: list[str]
    start_sync: list[str]
    stop_sync: list[str]
    runlevel_start: str
    runlevel_stop: str
    killseq: list[str]
    env: list[str]
    fakeinit: bool


@dataclass
class Plan:
    cfgdir: Path
    vdir: Path
    n_context: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    chbind: bool = True
    bcast: str = ""
    lback: str = ""
    nflags: list[str] = field(default_factory=list)
    ncaps: list[str] = field(default_factory=list)
    nice: str | None = None
    ionice: dict[str, str] = field(default_factory=dict)
    init: InitPlan | None = None
    context: str = ""
    flags: list[str] = field(default_factory=list)
    bcaps: list[str] = field(default_factory=list)
    ccaps: list[str] = field(default_factory=list)
    umask: list[str] = field(default_factory=list)
    sched_dir: Path | None = None
    schedule: list[str] | None = None
    tag: str = ""
    badness: str | None = None

    @property
    def ips(self) -> list[str]:
        return [iface.address for iface in self.interfaces]


def _interface_value(iface: Path, name: str, inherit: bool) -> str:
    """_getInterfaceValue: own file first; the parent's if the own one is missing or fails."""
    value = ""
    for candidate in (iface / name, iface.parent / name) if inherit else (iface / name,):
        result = tree.read_scalar(candidate)
        if result is None:
            continue  # the redirection failed; the previous value stays
        value = result.value
        if result.ok:
            break
    return value


def _interface(iface: Path, reader: Reader, n_context: str) -> Interface | None:
    values = {key: _interface_value(iface, key, key in INHERITED)
              for key in ("ip", "extip", "dev", "prefix", "mask", "bcast", "name", "scope", "peer")}
    nodev = tree.flag(iface / "nodev")
    if not values["ip"]:
        err(f"Can not read ip for '{iface}'")
        _fail(reader)
        return None
    if not values["dev"] and not nodev:
        err(f"No device specified for '{iface}'")
        _fail(reader)
        return None
    prefix = values["prefix"]
    if not prefix:
        status = numbers.mask2prefix(values["mask"])
        if status == 255:
            err("Invalid mask specified")
        if status != 0:  # the exit status is the prefix; 0 means "none"
            prefix = str(status)
    result = Interface(
        path=str(iface), ip=values["ip"], prefix=prefix, dev=values["dev"],
        nodev=nodev or tree.flag(iface / "only_ip"), name=values["name"],
        bcast=values["bcast"], peer=values["peer"], extip=values["extip"],
        indirect=tree.flag(iface / "indirect"), down=tree.flag(iface / "down"))
    if result.indirect and not result.nodev and not n_context:
        err(f"interface '{result.dev}' is indirect (dummy) and needs a static context number")
        _fail(reader)
        return None
    return result


def _fail(reader: Reader) -> None:
    """A failing function under set -e ends the script; without it the interface is skipped."""
    if reader.strict:
        raise Abort(1)


def _interfaces(plan: Plan, reader: Reader) -> None:
    cfg = plan.cfgdir
    plan.n_context = reader.value(cfg / "ncontext", cfg / "context") or ""
    base = cfg / "interfaces"
    entries = sorted(base.iterdir(), key=lambda p: p.name) if base.is_dir() else []
    for iface in entries:
        if not iface.is_dir() or tree.flag(iface / "disabled"):
            continue
        parsed = _interface(iface, reader, plan.n_context)
        if parsed is not None:
            plan.interfaces.append(parsed)


def _chbind(plan: Plan, reader: Reader) -> None:
    cfg = plan.cfgdir
    if tree.flag(cfg / "noncontext") or (tree.flag(cfg / "spaces/net")
                                        and not tree.flag(cfg / "ncontext")):
        plan.chbind = False
        return
    plan.bcast = reader.value(cfg / "interfaces/bcast") or ""
    plan.lback = reader.value(cfg / "interfaces/lback") or ""
    plan.nflags = tree.read_list(cfg / "nflags")
    plan.ncaps = tree.read_list(cfg / "ncapabilities")


def _nice(plan: Plan, reader: Reader) -> None:
    cfg = plan.cfgdir
    if os.access(cfg / "nice", os.R_OK):
        plan.nice = reader.value(cfg / "nice")
    for key in ("class", "priority"):
        path = cfg / "ionice" / key
        if os.access(path, os.R_OK):
            plan.ionice[key] = reader.value(path) or ""


def _executable(vdir: Path, program: str) -> bool:
    path = vdir / program.lstrip("/")
    return path.is_file() and os.access(path, os.X_OK)


def _init(plan: Plan, reader: Reader, rescue: list[str] | None, force_sync: bool,
          layout: Layout) -> None:
    cfg, vdir = plan.cfgdir, plan.vdir
    init_dir = cfg / "apps/init"
    style = "rescue" if rescue is not None else reader.value(init_dir / "style")
    if style is None:
        style = "sysv"  # no style file
    rl_start = reader.value(init_dir / "runlevel") or ""
    later = reader.value(init_dir / "runlevel.start")
    rl_start = rl_start if later is None else later
    rl_stop = reader.value(init_dir / "runlevel.stop") or ""
    killseq = tree.read_array(init_dir / "killseq")
    env_file = tree.find_file(init_dir / "environment",
                              layout.defaults / "apps/init/environment")
    env = list(DEFAULT_ENV) if env_file is None else (tree.read_array(env_file) or [])
    start: list[str] = []
    stop: list[str] = []
    fakeinit = False
    if style == "rescue":
        start, stop = list(rescue or []), ["/sbin/killall5"]
    elif style == "sysv":
        rl_start, rl_stop = rl_start or "3", rl_stop or "6"
        for script in ("/etc/init.d/rc", "/etc/rc.d/rc"):  # no break: the last one found wins
            if _executable(vdir, script):
                start, stop = [script, rl_start], [script, rl_stop]
        env += ["PREVLEVEL=N", f"RUNLEVEL={rl_start}"]
    elif style in ("plain", "minit"):
        start = ["/sbin/init"] if style == "plain" else ["/sbin/minit-start"]
        stop = ["/sbin/init"] if style == "plain" else ["/sbin/minit-stop"]
        start += [rl_start] if rl_start else []
        stop += [rl_stop] if rl_stop else []
        fakeinit = True
    elif style in ("gentoo", "openrc"):
        rl_start = rl_start or "default"
        wrappers = [w for w in ("/lib/rcscripts/sh/init-vserver.sh", "/lib/rc/sh/init-vserver.sh")
                    if _executable(vdir, w)]
        if not wrappers:
            err("init-vserver.sh is missing in the guest; aborting")
            raise Abort(1)
        term = os.environ.get("TERM", "")
        start = [wrappers[0], rl_start]
        stop = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"TERM={term}",
                "RUNLEVEL=0", "/sbin/rc", "shutdown"]
        env += [f"TERM={term}"]
    elif style == "arch":
        rl_start = rl_start or "3"
        start, stop = ["/etc/rc.multi"], ["/etc/rc.shutdown"]
    elif style != "":
        err(f"Unknown init-style '{style}'; aborting")
        raise Abort(1)  # panic: ends the script even without set -e
    start_sync: list[str] = []
    stop_sync: list[str] = []
    if style != "rescue":  # an existing command file replaces the style's command, even empty
        start = _override(init_dir / "cmd.start", start)
        stop = _override(init_dir / "cmd.stop", stop)
        start_sync = _override(init_dir / "cmd.start-sync", [])
        stop_sync = _override(init_dir / "cmd.stop-sync", [])
    if not force_sync and not tree.flag(init_dir / "sync"):
        start_sync, stop_sync = [], []
    plan.init = InitPlan(style=style, start=start, stop=stop, start_sync=start_sync,
                         stop_sync=stop_sync, runlevel_start=rl_start, runlevel_stop=rl_stop,
                         killseq=DEFAULT_KILLSEQ if killseq is None else killseq, env=env,
                         fakeinit=fakeinit)


def _override(path: Path, default: list[str]) -> list[str]:
    found = tree.read_array(path)
    return default if found is None else found


def _context_options(plan: Plan) -> None:
    cfg = plan.cfgdir
    # this read is guarded (`|| :`): a missing newline is harmless here
    plan.context = (tree.read_scalar(cfg / "context") or tree.Scalar("", True)).value
    plan.bcaps = tree.read_list(cfg / "bcapabilities")
    plan.ccaps = tree.read_list(cfg / "ccapabilities")
    flag_file = tree.find_file(cfg / "cflags", cfg / "flags")
    for item in tree.read_list(flag_file) if flag_file else []:
        if item == "namespace":
            continue
        if item == "fakeinit" and plan.init is not None:
            plan.init.fakeinit = True
            continue
        plan.flags.append(item)
    plan.umask = tree.read_list(cfg / "umask")


def _schedule(plan: Plan, reader: Reader) -> None:
    cfg = plan.cfgdir
    if (cfg / "sched").is_dir():
        plan.sched_dir = cfg / "sched"
        return
    path = cfg / "schedule"
    if not path.exists():
        return
    values, rest = [], path.read_bytes() if path.is_file() else b""
    for _ in range(6):
        end = rest.find(b"\n")
        if end < 0:
            break
        values.append(tree.shell_read(rest[:end + 1]).value)
        rest = rest[end + 1:]
    if len(values) < 6 or not values[5]:
        err(f"Bad content in '{path}'; aborting...")
        if reader.strict:
            raise Abort(1)
        return
    plan.schedule = values


def _cgroup_defaults(layout: Layout, reader: Reader) -> None:
    for name in ("mnt", "base"):
        path = layout.defaults / "cgroup" / name
        if path.is_file():
            reader.check(tree.shell_read(path.read_bytes()))


def generate(layout: Layout, cfgdir: Path, *, strict: bool, rescue: list[str] | None = None,
             force_sync: bool = False) -> Plan:
    """Everything generateOptions reads, in its order; raises Abort where the script stops."""
    reader = Reader(strict)
    plan = Plan(cfgdir=cfgdir, vdir=cfgdir / "vdir")
    _interfaces(plan, reader)
    _chbind(plan, reader)
    _nice(plan, reader)
    _init(plan, reader, rescue, force_sync, layout)
    _context_options(plan)
    _schedule(plan, reader)
    plan.tag = reader.value(cfgdir / "tag", cfgdir / "context") or ""
    plan.badness = reader.value(cfgdir / "badness")
    _cgroup_defaults(layout, reader)
    return plan
