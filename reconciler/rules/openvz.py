"""OpenVZ (vzctl), legacy 3.x/4.x and OpenVZ 7: reference native-formats §1.3-§1.7.

What a running container takes live (`vzctl set --save` pushes it, §1.7): beancounters, vswap
memory (`--ram`), every CPU setting, disk quota limits and grace time, venet addresses, veth
add/del, moved host NICs, hostname, DNS. ONBOOT is read only at host boot, so it is live too.
What needs a restart: turning second-level quota (QUOTAUGIDLIMIT) between 0 and nonzero (both
versions). The rules cannot tell on/off from a change of the number, so every `quota.ugid_limit`
change plans a restart (vzctl itself would take 100 -> 200 live): conservative, and `sim`
plans the same. The CTID, the type, the UUID and a new root template mean a new container.

What OpenVZ cannot say at all is refused, per version (`OPENVZ` legacy, `OPENVZ7`):

* settings it has no key for: init, idmap, scheduler, arch, os, kept XML, current_memory,
  memtune (its beancounters are `limits`, in pages), console, per-uid quotas (`quota.users`:
  second-level limits are set with setquota inside the guest; vzctl has no option for them),
  `start_order` (BOOTORDER starts higher numbers first, the model lower first: no faithful
  mapping), CFS `cpu.period`/`cpu.quota` (use `cpu.limit`, percent of one CPU);
* values vzctl cannot store or read back: a memory or disk size that is not whole pages / KiB,
  `cpu.shares` below 8 (CPUUNITS is 8..500000), a cpuset with `^`, ids at or below 100
  (reserved), a name made of digits that is not the container's id (vzctl reads it as a
  CTID), a nameserver with blanks (the list is split at blanks), a description that vzctl
  would write without escaping and read back changed (a backslash; on OpenVZ 7 also a `#`
  that would start a comment);
* a root that is not an OS template (OpenVZ builds the root in VE_PRIVATE from a template);
  other filesystems (bind mounts are per-container mount scripts the driver does not write);
  template options, method or release; a template the host does not have in its cache;
* NICs: venet is one device (one routed interface without `guest_dev`, addresses only); a
  veth (`bridge`, or `routed` with a `guest_dev`: a veth pair without a bridge) has a guest
  name, MACs, a host name and (legacy) a bridge, no addresses; `hostdev` moves a host NIC in
  (NETDEV); `network` and `direct` do not exist; device names are at most 15 characters;
* OpenVZ 7 only: no `bridge=` in NETIF, QUOTATIME ignored, and the beancounters it no longer
  applies (NUMTCPSOCK, NUMOTHERSOCK, TCPSNDBUF, TCPRCVBUF, OTHERSOCKBUF, DGRAMRCVBUF,
  OOMGUARPAGES, DCACHESIZE).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.model.fields import POLICY_FIELDS
from reconciler.model.units import parse_size
from reconciler.rules.base import Refusal, Technology

PAGE = 4096
FIRST_ID = 101
MAX_ID = 2147483644
IFNAMSIZ = 16  # a device name is at most 15 characters
MIN_CPUUNITS, MAX_CPUUNITS = 8, 500000
NETDEV_FORBIDDEN = ("venet", "tun", "tap", "lo")
O7_IGNORED_UBCS = frozenset({"numtcpsock", "numothersock", "tcpsndbuf", "tcprcvbuf",
                             "othersockbuf", "dgramrcvbuf", "oomguarpages", "dcachesize"})

# the fields the driver maps to vzctl settings (reference §1.3-§1.6)
_MAPPED = frozenset({"name", "type", "id", "uuid", "hostname", "autostart", "memory", "limits",
                     "cpu", "quota", "filesystems", "interfaces", "dns"})
_NOT_OPENVZ = {
    "idmap": "OpenVZ containers have no id map",
    "scheduler": "not an OpenVZ setting (use cpu.shares / cpu.limit)",
    "init": "OpenVZ starts the template's own /sbin/init; there is no init setting",
    "arch": "not an OpenVZ setting",
    "os": "not an OpenVZ setting",
    "xml": "kept libvirt XML is not an OpenVZ setting",
    "devices_xml": "kept libvirt XML is not an OpenVZ setting",
    "current_memory": "not an OpenVZ setting (use memory)",
    "memtune": "not an OpenVZ setting: use limits (beancounters in pages, e.g. privvmpages, "
               "vmguarpages)",
    "console": "not an OpenVZ setting (vzctl console attaches to the container's tty)",
    "start_order": "BOOTORDER starts higher numbers first, start_order lower first; there is "
                   "no faithful mapping",
}
_VENET_NOT = ("gateway", "routes", "mac", "host_dev", "host_mac", "mtu", "link", "model",
              "xml", "ranges", "host_ip", "host_routes")
_VETH_NOT = ("ip", "gateway", "routes", "ranges", "host_ip", "host_routes", "mtu", "link",
             "model", "xml")
_HOSTDEV_NOT = ("ip", "gateway", "routes", "ranges")


def reads_back(value: str, legacy: bool) -> bool:
    """Whether `KEY="value"`, as vzctl writes it (no escaping, §1.2), reads back as `value`.

    Both versions delete every backslash first. Legacy then takes the text up to the last
    `"` of the line, so quotes inside are kept. OpenVZ 7 cuts the line at a `#` that starts a
    word outside quotes (the value's own quotes count), then one quote at each end."""
    if "\\" in value:
        return False
    return legacy or comment_at(f'K="{value}"') is None


def comment_at(text: str) -> int | None:
    """OpenVZ 7's comment rule (bash's): where a `#` that starts a word outside quotes
    begins a comment, or None."""
    single = double = False
    gap = True
    for i, ch in enumerate(text):
        if (single and ch != "'") or (double and ch != '"'):
            continue
        if ch == "'":
            single, gap = not single, False
        elif ch == '"':
            double, gap = not double, False
        elif ch == "#" and gap:
            return i
        else:
            gap = ch in " \t\n\v\f\r"  # C isspace() in the C locale
    return None


def venet_nic(nic: dict[str, Any]) -> bool:
    """A routed NIC without a guest device is the container's venet addresses."""
    return nic.get("type") == "routed" and not nic.get("guest_dev")


def veth_nic(nic: dict[str, Any]) -> bool:
    return nic.get("type") == "bridge" or (nic.get("type") == "routed" and
                                           bool(nic.get("guest_dev")))


def _check(spec: dict[str, Any], tech: Technology, legacy: bool) -> list[Refusal]:
    out = [Refusal(key, why) for key, why in _NOT_OPENVZ.items() if spec.get(key)]
    # a field the driver does not map is refused, named or not: a new model field is never
    # silently dropped on an OpenVZ host
    out += [Refusal(key, "the openvz driver does not manage this setting")
            for key in sorted(spec) if key not in _MAPPED and key not in POLICY_FIELDS
            and key not in _NOT_OPENVZ and spec[key] not in (None, (), [], {})]
    out += _check_identity(spec)
    out += _check_resources(spec, legacy)
    out += _check_filesystems(spec, tech)
    out += _check_interfaces(spec.get("interfaces", ()), legacy)
    dns = spec.get("dns") or {}
    for i, server in enumerate(dns.get("nameservers", ())):
        if not server or any(c in server for c in " \t"):
            out.append(Refusal(f"dns.nameservers.{i}", f"{server!r}: vzctl splits the "
                               "nameserver list at blanks; give one address per item"))
    description = spec.get("description")
    if description is not None and not reads_back(description, legacy):
        out.append(Refusal("description", "vzctl writes DESCRIPTION without escaping and "
                           "would read this back changed (a backslash"
                           + ("" if legacy else ", or a '#' starting a word") + ")"))
    return out


def _check_identity(spec: dict[str, Any]) -> list[Refusal]:
    out = []
    ctid = spec.get("id")
    name = str(spec.get("name", ""))
    if ctid is not None and ctid < FIRST_ID:
        out.append(Refusal("id", f"CTIDs up to {FIRST_ID - 1} are reserved by OpenVZ"))
    if name.isdigit():
        if ctid is not None and int(name) != ctid:
            out.append(Refusal("name", f"vzctl reads the name {name!r} as a CTID; name the "
                               f"container {ctid} or give it a name that is not a number"))
        elif ctid is None and not FIRST_ID <= int(name) <= MAX_ID:
            out.append(Refusal("name", f"a numeric name is the CTID, and {name} is not one "
                               f"({FIRST_ID}..{MAX_ID})"))
    return out


def _check_resources(spec: dict[str, Any], legacy: bool) -> list[Refusal]:
    out = []
    limits = spec.get("limits") or {}
    memory = spec.get("memory")
    if memory is not None:
        if parse_size(memory) % PAGE:
            out.append(Refusal("memory", f"{memory} is not a whole number of 4 KiB pages "
                               "(vzctl --ram rounds it)"))
        if "physpages" in limits:
            out.append(Refusal("memory", "memory and limits.physpages both set PHYSPAGES; "
                               "give one"))
    if not legacy:
        for key in sorted(O7_IGNORED_UBCS & set(limits)):
            out.append(Refusal(f"limits.{key}", "OpenVZ 7 no longer applies this beancounter"))
    cpu = spec.get("cpu") or {}
    for key in ("period", "quota"):
        if cpu.get(key) is not None:
            out.append(Refusal(f"cpu.{key}", "not an OpenVZ setting (use cpu.limit, percent "
                               "of one CPU)"))
    shares = cpu.get("shares")
    if shares is not None and not MIN_CPUUNITS <= shares <= MAX_CPUUNITS:
        out.append(Refusal("cpu.shares", f"CPUUNITS is {MIN_CPUUNITS}..{MAX_CPUUNITS}"))
    if "^" in str(cpu.get("cpuset") or ""):
        out.append(Refusal("cpu.cpuset", "CPUMASK has no exclusions ('^')"))
    quota = spec.get("quota") or {}
    space = quota.get("space")
    if space is not None and any(parse_size(v) % 1024 for v in space):
        out.append(Refusal("quota.space", "DISKSPACE is counted in KiB; give whole KiB"))
    if quota.get("users"):
        out.append(Refusal("quota.users", "per-uid (second-level) limits are set with "
                           "setquota inside the container; vzctl has no option for them "
                           "(quota.ugid_limit turns second-level quota on)"))
    if not legacy and quota.get("time") is not None:
        out.append(Refusal("quota.time", "OpenVZ 7 ignores QUOTATIME"))
    return out


def _check_filesystems(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = []
    for i, fs in enumerate(spec.get("filesystems", ())):
        where = f"filesystems.{i}"
        if fs.get("target") != "/":
            out.append(Refusal(where, "OpenVZ bind mounts are per-container mount scripts, "
                               "which the driver does not write; only the root is managed"))
            continue
        if fs.get("type", "mount") != "template":
            out.append(Refusal(f"{where}.type", "an OpenVZ root is built in VE_PRIVATE from an "
                               "OS template: {type: template, name: TEMPLATE, target: /}"))
            continue
        for key in ("options", "method", "release"):
            if fs.get(key):
                out.append(Refusal(f"{where}.{key}", "vzctl create takes only the OS template's "
                                   "name"))
        name = str(fs.get("name"))
        if tech.templates is not None and name not in tech.templates:
            out.append(Refusal(f"{where}.name", f"OS template {name!r} is not in this host's "
                               "template cache; available: "
                               f"{', '.join(sorted(tech.templates)) or 'none'}"))
    return out


def _check_interfaces(nics: Any, legacy: bool) -> list[Refusal]:
    out = []
    venets = 0
    guest_devs: set[str] = set()
    for i, nic in enumerate(nics):
        where = f"interfaces.{i}"
        kind = nic.get("type")
        if kind not in ("routed", "bridge", "hostdev"):
            out.append(Refusal(f"{where}.type", f"type {kind} is not an OpenVZ NIC; use routed "
                               "(venet), bridge (veth) or hostdev"))
            continue
        if venet_nic(nic):
            venets += 1
            if venets > 1:
                out.append(Refusal(where, "OpenVZ has one venet device: put every routed "
                                   "address in one interface"))
            bad: tuple[str, ...] = _VENET_NOT
        elif veth_nic(nic):
            bad = _VETH_NOT
            if kind == "bridge" and not legacy:
                out.append(Refusal(f"{where}.type", "OpenVZ 7's NETIF has no bridge field; use "
                                   "a veth without bridge (routed with guest_dev) or venet"))
            if kind == "bridge" and not nic.get("guest_dev"):
                out.append(Refusal(f"{where}.guest_dev", "vzctl needs the guest-side name of a "
                                   "veth (ifname), e.g. eth0"))
            dev = nic.get("guest_dev")
            if dev in guest_devs:
                out.append(Refusal(f"{where}.guest_dev", f"two veth NICs named {dev}"))
            guest_devs.add(dev)
        else:  # hostdev
            bad = _HOSTDEV_NOT
            if str(nic.get("source", "")).startswith(NETDEV_FORBIDDEN):
                out.append(Refusal(f"{where}.source", "vzctl does not move venet, tun, tap or "
                                   "lo devices"))
        for key in bad:
            if nic.get(key):
                what = "venet" if venet_nic(nic) else "a veth" if veth_nic(nic) else \
                    "a moved host NIC"
                out.append(Refusal(f"{where}.{key}", f"vzctl cannot set {key} on {what}"))
        for key in ("guest_dev", "host_dev", "source"):
            if len(str(nic.get(key) or "")) >= IFNAMSIZ:
                out.append(Refusal(f"{where}.{key}", f"device names are at most "
                                   f"{IFNAMSIZ - 1} characters"))
    return out


def _check_legacy(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    return _check(spec, tech, legacy=True)


def _check_o7(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    return _check(spec, tech, legacy=False)


OPENVZ = Technology(
    name="openvz", types=frozenset({"openvz"}),
    live=frozenset({"memory", "limits", "cpu.*", "quota.space", "quota.inodes", "quota.time",
                    "interfaces", "hostname", "dns.*", "autostart"}),
    recreate=frozenset({"id", "type", "uuid", "filesystems"}),
    mounts="restart", check=_check_legacy, first_id=FIRST_ID, guest_exec=True,  # vzctl exec3
    notes=("quota.ugid_limit: vzctl needs a restart only to turn it on or off; every change "
           "is planned as a restart",))

# OpenVZ 7 (vzctl 7 on libvzctl): the same update classes (§1.7), its own refusals. Register
# it (`reconciler/rules/registry.py`) so `sim` can preview OpenVZ 7 hosts:
# `drivers: {sim: {imitate: {openvz: openvz7}}}`.
OPENVZ7 = replace(OPENVZ, name="openvz7", check=_check_o7)
