"""libvirt domain/network XML -> the model's input dict.

An element is typed only when every attribute and child of it is understood; anything else is
kept whole as canonical XML (`xml`, `devices_xml`, ...), so `virsh dumpxml` output of any
guest, a KVM disk included, loads and writes back without loss. What libvirt never adopted
(run state, CTID, beancounters, ...) comes from one element of our namespace in `<metadata>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree

from reconciler.errors import Location, SpecError
from reconciler.model.units import UNIT_NAMES, UNITS
from reconciler.specs.xmlsafe import canonical_xml

NS = "urn:reconciler:spec:1"
Q_EXT = f"{{{NS}}}spec"



TOP_ORDER = ["name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
              "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus",
              "iothreads", "cputune", "numatune", "resource", "sysinfo", "bootloader",
              "bootloader_args", "os", "idmap", "features", "cpu", "clock", "on_poweroff",
              "on_reboot", "on_crash", "pm", "perf", "devices", "seclabel"]
DEV_ORDER = ["emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard",
              "serial", "parallel", "console", "channel", "input", "tpm", "graphics", "sound",
              "audio", "video", "hostdev"]
NET_ORDER = ["name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu",
              "mac", "domain", "dns", "ip", "route"]


def in_libvirt_order(kept: list[str], order: list[str]) -> list[str]:
    """Elements kept as XML, in the order libvirt writes them (same tags keep their order),
    so a hand-ordered spec and `virsh dumpxml` output give equal models."""
    rank = {tag: i for i, tag in enumerate(order)}

    def key(text: str) -> int:
        if text.startswith("@"):
            return -1
        tag = text[1:].split(None, 1)[0].split(">", 1)[0].split("/", 1)[0]
        return rank.get(tag, len(order))

    return sorted(kept, key=key)


ANY_ADDRESS = ("0.0.0.0", "::")  # noqa: S104 - a default route's destination, not a bind
_TEXT_FIELDS = ("name", "uuid", "title", "description")


class Untyped(Exception):
    """This element has something the model does not type: keep it as XML."""


Lines = dict[tuple[Any, ...], int]


def line_of(el: etree._Element) -> int:
    """The element's 1-based source line (1 when lxml does not know it)."""
    line = el.sourceline
    return line if isinstance(line, int) and line > 0 else 1


def bad(el: etree._Element, message: str) -> SpecError:
    """A value libvirt would refuse, placed at its element (the file is filled in later)."""
    return SpecError(message, Location("", line_of(el), 1))


def _only(el: etree._Element, attrs: tuple[str, ...] = (), children: tuple[str, ...] = (),
          text: bool = False) -> Sequence[etree._Element]:
    """`el`'s children, when it has no attribute but `attrs`, no child but `children` and
    (unless `text`) no text; else Untyped. Callers walk the list rather than `el` again: each
    walk of an lxml element builds a Python object per child."""
    for name in el.keys():  # noqa: SIM118 - an lxml element: keys() is one C call, no proxy
        if name not in attrs:
            raise Untyped
    kids = list(el) if len(el) else ()
    for child in kids:
        if child.tag not in children:
            raise Untyped
    if not text:
        content = el.text
        if content and not content.isspace():
            raise Untyped
    return kids


def _scaled(el: etree._Element, default_unit: str = "kib", attr: str = "unit",
            value: str | None = None) -> str:
    """A libvirt scaled integer as an exact byte count the model parses ('123B')."""
    unit = el.get(attr, default_unit)
    number = ((el.text if value is None else value) or "").strip()
    factor = UNITS.get(unit.lower())
    if factor is None or not number.isdigit():
        where = f"<{el.tag}>" if value is None else f"<{el.tag} usage=...>"
        if factor is None:
            raise bad(el, f"{where}: unknown {attr} {unit!r}; valid: {UNIT_NAMES}")
        example = ("<memory unit='MiB'>512</memory>" if value is None else
                   "<source usage='64' units='MiB'/>")
        raise bad(el, f"{where}: {number!r} is not a size; write a whole number "
                  f"(with a unit), e.g. {example}")
    return f"{int(number) * factor}B"


def _bool(value: str | None) -> bool | None:
    return None if value is None else value in ("yes", "on", "1", "true")


def _ip(el: etree._Element) -> dict[str, Any] | str:
    _only(el, ("address", "family", "prefix", "peer"))
    address = el.get("address", "")
    family = el.get("family")
    if family and family != ("ipv6" if ":" in address else "ipv4"):
        raise Untyped
    prefix, peer = el.get("prefix"), el.get("peer")
    if peer is not None:
        return {"address": address, "prefix": prefix, "peer": peer}
    if prefix is None:
        return address
    if not prefix.isdigit():
        return {"address": address, "prefix": prefix}  # the model names the problem
    return f"{address}/{prefix}"


def _routes(els: list[etree._Element], allow_gateway: bool) -> tuple[str | None, list[Any]]:
    gateway: str | None = None
    routes: list[Any] = []
    for el in els:
        _only(el, ("family", "address", "prefix", "gateway", "metric"))
        address, via = el.get("address"), el.get("gateway")
        if via is None or address is None:
            raise Untyped
        prefix, metric, family = el.get("prefix"), el.get("metric"), el.get("family")
        if allow_gateway and gateway is None and address in ANY_ADDRESS and \
                prefix in (None, "0") and metric is None and \
                family in (None, "ipv6" if ":" in address else "ipv4"):
            gateway = via
            continue
        route: dict[str, Any] = {"address": address, "gateway": via}
        for key, value in (("prefix", prefix), ("metric", metric), ("family", family)):
            if value is not None:
                route[key] = value
        routes.append(route)
    return gateway, routes


