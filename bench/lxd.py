"""The lxd driver on a real LXD daemon, each figure next to its floor measured in the same run.

    python bench/lxd.py [N] [--creates C] [--parallel P]   (default: 100, 30, 8; root, lxd)

- create + start C busybox containers through `apply` (engine API, bounded parallel steps)
  vs a serial `lxc launch` loop of C containers (the way a script would make them)
- a no-op plan over N containers vs the floor: one recursive instance listing
  (`GET /1.0/instances?recursion=1` and its JSON decoded), the one call observe waits for.
  Two plans: the agent's pass (drivers and spec files kept between passes, as the agent
  runs every resync) and a cold plan (new drivers, every spec file read, as one `reconciler
  plan` does, minus the interpreter's start-up); each also without the networks listing
  (`networks: false`). For the cold plan the CPU both sides spend is shown: this process's
  and the daemon's, and the wall time they cannot go under on this machine's cores.

The daemon is the tests' (tests/lxd/daemons.py): its own LXD_DIR and namespaces, a local
preseed, a busybox image built here. It is stopped and its directory erased at the end, also
on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from timing import applied, median_time, noop_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.drivers.lxd import LxdDriver
from reconciler.drivers.lxd.client import Client, Remote
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.hosts import Hosts
from reconciler.engine.passes import compute_plan
from reconciler.log import configure
from reconciler.specs.loader import load_paths
from tests.lxd import daemons, support


class Bench:
    def __init__(self, daemon: daemons.Daemon, tmp: Path, parallel: int) -> None:
        self.daemon, self.tmp, self.parallel = daemon, tmp, parallel
        self.prefix = support.prefix("b")
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        self.specs.mkdir(parents=True)
        self.state.mkdir(parents=True)
        self.kept: list[Hosts] = []

    def config(self, **options: Any) -> Config:
        return support.config(self.state, self.daemon, self.prefix, **options)

    def serial_launch(self, count: int) -> float:
        assert daemons.LXC is not None
        names = [f"{self.prefix}l{i:03d}" for i in range(count)]
        t0 = time.perf_counter()
        for name in names:
            subprocess.run([daemons.LXC, "launch", "busybox", name, "--quiet"],
                           env=self.daemon.env(), check=True, capture_output=True, timeout=300)
        took = time.perf_counter() - t0
        for name in names:
            self.daemon.lxc("delete", "--force", name)
        return took

    def write_specs(self, first: int, count: int) -> None:
        for i in range(first, first + count):
            name = f"{self.prefix}a{i:03d}"
            (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(support.spec(name)))

    def apply(self) -> float:
        return applied(self.config(), self.specs, self.parallel)

    def noop_plan(self, **options: Any) -> None:
        noop_plan(self.config(**options), self.specs)

    def agent_pass(self, **options: Any) -> Callable[[], None]:
        """The agent's resync pass: drivers and loaded spec files kept between passes."""
        config = self.config(**options)
        hosts = build_hosts(config)
        self.kept.append(hosts)
        specs = load_paths([str(self.specs)])

        def one() -> None:
            plan = compute_plan([str(self.specs)], hosts, config.settings,
                                specs=specs).plan
            if plan.steps:
                raise SystemExit(f"the agent's pass is not empty: {len(plan.steps)} steps")

        one()  # the first pass reads every instance; the later ones reuse what is unchanged
        return one

    def listing(self) -> None:
        client = Client(Remote(self.daemon.remote))
        try:
            client.get("/1.0/instances", recursion="1")
        finally:
            client.close()

    def observe(self) -> None:
        """A first observe, as each plan's (a fresh driver has nothing to reuse)."""
        driver = LxdDriver(self.state, **support.options(self.daemon, self.prefix))
        try:
            driver.observe()
        finally:
            driver.close()

    def daemon_cpu(self) -> float:
        """CPU seconds the daemon's processes have used so far."""
        assert self.daemon.proc is not None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in _descendants(self.daemon.proc.pid):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def cpu_of(self, fn: Callable[[], None], repeat: int) -> tuple[float, float]:
        """CPU seconds per call: this process's, the daemon's."""
        ours, theirs = time.process_time(), self.daemon_cpu()
        for _ in range(repeat):
            fn()
        return ((time.process_time() - ours) / repeat, (self.daemon_cpu() - theirs) / repeat)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    why = daemons.reason()
    if why:
        print(f"bench/lxd.py: {why}", file=sys.stderr)
        return 1
    configure("json", "warning")
    root = Path(tempfile.mkdtemp(prefix="bench-lxd-"))
    root.chmod(0o711)
    daemon, bench = None, None
    try:
        daemon = daemons.single(root)
        bench = Bench(daemon, root / "work", args.parallel)
        loop = bench.serial_launch(args.creates)
        bench.write_specs(0, args.creates)
        applied = bench.apply()
        bench.write_specs(args.creates, max(0, args.n - args.creates))
        bench.apply()
        bench.noop_plan()  # warm: first import of everything, page cache
        floor = median_time(bench.listing, args.repeat)
        agent = median_time(bench.agent_pass(), args.repeat)
        agent_alone = median_time(bench.agent_pass(networks=False), args.repeat)
        plan = median_time(bench.noop_plan, args.repeat)
        alone = median_time(lambda: bench.noop_plan(networks=False), args.repeat)
        floor = min(floor, median_time(bench.listing, args.repeat))  # the floor's best
        load = median_time(lambda: load_paths([str(bench.specs)]), args.repeat)
        observe = median_time(bench.observe, args.repeat)
        plan_cpu = bench.cpu_of(bench.noop_plan, args.repeat)
        floor_cpu = bench.cpu_of(bench.listing, args.repeat)
        lxd_version = daemons.run([daemons.LXD or "lxd", "--version"]).stdout.strip()
    finally:
        for hosts in bench.kept if bench is not None else ():
            hosts.close()
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
    c, n, cores = args.creates, max(args.n, args.creates), os.cpu_count() or 1
    ms = 1000
    print(f"lxd driver (LXD {lxd_version}), busybox containers, {cores} CPUs, "
          f"apply --parallel {args.parallel}")
    print(f"  {c} creates   apply {applied:7.2f} s   serial `lxc launch` loop {loop:7.2f} s   "
          f"ratio {applied / loop:5.2f}x  (target < 1.00x)")
    print(f"  no-op plan over {n} containers; floor: one GET /1.0/instances?recursion=1 "
          f"{floor * ms:.1f} ms  (target <= 1.50x)")
    print(f"    agent's pass  {agent * ms:7.1f} ms   ratio {agent / floor:5.2f}x   without "
          f"networks {agent_alone * ms:7.1f} ms   ratio {agent_alone / floor:5.2f}x")
    print(f"    cold plan     {plan * ms:7.1f} ms   ratio {plan / floor:5.2f}x   without "
          f"networks {alone * ms:7.1f} ms   ratio {alone / floor:5.2f}x")
    bound = (plan_cpu[0] + plan_cpu[1]) / cores
    print(f"      CPU per cold plan: ours {plan_cpu[0] * ms:.1f} ms + LXD's {plan_cpu[1] * ms:.1f}"
          f" ms (the listing alone: LXD's {floor_cpu[1] * ms:.1f} ms) over {cores} cores: no "
          f"less than {bound * ms:.1f} ms wall = {bound / floor:.2f}x")
    print(f"      of it: loading {n} spec files {load * ms:.1f} ms (while the listings run), "
          f"a fresh driver's observe {observe * ms:.1f} ms, the rest diff + plan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
