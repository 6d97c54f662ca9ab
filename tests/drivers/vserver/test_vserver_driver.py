"""The vserver driver through the engine, on a simulated util-vserver host: every assertion
reads the host (its tree, the simulated kernel's state.json, the tools' call log), never the
driver's own view."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from vserver_support import ROOT, VsWorld, kinds, obj

from reconciler.drivers.vserver import VserverDriver
from reconciler.drivers.vserver.mapping import RANGES_SCRIPT, RANGES_SCRIPTLET
from reconciler.errors import ConfigError
from tests.conftest import REPO


def test_testvm_applies_and_the_next_plan_is_empty(world: VsWorld) -> None:
    """desired/testvm.yaml, the finished seed, on the driver. It names no host path or device,
    so the host policy needs nothing beyond the default."""
    shutil.copy(REPO / "desired" / "testvm.yaml", world.specs / "testvm.yaml")
    plan, _ = world.apply()
    assert kinds(plan, "testvm") == ["provision", "define", "start"]
    # vserver NAME build -m METHOD ..., the spec's method
    assert world.calls()[0][:5] == ["testvm", "build", "-m", "debootstrap", "--confdir"]
    build = world.calls()[0]
    assert build[build.index("--context") + 1] == "2000"
    assert build[build.index("--"):] == ["--", "-d", "etch"]
    assert world.file("testvm", "context") == "2000\n"
    assert world.file("testvm", "uts/nodename") == "testvm\n"
    assert world.file("testvm", "uts/machine") == "i586\n"
    assert world.file("testvm", "apps/init/mark") == "default\n"
    assert world.file("testvm", "sched/fill-rate") == "100\n"
    assert world.file("testvm", "sched/cpu1/idle-time") == ""
    ctx = world.host.context_of("testvm")
    assert ctx is not None and ctx["xid"] == 2000
    assert ctx["uts"]["nodename"] == "testvm" and ctx["uts"]["machine"] == "i586"
    assert ctx["sched"]["cpus"]["0"]["fill-rate"] == 0
    assert ctx["sched"]["cpus"]["1"] == {"fill-rate": 250, "interval": 1000, "fill-rate2": 250,
                                         "interval2": 1000, "idle-time": True}
    # the three interfaces: eth0 on the host, the range and the IPv6 address bound only
    assert ctx["ips"] == ["192.0.2.10/24", "dead:beef:dead:beef::1/64",
                          "198.51.100.16-198.51.100.31/24"]
    assert [(a["dev"], a["address"]) for a in world.host.state()["addresses"]] == \
        [("eth0", "192.0.2.10/24")]
    assert world.plan().steps == ()


def test_every_file_ends_with_a_newline_and_values_read_back(world: VsWorld) -> None:
    """§2.2: a scalar without its newline fails a start; every file the driver writes has it."""
    shutil.copy(REPO / "desired" / "testvm.yaml", world.specs / "testvm.yaml")
    world.apply()
    for path in world.cfg("testvm").rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size:
            assert path.read_bytes().endswith(b"\n"), path
    assert oct(os.stat(world.cfg("testvm") / "reconciler.json").st_mode & 0o777) == "0o600"
    stamp = json.loads((world.cfg("testvm") / "reconciler.json").read_text())
    assert stamp["owner"] == "reconciler" and stamp["spec"]["id"] == 2000
    assert stamp["vserver"]["root"]["method"] == "debootstrap"


def test_contexts_allocated_from_2_never_reusing_one_in_use(world: VsWorld) -> None:
    """Without an id the driver allocates the lowest free static context from 2: not one a
    tree uses, a tree set aside by a removal, or another spec's explicit id."""
    world.host.call("vserver", "byhand", "build", "-m", "template", "--context", "2", "--",
                    "-t", str(world.host.template))
    for name in ("a", "b"):
        world.write(name, world.spec(name))
    world.write("c", world.spec("c", id=4))
    world.apply()
    # a and b are built side by side: which takes 3 and which 5 is the order they ran in
    assert {world.file("a", "context"), world.file("b", "context")} == {"3\n", "5\n"}
    assert world.file("c", "context") == "4\n"
    world.remove("a")  # set aside: its context stays taken
    world.apply()
    world.write("d", world.spec("d"))
    world.apply()
    assert world.file("d", "context") == "6\n"
    stamp = json.loads((world.cfg("d") / "reconciler.json").read_text())
    assert stamp["vserver"]["context"] == 6 and stamp["vserver"]["allocated"] is True
    # an explicit id already used by a tree is refused at build, naming the context
    world.write("e", world.spec("e", id=5))
    _, report = world.apply(ok=False)
    assert "context 5 is in use" in str(report.outcomes["domain/e:provision"].error)
    assert not world.cfg("e").exists()


