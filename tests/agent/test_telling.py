"""The agent tells on itself: a git source that stops answering shows in /healthz (degraded
once no fetch worked for `git.stale_after`), in the metrics and in `reconciler status`, with
git's whole message; `reconciler reconcile` asks a running agent for a pass now."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli

from .conftest import (
    AgentProcess,
    base_args,
    git_push,
    git_repo,
    sim_record,
    spec_text,
    wait_for,
    write_atomic,
)
from .test_service import _get, _metric

UNREACHABLE = "http://127.0.0.1:9/x.git"  # the discard port on loopback: refused at once


def _git_agent(start_agent, tmp_path: Path, url: str, state: Path, *, interval: float,
               stale_after: float, http: str = "127.0.0.1:0") -> AgentProcess:
    config = tmp_path / "agent.yaml"
    config.write_text(json.dumps({"git": {"url": url, "branch": "main", "interval": interval,
                                          "stale_after": stale_after}}))
    return start_agent("hosts", "--config", str(config), "--state-dir", str(state),
                       "--driver", "sim", "--http", http, "--resync", "0")


def _healthz(port: int) -> tuple[int, dict]:
    code, body = _get(port, "/healthz")
    return code, json.loads(body)


def test_a_git_source_gone_degrades_healthz_counts_failures_and_shows_the_whole_message(
        tmp_path, start_agent):
    bare, _ = git_repo(tmp_path, "a")
    state = tmp_path / "state"
    agent = _git_agent(start_agent, tmp_path, f"file://{bare}", state, interval=1,
                       stale_after=2)
    port = agent.wait_event("http.listening")["port"]
    agent.wait_idle()
    assert (sim_record(state, "a") or {}).get("running")
    wait_for(lambda: _healthz(port)[0] == 200, what="healthz ok with git fetching")
    metrics = _get(port, "/metrics")[1]
    assert _metric(metrics, "reconciler_git_up") == 1
    assert _metric(metrics, "reconciler_git_stale") == 0
    assert _metric(metrics, "reconciler_git_stale_after_seconds") == 2

    os.rename(bare, tmp_path / "moved.git")  # the URL now names nothing
    failed = agent.wait_event("git.failed")
    # the first line says what is wrong, the last only "and the repository exists."
    assert "does not appear to be a git repository" in failed["error"]
    assert "and the repository exists." in failed["error"]
    first = wait_for(lambda: _metric(_get(port, "/metrics")[1], "reconciler_git_failures_total"),
                     what="a fetch failure counted")
    wait_for(lambda: _metric(_get(port, "/metrics")[1], "reconciler_git_failures_total") > first,
             what="the failure count rising")

    code, body = wait_for(lambda: (h := _healthz(port))[1]["status"] == "degraded" and h,
                          what="healthz degraded")
    assert code == 503
    assert any(r.startswith("git: no fetch worked") for r in body["reasons"])
    assert body["git"]["stale"] is True and body["git"]["failures"] >= 2
    assert "does not appear to be a git repository" in body["git"]["last_error"]
    assert "and the repository exists." in body["git"]["last_error"]
    metrics = _get(port, "/metrics")[1]
    assert _metric(metrics, "reconciler_git_up") == 0
    assert _metric(metrics, "reconciler_git_stale") == 1
    assert _metric(metrics, "reconciler_git_consecutive_failures") >= 2

    wait_for(lambda: json.loads((state / "agent-status.json").read_text())["git"]["stale"],
             what="staleness in the status file")
    text = run_cli("status", "--state-dir", str(state))
    assert text.returncode == 1, text.stdout  # running, but on specs that may be old
    assert "fetches in a row" in text.stdout and "stale: no fetch worked" in text.stdout
    shown = text.stdout.splitlines()
    assert any("does not appear to be a git repository" in line for line in shown)
    assert "    and the repository exists." in shown
    assert "    Please make sure you have the correct access rights" in shown
    data = json.loads(run_cli("status", "--state-dir", str(state), "--format", "json").stdout)
    assert data["git"]["url"] == f"file://{bare}" and data["git"]["stale"] is True

    os.rename(tmp_path / "moved.git", bare)  # back: the next fetch works, healthz recovers
    agent.wait_event("git.recovered")
    wait_for(lambda: _healthz(port)[0] == 200, what="healthz ok again")
    assert _metric(_get(port, "/metrics")[1], "reconciler_git_consecutive_failures") == 0
    assert agent.stop() == 0


def test_an_unreachable_git_url_from_the_start_is_reported(tmp_path, start_agent):
    state = tmp_path / "state"
    agent = _git_agent(start_agent, tmp_path, UNREACHABLE, state, interval=1, stale_after=2)
    port = agent.wait_event("http.listening")["port"]
    agent.wait_event("git.failed")
    code, body = wait_for(lambda: (h := _healthz(port))[1].get("git", {}).get("stale") and h,
                          what="healthz stale")
    assert code == 503
    assert "no commit fetched from git yet" in body["reasons"]
    assert any(r.startswith("git: no fetch worked") for r in body["reasons"])
    assert "Failed to connect to 127.0.0.1 port 9" in body["git"]["last_error"]
    assert body["git"]["last_success"] is None
    wait_for(lambda: _metric(_get(port, "/metrics")[1], "reconciler_git_failures_total") >= 2,
             what="failures counted")
    wait_for(lambda: "Failed to connect" in run_cli("status", "--state-dir", str(state)).stdout,
             what="git's message in reconciler status")
    assert agent.stop() == 0


def test_reconcile_asks_the_running_agent_for_a_pass(dirs, start_agent):
    from reconciler.drivers.sim import SimDriver
    from reconciler.model.fields import Ref

    specs, state = dirs
    nobody = run_cli("reconcile", "--state-dir", str(state))
    assert nobody.returncode == 1 and "no agent runs" in nobody.stderr

    write_atomic(specs / "a.yaml", spec_text("a"))
    agent = start_agent(*base_args(specs, state))  # no resync, no HTTP: only a request helps
    agent.wait_idle()
    SimDriver(state).tamper(Ref("Domain", "a"), running=False)
    done = run_cli("reconcile", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "succeeded (1 steps ok, 0 failed, 0 skipped)" in done.stdout
    assert (sim_record(state, "a") or {}).get("running") is True  # the drift is gone
    passes = [p for p in agent.passes() if p["trigger"] == "request"]
    assert passes and passes[-1]["scope"] == "full"
    assert passes[-1]["plan_id"] in done.stdout

    # a pass that fails: exit 1, and the answer says so
    (state / "sim" / "faults.json").write_text(
        '[{"step": "start", "object": "a", "mode": "fail"}]')
    SimDriver(state).tamper(Ref("Domain", "a"), running=False)
    failed = run_cli("reconcile", "--state-dir", str(state))
    assert failed.returncode == 1 and ": failed (" in failed.stdout, failed.stdout
    (state / "sim" / "faults.json").unlink()

    def answer() -> dict:
        return json.loads((state / "agent-status.json").read_text()).get("request") or {}

    before = wait_for(answer, what="the answer in the status file")["received"]
    asked = run_cli("reconcile", "--state-dir", str(state), "--no-wait")
    assert asked.returncode == 0 and str(agent.proc.pid) in asked.stdout
    later = wait_for(lambda: answer()["received"] > before and answer(), what="answered")
    assert later["trigger"] == "request"

    assert agent.stop() == 0
    after = run_cli("reconcile", "--state-dir", str(state))
    assert after.returncode == 1 and "no agent runs" in after.stderr


def test_reconcile_fetches_from_git_before_its_pass(tmp_path, start_agent):
    bare, work = git_repo(tmp_path, "a")
    state = tmp_path / "state"
    # an hour between fetches: only the request makes the agent see the new commit
    agent = _git_agent(start_agent, tmp_path, f"file://{bare}", state, interval=3600,
                       stale_after=7200, http="off")
    agent.wait_idle()
    write_atomic(work / "hosts" / "b.yaml", spec_text("b"))
    commit = git_push(work, bare)
    done = run_cli("reconcile", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert f"at commit {commit[:12]}" in done.stdout
    assert (sim_record(state, "b") or {}).get("running") is True
    assert agent.stop() == 0
