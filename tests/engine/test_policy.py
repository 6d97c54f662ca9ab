"""The host policy and the safety rules of a plan, on `sim`: a spec can never reach the host
beyond what the agent config allows, and no way of asking gets data erased when protect says
no. Plans are checked as data, and through the CLI as people run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine import compute_plan
from reconciler.engine.config import build_hosts, load_config
from reconciler.engine.plan import Plan
from reconciler.engine.policy import Policy
from tests.conformance.harness import UNPRIVILEGED, apply_pass
from tests.conftest import run_cli

ROOT = {"type": "template", "name": "busybox", "target": "/"}


def guest(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "filesystems": [ROOT], "idmap": UNPRIVILEGED, **more}


def write(specs: Path, *docs: dict[str, Any]) -> None:
    specs.mkdir(exist_ok=True)
    for doc in docs:
        (specs / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))


def plan_with(tmp: Path, policy: dict[str, Any] | None = None) -> Plan:
    config_file = tmp / "agent.yaml"
    config_file.write_text(yaml.safe_dump({"policy": policy or {}}))
    config = load_config(str(config_file), state_dir=str(tmp / "state"))
    hosts = build_hosts(config)
    try:
        return compute_plan([str(tmp / "specs")], hosts, config.settings).plan
    finally:
        hosts.close()


def refused(plan: Plan, name: str) -> list[tuple[str, str | None]]:
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert obj.action == "refused", obj
    return [(r.field, r.allow) for r in obj.refusals]


# --------------------------------------------------------------------------- host policy

def test_default_policy_refuses_a_bind_mount_of_root_and_a_host_root_container(
        tmp_path: Path) -> None:
    """The issue's own example: allowing them in the agent config makes the same specs apply."""
    specs = tmp_path / "specs"
    keys = guest("keys", filesystems=[ROOT, {"source": "/root", "target": "/mnt/root"}])
    hostroot = guest("hostroot", filesystems=[{"source": "/", "target": "/"}])
    write(specs, keys, hostroot)
    plan = plan_with(tmp_path)
    assert refused(plan, "keys") == [("filesystems.1.source", "policy.mount_roots")]
    assert set(refused(plan, "hostroot")) == {("filesystems.0", "policy.host_root"),
                                              ("filesystems.0.source", "policy.mount_roots")}
    assert not plan.steps
    # the CLI says so and exits 1; nothing reaches the simulated host
    res = run_cli("apply", str(specs), "--state-dir", str(tmp_path / "state"), "--yes")
    assert res.returncode == 1
    assert "allowed by policy.mount_roots" in res.stdout
    assert not list((tmp_path / "state" / "sim" / "objects" / "Domain").iterdir())

    allowed = {"mount_roots": ["/root", "/"], "host_root": True}
    plan = plan_with(tmp_path, allowed)
    assert {o.ref.name: o.action for o in plan.objects} == {"keys": "create",
                                                            "hostroot": "create"}
    res = run_cli("apply", str(specs), "--state-dir", str(tmp_path / "state"), "--yes",
                  "--config", str(tmp_path / "agent.yaml"))  # the same specs now apply
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in (tmp_path / "state" / "sim" / "objects" / "Domain").iterdir()
                  ) == ["hostroot.json", "keys.json"]


def test_sensitive_directories_need_naming_not_a_broader_root() -> None:
    policy = Policy.from_config({"mount_roots": ["/", "/etc/ssl"]}, "/var/lib/reconciler")
    assert policy.path_refusal("/srv/data") is None
    assert policy.path_refusal("/etc/ssl/certs") is None
    for path in ("/etc/shadow", "/root/.ssh", "/proc/1", "/sys/kernel", "/dev/sda",
                 "/var/lib/reconciler", "/var/lib/reconciler/journal.jsonl", "/boot"):
        assert policy.path_refusal(path), path
    assert Policy.from_config({}, "/s").path_refusal("/srv/data")  # nothing allowed by default


@pytest.mark.parametrize("change, key", [
    ({"idmap": []}, "policy.privileged"),
    ({"interfaces": [{"type": "hostdev", "source": "eth1"}]}, "policy.host_nics"),
    ({"filesystems": [ROOT, {"type": "block", "source": "/dev/sdb1", "target": "/data"}]},
     "policy.host_devices"),
])
def test_each_reach_into_the_host_names_its_key(tmp_path: Path, change: dict[str, Any],
                                               key: str) -> None:
    write(tmp_path / "specs", guest("g", **change))
    assert key in [allow for _, allow in refused(plan_with(tmp_path), "g")]
    allow = {"privileged": True, "host_nics": True, "host_devices": True}
    plan = plan_with(tmp_path, allow)
    assert [o.action for o in plan.objects] == ["create"]


@pytest.mark.parametrize("piece", [
    "<emulator>/tmp/evil</emulator>",
    "<disk type='file' device='disk'><source file='/etc/shadow'/><target dev='vda'/></disk>",
    "<hostdev mode='subsystem' type='usb'/>",
    "<serial type='file'><source path='/etc/cron.d/x'/></serial>",
])
def test_kept_xml_that_hands_over_host_resources_needs_host_devices(
        tmp_path: Path, piece: str) -> None:
    write(tmp_path / "specs", {"kind": "Domain", "name": "vm", "type": "kvm",
                               "os": {"type": "hvm"}, "memory": "64MiB",
                               "devices_xml": [piece]})
    assert refused(plan_with(tmp_path), "vm") == [("devices_xml.0", "policy.host_devices")]


