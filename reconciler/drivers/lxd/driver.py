"""`lxd`: containers and managed networks on an LXD server or cluster, through its REST API.

observe: one listing of every instance with its config, devices, status and location
(`GET /1.0/instances?recursion=1`), one of the networks and, in a cluster, one of the
members, side by side; `prepare_observe` starts them while the engine loads the spec files.
An instance whose listing is unchanged since the last observe is not read again.

events: LXD's lifecycle events (`/1.0/events`), so the agent re-checks an instance or network
changed behind its back at once instead of at the next resync.

execute: provision creates the instance from its image with the whole config and our
stamp (so a crash after it leaves an instance we own); define and update PUT the instance's
own config and devices, continuing what it has (`compose`), with the ETag read just before
(a change made meanwhile is retried, never overwritten); a changed target moves the stopped
instance within the cluster (its volume is copied to the new member: data kept); start and
stop go through the instance's state (stop: clean shutdown, then force after
`stop_timeout`); undefine keeps the instance and its data but marks it undefined (observe no
longer lists it, it never autostarts, and a spec of its name takes it back); purge deletes it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.drivers.base import (
    OWNER,
    Capabilities,
    Driver,
    Handler,
    ImportResult,
    LiveObject,
    NotConverted,
    Stamp,
    Step,
    StepKind,
)
from reconciler.drivers.lxd import compose, images, networks
from reconciler.drivers.lxd import events as lxd_events
from reconciler.drivers.lxd import stamp as stamps
from reconciler.drivers.lxd.client import Client, NotFound, Remote, name_of, path_of
from reconciler.drivers.lxd.parse import Context, Reading, read_instance
from reconciler.drivers.lxd.placement import EVACUATED_FROM, Cluster
from reconciler.drivers.lxd.values import power
from reconciler.errors import ConfigError, DriverError, PermanentError, TransientError
from reconciler.log import get_logger
from reconciler.model.fields import POLICY_FIELDS, Ref, root_of
from reconciler.rules import Refusal, Technology, UpdateClass
from reconciler.rules.lxd import LXD, LXD_NETWORK, LXD_RAW

DEFAULT_SOCKETS = ("/var/lib/lxd/unix.socket", "/var/snap/lxd/common/lxd/unix.socket")
_OPTIONS = ("remote", "client_cert", "client_key", "server_cert", "project", "profiles",
            "storage_pool", "image_remotes", "raw_lxc", "networks", "match", "stop_timeout",
            "operation_timeout")


def default_remote() -> str:
    """$LXD_DIR's socket as the `lxc` client finds it, else Debian's, else the snap's."""
    lxd_dir = os.environ.get("LXD_DIR")
    if lxd_dir:
        return f"unix://{os.path.join(lxd_dir, 'unix.socket')}"
    found = next((p for p in DEFAULT_SOCKETS if os.path.exists(p)), DEFAULT_SOCKETS[0])
    return f"unix://{found}"


@dataclass(frozen=True)
class _Seen:
    """One instance as the last observe listed it."""

    item: dict[str, Any]
    reading: Reading
    live: LiveObject

    @property
    def location(self) -> str:
        return str(self.item.get("location", ""))

    @property
    def running(self) -> bool:
        return power(str(self.item.get("status", ""))) == "running"


