"""A simulated OpenVZ host with a spec directory and the engine around it, for the openvz
driver's tests. The host is read through the simulator's own files and parser, never through
the driver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from reconciler.drivers.openvz import OpenvzDriver
from reconciler.engine.config import Config
from reconciler.engine.plan import ObjectPlan, Plan
from reconciler.engine.policy import Policy
from tests.conformance.harness import SpecPasses
from tests.sims.openvz.config import read_conf
from tests.sims.openvz.host import OSTEMPLATE, VzHost
from tests.sims.openvz.values import Ctx

OTHER_TEMPLATE = "debian-11-x86_64"


class VzWorld(SpecPasses):
    def __init__(self, root: Path, version: str) -> None:
        self.version = version
        self.legacy = version != "7"
        self.host = VzHost(root / "host", version)
        self.host.write_template(OTHER_TEMPLATE)
        self.specs = root / "specs"
        self.state = root / "state"
        self.specs.mkdir(parents=True)
        self.prefix = f"t{uuid.uuid4().hex[:5]}"
        self.policy: dict[str, Any] = {}

    # ------------------------------------------------------------------ engine
    def options(self, **extra: Any) -> dict[str, Any]:
        return {"conf_dir": str(self.host.conf_dir), "vz_conf": str(self.host.vz_conf),
                **extra}

    def config(self) -> Config:
        return Config(state_dir=str(self.state), driver="openvz", driver_chosen=True,
                      drivers={"openvz": self.options()},
                      policy=Policy.from_config(self.policy or None, str(self.state)))

    def driver(self, **extra: Any) -> OpenvzDriver:
        return OpenvzDriver(self.state, **self.options(**extra))

    def name(self, tag: str) -> str:
        return f"{self.prefix}{tag}"

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": "openvz", "memory": "128MiB",
            "hostname": name,
            "filesystems": [{"type": "template", "name": OSTEMPLATE, "target": "/"}]}
        spec.update(overrides)
        return spec

    # ------------------------------------------------------------------ the host
    def ctid(self, name: str) -> str:
        for path in sorted(self.host.conf_dir.glob("*.conf")):
            if path.stem.isdigit() and path.stem != "0" and \
                    self.values(path.stem).get("NAME") == name:
                return path.stem
        raise AssertionError(f"no container named {name}")

    def values(self, ctid: str | int, suffix: str = ".conf") -> dict[str, Any]:
        path = self.host.conf_dir / f"{ctid}{suffix}"
        return dict(read_conf(path, Ctx(str(ctid), self.legacy), warn=False).values)

    def sidecar(self, ctid: str | int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.host.conf_dir / f"{ctid}.reconciler.json").read_text())
        return data

    def vzctl_calls(self, since: int = 0) -> list[list[str]]:
        return [c["argv"] for c in self.host.calls()[since:] if c["tool"] == "vzctl"
                and c["argv"] != ["--version"]]

    def running(self, ctid: str) -> bool:
        return bool(self.host.state()["cts"].get(ctid, {}).get("running"))

    def boots(self, ctid: str) -> int:
        return int(self.host.state().get("boots", {}).get(ctid, 0))


def obj(plan: Plan, name: str) -> ObjectPlan:
    return next(o for o in plan.objects if o.ref.name == name)


def kinds(plan: Plan, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]
