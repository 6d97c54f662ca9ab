"""One libvirt connection that survives the daemon going away, and libvirt's errors mapped
into ours.

libvirt-python is an optional extra, imported on first use (never at package import), so a
host without it can run every other driver. A connection is opened lazily; when a call fails
because the daemon went away (socket closed, libvirtd restarted), it is reopened with backoff
and the call is tried once more. Every call the driver makes is idempotent, so one retry after
a reconnect cannot do a thing twice.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from reconciler.errors import ConfigError, DriverError, PermanentError, TransientError

T = TypeVar("T")

# the project is installed from its checkout (`reconciler` on PyPI is another project)
_INSTALL_HINT = ("the libvirt driver needs libvirt-python: install this project with its "
                 "libvirt extra, pip install '/path/to/checkout[libvirt]' (it builds against "
                 "the host's libvirt: apt-get install libvirt-dev pkg-config gcc python3-dev "
                 "first), or use Debian's python3-libvirt in a venv made with "
                 "--system-site-packages")

_module: ModuleType | None = None
_module_lock = threading.Lock()


def load_libvirt() -> ModuleType:
    """The `libvirt` module, imported once; ConfigError with the fix when it is missing.

    libvirt prints every error to stderr unless a handler is installed; drivers never print,
    so the first load installs a silent one (process-wide: libvirt has no other kind).
    """
    global _module
    with _module_lock:
        if _module is None:
            try:
                module = importlib.import_module("libvirt")
            except ImportError as exc:
                raise ConfigError(f"{_INSTALL_HINT} ({exc})") from None
            module.registerErrorHandler(lambda _ctx, _err: None, None)
            _module = module
        return _module


# URI scheme (before any "+transport") -> the domain types that hypervisor runs
_SCHEME_TYPES = {
    "lxc": ("lxc",),
    "test": ("test",),
    "qemu": ("kvm", "qemu"),
    "openvz": ("openvz",),
    "vz": ("vz",),
    "xen": ("xen",),
}


def scheme_of(uri: str) -> str:
    """`qemu+ssh://host/system` -> `qemu`; the hypervisor a URI talks to."""
    scheme = urlsplit(uri).scheme
    if not scheme:
        raise ConfigError(f"libvirt URI {uri!r} has no scheme; e.g. lxc:///, qemu:///system, "
                          "test:///default, qemu+ssh://host/system")
    return scheme.split("+", 1)[0].lower()


def domain_types(uri: str) -> frozenset[str]:
    scheme = scheme_of(uri)
    if scheme not in _SCHEME_TYPES:
        raise ConfigError(f"libvirt URI {uri!r}: unknown hypervisor {scheme!r}; valid: "
                          f"{', '.join(sorted(_SCHEME_TYPES))}")
    return frozenset(_SCHEME_TYPES[scheme]) | {"network"}


# --------------------------------------------------------------------------- error mapping

# error codes (virErrorNumber) by what retrying can do about them; names, since the numbers
# are libvirt's and resolved against the loaded module
_TRANSIENT = ("VIR_ERR_RPC", "VIR_ERR_NO_CONNECT", "VIR_ERR_OPERATION_TIMEOUT",
              "VIR_ERR_AGENT_UNRESPONSIVE", "VIR_ERR_AUTH_UNAVAILABLE",
              "VIR_ERR_OPERATION_ABORTED", "VIR_ERR_RESOURCE_BUSY")
# a system error is an I/O failure: transient when it is the connection's, not the host's
_CONNECTION_DOMAINS = ("VIR_FROM_RPC", "VIR_FROM_REMOTE", "VIR_FROM_STREAMS")
NOT_FOUND = ("VIR_ERR_NO_DOMAIN", "VIR_ERR_NO_NETWORK", "VIR_ERR_NO_STORAGE_VOL",
             "VIR_ERR_NO_STORAGE_POOL")


def code_in(lv: ModuleType, exc: BaseException, names: tuple[str, ...]) -> bool:
    code = exc.get_error_code() if isinstance(exc, lv.libvirtError) else None
    return code is not None and any(getattr(lv, n, None) == code for n in names)


def map_error(lv: ModuleType, exc: Exception, what: str) -> DriverError:
    """A libvirtError as TransientError (busy, timeout, daemon gone) or PermanentError."""
    message = f"{what}: {exc}"
    if isinstance(exc, lv.libvirtError):
        text = str(exc)
        source = exc.get_error_domain() if hasattr(exc, "get_error_domain") else None
        from_connection = code_in(lv, exc, ("VIR_ERR_SYSTEM_ERROR",)) and any(
            getattr(lv, name, None) == source for name in _CONNECTION_DOMAINS)
        if code_in(lv, exc, _TRANSIENT) or from_connection or \
                any(sign in text for sign in _CONNECTION_GONE):
            return TransientError(message, delay=1.0)
    return PermanentError(message)


_CONNECTION_GONE = ("client socket is closed", "Cannot recv data", "Broken pipe",
                    "End of file while reading data", "Connection reset by peer")


# --------------------------------------------------------------------------- connection

class Connection:
    """A lazily opened libvirt connection, reopened with backoff when the daemon goes away.

    `generation` counts opens: objects (virDomain, virNetwork) from an older generation belong
    to a dead connection and must be looked up again.
    """

    def __init__(self, uri: str, reconnect_timeout: float = 10.0,
                 opener: Callable[[str], Any] | None = None) -> None:
        self.uri = uri
        self.reconnect_timeout = reconnect_timeout
        self.lv = load_libvirt()
        self._opener = opener or self.lv.open
        self._lock = threading.Lock()
        self._conn: Any = None
        self.generation = 0
        self.reconnects = 0

    def get(self) -> Any:
        """The open connection; opens it (one attempt) if there is none."""
        conn = self._conn
        if conn is not None:
            return conn
        with self._lock:
            if self._conn is None:
                self._conn = self._open_once()
            return self._conn

    def _open_once(self) -> Any:
        try:
            conn = self._opener(self.uri)
        except self.lv.libvirtError as exc:
            raise TransientError(f"cannot connect to libvirt at {self.uri}: {exc}",
                                 delay=1.0) from None
        if conn is None:  # old bindings returned None instead of raising
            raise TransientError(f"cannot connect to libvirt at {self.uri}", delay=1.0)
        self.generation += 1
        return conn

    def reconnect(self, dead: Any) -> Any:
        """Drop `dead` (if still current) and open again, backing off up to the timeout."""
        with self._lock:
            if self._conn is not None and self._conn is not dead:
                return self._conn  # another thread already reconnected
            self._conn = None
            _close_quietly(dead)
            deadline = time.monotonic() + self.reconnect_timeout
            delay = 0.05
            while True:
                try:
                    self._conn = self._open_once()
                    self.reconnects += 1
                    return self._conn
                except TransientError:
                    if time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)

    def broken(self, conn: Any, exc: Exception) -> bool:
        """Did `exc` come from a dead connection rather than from the request?"""
        if not isinstance(exc, self.lv.libvirtError):
            return False
        try:
            alive = conn.isAlive()
        except self.lv.libvirtError:
            alive = 0
        if not alive:
            return True
        text = str(exc)
        return code_in(self.lv, exc, ("VIR_ERR_NO_CONNECT",)) or \
            "client socket is closed" in text or "End of file while reading data" in text

    def call(self, what: str, fn: Callable[[Any], T],
             handle: Callable[[Exception], T] | None = None) -> T:
        """`fn(conn)`; reconnects and retries once if the daemon went away. Other libvirt
        errors go to `handle` (which returns a value or raises) or are mapped and raised."""
        conn = self.get()
        try:
            return fn(conn)
        except self.lv.libvirtError as exc:
            if not self.broken(conn, exc):
                if handle is not None:
                    return handle(exc)
                raise map_error(self.lv, exc, what) from None
        conn = self.reconnect(conn)
        try:
            return fn(conn)
        except self.lv.libvirtError as exc:
            if handle is not None and not self.broken(conn, exc):
                return handle(exc)
            raise map_error(self.lv, exc, what) from None

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    # a dead connection may refuse to close; there is nothing more to do with it
    with contextlib.suppress(Exception):
        conn.close()
