"""Number parsing as util-vserver's C helpers do it (native-formats.md §2.3).

* `strtol` mimics C `strtol`/`strtoll`: leading white space, an optional sign, base 0
  (`0x` hex, leading `0` octal, else decimal), and an end index that tells where parsing stopped.
* `sched_value` is vsched's strict check of a `sched/` file.
* `limit_value` is the rlimits/ulimits value syntax (`inf`, K/M/k/m suffixes).
* `mask2prefix` returns the exit status of util-vserver's mask2prefix helper.
"""

from __future__ import annotations

from dataclasses import dataclass

LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
INF = "inf"  # how an unlimited value is stored in the kernel state

_SPACE = " \t\n\v\f\r"


@dataclass(frozen=True)
class Parsed:
    value: int
    end: int  # index of the first unparsed character; 0 when nothing was converted
    overflow: bool = False


def _digit(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "a" <= ch.lower() <= "z":
        return ord(ch.lower()) - ord("a") + 10
    return 99


def strtol(text: str, base: int = 0) -> Parsed:
    """Parse like C strtol; `end == 0` means no conversion (C: endptr == str)."""
    i = 0
    while i < len(text) and text[i] in _SPACE:
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i:i + 2].lower() == "0x" and _digit(text[i + 2:i + 3] or "z") < 16:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    start, value = i, 0
    while i < len(text) and _digit(text[i]) < base:
        value = value * base + _digit(text[i])
        i += 1
    if i == start:
        return Parsed(0, 0)
    value = -value if negative else value
    if value > LONG_MAX or value < LONG_MIN:
        return Parsed(LONG_MAX if value > 0 else LONG_MIN, i, overflow=True)
    return Parsed(value, i)


def sched_value(raw: bytes) -> int | None:
    """vsched's reading of one `sched/` file, or None for "is not an integer".

    vsched reads at most 127 bytes, cuts at the first newline and then needs the whole rest to
    be a base-0 integer (leading blanks allowed, nothing after it, not empty).
    """
    text = raw[:127].decode("latin-1").split("\n", 1)[0]
    parsed = strtol(text)
    if parsed.end == 0 or parsed.overflow or parsed.end != len(text):
        return None
    return to_int32(parsed.value)


def option_value(text: str) -> int | None:
    """vsched's non-strict check of a command-line value (the deprecated `schedule` file)."""
    parsed = strtol(text)
    if parsed.end == 0 or parsed.overflow:
        return None
    factor, rest = _suffix(text[parsed.end:])
    if rest != "":
        return None
    return to_int32(parsed.value * factor)


def to_int32(value: int) -> int:
    """The kernel's scheduler fields are 32-bit: wrap as a C cast would."""
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _suffix(rest: str) -> tuple[int, str]:
    factors = {"K": 1024, "M": 1024 * 1024, "k": 1000, "m": 1000 * 1000}
    if rest[:1] in factors:
        return factors[rest[:1]], rest[1:]
    return 1, rest


def limit_value(raw: bytes) -> int | str | None:
    """An rlimits/ulimits value: INF, an int, or None when invalid.

    Text starting with `inf` is unlimited. Otherwise a base-0 integer with one optional suffix
    (K, M binary; k, m decimal) that must end at the end of the text or at a newline.
    Like the C readers, only the first 127 bytes are looked at.
    """
    text = raw[:127].decode("latin-1")
    if text.startswith("inf"):
        return INF
    parsed = strtol(text)
    if parsed.end == 0:
        return None
    factor, rest = _suffix(text[parsed.end:])
    if rest != "" and not rest.startswith("\n"):
        return None
    return parsed.value * factor


def mask2prefix(mask: str) -> int:
    """Exit status of mask2prefix: the prefix length, 0 for an empty mask, 255 if invalid.

    Each dotted part is a decimal number below 256; its leading one bits are counted and the
    count stops after the first part that is not 255. Non-contiguous masks are not detected.
    """
    parts = mask.split(".")
    length = 0
    for index in range(4):
        part = parts[index] if index < len(parts) else ""
        parsed = strtol(part, 10)
        if parsed.end != len(part):  # only "" may convert nothing: C sees its '\0' at once
            return 255
        value = parsed.value
        if value < 0 or value >= 0x100:
            return 255
        ones = 0
        while value & 0x80:
            ones += 1
            value = (value << 1) & 0xFF
        length += ones
        if ones != 8:
            break
    return length
