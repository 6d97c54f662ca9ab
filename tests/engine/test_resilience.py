"""Crashes and failures: a killed apply resumes, failing steps never block unrelated objects."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.engine import compute_plan
from reconciler.engine.apply import Retry, apply_plan
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.journal import Journal, read
from reconciler.engine.plan import Settings
from tests.conformance.harness import UNPRIVILEGED
from tests.conftest import run_cli

N = 50


def fifty(specs: Path) -> None:
    specs.mkdir(parents=True, exist_ok=True)
    docs = [{"kind": "Domain", "name": f"d{i:02d}", "type": "openvz" if i % 2 else "lxc",
             "memory": "128MiB",
             "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
             **({} if i % 2 else {"idmap": UNPRIVILEGED}),
             **({"depends_on": [f"d{i - 10:02d}"]} if i >= 40 else {})} for i in range(N)]
    (specs / "all.yaml").write_text(yaml.safe_dump_all(docs))


def records(state: Path) -> list[dict[str, Any]]:
    folder = state / "sim" / "objects" / "Domain"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _started_steps(state: Path) -> int:
    path = state / "journal.jsonl"
    try:
        return path.read_bytes().count(b'"event":"step.started"')
    except OSError:
        return 0


def test_sigkill_at_random_points_then_rerun_converges(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"drivers": {"sim": {"latency": 0.01}}, "driver": "sim"}))
    killed_mid_apply = 0
    for run in range(20):
        specs, state = tmp_path / f"specs{run}", tmp_path / f"state{run}"
        fifty(specs)
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "--log-format", "json", "apply", str(specs),
             "--state-dir", str(state), "--config", str(config), "--yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill after a random number of steps have started, so the kill lands mid-apply
        kill_after = rng.randint(1, 3 * N - 10)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _started_steps(state) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                killed_mid_apply += 1
                break
            time.sleep(0.002)
        proc.wait(timeout=30)
        res = run_cli("apply", str(specs), "--state-dir", str(state), "--config", str(config),
                      "--yes")
        assert res.returncode == 0, (run, res.stdout[-2000:], res.stderr[-2000:])
        assert "already exists" not in res.stderr
        done = records(state)
        assert len(done) == N and len({r["name"] for r in done}) == N
        assert all(r["running"] for r in done)
        ids = [r["config"]["id"] for r in done if r["type"] == "openvz"]
        assert len(ids) == N // 2 and len(set(ids)) == len(ids), "duplicate CTIDs"
        hosts = build_hosts(Config(state_dir=str(state), driver="sim", driver_chosen=True))
        try:
            assert compute_plan([str(specs)], hosts, Settings()).plan.steps == ()
        finally:
            hosts.close()
    # the kills must really land inside applies, or this test proves nothing
    assert killed_mid_apply >= 18


def _apply_once(specs: Path, state: Path) -> tuple[int, dict[str, Any]]:
    hosts = build_hosts(Config(state_dir=str(state), driver="sim", driver_chosen=True))
    journal = Journal(state)
    try:
        plan = compute_plan([str(specs)], hosts, Settings()).plan
        report = apply_plan(plan, hosts, journal, parallel=4,
                            retry=Retry(attempts=1, first_delay=0.01))
    finally:
        journal.close()
        hosts.close()
    return len(plan.steps), {k: v.result for k, v in report.outcomes.items()}


def test_random_failures_converge_and_never_block_unrelated(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    fifty(specs)
    (state / "sim").mkdir(parents=True)
    faults = state / "sim" / "faults.json"
    faults.write_text(json.dumps([
        {"object": "d07", "mode": "fail"},                  # always fails
        {"mode": "fail", "probability": 0.2},                # 20 % of every other step
    ]))
    _first_steps, outcomes = _apply_once(specs, state)
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert failed, "20 % random faults produced no failure"
    assert "domain/d07:provision" in failed
    # unrelated objects went on: every object with no failed step of its own got running
    assert any(v == "succeeded" and k.endswith(":start") for k, v in outcomes.items())
    runs = 1
    while runs < 25:
        _steps, outcomes = _apply_once(specs, state)
        runs += 1
        if set(outcomes) <= {"domain/d07:provision", "domain/d07:define", "domain/d07:start"}:
            break
    done = {r["name"]: r for r in records(state)}
    assert set(done) == {f"d{i:02d}" for i in range(N)} - {"d07"}
    assert all(r["running"] for r in done.values())
    # d07 never succeeds, and it blocked nobody but itself (no domain depends on it)
    assert "d07" not in done
    journal = read(state)
    assert any(e["event"] == "step.failed" for e in journal)
    faults.write_text("[]")
    _apply_once(specs, state)
    assert len(records(state)) == N


def test_transient_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    (specs / "a.yaml").write_text(yaml.safe_dump({
        "kind": "Domain", "name": "a", "type": "lxc", "idmap": UNPRIVILEGED,
        "filesystems": [{"type": "template", "name": "busybox", "target": "/"}]}))
    (state / "sim").mkdir(parents=True)
    (state / "sim" / "faults.json").write_text(json.dumps(
        [{"step": "start", "mode": "transient", "times": 2}]))
    hosts = build_hosts(Config(state_dir=str(state), driver="sim", driver_chosen=True))
    journal = Journal(state)
    plan = compute_plan([str(specs)], hosts, Settings()).plan
    report = apply_plan(plan, hosts, journal, retry=Retry(attempts=4, first_delay=0.01))
    journal.close()
    assert report.ok
    assert report.outcomes["domain/a:start"].attempts == 3
    retries = [e for e in read(state) if e["event"] == "step.retrying"]
    assert [e["attempt"] for e in retries] == [1, 2]