def test_removal_sets_the_tree_aside_and_never_deletes_without_purge(world: VsWorld) -> None:
    world.write("keep", world.spec("keep"))
    world.write("other", world.spec("other"))  # an empty spec directory removes nothing
    world.apply()
    world.remove("keep")
    plan, _ = world.apply()
    assert kinds(plan, "keep") == ["stop", "undefine"]
    assert not any("delete" in argv for argv in world.calls())
    assert not world.cfg("keep").exists()
    kept = world.host.config_root / ".reconciler" / "removed" / "keep"
    assert (kept / "context").read_text() == "2\n"  # the tree, set aside
    assert (world.host.vdirbase / "keep" / "sbin" / "init").exists()  # the guest's data
    assert world.host.context_of("keep") is None
    # util-vserver no longer sees it: its name does not resolve, vserver-stat has no row
    assert world.host.call("vserver", "keep", "status").returncode == 5
    # the spec comes back: the kept tree and root are used again, nothing is rebuilt
    world.write("keep", world.spec("keep"))
    plan, _ = world.apply()
    assert kinds(plan, "keep") == ["provision", "define", "start"]
    assert len([a for a in world.calls() if a[0] == "keep" and "build" in a]) == 1
    assert world.host.context_of("keep") is not None


def test_purge_runs_delete_only_when_opted_in_and_lists_what_it_erases(world: VsWorld) -> None:
    world.write("other", world.spec("other"))
    world.write("gone", world.spec("gone", removal="purge"))
    world.apply()
    world.write("gone", world.spec("gone", removal="purge", state="absent"))
    plan = world.plan()
    vdir = world.host.vdirbase / "gone"
    assert str(vdir) in obj(plan, "gone").erases and \
        str(world.cfg("gone")) in obj(plan, "gone").erases
    plan, _ = world.apply()
    assert kinds(plan, "gone") == ["stop", "purge"]
    assert ["--silent", "gone", "delete"] in world.calls()
    assert not vdir.exists() and not world.cfg("gone").exists()


def test_protect_blocks_removal(world: VsWorld) -> None:
    world.write("other", world.spec("other"))
    world.write("safe", world.spec("safe", protect=True, removal="purge"))
    world.apply()
    world.remove("safe")
    plan, _ = world.apply()
    assert obj(plan, "safe").action == "refused" and kinds(plan, "safe") == []
    world.write("safe", world.spec("safe", protect=True, removal="purge", state="absent"))
    plan, _ = world.apply()
    assert obj(plan, "safe").action == "refused"
    assert not any("safe" in a and ("delete" in a or "stop" in a) for a in world.calls())
    assert world.cfg("safe").is_dir() and world.host.context_of("safe") is not None


def test_purge_refused_for_an_imported_guest(world: VsWorld) -> None:
    """The driver erases only a root it built: an adopted guest is never deleted by it."""
    world.host.call("vserver", "old", "build", "-m", "template", "--", "-t",
                    str(world.host.template))
    found = world.driver().import_specs(out=str(world.specs))
    (world.specs / "old.yaml").write_text(yaml.safe_dump(
        {**found.specs[0], "removal": "purge", "state": "absent"}))
    _, report = world.apply(ok=False)
    assert "did not build" in str(report.outcomes["domain/old:purge"].error)
    assert not any("delete" in a for a in world.calls())
    assert (world.host.vdirbase / "old").is_dir()


