"""The reconcile engine: spec set + host -> plan -> apply. One entry point for CLI, agent and
tests: `passes`."""

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