# --------------------------------------------------------------------------- domain pieces

_FS_CHILDREN = ("source", "target", "readonly", "driver", "space_hard_limit",
                "space_soft_limit")
_FS_SOURCE = {"mount": ("dir",), "bind": ("dir",), "block": ("dev",), "file": ("file",),
              "template": ("name",), "ram": ("usage", "units"), "volume": ("pool", "volume")}


def _filesystem(el: etree._Element) -> dict[str, Any]:
    children = _only(el, ("type", "accessmode"), _FS_CHILDREN)
    fstype = el.get("type", "mount")
    fs: dict[str, Any] = {"type": fstype}
    accessmode = el.get("accessmode")
    if accessmode:
        fs["accessmode"] = accessmode
    source_attrs = _FS_SOURCE.get(fstype)
    if source_attrs is None:
        raise Untyped
    tags = [child.tag for child in children]
    if len(set(tags)) != len(tags):
        raise Untyped  # a repeated child: not a shape the model has
    if ("space_hard_limit" in tags) != ("space_soft_limit" in tags):
        raise Untyped  # the quota is a soft:hard pair; one alone stays as written
    for child, tag in zip(children, tags, strict=True):
        if tag == "source":
            _only(child, source_attrs)
            if fstype == "ram":
                fs["size"] = _scaled(child, "KiB", "units", child.get("usage", ""))
            elif fstype == "template":
                fs["name"] = child.get("name")
            elif fstype == "volume":
                pool, volume = child.get("pool"), child.get("volume")
                if pool is None or volume is None:
                    raise Untyped
                fs["source"] = f"{pool}/{volume}"
            else:
                fs["source"] = child.get(source_attrs[0])
        elif tag == "target":
            _only(child, ("dir",))
            fs["target"] = child.get("dir")
        elif tag == "readonly":
            _only(child)
            fs["readonly"] = True
        elif tag == "driver":
            _only(child, ("type", "format"))
            driver, form = child.get("type"), child.get("format")
            if driver is None:
                raise Untyped
            fs["driver"] = driver
            if form is not None:
                fs["format"] = form
        else:  # space_hard_limit, space_soft_limit
            _only(child, ("unit",), text=True)
            fs[tag] = _scaled(child, "bytes")
    if "space_hard_limit" in fs and fs.get("target") != "/":
        raise Untyped  # the model's quota belongs to the root filesystem only
    return fs


def _no_repeats(children: Sequence[etree._Element], repeatable: tuple[str, ...] = ()) -> None:
    tags = [c.tag for c in children if c.tag not in repeatable]
    if len(set(tags)) != len(tags):
        raise Untyped


_IF_CHILDREN = ("mac", "source", "vlan", "target", "guest", "ip", "route", "link", "mtu",
                "model")
_IF_KIND = {"bridge": "bridge", "network": "network", "ethernet": "routed", "direct": "direct"}
_IF_SOURCE = {"bridge": ("bridge",), "network": ("network",), "direct": ("dev", "mode")}
# children that are one attribute and nothing else: tag -> (that attribute, field)
_IF_LEAVES: dict[str, tuple[tuple[str, ...], str]] = {
    "mac": (("address",), "mac"), "target": (("dev",), "host_dev"),
    "guest": (("dev",), "guest_dev"), "link": (("state",), "link"), "mtu": (("size",), "mtu"),
    "model": (("type",), "model")}


def _interface(el: etree._Element) -> dict[str, Any]:
    children = _only(el, ("type",), _IF_CHILDREN)
    _no_repeats(children, ("ip", "route"))
    kind = _IF_KIND.get(el.get("type") or "")
    if kind is None:
        raise Untyped
    nic: dict[str, Any] = {"type": kind}
    ips: list[Any] = []
    route_els: list[etree._Element] = []
    vlan: etree._Element | None = None
    for child in children:
        tag = child.tag
        leaf = _IF_LEAVES.get(tag)
        if leaf is not None:
            attrs, key = leaf
            _only(child, attrs)
            nic[key] = child.get(attrs[0])
        elif tag == "source":
            if kind == "routed":
                inner = _only(child, (), ("ip", "route"))
                nic["host_ip"] = [_ip(c) for c in inner if c.tag == "ip"]
                _gw, nic["host_routes"] = _routes([c for c in inner if c.tag == "route"], False)
            else:
                attrs = _IF_SOURCE[kind]
                _only(child, attrs)
                nic["source"] = child.get(attrs[0])
                mode = child.get("mode")
                if mode:
                    nic["mode"] = mode
        elif tag == "vlan":
            vlan = child
        elif tag == "ip":
            ips.append(_ip(child))
        else:  # route
            route_els.append(child)
    if vlan is not None:
        nic["vlan"] = _vlan_tag(vlan, nic)
    nic["ip"] = ips
    nic["gateway"], nic["routes"] = _routes(route_els, True)
    return nic