def test_harmless_kept_xml_passes(tmp_path: Path) -> None:
    write(tmp_path / "specs", {"kind": "Domain", "name": "vm", "type": "kvm",
                               "os": {"type": "hvm"}, "memory": "64MiB",
                               "devices_xml": ["<serial type='pty'/>",
                                               "<controller type='usb'/>"]})
    assert [o.action for o in plan_with(tmp_path).objects] == ["create"]


# --------------------------------------------------------------------------- templates

@pytest.mark.parametrize("root, field", [
    ({"type": "template", "name": "/tmp/evil-script", "target": "/"}, None),
    ({"type": "template", "name": "busybox", "target": "/", "options": ["--rootfs=/etc"]},
     "filesystems.0.options.0"),
    ({"type": "template", "name": "busybox", "target": "/", "options": ["--path", "/root"]},
     "filesystems.0.options.0"),
    ({"type": "template", "name": "busybox", "target": "/", "options": ["--root=/etc"]},
     "filesystems.0.options.0"),
    ({"type": "template", "name": "busybox", "target": "/", "options": ["-p/etc"]},
     "filesystems.0.options.0"),
    ({"type": "template", "name": "local", "target": "/"}, "filesystems.0.name"),
])
def test_a_template_is_a_name_and_its_options_cannot_move_the_container(
        tmp_path: Path, root: dict[str, Any], field: str | None) -> None:
    """On LXC a template is a program the host runs as root: a path is refused by the model
    (nothing loads), an option that moves the rootfs or names a host path by the plan."""
    config = tmp_path / "agent.yaml"
    config.write_text("drivers: {sim: {imitate: {lxc: lxc}}}\n")
    write(tmp_path / "specs", guest("t", filesystems=[root]))
    res = run_cli("plan", str(tmp_path / "specs"), "--state-dir", str(tmp_path / "state"),
                  "--config", str(config), "--format", "json")
    assert res.returncode == 1
    plan = json.loads(res.stdout)
    if field is None:
        assert "not a valid name here" in res.stderr and plan["steps"] == []
        return
    [obj] = plan["objects"]
    assert obj["action"] == "refused"
    assert field in [r["field"] for r in obj["refusals"]]


# --------------------------------------------------------------------------- protect, breaker

def test_protect_holds_against_state_absent_with_purge_and_against_allow_replace(
        tmp_path: Path) -> None:
    specs, config = tmp_path / "specs", load_config(None, state_dir=str(tmp_path / "state"))
    write(specs, guest("keep", protect=True, removal="purge"))
    apply_pass(config, specs)
    data = tmp_path / "state" / "sim" / "data" / "keep"
    assert data.is_dir()
    # state: absent + purge, protect still on (in the spec and on the host)
    write(specs, guest("keep", protect=True, removal="purge", state="absent"))
    plan, _ = apply_pass(config, specs)
    [obj] = [o for o in plan.objects if o.ref.name == "keep"]
    assert obj.action == "refused" and obj.refusals[0].cause == "protect"
    # protect dropped in the same edit: the host's stamp still says protect
    write(specs, guest("keep", removal="purge", state="absent"))
    plan, _ = apply_pass(config, specs)
    assert [o.action for o in plan.objects if o.ref.name == "keep"] == ["refused"]
    # a change that recreates the guest, replace allowed: protect wins
    write(specs, guest("keep", protect=True, allow_replace=True, filesystems=[
        {"type": "template", "name": "empty", "target": "/"}]))
    plan, _ = apply_pass(config, specs)
    [obj] = [o for o in plan.objects if o.ref.name == "keep"]
    assert obj.action == "refused" and obj.refusals[0].allow == "protect: false"
    assert data.is_dir() and not plan.steps


def test_state_absent_counts_toward_the_removal_breaker(tmp_path: Path) -> None:
    specs, config = tmp_path / "specs", load_config(None, state_dir=str(tmp_path / "state"))
    write(specs, *(guest(f"g{n}") for n in range(4)))
    apply_pass(config, specs)
    write(specs, *(guest(f"g{n}", state="absent") for n in range(3)))
    hosts = build_hosts(config)
    try:
        plan = compute_plan([str(specs)], hosts, config.settings).plan  # limit: half of them
    finally:
        hosts.close()
    assert plan.breaker is not None and "3 of 4" in plan.breaker
    assert {o.ref.name: o.action for o in plan.objects} == {
        "g0": "refused", "g1": "refused", "g2": "refused", "g3": "noop"}
    assert not plan.steps


def test_a_purge_shows_every_path_it_erases(tmp_path: Path) -> None:
    specs, config = tmp_path / "specs", load_config(None, state_dir=str(tmp_path / "state"))
    write(specs, guest("gone", removal="purge"), guest("other"))
    apply_pass(config, specs)
    write(specs, guest("gone", removal="purge", state="absent"), guest("other"))
    res = run_cli("plan", str(specs), "--state-dir", str(tmp_path / "state"))
    data = tmp_path / "state" / "sim" / "data" / "gone"
    assert f"erases: {data}" in res.stdout
