"""Linux-VServer (util-vserver): reference native-formats §2.

util-vserver reads a guest's configuration tree only at `vserver NAME start` (§2.6), so a
change of the tree needs a restart, except what its low-level tools push into a running
context by XID: the token buckets (`vsched`), the uts names (`vuname`: hostname = nodename,
arch = machine), the addresses of the network context (`naddress`, with `ip addr` for those
on a host device) and the per-context limits (`vlimit`: memory and memtune are the resident
set limit `rlimits/rss`, limits are `rlimits/{nproc,nofile,locks,as}`). `apps/init/mark`
(autostart) is read only at host boot. The context id is a scalar read at start, and nothing
on disk is named by it (the guest root is `vdir`, by name: §2.1), so a new id is a restart.
A new root (another build) or type means a new guest.

What VServer cannot express is refused here, with the reason (`check`): a guest shares the
host's network stack (IP isolation: a subset of the host's addresses, no bridge, no routes, no
MAC), its CPU control is the token-bucket scheduler, and each tree file has its own reading
rules (§2.2): `apps/init/cmd.start` and `environment` lines are glob-expanded by the shell,
fstab fields end at a blank, an interface directory holds one address. The fields a tree can
hold are listed (MAPPED, NIC_FIELDS, MOUNT_FIELDS): any other host setting a spec gives is
refused by name, so a new field of the model is never silently dropped on VServer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.model.fields import POLICY_FIELDS
from reconciler.model.units import parse_size
from reconciler.rules.base import Refusal, Technology
from reconciler.rules.lxd import single_host

# build methods a spec may name (`vserver NAME build -m METHOD`, §2.4); rsync, clone, fai
# and legacy build from host directories, other guests or host scripts a spec would name
METHODS = frozenset({"template", "debootstrap", "skeleton", "yum", "apt-rpm", "urpmi"})
HOST_INPUT_METHODS = frozenset({"rsync", "clone", "fai", "legacy", "rpm", "copy"})
DEFAULT_METHOD = "template"  # a template root without a method: a tarball by name
# debootstrap's own options (after vserver-build's `--`) that name no host path
DEBOOTSTRAP_OPTIONS = frozenset({"--arch", "--include", "--exclude", "--variant",
                                 "--components", "--merged-usr", "--no-merged-usr",
                                 "--force-check-gpg"})
_TAKES_VALUE = frozenset({"--arch", "--include", "--exclude", "--variant", "--components"})
# beancounters with a per-context rlimit (§2.3 rlimits/), [barrier, limit] as soft and hard;
# as counts pages like privvmpages; physpages is the resident set, which `memory` sets
BEANCOUNTER_RLIMITS = {"numproc": "nproc", "numfile": "nofile", "numflock": "locks",
                       "privvmpages": "as"}
STATIC_IDS = (2, 49151)  # §2.3 context: static XIDs
UTS_MAX = 64  # the kernel's uts fields hold 64 characters
PAGE_SIZE = 4096  # what `sim` assumes; the real driver uses its host's page size
GLOB_CHARS = frozenset("*?[")  # getFileArray expands each line as a pathname pattern
_NOT_VSERVER = {
    "uuid": "a VServer guest has no UUID",
    "os": "a VServer guest runs the host's kernel (no os settings)",
    "xml": "libvirt XML is not a Linux-VServer setting",
    "devices_xml": "libvirt XML is not a Linux-VServer setting",
    "current_memory": "a VServer guest has no balloon (current_memory)",
    "idmap": "a VServer guest has no user namespace id map (it is isolated by its context)",
    "console": "a VServer guest has no console device (use `vserver NAME enter`)",
    "dns": "DNS lives in the guest root (etc/resolv.conf), which this driver never writes",
    "quota": "disk limits (dlimits/) need a reserved share the model has no field for",
    "start_order": "util-vserver starts the guests of a mark in parallel, in no order; use "
                   "depends_on (apps/init/depends)",
    "cpu": "a VServer guest's CPU is its token-bucket scheduler (scheduler: fill_rate, "
           "interval, per-CPU buckets)",
    "blkiotune": "util-vserver has no block I/O weights",
    "capabilities": "libvirt's capability policy is not util-vserver's bcapabilities list (a "
                    "set added to the default one); not mapped",
}
# what a VServer tree holds (mapping.py), and what the engine keeps for itself; any other
# field a spec sets is refused, so a setting the tree cannot hold is never silently dropped
MAPPED = frozenset({"kind", "name", "type", "id", "autostart", "hostname", "arch", "memory",
                    "memtune", "limits", "scheduler", "init", "filesystems", "interfaces"})
ENGINE = POLICY_FIELDS | {"target", "allow_move"}  # placement in a cluster, the engine's
NIC_FIELDS = frozenset({"type", "host_dev", "guest_dev", "ip", "ranges", "link"})
MOUNT_FIELDS = {"mount": frozenset({"type", "source", "target", "readonly"}),
                "bind": frozenset({"type", "source", "target", "readonly"}),
                "block": frozenset({"type", "source", "target", "readonly"}),
                "ram": frozenset({"type", "target", "size", "readonly"}),
                "template": frozenset({"type", "target", "name", "method", "release", "options",
                                       "source"})}

Check = Callable[[dict[str, Any], Technology], list[Refusal]]


def method_of(fs: dict[str, Any]) -> str:
    return str(fs.get("method") or DEFAULT_METHOD)


def distribution(fs: dict[str, Any]) -> str | None:
    """What `-d` names for a build: the release, else (for the package-manager methods,
    which always need one) the template's name."""
    if fs.get("release"):
        return str(fs["release"])
    return None if method_of(fs) in ("template", "skeleton") else str(fs.get("name"))


