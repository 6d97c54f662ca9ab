"""The harmonized Domain: one shape for LXC, OpenVZ, Linux-VServer and libvirt guests.

Every field is optional unless the identity needs it: a field left out is not managed, so
whatever the host fills in there never shows as a difference.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reconciler.model.names import check_abs_path, check_device, check_name
from reconciler.model.types import (
    AbsPath,
    Count,
    Device,
    FieldError,
    Frozen,
    IpAddress,
    IpRange,
    IpText,
    Mac,
    Name,
    PairInput,
    Size,
    Text,
    Token,
    XmlText,
    ip_family,
)
from reconciler.model.units import format_size, parse_size

DOMAIN_TYPES = ("lxc", "openvz", "vserver", "vz", "kvm", "qemu", "test", "xen")
CONTAINER_TYPES = frozenset({"lxc", "openvz", "vserver", "vz"})
# the `<os><type>` a domain type has when none is written; spelling it out changes nothing
DEFAULT_OS_TYPE = {"lxc": "exe", "openvz": "exe", "vserver": "exe", "vz": "exe", "kvm": "hvm",
                   "qemu": "hvm"}

UUID_PATTERN = r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$"
# a cluster member as LXD names it, or `@` and a cluster group (as `lxc launch --target`)
TARGET_PATTERN = r"^@?[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

# OpenVZ user beancounters, lower-cased as the YAML keys (vps.basic names them all).
BEANCOUNTERS = (
    "avnumproc", "numproc", "numtcpsock", "numothersock", "vmguarpages", "kmemsize",
    "tcpsndbuf", "tcprcvbuf", "othersockbuf", "dgramrcvbuf", "oomguarpages", "lockedpages",
    "shmpages", "privvmpages", "numfile", "numflock", "numpty", "numsiginfo", "dcachesize",
    "physpages", "numiptent", "swappages",
)

RunState = Literal["running", "stopped", "absent"]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# a resolv.conf search domain: one word (a space would split it into two domains)
DomainName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")]
Pair = Annotated[tuple[Count, Count], PairInput]
# settings whose every part at its default is no setting: part -> the values that are default
_EMPTY_SETTINGS: dict[str, dict[str, tuple[Any, ...]]] = {
    "blkiotune": {"weight": (None,), "devices": (None, (), [])},
    "capabilities": {"policy": (None, "default"), "keep": (None, (), []),
                     "drop": (None, (), [])},
}


def _check_beancounters(value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    for key, (barrier, limit) in value.items():
        if key not in BEANCOUNTERS:
            raise FieldError(key, f"unknown beancounter {key!r}; valid: "
                             f"{', '.join(BEANCOUNTERS)}")
        if barrier > limit:
            raise FieldError(key, f"barrier {barrier} is above limit {limit}; write "
                             "[barrier, limit] with barrier <= limit")
    return value


Beancounters = Annotated[dict[str, Pair], AfterValidator(_check_beancounters)]


class Memtune(Frozen):
    hard_limit: Size | None = None
    soft_limit: Size | None = None
    swap_hard_limit: Size | None = None
    min_guarantee: Size | None = None


class Cpu(Frozen):
    """vCPUs and scheduler weights. `shares` is cgroup cpu.shares = OpenVZ CPUUNITS."""

    count: int | None = Field(None, ge=1, le=4096)
    cpuset: str | None = Field(None, pattern=r"^[0-9,\-^]+$")
    shares: int | None = Field(None, ge=2, le=500000)
    period: int | None = Field(None, ge=1000, le=1000000)
    quota: int | None = Field(None, ge=-1)
    limit: int | None = Field(None, ge=0, le=409600, description="percent of one CPU (CPULIMIT)")

    @model_validator(mode="after")
    def _cpuset_with_count(self) -> Cpu:
        if self.cpuset is not None and self.count is None:
            raise FieldError("cpuset", "cpuset needs count too (libvirt's <vcpu> carries both)")
        return self


# Block I/O weights as libvirt's <blkiotune> takes them (its schema: 100-1000)
BlkioWeight = Annotated[int, Field(ge=100, le=1000)]


def _byte_rate(value: Any) -> int:
    """Bytes per second: a plain number is bytes, `10MiB` is accepted too."""
    return parse_size(value, native=1)


ByteRate = Annotated[int, BeforeValidator(_byte_rate), Field(ge=1),
                    WithJsonSchema({"anyOf": [
                        {"type": "integer", "minimum": 1, "description": "bytes per second"},
                        {"type": "string", "pattern": r"^\d+\s*[A-Za-z]*$",
                         "description": "a size per second, e.g. 10MiB"}]})]
IopsRate = Annotated[int, Field(ge=1, le=4294967295)]


class BlkioDevice(Frozen):
    """Per-device block I/O settings (libvirt `<blkiotune><device>`). A rate left out is not
    limited; 0 is never a limit, so it is refused rather than read as one."""

    path: AbsPath = Field(description="the device, e.g. /dev/block/8:0 (MAJ:MIN) or /dev/sda")
    weight: BlkioWeight | None = None
    read_bytes_sec: ByteRate | None = None
    write_bytes_sec: ByteRate | None = None
    read_iops_sec: IopsRate | None = None
    write_iops_sec: IopsRate | None = None

    @model_validator(mode="after")
    def _says_something(self) -> BlkioDevice:
        if self.model_fields_set <= {"path"}:
            raise FieldError("path", f"device {self.path} sets nothing; give a weight or a "
                             "read/write bytes or iops limit")
        return self


class Blkiotune(Frozen):
    """Block I/O tuning of the guest's cgroup: a weight for all devices and per-device weights
    and throttles (libvirt `<blkiotune>`, LXC `lxc.cgroup.blkio.*` / `lxc.cgroup2.io.*`)."""

    weight: BlkioWeight | None = None
    devices: tuple[BlkioDevice, ...] = ()

    @field_validator("devices")
    @classmethod
    def _one_entry_per_device(cls, value: tuple[BlkioDevice, ...]) -> tuple[BlkioDevice, ...]:
        """Each device once; their order means nothing, so it is one order (by path)."""
        paths = [device.path for device in value]
        for index, path in enumerate(paths):
            if path in paths[:index]:
                raise FieldError((index, "path"), f"device {path} is listed twice; give each "
                                 "device once with all its settings")
        return tuple(sorted(value, key=lambda device: device.path))


# Linux capabilities by their lower-case names without CAP_ (as LXC and libvirt spell them)
CAPABILITIES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
    "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
    "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read",
    "perfmon", "bpf", "checkpoint_restore")


def _check_capability(value: str) -> str:
    if value not in CAPABILITIES:
        raise ValueError(f"{value!r} is not a Linux capability; write its lower-case name "
                         "without CAP_, e.g. sys_admin or net_raw")
    return value


CapName = Annotated[str, AfterValidator(_check_capability)]


def _capability_set(value: Any) -> Any:
    """A capability list is a set: one order (sorted), each name once."""
    if isinstance(value, list | tuple):
        return tuple(sorted(set(value), key=str))
    return value


CapSet = Annotated[tuple[CapName, ...], BeforeValidator(_capability_set)]


class Capabilities(Frozen):
    """The guest's capability bounding set (libvirt `<features><capabilities>`, LXC
    `lxc.cap.drop` / `lxc.cap.keep`): a policy for all capabilities and the ones kept (on) or
    dropped (off) against it. `allow` keeps every one not dropped, `deny` drops every one not
    kept, `default` starts from the technology's own set. A state equal to the policy's says
    nothing and is left out."""

    policy: Literal["default", "allow", "deny"] = "default"
    keep: CapSet = ()
    drop: CapSet = ()

    @model_validator(mode="before")
    @classmethod
    def _implied_states(cls, value: Any) -> Any:
        if isinstance(value, dict):
            implied = {"allow": "keep", "deny": "drop"}.get(value.get("policy"))  # type: ignore[arg-type]
            if implied in value:
                value = {k: v for k, v in value.items() if k != implied}
        return value

    @model_validator(mode="after")
    def _keep_or_drop(self) -> Capabilities:
        both = sorted(set(self.keep) & set(self.drop))
        if both:
            raise FieldError("drop", f"{', '.join(both)} both kept and dropped; give each "
                             "capability once")
        return self


class Quota(Frozen):
    """Disk quota of the root filesystem (OpenVZ DISKSPACE/DISKINODES, soft:hard)."""

    space: tuple[Size, Size] | None = None
    inodes: Pair | None = None
    time: int | None = Field(None, ge=0, description="grace period in seconds (QUOTATIME)")
    ugid_limit: int | None = Field(None, ge=0, description="second-level quota ids")
    users: tuple[UserQuota, ...] = ()

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, value: object) -> object:
        if isinstance(value, str) and ":" in value:
            return tuple(value.split(":", 1))
        return value

    @model_validator(mode="after")
    def _soft_below_hard(self) -> Quota:
        for what, pair in (("space", self.space), ("inodes", self.inodes)):
            if pair is not None and pair[0] > pair[1]:
                soft, hard = (format_size(v) if what == "space" else str(v) for v in pair)
                raise FieldError(what, f"soft limit {soft} is above hard limit {hard}; write "
                                 "[soft, hard] with soft <= hard")
        return self


class UserQuota(Frozen):
    uid: int = Field(ge=0)
    space: Size


class CpuBucket(Frozen):
    """One Linux-VServer token bucket (the whole guest's, or one CPU's override)."""

    fill_rate: int | None = Field(None, ge=0)
    interval: int | None = Field(None, ge=1)
    fill_rate2: int | None = Field(None, ge=0)
    interval2: int | None = Field(None, ge=1)
    idle_time: bool | None = None
    tokens: int | None = Field(None, ge=0)
    tokens_min: int | None = Field(None, ge=0)
    tokens_max: int | None = Field(None, ge=0)
    priority_bias: int | None = None


class Scheduler(CpuBucket):
    cpus: dict[int, CpuBucket] = Field(default_factory=dict)


class Init(Frozen):
    cmd: AbsPath | None = None
    args: tuple[Text, ...] = ()
    env: dict[str, Text] = Field(default_factory=dict)
    dir: AbsPath | None = None
    user: Text | None = None
    group: Text | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise FieldError(key, f"environment name {key!r} is not valid; use letters, "
                                 "digits and '_', not starting with a digit")
        return value

    @model_validator(mode="after")
    def _user_group(self) -> Init:
        if (self.user is None) != (self.group is None):
            raise FieldError("user" if self.group is None else "group",
                             "init user and group go together (libvirt needs both)")
        return self


class IdMap(Frozen):
    kind: Literal["uid", "gid"]
    start: int = Field(ge=0)
    target: int = Field(ge=0)
    count: int = Field(ge=1)


class Route(Frozen):
    """A static route inside the guest. `family` is only needed when it is not the address's."""

    address: IpText
    prefix: int | None = Field(None, ge=0, le=128)
    gateway: IpText
    metric: int | None = Field(None, ge=0)
    family: Literal["ipv4", "ipv6"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _implied_family(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("address"), str) and \
                value.get("family") == ip_family(value["address"]):
            value = {k: v for k, v in value.items() if k != "family"}
        return value

    @model_validator(mode="after")
    def _check(self) -> Route:
        if self.family is not None:
            raise FieldError("family", f"route family {self.family} does not match address "
                             f"{self.address}; leave family out")
        if ip_family(self.gateway) != ip_family(self.address):
            raise FieldError("gateway", f"route gateway {self.gateway} is not in the same "
                             "family as "
                             f"{self.address}")
        limit = 32 if ip_family(self.address) == "ipv4" else 128
        if self.prefix is not None and self.prefix > limit:
            raise FieldError("prefix", f"prefix /{self.prefix} is out of range for "
                             f"{self.address} (0-{limit})")
        return self


FsType = Literal["template", "mount", "bind", "block", "file", "ram", "volume"]


def _ram_mode(value: Any) -> Any:
    """tmpfs `mode=` as four octal digits. A number is refused: YAML reads `0755` as 493 and
    `755` as seven hundred and fifty-five, and neither is what was meant."""
    if not isinstance(value, str):
        raise ValueError(f"mode {value!r} must be quoted octal text, e.g. '0755' (YAML reads an "
                         "unquoted 0755 as a number)")
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise ValueError(f"mode {value!r} is not an octal permission such as '0755' or '1777'")
    return value.rjust(4, "0")


RamMode = Annotated[str, BeforeValidator(_ram_mode)]


class Filesystem(Frozen):
    """A root or mount: from a template, a host directory, a block device, a file or RAM."""

    type: FsType = "mount"
    target: AbsPath
    source: Text | None = Field(None, description="host dir, device, file, or pool/volume")
    name: Token | None = Field(None, description="template name (OpenVZ OSTEMPLATE, LXC "
                               "template): a name, never a path")
    method: Token | None = Field(None, description="how a template root is built, e.g. "
                                 "debootstrap")
    release: Token | None = None
    options: tuple[Text, ...] = Field((), description="extra template options")
    readonly: bool = False
    size: Size | None = Field(None, description="ram filesystem size")
    mode: RamMode | None = Field(None, description="ram filesystem permissions, octal text "
                                 "such as '0755' (tmpfs `mode=`)")
    driver: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                               description="file driver type, e.g. loop or nbd")
    format: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    accessmode: Literal["passthrough", "mapped", "squash"] | None = None
    xml: tuple[XmlText, ...] = ()

    @model_validator(mode="after")
    def _source_fits_type(self) -> Filesystem:
        fstype, source = self.type, self.source
        if fstype == "template" and not self.name:
            raise FieldError("type", "a template filesystem needs 'name' (the template to "
                             "build from)")
        if fstype in ("mount", "block", "file", "bind", "volume") and not source:
            raise FieldError("type", f"a {fstype} filesystem needs 'source'")
        if fstype == "ram" and self.size is None:
            raise FieldError("type", "a ram filesystem needs 'size', e.g. 64MiB")
        # only fields given in the input can be out of place (a set operation, cheap)
        misplaced = self.model_fields_set & _FS_NOT[fstype]
        for name in sorted(misplaced) if misplaced else ():
            if getattr(self, name) not in (None, ()):
                types = next(t for f, t in _FS_ONLY if name in f)
                raise FieldError(name, f"'{name}' applies to {' and '.join(types)} filesystems "
                                 f"only, not {fstype}")
        if self.format is not None and self.driver is None:
            raise FieldError("format", "'format' needs 'driver' (e.g. driver: loop, format: raw)")
        if fstype == "volume" and source:
            pool, sep, volume = source.partition("/")
            if not (pool and sep and volume) or "/" in volume:
                raise FieldError("source", f"a volume source is 'pool/volume', not "
                                 f"{source!r}")
        elif source:
            try:
                check_abs_path(source)
            except ValueError as exc:
                raise FieldError("source", str(exc)) from None
        return self


