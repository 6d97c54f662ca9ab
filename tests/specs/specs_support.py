"""Shared paths, the libvirt XML comparator and a runner for the real CLI (imported by tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[2]
CORPUS = (REPO / ".." / "shared" / "corpus" / "libvirt").resolve()
SCHEMAS = CORPUS / "src" / "conf" / "schemas"
DESIRED = REPO / "desired"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m reconciler ARGS...` as a user would run it (no shell)."""
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, check=False)



# ----------------------------------------------------------------------------- XML meaning

RC_NS = "urn:reconciler:spec:1"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                          remove_pis=True)
_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2,
          "mib": 1024**2, "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
          "t": 1024**4, "tib": 1024**4, "tb": 1000**4, "p": 1024**5, "pib": 1024**5,
          "pb": 1000**5, "e": 1024**6, "eib": 1024**6, "eb": 1000**6}
# scaled integers and the unit libvirt assumes when `unit` is absent
_KIB_DEFAULT = {"memory", "currentMemory", "maxMemory", "hard_limit", "soft_limit",
                "swap_hard_limit", "min_guarantee"}
_BYTES_DEFAULT = {"space_hard_limit", "space_soft_limit"}
# parents whose same-tag children keep their order (argv, mount order, NIC naming, ...)
_ORDERED = {"os", "devices", "dns", "network", "interface", "hostdev", "source", "forward",
            "domain"}
# ... except these: a moved host NIC keeps its name and device nodes have no order
_UNORDERED_CHILDREN = {("devices", "hostdev")}


def _to_bytes(text: str | None, unit: str | None, default: str) -> str:
    value = (text or "").strip()
    factor = _UNITS[(unit or default).lower()]
    return str(int(value) * factor)


def _normalise(el: etree._Element, parent: etree._Element | None) -> None:
    """Rewrite `el` in place into the form that means the same to libvirt."""
    tag = el.tag if isinstance(el.tag, str) else ""
    local = etree.QName(el).localname if tag else ""
    if local in _KIB_DEFAULT and parent is not None and (
            parent.tag in ("domain", "memtune")) and len(el) == 0:
        el.text = _to_bytes(el.text, el.attrib.pop("unit", None), "kib")
    elif local in _BYTES_DEFAULT:
        el.text = _to_bytes(el.text, el.attrib.pop("unit", None), "bytes")
    elif local == "source" and parent is not None and parent.tag == "filesystem" \
            and parent.get("type") == "ram":
        el.set("usage", _to_bytes(el.get("usage"), el.attrib.pop("units", None), "kib"))
    elif local in ("ip", "route") and el.get("family") and el.get("address"):
        implied = "ipv6" if ":" in el.get("address", "") else "ipv4"
        if el.get("family") == implied:
            del el.attrib["family"]
    elif local == "vcpu" and el.get("placement") == "static":
        del el.attrib["placement"]
    elif local == "forward" and parent is not None and parent.tag == "network":
        el.set("mode", el.get("mode", "nat"))
        ifaces = [c for c in el if c.tag == "interface"]
        if el.get("dev") and len(ifaces) == 1 and dict(ifaces[0].attrib) == {"dev": el.get("dev")} \
                and not len(ifaces[0]):
            el.remove(ifaces[0])
    elif local == "mac" and el.get("address"):
        el.set("address", el.get("address", "").lower())  # libvirt stores MACs lower-case
    elif local == "host" and el.get("mac"):
        el.set("mac", el.get("mac", "").lower())
    elif local == "console" and parent is not None and parent.tag == "devices":
        # the target libvirt fills in: the driver's type, ports numbered from 0
        driver = parent.getparent().get("type") if parent.getparent() is not None else None
        port = str([c for c in parent if c.tag == "console"].index(el))
        target = el.find("target")
        if target is not None and driver in ("lxc", "openvz") and not len(target) and \
                dict(target.attrib) in ({"type": driver, "port": port}, {"type": driver}):
            el.remove(target)
    elif local == "metadata":
        for child in list(el):
            if child.tag == f"{{{RC_NS}}}spec":
                el.remove(child)
    if el.text is not None and not el.text.strip():
        el.text = None
    el.tail = None
    for child in list(el):
        if not isinstance(child.tag, str):
            el.remove(child)
            continue
        _normalise(child, el)
    if local == "metadata" and not len(el) and not el.text:
        assert parent is not None
        parent.remove(el)


def _canon(el: etree._Element) -> str:
    attrs = "".join(f" {k}={v!r}" for k, v in sorted(el.attrib.items()))
    kids = [(str(c.tag), _canon(c)) for c in el]
    if str(el.tag) in _ORDERED:
        # stable: same-tag siblings keep their order, unless that order means nothing
        kids.sort(key=lambda kc: (kc[0], kc[1] if (el.tag, kc[0]) in _UNORDERED_CHILDREN
                                  else ""))
    else:
        kids.sort()
    body = "".join(text for _, text in kids)
    return f"<{el.tag}{attrs}>{el.text or ''}{body}</{el.tag}>"


def xml_meaning(data: str | bytes) -> str:
    """One string per meaning: equal strings = libvirt reads the same definition."""
    root = etree.fromstring(data.encode() if isinstance(data, str) else data, _PARSER)
    _normalise(root, None)
    return _canon(root)


def pretty_meaning(data: str | bytes) -> str:
    """The canonical form, one element per line, for readable assertion diffs."""
    return xml_meaning(data).replace("><", ">\n<")
