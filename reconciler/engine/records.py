"""The journal's `plan` record, streamed for big plans.

`Journal.write("plan", **plan.to_json())` builds the whole plan as one JSON document in memory
before writing its line: for the first pass over 10,000 new objects that is ~50 MB at once
(the agent's peak RSS). `write_plan` writes the same line piece by piece: one object or step
at a time, under the journal's lock. Small plans take the ordinary path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler.engine.journal import Journal
from reconciler.engine.plan import Plan

STREAM_ABOVE = 500  # objects + steps


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def write_plan(journal: Journal, plan: Plan, stream_above: int = STREAM_ABOVE) -> None:
    if len(plan.objects) + len(plan.steps) <= stream_above:
        journal.write("plan", **plan.to_json())
        return
    skeleton = replace(plan, objects=(), steps=()).to_json()
    skeleton["summary"] = plan.summary()
    skeleton["unchanged"] = sorted(str(o.ref) for o in plan.objects if o.action == "noop")
    record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": "plan",
              **skeleton}
    lazy: dict[str, Iterable[dict[str, Any]]] = {
        "objects": (o.to_json() for o in plan.objects if o.action != "noop"),
        "steps": (s.to_json() for s in plan.steps)}
    with journal.writing() as put:
        put("{")
        for index, (key, value) in enumerate(record.items()):
            put(("," if index else "") + _dumps(key) + ":")
            if key in lazy:
                put("[")
                for n, item in enumerate(lazy[key]):
                    put(("," if n else "") + _dumps(item))
                put("]")
            else:
                put(_dumps(value))
        put("}\n")
