"""The vserver driver on a simulated util-vserver host, each figure next to its floor measured
in the same run.

    python bench/vserver.py [N] [--repeat R]        (default: 100 guests)

The VServer kernel cannot run here: the host is vssim (tests/sims/vserver), whose tools are
Python programs; `vserver-stat` costs a Python start-up (tens of ms) where the C tool costs
about a millisecond, so the figures are also given without it.

Setup (not timed): N guests built and started with the simulator's own `vserver` (in-process,
fast), each with an address, a per-CPU scheduler, rlimits, an fstab mount and an init, then
adopted with `import` (the specs written as the CLI writes them).

- a no-op plan over the N (load the spec files + observe + diff; a fresh driver each time,
  as `reconciler plan` runs) vs the floor of the driver's own reads: one `vserver-stat` and
  every file of every guest's tree (plus its run file), read bare
- the driver's observe alone vs the same floor
- what reading and mapping the trees costs the driver vs reading their files bare (neither
  runs vserver-stat), and an observe by a driver that saw the same trees before (the agent's
  resync: unchanged trees are not mapped again)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_time, noop_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler import drivers
from reconciler.drivers.base import Driver
from reconciler.drivers.vserver import VserverDriver
from reconciler.engine.config import Config
from reconciler.log import configure
from reconciler.model import KINDS
from reconciler.specs.convert import to_yaml
from reconciler.specs.loader import load_paths
from tests.conformance.vserver_harness import driver_options
from tests.sims.vserver.host import VsHost


def _vserver() -> type[Driver]:
    return VserverDriver


def make_guests(host: VsHost, n: int) -> None:
    for i in range(n):
        name = f"g{i:03d}"
        done = host.call("vserver", name, "build", "-m", "template", "--hostname", name,
                         "--interface", f"eth0:10.{i // 250}.{i % 250}.2/24", "--", "-t",
                         str(host.template))
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        cfg = host.guest_dir(name)
        for rel, text in {"sched/fill-rate": "100\n", "sched/interval": "1000\n",
                          "sched/0/cpu-id": "0\n", "sched/0/fill-rate": "50\n",
                          "rlimits/rss.hard": "16384\n", "rlimits/nproc.soft": "100\n",
                          "rlimits/nproc.hard": "200\n", "apps/init/mark": "default\n",
                          "apps/init/style": "plain\n"}.items():
            (cfg / rel).parent.mkdir(parents=True, exist_ok=True)
            (cfg / rel).write_text(text)
        with open(cfg / "fstab", "a") as fstab:
            fstab.write(f"/srv/{name} /srv none bind,ro 0 0\n")
        if host.call("vserver", name, "start").returncode != 0:
            raise SystemExit(f"cannot start {name}")


def bare_reads(host: VsHost, stat: bool = True) -> None:
    """What the driver cannot do without: one vserver-stat, and every guest tree's files."""
    if stat:
        subprocess.run([str(host.tool("vserver-stat"))], capture_output=True, check=True)
    for entry in os.scandir(host.config_root):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        for top, dirs, files in os.walk(entry.path):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
            for name in files:
                path = os.path.join(top, name)
                if not os.path.islink(path):
                    with open(path, "rb") as fh:
                        fh.read()
        try:
            with open(os.path.join(entry.path, "run"), "rb") as fh:
                fh.read()
        except OSError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    configure("json", "warning")
    drivers.BUILTIN.setdefault("vserver", _vserver)
    with tempfile.TemporaryDirectory(prefix="bench-vserver-") as tmp:
        host = VsHost(Path(tmp) / "host")
        specs, state = Path(tmp) / "specs", Path(tmp) / "state"
        specs.mkdir()
        make_guests(host, args.n)
        config = Config(state_dir=str(state), driver="vserver", driver_chosen=True,
                        drivers={"vserver": driver_options(host)})
        options = driver_options(host)
        found = VserverDriver(state, **options).import_specs(out=str(specs))
        for raw in found.specs:
            spec = KINDS["Domain"].model_validate(raw)
            (specs / f"{spec.name}.yaml").write_text(to_yaml([spec]))

        def planned() -> None:
            noop_plan(config, specs)

        def observe() -> None:
            VserverDriver(state, **options).observe()

        def map_trees() -> None:
            driver = VserverDriver(state, **options)
            for name in driver._guest_names():
                driver._observe_one(name)

        warm = VserverDriver(state, **options)
        planned()  # warm: imports, page cache
        plan = median_time(planned, args.repeat)
        floor = median_time(lambda: bare_reads(host), args.repeat)
        seen = median_time(observe, args.repeat)
        trees = median_time(map_trees, args.repeat)
        floor_trees = median_time(lambda: bare_reads(host, stat=False), args.repeat)
        warm.observe()
        resync = median_time(warm.observe, args.repeat)
        load = median_time(lambda: load_paths([str(specs)]), args.repeat)
        stat = median_time(lambda: subprocess.run([str(host.tool("vserver-stat"))],
                                                  capture_output=True, check=True),
                           args.repeat)
    n = args.n
    print(f"vserver driver on vssim, {n} guests, {os.cpu_count()} CPUs, median of "
          f"{args.repeat}")
    print(f"  no-op plan   {plan * 1000:7.1f} ms   floor: vserver-stat + {n} trees "
          f"{floor * 1000:7.1f} ms   ratio {plan / floor:5.2f}x  (target <= 1.50x)")
    print(f"  observe      {seen * 1000:7.1f} ms   the same floor{'':21} ratio "
          f"{seen / floor:5.2f}x")
    print(f"  {n} trees read and mapped {trees * 1000:7.1f} ms   read bare "
          f"{floor_trees * 1000:7.1f} ms   ratio {trees / floor_trees:5.2f}x  "
          "(no vserver-stat in either)")
    print(f"  resync observe (trees unchanged, same driver) {resync * 1000:7.1f} ms")
    print(f"    of the plan: loading {n} spec files {load * 1000:.1f} ms, one simulated "
          f"vserver-stat {stat * 1000:.1f} ms (it runs while the files load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
