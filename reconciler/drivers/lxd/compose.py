"""Pure: a desired spec -> an instance's own config and devices, continuing what it has.

Only the fields the spec manages (named now, or at the last apply) touch their keys; every
other key, device and profile of the instance stays as it is, so a setting made with
`lxc config set` that the model does not carry survives every apply. A managed field the
spec drops has its keys removed, so the profiles' value (or LXD's default) applies again.

Devices: LXD merges an instance's profiles under its own devices. A device the spec wants
that a profile already provides, exactly, is not repeated; one that differs is overridden
by a device of the same name; a profile's NIC or disk the spec does not want is masked
with a `none` device of its name (LXD's own way to take a profile device away). NICs and
disks of kinds the model cannot express are never touched.

raw.lxc: only the lines the driver writes (init, capabilities) are replaced; lines a
person wrote stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.drivers.base import Stamp
from reconciler.drivers.lxd import stamp as stamps
from reconciler.drivers.lxd.parse import DISK_KEYS, NIC_KEYS, disk_filesystem, nic_interface
from reconciler.drivers.lxd.values import (
    allowance_text,
    byte_text,
    cpu_list,
    flag,
    idmap_of,
    is_true,
    raw_lxc_lines,
)
from reconciler.model.units import parse_size
from reconciler.rules.lxd import NICTYPES, cpu_set

_RAW_KEYS = ("lxc.init.cmd", "lxc.init.cwd", "lxc.init.uid", "lxc.init.gid", "lxc.cap.drop",
             "lxc.cap.keep")
_IDMAP_KEYS = ("security.idmap.isolated", "security.idmap.base", "security.idmap.size")
_SLUG = re.compile(r"[^A-Za-z0-9]+")
_ONE_CPU_PERIOD_US = 100000


@dataclass(frozen=True)
class Existing:
    """What an instance has now: its own config and devices, the devices its profiles give
    it, and the config those give (for the values a spec's silence falls back to)."""

    config: Mapping[str, Any]
    devices: Mapping[str, Any]
    profile_devices: Mapping[str, Any]
    profile_config: Mapping[str, Any]

    @classmethod
    def empty(cls, profile_devices: Mapping[str, Any] | None = None,
              profile_config: Mapping[str, Any] | None = None) -> Existing:
        return cls({}, {}, profile_devices or {}, profile_config or {})


def managed(spec: Mapping[str, Any], last: Mapping[str, Any] | None) -> frozenset[str]:
    """The top-level fields the spec manages: named now, or named at the last apply (a field
    dropped since goes back to its default). The id map always: in the model a container
    without one is privileged (root in it is root on the host, as on LXC), which on LXD
    must be said (`security.privileged`), LXD's own default being a shared map."""
    return frozenset(spec) | frozenset(last or ()) | {"idmap"}


def instance_config(spec: Mapping[str, Any], fields: frozenset[str], existing: Existing,
                    stamp: Stamp) -> dict[str, str]:
    """The instance's own config for `spec`: its current config with the managed keys set."""
    config = {k: v for k, v in existing.config.items() if k != stamps.UNDEFINED_KEY}
    kept = stamps.undefined_record(existing.config)
    if kept is not None and "autostart" not in fields:  # what undefine turned off
        _put(config, "boot.autostart", kept.get("boot.autostart"))
    if "autostart" in fields:
        _put(config, "boot.autostart",
             None if spec.get("autostart") is None else flag(bool(spec["autostart"])))
    if "start_order" in fields:
        order = spec.get("start_order")
        _put(config, "boot.autostart.priority", None if order is None else str(-int(order)))
    if "memory" in fields:
        memory = spec.get("memory")
        _put(config, "limits.memory", None if memory is None else byte_text(parse_size(memory)))
    if "cpu" in fields:
        _cpu(config, spec.get("cpu") or {})
    if "limits" in fields:
        numproc = (spec.get("limits") or {}).get("numproc")
        _put(config, "limits.processes", None if numproc is None else str(numproc[1]))
    if "init" in fields:
        env = (spec.get("init") or {}).get("env") or {}
        for key in [k for k in config if k.startswith("environment.")]:
            if key[len("environment."):] not in env:
                del config[key]
        config.update({f"environment.{k}": str(v) for k, v in env.items()})
    if "init" in fields or "capabilities" in fields:
        _raw_lxc(config, spec)
    if "idmap" in fields:
        _idmap(config, list(spec.get("idmap", ())), existing)
    stamps.write(config, stamp)
    return config


def _put(config: dict[str, str], key: str, value: str | None) -> None:
    if value is None:
        config.pop(key, None)
    else:
        config[key] = value


def _cpu(config: dict[str, str], cpu: Mapping[str, Any]) -> None:
    cpuset = cpu.get("cpuset")
    if cpuset is not None:
        cpus = cpu_set(str(cpuset))
        # a single number is a count to LXD; a pinned CPU is written as a range of one
        text = cpu_list(cpus) if cpus else str(cpuset)
        _put(config, "limits.cpu", f"{text}-{text}" if text.isdigit() else text)
    else:
        _put(config, "limits.cpu", None if cpu.get("count") is None else str(cpu["count"]))
    if cpu.get("limit") is not None:
        _put(config, "limits.cpu.allowance",
             allowance_text(int(cpu["limit"]) * 1000, _ONE_CPU_PERIOD_US))
    elif cpu.get("quota") is not None:
        _put(config, "limits.cpu.allowance",
             allowance_text(int(cpu["quota"]), int(cpu.get("period") or _ONE_CPU_PERIOD_US)))
    else:
        _put(config, "limits.cpu.allowance", None)


def _raw_lxc(config: dict[str, str], spec: Mapping[str, Any]) -> None:
    """raw.lxc with our lines replaced (the rules refused these unless raw_lxc allows)."""
    kept = [f"{k} = {v}" for k, v in raw_lxc_lines(config.get("raw.lxc", ""))
            if k not in _RAW_KEYS]
    init = spec.get("init") or {}
    ours = []
    if init.get("cmd"):
        ours.append("lxc.init.cmd = " + " ".join([init["cmd"], *init.get("args", ())]))
    for key, field in (("lxc.init.cwd", "dir"), ("lxc.init.uid", "user"),
                       ("lxc.init.gid", "group")):
        if init.get(field) is not None:
            ours.append(f"{key} = {init[field]}")
    caps = spec.get("capabilities") or {}
    if caps.get("drop"):
        ours.append("lxc.cap.drop = " + " ".join(caps["drop"]))
    if caps.get("keep"):
        ours.append("lxc.cap.keep = " + " ".join(caps["keep"]))
    _put(config, "raw.lxc", "\n".join(kept + ours) + "\n" if kept or ours else None)


def _idmap(config: dict[str, str], idmap: list[dict[str, Any]], existing: Existing) -> None:
    """No map: privileged. A map: unprivileged; left as it is when LXD already maps it so
    (its shared map, say), else an isolated map from the spec's base and size."""
    if not idmap:
        config["security.privileged"] = "true"
        for key in _IDMAP_KEYS:
            config.pop(key, None)
        return
    config.pop("security.privileged", None)
    if is_true(existing.profile_config.get("security.privileged")):
        config["security.privileged"] = "false"
    now = idmap_of(existing.config.get("volatile.idmap.next")) or []
    if sorted(map(_key, now)) == sorted(map(_key, idmap)):
        return
    uid = next(m for m in idmap if m["kind"] == "uid")
    config.update({"security.idmap.isolated": "true",
                   "security.idmap.base": str(uid["target"]),
                   "security.idmap.size": str(uid["count"])})


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (entry.get("kind"), entry.get("start"), entry.get("target"), entry.get("count"))


# --------------------------------------------------------------------------- devices

def instance_devices(spec: Mapping[str, Any], fields: frozenset[str], existing: Existing,
                     pool: str | None) -> dict[str, Any]:
    """The instance's own devices for `spec`. A managed list the spec no longer names goes
    back to what the profiles give (our devices removed, our masks lifted)."""
    devices = {k: dict(v) for k, v in existing.devices.items()}
    if "filesystems" in fields:
        disks = {fs["target"]: _disk(fs) for fs in spec.get("filesystems", ())
                 if fs.get("target") != "/"}
        _reconcile(devices, existing, disks if "filesystems" in spec else None, _disk_key,
                   _disk_name)
        _root(devices, existing, pool)
    if "interfaces" in fields:
        nics = [nic for nic in spec.get("interfaces", ()) if nic.get("type") != "empty"]
        wanted = {str(nic.get("guest_dev") or f"eth{i}"): _nic(nic, i)
                  for i, nic in enumerate(nics)}
        _reconcile(devices, existing, wanted if "interfaces" in spec else None, _nic_key,
                   lambda key, _taken: key)
    return devices


def without_nics(devices: Mapping[str, Any]) -> dict[str, Any]:
    """`devices` less the NICs the model expresses (an undefined instance lets go of the
    networks its spec attached it to, so they can be removed)."""
    return {name: dev for name, dev in devices.items() if _nic_key(name, dev) is None}


KeyOf = Callable[[str, Mapping[str, Any]], "str | None"]


def _disk_key(name: str, dev: Mapping[str, Any]) -> str | None:
    """The mount target of a disk the model can express (None for any other device)."""
    if dev.get("type") != "disk" or dev.get("path") == "/":
        return None
    return str(dev.get("path")) if disk_filesystem(dev, None) is not None else None


def _nic_key(name: str, dev: Mapping[str, Any]) -> str | None:
    """The guest name of a NIC the model can express (None for any other device)."""
    if dev.get("type") != "nic" or nic_interface(dev) is None:
        return None
    return str(dev.get("name") or name)


def _disk_name(target: str, taken: set[str]) -> str:
    base = "fs-" + (_SLUG.sub("-", target).strip("-") or "root")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _reconcile(devices: dict[str, Any], existing: Existing,
               wanted: dict[str, dict[str, Any]] | None, key_of: KeyOf,
               new_name: Callable[[str, set[str]], str]) -> None:
    """Make the expressible devices of one kind (keyed by mount target or guest NIC name)
    exactly `wanted`, reusing device names, overriding or masking profile devices; `None`:
    exactly what the profiles give."""
    local: dict[str, str] = {}
    for name, dev in existing.devices.items():
        key = key_of(name, dev)
        if key is not None:
            local[key] = name
            devices.pop(name, None)
    profile = {key: (name, dev) for name, dev in existing.profile_devices.items()
               if (key := key_of(name, dev)) is not None}
    if wanted is None:
        for name, _ in profile.values():
            if devices.get(name, {}).get("type") == "none":
                del devices[name]
        return
    taken = set(devices) | set(existing.profile_devices) | set(local.values())
    for key, dev in wanted.items():
        given = profile.get(key)
        name = local.get(key) or (given[0] if given else None) or new_name(key, taken)
        taken.add(name)
        if given is not None and given[0] == name and same_device(given[1], dev):
            if devices.get(name, {}).get("type") == "none":
                del devices[name]  # masked before, wanted again as the profile gives it
            continue
        devices[name] = _merge(existing.devices.get(name) if key in local else None, dev)
    for key, (name, _) in profile.items():
        if key not in wanted and name not in devices:
            devices[name] = {"type": "none"}


def same_device(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Whether two devices are one: a NIC on managed bridge network X (`network: X`) is the
    NIC bridged to X (`nictype: bridged, parent: X`)."""
    def plain(dev: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(dev)
        if out.get("type") == "nic" and out.get("network"):
            out.update(nictype="bridged", parent=out.pop("network"))
        return out

    return dict(have) == dict(want) or plain(have) == plain(want)


def _merge(base: Mapping[str, Any] | None, dev: dict[str, Any]) -> dict[str, Any]:
    """The device we want, keeping the keys of an existing one that the model does not
    carry (`limits.ingress`, `shift`, ...)."""
    if not base:
        return dev
    ours = DISK_KEYS if dev.get("type") == "disk" else NIC_KEYS
    return {**{k: v for k, v in base.items() if k not in ours}, **dev}


def _root(devices: dict[str, Any], existing: Existing, pool: str | None) -> None:
    """An instance needs a root disk: its own, a profile's, or one on the driver's pool."""
    def is_root(dev: Any) -> bool:
        return isinstance(dev, dict) and dev.get("type") == "disk" and dev.get("path") == "/"

    if any(is_root(d) for d in devices.values()) or \
            any(is_root(d) for d in existing.profile_devices.values()):
        return
    if pool:
        devices["root"] = {"type": "disk", "path": "/", "pool": pool}


def _disk(fs: Mapping[str, Any]) -> dict[str, Any]:
    dev: dict[str, Any] = {"type": "disk", "path": fs["target"]}
    if fs.get("type") == "volume":
        pool, _, volume = str(fs["source"]).partition("/")
        dev.update(pool=pool, source=volume)
    else:
        dev["source"] = fs["source"]
    if fs.get("readonly"):
        dev["readonly"] = "true"
    return dev


def _nic(nic: Mapping[str, Any], index: int) -> dict[str, Any]:
    kind = nic["type"]
    dev: dict[str, Any] = {"type": "nic", "name": str(nic.get("guest_dev") or f"eth{index}")}
    if kind == "network":
        dev["network"] = nic["source"]
    else:
        dev["nictype"] = NICTYPES[kind]
        if nic.get("source"):
            dev["parent"] = nic["source"]
    if kind == "vlan":
        dev["vlan"] = str(nic["vlan"])
    if nic.get("mac"):
        dev["hwaddr"] = nic["mac"]
    if nic.get("mtu") is not None:
        dev["mtu"] = str(nic["mtu"])
    if nic.get("host_dev"):
        dev["host_name"] = nic["host_dev"]
    for family in ("ipv4", "ipv6"):
        addresses = [str(ip).partition("/")[0] for ip in nic.get("ip", ())
                     if (":" in str(ip)) == (family == "ipv6")]
        if addresses:
            dev[f"{family}.address"] = ",".join(addresses)
    return dev
