"""Every technology by name, and the one each domain type is previewed as by default."""

from __future__ import annotations

from reconciler.errors import ConfigError
from reconciler.rules.base import Technology
from reconciler.rules.libvirt import LIBVIRT, NETWORK
from reconciler.rules.lxc import LXC
from reconciler.rules.lxd import LXD, LXD_NETWORK, LXD_RAW
from reconciler.rules.openvz import OPENVZ, OPENVZ7
from reconciler.rules.vserver import VSERVER

TECHNOLOGIES: dict[str, Technology] = {
    t.name: t for t in (LXC, OPENVZ, OPENVZ7, VSERVER, NETWORK, *LIBVIRT.values(), LXD,
                        LXD_RAW, LXD_NETWORK)}

# what `sim` imitates for each domain type (and "network") unless told otherwise: the driver
# the shipped agent config (deploy/agent.yaml) runs it with: libvirt for LXC guests (lxc:///),
# the hypervisors only libvirt runs, and networks; vzctl for openvz, util-vserver for vserver.
# `drivers: {sim: {imitate: {lxc: lxc}}}` previews LXC guests as the lxc driver instead;
# `{lxc: lxd, network: lxd-network}` previews them as an LXD server or cluster runs them.
DEFAULT_IMITATION = {"lxc": "libvirt-lxc", "openvz": "openvz", "vserver": "vserver",
                     "kvm": "libvirt-qemu", "qemu": "libvirt-qemu", "test": "libvirt-test",
                     "xen": "libvirt-xen", "vz": "libvirt-vz", "network": "libvirt-network"}


def technology(name: str) -> Technology:
    try:
        return TECHNOLOGIES[name]
    except KeyError:
        raise ConfigError(f"unknown technology {name!r}; valid: "
                          f"{', '.join(sorted(TECHNOLOGIES))}") from None
