"""The model's `blkiotune` <-> LXC's block I/O cgroup keys, both ways, and the values a running
container's cgroup takes. Pure: no files, no processes.

cgroup v1 (`lxc.cgroup.blkio.*`): the weight is `blkio.bfq.weight` (BFQ; CFQ's `blkio.weight`
left the kernel in 5.0), per-device weights `blkio.bfq.weight_device` (`MAJ:MIN W`), throttles
`blkio.throttle.{read,write}_{bps,iops}_device` (`MAJ:MIN N`). cgroup v2 (`lxc.cgroup2.io.*`):
`io.weight` holds `default W` and `MAJ:MIN W` lines, `io.max` holds
`MAJ:MIN rbps=N wbps=N riops=N wiops=N`. Each such config line is written to the file as it
stands, so a key repeats once per device. Every spelling is read (libvirt's converter reads
`lxc.cgroup.blkio.weight` and spells the device weight `lxc.cgroup.blkio.device_weight`); the
host's own is written. Devices are named by number: the model says `/dev/block/MAJ:MIN`.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.lxc.provenance import NORMALISED, Provenance
from reconciler.drivers.text import words

FIELD = "blkiotune"
_V1 = "lxc.cgroup."
_V2 = "lxc.cgroup2."
V1_WEIGHTS = ("blkio.bfq.weight", "blkio.weight")
V1_DEVICE_WEIGHTS = ("blkio.bfq.weight_device", "blkio.weight_device", "blkio.device_weight")
# model rate -> v1 throttle file, v2 io.max key
RATES = {"read_bytes_sec": ("blkio.throttle.read_bps_device", "rbps"),
         "write_bytes_sec": ("blkio.throttle.write_bps_device", "wbps"),
         "read_iops_sec": ("blkio.throttle.read_iops_device", "riops"),
         "write_iops_sec": ("blkio.throttle.write_iops_device", "wiops")}
V2_WEIGHTS = ("io.weight", "io.bfq.weight")
V2_MAX = "io.max"
DEFAULT_WEIGHT = "100"  # what bfq.weight and io.weight read in a cgroup nobody tuned
_DEVICE = re.compile(r"/dev/block/([0-9]+):([0-9]+)\Z")
_NUMBER = re.compile(r"([0-9]+):([0-9]+)\Z")

ALL_KEYS = frozenset(
    [_V1 + f for f in (*V1_WEIGHTS, *V1_DEVICE_WEIGHTS)] +
    [_V1 + file for file, _ in RATES.values()] +
    [_V2 + f for f in (*V2_WEIGHTS, V2_MAX)])


def weight_file(version: int, cfq: bool = False) -> str:
    """The weight file of a host: BFQ's on v1 unless the kernel still has CFQ's, `io.weight`
    on v2."""
    if version == 2:
        return "io.weight"
    return "blkio.weight" if cfq else "blkio.bfq.weight"


def device_number(path: str) -> str | None:
    match = _DEVICE.match(path)
    return f"{match.group(1)}:{match.group(2)}" if match else None


# ---------------------------------------------------------------------------- reading


def read(cfg: LxcConfig, version: int, marks: Provenance) -> dict[str, Any] | None:
    """The blkiotune a config says: this host's family of keys if it has any, else the
    other's (a config written on another host)."""
    first, second = (_read_v2, _read_v1) if version == 2 else (_read_v1, _read_v2)
    return first(cfg, marks) or second(cfg, marks)


def _read_v1(cfg: LxcConfig, marks: Provenance) -> dict[str, Any] | None:
    tune: dict[str, Any] = {}
    devices: dict[str, dict[str, Any]] = {}
    for file in V1_WEIGHTS:
        value = cfg.get(_V1 + file)
        if value is not None and value.strip().isdigit():
            tune["weight"] = int(value)
            marks.mark(FIELD, _V1 + file)
    for file in V1_DEVICE_WEIGHTS:
        for value in cfg.get_all(_V1 + file):
            _device_value(devices, "weight", _V1 + file, value, marks)
    for field, (file, _) in RATES.items():
        for value in cfg.get_all(_V1 + file):
            _device_value(devices, field, _V1 + file, value, marks)
    return _tune(tune, devices)


def _device_value(devices: dict[str, dict[str, Any]], field: str, key: str, value: str,
                  marks: Provenance) -> None:
    """One `MAJ:MIN N` line; 0 (no limit) and `default` (no own weight) say nothing."""
    parts = words(value)
    if len(parts) != 2 or not _NUMBER.match(parts[0]):
        return
    if parts[1] in ("0", "default"):
        marks.mark(NORMALISED, key, value)
    elif parts[1].isdigit():
        devices.setdefault(parts[0], {})[field] = int(parts[1])
        marks.mark(FIELD, key, value)


