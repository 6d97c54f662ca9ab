"""What the agent knows after each pass: the state of every desired object (in sync, failed and
backing off, held, refused, pending), the record of the last pass, and the metrics that count
them. The status file, /healthz and /metrics read it from here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reconciler.engine.apply import ApplyReport
from reconciler.engine.plan import Plan
from reconciler.model.fields import Ref

from .backoff import Backoff
from .metrics import OBJECT_STATES, Metrics
from .status import iso


@dataclass(frozen=True)
class ObjState:
    state: str
    error: str | None = None
    note: str | None = None
    restart_pending: bool = False
    source: str | None = None

    def to_json(self, failing: Any = None) -> Any:
        if self.state == "in_sync" and not self.restart_pending:
            return "in_sync"
        out: dict[str, Any] = {"state": self.state}
        for key, value in (("error", self.error), ("note", self.note),
                           ("source", self.source)):
            if value:
                out[key] = value
        if self.restart_pending:
            out["restart_pending"] = True
        if failing is not None:
            out["failures"] = failing.failures
            out["retry_at"] = failing.retry_at
        return out


IN_SYNC = ObjState("in_sync")
_LATER = {"waiting": "waiting", "pending": "deferred", "rolled_back": "rolled_back"}


class Accounting:
    def __init__(self, metrics: Metrics, backoff: Backoff, log: Any) -> None:
        self.metrics, self.backoff, self.log = metrics, backoff, log
        self.objects: dict[Ref, ObjState] = {}
        self._objects_json: dict[str, Any] = {}
        self.last_pass: dict[str, Any] | None = None
        self.last_success: float | None = None
        self.last_ok: bool | None = None

    def account(self, plan: Plan, report: ApplyReport | None, full: bool,
                now: float) -> set[Ref]:
        """Per-object state, backoff and metrics from a plan and how its apply went; returns
        the objects a step ran on (their observed state is stale)."""
        kinds = {s.id: s.kind for s in plan.steps}
        outcomes = report.outcomes if report else {}
        for sid, outcome in outcomes.items():
            if outcome.error != "object refused":
                self.metrics.steps.labels(kinds.get(sid, "?"), outcome.result).inc()
        touched = {s.ref for s in plan.steps if s.id in outcomes and
                   outcomes[s.id].attempts > 0}
        blocked = self.backoff.blocked(now)
        states: dict[Ref, ObjState] = {} if full else self.objects
        for obj in plan.objects:
            results = [outcomes[s] for s in obj.steps if s in outcomes]
            restart = obj.update in ("restart", "recreate") and obj.action in ("update",
                                                                               "replace")
            if obj.action == "held":
                states[obj.ref] = ObjState("held", note=obj.notes[0] if obj.notes else None,
                                           source=obj.source)
                continue
            if obj.action == "refused":
                states[obj.ref] = ObjState("refused", note="; ".join(map(str, obj.refusals))
                                           or None, source=obj.source)
                continue
            if obj.action in ("waiting", "pending", "rolled_back"):
                # a restart waiting for its window, a change written for the next boot, a
                # change undone by its health check: nothing failed, nothing to retry
                states[obj.ref] = ObjState(_LATER[obj.action], note="; ".join(obj.notes) or None,
                                           source=obj.source)
                continue
            verify = next((o for o in results if o.rolled_back), None)
            if verify is not None:
                states[obj.ref] = ObjState("rolled_back", error=verify.error, source=obj.source)
                continue
            failed = [o for o in results if o.result == "failed"]
            if failed:
                error = failed[0].error or "failed"
                delay = self.backoff.failed(obj.ref, now, error)
                self.metrics.failures.inc()
                self.log.warning("object.backoff", object=str(obj.ref), error=error,
                                 failures=self.backoff.objects[obj.ref].failures,
                                 retry_in=round(delay, 2))
                states[obj.ref] = ObjState("failed", error=error, restart_pending=restart,
                                           source=obj.source)
            elif obj.ref in blocked and any(o.result == "skipped" for o in results):
                previous = self.objects.get(obj.ref)
                states[obj.ref] = previous if previous and previous.state == "failed" else \
                    ObjState("failed", error="in backoff", source=obj.source)
            elif any(o.result == "skipped" for o in results) or (obj.steps and not results):
                states[obj.ref] = ObjState("pending", note="not applied yet (interrupted or "
                                           "waiting for a dependency)", restart_pending=restart,
                                           source=obj.source)
            else:
                self.backoff.succeeded(obj.ref)
                if obj.action == "remove":
                    states.pop(obj.ref, None)
                elif obj.pending:
                    states[obj.ref] = ObjState("deferred", note="; ".join(obj.notes) or None,
                                               source=obj.source)
                else:
                    states[obj.ref] = IN_SYNC
        if full:
            for ref in list(self.backoff.objects):
                if ref not in states:
                    self.backoff.forget(ref)
            self._objects_json = {str(r): st.to_json() for r, st in sorted(states.items())}
        else:
            for obj in plan.objects:
                st = states.get(obj.ref)
                if st is None:
                    self._objects_json.pop(str(obj.ref), None)
                else:
                    self._objects_json[str(obj.ref)] = st.to_json()
        self.objects = states
        return touched

    def finish(self, plan: Plan | None, report: ApplyReport | None, *, trigger: str,
               scope: str, duration: float, wall: float, result: str | None = None,
               error: str | None = None) -> dict[str, Any]:
        """The record of a finished pass (also when it crashed: `result`, `error`)."""
        counts = report.counts() if report else {"succeeded": 0, "failed": 0, "skipped": 0}
        notes = list(plan.notes) if plan else []
        if result is None:
            if report is not None and report.interrupted:
                result = "interrupted"
            elif counts["failed"] or counts["skipped"]:
                result = "failed"
            elif plan is not None and plan.breaker:
                result = "refused"
            else:
                result = "succeeded"
        if error:
            notes.append(error)
        ok = result == "succeeded"
        self.last_ok = ok
        finished = time.time()
        if ok:
            self.last_success = finished
            self.metrics.last_success.set(finished)
        self.metrics.passes.labels(trigger, result).inc()
        self.metrics.pass_duration.observe(duration)
        self.metrics.last_pass.set(finished)
        self.metrics.last_pass_ok.set(1 if ok else 0)
        self.last_pass = {"plan_id": plan.id if plan else None, "trigger": trigger,
                          "scope": scope, "started": iso(wall), "finished": iso(finished),
                          "duration": round(duration, 4), "result": result, "steps": counts,
                          "summary": plan.summary() if plan else {}, "notes": notes,
                          "commit": plan.context.get("commit") if plan else None}
        return self.last_pass

    def status_objects(self, clock_now: float) -> tuple[dict[str, Any], dict[str, int],
                                                        list[str]]:
        """(objects as the status file shows them, counts per state, pending restarts);
        sets the per-state gauges."""
        counts = dict.fromkeys(OBJECT_STATES, 0)
        restarts = []
        for ref, st in self.objects.items():
            counts[st.state] = counts.get(st.state, 0) + 1
            if st.restart_pending:
                restarts.append(str(ref))
        objects = self._objects_json  # kept up to date per pass; only backoff times added
        if self.backoff.objects:
            objects = dict(objects)
            for ref, failing in self.backoff.objects.items():
                known = self.objects.get(ref)
                entry = known.to_json(failing) if known is not None else None
                if isinstance(entry, dict):
                    entry["retry_at"] = iso(time.time() + failing.retry_at - clock_now)
                    objects[str(ref)] = entry
        for state, n in counts.items():
            self.metrics.objects.labels(state).set(n)
        self.metrics.deferred.show({str(r) for r, st in self.objects.items()
                                    if st.state == "deferred"})
        return objects, counts, sorted(restarts)
