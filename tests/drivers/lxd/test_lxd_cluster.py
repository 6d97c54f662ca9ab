"""The lxd driver on a three-member LXD cluster on this machine (each member with its own
LXD_DIR and namespaces, tests/lxd/daemons.py): placement on members and groups, a changed
target as a move (data kept), running moves only with allow_move, evacuation reported as the
cluster's own move, networks made on every member, import pinning instances where they run,
and the same driver over HTTPS with a client certificate (its event stream too)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.drivers.lxd import LxdDriver
from reconciler.engine.render import text
from reconciler.model.fields import Ref
from tests.lxd import daemons, support
from tests.lxd.support import actions, kinds
from tests.lxd.world import World


def _where(world: World, name: str) -> str:
    return str(world.instance(name)["location"])


def test_targets_place_instances_on_the_members_they_name(cworld: World) -> None:
    a, b = cworld.name("a"), cworld.name("b")
    cworld.write(a, support.spec(a, target="node2"))
    cworld.write(b, support.spec(b, target="node3", state="stopped"))
    plan = cworld.plan()
    assert actions(plan) == {a: "create", b: "create"}
    shown = text(plan)
    assert "node2" in shown and "node3" in shown  # the plan shows where each goes
    cworld.apply()
    assert (_where(cworld, a), _where(cworld, b)) == ("node2", "node3")
    assert cworld.instance(a)["status"] == "Running"
    assert cworld.plan().steps == ()


def test_a_changed_target_moves_a_stopped_instance_with_its_data(cworld: World) -> None:
    name = cworld.name("mv")
    cworld.write(name, support.spec(name, target="node2", state="stopped"))
    cworld.apply()
    cworld.daemon.lxc("file", "push", "-", f"{name}/root/marker", input="kept\n")
    cworld.write(name, support.spec(name, target="node3", state="stopped"))
    plan, _ = cworld.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, [c.field for c in obj.changes]) == ("update", ["target"])
    assert kinds(plan, name) == ["update"]  # a move: never a purge and a new instance
    assert _where(cworld, name) == "node3"
    pulled = cworld.daemon.lxc("file", "pull", f"{name}/root/marker", "-")
    assert pulled.stdout == "kept\n"
    assert cworld.plan().steps == ()


def test_a_running_instance_moves_only_with_allow_move(cworld: World) -> None:
    name = cworld.name("run")
    cworld.write(name, support.spec(name, target="node2"))
    cworld.apply()
    cworld.write(name, support.spec(name, target="node1"))
    plan = cworld.plan()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert obj.action == "refused" and kinds(plan, name) == []
    assert [(r.field, r.allow) for r in obj.refusals] == [("target", "allow_move: true")]
    cworld.write(name, support.spec(name, target="node1", allow_move=True))
    plan, _ = cworld.apply()
    assert kinds(plan, name) == ["stop", "update", "start"]
    found = cworld.instance(name)
    assert (found["location"], found["status"]) == ("node1", "Running")
    assert support.boots(cworld.daemon, name) == 2
    assert cworld.plan().steps == ()


@pytest.fixture
def evacuated(lxd_cluster: daemons.LxdCluster) -> Iterator[str]:
    yield "node2"
    lxd_cluster.first.lxc("cluster", "restore", "node2", "--force", check=False)


def test_an_evacuation_is_reported_as_the_clusters_move(cworld: World,
                                                        evacuated: str) -> None:
    name, late = cworld.name("ev"), cworld.name("late")
    cworld.write(name, support.spec(name, target=evacuated))
    cworld.apply()
    cworld.daemon.lxc("cluster", "evacuate", evacuated, "--force")
    found = cworld.instance(name)
    assert found["location"] != evacuated and found["status"] == "Running"
    plan = cworld.plan()
    assert plan.steps == () and actions(plan) == {}
    assert [n for n in plan.notes if n.startswith(f"domain/{name}: moved by the cluster from "
                                                  f"{evacuated} to {found['location']}")]
    driver = LxdDriver(cworld.tmp / "state", **support.options(cworld.daemon, cworld.prefix))
    try:
        live = {o.ref.name: o for o in driver.observe()}
        assert live[name].extra["moved_by_cluster"] == {"from": evacuated,
                                                        "to": found["location"]}
    finally:
        driver.close()
    cworld.write(late, support.spec(late, target=evacuated))  # nothing new goes there
    refused = next(o for o in cworld.plan().objects if o.ref.name == late)
    assert refused.action == "refused" and "evacuated" in refused.refusals[0].reason
    cworld.remove(late)
    cworld.daemon.lxc("cluster", "restore", evacuated, "--force")
    assert _where(cworld, name) == evacuated  # LXD brought it back itself
    assert cworld.plan().steps == ()


@pytest.fixture
def group(cworld: World) -> Iterator[str]:
    name = f"g{cworld.prefix}"
    first = cworld.daemon
    first.lxc("cluster", "group", "create", name)
    for member in ("node2", "node3"):
        first.lxc("cluster", "group", "assign", member, f"default,{name}")
    yield name
    for member in ("node2", "node3"):
        first.lxc("cluster", "group", "assign", member, "default", check=False)
    first.lxc("cluster", "group", "delete", name, check=False)


def test_a_group_target_places_within_the_group(cworld: World, group: str) -> None:
    name = cworld.name("grp")
    cworld.write(name, support.spec(name, target=f"@{group}", state="stopped"))
    cworld.apply()
    assert _where(cworld, name) in ("node2", "node3")
    assert cworld.plan().steps == ()
    cworld.write(name, support.spec(name, target="node1", state="stopped"))
    cworld.apply()
    assert _where(cworld, name) == "node1"
    cworld.write(name, support.spec(name, target=f"@{group}", state="stopped"))
    plan, _ = cworld.apply()
    assert kinds(plan, name) == ["update"]
    assert _where(cworld, name) in ("node2", "node3")
    assert cworld.plan().steps == ()


def test_a_network_is_made_on_every_member(cworld: World) -> None:
    net, guest = cworld.name("n"), cworld.name("g")
    cworld.write(net, {"kind": "Network", "name": net,
                       "ips": [{"address": "10.213.40.1/24"}]})
    cworld.write(guest, support.spec(guest, target="node3",
                                     interfaces=[{"type": "network", "source": net}]))
    cworld.apply()
    found = cworld.daemon.query(f"/1.0/networks/{net}")
    assert found["status"] == "Created"
    assert sorted(found["locations"]) == ["node1", "node2", "node3"]
    assert cworld.instance(guest)["status"] == "Running"
    assert cworld.plan().steps == ()


def test_import_pins_an_instance_where_it_runs(cworld: World, tmp_path: Path) -> None:
    name = cworld.name("imp")
    support.launch(cworld.daemon, name, "--target", "node3")
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "driver": "lxd", "drivers": {"lxd": support.options(cworld.daemon, cworld.prefix)}}))
    out, state = tmp_path / "imported", tmp_path / "state"
    done = support.cli("import", "--driver", "lxd", "--config", str(config), "--state-dir",
                       str(state), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load((out / f"{name}.yaml").read_text())["target"] == "node3"
    planned = support.cli("plan", str(out), "--config", str(config), "--state-dir",
                          str(state), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr


def _client_certificate(tmp: Path, daemon: daemons.Daemon) -> tuple[Path, Path]:
    cert, key = tmp / "client.crt", tmp / "client.key"
    daemons.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:secp384r1", "-sha384", "-nodes", "-days", "2",
                 "-subj", "/CN=reconciler-test", "-keyout", str(key), "-out", str(cert)])
    daemon.lxc("config", "trust", "add", str(cert), "--name", "reconciler-test")
    return cert, key


# listens to the event stream over HTTPS (in the cluster's namespace) until NAME is named
_LISTEN = """
import json, sys, threading
from pathlib import Path
from reconciler.drivers.lxd import LxdDriver
driver = LxdDriver(Path(sys.argv[2]), **json.loads(sys.argv[1]))
print("listening", flush=True)
for ref in driver.events(threading.Event()):
    print(ref.kind, ref.name, flush=True)
    if ref.name == sys.argv[3]:
        break
