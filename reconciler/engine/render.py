"""A plan shown to people (text, coloured at a terminal), to machines (JSON) and to pull
requests (Markdown). The human plan is the product's face: every change says why.

Each form is a review document: its header names the host, the drivers and the spec commit;
spec files that did not load are listed with their line and the objects they hold; a create
shows every value it sets, an update each field's old and new value, and a field changed on
the host behind our back says so. Values are shown as the model keeps them: sizes carry their
unit (`memory: 512` in a spec is `512KiB`), secret values are digests. Markdown adds the steps'
graph (`graph.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from reconciler.engine import graph
from reconciler.engine.diff import FieldChange
from reconciler.engine.plan import ObjectPlan, Plan
from reconciler.model.fields import Ref, conceal, flatten
from reconciler.text import printable

Format = Literal["text", "json", "markdown"]
FORMATS: tuple[Format, ...] = ("text", "json", "markdown")

_SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "remove": "-", "held": "!",
           "refused": "!", "waiting": "~", "pending": "~", "rolled_back": "!"}
_COLOR = {"create": "32", "update": "33", "replace": "35", "remove": "31", "held": "36",
          "refused": "31", "waiting": "36", "pending": "36", "rolled_back": "31"}
_DRIFT = " (drift on host)"
_MAX_VALUE = 200  # characters of one value shown; JSON carries it whole
# Bare numbers whose unit the field name does not say (sizes carry theirs: `512KiB`).
_UNITS = {"cpu.limit": "% of one CPU", "cpu.period": "µs", "cpu.quota": "µs",
          "quota.time": "s"}
# what a create's values leave out: the object line says them
_IDENTITY = frozenset({"name", "type", "kind"})
_OPEN_DETAILS = 150  # Markdown details longer than this many lines start folded


def render(plan: Plan, fmt: Format, color: bool = False) -> str:
    """`plan` in one of `FORMATS` (what `plan --format` and `show PLANFILE` print)."""
    if fmt == "json":
        return as_json(plan)
    if fmt == "markdown":
        return markdown(plan)
    return text(plan, color=color)


def _symbol(obj: ObjectPlan) -> str:
    return _SYMBOL.get(obj.action, "?")  # a saved plan may say anything


def label(obj: ObjectPlan) -> str:
    if obj.action == "update":
        return f"update ({obj.update})"
    if obj.action == "refused" and obj.update == "recreate":
        return "replace refused"
    if obj.action == "waiting":
        return f"{'replace' if obj.update == 'recreate' else 'restart'} waiting for its window"
    if obj.action == "pending":
        return "restart pending"
    return obj.action.replace("_", " ")


# ---------------------------------------------------------------------- shared content

def heading(plan: Plan) -> list[tuple[str, str]]:
    """(name, value) pairs naming what was planned: host, drivers, spec paths, commit."""
    out = []
    if plan.host:
        out.append(("host", plan.host))
    drivers = plan.context.get("drivers")
    if drivers:
        listed = drivers if isinstance(drivers, list | tuple) else [drivers]
        out.append(("drivers", ", ".join(map(str, listed))))
    if plan.roots:
        out.append(("specs", ", ".join(plan.roots)))
    commit = plan.context.get("commit")
    if commit:
        of = plan.context.get("commit_of")
        out.append(("commit", f"{commit} ({of})" if of else str(commit)))
    return [(name, printable(value)) for name, value in out]


def _value(value: Any, field: str = "") -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False) \
        if not isinstance(value, str) else value
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE - 3] + "..."
    unit = _UNITS.get(field)
    if unit and isinstance(value, int) and not isinstance(value, bool):
        text += f" ({unit})"
    return printable(text)


def _change(change: FieldChange) -> tuple[str, str]:
    """Old and new value as shown: secrets as digests, long values cut, escaped."""
    return (_value(conceal(change.field, change.old), change.field),
            _value(conceal(change.field, change.new), change.field))


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """A value as `field: value` lines: mappings and lists of mappings one line per entry
    (`interfaces[0].ip`), so no value hides inside a long one."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(f"{name}.{key}", inner)
    elif isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        for n, inner in enumerate(value):
            yield from _leaves(f"{name}[{n}]", inner)
    else:
        yield name, value


def _create_specs(plan: Plan) -> dict[Ref, dict[str, Any]]:
    """The spec each object's steps carry (its define step's, else provision's): what a
    create will set. Taken from the steps, the part apply runs, so a saved plan edited by hand
    cannot show one value and set another."""
    out: dict[Ref, dict[str, Any]] = {}
    for step in plan.steps:
        if step.spec is not None and (step.kind == "define" or step.ref not in out):
            out[step.ref] = step.spec
    return out


