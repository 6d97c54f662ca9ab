"""Concepts of the model that every layer names the same way: an object's identity, the
fields that steer the engine rather than the host, settings one level down (`cpu.shares`),
and which filesystem is the root.

Specs cross the driver boundary as canonical dicts (`canonical`), so these work on plain data.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple


class Ref(NamedTuple):
    """An object's identity. A tuple, so hashing and comparing it (done for every object in
    every plan) runs in C."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


# Fields that steer the engine, not the host: changing one only rewrites the stored stamp.
POLICY_FIELDS = frozenset({"state", "protect", "removal", "allow_replace", "depends_on", "hosts",
                           "profile", "title", "description", "restart", "window", "health",
                           "allow_move"})

# Fields holding settings, compared (and given update classes) one setting at a time.
NESTED = frozenset({"cpu", "memtune", "quota", "scheduler", "dns", "init", "console", "os"})


def flatten(spec: dict[str, Any]) -> dict[str, Any]:
    """Nested settings one level down (`cpu.shares`), so update classes can be per setting."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in NESTED and isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


def root_of(filesystems: Any) -> Any:
    """The filesystem mounted at `/` in a canonical `filesystems` list (None if none)."""
    for fs in filesystems or ():
        if isinstance(fs, dict) and fs.get("target") == "/":
            return fs
    return None


# Values people must not see in plans, logs, the journal or the status: environment values
# carry tokens and passwords. They are shown as a digest, which still tells a change.
SECRET_FIELDS = frozenset({"init.env"})


def digest(value: object) -> str:
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:12]


def conceal(field_name: str, value: Any) -> Any:
    """`value` of flattened field `field_name` as it may be shown."""
    if field_name in SECRET_FIELDS and isinstance(value, dict):
        return {key: digest(item) for key, item in value.items()}
    return value


def concealed(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """A canonical spec as it may be shown: secret values replaced by their digests."""
    if not spec or not isinstance(spec.get("init"), dict) or "env" not in spec["init"]:
        return spec
    init = spec["init"]
    return {**spec, "init": {**init, "env": conceal("init.env", init["env"])}}
