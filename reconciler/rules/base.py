"""What a technology rule is, and the one function that turns rules into an update class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.model.fields import POLICY_FIELDS, root_of

UpdateClass = Literal["live", "restart", "recreate"]
RefusalCause = Literal["unsupported", "policy", "replace", "protect", "foreign", "breaker",
                       "restart"]
Builds = Literal["every", "template", "none"]


@dataclass(frozen=True)
class Refusal:
    """Why an object is not changed as its spec asks: the field to blame (dotted,
    `interfaces.0.type`; '' for the whole object), the reason, and what would allow it
    (a policy key, `allow_replace: true`, ...) when something would."""

    field: str
    reason: str
    cause: RefusalCause = "unsupported"
    allow: str | None = None

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        allow = f" (allowed by {self.allow})" if self.allow else ""
        return f"{where}{self.reason}{allow}"

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason, "cause": self.cause,
                "allow": self.allow}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Refusal:
        return cls(str(data.get("field", "")), str(data.get("reason", "")),
                   data.get("cause", "unsupported"), data.get("allow"))


Check = Callable[[dict[str, Any], "Technology"], list[Refusal]]
RootChange = Callable[[Any, Any], UpdateClass]


def _no_refusals(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    return []


def _recreate_on_new_root(old_root: Any, new_root: Any) -> UpdateClass:
    return "recreate"


@dataclass(frozen=True)
class Technology:
    """One technology's rules.

    live / recreate: flattened field names (`cpu.shares`) or prefixes (`cpu.*`); a field in
    neither needs a restart. `mounts`: the class of a change of the filesystems that keeps
    the root; `root_change(old_root, new_root)`: the class of one that changes it.
    `check(spec, tech)`: what of a canonical desired spec this technology cannot express.
    `templates`: the template names it can build a root from (None: any name)."""

    name: str
    types: frozenset[str]
    live: frozenset[str] = frozenset()
    recreate: frozenset[str] = frozenset()
    mounts: UpdateClass = "restart"
    root_change: RootChange = _recreate_on_new_root
    check: Check = _no_refusals
    templates: frozenset[str] | None = None
    builds: Builds = "every"  # which new guests get a provision step (see `provisions`)
    first_id: int | None = None  # numeric ids allocated from here (OpenVZ CTID, VServer ctx)
    guest_exec: bool = False  # runs a command inside a guest (a health check's `command`)
    notes: tuple[str, ...] = field(default=())

    def refusals(self, spec: dict[str, Any]) -> list[Refusal]:
        return self.check(spec, self)

    def provisions(self, spec: dict[str, Any]) -> bool:
        """Whether a new guest of this spec is built before its define: every one (LXC,
        OpenVZ, VServer make the guest's directory), those with a template root (libvirt
        builds only those), or none (networks; hypervisors that build their own roots)."""
        if self.builds == "template":
            return any(fs.get("type") == "template" for fs in spec.get("filesystems", ()))
        return self.builds == "every"


def matches(field_name: str, patterns: frozenset[str]) -> bool:
    if field_name in patterns:
        return True
    head = field_name.split(".", 1)[0]
    return f"{head}.*" in patterns and "." in field_name


def update_class(tech: Technology, field_name: str, old: Any = None,
                 new: Any = None) -> UpdateClass:
    """How `tech` makes a change of one (flattened) field. With old and new values, a change
    of the filesystems that keeps the root is told from a new root."""
    if field_name in POLICY_FIELDS:
        return "live"
    if field_name == "filesystems" and (old is not None or new is not None):
        old_root, new_root = root_of(old), root_of(new)
        return tech.mounts if old_root == new_root else tech.root_change(old_root, new_root)
    if matches(field_name, tech.recreate):
        return "recreate"
    if matches(field_name, tech.live):
        return "live"
    return "restart"
