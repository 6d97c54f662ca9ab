"""LXD (the `lxd` driver): system containers through LXD's REST API, on one server or a
cluster, and LXD managed networks.

What LXD applies to a running container (its instance options say "live update: yes"):
`limits.memory`, `limits.cpu`, `limits.cpu.allowance`, `limits.processes`; disk devices are
hot-plugged, so mounts change live. `boot.*` keys are only read when the daemon starts, and
DNS is a file the driver writes through LXD's file API: live too. What needs a restart: the
id map and `security.privileged` (LXD shifts the root filesystem at the next start),
`environment.*` (init's environment is fixed when it starts), `raw.lxc` (init, capabilities),
NICs (LXD would hot-replace the device and the guest would lose what it configured on it at
boot), and a changed target (LXD cannot move a running container: stop, move, start). A new
root image or type means a new instance.

What LXD cannot say at all is refused: settings with no LXD key (beancounters other than
`numproc`, disk quota, the token-bucket scheduler, memtune, block I/O tuning, kept libvirt
XML, os/arch, uuid, numeric ids), `cpu.shares` (LXD derives cpu.shares itself from
`limits.cpu.allowance` and `limits.cpu.priority`), a hostname other than the instance name
(LXD names the container's host after the instance), instance names LXD does not take, ram
and image-file filesystems, NICs and routes it cannot make. `init` (but its environment) and
`capabilities` need `raw.lxc`, which the driver writes only when its `raw_lxc` option says
so (`LXD_RAW`); LXD itself treats raw.lxc as an administrator's key.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from reconciler.rules.base import Refusal, Technology

# LXD's instance names are host names: letters, digits and '-', not starting with a digit
# or '-', not ending with '-', at most 63 characters (shared/validate ValidHostname)
INSTANCE_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# a bridge network is a Linux interface: at most 15 characters
NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_NOT_LXD = {
    "id": "LXD instances have no numeric id",
    "uuid": "LXD makes an instance's uuid itself (volatile.uuid)",
    "current_memory": "LXD has one memory limit (limits.memory); use memory",
    "memtune": "LXD has one memory limit (limits.memory); use memory",
    "blkiotune": "not modelled for LXD (limits.disk.priority and per-disk limits.read/write "
                 "are LXD's own units)",
    "quota": "not modelled for LXD (the root disk's size lives on its storage pool)",
    "scheduler": "not an LXD setting (use cpu.limit or cpu.quota/period)",
    "os": "not an LXD setting",
    "arch": "LXD takes the architecture from the image",
    "xml": "kept libvirt XML is not an LXD setting",
    "devices_xml": "kept libvirt XML is not an LXD setting",
}
RAW_LXC_FIELDS = ("cmd", "args", "dir", "user", "group")
_NIC_NOT = ("host_mac", "ranges", "host_ip", "host_routes", "link", "model", "xml", "gateway",
            "routes")
# model NIC type -> LXD nictype (network NICs take theirs from the managed network)
NICTYPES = {"bridge": "bridged", "direct": "macvlan", "hostdev": "physical",
            "vlan": "physical", "routed": "routed"}
# the NIC types whose host side LXD names (`host_name`)
_HOST_NAMED = frozenset({"bridge", "network", "routed"})
# CFS quota and period are whole milliseconds in limits.cpu.allowance ("25ms/100ms")
_MS = 1000


def _check(spec: dict[str, Any], tech: Technology, raw_lxc: bool) -> list[Refusal]:
    out = [Refusal(key, why) for key, why in _NOT_LXD.items() if spec.get(key)]
    name = str(spec.get("name", ""))
    if not INSTANCE_NAME.match(name):
        out.append(Refusal("name", f"{name!r} is not an LXD instance name: 1-63 letters, digits "
                           "and '-', starting with a letter, not ending with '-'"))
    if spec.get("hostname") not in (None, name):
        out.append(Refusal("hostname", "LXD names a container's host after the instance; "
                           "leave hostname out or make it the name"))
    limits = spec.get("limits") or {}
    for key, pair in limits.items():
        if key != "numproc":
            out.append(Refusal(f"limits.{key}", "not an LXD setting (only numproc: "
                               "limits.processes)"))
        elif pair[0] != pair[1]:
            out.append(Refusal("limits.numproc", "LXD has one process limit "
                               "(limits.processes): give barrier = limit"))
    out += _check_cpu(spec.get("cpu") or {})
    out += _check_init(spec, raw_lxc)
    out += _check_idmap(spec.get("idmap", ()))
    out += _check_filesystems(spec.get("filesystems", ()))
    out += _check_interfaces(spec.get("interfaces", ()))
    console = spec.get("console") or {}
    if console.get("count", 1) != 1:
        out.append(Refusal("console.count", "an LXD container has one console"))
    return out


def _check_cpu(cpu: dict[str, Any]) -> list[Refusal]:
    out = []
    if cpu.get("shares") is not None:
        out.append(Refusal("cpu.shares", "LXD sets cpu.shares itself (from "
                           "limits.cpu.allowance and limits.cpu.priority); give cpu.limit or "
                           "cpu.quota"))
    cpuset = cpu.get("cpuset")
    if cpuset is not None:
        cpus = cpu_set(cpuset)
        if cpus is None:
            out.append(Refusal("cpu.cpuset", f"{cpuset!r}: LXD pins CPUs by list and range "
                               "(0,2-3); an exclusion (^) is not LXD syntax"))
        elif len(cpus) != cpu.get("count"):
            out.append(Refusal("cpu.count", f"LXD gives a pinned container exactly the CPUs "
                               f"of its cpuset ({len(cpus)}), not {cpu.get('count')}"))
    if cpu.get("limit") is not None and (cpu.get("quota") is not None or
                                         cpu.get("period") is not None):
        out.append(Refusal("cpu.limit", "cpu.limit and cpu.quota/period are both "
                           "limits.cpu.allowance on LXD; give one"))
    if cpu.get("period") is not None and cpu.get("quota") is None:
        out.append(Refusal("cpu.period", "a period without a quota limits nothing"))
    for key in ("quota", "period"):
        value = cpu.get(key)
        if value is not None and (value < _MS or value % _MS):
            out.append(Refusal(f"cpu.{key}", f"{value} µs: LXD takes whole milliseconds "
                               "(limits.cpu.allowance: 25ms/100ms)"))
    if cpu.get("limit") == 0:
        out.append(Refusal("cpu.limit", "0% of a CPU would never run; leave cpu.limit out "
                           "for no limit"))
    return out


def _check_init(spec: dict[str, Any], raw_lxc: bool) -> list[Refusal]:
    init = spec.get("init") or {}
    out = []
    raw = [f"init.{key}" for key in RAW_LXC_FIELDS if init.get(key)]
    if spec.get("capabilities"):
        raw.append("capabilities")
    if not raw_lxc:
        return [Refusal(field, "LXD has no key for this; the driver would write raw.lxc, "
                        "which its raw_lxc option does not allow", allow="drivers.lxd.raw_lxc")
                for field in raw]
    for part in ([init["cmd"]] if init.get("cmd") else []) + list(init.get("args", ())):
        if not part or any(c.isspace() for c in part):
            out.append(Refusal("init", f"{part!r}: LXC splits lxc.init.cmd on spaces, so an "
                               "argument cannot be empty or contain whitespace"))
    if init.get("args") and not init.get("cmd"):
        out.append(Refusal("init.args", "init.args without init.cmd"))
    for what in ("user", "group"):
        if init.get(what) is not None and not str(init[what]).isdigit():
            out.append(Refusal(f"init.{what}", f"LXC needs a numeric id, not {init[what]!r}"))
    caps = spec.get("capabilities") or {}
    if caps.get("keep") and caps.get("policy", "default") == "default":
        out.append(Refusal("capabilities.keep", "LXC cannot add a capability to its own set; "
                           "use policy deny with keep, or allow with drop"))
    return out


def _check_idmap(idmap: Any) -> list[Refusal]:
    """LXD maps a container one way: every uid and every gid from 0 onto one host range
    (`security.idmap.base`/`size`, isolated), or its own shared range."""
    if not idmap:
        return []
    by_kind = {(m.get("kind"), m.get("start")): m for m in idmap}
    uid, gid = by_kind.get(("uid", 0)), by_kind.get(("gid", 0))
    if len(idmap) != 2 or uid is None or gid is None or \
            (uid["target"], uid["count"]) != (gid["target"], gid["count"]):
        return [Refusal("idmap", "LXD maps uids and gids alike from 0 onto one host range "
                        "(security.idmap.base and size): give one uid and one gid entry, both "
                        "starting at 0 with the same target and count")]
    return []


def _check_filesystems(filesystems: Any) -> list[Refusal]:
    out = []
    roots = [fs for fs in filesystems if fs.get("target") == "/"]
    if not roots:
        out.append(Refusal("filesystems", "an LXD instance is made from an image: give "
                           "filesystems: [{type: template, name: IMAGE, target: /}] (an alias "
                           "or fingerprint on the LXD server)"))
    for index, fs in enumerate(filesystems):
        where = f"filesystems.{index}"
        kind = fs.get("type", "mount")
        if fs.get("target") == "/":
            if kind != "template":
                out.append(Refusal(f"{where}.type", "LXD builds an instance's root from an "
                                   "image: use type template with the image's alias"))
            for key in ("method", "options", "source"):
                if fs.get(key):
                    out.append(Refusal(f"{where}.{key}", f"an LXD image takes no {key} "
                                       "(name: ALIAS or REMOTE:ALIAS, release: the alias's "
                                       "next part)"))
            continue
        if kind not in ("mount", "bind", "block", "volume"):
            out.append(Refusal(f"{where}.type", f"type {kind} is not an LXD disk (use mount, "
                               "block or volume: pool/volume)"))
        if fs.get("accessmode") not in (None, "passthrough"):
            out.append(Refusal(f"{where}.accessmode", "LXD passes ownership through as the "
                               "id map shifts it; accessmode is not an LXD setting"))
    return out


def _check_interfaces(nics: Any) -> list[Refusal]:
    out = []
    for index, nic in enumerate(nics):
        where = f"interfaces.{index}"
        kind = nic.get("type")
        if kind == "none":
            out.append(Refusal(f"{where}.type", "an LXD container always has a network "
                               "namespace of its own (use empty for loopback only)"))
            continue
        for key in _NIC_NOT:
            if nic.get(key):
                out.append(Refusal(f"{where}.{key}", "not an LXD NIC setting"))
        if nic.get("host_dev") and kind not in _HOST_NAMED:
            out.append(Refusal(f"{where}.host_dev", f"LXD names no host device of a {kind} "
                               "NIC"))
        if kind == "direct" and nic.get("mode") not in (None, "bridge"):
            out.append(Refusal(f"{where}.mode", "LXD's macvlan NICs are always in bridge "
                               "mode"))
        ips = [ip if isinstance(ip, str) else ip.get("address", "") for ip in nic.get("ip", ())]
        if ips and kind not in ("bridge", "network", "routed"):
            out.append(Refusal(f"{where}.ip", f"LXD sets no addresses on a {kind} NIC"))
        if kind in ("bridge", "network"):
            for family in ("ipv4", "ipv6"):
                if sum(1 for ip in ips if (":" in ip) == (family == "ipv6")) > 1:
                    out.append(Refusal(f"{where}.ip", f"LXD reserves one {family} address "
                                       "per NIC on a managed network"))
        for ip in ips:
            prefix = ip.partition("/")[2]
            host = "128" if ":" in ip else "32"
            if kind == "routed" and prefix not in ("", host):
                out.append(Refusal(f"{where}.ip", f"{ip}: LXD routes single addresses to a "
                                   "routed NIC; write them without a prefix"))
            elif kind in ("bridge", "network") and prefix:
                out.append(Refusal(f"{where}.ip", f"{ip}: LXD reserves the address on the "
                                   "network, whose prefix it is; write it without one"))
    return out


def cpu_set(text: str) -> frozenset[int] | None:
    """The CPUs of a list of numbers and ranges ("0,2-3"), None if it is not one."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            return None
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            return None
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def single_host(spec: dict[str, Any]) -> list[Refusal]:
    """What a driver of one host refuses of placement: `target` names a member of a cluster
    (the `lxd` driver's); which host's agent applies a spec is `hosts:`."""
    if spec.get("target"):
        return [Refusal("target", "placement is for an LXD cluster (the lxd driver); this "
                        "driver runs one host: use hosts: [NAME] to say which host applies "
                        "the spec")]
    return []


