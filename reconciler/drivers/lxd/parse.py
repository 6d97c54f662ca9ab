"""Pure: an LXD instance, as `GET /1.0/instances?recursion=1` lists it, -> the model's
canonical spec, our stamp, and the keys the spec leaves out.

Values are read from the instance's expanded config and devices (what applies, its
profiles included); the stamp only from its own config (see `stamp`). What LXD fills in by
itself never shows: `volatile.*` and `image.*` keys, generated MACs and host-side names, the
uuid. A few fields live only in the last-applied spec because LXD has no key for them (DNS,
which the driver writes into the root; the console; `allow_move`), and a template root reads
back as the spec named it: the image is what the instance was built from, and an alias
moving on to a newer image later is not a change of this instance. Lists come out in the
last-applied spec's order (LXD keeps devices by name, unordered), so only a real difference
shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from reconciler.drivers.base import Stamp
from reconciler.drivers.lxd import stamp as stamps
from reconciler.drivers.lxd.images import Images
from reconciler.drivers.lxd.placement import Cluster, placement
from reconciler.drivers.lxd.values import (
    allowance_of,
    byte_text,
    bytes_of,
    idmap_of,
    is_share,
    is_true,
    natural,
    power,
    raw_lxc_lines,
)
from reconciler.drivers.text import lines
from reconciler.model import Domain, canonical
from reconciler.model.fields import POLICY_FIELDS
from reconciler.rules.lxd import cpu_set

# config keys LXD writes itself, or that only describe the image
_HOST_PREFIXES = ("volatile.", "image.", stamps.PREFIX)
# NIC keys the model carries; any other key of a NIC we map is left out (and reported)
NIC_KEYS = frozenset({"type", "nictype", "network", "parent", "name", "hwaddr", "mtu",
                      "host_name", "ipv4.address", "ipv6.address", "vlan"})
DISK_KEYS = frozenset({"type", "path", "source", "pool", "readonly"})
# LXD nictype -> model type (a NIC on a managed network has `network` instead)
_NIC_TYPES = {"bridged": "bridge", "macvlan": "direct", "routed": "routed"}
_RAW_INIT = {"lxc.init.cmd": "cmd", "lxc.init.cwd": "dir", "lxc.init.uid": "user",
             "lxc.init.gid": "group"}
_RAW_CAPS = {"lxc.cap.drop": "drop", "lxc.cap.keep": "keep"}
# fields that exist only in our last-applied spec (LXD has no key for them)
STAMP_ONLY = ("dns", "console", "allow_move")


@dataclass(frozen=True)
class Context:
    """What reading needs beyond the instance: the cluster (for targets), the server's
    images (an import names the image by alias) and the profiles new instances get."""

    cluster: Cluster | None = None
    images: Images | None = None
    profiles: tuple[str, ...] = ("default",)


@dataclass(frozen=True)
class Reading:
    spec: dict[str, Any] | None        # canonical; None when the model refuses it
    stamp: Stamp | None
    error: str | None = None
    moved_from: str | None = None      # the member an evacuation moved it from
    left_out: tuple[tuple[str, str, str], ...] = ()  # (key, value, why) the spec lacks


def read_instance(inst: Mapping[str, Any], ctx: Context, adopting: bool = False) -> Reading:
    """One instance as the model's canonical spec (see the module docstring). `adopting`:
    the read is for an import, so the target pins it where it runs."""
    local: dict[str, Any] = dict(inst.get("config") or {})
    config: dict[str, Any] = dict(inst.get("expanded_config") or local)
    devices: dict[str, Any] = dict(inst.get("expanded_devices") or inst.get("devices") or {})
    stamp = stamps.read(local)
    last: dict[str, Any] = dict(stamp.spec) if stamp is not None else {}
    name = str(inst.get("name", ""))
    left: list[tuple[str, str, str]] = []
    used: set[str] = set()

    def take(key: str) -> str | None:
        used.add(key)
        value = config.get(key)
        return value if isinstance(value, str) and value != "" else None

    spec: dict[str, Any] = {"name": name,
                            "type": "lxc" if inst.get("type", "container") == "container"
                            else "kvm",
                            "state": power(str(inst.get("status", "")))}
    if inst.get("description"):
        spec["description"] = inst["description"]
    autostart = take("boot.autostart")
    if autostart is not None:
        spec["autostart"] = is_true(autostart)
    priority = take("boot.autostart.priority")
    if priority is not None and priority.lstrip("-").isdigit():
        spec["start_order"] = -int(priority)  # LXD starts the highest first, the model lowest
    memory = take("limits.memory")
    if memory is not None:
        size = bytes_of(memory)
        if size is None:
            left.append(("limits.memory", memory, "a share of the host's memory; the model "
                         "has sizes"))
        else:
            spec["memory"] = byte_text(size)  # the model reads a bare number as KiB
    spec.update(_cpu(take("limits.cpu"), take("limits.cpu.allowance"), last, left))
    processes = take("limits.processes")
    if processes is not None and processes.isdigit():
        spec["limits"] = {"numproc": [int(processes), int(processes)]}
    spec.update(_init(config, used, take("raw.lxc"), left))
    spec["idmap"] = _idmap(local, take("security.privileged"), last)
    used.update(("security.idmap.isolated", "security.idmap.base", "security.idmap.size"))
    spec["filesystems"] = _filesystems(devices, local, last, ctx, left)
    spec["interfaces"] = _interfaces(devices, last, left)
    if stamp is None:
        _profiles_decide(spec, inst.get("devices") or {})
    where = placement(str(inst.get("location", "")), last.get("target"), local, ctx.cluster,
                      adopting or stamp is None)
    if where.target is not None:
        spec["target"] = where.target
    if last.get("hostname"):
        spec["hostname"] = name
    for key in STAMP_ONLY:
        if key in last:
            spec[key] = last[key]
    for key, value in sorted(local.items()):
        if key not in used and not key.startswith(_HOST_PREFIXES):
            left.append((key, str(value), "not an LXD setting the model carries"))
    profiles = tuple(inst.get("profiles") or ())
    if profiles != ctx.profiles:
        left.append(("profiles", ", ".join(profiles), "kept as they are: LXD applies them "
                     "under the spec's own settings"))
    return _validated(spec, stamp, where.moved_from, left)


def _validated(spec: dict[str, Any], stamp: Stamp | None, moved_from: str | None,
               left: list[tuple[str, str, str]]) -> Reading:
    raw = {k: v for k, v in spec.items() if v not in (None, [], {})}
    if raw.get("state") == "running":
        del raw["state"]  # the model's default, which its canonical form leaves out
    same = {k: v for k, v in (stamp.spec if stamp else {}).items() if k not in POLICY_FIELDS}
    if stamp is not None and all(raw.get(k) == v for k, v in same.items()):
        # what we last applied, read back unchanged, is canonical already (the common case
        # of every pass): only what the profiles add beside it goes through the model
        extra = {k: v for k, v in raw.items() if k not in same}
        if set(extra) <= {"name", "type", "state"}:
            return Reading({**extra, **same}, stamp, None, moved_from, tuple(left))
        try:
            more = canonical(Domain.model_validate({"name": raw["name"], "type": raw["type"],
                                                    **extra}))
        except (ValidationError, ValueError) as exc:
            return Reading(None, stamp, refused(exc), moved_from, tuple(left))
        more.pop("kind", None)
        return Reading({**more, **same}, stamp, None, moved_from, tuple(left))
    try:
        canon = canonical(Domain.model_validate(raw))
    except (ValidationError, ValueError) as exc:
        return Reading(None, stamp, refused(exc), moved_from, tuple(left))
    canon.pop("kind", None)
    return Reading(canon, stamp, None, moved_from, tuple(left))


def _profiles_decide(spec: dict[str, Any], own: Mapping[str, Any]) -> None:
    """An instance not ours yet (an import) whose NICs, or mounts, all come from its
    profiles: the spec leaves them to the profiles instead of copying them, so they stay the
    profiles' to change (and a spec never names a network it does not manage)."""
    kinds = {dev.get("type") for dev in own.values() if isinstance(dev, dict)}
    if "nic" not in kinds and spec["interfaces"] != [{"type": "empty"}]:
        spec["interfaces"] = []
    if not any(isinstance(dev, dict) and dev.get("type") == "disk" and dev.get("path") != "/"
               for dev in own.values()):
        spec["filesystems"] = [fs for fs in spec["filesystems"] if fs["target"] == "/"]


