"""`apply` at a terminal, driven through a real pseudo-terminal: the live display, Ctrl-C
(the first lets the running steps finish and is journaled, the second exits at once), Ctrl-D at
the prompt, and colour only when allowed."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

DOMAIN = """kind: Domain
name: {name}
type: lxc
memory: 64MiB
filesystems: [{{type: template, name: busybox, target: /}}]
idmap:
  - {{kind: uid, start: 0, target: 100000, count: 65536}}
  - {{kind: gid, start: 0, target: 100000, count: 65536}}
"""
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def setup(tmp_path: Path, latency: float, count: int = 6) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    for i in range(count):
        (specs / f"box{i}.yaml").write_text(DOMAIN.format(name=f"box{i}"))
    (tmp_path / "agent.yaml").write_text(f"drivers: {{sim: {{latency: {latency}}}}}\n")
    return specs


def spawn(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "reconciler", *args, "--config",
                                          str(tmp_path / "agent.yaml"), "--state-dir",
                                          str(tmp_path / "state")],
                         cwd=str(tmp_path), encoding="utf-8", timeout=180,
                         dimensions=(40, 120), env={**os.environ, **(env or {})})


def journal(tmp_path: Path) -> list[dict[str, object]]:
    text = (tmp_path / "state" / "journal.jsonl").read_text()
    return [json.loads(line) for line in text.split("\n") if line]


def sim_objects(tmp_path: Path) -> set[str]:
    folder = tmp_path / "state" / "sim" / "objects" / "Domain"
    return {p.stem for p in folder.glob("*.json")} if folder.exists() else set()


def test_one_ctrl_c_lets_running_steps_finish_and_is_journaled(tmp_path: Path) -> None:
    setup(tmp_path, latency=1.0)
    child = spawn(tmp_path, "apply", "specs", "--parallel", "2")
    child.expect("Only 'yes' is accepted: ")
    child.sendline("yes")
    child.expect(r"\[0/18\] 0 done, 0 failed, 2 running")  # the live display, steps in flight
    child.expect(r"provision domain/box\d")
    child.sendintr()
    child.expect("no new step starts")
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert child.exitstatus == 130
    assert re.search(r"Apply \w+: \d+ steps succeeded, 0 failed, \d+ skipped\.", out)
    assert "were not started" in out and "Traceback" not in out
    events = journal(tmp_path)
    names = [e["event"] for e in events]
    assert "apply.interrupted" in names
    started = {e["step"] for e in events if e["event"] == "step.started"}
    ended = {e["step"] for e in events if e["event"] in ("step.succeeded", "step.failed")}
    assert started and started == ended  # every step in flight finished
    finished = next(e for e in events if e["event"] == "apply.finished")
    assert finished["interrupted"] is True and int(str(finished["skipped"])) > 0


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    setup(tmp_path, latency=30.0, count=2)
    child = spawn(tmp_path, "apply", "specs", "--yes")
    child.expect(r"\[0/\d+\] 0 done, 0 failed, \d running")  # the display: apply has begun
    child.sendintr()
    child.expect("no new step starts")
    child.sendintr()
    child.expect("exiting now")
    child.expect(pexpect.EOF, timeout=10)  # not the 30 s a step takes
    child.close()
    assert child.exitstatus == 130


def test_ctrl_d_at_the_prompt_applies_nothing(tmp_path: Path) -> None:
    setup(tmp_path, latency=0.0, count=1)
    child = spawn(tmp_path, "apply", "specs")
    child.expect("Only 'yes' is accepted: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert "Not applied." in out and "Traceback" not in out and "EOFError" not in out
    assert child.exitstatus == 1
    assert sim_objects(tmp_path) == set()


@pytest.mark.parametrize("how", ["env", "flag", "flag-before"])
def test_no_color_means_none(tmp_path: Path, how: str) -> None:
    setup(tmp_path, latency=0.0, count=1)
    (tmp_path / "specs" / "bad.yaml").write_text("kind: Domain\nname: x\n")  # an error line
    env = {"NO_COLOR": "1"} if how == "env" else {}
    args = ["plan", "specs", "--log-level", "info"]
    if how == "flag":
        args.append("--no-color")
    elif how == "flag-before":
        args.insert(0, "--no-color")
    child = spawn(tmp_path, *args, env=env)
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert "create" in out and "plan.computed" in out  # a plan and a log line were shown
    assert not COLOUR.search(out)


def test_colour_at_a_terminal_by_default(tmp_path: Path) -> None:
    setup(tmp_path, latency=0.0, count=1)
    child = spawn(tmp_path, "plan", "specs", env={"NO_COLOR": ""})
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert COLOUR.search(out)
    assert "plan.computed" not in out  # info lines are not shown at a terminal unless asked
