"""A saved plan shown for review (`saved.show`, what `reconciler show PLANFILE` prints): the
same document `plan` printed when it saved it, in every format, with the saved secrets kept
out; a plan saved before plans carried their errors and host still shows; a file `apply`
would refuse says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine import saved
from reconciler.engine.render import FORMATS, Format
from tests.conformance.harness import UNPRIVILEGED
from tests.conftest import run_cli

SECRET = "s3cr3t-in-a-saved-plan"


def guest(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
            "idmap": UNPRIVILEGED, **more}


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "specs"
    folder.mkdir()
    doc = guest("a", init={"cmd": "/sbin/init", "env": {"TOKEN": SECRET}})
    (folder / "a.yaml").write_text(yaml.safe_dump(doc))
    (folder / "broken.yaml").write_text("kind: Domain\nname: b\ntype: lxc\nmemory: lots\n")
    return folder


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_saved_plan_shows_as_plan_printed_it(specs: Path, tmp_path: Path,
                                                fmt: Format) -> None:
    out = tmp_path / "p.plan"
    done = run_cli("plan", str(specs), "--state-dir", str(tmp_path / "state"), "--format", fmt,
                   "--out", str(out))
    assert done.returncode == 1 and out.exists(), done.stderr  # the broken file
    assert SECRET in out.read_text()  # apply needs it
    shown = saved.show(str(out), fmt)
    assert shown == done.stdout
    assert SECRET not in shown
    assert ('"line": 4' if fmt == "json" else "broken.yaml:4") in shown


def test_a_plan_saved_before_plans_carried_errors_and_host_still_shows(
        specs: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.plan"
    run_cli("plan", str(specs), "--state-dir", str(tmp_path / "state"), "--out", str(out))
    data = json.loads(out.read_text())
    del data["errors"], data["host"]
    out.write_text(json.dumps(data))
    text = saved.show(str(out), "text")
    assert "+ domain/a (lxc) create" in text and "      memory: 64MiB" in text
    assert "host:" not in text
    assert f"! {specs / 'broken.yaml'}: error: did not load" in text
    markdown = saved.show(str(out), "markdown")
    assert f"- `{specs / 'broken.yaml'}`: `did not load`" in markdown


def test_a_saved_plan_apply_would_refuse_says_so(specs: Path, tmp_path: Path) -> None:
    out = tmp_path / "edited.plan"
    run_cli("plan", str(specs), "--state-dir", str(tmp_path / "state"), "--out", str(out))
    data = json.loads(out.read_text())
    data["objects"][0]["action"] = "<b>obliterate</b>"  # steps no longer follow from it
    out.write_text(json.dumps(data))
    text = saved.show(str(out), "text")
    assert "! apply refuses this file, it is not one `plan` wrote: step domain/a:" in text
    assert "? domain/a (lxc) <b>obliterate</b>" in text
    markdown = saved.show(str(out), "markdown")
    assert "<b>" not in markdown and "\\<b\\>obliterate\\</b\\>" in markdown
    assert "apply refuses this file" in markdown
