"""Typed values of config keys: parsing one value (from a file line or an option) and writing it.

Each key has a *kind* (see keys.py). `parse(kind, name, text, ctx)` returns the typed value or
raises `Invalid`; `render(kind, name, value, legacy)` gives the string `--save` writes between
the quotes. Version differences follow reference §1.3 (suffixes, `unlimited`, write-back forms,
NETIF grammar, CPULIMIT `%`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

from . import units
from .keys import ubc_divisor


class Invalid(Exception):
    """The value does not parse. `partial` holds what was taken before the bad token."""

    def __init__(self, partial: Any = None, message: str | None = None) -> None:
        super().__init__(message)
        self.partial = partial
        self.message = message


@dataclass(frozen=True)
class Ctx:
    ctid: str
    legacy: bool
    v3: bool = False
    ncpus: int = 4


# ---------------------------------------------------------------- tables

CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "VE_ADMIN", "SETFCAP", "FS_MASK",
)
FEATURE_NAMES = ("sysfs", "nfs", "sit", "ipip", "ppp", "ipgre", "bridge", "nfsd")
NETFILTER_NAMES = ("disabled", "stateless", "stateful", "full")
NETDEV_FORBIDDEN = ("venet", "tun", "tap", "lo")
IFNAMSIZE = 16
CPUMASK_BITS = 4096
NODEMASK_BITS = 1024
MIN_CPUUNITS, MAX_CPUUNITS = 8, 500000
SW_OUI = (0x00, 0x18, 0x51)
_NAME_RE = re.compile(r"[A-Za-z0-9 \-+_.]*")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


# ---------------------------------------------------------------- small values

@dataclass(frozen=True)
class Caps:
    on: frozenset[str] = frozenset()
    off: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Features:
    on: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()


@dataclass
class Veth:
    """One veth record of NETIF. Legacy fields plus O7's extra `key=value` items."""

    ifname: str
    mac: str = ""
    host_ifname: str = ""
    host_mac: str = ""
    bridge: str = ""
    mac_filter: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def generate_mac(ctid: str, dev: str) -> str:
    """A stable MAC in the SWsoft OUI, derived from the CT and device name."""
    digest = hashlib.sha256(f"{dev}:{ctid}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (*SW_OUI, *digest[:3]))


def default_host_ifname(ctid: str, ifname: str) -> str:
    """`veth<CTID>.<N>`, N being the first number after a non-digit prefix of `ifname`."""
    m = re.match(r"[^0-9]+([0-9]+)", ifname)
    return f"veth{ctid}.{int(m.group(1)) if m else 0}"


def parse_mac(text: str) -> str:
    if not _MAC_RE.fullmatch(text):
        raise Invalid()
    return text.upper()


def parse_yesno(text: str) -> bool:
    if text == "yes":
        return True
    if text == "no":
        return False
    raise Invalid()


def render_yesno(value: bool) -> str:
    return "yes" if value else "no"


def parse_bitmap(text: str, nbits: int) -> str:
    """A CPU/node list such as `0-2,7` normalised to ranges, or `all`."""
    if text == "all":
        return "all"
    bits: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise Invalid()
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo or hi >= nbits:
            raise Invalid()
        bits.update(range(lo, hi + 1))
    if len(bits) == nbits:
        return "all"
    out: list[str] = []
    ordered = sorted(bits)
    start = prev = ordered[0]
    for b in [*ordered[1:], -2]:
        if b == prev + 1:
            prev = b
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = b
    return ",".join(out)


def canon_ip(token: str) -> str:
    """Legacy canon_ip(): inet_pton/inet_ntop round trip, mask range-checked."""
    addr, _, mask = token.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise Invalid() from None
    if "/" in token:
        if not mask.isdigit() or int(mask) > (32 if ip.version == 4 else 128):
            raise Invalid()
        return f"{ip.compressed}/{int(mask)}"
    return ip.compressed


def parse_ip_list(text: str, legacy: bool) -> list[str]:
    """IP_ADDRESS / --ipadd tokens; 0.0.0.0, :: and ::0 are skipped silently."""
    out: list[str] = []
    for token in text.split():
        if token in ("0.0.0.0", "::", "::0"):
            continue
        if legacy:
            try:
                token = canon_ip(token)
            except Invalid:
                raise Invalid(out) from None
        else:
            try:
                ipaddress.ip_interface(token)
            except ValueError:
                raise Invalid(out) from None
        if ip_base(token) not in (ip_base(x) for x in out):
            out.append(token)
    return out


def ip_base(token: str) -> str:
    """The address part, used to compare IPs regardless of mask (legacy find_ip)."""
    return token.partition("/")[0]


def parse_strlist(text: str) -> list[str]:
    out: list[str] = []
    for token in text.split():
        if token not in out:
            out.append(token)
    return out


def parse_netdev(text: str) -> list[str]:
    out: list[str] = []
    for token in text.split():
        if token.startswith(NETDEV_FORBIDDEN):
            raise Invalid()
        out.append(token)
    return out


def parse_caps(text: str, base: Caps | None = None) -> Caps:
    on, off = set(base.on if base else ()), set(base.off if base else ())
    for token in re.split(r"[\t ,]+", text.strip()):
        if not token:
            continue
        name, sep, mode = token.rpartition(":")
        if not sep or mode not in ("on", "off"):
            raise Invalid(message=f"Can't parse capability {token} (expecting capname:on|off)")
        if name.upper() not in CAP_NAMES:
            raise Invalid(message=f"Capability {name} is unknown")
        (on if mode == "on" else off).add(name.upper())
    return Caps(frozenset(on), frozenset(off))


def render_caps(new: Caps, old: Caps | None, sep: str = " ") -> str:
    """Legacy build_cap_str(): the command-line caps over the file's, in table order."""
    items = []
    for name in CAP_NAMES:
        if name in new.on:
            items.append(f"{name}:on")
        elif name in new.off:
            items.append(f"{name}:off")
        elif old is not None and name in old.on:
            items.append(f"{name}:on")
        elif old is not None and name in old.off:
            items.append(f"{name}:off")
    return sep.join(items)


def parse_features(text: str, base: Features | None = None) -> Features:
    on, known = set(base.on if base else ()), set(base.known if base else ())
    bad = False
    for token in re.split(r"[\t ,]+", text.strip()):
        if not token:
            continue
        name, sep, mode = token.partition(":")
        if not sep or name not in FEATURE_NAMES or mode not in ("on", "off"):
            bad = True  # unknown features are skipped with a warning, the rest still count
            continue
        known.add(name)
        if mode == "on":  # bits are OR-ed: "off" only marks the feature as known
            on.add(name)
    result = Features(frozenset(on), frozenset(known))
    if bad:
        raise Invalid(result)
    return result


def merge_features(new: Features, old: Features | None) -> Features:
    old = old or Features()
    on = (new.on & new.known) | (old.on - new.known)
    return Features(frozenset(on), old.known | new.known)


def render_features(value: Features, sep: str = " ") -> str:
    return sep.join(f"{n}:{'on' if n in value.on else 'off'}"
                    for n in FEATURE_NAMES if n in value.known)


# ---------------------------------------------------------------- NETIF

_LEGACY_NETIF_KEYS = ("ifname", "bridge", "mac", "host_ifname", "host_mac", "mac_filter")
_O7_NETIF_ORDER = ("mac", "host_mac", "host_ifname", "type", "network", "vport", "gw", "gw6",
                   "mac_filter", "ip_filter", "ifaceid", "configure", "dhcp", "ip", "dhcp6",
                   "ip6")


def fill_veth_defaults(dev: Veth, ctid: str) -> Veth:
    """Missing host name and MACs are generated; host_mac defaults to the CT-side MAC."""
    dev = replace(dev, extra=dict(dev.extra))
    if not dev.host_ifname:
        dev.host_ifname = default_host_ifname(ctid, dev.ifname)
    if not dev.mac:
        dev.mac = generate_mac(ctid, dev.host_ifname)
    if not dev.host_mac:
        dev.host_mac = dev.mac
    return dev


def parse_netif(text: str, ctx: Ctx) -> list[Veth]:
    """NETIF from a config file: `;`-separated records of `key=value` items."""
    devs: list[Veth] = []
    for record in (r for r in text.split(";") if r):
        items: dict[str, str] = {}
        dev = Veth(ifname="")
        for item in record.split(","):
            key, sep, val = item.partition("=")
            if not sep:
                continue
            if ctx.legacy:
                if key not in _LEGACY_NETIF_KEYS:
                    continue  # unknown keys (O7's) are ignored by legacy
                if key in ("ifname", "host_ifname", "bridge"):
                    if len(val) + 1 > IFNAMSIZE:
                        raise Invalid(devs)
                    if not getattr(dev, key):
                        setattr(dev, key, val)  # these keep their first value
                elif key in ("mac", "host_mac"):
                    try:
                        setattr(dev, key, parse_mac(val))  # these keep the last
                    except Invalid:
                        raise Invalid(devs) from None
                elif key == "mac_filter" and val:
                    if val not in ("on", "off"):
                        raise Invalid(devs)
                    dev.mac_filter = val
            else:
                items[key] = val
        if not ctx.legacy:
            dev = Veth(ifname=items.pop("ifname", ""), mac=items.pop("mac", "").upper(),
                       host_mac=items.pop("host_mac", "").upper(),
                       host_ifname=items.pop("host_ifname", ""),
                       mac_filter=items.pop("mac_filter", ""), extra=items)
        if not dev.ifname:
            raise Invalid(devs)
        if any(d.ifname == dev.ifname for d in devs):
            continue
        devs.append(fill_veth_defaults(dev, ctx.ctid))
    return devs


def parse_netif_add(text: str, ctx: Ctx) -> Veth:
    """`--netif_add ifname[,mac,host_ifname,host_mac[,bridge]]`; O7 has no bridge field.

    Fields may be empty. What is generated follows the legacy parser: with the CT name only,
    both MACs are generated; when the list stops after the CT MAC or the host name, the host
    MAC copies the CT MAC; an empty host MAC field is generated.
    """
    fields = text.split(",", 4) if ctx.legacy else text.split(",")
    if len(fields) > 4 and not ctx.legacy:
        raise Invalid()
    ifname = fields[0]
    if len(ifname) + 1 > IFNAMSIZE:
        raise Invalid()
    dev = Veth(ifname=ifname)
    n = len(fields)
    if n == 1:
        dev.host_ifname = default_host_ifname(ctx.ctid, ifname)
        dev.mac = generate_mac(ctx.ctid, ifname)
        dev.host_mac = generate_mac(ctx.ctid, dev.host_ifname)
        return dev
    if fields[1] and len(fields[1]) != 17:
        raise Invalid(message="Invalid container MAC address length")
    try:
        dev.mac = parse_mac(fields[1]) if fields[1] else generate_mac(ctx.ctid, ifname)
    except Invalid:
        raise Invalid(message="Invalid container MAC address format") from None
    if n == 2:
        dev.host_ifname = default_host_ifname(ctx.ctid, ifname)
        dev.host_mac = dev.mac
        return dev
    if fields[2]:
        if len(fields[2]) + 1 > IFNAMSIZE:
            raise Invalid()
        dev.host_ifname = fields[2]
        if n == 3:
            dev.host_mac = dev.mac
            return dev
    else:
        dev.host_ifname = default_host_ifname(ctx.ctid, ifname)
    host_mac = fields[3] if n > 3 else ""
    if host_mac:
        if len(host_mac) != 17:
            raise Invalid(message="Invalid host MAC address")
        try:
            dev.host_mac = parse_mac(host_mac)
        except Invalid:
            raise Invalid(message="Invalid host MAC address") from None
        if n == 4:
            return dev
    else:
        dev.host_mac = generate_mac(ctx.ctid, dev.host_ifname)
    bridge = fields[4] if n > 4 else ""
    if len(bridge) + 1 > IFNAMSIZE:
        raise Invalid()
    dev.bridge = bridge
    return dev


def merge_veth(old: list[Veth], add: list[Veth], delete: list[str],
               delete_all: bool) -> list[Veth]:
    """Old devices (minus deleted, updated by same-named additions), then new ones."""
    base = [] if delete_all else [d for d in old if d.ifname not in delete]
    merged: list[Veth] = []
    for dev in base:
        upd = next((a for a in add if a.ifname == dev.ifname), None)
        merged.append(dev if upd is None else overlay_veth(dev, upd))
    names = {d.ifname for d in base}
    merged += [a for a in add if a.ifname not in names]
    return merged


def overlay_veth(old: Veth, new: Veth) -> Veth:
    """Fields set in `new` win."""
    out = replace(old, extra={**old.extra, **new.extra})
    for attr in ("mac", "host_ifname", "host_mac", "bridge", "mac_filter"):
        if getattr(new, attr):
            setattr(out, attr, getattr(new, attr))
    return out


def render_netif(devs: list[Veth], legacy: bool) -> str:
    records = []
    for d in devs:
        if legacy:
            items = [f"ifname={d.ifname}"]
            items += [f"bridge={d.bridge}"] if d.bridge else []
            items += [f"mac={d.mac}"] if d.mac else []
            items += [f"host_ifname={d.host_ifname}"] if d.host_ifname else []
            items += [f"host_mac={d.host_mac}"] if d.host_mac else []
            items += [f"mac_filter={d.mac_filter}"] if d.mac_filter else []
        else:
            values = {**d.extra, "mac": d.mac, "host_mac": d.host_mac,
                      "host_ifname": d.host_ifname, "mac_filter": d.mac_filter}
            items = [f"ifname={d.ifname}"]
            items += [f"{k}={values[k]}" for k in _O7_NETIF_ORDER if values.get(k)]
            items += [f"{k}={v}" for k, v in d.extra.items() if k not in _O7_NETIF_ORDER]
        records.append(",".join(items))
    return ";".join(records)


# ---------------------------------------------------------------- per-kind parsing

def parse_cpulimit(text: str, ctx: Ctx) -> tuple[str, int]:
    """Returns ("pct"|"mhz", value). Legacy `N%` is percent of the host, times the CPU count."""
    m = re.fullmatch(r"\s*(\d+)(.*)", text)
    if m is None:
        raise Invalid()
    value, tail = int(m.group(1)), m.group(2)
    if ctx.legacy:
        if tail == "%":
            if value > 100:
                raise Invalid()
            return "pct", value * ctx.ncpus
        if tail:
            raise Invalid()
        return "pct", value
    if tail.lower() in ("m", "mhz"):
        return "mhz", value
    if tail in ("", "%"):
        return "pct", value
    raise Invalid()


class Truncated(Invalid):
    """Legacy ERR_LONG_TRUNC: the value was clamped to LONG_MAX (accepted in files)."""


def parse_ubc(name: str, text: str, ctx: Ctx) -> tuple[int, int]:
    parsed = units.parse_twoul(text, ubc_divisor(name), unlimited=True, legacy=ctx.legacy)
    if parsed is None:
        raise Invalid()
    if parsed[2] and ctx.legacy:
        raise Truncated((parsed[0], parsed[1]))
    return parsed[0], parsed[1]


def parse_ram(text: str, ctx: Ctx) -> tuple[int, int]:
    """`--ram`/`--swap`: legacy sets `0:X` in pages rounded up; O7 takes `A[:B]` in bytes,
    rounded down to pages, with B defaulting to A (reference §1.3)."""
    if ctx.legacy:
        pages = units.parse_legacy_vswap(text)
        if pages is None:
            raise Invalid()
        return 0, pages
    parsed = units.parse_twoul(text, units.PAGE_SIZE, unlimited=True, legacy=False,
                               def_divisor=units.PAGE_SIZE)
    if parsed is None:
        raise Invalid()
    return parsed[0], parsed[1]


def parse_disk(name: str, text: str, ctx: Ctx) -> tuple[int, int]:
    """DISKSPACE (KiB; K/M/G/T converted) / DISKINODES, per version (reference §1.3)."""
    # DISKSPACE is in KiB; suffixes on DISKINODES exist only from vzctl 4.7
    divisor = 1024 if name == "DISKSPACE" else (0 if ctx.v3 else 1)
    unlimited = not ctx.legacy or ctx.v3  # rejected by legacy from 4.4 on
    parsed = units.parse_twoul(text, divisor, unlimited=unlimited, legacy=ctx.legacy)
    if parsed is None:
        raise Invalid()
    return parsed[0], parsed[1]


def parse_iolimit(text: str, default_mul: int) -> int:
    if text == "unlimited":
        return 0
    parsed = units.strtoull(text)
    if parsed is None:
        raise Invalid()
    value, tail = parsed
    if tail:
        mul = units.suffix_multiplier(tail[0], True)
        if mul is None or len(tail) != 1:
            raise Invalid()
        value *= mul
    else:
        value *= default_mul
    return min(value, units.INT_MAX)


def parse(kind: str, name: str, text: str, ctx: Ctx) -> Any:
    """Parse one value of `kind`; raise Invalid when the tool would reject it."""
    if kind in ("str", "raw", "raw_acc"):
        return text
    if kind == "name":
        if not _NAME_RE.fullmatch(text):
            raise Invalid()
        return text
    if kind == "yesno":
        return parse_yesno(text)
    if kind == "onboot":  # O7 ONBOOT: yes, no or auto
        if text not in ("yes", "no", "auto"):
            raise Invalid()
        return text
    if kind in ("ulong", "int", "stop_timeout"):
        value = units.parse_ulong(text) if kind == "ulong" else units.parse_int(text)
        if value is None or (kind == "stop_timeout" and value < 0):
            raise Invalid()
        return value
    if kind == "cpuunits":
        value = units.parse_ulong(text)
        if value is None or not MIN_CPUUNITS <= value <= MAX_CPUUNITS:
            raise Invalid()
        return value
    if kind == "float":
        m = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
        if m is None:
            raise Invalid()
        return float(m.group(0))
    if kind == "ubc":
        return parse_ubc(name, text, ctx)
    if kind in ("diskspace", "diskinodes"):
        return parse_disk(name, text, ctx)
    if kind == "cpulimit":
        return parse_cpulimit(text, ctx)
    if kind == "cpumask":
        return "auto" if text == "auto" else parse_bitmap(text, CPUMASK_BITS)
    if kind == "nodemask":
        return parse_bitmap(text, NODEMASK_BITS)
    if kind == "ip":
        return parse_ip_list(text, ctx.legacy)
    if kind == "netdev":
        return parse_netdev(text)
    if kind == "strlist":
        return parse_strlist(text)
    if kind == "cap":
        return parse_caps(text)
    if kind == "features":
        return parse_features(text)
    if kind == "netfilter":
        if text not in NETFILTER_NAMES:
            raise Invalid()
        return text
    if kind == "layout":
        if text == "simfs" or re.fullmatch(r"ploop(:(expanded|plain|raw))?", text):
            return text
        raise Invalid()
    if kind == "ioprio":
        value = units.parse_int(text)
        if value is None or not 0 <= value <= 7:
            raise Invalid()
        return value
    if kind == "iolimit":
        return parse_iolimit(text, 1)
    if kind == "iopslimit":
        value = units.parse_int(text)
        if value is None or value < 0:
            raise Invalid()
        return value
    if kind == "netif":
        return parse_netif(text, ctx)
    if kind in ("veth", "ignored"):
        return text
    raise AssertionError(f"unknown kind {kind}")


def render(kind: str, name: str, value: Any, legacy: bool) -> str:
    """The text `--save` writes between the quotes."""
    if kind == "ubc":
        return units.legacy_ubc_str(*value) if legacy else units.two_ul_str(*value)
    if kind in ("diskspace", "diskinodes"):
        return units.two_ul_str(*value)
    if kind == "yesno":
        return render_yesno(value)
    if kind in ("ip", "strlist", "netdev"):
        return " ".join(value)
    if kind == "cpulimit":
        return str(value[1])
    if kind == "float":
        return f"{value:g}"
    if kind == "netif":
        return render_netif(value, legacy)
    if kind == "features":
        return render_features(value)
    if kind == "cap":
        return render_caps(value, None)
    return str(value)