class LxdDriver(Driver):
    name = "lxd"
    capabilities = Capabilities(events=True, imports=True, prepares_observe=True)
    types = frozenset({"lxc", "network"})

    def __init__(self, state_dir: str | Path, remote: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None,
                 server_cert: str | None = None, project: str = "default",
                 profiles: Iterable[str] = ("default",), storage_pool: str | None = None,
                 image_remotes: Mapping[str, Any] | None = None, raw_lxc: bool = False,
                 networks: bool = True, match: str | None = None, stop_timeout: float = 30.0,
                 operation_timeout: float = 600.0, **unknown: Any) -> None:
        """Options (agent config `drivers: {lxd: {...}}`): `remote` (unix:///PATH/unix.socket,
        or https://HOST:8443 with `client_cert`, `client_key` and the pinned `server_cert`),
        `project`, `profiles` new instances get (default: [default]), `storage_pool` for
        their root disk when no profile gives one, `image_remotes` (image servers a spec may
        name as REMOTE:ALIAS), `raw_lxc` (let the driver write raw.lxc for init and
        capabilities), `networks` (false: LXD networks are made elsewhere; observe skips
        their listing, for which LXD scans every instance), `match` (a glob: only these
        names are observed and changed),
        `stop_timeout`, `operation_timeout` (seconds)."""
        if unknown:
            raise ConfigError(f"lxd: unknown driver options {sorted(unknown)}; valid: "
                              f"{', '.join(_OPTIONS)}")
        if isinstance(profiles, str) or not all(isinstance(p, str) for p in profiles):
            raise ConfigError("lxd: profiles is a list of LXD profile names")
        try:
            self.stop_timeout = float(stop_timeout)
            self.operation_timeout = float(operation_timeout)
        except (TypeError, ValueError):
            raise ConfigError("lxd: stop_timeout and operation_timeout are seconds") from None
        self.remote = Remote(remote or default_remote(), client_cert, client_key, server_cert)
        self.client = Client(self.remote, project=project)
        self.profiles = tuple(profiles)
        self.pool = storage_pool
        self.remotes = {name: images.ImageRemote.parse(name, raw)
                        for name, raw in (image_remotes or {}).items()}
        self.match = match
        self.networks = bool(networks)
        self._tech = LXD_RAW if raw_lxc else LXD
        self._log = get_logger(driver="lxd")
        self._clustered: bool | None = None
        self._cluster: Cluster | None = None
        self._seen: dict[str, _Seen] | None = None      # None until the first observe
        self._kept: dict[str, dict[str, Any]] = {}      # undefined instances we keep
        self._cache: dict[str, tuple[str, _Seen]] = {}
        self._images: images.Images | None = None
        self._profiles: dict[str, dict[str, Any]] = {}
        self._reported: set[tuple[str, str]] = set()
        self._networks_seen: tuple[str, ...] = ()       # the networks the last observe saw
        self._events_lost = False  # an event stream ended by an error: the next catches up
        self._pool = ThreadPoolExecutor(3, thread_name_prefix="lxd-list")
        self._listing: dict[str, Future[Any]] | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ================================================================= reading
    def prepare_observe(self) -> None:
        if self._listing is None:
            self._listing = self._start_listing()

    def _start_listing(self) -> dict[str, Future[Any]]:
        """The listings observe reads, asked side by side: LXD answers them on its own
        threads while the engine loads the spec files here."""
        def networks() -> Any:
            return self.client.get("/1.0/networks", recursion="1") if self.networks else []

        return {"instances": self._pool.submit(self.client.get, "/1.0/instances",
                                               recursion="1"),
                "members": self._pool.submit(self._members),
                "networks": self._pool.submit(networks)}

    def _members(self) -> list[dict[str, Any]] | None:
        """The cluster's members (None: the server is not clustered, asked once)."""
        if self._clustered is None:
            self._clustered = bool((self.client.get("/1.0/cluster") or {}).get("enabled"))
        if not self._clustered:
            return None
        return list(self.client.get("/1.0/cluster/members", recursion="1") or ())

    def observe(self) -> list[LiveObject]:
        listing, self._listing = self._listing or self._start_listing(), None
        try:
            found = {key: listing[key].result() for key in ("instances", "members")}
        except BaseException:
            listing["networks"].cancel()
            raise
        members = found["members"]
        self._cluster = Cluster.from_listing(members) if members is not None else None
        self._images = None
        self._profiles = {}
        ctx = Context(self._cluster, None, self.profiles)
        where = json.dumps(sorted((m.name, m.status, m.groups)
                                  for m in (self._cluster.members.values()
                                            if self._cluster else ())))
        seen: dict[str, _Seen] = {}
        kept: dict[str, dict[str, Any]] = {}
        cache: dict[str, tuple[str, _Seen]] = {}
        out: list[LiveObject] = []
        for item in found["instances"] or ():
            name = str(item.get("name", ""))
            if not self._wanted(name) or item.get("type", "container") != "container":
                continue
            if self._kept_by_us(item):
                kept[name] = item
                continue
            hit = self._cache.get(name)
            entry = hit[1] if hit is not None and hit[0] == where and \
                hit[1].item == item else self._instance(item, read_instance(item, ctx))
            cache[name] = (where, entry)
            seen[name] = entry
            out.append(entry.live)
        self._seen, self._kept, self._cache = seen, kept, cache
        nets: list[str] = []
        for net in listing["networks"].result() or ():
            if net.get("managed") and net.get("type") == "bridge" and \
                    self._wanted(str(net.get("name", ""))):
                live = self._network(net)
                if live is not None:
                    out.append(live)
                    nets.append(live.ref.name)
        self._networks_seen = tuple(nets)
        return out

    @staticmethod
    def _kept_by_us(item: Mapping[str, Any]) -> bool:
        """An instance we undefined (data kept): not listed, a spec of its name takes it
        back."""
        config = item.get("config") or {}
        if not stamps.undefined(config):
            return False  # most instances: their stamp is read once, by read_instance
        stamp = stamps.read(config)
        return stamp is not None and stamp.owner == OWNER

    def _instance(self, item: dict[str, Any], reading: Reading) -> _Seen:
        name = str(item["name"])
        state: Literal["running", "stopped"] = \
            "running" if power(str(item.get("status", ""))) == "running" else "stopped"
        extra: dict[str, Any] = {"location": item.get("location"),
                                 "status": item.get("status"),
                                 "last_used_at": item.get("last_used_at")}
        if reading.error:
            extra["error"] = reading.error
        if reading.moved_from:
            extra["moved_by_cluster"] = {"from": reading.moved_from, "to": item.get("location")}
            if (name, reading.moved_from) not in self._reported:
                self._reported.add((name, reading.moved_from))
                self._log.info("lxd.instance.moved_by_cluster", instance=name,
                               origin=reading.moved_from, location=item.get("location"))
        live = LiveObject(ref=Ref("Domain", name), type="lxc", state=state,
                          spec=reading.spec or {}, stamp=reading.stamp, extra=extra)
        return _Seen(item, reading, live)

    def _network(self, net: dict[str, Any]) -> LiveObject | None:
        reading = networks.read_network(net)
        if reading.pending:
            return None  # half made: the next create finishes it
        state: Literal["running", "stopped"] = \
            "running" if net.get("status") == "Created" else "stopped"
        extra = {"locations": net.get("locations") or []}
        if reading.error:
            extra["error"] = reading.error
        return LiveObject(ref=Ref("Network", str(net["name"])), type="network", state=state,
                          spec=reading.spec or {}, stamp=reading.stamp, extra=extra)

    def boot_id(self, live: LiveObject) -> str | None:
        """Where and when the running instance last started: LXD stamps `last_used_at` at
        each start (an exec or a config change leaves it), and a move starts it elsewhere."""
        started = live.extra.get("last_used_at")
        if live.state != "running" or not started:
            return None
        return f"{live.extra.get('location')}@{started}"

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """LXD's exec API with the command as a list (no shell) and none of the agent's
        environment; waited for, its exit status. A command still running at the timeout is
        left to finish inside the guest (LXD cancels an exec only over its websocket)."""
        if not argv:
            raise PermanentError(f"{ref}: no command to run")
        body = {"command": list(argv), "environment": {}, "interactive": False,
                "wait-for-websocket": False, "record-output": False}
        done = self.client.call("POST", path_of("instances", ref.name, "exec"), body,
                                timeout=timeout)
        status = (done or {}).get("return") if isinstance(done, dict) else None
        if not isinstance(status, int):
            raise PermanentError(f"{ref}: LXD's exec gave no exit status ({done!r})")
        return status

    def _wanted(self, name: str) -> bool:
        return self.match is None or fnmatch.fnmatchcase(name, self.match)

    # ================================================================= rules
    def technology(self, kind: str, dtype: str) -> Technology:
        return LXD_NETWORK if kind == "Network" else self._tech

    def update_class(self, ref: Ref, type: str, field: str, old: Any = None,
                     new: Any = None) -> UpdateClass:
        """A target dropped from the spec, or one the instance already satisfies, moves
        nothing: only the stamp changes."""
        if ref.kind == "Domain" and field == "target":
            seen = (self._seen or {}).get(ref.name)
            dropped = old is not None and new is None
            if dropped or (new is not None and seen is not None and self._cluster is not None
                           and self._placed(seen.item, str(new))):
                return "live"
        return super().update_class(ref, type, field, old, new)

    def check(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        """The technology's refusals and, once the driver has seen the server, what it
        cannot do there: a target outside the cluster, a running instance to move without
        allow_move, an image the server does not have."""
        out = super().check(kind, dtype, spec)
        if kind == "Network" and not self.networks:
            out.append(Refusal("", "this lxd driver does not manage networks (its networks "
                               "option is off)", allow="drivers.lxd.networks: true"))
        if kind != "Domain" or self._seen is None:
            return out
        name = str(spec.get("name", ""))
        seen = self._seen.get(name)
        target = spec.get("target")
        if target:
            out += self._placement_refusals(str(target), spec, seen)
        root = root_of(spec.get("filesystems"))
        if seen is None and name not in self._kept and root is not None and \
                root.get("type") == "template":
            why = images.refusal(root, self._server_images(), self.remotes)
            if why:
                index = list(spec.get("filesystems", ())).index(root)
                out.append(Refusal(f"filesystems.{index}.name", why))
        return out

    def _placement_refusals(self, target: str, spec: dict[str, Any],
                            seen: _Seen | None) -> list[Refusal]:
        cluster = self._cluster
        if cluster is None:
            return [Refusal("target", f"the LXD server at {self.remote.url} is not a "
                            "cluster; leave target out")]
        if seen is not None and self._placed(seen.item, target):
            return []
        why = cluster.refusal(target)
        if why:
            return [Refusal("target", why)]
        if seen is not None and seen.running and spec.get("state", "running") == "running" \
                and not spec.get("allow_move"):
            return [Refusal("target", f"moving {spec.get('name')} from {seen.location} to "
                            f"{target} stops it: LXD cannot move a running container", "replace",
                            "allow_move: true")]
        return []

    def _server_images(self) -> images.Images:
        if self._images is None:
            self._images = images.Images.from_listing(
                self.client.get("/1.0/images", recursion="1") or ())
        return self._images

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        if live.ref.kind != "Domain":
            return ()
        seen = (self._seen or {}).get(live.ref.name)
        devices = (seen.item.get("expanded_devices") or {}) if seen else {}
        pool = next((d.get("pool") for d in devices.values() if isinstance(d, dict) and
                     d.get("type") == "disk" and d.get("path") == "/"), None) or "?"
        return (f"LXD storage pool {pool}: container volume {live.ref.name} and its "
                "snapshots",)

    # ================================================================= writing
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        domain: dict[StepKind, Callable[[Step], None]] = {
            "provision": self._provision, "define": self._define, "update": self._update,
            "start": self._start, "stop": self._stop, "undefine": self._undefine,
            "purge": self._purge}
        network: dict[StepKind, Callable[[Step], None]] = {
            "define": self._network_define, "update": self._network_define,
            "start": self._network_start, "stop": self._network_stop,
            "undefine": self._network_delete, "purge": self._network_delete}
        out = {("Domain", kind): self._one_at_a_time(fn) for kind, fn in domain.items()}
        out.update({("Network", kind): self._one_at_a_time(fn) for kind, fn in network.items()})
        return out

    def _one_at_a_time(self, run: Callable[[Step], None]) -> Handler:
        """Steps on one object never overlap (the agent and a retry may race)."""
        def handler(step: Step) -> None:
            if not self._wanted(step.ref.name):
                raise PermanentError(f"{step.ref} is outside this driver's scope (match: "
                                     f"{self.match})")
            with self._lock(str(step.ref)):
                run(step)
        return handler

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    # -- instances
    def _read(self, name: str) -> tuple[dict[str, Any], str | None] | None:
        """The instance now, with its ETag (None if there is none)."""
        try:
            answer = self.client.request("GET", path_of("instances", name))
        except NotFound:
            return None
        return answer.metadata, answer.etag

    def _owned(self, ref: Ref, item: Mapping[str, Any]) -> Stamp:
        stamp = stamps.read(item.get("config") or {})
        if stamp is None or stamp.owner != OWNER:
            raise PermanentError(f"{ref} exists on the LXD server and is not managed by "
                                 "reconciler; leaving it alone")
        return stamp

    def _profile_parts(self, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The devices and config the profiles give, later profiles over earlier ones."""
        devices: dict[str, Any] = {}
        config: dict[str, Any] = {}
        for name in names:
            profile = self._profiles.get(name)
            if profile is None:
                profile = self.client.get(path_of("profiles", name)) or {}
                self._profiles[name] = profile
            devices.update(profile.get("devices") or {})
            config.update(profile.get("config") or {})
        return devices, config

    def _provision(self, step: Step) -> None:
        spec = _spec(step)
        name = step.ref.name
        found = self._read(name)
        if found is not None:
            item = found[0]
            self._owned(step.ref, item)
            if stamps.undefined(item.get("config") or {}):
                self._revive(step, item, found[1])
            return  # made by an earlier provision that stopped before its define
        root = root_of(spec.get("filesystems"))
        if root is None or root.get("type") != "template":
            raise PermanentError(f"{step.ref}: an LXD instance needs an image root")
        why = images.refusal(root, None, self.remotes)
        if why:
            raise PermanentError(f"{step.ref}: {why}")
        profile_devices, profile_config = self._profile_parts(self.profiles)
        existing = compose.Existing.empty(profile_devices, profile_config)
        fields = compose.managed(spec, None)
        body: dict[str, Any] = {
            "name": name, "type": "container", "source": images.source(root, self.remotes),
            "profiles": list(self.profiles),
            "config": compose.instance_config(spec, fields, existing, step.stamp()),
            "devices": compose.instance_devices(spec, fields, existing, self.pool)}
        if spec.get("description"):
            body["description"] = spec["description"]
        query = {"target": self._destination(str(spec["target"]))} if spec.get("target") \
            else None
        self.client.call("POST", "/1.0/instances", body, query=query,
                         timeout=self.operation_timeout)

    def _destination(self, target: str) -> str:
        """Where to put an instance for `target`: a member, or a member of the group
        chosen as LXD's scheduler would."""
        cluster = self._cluster or Cluster.from_listing(
            self.client.get("/1.0/cluster/members", recursion="1") or ())
        load: dict[str, int] = {}
        for seen in (self._seen or {}).values():
            load[seen.location] = load.get(seen.location, 0) + 1
        return cluster.pick(target, load)

    def _revive(self, step: Step, item: dict[str, Any], etag: str | None) -> None:
        """An instance undefined earlier, data kept: the same instance under the new spec."""
        self._write(step, item, etag)

    def _define(self, step: Step) -> None:
        found = self._read(step.ref.name)
        if found is None:
            raise PermanentError(f"{step.ref} does not exist on the LXD server (not "
                                 "provisioned)")
        self._owned(step.ref, found[0])
        self._write(step, *found)

    def _write(self, step: Step, item: dict[str, Any], etag: str | None) -> None:
        """PUT the instance's own config and devices for the step's spec, when they differ
        from what it has; then what LXD keeps no key for (DNS, in the root)."""
        spec = _spec(step)
        last = stamps.read(item.get("config") or {})
        local_config = dict(item.get("config") or {})
        profile_devices, profile_config = self._profile_parts(item.get("profiles") or ())
        existing = compose.Existing(local_config, item.get("devices") or {}, profile_devices,
                                    profile_config)
        fields = compose.managed(spec, last.spec if last else None)
        config = compose.instance_config(spec, fields, existing, step.stamp())
        devices = compose.instance_devices(spec, fields, existing, self.pool)
        description = spec.get("description", item.get("description") or "")
        if config != local_config or devices != (item.get("devices") or {}) or \
                description != (item.get("description") or ""):
            body = {"architecture": item.get("architecture"), "config": config,
                    "devices": devices, "profiles": item.get("profiles") or [],
                    "ephemeral": bool(item.get("ephemeral")),
                    "stateful": bool(item.get("stateful")), "description": description}
            self.client.call("PUT", path_of("instances", step.ref.name), body, etag=etag,
                             timeout=self.operation_timeout)
        if spec.get("dns"):
            self.client.push_file(step.ref.name, "/etc/resolv.conf",
                                  _resolv_conf(spec["dns"]).encode())

    def _update(self, step: Step) -> None:
        """A changed target first (the instance is stopped: the plan stopped it, or it was),
        then the config."""
        found = self._read(step.ref.name)
        if found is None:
            raise PermanentError(f"{step.ref} does not exist on the LXD server")
        item, etag = found
        self._owned(step.ref, item)
        target = _spec(step).get("target")
        if target and not self._placed(item, str(target)):
            if power(str(item.get("status", ""))) == "running":
                raise PermanentError(f"{step.ref} runs on {item.get('location')}; LXD moves "
                                     "only a stopped container (plan again)")
            member = self._destination(str(target))
            self._log.info("lxd.instance.moving", instance=step.ref.name,
                           origin=item.get("location"), destination=member)
            self.client.call("POST", path_of("instances", step.ref.name),
                             {"name": step.ref.name, "migration": True},
                             query={"target": member}, timeout=self.operation_timeout)
            found = self._read(step.ref.name)
            if found is None:
                raise TransientError(f"{step.ref} is not listed after its move; observe again")
            item, etag = found
        self._write(step, item, etag)

    def _placed(self, item: Mapping[str, Any], target: str) -> bool:
        """Whether the instance is where `target` says: there, or moved away by an
        evacuation from there (the cluster brings it back on restore)."""
        cluster = self._cluster
        if cluster is None:
            return True
        origin = (item.get("config") or {}).get(EVACUATED_FROM)
        return cluster.satisfies(str(item.get("location", "")), target) or bool(
            origin and cluster.satisfies(str(origin), target))

    def _state(self, name: str, action: str, **extra: Any) -> None:
        self.client.call("PUT", path_of("instances", name, "state"),
                         {"action": action, **extra}, timeout=self.operation_timeout)

    def _start(self, step: Step) -> None:
        try:
            self._state(step.ref.name, "start")
        except PermanentError as exc:
            if "already running" not in str(exc):
                raise

    def _stop(self, step: Step) -> None:
        try:
            self._state(step.ref.name, "stop", timeout=int(self.stop_timeout), force=False)
        except NotFound:
            return
        except DriverError as exc:
            if "already stopped" in str(exc) or "not running" in str(exc):
                return
            self._log.warning("lxd.instance.stop_forced", instance=step.ref.name,
                              reason=str(exc))
            with contextlib.suppress(PermanentError):
                self._state(step.ref.name, "stop", force=True)

    def _undefine(self, step: Step) -> None:
        """Kept with its data: marked undefined and kept from autostarting."""
        found = self._read(step.ref.name)
        if found is None:
            return
        item, etag = found
        stamp = self._owned(step.ref, item)
        if power(str(item.get("status", ""))) == "running":
            raise PermanentError(f"{step.ref} is running; stop it first")
        config = dict(item.get("config") or {})
        stamps.undefine(config)
        devices = item.get("devices") or {}
        if stamp.spec.get("interfaces"):  # its networks may go; a spec taking it back re-adds
            devices = compose.without_nics(devices)
        body = {"architecture": item.get("architecture"), "config": config,
                "devices": devices, "profiles": item.get("profiles") or [],
                "ephemeral": bool(item.get("ephemeral")), "stateful": bool(item.get("stateful")),
                "description": item.get("description") or ""}
        self.client.call("PUT", path_of("instances", step.ref.name), body, etag=etag,
                         timeout=self.operation_timeout)

    def _purge(self, step: Step) -> None:
        found = self._read(step.ref.name)
        if found is None:
            return
        self._owned(step.ref, found[0])
        if power(str(found[0].get("status", ""))) == "running":
            raise PermanentError(f"{step.ref} is running; stop it first")
        self.client.call("DELETE", path_of("instances", step.ref.name),
                         timeout=self.operation_timeout)

    # -- networks
    def _network_define(self, step: Step) -> None:
        spec = _spec(step)
        name = step.ref.name
        try:
            answer = self.client.request("GET", path_of("networks", name))
            current, etag = answer.metadata, answer.etag
        except NotFound:
            current, etag = None, None
        if current is not None and current.get("status") != "Pending":
            last = stamps.read(current.get("config") or {})
            if last is None or last.owner != OWNER:
                raise PermanentError(f"{step.ref} exists on the LXD server and is not "
                                     "managed by reconciler; leaving it alone")
            config = networks.network_config(spec, compose.managed(spec, last.spec),
                                             current.get("config") or {}, step.stamp())
            description = spec.get("description", current.get("description") or "")
            if config != current.get("config") or description != current.get("description"):
                self.client.call("PUT", path_of("networks", name),
                                 {"config": config, "description": description}, etag=etag)
            return
        fields = compose.managed(spec, None) | {"ips", "forward"}
        body = {"name": name, "type": "bridge", "description": spec.get("description", ""),
                "config": networks.network_config(spec, fields, {}, step.stamp())}
        members = sorted(self._cluster.members) if self._cluster is not None else []
        networks.create(self.client, name, body, members)

    def _network_start(self, step: Step) -> None:
        return None  # LXD brings a managed network up itself, on every member

    def _network_stop(self, step: Step) -> None:
        return None  # and has no way to take one down short of deleting it

    def _network_delete(self, step: Step) -> None:
        try:
            current = self.client.get(path_of("networks", step.ref.name))
        except NotFound:
            return
        last = stamps.read((current or {}).get("config") or {})
        if last is None or last.owner != OWNER:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        self.client.call("DELETE", path_of("networks", step.ref.name))

    # ================================================================= events
    def events(self, stop: threading.Event) -> Iterator[Ref]:
        """Refs of instances and networks as LXD's lifecycle events name them (see
        `events`). After a stream was lost, every object listed now or seen by the last
        observe (one deleted meanwhile included) is yielded too. In a project without
        networks of its own, LXD reports network changes under `default`, which this stream
        does not hear: those are seen at the next resync."""
        def current() -> list[Ref]:
            refs = {Ref("Domain", name_of(url)) for url in self.client.get("/1.0/instances")
                    or ()}
            refs.update(Ref("Domain", name) for name in (*(self._seen or {}), *self._kept))
            if self.networks:
                refs.update(Ref("Network", name_of(url))
                            for url in self.client.get("/1.0/networks") or ())
                refs.update(Ref("Network", name) for name in self._networks_seen)
            return sorted(refs, key=lambda ref: (ref.kind, ref.name))

        lost, self._events_lost = self._events_lost, True
        yield from lxd_events.watch(self.client, stop, wanted=self._wanted, current=current,
                                    catch_up=lost)
        self._events_lost = False  # stopped as asked: nothing was missed

    # ================================================================= import
    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        """Specs for the instances and managed bridges the server has, for `reconciler
        import`. Like `terraform import`, importing adopts: our stamp holding exactly the
        spec returned goes into each one's config (nothing else of it changes), so the next
        plan over the written files is empty. In a cluster, an instance is pinned where it
        runs (`target`). Objects stamped by another owner, virtual machines and what the
        model cannot express are skipped with the reason; config keys and devices a spec
        leaves out are reported (`not_converted`)."""
        wanted = set(names) if names else None
        found = ImportResult([])
        self.observe()
        ctx = Context(self._cluster, self._server_images(), self.profiles)
        listing = self.client.get("/1.0/instances", recursion="1") or []
        for item in listing:
            name = str(item.get("name", ""))
            if (wanted is not None and name not in wanted) or not self._wanted(name):
                continue
            ref = Ref("Domain", name)
            if item.get("type") != "container":
                found.skipped.append((str(ref), "a virtual machine; the lxd driver runs "
                                      "containers"))
                continue
            if self._kept_by_us(item):
                continue
            reading = read_instance(item, ctx, adopting=True)
            self._import_one(ref, item, reading.spec, reading.stamp, reading.error,
                             reading.left_out, found, adopt, out, format)
        for net in self.client.get("/1.0/networks", recursion="1") or []:
            name = str(net.get("name", ""))
            if not net.get("managed") or net.get("type") != "bridge" or \
                    (wanted is not None and name not in wanted) or not self._wanted(name):
                continue
            net_reading = networks.read_network(net)
            self._import_one(Ref("Network", name), net, net_reading.spec, net_reading.stamp,
                             net_reading.error, (), found, adopt, out, format)
        return found

    def _import_one(self, ref: Ref, item: dict[str, Any], spec: dict[str, Any] | None,
                    stamp: Stamp | None, error: str | None,
                    left_out: Iterable[tuple[str, str, str]], found: ImportResult,
                    adopt: bool, out: str | None, format: str) -> None:
        if stamp is not None and stamp.owner != OWNER:
            found.skipped.append((str(ref), f"owned by {stamp.owner!r}"))
            return
        if spec is None:
            found.skipped.append((str(ref), error or "unreadable"))
            return
        spec = dict(spec)
        if stamp is not None and stamp.owner == OWNER:
            spec.update({k: v for k, v in stamp.spec.items() if k in POLICY_FIELDS})
        where = f"lxd:{ref.kind.lower()}s/{ref.name}"
        found.not_converted.extend(NotConverted(where, 0, key, value, why)
                                   for key, value, why in left_out)
        if adopt and stamp is None:
            source = os.path.abspath(os.path.join(out, f"{ref.name}.{format}")) if out \
                else None
            self._adopt(ref, Stamp(OWNER, source, spec))
        found.specs.append({"kind": ref.kind, **spec})

    def _adopt(self, ref: Ref, stamp: Stamp) -> None:
        """Our stamp into the object's config; nothing else of it changes."""
        kind = "instances" if ref.kind == "Domain" else "networks"
        answer = self.client.request("GET", path_of(kind, ref.name))
        current = answer.metadata or {}
        config = dict(current.get("config") or {})
        stamps.write(config, stamp)
        body: dict[str, Any] = {"config": config, "description": current.get("description", "")}
        if ref.kind == "Domain":
            body.update(architecture=current.get("architecture"),
                        devices=current.get("devices") or {},
                        profiles=current.get("profiles") or [],
                        ephemeral=bool(current.get("ephemeral")),
                        stateful=bool(current.get("stateful")))
        self.client.call("PUT", path_of(kind, ref.name), body, etag=answer.etag,
                         timeout=self.operation_timeout)

    def close(self) -> None:
        listing, self._listing = self._listing, None
        for future in (listing or {}).values():
            with contextlib.suppress(Exception):
                future.result()
        self._pool.shutdown()
        self.client.close()


def _spec(step: Step) -> dict[str, Any]:
    if step.spec is None:
        raise PermanentError(f"{step.id}: step has no spec")
    spec = dict(step.spec)
    spec.pop("kind", None)
    return spec


def _resolv_conf(dns: Mapping[str, Any]) -> str:
    lines = [f"nameserver {ns}" for ns in dns.get("nameservers", ())]
    if dns.get("search"):
        lines.append("search " + " ".join(dns["search"]))
    return "# written by reconciler from the spec's dns\n" + "\n".join(lines) + "\n"
