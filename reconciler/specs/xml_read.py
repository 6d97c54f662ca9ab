"""libvirt domain/network XML -> the model's input dict.

An element is typed only when every attribute and child of it is understood; anything else is
kept whole as canonical XML (`xml`, `devices_xml`, ...), so `virsh dumpxml` output of any
guest, a KVM disk included, loads and writes back without loss. What libvirt never adopted
(run state, CTID, beancounters, ...) comes from one element of our namespace in `<metadata>`.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from reconciler.specs.xmlsafe import canonical_xml

NS = "urn:reconciler:spec:1"
Q_EXT = f"{{{NS}}}spec"

KIB = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
       "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4,
       "tib": 1024**4, "tb": 1000**4}


class Untyped(Exception):
    """This element has something the model does not type: keep it as XML."""


Lines = dict[tuple[Any, ...], int]


def _only(el: etree._Element, attrs: tuple[str, ...] = (), children: tuple[str, ...] = (),
          text: bool = False) -> None:
    if any(a not in attrs for a in el.attrib):
        raise Untyped
    for child in el:
        if child.tag not in children:
            raise Untyped
    if not text and el.text and el.text.strip():
        raise Untyped


def _scaled(el: etree._Element, default_unit: str = "kib", attr: str = "unit") -> str:
    """A libvirt scaled integer as an exact byte count the model parses ('123B')."""
    unit = el.get(attr, default_unit).lower()
    if unit not in KIB or not (el.text or "").strip().isdigit():
        raise Untyped
    return f"{int((el.text or '0').strip()) * KIB[unit]}B"


def _bool(value: str | None) -> bool | None:
    return None if value is None else value in ("yes", "on", "1", "true")


def _ip(el: etree._Element) -> dict[str, Any] | str:
    _only(el, ("address", "family", "prefix", "peer"))
    address = el.get("address", "")
    family = el.get("family")
    if family and family != ("ipv6" if ":" in address else "ipv4"):
        raise Untyped
    if el.get("peer"):
        return {"address": address, "prefix": int(el.get("prefix", "0")) if el.get("prefix")
                else None, "peer": el.get("peer")}
    return address + (f"/{el.get('prefix')}" if el.get("prefix") else "")


def _routes(els: list[etree._Element], allow_gateway: bool) -> tuple[str | None, list[Any]]:
    gateway: str | None = None
    routes: list[Any] = []
    for el in els:
        _only(el, ("family", "address", "prefix", "gateway", "metric"))
        if el.get("gateway") is None or el.get("address") is None:
            raise Untyped
        default = el.get("address") in ("0.0.0.0", "::") and el.get("prefix") in (None, "0")
        if allow_gateway and default and gateway is None and el.get("metric") is None \
                and el.get("family") in (None, "ipv6" if ":" in el.get("address", "") else "ipv4"):
            gateway = el.get("gateway")
            continue
        route: dict[str, Any] = {"address": el.get("address"), "gateway": el.get("gateway")}
        for key in ("prefix", "metric"):
            if el.get(key) is not None:
                route[key] = int(el.get(key, "0"))
        if el.get("family"):
            route["family"] = el.get("family")
        routes.append(route)
    return gateway, routes


# --------------------------------------------------------------------------- domain pieces

def _filesystem(el: etree._Element) -> dict[str, Any]:
    _only(el, ("type", "accessmode"), ("source", "target", "readonly", "driver",
                                      "space_hard_limit", "space_soft_limit"))
    fstype = el.get("type", "mount")
    fs: dict[str, Any] = {"type": fstype}
    if el.get("accessmode"):
        fs["accessmode"] = el.get("accessmode")
    source_attr = {"mount": "dir", "bind": "dir", "block": "dev", "file": "file",
                   "template": "name", "ram": "usage"}.get(fstype)
    if source_attr is None:
        raise Untyped
    for child in el:
        if child.tag == "source":
            allowed = (source_attr, "units") if fstype == "ram" else (source_attr,)
            _only(child, allowed)
            if fstype == "ram":
                unit = child.get("units", "KiB").lower()
                if unit not in KIB:
                    raise Untyped
                fs["size"] = f"{int(child.get('usage', '0')) * KIB[unit]}B"
            elif fstype == "template":
                fs["name"] = child.get("name")
            else:
                fs["source"] = child.get(source_attr)
        elif child.tag == "target":
            _only(child, ("dir",))
            fs["target"] = child.get("dir")
        elif child.tag == "readonly":
            _only(child)
            fs["readonly"] = True
        elif child.tag == "driver":
            _only(child, ("type", "format"))
            fs["driver"], fs["format"] = child.get("type"), child.get("format")
        elif child.tag in ("space_hard_limit", "space_soft_limit"):
            fs[child.tag] = _scaled(child, "bytes")
    return fs


def _interface(el: etree._Element) -> dict[str, Any]:
    _only(el, ("type",), ("mac", "source", "target", "guest", "ip", "route", "link", "mtu",
                          "model"))
    xtype = el.get("type")
    kind = {"bridge": "bridge", "network": "network", "ethernet": "routed",
            "direct": "direct"}.get(xtype or "")
    if kind is None:
        raise Untyped
    nic: dict[str, Any] = {"type": kind}
    ips: list[Any] = []
    route_els: list[etree._Element] = []
    for child in el:
        tag = child.tag
        if tag == "mac":
            _only(child, ("address",))
            nic["mac"] = child.get("address")
        elif tag == "source":
            if kind == "routed":
                _only(child, (), ("ip", "route"))
                nic["host_ip"] = [_ip(c) for c in child if c.tag == "ip"]
                gw, routes = _routes([c for c in child if c.tag == "route"], False)
                nic["host_routes"] = routes
            else:
                attr = {"bridge": "bridge", "network": "network", "direct": "dev"}[kind]
                _only(child, (attr, "mode") if kind == "direct" else (attr,))
                nic["source"] = child.get(attr)
                if child.get("mode"):
                    nic["mode"] = child.get("mode")
        elif tag == "target":
            _only(child, ("dev",))
            nic["host_dev"] = child.get("dev")
        elif tag == "guest":
            _only(child, ("dev",))
            nic["guest_dev"] = child.get("dev")
        elif tag == "ip":
            ips.append(_ip(child))
        elif tag == "route":
            route_els.append(child)
        elif tag == "link":
            _only(child, ("state",))
            nic["link"] = child.get("state")
        elif tag == "mtu":
            _only(child, ("size",))
            nic["mtu"] = int(child.get("size", "0"))
        elif tag == "model":
            _only(child, ("type",))
            nic["model"] = child.get("type")
    nic["ip"] = ips
    nic["gateway"], nic["routes"] = _routes(route_els, True)
    return nic


def _hostdev_net(el: etree._Element) -> dict[str, Any]:
    _only(el, ("mode", "type"), ("source", "ip", "route"))
    if el.get("mode") != "capabilities" or el.get("type") != "net":
        raise Untyped
    nic: dict[str, Any] = {"type": "hostdev"}
    source = el.find("source")
    if source is None:
        raise Untyped
    _only(source, (), ("interface",))
    iface = source.find("interface")
    if iface is None or len(iface) or iface.attrib:
        raise Untyped
    nic["source"] = (iface.text or "").strip()
    nic["ip"] = [_ip(c) for c in el if c.tag == "ip"]
    nic["gateway"], nic["routes"] = _routes([c for c in el if c.tag == "route"], True)
    return nic


def _console(els: list[etree._Element], dtype: str) -> dict[str, Any]:
    """Only the plain form (`pty`, target type of the driver, ports 0..N-1) is typed."""
    for port, el in enumerate(els):
        _only(el, ("type",), ("target",))
        if el.get("type") != "pty":
            raise Untyped
        target = el.find("target")
        if target is not None:
            _only(target, ("type", "port"))
            if target.get("type") not in (None, dtype) or \
                    target.get("port") not in (None, str(port)):
                raise Untyped
    return {"type": "pty", "count": len(els)}


def _os(el: etree._Element, dom: dict[str, Any]) -> None:
    init: dict[str, Any] = {}
    rest: list[str] = []
    os_part: dict[str, Any] = {}
    for child in el:
        tag = child.tag
        if tag == "type":
            _only(child, ("arch", "machine"), text=True)
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
    _only(el, (), ("uid", "gid"))
    out = []
    for child in el:
        _only(child, ("start", "target", "count"))
        out.append({"kind": child.tag, **{k: int(child.get(k, "0"))
                                          for k in ("start", "target", "count")}})
    return out


def _memtune(el: etree._Element) -> dict[str, Any]:
    _only(el, (), ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee"))
    return {child.tag: _scaled(child) for child in el}


def _cputune(el: etree._Element) -> dict[str, Any]:
    _only(el, (), ("shares", "period", "quota"))
    out = {}
    for child in el:
        _only(child, text=True)
        out[child.tag] = int((child.text or "").strip())
    return out


def read_domain(root: etree._Element, lines: Lines) -> dict[str, Any]:
    """The model's input dict for a `<domain>` element; `lines` gets path -> source line."""
    dom: dict[str, Any] = {"kind": "Domain", "type": root.get("type")}
    lines[()] = root.sourceline or 1
    extra: list[str] = []
    devices_extra: list[str] = []
    cpu: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        lines[(_FIELD_OF.get(tag, "xml"),)] = child.sourceline or 1
        try:
            if tag in ("name", "uuid", "title", "description") and not child.attrib and not len(child):
                dom[tag] = (child.text or "").strip()
            elif tag == "metadata":
                ext, others = _metadata(child)
                if others is not None:
                    extra.append(others)
            elif tag in ("memory", "currentMemory"):
                _only(child, ("unit", "dumpCore") if tag == "memory" else ("unit",), text=True)
                if child.get("dumpCore"):
                    raise Untyped
                dom["memory" if tag == "memory" else "current_memory"] = _scaled(child)
            elif tag == "memtune":
                dom["memtune"] = _memtune(child)
            elif tag == "vcpu":
                _only(child, ("placement", "cpuset"), text=True)
                if child.get("placement") not in (None, "static"):
                    raise Untyped
                cpu["count"] = int((child.text or "").strip())
                if child.get("cpuset"):
                    cpu["cpuset"] = child.get("cpuset")
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
    if cpu:
        dom["cpu"] = cpu
    if extra:
        dom["xml"] = extra
    if devices_extra:
        dom["devices_xml"] = devices_extra
    _merge_extension(dom, ext)
    return dom


