"""`naddress` and `ip` (the part util-vserver uses) against the simulated kernel (§2.6, §2.3).

    naddress [--silent] (--add|--remove|--set) --nid N [--ip A[/M]]... [--range A-B[/M]]...
    ip addr add ADDR[/P] [broadcast B] [label L] dev DEV [peer P]
    ip addr del ADDR[/P] dev DEV
    ip link set DEV up|down

naddress changes the `ips` of the running context whose network context is N (its `nid`); the
simulator has no current network context, so --nid is required. An address that naddress
cannot parse: "Invalid IP number 'X'" (or "Invalid range"), exit 255; no such network context:
exit 255. `add_to_context` is the same change for the start chain (VSERVER_EXTRA_CMDS).

ip changes the host's addresses (state["addresses"], entries as the start makes them, with no
owner: the stop script removes the addresses its tree lists, see lifecycle.py): a device the
host lacks fails with exit 1, an address already there (add) or missing (del) with exit 2.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

from . import options, state
from .paths import Layout
from .state import Context
from .toolrun import ToolExit, out, run_tool


def _address(text: str) -> str:
    """One address, A or A/M (M a prefix or a dotted mask), canonical; ToolExit if invalid."""
    try:
        return str(ipaddress.ip_interface(text)) if "/" in text else \
            str(ipaddress.ip_address(text))
    except ValueError:
        raise ToolExit(255, f"Invalid IP number '{text}'") from None


def _range(text: str) -> str:
    span, slash, mask = text.partition("/")
    start, dash, end = span.partition("-")
    try:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
        if not dash or first.version != last.version or int(first) > int(last):
            raise ValueError(text)
        if slash:
            ipaddress.ip_interface(f"{first}/{mask}")
    except ValueError:
        raise ToolExit(255, f"Invalid range '{text}'") from None
    return f"{first}-{last}" + (f"/{mask}" if slash else "")


def parse_entries(pairs: list[tuple[str, str]]) -> list[str]:
    """The --ip and --range values, canonical, as the context's `ips` hold them."""
    found = []
    for opt, value in pairs:
        if opt == "--ip":
            found.append(_address(value))
        elif opt == "--range":
            found.append(_range(value))
    return found


def add_to_context(ctx: Context, op: str, entries: list[str]) -> None:
    ips: list[str] = [_canon(e) for e in ctx.get("ips", [])]
    if op == "--set":
        ips = []
    for entry in entries:
        if op == "--remove":
            ips = [e for e in ips if e != entry]
        elif entry not in ips:
            ips.append(entry)
    ctx["ips"] = ips


def _canon(entry: str) -> str:
    try:
        return _range(entry) if "-" in entry else _address(entry)
    except ToolExit:
        return entry


def _naddress(layout: Layout, argv: list[str]) -> int:
    long = ["help", "version", "silent", "add", "remove", "set", "nid=", "ip=", "mask=",
            "range=", "bcast=", "lback="]
    try:
        parsed, rest = options.parse("naddress", argv, "", long)
    except options.OptionError as exc:
        raise ToolExit(255, str(exc)) from None
    if rest:
        raise ToolExit(1, "vssim: running a program after naddress is not simulated")
    ops = [opt for opt, _ in parsed if opt in ("--add", "--remove", "--set")]
    if len(ops) != 1:
        raise ToolExit(255, "No operation specified; try '--help' for more information" if not ops
                       else "Multiple operations specified; try '--help' for more information")
    nids = [value for opt, value in parsed if opt == "--nid"]
    if not nids or not nids[-1].isdigit():
        raise ToolExit(255, "naddress: --nid N is needed (the simulator has no current network "
                            "context)")
    entries = parse_entries(parsed)
    silent = any(opt == "--silent" for opt, _ in parsed)
    with state.transaction(layout) as st:
        ctx = next((c for c in st["contexts"].values() if int(c["nid"]) == int(nids[-1])), None)
        if ctx is None:
            raise ToolExit(255, f"naddress: vc_net_add(): No such process (nid {nids[-1]})")
        add_to_context(ctx, ops[0], entries)
    if not silent:
        out(("Removing" if ops[0] == "--remove" else "Adding") + "".join(f" {e}"
                                                                         for e in entries))
    return 0


# ---------------------------------------------------------------------------- ip

def _ip_addr(layout: Layout, action: str, args: list[str]) -> int:
    if not args:
        raise ToolExit(1, "Command line is not complete. Try option \"help\"")
    entry: dict[str, Any] = {"address": args[0]}
    rest = args[1:]
    while rest:
        if len(rest) < 2 or rest[0] not in ("broadcast", "label", "dev", "peer"):
            raise ToolExit(1, f"Error: either \"local\" is duplicate, or \"{rest[0]}\" is a "
                              "garbage.")
        entry[rest[0]] = rest[1]
        rest = rest[2:]
    if "dev" not in entry:
        raise ToolExit(1, "Not enough information: \"dev\" argument is required.")
    with state.transaction(layout) as st:
        if entry["dev"] not in st["devices"]:
            raise ToolExit(1, f"Cannot find device \"{entry['dev']}\"")
        same = [a for a in st["addresses"]
                if a["dev"] == entry["dev"] and a["address"] == entry["address"]]
        if action == "add":
            if same:
                raise ToolExit(2, "RTNETLINK answers: File exists")
            record = {"dev": entry["dev"], "address": entry["address"], "up": True,
                      "owner": None}
            if "broadcast" in entry:
                record["broadcast"] = entry["broadcast"]
            if "label" in entry:
                record["label"] = entry["label"]
            if "peer" in entry:
                record["peer"] = entry["peer"]
            st["addresses"].append(record)
        else:
            if not same:
                raise ToolExit(2, "RTNETLINK answers: Cannot assign requested address")
            st["addresses"] = [a for a in st["addresses"] if a not in same]
    return 0


def _ip(layout: Layout, argv: list[str]) -> int:
    if argv[:2] in (["addr", "add"], ["addr", "del"], ["address", "add"], ["address", "del"]):
        return _ip_addr(layout, argv[1], argv[2:])
    if argv[:2] == ["link", "set"] and len(argv) == 4 and argv[3] in ("up", "down"):
        with state.transaction(layout) as st:
            if argv[2] not in st["devices"]:
                raise ToolExit(1, f"Cannot find device \"{argv[2]}\"")
        return 0
    raise ToolExit(1, f"vssim: 'ip {' '.join(argv[:2])}' is not simulated (only addr add|del "
                      "and link set)")


def naddress(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("naddress", args, _naddress, (None, None))


def ip(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("ip", args, _ip, (None, None))
