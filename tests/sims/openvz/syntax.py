"""Splitting one config line into KEY and value, as each vzctl version does (reference §1.2).

Both versions first drop every unescaped backslash in the whole line. Then:

* legacy: leading blanks skipped; empty or `#` lines ignored; trailing blanks cut; no `=` is a
  warning; the key is everything before the first `=` (not trimmed); a value starting with `"`
  runs to the *last* `"` on the line (text after it dropped), and no closing quote is a
  warning; single quotes and a later `#` are ordinary text.
* O7: a `#` that begins a word outside quotes ends the line; one `"` or `'` at the end of the
  line is cut, then one right after `=`; pairs are not checked; lines without `=` are skipped
  silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Config files may hold any bytes; surrogateescape keeps them byte for byte through a rewrite.
ENCODING = "utf-8"
ERRORS = "surrogateescape"

# C isspace() in the "C" locale
_SPACE = " \t\n\v\f\r"


@dataclass(frozen=True)
class Parsed:
    key: str
    value: str


@dataclass(frozen=True)
class Skipped:
    """A line that is not a KEY=value pair. `reason` is set when legacy warns about it."""

    reason: str | None = None


def unescape(line: str) -> str:
    """Delete unescaped backslashes: `\\x` becomes `x`, `\\\\` becomes `\\`."""
    out: list[str] = []
    escaped = False
    for ch in line:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)


def parse_legacy(line: str) -> Parsed | Skipped:
    text = unescape(line).lstrip(_SPACE)
    if not text or text[0] == "#":
        return Skipped()
    text = text.rstrip(_SPACE)
    eq = text.find("=")
    if eq < 0:
        return Skipped("'=' not found")
    key, value = text[:eq], text[eq + 1:]
    if not value.startswith('"'):
        return Parsed(key, value)
    value = value[1:]
    close = value.rfind('"')
    if close < 0:
        return Skipped("unmatched quotes")
    return Parsed(key, value[:close])


def uncomment(text: str) -> str:
    """Cut the line at a `#` that starts a word outside quotes (the bash rule)."""
    in_single = in_double = False
    in_word_gap = True  # at the start of the line a word may begin
    for i, ch in enumerate(text):
        if in_single and ch != "'":
            continue
        if in_double and ch != '"':
            continue
        if ch == "'":
            in_single = not in_single
            in_word_gap = False
        elif ch == '"':
            in_double = not in_double
            in_word_gap = False
        elif ch == "#":
            if in_word_gap:
                return text[:i]
        else:
            in_word_gap = ch in _SPACE
    return text


def parse_o7(line: str) -> Parsed | Skipped:
    text = uncomment(unescape(line)).lstrip(_SPACE)
    if not text or text[0] == "#":
        return Skipped()
    text = text.rstrip(_SPACE)
    if text and text[-1] in "\"'":
        text = text[:-1]
    eq = text.find("=")
    if eq < 0:
        return Skipped()
    key, value = text[:eq], text[eq + 1:]
    if value and value[0] in "\"'":
        value = value[1:]
    return Parsed(key, value)


def parse_line(line: str, legacy: bool) -> Parsed | Skipped:
    return parse_legacy(line) if legacy else parse_o7(line)


def read_text(path: Path) -> str:
    return path.read_text(encoding=ENCODING, errors=ERRORS)


def split_lines(data: str) -> list[str]:
    """Lines as fgets() returns them: each keeps its `\\n`, the last may lack one."""
    parts = data.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
