"""What the benches share: a median wall time, and a pass planned or applied from the spec
directory the way `reconciler plan` and `apply --yes` do (fresh drivers, every file read).
The pass helpers import the project when called: each bench puts it on sys.path first."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.engine.config import Config


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time of `repeat` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def applied(config: Config, specs: Path, parallel: int) -> float:
    """Plan and apply `specs` once (every step must succeed); its wall time, in seconds."""
    from reconciler.engine.config import build_hosts
    from reconciler.engine.journal import Journal
    from reconciler.engine.passes import run_pass

    t0 = time.perf_counter()
    hosts = build_hosts(config)
    journal = Journal(config.state_dir)
    try:
        report = run_pass([str(specs)], hosts, config.settings, journal,
                          parallel=parallel).report
    finally:
        journal.close()
        hosts.close()
    took = time.perf_counter() - t0
    if report is None or not report.ok:
        raise SystemExit(f"apply failed: {report.counts() if report else 'nothing ran'}")
    return took


def noop_plan(config: Config, specs: Path) -> None:
    """Plan `specs` once; the plan must be empty (the bench applied them before)."""
    from reconciler.engine.config import build_hosts
    from reconciler.engine.passes import compute_plan

    hosts = build_hosts(config)
    try:
        plan = compute_plan([str(specs)], hosts, config.settings).plan
    finally:
        hosts.close()
    if plan.steps:
        raise SystemExit(f"the no-op plan is not empty: {len(plan.steps)} steps")
