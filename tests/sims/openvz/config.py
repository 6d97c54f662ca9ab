"""Reading CTID.conf / vz.conf and rewriting them on `--save`, per version (reference §1.2).

Reading:

* legacy walks the lines in order and applies each key's duplicate class: first wins (with a
  "duplicate" warning), last wins, or accumulate; a value that does not parse is skipped with
  a warning and does not count; unknown keys warn only at verbose level 1.
* O7 loads every line into a name -> string map (a repeated name overwrites, last wins, no
  messages) and interprets the known names from that map.

Writing (`write_legacy`, `write_o7`) takes the final `KEY -> value` strings of the parameters
given on the command line:

* legacy replaces only the first line that starts at column 0 with `KEY=`, appends keys it
  does not find, copies other lines byte for byte and adds a missing final newline; when no
  parameter is given it prints "No changes in CT configuration, not saving".
* O7 replaces every line whose parsed key matches (comments after the value are lost), drops
  the lines of deleted parameters, appends the rest, and copies other lines byte for byte.

Both write `<realpath>.tmp` and rename it, so a symlinked CTID.conf is updated in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import values
from .console import err, out
from .keys import canonical, key_spec
from .syntax import ENCODING, ERRORS, Parsed, Skipped, parse_line, read_text, split_lines


@dataclass
class Conf:
    """A parsed config file: typed values by canonical key, plus the raw key map."""

    path: Path | None = None
    exists: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def read_conf(path: Path, ctx: values.Ctx, *, verbose: int = 0, warn: bool = True) -> Conf:
    """Parse `path` the way this version does; missing files give an empty Conf."""
    conf = Conf(path=path, exists=path.is_file())
    if not conf.exists:
        return conf
    lines = split_lines(read_text(path))
    if ctx.legacy:
        _read_legacy(conf, lines, ctx, verbose=verbose, warn=warn)
    else:
        _read_o7(conf, lines, ctx)
    return conf


def _read_legacy(conf: Conf, lines: list[str], ctx: values.Ctx, *, verbose: int,
                 warn: bool) -> None:
    where = str(conf.path)

    def warning(msg: str) -> None:
        if warn:
            err(msg)

    def notice(msg: str) -> None:  # logger level 0: stdout, silenced at verbose -1
        if warn and verbose >= 0:
            out(msg)

    for lineno, line in enumerate(lines, 1):
        parsed = parse_line(line, legacy=True)
        if isinstance(parsed, Skipped):
            if parsed.reason:
                warning(f"Warning: can't parse {where}:{lineno} ({parsed.reason}), skipping")
            continue
        conf.raw[parsed.key] = parsed.value
        key = canonical(parsed.key, legacy=True)
        spec = key_spec(key, legacy=True, v3=ctx.v3)
        shown = f'{parsed.key} ("{parsed.value}")'
        if spec is None:
            if verbose >= 1:
                notice(f"Warning at {where}:{lineno}: unknown parameter {shown}, ignored")
            continue
        if spec.kind == "ignored":
            continue
        if spec.kind == "veth":
            notice("Warning: VETH parameter is deprecated, remove it and use --netif_add "
                   "instead")
            continue
        if spec.dup == "first" and key in conf.values:
            warning(f"Warning at {where}:{lineno}: duplicate for {shown}, ignored")
            continue
        try:
            value = values.parse(spec.kind, key, parsed.value, ctx)
        except values.Truncated as exc:
            warning(f"Warning at {where}:{lineno}: too large value for {shown}, truncated")
            value = exc.partial
        except values.Invalid as exc:
            if spec.kind == "features":
                features_warning(parsed.value, warn and verbose >= 0)
                conf.values[key] = _accumulate(spec.kind, conf.values.get(key), exc.partial)
                continue
            warning(f"Warning at {where}:{lineno}: invalid value for {shown}, skipped")
            if spec.kind in ("ioprio", "iolimit", "iopslimit"):
                conf.values.pop(key, None)  # a bad later line resets the earlier value
            elif exc.partial:
                conf.values[key] = _accumulate(spec.kind, conf.values.get(key), exc.partial)
            continue
        if spec.dup == "acc":
            conf.values[key] = _accumulate(spec.kind, conf.values.get(key), value)
        else:
            conf.values[key] = value


def features_warning(text: str, warn: bool) -> None:
    if not warn:
        return
    for token in text.replace(",", " ").split():
        name, _, mode = token.partition(":")
        if name not in values.FEATURE_NAMES or mode not in ("on", "off"):
            out(f"Warning: Unknown feature: {token}")


def _accumulate(kind: str, old: Any, new: Any) -> Any:
    """Legacy keys that add up over repeated lines."""
    if old is None:
        return new
    if kind == "ip":
        seen = {values.ip_base(x) for x in old}
        return old + [x for x in new if values.ip_base(x) not in seen]
    if kind == "strlist":
        return old + [x for x in new if x not in old]
    if kind in ("netdev", "netif"):
        return old + new
    if kind == "cap":
        return values.Caps(old.on | new.on, old.off | new.off)
    if kind == "features":  # bits are OR-ed: a later "off" does not clear an earlier "on"
        return values.Features(old.on | new.on, old.known | new.known)
    if kind == "raw_acc":
        return f"{old} {new}"
    return new


def _read_o7(conf: Conf, lines: list[str], ctx: values.Ctx) -> None:
    for line in lines:
        parsed = parse_line(line, legacy=False)
        if isinstance(parsed, Parsed):
            conf.raw[parsed.key] = parsed.value  # a repeated name overwrites in place
    for name, text in conf.raw.items():
        key = canonical(name, legacy=False)
        spec = key_spec(key, legacy=False)
        if spec is None:
            continue
        try:
            conf.values[key] = values.parse(spec.kind, key, text, ctx)
        except values.Invalid as exc:
            if exc.partial:
                conf.values[key] = exc.partial


def merged(base: Conf, over: Conf) -> Conf:
    """vz.conf values overlaid by the CT's own (the CT file wins key by key)."""
    return Conf(path=over.path, exists=over.exists, values={**base.values, **over.values},
                raw={**base.raw, **over.raw})


