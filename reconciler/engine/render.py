"""A plan shown to people (text, coloured at a terminal), to machines (JSON) and to pull
requests (Markdown). The human plan is the product's face: every change says why."""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine.diff import FieldChange
from reconciler.engine.plan import ObjectPlan, Plan
from reconciler.model.fields import conceal
from reconciler.text import markdown_cell, printable

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
    return printable(text if len(text) <= 70 else text[:67] + "...")


def _change(change: FieldChange) -> tuple[str, str]:
    """Old and new value as shown: secrets as digests, long values cut, escaped."""
    return (_value(conceal(change.field, change.old)),
            _value(conceal(change.field, change.new)))


def _details(obj: ObjectPlan) -> list[tuple[str, str]]:
    """(label, text) lines under an object: what refused it, what it erases, notes."""
    out = [("refused", str(r)) for r in obj.refusals]
    out += [("erases", path) for path in obj.erases]
    said = {text for _, text in out}
    out += [("note", note) for note in obj.notes if note not in said]
    return [(label, printable(text)) for label, text in out]


def _nothing_to_do(plan: Plan) -> str:
    if plan.failed_files:
        count = len(plan.failed_files)
        return (f"No changes planned, but {count} spec file{'s' * (count != 1)} failed to "
                "load: what they describe is held as it is until they load (see the errors).")
    return f"No changes. The host matches the specs ({len(plan.objects)} objects)."


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
        lines.append(_nothing_to_do(plan) + f" [plan {plan.id}]")
        return "\n".join(lines) + "\n"
    lines.append(f"Plan {plan.id}: {_summary_line(plan)}")
    lines.append("")
    for obj in changed:
        head = f"{_SYMBOL[obj.action]} {obj.ref} ({obj.type}) {label(obj)}"
        lines.append(paint(_COLOR[obj.action], head) +
                     (f"  [{printable(obj.source)}]" if obj.source else ""))
        for change in obj.changes:
            why = " (drift on host)" if change.origin == "drift" else ""
            cls = "" if obj.action != "update" or change.update == obj.update else \
                f" [{change.update}]"
            old, new = _change(change)
            lines.append(f"      {change.field}: {old} -> {new}{why}{cls}")
        if obj.steps:
            kinds = [s.rsplit(":", 1)[1] for s in obj.steps]
            lines.append(f"      steps: {' -> '.join(kinds)}")
        for name, text_line in _details(obj):
            code = "31" if name == "refused" else "35" if name == "erases" else "36"
            lines.append(paint(code, f"      {name}: {text_line}"))
    if plan.notes:
        lines.append("")
        for note in plan.notes:
            lines.append(paint("31;1", f"! {printable(note)}"))
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
        out.append(markdown_cell(_nothing_to_do(plan)))
        return "\n".join(out) + "\n"
    out += [f"**{_summary_line(plan)}**", "", "| | object | type | action | changes |",
            "|---|---|---|---|---|"]
    for obj in changed:
        fields = ", ".join(f"`{markdown_cell(c.field)}`" for c in obj.changes) or "—"
        out.append(f"| {_SYMBOL[obj.action]} | `{markdown_cell(obj.ref)}` | "
                   f"{markdown_cell(obj.type)} | {label(obj)} | {fields} |")
    details = [o for o in changed if o.changes or _details(o)]
    if details:
        out += ["", "<details><summary>Details</summary>", "", "```diff"]
        for obj in details:
            out.append(f"{_SYMBOL[obj.action]} {obj.ref} {label(obj)}")
            for c in obj.changes:
                old, new = _change(c)
                out.append(f"-   {c.field}: {_fenced(old)}")
                out.append(f"+   {c.field}: {_fenced(new)}")
            for name, text_line in _details(obj):
                out.append(f"#   {name}: {_fenced(text_line)}")
        out += ["```", "", "</details>"]
    for note in plan.notes:
        out += ["", f"> :warning: {markdown_cell(note)}"]
    return "\n".join(out) + "\n"


def _fenced(text: str) -> str:
    """Text inside a fenced block: a run of backticks would close the fence."""
    return text.replace("`", "'")