def test_live_changes_reach_the_running_guest_without_a_restart(world: VsWorld) -> None:
    """hostname (vuname), the scheduler (vsched), addresses (naddress, ip), memory (vlimit)."""
    world.write("web", world.spec("web", scheduler={"fill_rate": 10, "interval": 100},
                                  interfaces=[{"type": "routed", "host_dev": "eth0",
                                               "ip": ["10.0.0.5/24"]}]))
    world.apply()
    xid = world.host.context_of("web")["xid"]
    world.write("web", world.spec(
        "web", hostname="web2", memory="64MiB",
        scheduler={"fill_rate": 20, "interval": 100, "cpus": {1: {"fill_rate": 5}}},
        interfaces=[{"type": "routed", "host_dev": "eth1", "ip": ["10.0.1.5/24"],
                     "guest_dev": "eth1:web"},
                    {"type": "routed", "ranges": ["10.9.0.1-10.9.0.9/24"]}]))
    plan, _ = world.apply()
    assert (obj(plan, "web").action, obj(plan, "web").update) == ("update", "live")
    assert kinds(plan, "web") == ["update"]
    ctx = world.host.context_of("web")
    assert ctx["xid"] == xid and world.host.state()["boots"][str(world.cfg("web"))] == 1
    assert ctx["uts"]["nodename"] == "web2"
    assert ctx["sched"]["cpus"]["0"]["fill-rate"] == 20
    assert ctx["sched"]["cpus"]["1"]["fill-rate"] == 5
    assert ctx["rlimits"]["rss"]["hard"] == 64 * 1024 * 1024 // 4096
    assert ctx["ips"] == ["10.0.1.5/24", "10.9.0.1-10.9.0.9/24"]
    assert [(a["dev"], a["address"], a.get("label")) for a in
            world.host.state()["addresses"]] == [("eth1", "10.0.1.5/24", "eth1:web")]
    # and the tree says the same, so the next start applies it again
    assert world.file("web", "uts/nodename") == "web2\n"
    assert world.file("web", "rlimits/rss.hard") == f"{64 * 256}\n"
    assert world.file("web", "interfaces/00/dev") == "eth1\n"
    assert world.file("web", "interfaces/00/name") == "web\n"
    assert world.file("web", "interfaces/01/range") == "10.9.0.1-10.9.0.9/24\n"
    assert world.file("web", RANGES_SCRIPTLET) == RANGES_SCRIPT.decode()
    assert world.plan().steps == ()
    # a restart applies the tree again: the same addresses come back
    assert world.host.call("vserver", "web", "restart").returncode == 0
    assert world.host.context_of("web")["ips"] == ["10.0.1.5/24", "10.9.0.1-10.9.0.9/24"]


def test_restart_changes_stop_update_start(world: VsWorld) -> None:
    world.write("r", world.spec("r"))
    world.apply()
    world.write("r", world.spec("r", init={"cmd": "/sbin/init", "args": ["3"]},
                                filesystems=[ROOT, {"type": "ram", "target": "/run/shm",
                                                    "size": "16MiB"}]))
    plan, _ = world.apply()
    assert (obj(plan, "r").update, kinds(plan, "r")) == ("restart", ["stop", "update", "start"])
    assert world.file("r", "apps/init/style") == "plain\n"
    assert world.file("r", "apps/init/runlevel.start") == "3\n"
    assert world.file("r", "fstab").endswith("none\t/run/shm\ttmpfs\tsize=16m\t0 0\n")
    ctx = world.host.context_of("r")
    assert ctx["init"]["start"] == ["/sbin/init", "3"] and ctx["init"]["fakeinit"]
    assert "/run/shm" in [m["target"] for m in ctx["mounts"]]
    assert world.host.state()["boots"][str(world.cfg("r"))] == 2
    assert world.plan().steps == ()


def test_drift_in_the_tree_is_seen_and_reverted(world: VsWorld) -> None:
    world.write("d", world.spec("d", scheduler={"fill_rate": 10, "interval": 100}))
    world.apply()
    (world.cfg("d") / "sched" / "fill-rate").write_text("0x20\n")  # strtol base 0: 32
    (world.cfg("d") / "uts" / "nodename").write_text("other\n")
    plan = world.plan()
    assert [(c.field, c.old, c.new, c.origin) for c in obj(plan, "d").changes] == [
        ("hostname", "other", "d", "drift"), ("scheduler.fill_rate", 32, 10, "drift")]
    world.apply()
    assert world.file("d", "sched/fill-rate") == "10\n"
    assert world.plan().steps == ()


def test_unmanaged_files_are_left_alone(world: VsWorld) -> None:
    world.write("u", world.spec("u"))
    world.apply()
    cfg = world.cfg("u")
    (cfg / "bcapabilities").write_text("NET_ADMIN\n")
    (cfg / "fstab").write_text((cfg / "fstab").read_text() + "# mine\n")
    (cfg / "uts" / "domainname").write_text("example\n")
    world.write("u", world.spec("u", hostname="u2", filesystems=[
        ROOT, {"type": "mount", "source": "/srv/x", "target": "/x", "readonly": True}]))
    world.policy = {"mount_roots": ["/srv"]}  # the bind mount names a host directory
    world.apply()
    assert (cfg / "bcapabilities").read_text() == "NET_ADMIN\n"
    assert (cfg / "uts" / "domainname").read_text() == "example\n"
    fstab = (cfg / "fstab").read_text()
    assert fstab.startswith("none\t/proc\t\tproc") and "# mine\n" in fstab
    assert fstab.endswith("/srv/x\t/x\tnone\tbind,ro\t0 0\n")
    assert world.plan().steps == ()