def _vlan_tag(el: etree._Element, nic: dict[str, Any]) -> str | None:
    """A VLAN NIC is a direct interface on its parent with one untagged `<vlan><tag>` and no
    macvlan mode (LXC's `vlan` type; libvirt itself has no such device for a guest)."""
    tags = _only(el, (), ("tag",))
    if nic["type"] != "direct" or len(tags) != 1 or "mode" in nic:
        raise Untyped
    _only(tags[0], ("id",))
    nic["type"] = "vlan"
    return tags[0].get("id")


def _hostdev_net(el: etree._Element) -> dict[str, Any]:
    children = _only(el, ("mode", "type"), ("source", "ip", "route"))
    if el.get("mode") != "capabilities" or el.get("type") != "net":
        raise Untyped
    _no_repeats(children, ("ip", "route"))
    nic: dict[str, Any] = {"type": "hostdev"}
    source = next((c for c in children if c.tag == "source"), None)
    if source is None:
        raise Untyped
    inner = _only(source, (), ("interface",))
    iface = inner[0] if inner else None
    if iface is None or len(iface) or iface.attrib:
        raise Untyped
    nic["source"] = (iface.text or "").strip()
    nic["ip"] = [_ip(c) for c in children if c.tag == "ip"]
    nic["gateway"], nic["routes"] = _routes([c for c in children if c.tag == "route"], True)
    return nic


def _console(els: list[etree._Element], dtype: str) -> dict[str, Any]:
    """Only the plain form (`pty`, target type of the driver, ports 0..N-1) is typed."""
    for port, el in enumerate(els):
        targets = _only(el, ("type",), ("target",))
        if el.get("type") != "pty":
            raise Untyped
        if targets:
            target = targets[0]
            _only(target, ("type", "port"))
            if target.get("type") not in (None, dtype) or \
                    target.get("port") not in (None, str(port)):
                raise Untyped
    return {"type": "pty", "count": len(els)}


def _os(el: etree._Element, dom: dict[str, Any]) -> None:
    if el.attrib or (el.text and el.text.strip()):
        raise Untyped
    children = list(el)
    _no_repeats(children, ("initarg", "initenv", "boot"))
    init: dict[str, Any] = {}
    rest: list[str] = []
    os_part: dict[str, Any] = {}
    for child in children:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if len(child) and tag != "type":
            rest.append(canonical_xml(child))
        elif tag == "type":
            _only(child, ("arch", "machine"), text=True)
            if not (child.text or "").strip():
                raise Untyped
            os_part["type"] = (child.text or "").strip()
            if child.get("arch"):
                dom["arch"] = child.get("arch")
            if child.get("machine"):
                os_part["machine"] = child.get("machine")
        elif tag == "init" and not child.attrib:
            init["cmd"] = (child.text or "").strip()
        elif tag == "initarg" and not child.attrib:
            init.setdefault("args", []).append(child.text or "")
        elif tag == "initenv" and set(child.attrib) == {"name"}:
            init.setdefault("env", {})[child.get("name")] = child.text or ""
        elif tag == "initdir" and not child.attrib:
            init["dir"] = (child.text or "").strip()
        elif tag == "inituser" and not child.attrib:
            init["user"] = (child.text or "").strip()
        elif tag == "initgroup" and not child.attrib:
            init["group"] = (child.text or "").strip()
        else:
            rest.append(canonical_xml(child))
    if init:
        dom["init"] = init
    if rest:
        os_part["xml"] = rest
    if os_part.get("type") == "exe" and dom.get("type") in ("lxc", "openvz", "vserver", "vz"):
        os_part.pop("type")  # the only os type a container has; implied by the domain type
    if os_part:
        dom["os"] = os_part


def _idmap(el: etree._Element) -> list[dict[str, Any]]:
    out = []
    for child in _only(el, (), ("uid", "gid")):
        _only(child, ("start", "target", "count"))
        out.append({"kind": child.tag, **{k: child.get(k) for k in ("start", "target", "count")}})
    return out


