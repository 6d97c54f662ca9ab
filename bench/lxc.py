"""The lxc driver on the real host, each figure next to its floor measured in the same run.

    python bench/lxc.py [N] [--parallel P]        (default: 30 containers, parallel 8; root)

- create + start N busybox containers through `apply` (engine API, bounded parallel steps)
  vs a plain serial shell-style loop: lxc-create, the rcS udhcpc fix, lxc-start -d
- a no-op plan over the N (load specs + observe + diff) vs the bare reads, median of several
  runs, against two floors: `lxc-ls -f -F NAME,STATE` + every config file (what a script
  would read), and `lxc-ls --active -1` + every config file (the cheaper listing the driver
  itself uses); the plan's own parts (spec loading, observe) are shown too

Everything lives under a temp lxcpath with a private bridge on 10.123.N.0/24, and is
destroyed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from timing import applied, median_time, noop_plan

from reconciler.engine.config import Config, build_hosts
from reconciler.engine.policy import Policy
from reconciler.log import configure
from reconciler.specs.loader import load_paths


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL, timeout=300)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


class Bench:
    def __init__(self, n: int, parallel: int, tmp: Path) -> None:
        self.n, self.parallel, self.tmp = n, parallel, tmp
        self.prefix = f"bl{uuid.uuid4().hex[:5]}"
        self.bridge = f"{self.prefix}br"
        used = run("ip", "-4", "-o", "addr").stdout
        self.net = random.choice([k for k in range(100, 250) if f"10.123.{k}." not in used])
        self.loop_path = tmp / "loop"
        self.apply_path = tmp / "apply"
        self.specs = tmp / "specs"
        self.state = tmp / "state"

    def ip(self, host: int) -> str:
        return f"10.123.{self.net}.{host}"

    def setup(self) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.ip(1)}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for d in (self.loop_path, self.apply_path, self.specs, self.state):
            d.mkdir()

    # ------------------------------------------------------------------ the floor
    def serial_loop(self) -> float:
        t0 = time.perf_counter()
        for i in range(self.n):
            name = f"{self.prefix}l{i:02d}"
            conf = self.tmp / f"{name}.conf"
            conf.write_text(f"lxc.net.0.type = veth\nlxc.net.0.link = {self.bridge}\n"
                            "lxc.net.0.flags = up\nlxc.net.0.name = eth0\n"
                            f"lxc.net.0.ipv4.address = {self.ip(10 + i)}/24 {self.ip(255)}\n")
            run("lxc-create", "-P", str(self.loop_path), "-n", name, "-t", "busybox",
                "-f", str(conf))
            rcs = self.loop_path / name / "rootfs" / "etc" / "init.d" / "rcS"
            rcs.write_text("".join(line for line in rcs.read_text().splitlines(True)
                                   if "udhcpc" not in line))
            run("lxc-start", "-P", str(self.loop_path), "-n", name, "-d")
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ the engine
    def config(self) -> Config:
        # the floor's containers run without an id map: the engine's may too (the host
        # policy allows it here), so both sides do the same work
        return Config(state_dir=str(self.state), driver="lxc", driver_chosen=True,
                      drivers={"lxc": {"lxcpath": str(self.apply_path), "stop_timeout": 0}},
                      policy=Policy.from_config({"privileged": True}, str(self.state)))

    def write_specs(self) -> None:
        for i in range(self.n):
            name = f"{self.prefix}a{i:02d}"
            spec = {"kind": "Domain", "name": name, "type": "lxc", "memory": "128MiB",
                    "hostname": name,
                    "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
                    "interfaces": [{"type": "bridge", "source": self.bridge,
                                    "guest_dev": "eth0", "ip": [f"{self.ip(100 + i)}/24"]}]}
            (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def apply(self) -> float:
        return applied(self.config(), self.specs, self.parallel)

    def noop_plan(self) -> None:
        noop_plan(self.config(), self.specs)

    def bare_reads(self, *ls_args: str) -> None:
        run("lxc-ls", "-P", str(self.apply_path), *ls_args)
        for entry in os.scandir(self.apply_path):
            path = Path(entry.path) / "config"
            if path.exists():
                path.read_text()

    def parts(self, repeat: int) -> tuple[float, float]:
        load = median_time(lambda: load_paths([str(self.specs)]), repeat)
        hosts = build_hosts(self.config())
        try:
            observe = median_time(hosts.observe, repeat)
        finally:
            hosts.close()
        return load, observe

    # ------------------------------------------------------------------ cleanup
    def cleanup(self) -> None:
        for path in (self.loop_path, self.apply_path):
            if not path.is_dir():
                continue
            for entry in sorted(path.iterdir()):
                if entry.is_dir() and entry.name.startswith(self.prefix):
                    run("lxc-stop", "-P", str(path), "-n", entry.name, "-k", check=False)
                    run("lxc-destroy", "-P", str(path), "-n", entry.name, "-f", check=False)
        run("ip", "link", "del", self.bridge, check=False)
        for leftover in Path("/sys/fs/cgroup").glob(f"*/lxc.*.{self.prefix}*"):
            with contextlib.suppress(OSError):
                leftover.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("lxc-create") is None:
        print("bench/lxc.py needs root and LXC (lxc-create)", file=sys.stderr)
        return 1
    configure("json", "warning")
    with tempfile.TemporaryDirectory(prefix="bench-lxc-") as tmp:
        bench = Bench(args.n, args.parallel, Path(tmp))
        try:
            bench.setup()
            bench.write_specs()
            loop = bench.serial_loop()
            applied = bench.apply()
            bench.noop_plan()  # warm: first import of everything, page cache
            plan = median_time(bench.noop_plan, args.repeat)
            floor_f = median_time(lambda: bench.bare_reads("-f", "-F", "NAME,STATE"),
                                  args.repeat)
            floor_a = median_time(lambda: bench.bare_reads("--active", "-1"), args.repeat)
            load, observe = bench.parts(args.repeat)
        finally:
            bench.cleanup()
    n = args.n
    print(f"lxc driver, {n} busybox containers, {os.cpu_count()} CPUs, "
          f"apply --parallel {args.parallel}")
    print(f"  create+start  apply {applied:7.2f} s   serial lxc-create/lxc-start loop "
          f"{loop:7.2f} s   ratio {applied / loop:5.2f}x  (target < 1.00x)")
    print(f"  no-op plan    plan  {plan * 1000:7.1f} ms  lxc-ls -f -F NAME,STATE + {n} configs "
          f"{floor_f * 1000:7.1f} ms  ratio {plan / floor_f:5.2f}x")
    print(f"                                   lxc-ls --active -1 + {n} configs      "
          f"{floor_a * 1000:7.1f} ms  ratio {plan / floor_a:5.2f}x  (target <= 1.50x)")
    print(f"    of the plan: loading {n} spec files {load * 1000:.1f} ms (engine loader), "
          f"observe {observe * 1000:.1f} ms (driver), the rest diff + plan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
