"""Numbers as util-vserver's C helpers read them (reference native-formats §2.3), pure.

    strtol        C strtol: leading white space, a sign, base 0 (0x hex, leading 0 octal)
    sched_value   vsched --dir: the first line must be one base-0 integer, nothing else
    limit_value   rlimits/: `inf...` is unlimited, else strtoll base 0 and one optional
                  suffix, K/M (x1024) or k/m (x1000), ending at the end or a newline
    mask2prefix   the helper whose exit status is the prefix (0: none, 255: invalid)
"""

from __future__ import annotations

from dataclasses import dataclass

INF = "inf"
_SPACE = " \t\n\v\f\r"
_SUFFIX = {"K": 1024, "M": 1024 * 1024, "k": 1000, "m": 1000 * 1000}
LONG_MAX = 2**63 - 1


@dataclass(frozen=True)
class Parsed:
    value: int
    end: int  # index after the last digit; 0 when nothing was converted
    overflow: bool = False


def _digit(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - 48
    if "a" <= ch.lower() <= "z":
        return ord(ch.lower()) - 87
    return 99


def strtol(text: str, base: int = 0) -> Parsed:
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
    if not -LONG_MAX - 1 <= value <= LONG_MAX:
        return Parsed(LONG_MAX if value > 0 else -LONG_MAX - 1, i, overflow=True)
    return Parsed(value, i)


def sched_value(raw: bytes) -> int | None:
    """One `sched/` file as vsched reads it (at most 127 bytes, cut at the first newline);
    None for "is not an integer" (the start fails on it)."""
    text = raw[:127].decode("latin-1").split("\n", 1)[0]
    parsed = strtol(text)
    if parsed.end == 0 or parsed.overflow or parsed.end != len(text):
        return None
    return parsed.value


def option_value(text: str) -> int | None:
    """A value of the deprecated `schedule` file, as vsched's option parser takes it."""
    parsed = strtol(text)
    if parsed.end == 0 or parsed.overflow:
        return None
    rest = text[parsed.end:]
    factor = _SUFFIX.get(rest[:1], 1)
    if rest[1 if rest[:1] in _SUFFIX else 0:] != "":
        return None
    return parsed.value * factor


def limit_value(raw: bytes) -> int | str | None:
    """An rlimits/ value: INF, an int, or None when vlimit would refuse it."""
    text = raw[:127].decode("latin-1")
    if text.startswith("inf"):
        return INF
    parsed = strtol(text)
    if parsed.end == 0 or parsed.overflow:
        return None
    rest = text[parsed.end:]
    factor = _SUFFIX.get(rest[:1], 1)
    if rest[:1] in _SUFFIX:
        rest = rest[1:]
    if rest != "" and not rest.startswith("\n"):
        return None
    return parsed.value * factor


def mask2prefix(mask: str) -> int:
    """mask2prefix's exit status: the prefix length, 0 for an empty mask, 255 if invalid
    (leading one bits, counting stops after the first part that is not 255)."""
    parts = mask.split(".")
    length = 0
    for index in range(4):
        part = parts[index] if index < len(parts) else ""
        parsed = strtol(part, 10)
        if parsed.end != len(part) or not 0 <= parsed.value < 0x100:
            return 255
        value, ones = parsed.value, 0
        while value & 0x80:
            ones += 1
            value = (value << 1) & 0xFF
        length += ones
        if ones != 8:
            break
    return length
