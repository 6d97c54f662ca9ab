"""The harmonized Domain: one shape for LXC, OpenVZ, Linux-VServer and libvirt guests.

Every field is optional unless the identity needs it: a field left out is not managed, so
whatever the host fills in there never shows as a difference.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from reconciler.model.types import (
    AbsPath,
    Count,
    Device,
    Frozen,
    IpAddress,
    IpRange,
    Mac,
    Name,
    PairInput,
    Size,
)

DOMAIN_TYPES = ("lxc", "openvz", "vserver", "vz", "kvm", "qemu", "test", "xen")
CONTAINER_TYPES = frozenset({"lxc", "openvz", "vserver", "vz"})

# OpenVZ user beancounters, lower-cased as the YAML keys (vps.basic names them all).
BEANCOUNTERS = (
    "avnumproc", "numproc", "numtcpsock", "numothersock", "vmguarpages", "kmemsize",
    "tcpsndbuf", "tcprcvbuf", "othersockbuf", "dgramrcvbuf", "oomguarpages", "lockedpages",
    "shmpages", "privvmpages", "numfile", "numflock", "numpty", "numsiginfo", "dcachesize",
    "physpages", "numiptent", "swappages",
)

RunState = Literal["running", "stopped", "absent"]
Pair = Annotated[tuple[Count, Count], PairInput]


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
                raise ValueError(f"quota {what}: soft limit {pair[0]} is above hard limit {pair[1]}")
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
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    dir: AbsPath | None = None
    user: str | None = None
    group: str | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment name {key!r} is not valid ([A-Za-z_][A-Za-z0-9_]*)")
        return value

    @model_validator(mode="after")
    def _user_group(self) -> Init:
        if (self.user is None) != (self.group is None):
            raise ValueError("init user and group go together (libvirt needs both)")
        return self


class IdMap(Frozen):
    kind: Literal["uid", "gid"]
    start: int = Field(ge=0)
    target: int = Field(ge=0)
    count: int = Field(ge=1)


class Route(Frozen):
    address: str
    prefix: int | None = None
    gateway: str
    metric: int | None = None
    family: Literal["ipv4", "ipv6"] | None = None


FsType = Literal["template", "mount", "bind", "block", "file", "ram", "volume"]


class Filesystem(Frozen):
    """A root or mount: from a template, a host directory, a block device, a file or RAM."""

    type: FsType = "mount"
    target: AbsPath
    source: str | None = Field(None, description="host dir, device, file, or pool/volume")
    name: str | None = Field(None, description="template name (OpenVZ OSTEMPLATE, LXC template)")
    method: str | None = Field(None, description="how a template root is built, e.g. debootstrap")
    release: str | None = None
    options: tuple[str, ...] = Field((), description="extra template options")
    readonly: bool = False
    size: Size | None = Field(None, description="ram filesystem size")
    driver: str | None = Field(None, description="file driver type, e.g. loop or nbd")
    format: str | None = None
    accessmode: Literal["passthrough", "mapped", "squash"] | None = None
    xml: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _source_fits_type(self) -> Filesystem:
        if self.type == "template" and not self.name:
            raise ValueError("a template filesystem needs 'name' (the template to build from)")
        if self.type in ("mount", "block", "file", "bind") and not self.source:
            raise ValueError(f"a {self.type} filesystem needs 'source'")
        if self.type == "ram" and self.size is None:
            raise ValueError("a ram filesystem needs 'size', e.g. 64MiB")
        if self.type in ("mount", "block", "file", "bind") and self.source:
            from reconciler.model.names import check_abs_path

            check_abs_path(self.source)
        return self


IfType = Literal["bridge", "network", "routed", "direct", "hostdev"]


class Interface(Frozen):
    """A NIC. `routed` is IP isolation / venet / libvirt `ethernet`; `hostdev` moves a host NIC in."""

    type: IfType
    source: str | None = Field(None, description="bridge, network, parent device or host NIC")
    mode: str | None = Field(None, description="direct (macvlan) mode")
    mac: Mac | None = None
    host_dev: Device | None = None
    host_mac: Mac | None = None
    guest_dev: Device | None = None
    ip: tuple[IpAddress, ...] = ()
    ranges: tuple[IpRange, ...] = ()
    gateway: str | None = None
    routes: tuple[Route, ...] = ()
    host_ip: tuple[IpAddress, ...] = ()
    host_routes: tuple[Route, ...] = ()
    link: Literal["up", "down"] | None = None
    mtu: int | None = Field(None, ge=68, le=65535)
    model: str | None = None
    xml: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _source_needed(self) -> Interface:
        if self.type in ("bridge", "network", "direct", "hostdev") and not self.source:
            raise ValueError(f"a {self.type} interface needs 'source'")
        if self.type in ("bridge", "direct", "hostdev") and self.source:
            from reconciler.model.names import check_device

            check_device(self.source)
        return self


class Console(Frozen):
    type: Literal["pty"] = "pty"
    count: int = Field(1, ge=1, le=64)


class Dns(Frozen):
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


class Os(Frozen):
    """libvirt `<os>` pieces that are not the init program (VMs mostly)."""

    type: str | None = None
    machine: str | None = None
    xml: tuple[str, ...] = ()


class Domain(Frozen):
    kind: Literal["Domain"] = "Domain"
    name: Name
    type: Literal["lxc", "openvz", "vserver", "vz", "kvm", "qemu", "test", "xen"]
    id: int | None = Field(None, ge=1, le=2147483644, description="OpenVZ CTID / VServer context")
    uuid: str | None = Field(None, pattern=r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
    title: str | None = None
    description: str | None = None
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
    cpu: Cpu | None = None
    limits: dict[str, Pair] = Field(default_factory=dict)
    quota: Quota | None = None
    scheduler: Scheduler | None = None
    init: Init | None = None
    idmap: tuple[IdMap, ...] = ()
    filesystems: tuple[Filesystem, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    console: Console | None = None
    dns: Dns | None = None
    depends_on: tuple[Name, ...] = ()
    protect: bool = False
    removal: Literal["keep", "purge"] = "keep"
    allow_replace: bool = False
    hosts: tuple[str, ...] = Field((), description="host name globs this spec is for; empty = all")
    xml: tuple[str, ...] = Field((), description="libvirt elements kept as canonical XML")
    devices_xml: tuple[str, ...] = ()

    @field_validator("limits")
    @classmethod
    def _known_beancounters(cls, value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for key, (barrier, limit) in value.items():
            if key not in BEANCOUNTERS:
                raise ValueError(f"unknown beancounter {key!r}; valid: {', '.join(BEANCOUNTERS)}")
            if barrier > limit:
                raise ValueError(f"beancounter {key}: barrier {barrier} is above limit {limit}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Domain:
        targets = [fs.target for fs in self.filesystems]
        dup = {t for t in targets if targets.count(t) > 1}
        if dup:
            raise ValueError(f"two filesystems mount at {sorted(dup)[0]}; each target once")
        if self.name in self.depends_on:
            raise ValueError(f"domain {self.name} depends on itself")
        if self.memory is not None and self.current_memory is not None and \
                self.current_memory > self.memory:
            raise ValueError("current_memory is above memory")
        return self

    @property
    def root(self) -> Filesystem | None:
        return next((fs for fs in self.filesystems if fs.target == "/"), None)


Quota.model_rebuild()