# fields that only some filesystem types have (anything else would be lost in libvirt XML)
_FS_ONLY = ((("name", "method", "release", "options"), ("template",)),
            (("size", "mode"), ("ram",)),
            (("driver", "format"), ("file",)),
            (("source",), ("template", "mount", "bind", "block", "file", "volume")))
_FS_NOT = {fstype: frozenset(f for fields, types in _FS_ONLY if fstype not in types
                             for f in fields)
           for fstype in typing.get_args(FsType)}

IfType = Literal["bridge", "network", "routed", "direct", "vlan", "hostdev", "empty", "none"]
# what a NIC type cannot carry: a moved host NIC keeps its own MAC and name, only `direct`
# has a macvlan mode, only `vlan` a VLAN id, only `routed` host-side addresses, and `routed` no
# source; `empty` (a network namespace with loopback only) and `none` (the host's own network
# namespace) are no device at all
_IF_FIELDS = frozenset({"source", "mode", "vlan", "mac", "host_dev", "host_mac", "guest_dev",
                        "ip", "ranges", "gateway", "routes", "host_ip", "host_routes", "link",
                        "mtu", "model", "xml"})
_IF_NOT = {
    "hostdev": frozenset({"mac", "mode", "vlan", "host_dev", "host_mac", "guest_dev", "host_ip",
                          "host_routes", "link", "mtu", "model", "xml"}),
    "routed": frozenset({"source", "mode", "vlan"}),
    "bridge": frozenset({"mode", "vlan", "host_ip", "host_routes"}),
    "network": frozenset({"mode", "vlan", "host_ip", "host_routes"}),
    "direct": frozenset({"vlan", "host_ip", "host_routes"}),
    "vlan": frozenset({"mode", "host_dev", "host_ip", "host_routes"}),
    "empty": _IF_FIELDS,
    "none": _IF_FIELDS,
}
# the NIC types that stand for a whole network namespace rather than a device in one
NETNS_TYPES = frozenset({"empty", "none"})
MacvlanMode = Annotated[Literal["private", "vepa", "bridge", "passthrough"],
                        BeforeValidator(lambda v: "passthrough" if v == "passthru" else v)]


