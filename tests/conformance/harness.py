"""What a driver plugs into the conformance suite: how to build it, a minimal spec for it,
which changes are live / restart / replace on it, and how to read and disturb the host.

The scenarios themselves (test_conformance.py) are the same for every driver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from reconciler.engine import compute_plan, marks, run_pass
from reconciler.engine.apply import ApplyReport
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import Journal
from reconciler.engine.plan import Plan, Settings
from reconciler.model.fields import Ref

# an LXC id map as unprivileged containers use (root in the guest is uid 100000 on the host)
UNPRIVILEGED = [{"kind": "uid", "start": 0, "target": 100000, "count": 65536},
                {"kind": "gid", "start": 0, "target": 100000, "count": 65536}]


@dataclass(frozen=True)
class Facts:
    """The host's own view of one domain, read by the harness, never through the engine."""

    exists: bool
    running: bool = False
    boots: int = 0            # how many times it was started (restarts = boots - 1)
    data: bool = False        # root filesystem / private area still on disk
    values: dict[str, Any] | None = None  # harness-specific readings (memory, hostname, ...)


class Harness(Protocol):
    name: str
    prefix: str
    allocates_ids: bool

    def config(self, state_dir: Path) -> Config: ...
    def spec(self, name: str, **overrides: Any) -> dict[str, Any]: ...
    def live_change(self) -> tuple[dict[str, Any], str, Any]: ...
    def restart_change(self) -> tuple[dict[str, Any], str, Any]: ...
    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def facts(self, name: str) -> Facts: ...
    def tamper_stop(self, name: str) -> None: ...
    def make_foreign(self, name: str) -> None: ...
    def cleanup(self) -> None: ...


def hosts_for(harness: Harness, state_dir: Path) -> Hosts:
    return build_hosts(harness.config(state_dir))


def ref(name: str) -> Ref:
    return Ref("Domain", name)


def _settings(config: Config) -> Settings:
    """The config's own settings (its policy included), removal breaker off: tests remove on
    purpose."""
    return replace(config.settings, max_removal_share=1.0)


def plan_pass(config: Config, specs: Path) -> Plan:
    """Plan `specs` against the host once (removal breaker off: tests remove on purpose)."""
    hosts = build_hosts(config)
    try:
        return compute_plan([str(specs)], hosts, _settings(config),
                            marks=marks.read(config.state_dir)).plan
    finally:
        hosts.close()


def apply_pass(config: Config, specs: Path) -> tuple[Plan, ApplyReport]:
    """Plan and apply `specs` once, journaled in the config's state directory."""
    hosts = build_hosts(config)
    journal = Journal(config.state_dir)
    try:
        done = run_pass([str(specs)], hosts, _settings(config), journal, parallel=4)
        return done.plan, done.report or ApplyReport(done.plan.id)
    finally:
        journal.close()
        hosts.close()


class SpecPasses:
    """What every driver's test world does with its spec directory: write and remove spec
    files, plan them and apply them (`ok`: every step must succeed). The world has `specs`
    and `config(**options)`."""

    specs: Path

    def config(self, **options: Any) -> Config:
        raise NotImplementedError

    def write(self, name: str, spec: dict[str, Any]) -> None:
        (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def remove(self, name: str) -> None:
        (self.specs / f"{name}.yaml").unlink()

    def plan(self, **options: Any) -> Plan:
        return plan_pass(self.config(**options), self.specs)

    def apply(self, ok: bool = True, **options: Any) -> tuple[Plan, ApplyReport]:
        plan, report = apply_pass(self.config(**options), self.specs)
        if ok:
            assert report.ok, {k: v.error for k, v in report.outcomes.items() if v.error}
        return plan, report
