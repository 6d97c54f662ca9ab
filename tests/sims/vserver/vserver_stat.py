"""`vserver-stat`: one fixed-width row per running context, by ascending XID (§2.5).

The simulated kernel has the VSTAT feature, so rows come from the contexts in the state only
(no "root server" row for XID 0). With nothing running, only the header is printed.
Columns (0-based): XID from column 0; PROC right-aligned ending at 10; VSZ and RSS 7-character
fields ending at 17 and 24; user, system and up time right-aligned in 10-character fields ending
at 34, 44 and 54; NAME from 55, cut to 20 characters (empty when the config dir is gone).
Memory comes from the context's page counts times the page size.
"""

from __future__ import annotations

import sys

from . import cfgstyle, options, state
from .paths import Layout
from .toolrun import ToolExit, err, out, run_tool

HEADER = "CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME"
MEM_SUFFIXES = (" ", "K", "M", "G", "T", "+")


def shorten_mem(value: int) -> str:
    """A byte count in at most 7 characters: 1536 -> '1.5K', 1024 -> '1K', 512 -> '512 '."""
    suffix, tenth = "+", 0
    for unit in MEM_SUFFIXES:
        if value < 1000:
            suffix = unit
            break
        tenth = 10 * (value & 1023) // 1024  # the truncated first decimal of this step
        value >>= 10
    value = min(value, 9999)
    if value >= 1000:
        tenth = 0
    text = str(value) + (f".{tenth}" if tenth else "")
    return text + suffix


def _two(value: int) -> str:
    """Two digits, zero-padded; a value of 100 or more keeps its first two digits."""
    return str(value).zfill(2)[:2]


def shorten_time(msec: int) -> str:
    """`5m03s21`, `2h05m01`, `3d04h12`, `1y12d05` or `INVALID`."""
    ms, secs = msec % 1000, msec // 1000
    ss, mins = secs % 60, secs // 60
    mm, hours = mins % 60, mins // 60
    hh, days = hours % 24, hours // 24
    if days > 999 * 999:
        return "INVALID"
    if days > 999:
        return f"{days // 365}y{_two(days % 365)}d{_two(hh)}"
    if days > 0:
        return f"{days}d{_two(hh)}h{_two(mm)}"
    if hh > 0:
        return f"{hh}h{_two(mm)}m{_two(ss)}"
    return f"{mm}m{_two(ss)}s{_two(ms)}"


def _put(line: list[str], end: int, text: str) -> None:
    """Write text so that it ends just before column end (right-aligned)."""
    start = end - len(text)
    for offset, ch in enumerate(text):
        if start + offset >= 0:
            line[start + offset] = ch


def row(xid: int, procs: int, vsz: int, rss: int, utime: int, stime: int, uptime: int,
        name: str) -> str:
    line = [" "] * 55
    _put(line, len(str(xid)), str(xid))
    _put(line, 10, str(procs))
    _put(line, 17, shorten_mem(vsz))
    _put(line, 24, shorten_mem(rss))
    _put(line, 34, shorten_time(utime))
    _put(line, 44, shorten_time(stime))
    _put(line, 54, shorten_time(uptime))
    return "".join(line) + name[:20]


def _name(layout: Layout, cfgdir: str | None) -> str:
    if not cfgdir:
        return ""
    return cfgstyle.display_name(layout, cfgdir, cfgstyle.style_of(layout, cfgdir)) or ""


def render(layout: Layout, st: state.State) -> str:
    page = int(st["page_size"])
    lines = [HEADER]
    for ctx in sorted(st["contexts"].values(), key=lambda c: int(c["xid"])):
        uptime = max(0, int((state.now() - float(ctx["started_at"])) * 1000))
        lines.append(row(int(ctx["xid"]), int(ctx["procs"]), int(ctx["vm_pages"]) * page,
                         int(ctx["rss_pages"]) * page, int(ctx["utime_ms"]),
                         int(ctx["stime_ms"]), uptime, _name(layout, ctx["uts"].get("context"))))
    return "\n".join(lines) + "\n"


def _run(layout: Layout, argv: list[str]) -> int:
    try:
        parsed, rest = options.parse("vserver-stat", argv, "O:", ["help", "version", "sort="])
    except options.OptionError as exc:
        err(str(exc))
        raise ToolExit(1, "Try 'vserver-stat --help' for more information.") from None
    for opt, _ in parsed:
        if opt == "--help":
            out("Usage: vserver-stat [-O|--sort ARG]\n\nShows the running contexts."
                " -O/--sort is accepted and ignored.")
            return 0
        if opt == "--version":
            out("vserver-stat (vssim, the util-vserver test simulator)")
            return 0
    if rest:
        raise ToolExit(1, "Unknown parameter, use '--help' for more information")
    sys.stdout.write(render(layout, state.load(layout)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_tool("vserver-stat", args, _run, (None, None))
