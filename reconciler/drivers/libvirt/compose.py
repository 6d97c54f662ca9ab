"""Pure: the XML we hand to libvirt's define, from the desired spec and what the host holds.

The spec is written by the same writer as `reconciler convert` (`xml_write`), then:

- values the host filled in and that must stay stable are carried over from the existing
  definition: the uuid (a redefine with another uuid is refused), the MAC of every NIC the
  spec gives none (else libvirt draws a new one at each define: the guest's NIC identity
  and its DHCP lease would change at every apply), the default resource partition, and a
  network's bridge name and MAC;
- a `template` filesystem becomes a `mount` of the directory built from the template,
  where the hypervisor cannot build from templates itself (everything but OpenVZ/vz);
- our stamp (owner, source, last-applied spec) goes into `<metadata>`.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from reconciler.drivers.base import Stamp
from reconciler.drivers.libvirt.normalize import TemplateSource
from reconciler.drivers.libvirt.parse import Q_STATE, stamp_element
from reconciler.errors import PermanentError
from reconciler.model import Domain, Network
from reconciler.specs.xml_read import NS
from reconciler.specs.xml_write import domain_element, network_element
from reconciler.specs.xmlsafe import canonical_xml, parse_xml

_DEFAULT_RESOURCE = "<resource><partition>/machine</partition></resource>"
# parts of a NIC that are not what it *is* (identity for matching old and new NICs)
_NIC_NOT_IDENTITY = ("mac", "target", "alias", "address")
# network forward modes whose bridge libvirt creates (and names, and gives a MAC)
_MANAGED_BRIDGE = (None, "nat", "route", "open")


def _parse(existing: str | None) -> etree._Element | None:
    return parse_xml(existing.encode(), "libvirt:existing") if existing else None


def _insert_after(root: etree._Element, el: etree._Element, after: tuple[str, ...]) -> None:
    """Put `el` after the last of the `after` tags present (libvirt ignores order; people
    reading `virsh dumpxml` of our input do not)."""
    index = 0
    for i, child in enumerate(root):
        if child.tag in after:
            index = i + 1
    root.insert(index, el)


def put_stamp(root: etree._Element, stamp: Stamp) -> None:
    """Our stamp into `<metadata>`, replacing an older one."""
    meta = root.find("metadata")
    if meta is None:
        meta = etree.Element("metadata")
        _insert_after(root, meta, ("name", "uuid", "title", "description"))
    for old in meta.findall(Q_STATE):
        meta.remove(old)
    meta.append(stamp_element(stamp))


def _carry_uuid(root: etree._Element, old: etree._Element | None) -> None:
    if root.find("uuid") is not None or old is None:
        return
    uuid = old.find("uuid")
    if uuid is not None and uuid.text:
        el = etree.Element("uuid")
        el.text = uuid.text.strip()
        _insert_after(root, el, ("name",))


# --------------------------------------------------------------------------- domains

def _nic_identity(el: etree._Element) -> tuple[tuple[Any, ...], str]:
    """(type and source, everything but host-assigned parts) of an `<interface>`."""
    source = el.find("source")
    key = (el.get("type"), tuple(sorted(source.attrib.items())) if source is not None else ())
    body = copy.deepcopy(el)
    for tag in _NIC_NOT_IDENTITY:
        for child in body.findall(tag):
            body.remove(child)
    return key, canonical_xml(body)


def carry_macs(devices: etree._Element, old: etree._Element | None) -> None:
    """Give each new NIC without a MAC the MAC of the old NIC it continues: first one that is
    identical apart from host-assigned parts, else the next one with the same type and source
    (in order). MACs the spec names explicitly are never handed out twice."""
    if old is None:
        return
    new_nics = devices.findall("interface")
    wanting = [el for el in new_nics if el.find("mac") is None]
    if not wanting:
        return
    claimed = {(m.get("address") or "").lower() for el in new_nics
               if (m := el.find("mac")) is not None}
    pool = []
    for el in old.findall("devices/interface"):
        mac = el.find("mac")
        if mac is not None and mac.get("address") and mac.get("address", "").lower() not in claimed:
            pool.append((*_nic_identity(el), mac.get("address")))
    used: set[int] = set()
    chosen: dict[int, str] = {}
    identities = [_nic_identity(el) for el in wanting]
    for match_on in (1, 0):  # identical body first, then same type+source
        for i, ident in enumerate(identities):
            if i in chosen:
                continue
            for j, entry in enumerate(pool):
                if j not in used and entry[match_on] == ident[match_on]:
                    chosen[i] = str(entry[2])
                    used.add(j)
                    break
    for i, address in chosen.items():
        mac = etree.Element("mac", address=address)
        wanting[i].insert(0, mac)


def _translate_templates(root: etree._Element, spec: dict[str, Any],
                         template_source: TemplateSource) -> None:
    templates = [fs for fs in spec.get("filesystems", ()) if fs.get("type") == "template"]
    if not templates:
        return
    devices = root.find("devices")
    elements = devices.findall("filesystem[@type='template']") if devices is not None else []
    for fs in templates:
        source_dir = template_source(fs)
        if source_dir is None:
            raise PermanentError(f"filesystem {fs['target']}: template {fs.get('name')!r} has no "
                                 "directory to build into; give it 'source'")
        for el in elements:
            target, source = el.find("target"), el.find("source")
            if target is not None and target.get("dir") == fs["target"] and source is not None:
                el.set("type", "mount")
                source.attrib.clear()
                source.set("dir", source_dir)
                break
    # the extension's per-filesystem parts (template method, source) would no longer line up
    # with a mount; the stamp keeps the whole spec
    ext = root.find(f"metadata/{{{NS}}}spec")
    if ext is not None:
        for part in ext.findall(f"{{{NS}}}filesystems"):
            ext.remove(part)
        if not len(ext):
            meta = ext.getparent()
            assert meta is not None
            meta.remove(ext)


def domain_xml(spec: dict[str, Any], stamp: Stamp, *, existing: str | None,
               translate_templates: bool, template_source: TemplateSource) -> str:
    """The domain XML to define for `spec`, continuing the `existing` definition (its
    inactive XML, or None for a new domain)."""
    root = domain_element(Domain.model_validate(spec))
    old = _parse(existing)
    if translate_templates:
        _translate_templates(root, spec, template_source)
    _carry_uuid(root, old)
    devices = root.find("devices")
    if devices is not None:
        carry_macs(devices, old)
    if old is not None and root.find("resource") is None:
        resource = old.find("resource")
        if resource is not None and canonical_xml(resource) == _DEFAULT_RESOURCE:
            _insert_after(root, copy.deepcopy(resource),
                          ("name", "uuid", "title", "description", "metadata", "memory",
                           "currentMemory", "memtune", "vcpu", "cputune"))
    put_stamp(root, stamp)
    return etree.tostring(root, encoding="unicode")


# --------------------------------------------------------------------------- networks

def network_xml(spec: dict[str, Any], stamp: Stamp, *, existing: str | None) -> str:
    """The network XML to define for `spec`, continuing the `existing` definition."""
    root = network_element(Network.model_validate(spec))
    old = _parse(existing)
    _carry_uuid(root, old)
    forward = root.find("forward")
    mode = forward.get("mode", "nat") if forward is not None else None
    if old is not None and mode in _MANAGED_BRIDGE:
        old_bridge = old.find("bridge")
        old_name = old_bridge.get("name") if old_bridge is not None else None
        bridge = root.find("bridge")
        if old_name and bridge is None:
            bridge = etree.Element("bridge", name=old_name)
            _insert_after(root, bridge, ("name", "uuid", "title", "description", "metadata",
                                         "forward"))
        elif old_name and bridge is not None and bridge.get("name") is None:
            bridge.set("name", old_name)
        old_mac = old.find("mac")
        if root.find("mac") is None and old_mac is not None and old_mac.get("address"):
            _insert_after(root, etree.Element("mac", address=old_mac.get("address", "")),
                          ("name", "uuid", "metadata", "forward", "bridge", "mtu"))
    put_stamp(root, stamp)
    return etree.tostring(root, encoding="unicode")