def checker(page_size: int = PAGE_SIZE) -> Check:
    """The refusals of a canonical spec on a host with this page size (rlimits/rss and
    rlimits/as count pages, so memory must be whole pages)."""
    def check(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
        out = [Refusal(key, why) for key, why in _NOT_VSERVER.items() if spec.get(key)]
        out += [Refusal(key, "not a Linux-VServer setting: no file of util-vserver's tree "
                        "holds it") for key, value in spec.items()
                if key not in MAPPED and key not in ENGINE and key not in _NOT_VSERVER and
                value not in (None, False, (), [], {})]
        out += _check_identity(spec)
        out += _check_memory(spec, page_size)
        out += _check_init(spec.get("init") or {})
        out += _check_scheduler(spec.get("scheduler") or {})
        out += _check_filesystems(spec, tech)
        out += _check_interfaces(spec.get("interfaces", ()))
        return out + single_host(spec)
    return check


def _check_identity(spec: dict[str, Any]) -> list[Refusal]:
    out = []
    if spec.get("id") is not None and not STATIC_IDS[0] <= spec["id"] <= STATIC_IDS[1]:
        out.append(Refusal("id", f"a static VServer context is {STATIC_IDS[0]}-{STATIC_IDS[1]}"
                           f", not {spec['id']}"))
    for key in ("hostname", "arch"):
        if len(str(spec.get(key) or "")) > UTS_MAX:
            out.append(Refusal(key, f"the kernel's uts fields hold {UTS_MAX} characters"))
    return out


def _check_memory(spec: dict[str, Any], page_size: int) -> list[Refusal]:
    out = []
    memtune = spec.get("memtune") or {}
    sizes = {"memory": spec.get("memory"), "memtune.soft_limit": memtune.get("soft_limit"),
             "memtune.min_guarantee": memtune.get("min_guarantee"),
             "memtune.hard_limit": memtune.get("hard_limit")}
    for key, size in sizes.items():
        if size is not None and parse_size(size) % page_size:
            out.append(Refusal(key, f"rlimits/rss counts pages of {page_size} bytes; give a "
                               "multiple of that"))
    if memtune.get("swap_hard_limit") is not None:
        out.append(Refusal("memtune.swap_hard_limit", "util-vserver has no swap limit"))
    hard = memtune.get("hard_limit")
    if hard is not None and (spec.get("memory") is None or
                             parse_size(hard) != parse_size(spec["memory"])):
        out.append(Refusal("memtune.hard_limit", "on VServer memory and hard_limit are the one "
                           "limit rlimits/rss.hard; give memory"))
    for key in spec.get("limits") or {}:
        if key == "physpages":
            out.append(Refusal("limits.physpages", "the resident set limit (rlimits/rss) is "
                               "memory and memtune on VServer"))
        elif key not in BEANCOUNTER_RLIMITS:
            out.append(Refusal(f"limits.{key}", "no Linux-VServer rlimit; VServer has "
                               f"{', '.join(sorted(BEANCOUNTER_RLIMITS))}"))
    return out


def _check_init(init: dict[str, Any]) -> list[Refusal]:
    out = []
    for key in ("dir", "user", "group"):
        if init.get(key) is not None:
            out.append(Refusal(f"init.{key}", "util-vserver starts init as root in the guest's "
                               "root directory"))
    args = list(init.get("args", ()))
    if args and not init.get("cmd"):
        out.append(Refusal("init.args", "init.args without init.cmd"))
    for index, arg in enumerate(args):
        if arg == "" or GLOB_CHARS & set(arg):
            out.append(Refusal(f"init.args.{index}", "apps/init/cmd.start is read one argument "
                               "a line: empty lines vanish and *, ? and [ are expanded as "
                               "host file patterns"))
    for name, value in (init.get("env") or {}).items():
        if GLOB_CHARS & set(value) or value != value.strip(" \t"):
            out.append(Refusal(f"init.env.{name}", "apps/init/environment lines are "
                               "glob-expanded by the shell; no *, ? or [ and no blanks at "
                               "the ends"))
    return out


def _check_scheduler(sched: dict[str, Any]) -> list[Refusal]:
    out = []
    buckets = [("scheduler", sched)] + [(f"scheduler.cpus.{cpu}", b)
                                        for cpu, b in (sched.get("cpus") or {}).items()]
    for where, bucket in buckets:
        if bucket.get("idle_time") is False and (bucket.get("fill_rate2") is not None or
                                                 bucket.get("interval2") is not None):
            out.append(Refusal(f"{where}.idle_time", "vsched turns idle time on whenever "
                               "fill-rate2 or interval2 is set"))
        for key, value in bucket.items():
            if isinstance(value, int) and not isinstance(value, bool) and \
                    not -(2**31) <= value < 2**31:
                out.append(Refusal(f"{where}.{key}", "the kernel's scheduler values are "
                                   "32-bit"))
    return out


def _check_filesystems(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    out = []
    for index, fs in enumerate(spec.get("filesystems", ())):
        where = f"filesystems.{index}"
        kind = fs.get("type", "mount")
        if fs.get("target") == "/":
            if kind != "template":
                out.append(Refusal(f"{where}.type", "a VServer guest's root is made by "
                                   "`vserver NAME build` (type: template with a method)"))
                continue
            out += _check_build(fs, where, str(spec.get("name")), tech)
            continue
        if kind not in ("mount", "bind", "block", "ram"):
            out.append(Refusal(f"{where}.type", f"type {kind} is not a VServer fstab mount "
                               "(use mount, block or ram)"))
            continue
        for key, value in fs.items():
            if key not in MOUNT_FIELDS[kind] and value not in (None, False, (), []):
                out.append(Refusal(f"{where}.{key}", f"not a setting of a {kind} mount this "
                                   "driver writes to fstab"))
        for key in ("source", "target"):
            value = str(fs.get(key) or "")
            if any(c in value for c in " \\#"):
                out.append(Refusal(f"{where}.{key}", "an fstab field ends at a blank; no "
                                   "blanks, backslashes or # in mount paths"))
    return out


def _check_build(fs: dict[str, Any], where: str, name: str,
                 tech: Technology) -> list[Refusal]:
    out = [Refusal(f"{where}.{key}", "not a setting of vserver build")
           for key, value in fs.items()
           if key not in MOUNT_FIELDS["template"] and value not in (None, False, (), [])]
    method = method_of(fs)
    if method in HOST_INPUT_METHODS:
        out.append(Refusal(f"{where}.method", f"build method {method} builds from host "
                           "directories, other guests or host scripts a spec would name"))
    elif method not in METHODS:
        out.append(Refusal(f"{where}.method", f"build method {method!r} is not one of "
                           f"util-vserver's: {', '.join(sorted(METHODS))}"))
    if method == "template" and tech.templates is not None and fs.get("name") not in \
            tech.templates:
        out.append(Refusal(f"{where}.name", f"template {fs.get('name')!r} is not a tarball in "
                           "the driver's template directory; available: "
                           f"{', '.join(sorted(tech.templates)) or 'none'}"))
    source = fs.get("source")
    if source and str(source).rstrip("/").rsplit("/", 1)[-1] != name:
        out.append(Refusal(f"{where}.source", f"vserver build makes the guest root at "
                           f"DIR/{name} (--rootdir DIR); the source must end in /{name}"))
    out += _check_options(list(fs.get("options", ())), method, where)
    return out


def _check_options(options: list[str], method: str, where: str) -> list[Refusal]:
    if options and method != "debootstrap":
        return [Refusal(f"{where}.options", f"the {method} build takes no options from a spec "
                        "(its own options name host files or commands)")]
    out = []
    index = 0
    while index < len(options):
        option = options[index]
        name = option.split("=", 1)[0]
        if name not in DEBOOTSTRAP_OPTIONS:
            out.append(Refusal(f"{where}.options.{index}", f"{option!r} is not one of the "
                               "debootstrap options a spec may give (they name no host path): "
                               f"{', '.join(sorted(DEBOOTSTRAP_OPTIONS))}"))
        elif name in _TAKES_VALUE and "=" not in option:
            index += 1
            if index >= len(options) or options[index].startswith("-"):
                out.append(Refusal(f"{where}.options.{index - 1}", f"{option} needs a value"))
                continue
        index += 1
    return out


def _check_interfaces(nics: Any) -> list[Refusal]:
    out = []
    for i, nic in enumerate(nics):
        where = f"interfaces.{i}"
        if nic.get("type") != "routed":
            out.append(Refusal(f"{where}.type", f"type {nic.get('type')}: a VServer guest has "
                               "IP isolation only (type: routed, addresses of the host)"))
            continue
        for key, value in nic.items():
            if key not in NIC_FIELDS and value not in (None, False, (), []):
                out.append(Refusal(f"{where}.{key}", "not a VServer setting: the guest shares "
                                   "the host's network stack and routes"))
        count = len(nic.get("ip", ())) + len(nic.get("ranges", ()))
        if count != 1:
            out.append(Refusal(f"{where}.ip", "a VServer interface (interfaces/N/) is one "
                               f"address or one range, not {count}; give one interface each"))
        if nic.get("ranges") and nic.get("host_dev"):
            out.append(Refusal(f"{where}.host_dev", "a range is bound to the guest only "
                               "(naddress --range); util-vserver puts no range on a device"))
        guest_dev = nic.get("guest_dev")
        if guest_dev and (not nic.get("host_dev") or
                          not str(guest_dev).startswith(f"{nic['host_dev']}:") or
                          str(guest_dev) == f"{nic['host_dev']}:"):
            out.append(Refusal(f"{where}.guest_dev", "a VServer guest sees the host's device; "
                               "guest_dev can only be its label HOST_DEV:LABEL "
                               "(interfaces/N/name)"))
    return out


VSERVER = Technology(
    name="vserver", types=frozenset({"vserver"}),
    live=frozenset({"hostname", "arch", "scheduler.*", "interfaces", "autostart", "memory",
                    "memtune.*", "limits"}),
    recreate=frozenset({"type", "filesystems"}),
    mounts="restart", check=checker(), builds="template", first_id=STATIC_IDS[0],
    guest_exec=True,  # vserver NAME exec
    notes=("util-vserver reads the tree at start; vsched, vuname, naddress and vlimit push "
           "changes into a running guest",))
