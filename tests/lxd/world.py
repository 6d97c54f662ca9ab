"""A spec directory and a state directory planned and applied against one LXD daemon, for
the lxd driver's tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.engine.config import Config
from tests.conformance.harness import SpecPasses
from tests.lxd import daemons, support


@dataclass
class World(SpecPasses):
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

    def instance(self, name: str) -> dict[str, Any]:
        found = support.instance(self.daemon, name)
        assert found is not None, f"{name} does not exist"
        return found