def values(spec: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """Every value a create sets, flattened, secrets as digests (raw, for JSON)."""
    out: list[tuple[str, Any]] = []
    for field, value in flatten(spec or {}).items():
        if field not in _IDENTITY:
            out += _leaves(field, conceal(field, value))
    return out


def _shown_values(spec: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(printable(field), _value(value, field)) for field, value in values(spec)]


def _details(obj: ObjectPlan) -> list[tuple[str, str]]:
    """(label, text) lines under an object: what refused it, what it erases, notes."""
    out = [("refused", str(r)) for r in obj.refusals]
    out += [("erases", path) for path in obj.erases]
    said = {text for _, text in out}
    out += [("note", note) for note in obj.notes if note not in said]
    return [(name, printable(line)) for name, line in out]


def _held_files(plan: Plan) -> list[tuple[str, list[tuple[str, str]], list[str]]]:
    """(file, its errors as (`FILE:LINE`, why), the objects it holds) per file that did not
    load, then missing paths and errors that name no file; printable."""
    errors: dict[str, list[tuple[str, str]]] = {}
    for err in plan.errors:
        errors.setdefault(err.file, []).append((printable(err.where), printable(err.message)))
    held: dict[str, list[str]] = {}
    for obj in plan.objects:
        if obj.action == "held":
            held.setdefault(obj.source or "", []).append(str(obj.ref))
    files = [*plan.failed_files, *(f for f in errors if f not in plan.failed_files)]
    return [(f, errors.get(f) or [(printable(f), "did not load")], held.get(f, []))
            for f in files]


def _nothing_to_do(plan: Plan) -> str:
    count = len({*plan.failed_files, *(e.file for e in plan.errors)})
    if count:
        return (f"No changes planned, but {count} spec file{'s' * (count != 1)} failed to "
                "load: what they describe is held as it is until they load (see the errors).")
    return f"No changes. The host matches the specs ({len(plan.objects)} objects)."


def _summary_line(plan: Plan) -> str:
    s = plan.summary()
    live = sum(1 for o in plan.objects if o.action == "update" and o.update == "live")
    restart = sum(1 for o in plan.objects if o.action == "update" and o.update == "restart")
    deferred = sum(1 for o in plan.objects if o.action == "update" and o.update == "deferred")
    later = ", ".join(f"{count} {what}" for count, what in (
        (deferred, "written for a later restart"), (s["waiting"], "waiting for a window"),
        (s["pending"], "pending restart"), (s["rolled_back"], "rolled back")) if count)
    return (f"{s['create']} to create, {live} to update live, {restart} to update with restart, "
            f"{s['replace']} to replace, {s['remove']} to remove, {s['held']} held, "
            f"{s['refused']} refused" + (f"; {later}" if later else ""))


# ---------------------------------------------------------------------- text

def text(plan: Plan, color: bool = False, header: str | None = None) -> str:
    def paint(code: str, s: str) -> str:
        return f"\033[{code}m{s}\033[0m" if color else s

    lines = []
    if header:
        lines.append(header)
    changed = [o for o in plan.objects if o.action != "noop"]
    problems = []
    for _, errors, held in _held_files(plan):
        problems += [paint("31", f"! {where}: error: {why}") for where, why in errors]
        problems += [f"      holds {ref} as it is on the host" for ref in held]
    if not changed and not plan.notes:
        lines.append(_nothing_to_do(plan) + f" [plan {plan.id}]")
        return "\n".join(lines + problems) + "\n"
    lines.append(f"Plan {plan.id}: {_summary_line(plan)}")
    about = "  ".join(f"{name}: {value}" for name, value in heading(plan))
    if about:
        lines.append(f"  {about}")
    lines += ["", *problems, *([""] if problems else [])]
    specs = _create_specs(plan)
    for obj in changed:
        head = printable(f"{_symbol(obj)} {obj.ref} ({obj.type}) {label(obj)}")
        lines.append(paint(_COLOR.get(obj.action, "31"), head) +
                     (f"  [{printable(obj.source)}]" if obj.source else ""))
        if obj.action == "create":
            lines += [f"      {field}: {value}" for field, value in
                      _shown_values(specs.get(obj.ref))]
        for change in obj.changes:
            why = _DRIFT if change.origin == "drift" else ""
            cls = "" if obj.action != "update" or change.update == obj.update else \
                f" [{change.update}]"
            old, new = _change(change)
            lines.append(f"      {printable(change.field)}: {old} -> {new}{why}{cls}")
        if obj.steps:
            kinds = [s.rsplit(":", 1)[1] for s in obj.steps]
            lines.append(f"      steps: {printable(' -> '.join(kinds))}")
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


# ---------------------------------------------------------------------- JSON

def as_json(plan: Plan) -> str:
    """The plan as data (`Plan.to_json`, secrets as digests), with what a reviewer reads and a
    program would otherwise work out: each create's `values`, and `held_files` (each file that
    did not load, its errors with their lines, the objects it holds)."""
    data = plan.to_json()
    specs = _create_specs(plan)
    for obj in data["objects"]:
        if obj["action"] == "create":
            ref = Ref(obj["kind"], obj["name"])
            obj["values"] = [{"field": f, "value": v} for f, v in values(specs.get(ref))]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for err in plan.errors:
        by_file.setdefault(err.file, []).append(err.to_json())
    data["held_files"] = [{"file": f, "errors": by_file.get(f, []), "objects": held}
                          for f, _, held in _held_files(plan)]
    return json.dumps(data, indent=2) + "\n"


# ---------------------------------------------------------------------- Markdown

def markdown(plan: Plan) -> str:
    changed = [o for o in plan.objects if o.action != "noop"]
    out = [f"### reconciler plan {_code(plan.id)}", ""]
    about = " · ".join(f"{name} {_code(value)}" for name, value in heading(plan))
    if about:
        out += [about, ""]
    if not changed and not plan.notes:
        out += [md_text(_nothing_to_do(plan)), "", *_md_errors(plan)]
        return "\n".join(out).rstrip("\n") + "\n"
    out += [f"**{_summary_line(plan)}**", ""]
    out += _md_errors(plan)
    specs = _create_specs(plan)
    if changed:
        out += _md_table(changed, specs)
    out += _md_details(changed, specs)
    for note in plan.notes:
        out += ["", f"> :warning: {md_text(note)}"]
    out += _md_graph(plan)
    return "\n".join(out) + "\n"


def _md_errors(plan: Plan) -> list[str]:
    held_files = _held_files(plan)
    count = len(held_files)
    if not count:
        return []
    out = [f"#### :x: {count} spec file{'s' * (count != 1)} did not load", "",
           "What a file that did not load describes is held as it is on the host until it "
           "loads; nothing of it is removed.", ""]
    for _, errors, held in held_files:
        out += [f"- {_code(where)}: {_code(why)}" for where, why in errors]
        if held:
            out.append("  - holds " + ", ".join(_code(ref) for ref in held))
    return [*out, ""]


def _md_table(changed: list[ObjectPlan], specs: dict[Ref, dict[str, Any]]) -> list[str]:
    out = ["| | object | type | action | changes |", "|---|---|---|---|---|"]
    for obj in changed:
        if obj.action == "create":
            what = f"{len(values(specs.get(obj.ref)))} values"
        else:
            what = ", ".join(_cell_code(c.field) + (_DRIFT if c.origin == "drift" else "")
                             for c in obj.changes) or "—"
        out.append(f"| {_symbol(obj)} | {_cell_code(obj.ref)} | "
                   f"{md_text(obj.type)} | {md_text(label(obj))} | {what} |")
    return out


def _md_details(changed: list[ObjectPlan], specs: dict[Ref, dict[str, Any]]) -> list[str]:
    """Every object's values and changes as a diff block: `+` what is set, `-` what goes."""
    body: list[str] = []
    for obj in changed:
        shown = _shown_values(specs.get(obj.ref)) if obj.action == "create" else []
        notes = _details(obj)
        if not (shown or obj.changes or notes):
            continue
        body.append(printable(f"{_symbol(obj)} {obj.ref} {label(obj)}"))
        body += [f"+   {field}: {value}" for field, value in shown]
        for c in obj.changes:
            old, new = _change(c)
            field = printable(c.field)
            body.append(f"-   {field}: {old}{_DRIFT if c.origin == 'drift' else ''}")
            body.append(f"+   {field}: {new}")
        body += [f"#   {name}: {line}" for name, line in notes]
    if not body:
        return []
    fence = _fence(body)
    opened = " open" if len(body) <= _OPEN_DETAILS else ""
    return ["", f"<details{opened}><summary>Values and changes</summary>", "",
            f"{fence}diff", *body, fence, "", "</details>"]


def _md_graph(plan: Plan) -> list[str]:
    if not plan.steps:
        return []
    drawn = graph.mermaid(plan)
    too_big = graph.mermaid_too_big(drawn)
    if too_big:
        return ["", f"Steps: the graph is left out ({md_text(too_big)}); "
                "`reconciler graph` prints it."]
    return ["", "#### Steps and their order", "", "```mermaid", drawn.rstrip("\n"), "```"]


# what can start emphasis, code, a link, an autolink (`://`), HTML, an entity, a heading, a
# mention or a table cell, wherever in a line it stands
_MARKUP = re.compile(r"([\\`*_{}\[\]<>#|~&@]|:(?=//))")


def md_text(text: object) -> str:
    """`text` as Markdown prose that reads as itself: printable, and every character that
    could start markup backslash-escaped (CommonMark shows an escaped punctuation mark as
    itself)."""
    return _MARKUP.sub(r"\\\1", printable(text))


def _code(text: object) -> str:
    """`text` as an inline code span: its fence longer than any run of backticks inside
    (a backslash does not escape in a code span)."""
    value = printable(text)
    run = max((len(m) for m in re.findall(r"`+", value)), default=0)
    tick = "`" * (run + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{tick}{pad}{value}{pad}{tick}"


def _cell_code(text: object) -> str:
    """A code span inside a table cell: GitHub ends the cell at `|` even there."""
    return _code(text).replace("|", "\\|")


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in `lines`, which so cannot close it."""
    run = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, run + 1)
