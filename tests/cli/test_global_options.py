"""The options every command takes are accepted before and after the command's name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = "kind: Domain\nname: g1\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("before", [True, False])
def test_log_format_and_level_before_or_after_the_command(tmp_path: Path, before: bool) -> None:
    (tmp_path / "g1.yaml").write_text(SPEC)
    flags = ["--log-format", "json", "--log-level", "debug"]
    command = ["plan", str(tmp_path / "g1.yaml"), "--state-dir", str(tmp_path / "state")]
    res = run(*(flags + command if before else command + flags))
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stderr.split("\n") if line.startswith("{")]
    assert any(e["event"] == "plan.computed" for e in events)


def test_an_option_after_the_command_wins_over_the_same_before_it(tmp_path: Path) -> None:
    (tmp_path / "g1.yaml").write_text(SPEC)
    res = run("--log-format", "json", "plan", str(tmp_path / "g1.yaml"), "--state-dir",
              str(tmp_path / "state"), "--log-format", "console", "--log-level", "info")
    assert res.returncode == 0
    assert "plan.computed" in res.stderr and '"event"' not in res.stderr


def test_a_global_option_before_the_command_is_not_undone_by_the_default_after_it(
        tmp_path: Path) -> None:
    (tmp_path / "g1.yaml").write_text(SPEC)
    res = run("--log-level", "error", "plan", str(tmp_path / "g1.yaml"), "--state-dir",
              str(tmp_path / "state"))
    assert res.returncode == 0 and "plan.computed" not in res.stderr
