"""The openvz driver on the vzctl/vzlist simulators, each figure next to its floor measured in the
same run.

    python bench/openvz.py [N] [--parallel P] [--version 4|7]   (default: 100, parallel 8, 4)

- apply of N creates (`vzctl create` + `vzctl set --save` per container, through the engine:
  load, plan, bounded parallel steps) vs a plain serial loop running the same two commands
- a no-op plan over the N (load specs + observe + diff), median of several runs, vs the floor
  of the driver's own reads: one `vzlist -a -j -o ctid,status` and every CTID.conf and sidecar

The simulated tools are Python programs, so each call costs a Python start (~40 ms here); a real
vzctl costs less per call and more per create (it unpacks an OS template). Everything lives in
a temp dir, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from timing import applied, median_time, noop_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.drivers import BUILTIN
from reconciler.drivers.openvz import OpenvzDriver
from reconciler.engine.config import Config, build_hosts
from reconciler.log import configure
from reconciler.specs.loader import load_paths
from tests.sims.openvz.host import OSTEMPLATE, VzHost

BUILTIN.setdefault("openvz", lambda: OpenvzDriver)  # until the driver is registered


def run(*argv: str) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.strip()}")


class Bench:
    def __init__(self, n: int, parallel: int, version: str, tmp: Path) -> None:
        self.n, self.parallel = n, parallel
        self.loop_host = VzHost(tmp / "loop", version)
        self.host = VzHost(tmp / "apply", version)
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        self.specs.mkdir()
        self.state.mkdir()

    def settings(self, i: int) -> list[str]:
        return ["--hostname", f"ct{i:03d}", "--ram", str(128 << 20),
                "--ipadd", f"10.9.{i // 250}.{i % 250 + 1}/16"]

    def serial_loop(self) -> float:
        vzctl = self.loop_host.tool("vzctl")
        t0 = time.perf_counter()
        for i in range(self.n):
            ctid = str(101 + i)
            run(vzctl, "create", ctid, "--ostemplate", OSTEMPLATE, "--name", f"ct{i:03d}")
            run(vzctl, "set", ctid, *self.settings(i), "--save")
        return time.perf_counter() - t0

    def config(self) -> Config:
        return Config(state_dir=str(self.state), driver="openvz", driver_chosen=True,
                      drivers={"openvz": {"vzctl": self.host.tool("vzctl"),
                                          "vzlist": self.host.tool("vzlist"),
                                          "conf_dir": str(self.host.conf_dir),
                                          "vz_conf": str(self.host.vz_conf)}})

    def write_specs(self) -> None:
        for i in range(self.n):
            name = f"ct{i:03d}"
            spec = {"kind": "Domain", "name": name, "type": "openvz", "state": "stopped",
                    "hostname": name, "memory": "128MiB",
                    "filesystems": [{"type": "template", "name": OSTEMPLATE, "target": "/"}],
                    "interfaces": [{"type": "routed",
                                    "ip": [f"10.9.{i // 250}.{i % 250 + 1}/16"]}]}
            (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def apply(self) -> float:
        return applied(self.config(), self.specs, self.parallel)

    def noop_plan(self) -> None:
        noop_plan(self.config(), self.specs)

    def bare_reads(self) -> None:
        """The driver's own reads and nothing else: one vzlist, every config and sidecar."""
        run(self.host.tool("vzlist"), "-a", "-j", "-o", "ctid,status")
        for entry in os.scandir(self.host.conf_dir):
            if entry.name.endswith((".conf", ".reconciler.json")):
                Path(entry.path).read_bytes()

    def parts(self, repeat: int) -> tuple[float, float]:
        load = median_time(lambda: load_paths([str(self.specs)]), repeat)
        hosts = build_hosts(self.config())
        try:
            observe = median_time(hosts.observe, repeat)
        finally:
            hosts.close()
        return load, observe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--version", choices=("3", "4", "7"), default="4")
    args = parser.parse_args()
    configure("json", "warning")
    with tempfile.TemporaryDirectory(prefix="bench-openvz-") as tmp:
        bench = Bench(args.n, args.parallel, args.version, Path(tmp))
        bench.write_specs()
        loop = bench.serial_loop()
        applied = bench.apply()
        bench.noop_plan()  # warm: first import of everything, page cache
        plan = median_time(bench.noop_plan, args.repeat)
        floor = median_time(bench.bare_reads, args.repeat)
        load, observe = bench.parts(args.repeat)
    n = args.n
    print(f"openvz driver on the vzctl {args.version} simulator, {n} containers, "
          f"{os.cpu_count()} CPUs, apply --parallel {args.parallel}")
    print(f"  create+set    apply {applied:7.2f} s   serial vzctl create/set loop "
          f"{loop:7.2f} s   ratio {applied / loop:5.2f}x  (target < 1.00x)")
    print(f"  no-op plan    plan  {plan * 1000:7.1f} ms  vzlist + {n} configs and sidecars "
          f"{floor * 1000:7.1f} ms  ratio {plan / floor:5.2f}x  (target <= 1.50x)")
    print(f"    of the plan: loading {n} spec files {load * 1000:.1f} ms (engine loader, "
          f"while vzlist runs), observe {observe * 1000:.1f} ms (driver), the rest diff + plan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
