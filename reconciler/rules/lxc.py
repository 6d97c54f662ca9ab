"""LXC through its own tools (the `lxc` driver): reference native-formats §3.

LXC reads a container's config only at start, so nearly every change needs a restart. Live:
cgroup limits (lxc-cgroup: memory, memtune, every cpu setting, cpu.count through the cpuset,
block I/O weights and throttles), autostart and start order (only lxc-autostart reads them)
and DNS (a file in the root the driver built). Capabilities (the bounding set is fixed when
init starts) and NICs need a restart. A new root filesystem, the type or the id map mean a
new container.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.model.units import parse_size
from reconciler.rules.base import Refusal, Technology, UpdateClass
from reconciler.rules.lxd import single_host

# model NIC type -> lxc.net.N.type
NIC_TYPES = {"bridge": "veth", "routed": "veth", "direct": "macvlan", "vlan": "vlan",
             "hostdev": "phys", "empty": "empty", "none": "none"}
# LXC's cgroup keys name a block device by number: the model's path must say it
BLOCK_DEVICE = re.compile(r"/dev/block/([0-9]{1,10}):([0-9]{1,10})\Z")
_NOT_LXC = ("id", "uuid", "current_memory", "limits", "quota", "scheduler", "os", "xml",
            "devices_xml")
_DEFAULT_ROUTES = ("0.0.0.0", "::")  # noqa: S104 - route destinations, not a bind

# LXC 4 and 5 ship these templates (§3.4). `local` and `oci` build from files or URLs the
# spec would name (a host tarball, `oci:/path`): a spec never chooses what the host reads.
SHIPPED_TEMPLATES = frozenset({"busybox", "download", "local", "oci"})
READS_HOST_INPUT = frozenset({"local", "oci"})
DEFAULT_TEMPLATES = SHIPPED_TEMPLATES - READS_HOST_INPUT
# template options the driver sets itself (lxc-create hands every template --path, --name,
# --rootfs and the id maps) or that make a template read a host file; getopt_long takes any
# unambiguous prefix of a long option, so a prefix of one of these is refused too
TEMPLATE_OWNED_LONG = ("path", "name", "rootfs", "mapped-uid", "mapped-gid", "busyboxpath",
                       "metadata", "fstree", "url")
TEMPLATE_OWNED_SHORT = frozenset("pnfm")


def family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def gateways(nic: dict[str, Any]) -> dict[str, str] | None:
    """{'ipv4': gw, 'ipv6': gw} from `gateway` and default routes; None if not expressible."""
    out: dict[str, str] = {}
    gateway = nic.get("gateway")
    if gateway:
        out[family(gateway)] = gateway
    for route in nic.get("routes", ()):
        if route.get("prefix") != 0 or route.get("address") not in _DEFAULT_ROUTES:
            return None
        fam = family(route["address"])
        if out.get(fam, route["gateway"]) != route["gateway"]:
            return None
        out[fam] = route["gateway"]
    return out


def template_option_refusal(option: str) -> str | None:
    """Why a template option is refused (None: it is not)."""
    if option.startswith("--"):
        name = option[2:].split("=", 1)[0]
        if not name:
            return None
        owned = [o for o in TEMPLATE_OWNED_LONG if o.startswith(name)]
        if owned:
            return (f"{option!r} is (an abbreviation of) --{owned[0]}, which the driver sets "
                    "itself or which makes the template read a host path")
        return None
    if option.startswith("-") and len(option) > 1:
        clash = sorted(set(option[1:]) & TEMPLATE_OWNED_SHORT)
        if clash:
            return (f"{option!r} holds -{clash[0]}, which the driver sets itself or which "
                    "makes the template read a host path")
    return None


def _check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = not_expressible(spec, tech) + single_host(spec)
    if not any(fs.get("target") == "/" for fs in spec.get("filesystems", ())):
        out.append(Refusal("filesystems", "an LXC container needs a root filesystem, e.g. "
                           "{type: template, name: busybox, target: /}"))
    return out


def not_expressible(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    """What of `spec` an LXC config cannot say (the mapping checks this before it writes)."""
    out = [Refusal(key, "not an LXC setting") for key in _NOT_LXC if spec.get(key)]
    memtune = spec.get("memtune") or {}
    if memtune.get("min_guarantee") is not None:
        out.append(Refusal("memtune.min_guarantee", "LXC has no memory guarantee"))
    if memtune.get("hard_limit") and spec.get("memory") and \
            parse_size(memtune["hard_limit"]) != parse_size(spec["memory"]):
        out.append(Refusal("memtune.hard_limit", "differs from memory; on LXC both are the one "
                           "memory limit"))
    cpu = spec.get("cpu") or {}
    if cpu.get("limit") is not None and cpu.get("quota") is not None:
        out.append(Refusal("cpu.limit", "cpu.limit and cpu.quota both set; give one"))
    out += _check_init(spec.get("init") or {})
    out += _check_filesystems(spec, tech)
    out += _check_interfaces(spec.get("interfaces", ()))
    out += _check_blkio(spec.get("blkiotune") or {})
    out += _check_capabilities(spec.get("capabilities") or {})
    if spec.get("idmap") and any(nic.get("type") == "none" for nic in spec.get("interfaces", ())):
        out.append(Refusal("interfaces.0.type", "LXC cannot give an unprivileged container (one "
                           "with an idmap) the host's network: it could not mount sysfs"))
    return out


def _check_blkio(blkio: dict[str, Any]) -> list[Refusal]:
    return [Refusal(f"blkiotune.devices.{i}.path", f"{device.get('path')}: LXC's cgroup keys "
                    "name a block device by number; write /dev/block/MAJ:MIN (ls -l on the "
                    "device shows both)")
            for i, device in enumerate(blkio.get("devices", ()))
            if not BLOCK_DEVICE.match(str(device.get("path")))]


def _check_capabilities(caps: dict[str, Any]) -> list[Refusal]:
    """LXC's own set is every capability less what its included configs drop: a spec can drop
    more from it (lxc.cap.drop), never add one back."""
    if caps.get("keep") and caps.get("policy", "default") == "default":
        return [Refusal("capabilities.keep", "LXC cannot add a capability to its own set; use "
                        "policy deny with keep (lxc.cap.keep), or allow with drop")]
    return []


def _check_init(init: dict[str, Any]) -> list[Refusal]:
    out = []
    args = list(init.get("args", ()))
    if args and not init.get("cmd"):
        out.append(Refusal("init.args", "init.args without init.cmd"))
    for part in ([init["cmd"]] if init.get("cmd") else []) + args:
        if not part or any(c.isspace() for c in part):
            out.append(Refusal("init", f"{part!r}: LXC splits lxc.init.cmd on spaces, so an "
                               "argument cannot be empty or contain whitespace"))
    for what in ("user", "group"):
        if init.get(what) is not None and not str(init[what]).isdigit():
            out.append(Refusal(f"init.{what}", f"LXC needs a numeric id, not {init[what]!r}"))
    return out


def _check_filesystems(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = []
    for index, fs in enumerate(spec.get("filesystems", ())):
        kind = fs.get("type", "mount")
        where = f"filesystems.{index}"
        if fs.get("target") == "/":
            if kind not in ("template", "mount", "block"):
                out.append(Refusal(f"{where}.type", f"type {kind} cannot be an LXC root"))
            if kind == "template":
                out += _check_template(fs, where, tech)
            elif spec.get("dns"):
                out.append(Refusal("dns", "DNS is written into a root the driver built; this "
                                   f"root is the host's {fs.get('source')}, which the driver "
                                   "never writes (leave dns out and manage etc/resolv.conf "
                                   "there)"))
            continue
        if kind not in ("mount", "ram"):
            out.append(Refusal(f"{where}.type", f"type {kind} is not supported on LXC below the "
                               "root (use mount or ram; a block device needs its filesystem "
                               "type in lxc.mount.entry, which the model does not carry)"))
        if fs.get("accessmode") not in (None, "passthrough"):
            out.append(Refusal(f"{where}.accessmode", f"accessmode {fs['accessmode']} is not "
                               "supported on LXC"))
    return out


def _check_template(fs: dict[str, Any], where: str, tech: Technology) -> list[Refusal]:
    out = []
    if fs.get("method") or fs.get("release"):
        out.append(Refusal(f"{where}.method", "method/release are not LXC template settings; "
                           "pass template arguments in options"))
    name = str(fs.get("name"))
    if tech.templates is not None and name not in tech.templates:
        why = (" (it builds from host files or URLs the spec would name)"
               if name in READS_HOST_INPUT else "")
        out.append(Refusal(f"{where}.name", f"template {name!r} is not one this host offers"
                           f"{why}; available: {', '.join(sorted(tech.templates)) or 'none'}"))
    for n, option in enumerate(fs.get("options", ())):
        clash = template_option_refusal(str(option))
        if clash:
            out.append(Refusal(f"{where}.options.{n}", clash))
    return out


def _check_interfaces(nics: Any) -> list[Refusal]:
    out = []
    for i, nic in enumerate(nics):
        where = f"interfaces.{i}"
        if nic.get("type") not in NIC_TYPES:
            out.append(Refusal(f"{where}.type", f"type {nic.get('type')} is not supported on "
                               "LXC; use bridge with the network's bridge name"))
        for key in ("host_mac", "ranges", "host_ip", "host_routes", "model", "xml"):
            if nic.get(key):
                out.append(Refusal(f"{where}.{key}", "not an LXC setting"))
        if nic.get("host_dev") and nic.get("type") not in ("bridge", "routed"):
            out.append(Refusal(f"{where}.host_dev", "only applies to veth (bridge/routed)"))
        if nic.get("mode") and nic.get("type") != "direct":
            out.append(Refusal(f"{where}.mode", "only applies to direct (macvlan)"))
        if gateways(nic) is None:
            out.append(Refusal(f"{where}.routes", "LXC routes only a default gateway per "
                               "family; other routes are not supported"))
    return out


def _root_change(old_root: Any, new_root: Any) -> UpdateClass:
    return "recreate"


LXC = Technology(
    name="lxc", types=frozenset({"lxc"}),
    live=frozenset({"memory", "autostart", "start_order", "memtune.*", "cpu.*", "dns.*",
                    "blkiotune"}),
    recreate=frozenset({"type", "idmap", "filesystems"}),
    mounts="restart", root_change=_root_change, check=_check, templates=DEFAULT_TEMPLATES,
    guest_exec=True)  # lxc-attach
