"""Unattended changes a fleet can live with, on `sim` through the real CLI (and the engine
with a test clock for windows): restart policy, maintenance windows, at most N restarts at
once, health-gated apply with rollback, history and revert."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reconciler.engine.config import build_hosts, load_config
from reconciler.engine.journal import Journal
from reconciler.engine.maintenance import Maintenance
from reconciler.engine.passes import apply_planned, compute_plan
from tests.conftest import run_cli


def vm(name: str, count: int = 1, **extra: Any) -> dict[str, Any]:
    """A kvm guest on sim (previewed as libvirt's QEMU driver: a new vCPU count needs a
    restart, memory balloons live)."""
    return {"kind": "Domain", "name": name, "type": "kvm", "os": {"type": "hvm"},
            "memory": "64MiB", "cpu": {"count": count}, **extra}


def write(specs: Path, *docs: dict[str, Any]) -> None:
    specs.mkdir(exist_ok=True)
    for doc in docs:
        (specs / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))


def record(state: Path, name: str) -> dict[str, Any]:
    return json.loads((state / "sim" / "objects" / "Domain" / f"{name}.json").read_text())


def apply(specs: Path, state: Path, *extra: str) -> Any:
    return run_cli("apply", str(specs), "--state-dir", str(state), "--yes", *extra)


def plan(specs: Path, state: Path, *extra: str) -> dict[str, dict[str, Any]]:
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--format", "json", *extra)
    assert "Traceback" not in res.stderr, res.stderr
    return {o["object"]: o for o in json.loads(res.stdout)["objects"]}


def marks(state: Path) -> dict[str, Any]:
    path = state / "marks.json"
    return json.loads(path.read_text()) if path.exists() else {}


def journal_events(state: Path, event: str) -> list[dict[str, Any]]:
    text = (state / "journal.jsonl").read_text()
    return [r for r in map(json.loads, filter(None, text.split("\n"))) if r["event"] == event]


def restart_behind_our_back(state: Path, name: str) -> None:
    """The guest reboots (a person, the host): another boot, the definition read again."""
    path = state / "sim" / "objects" / "Domain" / f"{name}.json"
    data = json.loads(path.read_text())
    data["boots"] += 1
    path.write_text(json.dumps(data))


def test_defer_writes_the_definition_and_keeps_the_guest_running(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a", restart="defer"))
    assert apply(specs, state).returncode == 0
    boots = record(state, "a")["boots"]
    write(specs, vm("a", count=2, restart="defer"))
    planned = plan(specs, state)["domain/a"]
    assert planned["update"] == "deferred" and planned["steps"] == ["domain/a:update"]
    assert planned["pending"] == ["cpu.count"]
    res = apply(specs, state)
    assert res.returncode == 0, res.stderr
    after = record(state, "a")
    assert after["config"]["cpu"]["count"] == 2  # written ...
    assert after["running"] and after["boots"] == boots  # ... without a restart
    assert marks(state)["pending"]["domain/a"]["fields"] == ["cpu.count"]
    assert journal_events(state, "object.pending_restart")
    shown = plan(specs, state)["domain/a"]
    assert shown["action"] == "pending" and shown["steps"] == []
    text = run_cli("plan", str(specs), "--state-dir", str(state)).stdout
    assert "restart pending" in text and "cpu.count" in text

    restart_behind_our_back(state, "a")  # the next boot makes it live
    assert "domain/a" not in plan(specs, state)
    assert apply(specs, state).returncode == 0
    assert "domain/a" not in marks(state)["pending"]


def test_apply_now_restarts_a_pending_change(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a", restart="defer"))
    apply(specs, state)
    write(specs, vm("a", count=2, restart="defer"))
    apply(specs, state)
    boots = record(state, "a")["boots"]
    res = apply(specs, state, "--now")
    assert res.returncode == 0, res.stderr
    assert record(state, "a")["boots"] == boots + 1
    assert "domain/a" not in marks(state)["pending"]


def test_refuse_changes_nothing_for_that_object_and_exits_1(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a", restart="refuse"), vm("b"))
    apply(specs, state)
    write(specs, vm("a", count=2, restart="refuse"), vm("b", count=2))
    planned = plan(specs, state)
    assert planned["domain/a"]["action"] == "refused"
    [refusal] = planned["domain/a"]["refusals"]
    assert refusal["cause"] == "restart" and refusal["field"] == "cpu.count"
    assert "restart policy is refuse" in refusal["reason"]
    res = apply(specs, state)
    assert res.returncode == 1
    assert record(state, "a")["config"]["cpu"]["count"] == 1
    assert record(state, "b")["config"]["cpu"]["count"] == 2  # the others apply


WINDOWS = {"timezone": "Europe/Berlin", "default": "nightly", "max_restarts": 1,
           "windows": {"nightly": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                    "start": "22:00", "end": "02:00"}]}}


def engine(tmp_path: Path, when: datetime, now: bool = False) -> tuple[Any, Any]:
    state = tmp_path / "state"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump({"maintenance": WINDOWS}))
    config = load_config(str(cfg), state_dir=str(state))
    return config, replace(config.settings, now=lambda: when, ignore_windows=now)


def run_pass(tmp_path: Path, specs: Path, when: datetime, now: bool = False) -> Any:
    config, settings = engine(tmp_path, when, now)
    hosts = build_hosts(config)
    journal = Journal(config.state_dir)
    try:
        planned = compute_plan([str(specs)], hosts, settings).plan
        apply_planned(planned, hosts, journal, max_restarts=config.maintenance.max_restarts)
        return planned
    finally:
        journal.close()
        hosts.close()


def test_a_restart_waits_outside_the_window_and_runs_inside_it(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a"))
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    run_pass(tmp_path, specs, monday_noon)  # a create needs no window
    boots = record(state, "a")["boots"]
    write(specs, vm("a", count=2))
    waited = run_pass(tmp_path, specs, monday_noon)
    [obj] = [o for o in waited.objects if o.action != "noop"]
    assert obj.action == "waiting" and not waited.steps
    assert "window nightly (opens 2026-11-30T22:00+01:00)" in obj.notes[0]
    assert record(state, "a")["config"]["cpu"]["count"] == 1
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 00:30 on Tuesday: still in it
    done = run_pass(tmp_path, specs, late)
    assert [o.update for o in done.objects] == ["restart"]
    assert record(state, "a")["config"]["cpu"]["count"] == 2
    assert record(state, "a")["boots"] == boots + 1
    saturday = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    write(specs, vm("a", count=3))
    assert run_pass(tmp_path, specs, saturday).objects[0].action == "waiting"
    forced = run_pass(tmp_path, specs, saturday, now=True)  # apply --now
    assert forced.objects[0].update == "restart"
    assert record(state, "a")["config"]["cpu"]["count"] == 3


def test_never_more_than_max_restarts_in_flight(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    names = [f"g{i}" for i in range(4)]
    write(specs, *(vm(n) for n in names))
    inside = datetime(2026, 11, 30, 21, 30, tzinfo=UTC)
    run_pass(tmp_path, specs, inside)
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(yaml.safe_dump({"maintenance": WINDOWS,
                                           "drivers": {"sim": {"latency": 0.2}}}))
    write(specs, *(vm(n, count=2) for n in names))
    config = load_config(str(config_file), state_dir=str(state))
    settings = replace(config.settings, now=lambda: inside)
    hosts = build_hosts(config)
    journal = Journal(config.state_dir)
    try:
        planned = compute_plan([str(specs)], hosts, settings).plan
        report = apply_planned(planned, hosts, journal, parallel=8,
                               max_restarts=config.maintenance.max_restarts)
    finally:
        journal.close()
        hosts.close()
    assert report is not None and report.ok
    spans = []
    starts = {e["step"]: e["ts"] for e in journal_events(state, "step.started")
              if e["plan_id"] == planned.id}
    ends = {e["step"]: e["ts"] for e in journal_events(state, "step.succeeded")
            if e["plan_id"] == planned.id}
    for name in names:
        spans.append((starts[f"domain/{name}:stop"], ends[f"domain/{name}:start"]))
    spans.sort()
    for (_, end), (begin, _) in itertools.pairwise(spans):
        assert end <= begin  # one restart at a time (max_restarts: 1)
    assert Maintenance.from_config(None, WINDOWS).max_restarts == 1


def test_a_failed_health_check_rolls_back_and_is_not_retried(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(
        {"drivers": {"sim": {"imitate": {"lxc": "lxc"}}}}))
    guest = {"kind": "Domain", "name": "h", "type": "lxc", "memory": "64MiB",
             "hostname": "one", "filesystems": [{"type": "template", "name": "busybox",
                                                 "target": "/"}],
             "idmap": [{"kind": "uid", "start": 0, "target": 100000, "count": 65536},
                       {"kind": "gid", "start": 0, "target": 100000, "count": 65536}],
             "health": {"command": ["/bin/check"], "timeout": 2}}
    config = ["--config", str(tmp_path / "agent.yaml")]
    write(specs, guest)
    res = apply(specs, state, *config)
    assert res.returncode == 0, res.stderr
    assert [e["step"] for e in journal_events(state, "step.succeeded")][-1] == "domain/h:verify"
    (state / "sim" / "faults.json").write_text(json.dumps(
        [{"step": "verify", "object": "h", "mode": "fail"}]))
    write(specs, {**guest, "hostname": "two"})
    res = apply(specs, state, *config)
    assert res.returncode == 1
    assert "health check failed" in res.stderr and "rolled back" in res.stderr
    after = record(state, "h")
    assert after["running"] and after["config"]["hostname"] == "one"  # the old spec is back
    assert marks(state)["rolled_back"]["domain/h"]["reason"].startswith("health check failed")
    again = plan(specs, state, *config)["domain/h"]
    assert again["action"] == "rolled_back" and again["steps"] == []  # not retried
    (state / "sim" / "faults.json").unlink()
    write(specs, {**guest, "hostname": "three"})  # a changed spec is tried
    res = apply(specs, state, *config)
    assert res.returncode == 0, res.stderr
    assert record(state, "h")["config"]["hostname"] == "three"
    assert "domain/h" not in marks(state)["rolled_back"]


def test_history_and_revert_round_trip(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a"))
    apply(specs, state)
    first = json.loads(run_cli("history", "a", "--state-dir", str(state), "--format",
                               "json").stdout)
    assert [e["action"] for e in first] == ["create"] and first[0]["outcome"] == "applied"
    write(specs, vm("a", count=2))
    apply(specs, state)
    write(specs, vm("a", count=3))
    apply(specs, state)
    listed = json.loads(run_cli("history", "a", "--state-dir", str(state), "--format",
                                "json").stdout)
    assert [e["action"] for e in listed] == ["create", "update", "update"]
    assert listed[1]["changes"][0]["field"] == "cpu.count"
    text = run_cli("history", "domain/a", "--state-dir", str(state)).stdout
    assert first[0]["plan_id"] in text and "cpu.count: 1 -> 2" in text
    res = run_cli("revert", "a", "--to", first[0]["plan_id"][:6], "--state-dir", str(state),
                  "--yes")
    assert res.returncode == 0, res.stderr
    assert record(state, "a")["config"]["cpu"]["count"] == 1
    assert "still holds the newer spec" in res.stderr
    write(specs, vm("a"))  # the file back as it was at the first plan: nothing to do
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--detailed-exitcode")
    assert res.returncode == 0, res.stdout


def test_revert_on_a_git_host_names_the_commit_instead(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a"))
    apply(specs, state)
    [entry] = json.loads(run_cli("history", "--state-dir", str(state), "--format",
                                 "json").stdout)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump({"git": {"url": "file:///nowhere/repo.git"}}))
    res = run_cli("revert", "a", "--to", entry["plan_id"], "--state-dir", str(state),
                  "--config", str(cfg), "--yes")
    assert res.returncode == 1 and "revert the change in the repository" in res.stderr


def test_the_shipped_maintenance_example_loads(tmp_path: Path) -> None:
    """deploy/agent.yaml's commented restart: and maintenance: block, uncommented, is a valid
    config with its window."""
    from tests.conftest import REPO

    text = (REPO / "deploy" / "agent.yaml").read_text()
    block = text[text.index("# restart:"):].split("\n\n", 1)[0]
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(re.sub(r"^# ?", "", block, flags=re.M))
    maint = load_config(str(config_file), state_dir=str(tmp_path / "state")).maintenance
    assert maint.restart == "defer" and maint.default == "nightly" and maint.max_restarts == 2
    tuesday_three = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 03:00 in Berlin
    assert maint.windows["nightly"].is_open(tuesday_three)
    assert not maint.windows["nightly"].is_open(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


def test_window_config_errors_are_clear() -> None:
    import pytest

    from reconciler.errors import ConfigError

    bad = [({"timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
           ({"windows": {"w": [{"days": ["mon"], "start": "25:00", "end": "02:00"}]}},
            "'25:00' is not a time of day HH:MM"),
           ({"windows": {"w": [{"days": ["someday"], "start": "01:00", "end": "02:00"}]}},
            "valid: mon, tue"),
           ({"default": "nope"}, "no window named 'nope'"),
           ({"windows": {"always": [{"days": ["mon"], "start": "01:00", "end": "02:00"}]}},
            "'always' is reserved"),
           ({"max_restarts": -1}, "max_restarts must be a whole number")]
    for block, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            Maintenance.from_config(None, block)
    with pytest.raises(ConfigError, match="restart: 'sometimes' is not one of"):
        Maintenance.from_config("sometimes", None)


def test_a_spec_naming_an_unknown_window_is_refused(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    write(specs, vm("a", window="weekend"))
    [refusal] = plan(specs, state)["domain/a"]["refusals"]
    assert refusal["field"] == "window" and "not a maintenance window" in refusal["reason"]
