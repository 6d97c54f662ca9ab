"""CT names: `/etc/vz/names/<name>` is a symlink to `/etc/vz/conf/CTID.conf` (reference §1.1).

Names may use letters, digits and ` -+_.`. Setting a name used by another CT is a name error
(legacy 131, O7 137); renaming removes the CT's old link.
"""

from __future__ import annotations

import os
from pathlib import Path

from .console import fail, out
from .ct import Ct
from .paths import Sim


def resolve_name(sim: Sim, name: str) -> str | None:
    """CTID named by `/etc/vz/names/<name>` (a symlink to CTID.conf), or None."""
    link = sim.names_dir / name
    if "/" in name or not link.is_symlink():
        return None
    base = os.path.basename(os.readlink(link))
    stem, dot, ext = base.partition(".")
    if not dot or ext != "conf" or not stem.isdigit():
        return None
    return str(int(stem))


def names_of(sim: Sim, ctid: str) -> list[Path]:
    """Name symlinks that point at this CT's config."""
    if not sim.names_dir.is_dir():
        return []
    return [p for p in sorted(sim.names_dir.iterdir())
            if p.is_symlink() and resolve_name(sim, p.name) == ctid]


def set_name(ct: Ct, name: str) -> None:
    """Point /etc/vz/names/<name> at this CT's config (exit 131 legacy / 137 O7 on errors)."""
    rc = 131 if ct.sim.legacy else 137
    other = resolve_name(ct.sim, name) if name else None
    if other is not None and other != ct.ctid:
        raise fail(rc, f"Conflict: name {name} already used by container {other}"
                   if ct.sim.legacy else f"Name {name} is in use by CT {other}")
    old = ct.conf.get("NAME")
    if old == name and other == ct.ctid:
        return
    if name:
        ct.sim.names_dir.mkdir(parents=True, exist_ok=True)
        link = ct.sim.names_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ct.conf_path)
    for link in names_of(ct.sim, ct.ctid):
        if link.name != name:
            link.unlink()
    if ct.sim.legacy:
        out(f"Name {name} assigned")
