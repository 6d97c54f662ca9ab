"""Each technology's rules, kept once: which fields it can express at all, which of them a
running guest takes live, which need a restart and which mean a new guest.

The real drivers and `sim` read the same `Technology` values, so a preview on `sim` says what
the real host will do. A technology is a hypervisor as a driver reaches it: LXC through its
tools (`lxc`), each libvirt hypervisor (`libvirt-lxc`, `libvirt-qemu`, ...), OpenVZ, Linux-
VServer, and libvirt's virtual networks.

Pure data and plain functions over canonical specs; no host access here.
"""

from reconciler.rules.base import (
    Refusal,
    RefusalCause,
    Technology,
    UpdateClass,
    matches,
    update_class,
)
from reconciler.rules.registry import TECHNOLOGIES, technology

__all__ = ["TECHNOLOGIES", "Refusal", "RefusalCause", "Technology", "UpdateClass", "matches",
           "technology", "update_class"]
