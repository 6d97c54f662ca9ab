"""The harmonized Domain <-> LXC config keys, both ways. Pure: no files, no processes.

Reading (`read_spec`) turns a container's config into the model's canonical dict, normalised
so that what LXC or its templates fill in by themselves never shows as a difference: template
mount entries, `flags = up`, the broadcast address we add, cgroup v2 weights, host CPU sets.
Writing (`write_spec`) edits a parsed config in place for the fields the user manages and
leaves every other line alone.

Where libvirt's `lxc-tools` converter (src/lxc/lxc_native.c) maps the same key, we follow it:
veth+link -> bridge, veth without link -> routed, macvlan -> direct, phys -> hostdev, tmpfs
mount entries with `size=` -> ram, `/dev/` sources -> block, `ro` -> readonly, `lxc.tty.max`
-> consoles, `lxc.idmap` -> idmap, `lxc.cgroup.memory.*` -> memory/memtune, cpu.shares/cfs ->
cpu, `lxc.cgroup.blkio.*` -> blkiotune (`blkio.py`), `lxc.cap.drop` -> capabilities. The NIC
keys are `nics.py`'s, the capability keys `capabilities.py`'s. Deliberate differences: idmap
fields follow LXC's documented order (container id, host id, count -> start, target, count;
the converter swaps them); cgroup v2 `cpu.weight` is converted from shares with the
kernel/systemd formula (libvirt passes the number through); a plain `lxc.cap.drop` is policy
`default` (LXC's own set less these), not `allow`, since included configs drop more; a tmpfs
entry's `mode=` is kept (the model's ram filesystem has one); a vlan NIC is the model's vlan
NIC, not a hostdev of an existing `PARENT.ID` device.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.drivers.lxc import blkio, capabilities, nics
from reconciler.drivers.lxc.config import Line, LxcConfig, format_line
from reconciler.drivers.lxc.provenance import NORMALISED, Provenance
from reconciler.drivers.text import lines, unescape_octal, words
from reconciler.errors import PermanentError
from reconciler.model.fields import flatten
from reconciler.model.units import format_size, parse_size
from reconciler.rules.lxc import LXC, not_expressible

# ---------------------------------------------------------------------------- cgroups


@dataclass(frozen=True)
class CgroupLayout:
    """Which controllers run on cgroup v1 hierarchies and which on the unified (v2) one.

    Hybrid hosts (like ours: v1 memory/cpu/cpuset, cgroup2 holding only hugetlb) need the
    v1 key names; pure-v2 hosts need v2 names, and LXC ignores the other family there."""

    v1: frozenset[str] = frozenset()
    v2: frozenset[str] = frozenset()
    cfq: bool = False  # a kernel before 5.0: the v1 blkio weight is CFQ's, not BFQ's

    def version(self, controller: str) -> int:
        if controller in self.v1:
            return 1
        if controller in self.v2 or not self.v1:
            return 2
        return 1

    @property
    def blkio(self) -> tuple[int, str]:
        """(cgroup version, weight file) of block I/O: v1 `blkio`, v2 `io`."""
        version = 1 if "blkio" in self.v1 else self.version("io")
        return version, blkio.weight_file(version, self.cfq)


# logical setting -> (controller, v1 file, v2 file)
CGROUP_FILES: dict[str, tuple[str, str, str]] = {
    "mem.limit": ("memory", "memory.limit_in_bytes", "memory.max"),
    "mem.soft": ("memory", "memory.soft_limit_in_bytes", "memory.high"),
    "mem.swap": ("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"),
    "cpu.shares": ("cpu", "cpu.shares", "cpu.weight"),
    "cpu.quota": ("cpu", "cpu.cfs_quota_us", "cpu.max"),
    "cpu.period": ("cpu", "cpu.cfs_period_us", "cpu.max"),
    "cpuset": ("cpuset", "cpuset.cpus", "cpuset.cpus"),
}
# what a file reads when nothing limits it (for live resets through lxc-cgroup)
_V1_DEFAULT = {"memory.limit_in_bytes": "-1", "memory.soft_limit_in_bytes": "-1",
               "memory.memsw.limit_in_bytes": "-1", "cpu.shares": "1024",
               "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}
_V2_DEFAULT = {"memory.max": "max", "memory.high": "max", "memory.swap.max": "max",
               "cpu.weight": "100", "cpu.max": "max 100000"}
DEFAULT_PERIOD = 100000


def cgroup_key(layout: CgroupLayout, setting: str) -> tuple[str, str]:
    """(config key, cgroup file) for a setting on this host."""
    controller, v1, v2 = CGROUP_FILES[setting]
    if layout.version(controller) == 1:
        return f"lxc.cgroup.{v1}", v1
    return f"lxc.cgroup2.{v2}", v2


def _all_cgroup_keys(setting: str) -> set[str]:
    _, v1, v2 = CGROUP_FILES[setting]
    return {f"lxc.cgroup.{v1}", f"lxc.cgroup2.{v2}"}


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144, default 1024) -> v2 cpu.weight (1..10000, default 100),
    the conversion systemd, runc and crun use."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight: int) -> int:
    """The smallest shares that convert to `weight` (so converting back is exact)."""
    weight = min(max(weight, 1), 10000)
    return 2 + -(-((weight - 1) * 262142) // 9999)


def parse_bytes(text: str) -> int | None:
    """A cgroup memory value: bytes, or with a k/m/g suffix (1024-based, as the kernel reads
    memory.limit_in_bytes); -1 and `max` mean unlimited (None)."""
    value = text.strip().lower()
    if value in ("", "-1", "max") or value.startswith("9223372036854"):
        return None
    match = re.fullmatch(r"(\d+)([kmgt]?)(i?b)?", value)
    if not match:
        raise ValueError(f"{text!r} is not a memory size")
    number, unit, _ = match.groups()
    factor: int = 1024 ** " kmgt".index(unit or " ")
    return int(number) * factor


def parse_cpuset(text: str) -> list[int]:
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list")
        cpus.update(range(int(lo), int(hi) + 1) if sep else (int(lo),))
    return sorted(cpus)


# ---------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Context:
    """What the mapping needs to know beyond the config text."""

    name: str
    lxcpath: str
    layout: CgroupLayout = field(default_factory=CgroupLayout)
    template: str | None = None              # template that built <lxcpath>/<name>/rootfs
    template_options: tuple[str, ...] = ()
    template_mounts: frozenset[str] = frozenset()  # mount entries the template wrote
    is_file: Callable[[str], bool] = field(default=lambda path: False)

    @property
    def default_rootfs(self) -> str:
        return f"{self.lxcpath.rstrip('/')}/{self.name}/rootfs"


# ---------------------------------------------------------------------------- mount entries

_FSTAB_ESCAPES = {" ": "\\040", "\t": "\\011", "\n": "\\012", "\\": "\\134"}
_BIND_OPTS = {"bind", "rbind", "ro", "rw", "defaults", "create=dir", "create=file"}
# a ram filesystem is a tmpfs with a size and maybe a mode; libvirt mounts its ram
# filesystems nosuid and nodev, and so does this driver
_RAM_OPTS = {"rw", "defaults", "create=dir", "nodev", "nosuid"}
_RAM_WRITTEN = "nodev,nosuid,create=dir"


def fstab_escape(path: str) -> str:
    return "".join(_FSTAB_ESCAPES.get(c, c) for c in path)


def fstab_unescape(text: str) -> str:
    return unescape_octal(text)


def mount_to_fs(entry: str, rootfs: str) -> dict[str, Any] | None:
    """One `lxc.mount.entry` as a model filesystem, or None when the model cannot say it
    (proc/sysfs/mqueue, tmpfs without a size, `optional` entries...): those stay as lines."""
    fields = words(entry)
    if len(fields) < 4:
        return None
    source, target, fstype, opts = (fstab_unescape(f) for f in fields[:4])
    options = set(opts.split(","))
    if target.startswith("/"):
        if not target.startswith(rootfs.rstrip("/") + "/"):
            return None  # an absolute host path outside the rootfs: not a guest mount
        target = target[len(rootfs.rstrip("/")):]
    target = "/" + target.strip("/")
    if target == "/":
        return None
    readonly = "ro" in options
    if fstype in ("none", "bind") and options & {"bind", "rbind"} and options <= _BIND_OPTS:
        if not source.startswith("/"):
            return None
        return _fs({"type": "mount", "source": source, "target": target, "readonly": readonly})
    if fstype == "tmpfs":
        return _ram(target, options)
    return None


def _ram(target: str, options: set[str]) -> dict[str, Any] | None:
    sizes = [o for o in options if o.startswith("size=")]
    modes = [o for o in options if o.startswith("mode=")]
    if len(sizes) != 1 or len(modes) > 1 or not (options - {*sizes, *modes}) <= _RAM_OPTS:
        return None
    try:
        size = parse_bytes(sizes[0][5:])
    except ValueError:
        return None
    if not size or (modes and not re.fullmatch(r"[0-7]{3,4}", modes[0][5:])):
        return None
    fs = {"type": "ram", "target": target, "size": format_size(size)}
    return {**fs, "mode": modes[0][5:].rjust(4, "0")} if modes else fs


def _fs(item: dict[str, Any]) -> dict[str, Any]:
    """Canonical spelling: defaults left out, as `canonical()` would."""
    return {k: v for k, v in item.items() if not (k == "readonly" and v is False)
            and not (k == "type" and v == "mount")}


def fs_to_mount(fs: dict[str, Any], ctx: Context) -> str:
    kind = fs.get("type", "mount")
    target = fstab_escape(fs["target"].strip("/"))
    ro = bool(fs.get("readonly"))
    if kind == "mount":
        create = "create=file" if ctx.is_file(fs["source"]) else "create=dir"
        opts = ",".join(["ro"] * ro + ["bind", create])
        return f"{fstab_escape(fs['source'])} {target} none {opts} 0 0"
    if kind == "ram":
        mode = f",mode={fs['mode']}" if fs.get("mode") else ""
        return f"tmpfs {target} tmpfs size={parse_size(fs['size'])}{mode},{_RAM_WRITTEN} 0 0"
    raise PermanentError(f"filesystem type {kind!r} is not supported by the lxc driver")


def _is_ours(entry: str, ctx: Context) -> bool:
    """A mount entry the `filesystems` field stands for (not a template's, not unmodelled)."""
    return entry not in ctx.template_mounts and mount_to_fs(entry, ctx.default_rootfs) is not None


# ---------------------------------------------------------------------------- reading


def _rootfs_path(value: str | None) -> str | None:
    if value is None:
        return None
    return value[4:] if value.startswith("dir:") else value


def read_root(cfg: LxcConfig, ctx: Context) -> dict[str, Any] | None:
    path = _rootfs_path(cfg.get("lxc.rootfs.path"))
    if not path:
        return None
    if path.rstrip("/") == ctx.default_rootfs and ctx.template:
        root: dict[str, Any] = {"type": "template", "name": ctx.template, "target": "/"}
        if ctx.template_options:
            root["options"] = list(ctx.template_options)
        return root
    if path.startswith("/dev/"):
        return {"type": "block", "source": path, "target": "/"}
    if path.startswith("/"):
        return {"source": path, "target": "/"}
    return None  # overlayfs:, loop:, lvm, zfs...: not something the model names


def read_filesystems(cfg: LxcConfig, ctx: Context, marks: Provenance) -> list[dict[str, Any]]:
    out = []
    root = read_root(cfg, ctx)
    if root is not None:
        out.append(root)
        marks.mark("filesystems", "lxc.rootfs.path")
        if cfg.get("lxc.rootfs.managed") == "0" and root.get("type") != "template":
            marks.mark(NORMALISED, "lxc.rootfs.managed")  # the driver's, for a host root
    for entry in cfg.get_all("lxc.mount.entry"):
        if entry in ctx.template_mounts:
            marks.mark(NORMALISED, "lxc.mount.entry", entry)
            continue
        fs = mount_to_fs(entry, ctx.default_rootfs)
        if fs is not None:
            out.append(fs)
            marks.mark("filesystems", "lxc.mount.entry", entry)
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def read_cgroup(cfg: LxcConfig, layout: CgroupLayout, setting: str) -> tuple[str, str] | None:
    """(key, value) of a setting: the key for this host's cgroup version first."""
    key, _ = cgroup_key(layout, setting)
    for candidate in [key, *sorted(_all_cgroup_keys(setting) - {key})]:
        value = cfg.get(candidate)
        if value is not None:
            return candidate, value
    return None


def _read_bytes(cfg: LxcConfig, layout: CgroupLayout, setting: str, field: str,
                marks: Provenance) -> int | None:
    """A memory setting in bytes; unlimited (-1, max) is no setting."""
    found = read_cgroup(cfg, layout, setting)
    if found is None:
        return None
    key, text = found
    value = _bytes_or_none(text)
    if value is not None or text.strip().lower() in ("-1", "max"):
        marks.mark(field if value is not None else NORMALISED, key)
    return value


def _read_memory(cfg: LxcConfig, ctx: Context, spec: dict[str, Any], marks: Provenance) -> None:
    limit = _read_bytes(cfg, ctx.layout, "mem.limit", "memory", marks)
    soft = _read_bytes(cfg, ctx.layout, "mem.soft", "memtune", marks)
    memsw = cfg.get("lxc.cgroup.memory.memsw.limit_in_bytes")  # memory + swap
    swap_only = cfg.get("lxc.cgroup2.memory.swap.max")         # swap alone
    swap = None
    if swap_only is not None and (ctx.layout.version("memory") == 2 or memsw is None):
        extra = _bytes_or_none(swap_only)
        swap = None if extra is None or limit is None else limit + extra
        _mark_read(marks, "memtune", "lxc.cgroup2.memory.swap.max", swap_only, swap)
    elif memsw is not None:
        swap = _bytes_or_none(memsw)
        _mark_read(marks, "memtune", "lxc.cgroup.memory.memsw.limit_in_bytes", memsw, swap)
    if limit is not None:
        spec["memory"] = format_size(limit)
    memtune = {}
    if soft is not None:
        memtune["soft_limit"] = format_size(soft)
    if swap is not None:
        memtune["swap_hard_limit"] = format_size(swap)
    if memtune:
        spec["memtune"] = memtune


def _mark_read(marks: Provenance, field: str, key: str, text: str, value: int | None) -> None:
    if value is not None:
        marks.mark(field, key)
    elif text.strip().lower() in ("-1", "max"):
        marks.mark(NORMALISED, key)


def _bytes_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_bytes(value)
    except ValueError:
        return None


def _read_cpu(cfg: LxcConfig, ctx: Context, spec: dict[str, Any], marks: Provenance) -> None:
    cpu: dict[str, Any] = {}
    key, _ = cgroup_key(ctx.layout, "cpu.shares")
    shares = _int(cfg.get(key))
    if shares is not None:
        cpu["shares"] = weight_to_shares(shares) if key.startswith("lxc.cgroup2.") else shares
        marks.mark("cpu", key)
    else:
        other = _int(cfg.get("lxc.cgroup.cpu.shares"))
        weight = _int(cfg.get("lxc.cgroup2.cpu.weight"))
        if other is not None:
            cpu["shares"] = other
            marks.mark("cpu", "lxc.cgroup.cpu.shares")
        elif weight is not None:
            cpu["shares"] = weight_to_shares(weight)
            marks.mark("cpu", "lxc.cgroup2.cpu.weight")
    found = read_cgroup(cfg, ctx.layout, "cpuset")
    if found:
        try:
            count = len(parse_cpuset(found[1]))
        except ValueError:
            count = 0
        if count:
            cpu["cpuset"] = found[1]
            cpu["count"] = count
            marks.mark("cpu", found[0])
    cpu_max = cfg.get("lxc.cgroup2.cpu.max")
    quota = _int(cfg.get("lxc.cgroup.cpu.cfs_quota_us"))
    period = _int(cfg.get("lxc.cgroup.cpu.cfs_period_us"))
    if (ctx.layout.version("cpu") == 2 or quota is None) and cpu_max:
        parts = words(cpu_max)
        quota = None if parts[0] == "max" else _int(parts[0])
        period = _int(parts[1]) if len(parts) > 1 else None
        marks.mark("cpu", "lxc.cgroup2.cpu.max")
    else:
        for sub in ("cfs_quota_us", "cfs_period_us"):
            if _int(cfg.get(f"lxc.cgroup.cpu.{sub}")) is not None:
                marks.mark("cpu", f"lxc.cgroup.cpu.{sub}")
    if quota is not None and quota >= 0:
        cpu["quota"] = quota
    if period is not None:
        cpu["period"] = period
    if cpu:
        spec["cpu"] = cpu


def _read_init(cfg: LxcConfig, spec: dict[str, Any], marks: Provenance) -> None:
    init: dict[str, Any] = {}
    cmd = words(cfg.get("lxc.init.cmd") or "")
    if cmd:
        init["cmd"] = cmd[0]
        if cmd[1:]:
            init["args"] = cmd[1:]
        marks.mark("init", "lxc.init.cmd")
    env = {}
    for item in cfg.get_all("lxc.environment"):
        name, sep, value = item.partition("=")
        if sep:
            env[name.strip()] = value
            marks.mark("init", "lxc.environment", item)
    if env:
        init["env"] = env
    if cfg.get("lxc.init.cwd"):
        init["dir"] = cfg.get("lxc.init.cwd")
        marks.mark("init", "lxc.init.cwd")
    uid, gid = cfg.get("lxc.init.uid"), cfg.get("lxc.init.gid")
    if uid is not None and gid is not None:
        init["user"], init["group"] = uid, gid
        marks.mark("init", "lxc.init.uid")
        marks.mark("init", "lxc.init.gid")
    if init:
        spec["init"] = init


def read_idmap(cfg: LxcConfig, marks: Provenance) -> list[dict[str, Any]]:
    out = []
    for item in cfg.get_all("lxc.idmap"):
        parts = words(item)
        if len(parts) != 4 or parts[0] not in ("u", "g") or not all(p.isdigit()
                                                                    for p in parts[1:]):
            continue
        out.append({"kind": "uid" if parts[0] == "u" else "gid", "start": int(parts[1]),
                    "target": int(parts[2]), "count": int(parts[3])})
        marks.mark("idmap", "lxc.idmap", item)
    return out


def _read_identity(cfg: LxcConfig, spec: dict[str, Any], marks: Provenance) -> None:
    for key, name in (("lxc.uts.name", "hostname"), ("lxc.arch", "arch")):
        if cfg.get(key):
            spec[name] = cfg.get(key)
            marks.mark(name, key)
    auto = cfg.get("lxc.start.auto")
    if auto is not None and auto.strip() in ("0", "1"):
        spec["autostart"] = auto.strip() == "1"
        marks.mark("autostart", "lxc.start.auto")
    order = _int(cfg.get("lxc.start.order"))
    if order is not None:
        spec["start_order"] = order
        marks.mark("start_order", "lxc.start.order")
    ttys = _int(cfg.get("lxc.tty.max"))
    if ttys:
        spec["console"] = {"count": ttys}
    if ttys is not None:
        marks.mark("console" if ttys else NORMALISED, "lxc.tty.max")


def read_spec(cfg: LxcConfig, ctx: Context, last: dict[str, Any] | None = None,
              resolv_conf: str | None = None, marks: Provenance | None = None
              ) -> dict[str, Any]:
    """The live config in the model's shape (not yet validated), normalised against the
    last-applied spec where LXC spells a default differently from the user. `marks` learns
    which lines each field came from."""
    marks = marks if marks is not None else Provenance()
    spec: dict[str, Any] = {"name": ctx.name, "type": "lxc"}
    _read_identity(cfg, spec, marks)
    _read_memory(cfg, ctx, spec, marks)
    _read_cpu(cfg, ctx, spec, marks)
    version, _ = ctx.layout.blkio
    tune = blkio.read(cfg, version, marks)
    if tune:
        spec["blkiotune"] = tune
    _read_init(cfg, spec, marks)
    caps = capabilities.read(cfg, marks)
    if caps:
        spec["capabilities"] = caps
    idmap = read_idmap(cfg, marks)
    if idmap:
        spec["idmap"] = idmap
    filesystems = read_filesystems(cfg, ctx, marks)
    if filesystems:
        spec["filesystems"] = filesystems
    interfaces = nics.read(cfg, marks)
    if interfaces:
        spec["interfaces"] = interfaces
    if resolv_conf is not None:
        dns = parse_resolv_conf(resolv_conf)
        if dns:
            spec["dns"] = dns
    return normalise(spec, last or {})


# ---------------------------------------------------------------------------- normalising

# per list item: keys whose absence on the host means this value
_FS_DEFAULTS = {"accessmode": "passthrough", "readonly": False}
_NIC_DEFAULTS = {"link": "up"}


def normalise(live: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """Spell host values the way the last-applied spec did when they mean the same thing.

    Only the user's own spelling is borrowed, never a value: a real difference stays one."""
    out = dict(live)
    want_mem = last.get("memtune", {}).get("hard_limit")
    if want_mem is not None and "memory" in out:
        out["memtune"] = {**out.get("memtune", {}), "hard_limit": out["memory"]}
    cpu_last = last.get("cpu") or {}
    cpu = dict(out.get("cpu") or {})
    if cpu_last.get("quota") == -1 and "quota" not in cpu:
        cpu["quota"] = -1  # "no cap", which LXC says by having no quota key
    if cpu:
        if "count" in cpu_last and cpu.get("cpuset") is not None and \
                cpu.get("cpuset") == _expected_cpuset(cpu_last):
            cpu["count"] = cpu_last["count"]
        if "shares" in cpu_last and "shares" in cpu and cpu["shares"] != cpu_last["shares"] and \
                shares_to_weight(cpu_last["shares"]) == shares_to_weight(cpu["shares"]):
            cpu["shares"] = cpu_last["shares"]  # v2 weight is coarser than shares
        if "limit" in cpu_last and "quota" in cpu:
            cpu["limit"] = cpu["quota"] * 100 // cpu.get("period", DEFAULT_PERIOD)
        out["cpu"] = cpu
    if "filesystems" in out:
        fss = [dict(fs) for fs in out["filesystems"]]
        last_fss = last.get("filesystems") or []
        if last_fss and not any(fs.get("target") == "/" for fs in last_fss):
            fss = [fs for fs in fss if fs.get("target") != "/"]
        order = {fs.get("target"): i for i, fs in enumerate(last_fss)}
        fss.sort(key=lambda fs: order.get(fs.get("target"), len(order)))
        by_target = {fs.get("target"): fs for fs in last_fss}
        for fs in fss:
            _borrow_defaults(fs, by_target.get(fs.get("target")), _FS_DEFAULTS)
        out["filesystems"] = fss
    if "interfaces" in out:
        nics = [dict(nic) for nic in out["interfaces"]]
        last_nics = last.get("interfaces") or []
        for nic, before in zip(nics, last_nics, strict=False):
            defaults = dict(_NIC_DEFAULTS)
            if nic.get("type") == "direct":
                defaults["mode"] = "private"
            _borrow_defaults(nic, before, defaults)
        out["interfaces"] = nics
    console_last = last.get("console")
    if isinstance(console_last, dict) and "type" in console_last and "console" in out:
        out["console"] = {**out["console"], "type": console_last["type"]}
    return out


def _borrow_defaults(item: dict[str, Any], before: dict[str, Any] | None,
                     defaults: dict[str, Any]) -> None:
    if not before:
        return
    for key, default in defaults.items():
        if key not in item and before.get(key) == default:
            item[key] = default
        elif key in item and item[key] == default and key not in before:
            del item[key]


def _expected_cpuset(cpu: dict[str, Any]) -> str | None:
    if cpu.get("cpuset"):
        return str(cpu["cpuset"])
    count = cpu.get("count")
    if not count:
        return None
    return "0" if count == 1 else f"0-{int(count) - 1}"


# ---------------------------------------------------------------------------- writing

def unsupported(spec: dict[str, Any]) -> list[str]:
    """Settings of `spec` LXC cannot make true (the plan refuses them; this is the driver's
    own last check before it writes)."""
    return [str(refusal) for refusal in not_expressible(spec, _ANY_TEMPLATE)]


# which templates a host offers is the plan's question (the driver knows its template dir);
# writing a config only needs to know the settings can be said
_ANY_TEMPLATE = replace(LXC, templates=None)


def _write_filesystems(cfg: LxcConfig, fss: list[dict[str, Any]], ctx: Context) -> None:
    root = next((fs for fs in fss if fs.get("target") == "/"), None)
    if root is not None:
        kind = root.get("type", "mount")
        current = _rootfs_path(cfg.get("lxc.rootfs.path"))
        if kind == "template":
            if (current or "").rstrip("/") != ctx.default_rootfs:
                cfg.set("lxc.rootfs.path", f"dir:{ctx.default_rootfs}")
        else:
            source = str(root["source"])
            if current != source:
                cfg.set("lxc.rootfs.path", source if kind == "block" else f"dir:{source}")
            inside = source.startswith(f"{ctx.lxcpath.rstrip('/')}/{ctx.name}/")
            # a host directory or device the user owns: lxc-destroy must never erase it
            cfg.set("lxc.rootfs.managed", None if inside else "0")
    ours = [line for line in cfg.lines if line.key == "lxc.mount.entry" and
            line.value is not None and _is_ours(line.value, ctx)]
    # an entry that already says a wanted filesystem stays as it was written
    written = {_fs_key(mount_to_fs(str(line.value), ctx.default_rootfs) or {}): line
               for line in reversed(ours)}
    wanted = [_written_or_new(written, fs, ctx) for fs in fss if fs.get("target") != "/"]
    if [line.value for line in ours] == [line.value for line in wanted]:
        return
    at = None
    for i, line in enumerate(cfg.lines):
        if line.key == "lxc.mount.entry" and line.value is not None and _is_ours(line.value, ctx):
            at = i
            break
    cfg.lines = [line for line in cfg.lines if not (line.key == "lxc.mount.entry" and
                                                    line.value is not None and
                                                    _is_ours(line.value, ctx))]
    if at is None:
        last = max((i for i, line in enumerate(cfg.lines) if line.key == "lxc.mount.entry"),
                   default=None)
        at = None if last is None else last + 1
    cfg.insert_lines(at, wanted)


def _written_or_new(written: dict[tuple[tuple[str, str], ...], Line], fs: dict[str, Any],
                    ctx: Context) -> Line:
    key = _fs_key(fs)
    return written.pop(key) if key in written else \
        format_line("lxc.mount.entry", fs_to_mount(fs, ctx))


def _fs_key(fs: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What a mount filesystem is, in whichever canonical spelling it comes."""
    return tuple(sorted((k, str(v)) for k, v in _fs(fs).items() if k != "accessmode"))


def _write_cgroups(cfg: LxcConfig, want: dict[str, Any], managed: set[str],
                   layout: CgroupLayout) -> None:
    values = cgroup_config(want, managed, layout)
    settings = set(values)
    if "cpu.quota" in settings:  # on v2 one file, cpu.max, holds both
        settings.add("cpu.period")
    targets = {cgroup_key(layout, s)[0]: values[s] for s in values}
    for setting in settings:
        for key in _all_cgroup_keys(setting) - set(targets):
            cfg.set(key, None)
    for key, value in targets.items():
        cfg.set(key, value)


def cgroup_config(want: dict[str, Any], managed: set[str],
                  layout: CgroupLayout) -> dict[str, str | None]:
    """Config values (None: key absent) per cgroup setting the user manages; `want` is the
    flattened desired spec."""
    out: dict[str, str | None] = {}
    limit = want.get("memory") or want.get("memtune.hard_limit")
    limit_b = parse_size(limit) if limit else None
    if managed & {"memory", "memtune.hard_limit", "memtune.swap_hard_limit"}:
        out["mem.limit"] = None if limit_b is None else str(limit_b)
    if "memtune.soft_limit" in managed:
        soft = want.get("memtune.soft_limit")
        out["mem.soft"] = None if soft is None else str(parse_size(soft))
    if "memtune.swap_hard_limit" in managed:
        swap = want.get("memtune.swap_hard_limit")
        if swap is None:
            out["mem.swap"] = None
        elif layout.version("memory") == 2:
            if limit_b is None:
                raise PermanentError("memtune.swap_hard_limit needs memory on cgroup v2 "
                                     "(memory.swap.max counts swap only)")
            out["mem.swap"] = str(max(parse_size(swap) - limit_b, 0))
        else:
            out["mem.swap"] = str(parse_size(swap))
    if "cpu.shares" in managed:
        shares = want.get("cpu.shares")
        out["cpu.shares"] = None if shares is None else (
            str(shares) if layout.version("cpu") == 1 else str(shares_to_weight(shares)))
    if managed & {"cpu.cpuset", "cpu.count"}:
        out["cpuset"] = _expected_cpuset({"cpuset": want.get("cpu.cpuset"),
                                          "count": want.get("cpu.count")})
    if managed & {"cpu.quota", "cpu.period", "cpu.limit"}:
        period = want.get("cpu.period")
        quota = want.get("cpu.quota")
        if want.get("cpu.limit") is not None:
            quota = int(want["cpu.limit"]) * (period or DEFAULT_PERIOD) // 100
        if quota is not None and quota < 0:
            quota = None
        if layout.version("cpu") == 1:
            out["cpu.quota"] = None if quota is None else str(quota)
            out["cpu.period"] = None if period is None else str(period)
        else:
            out["cpu.quota"] = None if quota is None and period is None else \
                f"{'max' if quota is None else quota} {period or DEFAULT_PERIOD}"
    return out


def cgroup_live(want: dict[str, Any], managed: set[str], layout: CgroupLayout,
                online_cpus: str) -> list[tuple[str, str]]:
    """(cgroup file, value) to push into a running container with lxc-cgroup; unset
    settings go back to what an unlimited cgroup reads."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for setting, value in cgroup_config(want, managed, layout).items():
        _, file = cgroup_key(layout, setting)
        if file in seen:
            continue
        seen.add(file)
        if value is None:
            value = online_cpus if setting == "cpuset" else \
                (_V1_DEFAULT if layout.version(CGROUP_FILES[setting][0]) == 1
                 else _V2_DEFAULT)[file]
        out.append((file, value))
    return out


def managed_fields(desired: dict[str, Any], last: dict[str, Any] | None) -> set[str]:
    """The flattened fields the user manages: set now, or set at the last apply (so a field
    dropped from the spec goes back to LXC's default)."""
    return set(flatten(desired)) | set(flatten(last or {}))


def write_spec(cfg: LxcConfig, desired: dict[str, Any], managed: set[str],
               ctx: Context) -> None:
    """Edit `cfg` so it says what `desired` says, for the managed fields only."""
    problems = unsupported(desired)
    if problems:
        raise PermanentError("cannot express on LXC: " + "; ".join(problems))
    want = flatten(desired)
    if "hostname" in managed:
        cfg.set("lxc.uts.name", desired.get("hostname"))
    if "arch" in managed:
        cfg.set("lxc.arch", desired.get("arch"))
    if "autostart" in managed:
        auto = desired.get("autostart")
        cfg.set("lxc.start.auto", None if auto is None else ("1" if auto else "0"))
    if "start_order" in managed:
        order = desired.get("start_order")
        cfg.set("lxc.start.order", None if order is None else str(order))
    _write_cgroups(cfg, want, managed, ctx.layout)
    if managed & {"init.cmd", "init.args"}:
        cmd = want.get("init.cmd")
        cfg.set("lxc.init.cmd", " ".join([cmd, *want.get("init.args", ())]) if cmd else None)
    if "init.env" in managed:
        env = want.get("init.env") or {}
        cfg.set_all("lxc.environment", [f"{k}={v}" for k, v in env.items()])
    if "init.dir" in managed:
        cfg.set("lxc.init.cwd", want.get("init.dir"))
    if managed & {"init.user", "init.group"}:
        cfg.set("lxc.init.uid", _str_or_none(want.get("init.user")))
        cfg.set("lxc.init.gid", _str_or_none(want.get("init.group")))
    if "console.count" in managed:
        count = want.get("console.count")
        cfg.set("lxc.tty.max", None if count is None else str(count))
    if "idmap" in managed:
        cfg.set_all("lxc.idmap", [f"{'u' if m['kind'] == 'uid' else 'g'} {m['start']} "
                                  f"{m['target']} {m['count']}"
                                  for m in desired.get("idmap", ())])
    if "blkiotune" in managed:
        blkio.write(cfg, desired.get("blkiotune"), *ctx.layout.blkio)
    if "capabilities" in managed:
        capabilities.write(cfg, desired.get("capabilities"))
    if "filesystems" in managed:
        _write_filesystems(cfg, list(desired.get("filesystems", ())), ctx)
    if "interfaces" in managed:
        nics.write(cfg, list(desired.get("interfaces", ())))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------- DNS (rootfs)


def parse_resolv_conf(text: str) -> dict[str, Any]:
    servers: list[str] = []
    search: list[str] = []
    for line in lines(text):
        parts = words(line.split("#", 1)[0].split(";", 1)[0])
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1])
        elif len(parts) >= 2 and parts[0] in ("search", "domain"):
            search = parts[1:]
    out: dict[str, Any] = {}
    if servers:
        out["nameservers"] = servers
    if search:
        out["search"] = search
    return out


def resolv_conf_text(dns: dict[str, Any]) -> str:
    lines = ["# written by reconciler (dns: in the container's spec)"]
    if dns.get("search"):
        lines.append("search " + " ".join(dns["search"]))
    lines.extend(f"nameserver {ns}" for ns in dns.get("nameservers", ()))
    for line in lines:
        if any(c in line for c in "\n\r\x00"):
            raise PermanentError("dns: a value contains a newline")
    return "\n".join(lines) + "\n"

