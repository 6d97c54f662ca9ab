"""Our Network kind as LXD managed bridge networks, both ways, and their per-member parts.

    ips[].address            ipv4.address / ipv6.address (a family the spec leaves out: none)
    ips[].dhcp_ranges        ipv4.dhcp + ipv4.dhcp.ranges (no range: no DHCP)
    forward.mode nat|route   ipv4.nat / ipv4.routing (and ipv6.*); no forward: neither
    mtu, mac, domain         bridge.mtu, bridge.hwaddr, dns.domain
    description              the network's description

LXD serves DHCP on a bridge's whole subnet unless told otherwise; a network with DHCP on and
no ranges reads back as the range LXD hands out (the subnet less its first two addresses and
its broadcast), so an imported network plans no change.

In a cluster a network is made in two parts: one pending definition per member (which would
carry member-specific keys; the model has none for bridges), then the network itself, which
LXD then sets up on every member. A create that stopped between the parts is finished by the
next one: members that already hold their part are skipped, and a network still pending is
not listed by observe.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from reconciler.drivers.base import Stamp
from reconciler.drivers.lxd import stamp as stamps
from reconciler.drivers.lxd.client import Client, NotFound, path_of
from reconciler.drivers.lxd.parse import refused
from reconciler.drivers.lxd.values import flag, is_false, is_true
from reconciler.model import Network, canonical

FAMILIES = ("ipv4", "ipv6")
# config keys the mapping owns (a key not listed here is kept as it is)
_SIMPLE = {"mtu": "bridge.mtu", "mac": "bridge.hwaddr", "domain": "dns.domain"}


@dataclass(frozen=True)
class NetReading:
    spec: dict[str, Any] | None
    stamp: Stamp | None
    error: str | None = None
    pending: bool = False       # defined on some members, not yet created


def read_network(net: Mapping[str, Any]) -> NetReading:
    config: dict[str, Any] = dict(net.get("config") or {})
    stamp = stamps.read(config)
    last: dict[str, Any] = dict(stamp.spec) if stamp is not None else {}
    name = str(net.get("name", ""))
    status = str(net.get("status", ""))
    spec: dict[str, Any] = {"name": name, "state": "running" if status == "Created" else
                            "stopped", "autostart": True}
    if net.get("description"):
        spec["description"] = net["description"]
    ips = []
    forward = None
    for family in FAMILIES:
        address = str(config.get(f"{family}.address") or "")
        if not address or address in ("none", "auto"):
            continue
        ip: dict[str, Any] = {"address": address}
        if family == "ipv4" and not is_false(config.get("ipv4.dhcp")):
            ip["dhcp_ranges"] = _ranges(config.get("ipv4.dhcp.ranges"), address)
        ips.append(ip)
        if is_true(config.get(f"{family}.nat")):
            forward = {"mode": "nat"}
        elif forward is None and not is_false(config.get(f"{family}.routing")):
            forward = {"mode": "route"}
    if ips:
        spec["ips"] = ips
    if forward is not None:
        spec["forward"] = forward
    for field, key in _SIMPLE.items():
        value = config.get(key)
        if value:
            spec[field] = int(value) if field == "mtu" and str(value).isdigit() else value
    if (last.get("bridge") or {}).get("name"):
        spec["bridge"] = {"name": name}
    try:
        canon = canonical(Network.model_validate(spec))
    except (ValidationError, ValueError) as exc:
        return NetReading(None, stamp, refused(exc))
    canon.pop("kind", None)
    return NetReading(canon, stamp, pending=status == "Pending")


def _ranges(text: Any, address: str) -> list[dict[str, str]]:
    if text:
        out = []
        for part in str(text).split(","):
            start, _, end = part.strip().partition("-")
            out.append({"start": start.strip(), "end": end.strip() or start.strip()})
        return out
    net = ipaddress.ip_interface(address).network
    if net.num_addresses < 4:
        return []
    return [{"start": str(net.network_address + 2), "end": str(net.broadcast_address - 1)}]


def network_config(spec: Mapping[str, Any], fields: Iterable[str],
                   existing: Mapping[str, Any], stamp: Stamp) -> dict[str, str]:
    """A network's config for `spec`, continuing `existing` (keys we do not map are kept)."""
    config = {k: str(v) for k, v in existing.items()}
    fields = set(fields)
    if "ips" in fields or "forward" in fields:
        forward = spec.get("forward")  # canonical: {} is the default mode, nat
        mode = None if forward is None else forward.get("mode", "nat")
        by_family = {("ipv6" if ":" in str(ip["address"]) else "ipv4"): ip
                     for ip in spec.get("ips", ())}
        for family in FAMILIES:
            ip = by_family.get(family)
            config[f"{family}.address"] = _address(ip) if ip else "none"
            for key in ("nat", "routing", "dhcp", "dhcp.ranges"):
                config.pop(f"{family}.{key}", None)
            if ip is None:
                continue
            config[f"{family}.nat"] = flag(mode == "nat")
            config[f"{family}.routing"] = flag(mode in ("nat", "route"))
            ranges = ip.get("dhcp_ranges") or ()
            config[f"{family}.dhcp"] = flag(bool(ranges))
            if ranges:
                config[f"{family}.dhcp.ranges"] = ",".join(f"{r['start']}-{r['end']}"
                                                           for r in ranges)
    for field, key in _SIMPLE.items():
        if field in fields:
            value = spec.get(field)
            if value is None:
                config.pop(key, None)
            else:
                config[key] = str(value)
    stamps.write(config, stamp)
    return config


def _address(ip: Mapping[str, Any]) -> str:
    address = str(ip["address"])
    if "/" not in address and ip.get("netmask"):
        prefix = ipaddress.ip_network(f"0.0.0.0/{ip['netmask']}").prefixlen
        address = f"{address}/{prefix}"
    return address


def create(client: Client, name: str, body: dict[str, Any], members: Iterable[str]) -> None:
    """Create a network: in a cluster, its pending part on each member first."""
    for member in members:
        try:
            part = client.get(path_of("networks", name), target=member) or {}
        except NotFound:
            part = {}
        if part.get("status") in ("Pending", "Created"):
            continue  # this member's part exists (an earlier create stopped after it)
        client.call("POST", "/1.0/networks", {"name": name, "type": "bridge", "config": {}},
                    query={"target": member})
    client.call("POST", "/1.0/networks", body)
