"""The model's interfaces <-> LXC's `lxc.net.N.*` keys, both ways. Pure: no files, no processes.

As libvirt's `lxc-tools` converter reads them: veth with a link is a bridge NIC, veth without
one (or in router mode) a routed one, macvlan a `direct` NIC (its mode: private, vepa, bridge,
passthru, which the model spells `passthrough`), phys a moved host NIC (`hostdev`). Beyond the
converter, which makes a vlan a hostdev of an existing `PARENT.ID` device, `vlan` is the
model's vlan NIC (LXC makes the device itself), `empty` a network namespace with loopback only
and `none` the host's network namespace. An `empty` entry beside other NICs adds nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from reconciler.drivers.lxc.config import Line, LxcConfig, format_line
from reconciler.drivers.lxc.provenance import NORMALISED, Provenance
from reconciler.drivers.text import words
from reconciler.rules.lxc import NIC_TYPES, family, gateways

FIELD = "interfaces"
_ADDRESSING = frozenset({"flags", "ipv4.address", "ipv6.address", "ipv4.gateway",
                         "ipv6.gateway"})
_DEVICE = frozenset({"type", "link", "name", "hwaddr", "mtu"})
# the lxc.net.N.<sub> keys the model says, per LXC type; the others (script.up, l2proxy, veth
# routes...) stay as they are while the NIC keeps its type. A moved host NIC (phys) keeps its
# own name, MAC and MTU in the model, so those stay as lines too.
MODELLED: dict[str, frozenset[str]] = {
    "veth": _DEVICE | _ADDRESSING | {"veth.pair", "veth.mode"},
    "macvlan": _DEVICE | _ADDRESSING | {"macvlan.mode"},
    "vlan": _DEVICE | _ADDRESSING | {"vlan.id"},
    "phys": _ADDRESSING | {"type", "link"},
    "empty": frozenset({"type"}),
    "none": frozenset({"type"}),
}
# the model says `passthrough` (libvirt's word), LXC `passthru`
_MACVLAN_MODE = {"passthrough": "passthru"}
_KEY = re.compile(r"lxc\.net\.([0-9]+)\.(.+)\Z")


def indexes(cfg: LxcConfig) -> list[int]:
    found = set()
    for key in cfg.key_names():
        match = _KEY.match(key)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


# ---------------------------------------------------------------------------- reading


def read(cfg: LxcConfig, marks: Provenance) -> list[dict[str, Any]]:
    found = [(index, _read_one(cfg, index)) for index in indexes(cfg)]
    out = []
    for index, (nic, used) in found:
        p = f"lxc.net.{index}."
        if nic is None:
            marks.explain(p + "type", f"no spec interface for an LXC {cfg.get(p + 'type')} NIC "
                          "(or it lacks its link or VLAN id)")
            continue
        # an empty entry beside real NICs is LXC's no-op: the spec leaves it out
        field = NORMALISED if nic["type"] == "empty" and len(found) > 1 else FIELD
        for sub in used:
            marks.mark(field, p + sub)
        if nic["type"] == "hostdev":
            for sub in ("name", "hwaddr", "mtu"):
                marks.explain(p + sub, "a moved host NIC (phys) keeps its own name, MAC and "
                              "MTU in the spec")
        if field == FIELD:
            out.append(nic)
    return out


def _read_one(cfg: LxcConfig, index: int) -> tuple[dict[str, Any] | None, set[str]]:
    """One NIC and the subkeys it was read from (None: not a NIC the model has)."""
    p = f"lxc.net.{index}."
    used: set[str] = set()

    def take(sub: str, accept: Callable[[str], bool] = bool) -> str | None:
        value = cfg.get(p + sub)
        if value is None or not accept(value):
            return None
        used.add(sub)
        return value

    ltype = take("type")
    nic = _kind(ltype, take)
    if nic is None:
        return None, used
    if ltype in ("veth", "macvlan", "vlan"):
        _device_fields(nic, ltype, take)
    if ltype not in ("empty", "none"):
        _addressing(cfg, p, nic, used, take)
    return nic, used


def _kind(ltype: str | None, take: Callable[..., str | None]) -> dict[str, Any] | None:
    if ltype == "veth":
        router = take("veth.mode", lambda v: v in ("router", "bridge")) == "router"
        link = take("link") if not router else None
        return {"type": "bridge", "source": link} if link else {"type": "routed"}
    if ltype in ("empty", "none"):
        return {"type": ltype}
    link = take("link")
    if not link:
        return None
    if ltype == "macvlan":
        mode = take("macvlan.mode", lambda v: v in ("private", "vepa", "bridge", "passthru"))
        return {"type": "direct", "source": link, **({"mode": mode} if mode else {})}
    if ltype == "vlan":
        vlan = take("vlan.id", lambda v: v.strip().isdigit())
        return {"type": "vlan", "source": link, "vlan": int(vlan)} if vlan else None
    if ltype == "phys":
        return {"type": "hostdev", "source": link}
    return None  # ipvlan, or a type LXC does not have


def _device_fields(nic: dict[str, Any], ltype: str, take: Callable[..., str | None]) -> None:
    if ltype == "veth" and (pair := take("veth.pair")):
        nic["host_dev"] = pair
    if name := take("name"):
        nic["guest_dev"] = name
    # a MAC with x's is one LXC draws at random: as good as none
    if mac := take("hwaddr", lambda v: "x" not in v.lower()):
        nic["mac"] = mac.lower()
    if mtu := take("mtu", lambda v: v.strip().isdigit()):
        nic["mtu"] = int(mtu)
    if "up" not in words(take("flags", lambda v: "up" in words(v)) or ""):
        nic["link"] = "down"


def _addressing(cfg: LxcConfig, p: str, nic: dict[str, Any], used: set[str],
                take: Callable[..., str | None]) -> None:
    ips = []
    for fam in ("ipv4", "ipv6"):
        values = [words(a)[0] for a in cfg.get_all(f"{p}{fam}.address") if words(a)]
        if values:
            used.add(f"{fam}.address")
            ips += values
    if ips:
        nic["ip"] = ips
    gw4 = take("ipv4.gateway", _is_address)
    gw6 = take("ipv6.gateway", _is_address)
    if gw4 or gw6:
        nic["gateway"] = gw4 or gw6
    if gw4 and gw6:
        nic["routes"] = [{"address": "::", "prefix": 0, "gateway": gw6}]
    if nic["type"] == "hostdev":
        take("flags", lambda v: "up" in words(v))  # LXC brings a moved NIC up: the default


def _is_address(value: str) -> bool:
    """A gateway the model can say (not `auto` or `dev`, which LXC works out at start)."""
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- writing


def _ip_value(ip: str) -> str:
    """`a.b.c.d/m` gets its broadcast address: without it LXC sets brd 0.0.0.255."""
    if ":" in ip or "/" not in ip:
        return ip
    try:
        net = ipaddress.ip_interface(ip).network
    except ValueError:
        return ip
    if net.prefixlen >= 31:
        return ip
    return f"{ip} {net.broadcast_address}"


def pairs(index: int, nic: dict[str, Any]) -> list[tuple[str, str]]:
    """The config lines of one model NIC."""
    p = f"lxc.net.{index}."
    kind = nic["type"]
    out = [(p + "type", NIC_TYPES[kind])]
    if kind in ("empty", "none"):
        return out
    if kind in ("bridge", "direct", "vlan", "hostdev"):
        out.append((p + "link", nic["source"]))
    if kind == "routed":
        out.append((p + "veth.mode", "router"))
    if kind == "direct" and nic.get("mode"):
        out.append((p + "macvlan.mode", _MACVLAN_MODE.get(nic["mode"], nic["mode"])))
    if kind == "vlan":
        out.append((p + "vlan.id", str(nic["vlan"])))
    if nic.get("link", "up") == "up":
        out.append((p + "flags", "up"))
    if nic.get("guest_dev"):
        out.append((p + "name", nic["guest_dev"]))
    if nic.get("host_dev"):
        out.append((p + "veth.pair", nic["host_dev"]))
    if nic.get("mac"):
        out.append((p + "hwaddr", nic["mac"]))
    if nic.get("mtu"):
        out.append((p + "mtu", str(nic["mtu"])))
    for ip in nic.get("ip", ()):
        text = ip if isinstance(ip, str) else f"{ip['address']}/{ip['prefix']}"
        out.append((p + f"{family(text)}.address", _ip_value(text)))
    for fam, gateway in sorted((gateways(nic) or {}).items()):
        out.append((p + f"{fam}.gateway", gateway))
    return out


def write(cfg: LxcConfig, nics: list[dict[str, Any]]) -> None:
    """The `lxc.net.*` block for `nics`, where the first NIC line was. A NIC that keeps its
    LXC type keeps its unmodelled lines as they were written; an unchanged block is left
    alone."""
    old_types = {i: cfg.get(f"lxc.net.{i}.type") for i in indexes(cfg)}
    kept: dict[int, list[Line]] = {}
    for line in cfg.lines:
        match = _KEY.match(line.key or "")
        if match is None or line.value is None:
            continue
        index = int(match.group(1))
        if match.group(2) not in MODELLED.get(old_types.get(index) or "", MODELLED["veth"]):
            kept.setdefault(index, []).append(line)
    new: list[Line] = []
    for i, nic in enumerate(nics):
        new += [format_line(k, v) for k, v in pairs(i, nic)]
        if old_types.get(i) == NIC_TYPES.get(nic["type"]):
            new += kept.get(i, [])
    current = [line for line in cfg.lines if line.key is not None and
               line.key.startswith("lxc.net.")]
    if [(line.key, line.value) for line in current] == [(line.key, line.value) for line in new]:
        return
    at = cfg.remove_where(lambda k: k.startswith("lxc.net."))
    cfg.insert_lines(at, new)
