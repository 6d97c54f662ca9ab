"""Running the engine against the libvirt driver as the agent and CLI do (imported by tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from reconciler.engine.apply import ApplyReport
from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from reconciler.engine.policy import Policy
from tests.conformance.harness import apply_pass, plan_pass

# What these tests allow beyond the default host policy, and why: guests are built in and
# mounted from the test's temp directory, libvirt LXC guests run without an id map (their
# init writes into a root owned by the host's root), and one guest runs on a host directory.
LIBVIRT_TEST_POLICY = {"mount_roots": [tempfile.gettempdir()], "privileged": True,
                       "host_root": True}


def config(state: Path, uri: str, prefix: str, policy: dict[str, Any] | None = None,
           **options: Any) -> Config:
    return Config(state_dir=str(state), driver="libvirt", driver_chosen=True,
                  drivers={"libvirt": {"uri": uri, "match": f"{prefix}*", "stop_timeout": 10,
                                       **options}},
                  policy=Policy.from_config(LIBVIRT_TEST_POLICY if policy is None else policy,
                                            str(state)))


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
