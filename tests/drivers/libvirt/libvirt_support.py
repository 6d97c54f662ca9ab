"""Running the engine against the libvirt driver as the agent and CLI do (imported by tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.engine.apply import ApplyReport
from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from tests.conformance.harness import apply_pass, plan_pass


def config(state: Path, uri: str, prefix: str, **options: Any) -> Config:
    return Config(state_dir=str(state), driver="libvirt", driver_chosen=True,
                  drivers={"libvirt": {"uri": uri, "match": f"{prefix}*", "stop_timeout": 10,
                                       **options}})


def plan(specs: Path, cfg: Config) -> Plan:
    return plan_pass(cfg, specs)


def apply(specs: Path, cfg: Config) -> tuple[Plan, ApplyReport]:
    return apply_pass(cfg, specs)


def changes(the_plan: Plan) -> dict[str, list[str]]:
    """Per object with something to do: its action and the fields that differ."""
    return {str(o.ref): [o.action, *[f"{c.field}: {c.old!r} -> {c.new!r}" for c in o.changes]]
            for o in the_plan.objects if o.action != "noop"}


def errors(report: ApplyReport) -> dict[str, str | None]:
    return {k: v.error for k, v in report.outcomes.items() if v.result != "succeeded"}
