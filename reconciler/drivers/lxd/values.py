"""Pure: LXD's value syntax, read as LXD defines it (shared/util.go, shared/units, the
instance options reference) and written so that LXD reads back exactly what the spec says.

Every LXD config value is a string; these turn them into the model's values and back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.drivers.text import lines
from reconciler.model.units import format_size

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# units.ParseByteSizeString: an integer and one of these exact suffixes
_BYTE_UNITS = {"": 1, "B": 1, " bytes": 1,
               "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
               "EB": 1000**6,
               "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5,
               "EiB": 1024**6}
_BYTES = re.compile(r"([0-9]+)(.*)\Z")
_ALLOWANCE_TIME = re.compile(r"([0-9]+)ms/([0-9]+)ms\Z")
_ALLOWANCE_SHARE = re.compile(r"([0-9]+)%\Z")
_MS = 1000


def is_true(value: Any) -> bool:
    """shared.IsTrue: true, 1, yes, on (any case)."""
    return isinstance(value, str) and value.strip().lower() in _TRUE


def is_false(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _FALSE


def flag(value: bool) -> str:
    return "true" if value else "false"


def bytes_of(text: str) -> int | None:
    """units.ParseByteSizeString; None for what is not a byte size (a percentage)."""
    match = _BYTES.match(text.strip())
    if match is None or match.group(2) not in _BYTE_UNITS:
        return None
    return int(match.group(1)) * _BYTE_UNITS[match.group(2)]


def byte_text(nbytes: int) -> str:
    """A size LXD reads back exactly: the shortest binary-unit spelling (64MiB, 123B)."""
    return format_size(nbytes)


def allowance_of(text: str) -> dict[str, int] | None:
    """limits.cpu.allowance `Qms/Pms` as cpu.quota and cpu.period in µs; None for the
    percentage form (a share of the CPU, which the model has no field for)."""
    match = _ALLOWANCE_TIME.match(text.strip())
    if match is None:
        return None
    return {"quota": int(match.group(1)) * _MS, "period": int(match.group(2)) * _MS}


def allowance_text(quota_us: int, period_us: int) -> str:
    return f"{quota_us // _MS}ms/{period_us // _MS}ms"


def is_share(text: str) -> bool:
    return _ALLOWANCE_SHARE.match(text.strip()) is not None


def idmap_of(text: str | None) -> list[dict[str, Any]] | None:
    """`volatile.idmap.*` (JSON, as LXD's idmap.IdmapSet marshals it) as model id map
    entries, uid entries first; an entry for both kinds is one of each. None if unreadable."""
    if not text:
        return None
    try:
        entries = json.loads(text)
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    out: list[dict[str, Any]] = []
    for kind, flag_key in (("uid", "Isuid"), ("gid", "Isgid")):
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get(flag_key):
                continue
            try:
                out.append({"kind": kind, "start": int(entry["Nsid"]),
                            "target": int(entry["Hostid"]), "count": int(entry["Maprange"])})
            except (KeyError, TypeError, ValueError):
                return None
    return out


def raw_lxc_lines(text: str) -> list[tuple[str, str]]:
    """raw.lxc as LXC reads a config: `key = value` lines; blanks and `#` comments skipped."""
    out = []
    for line in lines(text):  # LXC splits its config at LF only
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        out.append((key.strip(), value.strip()))
    return out


def cpu_list(cpus: frozenset[int]) -> str:
    """A CPU set as LXD pins it: ranges and single CPUs, comma-separated ("0-1,3")."""
    parts = []
    ordered = sorted(cpus)
    start = prev = ordered[0]
    for cpu in [*ordered[1:], -2]:
        if cpu == prev + 1:
            prev = cpu
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def power(status: str) -> str:
    """An instance's status as the model's run state: a frozen or stopping container still
    holds its processes, so it runs."""
    return "running" if status in ("Running", "Frozen", "Freezing", "Stopping") else "stopped"


def natural(name: str) -> tuple[Any, ...]:
    """eth2 before eth10: device names in the order a person reads them."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name))
