"""The steps' graph (engine/graph.py), judged by the real tools: Mermaid's own parser under
Node and Graphviz's dot. Labels come from specs and saved plans, so hostile ones must come
back from the tools as the very text they were, and never as structure."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, cast

import pytest

from reconciler.drivers.base import Step, StepKind
from reconciler.engine import graph, render
from reconciler.engine.plan import ObjectPlan, Plan
from reconciler.model.fields import Ref
from reconciler.text import printable
from tests.mermaid import oracles

HOSTILE = [
    'x"] --> evil["pwned',
    "a]:::create\nclick s0 call alert(1)",
    "</code><script>alert(1)</script><img src=x onerror=alert(1)>",
    "```\n# heading\n```",
    '%%{init: {"securityLevel": "loose"}}%%',
    "#quot;&amp;#60; \\N \\G \\n ;end",
    "\u202eevil\x1b[2J |pipe| `tick`",
    "end",
]


def chain_plan(names: list[str], action: str = "create") -> Plan:
    """Each name a created object (define -> start), each waiting for the one before."""
    objects, steps = [], []
    previous: tuple[str, ...] = ()
    for name in names:
        ref = Ref("Domain", name)
        kinds: list[StepKind] = ["define", "start"]
        ids = [f"{ref}:{kind}" for kind in kinds]
        steps.append(Step(ids[0], kinds[0], ref, "lxc", driver="sim", deps=previous))
        steps.append(Step(ids[1], kinds[1], ref, "lxc", driver="sim", deps=(ids[0],)))
        objects.append(ObjectPlan(ref, "lxc", cast(Any, action), "sim", steps=tuple(ids)))
        previous = (ids[1],)
    return Plan(id="abc", created="2024-01-01T00:00:00+00:00", spec_hash="0", roots=(),
                objects=tuple(objects), steps=tuple(steps))


def expected_edges(plan: Plan) -> list[list[str]]:
    node = {s.id: f"s{n}" for n, s in enumerate(plan.steps)}
    return [[node[d], node[s.id]] for s in plan.steps for d in s.deps]


def test_mermaid_graph_is_accepted_and_says_what_the_plan_says() -> None:
    plan = chain_plan(["net", "web", "db"])
    parsed = oracles.mermaid_parsed(graph.mermaid(plan))
    assert parsed["type"] == "flowchart-v2"
    assert [n["label"] for n in parsed["nodes"]] == ["define", "start"] * 3
    assert parsed["edges"] == expected_edges(plan)
    assert [s["title"] for s in parsed["subgraphs"]] == \
        ["domain/net (create)", "domain/web (create)", "domain/db (create)"]
    assert [s["nodes"] for s in parsed["subgraphs"]] == [["s0", "s1"], ["s2", "s3"], ["s4", "s5"]]


def test_hostile_labels_stay_text_in_mermaid() -> None:
    plan = chain_plan(HOSTILE, action="<b>create</b>\"]")
    text = graph.mermaid(plan)
    assert "`" not in text and "<" not in text and "%%" not in text
    parsed = oracles.mermaid_parsed(text)
    assert [n["id"] for n in parsed["nodes"]] == [f"s{n}" for n in range(2 * len(HOSTILE))]
    assert parsed["edges"] == expected_edges(plan)
    assert [s["title"] for s in parsed["subgraphs"]] == \
        [printable(f"domain/{name} (<b>create</b>\"])") for name in HOSTILE]


def test_the_checker_rejects_a_broken_graph_and_exposes_an_unescaped_label() -> None:
    text = graph.mermaid(chain_plan(["web"]))
    broken = text.replace('["define"]', '["define]', 1)
    rejected = oracles.mermaid(broken)
    assert rejected.returncode == 1 and "Parse error" in rejected.stderr
    # a label written naively lets a name add a node: the checker shows it
    naive = f'flowchart LR\n  s0["{HOSTILE[0]}"]\n'
    parsed = oracles.mermaid_parsed(naive)
    assert [n["id"] for n in parsed["nodes"]] != ["s0"]


def test_a_graph_over_mermaids_limits_is_left_out_of_markdown() -> None:
    plan = chain_plan([f"g{n}" for n in range(260)])  # 519 arrows
    text = graph.mermaid(plan)
    assert graph.mermaid_too_big(text) == "519 arrows, over Mermaid's limit of 500"
    assert oracles.mermaid(text).returncode == 1  # Mermaid itself refuses it
    shown = render.markdown(plan)
    assert "```mermaid" not in shown
    assert "graph is left out (519 arrows, over Mermaid's limit of 500)" in shown
    assert graph.mermaid_too_big(graph.mermaid(chain_plan(["a", "b"]))) is None


def test_markdown_embeds_the_same_graph() -> None:
    plan = chain_plan(["web", "db"])
    shown = render.markdown(plan)
    block = re.search(r"```mermaid\n(.*?)```", shown, re.S)
    assert block is not None and block.group(1) == graph.mermaid(plan)


def test_a_plan_without_steps_has_an_empty_graph() -> None:
    plan = chain_plan([])
    assert oracles.mermaid_parsed(graph.mermaid(plan))["nodes"] == []
    assert oracles.dot(graph.dot(plan)).returncode == 0
    assert "```mermaid" not in render.markdown(plan)


def _dot_drawn(text: str) -> list[str]:
    done = oracles.dot(text, "svg")
    assert done.returncode == 0, done.stderr
    svg = ET.fromstring(done.stdout)
    return [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_dot_graph_is_accepted_and_says_what_the_plan_says() -> None:
    plan = chain_plan(["net", "web"])
    done = oracles.dot(graph.dot(plan))
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    names = {o["_gvid"]: o["name"] for o in parsed["objects"]}
    edges = [[names[e["tail"]], names[e["head"]]] for e in parsed["edges"]]
    assert edges == expected_edges(plan)
    clusters = [o["label"] for o in parsed["objects"] if o["name"].startswith("cluster_")]
    assert clusters == ["domain/net (create)", "domain/web (create)"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_labels_stay_text_in_dot(name: str) -> None:
    plan = chain_plan([name, "b"])
    drawn = _dot_drawn(graph.dot(plan))
    # what Graphviz draws is the label as it was (printable), and only the steps' nodes
    assert drawn.count(printable(f"domain/{name} (create)")) == 1
    assert sorted(t for t in drawn if t in ("define", "start")) == \
        ["define", "define", "start", "start"]
    assert len(drawn) == 6


def test_dot_rejects_a_broken_graph() -> None:
    broken = graph.dot(chain_plan(["web"])).replace('label="define"', 'label="define', 1)
    assert oracles.dot(broken).returncode != 0
