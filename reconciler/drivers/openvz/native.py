"""Typed values of CTID.conf keys, as each vzctl version parses them (reference §1.3). Pure.

Each parser takes the value text of one line and returns the typed value, or raises `Invalid`
(with what was taken before the bad token, where vzctl keeps that part). Units stay native:
*PAGES beancounters in pages, byte beancounters in bytes, NUM* as counts, DISKSPACE in KiB.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.drivers.text import words

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
PAGE = 4096

# The 22 beancounters, upper case as in the file.
UBC_NAMES = ("KMEMSIZE", "LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "NUMPROC", "PHYSPAGES",
             "VMGUARPAGES", "OOMGUARPAGES", "NUMTCPSOCK", "NUMFLOCK", "NUMPTY", "NUMSIGINFO",
             "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF", "NUMOTHERSOCK",
             "DCACHESIZE", "NUMFILE", "NUMIPTENT", "AVNUMPROC", "SWAPPAGES")
PAGE_UBCS = frozenset({"LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "PHYSPAGES", "VMGUARPAGES",
                       "OOMGUARPAGES", "SWAPPAGES"})
BYTE_UBCS = frozenset({"KMEMSIZE", "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF",
                       "DCACHESIZE"})
LEGACY_ALIASES = {"DCACHE": "DCACHESIZE", "IPTENTRIES": "NUMIPTENT"}
O7_ALIASES = {"IPTENTRIES": "NUMIPTENT", "TCPSENDBUF": "TCPSNDBUF"}
O7_IGNORED = frozenset({"NUMTCPSOCK", "NUMOTHERSOCK", "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF",
                        "DGRAMRCVBUF", "OOMGUARPAGES", "DCACHESIZE"})
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\Z")
_INT = re.compile(r"\s*([+-]?)(\d+)")
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class Invalid(ValueError):
    """vzctl would reject the value ("invalid value ... skipped"); `partial` is what it keeps."""

    def __init__(self, partial: Any = None) -> None:
        super().__init__("invalid value")
        self.partial = partial


@dataclass(frozen=True)
class Version:
    """The vzctl in use: `legacy` (3.x/4.x) or OpenVZ `7`, and its major number."""

    family: str  # "legacy" | "7"
    major: int = 4

    @property
    def legacy(self) -> bool:
        return self.family == "legacy"

    @property
    def json(self) -> bool:
        """`vzlist -j` appeared in vzctl 4.0."""
        return not self.legacy or self.major >= 4


LEGACY = Version("legacy", 4)
O7 = Version("7", 7)


@dataclass(frozen=True)
class Veth:
    """One NETIF record (reference §1.3 NETIF grammar)."""

    ifname: str
    mac: str = ""
    host_ifname: str = ""
    host_mac: str = ""
    bridge: str = ""


# --------------------------------------------------------------------------- numbers


def _suffix(ch: str, legacy: bool) -> int | None:
    low = ch.lower()
    if low in "kmgt":
        return int(1024 ** ("kmgt".index(low) + 1))
    if low == "b":
        return 1
    if low == "p" and legacy:
        return PAGE
    return None


def _ul_sfx(text: str, divisor: int, legacy: bool, unlimited: bool = True
            ) -> tuple[int, str]:
    """`N[.F][suffix]` as vzctl's parse_ul_sfx: (value in the key's unit, rest)."""
    if unlimited and text.startswith("unlimited"):
        return LONG_MAX, text[len("unlimited"):]
    match = _INT.match(text)
    if match is None or match.group(1) == "-":
        raise Invalid()
    value, tail = int(match.group(2)), text[match.end():]
    exact = Decimal(value)
    if tail.startswith("."):
        fmatch = _FLOAT.match(text)
        if fmatch is not None:
            try:
                exact = Decimal(fmatch.group(0).strip())
            except InvalidOperation:  # pragma: no cover - the pattern admits numbers only
                raise Invalid() from None
            value, tail = int(exact), text[fmatch.end():]
    if tail and tail[0] != ":":
        mul = _suffix(tail[0], legacy) if divisor else None
        if mul is None:
            raise Invalid()
        value = min(int(exact * mul / divisor), LONG_MAX)
        tail = tail[1:]
    return min(value, LONG_MAX), tail


_PLAIN_PAIR = re.compile(r"(\d{1,18})(?::(\d{1,18}))?\Z")


def parse_pair(text: str, divisor: int, legacy: bool, unlimited: bool = True
               ) -> tuple[int, int]:
    """`A[:B]`, B defaulting to A (barrier:limit, soft:hard)."""
    plain = _PLAIN_PAIR.match(text)  # the common case: what `set --save` writes
    if plain:
        first = int(plain.group(1))
        return first, int(plain.group(2)) if plain.group(2) else first
    first, rest = _ul_sfx(text, divisor, legacy, unlimited)
    if rest == "":
        return first, first
    if not rest.startswith(":"):
        raise Invalid()
    second, tail = _ul_sfx(rest[1:], divisor, legacy, unlimited)
    if tail:
        raise Invalid()
    return first, second


def ubc_divisor(name: str) -> int:
    return PAGE if name in PAGE_UBCS else 1 if name in BYTE_UBCS else 0


def parse_ulong(text: str) -> int:
    if not re.fullmatch(r"\s*\+?\d+", text):
        raise Invalid()
    return int(text)


def parse_yesno(text: str) -> bool:
    if text in ("yes", "no"):
        return text == "yes"
    raise Invalid()


# --------------------------------------------------------------------------- lists


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:/(?:3[0-2]|[12]?[0-9]))?\Z")


def canon_ip(token: str, legacy: bool) -> str:
    """Legacy canonicalises each address (inet_pton/ntop) and range-checks the mask."""
    if _IPV4.match(token):  # already canonical: a dotted quad without leading zeros
        return token
    addr, slash, mask = token.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise Invalid() from None
    if slash and (not mask.isdigit() or int(mask) > (32 if ip.version == 4 else 128)):
        raise Invalid()
    if not legacy:
        return token
    return f"{ip.compressed}/{int(mask)}" if slash else ip.compressed


def parse_ips(text: str, legacy: bool) -> list[str]:
    """IP_ADDRESS: blank-separated, `0.0.0.0`, `::`, `::0` skipped; a bad token ends it."""
    out: list[str] = []
    for token in words(text):
        if token in ("0.0.0.0", "::", "::0"):  # noqa: S104 - "no address", not a bind
            continue
        try:
            ip = canon_ip(token, legacy)
        except Invalid:
            raise Invalid(out) from None
        if ip.partition("/")[0] not in [x.partition("/")[0] for x in out]:
            out.append(ip)
    return out


def parse_strlist(text: str) -> list[str]:
    out: list[str] = []
    for token in words(text):
        if token not in out:
            out.append(token)
    return out


def parse_netif(text: str, ctid: str, legacy: bool) -> list[Veth]:
    """NETIF records. Legacy: ifname/host_ifname/bridge keep their first value, the MACs the
    last, unknown keys are ignored, a record without ifname ends the value. O7 has no
    `bridge` (its `network=` and other keys are not modelled and are dropped here)."""
    devs: list[Veth] = []
    for record in (r for r in text.split(";") if r):
        items: dict[str, str] = {}
        for item in record.split(","):
            key, sep, val = item.partition("=")
            if not sep:
                continue
            if legacy and key in ("ifname", "host_ifname", "bridge"):
                if len(val) >= 16:
                    raise Invalid(devs)
                items.setdefault(key, val)
            elif key in ("mac", "host_mac"):
                if not _MAC.match(val):
                    if legacy:
                        raise Invalid(devs)
                    continue
                items[key] = val.lower()
            elif not legacy and key in ("ifname", "host_ifname"):
                items[key] = val
        if not items.get("ifname"):
            raise Invalid(devs)
        if any(d.ifname == items["ifname"] for d in devs):
            continue
        dev = Veth(ifname=items["ifname"], mac=items.get("mac", ""),
                   host_ifname=items.get("host_ifname") or default_host_ifname(ctid,
                                                                               items["ifname"]),
                   host_mac=items.get("host_mac", ""),
                   bridge=items.get("bridge", "") if legacy else "")
        devs.append(dev)
    return devs


def default_host_ifname(ctid: str, ifname: str) -> str:
    """`veth<CTID>.<N>`, N the first number in the guest name (legacy DEF_VETHNAME)."""
    match = re.match(r"[^0-9]*([0-9]+)", ifname)
    return f"veth{ctid}.{int(match.group(1)) if match else 0}"


def parse_cpulimit(text: str, legacy: bool) -> int:
    """Percent of one CPU. Legacy stores `N%` (of the host) multiplied out; in the file it is a
    plain number. O7's MHz limit lives in CPULIMIT_MHZ (not modelled)."""
    match = re.fullmatch(r"\s*(\d+)%?", text)
    if match is None:
        raise Invalid()
    return int(match.group(1))


