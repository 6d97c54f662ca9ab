"""Benchmark the agent (`reconciler watch`) on `sim` with many specs loaded.

    python bench/watch.py [--objects 10000] [--changes 200] [--workdir DIR] [--idle 30]

Prints, in one run:
  - change latency: a spec file renamed into place -> its step done (the `step.succeeded`
    record in the journal), p50/p99/max over --changes edits of random objects;
  - the inotify floor measured alongside: the same renames -> a watchdog event in this process;
  - idle CPU of the agent over --idle seconds (from /proc/PID/stat);
  - peak RSS of the agent (VmHWM);
  - startup (load + first pass) and one full pass (SIGHUP: reload, rescan, plan everything).

Targets: p99 < 100 ms; idle CPU < 0.5 % of a core; RSS < 150 MB. A --workdir kept from an
earlier run skips the first apply of every object (minutes at 10,000).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from watchdog.events import FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

SPEC = ("kind: Domain\nname: {name}\ntype: lxc\nmemory: {memory}MiB\nhostname: {name}\n"
        "filesystems: [{{type: template, name: busybox, target: /}}]\n"
        "idmap: [{{kind: uid, start: 0, target: 100000, count: 65536}},\n"
        "        {{kind: gid, start: 0, target: 100000, count: 65536}}]\n")
PER_DIR = 1000


def spec_path(specs: Path, i: int) -> Path:
    return specs / f"group{i // PER_DIR:03d}" / f"d{i:05d}.yaml"


def write_specs(specs: Path, n: int) -> None:
    for i in range(n):
        path = spec_path(specs, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(SPEC.format(name=f"d{i:05d}", memory=128))


class Floor(FileSystemEventHandler):
    """rename -> watchdog event, in this process: the least any watcher can do."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()

    def dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent) and event.dest_path:
            now = time.perf_counter()
            with self.cond:
                self.seen[os.fsdecode(event.dest_path)] = now
                self.cond.notify_all()

    def wait(self, path: str, timeout: float = 5.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while path not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen.pop(path)


class JournalTail:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.buffer = b""

    def records(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_step(self, step: str, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.records():
                if rec.get("event") == "step.succeeded" and rec.get("step") == step:
                    return datetime.fromisoformat(str(rec["ts"])).timestamp()
            time.sleep(0.002)
        return None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def wait_log(err: Path, event: str, after: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for line in err.read_text().splitlines():
            if line.startswith("{") and f'"event": "{event}"' in line:
                found.append(json.loads(line))
        if len(found) > after:
            return found[after]
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {event}; see {err}")


class RssSampler(threading.Thread):
    """The agent's RSS every 20 ms, by phase of the benchmark: where the peak comes from."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.phase, self.peaks = pid, "startup", {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                rss = proc_status(self.pid, "VmRSS")
            except OSError:
                return
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)


def wait_quiet(pid: int, timeout: float) -> float:
    """Wait until the agent used < 1 % CPU over a second (its idle tasks are done)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        c0 = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - c0 < 0.01:
            break
    return time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--workdir", help="keep specs and sim state here (reused when present)")
    args = ap.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rc-bench-"))
    specs, state = work / "specs", work / "state"
    print(f"workdir {work}; writing {args.objects} specs ...", flush=True)
    write_specs(specs, args.objects)
    (state).mkdir(parents=True, exist_ok=True)
    err = work / "agent.log"
    floor = Floor()
    observer = InotifyObserver()
    observer.schedule(floor, str(specs), recursive=True, event_filter=[FileMovedEvent])
    observer.start()

    started = time.monotonic()
    with open(err, "w") as errfh:
        agent = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "--log-format", "json", "watch", str(specs),
             "--state-dir", str(state), "--driver", "sim", "--http", "127.0.0.1:0",
             "--resync", "3600", "--parallel", "8"],
            stdout=subprocess.DEVNULL, stderr=errfh, stdin=subprocess.DEVNULL)
    sampler = RssSampler(agent.pid)
    sampler.start()
    try:
        ready = wait_log(err, "agent.ready", 0, 600)
        loaded = time.monotonic() - started
        first = wait_log(err, "pass.finished", 0, 1800)
        startup = time.monotonic() - started
        print(f"startup: {ready['files']} files loaded in {loaded:.1f} s; first pass "
              f"({first['steps']} steps) done at {startup:.1f} s", flush=True)
        quiet_since = wait_quiet(agent.pid, 60.0)
        print(f"agent quiet {quiet_since:.1f} s after the first pass (host cache refreshed)",
              flush=True)

        sampler.phase = "changes"
        tail = JournalTail(state / "journal.jsonl")
        rng = random.Random()
        targets = rng.sample(range(args.objects), min(args.changes, args.objects))
        salt = rng.randrange(1000)  # a kept workdir must still see real changes
        latencies: list[float] = []
        records: list[dict[str, object]] = []
        floors: list[float] = []
        for n, i in enumerate(targets):
            path = spec_path(specs, i)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(SPEC.format(name=f"d{i:05d}", memory=256 + salt + n))
            wall = time.time()
            mono = time.perf_counter()
            os.replace(tmp, path)
            seen = floor.wait(str(path))
            if seen is not None:
                floors.append((seen - mono) * 1000)
            done = tail.wait_step(f"domain/d{i:05d}:update")
            if done is None:
                print(f"change {n}: no step.succeeded for d{i:05d} within 30 s", flush=True)
                continue
            latencies.append((done - wall) * 1000)
            records.append({"file": str(path), "renamed": wall, "done": done})
            time.sleep(rng.uniform(0.02, 0.15))
        print(f"change latency, rename -> step done (n={len(latencies)}): "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
              f"max {max(latencies):.1f} ms   [target p99 < 100 ms]")
        (work / "latencies.json").write_text(json.dumps(records))
        slowest = sorted(latencies, reverse=True)[:5]
        print("  slowest: " + ", ".join(f"{v:.1f}" for v in slowest) + " ms")
        print(f"inotify floor, rename -> watchdog event, same run (n={len(floors)}): "
              f"p50 {statistics.median(floors):.2f} ms, p99 {pct(floors, 0.99):.2f} ms")

        sampler.phase = "idle"
        time.sleep(3.0)  # let the idle tasks (cross-check, host cache refresh) run first
        c0, t0 = cpu_seconds(agent.pid), time.monotonic()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(agent.pid), time.monotonic()
        idle = (c1 - c0) / (t1 - t0) * 100
        print(f"idle CPU over {t1 - t0:.0f} s: {idle:.3f} % of a core   [target < 0.5 %]")

        passes = len([ln for ln in err.read_text().splitlines() if '"pass.finished"' in ln])
        sampler.phase = "full pass"
        agent.send_signal(signal.SIGHUP)
        full = wait_log(err, "pass.finished", passes, 600)
        print(f"full pass after SIGHUP (reload, rescan, observe and plan {args.objects}): "
              f"{full['duration']:.2f} s")
        hwm, rss = proc_status(agent.pid, "VmHWM"), proc_status(agent.pid, "VmRSS")
        sampler.stop.set()
        phases = ", ".join(f"{k} {v / 1024:.0f}" for k, v in sampler.peaks.items())
        print(f"peak RSS: {hwm / 1024:.1f} MB (now {rss / 1024:.1f} MB; peak by phase, MB: "
              f"{phases})   [target < 150 MB]")
    finally:
        observer.stop()
        observer.join(5)
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                rc = agent.wait(60)
                print(f"agent stopped on SIGTERM with exit code {rc}")
            except subprocess.TimeoutExpired:
                agent.kill()
                print("agent did not stop within 60 s; killed")
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
