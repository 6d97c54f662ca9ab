"""Spec loading speed next to its floor, measured in the same run on the same files.

    python bench/load.py [N ...]        (default: 1000 10000)

For each N and each form (YAML, XML) it writes N realistic domain specs (LXC, OpenVZ and
VServer guests with a few interfaces and filesystems, a profile, cross-references) to a temp
dir, then times:

- load:  `reconciler.specs.loader.load_paths` on the directory (read, parse, validate into
         the model, checks across files)
- floor: reading every file plus the bare parse, `yaml.load(data, Loader=yaml.CSafeLoader)`
         or `lxml.etree.fromstring(data)`: what any loader of these files has to pay

and prints files/second for both and their ratio (target: load <= 2x floor). Each figure is
the best of five repetitions, floor and load alternating. `--profile` prints the top of a
cProfile of one load. `--parts` prints what each stage of a load costs per file, as a multiple
of the floor: reading, parsing into the model's input (the bare parse is part of it), model
validation (pydantic), and the checks across files.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from reconciler.model import Domain, Network
from reconciler.specs.convert import to_xml_text
from reconciler.specs.files import Loaded, Parsed, parse_bytes, read_spec, validate
from reconciler.specs.loader import SpecSet, check_set, load_paths, spec_files, spec_names

REPEAT = 5


def domain_spec(i: int) -> dict[str, Any]:
    """A realistic guest: what people write for LXC, OpenVZ and VServer containers."""
    dtype = ("lxc", "openvz", "vserver")[i % 3]
    a, b, c = i // 65536, (i // 256) % 256, i % 256
    mac = f"52:54:00:{a:02x}:{b:02x}:{c:02x}"
    spec: dict[str, Any] = {
        "kind": "Domain", "name": f"guest{i:05d}", "type": dtype,
        "uuid": f"{i:08x}-1e76-4d83-9515-0a2d98211ea0",
        "state": "running", "autostart": True, "hostname": f"guest{i:05d}.example.org",
        "memory": "512MiB", "cpu": {"count": 2, "shares": 512},
        "filesystems": [
            {"type": "template", "name": "debian-12", "target": "/"},
            {"type": "mount", "source": f"/srv/guests/{i}/data", "target": "/data"},
            {"type": "mount", "source": "/srv/shared/etc", "target": "/etc/shared",
             "readonly": True},
        ],
        "interfaces": [
            {"type": "bridge", "source": "br0", "mac": mac, "guest_dev": "eth0",
             "ip": [f"10.{a}.{b}.{c}/8"], "gateway": "10.255.255.254"},
            {"type": "network", "source": "backnet"},
            {"type": "routed", "ip": [f"fd00::{i:x}/64"]},
        ],
        "dns": {"nameservers": ["10.255.255.253"], "search": ["example.org"]},
    }
    if dtype == "lxc":
        spec["init"] = {"cmd": "/sbin/init", "args": ["--log-level", "info"]}
        spec["console"] = {"type": "pty"}
    elif dtype == "openvz":
        spec["id"] = 1000 + i
        spec["profile"] = "vps.basic"
        spec["quota"] = {"space": ["9GiB", "10GiB"], "inodes": [200000, 220000]}
        spec["filesystems"][0]["name"] = "debian-12-x86_64-minimal"
    else:
        spec["id"] = 40000 + i
        spec["scheduler"] = {"fill_rate": 100, "interval": 1000,
                             "cpus": {0: {"fill_rate": 50}, 1: {"fill_rate": 250}}}
        spec["filesystems"][0].update(method="debootstrap", release="bookworm",
                                      source=f"/vservers/guest{i:05d}")
    if i % 10:
        spec["depends_on"] = [f"guest{i - i % 10:05d}"]
    return spec


NETWORK = {"kind": "Network", "name": "backnet", "forward": {"mode": "nat"},
           "bridge": {"name": "virbr9", "stp": True, "delay": 0},
           "ips": [{"address": "192.168.250.1/24",
                    "dhcp_ranges": [{"start": "192.168.250.100", "end": "192.168.250.254"}]}]}


def generate(folder: Path, n: int, form: str) -> None:
    folder.mkdir(parents=True)
    specs = [NETWORK, *(domain_spec(i) for i in range(n - 1))]
    for spec in specs:
        path = folder / f"{spec['name']}.{form}"
        if form == "yaml":
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
        else:
            model = (Network if spec["kind"] == "Network" else Domain).model_validate(spec)
            path.write_text(to_xml_text(model))


def floor(folder: Path, form: str) -> Callable[[], int]:
    files = spec_files(folder)
    if form == "yaml":
        loader = yaml.CSafeLoader

        def parse_all() -> int:
            for path in files:
                yaml.load(path.read_bytes(), Loader=loader)
            return len(files)
    else:
        def parse_all() -> int:
            for path in files:
                etree.fromstring(path.read_bytes())
            return len(files)
    return parse_all


def interleaved(floor_fn: Callable[[], int], load_fn: Callable[[], int]
                ) -> tuple[float, float, int, int]:
    """Best-of-REPEAT seconds for the floor and the load, run alternately so that a change in
    the machine's load hits both alike."""
    floor_times, load_times = [], []
    count = loaded = 0
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        count = floor_fn()
        floor_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loaded = load_fn()
        load_times.append(time.perf_counter() - t0)
    return min(floor_times), min(load_times), count, loaded


