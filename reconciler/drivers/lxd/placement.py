"""Pure: where instances run in an LXD cluster, and what a spec's `target` means there.

A target is a member (`node2`) or a cluster group (`@ssd`), as `lxc launch --target` takes
it. An instance satisfies its target when it runs on that member or on a member of that
group. LXD moves instances itself when a member is evacuated (`lxc cluster evacuate`): it
records where an instance came from in `volatile.evacuate.origin` and moves it back on
restore. Such an instance still satisfies the target its spec names: the cluster moved it,
and undoing that would fight the operator who drained the member. Anywhere else, a location
that does not satisfy the target is drift (someone moved it by hand), which the plan undoes
with a move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EVACUATED_FROM = "volatile.evacuate.origin"
# LXD's location of an instance on a server that is not clustered
STANDALONE = ("", "none")


@dataclass(frozen=True)
class Member:
    name: str
    status: str                 # Online, Evacuated, Offline, Blocked
    groups: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.status == "Online"


@dataclass(frozen=True)
class Cluster:
    members: Mapping[str, Member]

    @classmethod
    def from_listing(cls, listing: Iterable[dict[str, Any]]) -> Cluster:
        members = {}
        for item in listing:
            name = str(item.get("server_name", ""))
            if name:
                members[name] = Member(name, str(item.get("status", "")),
                                       tuple(str(g) for g in item.get("groups") or ()))
        return cls(members)

    def group(self, name: str) -> list[Member]:
        return [m for m in self.members.values() if name in m.groups]

    def satisfies(self, location: str, target: str) -> bool:
        if target.startswith("@"):
            member = self.members.get(location)
            return member is not None and target[1:] in member.groups
        return location == target

    def refusal(self, target: str) -> str | None:
        """Why nothing can be placed at `target` now (None: it can)."""
        if target.startswith("@"):
            members = self.group(target[1:])
            if not members:
                return f"the cluster has no group {target[1:]!r}"
            if not any(m.usable for m in members):
                return f"no member of group {target[1:]} is online"
            return None
        member = self.members.get(target)
        if member is None:
            known = ", ".join(sorted(self.members)) or "none"
            return f"the cluster has no member {target!r} (members: {known})"
        if not member.usable:
            return f"member {target} is {member.status.lower()}; restore it or choose another"
        return None

    def pick(self, target: str, load: Mapping[str, int]) -> str:
        """The member to move an instance to: the target member, or the online member of the
        target group running the fewest instances (as LXD's own scheduler places them)."""
        if not target.startswith("@"):
            return target
        members = sorted((m for m in self.group(target[1:]) if m.usable),
                         key=lambda m: (load.get(m.name, 0), m.name))
        return members[0].name if members else target


@dataclass(frozen=True)
class Placement:
    """An instance's target as the plan compares it, and the move the cluster made itself."""

    target: str | None
    moved_from: str | None = None


def placement(location: str, last_target: str | None, config: Mapping[str, Any],
              cluster: Cluster | None, adopting: bool) -> Placement:
    """The live `target` of an instance at `location`. A target the last-applied spec names
    reads back as that target wherever it is satisfied, or where an evacuation moved the
    instance from a member satisfying it; else as the member it is on. Without a managed
    target there is none, except for an instance being imported in a cluster, which is
    pinned to where it runs."""
    if cluster is None or location in STANDALONE:
        return Placement(None)
    if last_target is None:
        return Placement(location if adopting else None)
    if cluster.satisfies(location, last_target):
        return Placement(last_target)
    origin = config.get(EVACUATED_FROM)
    if isinstance(origin, str) and origin and cluster.satisfies(origin, last_target):
        return Placement(last_target, moved_from=origin)
    return Placement(location)
