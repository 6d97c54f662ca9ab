"""What the vserver driver's tests share: a world of one simulated util-vserver host (vssim,
tests/sims/vserver), a spec directory and a state directory, planned and applied through the
engine as the CLI does.

The VServer kernel cannot run here; the driver runs the simulator's executables, pointed at
the host by its tool paths (VsHost.tool), so nothing outside the test's temp dir is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.drivers.vserver import VserverDriver
from reconciler.engine.config import Config
from reconciler.engine.plan import ObjectPlan, Plan
from reconciler.engine.policy import Policy
from tests.conformance.harness import SpecPasses
from tests.conformance.vserver_harness import driver_options
from tests.sims.vserver.host import VsHost

ROOT = {"type": "template", "method": "template", "name": "minimal", "target": "/"}


class VsWorld(SpecPasses):
    def __init__(self, host: VsHost, tmp: Path) -> None:
        self.host = host
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        self.specs.mkdir()
        self.state.mkdir()
        self.policy: dict[str, Any] = {}  # tests that need more of the host allow it here

    # ------------------------------------------------------------------ config and specs
    def options(self) -> dict[str, Any]:
        return driver_options(self.host)

    def config(self) -> Config:
        return Config(state_dir=str(self.state), driver="vserver", driver_chosen=True,
                      drivers={"vserver": self.options()},
                      policy=Policy.from_config(self.policy, str(self.state)))

    def driver(self) -> VserverDriver:
        return VserverDriver(self.state, **self.options())

    @staticmethod
    def spec(name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": "Domain", "name": name, "type": "vserver",
                                "hostname": name, "filesystems": [dict(ROOT)]}
        spec.update(overrides)
        return spec

    # ------------------------------------------------------------------ passes
    # ------------------------------------------------------------------ the host's view
    def cfg(self, name: str) -> Path:
        return self.host.guest_dir(name)

    def file(self, name: str, rel: str) -> str | None:
        path = self.cfg(name) / rel
        return path.read_text() if path.is_file() else None

    def calls(self, tool: str = "vserver") -> list[list[str]]:
        return [c["argv"] for c in self.host.calls() if c["tool"] == tool]


def obj(plan: Plan, name: str) -> ObjectPlan:
    return next(o for o in plan.objects if o.ref.name == name)


def kinds(plan: Plan, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]
