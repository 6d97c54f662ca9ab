"""The model -> libvirt domain/network XML, in libvirt's element order.

Fields libvirt has no element for go into one `<rc:spec>` element inside `<metadata>`
(libvirt keeps one child per namespace), so `virsh define` of our output keeps them.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from reconciler.model import Domain, Network, canonical
from reconciler.model.domain import DEFAULT_OS_TYPE
from reconciler.model.units import parse_size
from reconciler.specs.xml_read import (
    ANY_ADDRESS,
    DEV_ORDER,
    DOMAIN_EXT,
    FS_EXT,
    IF_EXT,
    NET_EXT,
    NIC_TYPE_EXT,
    NS,
    RAM_EXT,
    TOP_ORDER,
)
from reconciler.specs.xmlsafe import element_from_text

_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED = ("item", "entry")  # the names `decode` gives meaning to

def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: Any) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def encode(parent: etree._Element, key: str, value: Any, list_item: bool = False) -> None:
    """JSON data as XML in our namespace; the inverse of `xml_read.decode`."""
    if (_NCNAME.match(key) and key not in _RESERVED) or (key == "item" and list_item):
        el = etree.SubElement(parent, f"{{{NS}}}{key}")
    else:
        el = etree.SubElement(parent, f"{{{NS}}}entry", key=key)
    if isinstance(value, dict):
        if not value:
            el.set("map", "yes")
        for k, v in value.items():
            if v is not None:
                encode(el, str(k), v)
    elif isinstance(value, list | tuple):
        if not value:
            el.set("list", "yes")
        for item in value:
            encode(el, "item", item, list_item=True)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)


def _order(parent: etree._Element, order: list[str]) -> None:
    rank = {tag: i for i, tag in enumerate(order)}
    children = list(parent)
    children.sort(key=lambda c: rank.get(etree.QName(c).localname, len(order))
                  if etree.QName(c).namespace is None else len(order) + 1)
    parent[:] = children


def _scaled(size: str) -> tuple[str, str]:
    """(number, unit) for a size: KiB as libvirt prints it, or exact bytes when not whole KiB."""
    nbytes = parse_size(size)
    return (str(nbytes // 1024), "KiB") if nbytes % 1024 == 0 else (str(nbytes), "bytes")


def _size_kib(parent: etree._Element, tag: str, size: str | None) -> None:
    if size is not None:
        number, unit = _scaled(size)
        _sub(parent, tag, number, unit=unit)


def _ip(parent: etree._Element, tag: str, ip: Any) -> None:
    if isinstance(ip, dict):
        address, prefix, peer = ip["address"], ip.get("prefix"), ip.get("peer")
    else:
        address, _, prefix = ip.partition("/")
        peer = None
    family = "ipv6" if ":" in address else "ipv4"
    _sub(parent, tag, address=address, family=family, prefix=prefix or None, peer=peer)


def _route(parent: etree._Element, route: dict[str, Any]) -> None:
    family = route.get("family") or ("ipv6" if ":" in route["address"] else "ipv4")
    _sub(parent, "route", family=family, address=route["address"], prefix=route.get("prefix"),
         gateway=route["gateway"], metric=route.get("metric"))


def _gateway(parent: etree._Element, gateway: str | None) -> None:
    if gateway:
        default = ANY_ADDRESS[1] if ":" in gateway else ANY_ADDRESS[0]
        _sub(parent, "route", family="ipv6" if ":" in gateway else "ipv4", address=default,
             gateway=gateway)


def _filesystem(devices: etree._Element, fs: dict[str, Any], quota: dict[str, Any]) -> None:
    ftype = fs.get("type", "mount")
    el = _sub(devices, "filesystem", type=ftype, accessmode=fs.get("accessmode"))
    if fs.get("driver"):
        _sub(el, "driver", type=fs["driver"], format=fs.get("format"))
    if ftype == "template":
        _sub(el, "source", name=fs["name"])
    elif ftype == "ram":
        usage, units = _scaled(fs["size"])
        _sub(el, "source", usage=usage, units=units)
    elif ftype == "volume":
        pool, _, volume = fs["source"].partition("/")
        _sub(el, "source", pool=pool, volume=volume)
    else:
        attr = {"mount": "dir", "bind": "dir", "block": "dev", "file": "file"}[ftype]
        _sub(el, "source", **{attr: fs.get("source")})
    _sub(el, "target", dir=fs["target"])
    if fs.get("readonly"):
        _sub(el, "readonly")
    if fs["target"] == "/" and quota.get("space"):
        soft, hard = (parse_size(v) for v in quota["space"])
        _sub(el, "space_hard_limit", str(hard), unit="bytes")
        _sub(el, "space_soft_limit", str(soft), unit="bytes")
    for extra in fs.get("xml", ()):
        el.append(element_from_text(extra))


def _interface(devices: etree._Element, nic: dict[str, Any]) -> None:
    kind = nic["type"]
    if kind in ("empty", "none"):
        return  # a network namespace, not a device (<privnet/>, the extension)
    if kind == "hostdev":
        el = _sub(devices, "hostdev", mode="capabilities", type="net")
        _sub(_sub(el, "source"), "interface", nic["source"])
        for ip in nic.get("ip", ()):
            _ip(el, "ip", ip)
        _gateway(el, nic.get("gateway"))
        for route in nic.get("routes", ()):
            _route(el, route)
        return
    xtype = {"routed": "ethernet", "vlan": "direct"}.get(kind, kind)
    el = _sub(devices, "interface", type=xtype)
    if nic.get("mac"):
        _sub(el, "mac", address=nic["mac"])
    if kind == "routed":
        if nic.get("host_ip") or nic.get("host_routes"):
            src = _sub(el, "source")
            for ip in nic.get("host_ip", ()):
                _ip(src, "ip", ip)
            for route in nic.get("host_routes", ()):
                _route(src, route)
    else:
        attr = {"bridge": "bridge", "network": "network", "direct": "dev", "vlan": "dev"}[kind]
        _sub(el, "source", **{attr: nic["source"]}, mode=nic.get("mode"))
    if kind == "vlan":
        _sub(_sub(el, "vlan"), "tag", id=nic["vlan"])
    for ip in nic.get("ip", ()):
        _ip(el, "ip", ip)
    _gateway(el, nic.get("gateway"))
    for route in nic.get("routes", ()):
        _route(el, route)
    if nic.get("host_dev"):
        _sub(el, "target", dev=nic["host_dev"])
    if nic.get("guest_dev"):
        _sub(el, "guest", dev=nic["guest_dev"])
    if nic.get("model"):
        _sub(el, "model", type=nic["model"])
    if nic.get("mtu"):
        _sub(el, "mtu", size=nic["mtu"])
    if nic.get("link"):
        _sub(el, "link", state=nic["link"])
    for extra in nic.get("xml", ()):
        el.append(element_from_text(extra))


def _metadata(root: etree._Element, extras: list[etree._Element], ext: dict[str, Any]) -> None:
    meta = next((e for e in extras if e.tag == "metadata"), None)
    if meta is None and not ext:
        return
    if meta is None:
        meta = etree.Element("metadata")
    else:
        extras.remove(meta)
    root.append(meta)
    if ext:
        spec = etree.Element(f"{{{NS}}}spec", nsmap={"rc": NS})
        for key, value in ext.items():
            encode(spec, key, value)
        meta.insert(0, spec)


def domain_element(domain: Domain) -> etree._Element:
    d = canonical(domain)
    root = etree.Element("domain", type=d["type"])
    extras = []
    for x in d.get("xml", ()):
        if x.startswith("@"):
            key, _, value = x[1:].partition("=")
            root.set(key, value)
        else:
            extras.append(element_from_text(x))
    _sub(root, "name", d["name"])
    for key in ("uuid", "title", "description"):
        if key in d:
            _sub(root, key, d[key])
    ext = {k: d[k] for k in DOMAIN_EXT if k in d}
    cpu = dict(d.get("cpu", {}))
    if "limit" in cpu:
        ext["cpu"] = {"limit": cpu.pop("limit")}
    quota = dict(d.get("quota", {}))
    root_fs = any(fs["target"] == "/" for fs in d.get("filesystems", ()))
    quota_ext = {k: v for k, v in quota.items() if k != "space" or not root_fs}
    if quota_ext:
        ext["quota"] = quota_ext
    _ext_parts(ext, d, "interfaces", {None: IF_EXT, "none": (*IF_EXT, *NIC_TYPE_EXT)})
    _ext_parts(ext, d, "filesystems", {"template": (*FS_EXT, "source"), "ram": RAM_EXT})
    _metadata(root, extras, ext)
    _size_kib(root, "memory", d.get("memory"))
    _size_kib(root, "currentMemory", d.get("current_memory"))
    if d.get("blkiotune"):
        _blkiotune(root, d["blkiotune"])
    _features(root, d, extras)
    if d.get("memtune"):
        tune = _sub(root, "memtune")
        for key in ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee"):
            _size_kib(tune, key, d["memtune"].get(key))
    if "count" in cpu or "cpuset" in cpu:
        _sub(root, "vcpu", str(cpu.get("count", 1)), placement="static", cpuset=cpu.get("cpuset"))
    if any(k in cpu for k in ("shares", "period", "quota")):
        tune = _sub(root, "cputune")
        for key in ("shares", "period", "quota"):
            if key in cpu:
                _sub(tune, key, str(cpu[key]))
    _os_element(root, d, extras)
    if d.get("idmap"):
        idmap = _sub(root, "idmap")
        for item in d["idmap"]:
            _sub(idmap, item["kind"], start=item["start"], target=item["target"],
                 count=item["count"])
    devices = _sub(root, "devices")
    for fs in d.get("filesystems", ()):
        _filesystem(devices, fs, quota)
    for nic in d.get("interfaces", ()):
        _interface(devices, nic)
    if "console" in d:
        target = d["type"] if d["type"] in ("lxc", "openvz") else None
        for port in range(d["console"].get("count", 1)):
            console = _sub(devices, "console", type="pty")
            if target:
                _sub(console, "target", type=target, port=port)
    for extra in d.get("devices_xml", ()):
        devices.append(element_from_text(extra))
    _order(devices, DEV_ORDER)
    if not len(devices):
        root.remove(devices)
    for extra in extras:
        root.append(extra)
    _order(root, TOP_ORDER)
    return root


def _blkiotune(root: etree._Element, blkio: dict[str, Any]) -> None:
    tune = _sub(root, "blkiotune")
    if "weight" in blkio:
        _sub(tune, "weight", str(blkio["weight"]))
    for device in blkio.get("devices", ()):
        el = _sub(tune, "device")
        for key in ("path", "weight", "read_iops_sec", "write_iops_sec", "read_bytes_sec",
                    "write_bytes_sec"):
            if key in device:
                _sub(el, key, str(device[key]))


def _features(root: etree._Element, d: dict[str, Any], extras: list[etree._Element]) -> None:
    """Capabilities, and `<privnet/>` for the `empty` interface, go into `<features>`: the one
    kept as XML (other features) when there is one."""
    caps = d.get("capabilities")
    privnet = [nic.get("type") for nic in d.get("interfaces", ())] == ["empty"]
    if not caps and not privnet:
        return
    features = next((x for x in extras if x.tag == "features"), None)
    if features is None:
        features = etree.Element("features")
        extras.append(features)
    if privnet and features.find("privnet") is None:
        features.insert(0, etree.Element("privnet"))
    if caps:
        el = _sub(features, "capabilities", policy=caps.get("policy", "default"))
        for state, names in (("on", caps.get("keep", ())), ("off", caps.get("drop", ()))):
            for name in names:
                _sub(el, name, state=state)


def _ext_parts(ext: dict[str, Any], d: dict[str, Any], key: str,
               fields: dict[str | None, tuple[str, ...]]) -> None:
    """Per item of list `key`, the fields libvirt has no place for, by the item's type (None:
    any other type), aligned by position."""
    parts: list[dict[str, Any]] = []
    for item in d.get(key, ()):
        wanted = fields.get(item.get("type"), fields.get(None, ()))
        parts.append({f: item[f] for f in wanted if f in item})
    if any(parts):
        ext[key] = parts


def _os_element(root: etree._Element, d: dict[str, Any], extras: list[etree._Element]) -> None:
    os_d = d.get("os", {})
    init = d.get("init", {})
    os_type = os_d.get("type") or DEFAULT_OS_TYPE.get(d["type"])
    if not os_type:
        return  # the model refuses os pieces without a type where there is no default
    if not (os_d or init or d.get("arch")) and any(x.tag == "os" for x in extras):
        return  # an <os> kept as written stands in for the default one
    os_el = _sub(root, "os")
    _sub(os_el, "type", os_type, arch=d.get("arch"), machine=os_d.get("machine"))
    if "cmd" in init:
        _sub(os_el, "init", init["cmd"])
    for arg in init.get("args", ()):
        _sub(os_el, "initarg", arg)
    for name, value in init.get("env", {}).items():
        _sub(os_el, "initenv", value, name=name)
    if "dir" in init:
        _sub(os_el, "initdir", init["dir"])
    if "user" in init:
        _sub(os_el, "inituser", init["user"])
        _sub(os_el, "initgroup", init["group"])
    for extra in os_d.get("xml", ()):
        os_el.append(element_from_text(extra))


def network_element(network: Network) -> etree._Element:
    n = canonical(network)
    root = etree.Element("network")
    if n.get("ipv6") is not None:
        root.set("ipv6", "yes" if n["ipv6"] else "no")
    extras = []
    for x in n.get("xml", ()):
        if x.startswith("@"):
            key, _, value = x[1:].partition("=")
            root.set(key, value)
        else:
            extras.append(element_from_text(x))
    _sub(root, "name", n["name"])
    for key in ("uuid", "title", "description"):
        if key in n:
            _sub(root, key, n[key])
    _metadata(root, extras, {k: n[k] for k in NET_EXT if k in n})
    if "forward" in n:
        fwd = n["forward"]
        el = _sub(root, "forward", mode=fwd.get("mode", "nat"), dev=fwd.get("dev"),
                  **fwd.get("xml_attrs", {}))
        for extra in fwd.get("xml", ()):
            el.append(element_from_text(extra))
    if "bridge" in n:
        br = n["bridge"]
        stp = None if br.get("stp") is None else ("on" if br["stp"] else "off")
        _sub(root, "bridge", name=br.get("name"), stp=stp, delay=br.get("delay"),
             **br.get("xml_attrs", {}))
    if "mtu" in n:
        _sub(root, "mtu", size=n["mtu"])
    if "mac" in n:
        _sub(root, "mac", address=n["mac"])
    if "domain" in n:
        _sub(root, "domain", name=n["domain"])
    for extra in extras:
        if extra.tag not in ("ip", "route"):
            root.append(extra)
    for ip in n.get("ips", ()):
        _net_ip(root, ip)
    for extra in extras:
        if extra.tag in ("ip", "route"):
            root.append(extra)
    return root


def _net_ip(root: etree._Element, ip: dict[str, Any]) -> None:
    address, _, prefix = ip["address"].partition("/")
    family = "ipv6" if ":" in address else None
    el = _sub(root, "ip", family=family, address=address, prefix=prefix or None,
              netmask=ip.get("netmask"))
    for extra in ip.get("xml", ()):
        el.append(element_from_text(extra))
    if ip.get("dhcp_ranges") or ip.get("dhcp_hosts") or ip.get("dhcp_xml"):
        dhcp = _sub(el, "dhcp")
        for rng in ip.get("dhcp_ranges", ()):
            r = _sub(dhcp, "range", start=rng["start"], end=rng["end"])
            for extra in rng.get("xml", ()):
                r.append(element_from_text(extra))
        for host in ip.get("dhcp_hosts", ()):
            h = _sub(dhcp, "host", **{k: host[k] for k in ("mac", "id", "name", "ip") if k in host})
            for extra in host.get("xml", ()):
                h.append(element_from_text(extra))
        for extra in ip.get("dhcp_xml", ()):
            dhcp.append(element_from_text(extra))


def to_xml(obj: Domain | Network) -> str:
    root = domain_element(obj) if isinstance(obj, Domain) else network_element(obj)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"
