"""Pure: make a live object read back from libvirt comparable with the spec it came from.

libvirt fills in what a spec leaves out (uuid, MACs, `currentMemory`, arch, emulator, clock,
`on_*` actions, resource partition, `accessmode`, console target and port, generated target
devs, `placement`, seclabel details, a network's bridge name and MAC...). The diff compares
only the fields a user manages, and it compares list fields (filesystems, NICs, the `xml`
pieces the model keeps verbatim) as whole values. So a live object is *projected* onto the
spec we last applied: in every list item and every kept XML element, what that spec does not
mention is dropped, by field name and by element tag. What it does mention stays, so a value
changed on the host still shows as drift.

Two spellings of one value are unified towards the spec's (MAC letter case).

`strip_defaults` is the other direction, for `import`: without a spec to compare with, it
drops the values libvirt is known to fill in, so an imported spec carries only what matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from reconciler.specs.xmlsafe import canonical_xml, element_from_text

TemplateSource = Callable[[dict[str, Any]], str | None]

_START_TAG = re.compile(r'^<([^\s>/]+)((?:\s+[^\s=>]+="[^"]*")*)\s*/?>')
_TYPE_ATTR = re.compile(r'\stype="([^"]*)"')


# --------------------------------------------------------------------------- XML pieces

def piece_key(piece: str) -> tuple[str, str]:
    """How kept XML pieces pair up: by tag and `type` attribute (`<controller type='usb'>`
    pairs with a usb controller, not a pci one); a root attribute `@name=value` by name."""
    if piece.startswith("@"):
        return ("@" + piece[1:].partition("=")[0], "")
    match = _START_TAG.match(piece)
    if match is None:
        el = element_from_text(piece)
        return (el.tag, el.get("type", ""))
    type_match = _TYPE_ATTR.search(match.group(2) or "")
    return (match.group(1), type_match.group(1) if type_match else "")


def _el_key(el: etree._Element) -> tuple[str, str]:
    return (str(el.tag), el.get("type", ""))


def project_element(live: etree._Element, ref: etree._Element) -> None:
    """Cut `live` (in place) down to the shape of `ref`: attributes `ref` lacks are dropped,
    children pair up by tag+type in order; children of a kind `ref` has none of are dropped,
    extra ones of a kind it has stay (drift). Children come out in `ref`'s order."""
    for name in list(live.attrib):
        if name not in ref.attrib:
            del live.attrib[name]
    live_kids: dict[tuple[str, str], list[etree._Element]] = {}
    for child in live:
        if isinstance(child.tag, str):
            live_kids.setdefault(_el_key(child), []).append(child)
    ordered: list[etree._Element] = []
    taken: dict[tuple[str, str], int] = {}
    ref_keys = set()
    for ref_child in ref:
        if not isinstance(ref_child.tag, str):
            continue
        key = _el_key(ref_child)
        ref_keys.add(key)
        index = taken.get(key, 0)
        group = live_kids.get(key, [])
        if index < len(group):
            project_element(group[index], ref_child)
            ordered.append(group[index])
            taken[key] = index + 1
    for key, group in live_kids.items():
        if key in ref_keys:
            ordered.extend(group[taken.get(key, 0):])
    for child in list(live):
        live.remove(child)
    for child in ordered:
        child.tail = None
        live.append(child)


def project_pieces(live: list[str] | tuple[str, ...] | None,
                   ref: list[str] | tuple[str, ...] | None) -> list[str]:
    """Kept XML pieces of the live object, as far as `ref` mentions them, in `ref`'s order."""
    if not live or not ref:
        return []
    live_groups: dict[tuple[str, str], list[str]] = {}
    for piece in live:
        live_groups.setdefault(piece_key(piece), []).append(piece)
    out: list[str] = []
    taken: dict[tuple[str, str], int] = {}
    ref_keys = set()
    for ref_piece in ref:
        key = piece_key(ref_piece)
        ref_keys.add(key)
        index = taken.get(key, 0)
        group = live_groups.get(key, [])
        if index >= len(group):
            continue
        taken[key] = index + 1
        out.append(_project_piece(group[index], ref_piece))
    for key, group in live_groups.items():
        if key in ref_keys:
            out.extend(group[taken.get(key, 0):])
    return out


def _project_piece(live: str, ref: str) -> str:
    if live == ref or live.startswith("@"):
        return live
    live_el = element_from_text(live)  # a fresh tree: projecting it in place is safe
    project_element(live_el, element_from_text(ref))
    return canonical_xml(live_el)


