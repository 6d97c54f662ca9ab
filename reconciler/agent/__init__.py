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
    http.py       /healthz and /metrics (metrics.py)
    systemd.py    sd_notify: READY, STATUS, WATCHDOG
    gitsource.py  GitOps: fetch, check, one directory per commit, atomic symlink swap
"""

from __future__ import annotations

from .loop import Agent
from .settings import AgentSettings, GitSettings, WatchSettings, agent_settings

__all__ = ["Agent", "AgentSettings", "GitSettings", "WatchSettings", "agent_settings"]
