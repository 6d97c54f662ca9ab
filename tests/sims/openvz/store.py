"""What `set --save` (and create) writes: the final value of each key given on the command
line, merged with the old file where the tool merges, in each version's order (reference §1.2
"keys written", §1.3).

Legacy merges IP_ADDRESS, NETDEV, NETIF, CAPABILITY and FEATURES with the CT's file and replaces
NAMESERVER/SEARCHDOMAIN; it writes UBCs first (store_ub order) and then its config[] order. O7
writes its config_param_map order, writes only the given FEATURES, and deletes CPULIMIT_MHZ when
CPULIMIT is set (and the reverse) and CPUS for `--cpus 0`.
"""

from __future__ import annotations

from typing import Any

from . import values
from .config import Conf
from .ct import Ct
from .keys import LEGACY_STORE_ORDER, LEGACY_UBC_STORE_ORDER, O7_STORE_ORDER, key_spec
from .setopts import SetRequest


def merge_ips(old: list[str], req: SetRequest) -> list[str]:
    """Old list minus deleted and re-added addresses (compared without mask), plus added."""
    if req.ip_delall:
        base: list[str] = []
    else:
        gone = {values.ip_base(x) for x in req.ip_del + req.ip_add}
        base = [x for x in old if values.ip_base(x) not in gone]
    return base + req.ip_add


def merge_netdev(old: list[str], req: SetRequest) -> list[str]:
    base = [d for d in old if d not in req.netdev_del]
    return base + [d for d in req.netdev_add if d not in base]


def final_values(ct: Ct, req: SetRequest, old: Conf) -> dict[str, Any]:
    """The typed value of every key this request sets, merged with `old` where the tool does."""
    result = dict(req.values)
    legacy = ct.sim.legacy
    if req.touches_ip():
        result["IP_ADDRESS"] = merge_ips(old.get("IP_ADDRESS") or [], req)
    if req.netdev_add or req.netdev_del:
        result["NETDEV"] = merge_netdev(old.get("NETDEV") or [], req)
    if req.touches_netif():
        result["NETIF"] = values.merge_veth(old.get("NETIF") or [], req.veth_add,
                                            req.veth_del, req.veth_delall)
    elif req.veth_cfg is not None:
        result["NETIF"] = values.merge_veth(old.get("NETIF") or [], [req.veth_cfg], [], False)
    if req.caps is not None:
        result["CAPABILITY"] = req.caps
    if req.features is not None:
        # legacy merges with the file's features; O7 writes only the ones given
        result["FEATURES"] = (values.merge_features(req.features, old.get("FEATURES"))
                              if legacy else req.features)
    return result


def legacy_updates(ct: Ct, req: SetRequest, old: Conf) -> list[tuple[str, str]]:
    """Legacy store(): `KEY -> value` lines in the tool's order."""
    final = final_values(ct, req, old)
    items: list[tuple[str, str]] = []
    for key in LEGACY_UBC_STORE_ORDER:
        if key in final:
            items.append((key, values.render("ubc", key, final[key], legacy=True)))
    for key in LEGACY_STORE_ORDER:
        if key not in final:
            continue
        value = final[key]
        if key == "VM_OVERCOMMIT" and not value:
            continue
        if key == "CAPABILITY":
            items.append((key, values.render_caps(value, old.get("CAPABILITY"))))
            continue
        spec = key_spec(key, legacy=True, v3=ct.sim.v3)
        kind = spec.kind if spec else "str"
        if key in ("NAMESERVER", "SEARCHDOMAIN") and not value:
            continue
        items.append((key, values.render(kind, key, value, legacy=True)))
    return items


def o7_updates(ct: Ct, req: SetRequest, old: Conf) -> list[tuple[str, str | None]]:
    """O7 merge_env_param(): the given parameters in config_param_map order (None deletes)."""
    final = final_values(ct, req, old)
    items: list[tuple[str, str | None]] = []
    for key in O7_STORE_ORDER:
        if key == "CPULIMIT_MHZ":
            continue
        if key not in final:
            continue
        value = final[key]
        if key == "CPULIMIT":
            unit, amount = value
            if unit == "mhz":
                items += [("CPULIMIT_MHZ", str(amount)), ("CPULIMIT", None)]
            else:
                items += [("CPULIMIT", str(amount)), ("CPULIMIT_MHZ", None)]
            continue
        if key == "CPUS" and value == 0:
            items.append(("CPUS", None))
            continue
        if key == "CPUMASK" and value == "all":
            items.append((key, ""))
            continue
        spec = key_spec(key, legacy=False)
        kind = spec.kind if spec else "str"
        items.append((key, values.render(kind, key, value, legacy=False)))
    return items  # QUOTATIME is not in the list: O7 accepts --quotatime and ignores it