def parse_cpumask(text: str) -> set[int] | None:
    """A CPU list (`0-2,7`) as a set; None for `all`/`auto`."""
    if text in ("all", "auto"):
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise Invalid()
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise Invalid()
        cpus.update(range(lo, hi + 1))
    return cpus


# --------------------------------------------------------------------------- per key

# How a key's value is parsed; keys not listed are kept as text.
_KINDS: dict[str, str] = {
    **{name: "ubc" for name in UBC_NAMES},
    "DISKSPACE": "diskspace", "DISKINODES": "diskinodes", "ONBOOT": "yesno",
    "DISABLED": "yesno", "DISK_QUOTA": "yesno", "CPUUNITS": "cpuunits", "CPUS": "ulong",
    "BOOTORDER": "ulong", "QUOTATIME": "ulong", "QUOTAUGIDLIMIT": "ulong",
    "CPULIMIT": "cpulimit", "CPUMASK": "cpumask", "IP_ADDRESS": "ip", "NAMESERVER": "strlist",
    "SEARCHDOMAIN": "strlist", "NETDEV": "strlist", "NETIF": "netif", "NAME": "name",
}


def parse_value(key: str, text: str, ctid: str, version: Version) -> Any:
    """The typed value of one key (Invalid when vzctl would skip it)."""
    kind = _KINDS.get(key, "str")
    legacy = version.legacy
    if kind == "str":
        return text
    if kind == "ubc":
        return parse_pair(text, ubc_divisor(key), legacy)
    if kind == "diskspace":
        # "unlimited" is rejected by legacy vzctl from 4.4 on (§1.3)
        return parse_pair(text, 1024, legacy, unlimited=not legacy or version.major < 4)
    if kind == "diskinodes":
        return parse_pair(text, 1 if (not legacy or version.major >= 4) else 0, legacy,
                          unlimited=not legacy or version.major < 4)
    if kind == "yesno":
        if not legacy and key == "ONBOOT" and text == "auto":
            return None  # O7's "auto": neither yes nor no
        return parse_yesno(text)
    if kind == "ulong":
        return parse_ulong(text)
    if kind == "cpuunits":
        value = parse_ulong(text)
        if not 8 <= value <= 500000:
            raise Invalid()
        return value
    if kind == "cpulimit":
        return parse_cpulimit(text, legacy)
    if kind == "cpumask":
        parse_cpumask(text)
        return text
    if kind == "ip":
        return parse_ips(text, legacy)
    if kind == "strlist":
        return parse_strlist(text)
    if kind == "netif":
        return parse_netif(text, ctid, legacy)
    if kind == "name":
        if not re.fullmatch(r"[A-Za-z0-9 \-+_.]*", text):
            raise Invalid()
        return text
    raise AssertionError(kind)  # pragma: no cover