def refused(exc: Exception) -> str:
    """Why the model refused what was read: the first field and its message."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    text = lines(str(exc).strip())
    return text[0] if text else type(exc).__name__


def _cpu(count: str | None, allowance: str | None, last: dict[str, Any],
         left: list[tuple[str, str, str]]) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    if count is not None:
        if count.isdigit():
            cpu["count"] = int(count)
        else:
            cpus = cpu_set(count)
            if cpus is None:
                left.append(("limits.cpu", count, "not a CPU count or list"))
            else:
                cpu["count"] = len(cpus)
                wanted = (last.get("cpu") or {}).get("cpuset")
                # one set, spelled as the spec spelled it
                cpu["cpuset"] = wanted if wanted and cpu_set(wanted) == cpus else count
    if allowance is not None:
        times = allowance_of(allowance)
        if times is None:
            why = "a share of the CPU under load" if is_share(allowance) else "not LXD syntax"
            left.append(("limits.cpu.allowance", allowance, why))
        elif "limit" in (last.get("cpu") or {}) and times["period"] == 100000:
            cpu["limit"] = times["quota"] // 1000  # percent of one CPU per 100 ms
        else:
            cpu.update(times)
    return {"cpu": cpu} if cpu else {}


def _init(config: dict[str, Any], used: set[str], raw_lxc: str | None,
          left: list[tuple[str, str, str]]) -> dict[str, Any]:
    init: dict[str, Any] = {}
    env = {key[len("environment."):]: value for key, value in config.items()
           if key.startswith("environment.")}
    used.update(f"environment.{key}" for key in env)
    if env:
        init["env"] = env
    caps: dict[str, Any] = {}
    for key, value in raw_lxc_lines(raw_lxc or ""):
        if key == "lxc.init.cmd":
            parts = value.split()
            init["cmd"], init["args"] = (parts[0], parts[1:]) if parts else (value, [])
        elif key in _RAW_INIT:
            init[_RAW_INIT[key]] = value
        elif key in _RAW_CAPS:
            caps[_RAW_CAPS[key]] = sorted(set(caps.get(_RAW_CAPS[key], [])) |
                                          set(value.split()))
        else:
            left.append((f"raw.lxc: {key}", value, "not an LXD setting the model carries"))
    out: dict[str, Any] = {"init": init} if init else {}
    if caps:
        out["capabilities"] = {**caps, "policy": "deny"} if "keep" in caps else caps
    return out


def _idmap(local: dict[str, Any], privileged: str | None,
           last: dict[str, Any]) -> list[dict[str, Any]]:
    """None of it when the container is privileged (root in it is root on the host), else
    the map LXD uses from the next start on, in the last-applied spec's order."""
    if is_true(privileged):
        return []
    found = idmap_of(local.get("volatile.idmap.next") or local.get("volatile.last_state.idmap")
                     or local.get("volatile.idmap.current")) or []
    wanted = list(last.get("idmap", ()))
    key = sorted(map(_idmap_key, found))
    if wanted and sorted(map(_idmap_key, wanted)) == key:
        return wanted
    return found


