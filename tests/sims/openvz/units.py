"""Number parsing with size suffixes, and the UBC/disk value forms written back by `--save`.

Reference §1.3 "Suffixes and special values" and "Written back". Both versions parse a number
like C's strtoull (an optional fraction when a `.` follows), then at most one suffix letter:

* legacy: `K M G T` (x1024^n), `P` (one page), `B` (one byte), either case;
* O7: the same without `P`.

`divisor` is the unit of the key (page size for *PAGES keys, 1 for byte keys, 1024 for
DISKSPACE); a divisor of 0 means "no suffix allowed" (NUM* keys, old DISKINODES). O7 also has a
`def_divisor` that plain numbers are divided by (used by `--ram`/`--swap`, which take bytes).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
ULLONG_MAX = 2**64 - 1
PAGE_SIZE = 4096

_INT = re.compile(r"\s*([+-]?)(\d+)")
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def suffix_multiplier(ch: str, legacy: bool) -> int | None:
    """The multiplier of one suffix letter, or None when the letter is not a suffix."""
    powers = {"k": 1, "m": 2, "g": 3, "t": 4}
    low = ch.lower()
    if low in powers:
        return int(1024 ** powers[low])
    if low == "b":
        return 1
    if low == "p" and legacy:
        return PAGE_SIZE
    return None


def strtoull(text: str) -> tuple[int, str] | None:
    """C strtoull(text, &tail, 10): (value, tail); None on overflow (ERANGE)."""
    m = _INT.match(text)
    if m is None:
        return 0, text  # no conversion: the tail is the whole string
    value = int(m.group(2))
    if value > ULLONG_MAX:
        return None
    if m.group(1) == "-" and value:
        value = ULLONG_MAX + 1 - value  # strtoull negates in unsigned arithmetic
    return value, text[m.end():]


def parse_ul_sfx(text: str, divisor: int, *, unlimited: bool, legacy: bool,
                 def_divisor: int = 0) -> tuple[int, str] | None:
    """Parse `N[.F][suffix]`; return (value, rest) or None when invalid.

    A value that overflows after multiplication comes back as LONG_MAX + 1 so the caller can
    clamp it, as the C code does.
    """
    if unlimited and text.startswith("unlimited"):
        return LONG_MAX, text[len("unlimited"):]
    parsed = strtoull(text)
    if parsed is None:
        return None
    value, tail = parsed
    exact = Decimal(value)
    if tail.startswith("."):
        m = _FLOAT.match(text)
        if m is None:
            tail = text
        else:
            try:
                exact = Decimal(m.group(0).strip())
            except InvalidOperation:  # pragma: no cover - the regex only admits numbers
                return None
            value, tail = int(exact), text[m.end():]
    if tail and tail[0] != ":":
        if not divisor:
            return None
        mul = suffix_multiplier(tail[0], legacy)
        if mul is None:
            return None
        scaled = exact * mul / divisor
        value = LONG_MAX + 1 if scaled > LONG_MAX else int(scaled)
        tail = tail[1:]
    elif not legacy and def_divisor:
        value //= def_divisor
    return value, tail


def parse_twoul(text: str, divisor: int, *, unlimited: bool, legacy: bool,
                def_divisor: int = 0) -> tuple[int, int, bool] | None:
    """Parse `A[:B]` (B defaults to A). Returns (a, b, truncated) or None when invalid.

    `truncated` is set when a value was larger than LONG_MAX and got clamped (the legacy
    "too large value ... truncated" case).
    """
    first = parse_ul_sfx(text, divisor, unlimited=unlimited, legacy=legacy,
                         def_divisor=def_divisor)
    if first is None:
        return None
    a, rest = first
    truncated = a > LONG_MAX
    a = min(a, LONG_MAX)
    if rest.startswith(":"):
        second = parse_ul_sfx(rest[1:], divisor, unlimited=unlimited, legacy=legacy,
                              def_divisor=def_divisor)
        if second is None or second[1] != "":
            return None
        b = second[0]
        truncated = truncated or b > LONG_MAX
        b = min(b, LONG_MAX)
    elif rest == "":
        b = a
    else:
        return None
    return a, b, truncated


def parse_legacy_vswap(text: str) -> int | None:
    """Legacy `--ram`/`--swap`: bytes (suffixes allowed), rounded up to whole pages."""
    parsed = parse_ul_sfx(text, 1, unlimited=True, legacy=True)
    if parsed is None or parsed[1] != "":
        return None
    return min((parsed[0] + PAGE_SIZE - 1) // PAGE_SIZE, LONG_MAX)


def legacy_ubc_str(barrier: int, limit: int) -> str:
    """Legacy write-back: plain numbers, `unlimited` for LONG_MAX, `b:b` collapsed to `b`."""

    def one(v: int) -> str:
        return "unlimited" if v == LONG_MAX else str(v)

    return one(barrier) if barrier == limit else f"{one(barrier)}:{one(limit)}"


def two_ul_str(first: int, second: int) -> str:
    """The `"%lu:%lu"` form (O7 UBCs; DISKSPACE/DISKINODES in both versions)."""
    return f"{first}:{second}"


def parse_ulong(text: str) -> int | None:
    """C parse_ul(): the whole string must be one unsigned number."""
    if text == "":
        return None
    parsed = strtoull(text)
    if parsed is None or parsed[1] != "" or not _INT.match(text):
        return None
    return parsed[0]


def parse_int(text: str) -> int | None:
    """C parse_int(): a whole signed decimal that fits an int."""
    m = re.fullmatch(r"\s*([+-]?\d+)", text)
    if m is None:
        return None
    value = int(m.group(1))
    if value > INT_MAX or value < -INT_MAX - 1:
        return None
    return value
