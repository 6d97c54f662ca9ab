"""`sim`: a simulated host kept in a state directory, for demos, plan previews and tests.

For each domain type it follows the rules (`reconciler.rules`) of the real driver it imitates,
the very tables that driver reads, so a plan on `sim` is the plan the real host would get: what
applies live, what needs a restart, what recreates, and what the technology cannot do at all
(refused). It allocates ids the way OpenVZ and Linux-VServer number guests, keeps "data" per
domain (so undefine and purge differ visibly) and can inject faults.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.drivers.base import (
    Driver,
    Handler,
    LiveObject,
    Stamp,
    Step,
    StepKind,
)
from reconciler.errors import ConfigError, DriverError, PermanentError, TransientError
from reconciler.fsio import write_atomic
from reconciler.model.fields import Ref, root_of
from reconciler.rules import Technology, technology
from reconciler.rules.registry import DEFAULT_IMITATION


@dataclass(frozen=True)
class Fault:
    """Make a step fail or hang. Matches on step kind and/or object name (None = any)."""

    step: str | None = None
    object: str | None = None
    mode: str = "fail"  # fail | transient | hang
    seconds: float = 0.0
    probability: float = 1.0
    times: int | None = None  # stop after this many hits (counted in faults.json)


class SimDriver(Driver):
    """Options (agent config `drivers: {sim: {...}}`): `imitate`, a map from domain type (or
    "network") to the technology whose rules `sim` follows for it (`reconciler.rules`; by
    default the driver the shipped agent config runs it with), and `latency` (seconds added
    to every step)."""

    name = "sim"
    types = frozenset(DEFAULT_IMITATION)

    def __init__(self, state_dir: str | Path, latency: float = 0.0,
                 imitate: dict[str, str] | None = None, **unknown: Any) -> None:
        if unknown:
            raise ConfigError(f"sim: unknown driver options {sorted(unknown)}; valid: imitate, "
                              "latency")
        self.root = Path(state_dir) / "sim"
        self.latency = float(latency)
        self.imitation: dict[str, Technology] = {
            key: technology(DEFAULT_IMITATION[key]) for key in DEFAULT_IMITATION}
        for key, name in (imitate or {}).items():
            if key not in DEFAULT_IMITATION:
                raise ConfigError(f"sim: imitate: unknown domain type {key!r}; valid: "
                                  f"{', '.join(DEFAULT_IMITATION)}")
            tech = technology(str(name))
            if key not in tech.types:
                raise ConfigError(f"sim: imitate: {key} guests cannot run on {name} (it runs "
                                  f"{', '.join(sorted(tech.types))})")
            self.imitation[key] = tech
        for sub in ("objects/Domain", "objects/Network", "data"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def technology(self, kind: str, dtype: str) -> Technology:
        return self.imitation["network" if kind == "Network" else dtype]

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        data = self.root / "data" / live.ref.name
        return (str(data),) if live.ref.kind == "Domain" and data.is_dir() else ()

    def boot_id(self, live: LiveObject) -> str | None:
        """Each start counts a boot."""
        return f"boot {live.extra.get('boots', 0)}" if live.state == "running" else None

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """Nothing runs: the command exits 0, or 1 when a fault for step `verify` of this
        object is injected (`STATE/sim/faults.json`), so tests can fail a health check."""
        record = self._read(self._path(ref))
        if record is None or not record.get("running"):
            raise PermanentError(f"{ref} is not running")
        try:
            self._inject(Step(f"{ref}:verify", "verify", ref, str(record.get("type", ""))))
        except DriverError:
            return 1
        return 0

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

    # ----------------------------------------------------------------- writing
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        kinds: dict[StepKind, Callable[[Step, Path, dict[str, Any] | None], None]] = {
            "provision": self._do_provision, "define": self._do_define,
            "update": self._do_update, "start": self._do_start, "stop": self._do_stop,
            "undefine": self._do_undefine, "purge": self._do_purge}
        return {(kind, step): self._locked_step(run) for kind in ("Domain", "Network")
                for step, run in kinds.items()}

    def _locked_step(self, run: Callable[[Step, Path, dict[str, Any] | None], None]) -> Handler:
        """A step as the simulated host runs it: faults first, then under the state lock."""
        def handler(step: Step) -> None:
            self._inject(step)
            if self.latency:
                time.sleep(self.latency)
            path = self._path(step.ref)
            with self._locked():
                run(step, path, self._read(path))
        return handler

    def _do_provision(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        data = self.root / "data" / step.ref.name
        if not data.is_dir():
            data.mkdir(parents=True)
            root: dict[str, Any] = root_of((step.spec or {}).get("filesystems")) or {}
            (data / "ROOT").write_text(json.dumps(root) + "\n")

    def _do_define(self, step: Step, path: Path, record: dict[str, Any] | None) -> None:
        assert step.spec is not None
        config = dict(step.spec)
        if step.ref.kind == "Domain":
            if record is not None and "id" in record.get("config", {}) and "id" not in config:
                config["id"] = record["config"]["id"]
            elif "id" not in config and self.technology("Domain", step.type).first_id:
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
            root = root_of(record.get("config", {}).get("filesystems"))
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
        candidate = self.technology("Domain", dtype).first_id or 1
        while candidate in used:
            candidate += 1
        return candidate

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        write_atomic(path, json.dumps(record, separators=(",", ":")))

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

