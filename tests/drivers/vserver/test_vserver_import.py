"""Import (adopt, like `terraform import`) and convert on a simulated host whose guests were
made by hand with util-vserver's tools and files, as an admin would."""

from __future__ import annotations

import json
from pathlib import Path

from vserver_support import VsWorld, obj

from reconciler.drivers.vserver.convert import convert_tree
from reconciler.drivers.vserver.mapping import RANGES_SCRIPT, RANGES_SCRIPTLET
from reconciler.model import KINDS
from reconciler.specs.convert import to_yaml
from tests.sims.vserver.host import VsHost


def _files(cfg: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = cfg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _build(host: VsHost, name: str, *opts: str) -> Path:
    done = host.call("vserver", name, "build", "-m", "template", *opts, "--", "-t",
                     str(host.template))
    assert done.returncode == 0, done.stderr
    return host.guest_dir(name)


def _start(host: VsHost, name: str) -> None:
    done = host.call("vserver", name, "start")
    assert done.returncode == 0, done.stderr


def five_guests(host: VsHost) -> None:
    """IPv4 and IPv6 (one given by mask), a range, a per-CPU scheduler with limits and init,
    fstab mounts, and one with a dynamic context."""
    _build(host, "v4", "--hostname", "v4", "--interface", "eth0:10.1.0.2/24")
    _start(host, "v4")
    net = _build(host, "net", "--interface", "web=eth0:10.1.0.3/255.255.255.0",
                 "--interface", "eth1:2001:db8::3/64", "--interface", "nodev:10.1.0.30")
    _files(net, {"apps/init/mark": "default\n"})
    _start(host, "net")
    span = _build(host, "span", "--hostname", "span.example.org")
    _files(span, {"interfaces/00/range": "10.2.0.16-10.2.0.31/24\n",
                  "interfaces/00/disabled": "", "interfaces/00/nodev": "",
                  RANGES_SCRIPTLET: RANGES_SCRIPT.decode()})
    _start(host, "span")
    sched = _build(host, "sched")
    _files(sched, {"sched/fill-rate": "100\n", "sched/interval": "1000\n",
                   "sched/0/cpu-id": "0\n", "sched/0/fill-rate": "0\n",
                   "sched/1/cpu-id": "1\n", "sched/1/fill-rate": "250\n",
                   "sched/1/fill-rate2": "250\n", "sched/1/interval2": "1000\n",
                   "sched/1/idle-time": "", "rlimits/rss": "16384\n",
                   "rlimits/nproc.soft": "100\n", "rlimits/nproc.hard": "200\n",
                   "apps/init/style": "plain\n", "apps/init/runlevel.start": "3\n",
                   "apps/init/environment": "PATH=/bin:/usr/bin\nLANG=C\n"})
    _start(host, "sched")
    (host.defaults / "context.dynamic").write_text("")
    mounts = _build(host, "mounts")
    (host.defaults / "context.dynamic").unlink()
    fstab = (mounts / "fstab").read_text()
    _files(mounts, {"fstab": fstab + "/srv/data\t/data\tnone\tbind,ro\t0 0\n"
                                      "/dev/sdb1 /var/log ext4 defaults 0 0\n"
                                      "none /scratch tmpfs size=64m 0 0\n",
                    "fstab.local": "/srv/share /share none bind 0 0\n"})
    assert not (mounts / "context").exists()
    _start(host, "mounts")
    assert host.context_of("mounts")["xid"] >= 49152  # dynamic


def test_import_of_five_hand_made_guests_then_plan_has_no_changes(world: VsWorld) -> None:
    five_guests(world.host)
    found = world.driver().import_specs(out=str(world.specs))
    assert found.skipped == []
    specs = {s["name"]: s for s in found.specs}
    assert set(specs) == {"v4", "net", "span", "sched", "mounts"}
    for raw in found.specs:  # what `reconciler import` writes
        spec = KINDS["Domain"].model_validate(raw)
        (world.specs / f"{spec.name}.yaml").write_text(to_yaml([spec]))
    assert specs["v4"]["interfaces"] == [{"type": "routed", "host_dev": "eth0",
                                          "ip": ["10.1.0.2/24"]}]
    assert specs["net"]["interfaces"] == [
        {"type": "routed", "host_dev": "eth0", "guest_dev": "eth0:web", "ip": ["10.1.0.3/24"]},
        {"type": "routed", "host_dev": "eth1", "ip": ["2001:db8::3/64"]},
        {"type": "routed", "ip": ["10.1.0.30"]}]
    assert specs["net"]["autostart"] is True
    assert specs["span"]["interfaces"] == [{"type": "routed",
                                            "ranges": ["10.2.0.16-10.2.0.31/24"]}]
    assert specs["sched"]["scheduler"] == {"fill_rate": 100, "interval": 1000, "cpus": {
        "0": {"fill_rate": 0},
        "1": {"fill_rate": 250, "fill_rate2": 250, "interval2": 1000, "idle_time": True}}}
    assert specs["sched"]["memory"] == "64MiB"  # 16384 pages of 4 KiB
    assert specs["sched"]["limits"] == {"numproc": [100, 200]}
    assert specs["sched"]["init"] == {"cmd": "/sbin/init", "args": ["3"],
                                      "env": {"PATH": "/bin:/usr/bin", "LANG": "C"}}
    assert specs["mounts"]["filesystems"] == [
        {"source": "/srv/data", "target": "/data", "readonly": True},
        {"type": "block", "source": "/dev/sdb1", "target": "/var/log"},
        {"type": "ram", "target": "/scratch", "size": "64MiB"},
        {"source": "/srv/share", "target": "/share"}]
    assert "id" not in specs["mounts"] and specs["v4"]["id"] == 40000
    # adopted: each tree has our stamp, holding exactly the spec written
    stamp = json.loads((world.cfg("v4") / "reconciler.json").read_text())
    assert stamp["owner"] == "reconciler" and stamp["spec"]["hostname"] == "v4"
    assert stamp["source"] == str(world.specs / "v4.yaml")
    # the plan over what import wrote: nothing to do (the mounts name host paths and a
    # device, which the host policy allows here, visibly; an unchanged guest needs no
    # allowance, but an edit of it would)
    world.policy = {"mount_roots": ["/srv"], "host_devices": True}
    plan = world.plan()
    assert plan.steps == () and {o.action for o in plan.objects} == {"noop"}
    calls = len(world.host.calls())
    # and the adopted guests are managed: an edit is a live change on the running guest
    spec = json.loads(json.dumps(specs["span"]))
    spec["hostname"] = "span2"
    (world.specs / "span.yaml").write_text(to_yaml([KINDS["Domain"].model_validate(spec)]))
    plan, _ = world.apply()
    assert (obj(plan, "span").update, [s.kind for s in plan.steps]) == ("live", ["update"])
    assert world.host.context_of("span")["uts"]["nodename"] == "span2"
    assert not any("delete" in c["argv"] or "build" in c["argv"]
                   for c in world.host.calls()[calls:])


def test_import_reports_what_it_did_not_convert_and_skips_others(world: VsWorld) -> None:
    cfg = _build(world.host, "caps")
    _files(cfg, {"bcapabilities": "NET_ADMIN\nSYS_TIME\n", "uts/domainname": "example\n"})
    other = _build(world.host, "theirs")
    (other / "reconciler.json").write_text(json.dumps(
        {"owner": "someone-else", "source": None, "spec": {"name": "theirs"},
         "vserver": {"name": "theirs"}}))
    found = world.driver().import_specs()
    assert found.skipped == [("domain/theirs", "owned by 'someone-else'")]
    reports = [n.report() for n in found.not_converted]
    assert f"{cfg}/bcapabilities:1: warning: not converted: bcapabilities = NET_ADMIN ... " \
           "(system capabilities have no field in the model)" in reports
    assert any(r.startswith(f"{cfg}/uts/domainname:1:") for r in reports)
    assert any(r.startswith(f"{cfg}/vdir:1:") and "no root filesystem" in r for r in reports)
    assert not any("fstab" in r for r in reports)  # util-vserver's default lines: rebuilt


def test_convert_names_every_file_it_does_not_map(world: VsWorld) -> None:
    five_guests(world.host)
    cfg = world.cfg("mounts")
    _files(cfg, {"ccapabilities": "set_utsname\n", "nice": "5\n",
                 "fstab.remote": "nfs:/x /y nfs defaults 0 0\n",
                 "interfaces/05/ip": "10.1.0.9\n", "interfaces/05/dev": "eth0\n",
                 "interfaces/05/bcast": "10.1.0.255\n", "sched/context": "x\n"})
    done = convert_tree(cfg)
    lines = done.warnings
    for rel in ("ccapabilities", "nice", "fstab.remote", "interfaces/05/bcast",
                "sched/context"):
        assert any(w.startswith(f"{cfg}/{rel}:1: warning: not converted: ") for w in lines), \
            rel
    assert done.domain.interfaces[0].host_dev == "eth0"
    # and with a file util-vserver would fail on, it says so
    (cfg / "sched" / "fill-rate").write_text("12 ")
    again = convert_tree(cfg)
    assert any("util-vserver would fail on this" in w and "sched/fill-rate" in w
               for w in again.warnings)


def test_convert_of_a_tree_the_driver_built_has_its_root(world: VsWorld) -> None:
    world.write("b", world.spec("b", memory="32MiB"))
    world.apply()
    done = convert_tree(world.cfg("b"))
    assert done.domain.root is not None and done.domain.root.name == "minimal"
    assert done.domain.memory == 32 * 1024 * 1024
    assert done.warnings == ()


def test_cli_convert_warns_per_file_and_strict_fails(world: VsWorld) -> None:
    """`reconciler convert TREE --from vserver`: the spec on stdout, one warning per file left
    out and per value util-vserver would fail on; `--strict` an error, nothing written."""
    import subprocess
    import sys

    five_guests(world.host)
    cfg = world.cfg("mounts")
    _files(cfg, {"nice": "5\n"})

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", "convert", str(cfg),
                               "--from", "vserver", "--to", "yaml", *extra],
                              capture_output=True, text=True, timeout=60, check=False)

    done = run()
    assert done.returncode == 0, done.stderr
    assert "name: mounts" in done.stdout
    assert f"{cfg}/nice:1: warning: not converted: " in done.stderr
    (cfg / "sched").mkdir(exist_ok=True)
    (cfg / "sched" / "fill-rate").write_text("12 ")
    broken = run()
    assert f"{cfg}/sched/fill-rate: warning: util-vserver would fail on this" in broken.stderr
    strict = run("--strict")
    assert strict.returncode == 1 and strict.stdout == ""
    assert f"{cfg}/nice:1: error: not converted: " in strict.stderr
    assert f"{cfg}/sched/fill-rate: error: util-vserver would fail on this" in strict.stderr
