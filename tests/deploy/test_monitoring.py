"""The monitoring shipped in deploy/: the alert rules pass `promtool check rules` and their own
unit tests (`promtool test rules`, at least one per alert), the dashboard's queries are valid
PromQL, and every reconciler_* metric the rules and the dashboard name is one a real agent
serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent.conftest import AgentProcess, git_repo
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
METRIC = re.compile(r"\breconciler_[a-zA-Z0-9_]+\b")
# Grafana's variables, replaced by what Grafana would put there, so promtool can parse
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    data = json.loads(DASHBOARD.read_text())
    variables = [v["query"] for v in data["templating"]["list"] if v["type"] == "query"]
    return [*walk(data["panels"]), *variables]


@needs_promtool
def test_alert_rules_pass_promtool_check():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@needs_promtool
def test_alert_rules_pass_their_unit_tests():
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    fired = {case["alertname"] for test in tests["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in tests["tests"]
             for case in test.get("alert_rule_test", []) if not case.get("exp_alerts")}
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts == fired, "every alert needs a test where it fires"
    assert alerts == quiet, "and one where it stays quiet"


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path):
    """Each query, made a recording rule, goes through promtool's PromQL parser."""
    exprs = [e for e in _dashboard_exprs() if not e.startswith("label_values(")]
    assert exprs
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    assert not any("$" in e for e in exprs), "a Grafana variable promtool cannot parse"
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{n}", "expr": e} for n, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_are_well_formed():
    data = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)) and data["uid"] == "reconciler-agents"
    for panel in data["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[set[str]]:
    """The metric names a real agent serves: on `sim`, following a git repository (so the
    git metrics are there too), after its first pass; scraped from /metrics on loopback."""
    bare, _ = git_repo(tmp_path, "a")
    agent = AgentProcess(["hosts", "--git", f"file://{bare}", "--branch", "main",
                          "--state-dir", str(tmp_path / "state"), "--driver", "sim",
                          "--http", "127.0.0.1:0", "--resync", "0"], tmp_path)
    try:
        port = agent.wait_event("http.listening")["port"]
        agent.wait_idle()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert agent.stop() == 0
    finally:
        agent.kill()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])  # declared, even before a labelled child exists
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    yield names


def test_every_metric_the_rules_and_the_dashboard_name_is_served(served):
    named = {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    named |= {m for expr in _dashboard_exprs() for m in METRIC.findall(expr)}
    assert {"reconciler_git_stale", "reconciler_last_pass_success"} <= named
    assert named - served == set(), f"named but not served; served: {sorted(served)}"
