"""The agent's own settings: the config file's `watch:`, `http:` and `git:` sections, overlaid
by command-line flags. Frozen, passed down; SIGHUP builds a new one.

    watch:
      settle: 1.0            # a file written in place must be unchanged this long (seconds)
      quiet: 0.02            # a burst of events ends after this much quiet ...
      cap: 0.2               # ... or this long after it began, whichever comes first
      open_hold: 30          # a file opened and not closed waits this long, then the agent
                             # looks for a process writing it: one that is, is waited for
      resync: 300            # full resync (re-observe the host, re-stat every file), seconds
      resync_jitter: 0.1     # +- this share of `resync`, so a fleet does not resync at once
      backoff_initial: 1.0   # a failing object is retried after 1 s, 2 s, 4 s ...
      backoff_max: 300       # ... capped here
      rate: 10               # passes per second at most (token bucket) ...
      burst: 20              # ... with this many in a burst
      stall_timeout: 600     # the systemd watchdog stops being fed when the loop is stuck
    http:
      listen: 127.0.0.1:9137 # or "off"
    git:
      url: https://example.org/specs.git
      branch: main
      interval: 60
      path: hosts/common     # the spec directory inside the repository
      stale_after: 900       # /healthz is degraded (503) once no fetch worked for this long
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from reconciler.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:9137"
DEFAULT_STALE_AFTER = 900.0  # 15 fetches at the default interval: a blip never pages anyone


@dataclass(frozen=True)
class WatchSettings:
    settle: float = 1.0
    quiet: float = 0.02
    cap: float = 0.2
    open_hold: float = 30.0
    resync: float = 300.0
    resync_jitter: float = 0.1
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    rate: float = 10.0
    burst: int = 20
    stall_timeout: float = 600.0
    idle_refresh: float = 1.0


@dataclass(frozen=True)
class GitSettings:
    url: str
    branch: str | None = None
    interval: float = 60.0
    path: str = ""
    stale_after: float = DEFAULT_STALE_AFTER


@dataclass(frozen=True)
class AgentSettings:
    watch: WatchSettings = WatchSettings()
    listen: str | None = DEFAULT_LISTEN
    git: GitSettings | None = None


def _number(section: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{section}.{key} must be a number >= 0, got {value!r}")
    return float(value)


def agent_settings(extra: dict[str, Any], *, settle: float | None = None,
                   resync: float | None = None, listen: str | None = None,
                   git_url: str | None = None, git_branch: str | None = None,
                   git_interval: float | None = None, git_path: str | None = None
                   ) -> AgentSettings:
    """Config sections (`Config.extra`) with flags on top; every value checked here."""
    raw_watch = extra.get("watch") or {}
    if not isinstance(raw_watch, dict):
        raise ConfigError("watch: must be a mapping")
    known = {f.name: f for f in fields(WatchSettings)}
    values: dict[str, Any] = {}
    for key, value in raw_watch.items():
        if key not in known:
            raise ConfigError(f"watch.{key} is not a setting; valid: {', '.join(sorted(known))}")
        number = _number("watch", key, value)
        values[key] = int(number) if key == "burst" else number
    watch = replace(WatchSettings(), **values)
    if settle is not None:
        watch = replace(watch, settle=_number("--settle", "value", settle))
    if resync is not None:
        watch = replace(watch, resync=_number("--resync", "value", resync))
    if watch.rate <= 0 or watch.burst < 1:
        raise ConfigError("watch.rate must be > 0 and watch.burst >= 1")

    raw_http = extra.get("http")
    address: str | None = DEFAULT_LISTEN
    if raw_http is False or raw_http == "off":
        address = None
    elif isinstance(raw_http, dict):
        address = raw_http.get("listen", DEFAULT_LISTEN)
        if address in (False, "off", None):
            address = None
    elif raw_http not in (None, True):
        raise ConfigError("http: must be a mapping with `listen: HOST:PORT`, or off")
    if listen is not None:
        address = None if listen in ("off", "none", "") else listen
    if address is not None:
        parse_listen(address)

    raw_git = extra.get("git") or {}
    if not isinstance(raw_git, dict):
        raise ConfigError("git: must be a mapping with url, branch, interval, path")
    url = git_url or raw_git.get("url")
    git = None
    if url:
        raw_interval = git_interval if git_interval is not None else raw_git.get("interval", 60)
        interval = max(1.0, _number("git", "interval", raw_interval))
        git = GitSettings(url=str(url), branch=git_branch or raw_git.get("branch"),
                          interval=interval,
                          path=str(git_path if git_path is not None else raw_git.get("path", "")),
                          stale_after=_stale_after(raw_git.get("stale_after"), interval))
    return AgentSettings(watch=watch, listen=address, git=git)


def _stale_after(value: Any, interval: float) -> float:
    """How long without a successful fetch before the agent calls itself degraded. At least
    two intervals, so one poll's jitter and run time never trip it; the default grows with a
    long interval for the same reason."""
    if value is None:
        return max(DEFAULT_STALE_AFTER, 3 * interval)
    limit = _number("git", "stale_after", value)
    if limit < 2 * interval:
        raise ConfigError(f"git.stale_after ({limit:g} s) must be at least twice git.interval "
                          f"({interval:g} s): a fetch happens only every interval")
    return limit


def parse_listen(address: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:9137`) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen address {address!r} must be HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "127.0.0.1", int(port)