def canonical_key(name: str, version: Version) -> str:
    return (LEGACY_ALIASES if version.legacy else O7_ALIASES).get(name, name)


# legacy duplicate classes (§1.2): these add up over repeated lines; UBCs and a few others take
# the last line; every other known key keeps the first valid one
ACCUMULATE = frozenset({"IP_ADDRESS", "NETDEV", "NAMESERVER", "SEARCHDOMAIN", "CAPABILITY",
                        "FEATURES", "IPTABLES"})
LAST_WINS = frozenset({*UBC_NAMES, "IOPRIO", "IOLIMIT", "IOPSLIMIT", "MEMINFO", "NETFILTER",
                       "VE_LAYOUT"})


def accumulate(key: str, old: Any, new: Any) -> Any:
    if old is None:
        return new
    if key == "IP_ADDRESS":
        seen = {x.partition("/")[0] for x in old}
        return old + [x for x in new if x.partition("/")[0] not in seen]
    if isinstance(old, list) and isinstance(new, list):
        return old + [x for x in new if x not in old]
    return f"{old} {new}"


def subst_veid(text: str | None, ctid: str, legacy: bool) -> str | None:
    """The first `$VEID` (or `${VEID}` when there is none) replaced; legacy also drops
    trailing slashes."""
    if text is None:
        return None
    if legacy:
        text = text.rstrip("/")
    for token in ("$VEID", "${VEID}"):
        if token in text:
            return text.replace(token, ctid, 1)
    return text


# --------------------------------------------------------------------------- writing back


def pair_arg(pair: tuple[int, int] | list[int]) -> str:
    """`barrier:limit` for a vzctl option (plain numbers: the key's own unit)."""
    return f"{int(pair[0])}:{int(pair[1])}"


def netif_add_arg(dev: Veth, legacy: bool) -> str:
    """`--netif_add ifname,mac,host_ifname,host_mac[,bridge]`; empty fields are generated.
    Trailing empty fields are dropped: vzctl copies the CT MAC to the host side when the list
    stops early, and generates a host MAC only for an empty field before a bridge."""
    fields = [dev.ifname, dev.mac, dev.host_ifname, dev.host_mac]
    if legacy and dev.bridge:
        fields.append(dev.bridge)
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    return ",".join(fields)
