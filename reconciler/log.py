"""The one logging setup: structlog, JSON lines for machines, readable lines at a terminal.

Event names are stable (`plan.computed`, `step.started`, ...): dashboards and tests key on them.
Configured once, from `main()`; library code only calls `get_logger()`.

Under systemd, when stderr is the journal (JOURNAL_STREAM names it), each line starts with its
syslog priority (`<3>` for an error; journald's SyslogLevelPrefix, on by default), so
`journalctl -p warning` finds the failed steps. A display that owns the terminal (apply's
progress) can take the lines for a while (`divert`) and print them above itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "console"]

# structlog method name -> syslog priority (sd-daemon.h SD_ERR, SD_WARNING, ...)
_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6,
             "debug": 7}


class _Sink:
    """The stream log lines go to; `divert` points it elsewhere for a while."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.diverted: Callable[[str], None] | None = None
        self._partial = ""  # print() writes a line and its newline separately

    def write(self, text: str) -> int:
        if self.diverted is None:
            return self.stream.write(text)
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self.diverted(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.diverted is None:
            self.stream.flush()


_sink = _Sink(sys.stderr)


def to_journal(stream: TextIO) -> bool:
    """Whether `stream` is the journal's stream socket that systemd connected us to."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def _with_priority(render: Any) -> Any:
    def prefixed(logger: Any, method: str, event: dict[str, Any]) -> str:
        return f"<{_PRIORITY.get(method, 6)}>{render(logger, method, event)}"
    return prefixed


def configure(fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None,
              color: bool | None = None) -> None:
    """`color` None: at a terminal unless NO_COLOR says no. structlog is set up on the first
    `get_logger()`: a command that logs nothing never loads it."""
    global _pending
    _pending = (fmt, level, stream, color)
    if _configured:
        _setup()


_pending: tuple[LogFormat, str, TextIO | None, bool | None] = ("auto", "info", None, None)
_configured = False


def _setup() -> None:
    global _configured
    import structlog

    from reconciler.text import wants_color

    fmt, level, stream, color = _pending
    _configured = True

    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render: Any
    if use_json:
        processors.append(structlog.processors.dict_tracebacks)
        render = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        colors = wants_color(stream) if color is None else color
        render = structlog.dev.ConsoleRenderer(colors=colors)
    processors.append(_with_priority(render) if to_journal(stream) else render)
    _sink.stream = stream
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(_sink),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


@contextlib.contextmanager
def divert(write: Callable[[str], None]) -> Iterator[None]:
    """Log lines go to `write` (each a whole line, with its newline) inside the block."""
    _sink.diverted = write
    try:
        yield
    finally:
        _sink.diverted = None


def get_logger(**bind: Any) -> Any:
    if not _configured:
        _setup()
    return _structlog_get_logger().bind(**bind)


def _structlog_get_logger() -> Any:
    import structlog  # loaded by _setup already: a lookup in sys.modules

    return structlog.get_logger()
