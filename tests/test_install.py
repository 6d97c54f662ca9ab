"""The README's install, as a new user runs it: a fresh virtual environment, `pip install .`
with no extras, and then the agent, the product's main job, applies a new spec file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

SPEC = """kind: Domain
name: fresh
type: kvm
os: {type: hvm}
memory: 64MiB
"""


def test_a_plain_install_runs_the_watcher(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    tool = str(venv / "bin" / "reconciler")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert version.returncode == 0 and version.stdout.startswith("reconciler ")
    shown = subprocess.run([str(venv / "bin" / "pip"), "show", "reconciler-host"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0  # the distribution's name is not the unrelated PyPI project's

    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    agent = subprocess.Popen([tool, "--log-format", "json", "watch", str(specs), "--state-dir",
                              str(state), "--http", "off", "--resync", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=tmp_path)
    try:
        record = state / "sim" / "objects" / "Domain" / "fresh.json"
        deadline = time.monotonic() + 60
        while not (state / "agent-status.json").exists() and time.monotonic() < deadline:
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
            time.sleep(0.1)
        tmp = specs / ".fresh.yaml.tmp"
        tmp.write_text(SPEC)
        tmp.rename(specs / "fresh.yaml")
        while not record.exists() and time.monotonic() < deadline:
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
            time.sleep(0.1)
        assert record.exists(), "the watcher did not apply the new spec file"
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0


# `pip install reconciler` / `'reconciler[libvirt]'` fetch an unrelated project from PyPI
PYPI_NAME = re.compile(r"pip3? install[^\n]*?[\s'\"]reconciler(\[[^\]]*\])?['\"]?(\s|$)")


def test_no_install_hint_names_the_pypi_project_called_reconciler() -> None:
    offenders = []
    for pattern in ("reconciler/**/*.py", "tests/**/*.py", "bench/*.py", "*.md", "deploy/*",
                    "tests/run.sh", ".ci/*"):
        for path in REPO.glob(pattern):
            # test files name the wrong hint on purpose, to show it is absent
            if path.is_file() and "node_modules" not in path.parts and \
                    not path.name.startswith("test_"):
                text = path.read_text(errors="replace")
                offenders += [f"{path}: {m.group()}" for m in PYPI_NAME.finditer(text)]
    assert PYPI_NAME.search("hint: pip install 'reconciler[libvirt]' first")  # it can fail
    assert not PYPI_NAME.search("pip install '/path/to/checkout[libvirt]'")
    assert offenders == []
