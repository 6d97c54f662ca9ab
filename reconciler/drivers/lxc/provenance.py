"""Which lines of a container's config a spec carries, and why the others are left out.

Reading a config (`mapping.read_spec`) marks every key, or key and value, it turns into a spec
field, and every one it deliberately leaves out because it says what the spec's absence says
(an unlimited memory limit, an `empty` NIC beside real ones, the template's own mounts). After
the spec is validated, the lines of a field the model refused and the lines nobody marked are
what `convert` and `import` report, each with its line and a reason. Settings the templates
and LXC's shipped configs write only so that LXC runs the container's init (halt signals,
autodev, pseudo-filesystem mounts, ...) are defaults too: the driver keeps those lines as they
are and a spec never needs them.

Pure: no files, no processes.
"""

from __future__ import annotations

from typing import NamedTuple

from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.text import words

NORMALISED = ""  # the field of a line a spec leaves out on purpose


class Provenance:
    """Spec field per config key (every line of it) or per key and value (that line only).
    Filled while one config is read, then only looked up."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._values: dict[tuple[str, str], str] = {}
        self._why: dict[str, str] = {}

    def mark(self, field: str, key: str, value: str | None = None) -> None:
        if value is None:
            self._keys.setdefault(key, field)
        else:
            self._values.setdefault((key, value), field)

    def explain(self, key: str, why: str) -> None:
        """Why the spec leaves `key` out, when the reading knows better than its name says."""
        self._why.setdefault(key, why)

    def field_of(self, key: str, value: str) -> str | None:
        found = self._values.get((key, value))
        return found if found is not None else self._keys.get(key)

    def why(self, key: str) -> str | None:
        return self._why.get(key)


class LeftOut(NamedTuple):
    """A config line the spec does not carry: 1-based line, key, value and why."""

    line: int
    key: str
    value: str
    reason: str


def left_out(cfg: LxcConfig, marks: Provenance, refused: dict[str, str],
             spelled: LxcConfig | None = None) -> list[LeftOut]:
    """Every key line of `cfg` the validated spec does not carry. `refused`: field -> why the
    model refused its value; `spelled`: the file as written (`cfg` may be its modernised
    copy, line for line), whose keys are the ones reported."""
    out = []
    for index, line in enumerate(cfg.lines):
        if line.key is None or line.value is None:
            continue
        field = marks.field_of(line.key, line.value)
        if field is not None and field not in refused:
            continue
        if field is None and template_default(line.key, line.value):
            continue
        shown = spelled.lines[index] if spelled is not None else line
        why = (f"the model refuses the value read: {refused[field]}" if field is not None
               else marks.why(line.key) or reason(line.key))
        out.append(LeftOut(index + 1, shown.key or line.key, shown.value or "", why))
    return out


# keys the templates and LXC's shipped configs write so that LXC can run the container's init
_PLUMBING = frozenset({"lxc.signal.halt", "lxc.signal.reboot", "lxc.signal.stop",
                       "lxc.autodev", "lxc.pty.max", "lxc.mount.auto", "lxc.rootfs.backend",
                       "lxc.pivotdir", "lxc.kmsg"})
_SHIPPED_CONFIGS = "/usr/share/lxc/config/"
_TEMPLATE_INCLUDES = ("common.conf", "userns.conf")  # not nesting.conf: that one is a choice
# mounts of kernel pseudo-filesystems (and /dev/shm) LXC's templates add to every container
_PSEUDO_FS = frozenset({"proc", "sysfs", "devpts", "mqueue", "cgroup", "securityfs"})
_PSEUDO_TARGETS = frozenset({"proc", "sys", "dev/shm", "dev/pts", "dev/mqueue",
                             "sys/kernel/security", "sys/fs/fuse/connections"})


def template_default(key: str, value: str) -> bool:
    """A line templates write that only tunes how LXC runs init: never reported."""
    if key in _PLUMBING:
        return True
    if key == "lxc.include":  # a distribution's common (and user namespace) settings
        path = value.strip()
        return path.startswith(_SHIPPED_CONFIGS) and path.endswith(_TEMPLATE_INCLUDES)
    if key == "lxc.mount.entry":
        fields = words(value)
        if len(fields) < 3:
            return False
        optional = len(fields) > 3 and "optional" in fields[3].split(",")
        return fields[2] in _PSEUDO_FS or fields[1].strip("/") in _PSEUDO_TARGETS or \
            (optional and fields[0].startswith("/sys/"))
    return False


# keys the mapping reads: one of them left over was a value it could not understand
_MAPPED = frozenset({
    "lxc.uts.name", "lxc.arch", "lxc.start.auto", "lxc.start.order", "lxc.tty.max",
    "lxc.init.cmd", "lxc.init.cwd", "lxc.init.uid", "lxc.init.gid", "lxc.environment",
    "lxc.idmap", "lxc.rootfs.path", "lxc.cap.drop", "lxc.cap.keep"})
_REASONS = (
    ("lxc.net.", "no spec field for this NIC setting"),
    ("lxc.cgroup.devices.", "device access rules are not in the spec"),
    ("lxc.cgroup2.devices.", "device access rules are not in the spec"),
    ("lxc.cgroup", "no spec field for this cgroup setting"),
    ("lxc.hook.", "a hook runs a host program; a spec never names one"),
    ("lxc.apparmor.", "security profiles are not in the spec"),
    ("lxc.selinux.", "security profiles are not in the spec"),
    ("lxc.seccomp.", "security profiles are not in the spec"),
    ("lxc.mount.entry", "only bind mounts and tmpfs mounts with a size are in the spec"),
    ("lxc.mount.fstab", "mounts come one by one (lxc.mount.entry) into the spec"),
)


def reason(key: str) -> str:
    if key in _MAPPED:
        return "the value is not one the spec can say"
    return next((why for prefix, why in _REASONS if key.startswith(prefix)),
                "no spec field for it")