def _read_v2(cfg: LxcConfig, marks: Provenance) -> dict[str, Any] | None:
    tune: dict[str, Any] = {}
    devices: dict[str, dict[str, Any]] = {}
    for file in V2_WEIGHTS:
        for value in cfg.get_all(_V2 + file):
            parts = words(value)
            if (len(parts) == 1 and parts[0].isdigit()) or \
                    (len(parts) == 2 and parts[0] == "default" and parts[1].isdigit()):
                tune["weight"] = int(parts[-1])
                marks.mark(FIELD, _V2 + file, value)
            else:
                _device_value(devices, "weight", _V2 + file, value, marks)
    for value in cfg.get_all(_V2 + V2_MAX):
        _io_max(devices, value, marks)
    return _tune(tune, devices)


def _io_max(devices: dict[str, dict[str, Any]], value: str, marks: Provenance) -> None:
    parts = words(value)
    if not parts or not _NUMBER.match(parts[0]):
        return
    limits = dict(part.partition("=")[::2] for part in parts[1:])
    names = {key: field for field, (_, key) in RATES.items()}
    if not set(limits) <= set(names) or not all(v == "max" or v.isdigit()
                                                 for v in limits.values()):
        return
    for key, number in limits.items():
        if number not in ("max", "0"):
            devices.setdefault(parts[0], {})[names[key]] = int(number)
    marks.mark(FIELD if any(v not in ("max", "0") for v in limits.values()) else NORMALISED,
               _V2 + V2_MAX, value)


def _tune(tune: dict[str, Any], devices: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if devices:
        tune["devices"] = [{"path": f"/dev/block/{number}", **settings}
                           for number, settings in devices.items()]
    return tune or None


# ---------------------------------------------------------------------------- writing


def config_pairs(blkio: dict[str, Any] | None, version: int, weight: str) -> list[tuple[str, str]]:
    """The config lines (key, value) that say `blkio` on this host, `weight` its weight file."""
    if not blkio:
        return []
    devices = [(device_number(d["path"]), d) for d in blkio.get("devices", ())]
    if version == 2:
        return _v2_pairs(blkio, devices, weight)
    out = []
    if "weight" in blkio:
        out.append((_V1 + weight, str(blkio["weight"])))
    out += [(_V1 + weight + "_device", f"{number} {d['weight']}")
            for number, d in devices if "weight" in d]
    for field, (file, _) in RATES.items():
        out += [(_V1 + file, f"{number} {d[field]}") for number, d in devices if field in d]
    return out


def _v2_pairs(blkio: dict[str, Any], devices: list[tuple[str | None, dict[str, Any]]],
              weight: str) -> list[tuple[str, str]]:
    out = []
    if "weight" in blkio:
        out.append((_V2 + weight, f"default {blkio['weight']}"))
    out += [(_V2 + weight, f"{number} {d['weight']}") for number, d in devices if "weight" in d]
    for number, d in devices:
        limits = [f"{key}={d[field]}" for field, (_, key) in RATES.items() if field in d]
        if limits:
            out.append((_V2 + V2_MAX, " ".join([str(number), *limits])))
    return out


def write(cfg: LxcConfig, blkio: dict[str, Any] | None, version: int, weight: str) -> None:
    """Make the config's block I/O keys say `blkio` (None: no tuning), in place of the ones
    it has (of either family and any spelling), leaving an unchanged config alone."""
    pairs = config_pairs(blkio, version, weight)
    if [(k, v) for k, v in cfg.items() if k in ALL_KEYS] == pairs:
        return
    at = cfg.remove_where(lambda key: key in ALL_KEYS)
    cfg.insert(at, pairs)


# ---------------------------------------------------------------------------- running


def live(want: dict[str, Any] | None, last: dict[str, Any] | None, version: int,
         weight: str) -> list[tuple[str, str]]:
    """(cgroup file, value) to write into a running container's cgroup for `want`: what the
    last applied spec set and `want` drops goes back to its default first."""
    want, last = want or {}, last or {}
    before = {device_number(d["path"]): d for d in last.get("devices", ())}
    after = {device_number(d["path"]): d for d in want.get("devices", ())}
    out: list[tuple[str, str]] = []
    if "weight" in want or "weight" in last:
        value = str(want.get("weight", DEFAULT_WEIGHT))
        out.append((weight, f"default {value}" if version == 2 else value))
    for number, old in before.items():
        new = after.get(number, {})
        if "weight" in old and "weight" not in new:
            out.append((weight if version == 2 else weight + "_device", f"{number} default"))
        out += _rate_resets(number, old, new, version)
    for number, new in after.items():
        if "weight" in new:
            out.append((weight if version == 2 else weight + "_device",
                        f"{number} {new['weight']}"))
        limits = [(field, new[field]) for field in RATES if field in new]
        if version == 2 and limits:
            out.append((V2_MAX, " ".join([str(number), *(f"{RATES[f][1]}={v}"
                                                          for f, v in limits)])))
        elif limits:
            out += [(RATES[f][0], f"{number} {v}") for f, v in limits]
    return out


def _rate_resets(number: str | None, old: dict[str, Any], new: dict[str, Any],
                 version: int) -> list[tuple[str, str]]:
    dropped = [field for field in RATES if field in old and field not in new]
    if not dropped:
        return []
    if version == 2:
        return [(V2_MAX, " ".join([str(number), *(f"{RATES[f][1]}=max" for f in dropped)]))]
    return [(RATES[field][0], f"{number} 0") for field in dropped]
