"""CTID.conf, vz.conf and sample configs, read by the rules of the vzctl version in use
(reference §1.2). Read-only: vzctl does every write (`set --save`), so the file keeps whatever
the tool keeps.

Lines end at LF only (`drivers.text.lines`), as fgets reads them. Both versions first delete
every unescaped backslash. Then:

* legacy: a `#` line is a comment, a later `#` is text; the key is everything before the first
  `=` (not trimmed); a value starting with `"` runs to the last `"` of the line, without one
  the line is skipped; single quotes are text. Duplicate keys by class: first valid line wins
  (strings, numbers, yes/no, disk quota, NETIF as a whole), last wins (beancounters and a few
  others), or the lines add up (IP_ADDRESS, NETDEV, NAMESERVER, SEARCHDOMAIN, ...). A value
  that does not parse is skipped and does not count.
* OpenVZ 7: a `#` that begins a word outside quotes ends the line; one quote at the end and
  one after `=` are cut; the last line of a key wins, whatever it holds.

`read` gives every parsed line (for `convert`'s "not converted" notes) and the effective typed
value per key; `merged` lays a CTID.conf over vz.conf as vzctl does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.openvz.native import (
    ACCUMULATE,
    LAST_WINS,
    Invalid,
    Version,
    accumulate,
    canonical_key,
    parse_value,
)
from reconciler.drivers.text import lines
from reconciler.rules.openvz import comment_at

_BLANKS = " \t\n\v\f\r"  # C isspace() in the C locale
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Line:
    """One line as the version's parser read it: its number, key and value text, or why it
    was skipped (`key` is then the text before `=`, when there is one)."""

    number: int
    key: str
    value: str
    skipped: str = ""


@dataclass(frozen=True)
class Note:
    """A line whose value vzctl does not use: duplicate, invalid, skipped."""

    number: int
    key: str
    value: str
    why: str


@dataclass(frozen=True)
class Conf:
    """A parsed file: effective typed values by canonical key, and how each line was read."""

    values: Mapping[str, Any] = field(default_factory=dict)
    used: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # key -> lines it took
    lines: tuple[Line, ...] = ()
    notes: tuple[Note, ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def unescape(line: str) -> str:
    """Delete unescaped backslashes: `\\x` becomes `x`, `\\\\` becomes `\\`."""
    if "\\" not in line:
        return line
    out: list[str] = []
    escaped = False
    for ch in line:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)


def _uncomment(text: str) -> str:
    """O7: cut at a `#` that starts a word outside quotes (the bash rule)."""
    at = comment_at(text) if "#" in text else None
    return text if at is None else text[:at]


def parse_line(raw: str, number: int, legacy: bool) -> Line | None:
    """One line; None for blank lines and comments."""
    text = unescape(raw)
    if not legacy:
        text = _uncomment(text)
    text = text.lstrip(_BLANKS)
    if not text or text[0] == "#":
        return None
    text = text.rstrip(_BLANKS)
    if not legacy and text and text[-1] in "\"'":
        text = text[:-1]
    key, eq, value = text.partition("=")
    if not eq:
        return Line(number, "", text, "'=' not found")
    if legacy:
        if value.startswith('"'):
            close = value.rfind('"', 1)
            if close < 0:
                return Line(number, key, value, "unmatched quotes")
            value = value[1:close]
    elif value and value[0] in "\"'":
        value = value[1:]
    return Line(number, key, value)


def read(text: str, ctid: str, version: Version) -> Conf:
    """Parse a whole file the way `version` does."""
    legacy = version.legacy
    parsed: list[Line] = []
    for number, raw in enumerate(lines(text), 1):
        line = parse_line(raw, number, legacy)
        if line is not None:
            parsed.append(line)
    values: dict[str, Any] = {}
    used: dict[str, list[int]] = {}
    notes: list[Note] = []
    if legacy:
        for line in parsed:
            if line.skipped:
                notes.append(Note(line.number, line.key, line.value, line.skipped))
                continue
            key = canonical_key(line.key, version)
            try:
                value = parse_value(key, line.value, ctid, version)
            except Invalid as exc:
                notes.append(Note(line.number, line.key, line.value, "invalid value, skipped "
                                  "by vzctl"))
                if exc.partial and key in ACCUMULATE:  # the tokens before the bad one count
                    values[key] = accumulate(key, values.get(key), exc.partial)
                    used.setdefault(key, []).append(line.number)
                elif exc.partial and key == "NETIF" and key not in values:
                    _take(values, used, key, exc.partial, line.number)
                continue
            if key in ACCUMULATE:
                values[key] = accumulate(key, values.get(key), value)
                used.setdefault(key, []).append(line.number)
            elif key in LAST_WINS or key not in values:
                if key in values:
                    notes.append(Note(used[key][-1], key, "", "overridden by a later line"))
                _take(values, used, key, value, line.number)
            else:
                notes.append(Note(line.number, line.key, line.value, "duplicate, ignored by "
                                  "vzctl (the first line wins)"))
    else:
        last: dict[str, Line] = {}
        for line in parsed:
            if line.skipped:
                notes.append(Note(line.number, line.key, line.value, line.skipped))
                continue
            key = canonical_key(line.key, version)
            if key in last:
                notes.append(Note(last[key].number, key, last[key].value, "overridden by a "
                                  "later line (the last line wins)"))
            last[key] = line
        for key, line in last.items():
            try:
                value = parse_value(key, line.value, ctid, version)
            except Invalid as exc:
                notes.append(Note(line.number, line.key, line.value, "invalid value"))
                if exc.partial and key in ("IP_ADDRESS", "NETIF"):
                    _take(values, used, key, exc.partial, line.number)
                continue
            _take(values, used, key, value, line.number)
    return Conf(values, {k: tuple(v) for k, v in used.items()}, tuple(parsed), tuple(notes))


def _take(values: dict[str, Any], used: dict[str, list[int]], key: str, value: Any,
          number: int) -> None:
    values[key] = value
    used[key] = [number]


def merged(base: Conf, over: Conf) -> Conf:
    """vz.conf with the container's file laid over it, key by key (vzctl's reread order)."""
    if not base.values:
        return over
    return Conf({**base.values, **over.values}, over.used, over.lines, over.notes)