"""


def _events_over_https(cluster: daemons.LxdCluster, remote: dict[str, str], tmp: Path,
                       world: World, name: str) -> None:
    argv = cluster.hub.enter([sys.executable, "-c", _LISTEN, json.dumps(remote),
                              str(tmp / "events-state"), name])
    listener = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[3])
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening"
        deadline = time.monotonic() + 20
        count = 0
        while listener.poll() is None:  # it ends once it heard of NAME
            assert time.monotonic() < deadline, "no event over HTTPS"
            count += 1
            world.daemon.lxc("config", "set", name, "user.probe", str(count))
            time.sleep(0.3)
        out, err = listener.communicate(timeout=20)
        assert listener.returncode == 0 and f"Domain {name}" in out.splitlines(), out + err
    finally:
        listener.kill()
        listener.wait(10)


def test_the_same_driver_over_https_with_a_client_certificate(
        cworld: World, lxd_cluster: daemons.LxdCluster, tmp_path: Path) -> None:
    name = cworld.name("tls")
    cworld.write(name, support.spec(name, target="node2", state="stopped"))
    cert, key = _client_certificate(tmp_path, cworld.daemon)
    try:
        remote = {"remote": f"https://{lxd_cluster.members[1].address}:8443",
                  "client_cert": str(cert), "client_key": str(key),
                  "server_cert": str(cworld.daemon.dir / "cluster.crt"),
                  "match": f"{cworld.prefix}*"}
        config = tmp_path / "agent.yaml"
        config.write_text(yaml.safe_dump({"driver": "lxd", "drivers": {"lxd": remote}}))
        # the members listen inside the cluster's network namespace: the command runs there
        argv = lxd_cluster.hub.enter([sys.executable, "-m", "tests.lxd.support", "--log-format",
                                      "json", "apply", str(cworld.specs), "--yes", "--config",
                                      str(config), "--state-dir", str(tmp_path / "state")])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                              cwd=Path(__file__).resolve().parents[3])
        assert done.returncode == 0, done.stdout + done.stderr
        assert _where(cworld, name) == "node2"
        stamp = json.loads(cworld.instance(name)["config"]["user.reconciler.spec"])
        assert stamp["target"] == "node2"
        _events_over_https(lxd_cluster, remote, tmp_path, cworld, name)
        wrong = {**remote, "server_cert": str(cert)}  # not the cluster's: refused, not trusted
        config.write_text(yaml.safe_dump({"driver": "lxd", "drivers": {"lxd": wrong}}))
        argv[argv.index("apply")] = "plan"
        argv.remove("--yes")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                              cwd=Path(__file__).resolve().parents[3])
        assert done.returncode == 1 and "TLS" in done.stdout + done.stderr
    finally:
        cworld.daemon.lxc("config", "trust", "remove", "reconciler-test", check=False)


def test_events_of_every_member_arrive_through_one(cworld: World,
                                                   lxd_cluster: daemons.LxdCluster) -> None:
    """The driver listens on the member it talks to; a change to an instance on another
    member, made through that member's own socket, is heard all the same."""
    name = cworld.name("ev")
    cworld.write(name, support.spec(name, target="node3", state="stopped"))
    cworld.apply()
    driver = LxdDriver(cworld.tmp / "state", **support.options(cworld.daemon, cworld.prefix))
    stop, seen = threading.Event(), []

    def listen() -> None:
        for ref in driver.events(stop):
            seen.append(ref)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        third = next(m for m in lxd_cluster.members if m.name == "node3")
        deadline = time.monotonic() + 20
        count = 0
        while Ref("Domain", name) not in seen:  # made on node3, heard through node1
            assert time.monotonic() < deadline, "no event from node3"
            count += 1
            third.lxc("config", "set", name, "user.probe", str(count))
            time.sleep(0.3)
    finally:
        stop.set()
        thread.join(5)
        driver.close()
