"""The systemd unit and the install FLEET.md documents agree: the unit runs the `reconciler`
of the virtual environment FLEET.md creates, with arguments the real command accepts, and
systemd reads the unit without a complaint."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "deploy" / "reconciler-agent.service"
FLEET = REPO / "deploy" / "FLEET.md"


def _exec_start() -> list[str]:
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_unit_runs_the_reconciler_fleet_md_installs():
    binary = Path(_exec_start()[0])
    venv = binary.parent.parent
    fleet = FLEET.read_text()
    assert binary == venv / "bin" / "reconciler"
    assert f"python3 -m venv {venv}\n" in fleet
    assert f"{venv}/bin/pip install /path/to/checkout\n" in fleet
    assert "pip install reconciler" not in fleet  # a PyPI name that is another project


def test_the_units_arguments_are_the_commands_own():
    from reconciler.cli import build_parser

    args = build_parser().parse_args(_exec_start()[1:])
    assert args.command == "watch" and args.config == "/etc/reconciler/agent.yaml"
    assert args.log_format == "json"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_reads_the_unit_without_a_complaint(tmp_path):
    # verify wants ExecStart's program to exist: the one installed on a host is not here
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(_exec_start()[0], shutil.which("true") or "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
