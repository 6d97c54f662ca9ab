"""libvirt's hypervisors (the `libvirt` driver, one technology per URI scheme) and its virtual
networks.

A running domain takes balloon memory, memtune and cputune changes (the LXC driver does not
enforce the vCPU count, so a new count only needs the definition; QEMU's <vcpu> is a maximum no
running guest can change). Fields libvirt has no element for live only in our metadata, so
changing one is a define: live. A new uuid or type is a new domain, and so is a new root the
driver built from a template (it is the guest's own storage); other mounts change at the next
start. Block I/O tuning and capabilities take effect at the next start (the driver pushes only
memory and CPU tunables into a running domain).
"""

from __future__ import annotations

from typing import Any

from reconciler.rules.base import Refusal, Technology, UpdateClass
from reconciler.rules.lxd import single_host

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


# the capabilities libvirt's <features><capabilities> names (domaincommon.rng)
LIBVIRT_CAPABILITIES = frozenset({
    "audit_control", "audit_write", "block_suspend", "chown", "dac_override", "dac_read_search",
    "fowner", "fsetid", "ipc_lock", "ipc_owner", "kill", "lease", "linux_immutable",
    "mac_admin", "mac_override", "mknod", "net_admin", "net_bind_service", "net_broadcast",
    "net_raw", "setgid", "setfcap", "setpcap", "setuid", "sys_admin", "sys_boot", "sys_chroot",
    "sys_module", "sys_nice", "sys_pacct", "sys_ptrace", "sys_rawio", "sys_resource",
    "sys_time", "sys_tty_config", "syslog", "wake_alarm"})
# hypervisors that apply <blkiotune> (the others keep it in the definition and ignore it)
_BLKIO = frozenset({"lxc", "qemu", "test"})


def _check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    scheme = tech.name.removeprefix("libvirt-")
    out = _check_nics(spec.get("interfaces", ()), scheme) + single_host(spec)
    out += _check_container_features(spec, scheme)
    for index, fs in enumerate(spec.get("filesystems", ())):
        if fs.get("mode") is not None:
            out.append(Refusal(f"filesystems.{index}.mode", "libvirt's ram filesystem has no "
                               "mode (its tmpfs gets the default, 1777)"))
    return out + _check_templates(spec, tech)


def _check_nics(nics: Any, scheme: str) -> list[Refusal]:
    out = []
    for index, nic in enumerate(nics):
        kind = nic.get("type")
        if kind == "vlan":
            out.append(Refusal(f"interfaces.{index}.type", "libvirt cannot make a VLAN device "
                               "for a guest; create it on the host (ip link add link PARENT "
                               "name PARENT.ID type vlan id ID) and move it in as a hostdev "
                               "interface"))
        elif kind in ("empty", "none") and scheme != "lxc":
            out.append(Refusal(f"interfaces.{index}.type", f"a {kind} interface is a container's "
                               "network namespace; only libvirt's LXC driver has one"))
    return out


def _check_container_features(spec: dict[str, Any], scheme: str) -> list[Refusal]:
    out = []
    caps = spec.get("capabilities") or {}
    if caps and scheme != "lxc":
        out.append(Refusal("capabilities", "a capability bounding set is a container setting; "
                           "only libvirt's LXC driver applies one"))
    elif caps:
        named = {*caps.get("keep", ()), *caps.get("drop", ())}
        unknown = sorted(named - LIBVIRT_CAPABILITIES)
        if unknown:
            out.append(Refusal("capabilities", f"libvirt cannot name {', '.join(unknown)} in "
                               "<capabilities>"))
    if spec.get("blkiotune") and scheme not in _BLKIO:
        out.append(Refusal("blkiotune", f"libvirt's {scheme} driver does not apply "
                           "<blkiotune>"))
    return out


def _check_templates(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
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