class Interface(Frozen):
    """A NIC. `routed` is IP isolation / venet / libvirt `ethernet`; `direct` a macvlan on a
    host device, `vlan` an 802.1Q device on one; `hostdev` moves a host NIC in. `empty` is a
    network namespace of its own with loopback only, `none` the host's network namespace."""

    type: IfType
    source: Text | None = Field(None, description="bridge, network, parent device or host NIC")
    mode: MacvlanMode | None = Field(None, description="direct (macvlan) mode; LXC's `passthru` "
                                     "is `passthrough`")
    vlan: int | None = Field(None, ge=0, le=4094, description="VLAN id of a vlan NIC")
    mac: Mac | None = None
    host_dev: Device | None = None
    host_mac: Mac | None = None
    guest_dev: Device | None = None
    ip: tuple[IpAddress, ...] = ()
    ranges: tuple[IpRange, ...] = ()
    gateway: IpText | None = None
    routes: tuple[Route, ...] = ()
    host_ip: tuple[IpAddress, ...] = ()
    host_routes: tuple[Route, ...] = ()
    link: Literal["up", "down"] | None = None
    mtu: int | None = Field(None, ge=68, le=65535)
    model: Text | None = None
    xml: tuple[XmlText, ...] = ()

    @model_validator(mode="after")
    def _source_needed(self) -> Interface:
        iftype, source = self.type, self.source
        if iftype in ("bridge", "network", "direct", "vlan", "hostdev") and not source:
            raise FieldError("type", f"a {iftype} interface needs 'source'")
        if iftype == "vlan" and self.vlan is None:
            raise FieldError("vlan", "a vlan interface needs 'vlan', its VLAN id (0-4094)")
        misplaced = self.model_fields_set & _IF_NOT[iftype]
        for name in sorted(misplaced) if misplaced else ():
            if getattr(self, name) not in (None, ()):
                raise FieldError(name, f"a {iftype} interface cannot have '{name}'")
        if source:
            try:
                check_name(source, "network name") if iftype == "network" else \
                    check_device(source)
            except ValueError as exc:
                raise FieldError("source", str(exc)) from None
        return self