_FIELD_OF = {"name": "name", "uuid": "uuid", "memory": "memory", "currentMemory": "current_memory",
             "memtune": "memtune", "vcpu": "cpu", "cputune": "cpu", "os": "init",
             "idmap": "idmap", "devices": "devices_xml", "metadata": "metadata"}


def _devices(el: etree._Element, dom: dict[str, Any], extra: list[str], lines: Lines) -> None:
    filesystems: list[Any] = []
    interfaces: list[Any] = []
    consoles: list[etree._Element] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        try:
            if child.tag == "filesystem":
                lines[("filesystems", len(filesystems))] = child.sourceline or 1
                filesystems.append(_filesystem(child))
            elif child.tag == "interface":
                lines[("interfaces", len(interfaces))] = child.sourceline or 1
                interfaces.append(_interface(child))
            elif child.tag == "hostdev":
                nic = _hostdev_net(child)
                lines[("interfaces", len(interfaces))] = child.sourceline or 1
                interfaces.append(nic)
            elif child.tag == "console":
                lines[("console",)] = child.sourceline or 1
                consoles.append(child)
            else:
                raise Untyped
        except Untyped:
            extra.append(canonical_xml(child))
    if consoles:
        try:
            dom["console"] = _console(consoles, dom.get("type") or "")
        except Untyped:
            extra.extend(canonical_xml(c) for c in consoles)
    # quota space lives on the root filesystem in libvirt XML
    for fs in filesystems:
        hard, soft = fs.pop("space_hard_limit", None), fs.pop("space_soft_limit", None)
        if fs.get("target") == "/" and (hard or soft):
            dom.setdefault("quota", {})["space"] = [soft or hard, hard or soft]
    if filesystems:
        dom["filesystems"] = filesystems
    if interfaces:
        dom["interfaces"] = interfaces


