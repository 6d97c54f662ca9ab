"""Apply's live display at a terminal: the steps in flight with their elapsed time and the
done/failed counts, kept at the bottom of the screen and redrawn in place; finished steps and
log lines scroll above it. Only the display writes to the terminal while it runs (log lines
reach it through `log.divert`), so nothing runs into anything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TextIO

from reconciler.drivers.base import Step
from reconciler.engine.apply import StepOutcome
from reconciler.text import printable

_SHOWN = 8  # steps in flight listed; the rest are counted
_MARK = {"succeeded": ("ok", "32"), "failed": ("FAILED", "31"), "skipped": ("skipped", "33")}


class Display:
    def __init__(self, stream: TextIO, steps: Sequence[Step], color: bool,
                 tick: float = 0.5) -> None:
        self.stream, self.color, self.tick = stream, color, tick
        self.total = len(steps)
        self.labels = {s.id: printable(f"{s.kind} {s.ref}") for s in steps}
        self.lock = threading.Lock()
        self.running: dict[str, tuple[str, float]] = {}  # step id -> (label, started)
        self.counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        self.note = ""
        self._height = 0  # lines the region takes now
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)

    # --------------------------------------------------------------- engine hooks
    def started(self, step: Step) -> None:
        with self.lock:
            self.running[step.id] = (self.labels.get(step.id, step.id), time.monotonic())
            self._redraw()

    def finished(self, outcome: StepOutcome, done: int, total: int) -> None:
        with self.lock:
            self.running.pop(outcome.step, None)
            label = self.labels.get(outcome.step, outcome.step)
            self.counts[outcome.result] += 1
            word, code = _MARK[outcome.result]
            line = f"{self._paint(word, code)} {label} ({outcome.duration:.1f}s)"
            if outcome.error and outcome.result != "succeeded":
                line += f": {printable(outcome.error)}"
            self._above(line + "\n")

    def log_line(self, text: str) -> None:
        with self.lock:
            self._above(text)

    def say(self, note: str) -> None:
        """A line under the counts until the end (e.g. that Ctrl-C was seen)."""
        with self.lock:
            self.note = note
            self._redraw()

    # --------------------------------------------------------------- lifetime
    def __enter__(self) -> Display:
        self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._ticker.join()
        with self.lock:
            self._clear()
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick):
            with self.lock:
                self._redraw()

    # --------------------------------------------------------------- drawing
    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _region(self) -> list[str]:
        done = sum(self.counts.values())
        head = (f"[{done}/{self.total}] {self.counts['succeeded']} done, "
                f"{self._paint(str(self.counts['failed']), '31') if self.counts['failed'] else 0}"
                f" failed, {len(self.running)} running")
        now = time.monotonic()
        rows = [f"  {now - began:5.1f}s  {label}"
                for label, began in sorted(self.running.values(), key=lambda r: r[1])[:_SHOWN]]
        if len(self.running) > _SHOWN:
            rows.append(f"  ... and {len(self.running) - _SHOWN} more")
        return [head, *rows, *([self.note] if self.note else [])]

    def _clear(self) -> None:
        if self._height:
            # to the start of the region's first line, then erase to the end of the screen
            self.stream.write(f"\033[{self._height}F\033[J")
            self._height = 0

    def _redraw(self) -> None:
        self._clear()
        region = self._region()
        self.stream.write("".join(f"{line}\033[K\n" for line in region))
        self._height = len(region)
        self.stream.flush()

    def _above(self, text: str) -> None:
        self._clear()
        self.stream.write(text if text.endswith("\n") else text + "\n")
        self._redraw()
