"""Sizes: parse what people write (`512MiB`, `1G`, `65536`) into bytes, and format them back.

A plain number is in the field's native unit (KiB for memory, as libvirt counts), so
`memory: 65536` from the original LXC proposal means 64 MiB.
"""

from __future__ import annotations

import re

# The one table of size units: spec sizes and libvirt's scaled integers (`unit='MiB'`) alike.
# As libvirt reads them: a bare letter and the *iB forms are powers of 1024, *B ones of 1000.
UNITS = {
    "b": 1, "bytes": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
    "p": 1024**5, "pb": 1000**5, "pib": 1024**5,
}
UNIT_NAMES = "bytes, KiB, MiB, GiB, TiB, PiB (or KB, MB, ... for powers of 1000)"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
MAX_BYTES = 1 << 60  # 1 EiB: anything larger is a typo, not a machine


def parse_size(value: object, native: int = 1024) -> int:
    """Bytes from an int (in `native` units) or a string with an optional unit suffix."""
    if isinstance(value, str):  # the common case first: every spec size is text
        match = _SIZE.match(value)
        if not match:  # (a leading '-' never matches)
            if value.strip().startswith("-"):
                raise ValueError(f"size {value!r} is negative; write e.g. 512MiB")
            raise ValueError(f"{value!r} is not a size; write e.g. 512MiB, 1G or 65536 (KiB)")
        number, unit = match.groups()
        factor = UNITS.get(unit.lower()) if unit else native
        if factor is None:
            raise ValueError(f"unknown unit {unit!r} in {value!r}; use B, KiB, MiB, GiB, TiB")
        result = int(float(number) * factor)
    elif isinstance(value, bool):
        raise ValueError("a size must be a number or a string like '512MiB', not true/false")
    elif isinstance(value, int):
        result = value * native
    elif isinstance(value, float) and value.is_integer():
        result = int(value) * native
    else:
        raise ValueError(f"{value!r} is not a size; write e.g. 512MiB, 1G or 65536 (KiB)")
    if result < 0:
        raise ValueError(f"size {value!r} is negative; write e.g. 512MiB")
    if result > MAX_BYTES:
        raise ValueError(f"size {value!r} is absurdly large (over 1 EiB)")
    return result


def format_size(nbytes: int) -> str:
    """The shortest exact binary-unit spelling: 67108864 -> '64MiB'."""
    for suffix, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{suffix}"
    return f"{nbytes}B"


def to_kib(nbytes: int) -> int:
    """KiB, rounded up, as libvirt stores memory."""
    return -(-nbytes // 1024)
