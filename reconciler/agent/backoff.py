"""Per-object backoff for failing objects, and a global rate limit on passes.

An object whose step failed waits `initial` seconds before it is tried again, doubling per
consecutive failure up to `cap`, with +-20 % jitter so a fleet does not retry in step. While
it waits, its steps are skipped (the engine's `skip`); every other object goes on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.model.fields import Ref


@dataclass
class Failing:
    failures: int
    retry_at: float
    error: str
    retried: bool = False  # a retry pass for it was started since the last failure


class Backoff:
    def __init__(self, initial: float = 1.0, cap: float = 300.0,
                 rand: Callable[[], float] = random.random) -> None:
        self.initial, self.cap, self._rand = initial, cap, rand
        self.objects: dict[Ref, Failing] = {}

    def failed(self, ref: Ref, now: float, error: str) -> float:
        """Record a failure; returns the delay until the next try."""
        entry = self.objects.get(ref)
        failures = entry.failures + 1 if entry else 1
        delay = float(min(self.initial * 2.0 ** (failures - 1), self.cap))
        delay *= 0.8 + 0.4 * self._rand()
        self.objects[ref] = Failing(failures, now + delay, error)
        return delay

    def succeeded(self, ref: Ref) -> None:
        self.objects.pop(ref, None)

    def forget(self, ref: Ref) -> None:
        self.objects.pop(ref, None)

    def retry_now(self, ref: Ref, now: float) -> None:
        """Its spec changed: the new spec deserves a try at once (the count is kept)."""
        entry = self.objects.get(ref)
        if entry is not None:
            entry.retry_at = now

    def blocked(self, now: float) -> set[Ref]:
        return {r for r, e in self.objects.items() if e.retry_at > now}

    def due(self, now: float) -> set[Ref]:
        """Objects whose wait is over and that have not been retried yet."""
        out = {r for r, e in self.objects.items() if e.retry_at <= now and not e.retried}
        for ref in out:
            self.objects[ref].retried = True
        return out

    def next_at(self) -> float | None:
        times = [e.retry_at for e in self.objects.values() if not e.retried]
        return min(times) if times else None


class RateLimit:
    """Token bucket: `rate` passes per second on average, `burst` at once."""

    def __init__(self, rate: float = 10.0, burst: int = 20) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at: float | None = None

    def wait(self, now: float) -> float:
        """Seconds to wait before the next pass may start (0: go, a token is taken)."""
        if self.at is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
