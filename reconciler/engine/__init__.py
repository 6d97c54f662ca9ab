"""The reconcile engine: spec set + host -> plan -> apply. One entry point for CLI, agent and
tests: `passes`. Its names load on first use (`reconciler.lazy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.lazy import exports

if TYPE_CHECKING:
    from reconciler.engine.hosts import Hosts
    from reconciler.engine.passes import (
        Pass,
        PassResult,
        apply_planned,
        compute_plan,
        run_pass,
        stale_objects,
    )
    from reconciler.engine.plan import Plan, Settings

__all__ = ["Hosts", "Pass", "PassResult", "Plan", "Settings", "apply_planned", "compute_plan",
           "run_pass", "stale_objects"]
__getattr__ = exports(__name__, {
    "Hosts": "hosts", "Pass": "passes", "PassResult": "passes", "apply_planned": "passes",
    "compute_plan": "passes", "run_pass": "passes", "stale_objects": "passes", "Plan": "plan",
    "Settings": "plan"}, globals())