# --------------------------------------------------------------------------- extension

def _metadata(el: etree._Element) -> tuple[dict[str, Any], str | None]:
    """Our extension dict, and the rest of `<metadata>` (other tools' entries) as XML."""
    ours: dict[str, Any] = {}
    keep = False
    for child in list(el):
        if child.tag == Q_EXT and not ours:
            ours = decode(child)
            el.remove(child)
        elif isinstance(child.tag, str):
            keep = True
    return ours, canonical_xml(el) if keep else None


def decode(el: etree._Element) -> Any:
    """Our generic XML form of JSON data: `<item>` children make a list, others a dict."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        if el.get("list") == "yes":
            return []
        return el.text or ""
    if all(etree.QName(c).localname == "item" for c in children):
        return [decode(c) for c in children]
    return {etree.QName(c).localname: decode(c) for c in children}


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
        elif key == "quota" and isinstance(value, dict):
            dom.setdefault("quota", {}).update(value)
        elif key == "cpu" and isinstance(value, dict):
            dom.setdefault("cpu", {}).update(value)
        else:
            dom[key] = value


# --------------------------------------------------------------------------- network

def read_network(root: etree._Element, lines: Lines) -> dict[str, Any]:
    net: dict[str, Any] = {"kind": "Network"}
    lines[()] = root.sourceline or 1
    extra: list[str] = []
    ext: dict[str, Any] = {}
    for key in root.attrib:
        if key == "ipv6":
            net["ipv6"] = _bool(root.get("ipv6"))
        elif key != "connections":
            extra.append(f"@{key}={root.get(key)}")
    ips: list[Any] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        lines[(tag if tag in ("name", "uuid", "bridge", "forward", "mac", "domain") else "xml",)] = \
            child.sourceline or 1
        try:
            if tag in ("name", "uuid", "title", "description") and not child.attrib and not len(child):
                net[tag] = (child.text or "").strip()
            elif tag == "metadata":
                ext, others = _metadata(child)
                if others is not None:
                    extra.append(others)
            elif tag == "bridge":
                _only(child, ("name", "stp", "delay", "zone", "macTableManager"))
                bridge: dict[str, Any] = {}
                if child.get("name"):
                    bridge["name"] = child.get("name")
                if child.get("stp"):
                    bridge["stp"] = _bool(child.get("stp"))
                if child.get("delay"):
                    bridge["delay"] = int(child.get("delay", "0"))
                other = {k: v for k, v in child.attrib.items() if k not in ("name", "stp", "delay")}
                if other:
                    bridge["xml_attrs"] = dict(other)
                net["bridge"] = bridge
            elif tag == "forward":
                forward: dict[str, Any] = {"mode": child.get("mode", "nat")}
                if child.get("dev"):
                    forward["dev"] = child.get("dev")
                other = {k: v for k, v in child.attrib.items() if k not in ("mode", "dev")}
                if other:
                    forward["xml_attrs"] = dict(other)
                kids = [c for c in child if isinstance(c.tag, str)]
                # libvirt repeats forward@dev as a child <interface dev>; that copy is implied
                kids = [c for c in kids if not (c.tag == "interface" and dict(c.attrib) ==
                                                {"dev": child.get("dev")} and len(kids) == 1)]
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
                net["mtu"] = int(child.get("size", "0"))
            elif tag == "ip":
                lines[("ips", len(ips))] = child.sourceline or 1
                ips.append(_net_ip(child))
            else:
                raise Untyped
        except Untyped:
            extra.append(canonical_xml(child))
    if ips:
        net["ips"] = ips
    if extra:
        net["xml"] = extra
    net.update(ext)
    return net


def _net_ip(el: etree._Element) -> dict[str, Any]:
    _only(el, ("address", "prefix", "netmask", "family"), ("dhcp", "tftp"))
    address = el.get("address", "")
    family = el.get("family")
    if family and family != ("ipv6" if ":" in address else "ipv4"):
        raise Untyped
    out: dict[str, Any] = {"address": address + (f"/{el.get('prefix')}" if el.get("prefix") else "")}
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
