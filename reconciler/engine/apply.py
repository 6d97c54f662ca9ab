"""Run a plan's step graph: bounded parallelism, retries with backoff for transient errors,
a failed step stops only its dependents, every step journaled before and after.

A step exception never escapes: each step ends as a frozen `StepOutcome`.

Workers only run driver calls. The journal and log lines of a step's start and end are
written by the scheduling thread: a write lets go of the GIL, and a worker that did so while
its peers ran Python waited for them to finish before it could go on, which made the lines
cost more than the steps they describe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.drivers.base import Driver, Step
from reconciler.engine import health
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import Journal
from reconciler.engine.plan import Plan
from reconciler.errors import TransientError
from reconciler.log import get_logger
from reconciler.model.fields import Ref, flatten

Result = Literal["succeeded", "failed", "skipped"]
# Steps at once. Most of a step is waiting on a tool or a daemon, and libvirtd and the LXC
# tools take several side by side (200 libvirt defines: 1.10x a serial loop at 8, 1.25x at 4).
DEFAULT_PARALLEL = 8


@dataclass(frozen=True)
class StepOutcome:
    step: str
    result: Result
    attempts: int = 0
    duration: float = 0.0
    error: str | None = None
    last: float = 0.0  # the duration of the last attempt alone
    rolled_back: bool = False  # a failed health check, undone (verify steps)


@dataclass(frozen=True)
class Retry:
    attempts: int = 4
    first_delay: float = 0.2
    max_delay: float = 10.0


@dataclass
class ApplyReport:
    plan_id: str
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.result == "succeeded" for o in self.outcomes.values())

    def counts(self) -> dict[str, int]:
        out = {"succeeded": 0, "failed": 0, "skipped": 0}
        for o in self.outcomes.values():
            out[o.result] += 1
        return out


def apply_plan(plan: Plan, hosts: Hosts, journal: Journal, *, parallel: int = DEFAULT_PARALLEL,
               retry: Retry | None = None, stop: threading.Event | None = None,
               skip: set[str] | None = None,
               progress: Callable[[StepOutcome, int, int], None] | None = None,
               started: Callable[[Step], None] | None = None,
               max_restarts: int = 0) -> ApplyReport:
    """Execute `plan`. `stop` set -> no new steps start; running ones finish (SIGTERM, the
    first Ctrl-C), and the journal records `apply.interrupted`. `started(step)` and
    `progress(outcome, done, total)` tell a display what runs and what ended. At most
    `max_restarts` guests (0: any number) are between the stop and the end of a restart."""
    retry = retry or Retry()
    stop = stop or threading.Event()
    log = get_logger(plan_id=plan.id)
    report = ApplyReport(plan.id)
    steps = {s.id: s for s in plan.steps}
    waiting = {sid: sum(1 for d in s.deps if d in steps) for sid, s in steps.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, s in steps.items():
        for dep in s.deps:
            if dep in steps:
                dependents[dep].append(sid)
    ready = deque(sid for sid in steps if waiting[sid] == 0)
    gate = _RestartGate(plan, max_restarts)
    journal.write("apply.started", plan_id=plan.id, steps=len(steps))
    log.info("apply.started", steps=len(steps), parallel=parallel)
    began = time.monotonic()
    running: dict[Future[StepOutcome], str] = {}

    def finish(outcome: StepOutcome) -> None:
        report.outcomes[outcome.step] = outcome
        ready.extend(gate.finished(steps[outcome.step], outcome.result == "succeeded"))
        if outcome.attempts:
            _record_end(outcome, journal, log, steps[outcome.step], plan.id)
        if progress:
            progress(outcome, len(report.outcomes), len(steps))
        if outcome.result == "succeeded":
            for nxt in dependents[outcome.step]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0 and nxt not in report.outcomes:
                    ready.append(nxt)
            return
        blocked = deque(dependents[outcome.step])  # a failure stops only its dependents
        while blocked:
            nxt = blocked.popleft()
            if nxt in report.outcomes:
                continue
            report.outcomes[nxt] = StepOutcome(nxt, "skipped",
                                               error=f"dependency {outcome.step} did not succeed")
            journal.write("step.skipped", plan_id=plan.id, step=nxt, because=outcome.step)
            log.warning("step.skipped", step=nxt, because=outcome.step)
            blocked.extend(dependents[nxt])

    for sid in sorted(skip or set()):
        if sid in steps:
            finish(StepOutcome(sid, "skipped", error="object refused"))
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="step") as pool:
        while True:
            while ready and len(running) < parallel and not stop.is_set():
                sid = ready.popleft()
                if sid in report.outcomes or not gate.admit(steps[sid]):
                    continue
                _record_start(steps[sid], 1, journal, log, plan.id)
                if started:
                    started(steps[sid])
                running[pool.submit(_run_step, steps[sid], hosts, journal, retry, stop,
                                    plan.id)] = sid
            if not running:
                break
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                running.pop(fut)
                finish(fut.result())
    for sid in steps:  # interrupted, or never reachable
        if sid not in report.outcomes:
            report.interrupted = report.interrupted or stop.is_set()
            report.outcomes[sid] = StepOutcome(sid, "skipped", error="not started")
    counts = report.counts()
    duration = round(time.monotonic() - began, 3)
    if report.interrupted:
        not_started = sum(1 for o in report.outcomes.values() if o.error == "not started")
        journal.write("apply.interrupted", plan_id=plan.id, not_started=not_started)
        log.warning("apply.interrupted", not_started=not_started)
    journal.write("apply.finished", plan_id=plan.id, interrupted=report.interrupted,
                  duration=duration, **counts)
    journal.sync()
    log.info("apply.finished", interrupted=report.interrupted, duration=duration, **counts)
    return report


class _RestartGate:
    """`max_restarts`: a guest's restart (its stop ... its last step) holds a slot; a stop
    that finds none free waits, and is ready again once a restart ends."""

    def __init__(self, plan: Plan, limit: int) -> None:
        self.limit = limit
        self.last: dict[Ref, str] = {}  # a restarting object -> its last step
        for obj in plan.objects:
            kinds = [s.rsplit(":", 1)[1] for s in obj.steps]
            if "stop" in kinds and "start" in kinds[kinds.index("stop"):]:
                self.last[obj.ref] = obj.steps[-1]
        self.busy: set[Ref] = set()
        self.held: deque[str] = deque()

    def admit(self, step: Step) -> bool:
        if not self.limit or step.kind != "stop" or step.ref not in self.last:
            return True
        if len(self.busy) < self.limit:
            self.busy.add(step.ref)
            return True
        self.held.append(step.id)
        return False

    def finished(self, step: Step, succeeded: bool) -> list[str]:
        """Steps ready again because this one ended a restart."""
        if step.ref not in self.busy or (succeeded and self.last[step.ref] != step.id):
            return []
        self.busy.discard(step.ref)
        free = self.limit - len(self.busy)
        again = [self.held.popleft() for _ in range(min(free, len(self.held)))]
        return again


def _run_step(step: Step, hosts: Hosts, journal: Journal, retry: Retry, stop: threading.Event,
              plan_id: str) -> StepOutcome:
    """One step with its retries. Its first start and its end are recorded by the caller."""
    driver = hosts.drivers[step.driver]
    started = time.monotonic()
    delay = retry.first_delay
    attempt = 0
    while True:
        attempt += 1
        if attempt > 1:
            _record_start(step, attempt, journal, get_logger(plan_id=plan_id), plan_id)
        t0 = time.monotonic()
        try:
            if step.kind == "verify":
                return _verify(step, driver, stop, started)
            driver.execute(step)
        except TransientError as exc:
            if attempt < retry.attempts and not stop.is_set():
                wait_for = min(max(delay, exc.delay), retry.max_delay)
                journal.write("step.retrying", plan_id=plan_id, step=step.id, attempt=attempt,
                              error=str(exc), delay=wait_for)
                get_logger(plan_id=plan_id).warning("step.retrying", **_where(step),
                                                    attempt=attempt, error=str(exc),
                                                    delay=wait_for)
                stop.wait(wait_for)
                delay *= 2
                continue
            return _failed(step, exc, attempt, started)
        except Exception as exc:
            return _failed(step, exc, attempt, started)
        return StepOutcome(step.id, "succeeded", attempt, round(time.monotonic() - started, 4),
                           last=round(time.monotonic() - t0, 4))


def _verify(step: Step, driver: Driver, stop: threading.Event, started: float) -> StepOutcome:
    """A health check; when it fails, the guest goes back to its last good spec (stop,
    update, start) or, new, is stopped, and the step fails as rolled back."""
    why = health.check(step, driver, stop)
    if why is None:
        return StepOutcome(step.id, "succeeded", 1, round(time.monotonic() - started, 4))
    back = [Step(f"{step.ref}:rollback-stop", "stop", step.ref, step.type, driver=step.driver,
                 reason="health check failed")]
    if step.previous is not None:
        back += [Step(f"{step.ref}:rollback-update", "update", step.ref, step.type,
                      spec=step.previous, source=step.source,
                      fields=tuple(sorted({*flatten(step.previous), *flatten(step.spec or {})})),
                      driver=step.driver, reason="health check failed"),
                 Step(f"{step.ref}:rollback-start", "start", step.ref, step.type,
                      driver=step.driver, reason="health check failed")]
    try:
        for undo in back:
            driver.execute(undo)
    except Exception as exc:  # the rollback itself failed: say both
        return StepOutcome(step.id, "failed", 1, round(time.monotonic() - started, 4),
                           f"{why}; rollback failed at {undo.kind}: {exc}")
    done = "rolled back to the last good spec" if step.previous is not None else \
        "stopped (a new guest has no earlier spec)"
    return StepOutcome(step.id, "failed", 1, round(time.monotonic() - started, 4),
                       f"{why}; {done}", rolled_back=True)


def _failed(step: Step, exc: Exception, attempt: int, started: float) -> StepOutcome:
    duration = round(time.monotonic() - started, 4)
    return StepOutcome(step.id, "failed", attempt, duration, f"{type(exc).__name__}: {exc}")


def _where(step: Step) -> dict[str, str]:
    """The fields that name a step in its log events."""
    return {"step": step.id, "object": str(step.ref), "kind": step.kind}


def _record_start(step: Step, attempt: int, journal: Journal, log: Any, plan_id: str) -> None:
    journal.write("step.started", plan_id=plan_id, step=step.id, attempt=attempt)
    log.info("step.started", **_where(step), attempt=attempt, reason=step.reason)


def _record_end(outcome: StepOutcome, journal: Journal, log: Any, step: Step,
                plan_id: str) -> None:
    where = _where(step)
    if outcome.result == "succeeded":
        journal.write("step.succeeded", plan_id=plan_id, step=step.id,
                      attempt=outcome.attempts, duration=outcome.last)
        log.info("step.succeeded", **where, attempt=outcome.attempts, duration=outcome.last)
    else:
        journal.write("step.failed", plan_id=plan_id, step=step.id, attempt=outcome.attempts,
                      error=outcome.error, duration=outcome.duration)
        log.error("step.failed", **where, attempt=outcome.attempts, error=outcome.error,
                  duration=outcome.duration)
