"""Three-way diff: desired vs last-applied says what the user changed, last-applied vs live
says what drifted. Only fields the user manages (set now, or set at the last apply) are
compared, so whatever the host fills in by itself never shows as a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from reconciler.drivers.base import Driver, LiveObject
from reconciler.model.fields import POLICY_FIELDS, Ref, conceal
from reconciler.rules import UpdateClass

Origin = Literal["spec", "drift"]
# Identity is never a change, and run state is planned on its own.
_NOT_FIELDS = frozenset({"kind", "name", "state"})


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any
    update: UpdateClass
    origin: Origin

    def to_json(self, secrets: bool = False) -> dict[str, Any]:
        """As data; secret values (environment) as digests unless `secrets`."""
        old, new = (self.old, self.new) if secrets else (conceal(self.field, self.old),
                                                         conceal(self.field, self.new))
        return {"field": self.field, "old": old, "new": new, "class": self.update,
                "origin": self.origin}


def diff_object(want: dict[str, Any], live: LiveObject,
                driver: Driver) -> tuple[FieldChange, ...]:
    """The field changes that bring `live` to `want` (a canonical spec, `flatten`ed)."""
    have = live.flat
    last = live.flat_last
    changes = []
    for field in (want.keys() | last.keys()) - _NOT_FIELDS:
        new = want.get(field)
        # policy lives only in our stamp; everything else is read from the host
        old = last.get(field) if field in POLICY_FIELDS else have.get(field)
        if new == old or _same(new, old):
            continue
        origin: Origin = "spec" if not _same(new, last.get(field)) else "drift"
        cls = driver.update_class(live.ref, live.type, field, old, new)
        changes.append(FieldChange(field, old, new, cls, origin))
    return tuple(sorted(changes, key=lambda c: c.field))


def _same(a: Any, b: Any) -> bool:
    """Equal, with 'unset' and 'empty' the same (an empty list is the default of a list)."""
    if _unset(a) and _unset(b):
        return True
    return bool(a == b)


def _unset(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {}


def worst(changes: tuple[FieldChange, ...]) -> UpdateClass | None:
    classes = {c.update for c in changes if c.field not in POLICY_FIELDS}
    for cls in ("recreate", "restart", "live"):
        if cls in classes:
            return cls
    return "live" if changes else None


def referenced_networks(spec: dict[str, Any], bridges: dict[str, Ref] | None = None
                        ) -> set[Ref]:
    """The networks a domain's NICs use: by name (`type: network`), or through the bridge a
    network makes (`type: bridge` on a bridge named in a Network spec, `bridges`), as an LXC
    container joins a libvirt network."""
    out = set()
    for nic in spec.get("interfaces", ()):
        source = nic.get("source")
        if nic.get("type") == "network" and source:
            out.add(Ref("Network", source))
        elif nic.get("type") == "bridge" and bridges and source in bridges:
            out.add(bridges[source])
    return out
