"""OpenVZ (vzctl): reference native-formats §1.7.

`vzctl set --save` pushes nearly every setting into a running container: beancounters, vswap
memory, CPU, disk quota limits, addresses, hostname, DNS, veth NICs; bind mounts that keep the
root come with it. A restart is needed for second-level quota on/off (quotaugidlimit). The
CTID, the OS template (the root) and the type mean a new container.
"""

from __future__ import annotations

from typing import Any

from reconciler.rules.base import Refusal, Technology

_NIC_TYPES = ("routed", "bridge", "hostdev")
_NOT_OPENVZ = ("idmap", "scheduler", "init", "current_memory", "os", "xml", "devices_xml")


def _check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = [Refusal(key, "not an OpenVZ setting") for key in _NOT_OPENVZ if spec.get(key)]
    for i, nic in enumerate(spec.get("interfaces", ())):
        if nic.get("type") not in _NIC_TYPES:
            out.append(Refusal(f"interfaces.{i}.type", f"type {nic.get('type')} is not an OpenVZ "
                               "NIC; use routed (venet), bridge (veth) or hostdev"))
    return out


OPENVZ = Technology(
    name="openvz", types=frozenset({"openvz"}),
    live=frozenset({"memory", "memtune.*", "cpu.*", "limits", "quota.space", "quota.inodes",
                    "quota.time", "interfaces", "hostname", "dns.*", "autostart",
                    "start_order"}),
    recreate=frozenset({"id", "filesystems", "type", "uuid"}),
    mounts="live", check=_check, first_id=101)