def subst_veid(text: str | None, ctid: str, legacy: bool) -> str | None:
    """Expand the first `$VEID` (or `${VEID}` when there is no `$VEID`) in a path.

    Legacy also strips trailing slashes from the result; O7 keeps them.
    """
    if text is None:
        return None
    if legacy:
        text = text.rstrip("/")
    for token in ("$VEID", "${VEID}"):
        if token in text:
            return text.replace(token, ctid, 1)
    return text


# ---------------------------------------------------------------- writing

def _write_atomic(path: Path, data: str) -> None:
    real = Path(os.path.realpath(path))
    tmp = real.with_name(real.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding=ENCODING, errors=ERRORS, newline="") as fh:
        fh.write(data)
    os.replace(tmp, real)


def ordered(updates: dict[str, Any], order: Iterable[str]) -> list[str]:
    """Keys of `updates` in the tool's store order; unknown ones keep their given order."""
    order = list(order)
    known = [k for k in order if k in updates]
    return known + [k for k in updates if k not in order]


def write_legacy(path: Path, updates: list[tuple[str, str]]) -> bool:
    """Merge `KEY="value"` lines into `path` the legacy way. False when nothing was given."""
    lines = split_lines(read_text(path)) if path.is_file() else []
    if not updates:
        out("No changes in CT configuration, not saving")
        return False
    for key, value in updates:
        new = f'{key}="{value}"'
        for i, line in enumerate(lines):
            if line.startswith(key + "="):
                lines[i] = new
                break
        else:
            lines.append(new)
    _write_atomic(path, "".join(line if "\n" in line else line + "\n" for line in lines))
    out(f"CT configuration saved to {path}")
    return True


def write_o7(path: Path, updates: list[tuple[str, str | None]]) -> None:
    """Rewrite `path` the O7 way; a None value deletes every line of that key."""
    wanted = dict(updates)
    lines = split_lines(read_text(path)) if path.is_file() else []
    result: list[str] = []
    stored: set[str] = set()
    for line in lines:
        parsed = parse_line(line, legacy=False)
        if isinstance(parsed, Parsed) and parsed.key in wanted:
            value = wanted[parsed.key]
            if value is not None:
                result.append(f'{parsed.key}="{value}"\n')
            stored.add(parsed.key)
        else:
            result.append(line)
    for key, value in updates:
        if key not in stored and value is not None:
            result.append(f'{key}="{value}"\n')
    _write_atomic(path, "".join(result))