# --------------------------------------------------------------------------- typed items

def _same_mac(live: Any, ref: Any) -> Any:
    if isinstance(live, str) and isinstance(ref, str) and live.lower() == ref.lower():
        return ref
    return live


def _project_item(item: dict[str, Any], ref: dict[str, Any], keep: tuple[str, ...],
                  pieces: tuple[str, ...] = ("xml",)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key not in ref and key not in keep:
            continue
        if key in pieces:
            projected = project_pieces(value, ref.get(key))
            if projected:
                out[key] = projected
        elif key == "mac":
            out[key] = _same_mac(value, ref.get(key))
        else:
            out[key] = value
    return out


def _project_filesystems(live: list[dict[str, Any]], ref: list[dict[str, Any]],
                         template_source: TemplateSource | None) -> list[dict[str, Any]]:
    """Paired by mount target; a mount we made from a template reads back as that template."""
    by_target = {fs.get("target"): fs for fs in ref}
    out = []
    for fs in live:
        ref_fs = by_target.get(fs.get("target"))
        if ref_fs is None:
            out.append(fs)
            continue
        if ref_fs.get("type") == "template" and fs.get("type", "mount") == "mount" and \
                template_source is not None and fs.get("source") == template_source(ref_fs):
            out.append(dict(ref_fs))
            continue
        out.append(_project_item(fs, ref_fs, ("type", "target")))
    return out


def _project_interfaces(live: list[dict[str, Any]],
                        ref: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paired by position: libvirt keeps NIC order (it is the guest's eth0, eth1, ...)."""
    out = []
    for index, nic in enumerate(live):
        if index < len(ref):
            out.append(_project_item(nic, ref[index], ("type",)))
        else:
            out.append(nic)
    return out


def project_domain(live: dict[str, Any], ref: dict[str, Any],
                   template_source: TemplateSource | None = None) -> dict[str, Any]:
    """`live` as far as `ref` (the last-applied spec) manages it; see the module docstring.

    Top-level scalar fields are left alone: the diff only looks at fields the spec names, and
    a field the user adds later must be compared with the host's real value."""
    out = dict(live)
    if "filesystems" in live:
        out["filesystems"] = _project_filesystems(live["filesystems"], ref.get("filesystems", []),
                                                  template_source)
    if "interfaces" in live:
        out["interfaces"] = _project_interfaces(live["interfaces"], ref.get("interfaces", []))
    for key in ("xml", "devices_xml"):
        if key in live:
            out[key] = project_pieces(live[key], ref.get(key))
    if isinstance(live.get("os"), dict) and "xml" in live["os"]:
        os_part = dict(live["os"])
        os_part["xml"] = project_pieces(os_part["xml"], (ref.get("os") or {}).get("xml"))
        out["os"] = _drop_empty(os_part, keep_dicts=True)
    return _drop_empty(out, keep_dicts=True)


def _project_dict(live: Any, ref: Any, keep: tuple[str, ...],
                  pieces: tuple[str, ...] = ("xml",)) -> Any:
    if not isinstance(live, dict) or not isinstance(ref, dict):
        return live
    out = _project_item(live, ref, keep, pieces)
    if isinstance(out.get("xml_attrs"), dict):
        out["xml_attrs"] = {k: v for k, v in out["xml_attrs"].items()
                            if k in (ref.get("xml_attrs") or {})}
    return _drop_empty(out)


def _project_list(live: list[Any], ref: list[Any], keep: tuple[str, ...],
                  pieces: tuple[str, ...] = ("xml",)) -> list[Any]:
    return [_project_dict(item, ref[i], keep, pieces) if i < len(ref) else item
            for i, item in enumerate(live)]


def project_network(live: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """A live network as far as the last-applied spec manages it (bridge name, MAC, stp and
    delay, the repeated forward device... dropped unless the spec names them)."""
    out = dict(live)
    if "bridge" in live:
        out["bridge"] = _project_dict(live["bridge"], ref.get("bridge"), ())
    if "forward" in live:
        forward = _forward_spelling(live["forward"], ref.get("forward"))
        out["forward"] = _project_dict(forward, ref.get("forward"), ("mode",))
    if "mac" in live:
        out["mac"] = _same_mac(live["mac"], ref.get("mac"))
    if "xml" in live:
        out["xml"] = project_pieces(live["xml"], ref.get("xml"))
    if "ips" in live:
        ref_ips = ref.get("ips", [])
        ips = []
        for index, ip in enumerate(live["ips"]):
            if index >= len(ref_ips):
                ips.append(ip)
                continue
            ref_ip = ref_ips[index]
            item = _project_item(ip, ref_ip, ("address",), ("xml", "dhcp_xml"))
            if "dhcp_ranges" in item:
                item["dhcp_ranges"] = _project_list(item["dhcp_ranges"],
                                                    ref_ip.get("dhcp_ranges", []),
                                                    ("start", "end"))
            if "dhcp_hosts" in item:
                hosts = _project_list(item["dhcp_hosts"], ref_ip.get("dhcp_hosts", []), ())
                ref_hosts = ref_ip.get("dhcp_hosts", [])
                item["dhcp_hosts"] = [
                    {**h, "mac": _same_mac(h["mac"], ref_hosts[i].get("mac"))}
                    if i < len(ref_hosts) and "mac" in h else h for i, h in enumerate(hosts)]
            ips.append(_drop_empty(item))
        out["ips"] = ips
    return _drop_empty(out)


def _forward_spelling(live: Any, ref: Any) -> Any:
    """`<forward dev='X'>` and `<forward><interface dev='X'/></forward>` (one device) are one
    thing; libvirt writes both, the reader folds that pair into `dev`. Spell it as the spec."""
    if not isinstance(live, dict) or not isinstance(ref, dict) or not live.get("dev"):
        return live
    alone = f'<interface dev="{live["dev"]}"></interface>'
    if ref.get("dev") is None and list(ref.get("xml", ())) == [alone] and not live.get("xml"):
        return {**{k: v for k, v in live.items() if k != "dev"}, "xml": [alone]}
    return live


def _drop_empty(d: dict[str, Any], keep_dicts: bool = False) -> dict[str, Any]:
    """The canonical form leaves defaults out: an emptied list (or dict) is no value. A nested
    setting that is all defaults (`console: {}`) is a value: the spec names it."""
    empty: tuple[Any, ...] = ([], None) if keep_dicts else ([], {}, None)
    return {k: v for k, v in d.items() if v not in empty}


# --------------------------------------------------------------------------- import

# whole pieces libvirt writes by itself (the value every domain gets unless told otherwise)
_DEFAULT_PIECES = frozenset({
    '<clock offset="utc"></clock>',
    "<on_poweroff>destroy</on_poweroff>",
    "<on_reboot>restart</on_reboot>",
    "<on_crash>destroy</on_crash>",
    "<resource><partition>/machine</partition></resource>",
    '<seclabel model="none" type="none"></seclabel>',
    '<seclabel type="none"></seclabel>',
})
_GENERATED_DEV = re.compile(r"^(vnet|testnet|macvtap|macvlan)\d+$")


def strip_domain_defaults(live: dict[str, Any]) -> dict[str, Any]:
    """Drop what libvirt fills in by itself, for `import` (no spec to compare with)."""
    out = dict(live)
    out.pop("arch", None)
    if out.get("current_memory") is not None and out.get("current_memory") == out.get("memory"):
        out.pop("current_memory")
    cpu = dict(out.get("cpu") or {})
    if cpu.get("count") == 1 and "cpuset" not in cpu:
        cpu.pop("count")
    out["cpu"] = cpu
    out["xml"] = [p for p in out.get("xml", ()) if p not in _DEFAULT_PIECES]
    out["devices_xml"] = [p for p in out.get("devices_xml", ())
                          if piece_key(p)[0] != "emulator"]
    out["filesystems"] = [{k: v for k, v in fs.items()
                           if not (k == "accessmode" and v == "passthrough")}
                          for fs in out.get("filesystems", ())]
    out["interfaces"] = [{k: v for k, v in nic.items()
                          if not (k == "host_dev" and _GENERATED_DEV.match(str(v)))}
                         for nic in out.get("interfaces", ())]
    return _drop_empty(out)


def strip_network_defaults(live: dict[str, Any]) -> dict[str, Any]:
    out = dict(live)
    bridge = dict(out.get("bridge") or {})
    if bridge.get("stp") is True and bridge.get("delay") == 0:
        bridge.pop("stp")
        bridge.pop("delay")
    out["bridge"] = bridge
    return _drop_empty(out)
