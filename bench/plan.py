"""Plan and apply speed on `sim`, each next to its floor measured in the same run.

    python bench/plan.py [N ...]        (default: 1000 10000)

- no-op plan (load + observe + diff) vs the loading floor (load_paths alone, same files)
- all-create apply (engine, --parallel 4) vs the sim floor (SimDriver.execute of the same
  steps in a serial tight loop, on a fresh state directory)
- peak RSS of the process
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.drivers.sim import SimDriver
from reconciler.engine import compute_plan
from reconciler.engine.apply import apply_plan
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.journal import Journal
from reconciler.engine.plan import Settings
from reconciler.engine.policy import Policy
from reconciler.log import configure
from reconciler.specs.loader import load_paths


def generate(folder: Path, n: int) -> None:
    """N specs, a third each LXC, OpenVZ and Linux-VServer, each written as its technology
    can take it (sim refuses what the technology it imitates cannot do): an LXC guest on a
    bridge, unprivileged, with a host directory mounted; an OpenVZ container on venet; a
    VServer guest with a token-bucket scheduler."""
    folder.mkdir(parents=True)
    for i in range(n):
        dtype = ("lxc", "openvz", "vserver")[i % 3]
        ip = [f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}/8"]
        spec: dict[str, object] = {
            "kind": "Domain", "name": f"bench{i:05d}", "type": dtype, "memory": "256MiB",
            "hostname": f"bench{i:05d}",
            "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
            "interfaces": [{"type": "routed", "ip": ip}]}
        if dtype == "lxc":
            spec.update(cpu={"shares": 512},
                        interfaces=[{"type": "bridge", "source": "br0", "ip": ip}],
                        idmap=[{"kind": k, "start": 0, "target": 100000, "count": 65536}
                               for k in ("uid", "gid")])
            spec["filesystems"] += [{"type": "mount", "source": f"/srv/data/{i}",  # type: ignore[operator]
                                     "target": "/data"}]
        elif dtype == "openvz":
            spec["cpu"] = {"shares": 512}
        else:
            spec["scheduler"] = {"fill_rate": 10, "interval": 100}
        (folder / f"bench{i:05d}.yaml").write_text(yaml.safe_dump(spec))


def timed(fn: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t0, out


def bench(n: int, tmp: Path) -> dict[str, float]:
    specs = tmp / f"specs{n}"
    generate(specs, n)
    load_floor, _ = timed(lambda: load_paths([str(specs)]))
    load_floor = min(load_floor, timed(lambda: load_paths([str(specs)]))[0])

    state = tmp / f"state{n}"
    hosts = build_hosts(Config(state_dir=str(state), driver="sim", driver_chosen=True))
    settings = Settings(policy=Policy.from_config({"mount_roots": ["/srv/data"]}, str(state)))
    journal = Journal(state)
    t0 = time.perf_counter()
    plan = compute_plan([str(specs)], hosts, settings).plan
    report = apply_plan(plan, hosts, journal, parallel=4)
    apply_time = time.perf_counter() - t0
    journal.close()
    assert report.ok, report.counts()

    floor_driver = SimDriver(tmp / f"floor{n}")
    sim_floor, _ = timed(lambda: [floor_driver.execute(s) for s in plan.steps])

    noop = []
    for _ in range(2):
        seconds, result = timed(lambda: compute_plan([str(specs)], hosts, settings))
        assert not result.plan.steps  # type: ignore[attr-defined]
        noop.append(seconds)
    hosts.close()
    return {"n": n, "steps": len(plan.steps), "load_floor": load_floor, "noop_plan": min(noop),
            "sim_floor": sim_floor, "apply": apply_time}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000]
    configure("json", "warning")
    tmp = Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    try:
        rows = [bench(n, tmp) for n in sizes]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'N':>6} {'steps':>6} | {'load floor':>10} {'no-op plan':>10} {'ratio':>6} "
          f"(target <= 1.5) | {'sim floor':>9} {'apply':>8} {'ratio':>6} (target <= 1.3)")
    for r in rows:
        print(f"{r['n']:>6} {r['steps']:>6} | {r['load_floor']:>9.2f}s {r['noop_plan']:>9.2f}s "
              f"{r['noop_plan'] / r['load_floor']:>6.2f}                 | {r['sim_floor']:>8.2f}s "
              f"{r['apply']:>7.2f}s {r['apply'] / r['sim_floor']:>6.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
