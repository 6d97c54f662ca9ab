"""Native text read the way the native tools read it.

Every tool the drivers talk to (LXC's config parser, glibc's resolv.conf reader, busybox sh,
the lxc-* and vz* tools' output, /proc files) ends a line at LF and nowhere else. Python's
`str.splitlines` also breaks at CR, VT, FF, FS, GS, RS, NEL, U+2028 and U+2029: a reader built
on it sees two lines where the tool sees one, and a value written as one harmless line would be
read back (and rewritten) as two. Drivers split with `lines` only.
"""

from __future__ import annotations

import re


def lines(text: str) -> list[str]:
    """The lines of `text` as a tool reading it with getline/fgets sees them: split at LF only;
    a final LF ends the last line rather than starting an empty one."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def last_line(text: str) -> str:
    """The last non-blank line (what a failing tool's message usually is), or ''."""
    for line in reversed(lines(text)):
        if line.strip():
            return line.strip()
    return ""


_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape_octal(field: str) -> str:
    """A field of fstab, /proc/mounts or mountinfo: the kernel and mount(8) write space, tab,
    newline and backslash as `\\040`, `\\011`, `\\012`, `\\134`."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field) if "\\" in field else field


_BLANKS = re.compile(r"[ \t]+")


def words(line: str) -> list[str]:
    """The fields of a native line, as C readers (getmntent, sscanf, the LXC and glibc
    parsers) split it: at runs of blanks and tabs; no other character separates."""
    stripped = line.strip(" \t")
    return _BLANKS.split(stripped) if stripped else []
