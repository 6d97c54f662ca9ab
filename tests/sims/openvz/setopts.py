"""vzctl set: the option tables of each version and reading them into a `SetRequest`
(reference §1.6).

Repeated string and number options keep their first value, as the tools' parsers do; repeated
UBC options keep the last. A value that does not parse is "Bad parameter for --X: V", exit 21,
after the tool's own explanation where it prints one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import values
from .config import features_warning
from .console import Exit, err, fail, out
from .ct import Ct
from .keys import O7_DEPRECATED_UBCS, UBC_NAMES
from .options import BadOption, Opt, getopt
from .values import Caps, Features, Invalid, Veth

# ---------------------------------------------------------------- option tables

_COMMON = [
    Opt("save", False), Opt("applyconfig"), Opt("reset_ub", False), Opt("netfilter"),
    *(Opt(n.lower(), key=n) for n in UBC_NAMES),
    Opt("vm_overcommit", key="VM_OVERCOMMIT"), Opt("capability"),
    Opt("ipadd"), Opt("ip", key="ipadd"), Opt("ipdel"), Opt("skip_arpdetect", False),
    Opt("netdev_add"), Opt("netdev_del"), Opt("hostname", key="HOSTNAME"),
    Opt("nameserver"), Opt("searchdomain"), Opt("userpasswd"),
    Opt("root", key="VE_ROOT"), Opt("private", key="VE_PRIVATE"),
    Opt("mount_opts", key="MOUNT_OPTS"), Opt("ostemplate", key="OSTEMPLATE"),
    Opt("cpuunits", key="CPUUNITS"), Opt("cpulimit", key="CPULIMIT"), Opt("cpus", key="CPUS"),
    Opt("cpumask", key="CPUMASK"), Opt("nodemask", key="NODEMASK"),
    Opt("onboot", key="ONBOOT"), Opt("setmode"), Opt("disabled", key="DISABLED"),
    Opt("diskspace", key="DISKSPACE"), Opt("diskinodes", key="DISKINODES"),
    Opt("quotatime", key="QUOTATIME"), Opt("quotaugidlimit", key="QUOTAUGIDLIMIT"),
    Opt("netif_add"), Opt("netif_del"), Opt("mac_filter"), Opt("mac"), Opt("ifname"),
    Opt("host_mac"), Opt("host_ifname"), Opt("name", key="NAME"), Opt("features"),
    Opt("ioprio", key="IOPRIO"), Opt("iolimit", key="IOLIMIT"),
    Opt("iopslimit", key="IOPSLIMIT"), Opt("description", key="DESCRIPTION"),
    Opt("bootorder", key="BOOTORDER"),
]
LEGACY_SET_OPTS = [
    *_COMMON, Opt("force", False), Opt("applyconfig_map"),
    Opt("cpuweight", key="CPUUWEIGHT"), Opt("diskquota", key="DISK_QUOTA"), Opt("bridge"),
    Opt("ram"), Opt("swap"), Opt("stop-timeout", key="STOP_TIMEOUT"),
    Opt("dcache", key="DCACHESIZE"), Opt("iptentries", key="NUMIPTENT"),
]
# vz7-u22's own table has no --stop-timeout and no --force for `set`; the reference (§1.6)
# lists them as "not refused" without --save, so they are accepted here.
O7_SET_OPTS = [
    *_COMMON, Opt("memory", key="ram"), Opt("ram"), Opt("swap"), Opt("force", False),
    Opt("stop-timeout", key="STOP_TIMEOUT"),
    Opt("cpuweight", key="CPUWEIGHT"), Opt("network"), Opt("gw"), Opt("gateway", key="gw"),
    Opt("dcache", key="DCACHESIZE"), Opt("iptentries", key="NUMIPTENT"),
    Opt("tcpsendbuf", key="TCPSNDBUF"),
]

# Keys given as plain options, with the value kind used to parse them.
_LEGACY_KINDS = {
    "HOSTNAME": "str", "DESCRIPTION": "str", "OSTEMPLATE": "str", "VE_ROOT": "str",
    "VE_PRIVATE": "str", "MOUNT_OPTS": "str", "NAME": "name", "ONBOOT": "yesno",
    "DISABLED": "yesno", "DISK_QUOTA": "yesno", "CPUUNITS": "cpuunits", "CPUUWEIGHT": "ulong",
    "CPUS": "ulong", "BOOTORDER": "ulong", "QUOTATIME": "ulong", "QUOTAUGIDLIMIT": "ulong",
    "CPULIMIT": "cpulimit", "CPUMASK": "cpumask", "NODEMASK": "nodemask",
    "DISKSPACE": "diskspace", "DISKINODES": "diskinodes", "STOP_TIMEOUT": "stop_timeout",
    "VM_OVERCOMMIT": "float", "IOPRIO": "ioprio", "IOPSLIMIT": "iopslimit",
}
_O7_KINDS = {**_LEGACY_KINDS, "ONBOOT": "onboot", "CPUWEIGHT": "ulong"}
_FIRST_WINS = frozenset({"HOSTNAME", "DESCRIPTION", "OSTEMPLATE", "VE_ROOT", "VE_PRIVATE",
                         "MOUNT_OPTS", "NAME", "ONBOOT", "DISABLED", "DISK_QUOTA", "CPUUNITS",
                         "CPUUWEIGHT", "CPUS", "BOOTORDER", "QUOTATIME", "QUOTAUGIDLIMIT",
                         "CPULIMIT", "DISKSPACE", "DISKINODES", "STOP_TIMEOUT",
                         "VM_OVERCOMMIT"})


@dataclass
class SetRequest:
    values: dict[str, Any] = field(default_factory=dict)
    ip_add: list[str] = field(default_factory=list)
    ip_del: list[str] = field(default_factory=list)
    ip_delall: bool = False
    netdev_add: list[str] = field(default_factory=list)
    netdev_del: list[str] = field(default_factory=list)
    veth_add: list[Veth] = field(default_factory=list)
    veth_del: list[str] = field(default_factory=list)
    veth_delall: bool = False
    veth_cfg: Veth | None = None
    caps: Caps | None = None
    features: Features | None = None
    save: bool = False
    force: bool = False
    reset_ub: bool = False
    setmode: str = ""
    applyconfig: str | None = None
    userpasswd: list[str] = field(default_factory=list)
    n_words: int = 0

    def touches_ip(self) -> bool:
        return bool(self.ip_add or self.ip_del or self.ip_delall)

    def touches_netif(self) -> bool:
        return bool(self.veth_add or self.veth_del or self.veth_delall)


# ---------------------------------------------------------------- option parsing

def parse_args(ct: Ct, args: list[str]) -> SetRequest:
    legacy = ct.sim.legacy
    try:
        found, rest = getopt("vzctl", args, LEGACY_SET_OPTS if legacy else O7_SET_OPTS)
    except BadOption:
        raise Exit(21) from None
    req = SetRequest(n_words=len(args))
    ctx = ct.ctx
    kinds = _LEGACY_KINDS if legacy else _O7_KINDS
    for opt, value in found:
        try:
            _take(ct, req, opt, value, ctx, kinds)
        except Invalid as exc:
            if exc.message:
                err(exc.message)
            raise fail(21, f"Bad parameter for --{opt.name}: {value}") from None
    if rest:
        err("Invalid extra arguments: " + "".join(f"{w} " for w in rest))
        raise Exit(20)
    return req


def _take(ct: Ct, req: SetRequest, opt: Opt, value: str, ctx: values.Ctx,
          kinds: dict[str, str]) -> None:
    legacy = ctx.legacy
    key = opt.id
    if key in UBC_NAMES:
        if not legacy and key in O7_DEPRECATED_UBCS:
            out(f"Warning: {key} parameter is deprecated")
            return
        try:
            req.values[key] = values.parse_ubc(key, value, ctx)
        except values.Truncated:
            raise Invalid() from None
    elif key in kinds:
        if key in _FIRST_WINS and key in req.values:
            return  # the tools keep the first of repeated string/number options
        req.values[key] = values.parse(kinds[key], key, value, ctx)
    elif key == "IOLIMIT":
        req.values[key] = values.parse_iolimit(value, 1024 * 1024 if legacy else 1)
    elif key in ("ram", "swap"):
        if legacy and not ct.sim.kernel_has_vswap() and not req.force:
            err("Error: kernel does not support vswap, unable to use --ram/--swap parameters")
            raise fail(3, "Error parsing options")
        req.values["PHYSPAGES" if key == "ram" else "SWAPPAGES"] = values.parse_ram(value, ctx)
    elif key in ("save", "force", "reset_ub"):
        setattr(req, key, True)
    elif key == "setmode":
        if value not in ("ignore", "restart"):
            raise Invalid()
        req.setmode = value
    elif key == "applyconfig":
        req.applyconfig = value
    elif key == "applyconfig_map":
        if value != "name":
            raise Invalid()
    elif key in ("nameserver", "searchdomain"):
        name = key.upper()
        lst = req.values.setdefault(name, [])
        lst += [x for x in values.parse_strlist(value) if x not in lst]
    elif key == "ipadd":
        for ip in values.parse_ip_list(value, legacy):
            if values.ip_base(ip) not in map(values.ip_base, req.ip_add):
                req.ip_add.append(ip)
    elif key == "ipdel":
        if value == "all":
            req.ip_delall = True
        else:
            req.ip_del += [x for x in values.parse_ip_list(value, legacy)]
    elif key == "netdev_add":
        req.netdev_add += values.parse_netdev(value)
    elif key == "netdev_del":
        req.netdev_del += values.parse_netdev(value)
    elif key == "netif_add":
        for token in value.split():
            req.veth_add.append(values.parse_netif_add(token, ctx))
    elif key == "netif_del":
        if len(value) > values.IFNAMSIZE:
            raise Invalid()
        if value == "all":
            req.veth_delall = True
        elif value not in req.veth_del:
            req.veth_del.append(value)
    elif key in ("ifname", "mac", "host_mac", "host_ifname", "bridge", "mac_filter", "network",
                 "gw"):
        _take_veth_option(req, key, value, legacy)
    elif key == "capability":
        if not legacy:
            err("Warning: The --capability option is deprecated")
            return
        req.caps = values.parse_caps(value, req.caps)
    elif key == "features":
        try:
            req.features = values.parse_features(value, req.features)
        except Invalid:
            features_warning(value, warn=True)
            raise
    elif key == "netfilter":
        if value not in values.NETFILTER_NAMES:
            raise Invalid(message=f"Incorrect netfilter value: {value}")
        req.values["NETFILTER"] = value
    elif key == "userpasswd":
        if ":" not in value:
            raise Invalid()
        req.userpasswd.append(value)
    # skip_arpdetect only changes how the real tool announces IPs


def _take_veth_option(req: SetRequest, key: str, value: str, legacy: bool) -> None:
    dev = req.veth_cfg or Veth(ifname="")
    req.veth_cfg = dev
    if len(value) + 1 > values.IFNAMSIZE and key in ("ifname", "host_ifname", "bridge"):
        raise Invalid()
    if key == "ifname":
        if dev.ifname:
            raise Invalid(message="Multiple use of --ifname option not allowed")
        dev.ifname = value
    elif key == "bridge":
        if dev.bridge:
            raise Invalid(message="Multiple use of --bridge option not allowed")
        dev.bridge = value
    elif key in ("mac", "host_mac"):
        setattr(dev, key, values.parse_mac(value))
    elif key == "host_ifname":
        dev.host_ifname = value
    elif key == "mac_filter":
        if value not in ("on", "off"):
            raise Invalid()
        dev.mac_filter = value
    else:  # O7 per-interface items
        dev.extra[key] = value
