"""The token-bucket scheduler as `vsched --dir sched/` sets it (native-formats.md §2.3).

Files are integers read strictly (numbers.sched_value); `prio-bias` is an alias of
`priority-bias`; `fill-rate2`/`interval2` and a boolean `idle-time` turn idle time on; unknown
names are ignored. The global files apply to every CPU; then each subdirectory (one level) is
applied on its own to its `cpu-id` (every CPU when it has none), carrying over only the
idle-time flag. A subdirectory with a `bucket-id` fills that bucket of the CPU instead.

Kernel view kept in the state: {"cpus": {"0": {"fill-rate": 1, ..., "idle-time": false,
"buckets": {"1": {...}}}}}. Files in a directory are taken in name order (the C tool takes
readdir order, which is not defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import numbers

FIELDS = {
    "fill-rate": "fill-rate", "interval": "interval", "tokens": "tokens",
    "tokens-min": "tokens-min", "tokens-max": "tokens-max", "prio-bias": "priority-bias",
    "priority-bias": "priority-bias", "fill-rate2": "fill-rate2", "interval2": "interval2",
    "cpu-id": "cpu-id", "bucket-id": "bucket-id",
}
IDLE_FIELDS = ("fill-rate2", "interval2")
# the deprecated 6-line `schedule` file, as vsched options
SCHEDULE_FIELDS = ("fill-rate", "interval", "tokens", "tokens-min", "tokens-max", "priority-bias")
SCHEDULE_OPTION_NAMES = ("fill_rate", "interval", "tokens", "tokens_min", "tokens_max",
                         "priority_bias")

Sched = dict[str, Any]


class SchedError(Exception):
    def __init__(self, message: str, rc: int = 1) -> None:
        super().__init__(message)
        self.rc = rc


@dataclass
class SchedSet:
    values: dict[str, int] = field(default_factory=dict)
    idle: bool = False

    @property
    def cpu_id(self) -> int | None:
        return self.values.get("cpu-id")

    @property
    def bucket_id(self) -> int | None:
        return self.values.get("bucket-id")

    def tokens(self) -> dict[str, int | bool]:
        return {k: v for k, v in self.values.items() if k not in ("cpu-id", "bucket-id")}


def read_dir(directory: Path) -> SchedSet:
    """The plain files of one sched directory."""
    result = SchedSet()
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            continue
        if entry.name == "idle-time":
            result.idle = True
            continue
        key = FIELDS.get(entry.name)
        if key is None:
            continue
        value = numbers.sched_value(entry.read_bytes())
        if value is None:
            raise SchedError(f"vsched: {entry.name}: is not an integer")
        result.values[key] = value
        if key in IDLE_FIELDS:
            result.idle = True
    return result


def empty(cpus: int) -> Sched:
    return {"cpus": {str(cpu): {} for cpu in range(cpus)}}


def apply(sched: Sched, cpus: int, change: SchedSet, idle: bool) -> None:
    """One vc_set_sched call: the values go to the CPU (or all), idle-time is set or cleared."""
    cpu = change.cpu_id
    if cpu is not None and not 0 <= cpu < cpus:
        raise SchedError("vsched: vc_set_sched(): Invalid argument")
    targets = [str(cpu)] if cpu is not None else [str(c) for c in range(cpus)]
    for key in targets:
        slot = sched["cpus"].setdefault(key, {})
        if change.bucket_id is not None:
            slot = slot.setdefault("buckets", {}).setdefault(str(change.bucket_id), {})
        slot.update(change.tokens())
        slot["idle-time"] = idle


def from_dir(directory: Path, cpus: int, base: Sched | None = None) -> Sched:
    """vsched --dir DIR --missingok on a context (base: the context's current values)."""
    sched = base if base is not None else empty(cpus)
    if not directory.is_dir():
        return sched
    top = read_dir(directory)
    apply(sched, cpus, top, top.idle)
    for sub in sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: p.name):
        per_cpu = read_dir(sub)
        apply(sched, cpus, per_cpu, top.idle or per_cpu.idle)
    return sched


def from_schedule(values: list[str], cpus: int) -> Sched:
    """The deprecated `schedule` file's six values, passed to vsched as options."""
    sched = empty(cpus)
    change = SchedSet()
    for key, option, text in zip(SCHEDULE_FIELDS, SCHEDULE_OPTION_NAMES, values, strict=False):
        value = numbers.option_value(text)
        if value is None:
            raise SchedError(f"vsched: the value of '--{option}' is not an integer", rc=255)
        change.values[key] = value
    apply(sched, cpus, change, False)
    return sched
