"""Pure: libvirt's inactive XML of one domain or network -> the model's canonical dict, read
through the very loader that reads spec files, plus our stamp from `<metadata>`.

The stamp lives in its own namespace (`urn:reconciler:state:1`), beside the spec extension
(`urn:reconciler:spec:1`): libvirt keeps one `<metadata>` child per namespace URI. It holds
the owner, the spec file and the last-applied canonical spec as JSON text, so the spec comes
back exactly as it was applied (types included), which the three-way diff relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lxml import etree
from pydantic import ValidationError

from reconciler.drivers.base import Stamp
from reconciler.drivers.text import lines
from reconciler.errors import SpecError
from reconciler.model import Domain, Network, canonical
from reconciler.specs.xml_read import read_domain, read_network
from reconciler.specs.xmlsafe import parse_xml

STATE_NS = "urn:reconciler:state:1"
Q_STATE = f"{{{STATE_NS}}}state"
# device children libvirt adds to every device of a running or defined VM (PCI slots, the
# names it gives devices); dropped before reading unless our spec spells them out
_HOST_DEVICE_CHILDREN = ("address", "alias")


@dataclass(frozen=True)
class Parsed:
    """One object as the host holds it. `spec` is None when the loader refuses the XML (a
    foreign object using something the model cannot express); `error` says why."""

    kind: str
    name: str
    type: str
    spec: dict[str, Any] | None
    stamp: Stamp | None
    error: str | None = None


def pop_stamp(root: etree._Element) -> Stamp | None:
    """Remove our stamp element from `root` and decode it (None if absent or unreadable)."""
    meta = root.find("metadata")
    if meta is None:
        return None
    el = meta.find(Q_STATE)
    if el is None:
        return None
    meta.remove(el)
    if not len(meta) and not (meta.text or "").strip():
        root.remove(meta)
    try:
        return Stamp.from_json(json.loads(el.text or ""))
    except ValueError:
        return None


def stamp_element(stamp: Stamp) -> etree._Element:
    el = etree.Element(Q_STATE, nsmap={"rcs": STATE_NS})
    el.text = json.dumps(stamp.to_json(), sort_keys=True, separators=(",", ":"))
    return el


def _strip_host_device_children(root: etree._Element) -> None:
    devices = root.find("devices")
    if devices is None:
        return
    for device in devices:
        for tag in _HOST_DEVICE_CHILDREN:
            for child in device.findall(tag):
                device.remove(child)


def parse_domain(xml: str, name: str) -> Parsed:
    try:
        root = parse_xml(xml.encode(), f"libvirt:domain/{name}")
    except SpecError as exc:
        return Parsed("Domain", name, "", None, None, _first_line(exc))
    dtype = root.get("type", "")
    stamp = pop_stamp(root)
    spec_text = json.dumps(stamp.spec) if stamp else ""
    if not any(f"<{tag}" in spec_text for tag in _HOST_DEVICE_CHILDREN):
        _strip_host_device_children(root)
    try:
        spec = canonical(Domain.model_validate(read_domain(root, {})))
    except (SpecError, ValidationError, ValueError) as exc:
        return Parsed("Domain", name, dtype, None, stamp, _first_line(exc))
    spec.pop("kind", None)
    return Parsed("Domain", name, dtype, spec, stamp)


def parse_network(xml: str, name: str) -> Parsed:
    try:
        root = parse_xml(xml.encode(), f"libvirt:network/{name}")
    except SpecError as exc:
        return Parsed("Network", name, "network", None, None, _first_line(exc))
    stamp = pop_stamp(root)
    try:
        spec = canonical(Network.model_validate(read_network(root, {})))
    except (SpecError, ValidationError, ValueError) as exc:
        return Parsed("Network", name, "network", None, stamp, _first_line(exc))
    spec.pop("kind", None)
    return Parsed("Network", name, "network", spec, stamp)


def _first_line(exc: Exception) -> str:
    text = lines(str(exc).strip())
    return text[0] if text else type(exc).__name__