def _lxd(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    return _check(spec, tech, raw_lxc=False)


def _lxd_raw(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    return _check(spec, tech, raw_lxc=True)


_LIVE = frozenset({"memory", "cpu.*", "limits", "autostart", "start_order", "hostname",
                   "dns.*", "console.*", "allow_move"})
LXD = Technology(
    name="lxd", types=frozenset({"lxc"}), live=_LIVE, recreate=frozenset({"type"}),
    mounts="live", check=_lxd, templates=None, builds="every", guest_exec=True,  # exec API
    notes=("a changed target moves a stopped container; a running one is stopped, moved "
           "and started again only with allow_move",))
# the same, for a driver whose `raw_lxc` option lets it write raw.lxc (init, capabilities)
LXD_RAW = replace(LXD, name="lxd-raw", check=_lxd_raw)


def _check_network(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = []
    name = str(spec.get("name", ""))
    if not NETWORK_NAME.match(name):
        out.append(Refusal("name", f"{name!r}: an LXD bridge is a Linux interface named after "
                           "the network: at most 15 letters, digits, '_', '.' or '-'"))
    for key, why in (("uuid", "LXD networks have no uuid"),
                     ("ipv6", "not an LXD setting (an ipv6 address turns IPv6 on)"),
                     ("xml", "kept libvirt XML is not an LXD setting")):
        if spec.get(key) is not None and spec.get(key) != []:
            out.append(Refusal(key, why))
    bridge = spec.get("bridge") or {}
    if bridge.get("name") not in (None, name):
        out.append(Refusal("bridge.name", "an LXD bridge is named after its network"))
    for key in ("stp", "delay", "xml_attrs"):
        if bridge.get(key):
            out.append(Refusal(f"bridge.{key}", "not an LXD bridge setting"))
    forward = spec.get("forward")
    if forward is not None:
        if forward.get("mode", "nat") not in ("nat", "route"):
            out.append(Refusal("forward.mode", "an LXD bridge NATs or routes (nat, route), or "
                               "neither (leave forward out)"))
        for key in ("dev", "xml", "xml_attrs"):
            if forward.get(key):
                out.append(Refusal(f"forward.{key}", "not an LXD bridge setting"))
    if spec.get("state", "running") == "stopped":
        out.append(Refusal("state", "an LXD network is up while its daemon runs"))
    if spec.get("autostart") is False:
        out.append(Refusal("autostart", "an LXD network starts with its daemon"))
    families: dict[str, int] = {}
    for index, ip in enumerate(spec.get("ips", ())):
        address = str(ip.get("address", ""))
        family = "ipv6" if ":" in address else "ipv4"
        families[family] = families.get(family, 0) + 1
        if "/" not in address and not ip.get("netmask"):
            out.append(Refusal(f"ips.{index}.address", "give the bridge's prefix "
                               "(10.0.0.1/24)"))
        for key in ("dhcp_hosts", "xml", "dhcp_xml"):
            if ip.get(key):
                out.append(Refusal(f"ips.{index}.{key}", "not an LXD network setting (LXD "
                                   "reserves a NIC's address on the NIC: ipv4.address)"))
        if len(ip.get("dhcp_ranges", ())) and family == "ipv6":
            out.append(Refusal(f"ips.{index}.dhcp_ranges", "DHCPv6 ranges are not modelled "
                               "for LXD"))
    out += [Refusal("ips", f"an LXD bridge has one {family} address")
            for family, count in families.items() if count > 1]
    return out


# LXD reconfigures a managed network in place (dnsmasq and the bridge), so every change is
# live; a network is named after its bridge, so a new bridge name is a new network
LXD_NETWORK = Technology(
    name="lxd-network", types=frozenset({"network"}),
    live=frozenset({"ips", "forward", "mtu", "mac", "domain", "autostart", "title",
                    "description"}),
    recreate=frozenset({"bridge", "uuid"}), check=_check_network, builds="none")
