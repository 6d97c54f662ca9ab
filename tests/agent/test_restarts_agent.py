"""The agent with restart: defer: a change written without a restart shows as deferred in
`reconciler status`, in /metrics and in the journal, and clears once the guest booted again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

from .conftest import sim_record, wait_for, write_atomic
from .test_service import _get, _metric

VM = ("kind: Domain\nname: {name}\ntype: kvm\nos: {{type: hvm}}\nmemory: 64MiB\n"
      "restart: defer\ncpu: {{count: {count}}}\n")


def test_a_deferred_change_shows_in_status_metrics_and_journal(tmp_path: Path,
                                                                start_agent) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write_atomic(specs / "a.yaml", VM.format(name="a", count=1))
    agent = start_agent(str(specs), "--state-dir", str(state), "--driver", "sim", "--http",
                        "127.0.0.1:0", "--resync", "0", "--settle", "0.2")
    port = agent.wait_event("http.listening")["port"]
    wait_for(lambda: (sim_record(state, "a") or {}).get("running"))
    boots = sim_record(state, "a")["boots"]
    write_atomic(specs / "a.yaml", VM.format(name="a", count=2))
    wait_for(lambda: (sim_record(state, "a") or {}).get("config", {}).get("cpu") == {"count": 2})
    record = sim_record(state, "a")
    assert record["running"] and record["boots"] == boots  # written, not restarted
    metric = wait_for(lambda: _metric(_get(port, "/metrics")[1],
                                      "reconciler_object_restart_deferred", object="domain/a"))
    assert metric == 1
    assert _metric(_get(port, "/metrics")[1], "reconciler_objects", state="deferred") == 1
    status = json.loads(run_cli("status", "--state-dir", str(state), "--format",
                                "json").stdout)
    assert status["objects"]["domain/a"]["state"] == "deferred"
    assert "cpu.count" in status["objects"]["domain/a"]["note"]
    events = [json.loads(line)["event"] for line in
              (state / "journal.jsonl").read_text().split("\n") if line]
    assert "object.pending_restart" in events
    agent.stop()
