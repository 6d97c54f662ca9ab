"""Saved plans on `sim`, through the CLI: saved under any name, applied exactly, and refused
when edited into something `plan` never wrote. Secrets go into the saved plan (apply needs
them) and nowhere people read."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.harness import UNPRIVILEGED
from tests.conftest import run_cli

ROOT = {"type": "template", "name": "busybox", "target": "/"}


def guest(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "filesystems": [ROOT], "idmap": UNPRIVILEGED, **more}


def world(tmp: Path, *docs: dict[str, Any]) -> tuple[Path, Path]:
    specs, state = tmp / "specs", tmp / "state"
    specs.mkdir(exist_ok=True)
    for path in specs.iterdir():
        path.unlink()
    for doc in docs:
        (specs / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))
    return specs, state


def sim_data(state: Path, name: str) -> Path:
    return state / "sim" / "data" / name


def saved(tmp: Path, specs: Path, state: Path, name: str = "next.plan") -> Path:
    out = tmp / name
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_a_plan_saved_under_any_name_applies_and_keeps_its_secrets_to_itself(
        tmp_path: Path) -> None:
    specs, state = world(tmp_path, guest("a", init={"cmd": "/sbin/init",
                                                    "env": {"TOKEN": "s3cr3t-value"}}))
    plan_file = saved(tmp_path, specs, state)
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    assert "s3cr3t-value" in plan_file.read_text()  # apply needs it
    shown = run_cli("plan", str(specs), "--state-dir", str(state), "--format", "json")
    assert "s3cr3t-value" not in shown.stdout and "sha256:" in shown.stdout
    res = run_cli("apply", str(plan_file), "--state-dir", str(state))  # the plan was the review
    assert res.returncode == 0, res.stderr
    record = json.loads((state / "sim" / "objects" / "Domain" / "a.json").read_text())
    assert record["config"]["init"]["env"] == {"TOKEN": "s3cr3t-value"}
    assert "s3cr3t-value" not in (state / "journal.jsonl").read_text()
    assert "s3cr3t-value" not in res.stdout + res.stderr


def test_an_extra_purge_step_is_refused_and_nothing_is_erased(tmp_path: Path) -> None:
    specs, state = world(tmp_path, guest("a"), guest("victim"))
    assert run_cli("apply", str(specs), "--state-dir", str(state), "--yes").returncode == 0
    specs, _ = world(tmp_path, guest("a", memory="96MiB"), guest("victim"))
    plan_file = saved(tmp_path, specs, state)
    data = json.loads(plan_file.read_text())
    data["steps"].append({"id": "domain/victim:purge", "kind": "purge", "object":
                          "domain/victim", "ref": ["Domain", "victim"], "type": "lxc",
                          "spec": None, "source": None, "fields": [], "live": False,
                          "reason": "", "deps": [], "driver": "sim"})
    plan_file.write_text(json.dumps(data))
    res = run_cli("apply", str(plan_file), "--state-dir", str(state), "--yes")
    assert res.returncode == 1
    assert "not one `plan` wrote" in res.stderr and "victim" in res.stderr
    assert sim_data(state, "victim").is_dir()
    record = json.loads((state / "sim" / "objects" / "Domain" / "a.json").read_text())
    assert record["config"]["memory"] == "64MiB"  # nothing of the plan ran


def test_an_undefine_turned_into_a_purge_is_refused_for_that_object(tmp_path: Path) -> None:
    specs, state = world(tmp_path, guest("a"), guest("b"), guest("c"))
    assert run_cli("apply", str(specs), "--state-dir", str(state), "--yes").returncode == 0
    specs, _ = world(tmp_path, guest("a"), guest("b"))  # c removed: stop + undefine, data kept
    plan_file = saved(tmp_path, specs, state)
    text = plan_file.read_text().replace("domain/c:undefine", "domain/c:purge").replace(
        '"kind": "undefine"', '"kind": "purge"')
    plan_file.write_text(text)
    res = run_cli("apply", str(plan_file), "--state-dir", str(state), "--yes")
    assert res.returncode == 1
    assert "purge of domain/c that neither its spec nor the host asked for" in res.stderr
    assert sim_data(state, "c").is_dir()


def test_a_step_spec_carrying_a_line_separator_is_refused(tmp_path: Path) -> None:
    specs, state = world(tmp_path, guest("a", hostname="web"))
    plan_file = saved(tmp_path, specs, state)
    data = json.loads(plan_file.read_text())
    for step in data["steps"]:
        if step["spec"]:
            step["spec"]["init"] = {"cmd": "/sbin/init",
                                    "env": {"A": "x\u2028lxc.hook.pre-start = /bin/evil"}}
    plan_file.write_text(json.dumps(data))
    res = run_cli("apply", str(plan_file), "--state-dir", str(state), "--yes")
    assert res.returncode == 1 and "not valid" in res.stderr
    assert not (state / "sim" / "objects" / "Domain" / "a.json").exists()


def test_file_names_cannot_forge_plan_lines_or_hide_them(tmp_path: Path) -> None:
    specs, state = world(tmp_path)
    evil = specs / "x\n+ domain:forged (lxc) create\x1b[2K.yaml"
    evil.write_text(yaml.safe_dump(guest("honest")))
    res = run_cli("plan", str(specs), "--state-dir", str(state))
    assert "\x1b" not in res.stdout and "\n+ domain:forged" not in res.stdout
    assert "\\n+ domain:forged (lxc) create\\x1b[2K.yaml" in res.stdout
    markdown = run_cli("plan", str(specs), "--state-dir", str(state), "--format", "markdown")
    assert "\x1b" not in markdown.stdout


def test_files_planted_as_symlinks_in_the_state_directory_are_never_followed(
        tmp_path: Path) -> None:
    specs, state = world(tmp_path, guest("a"))
    state.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("untouched\n")
    (state / "journal.jsonl").symlink_to(target)
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert res.returncode == 1 and "cannot write the journal" in res.stderr
    assert "Traceback" not in res.stderr
    (state / "journal.jsonl").unlink()
    (state / "agent.lock").unlink(missing_ok=True)
    (state / "agent.lock").symlink_to(target)
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert res.returncode == 1 and "cannot lock state directory" in res.stderr
    assert target.read_text() == "untouched\n"
    (state / "agent.lock").unlink()
    assert run_cli("apply", str(specs), "--state-dir", str(state), "--yes").returncode == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("journal.jsonl", "agent.lock"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
