"""`libvirt`: domains and virtual networks on any libvirt URI (lxc:///, qemu:///system,
test:///default, openvz:///system, remote `+ssh` URIs), through libvirt-python.

observe: one list call per kind (plus the autostart/active filters, which libvirt answers in
the same list API) and one inactive-XML read per object (a few in flight at once), read
through the spec loader and projected onto the last-applied spec (`normalize`). What an
object was read into is kept until its XML text (or run state, autostart) changes, so an
agent's periodic resync re-reads the host but re-parses only what changed.

execute: define writes the spec with `xml_write` and continues the existing definition in
place (`compose`: uuid, NIC MACs, ...), never undefine-then-define; live changes (current
memory, memtune, cputune) are made on the running domain after the persistent definition
holds them; stop is a graceful shutdown (LXC: signal mode), then destroy after
`stop_timeout`; purge erases the storage the spec owns (`storage`), nothing else.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from reconciler.drivers.base import (
    OWNER,
    Capabilities,
    Driver,
    Handler,
    ImportResult,
    LiveObject,
    Stamp,
    Step,
    StepKind,
)
from reconciler.drivers.libvirt import compose, normalize, storage
from reconciler.drivers.libvirt.connection import (
    NOT_FOUND,
    Connection,
    code_in,
    domain_types,
    map_error,
    scheme_of,
)
from reconciler.drivers.libvirt.events import Stop, watch
from reconciler.drivers.libvirt.parse import Parsed, parse_domain, parse_network
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.model import Domain, Network, canonical
from reconciler.model.fields import POLICY_FIELDS, Ref
from reconciler.model.units import parse_size, to_kib
from reconciler.rules import Refusal, Technology, matches
from reconciler.rules.libvirt import LIBVIRT, NETWORK
from reconciler.specs.xmlsafe import parse_xml

_SCHED = {"cpu.shares": ("cpu_shares", 1024), "cpu.period": ("vcpu_period", 100000),
          "cpu.quota": ("vcpu_quota", -1)}
_UNLIMITED_KIB = 9007199254740991  # VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
# XML reads in flight at once: each is a round trip, and the daemon answers several at a time
_READERS = 4


@dataclass(frozen=True)
class _Seen:
    """What the last observe read of one object: enough to define it without asking again."""

    xml: str
    parsed: Parsed
    running: bool
    autostart: bool
    id: int | None = None  # a running domain's id (LXC: its controller's pid)


class LibvirtDriver(Driver):
    name = "libvirt"
    capabilities = Capabilities(events=True, imports=True)

    def __init__(self, state_dir: str | Path, uri: str | None = None,
                 stop_timeout: float = 30.0, reconnect_timeout: float = 10.0,
                 match: str | None = None) -> None:
        self.uri = uri or os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"
        self.scheme = scheme_of(self.uri)
        self.types = domain_types(self.uri)
        try:
            self.stop_timeout = float(stop_timeout)
            self.reconnect_timeout = float(reconnect_timeout)
        except (TypeError, ValueError):
            raise ConfigError("libvirt: stop_timeout and reconnect_timeout are seconds") from None
        self.match = match
        self.roots = Path(state_dir) / "libvirt" / "roots"
        self.ledger = storage.Ledger(state_dir, self.uri)
        self.conn = Connection(self.uri, self.reconnect_timeout)
        self.lv = self.conn.lv
        self._seen: dict[Ref, _Seen] = {}
        self._known: set[Ref] | None = None  # everything the last observe listed
        # the last observe's objects by what they were made of: unchanged ones are reused
        self._cache: dict[tuple[Any, ...], tuple[_Seen, LiveObject]] = {}
        self._handles: dict[Ref, tuple[int, Any]] = {}
        self._net_flags = int(self.lv.VIR_NETWORK_XML_INACTIVE)
        self._readers: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ helpers
    def _wanted(self, name: str) -> bool:
        return self.match is None or fnmatch.fnmatchcase(name, self.match)

    def _template_source(self, domain: str) -> normalize.TemplateSource:
        return lambda fs: fs.get("source") or storage.default_source(self.roots, domain,
                                                                     fs["target"])

    def _handle(self, conn: Any, ref: Ref) -> Any:
        cached = self._handles.get(ref)
        if cached is not None and cached[0] == self.conn.generation:
            return cached[1]
        lookup = conn.lookupByName if ref.kind == "Domain" else conn.networkLookupByName
        handle = lookup(ref.name)
        self._handles[ref] = (self.conn.generation, handle)
        return handle

    def _gone(self, ref: Ref) -> None:
        """An undefined object: nothing of it is remembered for the next step or observe."""
        self._handles.pop(ref, None)
        self._seen.pop(ref, None)
        if self._known is not None:
            self._known.discard(ref)

    def _on(self, ref: Ref, what: str, fn: Callable[[Any], Any],
            missing: Callable[[], Any] | None = None) -> Any:
        """`fn(handle of ref)`; `missing()` if the object does not exist (else PermanentError).

        A remembered handle can outlive its object (undefined and defined again elsewhere,
        under a new uuid): "not found" through one is checked once with a fresh lookup."""
        def run(conn: Any) -> Any:
            return fn(self._handle(conn, ref))

        def handle(exc: Exception) -> Any:
            if code_in(self.lv, exc, NOT_FOUND):
                if self._handles.pop(ref, None) is not None:
                    try:
                        return run(self.conn.get())
                    except self.lv.libvirtError as again:
                        if not code_in(self.lv, again, NOT_FOUND):
                            raise map_error(self.lv, again, f"{what} {ref}") from None
                        self._handles.pop(ref, None)
                if missing is not None:
                    return missing()
                raise PermanentError(f"{ref} is not defined on {self.uri}") from None
            raise map_error(self.lv, exc, f"{what} {ref}") from None

        return self.conn.call(f"{what} {ref}", run, handle)

    # ------------------------------------------------------------------ observe
    def observe(self) -> list[LiveObject]:
        for _ in range(2):
            found = self._observe()
            if found is not None:
                return found
        raise TransientError(f"libvirt at {self.uri} keeps reconnecting; observe again later")

    def _observe(self) -> list[LiveObject] | None:
        """Everything on the host, or None if the connection was replaced while listing."""
        lv = self.lv
        gen_before = self.conn.generation
        domains = self.conn.call("list domains", lambda c: c.listAllDomains(0))
        auto_domains = {d.name() for d in self.conn.call(
            "list domains", lambda c: c.listAllDomains(lv.VIR_CONNECT_LIST_DOMAINS_AUTOSTART))}
        networks, active_nets, auto_nets = self._list_networks()
        generation = self.conn.generation
        if generation != gen_before:  # reconnected between the list calls: list again
            return None
        seen: dict[Ref, _Seen] = {}
        cache: dict[tuple[Any, ...], tuple[_Seen, LiveObject]] = {}
        out: list[LiveObject] = []
        for net in networks:
            name = net.name()
            ref = Ref("Network", name)
            self._handles[ref] = (generation, net)
            xml = self._on(ref, "read", self._network_xml, missing=lambda: None)
            if xml is not None:
                self._collect(ref, xml, name in active_nets, name in auto_nets, None, seen,
                              cache, out)
        flag = lv.VIR_DOMAIN_XML_INACTIVE
        if self.match is not None:
            domains = [dom for dom in domains if self._wanted(dom.name())]
        for dom, read in zip(domains, self._read_all(domains, flag), strict=True):
            name = dom.name()
            ref = Ref("Domain", name)
            self._handles[ref] = (generation, dom)
            xml = read
            if xml is None:  # a failed read (gone, daemon away) again, alone, through `_on`
                xml = self._on(ref, "read", lambda d: d.XMLDesc(flag), missing=lambda: None)
                if xml is None:
                    continue
            dom_id = dom.ID()
            self._collect(ref, xml, dom_id != -1, name in auto_domains,
                          dom_id if dom_id != -1 else None, seen, cache, out)
        self._seen, self._known, self._cache = seen, set(seen), cache
        return out

    def _read_all(self, domains: list[Any], flag: int) -> list[str | None]:
        """Each domain's XML (None where the read failed), over a few threads: libvirt-python
        lets go of the GIL while it waits for the daemon, so the round trips overlap."""
        lv = self.lv

        def read(part: list[Any]) -> list[str | None]:
            out: list[str | None] = []
            for dom in part:
                try:
                    out.append(dom.XMLDesc(flag))
                except lv.libvirtError:
                    out.append(None)
            return out

        if len(domains) < 2 * _READERS:
            return read(domains)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(_READERS, thread_name_prefix="libvirt-read")
        found: list[str | None] = [None] * len(domains)
        parts = [domains[i::_READERS] for i in range(_READERS)]
        for i, xmls in enumerate(self._readers.map(read, parts)):
            found[i::_READERS] = xmls
        return found

    def _collect(self, ref: Ref, xml: str, running: bool, autostart: bool, dom_id: int | None,
                 seen: dict[Ref, _Seen], cache: dict[tuple[Any, ...], tuple[_Seen, LiveObject]],
                 out: list[LiveObject]) -> None:
        """One object read: its LiveObject, made again only when what it is made of changed
        (the XML text, run state, autostart, id, whether its owned storage exists)."""
        key = (ref.kind, ref.name, xml, running, autostart, dom_id)  # str keys: cheap hashes
        hit = self._cache.get(key)
        if hit is not None and self._data(ref, hit[0].parsed) == hit[1].data:
            entry, live = hit
        else:
            parser = parse_domain if ref.kind == "Domain" else parse_network
            entry = _Seen(xml, parser(xml, ref.name), running, autostart, dom_id)
            live = self._live(ref, entry)
        seen[ref] = entry
        cache[key] = (entry, live)
        out.append(live)

    def _data(self, ref: Ref, parsed: Parsed) -> bool:
        """Does the storage built for the object still exist (True when none was built)?"""
        if ref.kind != "Domain" or parsed.stamp is None:
            return True
        built = self.ledger.built(ref.name)
        return any(os.path.exists(b.path) for b in built) if built else True

    def _network_xml(self, net: Any) -> str:
        """The persistent definition; hypervisors without the INACTIVE flag (the test driver)
        give the only one they have."""
        lv = self.lv
        if self._net_flags:
            try:
                return str(net.XMLDesc(self._net_flags))
            except lv.libvirtError as exc:
                if not code_in(lv, exc, ("VIR_ERR_INVALID_ARG", "VIR_ERR_NO_SUPPORT")):
                    raise
                self._net_flags = 0
        return str(net.XMLDesc(0))

    def _list_networks(self) -> tuple[list[Any], set[str], set[str]]:
        lv = self.lv

        def unsupported(exc: Exception) -> Any:
            if code_in(lv, exc, ("VIR_ERR_NO_SUPPORT", "VIR_ERR_NO_NETWORK")):
                return []
            raise map_error(lv, exc, "list networks") from None

        networks = self.conn.call("list networks", lambda c: c.listAllNetworks(0), unsupported)
        networks = [n for n in networks if self._wanted(n.name())]
        if not networks:  # nothing of ours to ask about: spare the two filtered lists
            return [], set(), set()
        active = {n.name() for n in self.conn.call(
            "list networks", lambda c: c.listAllNetworks(lv.VIR_CONNECT_LIST_NETWORKS_ACTIVE))}
        auto = {n.name() for n in self.conn.call(
            "list networks",
            lambda c: c.listAllNetworks(lv.VIR_CONNECT_LIST_NETWORKS_AUTOSTART))}
        return networks, active, auto

    def _live(self, ref: Ref, entry: _Seen) -> LiveObject:
        parsed = entry.parsed
        stamp = parsed.stamp
        if parsed.spec is None:
            spec: dict[str, Any] = {}
        elif stamp is not None and ref.kind == "Domain":
            spec = normalize.project_domain(parsed.spec, stamp.spec,
                                            self._template_source(ref.name))
        elif stamp is not None:
            spec = normalize.project_network(parsed.spec, stamp.spec)
        else:
            spec = parsed.spec
        state: Literal["running", "stopped"] = "running" if entry.running else "stopped"
        full = {**spec, "name": ref.name, "state": state, "autostart": entry.autostart}
        extra: dict[str, Any] = {"id": entry.id} if entry.id is not None else {}
        if parsed.error:
            extra["error"] = parsed.error
        dtype = parsed.type or ("network" if ref.kind == "Network" else "unknown")
        return LiveObject(ref=ref, type=dtype, state=state, spec=full, stamp=stamp,
                          data=self._data(ref, parsed), extra=extra)

    # ------------------------------------------------------------------ rules
    def technology(self, kind: str, dtype: str) -> Technology:
        return NETWORK if kind == "Network" else LIBVIRT[self.scheme]

    def check(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        """The technology's refusals, and for a domain not on the host yet, a template root
        whose directory exists but was not built by us (it would never be taken over)."""
        out = super().check(kind, dtype, spec)
        ref = Ref(kind, str(spec.get("name")))
        if kind == "Domain" and self.technology(kind, dtype).builds != "none" and \
                self._known is not None and ref not in self._known:
            for index, path in enumerate(storage.owned_sources(spec, self.roots, ref.name)):
                if os.path.lexists(path) and not self.ledger.holds(ref.name, path):
                    out.append(Refusal(f"filesystems.{index}.source", f"{path} already exists "
                                       "and was not built by reconciler; an existing directory "
                                       "is never taken over (move it away, or mount it)"))
        return out

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        return tuple(self.ledger.erasable(live.ref.name)) if live.ref.kind == "Domain" else ()

    def boot_id(self, live: LiveObject) -> str | None:
        """A running domain's id: libvirt gives it a new one at each start."""
        if live.ref.kind != "Domain" or live.state != "running":
            return None
        found = self._on(live.ref, "boot", lambda d: d.ID(), missing=lambda: -1)
        return str(found) if isinstance(found, int) and found >= 0 else None

    # ------------------------------------------------------------------ execute
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        return {
            ("Domain", "provision"): self._domain_provision,
            ("Domain", "define"): self._domain_define,
            ("Domain", "update"): self._domain_update,
            ("Domain", "start"): self._domain_start,
            ("Domain", "stop"): self._domain_stop,
            ("Domain", "undefine"): self._domain_undefine,
            ("Domain", "purge"): self._domain_purge,
            ("Network", "define"): self._network_define,
            ("Network", "update"): self._network_update,
            ("Network", "start"): self._network_start,
            ("Network", "stop"): self._network_stop,
            ("Network", "undefine"): self._network_undefine,
            ("Network", "purge"): self._network_undefine,  # a network owns no storage
        }

    def _existing(self, ref: Ref) -> tuple[str | None, bool | None]:
        """(inactive XML, autostart) of `ref` now: from the last observe when it saw it (or
        saw it absent), else from the host."""
        entry = self._seen.get(ref)
        if entry is not None:
            return entry.xml, entry.autostart
        if self._known is not None and ref not in self._known:
            return None, None
        return self._fetch(ref)

    def _fetch(self, ref: Ref) -> tuple[str | None, bool | None]:
        flag = self.lv.VIR_DOMAIN_XML_INACTIVE

        def read(h: Any) -> tuple[str, bool]:
            xml = h.XMLDesc(flag) if ref.kind == "Domain" else self._network_xml(h)
            return xml, bool(h.autostart())

        found = self._on(ref, "read", read, missing=lambda: (None, None))
        return found  # type: ignore[no-any-return]

    def _forget(self, ref: Ref) -> None:
        """Our own change made the observed copy stale: look it up next time."""
        self._seen.pop(ref, None)
        if self._known is not None:
            self._known.add(ref)

    def _define(self, step: Step, compose_xml: Callable[[str | None], str],
                define: Callable[[Any, str], Any]) -> None:
        assert step.spec is not None
        ref = step.ref
        if not self._wanted(ref.name):
            raise PermanentError(f"{ref} is outside this driver's scope (match: {self.match}); "
                                 "it is neither observed nor changed")
        existing, autostart = self._existing(ref)
        xml = compose_xml(existing)

        def retry(exc: Exception) -> Any:
            # our copy was stale: defined meanwhile, by us (continue it) or by someone else
            # (never taken over: ownership is decided by the plan, which did not see it)
            fresh, _ = self._fetch(ref)
            if fresh is None or fresh == existing:
                raise map_error(self.lv, exc, f"define {ref}") from None
            stamp = (parse_domain if ref.kind == "Domain" else parse_network)(
                fresh, ref.name).stamp
            if stamp is None or stamp.owner != OWNER:
                raise PermanentError(f"{ref} was defined on the host meanwhile, not by "
                                     "reconciler; it is left alone (plan again)") from None
            return define(self.conn.get(), compose_xml(fresh))

        handle = self.conn.call(f"define {ref}", lambda c: define(c, xml), retry)
        self._handles[ref] = (self.conn.generation, handle)
        self._forget(ref)
        want = step.spec.get("autostart")
        if want is not None and bool(want) != bool(autostart):  # new: autostart is off
            self._on(ref, "autostart", lambda h: h.setAutostart(1 if want else 0))

    # -- domains
    def _domain_provision(self, step: Step) -> None:
        assert step.spec is not None
        if self.scheme in ("openvz", "vz"):
            return  # the hypervisor builds template roots itself
        storage.provision(step.spec, self.roots, step.ref.name, self.ledger)

    def _domain_define(self, step: Step) -> None:
        translate = self.scheme not in ("openvz", "vz")
        source = self._template_source(step.ref.name)

        def make(existing: str | None) -> str:
            assert step.spec is not None
            return compose.domain_xml(step.spec, step.stamp(), existing=existing,
                                      translate_templates=translate, template_source=source)

        self._define(step, make, lambda conn, xml: conn.defineXML(xml))

    def _domain_update(self, step: Step) -> None:
        self._domain_define(step)
        if step.live:
            self._apply_live(step)

    def _apply_live(self, step: Step) -> None:
        """Make the running domain match the fields that change live (config already holds
        them). A domain that stopped meanwhile picks them up from its config."""
        lv = self.lv
        spec = step.spec or {}
        if not self._on(step.ref, "state", lambda d: d.isActive()):
            return
        live_flag = lv.VIR_DOMAIN_AFFECT_LIVE
        live = LIBVIRT[self.scheme].live
        memtune: dict[str, int] = {}
        sched: dict[str, int] = {}
        for field in step.fields:
            if field == "current_memory":
                size = spec.get("current_memory") or spec.get("memory")
                if size is not None:
                    self._set_memory(step.ref, to_kib(parse_size(size)))
            elif field.startswith("memtune.") and matches(field, live):
                key = field.split(".", 1)[1]
                value = (spec.get("memtune") or {}).get(key)
                memtune[key] = to_kib(parse_size(value)) if value is not None else _UNLIMITED_KIB
            elif field in _SCHED and matches(field, live):
                param, default = _SCHED[field]
                value = (spec.get("cpu") or {}).get(field.split(".", 1)[1])
                sched[param] = int(value) if value is not None else default
        if memtune:
            self._on(step.ref, "set memtune",
                     lambda d: d.setMemoryParameters(memtune, live_flag))
        if sched:
            self._on(step.ref, "set cputune",
                     lambda d: d.setSchedulerParametersFlags(sched, live_flag))

    def _set_memory(self, ref: Ref, kib: int) -> None:
        flag = self.lv.VIR_DOMAIN_AFFECT_LIVE
        self._on(ref, "set memory", lambda d: d.setMemoryFlags(kib, flag))

    def _domain_start(self, step: Step) -> None:
        def start(dom: Any) -> None:
            if dom.isActive():
                return
            dom.create()

        self._on(step.ref, "start", start)
        self._forget(step.ref)  # LXC writes the resource partition into the definition

    def _domain_stop(self, step: Step) -> None:
        lv = self.lv

        def stop(dom: Any) -> None:
            if not dom.isActive():
                return
            try:
                if self.scheme == "lxc":
                    dom.shutdownFlags(lv.VIR_DOMAIN_SHUTDOWN_SIGNAL)
                else:
                    dom.shutdown()
            except lv.libvirtError as exc:
                if not dom.isActive():
                    return
                if not code_in(lv, exc, ("VIR_ERR_OPERATION_INVALID", "VIR_ERR_NO_SUPPORT",
                                         "VIR_ERR_OPERATION_UNSUPPORTED",
                                         "VIR_ERR_AGENT_UNRESPONSIVE",
                                         "VIR_ERR_OPERATION_TIMEOUT")):
                    raise
            deadline = time.monotonic() + self.stop_timeout
            while dom.isActive():
                if time.monotonic() >= deadline:
                    try:
                        dom.destroy()
                    except lv.libvirtError:
                        if dom.isActive():
                            raise
                    return
                time.sleep(0.05)

        self._on(step.ref, "stop", stop, missing=lambda: None)

    def _domain_undefine(self, step: Step) -> None:
        lv = self.lv

        def undefine(dom: Any) -> None:
            if dom.isActive():
                raise PermanentError(f"{step.ref} is running; stop it first")
            if self.scheme == "qemu":
                # config gone, data kept: managed save and snapshot metadata go with the
                # definition (else undefine refuses), NVRAM (the guest's data) stays
                dom.undefineFlags(lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                  lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                  lv.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                                  lv.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
            else:
                dom.undefine()

        self._on(step.ref, "undefine", undefine, missing=lambda: None)
        self._gone(step.ref)

    def _domain_purge(self, step: Step) -> None:
        """Erase what provision built for the domain (the ledger says what, and checks it is
        still that), then undefine. Storage first: if erasing fails, the definition is still
        there for the next attempt."""
        if self._on(step.ref, "state", lambda d: d.isActive(), missing=lambda: False):
            raise PermanentError(f"{step.ref} is running; stop it first")
        storage.purge_built(step.ref.name, self.ledger)
        self._domain_undefine(step)

    # -- networks
    def _network_define(self, step: Step) -> None:
        def make(existing: str | None) -> str:
            assert step.spec is not None
            return compose.network_xml(step.spec, step.stamp(), existing=existing)

        self._define(step, make, lambda conn, xml: conn.networkDefineXML(xml))

    def _network_update(self, step: Step) -> None:
        self._network_define(step)

    def _network_start(self, step: Step) -> None:
        def start(net: Any) -> None:
            if not net.isActive():
                net.create()

        self._on(step.ref, "start", start)

    def _network_stop(self, step: Step) -> None:
        def stop(net: Any) -> None:
            if net.isActive():
                net.destroy()

        self._on(step.ref, "stop", stop, missing=lambda: None)

    def _network_undefine(self, step: Step) -> None:
        def undefine(net: Any) -> None:
            if net.isActive():
                raise PermanentError(f"{step.ref} is running; stop it first")
            net.undefine()

        self._on(step.ref, "undefine", undefine, missing=lambda: None)
        self._gone(step.ref)

    # ------------------------------------------------------------------ events, import
    def events(self, stop: Stop) -> Iterator[Ref]:
        """Refs of domains and networks as libvirt reports changes to them (see `events`)."""
        def current(conn: Any) -> list[Ref]:
            refs = [Ref("Network", n.name()) for n in _or_empty(self.lv, conn.listAllNetworks)]
            return refs + [Ref("Domain", d.name()) for d in conn.listAllDomains(0)]

        yield from watch(self.lv, self.uri, stop, wanted=self._wanted, current=current)

    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        """Specs for what the host holds, without what libvirt filled in by itself, for
        `reconciler import`.

        Like `terraform import`, importing adopts: each object without a stamp gets one
        holding exactly the spec returned (written into its definition, which is otherwise
        defined again unchanged), so the next plan over the written files is empty and the
        object is managed from then on. `out`/`format` name the file each spec is written to,
        recorded as the stamp's source. Objects stamped by another owner, transient domains
        (no definition to keep a stamp in) and objects the loader cannot express are skipped;
        the result's `skipped` says which and why."""
        wanted = set(names) if names else None
        found = ImportResult([])
        for obj in self.observe():
            if wanted is not None and obj.ref.name not in wanted:
                continue
            entry = self._seen[obj.ref]
            parsed = entry.parsed
            if obj.stamp is not None and not obj.owned:
                found.skipped.append((str(obj.ref), f"owned by {obj.stamp.owner!r}"))
                continue
            if parsed.spec is None:
                found.skipped.append((str(obj.ref), parsed.error or "unreadable"))
                continue
            spec = self._imported(obj, entry)
            if adopt and not obj.owned:
                source = os.path.abspath(os.path.join(out, f"{obj.ref.name}.{format}")) \
                    if out else None
                try:
                    self._adopt(obj.ref, entry.xml, Stamp(OWNER, source, spec))
                except PermanentError as exc:
                    found.skipped.append((str(obj.ref), str(exc)))
                    continue
            found.specs.append({"kind": obj.ref.kind, **spec})
        return found

    def _imported(self, obj: LiveObject, entry: _Seen) -> dict[str, Any]:
        """The canonical spec of an object as it is (host defaults dropped), as the loader
        would read it back from the file `import` writes."""
        assert entry.parsed.spec is not None
        if obj.ref.kind == "Domain":
            raw = normalize.strip_domain_defaults(entry.parsed.spec)
        else:
            raw = normalize.strip_network_defaults(entry.parsed.spec)
        raw.update(name=obj.ref.name, state=obj.state, autostart=entry.autostart)
        if obj.owned and obj.last_applied:  # policy lives only in our stamp
            raw.update({k: v for k, v in obj.last_applied.items() if k in POLICY_FIELDS})
        model = Domain if obj.ref.kind == "Domain" else Network
        spec = canonical(model.model_validate(raw))
        spec.pop("kind", None)
        return spec

    def _adopt(self, ref: Ref, xml: str, stamp: Stamp) -> None:
        """Put our stamp into the object's definition; nothing else of it changes."""
        root = parse_xml(xml.encode(), f"libvirt:{ref}")
        compose.put_stamp(root, stamp)
        text = etree.tostring(root, encoding="unicode")
        if ref.kind == "Domain":
            if not self._on(ref, "check", lambda d: d.isPersistent()):
                raise PermanentError("a transient domain has no definition to keep a stamp in")
            self.conn.call(f"adopt {ref}", lambda c: c.defineXML(text))
        else:
            self.conn.call(f"adopt {ref}", lambda c: c.networkDefineXML(text))
        self._forget(ref)

    def close(self) -> None:
        if self._readers is not None:
            self._readers.shutdown()
            self._readers = None
        self.conn.close()
        self._handles.clear()


def _or_empty(lv: Any, lister: Callable[[], list[Any]]) -> list[Any]:
    try:
        return lister()
    except lv.libvirtError:
        return []