class Health(Frozen):
    """After a start the guest must pass this within `timeout` seconds, or the change is
    rolled back to the last good spec (engine/health.py)."""

    tcp: int | None = Field(None, ge=1, le=65535, description="a TCP port that must accept "
                            "a connection")
    address: IpText | None = Field(None, description="where the TCP check connects (default: "
                                   "the guest's first interface address)")
    command: tuple[Text, ...] = Field((), description="argv run inside the guest (no shell); "
                                      "exit 0 is healthy")
    timeout: int = Field(60, ge=1, le=3600)

    @model_validator(mode="after")
    def _one_check(self) -> Health:
        if (self.tcp is None) == (not self.command):
            raise ValueError("a health check is either `tcp: PORT` or `command: [argv...]`, "
                             "one of them")
        if self.command and not self.command[0].startswith("/"):
            raise ValueError(f"health.command runs {self.command[0]!r} without a shell or "
                             "PATH: give its absolute path")
        return self


class Console(Frozen):
    type: Literal["pty"] = "pty"
    count: int = Field(1, ge=1, le=64)


class Dns(Frozen):
    nameservers: tuple[Text, ...] = ()
    search: tuple[DomainName, ...] = ()


class Os(Frozen):
    """libvirt `<os>` pieces that are not the init program (VMs mostly)."""

    type: Text | None = None
    machine: Text | None = None
    xml: tuple[XmlText, ...] = ()


