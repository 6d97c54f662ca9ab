"""The openvz driver through the engine, on the vzctl/vzlist simulators of each version: what it
runs (the simulator's call log), what the host holds afterwards (its config files, state.json,
private areas), and that an applied spec plans empty."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest
from openvz_support import OTHER_TEMPLATE, VzWorld, kinds, obj

from reconciler.drivers.base import Step
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.model.fields import Ref
from tests.sims.openvz.host import OSTEMPLATE


def test_create_is_create_set_start_and_plans_empty_after(vz: VzWorld) -> None:
    name = vz.name("a")
    vz.write(name, vz.spec(name, interfaces=[{"type": "routed", "ip": ["10.0.0.5/24"]}],
                           cpu={"shares": 500}))
    plan, _ = vz.apply()
    assert kinds(plan, name) == ["provision", "define", "start"]
    assert vz.vzctl_calls() == [
        ["create", "101", "--ostemplate", OSTEMPLATE, "--name", name],
        ["set", "101", "--hostname", name, "--ram", str(128 << 20), "--cpuunits", "500",
         "--ipadd", "10.0.0.5/24", "--save"],
        ["start", "101"]]
    values = vz.values(101)
    assert (values["NAME"], values["HOSTNAME"], values["CPUUNITS"]) == (name, name, 500)
    assert values["PHYSPAGES"] == ((0, 32768) if vz.legacy else (32768, 32768))
    assert vz.running("101") and vz.boots("101") == 1
    # vzctl's name lookups work both ways: the name stands for the CTID
    status = vz.host.call("vzctl", "status", name).stdout
    assert status.split()[1:3] == ["101", "exist"]
    side = vz.host.conf_dir / "101.reconciler.json"
    assert stat.S_IMODE(side.stat().st_mode) == 0o600
    assert vz.sidecar(101)["owner"] == "reconciler"
    assert vz.sidecar(101)["spec"]["name"] == name and "id" not in vz.sidecar(101)["spec"]
    before = len(vz.host.calls())
    again = vz.plan()
    assert again.steps == () and obj(again, name).action == "noop"
    # a no-op pass reads: one vzlist, nothing else
    assert [c["tool"] for c in vz.host.calls()[before:]] == ["vzlist"]


@pytest.mark.parametrize(("version", "listing"), [
    ("3", ["-a", "-H", "-t", "-o", "ctid,status"]),
    ("4", ["-a", "-j", "-o", "ctid,status"]),
    ("7", ["-a", "-j", "-o", "ctid,status"])])
def test_version_detected_and_listing_per_version(make_world: Any, version: str,
                                                  listing: list[str]) -> None:
    world = make_world(version)
    driver = world.driver()
    assert driver.version.legacy == (version != "7")
    assert driver.version.json == (version != "3")
    world.host.create_ct(101, "--name", "one")
    assert world.host.call("vzctl", "start", "101").returncode == 0
    world.host.create_ct(102)
    found = {o.ref.name: (o.state, o.extra["id"]) for o in driver.observe()}
    assert found == {"one": ("running", 101), "102": ("stopped", 102)}
    lists = [c["argv"] for c in world.host.calls() if c["tool"] == "vzlist"]
    assert lists == [listing]


def test_options_checked(legacy: VzWorld) -> None:
    with pytest.raises(ConfigError, match="valid: vzctl, vzlist, conf_dir, vz_conf, version, "
                       "stop_timeout, tool_timeout"):
        legacy.driver(lxcpath="/x")
    with pytest.raises(ConfigError, match="version"):
        legacy.driver(version="5")
    with pytest.raises(ConfigError, match="absolute"):
        legacy.driver(vzctl="bin/vzctl")
    assert legacy.driver(version="7").version.family == "7"


def test_observe_lists_only_numbered_configs(legacy: VzWorld) -> None:
    host = legacy.host
    host.create_ct(101, "--name", "keep")
    for junk in ("101.conf.destroyed", "foo.conf", "102.conf.undefined", "103.conf.bak",
                 "ve-x.conf-sample"):
        (host.conf_dir / junk).write_text('NAME="junk"\n')
    assert [o.ref.name for o in legacy.driver().observe()] == ["keep"]  # and never 0.conf


def test_removal_keeps_data_sets_config_aside_and_never_destroys(vz: VzWorld) -> None:
    a, b, keep = vz.name("a"), vz.name("b"), vz.name("k")
    vz.write(a, vz.spec(a))
    vz.write(keep, vz.spec(keep, id=102))
    vz.apply()
    (vz.host.private(101) / "precious").write_text("data")
    vz.remove(a)
    plan, _ = vz.apply()
    assert kinds(plan, a) == ["stop", "undefine"] and obj(plan, a).erases == ()
    assert not any(c[0] in ("destroy", "delete") for c in vz.vzctl_calls())
    conf = vz.host.conf_dir
    assert not (conf / "101.conf").exists() and (conf / "101.conf.undefined").exists()
    assert (vz.host.private(101) / "precious").read_text() == "data"
    assert "101" not in vz.host.call("vzlist", "-a", "-H", "-o", "ctid").stdout
    assert vz.host.call("vzctl", "start", "101").returncode == 14  # not defined for vzctl
    # its CTID is not given to a new container while its data is kept
    vz.write(b, vz.spec(b))
    vz.apply()
    assert vz.ctid(b) == "103"


def test_removed_spec_comes_back_to_its_kept_container(vz: VzWorld) -> None:
    a, keep = vz.name("a"), vz.name("k")
    vz.write(a, vz.spec(a))
    vz.write(keep, vz.spec(keep))
    vz.apply()
    (vz.host.private(vz.ctid(a)) / "precious").write_text("data")
    ctid = vz.ctid(a)
    vz.remove(a)
    vz.apply()
    vz.write(a, vz.spec(a))
    plan, _ = vz.apply()
    assert kinds(plan, a) == ["provision", "define", "start"]
    assert vz.ctid(a) == ctid and (vz.host.private(ctid) / "precious").exists()
    assert not any(c[0] == "create" for c in vz.vzctl_calls()[-3:])
    assert vz.plan().steps == ()


def test_purge_only_on_opt_in_erases_what_the_plan_lists(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a, removal="purge"))
    vz.apply()
    vz.write(a, vz.spec(a, removal="purge", state="absent"))
    plan = vz.plan()
    assert kinds(plan, a) == ["stop", "purge"]
    assert obj(plan, a).erases == (str(vz.host.private(101)),)
    vz.apply()
    assert ["destroy", "101"] in vz.vzctl_calls()
    assert not vz.host.private(101).exists()
    assert not (vz.host.conf_dir / "101.reconciler.json").exists()
    if vz.legacy:  # O7 unlinks its symlinked config instead
        assert (vz.host.conf_dir / "101.conf.destroyed").exists()


def test_protect_blocks_removal(vz: VzWorld) -> None:
    a, keep = vz.name("a"), vz.name("k")
    vz.write(a, vz.spec(a, protect=True, removal="purge"))
    vz.write(keep, vz.spec(keep))
    vz.apply()
    before = len(vz.host.calls())
    vz.remove(a)
    plan, _ = vz.apply()
    assert obj(plan, a).action == "refused" and kinds(plan, a) == []
    assert vz.vzctl_calls(before) == []
    ctid = vz.ctid(a)
    assert vz.running(ctid) and (vz.host.conf_dir / f"{ctid}.conf").exists()


def test_ids_given_by_id_or_numeric_name_and_allocated_around_used_ones(vz: VzWorld) -> None:
    vz.host.private(101).mkdir()  # a private area without config: 101 is not free
    vz.host.create_ct(102, "--name", "handmade")  # a container made by hand
    named, numeric, allocated = vz.name("n"), "160", vz.name("x")
    vz.write(named, vz.spec(named, id=150))
    vz.write(numeric, vz.spec(numeric))
    vz.write(allocated, vz.spec(allocated))
    vz.apply()
    assert vz.ctid(named) == "150" and vz.ctid(allocated) == "103"
    assert "NAME" not in vz.values(160)  # the CTID is its name
    assert vz.plan().steps == ()
    # a CTID held by another container is refused in the plan, naming the field
    taken = vz.name("t")
    vz.write(taken, vz.spec(taken, id=102))
    refused = obj(vz.plan(), taken)
    assert refused.action == "refused" and refused.refusals[0].field == "id"


def test_live_update_pushes_into_the_running_container(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a))
    vz.apply()
    before = len(vz.host.calls())
    vz.write(a, vz.spec(a, memory="256MiB", dns={"nameservers": ["192.0.2.53"]}))
    plan, _ = vz.apply()
    assert (obj(plan, a).update, kinds(plan, a)) == ("live", ["update"])
    assert vz.vzctl_calls(before) == [["set", "101", "--nameserver", "192.0.2.53", "--ram",
                                       str(256 << 20), "--save"]]
    params = vz.host.state()["cts"]["101"]["params"]
    assert params["PHYSPAGES"] == ("0:65536" if vz.legacy else "65536:65536")
    assert params["NAMESERVER"] == "192.0.2.53" and vz.boots("101") == 1


def test_restart_change_stops_updates_starts(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a))
    vz.apply()
    vz.write(a, vz.spec(a, quota={"ugid_limit": 100}))
    plan, _ = vz.apply()
    assert kinds(plan, a) == ["stop", "update", "start"]
    assert vz.values(101)["QUOTAUGIDLIMIT"] == 100 and vz.boots("101") == 2


def test_setmode_restart_only_when_running_and_the_plan_said_restart(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a))
    vz.apply()
    driver = vz.driver()
    spec = {k: v for k, v in vz.spec(a, quota={"ugid_limit": 100}).items() if k != "kind"}
    before = len(vz.host.calls())
    driver.execute(Step(id="u", kind="update", ref=Ref("Domain", a), type="openvz",
                        spec=spec, live=False))
    assert vz.vzctl_calls(before)[-1] == ["set", "101", "--quotaugidlimit", "100",
                                          "--setmode", "restart", "--save"]
    assert vz.boots("101") == 2


def test_exit_codes_mapped(legacy: VzWorld) -> None:
    a = legacy.name("a")
    legacy.write(a, legacy.spec(a))
    legacy.apply()
    driver = legacy.driver()
    start = Step(id="s", kind="start", ref=Ref("Domain", a), type="openvz")
    driver.execute(start)  # already running: vzctl says 32, which is success here
    assert legacy.host.calls()[-1]["rc"] == 32
    legacy.host.add_fault(command="start", rc=9, message="Container already locked")
    with pytest.raises(TransientError, match="locked"):
        driver.execute(start)
    legacy.host.add_fault(command="start", rc=3, message="Error: something broke")
    with pytest.raises(PermanentError, match="something broke"):
        driver.execute(start)
    with legacy.host.hold_lock(101), pytest.raises(TransientError):  # another vzctl has it
        driver.execute(Step(id="t", kind="stop", ref=Ref("Domain", a), type="openvz"))
    driver.execute(Step(id="t", kind="stop", ref=Ref("Domain", a), type="openvz"))
    driver.execute(Step(id="t", kind="stop", ref=Ref("Domain", a), type="openvz"))
    assert legacy.host.calls()[-1]["rc"] == 0  # stopping a stopped CT: 0


def test_missing_template_fails_and_leaves_no_claim(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a))
    vz.apply()
    os.unlink(vz.host.template_dir / "cache" / f"{OTHER_TEMPLATE}.tar.gz")
    b = vz.name("b")
    vz.write(b, vz.spec(b, filesystems=[{"type": "template", "name": OTHER_TEMPLATE,
                                         "target": "/"}]))
    refused = obj(vz.plan(), b)  # the host has no such template: refused in the plan
    assert refused.action == "refused" and refused.refusals[0].field == "filesystems.0.name"
    driver = vz.driver()
    spec = {k: v for k, v in vz.spec(b).items() if k != "kind"}
    spec["filesystems"] = [{"type": "template", "name": OTHER_TEMPLATE, "target": "/"}]
    with pytest.raises(PermanentError, match="exit 91"):
        driver.execute(Step(id="p", kind="provision", ref=Ref("Domain", b), type="openvz",
                            spec=spec))
    assert not (vz.host.conf_dir / "102.reconciler.json").exists()


def test_drift_is_put_back(vz: VzWorld) -> None:
    a = vz.name("a")
    vz.write(a, vz.spec(a))
    vz.apply()
    assert vz.host.call("vzctl", "set", "101", "--hostname", "other", "--save").returncode == 0
    plan, _ = vz.apply()
    assert [(c.field, c.origin) for c in obj(plan, a).changes] == [("hostname", "drift")]
    assert vz.values(101)["HOSTNAME"] == a


def test_a_value_vzctl_cannot_rewrite_is_reported(legacy: VzWorld) -> None:
    """Legacy --save replaces only the first unindented KEY= line; an indented first line
    stays in force (§1.2), so the driver reads back and says so instead of looping."""
    a = legacy.name("a")
    legacy.write(a, legacy.spec(a))
    legacy.apply()
    path = legacy.host.conf(101)
    text = path.read_text().replace(f'HOSTNAME="{a}"', "")
    path.write_text(f'  HOSTNAME="hand"\n{text}')
    _, report = legacy.apply(ok=False)
    [error] = [o.error for o in report.outcomes.values() if o.error]
    assert "hostname" in str(error) and "reads back" in str(error)


def test_purge_of_a_mounted_container_unmounts_first(legacy: VzWorld) -> None:
    """Legacy destroy refuses a mounted CT (exit 41): the driver unmounts it first."""
    a = legacy.name("a")
    legacy.write(a, legacy.spec(a, state="stopped", removal="purge"))
    legacy.apply()
    assert legacy.host.call("vzctl", "mount", "101").returncode == 0
    legacy.write(a, legacy.spec(a, state="absent", removal="purge"))
    before = len(legacy.host.calls())
    legacy.apply()
    assert legacy.vzctl_calls(before) == [["status", "101"], ["umount", "101"],
                                          ["destroy", "101"]]
    assert not legacy.host.private(101).exists()


def test_defer_saves_without_restarting_and_a_health_command_runs_through_exec3(
        vz: VzWorld) -> None:
    """restart: defer saves a restart-class setting without --setmode and never restarts
    the container; the boot is read from vzlist's uptime; a health check's command runs
    through `vzctl exec3` (argv as it is, no shell)."""
    a = vz.name("a")
    check = vz.host.root / "healthy"
    vz.write(a, vz.spec(a, restart="defer", health={"command": ["/usr/bin/test", "-e",
                                                                str(check)], "timeout": 2}))
    check.write_text("")
    vz.apply()
    ctid = vz.ctid(a)
    assert ["exec3", ctid, "/usr/bin/test", "-e", str(check)] in [
        c[:2] + c[2:] for c in vz.vzctl_calls()]
    boots = vz.boots(ctid)
    vz.write(a, vz.spec(a, restart="defer", memory="256MiB", quota={"ugid_limit": 100},
                        health={"command": ["/usr/bin/test", "-e", str(check)], "timeout": 2}))
    before = len(vz.host.calls())
    plan, _ = vz.apply()
    assert kinds(plan, a) == ["update"] and obj(plan, a).pending == ("quota.ugid_limit",)
    calls = vz.vzctl_calls(before)
    assert not any("--setmode" in c or c[:1] in (["stop"], ["restart"]) for c in calls)
    assert vz.values(ctid)["QUOTAUGIDLIMIT"] == 100  # saved
    assert vz.running(ctid) and vz.boots(ctid) == boots  # not restarted
    again = vz.plan()
    assert obj(again, a).action == "pending"  # the same boot: still pending
    driver = vz.driver()
    [live] = [o for o in driver.observe() if o.ref.name == a]
    assert driver.boot_id(live) is not None
