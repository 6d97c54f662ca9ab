"""vzlist's rows and fields: what each field prints in a table and in JSON (reference §1.8).

A field knows its header, header format, how to print a row's value in a table (with the
width to which a string is cut when it is not the last column and `-t` is not given), how to
print it as JSON, and how to sort by it. Legacy and O7 have separate field lists; the printing
helpers are shared where the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .keys import VZLIST_UBCS
from .units import INT_MAX, LONG_MAX
from .values import CAP_NAMES, Caps, Features, Veth, render_features

STATUS_ORDER = ("running", "stopped", "mounted", "suspended")


@dataclass
class Row:
    """One CT as vzlist collected it."""

    ctid: str
    status: str = "stopped"
    hide: bool = False
    name: str | None = None
    hostname: str | None = None
    description: str | None = None
    ostemplate: str | None = None
    private: str | None = None
    root: str | None = None
    mount_opts: str | None = None
    origin_sample: str | None = None
    ip: str | None = None
    configured_ip: str | None = None
    nameserver: str | None = None
    searchdomain: str | None = None
    ubc: dict[str, list[int]] = field(default_factory=dict)  # name -> held, maxheld, b, l, fail
    quota: dict[str, list[int]] | None = None  # diskspace/diskinodes -> usage, soft, hard
    cpu: tuple[int, int, int] | None = None  # limit %, limit MHz, units
    cpus: int = -1
    uptime: float | None = None  # None: no cpustat (not running)
    ioprio: int | None = None
    iolimit: int | None = None
    iopslimit: int | None = None
    onboot: bool | None = None
    bootorder: int | None = None
    layout: str = "simfs"
    features: Features | None = None
    disabled: bool = False
    vm_overcommit: float = 0.0
    netfilter: str | None = None
    caps: Caps = field(default_factory=Caps)
    cpumask: str | None = None
    nodemask: str | None = None
    netif: list[Veth] = field(default_factory=list)
    uuid: str | None = None
    distribution: str | None = None
    ha_prio: int | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def vswap(self) -> bool:
        limit = self.ubc["physpages"][3] if "physpages" in self.ubc else 0
        return limit not in (LONG_MAX, INT_MAX)


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and, for strings, the width it is cut to when not last."""

    text: str
    cut: int | None = None


TableFn = Callable[[Row, int, bool], Cell]
JsonFn = Callable[[Row, int], str]
SortFn = Callable[[Row], Any]


@dataclass(frozen=True)
class Field:
    name: str
    hdr: str
    hdr_fmt: str
    index: int
    table: TableFn
    json: JsonFn
    sort: SortFn | None = None  # None: the tool's no-op sort


# ---------------------------------------------------------------- helpers

def fmt(spec: str, value: object) -> str:
    """C printf for the few forms vzlist uses: %Ns, %-Ns, %Nd, %Nlu."""
    width = spec.strip("%").rstrip("sdlu")
    text = "(null)" if value is None else str(value)
    if not width:
        return text
    n = int(width)
    return text.ljust(-n) if n < 0 else text.rjust(n)


def json_str(value: str | None) -> str:
    """Strings are printed between quotes without escaping, as the tools do."""
    return "null" if value is None else f'"{value}"'


def json_list(value: str | None) -> str:
    if value is None:
        return "[]"
    return "[" + ", ".join(f'"{x}"' for x in value.split()) + "]"


def none_first(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value)


def str_cell(attr: str, width: int, *, truncate: bool = True) -> TableFn:
    def cell(row: Row, index: int, last: bool) -> Cell:
        value = getattr(row, attr)
        return Cell(fmt(f"%{width}s", "-" if value is None else value),
                    abs(width) if truncate else None)
    return cell


def str_json(attr: str) -> JsonFn:
    return lambda row, index: json_str(getattr(row, attr))


def list_cell(attr: str) -> TableFn:
    """Lists show only their first entry unless last; cut to 15 columns."""
    def cell(row: Row, index: int, last: bool) -> Cell:
        value = getattr(row, attr) or "-"
        if not last:
            value = value.split(" ")[0]
        return Cell(fmt("%-15s", value), 15)
    return cell


