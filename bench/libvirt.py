"""The libvirt driver on lxc:///, each figure next to its floor measured in the same run.

    python bench/libvirt.py [N] [--repeat R] [--uri URI] [--spec-format xml|yaml]
                            [--no-ansible] [--ansible-n M] [--ansible-venv DIR]
                                                    (default: 200 domains, 5 repeats; root)

- apply of N defines vs a bare `defineXML` loop of the same documents (our XML with its
  ownership stamp, made before the clock starts): the driver alone (observe,
  then `execute(define)` per domain, serial) and the whole engine (`apply`: load, observe,
  plan, define steps, journal) at the default `--parallel 8` and at `--parallel 4` (the
  daemon takes defines side by side)
- a no-op reconcile over the N vs the floor: one `listAllDomains` + every inactive XML in a
  tight loop. As the agent runs it (driver kept, specs kept until a file changes) and as the
  CLI does (`plan` from scratch: new driver, load the files, observe, diff)
- optionally Ansible's community.libvirt (`virt` define over the same N, then the idempotent
  re-run) in a venv of its own, when it installs from PyPI here; skipped with the reason if not

Domains are defined, never started (the figures are about reading and writing definitions);
every one is named with a random prefix and undefined at the end, also on failure or Ctrl-C,
with the temporary directory (specs, state, the Ansible venv).
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, and this file is named like
# the libvirt module: without this, `import libvirt` would import the bench itself. The folder
# goes back at the end, where site-packages comes first, for the shared `timing` helpers.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Any  # noqa: E402

import yaml  # noqa: E402
from timing import median_time  # noqa: E402

from reconciler.drivers.base import OWNER, Stamp, Step  # noqa: E402
from reconciler.drivers.libvirt import LibvirtDriver, compose  # noqa: E402
from reconciler.engine import compute_plan  # noqa: E402
from reconciler.engine.apply import apply_plan  # noqa: E402
from reconciler.engine.config import Config, build_hosts  # noqa: E402
from reconciler.engine.journal import Journal  # noqa: E402
from reconciler.engine.policy import Policy  # noqa: E402
from reconciler.log import configure  # noqa: E402
from reconciler.model import Domain, canonical  # noqa: E402
from reconciler.model.fields import Ref  # noqa: E402
from reconciler.specs.loader import load_paths  # noqa: E402
from reconciler.specs.xml_write import to_xml  # noqa: E402


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:5.2f}x" if floor else "  n/a"


class Bench:
    def __init__(self, n: int, repeat: int, uri: str, tmp: Path, spec_format: str) -> None:
        import libvirt

        libvirt.registerErrorHandler(lambda _c, _e: None, None)
        self.lv = libvirt
        self.n, self.repeat, self.uri, self.tmp = n, repeat, uri, tmp
        self.spec_format = spec_format
        self.prefix = f"bv{uuid.uuid4().hex[:5]}"
        self.conn = libvirt.open(uri)
        self.root = tmp / "root"
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        for path in (self.root / "bin", self.specs, self.state):
            path.mkdir(parents=True)

    def name(self, kind: str, i: int) -> str:
        return f"{self.prefix}{kind}{i:04d}"

    def spec(self, name: str) -> dict[str, Any]:
        return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
                "state": "stopped", "cpu": {"shares": 512},
                "init": {"cmd": "/bin/sh", "args": ["-c", "sleep 100000"]},
                "filesystems": [{"type": "mount", "source": str(self.root), "target": "/"}],
                "interfaces": [{"type": "bridge", "source": f"{self.prefix}br"}],
                "console": {"type": "pty"}}

    def config(self) -> Config:
        # the floor defines the same domains: a host directory as their root, no id map (the
        # host policy allows both here)
        return Config(state_dir=str(self.state), driver="libvirt", driver_chosen=True,
                      drivers={"libvirt": {"uri": self.uri, "match": f"{self.prefix}r*"}},
                      policy=Policy.from_config({"privileged": True, "host_root": True,
                                                 "mount_roots": [str(self.root)]},
                                                str(self.state)))

    def settings(self) -> Any:
        """The config's settings (its policy), with the removal breaker off: the bench
        removes what it made."""
        return replace(self.config().settings, max_removal_share=1.0)

    def cleanup(self, kind: str = "") -> int:
        gone = 0
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith(self.prefix + kind):
                try:
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
                    gone += 1
                except self.lv.libvirtError:
                    continue
        return gone

    # ------------------------------------------------------------------ defines
    def floor_define(self) -> float:
        """Bare defineXML of the very documents the driver defines (our writer's XML with the
        ownership stamp in <metadata>), made before the clock starts."""
        xmls = []
        for i in range(self.n):
            spec = canonical(Domain.model_validate(self.spec(self.name("f", i))))
            spec.pop("kind", None)
            xmls.append(compose.domain_xml(
                spec, Stamp(OWNER, str(self.specs / f"{spec['name']}.xml"), spec), existing=None,
                translate_templates=True, template_source=lambda fs: fs["source"]))
        t0 = time.perf_counter()
        for xml in xmls:
            self.conn.defineXML(xml)
        took = time.perf_counter() - t0
        self.cleanup("f")
        return took

    def driver_define(self) -> float:
        """The driver alone: observe once (as before any apply), then execute(define)."""
        steps = []
        for i in range(self.n):
            spec = canonical(Domain.model_validate(self.spec(self.name("d", i))))
            spec.pop("kind", None)
            steps.append(Step(f"s{i}", "define", Ref("Domain", spec["name"]), "lxc", spec=spec))
        driver = LibvirtDriver(self.state, uri=self.uri, match=f"{self.prefix}d*")
        try:
            t0 = time.perf_counter()
            driver.observe()
            for step in steps:
                driver.execute(step)
            took = time.perf_counter() - t0
        finally:
            driver.close()
        self.cleanup("d")
        return took

    def write_specs(self) -> None:
        for i in range(self.n):
            name = self.name("r", i)
            if self.spec_format == "yaml":
                (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(self.spec(name)))
            else:
                (self.specs / f"{name}.xml").write_text(to_xml(Domain.model_validate(
                    self.spec(name))))

    def engine_apply(self, keep: bool, parallel: int = 8) -> tuple[float, int]:
        hosts = build_hosts(self.config())
        journal = Journal(self.state)
        try:
            t0 = time.perf_counter()
            plan = compute_plan([str(self.specs)], hosts, self.settings()).plan
            report = apply_plan(plan, hosts, journal, parallel=parallel)
            took = time.perf_counter() - t0
        finally:
            journal.close()
            hosts.close()
        if not report.ok:
            raise SystemExit(f"apply failed: {report.counts()}")
        if not keep:
            self.cleanup("r")
        return took, sum(1 for o in plan.objects if o.action == "create")

    # ------------------------------------------------------------------ no-op reconcile
    def floor_read(self) -> None:
        flag = self.lv.VIR_DOMAIN_XML_INACTIVE
        for dom in self.conn.listAllDomains(0):
            dom.XMLDesc(flag)

    def run(self) -> dict[str, float]:
        out: dict[str, float] = {}
        n, r = self.n, self.repeat
        print(f"libvirt bench on {self.uri}: N={n} defined (not started) LXC domains, "
              f"{self.spec_format} specs, median of {r}")
        times: dict[str, list[float]] = {k: [] for k in (
            "define_floor", "define_driver", "define_engine", "define_engine4")}
        self.write_specs()

        def engine(parallel: int) -> Callable[[], float]:
            def run() -> float:
                took, created = self.engine_apply(keep=False, parallel=parallel)
                assert created == n, created
                return took
            return run

        runs: list[tuple[str, Callable[[], float]]] = [
            ("define_floor", self.floor_define), ("define_driver", self.driver_define),
            ("define_engine", engine(8)), ("define_engine4", engine(4))]
        for i in range(r):  # interleaved and rotated: the host's drift hits all alike
            for key, fn in runs[i % len(runs):] + runs[:i % len(runs)]:
                times[key].append(fn())
        out.update({key: statistics.median(values) for key, values in times.items()})
        floor = out["define_floor"]
        print(f"\n  apply of {n} defines")
        print(f"    floor: bare defineXML loop            {floor:8.3f} s")
        print(f"    engine: apply (plan + steps, par. 8)   {out['define_engine']:8.3f} s  "
              f"{ratio(out['define_engine'], floor)}  (target <= 1.2x)")
        print(f"    engine: apply (plan + steps, par. 4)   {out['define_engine4']:8.3f} s  "
              f"{ratio(out['define_engine4'], floor)}")
        print(f"    driver alone: observe + execute(define) x N, serial "
              f"{out['define_driver']:8.3f} s  {ratio(out['define_driver'], floor)}")

        self.engine_apply(keep=True)  # the N domains the no-op reconciles find
        settings = self.settings()
        hosts = build_hosts(self.config())
        specs = load_paths([str(self.specs)])
        try:
            def agent() -> None:
                result = compute_plan([str(self.specs)], hosts, settings, specs=specs)
                assert not result.plan.steps, "not a no-op"

            agent()  # the agent's first pass (parses every definition once)
            driver = hosts.drivers["libvirt"]
            times: dict[str, list[float]] = {"noop_floor": [], "noop_agent": [],
                                             "observe_warm": []}
            for _ in range(r * 3):  # interleaved: the daemon's speed drifts
                for key, fn in (("noop_floor", self.floor_read), ("noop_agent", agent),
                                ("observe_warm", driver.observe)):
                    times[key].append(median_time(fn, 1))
            out.update({key: statistics.median(values) for key, values in times.items()})
        finally:
            hosts.close()

        def cli() -> None:
            fresh = build_hosts(self.config())
            try:
                result = compute_plan([str(self.specs)], fresh, settings)
                assert not result.plan.steps, "not a no-op"
            finally:
                fresh.close()

        def cold_observe() -> None:
            driver = LibvirtDriver(self.state, uri=self.uri, match=f"{self.prefix}r*")
            try:
                driver.observe()
            finally:
                driver.close()

        out["noop_cli"] = median_time(cli, r)
        out["observe_cold"] = median_time(cold_observe, r)
        out["load_specs"] = median_time(lambda: load_paths([str(self.specs)]), r)
        floor = out["noop_floor"]
        print(f"\n  no-op reconcile over {n}")
        print(f"    floor: listAllDomains + XMLDesc x N    {floor:8.4f} s")
        print(f"    agent pass (driver + specs kept)       {out['noop_agent']:8.4f} s  "
              f"{ratio(out['noop_agent'], floor)}  (target <= 1.3x)")
        print(f"      of which observe                     {out['observe_warm']:8.4f} s  "
              f"{ratio(out['observe_warm'], floor)}")
        print(f"    CLI plan from scratch                  {out['noop_cli']:8.4f} s  "
              f"{ratio(out['noop_cli'], floor)}")
        print(f"      of which observe (cold: parses all)  {out['observe_cold']:8.4f} s  "
              f"{ratio(out['observe_cold'], floor)}")
        print(f"      of which loading {n} spec files     {out['load_specs']:8.4f} s")
        return out

    # ------------------------------------------------------------------ ansible
    def ansible(self, count: int, venv: Path | None, ours: dict[str, float]) -> None:
        print(f"\n  Ansible community.libvirt, {count} domains (define, then the idempotent "
              "re-run)")
        python = self.ansible_venv(venv)
        if python is None:
            return
        work = self.tmp / "ansible"
        work.mkdir()
        items = []
        for i in range(count):
            spec = dict(self.spec(self.name("a", i)))
            spec.pop("state")
            items.append(to_xml(Domain.model_validate(spec)))
        (work / "doms.json").write_text(json.dumps(items))
        (work / "site.yml").write_text(yaml.safe_dump([{
            "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": str(python),
                     "doms": "{{ lookup('file', 'doms.json') | from_json }}"},
            "tasks": [{"name": "define domains", "community.libvirt.virt": {
                "command": "define", "uri": self.uri, "xml": "{{ item }}",
                "mutate_flags": ["ADD_UUID", "ADD_MAC_ADDRESSES_FUZZY"]},
                "loop": "{{ doms }}", "loop_control": {"label": "dom"}}],
        }], sort_keys=False))
        env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "False",
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "ANSIBLE_NOCOLOR": "1"}
        playbook = [str(python.parent / "ansible-playbook"), "-i", "localhost,", "site.yml"]
        runs = []
        for label in ("define", "re-run"):
            t0 = time.perf_counter()
            done = subprocess.run(playbook, cwd=work, env=env, capture_output=True, text=True,
                                  timeout=3600, check=False)
            runs.append(time.perf_counter() - t0)
            recap = next((line for line in done.stdout.splitlines() if "changed=" in line), "")
            if done.returncode != 0:
                print(f"    ansible {label} failed: {done.stdout[-600:]}{done.stderr[-600:]}")
                self.cleanup("a")
                return
            defined = sum(1 for d in self.conn.listAllDomains(0)
                          if d.name().startswith(self.prefix + "a"))
            print(f"    ansible {label:7s} {runs[-1]:8.2f} s   {defined} domains defined;  "
                  f"{' '.join(recap.split(':', 1)[-1].split()[:2])}")
        self.cleanup("a")
        scale = count / self.n
        ours_define = ours["define_engine"] * scale
        ours_rerun = ours["noop_cli"] * scale
        print(f"    reconciler apply (same count, scaled from N)  {ours_define:8.2f} s;  "
              f"ansible / reconciler: {runs[0] / ours_define:6.1f}x")
        print(f"    reconciler no-op plan (CLI, scaled)           {ours_rerun:8.2f} s;  "
              f"ansible re-run / reconciler: {runs[1] / ours_rerun:6.1f}x")

    def ansible_venv(self, venv: Path | None) -> Path | None:
        if venv is not None:
            python = venv / "bin" / "python"
            if not (venv / "bin" / "ansible-playbook").exists():
                print(f"    skipped: {venv} has no ansible-playbook")
                return None
            return python
        venv = self.tmp / "ansible-venv"
        t0 = time.perf_counter()
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                              text=True, check=False)
        if made.returncode != 0:
            print(f"    skipped: cannot make a venv ({made.stderr.strip()[:200]})")
            return None
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "ansible",
                              "libvirt-python", "lxml"], capture_output=True, text=True,
                             timeout=900, check=False)
        if pip.returncode != 0:
            print("    skipped: ansible, libvirt-python or lxml did not install from PyPI here: "
                  f"{pip.stderr.strip().splitlines()[-1] if pip.stderr.strip() else pip.stdout}")
            return None
        listed = subprocess.run([str(venv / "bin" / "ansible-galaxy"), "collection", "list",
                                 "community.libvirt"], capture_output=True, text=True,
                                check=False)
        if "community.libvirt" not in listed.stdout:
            print("    skipped: the ansible bundle here has no community.libvirt")
            return None
        print(f"    (venv with ansible + libvirt-python + lxml made in "
              f"{time.perf_counter() - t0:.0f} s)")
        return venv / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--uri", default="lxc:///")
    parser.add_argument("--spec-format", choices=("xml", "yaml"), default="xml",
                        help="how the N spec files are written (default: xml, as virsh "
                             "dumpxml gives them)")
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument("--ansible-n", type=int, help="domains for Ansible (default: N)")
    parser.add_argument("--ansible-venv", type=Path,
                        help="an existing venv with ansible, libvirt-python and lxml")
    args = parser.parse_args()
    try:
        import libvirt  # noqa: F401
    except ImportError:
        raise SystemExit("bench/libvirt.py needs libvirt-python: pip install "
                         "'.[libvirt]' from the checkout") from None
    with open(os.devnull, "w") as sink:  # the agent logs every step: the cost is counted
        configure("json", "info", sink)
        tmp = Path(tempfile.mkdtemp(prefix="rc-bench-libvirt-"))
        bench = None
        try:
            bench = Bench(args.n, args.repeat, args.uri, tmp, args.spec_format)
            ours = bench.run()
            if args.no_ansible:
                print("\n  Ansible: skipped (--no-ansible)")
            else:
                bench.ansible(args.ansible_n or args.n, args.ansible_venv, ours)
        finally:
            gone = 0
            if bench is not None:
                gone = bench.cleanup()
                bench.conn.close()
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"\n  cleaned up: {gone} domains left by the bench undefined, {tmp} removed")


if __name__ == "__main__":
    main()
