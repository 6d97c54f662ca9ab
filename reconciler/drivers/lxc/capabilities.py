"""The model's `capabilities` <-> LXC's `lxc.cap.drop` and `lxc.cap.keep`. Pure.

LXC starts from its own set (every capability, less what included configs such as
common.conf drop) and takes `lxc.cap.drop` from it, or keeps only `lxc.cap.keep` (`none`: no
capability at all); it refuses to start with both, and an empty value clears the list so far.
So the policies read and write as:

    default + drop    lxc.cap.drop = NAMES          (LXC's set, less these)
    allow + drop      lxc.cap.drop =                (every capability, less these: the empty
                      lxc.cap.drop = NAMES           value clears what included configs drop)
    deny + keep       lxc.cap.drop =                (only these)
                      lxc.cap.keep = NAMES | none

libvirt's converter reads a plain `lxc.cap.drop` as `allow`, which is LXC's meaning only when
no included config drops anything; here it stays `default`, so a config means what LXC makes of
it. `default` with capabilities kept cannot be said (the rules refuse it).
"""

from __future__ import annotations

from typing import Any

from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.lxc.provenance import Provenance
from reconciler.drivers.text import words
from reconciler.model.domain import CAPABILITIES

FIELD = "capabilities"
DROP, KEEP = "lxc.cap.drop", "lxc.cap.keep"
_KNOWN = frozenset(CAPABILITIES)


def read(cfg: LxcConfig, marks: Provenance) -> dict[str, Any] | None:
    drops = cfg.values(DROP)
    keeps = cfg.values(KEEP)
    if keeps and any(v.strip() for v in keeps):
        kept = _keep_list(keeps)
        if kept is None:
            return None
        for value in keeps:
            marks.mark(FIELD, KEEP, value)
        for value in drops:
            if not value.strip():  # the clear written before keep (LXC refuses both)
                marks.mark(FIELD, DROP, value)
        return {"policy": "deny", "keep": kept}
    if not drops:
        return None
    dropped: set[str] = set()
    cleared = False
    for value in drops:
        names = words(value)
        if not names:
            dropped.clear()
            cleared = True
        elif set(names) <= _KNOWN:
            dropped.update(names)
        else:
            return None  # a number or a name LXC may know and the model does not
    for value in drops:
        marks.mark(FIELD, DROP, value)
    return {"policy": "allow" if cleared else "default", "drop": sorted(dropped)}


def _keep_list(values: list[str]) -> list[str] | None:
    kept: list[str] = []
    for value in values:
        for name in words(value):
            if name == "none":
                kept.clear()
            elif name in _KNOWN:
                kept.append(name)
            else:
                return None
    return sorted(set(kept))


def config_pairs(caps: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not caps:
        return []
    policy = caps.get("policy", "default")
    if policy == "deny":
        return [(DROP, ""), (KEEP, " ".join(caps.get("keep", ())) or "none")]
    drop = " ".join(caps.get("drop", ()))
    clear = [(DROP, "")] if policy == "allow" else []
    return clear + ([(DROP, drop)] if drop else [])


def write(cfg: LxcConfig, caps: dict[str, Any] | None) -> None:
    """Make the capability keys say `caps` (None: LXC's own set), where they stood."""
    pairs = config_pairs(caps)
    if [(k, v) for k, v in cfg.items() if k in (DROP, KEEP)] == pairs:
        return
    at = cfg.remove_where(lambda key: key in (DROP, KEEP))
    cfg.insert(at, pairs)