def ubc_cell(name: str) -> TableFn:
    def cell(row: Row, index: int, last: bool) -> Cell:
        res = row.ubc.get(name)
        if res is None or (not row.running and index in (0, 1, 4)):
            return Cell(fmt("%10s", "-"))
        return Cell(fmt("%10s", res[index]))
    return cell


def ubc_json(name: str) -> JsonFn:
    def js(row: Row, index: int) -> str:
        res = row.ubc.get(name)
        if res is None:
            return "null"
        held, maxheld, failcnt = (res[0], res[1], res[4]) if row.running else (0, 0, 0)
        return ("{\n"
                f'      "held": {held},\n'
                f'      "maxheld": {maxheld},\n'
                f'      "barrier": {res[2]},\n'
                f'      "limit": {res[3]},\n'
                f'      "failcnt": {failcnt}\n'
                "    }")
    return js


def ubc_sort(name: str, index: int) -> SortFn:
    return lambda row: none_first(row.ubc[name][index] if name in row.ubc else None)


def dq_cell(name: str) -> TableFn:
    def cell(row: Row, index: int, last: bool) -> Cell:
        res = row.quota.get(name) if row.quota else None
        if res is None or (index == 0 and res[0] == 0):
            return Cell(fmt("%10s", "-"))
        return Cell(fmt("%10s", res[index]))
    return cell


def dq_json(name: str) -> JsonFn:
    def js(row: Row, index: int) -> str:
        res = row.quota.get(name) if row.quota else None
        if res is None:
            return "null"
        return ("{\n"
                f'      "usage": {res[0]},\n'
                f'      "softlimit": {res[1]},\n'
                f'      "hardlimit": {res[2]}\n'
                "    }")
    return js


def dq_sort(name: str, index: int) -> SortFn:
    return lambda row: none_first(row.quota[name][index] if row.quota else None)


