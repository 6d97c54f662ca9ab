"""A Profile is a named bundle of domain settings (OpenVZ's `vps.basic` sample is one).

A domain naming a profile gets the profile's settings under its own: the domain wins field by
field, and for `limits` key by key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from reconciler.model.domain import (
    Beancounters,
    Console,
    Cpu,
    Dns,
    Domain,
    Init,
    Memtune,
    Quota,
    Scheduler,
)
from reconciler.model.types import Frozen, Name, Size, Text, canonical

MERGED_DICTS = ("limits",)


class Profile(Frozen):
    kind: Literal["Profile"] = "Profile"
    name: Name
    description: Text | None = None
    autostart: bool | None = None
    memory: Size | None = None
    memtune: Memtune | None = None
    cpu: Cpu | None = None
    limits: Beancounters = Field(default_factory=dict)
    quota: Quota | None = None
    scheduler: Scheduler | None = None
    init: Init | None = None
    console: Console | None = None
    dns: Dns | None = None
    removal: Literal["keep", "purge"] | None = None


def apply_profile(domain: Domain, profile: Profile) -> Domain:
    """The domain with the profile's settings filled in where the domain has none."""
    base: dict[str, Any] = profile.model_dump(mode="json", exclude={"kind", "name", "description"},
                                              exclude_none=True, exclude_defaults=True)
    own = canonical(domain)
    merged = {**own, **{k: v for k, v in base.items() if k not in own}}
    for key in MERGED_DICTS:
        if key in base and key in own:
            merged[key] = {**base[key], **own[key]}
    merged["profile"] = None
    return Domain.model_validate(merged)
