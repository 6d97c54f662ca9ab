"""The agent survives what lands in its spec directory: a FIFO, a link to /dev/zero, a link to
a secret outside the directory. Each is reported as a held file with a reason, no byte of a
linked secret appears anywhere, the other specs still apply, /healthz keeps answering, and
SIGTERM still stops the agent."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import base_args, git_push, git_repo, sim_record, spec_text, wait_for, write_atomic

SECRET = "root:$6$NotARealHashButSecret$abcdefghijklmnop:19000:0:99999:7:::"


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fifo_device_and_secret_links_are_reported_never_read(dirs, start_agent, tmp_path):
    specs, state = dirs
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    os.mkfifo(specs / "pipe.yaml")
    (specs / "zero.yaml").symlink_to("/dev/zero")
    (specs / "leak.yaml").symlink_to(secret)
    write_atomic(specs / "good.yaml", spec_text("good"))
    args = base_args(specs, state)
    args[args.index("--http") + 1] = "127.0.0.1:0"
    agent = start_agent(*args)
    port = agent.wait_event("http.listening")["port"]
    agent.wait_idle()
    assert (sim_record(state, "good") or {}).get("running") is True

    # the pass is logged just before the status file is written
    status = wait_for(lambda: (state / "agent-status.json").exists() and
                      json.loads((state / "agent-status.json").read_text()),
                      what="the status file")
    held = {Path(h["file"]).name: " ".join(h["errors"]) for h in status["held_files"]}
    assert "not a regular file" in held["pipe.yaml"]
    assert "outside the spec directory" in held["zero.yaml"]
    assert "outside the spec directory" in held["leak.yaml"]

    # a FIFO that appears while the agent runs does not stall it: the next spec applies
    os.mkfifo(specs / "later.yaml")
    write_atomic(specs / "after.yaml", spec_text("after"))
    wait_for(lambda: (sim_record(state, "after") or {}).get("running"), what="after applied")
    assert _get(port, "/healthz")[0] in (200, 503)

    for where in (agent.text(), (state / "agent-status.json").read_text(),
                  (state / "journal.jsonl").read_text()):
        assert "NotARealHash" not in where
    assert agent.stop() == 0


def test_sigterm_is_answered_at_once_even_with_a_fifo_pending(dirs, start_agent):
    specs, state = dirs
    agent = start_agent(*base_args(specs, state))
    agent.wait_idle()
    os.mkfifo(specs / "stuck.yaml")  # an event for a file no reader could ever finish
    agent.wait_event("specs.changed", where=lambda r: any("stuck.yaml" in f
                                                          for f in r.get("files", ())))
    agent.signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=10) == 0


def test_two_thousand_idle_connections_do_not_stop_healthz(dirs, start_agent):
    import resource
    import socket

    specs, state = dirs
    write_atomic(specs / "good.yaml", spec_text("good"))
    args = base_args(specs, state)
    args[args.index("--http") + 1] = "127.0.0.1:0"
    agent = start_agent(*args)
    port = agent.wait_event("http.listening")["port"]
    agent.wait_idle()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        idle[-1].sendall(b"GET /hea")  # and one that never finishes its request
        code, body = _get(port, "/healthz")
        assert code == 200 and body["status"] == "ok"
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert agent.stop() == 0


def test_a_commit_linking_outside_is_refused_and_the_next_good_one_applies(tmp_path,
                                                                           start_agent):
    bare, work = git_repo(tmp_path, "a")
    state = tmp_path / "state"

    def push(message: str) -> str:
        return git_push(work, bare, message)

    agent = start_agent("hosts", "--git", f"file://{bare}", "--branch", "main",
                        "--interval", "1", "--state-dir", str(state), "--driver", "sim",
                        "--http", "127.0.0.1:0", "--resync", "0")
    port = agent.wait_event("http.listening")["port"]
    agent.wait_idle()
    assert (sim_record(state, "a") or {}).get("running")

    (work / "hosts" / "passwd.yaml").symlink_to("/etc/passwd")
    bad = push("link out")
    refused = agent.wait_event("git.refused", timeout=20)
    assert bad[:12] in refused["error"] and "links outside the repository" in refused["error"]
    code, body = _get(port, "/healthz")
    assert code == 503 and any(r.startswith("git: ") for r in body["reasons"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert "reconciler_git_up 0.0" in resp.read().decode()
    def refused_in_status() -> str:  # the status file is rewritten after the event
        return json.loads((state / "agent-status.json").read_text())["git"]["refused"] or ""

    wait_for(refused_in_status, timeout=10, what="the refusal in agent-status.json")
    assert "links outside" in refused_in_status()

    (work / "hosts" / "passwd.yaml").unlink()
    write_atomic(work / "hosts" / "b.yaml", spec_text("b"))
    good = push("fixed")
    wait_for(lambda: (sim_record(state, "b") or {}).get("running"), timeout=20,
             what="the next good commit applied")
    agent.wait_event("git.synced", where=lambda r: r["commit"] == good)
    wait_for(lambda: _get(port, "/healthz")[0] == 200, what="healthz ok again")
    assert agent.stop() == 0
