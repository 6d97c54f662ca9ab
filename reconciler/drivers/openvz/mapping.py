"""The harmonized Domain <-> CTID.conf keys and `vzctl set` arguments, both ways. Pure.

Reading (`read_spec`) turns a container's effective config (vz.conf under CTID.conf) into the
model's shape, normalised so that what OpenVZ fills in by itself never shows as a difference:

* units: PHYSPAGES' limit (pages) is `memory`; DISKSPACE (KiB) is `quota.space` in bytes;
  beancounters stay in their own units (pages, bytes, counts), as the model keeps them;
* what the user does not manage: the beancounters a sample config set but the spec does not
  name (only the last-applied spec's keys are reported once there is one), the MACs and host
  names vzctl generates for a veth (dropped when the last-applied NIC did not give them),
  PHYSPAGES as a beancounter when it is read as `memory`;
* spellings: legacy vzctl canonicalises IPv6 addresses and vzlist/NETIF print MACs in upper
  case; addresses, NIC order and a CPU mask are reported in the last-applied spelling when
  they mean the same.

Writing (`set_args`) gives the `vzctl set` arguments that take the config from what it holds
to the desired spec: only options whose value differs, so an unchanged setting is never
pushed into a running container again. A setting the spec no longer names stays as it is
(vzctl cannot unset keys); NICs are the exception: while `interfaces` is managed, addresses,
veths and moved NICs the spec does not list are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers import observed
from reconciler.drivers.openvz.conffile import Conf
from reconciler.drivers.openvz.native import (
    INT_MAX,
    LONG_MAX,
    O7_IGNORED,
    PAGE,
    UBC_NAMES,
    Invalid,
    Version,
    Veth,
    canon_ip,
    netif_add_arg,
    pair_arg,
    parse_cpumask,
)
from reconciler.model.names import check_name
from reconciler.model.units import parse_size
from reconciler.rules.openvz import venet_nic, veth_nic

VIRTUAL_UNLIMITED = (LONG_MAX, INT_MAX)  # PHYSPAGES limits that mean "not a vswap config"


# ---------------------------------------------------------------------------- reading


def spec_name(conf: Conf, ctid: str) -> str:
    """The model name of a container: its NAME when that is a valid model name, else the
    CTID itself."""
    name = conf.get("NAME")
    if isinstance(name, str) and name:
        try:
            return check_name(name)
        except ValueError:
            pass
    return ctid


def read_spec(conf: Conf, ctid: str, version: Version, last: dict[str, Any] | None = None,
              uuid: str | None = None) -> dict[str, Any]:
    """The live config in the model's shape (not validated yet)."""
    v = conf.values
    last = last or {}
    spec: dict[str, Any] = {"name": spec_name(conf, ctid), "type": "openvz", "id": int(ctid)}
    if uuid:
        spec["uuid"] = uuid  # OpenVZ has no UUID of its own: it lives in our sidecar
    for key, model in (("DESCRIPTION", "description"), ("HOSTNAME", "hostname")):
        if isinstance(v.get(key), str) and v[key]:
            spec[model] = v[key]
    if isinstance(v.get("ONBOOT"), bool):
        spec["autostart"] = v["ONBOOT"]
    if v.get("OSTEMPLATE"):
        spec["filesystems"] = [{"type": "template", "name": v["OSTEMPLATE"], "target": "/"}]
    _read_memory(v, version, last, spec)
    _read_cpu(v, last, spec)
    _read_quota(v, version, spec)
    dns = {key: list(v[native]) for key, native in (("nameservers", "NAMESERVER"),
                                                    ("search", "SEARCHDOMAIN"))
           if v.get(native)}
    if dns:
        spec["dns"] = dns
    nics = read_interfaces(conf, version, last.get("interfaces") or [])
    if nics:
        spec["interfaces"] = nics
    return spec


