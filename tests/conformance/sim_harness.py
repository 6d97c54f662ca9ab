"""The conformance harness for `sim`: reads the simulated host's own files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from reconciler.drivers.sim import SimDriver
from reconciler.engine.config import Config
from reconciler.model.fields import Ref

from .harness import UNPRIVILEGED, Facts


class SimHarness:
    def __init__(self, state_dir: Path, domain_type: str = "openvz") -> None:
        self.name = f"sim-{domain_type}"
        self.allocates_ids = domain_type in ("openvz", "vserver")
        self.state_dir = state_dir
        self.type = domain_type
        self.prefix = f"cf{uuid.uuid4().hex[:6]}"

    def config(self, state_dir: Path) -> Config:
        # `sim` previews each type as the driver that runs it; LXC guests here as the lxc
        # driver (LXC's own tools), whose rules the suite checks on real LXC too
        return Config(state_dir=str(state_dir), driver="sim", driver_chosen=True,
                      drivers={"sim": {"imitate": {"lxc": "lxc"}}})

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": self.type, "memory": "128MiB",
            "hostname": name,
            "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
        }
        if self.type == "lxc":  # unprivileged, as the default host policy wants
            spec["idmap"] = UNPRIVILEGED
        spec.update(overrides)
        return spec

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"memory": "256MiB"}, "memory", "256MiB"

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        if self.type == "lxc":  # LXC reads its config only at start
            return {"hostname": "renamed"}, "hostname", "renamed"
        # vzctl pushes hostname live; quotaugidlimit on/off is one of its restart settings
        return {"quota": {"ugid_limit": 100}}, "quota.ugid_limit", 100

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        other = {"type": "template", "name": "other", "target": "/"}
        if self.type == "lxc":  # a template LXC ships
            other = {"type": "template", "name": "download", "target": "/",
                     "options": ["-d", "alpine"]}
        return {**spec, "filesystems": [other]}

    def _record(self, name: str) -> dict[str, Any] | None:
        path = self.state_dir / "sim" / "objects" / "Domain" / f"{name}.json"
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def facts(self, name: str) -> Facts:
        record = self._record(name)
        data = (self.state_dir / "sim" / "data" / name).is_dir()
        if record is None:
            return Facts(exists=False, data=data)
        return Facts(exists=True, running=bool(record.get("running")),
                     boots=int(record.get("boots", 0)), data=data, values=record["config"])

    def tamper_stop(self, name: str) -> None:
        SimDriver(self.state_dir).tamper(Ref("Domain", name), running=False)

    def tamper_value(self, name: str, field: str, value: Any) -> None:
        SimDriver(self.state_dir).tamper(Ref("Domain", name), **{field: value})

    def make_foreign(self, name: str) -> None:
        path = self.state_dir / "sim" / "objects" / "Domain" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": name, "type": self.type, "running": True,
                                    "config": {"name": name, "type": self.type,
                                               "memory": "64MiB"}}))

    def cleanup(self) -> None:
        return None


HARNESSES = [
    ("sim-lxc", lambda tmp: SimHarness(tmp / "state", "lxc")),
    ("sim-openvz", lambda tmp: SimHarness(tmp / "state", "openvz")),
]
