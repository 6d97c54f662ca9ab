"""The agent as a service: /healthz, /metrics, sd_notify, the status file and command,
SIGHUP, GitOps."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request

from tests.conftest import run_cli

from .conftest import (
    base_args,
    git,
    git_push,
    git_repo,
    sim_record,
    spec_text,
    steps_done,
    wait_for,
    write_atomic,
)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def test_healthz_and_metrics_follow_the_passes(dirs, start_agent, tmp_path):
    specs, state = dirs
    write_atomic(specs / "a.yaml", spec_text("a"))
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(10)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}
    args = base_args(specs, state)
    args[args.index("--http") + 1] = "127.0.0.1:0"
    agent = start_agent(*args, env=env)
    try:
        port = agent.wait_event("http.listening")["port"]
        agent.wait_idle()
        messages = set()
        while not {"READY=1", "WATCHDOG=1"} <= messages:
            messages |= set(sock.recv(4096).decode().splitlines())
        assert any(m.startswith("STATUS=") for m in messages)
    finally:
        sock.close()

    code, body = _get(port, "/healthz")
    assert code == 200, body
    assert json.loads(body)["status"] == "ok"
    code, text = _get(port, "/metrics")
    assert code == 200
    passes = _metric(text, "reconciler_passes_total")
    assert passes >= 1
    assert _metric(text, "reconciler_steps_total", kind="start", result="succeeded") == 1
    assert _metric(text, "reconciler_last_success_timestamp_seconds") > 0
    assert _metric(text, "reconciler_watcher_up") == 1
    assert _metric(text, "reconciler_pass_duration_seconds_count") == passes

    # a failing step: the pass fails, /healthz says so, the numbers move
    (state / "sim" / "faults.json").write_text(
        '[{"step": "define", "object": "b", "mode": "fail"}]')
    write_atomic(specs / "b.yaml", spec_text("b"))
    agent.wait_event("object.backoff")
    wait_for(lambda: _get(port, "/healthz")[0] == 503, what="healthz 503")
    text = _get(port, "/metrics")[1]
    assert _metric(text, "reconciler_passes_total", result="failed") >= 1
    assert _metric(text, "reconciler_steps_total", kind="define", result="failed") >= 1
    assert _metric(text, "reconciler_object_failures_total") >= 1
    wait_for(lambda: _metric(_get(port, "/metrics")[1], "reconciler_objects", state="failed")
             == 1, what="failed objects gauge")

    # a held file: the object is held, the gauge counts the file
    (state / "sim" / "faults.json").unlink()
    write_atomic(specs / "a.yaml", "kind: Domain\nname: a\nmemory: [oops\n")
    wait_for(lambda: _metric(_get(port, "/metrics")[1], "reconciler_held_files") == 1,
             what="held file counted")
    assert (sim_record(state, "a") or {}).get("running")  # held, never removed
    wait_for(lambda: json.loads((state / "agent-status.json").read_text())["objects"]
             .get("domain/a", {}).get("state") == "held", what="a held in the status")
    wait_for(lambda: steps_done(state, "domain/b:start"), timeout=15, what="b retried")
    assert _get(port, "/nope")[0] == 404
    assert agent.stop() == 0


def test_status_file_and_command(dirs, start_agent):
    specs, state = dirs
    write_atomic(specs / "a.yaml", spec_text("a"))
    write_atomic(specs / "broken.yaml", "kind: Domain\nname: b\ntype: lxc\nmemory: lots\n")
    agent = start_agent(*base_args(specs, state))
    agent.wait_idle()
    wait_for(lambda: (state / "agent-status.json").exists(), what="status file")

    result = run_cli("status", "--state-dir", str(state), "--format", "json")
    data = json.loads(result.stdout)
    assert data["running"] is True and data["pid"] == agent.proc.pid
    assert data["objects"]["domain/a"] == "in_sync"
    assert data["last_pass"]["result"] == "succeeded"
    assert data["held_files"][0]["file"] == str(specs / "broken.yaml")
    assert "memory" in data["held_files"][0]["errors"][0]
    assert result.returncode == 0

    text = run_cli("status", "--state-dir", str(state))
    assert "agent: running" in text.stdout and "held files: 1" in text.stdout
    assert "broken.yaml" in text.stdout

    assert agent.stop() == 0
    after = run_cli("status", "--state-dir", str(state), "--format", "json")
    assert after.returncode == 3 and json.loads(after.stdout)["running"] is False
    assert "not running" in run_cli("status", "--state-dir", str(state)).stdout
    empty = run_cli("status", "--state-dir", str(state / "nothing"))
    assert empty.returncode == 3 and "has not run" in empty.stdout


def test_sighup_reloads_config_and_rescans(dirs, start_agent, tmp_path):
    specs, state = dirs
    config = tmp_path / "agent.yaml"
    config.write_text("watch: {settle: 0.5}\n")
    write_atomic(specs / "a.yaml", spec_text("a"))
    agent = start_agent(*base_args(specs, state, "--config", str(config)))
    agent.wait_idle()
    config.write_text("watch: {settle: 0.2}\nmax_removal_share: 0.9\n")
    agent.signal(signal.SIGHUP)
    agent.wait_event("config.reloaded")
    reload_pass = agent.wait_event("pass.finished", where=lambda r: r["trigger"] == "reload")
    assert reload_pass["scope"] == "full" and reload_pass["result"] == "succeeded"
    # a broken config on SIGHUP keeps the running one
    config.write_text("watch: {nonsense: 1}\n")
    agent.signal(signal.SIGHUP)
    failed = agent.wait_event("config.reload_failed")
    assert "nonsense" in failed["error"]
    write_atomic(specs / "b.yaml", spec_text("b"))
    wait_for(lambda: steps_done(state, "domain/b:start"), what="b applied after bad reload")
    assert agent.stop() == 0


def test_journal_is_set_aside_between_passes(dirs, start_agent, tmp_path):
    """An unattended agent's journal stays bounded: past `journal_max_bytes` the next plan
    starts a new file and the one before is kept as journal.jsonl.1."""
    specs, state = dirs
    config = tmp_path / "agent.yaml"
    config.write_text("journal_max_bytes: 4KiB\n")
    agent = start_agent(*base_args(specs, state, "--config", str(config)))
    agent.wait_idle()
    for n in range(8):
        write_atomic(specs / f"j{n}.yaml", spec_text(f"j{n}"))
        wait_for(lambda n=n: steps_done(state, f"domain/j{n}:start"), what=f"j{n} applied")
    rotated = agent.wait_event("journal.rotated")
    assert rotated["path"] == str(state / "journal.jsonl")
    current = (state / "journal.jsonl").read_text().splitlines()
    assert json.loads(current[0])["event"] == "plan"
    assert (state / "journal.jsonl.1").stat().st_size > 4096
    assert (state / "journal.jsonl").stat().st_size < 4 * 4096
    assert agent.stop() == 0


def test_git_commits_are_applied_with_their_commit_id(tmp_path, start_agent):
    bare, work = git_repo(tmp_path, "a")
    state = tmp_path / "state"
    first = git("rev-parse", "HEAD", cwd=work)

    agent = start_agent("hosts", "--git", f"file://{bare}", "--branch", "main",
                        "--interval", "1", "--state-dir", str(state), "--driver", "sim",
                        "--http", "off", "--resync", "0")
    agent.wait_idle()
    assert (sim_record(state, "a") or {}).get("running")
    computed = agent.wait_event("plan.computed")
    assert computed["commit"] == first
    assert sim_record(state, "a")["stamp"]["source"] == str(state / "git" / "current" /
                                                            "hosts" / "a.yaml")

    write_atomic(work / "hosts" / "b.yaml", spec_text("b"))
    write_atomic(work / "hosts" / "a.yaml", spec_text("a", "192MiB"))
    write_atomic(work / "README.md", "not a spec\n")
    second = git_push(work, bare, "b")
    wait_for(lambda: steps_done(state, "domain/b:start") and
             steps_done(state, "domain/a:update"), timeout=20, what="second commit applied")
    plan = agent.wait_event("plan.computed", where=lambda r: r.get("commit") == second)
    assert plan["create"] == 1 and plan["update"] == 1  # one pass for the whole commit
    synced = agent.wait_event("git.synced", where=lambda r: r["commit"] == second)
    assert synced
    wait_for(lambda: json.loads((state / "agent-status.json").read_text()).get("commit")
             == second, what="commit in status")
    assert os.readlink(state / "git" / "current").endswith(second)
    assert agent.stop() == 0
