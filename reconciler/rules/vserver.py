"""Linux-VServer (util-vserver): reference native-formats §2.

util-vserver reads the configuration tree at start; what the kernel lets it change on a running
guest is pushed by vsched (the token buckets), vuname (the uts names) and naddress (addresses).
The context id, the root's build and the type mean a new guest.
"""

from __future__ import annotations

from typing import Any

from reconciler.rules.base import Refusal, Technology

_NOT_VSERVER = ("idmap", "uuid", "os", "xml", "devices_xml", "current_memory")


def _check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = [Refusal(key, "not a Linux-VServer setting") for key in _NOT_VSERVER if spec.get(key)]
    for i, nic in enumerate(spec.get("interfaces", ())):
        if nic.get("type") != "routed":
            out.append(Refusal(f"interfaces.{i}.type", f"type {nic.get('type')}: a VServer "
                               "guest has IP isolation only (routed addresses of the host)"))
    return out


VSERVER = Technology(
    name="vserver", types=frozenset({"vserver"}),
    live=frozenset({"scheduler.*", "hostname", "autostart", "start_order", "interfaces"}),
    recreate=frozenset({"id", "filesystems", "type"}),
    mounts="restart", check=_check, first_id=2)
