"""The simulated `vzlist` (reference §1.8).

Which CTs appear: running CTs come from the kernel state; `-a`/`-S` or CT arguments add every
`<number>.conf` of the config directory (0.conf is the host, not a CT); a stopped CT whose
VE_PRIVATE does not exist is hidden (O7 does not list it at all). Rows are sorted by CTID unless
`-s` is given. Configs are read with the same per-version parser as vzctl.

Choices where the reference is silent: the simulator runs as any user (no root check); a
running CT's held/maxheld/failcnt values are 0 unless the test wrote them into the kernel
state's `held`; load averages are 0.00; disk usage is 0; O7's `cpulimitM` is the CPULIMIT_MHZ
value (0 when the limit is in percent), its `layout` is 4 for an existing private area.
O7's vzlist has no `-t` option (it never cuts columns except IP/DNS lists), so `-t` fails
there the way an unknown option does.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import values
from .calllog import run_tool, take_fault
from .config import Conf, read_conf, subst_veid
from .console import err, fail, write
from .keys import VZLIST_UBCS
from .listfields import (
    LEGACY_DEFAULT,
    LEGACY_DEFAULT_NAMES,
    LEGACY_FIELDS,
    O7_DEFAULT,
    O7_DEFAULT_NAMES,
    O7_DEFAULT_NETIF,
    O7_FIELDS,
    O7_JSON_DEFAULT,
    Field,
    Row,
    fmt,
)
from .names import resolve_name
from .options import BadOption, Opt, getopt
from .paths import Sim
from .state import KernelState
from .units import LONG_MAX

VEID_MAX = 2147483644

_COMMON = [
    Opt("no-header", False, "H", "H"), Opt("stopped", False, "S", "S"),
    Opt("all", False, "a", "a"), Opt("name", False, "n", "n"),
    Opt("name_filter", True, "N", "N"), Opt("hostname", True, "h", "h"),
    Opt("description", True, "d", "d"), Opt("output", True, "o", "o"),
    Opt("sort", True, "s", "s"), Opt("list", False, "L", "L"), Opt("help", False, "e"),
    Opt("", False, "1", "1"),
]
V3_OPTS = [*_COMMON, Opt("no-trim", False, "t", "t")]
V4_OPTS = [*V3_OPTS, Opt("json", False, "j", "j")]
O7_OPTS = [*_COMMON, Opt("json", False, "j", "j"), Opt("netif", True, "i", "i"),
           Opt("compat", False, "c", "c"), Opt("skipowner", False, "w", "w")]

USAGE = """Usage: vzlist [-a | -S] [-n] [-H] {flags}[-o field[,field...] | -1] [-s [-]field]
              [-h pattern] [-N pattern] [-d pattern] [CTID ...]
       vzlist -L