def _read_memory(v: Any, version: Version, last: dict[str, Any], spec: dict[str, Any]) -> None:
    limits: dict[str, list[int]] = {}
    for name in UBC_NAMES:
        if name in v and not (not version.legacy and name in O7_IGNORED):
            limits[name.lower()] = [int(v[name][0]), int(v[name][1])]
    phys = v.get("PHYSPAGES")
    if phys is not None and phys[1] not in VIRTUAL_UNLIMITED and phys[1] * PAGE <= 1 << 60:
        spec["memory"] = phys[1] * (PAGE // 1024)  # a plain number is KiB in the model
        if "physpages" not in (last.get("limits") or {}):
            limits.pop("physpages", None)  # read as memory, not as a beancounter
    if "limits" in last:
        limits = {k: val for k, val in limits.items() if k in last["limits"]}
    if limits:
        spec["limits"] = limits


def _read_cpu(v: Any, last: dict[str, Any], spec: dict[str, Any]) -> None:
    cpu: dict[str, Any] = {}
    if v.get("CPUUNITS") is not None:
        cpu["shares"] = v["CPUUNITS"]
    if v.get("CPULIMIT") is not None:
        cpu["limit"] = v["CPULIMIT"]
    if v.get("CPUS"):
        cpu["count"] = v["CPUS"]
        mask = v.get("CPUMASK")
        if isinstance(mask, str) and mask not in ("all", "auto"):
            before = (last.get("cpu") or {}).get("cpuset")
            cpu["cpuset"] = before if before and _same_mask(before, mask) else mask
    if cpu:
        spec["cpu"] = cpu


def _same_mask(a: str, b: str) -> bool:
    try:
        return parse_cpumask(a) == parse_cpumask(b)
    except Invalid:
        return False


def _read_quota(v: Any, version: Version, spec: dict[str, Any]) -> None:
    quota: dict[str, Any] = {}
    space = v.get("DISKSPACE")
    if space is not None and LONG_MAX not in space:
        quota["space"] = [space[0], space[1]]  # KiB, as the model reads a plain number
    inodes = v.get("DISKINODES")
    if inodes is not None:
        quota["inodes"] = [inodes[0], inodes[1]]
    if version.legacy and v.get("QUOTATIME") is not None:
        quota["time"] = v["QUOTATIME"]
    if v.get("QUOTAUGIDLIMIT") is not None:
        quota["ugid_limit"] = v["QUOTAUGIDLIMIT"]
    if quota:
        spec["quota"] = quota


def _nic_key(nic: dict[str, Any]) -> tuple[str, str]:
    if venet_nic(nic):
        return ("venet", "")
    if veth_nic(nic):
        return ("veth", str(nic.get("guest_dev")))
    return ("hostdev", str(nic.get("source")))


def read_interfaces(conf: Conf, version: Version, last: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """venet addresses, veths and moved host NICs, in the last-applied order where they
    correspond, each without the values vzctl generated that the user did not give."""
    v = conf.values
    before = {_nic_key(nic): nic for nic in last}
    found: list[dict[str, Any]] = []
    ips = list(v.get("IP_ADDRESS") or [])
    if ips or ("venet", "") in before:
        found.append({"type": "routed", "ip": _same_ips(ips, before.get(("venet", "")),
                                                        version)})
    for dev in v.get("NETIF") or []:
        nic: dict[str, Any] = {"type": "bridge" if dev.bridge else "routed"}
        if dev.bridge:
            nic["source"] = dev.bridge
        nic.update(guest_dev=dev.ifname, mac=dev.mac, host_dev=dev.host_ifname,
                   host_mac=dev.host_mac)
        old = before.get(("veth", dev.ifname))
        if old is not None:  # generated values the user never gave are not managed
            for key in ("mac", "host_dev", "host_mac"):
                if not old.get(key):
                    nic.pop(key)
        found.append({k: val for k, val in nic.items() if val})
    for dev in v.get("NETDEV") or []:
        found.append({"type": "hostdev", "source": dev})
    order = {key: i for i, key in enumerate(before)}
    return sorted(found, key=lambda nic: order.get(_nic_key(nic), len(order)))


def _same_ips(live: list[str], before: dict[str, Any] | None, version: Version) -> list[str]:
    """Live venet addresses, in the last-applied spelling and order when they are the same
    set (legacy canonicalises IPv6 text; vzctl keeps its own order)."""
    wanted = [str(ip) for ip in (before or {}).get("ip", [])]
    try:
        canon = [canon_ip(ip, legacy=True) for ip in wanted]
    except Invalid:
        return live
    if sorted(canon) == sorted(canon_ip(ip, legacy=True) for ip in live):
        return wanted
    return live


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class SetArgs:
    """What `vzctl set CTID ... --save` must be given: the options of the main call, one call
    per modified veth (vzctl takes one `--ifname` per call), and whether a restart-class
    setting (second-level quota on/off) changes."""

    main: list[str] = field(default_factory=list)
    nics: list[list[str]] = field(default_factory=list)
    restart: bool = False

    @property
    def empty(self) -> bool:
        return not self.main and not self.nics


def set_args(want: dict[str, Any], conf: Conf, ctid: str, version: Version,
             last: dict[str, Any] | None = None) -> SetArgs:
    """Options taking `conf` to the desired spec `want` (canonical); `last` is the last-applied
    spec (fields it manages that `want` dropped: only NICs are removed, see the module doc)."""
    v = conf.values
    out: list[str] = []
    name = str(want["name"])
    if name != ctid and v.get("NAME") != name:
        out += ["--name", name]
    for key, option, native in (("description", "--description", "DESCRIPTION"),
                                ("hostname", "--hostname", "HOSTNAME")):
        if want.get(key) is not None and want[key] != v.get(native):
            out += [option, str(want[key])]
    if want.get("autostart") is not None and want["autostart"] != v.get("ONBOOT"):
        out += ["--onboot", "yes" if want["autostart"] else "no"]
    dns = want.get("dns") or {}
    for key, option, native in (("nameservers", "--nameserver", "NAMESERVER"),
                                ("search", "--searchdomain", "SEARCHDOMAIN")):
        items = [str(x) for x in dns.get(key, ())]
        if items and items != list(v.get(native) or []):
            for item in items:
                out += [option, item]
    out += _memory_args(want, v)
    out += _cpu_args(want.get("cpu") or {}, v)
    quota_args, restart = _quota_args(want.get("quota") or {}, v)
    out += quota_args
    nics: list[list[str]] = []
    if "interfaces" in want or "interfaces" in (last or {}):
        main, nics = _nic_args(list(want.get("interfaces") or []), conf, version)
        out += main
    return SetArgs(out, nics, restart)


def _memory_args(want: dict[str, Any], v: Any) -> list[str]:
    out: list[str] = []
    limits = want.get("limits") or {}
    memory = want.get("memory")
    if memory is not None:
        pages = parse_size(memory) // PAGE
        phys = v.get("PHYSPAGES")
        if phys is None or phys[1] != pages:
            out += ["--ram", str(pages * PAGE)]  # bytes, whole pages: both versions agree
            if v.get("SWAPPAGES") is None and "swappages" not in limits:
                out += ["--swap", "0"]  # a vswap config needs SWAPPAGES (vzctl exits 28)
    for key, pair in limits.items():
        current = v.get(key.upper())
        if current is None or tuple(current) != (int(pair[0]), int(pair[1])):
            out += [f"--{key}", pair_arg(pair)]
    return out


def _cpu_args(cpu: dict[str, Any], v: Any) -> list[str]:
    out: list[str] = []
    for key, option, native in (("shares", "--cpuunits", "CPUUNITS"),
                                ("limit", "--cpulimit", "CPULIMIT"),
                                ("count", "--cpus", "CPUS")):
        if cpu.get(key) is not None and cpu[key] != v.get(native):
            out += [option, str(cpu[key])]
    cpuset = cpu.get("cpuset")
    if cpuset is not None:
        mask = v.get("CPUMASK")
        if not isinstance(mask, str) or not _same_mask(cpuset, mask):
            out += ["--cpumask", str(cpuset)]
    return out


def _quota_args(quota: dict[str, Any], v: Any) -> tuple[list[str], bool]:
    out: list[str] = []
    space = quota.get("space")
    if space is not None:
        kib = (parse_size(space[0]) // 1024, parse_size(space[1]) // 1024)
        if tuple(v.get("DISKSPACE") or ()) != kib:
            out += ["--diskspace", pair_arg(kib)]
    inodes = quota.get("inodes")
    if inodes is not None and tuple(v.get("DISKINODES") or ()) != tuple(inodes):
        out += ["--diskinodes", pair_arg(inodes)]
    if quota.get("time") is not None and quota["time"] != v.get("QUOTATIME"):
        out += ["--quotatime", str(quota["time"])]
    restart = False
    ugid = quota.get("ugid_limit")
    if ugid is not None and ugid != v.get("QUOTAUGIDLIMIT"):
        out += ["--quotaugidlimit", str(ugid)]
        restart = bool(ugid) != bool(v.get("QUOTAUGIDLIMIT") or 0)
    return out, restart


def _veth(nic: dict[str, Any]) -> Veth:
    return Veth(ifname=str(nic["guest_dev"]), mac=str(nic.get("mac") or ""),
                host_ifname=str(nic.get("host_dev") or ""),
                host_mac=str(nic.get("host_mac") or ""),
                bridge=str(nic.get("source") or "") if nic.get("type") == "bridge" else "")


def _nic_args(nics: list[dict[str, Any]], conf: Conf, version: Version
              ) -> tuple[list[str], list[list[str]]]:
    v = conf.values
    out: list[str] = []
    # venet: delete what the spec does not list, add what is new or has a new prefix
    want_ips: list[str] = []
    for nic in nics:
        if venet_nic(nic):
            want_ips += [str(ip) for ip in nic.get("ip", ())]
    have: dict[str, tuple[str, str]] = {}  # canonical address -> (canonical, as stored)
    for ip in v.get("IP_ADDRESS") or []:
        canon = canon_ip(ip, legacy=True)
        have[canon.partition("/")[0]] = (canon, ip)
    want = {canon_ip(ip, legacy=True).partition("/")[0] for ip in want_ips}
    if have and not want:
        out += ["--ipdel", "all"]
    else:
        for base, (_, stored) in have.items():
            if base not in want:
                out += ["--ipdel", stored.partition("/")[0]]
    for ip in want_ips:
        canon = canon_ip(ip, legacy=True)
        if have.get(canon.partition("/")[0], ("", ""))[0] != canon:
            out += ["--ipadd", ip]
    # veth: add, delete, and modify in calls of their own
    current = {dev.ifname: dev for dev in v.get("NETIF") or []}
    wanted = [_veth(nic) for nic in nics if veth_nic(nic)]
    calls: list[list[str]] = []
    for dev in current:
        if dev not in {w.ifname for w in wanted}:
            out += ["--netif_del", dev]
    for dev in wanted:
        old = current.get(dev.ifname)
        if old is None:
            out += ["--netif_add", netif_add_arg(dev, version.legacy)]
            continue
        change: list[str] = []
        for attr, option in (("mac", "--mac"), ("host_ifname", "--host_ifname"),
                             ("host_mac", "--host_mac"), ("bridge", "--bridge")):
            new = getattr(dev, attr)
            if new and new.lower() != getattr(old, attr).lower():
                change += [option, new]
        if change:
            calls.append(["--ifname", dev.ifname, *change])
    # moved host NICs
    have_dev = list(v.get("NETDEV") or [])
    want_dev = [str(nic["source"]) for nic in nics if nic.get("type") == "hostdev"]
    for dev in have_dev:
        if dev not in want_dev:
            out += ["--netdev_del", dev]
    for dev in want_dev:
        if dev not in have_dev:
            out += ["--netdev_add", dev]
    return out, calls


# dropped first when a rule over the whole object fails and names no field
CULPRITS = ("cpu", "quota", "memory", "interfaces")


def validated(raw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The canonical form of an observed spec and the fields the model refused
    (`drivers.observed.validated`)."""
    spec, refused = observed.validated(raw, CULPRITS)
    return spec, set(refused)