def test_a_tree_that_cannot_be_read_is_reported_not_hidden(world: VsWorld) -> None:
    world.write("ok", world.spec("ok"))
    world.apply()
    bad = world.host.config_root / "broken"
    bad.mkdir()
    os.mkfifo(bad / "context")  # never opened blocking; reported as unreadable
    huge = world.host.config_root / "huge"  # not a configuration tree: too many entries
    huge.mkdir()
    for n in range(4100):
        (huge / f"f{n}").touch()
    found = {o.ref.name: o for o in world.driver().observe()}
    assert found["ok"].state == "running" and found["ok"].owned
    assert not found["broken"].owned and "error" not in found["broken"].extra
    assert "more than 4096 entries" in found["huge"].extra["error"]
    assert not found["huge"].owned and found["huge"].state == "stopped"
    world.write("broken", world.spec("broken"))
    plan = world.plan()
    assert obj(plan, "broken").action == "refused"  # foreign: left alone, never rebuilt


def test_a_start_the_tool_refuses_fails_the_step_with_its_message(world: VsWorld) -> None:
    world.write("f", world.spec("f"))
    world.host.set_faults([{"tool": "vserver", "command": "start", "name": "f", "rc": 1,
                            "message": "Failed to start vserver 'f'"}])
    _, report = world.apply(ok=False)
    error = report.outcomes["domain/f:start"].error
    assert "exited 1" in str(error) and "Failed to start vserver 'f'" in str(error)


def test_plan_refuses_what_vserver_cannot_express(world: VsWorld) -> None:
    world.write("br", world.spec("br", interfaces=[{"type": "bridge", "source": "br0"}]))
    world.write("nr", world.spec("nr", filesystems=[]))
    world.write("tpl", world.spec("tpl", filesystems=[{**ROOT, "name": "nosuch"}]))
    world.write("io", world.spec("io", blkiotune={"weight": 500}, filesystems=[
        ROOT, {"type": "ram", "target": "/t", "size": "1MiB", "mode": "1777"}]))
    plan = world.plan()
    # a setting no file of the tree holds is refused, never silently dropped
    assert [r.field for r in obj(plan, "io").refusals] == ["blkiotune", "filesystems.1.mode"]
    assert [r.field for r in obj(plan, "br").refusals] == ["interfaces.0.type"]
    assert "IP isolation" in obj(plan, "br").refusals[0].reason
    assert [r.field for r in obj(plan, "nr").refusals] == ["filesystems"]
    assert "available: minimal" in obj(plan, "tpl").refusals[0].reason
    assert world.plan().steps == ()


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid: confdir, template_dir, vserver"):
        VserverDriver(tmp_path, lxcpath="/x")
    with pytest.raises(ConfigError, match="page_size"):
        VserverDriver(tmp_path, page_size=3000)
    with pytest.raises(ConfigError, match="must name a program"):
        VserverDriver(tmp_path, vserver="")


def test_a_build_left_by_a_crash_is_cleared_and_built_again(world: VsWorld) -> None:
    """A staging tree without our sidecar is an interrupted build: its root is removed and
    the guest is built again; one with the sidecar is finished by moving it into place."""
    staging = world.host.config_root / ".reconciler" / "staging"
    staging.mkdir(parents=True)
    done = world.host.call("vserver", "c1", "build", "-m", "template", "--confdir",
                           str(staging / "c1"), "--", "-t", str(world.host.template))
    assert done.returncode == 0, done.stderr
    world.write("c1", world.spec("c1"))
    world.apply()
    assert world.host.context_of("c1") is not None
    assert not (staging / "c1").exists()
    assert len([a for a in world.calls() if "build" in a]) == 2


def test_defer_writes_the_tree_and_a_health_command_runs_through_vserver_exec(
        world: VsWorld) -> None:
    """restart: defer writes a restart-class change into the tree and leaves the guest
    running; the guest's boot is its run file; a health check's command runs through
    `vserver NAME exec` (argv as it is)."""
    health = {"command": ["/bin/true"], "timeout": 2}
    world.write("p", world.spec("p", restart="defer", health=health))
    world.apply()
    assert ["p", "exec", "/bin/true"] in world.calls()
    boots = world.host.state()["boots"][str(world.cfg("p"))]
    world.write("p", world.spec("p", restart="defer", health=health,
                                init={"cmd": "/sbin/init", "args": ["3"]}))
    plan, _ = world.apply()
    assert kinds(plan, "p") == ["update"] and obj(plan, "p").pending == ("init.args", "init.cmd")
    assert world.file("p", "apps/init/runlevel.start") == "3\n"  # written
    assert world.host.state()["boots"][str(world.cfg("p"))] == boots  # not restarted
    assert obj(world.plan(), "p").action == "pending"
    assert world.host.call("vserver", "p", "restart").returncode == 0  # its next boot
    assert world.plan().steps == () and obj(world.plan(), "p").action == "noop"
