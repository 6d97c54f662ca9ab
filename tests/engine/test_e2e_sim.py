"""The whole plan/apply story on `sim`, through the real CLI, one step after another."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine.lock import StateLock
from tests.conformance.harness import UNPRIVILEGED
from tests.conftest import run_cli


def write(specs: Path, name: str, *docs: dict[str, Any]) -> None:
    (specs / name).write_text(yaml.safe_dump_all(docs))


def plan_json(specs: Path, state: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--format", "json",
                  "--detailed-exitcode", *extra)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout)


def objects(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["object"]: o for o in plan["objects"]}


def sim_record(state: Path, name: str) -> dict[str, Any] | None:
    path = state / "sim" / "objects" / "Domain" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def apply(specs: Path | str, state: Path) -> Any:
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert "Traceback" not in res.stderr, res.stderr
    return res


WEB = {"kind": "Domain", "name": "web", "type": "lxc", "memory": "256MiB", "hostname": "web",
       "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
       "interfaces": [{"type": "bridge", "source": "lanbr", "ip": ["192.0.2.10/24"]}],
       "idmap": UNPRIVILEGED}
DB = {"kind": "Domain", "name": "db", "type": "lxc", "memory": "512MiB", "depends_on": ["web"],
      "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
      "idmap": UNPRIVILEGED}
VZ = {"kind": "Domain", "name": "vz105", "type": "openvz", "id": 105, "profile": "vps.basic",
      "filesystems": [{"type": "template", "name": "gentoo-20060317-i686-stage3", "target": "/"}]}
LAN = {"kind": "Network", "name": "lan", "forward": {"mode": "nat"}, "bridge": {"name": "lanbr"},
       "ips": [{"address": "192.0.2.1/24",
                "dhcp_ranges": [{"start": "192.0.2.100", "end": "192.0.2.200"}]}]}


def test_plan_apply_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the LXC guests here are previewed as the lxc driver (LXC's own tools) runs them
    config = tmp_path / "agent.yaml"
    config.write_text("drivers: {sim: {imitate: {lxc: lxc}}}\n")
    monkeypatch.setenv("RECONCILER_CONFIG", str(config))
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    write(specs, "net.yaml", LAN)
    write(specs, "web.yaml", WEB)
    write(specs, "db.yaml", DB)
    write(specs, "vz.yaml", VZ)

    # 1. first plan: everything to create, exit 2; networks and dependencies first
    code, plan = plan_json(specs, state)
    assert code == 2
    assert plan["summary"]["create"] == 4
    order = [s["id"] for s in plan["steps"]]
    assert order.index("network/lan:start") < order.index("domain/web:provision")
    assert order.index("domain/web:start") < order.index("domain/db:provision")
    assert [s["kind"] for s in plan["steps"] if s["object"] == "domain/web"] == \
        ["provision", "define", "start"]

    # 2. apply, then the plan is empty
    res = apply(specs, state)
    assert res.returncode == 0, res.stderr
    assert "note: using the simulated host" in res.stderr  # no driver was chosen
    code, plan = plan_json(specs, state)
    assert code == 0 and plan["steps"] == [] and plan["objects"] == []
    assert sim_record(state, "vz105")["running"] is True  # type: ignore[index]
    assert sim_record(state, "vz105")["config"]["limits"]["numproc"] == [65, 65]  # type: ignore[index]

    # 3. memory change: live update, no restart
    write(specs, "web.yaml", {**WEB, "memory": "384MiB"})
    code, plan = plan_json(specs, state)
    web = objects(plan)["domain/web"]
    assert (code, web["action"], web["update"]) == (2, "update", "live")
    assert web["changes"] == [{"field": "memory", "old": "256MiB", "new": "384MiB",
                               "class": "live", "origin": "spec"}]
    text = run_cli("plan", str(specs), "--state-dir", str(state)).stdout
    assert "~ domain/web (lxc) update (live)" in text and "memory: 256MiB -> 384MiB" in text
    assert apply(specs, state).returncode == 0
    assert sim_record(state, "web")["boots"] == 1  # type: ignore[index]

    # 4. hostname change on an LXC-like domain: restart, stop -> update -> start
    write(specs, "web.yaml", {**WEB, "memory": "384MiB", "hostname": "web2"})
    code, plan = plan_json(specs, state)
    web = objects(plan)["domain/web"]
    assert (web["action"], web["update"]) == ("update", "restart")
    assert [s["kind"] for s in plan["steps"] if s["object"] == "domain/web"] == \
        ["stop", "update", "start"]
    assert "update (restart)" in run_cli("plan", str(specs), "--state-dir", str(state)).stdout
    assert apply(specs, state).returncode == 0
    assert sim_record(state, "web")["boots"] == 2  # type: ignore[index]
    assert sim_record(state, "web")["config"]["hostname"] == "web2"  # type: ignore[index]

    # 5. OpenVZ template change: replace refused, nothing happens
    vz_new = {**VZ, "filesystems": [{"type": "template", "name": "debian-12", "target": "/"}]}
    write(specs, "vz.yaml", vz_new)
    code, plan = plan_json(specs, state)
    vz = objects(plan)["domain/vz105"]
    assert vz["action"] == "refused" and "allow_replace" in vz["notes"][0]
    assert not [s for s in plan["steps"] if s["object"] == "domain/vz105"]
    assert "replace refused" in run_cli("plan", str(specs), "--state-dir", str(state)).stdout
    write(specs, "vz.yaml", VZ)

    # 6. remove a spec file: stop + undefine, data kept
    (specs / "db.yaml").unlink()
    code, plan = plan_json(specs, state)
    db = objects(plan)["domain/db"]
    assert db["action"] == "remove"
    assert [s["kind"] for s in plan["steps"] if s["object"] == "domain/db"] == ["stop", "undefine"]
    assert apply(specs, state).returncode == 0
    assert sim_record(state, "db") is None
    assert (state / "sim" / "data" / "db").is_dir()

    # 7. protect: true blocks removal even after the spec is gone
    write(specs, "web.yaml", {**WEB, "memory": "384MiB", "hostname": "web2", "protect": True})
    assert apply(specs, state).returncode == 0
    (specs / "web.yaml").unlink()
    code, plan = plan_json(specs, state)
    web = objects(plan)["domain/web"]
    assert web["action"] == "refused" and "protect" in web["notes"][0]
    assert not plan["steps"]
    write(specs, "web.yaml", {**WEB, "memory": "384MiB", "hostname": "web2", "protect": True})

    # 8. a broken file holds its objects: no change, no removal, reported
    (specs / "vz.yaml").write_text("kind: Domain\nname: vz105\ntype: openvz\nmemory: [oops\n")
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--format", "json")
    plan = json.loads(res.stdout)
    assert objects(plan)["domain/vz105"]["action"] == "held"
    assert "vz.yaml:" in res.stderr and "error:" in res.stderr
    assert res.returncode == 1
    res = apply(specs, state)
    assert sim_record(state, "vz105")["running"] is True  # type: ignore[index]
    assert '"event":"object.held"' in res.stderr.replace(" ", "")
    write(specs, "vz.yaml", VZ)

    # 9. an emptied directory: the removal breaker refuses, nothing is removed
    for path in specs.iterdir():
        path.unlink()
    code, plan = plan_json(specs, state)
    assert any("removal refused" in n for n in plan["notes"])
    assert not plan["steps"]
    res = apply(specs, state)
    assert sim_record(state, "vz105") is not None and sim_record(state, "web") is not None
    assert "removal refused" in res.stdout


def test_saved_plan_applied_and_stale_plan_refused(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    write(specs, "web.yaml", {**WEB, "interfaces": []})
    saved = tmp_path / "plan.json"
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--out", str(saved))
    assert res.returncode == 0 and saved.exists()
    # the spec changes after the plan was saved: apply FILE applies exactly the saved plan
    write(specs, "web.yaml", {**WEB, "interfaces": [], "memory": "1GiB"})
    res = run_cli("apply", str(saved), "--state-dir", str(state), "--yes")
    assert res.returncode == 0, res.stderr
    assert sim_record(state, "web")["config"]["memory"] == "256MiB"  # type: ignore[index]

    # a plan made, then the host moves: applying it is refused for that object
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--out", str(saved))
    from reconciler.drivers.sim import SimDriver
    from reconciler.model.fields import Ref

    SimDriver(state).tamper(Ref("Domain", "web"), running=False)
    res = run_cli("apply", str(saved), "--state-dir", str(state), "--yes")
    assert res.returncode == 1
    assert "changed since the plan was made" in res.stderr
    assert sim_record(state, "web")["config"]["memory"] == "256MiB"  # type: ignore[index]


def test_markdown_and_sim_notice(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    write(specs, "web.yaml", {**WEB, "interfaces": []})
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "st"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    res = run_cli("plan", str(specs), "--format", "markdown", env=env)
    assert res.returncode == 0
    assert res.stdout.startswith("### reconciler plan")
    assert "| + | `domain/web` | lxc | create |" in res.stdout
    assert "simulated host 'sim'" in res.stderr and str(tmp_path / "st") in res.stderr


def test_apply_without_yes_refuses_when_not_a_terminal(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    write(specs, "web.yaml", {**WEB, "interfaces": []})
    res = run_cli("apply", str(specs), "--state-dir", str(tmp_path / "st"))
    assert res.returncode == 1 and "--yes" in res.stderr
    assert not (tmp_path / "st" / "sim" / "objects" / "Domain" / "web.json").exists()


def test_apply_refuses_while_an_agent_holds_the_state_directory(tmp_path: Path) -> None:
    """`apply` takes the agent's lock for its whole run: with an agent on the state directory
    it changes nothing and says who holds it; `status` does not take an apply for an agent."""
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    write(specs, "db.yaml", DB | {"depends_on": []})
    with StateLock(state, "agent"):
        res = apply(specs, state)
        assert res.returncode == 1
        assert f"a reconciler agent (pid {os.getpid()}) is running" in res.stderr
        assert sim_record(state, "db") is None
        assert not (state / "journal.jsonl").exists()
        imported = run_cli("import", "--driver", "sim", "--state-dir", str(state), "--out",
                           str(tmp_path / "imported"))
        assert imported.returncode == 1 and "stop it before running import" in imported.stderr
    with StateLock(state, "apply"):
        assert run_cli("status", "--state-dir", str(state)).returncode == 3  # not running
    (tmp_path / "file").write_text("")
    for command in ("apply", "plan", "show"):
        res = run_cli(command, *([str(specs)] if command != "show" else []), "--state-dir",
                      str(tmp_path / "file" / "state"))
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert "Not a directory; choose a state directory you can write" in res.stderr
    res = apply(specs, state)
    assert res.returncode == 0, res.stderr
    assert (sim_record(state, "db") or {}).get("running")


def test_journal_is_set_aside_past_its_size(tmp_path: Path) -> None:
    """Past `journal_max_bytes`, the next apply starts a new journal; one older file is kept,
    and a plan's records never straddle the two."""
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    config = tmp_path / "agent.yaml"
    config.write_text("journal_max_bytes: 4KiB\n")
    plan_ids = []
    for memory in ("128MiB", "256MiB", "384MiB"):
        for n in range(4):
            write(specs, f"d{n}.yaml", {**DB, "name": f"d{n}", "memory": memory,
                                        "depends_on": []})
        res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes",
                      "--config", str(config))
        assert res.returncode == 0, res.stderr
        plan_ids.append(re.search(r"Apply (\w+):", res.stdout).group(1))  # type: ignore[union-attr]

    def records(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    current, older = records(state / "journal.jsonl"), records(state / "journal.jsonl.1")
    assert {r["plan_id"] for r in current if "plan_id" in r} == {plan_ids[2]}
    assert current[0]["event"] == "plan" and current[0]["plan_id"] == plan_ids[2]
    assert {r["plan_id"] for r in older if "plan_id" in r} == {plan_ids[1]}  # the first is gone
    assert not list(state.glob("journal.jsonl.2"))

    config.write_text("journal_max_bytes: lots\n")
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes",
                  "--config", str(config))
    assert res.returncode == 1 and "journal_max_bytes" in res.stderr
