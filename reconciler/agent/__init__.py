"""The unattended agent: watch spec directories (or a git repository) and keep the host equal
to them. `reconciler watch` runs it; `reconciler status` reads what it last did.

    watch.py      watchdog events -> complete files, debounced; symlink swaps; overflow
    specstore.py  per-file cache of loaded specs; incremental SpecSet; affected objects
    planner.py    compute_plan over caches: only the affected objects, whole set for removals
    loop.py       the agent's life: parts, threads, signals, reload, the loop itself
    schedule.py   what is due and when: file changes, resync, retries, rate limit, wake-ups
    onepass.py    one pass: read what changed, plan it, apply it, account for it
    accounting.py each object's state after a pass, the last pass's record, their metrics
    backoff.py    per-object retry backoff; the pass rate limit
    status.py     STATE/agent-status.json, written and read
    request.py    `reconciler reconcile`: find the agent, ask it (SIGUSR1), wait for its answer
    http.py       /healthz (ok, degraded, unhealthy) and /metrics (metrics.py)
    systemd.py    sd_notify: READY, STATUS, WATCHDOG
    gitsource.py  GitOps: fetch, check, one directory per commit, atomic symlink swap; how
                  fetching goes (git's whole message, failures in a row, staleness)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.lazy import exports

if TYPE_CHECKING:
    from .loop import Agent
    from .settings import AgentSettings, GitSettings, WatchSettings, agent_settings

__all__ = ["Agent", "AgentSettings", "GitSettings", "WatchSettings", "agent_settings"]
# loaded on first use: `status` reads the status file without the whole agent
__getattr__ = exports(__name__, {"Agent": "loop", "AgentSettings": "settings",
                                 "GitSettings": "settings", "WatchSettings": "settings",
                                 "agent_settings": "settings"}, globals())
