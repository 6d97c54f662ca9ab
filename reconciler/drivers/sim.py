"""`sim`: a simulated host kept in a state directory, for demos, plan previews and tests.

It follows each technology's rules so plans look like real ones (which changes apply live,
which need a restart, which recreate), allocates ids the way OpenVZ and Linux-VServer number
guests, keeps "data" per domain (so undefine and purge differ visibly) and can inject faults.

Layout under STATE/sim/:
    objects/<Kind>/<name>.json   one object: run state, live config, our stamp (atomic writes)
    data/<name>/                 the domain's "disk" (rootfs / private area)
    faults.json                  optional fault injection rules (see `Fault`)
    lock                         flock held around each write
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.drivers.base import (
    POLICY_FIELDS,
    LiveObject,
    Ref,
    Stamp,
    Step,
    UpdateClass,
    root_of,
)
from reconciler.errors import PermanentError, TransientError

# Per technology: settings that apply to a running guest, and those that mean a new guest.
_LIVE = {
    # vzctl set pushes nearly everything into a running CT (reference §1.7)
    "openvz": {"memory", "memtune.*", "cpu.*", "limits", "quota.space", "quota.inodes",
               "quota.time", "interfaces", "hostname", "dns.*", "autostart", "start_order"},
    # cgroup limits through lxc-cgroup; lxc-autostart alone reads start.* (reference §3.6)
    "lxc": {"memory", "memtune.*", "cpu.shares", "cpu.quota", "cpu.period", "cpu.cpuset",
            "autostart", "start_order"},
    # util-vserver reads config at start; vsched/vuname/naddress push a few live (§2.6)
    "vserver": {"scheduler.*", "hostname", "autostart", "start_order", "interfaces"},
    # libvirt: balloon memory, memtune and cputune shares on a running domain
    "libvirt": {"current_memory", "memtune.*", "cpu.shares", "cpu.period", "cpu.quota",
                "autostart"},
    "network": {"autostart"},
}
_RECREATE = {
    "openvz": {"id", "filesystems", "type", "uuid"},
    "lxc": {"filesystems", "type", "idmap"},
    "vserver": {"id", "filesystems", "type"},
    "libvirt": {"type", "uuid"},
    "network": {"uuid"},
}
_ID_BASE = {"openvz": 101, "vserver": 2}


@dataclass(frozen=True)
class Fault:
    """Make a step fail or hang. Matches on step kind and/or object name (None = any)."""

    step: str | None = None
    object: str | None = None
    mode: str = "fail"  # fail | transient | hang
    seconds: float = 0.0
    probability: float = 1.0
    times: int | None = None  # stop after this many hits (counted in faults.json)


def _family(dtype: str) -> str:
    if dtype in ("openvz", "lxc", "vserver", "network"):
        return dtype
    return "libvirt"


def _matches(field: str, patterns: set[str]) -> bool:
    return field in patterns or any(p.endswith(".*") and field.startswith(p[:-1])
                                    for p in patterns)


class SimDriver:
    name = "sim"
    types = frozenset({"lxc", "openvz", "vserver", "vz", "kvm", "qemu", "test", "xen", "network"})

    def __init__(self, state_dir: str | Path, latency: float = 0.0) -> None:
        self.root = Path(state_dir) / "sim"
        self.latency = latency
        (self.root / "objects" / "Domain").mkdir(parents=True, exist_ok=True)
        (self.root / "objects" / "Network").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)

    # ----------------------------------------------------------------- reading
    def observe(self) -> list[LiveObject]:
        out = []
        for kind in ("Network", "Domain"):
            folder = self.root / "objects" / kind
            for entry in os.scandir(folder):
                if not entry.name.endswith(".json"):
                    continue
                record = self._read(Path(entry.path))
                if record is not None:
                    out.append(self._live(kind, record))
        return out

    def _live(self, kind: str, record: dict[str, Any]) -> LiveObject:
        name = record["name"]
        return LiveObject(
            ref=Ref(kind, name), type=record.get("type", "network"),
            state="running" if record.get("running") else "stopped",
            spec=record.get("config", {}), stamp=Stamp.from_json(record.get("stamp")),
            data=kind == "Network" or (self.root / "data" / name).is_dir(),
            extra={"id": record.get("config", {}).get("id"), "boots": record.get("boots", 0)},
        )

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def update_class(self, ref: Ref, type: str, field: str, old: Any = None,
                     new: Any = None) -> UpdateClass:
        family = _family("network" if ref.kind == "Network" else type)
        if field in POLICY_FIELDS:
            return "live"
        if field == "filesystems" and root_of(old) == root_of(new) and (old or new):
            return "live" if family == "openvz" else "restart"  # mounts only, same root
        if _matches(field, _RECREATE[family]):
            return "recreate"
        if _matches(field, _LIVE[family]):
            return "live"
        return "restart"

    # ----------------------------------------------------------------- writing
    def execute(self, step: Step) -> None:
        self._inject(step)
        if self.latency:
            time.sleep(self.latency)
        path = self._path(step.ref)
        with self._locked():
            record = self._read(path)
            getattr(self, f"_do_{step.kind}")(step, path, record)

    def _do_provision(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        data = self.root / "data" / step.ref.name
        if not data.is_dir():
            data.mkdir(parents=True)
            root: dict[str, Any] = next((fs for fs in (step.spec or {}).get("filesystems", ())
                                         if fs.get("target") == "/"), {})
            (data / "ROOT").write_text(json.dumps(root) + "\n")

    def _do_define(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        assert step.spec is not None
        config = dict(step.spec)
        if step.ref.kind == "Domain":
            if record is not None and "id" in record.get("config", {}) and "id" not in config:
                config["id"] = record["config"]["id"]
            elif "id" not in config and step.type in _ID_BASE:
                config["id"] = self._next_id(step.type)
        new = {"name": step.ref.name, "type": step.type,
               "running": bool(record and record.get("running")),
               "boots": record.get("boots", 0) if record else 0,
               "config": config, "stamp": step.stamp().to_json()}
        self._write(path, new)

    def _do_update(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        if record is None:
            raise PermanentError(f"{step.ref} is not defined")
        self._do_define(step, path, record)

    def _do_start(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        self._set_running(step, path, record, True)

    def _do_stop(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        if record is not None:
            self._set_running(step, path, record, False)

    def _set_running(self, step: Step, path: Path, record: dict[str, Any] | None,
                     running: bool) -> None:
        if record is None:
            raise PermanentError(f"{step.ref} is not defined")
        if step.ref.kind == "Domain" and running and not (self.root / "data" /
                                                          step.ref.name).is_dir():
            root = next((fs for fs in record.get("config", {}).get("filesystems", ())
                         if fs.get("target") == "/"), None)
            if root is not None and root.get("type") == "template":
                raise PermanentError(f"{step.ref} has no root filesystem (not provisioned)")
        if bool(record.get("running")) != running:
            boots = record.get("boots", 0) + (1 if running else 0)
            self._write(path, {**record, "running": running, "boots": boots})

    def _do_undefine(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        if record is not None and record.get("running"):
            raise PermanentError(f"{step.ref} is running; stop it first")
        path.unlink(missing_ok=True)

    def _do_purge(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        if record is not None and record.get("running"):
            raise PermanentError(f"{step.ref} is running; stop it first")
        path.unlink(missing_ok=True)
        data = self.root / "data" / step.ref.name
        if data.is_dir():
            for child in data.iterdir():
                child.unlink()
            data.rmdir()

    # ----------------------------------------------------------------- helpers
    def _path(self, ref: Ref) -> Path:
        return self.root / "objects" / ref.kind / f"{ref.name}.json"

    def _next_id(self, dtype: str) -> int:
        used = set()
        for entry in os.scandir(self.root / "objects" / "Domain"):
            record = self._read(Path(entry.path))
            if record and record.get("type") == dtype:
                used.add(record.get("config", {}).get("id"))
        candidate = _ID_BASE[dtype]
        while candidate in used:
            candidate += 1
        return candidate

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(record, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _inject(self, step: Step) -> None:
        path = self.root / "faults.json"
        if not path.exists():
            return
        with self._locked():
            rules = self._read_faults(path)
            for index, rule in enumerate(rules):
                fault = Fault(**{k: v for k, v in rule.items() if k != "hits"})
                if fault.step not in (None, step.kind) or fault.object not in (None, step.ref.name):
                    continue
                if fault.times is not None and rule.get("hits", 0) >= fault.times:
                    continue
                if random.random() >= fault.probability:  # noqa: S311 - test faults, not crypto
                    continue
                rules[index] = {**rule, "hits": rule.get("hits", 0) + 1}
                path.write_text(json.dumps(rules))
                break
            else:
                return
        if fault.mode == "hang":
            time.sleep(fault.seconds)
            return
        if fault.mode == "transient":
            raise TransientError(f"injected transient fault on {step.id}", delay=0.05)
        raise PermanentError(f"injected fault on {step.id}")

    @staticmethod
    def _read_faults(path: Path) -> list[dict[str, Any]]:
        try:
            rules = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return rules if isinstance(rules, list) else []

    # ----------------------------------------------------------------- testing aids
    def tamper(self, ref: Ref, running: bool | None = None, **config: Any) -> None:
        """Change an object behind the engine's back (drift), as a person at the host would."""
        path = self._path(ref)
        with self._locked():
            record = self._read(path)
            if record is None:
                raise KeyError(str(ref))
            if running is not None:
                record["running"] = running
            record["config"] = {**record.get("config", {}), **config}
            self._write(path, record)

    def close(self) -> None:
        return None
