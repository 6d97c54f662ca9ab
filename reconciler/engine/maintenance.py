"""When a guest may be restarted: the restart policy and maintenance windows (agent config).

    restart: auto               # default for objects without `restart:` (auto|defer|refuse)
    maintenance:
      timezone: Europe/Berlin   # windows' default time zone (IANA name; default UTC)
      windows:                  # name -> spans; a span crossing midnight ends the next day
        nightly: [{days: [mon, tue, wed, thu, fri], start: "02:00", end: "04:00"}]
        weekend: [{days: [sat, sun], start: "00:00", end: "24:00", timezone: UTC}]
      default: nightly          # the window of objects without `window:` (none: any time)
      max_restarts: 2           # guests of this host restarting at once (0: no limit)

An object's `window:` names one of the windows, or `always` (restart any time). Outside its
window a restart-class or replace change waits (`auto`), or is written without a restart and
restarts in the window (`defer`); `apply --now` is the manual override.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.errors import ConfigError

RestartPolicy = Literal["auto", "defer", "refuse"]
RESTART_POLICIES: tuple[RestartPolicy, ...] = ("auto", "defer", "refuse")
ALWAYS = "always"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 8  # a weekly window opens within a week and a day


@dataclass(frozen=True)
class Span:
    """One weekly span: on each of `days` from `start` for `length` (local time in `zone`)."""

    days: frozenset[int]  # 0 = Monday
    start: time
    length: timedelta
    zone: ZoneInfo

    def open_at(self, now: datetime) -> datetime | None:
        """The start of the occurrence that contains `now`, if one does."""
        local = now.astimezone(self.zone)
        for back in (0, 1):  # today's occurrence, or yesterday's running past midnight
            day = local.date() - timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            begin = datetime.combine(day, self.start, self.zone)
            if begin <= local < begin + self.length:
                return begin
        return None

    def next_open(self, now: datetime) -> datetime:
        local = now.astimezone(self.zone)
        for ahead in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=ahead)
            begin = datetime.combine(day, self.start, self.zone)
            if day.weekday() in self.days and begin > local:
                return begin
        raise AssertionError("a span with days opens within a week")  # pragma: no cover


@dataclass(frozen=True)
class Window:
    name: str
    spans: tuple[Span, ...]

    def is_open(self, now: datetime) -> bool:
        return any(span.open_at(now) is not None for span in self.spans)

    def next_open(self, now: datetime) -> datetime:
        return min(span.next_open(now) for span in self.spans)


@dataclass(frozen=True)
class Maintenance:
    """The agent config's restart policy and windows; the default is today's behaviour:
    restart at once, any time, without a limit."""

    restart: RestartPolicy = "auto"
    windows: dict[str, Window] = field(default_factory=dict)
    default: str = ALWAYS
    max_restarts: int = 0

    def window_of(self, spec: dict[str, Any]) -> Window | None:
        """The window a spec's restarts wait for (None: any time)."""
        name = spec.get("window") or self.default
        if name == ALWAYS:
            return None
        return self.windows.get(name)

    def policy_of(self, spec: dict[str, Any]) -> RestartPolicy:
        value = spec.get("restart") or self.restart
        return value if value in RESTART_POLICIES else "auto"

    def unknown_window(self, spec: dict[str, Any]) -> str | None:
        """Why a spec's `window:` cannot be honoured here (None: it can)."""
        name = spec.get("window")
        if not name or name == ALWAYS or name in self.windows:
            return None
        known = ", ".join([ALWAYS, *sorted(self.windows)])
        return f"window {name!r} is not a maintenance window of this host ({known})"

    @classmethod
    def from_config(cls, restart: Any, block: Any) -> Maintenance:
        policy = restart if restart is not None else "auto"
        if policy not in RESTART_POLICIES:
            raise ConfigError(f"restart: {policy!r} is not one of {', '.join(RESTART_POLICIES)}")
        if block is None:
            return cls(restart=policy)
        if not isinstance(block, dict):
            raise ConfigError("maintenance must be a mapping (timezone, windows, default, "
                              "max_restarts)")
        unknown = set(block) - {"timezone", "windows", "default", "max_restarts"}
        if unknown:
            raise ConfigError(f"maintenance: unknown keys {sorted(unknown)}; valid: "
                              "default, max_restarts, timezone, windows")
        zone = _zone(block.get("timezone", "UTC"), "maintenance.timezone")
        windows = {str(name): Window(str(name), _spans(spans, zone, f"maintenance.windows.{name}"))
                   for name, spans in (block.get("windows") or {}).items()}
        if ALWAYS in windows:
            raise ConfigError(f"maintenance.windows: {ALWAYS!r} is reserved (it means any time)")
        default = str(block.get("default") or ALWAYS)
        if default != ALWAYS and default not in windows:
            raise ConfigError(f"maintenance.default: no window named {default!r}")
        limit = block.get("max_restarts", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ConfigError("maintenance.max_restarts must be a whole number >= 0")
        return cls(restart=policy, windows=windows, default=default, max_restarts=limit)


def _zone(name: Any, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {name!r} (an IANA name such as "
                          "Europe/Berlin or UTC)") from None


def _clock(value: Any, where: str, end: bool = False) -> tuple[int, int]:
    text = str(value)
    hours, sep, minutes = text.partition(":")
    if sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        h, m = int(hours), int(minutes)
        if (0 <= h < 24 and 0 <= m < 60) or (end and (h, m) == (24, 0)):
            return h, m
    raise ConfigError(f"{where}: {text!r} is not a time of day HH:MM"
                      + (" (24:00 for the end of the day)" if end else ""))


def _spans(value: Any, zone: ZoneInfo, where: str) -> tuple[Span, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{where}: a window needs at least one span")
    out = []
    for n, item in enumerate(items):
        here = f"{where}[{n}]"
        if not isinstance(item, dict) or not {"days", "start", "end"} <= set(item):
            raise ConfigError(f"{here}: a span is {{days: [mon, ...], start: HH:MM, end: "
                              "HH:MM, timezone: optional}")
        days = item["days"] if isinstance(item["days"], list) else [item["days"]]
        bad = [d for d in days if str(d).lower() not in DAYS]
        if bad or not days:
            raise ConfigError(f"{here}.days: {bad or days!r}; valid: {', '.join(DAYS)}")
        start = _clock(item["start"], f"{here}.start")
        end = _clock(item["end"], f"{here}.end", end=True)
        length = timedelta(hours=end[0] - start[0], minutes=end[1] - start[1])
        if length <= timedelta(0):
            length += timedelta(days=1)  # 22:00-02:00 ends the next day
        out.append(Span(frozenset(DAYS.index(str(d).lower()) for d in days),
                        time(*start), length,
                        _zone(item["timezone"], f"{here}.timezone") if "timezone" in item
                        else zone))
    return tuple(out)
