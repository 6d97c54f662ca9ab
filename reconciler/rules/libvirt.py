"""libvirt's hypervisors (the `libvirt` driver, one technology per URI scheme) and its virtual
networks.

A running domain takes balloon memory, memtune and cputune changes (the LXC driver does not
enforce the vCPU count, so a new count only needs the definition; QEMU's <vcpu> is a maximum no
running guest can change). Fields libvirt has no element for live only in our metadata, so
changing one is a define: live. A new uuid or type is a new domain, and so is a new root the
driver built from a template (it is the guest's own storage); other mounts change at the next
start.
"""

from __future__ import annotations

from typing import Any

from reconciler.rules.base import Refusal, Technology, UpdateClass

# the roots the driver can build itself for hypervisors that cannot build from templates
BUILT_TEMPLATES = frozenset({"busybox", "empty"})
# fields kept only in our metadata: changing one is a define
METADATA_ONLY = frozenset({"autostart", "start_order", "hostname", "id", "limits", "scheduler.*",
                           "dns.*"})
_TUNABLES = frozenset({"current_memory", "memtune.hard_limit", "memtune.soft_limit",
                       "memtune.swap_hard_limit", "cpu.shares", "cpu.period", "cpu.quota"})
_LIVE = {
    "lxc": _TUNABLES | {"cpu.count"},
    "qemu": _TUNABLES,
    "test": frozenset({"current_memory"}),
    "openvz": frozenset({"memtune.hard_limit", "memtune.soft_limit", "memtune.min_guarantee"}),
    "vz": frozenset({"current_memory"}),
    "xen": frozenset({"current_memory"}),
}
# URI scheme -> the domain types that hypervisor runs
SCHEME_TYPES = {"lxc": ("lxc",), "test": ("test",), "qemu": ("kvm", "qemu"),
                "openvz": ("openvz",), "vz": ("vz",), "xen": ("xen",)}
# hypervisors that build template roots themselves (nothing is built by the driver)
BUILDS_ITS_OWN = frozenset({"openvz", "vz"})


def _root_change(old_root: Any, new_root: Any) -> UpdateClass:
    owned = any((r or {}).get("type") == "template" for r in (old_root, new_root))
    return "recreate" if owned else "restart"


def _check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out: list[Refusal] = []
    if tech.templates is None:
        return out
    for index, fs in enumerate(spec.get("filesystems", ())):
        if fs.get("type") != "template":
            continue
        where = f"filesystems.{index}"
        if fs.get("name") not in tech.templates:
            out.append(Refusal(f"{where}.name", f"template {fs.get('name')!r} is not one the "
                               f"libvirt driver can build ({', '.join(sorted(tech.templates))}); "
                               "build the directory yourself and mount it"))
        for key in ("method", "release", "options"):
            if fs.get(key):
                out.append(Refusal(f"{where}.{key}", f"the driver's {fs.get('name')} template "
                                   f"takes no {key}"))
    return out


def _domain_technology(scheme: str) -> Technology:
    own = scheme in BUILDS_ITS_OWN
    return Technology(
        name=f"libvirt-{scheme}", types=frozenset(SCHEME_TYPES[scheme]),
        live=_LIVE[scheme] | METADATA_ONLY, recreate=frozenset({"uuid", "type"}),
        mounts="restart", root_change=_root_change, check=_check,
        templates=None if own else BUILT_TEMPLATES, builds="none" if own else "template")


LIBVIRT = {scheme: _domain_technology(scheme) for scheme in SCHEME_TYPES}


NETWORK = Technology(
    name="libvirt-network", types=frozenset({"network"}),
    live=METADATA_ONLY, recreate=frozenset({"uuid", "type"}), builds="none")
