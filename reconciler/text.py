"""Text shown to people and written into logs: escaped, so a file name or a value can never
forge a line, move the cursor, recolour the terminal or reorder what is around it.

Names are checked by the model, but file names, paths from the host and tools' messages are
not: every one of them goes through `printable` before it is printed.
"""

from __future__ import annotations

import os
import re
from typing import TextIO

# C0/C1 controls (ANSI escapes start with ESC or CSI), DEL, the Unicode line and paragraph
# separators, and the bidirectional overrides that reorder what a terminal shows
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` with every unsafe character written as a Python escape (`\\n`, `\\x1b`,
    `\\u2028`); safe text comes back unchanged."""
    value = str(text)
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], value) if _UNSAFE.search(value) \
        else value


def markdown_cell(text: object) -> str:
    """`printable`, with what would end a Markdown table cell or code span escaped too."""
    return printable(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def wants_color(stream: TextIO, disabled: bool = False) -> bool:
    """Colour only at a terminal, and never when `--no-color` or the NO_COLOR convention
    (no-color.org: set and not empty) says no."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
