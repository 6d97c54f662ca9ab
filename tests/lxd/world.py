"""A spec directory and a state directory planned and applied against one LXD daemon, for
the lxd driver's tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.engine.apply import ApplyReport
from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from tests.conformance.harness import apply_pass, plan_pass
from tests.lxd import daemons, support


@dataclass
class World:
    """A daemon, a prefix, a spec directory and a state directory."""

    daemon: daemons.Daemon
    prefix: str
    tmp: Path
    options: dict[str, Any]

    @property
    def specs(self) -> Path:
        path = self.tmp / "specs"
        path.mkdir(exist_ok=True)
        return path

    def name(self, tag: str) -> str:
        return f"{self.prefix}{tag}"

    def config(self, **options: Any) -> Config:
        policy = options.pop("policy", None)
        return support.config(self.tmp / "state", self.daemon, self.prefix, policy=policy,
                              **{**self.options, **options})

    def write(self, name: str, spec: dict[str, Any]) -> None:
        (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def remove(self, name: str) -> None:
        (self.specs / f"{name}.yaml").unlink()

    def plan(self, **options: Any) -> Plan:
        return plan_pass(self.config(**options), self.specs)

    def apply(self, ok: bool = True, **options: Any) -> tuple[Plan, ApplyReport]:
        """Plan and apply; `ok`: every step must succeed."""
        plan, report = apply_pass(self.config(**options), self.specs)
        if ok:
            assert report.ok, {k: v.error for k, v in report.outcomes.items() if v.error}
        return plan, report

    def instance(self, name: str) -> dict[str, Any]:
        found = support.instance(self.daemon, name)
        assert found is not None, f"{name} does not exist"
        return found
