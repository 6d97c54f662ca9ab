"""The model <-> a guest's configuration tree, pure: `read_tree` turns a `Tree` snapshot into
the model's input (and says what it did not convert, and what util-vserver's start would fail
on); `edits` turns a desired spec into the file changes that make the tree say it, touching
only the files of the fields it is told to manage (reference native-formats §2.2-§2.3).

    id           context
    hostname     uts/nodename                         arch   uts/machine
    autostart    apps/init/mark = default             depends_on  apps/init/depends
    init         apps/init/cmd.start (one argument a line), or style plain (+ runlevel.start)
                 for /sbin/init; env is apps/init/environment (which replaces util-vserver's
                 default PATH=...)
    scheduler    sched/ (global buckets) and one sched/<dir>/ per CPU, with cpu-id; the
                 deprecated `schedule` file is read when there is no sched/
    memory       rlimits/rss.hard, memtune.soft_limit rss.soft, memtune.min_guarantee rss.min
                 (pages); limits numproc nproc, numfile nofile, numflock locks,
                 privvmpages as ([barrier, limit] = .soft, .hard)
    interfaces   interfaces/<ID>/: ip, prefix (mask read too), dev (host_dev) or nodev, name
                 (guest_dev HOST_DEV:LABEL), down (link), peer; a range is a directory marked
                 `disabled` (the start script cannot read a range) holding `range`, bound by
                 the in-shell scriptlet RANGES_SCRIPTLET at each start
    filesystems  the root: how the driver built it (recorded beside the stamp; the tree does
                 not say); the rest: fstab and fstab.local lines (bind, block device, tmpfs)

Equal values spelled differently are read the way the last-applied spec spelled them (a host
address with or without its full-length prefix), so an applied spec plans empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.text import lines
from reconciler.drivers.vserver import numbers
from reconciler.drivers.vserver.tree import (
    REMOVE,
    TOUCH,
    Edit,
    Tree,
    array_items,
    line,
    lines_of,
    list_items,
    scalar,
    whole,
)
from reconciler.model.domain import Filesystem
from reconciler.model.fields import POLICY_FIELDS
from reconciler.model.names import NAME_RE
from reconciler.model.types import UNLIMITED
from reconciler.model.units import parse_size
from reconciler.rules.vserver import BEANCOUNTER_RLIMITS, STATIC_IDS

SIDECAR = "reconciler.json"
RANGES_SCRIPTLET = "scripts/prepre-start.d/reconciler-ranges"
RANGES_SCRIPT = b"""\
# reconciler: bind this guest's address ranges to its network context at each start.
# util-vserver's interfaces/<ID>/ holds one address and no range, so a range directory is
# marked `disabled` (the start script skips it) and holds `range` (A-B[/PREFIX]); this
# in-shell scriptlet (sourced: not executable) puts `naddress --add --range` into the start's
# command chain (VSERVER_EXTRA_CMDS), which runs inside the new network context. It sets
# DONT_SKIP_DEFAULTS so that the .defaults/scripts scriptlets still run for this guest.
DONT_SKIP_DEFAULTS=1
for _reconciler_range in "$VSERVER_DIR"/interfaces/*/range; do
    test -f "$_reconciler_range" || continue
    read _reconciler_value < "$_reconciler_range" || :
    test -n "$_reconciler_value" || continue
    VSERVER_EXTRA_CMDS=( "${VSERVER_EXTRA_CMDS[@]}"
        "$_NADDRESS" --add --silent --range "$_reconciler_value" -- )
done
unset _reconciler_range _reconciler_value
"""
# util-vserver's own default fstab (distrib/misc/fstab), which build writes: not a user's
# setting, so convert says nothing of these lines (a build writes them again)
DEFAULT_FSTAB = (("none", "/proc", "proc", "defaults"),
                 ("none", "/tmp", "tmpfs", "size=16m,mode=1777"),  # noqa: S108 - a guest's
                 ("none", "/dev/pts", "devpts", "gid=5,mode=620"))
SCHED_FILES = {"fill-rate": "fill_rate", "interval": "interval", "tokens": "tokens",
               "tokens-min": "tokens_min", "tokens-max": "tokens_max",
               "priority-bias": "priority_bias", "prio-bias": "priority_bias",
               "fill-rate2": "fill_rate2", "interval2": "interval2"}
SCHED_WRITE = {v: k for k, v in SCHED_FILES.items() if k != "prio-bias"}
SCHEDULE_FIELDS = ("fill_rate", "interval", "tokens", "tokens_min", "tokens_max",
                   "priority_bias")
INIT_FILES = ("style", "runlevel", "runlevel.start", "cmd.start", "environment")
PLAIN_INIT = {"plain": "/sbin/init", "minit": "/sbin/minit-start"}
LIMIT_KINDS = ("min", "soft", "hard")
NIC_FILES = ("ip", "prefix", "mask", "dev", "nodev", "only_ip", "name", "down", "peer",
             "range", "disabled")
_C_SPACE = " \t\n\v\f\r"
_C_SPACES = re.compile("[ \t\n\v\f\r]+")
_TMPFS_SIZE = re.compile(r"(\d+)([kKmMgG]?)\Z")
_TMPFS_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# what the model has no field for, by path (first match wins), for the notes
UNMAPPED = (
    ("bcapabilities", "system capabilities have no field in the model"),
    ("ccapabilities", "context capabilities have no field in the model"),
    ("cflags", "context flags have no field in the model"),
    ("flags", "context flags have no field in the model"),
    ("nflags", "network flags have no field in the model"),
    ("ncapabilities", "network capabilities have no field in the model"),
    ("ncontext", "a network context apart from the context has no field in the model"),
    ("tag", "a filesystem tag apart from the context has no field in the model"),
    ("noncontext", "network isolation turned off has no field in the model"),
    ("cpuset/", "cpusets have no field in the model (cpu.cpuset is refused on VServer)"),
    ("cgroup/", "cgroup files have no field in the model"),
    ("nocgroup", "cgroup files have no field in the model"),
    ("dlimits/", "disk limits have no field in the model"),
    ("sysctl/", "sysctls have no field in the model"),
    ("ionice/", "I/O priority has no field in the model"),
    ("nice", "the nice level has no field in the model"),
    ("badness", "the OOM bias has no field in the model"),
    ("umask", "the unshare mask has no field in the model"),
    ("personality", "the personality has no field in the model"),
    ("shell", "the enter shell has no field in the model"),
    ("spaces/", "namespaces have no field in the model"),
    ("netns/", "network namespaces have no field in the model"),
    ("scripts/", "scriptlets are programs; a spec never carries one"),
    ("ulimits/", "per-process limits have no field in the model (rlimits are read)"),
    ("rlimits/", "this rlimit has no field in the model"),
    ("fstab.remote", "mounts in the guest's network context have no field in the model"),
    ("uts/", "this uts name has no field in the model (nodename and machine are read)"),
    ("apps/pkgmgmt/", "package management belongs to the build, not to the spec"),
    ("apps/init/", "this init setting has no field in the model"),
    ("apps/", "this setting has no field in the model"),
    ("interfaces/", "this network setting has no field in the model"),
    ("sched/", "vsched ignores this file"),
    ("schedule", "the deprecated schedule file is ignored while sched/ exists"),
)


@dataclass(frozen=True)
class Note:
    """Something of the tree that did not become part of the spec (`path` relative to the
    guest's directory, '' for the whole; `line` of it and `value` there, for the report), or
    that util-vserver's start would fail on."""

    path: str
    why: str
    line: int = 1
    value: str = ""


@dataclass(frozen=True)
class Context:
    """What reading and writing need beside the tree: the guest's name, the host's page size,
    the root the driver built (from the sidecar; None when it did not build it), and the
    last-applied spec, whose spelling of equal values the reading follows."""

    name: str
    page_size: int = 4096
    root: dict[str, Any] | None = None
    last: dict[str, Any] | None = None


@dataclass
class Reading:
    spec: dict[str, Any]
    tree: Tree
    notes: list[Note] = field(default_factory=list)
    problems: list[Note] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def note(self, path: str, why: str, value: str | None = None) -> None:
        self.notes.append(Note(path, why, 1, value if value is not None else
                               _shown(self.tree, path)))
        self.seen.add(path)

    def problem(self, path: str, why: str) -> None:
        self.problems.append(Note(path, why))


# =========================================================================== reading


def read_tree(tree: Tree, ctx: Context) -> Reading:
    """The model's input for this tree (not validated yet), with notes on every file not
    converted and the problems util-vserver's start would meet."""
    r = Reading({"name": ctx.name, "type": "vserver"}, tree)
    _read_identity(tree, r, ctx)
    _read_init(tree, r)
    _read_scheduler(tree, r)
    _read_rlimits(tree, r, ctx)
    _read_interfaces(tree, r, ctx)
    _read_filesystems(tree, r, ctx)
    for rel in (*tree.files, *tree.links, *tree.unreadable):
        if rel not in r.seen:
            r.notes.append(Note(rel, _unmapped_why(rel, tree), 1, _shown(tree, rel)))
    r.notes.sort(key=lambda n: (n.path, n.line))
    return r


def _shown(tree: Tree, rel: str) -> str:
    """What a note shows of a path: a file's first line (and `...` if more follow), a
    link's target."""
    if rel in tree.links:
        return tree.links[rel]
    data = tree.get(rel)
    if data is None:
        return ""
    shown = [ln.strip() for ln in lines(data.decode("utf-8", "replace")) if ln.strip()]
    return (shown[0] + (" ..." if len(shown) > 1 else "")) if shown else ""


def _unmapped_why(rel: str, tree: Tree) -> str:
    if rel in tree.unreadable:
        return "not a regular file, or too large to read"
    if rel in tree.links:
        return f"a symlink (to {tree.links[rel]}) util-vserver does not read as a setting"
    for prefix, why in UNMAPPED:
        if rel == prefix or rel.startswith(prefix if prefix.endswith("/") else prefix + "."):
            return why
        if prefix.endswith("/") and rel.startswith(prefix):
            return why
    return "not a util-vserver setting this driver knows"


def _scalar(tree: Tree, rel: str, r: Reading) -> str | None:
    data = tree.get(rel)
    if data is None:
        return None
    value = scalar(data)
    r.seen.add(rel)
    if not value.ok:
        r.problem(rel, "no newline at its end: util-vserver's start fails on it (§2.2)")
    return value.value


def _read_identity(tree: Tree, r: Reading, ctx: Context) -> None:
    context = _scalar(tree, "context", r)
    if context is not None:
        if context.isdigit() and STATIC_IDS[0] <= int(context) <= STATIC_IDS[1]:
            r.spec["id"] = int(context)
        else:
            r.note("context", f"not a static context ({STATIC_IDS[0]}-{STATIC_IDS[1]})")
    for rel in ("ncontext", "tag"):
        raw = tree.get(rel)
        if raw is not None and context is not None and scalar(raw).value == context:
            r.seen.add(rel)  # the same as the context: what util-vserver falls back to
    name = tree.get("name")
    if name is not None:
        if whole(name) in ("", ctx.name):
            r.seen.add("name")
        else:
            r.note("name", f"display name {whole(name)!r} differs from the directory name; "
                   "the model names a guest by its directory")
    for rel, key in (("uts/nodename", "hostname"), ("uts/machine", "arch")):
        data = tree.get(rel)
        if data is None:
            continue
        value = whole(data)
        if "\n" in value:
            r.note(rel, "holds more than one line")
        elif value:
            r.spec[key] = value
            r.seen.add(rel)
        else:
            r.seen.add(rel)
    mark = _scalar(tree, "apps/init/mark", r)
    if mark is not None:
        if mark == "default":
            r.spec["autostart"] = True
        elif mark:
            r.note("apps/init/mark", "a group of its own; only the mark 'default' "
                   "(started at boot) is autostart")
    depends = tree.get("apps/init/depends")
    if depends is not None:
        r.seen.add("apps/init/depends")
        names = list_items(depends)
        bad = [n for n in names if not NAME_RE.match(n) or ".." in n]
        if bad:
            r.note("apps/init/depends", f"{bad[0]!r} is not a guest name the model allows")
        elif names:
            r.spec["depends_on"] = names


def _read_init(tree: Tree, r: Reading) -> None:
    base = "apps/init"
    style_raw = _scalar(tree, f"{base}/style", r)
    style = "sysv" if style_raw is None else style_raw
    runlevel = _scalar(tree, f"{base}/runlevel", r)
    later = _scalar(tree, f"{base}/runlevel.start", r)
    level = later if later is not None else runlevel
    init: dict[str, Any] = {}
    start = tree.get(f"{base}/cmd.start")
    if start is not None:
        r.seen.add(f"{base}/cmd.start")
        argv = array_items(start)
        if argv:
            init["cmd"] = argv[0]
            if argv[1:]:
                init["args"] = argv[1:]
        else:
            r.note(f"{base}/cmd.start", "empty: no init command runs at start")
        if style not in ("sysv", "plain"):
            r.note(f"{base}/style", f"init style {style!r} is kept (cmd.start replaces its "
                   "start command)")
    elif style in PLAIN_INIT:
        init["cmd"] = PLAIN_INIT[style]
        if level:
            init["args"] = [level]
    elif style != "sysv":
        r.note(f"{base}/style", f"init style {style!r} has no field in the model")
    if level and not (start is None and style in PLAIN_INIT):
        for rel in (f"{base}/runlevel", f"{base}/runlevel.start"):
            if tree.get(rel) is not None:
                r.note(rel, "the runlevel of a sysv-style init has no field in the model")
    env = tree.get(f"{base}/environment")
    if env is not None:
        r.seen.add(f"{base}/environment")
        pairs = [item.partition("=") for item in array_items(env)]
        if any(not sep for _, sep, _ in pairs):
            r.note(f"{base}/environment", "a line is not VAR=VALUE")
        else:
            init["env"] = {key: value for key, _, value in pairs}
    if init:
        r.spec["init"] = init


def _bucket(tree: Tree, rel: str, r: Reading) -> dict[str, Any]:
    bucket: dict[str, Any] = {}
    prefix = f"{rel}/"
    for name in tree.children(rel):
        path = prefix + name
        if path in tree.dirs:
            continue
        if name == "idle-time":
            bucket["idle_time"] = True
            r.seen.add(path)
        elif name in SCHED_FILES and path in tree.files:
            value = numbers.sched_value(tree.files[path])
            r.seen.add(path)
            if value is None:
                r.problem(path, "is not an integer: vsched fails and the start with it")
                r.note(path, "is not an integer")
            else:
                bucket[SCHED_FILES[name]] = value
    return bucket


def _read_scheduler(tree: Tree, r: Reading) -> None:
    if "sched" in tree.dirs:
        sched = _bucket(tree, "sched", r)
        cpus: dict[int, dict[str, Any]] = {}
        for sub in tree.subdirs("sched"):
            rel = f"sched/{sub}"
            cpu = tree.get(f"{rel}/cpu-id")
            cpu_id = numbers.sched_value(cpu) if cpu is not None else None
            if cpu_id is None or cpu_id < 0 or tree.get(f"{rel}/bucket-id") is not None:
                for name in tree.children(rel):
                    r.note(f"{rel}/{name}", "a token bucket that is not one CPU's (no cpu-id, "
                           "or a bucket-id) has no field in the model")
                continue
            r.seen.add(f"{rel}/cpu-id")
            cpus[cpu_id] = _bucket(tree, rel, r)
        if cpus:
            sched["cpus"] = cpus
        if sched:
            r.spec["scheduler"] = sched
        return
    data = tree.get("schedule")
    if data is None:
        return
    r.seen.add("schedule")
    values = [scalar((item + "\n").encode()).value for item in lines(data.decode("latin-1"))]
    parsed = [numbers.option_value(v) for v in values[:6]]
    if len(parsed) < 6 or any(v is None for v in parsed):
        r.problem("schedule", "needs six integer lines: the start fails on it")
        r.note("schedule", "needs six integer lines")
        return
    r.spec["scheduler"] = dict(zip(SCHEDULE_FIELDS, parsed, strict=True))


def _limits(tree: Tree, res: str, r: Reading) -> dict[str, int | str]:
    """A resource's min, soft and hard as vlimit --dir sets them: the plain file sets all
    three, the suffixed files override one each."""
    out: dict[str, int | str] = {}
    for rel, kinds in ((f"rlimits/{res}", LIMIT_KINDS),
                       *((f"rlimits/{res}.{k}", (k,)) for k in LIMIT_KINDS)):
        data = tree.get(rel)
        if data is None:
            continue
        value = numbers.limit_value(data)
        if value is None:
            r.problem(rel, "is not a limit: vlimit fails and the start with it")
            continue
        for kind in kinds:
            out[kind] = value
    return out


def _read_rlimits(tree: Tree, r: Reading, ctx: Context) -> None:
    rss = _limits(tree, "rss", r)
    for rel in ("rlimits/rss", *(f"rlimits/rss.{k}" for k in LIMIT_KINDS)):
        if tree.get(rel) is not None:
            r.seen.add(rel)

    def size(value: int | str | None) -> str | None:
        return None if value is None or value == numbers.INF else \
            f"{int(value) * ctx.page_size}B"

    if size(rss.get("hard")):
        r.spec["memory"] = size(rss.get("hard"))
    memtune = {key: size(rss.get(kind)) for key, kind in (("soft_limit", "soft"),
                                                         ("min_guarantee", "min"))}
    memtune = {k: v for k, v in memtune.items() if v is not None}
    if memtune:
        r.spec["memtune"] = memtune
    limits: dict[str, list[int]] = {}
    for counter, res in BEANCOUNTER_RLIMITS.items():
        values = _limits(tree, res, r)
        if not values:
            continue
        for rel in (f"rlimits/{res}", f"rlimits/{res}.soft", f"rlimits/{res}.hard"):
            if tree.get(rel) is not None:
                r.seen.add(rel)
        if tree.get(f"rlimits/{res}.min") is not None:
            r.note(f"rlimits/{res}.min", f"a reserved minimum of {res} has no field in the "
                   "model")
        if "soft" in values and "hard" in values:
            limits[counter] = [UNLIMITED if v == numbers.INF else int(v)
                               for v in (values["soft"], values["hard"])]
        else:
            for rel in (f"rlimits/{res}.soft", f"rlimits/{res}.hard"):
                if tree.get(rel) is not None:
                    r.note(rel, f"only one of {res}'s soft and hard limits is set; the "
                           "model's [barrier, limit] needs both")
    if limits:
        r.spec["limits"] = limits


@dataclass(frozen=True)
class NicDir:
    """One `interfaces/<ID>/` directory that is a NIC of the model: an address, or a range."""

    id: str
    is_range: bool


def nic_dirs(tree: Tree) -> list[NicDir]:
    """The interface directories the model sees, in util-vserver's order: every one but
    those `disabled` without a range."""
    out = []
    for sub in tree.subdirs("interfaces"):
        rel = f"interfaces/{sub}"
        is_range = tree.get(f"{rel}/range") is not None
        if is_range or not tree.has(f"{rel}/disabled"):
            out.append(NicDir(sub, is_range))
    return out


def _inherited(tree: Tree, rel: str, key: str, inherit: bool) -> str:
    """_getInterfaceValue: the interface's own file, or the parent's when the own file is
    missing or `read` fails on it (§2.3)."""
    value = ""
    for candidate in (f"{rel}/{key}", f"interfaces/{key}") if inherit else (f"{rel}/{key}",):
        data = tree.get(candidate)
        if data is None:
            continue
        result = scalar(data)
        value = result.value
        if result.ok:
            break
    return value


def _full(address: str) -> int:
    return 128 if ":" in address else 32


def _read_interfaces(tree: Tree, r: Reading, ctx: Context) -> None:
    nics: list[dict[str, Any]] = []
    last = list((ctx.last or {}).get("interfaces") or ())
    for rel in ("interfaces/dev", "interfaces/prefix", "interfaces/mask"):
        if tree.get(rel) is not None:
            r.seen.add(rel)  # inherited by every interface
    for nic_dir in nic_dirs(tree):
        rel = f"interfaces/{nic_dir.id}"
        for name in NIC_FILES:
            if tree.get(f"{rel}/{name}") is not None:
                r.seen.add(f"{rel}/{name}")
        if nic_dir.is_range:
            span = scalar(tree.files[f"{rel}/range"]).value
            nics.append({"type": "routed", "ranges": [span]})
            if not tree.has(f"{rel}/disabled"):
                r.problem(f"{rel}/range", "a range directory without `disabled`: the start "
                          "fails on its missing ip")
            continue
        nic = _read_address(tree, rel, r, last[len(nics)] if len(nics) < len(last) else None)
        if nic is not None:
            nics.append(nic)
    for sub in tree.subdirs("interfaces"):
        rel = f"interfaces/{sub}"
        if tree.has(f"{rel}/disabled") and tree.get(f"{rel}/range") is None:
            r.note(rel + "/disabled", "a disabled interface is not applied")
    if nics:
        r.spec["interfaces"] = nics


def _read_address(tree: Tree, rel: str, r: Reading,
                  last: dict[str, Any] | None) -> dict[str, Any] | None:
    ip = _inherited(tree, rel, "ip", False)
    dev = _inherited(tree, rel, "dev", True)
    nodev = tree.has(f"{rel}/nodev") or tree.has(f"{rel}/only_ip")
    if not ip:
        r.problem(rel, "no ip: the start fails with \"Can not read ip\"")
        r.note(rel, "no ip")
        return None
    if not dev and not nodev:
        r.problem(rel, "no dev and no nodev: the start fails with \"No device specified\"")
        r.note(rel, "no dev and no nodev")
        return None
    prefix = _inherited(tree, rel, "prefix", True)
    if not prefix:
        status = numbers.mask2prefix(_inherited(tree, rel, "mask", True))
        if status == 255:
            r.note(rel + "/mask", "not a netmask")
            return None
        prefix = str(status) if status else ""
    if prefix and not prefix.isdigit():
        r.note(rel + "/prefix", f"{prefix!r} is not a prefix length")
        return None
    bits: int | None = int(prefix) if prefix else None
    if bits == _full(ip):  # a host address either way; spelled as it was applied
        spelled = _address_of(last)
        bits = spelled[1] if spelled is not None and spelled[0] == ip else None
    nic: dict[str, Any] = {"type": "routed"}
    peer = _inherited(tree, rel, "peer", False)
    if peer:
        nic["ip"] = [{"address": ip, "prefix": bits, "peer": peer}]
    else:
        nic["ip"] = [ip if bits is None else f"{ip}/{bits}"]
    label = _inherited(tree, rel, "name", False)
    if nodev:
        if tree.get(f"{rel}/dev") is not None:
            r.note(rel + "/dev", "ignored: nodev puts no address on the device")
        if label:
            r.note(rel + "/name", "a label needs a device; nodev has none")
    else:
        nic["host_dev"] = dev
        if label:
            nic["guest_dev"] = f"{dev}:{label}"
    if tree.has(f"{rel}/down"):
        nic["link"] = "down"
    return nic


def _address_of(nic: dict[str, Any] | None) -> tuple[str, int | None] | None:
    """(address, prefix) of a canonical NIC's one address."""
    if not nic or len(nic.get("ip") or ()) != 1:
        return None
    item = nic["ip"][0]
    if isinstance(item, dict):
        return str(item["address"]), item.get("prefix")
    address, _, prefix = str(item).partition("/")
    return address, int(prefix) if prefix else None


@dataclass(frozen=True)
class FstabLine:
    """One line of fstab or fstab.local: the model's filesystem it is, if any."""

    raw: str
    fs: dict[str, Any] | None
    why: str = ""  # why it is not a filesystem of the model


def fstab_fields(raw: str) -> list[str]:
    """The fields of an fstab line as util-vserver's secure-mount splits them: at C isspace
    (blank, tab, VT, FF, CR), with no unescaping of any kind."""
    stripped = raw.strip(_C_SPACE)
    return _C_SPACES.split(stripped) if stripped else []


def parse_fstab(text: str) -> list[FstabLine]:
    """fstab or fstab.local, split at LF as secure-mount does (`strsep(..., "\n")`)."""
    out = []
    for raw in lines(text):
        fields = fstab_fields(raw)
        if not fields or fields[0].startswith("#"):
            out.append(FstabLine(raw, None, ""))
            continue
        out.append(FstabLine(raw, *_mount(fields)))
    return out


def _mount(fields: list[str]) -> tuple[dict[str, Any] | None, str]:
    if len(fields) < 4:  # secure-mount needs source, target, type and options
        return None, "fewer than four fields: secure-mount fails on it"
    source, target, fstype = fields[:3]
    options = fields[3].split(",")
    if target == "/":
        return None, "a mount over the guest root"
    if not target.startswith("/"):
        return None, "a relative target"
    readonly = "ro" in options
    rest = [o for o in options if o not in ("ro", "rw", "defaults")]
    if fstype == "tmpfs":
        sizes = [o for o in rest if o.startswith("size=")]
        match = _TMPFS_SIZE.match(sizes[0][5:]) if len(sizes) == 1 else None
        if match is None or len(rest) != 1:
            return None, "tmpfs with options other than size=, ro"
        nbytes = int(match.group(1)) * _TMPFS_UNITS[match.group(2).lower()]
        return _fs("ram", None, target, readonly, size=f"{nbytes}B"), ""
    if "bind" in rest:
        if rest != ["bind"]:
            return None, "a bind mount with options other than ro"
        return _fs("mount", source, target, readonly), ""
    if source.startswith("/dev/") and not rest:
        return _fs("block", source, target, readonly), ""
    return None, f"a {fstype} mount"


def _fs(kind: str, source: str | None, target: str, readonly: bool,
        **extra: Any) -> dict[str, Any]:
    fs: dict[str, Any] = {"type": kind, "target": target, **extra}
    if source is not None:
        fs["source"] = source
    if readonly:
        fs["readonly"] = True
    return fs


def canonical_fs(fs: dict[str, Any]) -> dict[str, Any] | None:
    """A filesystem in the model's canonical form (None if the model refuses it)."""
    try:
        return Filesystem.model_validate(fs).model_dump(mode="json", exclude_defaults=True)
    except ValueError:
        return None


def fstab_mounts(tree: Tree) -> list[dict[str, Any]]:
    """The model's mounts in fstab then fstab.local, canonical, in mount order."""
    out = []
    for rel in ("fstab", "fstab.local"):
        data = tree.get(rel)
        for entry in parse_fstab(data.decode("utf-8", "replace")) if data is not None else ():
            fs = canonical_fs(entry.fs) if entry.fs is not None else None
            if fs is not None:
                out.append(fs)
    return out


def _spelled(fs: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any]:
    """A bind mount read from fstab as the last-applied spec named it (`bind` or `mount`)."""
    for old in (last or {}).get("filesystems") or ():
        if old.get("type") == "bind" and _same_mount(old) == fs:
            return dict(old)
    return fs


def _read_filesystems(tree: Tree, r: Reading, ctx: Context) -> None:
    for rel in ("run", "cache", SIDECAR):
        r.seen.add(rel)
    script = tree.get(RANGES_SCRIPTLET)
    if script is not None and script == RANGES_SCRIPT:
        r.seen.add(RANGES_SCRIPTLET)
    mounts: list[dict[str, Any]] = []
    for rel in ("fstab", "fstab.local"):
        data = tree.get(rel)
        if data is None:
            continue
        r.seen.add(rel)
        for number, entry in enumerate(parse_fstab(data.decode("utf-8", "replace")), 1):
            fs = canonical_fs(entry.fs) if entry.fs is not None else None
            if fs is not None:
                mounts.append(_spelled(fs, ctx.last))
                continue
            if entry.why.startswith("fewer than four"):
                r.problem(rel, f"line {number}: secure-mount's syntax error fails the start")
            if entry.why and tuple(fstab_fields(entry.raw)[:4]) not in DEFAULT_FSTAB:
                r.notes.append(Note(rel, entry.why, number, entry.raw.strip()))
    root = ctx.root
    r.seen.add("vdir")
    if root is None and "vdir" in tree.links:
        r.notes.append(Note("vdir", "how the guest root was built is not in the tree, so "
                            "the spec has no root filesystem", 1, tree.links["vdir"]))
    elif root is None and "vdir" not in tree.links:
        r.problem("vdir", "no vdir link: the guest has no root")
    filesystems = mounts
    if root is not None:
        at = 0
        for index, fs in enumerate((ctx.last or {}).get("filesystems") or ()):
            if fs.get("target") == "/":
                at = min(index, len(mounts))
        filesystems = [*mounts[:at], dict(root), *mounts[at:]]
    if filesystems:
        r.spec["filesystems"] = filesystems


# =========================================================================== writing


def managed_fields(desired: dict[str, Any], last: dict[str, Any] | None) -> set[str]:
    """The fields this write owns: set now or at the last apply (a field dropped from the
    spec goes back to util-vserver's default). Engine-only fields are not the tree's, except
    depends_on, which util-vserver's boot ordering reads (apps/init/depends)."""
    fields = set(desired) | set(last or ())
    return {f for f in fields if f not in POLICY_FIELDS or f == "depends_on"}


def edits(tree: Tree, spec: dict[str, Any], managed: set[str], ctx: Context) -> list[Edit]:
    """The file changes that make `tree` say `spec` for the `managed` fields, and only those.
    Unchanged files are left alone (apply_edits skips equal content too)."""
    out: list[Edit] = []
    if "id" in managed and spec.get("id") is not None:
        out.append(Edit("context", line(str(spec["id"]))))
    for key, rel in (("hostname", "uts/nodename"), ("arch", "uts/machine")):
        if key in managed:
            out.append(Edit(rel, line(spec[key]) if spec.get(key) else REMOVE))
    if "autostart" in managed:
        mark = tree.get("apps/init/mark")
        if spec.get("autostart"):
            out.append(Edit("apps/init/mark", line("default")))
        elif mark is not None and scalar(mark).value == "default":
            out.append(Edit("apps/init/mark", REMOVE))
    if "depends_on" in managed:
        names = list(spec.get("depends_on") or ())
        out.append(Edit("apps/init/depends", lines_of(names) if names else REMOVE))
    if "init" in managed:
        out += _init_edits(tree, spec.get("init") or {})
    if "scheduler" in managed:
        out += _sched_edits(tree, spec.get("scheduler") or {})
    out += _rlimit_edits(tree, spec, managed, ctx)
    if "interfaces" in managed:
        out += _nic_edits(tree, list(spec.get("interfaces") or ()))
    if "filesystems" in managed:
        out += _fstab_edits(tree, list(spec.get("filesystems") or ()))
    return out


def _init_edits(tree: Tree, init: dict[str, Any]) -> list[Edit]:
    base = "apps/init"
    cmd, args = init.get("cmd"), list(init.get("args") or ())
    out = []
    current_style = tree.get(f"{base}/style")
    style = scalar(current_style).value if current_style is not None else "sysv"
    if cmd == PLAIN_INIT["plain"] and len(args) <= 1:
        # util-vserver's own form of "run /sbin/init": the plain style (which also fakes
        # init's pid 1), the runlevel as its argument
        out += [Edit(f"{base}/style", line("plain")), Edit(f"{base}/cmd.start", REMOVE),
                Edit(f"{base}/runlevel", REMOVE),
                Edit(f"{base}/runlevel.start", line(args[0]) if args else REMOVE)]
    elif cmd:
        out.append(Edit(f"{base}/cmd.start", lines_of([cmd, *args], array=True)))
    else:
        out.append(Edit(f"{base}/cmd.start", REMOVE))
        if style in PLAIN_INIT:  # the style this driver set for /sbin/init: back to sysv
            out += [Edit(f"{base}/style", REMOVE), Edit(f"{base}/runlevel.start", REMOVE)]
    env = init.get("env") or {}
    out.append(Edit(f"{base}/environment",
                    lines_of([f"{k}={v}" for k, v in env.items()], array=True) if env
                    else REMOVE))
    return out


def _bucket_edits(tree: Tree, rel: str, bucket: dict[str, Any]) -> list[Edit]:
    out = []
    for key, name in SCHED_WRITE.items():
        value = bucket.get(key)
        out.append(Edit(f"{rel}/{name}", line(str(value)) if value is not None else REMOVE))
    if tree.get(f"{rel}/prio-bias") is not None:
        out.append(Edit(f"{rel}/prio-bias", REMOVE))  # the alias: priority-bias is written
    out.append(Edit(f"{rel}/idle-time", TOUCH if bucket.get("idle_time") else REMOVE))
    return out


def _sched_edits(tree: Tree, sched: dict[str, Any]) -> list[Edit]:
    out = _bucket_edits(tree, "sched", sched) if sched or "sched" in tree.dirs else []
    cpus = {int(k): v for k, v in (sched.get("cpus") or {}).items()}
    have: dict[int, str] = {}
    for sub in tree.subdirs("sched") if "sched" in tree.dirs else ():
        rel = f"sched/{sub}"
        cpu = tree.get(f"{rel}/cpu-id")
        if cpu is None or tree.get(f"{rel}/bucket-id") is not None:
            continue
        cpu_id = numbers.sched_value(cpu)
        if cpu_id is not None and cpu_id not in have:
            have[cpu_id] = rel
    for cpu_id, rel in have.items():
        if cpu_id not in cpus:
            out.append(Edit(rel, REMOVE, tree=True))
    for cpu_id, bucket in sorted(cpus.items()):
        rel = have.get(cpu_id) or f"sched/cpu{cpu_id}"
        out.append(Edit(f"{rel}/cpu-id", line(str(cpu_id))))
        out += _bucket_edits(tree, rel, bucket)
    return out


def _rlimit_edits(tree: Tree, spec: dict[str, Any], managed: set[str],
                  ctx: Context) -> list[Edit]:
    """rlimits/ files: what each owned (resource, min|soft|hard) should be. A plain
    `<res>` file sets all three; when one of them changes it is split into the suffixed
    files first, so the values this write does not own are kept."""
    owned: dict[str, dict[str, str | None]] = {}

    def pages(size: Any) -> str | None:
        return None if size is None else str(parse_size(size) // ctx.page_size)

    memtune = spec.get("memtune") or {}
    if "memory" in managed:
        owned.setdefault("rss", {})["hard"] = pages(spec.get("memory"))
    if "memtune" in managed:
        owned.setdefault("rss", {}).update(soft=pages(memtune.get("soft_limit")),
                                           min=pages(memtune.get("min_guarantee")))
    if "limits" in managed:
        limits = spec.get("limits") or {}
        for counter, res in BEANCOUNTER_RLIMITS.items():
            pair = limits.get(counter)
            values = [None, None] if pair is None else \
                ["inf" if v >= UNLIMITED else str(v) for v in pair]
            owned.setdefault(res, {}).update(soft=values[0], hard=values[1])
    out: list[Edit] = []
    for res, want in owned.items():
        plain = tree.get(f"rlimits/{res}")
        current = {k: tree.get(f"rlimits/{res}.{k}") for k in LIMIT_KINDS}
        effective = {}
        for kind in LIMIT_KINDS:
            source = current[kind] if current[kind] is not None else plain
            effective[kind] = numbers.limit_value(source) if source is not None else None
        wanted = {k: (numbers.limit_value(v.encode()) if v is not None else None)
                  for k, v in want.items()}
        if all(effective[k] == wanted[k] for k in want):
            continue
        if plain is not None:
            out.append(Edit(f"rlimits/{res}", REMOVE))
            for kind in LIMIT_KINDS:
                if kind not in want and current[kind] is None:
                    out.append(Edit(f"rlimits/{res}.{kind}", plain))
        for kind, value in want.items():
            out.append(Edit(f"rlimits/{res}.{kind}", line(value) if value is not None
                            else REMOVE))
    return out


def _next_id(previous: str | None, taken: set[str]) -> str:
    """An interface directory name that sorts after `previous` (util-vserver processes them
    in name order) and is not taken."""
    if previous is None:
        candidate = "00"
    elif previous.isdigit() and len(str(int(previous) + 1)) <= len(previous):
        candidate = str(int(previous) + 1).zfill(len(previous))
    else:
        candidate = previous + "0"
    while candidate in taken or (previous is not None and candidate.encode() <= previous.encode()):
        candidate += "0"
    return candidate


def _nic_edits(tree: Tree, nics: list[dict[str, Any]]) -> list[Edit]:
    dirs = nic_dirs(tree)
    taken = set(tree.children("interfaces"))
    out: list[Edit] = []
    for extra in dirs[len(nics):]:
        out.append(Edit(f"interfaces/{extra.id}", REMOVE, tree=True))
    previous: str | None = None
    parent_prefix = tree.get("interfaces/prefix") is not None or \
        tree.get("interfaces/mask") is not None
    for index, nic in enumerate(nics):
        if index < len(dirs):
            previous = dirs[index].id
        else:
            previous = _next_id(previous, taken)
            taken.add(previous)
        out += _one_nic(f"interfaces/{previous}", nic, parent_prefix)
    has_range = any(nic.get("ranges") for nic in nics)
    script = tree.get(RANGES_SCRIPTLET)
    if has_range:
        out.append(Edit(RANGES_SCRIPTLET, RANGES_SCRIPT))
    elif script == RANGES_SCRIPT:
        out.append(Edit(RANGES_SCRIPTLET, REMOVE))
    return out


def _one_nic(rel: str, nic: dict[str, Any], parent_prefix: bool) -> list[Edit]:
    files: dict[str, Any] = dict.fromkeys(NIC_FILES, REMOVE)
    if nic.get("ranges"):
        files.update(range=line(str(nic["ranges"][0])), disabled=TOUCH, nodev=TOUCH)
    else:
        address, bits = _address_of(nic) or ("", None)
        item = nic["ip"][0]
        files["ip"] = line(address)
        if bits is not None:
            files["prefix"] = line(str(bits))
        elif parent_prefix:  # a host address must not inherit interfaces/prefix
            files["prefix"] = line(str(_full(address)))
        if isinstance(item, dict) and item.get("peer"):
            files["peer"] = line(str(item["peer"]))
        if nic.get("host_dev"):
            files["dev"] = line(str(nic["host_dev"]))
            label = str(nic.get("guest_dev") or "")
            if label:
                files["name"] = line(label.split(":", 1)[1])
        else:
            files["nodev"] = TOUCH
        if nic.get("link") == "down":
            files["down"] = TOUCH
    return [Edit(f"{rel}/{name}", content) for name, content in files.items()]


def fstab_line(fs: dict[str, Any]) -> str:
    kind = fs.get("type", "mount")
    ro = ",ro" if fs.get("readonly") else ""
    if kind == "ram":
        nbytes = parse_size(fs["size"])
        size = next((f"{nbytes // f}{u}" for u, f in (("g", 1024**3), ("m", 1024**2),
                                                      ("k", 1024)) if nbytes % f == 0),
                    str(nbytes))
        fields = ["none", fs["target"], "tmpfs", f"size={size}{ro}"]
    elif kind == "block":
        fields = [fs["source"], fs["target"], "auto", "ro" if ro else "defaults"]
    else:
        fields = [fs["source"], fs["target"], "none", f"bind{ro}"]
    for value in fields:
        if any(c.isspace() or c == "\\" for c in value) or not value:
            raise ValueError(f"{value!r} cannot be an fstab field")
    return "\t".join(fields) + "\t0 0"


def _fstab_edits(tree: Tree, filesystems: list[dict[str, Any]]) -> list[Edit]:
    """The model's mounts are the fstab and fstab.local lines it can read; when they differ
    from the spec's, they are written again, in the spec's order, at the end of fstab (a
    line that already says a wanted mount is kept as it is, its filesystem type with it);
    every other line stays where it is."""
    want = [canonical_fs(fs) for fs in filesystems if fs.get("target") != "/"]
    if [_same_mount(fs) for fs in fstab_mounts(tree)] == [_same_mount(fs) for fs in want]:
        return []
    had: dict[str, str] = {}
    parsed = {}
    for rel in ("fstab", "fstab.local"):
        data = tree.get(rel)
        parsed[rel] = parse_fstab(data.decode("utf-8", "replace")) if data is not None else None
        for entry in parsed[rel] or ():
            fs = canonical_fs(entry.fs) if entry.fs is not None else None
            if fs is not None:
                had.setdefault(repr(_same_mount(fs)), entry.raw)
    lines_of_spec = [had.get(repr(_same_mount(fs))) or fstab_line(fs) for fs in want if fs]
    out = []
    for rel, extra in (("fstab", lines_of_spec), ("fstab.local", [])):
        entries = parsed[rel]
        kept = [entry.raw for entry in entries or ()
                if entry.fs is None or canonical_fs(entry.fs) is None]
        body = kept + extra
        if body:
            out.append(Edit(rel, "".join(f"{ln}\n" for ln in body).encode()))
        elif entries is not None:
            out.append(Edit(rel, REMOVE))
    return out


def _same_mount(fs: dict[str, Any] | None) -> dict[str, Any] | None:
    """A mount as fstab says it: `bind` and `mount` are the one bind mount there."""
    if fs is None or fs.get("type") != "bind":
        return fs
    out = dict(fs)
    out.pop("type")
    return out


# =========================================================================== running guests


@dataclass(frozen=True)
class Address:
    """One entry of a guest's network context, as naddress and `ip addr` name it."""

    text: str                # A[/P] or A-B[/P]
    is_range: bool
    dev: str | None = None   # the host device carrying it (None: nodev)
    label: str | None = None
    peer: str | None = None
    up: bool = True


def addresses(nics: Iterable[dict[str, Any]]) -> list[Address]:
    out = []
    for nic in nics:
        if nic.get("ranges"):
            out.append(Address(str(nic["ranges"][0]), True))
            continue
        found = _address_of(nic)
        if found is None:
            continue
        address, bits = found
        item = nic["ip"][0]
        label = str(nic.get("guest_dev") or "").partition(":")[2] or None
        out.append(Address(address if bits is None else f"{address}/{bits}", False,
                           nic.get("host_dev"), label,
                           item.get("peer") if isinstance(item, dict) else None,
                           nic.get("link") != "down"))
    return out


