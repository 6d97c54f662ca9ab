"""A pass, put together once: load the specs and plan them against the host
(`compute_plan`), record the plan in the journal and apply it (`apply_planned`), or both
(`run_pass`). The CLI, the agent and the conformance harness use these, and nothing else puts
a pass together.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from reconciler.drivers.base import Step
from reconciler.engine import marks
from reconciler.engine.apply import DEFAULT_PARALLEL, ApplyReport, Retry, StepOutcome, apply_plan
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import MAX_BYTES, Journal
from reconciler.engine.marks import Marks
from reconciler.engine.plan import Plan, Settings, desired_from, make_plan, spec_problems
from reconciler.engine.records import write_plan
from reconciler.log import get_logger
from reconciler.model.fields import Ref
from reconciler.specs.loader import SpecSet, load_paths


@dataclass(frozen=True)
class Pass:
    specs: SpecSet
    plan: Plan


def compute_plan(paths: Sequence[str], hosts: Hosts, settings: Settings,
                 specs: SpecSet | None = None, context: dict[str, object] | None = None,
                 marks: Marks | None = None) -> Pass:
    """Load `paths` (unless given), observe the host and plan; logs `plan.computed`.
    `marks`: what earlier passes left (pending restarts, rollbacks; `marks.read`)."""
    if specs is None:
        hosts.prepare_observe()  # the tools a driver waits for run while the files load
        specs = load_paths(paths)
    # absolute, not resolved: a git-sync style symlink swap keeps the same source names
    sources = {key: os.path.abspath(entry.file) for key, entry in specs.objects.items()}
    desired = desired_from(specs.resolved(), sources)
    no_specs = not specs.files or bool(specs.missing_roots)
    failed = {os.path.abspath(f) for f in specs.failed_files}
    plan = make_plan(desired, hosts, failed_files=failed,
                     roots=tuple(str(p) for p in paths), no_specs=no_specs, settings=settings,
                     errors=spec_problems(specs.errors, specs.missing_roots), marks=marks)
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




def apply_planned(plan: Plan, hosts: Hosts, journal: Journal, *,
                  parallel: int = DEFAULT_PARALLEL, journal_max_bytes: int = MAX_BYTES,
                  skip: set[str] | None = None, stop: threading.Event | None = None,
                  retry: Retry | None = None,
                  progress: Callable[[StepOutcome, int, int], None] | None = None,
                  started: Callable[[Step], None] | None = None,
                  max_restarts: int = 0) -> ApplyReport | None:
    """Record `plan` in the journal (a new journal first when this one is full) and apply its
    steps; None when it has none. A plan that changes nothing but says something (held,
    refused, waiting or pending objects, a refused removal) is recorded too, so the journal
    shows why. The marks (`marks.py`) are brought up to date with what happened."""
    telling = plan.has_changes or plan.breaker or any(
        o.action in _TELLING for o in plan.objects)
    if telling:
        if journal.rotate_if_full(journal_max_bytes):
            get_logger(plan_id=plan.id).info("journal.rotated", path=str(journal.path))
        write_plan(journal, plan)
    report = None
    if plan.has_changes:
        report = apply_plan(plan, hosts, journal, parallel=parallel, retry=retry, stop=stop,
                            skip=skip, progress=progress, started=started,
                            max_restarts=max_restarts)
    settle_marks(plan, report, journal)
    return report


_TELLING = frozenset({"held", "refused", "waiting", "pending", "rolled_back"})


def settle_marks(plan: Plan, report: ApplyReport | None, journal: Journal) -> None:
    """What this pass leaves for the next ones, for the objects it planned: a deferred change
    pending until the guest boots again, a rolled-back spec not to try again; a mark goes
    once what it waited for happened (a restart, a new spec applied, the object gone)."""
    outcomes = report.outcomes if report else {}
    steps = {s.id: s for s in plan.steps}

    def ok(sid: str) -> bool:
        outcome = outcomes.get(sid)
        return outcome is not None and outcome.result == "succeeded"

    log = get_logger(plan_id=plan.id)
    with marks.changing(journal.state_dir) as known:
        for obj in plan.objects:
            ref, kinds = obj.ref, {s.rsplit(":", 1)[1]: s for s in obj.steps}
            verify = outcomes.get(kinds.get("verify", ""))
            if verify is not None and verify.rolled_back:
                known.pending.pop(ref, None)
                known.rolled_back[ref] = marks.RolledBack(
                    marks.digest(steps[verify.step].spec or {}), marks.now(),
                    verify.error or "health check failed", plan.id)
                journal.write("object.rolled_back", plan_id=plan.id, object=str(ref),
                              reason=verify.error)
                log.error("object.rolled_back", object=str(ref), reason=verify.error)
                continue
            if obj.action == "update" and obj.update == "deferred" and ok(kinds["update"]):
                known.pending[ref] = marks.Pending(obj.pending, marks.now(), obj.boot, plan.id,
                                                   steps[kinds["update"]].previous)
                journal.write("object.pending_restart", plan_id=plan.id, object=str(ref),
                              fields=list(obj.pending))
            elif obj.action in ("noop", "remove") or ok(kinds.get("start", "")) or (
                    obj.action in ("create", "update", "replace") and not obj.pending):
                known.pending.pop(ref, None)  # restarted, gone, or booted since
            if obj.action in ("create", "update", "replace", "remove") and all(
                    ok(sid) for sid in obj.steps):
                known.rolled_back.pop(ref, None)  # a spec that applied, or the object gone


@dataclass(frozen=True)
class PassResult:
    specs: SpecSet
    plan: Plan
    report: ApplyReport | None


def run_pass(paths: Sequence[str], hosts: Hosts, settings: Settings, journal: Journal, *,
             parallel: int = DEFAULT_PARALLEL, journal_max_bytes: int = MAX_BYTES
             ) -> PassResult:
    """Load, plan, record and apply, unattended (what `apply --yes` and the harness do), with
    the marks earlier passes left in the journal's state directory."""
    planned = compute_plan(paths, hosts, settings, marks=marks.read(journal.state_dir))
    report = apply_planned(planned.plan, hosts, journal, parallel=parallel,
                           journal_max_bytes=journal_max_bytes)
    return PassResult(planned.specs, planned.plan, report)