def uptime_text(seconds: float) -> str:
    days = int(seconds // 86400)
    minutes = int(seconds // 60)
    hours = (minutes // 60) % 24
    minutes %= 60
    secs = int(seconds - (60 * minutes + 3600 * hours + 86400 * days))
    return f"{days:03d}d{hours:02d}h:{minutes:02d}m:{secs:02d}s"


def json_bool(value: bool) -> str:
    return "true" if value else "false"


def caps_json(caps: Caps) -> str:
    """Lower-cased names through one reused buffer that is never re-terminated: a shorter
    name after a longer one keeps the longer one's tail (`net_raw` after `net_admin` prints
    `net_rawin`)."""
    buf = bytearray(64)
    items = []
    for name in CAP_NAMES:
        if name in caps.on:
            state = "true"
        elif name in caps.off:
            state = "false"
        else:
            continue
        low = name.lower().encode()
        buf[:len(low)] = low
        text = bytes(buf).split(b"\0", 1)[0].decode()
        items.append(f'      "{text}": {state}')
    if not items:
        return "null"
    return "{\n" + ",\n".join(items) + "\n    }"


def caps_text(caps: Caps) -> str:
    items = []
    for name in CAP_NAMES:
        if name in caps.on:
            items.append(f"{name.lower()}:on")
        elif name in caps.off:
            items.append(f"{name.lower()}:off")
    return ",".join(items) or "-"


def features_json(features: Features | None) -> str:
    if features is None or not features.known:
        return "null"
    items = [f'      "{n}": {json_bool(n in features.on)}'
             for n in ("sysfs", "nfs", "sit", "ipip", "ppp", "ipgre", "bridge", "nfsd")
             if n in features.known]
    return "{\n" + ",\n".join(items) + "\n    }"


def features_text(features: Features | None) -> str:
    if features is None or not features.known:
        return "-"
    return render_features(features, ",")


def simple(text_fn: Callable[[Row], str], json_fn: Callable[[Row], str],
           ) -> tuple[TableFn, JsonFn]:
    return (lambda row, index, last: Cell(text_fn(row))), (lambda row, index: json_fn(row))


def _ubc_fields(header: dict[str, str]) -> list[Field]:
    result = []
    for name in VZLIST_UBCS:
        hdr = header[name]
        cell, js = ubc_cell(name), ubc_json(name)
        # The sort functions of .l and .b are swapped in the tool (reference §1.8).
        for suffix, index, sort_index in (("", 0, 0), (".m", 1, 1), (".b", 2, 3),
                                          (".l", 3, 2), (".f", 4, 4)):
            result.append(Field(name + suffix, hdr + suffix.upper(), "%10s", index, cell, js,
                                ubc_sort(name, sort_index)))
    return result


UBC_HEADERS = {
    "kmemsize": "KMEMSIZE", "lockedpages": "LOCKEDP", "privvmpages": "PRIVVMP",
    "shmpages": "SHMP", "numproc": "NPROC", "physpages": "PHYSP", "vmguarpages": "VMGUARP",
    "oomguarpages": "OOMGUARP", "numtcpsock": "NTCPSOCK", "numflock": "NFLOCK",
    "numpty": "NPTY", "numsiginfo": "NSIGINFO", "tcpsndbuf": "TCPSNDB", "tcprcvbuf": "TCPRCVB",
    "othersockbuf": "OTHSOCKB", "dgramrcvbuf": "DGRAMRB", "numothersock": "NOTHSOCK",
    "dcachesize": "DCACHESZ", "numfile": "NFILE", "numiptent": "NIPTENT", "swappages": "SWAPP",
}


def _dq_fields(hdrs: tuple[str, str]) -> list[Field]:
    result = []
    for name, hdr in (("diskspace", hdrs[0]), ("diskinodes", hdrs[1])):
        for suffix, index in (("", 0), (".s", 1), (".h", 2)):
            result.append(Field(name + suffix, hdr + suffix.upper(), "%10s", index,
                                dq_cell(name), dq_json(name), dq_sort(name, index)))
    return result


def _id_sort(row: Row) -> Any:
    return int(row.ctid)


def _status_sort(row: Row) -> Any:
    return (STATUS_ORDER.index(row.status) if row.status in STATUS_ORDER else 9, int(row.ctid))


def laverage_cell(row: Row, index: int, last: bool) -> Cell:
    return Cell(fmt("%14s", "-") if row.uptime is None else "0.00/0.00/0.00")


def laverage_json(row: Row, index: int) -> str:
    return "null" if row.uptime is None else "[0.00, 0.00, 0.00]"


def uptime_cell(row: Row, index: int, last: bool) -> Cell:
    return Cell(fmt("%15s", "-") if row.uptime is None else uptime_text(row.uptime))


def uptime_json(row: Row, index: int) -> str:
    return f"{row.uptime or 0.0:.3f}"


# ---------------------------------------------------------------- legacy field table

def _legacy_fields() -> list[Field]:
    veid_cell = simple(lambda r: fmt("%10s", r.ctid), lambda r: r.ctid)

    def smart_cell(row: Row, index: int, last: bool) -> Cell:
        if row.name is not None:
            return Cell(fmt("%10s", row.name), 10)
        return Cell(fmt("%10s", row.ctid))

    def smart_json(row: Row, index: int) -> str:
        return json_str(row.name) if row.name is not None else row.ctid

    def cpu_part(i: int, width: str) -> tuple[TableFn, JsonFn]:
        return simple(lambda r: fmt(width, "-") if r.cpu is None else fmt(width, r.cpu[i]),
                      lambda r: "null" if r.cpu is None else str(r.cpu[i]))

    def io_part(attr: str, width: str, minimum: int) -> tuple[TableFn, JsonFn]:
        def text(r: Row) -> str:
            v = getattr(r, attr)
            return fmt(width, "-") if v is None or v < minimum else fmt(width, v)
        return simple(text, lambda r: str(max(getattr(r, attr) or 0, 0)))

    def onboot_text(r: Row) -> str:
        return fmt("%6s", "-" if r.onboot is None else ("yes" if r.onboot else "no"))

    strs = {name: (str_cell(name, w), str_json(name)) for name, w in (
        ("private", -32), ("root", -32), ("mount_opts", -16), ("origin_sample", -32),
        ("hostname", -32), ("name", -32), ("description", -32), ("ostemplate", -32))}

    def f(name: str, hdr: str, hdr_fmt: str, pair: tuple[TableFn, JsonFn],
          sort: SortFn | None = None) -> Field:
        return Field(name, hdr, hdr_fmt, 0, pair[0], pair[1], sort)

    def str_sort(attr: str) -> SortFn:
        return lambda r: none_first(getattr(r, attr))

    fields = [
        f("ctid", "CTID", "%10s", veid_cell, _id_sort),
        f("veid", "CTID", "%10s", veid_cell, _id_sort),
        f("vpsid", "CTID", "%10s", veid_cell, _id_sort),
        f("private", "PRIVATE", "%-32s", strs["private"], str_sort("private")),
        f("root", "ROOT", "%-32s", strs["root"], str_sort("root")),
        f("mount_opts", "MOUNT_OPTS", "%-16s", strs["mount_opts"], str_sort("mount_opts")),
        f("origin_sample", "ORIGIN_SAMPLE", "%32s", strs["origin_sample"],
          str_sort("origin_sample")),
        f("hostname", "HOSTNAME", "%-32s", strs["hostname"], str_sort("hostname")),
        f("name", "NAME", "%-32s", strs["name"], str_sort("name")),
        f("smart_name", "SMARTNAME", "%10s", (smart_cell, smart_json), str_sort("name")),
        f("description", "DESCRIPTION", "%-32s", strs["description"], str_sort("description")),
        f("ostemplate", "OSTEMPLATE", "%-32s", strs["ostemplate"], str_sort("ostemplate")),
        f("ip", "IP_ADDR", "%-15s", (list_cell("ip"), lambda r, i: json_list(r.ip)),
          str_sort("ip")),
        f("nameserver", "NAMESERVER", "%-15s",
          (list_cell("nameserver"), lambda r, i: json_list(r.nameserver)),
          str_sort("nameserver")),
        f("searchdomain", "SEARCHDOMAIN", "%-15s",
          (list_cell("searchdomain"), lambda r, i: json_list(r.searchdomain)),
          str_sort("searchdomain")),
        f("status", "STATUS", "%-9s",
          simple(lambda r: fmt("%-9s", r.status), lambda r: json_str(r.status)), _status_sort),
        *_ubc_fields(UBC_HEADERS),
        *_dq_fields(("DSPACE", "DINODES")),
        f("laverage", "LAVERAGE", "%14s", (laverage_cell, laverage_json),
          lambda r: none_first(None if r.uptime is None else 0)),
        f("uptime", "UPTIME", "%15s", (uptime_cell, uptime_json),
          lambda r: none_first(None if r.uptime is None else -r.uptime)),
        f("cpulimit", "CPULIM", "%7s", cpu_part(0, "%7s"),
          lambda r: none_first(r.cpu[0] if r.cpu else None)),
        f("cpuunits", "CPUUNI", "%7s", cpu_part(2, "%7s"),
          lambda r: none_first(r.cpu[2] if r.cpu else None)),
        f("cpus", "CPUS", "%5s",
          simple(lambda r: fmt("%5s", "-" if r.cpus <= 0 else r.cpus),
                 lambda r: str(max(r.cpus, 0))), lambda r: r.cpus),
        f("ioprio", "IOP", "%3s", io_part("ioprio", "%3s", 0), lambda r: r.ioprio or -1),
        f("iolimit", "IOLIMIT", "%10s", io_part("iolimit", "%10s", 1),
          lambda r: r.iolimit or -1),
        f("iopslimit", "IOPS", "%4s", io_part("iopslimit", "%4s", 1),
          lambda r: r.iopslimit or -1),
        f("onboot", "ONBOOT", "%6s",
          simple(onboot_text, lambda r: "null" if r.onboot is None else json_bool(r.onboot))),
        f("bootorder", "BOOTORDER", "%10s",
          simple(lambda r: fmt("%10s", "-" if r.bootorder is None else r.bootorder),
                 lambda r: "null" if r.bootorder is None else str(r.bootorder)),
          lambda r: (none_first(r.bootorder), int(r.ctid))),
        f("layout", "LAYOUT", "%6s",
          simple(lambda r: fmt("%-6s", r.layout), lambda r: json_str(r.layout)),
          lambda r: r.layout),
        f("features", "FEATURES", "%-15s",
          ((lambda r, i, last: Cell(fmt("%-15s", features_text(r.features)), 15)),
           lambda r, i: features_json(r.features))),
        f("vswap", "VSWAP", "%5s",
          simple(lambda r: fmt("%5s", "yes" if r.vswap else "no"), lambda r: json_bool(r.vswap))),
        f("disabled", "DISABL", "%6s",
          simple(lambda r: fmt("%6s", "yes" if r.disabled else "no"),
                 lambda r: json_bool(r.disabled))),
        f("vm_overcommit", "VM_OVC", "%6s",
          simple(lambda r: fmt("%6s", "-" if not r.vm_overcommit else f"{r.vm_overcommit:g}"),
                 lambda r: f"{r.vm_overcommit:g}")),
        f("netfilter", "NETFILTER", "%-9s",
          simple(lambda r: fmt("%-9s", r.netfilter), lambda r: json_str(r.netfilter))),
        f("capability", "CAPABILITY", "%-15s",
          simple(lambda r: fmt("%-15s", caps_text(r.caps)), lambda r: caps_json(r.caps))),
    ]
    return fields


LEGACY_FIELDS = _legacy_fields()


# ---------------------------------------------------------------- O7 field table

def _o7_fields() -> list[Field]:
    def s(attr: str, width: int) -> tuple[TableFn, JsonFn]:
        return str_cell(attr, width, truncate=False), str_json(attr)

    def f(name: str, hdr: str, hdr_fmt: str, pair: tuple[TableFn, JsonFn],
          sort: SortFn | None = None, index: int = 0) -> Field:
        return Field(name, hdr, hdr_fmt, index, pair[0], pair[1], sort)

    def str_sort(attr: str) -> SortFn:
        return lambda r: none_first(getattr(r, attr))

    ctid_pair = simple(lambda r: fmt("%36s", r.ctid), lambda r: json_str(r.ctid))
    smart = simple(lambda r: fmt("%-32s", r.name if r.name is not None else r.ctid),
                   lambda r: json_str(r.name if r.name is not None else r.ctid))
    cpu0 = simple(lambda r: fmt("%7s", r.cpu[0] if r.cpu else "-"),
                  lambda r: str(r.cpu[0]) if r.cpu else "null")

    def netif_attr(attr: str, width: int) -> tuple[TableFn, JsonFn]:
        def value(r: Row) -> str | None:
            return getattr(r.netif[0], attr) or None if r.netif else None
        return (simple(lambda r: fmt(f"%{width}s", value(r) or "-"),
                       lambda r: json_str(value(r))))

    def netif_extra(key: str, width: int) -> tuple[TableFn, JsonFn]:
        def value(r: Row) -> str | None:
            return r.netif[0].extra.get(key) if r.netif else None
        return simple(lambda r: fmt(f"%{width}s", value(r) or "-"), lambda r: json_str(value(r)))

    def onboot_text(r: Row) -> str:
        return fmt("%-6s", "yes" if r.onboot else "no")

    return [
        f("ctid", "CTID", "%36s", ctid_pair, _id_sort),
        f("private", "PRIVATE", "%-32s", s("private", -32)),
        f("root", "ROOT", "%-36s", s("root", -32)),
        f("veid", "CTID", "%36s", ctid_pair, _id_sort),
        f("uuid", "UUID", "%36s", s("uuid", 36), _id_sort),
        f("hostname", "HOSTNAME", "%-32s", s("hostname", -32), str_sort("hostname")),
        f("name", "NAME", "%-32s", s("name", -32), str_sort("name")),
        f("smart_name", "NAME", "%-32s", smart, str_sort("name")),
        f("description", "DESCRIPTION", "%-32s", s("description", -32),
          str_sort("description")),
        f("tm", "TM", "%-2s", simple(lambda r: fmt("%-2s", "EZ" if r.ostemplate else "-"),
                                     lambda r: '"EZ"' if r.ostemplate else "null")),
        f("ostemplate", "OSTEMPLATE", "%-24s",
          simple(lambda r: fmt("%-24s", r.ostemplate or "-"),
                 lambda r: json_str(r.ostemplate or "-")), str_sort("ostemplate")),
        f("distribution", "DISTRIBUTION", "%-15s", s("distribution", -15)),
        f("ip", "IP_ADDR", "%-15s", (list_cell("ip"), lambda r, i: json_list(r.ip)),
          str_sort("ip")),
        f("nameserver", "NAMESERVER", "%-15s",
          (list_cell("nameserver"), lambda r, i: json_list(r.nameserver))),
        f("searchdomain", "SEARCHDOMAIN", "%-15s",
          (list_cell("searchdomain"), lambda r, i: json_list(r.searchdomain))),
        f("configured_ip", "CFG_IP_ADDR", "%-15s",
          (list_cell("configured_ip"), lambda r, i: json_list(r.configured_ip)),
          str_sort("configured_ip")),
        f("status", "STATUS", "%-9s",
          simple(lambda r: fmt("%-9s", r.status), lambda r: json_str(r.status)), _status_sort),
        *_ubc_fields(UBC_HEADERS),
        *_dq_fields(("DQBLOCKS", "DQINODES")),
        f("laverage", "LAVERAGE", "%14s", (laverage_cell, laverage_json)),
        f("cpulimit", "CPULIM", "%7s", cpu0, lambda r: none_first(r.cpu[0] if r.cpu else None)),
        f("cpulimit%", "CPUL_%", "%7s", cpu0),
        f("cpulimitM", "CPUL_M", "%7s",
          simple(lambda r: fmt("%7s", r.cpu[1] if r.cpu else "-"),
                 lambda r: str(r.cpu[1]) if r.cpu else "null"), index=1),
        f("cpuunits", "CPUUNI", "%7s",
          simple(lambda r: fmt("%7s", r.cpu[2] if r.cpu else "-"),
                 lambda r: str(r.cpu[2]) if r.cpu else "null"), index=2),
        f("cpus", "CPUS", "%5s", simple(lambda r: fmt("%5s", r.cpus if r.cpus > 0 else "-"),
                                        lambda r: str(max(r.cpus, 0)))),
        f("cpumask", "CPUMASK", "%16s", s("cpumask", 16), index=1),
        f("nodemask", "NODEMASK", "%16s", s("nodemask", 16), index=1),
        f("host_ifname", "HOST_IFNAME", "%-16s", netif_attr("host_ifname", -16), index=1),
        f("mac", "MAC", "%-17s", netif_attr("mac", -17), index=2),
        f("host_mac", "HOST_MAC", "%-17s", netif_attr("host_mac", -17), index=3),
        f("gw", "GATEWAY", "%-15s", netif_extra("gw", -15), index=4),
        f("network", "NETWORK", "%-32s", netif_extra("network", -32), index=5),
        f("ifname", "IFNAME", "%-8s", netif_attr("ifname", -8), index=6),
        f("netif", "NET_INTERFACES", "%-32s",
          simple(lambda r: " ".join(d.host_ifname for d in r.netif) + " " if r.netif
                 else fmt("%-32s", "-"),
                 lambda r: json_str(r.netif[0].host_ifname) if r.netif else "null")),
        f("onboot", "ONBOOT", "%-6s", simple(onboot_text, lambda r: json_bool(bool(r.onboot)))),
        f("disabled", "DISABL", "%-6s",
          simple(lambda r: fmt("%-6s", "yes" if r.disabled else "no"),
                 lambda r: json_bool(r.disabled))),
        f("autostop", "AUTOSTOP", "%-8s", simple(lambda r: fmt("%-8s", "-"), lambda r: "null")),
        f("bootorder", "BOOTORDER", "%10s",
          simple(lambda r: fmt("%10s", "-" if r.bootorder is None else r.bootorder),
                 lambda r: "null" if r.bootorder is None else str(r.bootorder)),
          lambda r: none_first(r.bootorder)),
        f("uptime", "UPTIME", "%15s", (uptime_cell, uptime_json),
          lambda r: none_first(None if r.uptime is None else -r.uptime), index=1),
        f("ioprio", "IOPRIO", "%6s",
          simple(lambda r: fmt("%6s", "-" if r.ioprio is None else r.ioprio),
                 lambda r: "null" if r.ioprio is None else str(r.ioprio))),
        f("iolimit", "IOLIMIT", "%10s",
          simple(lambda r: fmt("%10s", r.iolimit or "-"), lambda r: str(r.iolimit or 0)),
          index=1),
        f("iopslimit", "IOPSLIMIT", "%10s",
          simple(lambda r: fmt("%10s", r.iopslimit or "-"), lambda r: str(r.iopslimit or 0))),
        f("features", "FEATURES", "%-15s",
          simple(lambda r: fmt("%-15s", features_text(r.features)),
                 lambda r: features_json(r.features))),
        f("layout", "LAYOUT", "%-6s",
          simple(lambda r: fmt("%6s", _o7_layout(r)), lambda r: str(_o7_layout(r)))),
        f("device", "DEVICE", "%-16s", simple(lambda r: fmt("%-16s", ""), lambda r: '""')),
        f("ha_enable", "HA_ENABLE", "%-9s",
          simple(lambda r: fmt("%-9s", "yes"), lambda r: "true")),
        f("ha_prio", "HA_PRIO", "%10s",
          simple(lambda r: fmt("%10s", "-" if r.ha_prio is None else r.ha_prio),
                 lambda r: "null" if r.ha_prio is None else str(r.ha_prio))),
        f("netfilter", "NETFILTER", "%9s",
          simple(lambda r: fmt("%-9s", r.netfilter or "-"), lambda r: json_str(r.netfilter))),
        f("devnodes", "DEVNODES", "%-16s", simple(lambda r: fmt("%-16s", "-"), lambda r: "null")),
        f("origin_sample", "ORIGIN_SAMPLE", "%-32s", s("origin_sample", -32)),
        f("type", "TYPE", "%-8s", simple(lambda r: fmt("%-8s", "regular"),
                                         lambda r: '"regular"')),
    ]


def _o7_layout(row: Row) -> int:
    """Layout version of the private area: the simulator's directories count as layout 4."""
    return 4 if row.private and row.layout else 0


O7_FIELDS = _o7_fields()

LEGACY_DEFAULT = "ctid,numproc,status,ip,hostname"
LEGACY_DEFAULT_NAMES = "smart_name,numproc,status,ip,hostname"
O7_DEFAULT = "veid,numproc,status,configured_ip,hostname"
O7_DEFAULT_NAMES = "ctid,numproc,status,configured_ip,name"
O7_DEFAULT_NETIF = "ctid,status,host_ifname,configured_ip,hostname"
O7_JSON_DEFAULT = (
    "ctid,private,root,hostname,name,smart_name,description,ostemplate,distribution,ip,"
    "configured_ip,nameserver,searchdomain,status,numproc,kmemsize,lockedpages,privvmpages,"
    "shmpages,numproc,physpages,vmguarpages,oomguarpages,numtcpsock,numflock,numpty,"
    "numsiginfo,tcpsndbuf,tcprcvbuf,othersockbuf,dgramrcvbuf,numothersock,dcachesize,numfile,"
    "numiptent,swappages,diskspace,diskinodes,laverage,uptime,cpulimit,cpuunits,cpus,ioprio,"
    "iolimit,iopslimit,onboot,bootorder,layout,features,disabled,netfilter"
)
