"""A plan shown to people (text, coloured at a terminal), to machines (JSON) and to pull
requests (Markdown). The human plan is the product's face: every change says why."""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine.plan import ObjectPlan, Plan

_SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "remove": "-", "held": "!",
           "refused": "!"}
_COLOR = {"create": "32", "update": "33", "replace": "35", "remove": "31", "held": "36",
          "refused": "31"}


def label(obj: ObjectPlan) -> str:
    if obj.action == "update":
        return f"update ({obj.update})"
    if obj.action == "refused" and obj.update == "recreate":
        return "replace refused"
    return obj.action


def _value(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value, separators=(", ", ": ")) if not isinstance(value, str) else value
    return text if len(text) <= 70 else text[:67] + "..."


def _summary_line(plan: Plan) -> str:
    s = plan.summary()
    live = sum(1 for o in plan.objects if o.action == "update" and o.update == "live")
    restart = sum(1 for o in plan.objects if o.action == "update" and o.update == "restart")
    return (f"{s['create']} to create, {live} to update live, {restart} to update with restart, "
            f"{s['replace']} to replace, {s['remove']} to remove, {s['held']} held, "
            f"{s['refused']} refused")


def text(plan: Plan, color: bool = False, header: str | None = None) -> str:
    def paint(code: str, s: str) -> str:
        return f"\033[{code}m{s}\033[0m" if color else s

    lines = []
    if header:
        lines.append(header)
    changed = [o for o in plan.objects if o.action != "noop"]
    if not changed and not plan.notes:
        lines.append(f"No changes. The host matches the specs ({len(plan.objects)} objects). "
                     f"[plan {plan.id}]")
        return "\n".join(lines) + "\n"
    lines.append(f"Plan {plan.id}: {_summary_line(plan)}")
    lines.append("")
    for obj in changed:
        head = f"{_SYMBOL[obj.action]} {obj.ref} ({obj.type}) {label(obj)}"
        lines.append(paint(_COLOR[obj.action], head) +
                     (f"  [{obj.source}]" if obj.source else ""))
        for change in obj.changes:
            why = " (drift on host)" if change.origin == "drift" else ""
            cls = "" if obj.action != "update" or change.update == obj.update else \
                f" [{change.update}]"
            lines.append(f"      {change.field}: {_value(change.old)} -> {_value(change.new)}"
                         f"{why}{cls}")
        if obj.steps:
            kinds = [s.rsplit(":", 1)[1] for s in obj.steps]
            lines.append(f"      steps: {' -> '.join(kinds)}")
        for note in obj.notes:
            lines.append(paint("36", f"      note: {note}"))
    if plan.notes:
        lines.append("")
        for note in plan.notes:
            lines.append(paint("31;1", f"! {note}"))
    unchanged = len(plan.objects) - len(changed)
    lines.append("")
    lines.append(f"{len(plan.steps)} steps; {unchanged} objects unchanged.")
    return "\n".join(lines) + "\n"


def as_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2) + "\n"


def markdown(plan: Plan) -> str:
    changed = [o for o in plan.objects if o.action != "noop"]
    out = [f"### reconciler plan `{plan.id}`", ""]
    if not changed and not plan.notes:
        out.append(f"No changes: the host matches the specs ({len(plan.objects)} objects).")
        return "\n".join(out) + "\n"
    out += [f"**{_summary_line(plan)}**", "", "| | object | type | action | changes |",
            "|---|---|---|---|---|"]
    for obj in changed:
        fields = ", ".join(f"`{c.field}`" for c in obj.changes) or "—"
        out.append(f"| {_SYMBOL[obj.action]} | `{obj.ref}` | {obj.type} | {label(obj)} | "
                   f"{fields} |")
    details = [o for o in changed if o.changes or o.notes]
    if details:
        out += ["", "<details><summary>Details</summary>", "", "```diff"]
        for obj in details:
            out.append(f"{_SYMBOL[obj.action]} {obj.ref} {label(obj)}")
            for c in obj.changes:
                out.append(f"-   {c.field}: {_value(c.old)}")
                out.append(f"+   {c.field}: {_value(c.new)}")
            for note in obj.notes:
                out.append(f"#   {note}")
        out += ["```", "", "</details>"]
    for note in plan.notes:
        out += ["", f"> :warning: {note}"]
    return "\n".join(out) + "\n"
