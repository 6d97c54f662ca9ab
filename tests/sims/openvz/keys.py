"""Config keys: their value kind, how legacy treats duplicates, and the orders used to write them.

Reference §1.2 "Duplicate keys" (legacy key classes) and §1.3 (key tables, UBC names, units,
aliases). Orders come from the tools' tables: legacy writes UBCs first in its `store_ub` order
and then everything else in the order of its `config[]` table; O7 writes in the order of its
`config_param_map`.
"""

from __future__ import annotations

from dataclasses import dataclass

# All 22 UBC names, in the reference's order.
UBC_NAMES = (
    "KMEMSIZE", "LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "NUMPROC", "PHYSPAGES",
    "VMGUARPAGES", "OOMGUARPAGES", "NUMTCPSOCK", "NUMFLOCK", "NUMPTY", "NUMSIGINFO",
    "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF", "NUMOTHERSOCK", "DCACHESIZE",
    "NUMFILE", "NUMIPTENT", "AVNUMPROC", "SWAPPAGES",
)
PAGE_UBCS = frozenset({"LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "PHYSPAGES", "VMGUARPAGES",
                       "OOMGUARPAGES", "SWAPPAGES"})
COUNT_UBCS = frozenset({"NUMPROC", "NUMTCPSOCK", "NUMFLOCK", "NUMPTY", "NUMSIGINFO",
                        "NUMOTHERSOCK", "NUMFILE", "NUMIPTENT", "AVNUMPROC"})
BYTE_UBCS = frozenset({"KMEMSIZE", "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF",
                       "DCACHESIZE"})

# The 21 UBCs vzlist shows (no AVNUMPROC), in its column order.
VZLIST_UBCS = (
    "kmemsize", "lockedpages", "privvmpages", "shmpages", "numproc", "physpages", "vmguarpages",
    "oomguarpages", "numtcpsock", "numflock", "numpty", "numsiginfo", "tcpsndbuf", "tcprcvbuf",
    "othersockbuf", "dgramrcvbuf", "numothersock", "dcachesize", "numfile", "numiptent",
    "swappages",
)

# Non-vswap start check: everything but SWAPPAGES and AVNUMPROC (reference §1.3).
REQUIRED_NON_VSWAP = tuple(n for n in UBC_NAMES if n not in ("SWAPPAGES", "AVNUMPROC"))

LEGACY_ALIASES = {"DCACHE": "DCACHESIZE", "IPTENTRIES": "NUMIPTENT"}
O7_ALIASES = {"IPTENTRIES": "NUMIPTENT", "TCPSENDBUF": "TCPSNDBUF"}

# O7 reads and applies only these UBCs.
O7_EFFECTIVE_UBCS = frozenset({
    "KMEMSIZE", "LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "PHYSPAGES", "VMGUARPAGES",
    "SWAPPAGES", "NUMPROC", "NUMFLOCK", "NUMPTY", "NUMSIGINFO", "NUMFILE", "NUMIPTENT",
    "AVNUMPROC",
})
# O7 knows these but ignores them; `set` warns "X parameter is deprecated".
O7_DEPRECATED_UBCS = frozenset({
    "NUMTCPSOCK", "NUMOTHERSOCK", "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF",
    "OOMGUARPAGES", "DCACHESIZE",
})

# Legacy store_ub() order (NUMFILE before DCACHESIZE there).
LEGACY_UBC_STORE_ORDER = (
    "KMEMSIZE", "LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "NUMPROC", "PHYSPAGES",
    "VMGUARPAGES", "OOMGUARPAGES", "NUMTCPSOCK", "NUMFLOCK", "NUMPTY", "NUMSIGINFO",
    "TCPSNDBUF", "TCPRCVBUF", "OTHERSOCKBUF", "DGRAMRCVBUF", "NUMOTHERSOCK", "NUMFILE",
    "DCACHESIZE", "NUMIPTENT", "AVNUMPROC", "SWAPPAGES",
)

# Legacy config[] table order of the keys `set`/`create` can write (after the UBCs).
LEGACY_STORE_ORDER = (
    "VM_OVERCOMMIT",  # written by store_ub, right after the UBCs
    "IPTABLES", "NETFILTER", "CAPABILITY", "IP_ADDRESS", "NETDEV", "HOSTNAME", "DESCRIPTION",
    "NAMESERVER", "SEARCHDOMAIN", "VE_ROOT", "VE_PRIVATE", "MOUNT_OPTS", "VE_LAYOUT",
    "OSTEMPLATE", "CPUUNITS", "CPUUWEIGHT", "CPULIMIT", "CPUS", "CPUMASK", "NODEMASK", "ONBOOT",
    "ORIGIN_SAMPLE", "DISABLED", "LOCAL_UID", "LOCAL_GID", "DISK_QUOTA", "DISKSPACE",
    "DISKINODES", "QUOTATIME", "QUOTAUGIDLIMIT", "NETIF", "NAME", "FEATURES", "IOPRIO",
    "IOLIMIT", "IOPSLIMIT", "BOOTORDER", "STOP_TIMEOUT",
)