class Domain(Frozen):
    kind: Literal["Domain"] = "Domain"
    name: Name
    type: Literal["lxc", "openvz", "vserver", "vz", "kvm", "qemu", "test", "xen"]
    id: int | None = Field(None, ge=1, le=2147483644, description="OpenVZ CTID / VServer context")
    uuid: str | None = Field(None, pattern=UUID_PATTERN)
    title: Text | None = None
    description: Text | None = None
    state: RunState = "running"
    autostart: bool | None = None
    start_order: int | None = None
    hostname: str | None = Field(None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
    arch: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,32}$")
    os: Os | None = None
    profile: Name | None = None
    memory: Size | None = None
    current_memory: Size | None = None
    memtune: Memtune | None = None
    blkiotune: Blkiotune | None = None
    cpu: Cpu | None = None
    limits: Beancounters = Field(default_factory=dict)
    quota: Quota | None = None
    scheduler: Scheduler | None = None
    init: Init | None = None
    capabilities: Capabilities | None = None
    idmap: tuple[IdMap, ...] = ()
    filesystems: tuple[Filesystem, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    console: Console | None = None
    dns: Dns | None = None
    depends_on: tuple[Name, ...] = ()
    protect: bool = False
    removal: Literal["keep", "purge"] = "keep"
    allow_replace: bool = False
    hosts: tuple[Text, ...] = Field((), description="host name globs this spec is for; empty = "
                                    "all")
    restart: Literal["auto", "defer", "refuse"] | None = Field(
        None, description="a change that needs the running guest restarted: at once (auto), "
        "written now and live at its next start or maintenance window (defer), or refused; "
        "unset = the agent config's `restart`")
    window: Token | None = Field(None, description="the maintenance window its restarts wait "
                                 "for (a name in the agent config), or `always`")
    health: Health | None = None
    target: str | None = Field(None, pattern=TARGET_PATTERN,
                               description="where in a cluster it runs: a member, or @GROUP "
                               "(a cluster group); unset = where the cluster places it")
    allow_move: bool = Field(False, description="a changed target may stop a running guest, "
                             "move it and start it again (a stopped one is moved anyway)")
    xml: tuple[XmlText, ...] = Field((), description="libvirt elements kept as canonical XML")
    devices_xml: tuple[XmlText, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _implied_os_type(cls, value: Any) -> Any:
        """`os.type` equal to the domain type's default is the same as leaving it out."""
        if isinstance(value, dict) and isinstance(value.get("os"), dict):
            os_part = value["os"]
            if os_part.get("type") is not None and \
                    os_part.get("type") == DEFAULT_OS_TYPE.get(value.get("type")):  # type: ignore[arg-type]
                os_part = {k: v for k, v in os_part.items() if k != "type"}
                value = {**value, "os": os_part or None}
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_settings(cls, value: Any) -> Any:
        """A blkiotune with nothing in it, or capabilities with the default policy and no
        states, is the host's default: the same as leaving it out (libvirt writes neither)."""
        if not isinstance(value, dict):
            return value
        for key, empty in _EMPTY_SETTINGS.items():
            part = value.get(key)
            if isinstance(part, dict) and all(part.get(k) in none for k, none in empty.items()) \
                    and set(part) <= set(empty):
                value = {**value, key: None}
        return value

    @field_validator("interfaces")
    @classmethod
    def _netns_alone(cls, value: tuple[Interface, ...]) -> tuple[Interface, ...]:
        """`empty` and `none` say what the whole network namespace is: nothing beside them."""
        kinds = [nic.type for nic in value]
        for index, kind in enumerate(kinds):
            if kind in NETNS_TYPES and len(kinds) > 1:
                raise FieldError((index, "type"), f"a {kind} interface stands for the guest's "
                                 "whole network (empty: loopback only, none: the host's); it "
                                 "cannot go with other interfaces")
        return value

    @field_validator("interfaces")
    @classmethod
    def _hostdevs_last(cls, value: tuple[Interface, ...]) -> tuple[Interface, ...]:
        """Moved host NICs come after the others, as libvirt writes `<hostdev>` after
        `<interface>`; their order relative to other NICs means nothing."""
        if "hostdev" not in [nic.type for nic in value]:
            return value
        return tuple(sorted(value, key=lambda nic: nic.type == "hostdev"))

    @model_validator(mode="after")
    def _coherent(self) -> Domain:
        targets = [fs.target for fs in self.filesystems]
        for index, target in enumerate(targets) if len(set(targets)) < len(targets) else ():
            if target in targets[:index]:
                raise FieldError(("filesystems", index, "target"), f"two filesystems mount at "
                                 f"{target}; give each target once")
        if self.name in self.depends_on:
            raise FieldError(("depends_on", self.depends_on.index(self.name)),
                             f"domain {self.name} depends on itself")
        if self.memory is not None and self.current_memory is not None and \
                self.current_memory > self.memory:
            raise FieldError("current_memory", f"current_memory {format_size(self.current_memory)}"
                             f" is above memory {format_size(self.memory)}")
        if self.type not in DEFAULT_OS_TYPE and (self.os is None or self.os.type is None) and (
                self.arch or self.init or self.os):
            raise FieldError("os" if self.os else "arch" if self.arch else "init",
                             f"a {self.type} domain with arch, init or os settings needs os.type "
                             "(e.g. hvm); it has no default")
        if self.allow_move and self.target is None:
            raise FieldError("allow_move", "allow_move says how a change of target is made; "
                             "give target too, or leave allow_move out")
        return self

    @property
    def root(self) -> Filesystem | None:
        return next((fs for fs in self.filesystems if fs.target == "/"), None)


Quota.model_rebuild()
