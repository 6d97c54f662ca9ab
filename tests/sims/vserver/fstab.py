"""Mounts a start makes from `fstab`, `fstab.local` and `fstab.remote` (native-formats.md §2.3).

Entries whose target is `/` come from `fstab` only and are mounted first; then the other
`fstab` entries, then `fstab.local`, then `fstab.remote` (in the guest's network context).
Targets are relative to the guest root. The files are read as util-vserver's secure-mount
reads them (src/secure-mount.c `mountFstab`, `parseFstabLine`): lines split at LF only,
fields at C isspace (blank, tab, VT, FF, CR) with no unescaping; blank lines and lines whose
first field starts with `#` are skipped, as are `swap` entries; a line with fewer than four
fields (source, target, type, options) is a syntax error that fails the mount, and the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .tree import decode

FILES = ("fstab", "fstab.local", "fstab.remote")
_C_SPACE = " \t\n\v\f\r"
_FIELDS = re.compile("[ \t\n\v\f\r]+")


class FstabError(Exception):
    """secure-mount's "FILE:LINE:COL: syntax error"."""


@dataclass(frozen=True)
class Entry:
    source: str
    target: str
    fstype: str
    options: str
    origin: str  # which file it came from

    def record(self, vdir: Path, owner: str) -> dict[str, str]:
        host_target = str(vdir / self.target.lstrip("/")) if self.target != "/" else str(vdir)
        return {"source": self.source, "target": self.target, "host_target": host_target,
                "type": self.fstype, "options": self.options, "fstab": self.origin,
                "owner": owner}


def parse(path: Path) -> list[Entry]:
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(decode(path.read_bytes()).split("\n"), 1):
        stripped = line.strip(_C_SPACE)
        if not stripped or stripped.startswith("#"):
            continue
        fields = _FIELDS.split(stripped)
        if len(fields) < 4:
            column = len(line) - len(line.lstrip(_C_SPACE)) + len(" ".join(fields)) + 1
            raise FstabError(f"{path}:{number}:{column}: syntax error")
        if fields[2] == "swap":
            continue
        entries.append(Entry(fields[0], fields[1], fields[2], fields[3], path.name))
    return entries


def root_entries(cfgdir: Path) -> list[Entry]:
    return [e for e in parse(cfgdir / "fstab") if e.target == "/"]


def other_entries(cfgdir: Path) -> list[Entry]:
    result = []
    for name in FILES:
        result += [e for e in parse(cfgdir / name) if e.target != "/"]
    return result


def any_fstab(cfgdir: Path) -> bool:
    return any((cfgdir / name).exists() for name in FILES)
