"""sd_notify without libsystemd: datagrams to $NOTIFY_SOCKET (Type=notify, WatchdogSec).

    READY=1        after the watcher is up and the specs are loaded
    STATUS=...     one line on the last pass, shown by `systemctl status`
    WATCHDOG=1     every WATCHDOG_USEC/2 while the loop is alive (see `Heartbeat`)
    STOPPING=1     on SIGTERM
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX,
                                               socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class Heartbeat(threading.Thread):
    """Feeds the systemd watchdog while `healthy()` says the agent is not stuck."""

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool],
                 stop: threading.Event) -> None:
        super().__init__(name="sd-watchdog", daemon=True)
        self.notifier, self.healthy, self.stop_event = notifier, healthy, stop

    def run(self) -> None:
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        while not self.stop_event.wait(interval):
            with contextlib.suppress(Exception):
                if self.healthy():
                    self.notifier.send("WATCHDOG=1")
