"""The one in-memory model of desired and live state (DESIGN §4)."""

from reconciler.model.domain import CONTAINER_TYPES, DOMAIN_TYPES, Domain
from reconciler.model.network import Network
from reconciler.model.profile import Profile, apply_profile
from reconciler.model.types import canonical

Spec = Domain | Network | Profile
KINDS: dict[str, type[Domain] | type[Network] | type[Profile]] = {
    "Domain": Domain,
    "Network": Network,
    "Profile": Profile,
}

__all__ = ["CONTAINER_TYPES", "DOMAIN_TYPES", "KINDS", "Domain", "Network", "Profile", "Spec",
           "apply_profile", "canonical"]
