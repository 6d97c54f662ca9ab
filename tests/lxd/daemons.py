"""Real LXD daemons for the tests, each in namespaces of its own, as LXD's own test suite runs
its clustering tests (test/includes/clustering.sh): its own LXD_DIR, network namespace (its
bridges and dnsmasq never touch the host's network), mount namespace (with a sysfs of that
network namespace, so LXD sees its own interfaces) and PID namespace (so stopping the
namespace's first process ends everything the daemon started, containers and dnsmasq
included).

A cluster's members reach each other over veth pairs into a hub namespace with one bridge on
a private range; nothing is routed out of it. Every daemon is started with a preseed that
keeps everything local: no image updates (`images.auto_update_interval: 0`), a bridge on a
private range without NAT or uplink, a `dir` storage pool, and the busybox image built here
(`image.py`) imported under the alias `busybox`.

Used by the pytest fixtures (tests/drivers/lxd/conftest.py, the conformance harness), the
bench and `python -m tests.lxd.daemons` (what tests/lxd/setup.sh runs to check a machine).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lxd import image

LXD = shutil.which("lxd")
LXC = shutil.which("lxc")
HUB_NET = "10.231.0"       # members' cluster addresses: 10.231.0.11, .12, ...
BRIDGE = "rcbr0"           # each daemon's own bridge (in its own namespace)
TIMEOUT = 120.0


def reason() -> str | None:
    """Why LXD daemons cannot run here (None: they can)."""
    if LXD is None or LXC is None:
        return "LXD is not installed (apt-get install lxd; tests/lxd/setup.sh)"
    if os.geteuid() != 0:
        return "LXD daemons need root"
    if image.BUSYBOX is None:
        return "no static busybox to build the test image from (apt-get install busybox-static)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (util-linux, iproute2)"
    return None


def run(args: list[str], *, env: dict[str, str] | None = None, input: str | None = None,
        timeout: float = TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, input=input, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{args[0]} {' '.join(args[1:4])}... failed ({result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()[-800:]}")
    return result


@dataclass
class Namespace:
    """Namespaces held by a `sleep` that is PID 1 of its own PID namespace."""

    proc: subprocess.Popen[bytes]
    pid: int
    flags: tuple[str, ...]

    @classmethod
    def make(cls, mount: bool) -> Namespace:
        flags = ["--net", "--pid", "--fork", "--kill-child"]
        if mount:
            flags += ["--mount", "--mount-proc", "--propagation", "private"]
        proc = subprocess.Popen(["unshare", *flags, "--", "sleep", "infinity"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = children.read_text().split() if children.exists() else []
            if kids:
                ns = cls(proc, int(kids[0]), ("-n", "-p", "-m") if mount else ("-n", "-p"))
                ns.run(["ip", "link", "set", "lo", "up"])  # else the FIB has no tables
                return ns
            time.sleep(0.01)
        proc.kill()
        raise RuntimeError("unshare did not start its namespace")

    def enter(self, args: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), *self.flags, "--", *args]

    def run(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return run(self.enter(args), **kw)

    def private_sysfs(self, scratch: Path) -> None:
        """A sysfs of this network namespace, the host's cgroup mounts moved under it."""
        scratch.mkdir(parents=True, exist_ok=True)
        self.run(["mount", "--move", "/sys", str(scratch)])
        self.run(["mount", "-t", "sysfs", "sysfs", "/sys"])
        self.run(["mount", "--move", str(scratch / "fs" / "cgroup"), "/sys/fs/cgroup"])
        self.run(["umount", "-l", str(scratch)])

    def close(self) -> None:
        if self.proc.poll() is None:
            # unshare ignores SIGTERM while it waits; killed, it kills its child (--kill-child),
            # the namespace's PID 1, and with it everything in the namespace
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Daemon:
    name: str
    dir: Path
    ns: Namespace
    address: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "unix.socket"

    @property
    def remote(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "LXD_DIR": str(self.dir)}

    def lxc(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """The `lxc` client, run in the daemon's namespaces: whatever it dials (a cluster
        address) is reached there, never through the host's network."""
        assert LXC is not None
        return run(self.ns.enter([LXC, *args]), env=self.env(), input=input, check=check,
                   timeout=timeout)

    def query(self, path: str, method: str = "GET", data: Any = None) -> Any:
        """The daemon's answer to one API call, through the `lxc` client (the host's own
        view, never the driver's)."""
        args = ["query", "--wait", "-X", method, path]
        if data is not None:
            args[1:1] = ["--data", json.dumps(data)]
        text = self.lxc(*args).stdout
        return json.loads(text) if text.strip() else None

    def start(self) -> None:
        assert LXD is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o711)
        log = open(self.dir / "daemon.out", "wb")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(
            self.ns.enter([LXD, "--logfile", str(self.dir / "lxd.log")]), env=self.env(),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        run([LXD, "waitready", "--timeout", str(int(TIMEOUT))], env=self.env(),
            timeout=TIMEOUT + 10)

    def preseed(self, data: dict[str, Any]) -> None:
        assert LXD is not None
        # in the namespaces: a join dials the cluster's address from this process
        run(self.ns.enter([LXD, "init", "--preseed"]), env=self.env(), input=json.dumps(data))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.socket.exists():
            assert LXD is not None
            run([LXD, "shutdown", "--timeout", "30"], env=self.env(), timeout=45, check=False)
        self.ns.close()
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _local_preseed(subnet: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "config": {"images.auto_update_interval": "0", **(extra or {})},
        "storage_pools": [{"name": "default", "driver": "dir"}],
        "networks": [{"name": BRIDGE, "type": "bridge",
                      "config": {"ipv4.address": f"{subnet}.1/24", "ipv4.nat": "false",
                                 "ipv6.address": "none"}}],
        "profiles": [{"name": "default", "devices": {
            "root": {"path": "/", "pool": "default", "type": "disk"},
            "eth0": {"name": "eth0", "network": BRIDGE, "type": "nic"}}}],
    }


def _import_image(daemon: Daemon, root: Path) -> None:
    tarball = image.build(root / "busybox.tar.gz")
    daemon.lxc("image", "import", str(tarball), "--alias", image.ALIAS)


def single(root: Path) -> Daemon:
    """One standalone daemon, ready: pool, bridge, default profile, the busybox image."""
    daemon = Daemon("solo", root / "solo", Namespace.make(mount=True))
    try:
        daemon.ns.private_sysfs(root / "solo-sys")
        daemon.start()
        daemon.preseed(_local_preseed("10.213.7"))
        _import_image(daemon, root)
    except BaseException:
        daemon.stop()
        raise
    return daemon


@dataclass
class LxdCluster:
    hub: Namespace
    members: list[Daemon] = field(default_factory=list)

    @property
    def first(self) -> Daemon:
        return self.members[0]

    def stop(self) -> None:
        for daemon in reversed(self.members):
            daemon.stop()
        self.hub.close()


def cluster(root: Path, size: int = 3) -> LxdCluster:
    """`size` daemons forming one cluster (node1 bootstraps, the others join with tokens)."""
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    hub = Namespace.make(mount=False)
    made = LxdCluster(hub)
    try:
        hub.run(["ip", "link", "add", "br0", "type", "bridge"])
        hub.run(["ip", "addr", "add", f"{HUB_NET}.1/24", "dev", "br0"])
        hub.run(["ip", "link", "set", "br0", "up"])
        for index in range(1, size + 1):
            made.members.append(_member(root, hub, index, made))
    except BaseException:
        made.stop()
        raise
    return made


def _member(root: Path, hub: Namespace, index: int, made: LxdCluster) -> Daemon:
    name = f"node{index}"
    address = f"{HUB_NET}.{10 + index}"
    daemon = Daemon(name, root / name, Namespace.make(mount=True), address)
    try:
        port = f"vh{index}"
        run(["ip", "link", "add", port, "netns", str(hub.pid), "type", "veth", "peer", "name",
             "eth0", "netns", str(daemon.ns.pid)])
        hub.run(["ip", "link", "set", port, "master", "br0", "up"])
        daemon.ns.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        daemon.ns.run(["ip", "link", "set", "eth0", "up"])
        daemon.ns.private_sysfs(root / f"{name}-sys")
        daemon.start()
        if index == 1:
            seed = _local_preseed("10.213.8", {"core.https_address": f"{address}:8443"})
            daemon.preseed({**seed, "cluster": {"server_name": name, "enabled": True}})
            _import_image(daemon, root)
        else:
            first = made.first
            token = first.lxc("cluster", "add", name, "--quiet").stdout.strip()
            daemon.preseed({"cluster": {
                "enabled": True, "server_name": name, "server_address": f"{address}:8443",
                "cluster_token": token,  # it names the cluster's addresses and certificate
                "member_config": [{"entity": "storage-pool", "name": "default",
                                   "key": "source", "value": ""}]}})
    except BaseException:
        daemon.stop()
        raise
    return daemon


# ------------------------------------------------------------------ shared for the session

_lock = threading.Lock()
_shared: dict[str, Any] = {}


def _root() -> Path:
    if "root" not in _shared:
        root = Path(tempfile.mkdtemp(prefix="rc-lxd-"))
        root.chmod(0o711)  # containers' roots sit below it: their mapped root must pass
        _shared["root"] = root
        atexit.register(_teardown)
    return Path(_shared["root"])


def shared_single() -> Daemon:
    """The session's standalone daemon, started on first use, stopped at exit."""
    with _lock:
        if "single" not in _shared:
            _shared["single"] = single(_root())
        return _shared["single"]  # type: ignore[no-any-return]


def shared_cluster() -> LxdCluster:
    """The session's three-member cluster, started on first use, stopped at exit."""
    with _lock:
        if "cluster" not in _shared:
            _shared["cluster"] = cluster(_root() / "cluster")
        return _shared["cluster"]  # type: ignore[no-any-return]


def _teardown() -> None:
    for key in ("cluster", "single"):
        made = _shared.pop(key, None)
        if made is not None:
            made.stop()
    root = _shared.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # a check that this machine runs LXD daemons as the tests do
    why = reason()
    if why:
        raise SystemExit(f"cannot run LXD daemons: {why}")
    started = time.monotonic()
    solo = shared_single()
    print(f"standalone daemon ready in {time.monotonic() - started:.1f} s: {solo.remote}")
    solo.lxc("launch", image.ALIAS, "rc-setup-check")
    print(solo.lxc("list", "rc-setup-check", "--format", "csv", "-c", "ns").stdout.strip())
    solo.lxc("delete", "--force", "rc-setup-check")
    _teardown()
    print("ok")
