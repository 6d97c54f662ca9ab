"""A plan's steps as a graph: one box per object, its steps inside, an arrow where a step waits
for another (`Step.deps`). Mermaid for pull-request comments (GitHub and GitLab draw it), DOT
for Graphviz; `reconciler graph` prints either, the Markdown plan embeds the Mermaid one.

Every label comes from specs or a saved plan, so it is hostile input: node ids are ours
(`s0`, `o0`), and a label is printable text with everything outside a small safe set written
as a Mermaid entity (`#60;`) or, in DOT, inside a quoted string with its quote and backslash
escaped. No label can end a string, start a statement, close a Markdown fence or carry HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.text import printable

if TYPE_CHECKING:
    from reconciler.engine.plan import Plan
    from reconciler.model.fields import Ref

# Mermaid's defaults: past either, mermaid.parse refuses the diagram and GitHub shows an error
MERMAID_MAX_EDGES = 500
MERMAID_MAX_TEXT = 50_000

# fill and stroke per action, the colours of the text plan's symbols
_STYLE = {"create": ("#e6ffec", "#1a7f37"), "update": ("#fff8c5", "#9a6700"),
          "replace": ("#fbefff", "#8250df"), "remove": ("#ffebe9", "#cf222e")}
_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 ./:_()+=,-]")


@dataclass(frozen=True)
class _Object:
    """One object's box: its title and its steps (node id, step kind)."""

    key: str
    title: str
    action: str
    steps: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Graph:
    objects: tuple[_Object, ...]
    edges: tuple[tuple[str, str], ...]  # (from, to): `to` waits for `from`


def _graph(plan: Plan) -> _Graph:
    """Boxes in the order of the plan's steps (dependencies first), arrows likewise."""
    node = {step.id: f"s{n}" for n, step in enumerate(plan.steps)}
    actions = {obj.ref: obj.action for obj in plan.objects}
    by_object: dict[Ref, list[tuple[str, str]]] = {}
    for step in plan.steps:
        by_object.setdefault(step.ref, []).append((node[step.id], step.kind))
    # a saved plan's step may name an object it does not list: drawn, and said so
    objects = tuple(_Object(f"o{n}", f"{ref} ({actions.get(ref, 'not listed')})",
                            actions.get(ref, ""), tuple(steps))
                    for n, (ref, steps) in enumerate(by_object.items()))
    edges = tuple((node[dep], node[step.id]) for step in plan.steps for dep in step.deps
                  if dep in node)
    return _Graph(objects, edges)


def mermaid_label(text: object) -> str:
    """`text` as a quoted Mermaid label: printable, and every character outside a small safe
    set written as an entity, so quotes, brackets, backticks, `#`, `;`, `<` and `%` are
    only ever text."""
    safe = printable(text)
    return '"' + "".join(c if _MERMAID_SAFE.fullmatch(c) else f"#{ord(c)};" for c in safe) + '"'


def dot_label(text: object) -> str:
    """`text` as a quoted DOT string: printable, its backslashes doubled (Graphviz reads
    `\\N`, `\\G`, `\\n` in labels), `&` as `&amp;` (it reads entities too) and its quotes
    escaped."""
    value = printable(text).replace("\\", "\\\\").replace("&", "&amp;")
    return '"' + value.replace('"', '\\"') + '"'


def mermaid(plan: Plan) -> str:
    """The steps as a Mermaid flowchart, left to right."""
    g = _graph(plan)
    out = ["flowchart LR"]
    for obj in g.objects:
        out.append(f"  subgraph {obj.key} [{mermaid_label(obj.title)}]")
        out += [f"    {sid}[{mermaid_label(kind)}]" for sid, kind in obj.steps]
        out.append("  end")
    out += [f"  {a} --> {b}" for a, b in g.edges]
    for action, (fill, stroke) in _STYLE.items():
        members = [sid for obj in g.objects if obj.action == action for sid, _ in obj.steps]
        if members:
            out.append(f"  classDef {action} fill:{fill},stroke:{stroke},color:#1f2328")
            out.append(f"  class {','.join(members)} {action}")
    return "\n".join(out) + "\n"


def dot(plan: Plan) -> str:
    """The steps as a Graphviz digraph (`dot -Tsvg`), left to right."""
    g = _graph(plan)
    out = ["digraph plan {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
           'fillcolor="#ffffff"];']
    for n, obj in enumerate(g.objects):
        fill, stroke = _STYLE.get(obj.action, ("#ffffff", "#57606a"))
        out.append(f"  subgraph cluster_{n} {{")
        out.append(f'    label={dot_label(obj.title)}; color="{stroke}";')
        out += [f'    {sid} [label={dot_label(kind)}, fillcolor="{fill}", color="{stroke}"];'
                for sid, kind in obj.steps]
        out.append("  }")
    out += [f"  {a} -> {b};" for a, b in g.edges]
    out.append("}")
    return "\n".join(out) + "\n"


def mermaid_too_big(text: str) -> str | None:
    """Why Mermaid would refuse `text` (a graph from `mermaid`) with its default limits, or
    None. Labels never hold `>`, so each arrow is one ` --> `."""
    edges = text.count(" --> ")
    if edges > MERMAID_MAX_EDGES:
        return f"{edges} arrows, over Mermaid's limit of {MERMAID_MAX_EDGES}"
    if len(text) > MERMAID_MAX_TEXT:
        return f"{len(text)} characters, over Mermaid's limit of {MERMAID_MAX_TEXT}"
    return None