def _idmap_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("kind"), entry.get("start"), entry.get("target"), entry.get("count"))


def _filesystems(devices: dict[str, Any], local: dict[str, Any], last: dict[str, Any],
                 ctx: Context, left: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    was = {fs.get("target"): fs for fs in last.get("filesystems", ())}
    out: list[dict[str, Any]] = []
    for dev_name, dev in sorted(devices.items()):
        if not isinstance(dev, dict) or dev.get("type") != "disk":
            continue
        path = str(dev.get("path", ""))
        if path == "/":
            out.append(_root(local, was.get("/"), ctx))
            continue
        fs = disk_filesystem(dev, was.get(path))
        if fs is not None and path in was:
            fs = _project(fs, was[path], ("type", "target", "source"))
        if fs is None:
            left.append((f"devices.{dev_name}", _describe(dev), "a disk the model cannot say "
                         "(no host path or volume)"))
            continue
        out.append(fs)
        for key in sorted(set(dev) - DISK_KEYS):
            left.append((f"devices.{dev_name}.{key}", str(dev[key]), "not a disk setting the "
                         "model carries"))
    order = [fs.get("target") for fs in last.get("filesystems", ())]
    return sorted(out, key=lambda fs: (order.index(fs["target"]) if fs["target"] in order
                                       else len(order), fs["target"] != "/", fs["target"]))


def _root(local: dict[str, Any], was: dict[str, Any] | None, ctx: Context) -> dict[str, Any]:
    base = str(local.get("volatile.base_image", ""))
    if was is not None and was.get("type") == "template" and base:
        return dict(was)  # what it was built from (see the module docstring)
    name = ctx.images.name_of(base) if ctx.images is not None and base else base
    return {"type": "template", "name": name or "unknown", "target": "/"}


def disk_filesystem(dev: Mapping[str, Any], was: Mapping[str, Any] | None
                    ) -> dict[str, Any] | None:
    """A disk device (not the root) as a model filesystem; None if the model cannot say it."""
    source = dev.get("source")
    if not isinstance(source, str) or not source:
        return None
    fs: dict[str, Any] = {"target": dev.get("path")}
    if dev.get("pool"):
        fs.update(type="volume", source=f"{dev['pool']}/{source}")
    else:
        kind = (was or {}).get("type")
        if kind not in ("mount", "bind", "block"):
            kind = "block" if source.startswith("/dev/") else "mount"
        fs.update(type=kind, source=source)
    if is_true(dev.get("readonly")):
        fs["readonly"] = True
    return fs


def _project(item: dict[str, Any], ref: Mapping[str, Any], keep: tuple[str, ...]
             ) -> dict[str, Any]:
    """A live list item as far as the last-applied one manages it: what LXD filled in (a
    generated MAC, a host-side name) is not a difference; a value the spec names still is."""
    return {k: v for k, v in item.items() if k in ref or k in keep}


def _describe(dev: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(dev.items()))


def nic_interface(dev: Mapping[str, Any]) -> dict[str, Any] | None:
    """A NIC device as a model interface; None for a kind the model has no type for."""
    nictype = dev.get("nictype")
    nic: dict[str, Any]
    if dev.get("network"):
        nic = {"type": "network", "source": dev["network"]}
    elif nictype == "physical":
        nic = {"type": "vlan", "source": dev.get("parent"), "vlan": int(dev["vlan"])} \
            if str(dev.get("vlan", "")).isdigit() else {"type": "hostdev",
                                                        "source": dev.get("parent")}
    elif nictype in _NIC_TYPES:
        nic = {"type": _NIC_TYPES[str(nictype)]}
        if dev.get("parent"):
            nic["source"] = dev["parent"]
    else:
        return None
    for key, model_key in (("hwaddr", "mac"), ("name", "guest_dev"), ("host_name", "host_dev")):
        if dev.get(key):
            nic[model_key] = str(dev[key]).lower() if key == "hwaddr" else dev[key]
    if str(dev.get("mtu", "")).isdigit():
        nic["mtu"] = int(dev["mtu"])
    addresses = [a.strip() for key in ("ipv4.address", "ipv6.address")
                 for a in str(dev.get(key) or "").split(",") if a.strip()]
    if addresses:
        nic["ip"] = addresses
    return nic


def _interfaces(devices: dict[str, Any], last: dict[str, Any],
                left: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """NICs in the guest's order: paired with the last-applied spec's by guest name (the
    driver names an unnamed one eth<its index>), the others after them, eth2 before eth10."""
    was = [nic for nic in last.get("interfaces", ()) if nic.get("type") != "empty"]
    was_names = [str(nic.get("guest_dev") or f"eth{i}") for i, nic in enumerate(was)]
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for dev_name, dev in devices.items():
        if not isinstance(dev, dict) or dev.get("type") != "nic":
            continue
        nic = nic_interface(dev)
        if nic is None:
            left.append((f"devices.{dev_name}", _describe(dev), f"a {dev.get('nictype')} NIC "
                         "has no model type"))
            continue
        found[str(dev.get("name") or dev_name)] = (dev_name, nic)
        for key in sorted(set(dev) - NIC_KEYS):
            left.append((f"devices.{dev_name}.{key}", str(dev[key]), "not a NIC setting the "
                         "model carries"))
    order = [g for g in was_names if g in found] + sorted(
        (g for g in found if g not in was_names), key=natural)
    out: list[dict[str, Any]] = []
    for guest in order:
        nic = found[guest][1]
        paired = guest in was_names
        index = was_names.index(guest) if paired else len(out)
        before = was[index] if paired else {}
        if guest == f"eth{index}" and not before.get("guest_dev"):
            nic.pop("guest_dev", None)
        # a NIC on managed bridge network X is the NIC bridged to X (compose.same_device)
        if nic["type"] == "network" and before.get("type") == "bridge" and \
                before.get("source") == nic.get("source"):
            nic["type"] = "bridge"
        out.append(_project(nic, before, ("type", "source")) if paired else nic)
    if not out and (not last or last.get("interfaces") == [{"type": "empty"}]):
        return [{"type": "empty"}]
    return out