# O7 config_param_map order of the keys the simulator can write.
O7_STORE_ORDER = (
    "IP_ADDRESS", "VE_ROOT", "VE_PRIVATE", "OSTEMPLATE", "NETIF",
    "LOCKEDPAGES", "PRIVVMPAGES", "SHMPAGES", "NUMPROC", "PHYSPAGES", "VMGUARPAGES", "NUMFLOCK",
    "NUMPTY", "NUMSIGINFO", "NUMFILE", "NUMIPTENT", "AVNUMPROC", "SWAPPAGES", "KMEMSIZE",
    "VM_OVERCOMMIT", "DISKSPACE", "DISKINODES", "QUOTAUGIDLIMIT", "CPULIMIT", "CPULIMIT_MHZ",
    "CPUUNITS", "CPUS", "CPUMASK", "NODEMASK", "FEATURES", "NAME", "NETDEV", "NETFILTER",
    "IOPRIO", "IOLIMIT", "IOPSLIMIT", "ONBOOT", "DESCRIPTION", "HOSTNAME", "SEARCHDOMAIN",
    "NAMESERVER", "ORIGIN_SAMPLE", "DISABLED", "BOOTORDER", "STOP_TIMEOUT",
)


@dataclass(frozen=True)
class Key:
    name: str
    kind: str
    dup: str  # legacy duplicate class: "first", "last" or "acc"


def _keys(kind: str, dup: str, *names: str) -> dict[str, Key]:
    return {n: Key(n, kind, dup) for n in names}


LEGACY_KEYS: dict[str, Key] = {
    **_keys("str", "first", "HOSTNAME", "DESCRIPTION", "OSTEMPLATE", "ORIGIN_SAMPLE",
            "CONFIGFILE", "VE_ROOT", "VE_PRIVATE", "TEMPLATE", "MOUNT_OPTS", "DEF_OSTEMPLATE",
            "LOCKDIR", "DUMPDIR", "LOGFILE"),
    **_keys("name", "first", "NAME"),
    **_keys("yesno", "first", "ONBOOT", "DISABLED", "DISK_QUOTA", "IPV6", "LOGGING"),
    **_keys("ulong", "first", "CPUUWEIGHT", "CPUS", "BOOTORDER", "QUOTATIME", "QUOTAUGIDLIMIT",
            "LOCAL_UID", "LOCAL_GID"),
    **_keys("cpuunits", "first", "CPUUNITS"),
    **_keys("diskspace", "first", "DISKSPACE"),
    **_keys("diskinodes", "first", "DISKINODES"),
    **_keys("cpulimit", "first", "CPULIMIT"),
    **_keys("cpumask", "first", "CPUMASK"),
    **_keys("nodemask", "first", "NODEMASK"),
    **_keys("stop_timeout", "first", "STOP_TIMEOUT"),
    **_keys("int", "first", "VERBOSE"),
    **_keys("float", "first", "VM_OVERCOMMIT"),
    **_keys("netif", "first", "NETIF"),
    **_keys("ubc", "last", *UBC_NAMES),
    **_keys("ioprio", "last", "IOPRIO"),
    **_keys("iolimit", "last", "IOLIMIT"),
    **_keys("iopslimit", "last", "IOPSLIMIT"),
    **_keys("raw", "last", "MEMINFO", "LOG_LEVEL"),
    **_keys("netfilter", "last", "NETFILTER"),
    **_keys("layout", "last", "VE_LAYOUT"),
    **_keys("ip", "acc", "IP_ADDRESS"),
    **_keys("netdev", "acc", "NETDEV"),
    **_keys("strlist", "acc", "NAMESERVER", "SEARCHDOMAIN"),
    **_keys("cap", "acc", "CAPABILITY"),
    **_keys("features", "acc", "FEATURES"),
    **_keys("raw_acc", "acc", "IPTABLES", "DEVICES", "DEVNODES", "PCI"),
    **_keys("veth", "last", "VETH"),
    **_keys("int", "last", "VEID"),
    # Known to legacy but ignored on purpose (global settings or obsolete keys).
    **_keys("ignored", "last", "VIRTUOZZO", "VE0CPUUNITS", "VZFASTBOOT", "NEIGHBOUR_DEVS",
            "ERROR_ON_ARPFAIL", "VZWDOG", "IPTABLES_MODULES", "IP6TABLES", "CONFIG_CUSTOMIZED",
            "VE_STOP_MODE", "SKIP_SYSCTL_SETUP", "SKIP_ARPDETECT", "VE_PARALLEL"),
}

