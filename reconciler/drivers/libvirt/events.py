"""Host changes as they happen: libvirt lifecycle events, for drift without waiting for a resync.

libvirt delivers events through an event loop the client registers before it opens the
connection (`virEventRegisterDefaultImpl`); one loop per process runs in a daemon thread.
`watch` opens its own connection, registers domain and network callbacks, and yields the
`Ref` of every object an event names. When the daemon goes away (libvirtd restarted), the
connection's close callback fires; `watch` reopens with backoff and, since events may have
been missed meanwhile, yields every object once before carrying on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol

from reconciler.model.fields import Ref

_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None

# domain events worth a recheck: state changes, and changes to its definition or resources
_DOMAIN_EVENTS = ("VIR_DOMAIN_EVENT_ID_LIFECYCLE", "VIR_DOMAIN_EVENT_ID_REBOOT",
                  "VIR_DOMAIN_EVENT_ID_TUNABLE", "VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE",
                  "VIR_DOMAIN_EVENT_ID_DEVICE_ADDED", "VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED",
                  "VIR_DOMAIN_EVENT_ID_METADATA_CHANGE")


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def ensure_event_loop(lv: ModuleType) -> None:
    """Register libvirt's default event loop once per process and run it in a daemon thread.

    Only connections opened after this call deliver events."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None and _loop_thread.is_alive():
            return
        if _loop_thread is None:
            lv.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    lv.virEventRunDefaultImpl()
                except Exception:  # noqa: S112 - the loop must outlive one bad callback
                    continue

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


def watch(lv: ModuleType, uri: str, stop: Stop, *, wanted: Callable[[str], bool],
          current: Callable[[Any], list[Ref]], backoff_max: float = 5.0,
          poll: float = 0.1) -> Iterator[Ref]:
    """Yield Refs of changed objects until `stop` is set; reconnect when the daemon goes away.

    `current(conn)` lists every object on a fresh connection (yielded after a reconnect)."""
    ensure_event_loop(lv)
    refs: queue.Queue[Ref] = queue.Queue()
    delay = poll
    reconnecting = False
    while not stop.is_set():
        try:
            conn = lv.open(uri)
        except lv.libvirtError:
            stop.wait(delay)
            delay = min(delay * 2, backoff_max)
            reconnecting = True
            continue
        delay = poll
        closed = threading.Event()
        handles = _register(lv, conn, refs, closed)
        try:
            if reconnecting:
                try:
                    missed = current(conn)
                except lv.libvirtError:
                    missed = []
                for ref in missed:
                    if wanted(ref.name):
                        yield ref
            while not stop.is_set() and not closed.is_set():
                try:
                    ref = refs.get(timeout=poll)
                except queue.Empty:
                    if not conn.isAlive():
                        break
                    continue
                if wanted(ref.name):
                    yield ref
        finally:
            _unregister(lv, conn, handles)
        reconnecting = True


def _register(lv: ModuleType, conn: Any, refs: queue.Queue[Ref],
              closed: threading.Event) -> list[tuple[str, int]]:
    def on_domain(_conn: Any, dom: Any, *_rest: Any) -> None:
        refs.put(Ref("Domain", dom.name()))

    def on_network(_conn: Any, net: Any, *_rest: Any) -> None:
        refs.put(Ref("Network", net.name()))

    def on_close(_conn: Any, _reason: int, _opaque: Any) -> None:
        closed.set()

    handles: list[tuple[str, int]] = []
    try:
        conn.registerCloseCallback(on_close, None)
        handles.append(("close", 0))
    except lv.libvirtError:
        pass  # drivers without a daemon (test:///) never close under us
    with contextlib.suppress(lv.libvirtError):
        conn.setKeepAlive(2, 3)  # a hung daemon counts as gone after ~8 s
    for name in _DOMAIN_EVENTS:
        event_id = getattr(lv, name, None)
        if event_id is None:
            continue
        try:
            handles.append(("domain", conn.domainEventRegisterAny(None, event_id, on_domain,
                                                                  None)))
        except lv.libvirtError:
            continue  # an event this hypervisor does not have
    with contextlib.suppress(lv.libvirtError, AttributeError):  # a host without networks
        handles.append(("network", conn.networkEventRegisterAny(
            None, lv.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_network, None)))
    return handles


def _unregister(lv: ModuleType, conn: Any, handles: list[tuple[str, int]]) -> None:
    for kind, handle in handles:
        try:
            if kind == "domain":
                conn.domainEventDeregisterAny(handle)
            elif kind == "network":
                conn.networkEventDeregisterAny(handle)
            else:
                conn.unregisterCloseCallback()
        except lv.libvirtError:
            continue
    with contextlib.suppress(lv.libvirtError):
        conn.close()
