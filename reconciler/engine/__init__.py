"""The reconcile engine: spec set + host -> plan -> apply. One entry point for CLI and agent."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.engine.hosts import Hosts
from reconciler.engine.plan import Plan, Settings, desired_from, make_plan
from reconciler.log import get_logger
from reconciler.model.fields import Ref
from reconciler.specs.loader import SpecSet, load_paths


@dataclass(frozen=True)
class Pass:
    specs: SpecSet
    plan: Plan


def compute_plan(paths: Sequence[str], hosts: Hosts, settings: Settings,
                 specs: SpecSet | None = None, context: dict[str, object] | None = None) -> Pass:
    """Load `paths` (unless given), observe the host and plan; logs `plan.computed`."""
    if specs is None:
        hosts.prepare_observe()  # the tools a driver waits for run while the files load
        specs = load_paths(paths)
    # absolute, not resolved: a git-sync style symlink swap keeps the same source names
    sources = {key: os.path.abspath(entry.file) for key, entry in specs.objects.items()}
    desired = desired_from(specs.resolved(), sources)
    no_specs = not specs.files or bool(specs.missing_roots)
    failed = {os.path.abspath(f) for f in specs.failed_files}
    plan = make_plan(desired, hosts, failed_files=failed,
                     roots=tuple(str(p) for p in paths), no_specs=no_specs, settings=settings)
    if context:
        plan = replace(plan, context=dict(context))
    log = get_logger(plan_id=plan.id)
    for err in specs.errors:
        log.warning("spec.invalid", file=err.location.file if err.location else None,
                    line=err.location.line if err.location else None, error=err.message)
    for obj in plan.objects:
        if obj.action == "held":
            log.warning("object.held", object=str(obj.ref), source=obj.source)
        elif obj.action == "refused":
            log.warning("object.refused", object=str(obj.ref),
                        refusals=[str(r) for r in obj.refusals])
    if plan.breaker:
        log.warning("removal.refused", reason=plan.breaker)
    log.info("plan.computed", spec_hash=plan.spec_hash, steps=len(plan.steps),
             **plan.summary(), **({"commit": context["commit"]}
                                  if context and "commit" in context else {}))
    return Pass(specs, plan)


def stale_objects(plan: Plan, hosts: Hosts) -> dict[Ref, str]:
    """Objects whose host state moved since the plan was made, with what moved."""
    live = hosts.observe()
    out: dict[Ref, str] = {}
    for obj in plan.objects:
        if obj.action in ("noop", "held"):
            continue
        found = live.get(obj.ref)
        now = found[1].fingerprint() if found else "absent"
        if now != obj.fingerprint:
            out[obj.ref] = (f"host state of {obj.ref} changed since the plan was made "
                            f"({obj.fingerprint} -> {now}); plan again")
    return out


def spec_paths_exist(paths: Sequence[str]) -> bool:
    return all(Path(p).exists() for p in paths)


__all__ = ["Hosts", "Pass", "Plan", "Settings", "compute_plan", "stale_objects"]