def _memtune(el: etree._Element) -> dict[str, Any]:
    children = _only(el, (), ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee"))
    _no_repeats(children)
    for child in children:
        _only(child, ("unit",), text=True)
    return {child.tag: _scaled(child) for child in children}


_BLKIO_DEVICE = ("path", "weight", "read_bytes_sec", "write_bytes_sec", "read_iops_sec",
                 "write_iops_sec")


def _blkiotune(el: etree._Element) -> dict[str, Any]:
    children = _only(el, (), ("weight", "device"))
    _no_repeats(children, ("device",))
    out: dict[str, Any] = {}
    for child in children:
        if child.tag == "weight":
            _only(child, text=True)
            out["weight"] = (child.text or "").strip()
            continue
        kids = _only(child, (), _BLKIO_DEVICE)
        _no_repeats(kids)
        for kid in kids:
            _only(kid, text=True)
        out.setdefault("devices", []).append({kid.tag: (kid.text or "").strip() for kid in kids})
    return out


def _capabilities(el: etree._Element) -> dict[str, Any]:
    """`<capabilities policy=...>` with one `<NAME state='on|off'/>` per capability."""
    children = _only(el, ("policy",), tuple(str(c.tag) for c in el))
    _no_repeats(children)
    caps: dict[str, Any] = {"policy": el.get("policy", "default"), "keep": [], "drop": []}
    for child in children:
        _only(child, ("state",))
        state = {"on": "keep", "off": "drop"}.get(child.get("state") or "")
        if state is None or not isinstance(child.tag, str):
            raise Untyped
        caps[state].append(child.tag)
    return caps


def _features(el: etree._Element, dom: dict[str, Any], extra: list[str],
              devices_extra: list[str]) -> None:
    """`<features>`: its capabilities are typed, and `<privnet/>` of a domain without NICs is
    the `empty` interface (a network namespace of its own, loopback only); the other features
    stay as written. Called once the devices are read."""
    nics = "interfaces" in dom or any(p.startswith(_NIC_PIECES) for p in devices_extra)
    typed: list[etree._Element] = []
    try:
        children = _only(el, (), tuple(str(c.tag) for c in el))
        _no_repeats(children)
        caps = None
        for child in children:
            if child.tag == "capabilities":
                caps = _capabilities(child)
                typed.append(child)
            elif child.tag == "privnet" and not nics:
                _only(child)
                typed.append(child)
    except Untyped:
        extra.append(canonical_xml(el))
        return
    if caps is not None:
        dom["capabilities"] = caps
    if any(child.tag == "privnet" for child in typed):
        dom["interfaces"] = [{"type": "empty"}]
    for child in typed:
        el.remove(child)
    if len(el):
        extra.append(canonical_xml(el))


# kept devices that give a guest a NIC (and so a network namespace)
_NIC_PIECES = ("<interface ", "<interface>", "<hostdev ", "<hostdev>")


def _cputune(el: etree._Element) -> dict[str, Any]:
    children = _only(el, (), ("shares", "period", "quota"))
    _no_repeats(children)
    out = {}
    for child in children:
        _only(child, text=True)
        out[child.tag] = (child.text or "").strip()
    return out


def read_domain(root: etree._Element, lines: Lines | None) -> dict[str, Any]:
    """The model's input dict for a `<domain>` element; `lines` (when given: it is only
    needed to report errors) gets path -> source line."""
    dom: dict[str, Any] = {"kind": "Domain", "type": root.get("type")}
    if lines is not None:
        lines[()] = line_of(root)
    # the 2007 VServer proposal (seeds/000): its own elements, and the context as <domain id>
    dialect = dom["type"] == "vserver"
    seed = _Seed(root.get("id")) if dialect and root.get("id") is not None else None
    extra: list[str] = [f"@{key!s}={value!s}" for key, value in root.attrib.items()
                        if key != "type" and (seed is None or key != "id")]
    devices_extra: list[str] = []
    cpu: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    seen: set[str] = set()
    features: etree._Element | None = None
    for child in root:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if lines is not None:
            for field in _FIELD_OF.get(tag, ("xml",)):
                lines.setdefault((field,), line_of(child))
        try:
            if dialect and tag in _SEED_TAGS:
                seed = seed or _Seed(None)
                seed.take(child)
                continue
            if tag in seen:
                raise Untyped  # a second <memory>, <os>, ...: keep it as written
            seen.add(tag)
            if tag in _TEXT_FIELDS and not child.attrib and not len(child):
                dom[tag] = (child.text or "").strip()
            elif tag == "metadata":
                ext, others = _metadata(child, lines, DOMAIN_EXT, _DOMAIN_EXT_PARTS)
                if others is not None:
                    extra.append(others)
            elif tag in ("memory", "currentMemory"):
                _only(child, ("unit",), text=True)
                dom["memory" if tag == "memory" else "current_memory"] = _scaled(child)
            elif tag == "memtune":
                dom["memtune"] = _memtune(child)
            elif tag == "blkiotune":
                dom["blkiotune"] = _blkiotune(child)
            elif tag == "features":
                features = child  # read once the devices are (its privnet depends on them)
            elif tag == "vcpu":
                _only(child, ("placement", "cpuset"), text=True)
                if child.get("placement") not in (None, "static"):
                    raise Untyped
                cpu["count"] = (child.text or "").strip()
                cpuset = child.get("cpuset")
                if cpuset:
                    cpu["cpuset"] = cpuset
            elif tag == "cputune":
                cpu.update(_cputune(child))
            elif tag == "os":
                _os(child, dom)
            elif tag == "idmap":
                dom["idmap"] = _idmap(child)
            elif tag == "devices":
                _devices(child, dom, devices_extra, lines)
            else:
                raise Untyped
        except Untyped:
            extra.append(canonical_xml(child))
    if features is not None:
        _features(features, dom, extra, devices_extra)
    if cpu:
        dom["cpu"] = cpu
    if extra:
        dom["xml"] = in_libvirt_order(extra, TOP_ORDER)
    if devices_extra:
        dom["devices_xml"] = in_libvirt_order(devices_extra, DEV_ORDER)
    if seed is not None:
        seed.merge(dom, ext, root)
    _merge_extension(dom, ext)
    return dom


# --------------------------------------------------------------------------- VServer proposal

# The Linux-VServer proposal of 2007 (seeds/000, libvir-list) wrote what libvirt never adopted
# as elements of a `<domain type='vserver'>` of their own; they are read into the harmonized
# model, and written back in its form (xml_write: the extension, <os><type arch>, filesystems
# and interfaces as libvirt's):
#     <domain type='vserver' id='N'>                     id (the context)
#     <scheduler fill_rate1= interval1= ...>             scheduler (fill_rate1 is fill_rate)
#       <cpu id='N' fill_rate1= ... idle_time='1'/>      scheduler.cpus[N]
#     <uts hostname= machine=/>                          hostname, arch
#     <distribution method= release= [name=]/>           the root: a template (name: release)
#     <disk type='path|block' device='path'>             a root (target /: where the template
#       <source path=|dev=/><target path=/>              is built) or a mount / block device
#     <interface type='vserver'>                         a routed (IP isolation) interface:
#       <ip family= address= [address2= type='range']    an address, or a range, on the host
#           prefix= [interface='eth0']/>                 device `interface` (host_dev)
_SEED_TAGS = frozenset({"scheduler", "uts", "distribution", "disk", "interface"})
_SEED_BUCKET = {"fill_rate1": "fill_rate", "fill_rate": "fill_rate", "interval1": "interval",
                "interval": "interval", "fill_rate2": "fill_rate2", "interval2": "interval2",
                "tokens": "tokens", "tokens_min": "tokens_min", "tokens_max": "tokens_max",
                "priority_bias": "priority_bias", "idle_time": "idle_time"}
_SEED_FAMILY = {"ipv4": "ipv4", "ipv6": "ipv6"}


def _seed_bucket(el: etree._Element, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    bucket: dict[str, Any] = {}
    for key, value in el.attrib.items():
        if key in skip:
            continue
        field = _SEED_BUCKET.get(str(key))
        if field is None or field in bucket:
            raise Untyped
        bucket[field] = _bool(str(value)) if field == "idle_time" else value
    return bucket


def _seed_scheduler(el: etree._Element) -> dict[str, Any]:
    sched = _seed_bucket(el)
    cpus: dict[str, Any] = {}
    for cpu in _only(el, tuple(str(k) for k in el.keys()), ("cpu",)):  # noqa: SIM118
        _only(cpu, tuple(str(k) for k in cpu.keys()))  # noqa: SIM118 - an lxml element
        number = cpu.get("id")
        if number is None or number in cpus:
            raise Untyped
        cpus[number] = _seed_bucket(cpu, ("id",))
    if cpus:
        sched["cpus"] = cpus
    return sched


def _seed_disk(el: etree._Element) -> dict[str, Any]:
    children = _only(el, ("type", "device"), ("source", "target", "readonly"))
    kind = {"path": "mount", "block": "block"}.get(el.get("type") or "")
    if kind is None or el.get("device") != "path":
        raise Untyped
    _no_repeats(children)
    fs: dict[str, Any] = {"type": kind}
    for child in children:
        if child.tag == "source":
            attr = "path" if kind == "mount" else "dev"
            _only(child, (attr,))
            fs["source"] = child.get(attr)
        elif child.tag == "target":
            _only(child, ("path",))
            fs["target"] = child.get("path")
        else:
            _only(child)
            fs["readonly"] = True
    return fs


def _seed_interface(el: etree._Element) -> dict[str, Any]:
    if el.get("type") != "vserver":
        raise Untyped
    nic: dict[str, Any] = {"type": "routed", "ip": [], "ranges": []}
    for ip in _only(el, ("type",), ("ip",)):
        _only(ip, ("family", "address", "address2", "prefix", "interface", "type"))
        address, prefix = ip.get("address", ""), ip.get("prefix")
        family = _SEED_FAMILY.get((ip.get("family") or "").lower())
        if ip.get("family") is not None and family != ("ipv6" if ":" in address else "ipv4"):
            raise Untyped
        device = ip.get("interface")
        if device is not None:
            if nic.get("host_dev", device) != device:
                raise Untyped
            nic["host_dev"] = device
        suffix = f"/{prefix}" if prefix is not None else ""
        if ip.get("type") == "range":
            if ip.get("address2") is None:
                raise Untyped
            nic["ranges"].append(f"{address}-{ip.get('address2')}{suffix}")
        elif ip.get("type") is None and ip.get("address2") is None:
            nic["ip"].append(f"{address}{suffix}")
        else:
            raise Untyped
    return nic


class _Seed:
    """The proposal's elements of one domain, gathered, then merged into the model's input."""

    def __init__(self, context: str | None) -> None:
        self.context = context
        self.scheduler: dict[str, Any] | None = None
        self.uts: dict[str, Any] | None = None
        self.distribution: dict[str, Any] | None = None
        self.disks: list[dict[str, Any]] = []
        self.nics: list[dict[str, Any]] = []

    def take(self, el: etree._Element) -> None:
        """Read one element; Untyped (the caller keeps it as XML) if it is not the
        proposal's shape."""
        tag = el.tag
        if tag == "scheduler" and self.scheduler is None:
            self.scheduler = _seed_scheduler(el)
        elif tag == "uts" and self.uts is None:
            _only(el, ("hostname", "nodename", "machine"))
            if el.get("hostname") is not None and el.get("nodename") is not None:
                raise Untyped
            uts = {"hostname": el.get("hostname", el.get("nodename")),
                   "arch": el.get("machine")}
            self.uts = {k: v for k, v in uts.items() if v is not None}
        elif tag == "distribution" and self.distribution is None:
            _only(el, ("method", "release", "name"))
            self.distribution = {k: el.get(k) for k in ("name", "method", "release")
                                 if el.get(k) is not None}
        elif tag == "disk":
            self.disks.append(_seed_disk(el))
        elif tag == "interface":
            self.nics.append(_seed_interface(el))
        else:
            raise Untyped

    def merge(self, dom: dict[str, Any], ext: dict[str, Any], root: etree._Element) -> None:
        if self.context is not None:
            if "id" in ext and str(ext["id"]) != self.context:
                raise bad(root, f"<domain id='{self.context}'> and <rc:id>{ext['id']}</rc:id> "
                          "give two contexts; give one")
            dom["id"] = self.context
        if self.scheduler is not None:
            dom["scheduler"] = self.scheduler
        for key, value in (self.uts or {}).items():
            if dom.get(key, value) != value:
                raise bad(root, f"<uts> and <os> give two values of {key}; give one")
            dom[key] = value
        disks = self.disks
        root_disk = next((fs for fs in disks if fs.get("target") == "/"), None)
        filesystems = [fs for fs in disks if fs is not root_disk]
        if self.distribution is not None:
            # the distribution builds the root; a root disk says where (vserver build
            # --rootdir): together one template root, as the harmonized model has it
            template = {"type": "template", "target": "/", **self.distribution}
            template.setdefault("name", self.distribution.get("release"))
            if root_disk is not None and root_disk.get("type") == "mount":
                template["source"] = root_disk.get("source")
            elif root_disk is not None:
                filesystems.insert(0, root_disk)
            filesystems.insert(0, template)
        elif root_disk is not None:
            filesystems.insert(0, root_disk)
        if filesystems:
            dom["filesystems"] = [*filesystems, *dom.get("filesystems", ())]
        if self.nics:
            dom["interfaces"] = [*self.nics, *dom.get("interfaces", ())]


_FIELD_OF = {"name": ("name",), "uuid": ("uuid",), "title": ("title",),
             "description": ("description",), "memory": ("memory",),
             "currentMemory": ("current_memory",), "memtune": ("memtune",),
             "blkiotune": ("blkiotune",), "features": ("capabilities", "xml"),
             "vcpu": ("cpu",), "cputune": ("cpu",), "os": ("init", "os", "arch"),
             "idmap": ("idmap",), "devices": ("devices_xml",), "metadata": ("metadata",),
             # the VServer proposal's own elements (a vserver domain only reads them)
             "scheduler": ("scheduler",), "uts": ("hostname", "arch"),
             "distribution": ("filesystems",), "disk": ("filesystems",),
             "interface": ("interfaces",)}
# device kinds whose order means something: once one is kept as XML, later ones are too, so
# writing typed ones first cannot reorder them (mount order, NIC names eth0, eth1, ...)
_ORDERED_DEVICES = ("filesystem", "interface")


def _devices(el: etree._Element, dom: dict[str, Any], extra: list[str],
             lines: Lines | None) -> None:
    if el.attrib or (el.text and el.text.strip()):
        raise Untyped
    filesystems: list[Any] = []
    interfaces: list[Any] = []
    consoles: list[etree._Element] = []
    untyped: set[str] = set()
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        try:
            if tag in untyped:
                raise Untyped
            if tag == "filesystem":
                filesystems.append(_filesystem(child))
                if lines is not None:
                    lines[("filesystems", len(filesystems) - 1)] = line_of(child)
            elif tag == "interface":
                interfaces.append(_interface(child))
                if lines is not None:
                    lines[("interfaces", len(interfaces) - 1)] = line_of(child)
            elif tag == "hostdev":
                interfaces.append(_hostdev_net(child))
                if lines is not None:
                    lines[("interfaces", len(interfaces) - 1)] = line_of(child)
            elif tag == "console":
                if lines is not None:
                    lines.setdefault(("console",), line_of(child))
                consoles.append(child)
            else:
                raise Untyped
        except Untyped:
            if tag in _ORDERED_DEVICES:
                untyped.add(tag)
            extra.append(canonical_xml(child))
    if consoles:
        try:
            dom["console"] = _console(consoles, dom.get("type") or "")
        except Untyped:
            extra.extend(canonical_xml(c) for c in consoles)
    # quota space lives on the root filesystem in libvirt XML
    for index, fs in enumerate(filesystems):
        if "space_hard_limit" in fs and lines is not None:
            lines[("quota",)] = lines[("filesystems", index)]
        hard, soft = fs.pop("space_hard_limit", None), fs.pop("space_soft_limit", None)
        if hard is not None and soft is not None:
            dom.setdefault("quota", {})["space"] = [soft, hard]
    if filesystems:
        dom["filesystems"] = filesystems
    if interfaces:
        dom["interfaces"] = interfaces


# --------------------------------------------------------------------------- extension

# Domain fields libvirt XML has no place for: they live in `<metadata><rc:spec>`.
DOMAIN_EXT = ("id", "state", "autostart", "start_order", "hostname", "profile", "limits",
              "scheduler", "dns", "depends_on", "protect", "removal", "allow_replace", "hosts",
              "restart", "window", "health", "target", "allow_move")
IF_EXT = ("host_mac", "ranges")
FS_EXT = ("method", "release", "options")
RAM_EXT = ("mode",)  # tmpfs permissions: libvirt's ram filesystem has no attribute for them
# a NIC type libvirt has no device for: `none`, the host's network namespace (libvirt's LXC
# guest without NICs and without <privnet/>), is written as the extension's whole interface
NIC_TYPE_EXT = ("type",)
NET_EXT = ("state", "autostart", "protect", "hosts")
# what may appear in the extension beside those: the parts of typed pieces libvirt lacks
_DOMAIN_EXT_PARTS = {"cpu": ("limit",), "quota": ("space", "inodes", "time", "ugid_limit",
                                                    "users"),
                     "interfaces": (*IF_EXT, *NIC_TYPE_EXT),
                     "filesystems": (*FS_EXT, "source", *RAM_EXT)}


def _metadata(el: etree._Element, lines: Lines | None, allowed: tuple[str, ...],
              parts: dict[str, tuple[str, ...]]) -> tuple[dict[str, Any], str | None]:
    """Our extension dict, and the rest of `<metadata>` (other tools' entries) as XML."""
    ours: dict[str, Any] | None = None
    spec: etree._Element | None = None
    keep = False
    for child in el:
        if child.tag == Q_EXT and ours is None:
            value = decode(child, lines)
            if value == "":
                value = {}
            if not isinstance(value, dict):
                raise bad(child, "<rc:spec> must hold named fields (e.g. <rc:state>running"
                          "</rc:state>), not a list or text")
            problem = _check_extension(value, allowed, parts)
            if problem is not None:
                path, message = problem
                where: Lines = {}
                decode(child, where)  # the lines, now that they are needed
                line = next((where[path[:cut]] for cut in range(len(path), 0, -1)
                             if path[:cut] in where), line_of(child))
                raise SpecError(message, Location("", line, 1))
            ours, spec = value, child
        elif isinstance(child.tag, str):
            keep = True
    if not keep:
        return ours or {}, None
    if spec is not None:
        el.remove(spec)  # only now, and only when the rest is kept: a removal costs a walk
    return ours or {}, canonical_xml(el)


_ITEM = f"{{{NS}}}item"
_ENTRY = f"{{{NS}}}entry"
_PREFIX = f"{{{NS}}}"


def _local(tag: str) -> str:
    return tag[tag.index("}") + 1:] if tag[:1] == "{" else tag


def _is_list(children: list[etree._Element]) -> bool:
    for child in children:
        tag = child.tag
        if tag != _ITEM and _local(tag) != "item":
            return False
    return True


def decode(el: etree._Element, lines: Lines | None = None, path: tuple[Any, ...] = ()) -> Any:
    """Our generic XML form of JSON data: `<item>` children make a list, others a dict
    (`<entry key='...'>` for keys that are not XML names); `lines` gets each path's line.
    Called once per element of the extension, so it keeps to one pass over the children."""
    children = [c for c in el if isinstance(c.tag, str)] if len(el) else None
    if not children:
        if el.keys():
            if el.get("list") == "yes":
                return []
            if el.get("map") == "yes":
                return {}
        return el.text or ""
    if _is_list(children):
        if lines is None:
            return [decode(c) for c in children]
        out_list = []
        for index, child in enumerate(children):
            lines[(*path, index)] = line_of(child)
            out_list.append(decode(child, lines, (*path, index)))
        return out_list
    out: dict[str, Any] = {}
    for child in children:
        tag = child.tag
        if tag == _ENTRY:
            key = child.get("key", "")
        else:  # our namespace's prefix ends at the first '}': slicing it off is `_local`
            key = tag[len(_PREFIX):] if tag.startswith(_PREFIX) else _local(tag)
        if key in out:
            raise bad(child, f"<rc:{_local(tag)}> appears twice in <rc:spec>; give each field "
                      "once")
        if lines is None:
            out[key] = decode(child)
        else:
            lines[(*path, key)] = line_of(child)
            out[key] = decode(child, lines, (*path, key))
    return out


def _check_extension(ext: dict[str, Any], allowed: tuple[str, ...],
                     parts: dict[str, tuple[str, ...]]) -> tuple[tuple[Any, ...], str] | None:
    """Only fields libvirt has no element for may come from the extension: a second copy of,
    say, the memory size would be a second truth. Returns (path, message) of a problem."""
    for key, value in ext.items():
        if key in allowed:
            continue
        if key not in parts:
            return (key,), (f"<rc:spec>: unknown field {key!r}; valid: "
                            f"{', '.join([*allowed, *parts])}")
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            for sub in item if isinstance(item, dict) else ():
                if sub not in parts[key]:
                    return (key, index, sub), (
                        f"<rc:spec>: {key}.{sub} does not belong in the extension; libvirt XML "
                        f"has its own element for it (valid in the extension: "
                        f"{', '.join(parts[key])})")
    return None


def _merge_extension(dom: dict[str, Any], ext: dict[str, Any]) -> None:
    """Fold the extension into the dict; per-device parts align by position."""
    for key, value in ext.items():
        if key in ("interfaces", "filesystems") and isinstance(value, list):
            items = dom.setdefault(key, [])
            for index, part in enumerate(value):
                if isinstance(part, dict) and index < len(items):
                    items[index].update(part)
                elif isinstance(part, dict) and part:
                    items.append(part)
        elif key in ("quota", "cpu") and isinstance(value, dict):
            dom.setdefault(key, {}).update(value)
        else:
            dom[key] = value


# --------------------------------------------------------------------------- network

def read_network(root: etree._Element, lines: Lines | None) -> dict[str, Any]:
    net: dict[str, Any] = {"kind": "Network"}
    if lines is not None:
        lines[()] = line_of(root)
    extra: list[str] = []
    ext: dict[str, Any] = {}
    for key, value in root.attrib.items():
        if key == "ipv6":
            net["ipv6"] = value
        elif key != "connections":  # live only: how many guests are attached right now
            extra.append(f"@{key!s}={value!s}")
    ips: list[Any] = []
    seen: set[str] = set()
    ip_untyped = False
    for child in root:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        if lines is not None:
            lines.setdefault((_NET_FIELD.get(tag, "xml"),), line_of(child))
        try:
            if tag in seen and tag not in ("ip", "route", "portgroup"):
                raise Untyped
            seen.add(tag)
            if tag in _TEXT_FIELDS and not child.attrib and not len(child):
                net[tag] = (child.text or "").strip()
            elif tag == "metadata":
                ext, others = _metadata(child, lines, NET_EXT, {})
                if others is not None:
                    extra.append(others)
            elif tag == "bridge":
                _only(child, ("name", "stp", "delay", "zone", "macTableManager"))
                bridge: dict[str, Any] = {}
                for key in ("name", "stp", "delay"):
                    if child.get(key) is not None:
                        bridge[key] = child.get(key)
                other = {k: v for k, v in child.attrib.items() if k not in ("name", "stp", "delay")}
                if other:
                    bridge["xml_attrs"] = dict(other)
                net["bridge"] = bridge
            elif tag == "forward":
                if child.text and child.text.strip():
                    raise Untyped
                forward: dict[str, Any] = {"mode": child.get("mode", "nat")}
                if child.get("dev") is not None:
                    forward["dev"] = child.get("dev")
                other = {k: v for k, v in child.attrib.items() if k not in ("mode", "dev")}
                if other:
                    forward["xml_attrs"] = dict(other)
                kids = [c for c in child if isinstance(c.tag, str)]
                # libvirt repeats forward@dev as a child <interface dev>; that copy is implied
                implied = {"dev": child.get("dev")}
                kids = [c for c in kids if not (c.tag == "interface" and dict(c.attrib.items()) ==
                                                implied and not len(c) and len(kids) == 1)]
                if kids:
                    forward["xml"] = [canonical_xml(c) for c in kids]
                net["forward"] = forward
            elif tag == "mac":
                _only(child, ("address",))
                net["mac"] = child.get("address")
            elif tag == "domain":
                _only(child, ("name",))
                net["domain"] = child.get("name")
            elif tag == "mtu":
                _only(child, ("size",))
                net["mtu"] = child.get("size")
            elif tag == "ip":
                if ip_untyped:
                    raise Untyped  # keep the order of addresses: once one is XML, all after are
                ips.append(_net_ip(child))
                if lines is not None:
                    lines[("ips", len(ips) - 1)] = line_of(child)
            else:
                raise Untyped
        except Untyped:
            ip_untyped = ip_untyped or tag == "ip"
            extra.append(canonical_xml(child))
    if ips:
        net["ips"] = ips
    if extra:
        net["xml"] = in_libvirt_order(extra, NET_ORDER)
    net.update(ext)
    return net


_NET_FIELD = {"name": "name", "uuid": "uuid", "title": "title", "description": "description",
              "bridge": "bridge", "forward": "forward", "mac": "mac", "domain": "domain",
              "mtu": "mtu", "ip": "ips", "metadata": "metadata"}


def _net_ip(el: etree._Element) -> dict[str, Any]:
    _only(el, ("address", "prefix", "netmask", "family"), ("dhcp", "tftp"))
    address = el.get("address", "")
    family = el.get("family")
    if family and family != ("ipv6" if ":" in address else "ipv4"):
        raise Untyped
    if len(el.findall("dhcp")) > 1 or any(d.attrib or (d.text and d.text.strip())
                                          for d in el.findall("dhcp")):
        raise Untyped
    prefix = f"/{el.get('prefix')}" if el.get("prefix") else ""
    out: dict[str, Any] = {"address": address + prefix}
    if el.get("netmask"):
        out["netmask"] = el.get("netmask")
    extra = []
    for child in el:
        if child.tag == "dhcp":
            ranges, hosts, dhcp_extra = [], [], []
            for item in child:
                if item.tag == "range" and set(item.attrib) <= {"start", "end"}:
                    ranges.append({"start": item.get("start"), "end": item.get("end"),
                                   "xml": [canonical_xml(c) for c in item]})
                elif item.tag == "host" and set(item.attrib) <= {"mac", "name", "ip", "id"} \
                        and not len(item):
                    hosts.append({k: item.get(k) for k in item.attrib})
                else:
                    dhcp_extra.append(canonical_xml(item))
            out.update(dhcp_ranges=ranges, dhcp_hosts=hosts, dhcp_xml=dhcp_extra)
        else:
            extra.append(canonical_xml(child))
    if extra:
        out["xml"] = extra
    return out