def best_time(fn: Callable[[], object]) -> float:
    """Best of REPEAT runs, with the cyclic collector paused as `load_paths` pauses it."""
    times = []
    for _ in range(REPEAT):
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    return min(times)


def parts(folder: Path, form: str) -> list[tuple[str, float]]:
    """Seconds per stage of a load of `folder`, each stage timed on its own over all files."""
    names = spec_names(folder)
    datas = [read_spec(name, name) for name in names]
    raw = [data for data in datas if isinstance(data, bytes)]
    assert len(raw) == len(names)
    parsed = [parse_bytes(data, name) for name, data in zip(names, raw, strict=True)]
    ready = [step for step in parsed if isinstance(step, Parsed)]
    assert len(ready) == len(names)
    loaded: list[Loaded] = [validate(step) for step in ready]
    bare = ((lambda: [yaml.load(data, Loader=yaml.CSafeLoader) for data in raw]) if form == "yaml"
            else (lambda: [etree.fromstring(data) for data in raw]))

    def checks() -> None:
        check_set(SpecSet(roots=(str(folder),), files={f.path: f for f in loaded}))

    return [
        ("read (read_spec)", best_time(lambda: [read_spec(name, name) for name in names])),
        ("parse to model input (parse_bytes)",
         best_time(lambda: [parse_bytes(data, name)
                            for name, data in zip(names, raw, strict=True)])),
        ("  of which the bare parse", best_time(bare)),
        ("model validation (validate)", best_time(lambda: [validate(step) for step in ready])),
        ("checks across files (check_set)", best_time(checks)),
    ]


def load(folder: Path) -> int:
    result = load_paths([folder])
    if result.errors:
        raise SystemExit(f"generated specs do not load: {result.errors[0]}")
    return len(result.files)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--profile", action="store_true", help="cProfile one load per form")
    parser.add_argument("--parts", action="store_true", help="time each stage of a load")
    args = parser.parse_args(argv)
    rows = []
    stages: list[tuple[int, str, float, float, list[tuple[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for n in args.sizes:
            for form in ("yaml", "xml"):
                folder = Path(tmp) / f"{form}{n}"
                generate(folder, n, form)
                floor_s, load_s, count, loaded = interleaved(floor(folder, form),
                                                             lambda folder=folder: load(folder))
                assert loaded == count == n
                rows.append((n, form, count / load_s, count / floor_s, load_s / floor_s))
                if args.parts:
                    stages.append((n, form, floor_s, load_s, parts(folder, form)))
                if args.profile:
                    profiler = cProfile.Profile()
                    profiler.runcall(load, folder)
                    print(f"--- profile: {n} {form} files")
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    print(f"{'files':>6} {'form':>4} {'load files/s':>13} {'floor files/s':>14} {'ratio':>6}")
    for n, form, load_rate, floor_rate, ratio in rows:
        print(f"{n:>6} {form:>4} {load_rate:>13,.0f} {floor_rate:>14,.0f} {ratio:>6.2f}")
    print("(floor: read + yaml.load(CSafeLoader) / lxml.etree.fromstring; best of "
          f"{REPEAT}; target ratio <= 2)")
    for n, form, floor_s, load_s, timed in stages:
        print(f"\n{n} {form} files, per file: {'us':>8} {'x floor':>8}")
        for label, seconds in [("floor (read + bare parse)", floor_s), *timed,
                               ("whole load (load_paths)", load_s)]:
            print(f"  {label:<36} {seconds / n * 1e6:>8.1f} {seconds / floor_s:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
