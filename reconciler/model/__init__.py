"""The one in-memory model of desired and live state (DESIGN §4).

The spec classes (and pydantic under them) load on first use (`reconciler.lazy`):
`reconciler.model.fields` and `reconciler.model.units`, which commands that never read a spec
need, stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.lazy import exports

if TYPE_CHECKING:
    from reconciler.model.domain import CONTAINER_TYPES, DOMAIN_TYPES, Domain
    from reconciler.model.network import Network
    from reconciler.model.profile import Profile, apply_profile
    from reconciler.model.types import canonical

    Spec = Domain | Network | Profile
    KINDS: dict[str, type[Domain] | type[Network] | type[Profile]]

__all__ = ["CONTAINER_TYPES", "DOMAIN_TYPES", "KINDS", "Domain", "Network", "Profile", "Spec",
           "apply_profile", "canonical"]
_load = exports(__name__, {
    "CONTAINER_TYPES": "domain", "DOMAIN_TYPES": "domain", "Domain": "domain",
    "Network": "network", "Profile": "profile", "apply_profile": "profile",
    "canonical": "types"}, globals())


def __getattr__(name: str) -> Any:
    if name in ("KINDS", "Spec"):
        kinds = {kind: _load(kind) for kind in ("Domain", "Network", "Profile")}
        globals()["KINDS"] = kinds
        globals()["Spec"] = kinds["Domain"] | kinds["Network"] | kinds["Profile"]
        return globals()[name]
    return _load(name)