# Keys of O7's config_param_map that the simulator gives a typed meaning; every other line is
# kept as a raw string in O7's key map (O7 never warns about keys).
O7_KEYS: dict[str, Key] = {
    **_keys("str", "last", "HOSTNAME", "DESCRIPTION", "OSTEMPLATE", "ORIGIN_SAMPLE",
            "CONFIGFILE", "VE_ROOT", "VE_PRIVATE", "TEMPLATE", "DEF_OSTEMPLATE", "LOCKDIR",
            "DISTRIBUTION", "UUID", "DUMPDIR"),
    **_keys("name", "last", "NAME"),
    **_keys("yesno", "last", "DISABLED", "HA_ENABLE"),
    **_keys("onboot", "last", "ONBOOT"),
    **_keys("ulong", "last", "CPUS", "BOOTORDER", "QUOTAUGIDLIMIT", "CPUWEIGHT", "HA_PRIO",
            "CPULIMIT_MHZ"),
    **_keys("cpuunits", "last", "CPUUNITS"),
    **_keys("diskspace", "last", "DISKSPACE"),
    **_keys("diskinodes", "last", "DISKINODES"),
    **_keys("cpulimit", "last", "CPULIMIT"),
    **_keys("cpumask", "last", "CPUMASK"),
    **_keys("nodemask", "last", "NODEMASK"),
    **_keys("float", "last", "VM_OVERCOMMIT"),
    **_keys("netif", "last", "NETIF"),
    **_keys("ubc", "last", *sorted(O7_EFFECTIVE_UBCS)),
    **_keys("ioprio", "last", "IOPRIO"),
    **_keys("iolimit", "last", "IOLIMIT"),
    **_keys("iopslimit", "last", "IOPSLIMIT"),
    **_keys("netfilter", "last", "NETFILTER"),
    **_keys("ip", "last", "IP_ADDRESS"),
    **_keys("netdev", "last", "NETDEV"),
    **_keys("strlist", "last", "NAMESERVER", "SEARCHDOMAIN"),
    **_keys("features", "last", "FEATURES"),
}

# Pushed into a CT when it starts (reference §1.7: what the kernel holds for a running CT).
RUNTIME_KEYS = frozenset({
    *UBC_NAMES, "VM_OVERCOMMIT", "CPUUNITS", "CPUUWEIGHT", "CPULIMIT", "CPUS", "CPUMASK",
    "NODEMASK", "IP_ADDRESS", "HOSTNAME", "NAMESERVER", "SEARCHDOMAIN", "NETIF", "NETDEV",
    "DISKSPACE", "DISKINODES", "QUOTATIME", "QUOTAUGIDLIMIT", "DISK_QUOTA", "CAPABILITY",
    "FEATURES", "NETFILTER", "MOUNT_OPTS", "IOPRIO", "IOLIMIT", "IOPSLIMIT",
})

# Of those, the ones `set` can push into a running CT (the rest need a restart).
LIVE_KEYS = RUNTIME_KEYS - {"CAPABILITY", "FEATURES", "NETFILTER", "DISK_QUOTA", "MOUNT_OPTS"}


def canonical(name: str, legacy: bool) -> str:
    aliases = LEGACY_ALIASES if legacy else O7_ALIASES
    return aliases.get(name, name)


def key_spec(name: str, legacy: bool, v3: bool = False) -> Key | None:
    """The spec of a (canonical) key name, or None when this version does not know it."""
    if legacy:
        if v3 and name == "VE_LAYOUT":
            return None  # vzctl 3.0.x predates ploop and VE_LAYOUT
        return LEGACY_KEYS.get(name)
    return O7_KEYS.get(name)


def ubc_divisor(name: str) -> int:
    """Unit of a UBC value: pages (suffix converts from bytes), bytes, or plain counts."""
    from .units import PAGE_SIZE

    if name in PAGE_UBCS:
        return PAGE_SIZE
    if name in BYTE_UBCS:
        return 1
    return 0