"""


def _usage(sim: Sim) -> None:
    """Legacy prints its usage on stdout, O7 on stderr."""
    flags = {"3": "[-t] ", "4": "[-t] [-j] ", "7": "[-j] [-i ifname] "}[sim.version]
    (write if sim.legacy else sys.stderr.write)(USAGE.format(flags=flags))


@dataclass
class Query:
    all: bool = False
    stopped: bool = False
    header: bool = True
    trim: bool = True
    json: bool = False
    fields_arg: str | None = None
    sort: Field | None = None
    sort_reverse: bool = False
    patterns: dict[str, str] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    return run_tool("vzlist", _run, argv, env)


def _table(sim: Sim) -> list[Field]:
    return LEGACY_FIELDS if sim.legacy else O7_FIELDS


def _run(sim: Sim, args: list[str]) -> int:
    fault = take_fault(sim, "vzlist", "list", tuple(a for a in args if not a.startswith("-")))
    if fault is not None:
        if fault.get("message"):
            err(str(fault["message"]))
        return int(fault.get("rc", 1))
    query = Query()
    table = _table(sim)
    opts = O7_OPTS if not sim.legacy else (V3_OPTS if sim.v3 else V4_OPTS)
    try:
        found, words = getopt("vzlist", args, opts)
    except BadOption:
        _usage(sim)
        return 1
    for opt, value in found:
        key = opt.id
        if key == "L":
            for f in table:
                if not f.name.startswith("slm"):
                    write(f"{f.name:<15s} {f.hdr:<15s}\n")
            return 0
        if key == "e":
            _usage(sim)
            return 1
        if key == "s":
            name = value[1:] if value.startswith("-") else value
            query.sort_reverse = value.startswith("-")
            query.sort = next((f for f in table if f.name == name), None)
            if query.sort is None:
                raise fail(1, f"Invalid sort field name: {value}" if sim.legacy else
                           f"{value} is an invalid field name for this query.")
        elif key == "1":
            query.fields_arg, query.header = "veid", False
        elif key == "n":
            query.fields_arg = LEGACY_DEFAULT_NAMES if sim.legacy else O7_DEFAULT_NAMES
        elif key == "o":
            query.fields_arg = value
        elif key in ("h", "N", "d", "i"):
            query.patterns[key] = value
        elif key == "a":
            query.all = True
        elif key == "S":
            query.stopped = True
        elif key == "H":
            query.header = False
        elif key == "t":
            query.trim = False
        elif key == "j":
            query.json = True
        # O7's -c (compat output) and -w (skip the owner check) change nothing here
    for word in words:
        query.ids.append(_ctid_arg(sim, word))
    fields = _fields(sim, query)
    rows = _collect(sim, query, fields)
    if rows is None:
        return 1 if query.ids else 0
    _print(sim, query, fields, rows)
    return 0


def _ctid_arg(sim: Sim, word: str) -> str:
    m = re.fullmatch(r"\s*[+-]?\d+", word)
    number = int(word) if m and int(word) else None
    if number is None or (not sim.legacy and number < 0):
        named = resolve_name(sim, word)
        number = int(named) if named is not None else -1
    if number < 0 or number > VEID_MAX:
        raise fail(1, f"CT ID {word} is invalid." if sim.legacy else
                   f"Container ID {word} is invalid.")
    return str(number)


def _fields(sim: Sim, query: Query) -> list[Field]:
    table = _table(sim)
    spec = query.fields_arg
    if spec is None:
        if query.json:
            if sim.legacy:
                return [f for f in table if f.index == 0]
            spec = O7_JSON_DEFAULT
        elif "i" in query.patterns:
            spec = O7_DEFAULT_NETIF
        else:
            spec = LEGACY_DEFAULT if sim.legacy else O7_DEFAULT
    chosen: list[Field] = []
    rest = spec
    while True:
        name, comma, rest = rest.partition(",")
        if len(name) > 30:
            raise fail(1, f"Invalid field: {name}{comma}{rest}" if sim.legacy else
                       f"Field name {name}{comma}{rest} is unknown.")
        found = next((f for f in table if f.name == name), None)
        if found is None:
            raise fail(1, f"Unknown field: {name}")
        if query.json and sim.legacy and found.index:
            raise fail(1, f"Field `{name}' is not available in JSON output")
        chosen.append(found)
        if not comma or not rest:
            break
    return chosen


# ---------------------------------------------------------------- collecting

def _collect(sim: Sim, query: Query, fields: list[Field]) -> list[Row] | None:
    """Rows to print (hidden ones included), or None when no CT was found at all."""
    kernel = KernelState(sim).read()["cts"]
    rows: dict[int, Row] = {}
    wanted = set(query.ids)
    if query.all or query.stopped or query.ids:
        for ctid in _configured(sim):
            if not wanted or ctid in wanted:
                rows[int(ctid)] = Row(ctid)
    for ctid, entry in kernel.items():
        if entry.get("running") and (not wanted or ctid in wanted):
            rows.setdefault(int(ctid), Row(ctid)).status = "running"
    ctx0 = values.Ctx("0", sim.legacy, sim.v3, sim.ncpus)
    gconf = read_conf(sim.vz_conf, ctx0, warn=False)
    result = []
    for number in sorted(rows):
        row = rows[number]
        _fill(sim, row, gconf, kernel.get(row.ctid, {}))
        if not sim.legacy and not row.running and not _private_exists(row):
            continue  # O7 lists only CTs that exist
        result.append(row)
    if not result and (sim.legacy or query.ids):
        if sim.legacy:
            if query.json:
                write("[]\n")
            else:
                err("Container(s) not found")
        else:
            err("Container is not found")
        return None
    for row in result:
        if not row.running:
            if not _private_exists(row):
                row.hide = True
            elif kernel.get(row.ctid, {}).get("mounted"):
                row.status = "mounted"
        for key, attr in (("h", "hostname"), ("N", "name"), ("d", "description")):
            pattern = query.patterns.get(key)
            if pattern is not None and not _fnmatch(getattr(row, attr), pattern):
                row.hide = True
        netif = query.patterns.get("i")
        if netif is not None and not _has_interface(row, netif):
            row.hide = True
    return result


def _has_interface(row: Row, name: str) -> bool:
    """O7 -i: a veth named so on either side, or venet0 for a CT with venet addresses."""
    if name == "venet0" and (row.configured_ip or row.ip):
        return True
    return any(name in (dev.host_ifname, dev.ifname) for dev in row.netif)


def _private_exists(row: Row) -> bool:
    return bool(row.private) and os.path.exists(row.private or "")


def _fnmatch(text: str | None, pattern: str) -> bool:
    import fnmatch

    return text is not None and fnmatch.fnmatchcase(text, pattern)


def _configured(sim: Sim) -> list[str]:
    if not sim.conf_dir.is_dir():
        return []
    ids = []
    for entry in os.listdir(sim.conf_dir):
        m = re.fullmatch(r"(\d+)\.conf", entry)
        if m and int(m.group(1)) != 0 and int(m.group(1)) <= VEID_MAX:
            ids.append(str(int(m.group(1))))
    return ids


def _fill(sim: Sim, row: Row, gconf: Conf, kernel: dict[str, object]) -> None:
    ctx = values.Ctx(row.ctid, sim.legacy, sim.v3, sim.ncpus)
    conf = read_conf(sim.conf_path(row.ctid), ctx)
    v = conf.values
    params = kernel.get("params") if row.running else None
    params = params if isinstance(params, dict) else {}
    row.hostname = v.get("HOSTNAME")
    row.description = v.get("DESCRIPTION")
    row.ostemplate = v.get("OSTEMPLATE")
    row.origin_sample = v.get("ORIGIN_SAMPLE")
    row.mount_opts = v.get("MOUNT_OPTS")
    name = v.get("NAME")
    # legacy shows a name only when /etc/vz/names/<name> leads back to this CT
    row.name = name if name and (not sim.legacy or resolve_name(sim, name) == row.ctid) else None
    row.private = subst_veid(v.get("VE_PRIVATE") or gconf.get("VE_PRIVATE"), row.ctid,
                             sim.legacy)
    row.root = subst_veid(v.get("VE_ROOT") or gconf.get("VE_ROOT"), row.ctid, sim.legacy)
    config_ips = v.get("IP_ADDRESS") or []
    kernel_ips = [x.partition("/")[0] for x in str(params.get("IP_ADDRESS", "")).split()]
    if sim.legacy:
        row.ip = " ".join(kernel_ips or config_ips) or None
    else:
        row.configured_ip = " ".join(x.partition("/")[0] for x in config_ips)
        row.ip = " ".join(kernel_ips) if kernel_ips else row.configured_ip
    row.nameserver = " ".join(v.get("NAMESERVER") or []) or (None if sim.legacy else "")
    row.searchdomain = " ".join(v.get("SEARCHDOMAIN") or []) or (None if sim.legacy else "")
    _fill_ubc(row, v, params, kernel)
    _fill_quota(sim, row, v, params)
    _fill_cpu(sim, row, v, params, kernel)
    row.ioprio = v.get("IOPRIO")
    row.iolimit = v.get("IOLIMIT")
    row.iopslimit = v.get("IOPSLIMIT")
    onboot = v.get("ONBOOT")
    row.onboot = onboot if sim.legacy else onboot == "yes"
    row.bootorder = v.get("BOOTORDER")
    row.layout = v.get("VE_LAYOUT", "simfs").partition(":")[0]
    row.features = v.get("FEATURES")
    row.disabled = v.get("DISABLED") is True
    row.vm_overcommit = float(v.get("VM_OVERCOMMIT") or 0.0)
    row.netfilter = v.get("NETFILTER")
    row.caps = v.get("CAPABILITY") or values.Caps()
    row.cpumask = v.get("CPUMASK")
    row.nodemask = v.get("NODEMASK")
    row.netif = v.get("NETIF") or []
    row.uuid = v.get("UUID")
    row.distribution = v.get("DISTRIBUTION")
    row.ha_prio = v.get("HA_PRIO")
    started = kernel.get("started_at")
    if row.running:
        row.uptime = max(time.time() - float(started), 0.0) if isinstance(
            started, (int, float)) else 0.0


def _fill_ubc(row: Row, v: dict[str, object], params: dict[str, object],
              kernel: dict[str, object]) -> None:
    """Running CTs show the kernel's values (unset ones are unlimited there); stopped ones
    the config's barrier/limit, 0 when unset."""
    held = kernel.get("held")
    held = held if isinstance(held, dict) else {}
    for name in VZLIST_UBCS:
        key = name.upper()
        if row.running:
            text = params.get(key)
            barrier, limit = (LONG_MAX, LONG_MAX)
            if text:
                first, _, second = str(text).partition(":")
                barrier, limit = int(first), int(second or first)
            counters = [*held.get(name, []), 0, 0, 0]
            row.ubc[name] = [int(counters[0]), int(counters[1]), barrier, limit,
                             int(counters[2])]
        else:
            pair = v.get(key)
            barrier, limit = pair if isinstance(pair, tuple) else (0, 0)
            row.ubc[name] = [0, 0, barrier, limit, 0]


