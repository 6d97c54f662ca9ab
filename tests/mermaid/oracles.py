"""Run a graph through the real tools: Mermaid's parser (`check.mjs` under Node, after
`npm ci` here) and Graphviz's `dot`. Missing tools skip a test on a developer's machine and
fail it under CI (CI=true), where tests/run.sh installs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

HERE = Path(__file__).resolve().parent


def _missing(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI must install it: see tests/mermaid/package.json)")
    pytest.skip(why)


def mermaid(text: str) -> subprocess.CompletedProcess[str]:
    """Mermaid's verdict on `text`: exit 0 and what it parsed (JSON) on stdout, or exit 1 and
    its error on stderr."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (HERE / "node_modules" / "mermaid").is_dir():
        _missing("the mermaid package is not installed: run `npm ci` in tests/mermaid")
    done = subprocess.run([node, str(HERE / "check.mjs")], input=text,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr  # 2: the checker itself cannot run
    return done


def mermaid_parsed(text: str) -> dict[str, Any]:
    done = mermaid(text)
    assert done.returncode == 0, f"Mermaid rejected the graph: {done.stderr}\n{text}"
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def dot(text: str, fmt: str = "json") -> subprocess.CompletedProcess[str]:
    """Graphviz's `dot -T<fmt>` on `text`."""
    tool = shutil.which("dot")
    if tool is None:
        _missing("graphviz (dot) is not installed")
    return subprocess.run([tool, f"-T{fmt}"], input=text, capture_output=True,
                          text=True, timeout=120, check=False)
