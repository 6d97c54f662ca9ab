"""The plan as a review document, through the real CLI on `sim`: a directory with one broken
file, one create, one live update and one field drifted on the host. Every format shows all
four, with the values; the Markdown one is what a pull request shows, so it is parsed as
CommonMark and its Mermaid block is given to Mermaid's own parser."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.drivers.sim import SimDriver
from reconciler.model.fields import Ref, digest
from tests.conformance.harness import UNPRIVILEGED
from tests.conftest import run_cli
from tests.mermaid import oracles

ROOT = {"type": "template", "name": "busybox", "target": "/"}
SECRET = "hunter2-do-not-show"
# a value written to break a pull-request comment: a fence, HTML, a table cell, emphasis
HOSTILE = "<img src=x onerror=alert(1)> ```` | **bold** </details>"


def guest(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "filesystems": [ROOT], "idmap": UNPRIVILEGED, **more}


@dataclass(frozen=True)
class Review:
    broken: Path
    text: str
    json: dict[str, Any]
    markdown: str


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Review:
    tmp = tmp_path_factory.mktemp("review")
    specs, state = tmp / "specs", tmp / "state"
    specs.mkdir()

    def put(doc: dict[str, Any]) -> None:
        (specs / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))

    put(guest("web", cpu={"shares": 40}))
    put(guest("db", cpu={"shares": 100}))
    put(guest("vz"))
    done = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert done.returncode == 0, done.stderr
    put(guest("web", cpu={"shares": 60}))  # a live update
    put(guest("new", memory=512, description=HOSTILE, cpu={"shares": 50, "limit": 50},
              init={"cmd": "/sbin/init", "env": {"TOKEN": SECRET}}))  # a create
    broken = specs / "vz.yaml"
    broken.write_text("kind: Domain\nname: vz\ntype: lxc\nmemory: lots\n")  # line 4
    SimDriver(state).tamper(Ref("Domain", "db"), cpu={"shares": 7})  # drift

    def plan(fmt: str) -> str:
        done = run_cli("plan", str(specs), "--state-dir", str(state), "--format", fmt)
        assert done.returncode == 1, done.stderr  # a spec failed to load
        assert "Traceback" not in done.stderr
        return done.stdout

    return Review(broken, plan("text"), json.loads(plan("json")), plan("markdown"))


def test_markdown_shows_the_broken_file_the_create_the_update_and_the_drift(
        review: Review) -> None:
    md = review.markdown
    assert f"host `{socket.gethostname()}`" in md and "drivers `sim`" in md
    # the broken file with its line, and what it holds
    assert f"- `{review.broken}:4`: `memory: 'lots' is not a size;" in md
    assert "  - holds `domain/vz`" in md
    rows = {line.split("|")[2].strip(): line for line in md.splitlines()
            if line.startswith("| ") and "`domain/" in line}
    assert "| update (live) | `cpu.shares` |" in rows["`domain/web`"]
    assert "`cpu.shares` (drift on host)" in rows["`domain/db`"]
    assert "| create |" in rows["`domain/new`"] and "| held |" in rows["`domain/vz`"]
    diff = _fenced(md, "diff")
    assert _under(diff, "~ domain/web update (live)") == \
        ["-   cpu.shares: 40", "+   cpu.shares: 60"]
    assert _under(diff, "~ domain/db update (live)") == \
        ["-   cpu.shares: 7 (drift on host)", "+   cpu.shares: 100"]
    created = _under(diff, "+ domain/new create")
    for line in ("+   memory: 512KiB", "+   cpu.shares: 50", "+   cpu.limit: 50 (% of one CPU)",
                 "+   init.cmd: /sbin/init", f"+   init.env.TOKEN: {digest(SECRET)}",
                 f"+   description: {HOSTILE}", "+   filesystems[0].name: busybox",
                 "+   idmap[1].kind: gid"):
        assert line in created, line
    assert SECRET not in md


def test_markdown_stays_one_document_whatever_the_values(review: Review) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(review.markdown)
    assert [t.info for t in tokens if t.type == "fence"] == ["diff", "mermaid"]
    html = [t.content for t in tokens if t.type == "html_block"]
    assert html == ["<details open><summary>Values and changes</summary>\n", "</details>\n"]
    inline = [c for t in tokens if t.children for c in t.children]
    assert not [c for c in inline if c.type == "html_inline"]
    assert not [c for c in inline if c.type in ("link_open", "image")]
    assert len([c for c in inline if c.type == "strong_open"]) == 1  # the summary line
    fence = next(t for t in tokens if t.info == "diff")
    assert f"+   description: {HOSTILE}\n" in fence.content


def test_markdowns_mermaid_block_is_accepted_by_mermaid(review: Review) -> None:
    parsed = oracles.mermaid_parsed(_fenced(review.markdown, "mermaid"))
    assert {s["title"] for s in parsed["subgraphs"]} == \
        {"domain/db (update)", "domain/new (create)", "domain/web (update)"}
    steps = {s["title"]: [n["label"] for n in parsed["nodes"] if n["id"] in s["nodes"]]
             for s in parsed["subgraphs"]}
    assert steps["domain/new (create)"] == ["provision", "define", "start"]
    assert len(parsed["edges"]) == 2  # provision -> define -> start


def test_json_carries_errors_values_and_drift(review: Review) -> None:
    data = review.json
    assert data["host"] == socket.gethostname() and data["context"]["drivers"] == ["sim"]
    assert data["errors"] == [{"file": str(review.broken), "line": 4, "message":
                               data["errors"][0]["message"]}]
    assert "'lots' is not a size" in data["errors"][0]["message"]
    assert data["held_files"] == [{"file": str(review.broken), "errors": data["errors"],
                                   "objects": ["domain/vz"]}]
    objects = {o["object"]: o for o in data["objects"]}
    values = {v["field"]: v["value"] for v in objects["domain/new"]["values"]}
    assert values["memory"] == "512KiB" and values["cpu.limit"] == 50
    assert values["init.env.TOKEN"] == digest(SECRET) and values["description"] == HOSTILE
    assert objects["domain/db"]["changes"] == [
        {"field": "cpu.shares", "old": 7, "new": 100, "class": "live", "origin": "drift"}]
    assert objects["domain/web"]["changes"][0]["origin"] == "spec"
    assert objects["domain/vz"]["action"] == "held"
    assert "values" not in objects["domain/web"]
    assert SECRET not in json.dumps(data)


def test_text_shows_the_same(review: Review) -> None:
    text = review.text
    assert f"host: {socket.gethostname()}  drivers: sim" in text
    assert f"! {review.broken}:4: error: memory: 'lots' is not a size;" in text
    assert "      holds domain/vz as it is on the host" in text
    assert "      cpu.shares: 7 -> 100 (drift on host)" in text
    assert "      cpu.shares: 40 -> 60\n" in text
    assert "      memory: 512KiB\n" in text and f"init.env.TOKEN: {digest(SECRET)}" in text
    assert SECRET not in text


def _fenced(markdown: str, info: str) -> str:
    found = re.search(rf"^(`{{3,}}){info}\n(.*?)^\1$", markdown, re.S | re.M)
    assert found is not None, markdown
    return found.group(2)


def _under(block: str, head: str) -> list[str]:
    """The value lines of `block` after the object line `head`, up to the next object."""
    lines = block.splitlines()
    out = []
    for line in lines[lines.index(head) + 1:]:
        if not re.match(r"[-+#]   ", line):
            break
        out.append(line)
    return out