def _fill_quota(sim: Sim, row: Row, v: dict[str, object],
                params: dict[str, object]) -> None:
    quota: dict[str, list[int]] = {}
    for key in ("DISKSPACE", "DISKINODES"):
        text = params.get(key)
        pair = tuple(int(x) for x in str(text).split(":")) if text else v.get(key)
        if isinstance(pair, tuple):
            quota[key.lower()] = [0, pair[0], pair[1]]
    if quota or not sim.legacy:
        for key in ("diskspace", "diskinodes"):
            quota.setdefault(key, [0, 0, 0])
        row.quota = quota


def _fill_cpu(sim: Sim, row: Row, v: dict[str, object], params: dict[str, object],
              kernel: dict[str, object]) -> None:
    limit = v.get("CPULIMIT")
    pct = limit[1] if isinstance(limit, tuple) and limit[0] == "pct" else 0
    mhz = limit[1] if isinstance(limit, tuple) and limit[0] == "mhz" else 0
    if not sim.legacy and isinstance(v.get("CPULIMIT_MHZ"), int):
        mhz = int(v["CPULIMIT_MHZ"])  # type: ignore[call-overload]
    units = v.get("CPUUNITS")
    cpus = v.get("CPUS")
    if sim.legacy and row.running:
        row.cpu = (int(str(params.get("CPULIMIT", 0))), 0, int(str(params.get("CPUUNITS", 1000))))
        row.cpus = int(str(params.get("CPUS", sim.ncpus)))
        return
    if sim.legacy:
        if limit is not None or units is not None:
            row.cpu = (pct, 0, int(units) if isinstance(units, int) else 0)
    else:
        row.cpu = (pct, mhz, int(units) if isinstance(units, int) else 0)
    row.cpus = int(cpus) if isinstance(cpus, int) else (-1 if sim.legacy else 0)


# ---------------------------------------------------------------- printing

def _print(sim: Sim, query: Query, fields: list[Field], rows: list[Row]) -> None:
    if query.sort is not None:
        key = query.sort.sort
        if key is not None:
            rows = sorted(rows, key=key)
    if query.sort_reverse:
        rows = list(reversed(rows))
    visible = [r for r in rows if not r.hide and not (query.stopped and r.running)]
    if query.json:
        _print_json(fields, visible)
        return
    if query.header:
        write(_header(sim, fields))
    for row in visible:
        write(_line(fields, row, query.trim if sim.legacy else True))


def _header(sim: Sim, fields: list[Field]) -> str:
    if sim.legacy:
        return " ".join(fmt(f.hdr_fmt, f.hdr) for f in fields).rstrip() + "\n"
    text = ""
    for i, f in enumerate(fields):
        if i == len(fields) - 1 and f.hdr_fmt[1] == "-":
            text += f.hdr
            break
        text += fmt(f.hdr_fmt, f.hdr) + " "
    return text + "\n"


def _line(fields: list[Field], row: Row, trim: bool) -> str:
    parts = []
    for i, f in enumerate(fields):
        last = i == len(fields) - 1 or not trim
        cell = f.table(row, f.index, last)
        text = cell.text
        if cell.cut is not None and not last:
            text = text[:cell.cut]  # the next column overwrites what is past the width
        parts.append(text)
    return " ".join(parts).rstrip() + "\n"


def _print_json(fields: list[Field], rows: list[Row]) -> None:
    out = "["
    for n, row in enumerate(rows):
        out += ("," if n else "") + "\n  {"
        for i, f in enumerate(fields):
            out += ("," if i else "") + f'\n    "{f.name}": ' + f.json(row, f.index)
        out += "\n  }"
    write(out + "\n]\n")
