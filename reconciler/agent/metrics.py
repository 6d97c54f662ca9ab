"""Prometheus metrics, all named `reconciler_*`, in the agent's own registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from reconciler import __version__

if TYPE_CHECKING:
    from .gitsource import GitHealth

# pending: not applied yet; deferred: written, live at the guest's next boot (restart: defer);
# waiting: a restart waiting for its maintenance window; rolled_back: undone by its health check
OBJECT_STATES = ("in_sync", "failed", "held", "refused", "pending", "deferred", "waiting",
                 "rolled_back")
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                300.0)


class Metrics:
    def __init__(self, git: bool = False) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.passes = Counter("reconciler_passes", "Reconcile passes, by trigger and result",
                              ["trigger", "result"], registry=r)
        self.steps = Counter("reconciler_steps", "Steps run, by step kind and result",
                             ["kind", "result"], registry=r)
        self.failures = Counter("reconciler_object_failures",
                                "Times an object failed in a pass (then backed off)",
                                registry=r)
        self.removals_refused = Counter("reconciler_removal_refused",
                                        "Passes where the removal breaker refused removals",
                                        registry=r)
        self.rescans = Counter("reconciler_rescans", "Full rescans of the spec directories",
                               ["reason"], registry=r)
        self.files_read = Counter("reconciler_files_read", "Spec files read after a change",
                                  registry=r)
        self.pass_duration = Histogram("reconciler_pass_duration_seconds",
                                       "Duration of a pass: load, plan and apply",
                                       buckets=PASS_BUCKETS, registry=r)
        self.held_files = Gauge("reconciler_held_files",
                                "Spec files that fail to load; their objects are held",
                                registry=r)
        self.pending_files = Gauge("reconciler_pending_files",
                                   "Changed files waiting to be complete", registry=r)
        self.objects = Gauge("reconciler_objects", "Desired objects by state", ["state"],
                             registry=r)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "When a pass last succeeded (Unix time)", registry=r)
        self.last_pass = Gauge("reconciler_last_pass_timestamp_seconds",
                               "When the last pass finished (Unix time)", registry=r)
        self.last_pass_ok = Gauge("reconciler_last_pass_success",
                                  "1 when the last pass succeeded", registry=r)
        self.watcher_up = Gauge("reconciler_watcher_up", "1 while the file watcher runs",
                                registry=r)
        self.info = Info("reconciler_build", "Version of the agent", registry=r)
        self.info.info({"version": __version__})
        self.commit = Info("reconciler_spec", "The git commit the specs come from", registry=r)
        self.deferred = PerObject(Gauge(
            "reconciler_object_restart_deferred", "1 for each object whose change is written "
            "and waits for the guest's next boot (restart: defer)", ["object"], registry=r))
        for state in OBJECT_STATES:
            self.objects.labels(state).set(0)
        # only an agent that follows a repository has these: a constant 0 elsewhere would
        # read as "git is down" on every dashboard and alert
        self.git = GitMetrics(r) if git else None

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PerObject:
    """A gauge of 1 per object in a set, the objects that leave it removed."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.shown: set[str] = set()

    def show(self, objects: set[str]) -> None:
        for gone in self.shown - objects:
            self.gauge.remove(gone)
        for name in objects - self.shown:
            self.gauge.labels(name).set(1)
        self.shown = objects


class GitMetrics:
    """How fetching from git goes (`GitPoller.health`)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.up = Gauge("reconciler_git_up", "1 while the last fetch from git worked (and its "
                        "commit was usable); 0 after a failure", registry=r)
        self.failures = Counter("reconciler_git_failures",
                                "Fetches or checkouts from git that failed or were refused",
                                registry=r)
        self.failures_in_row = Gauge("reconciler_git_consecutive_failures",
                                     "Fetches from git that failed in a row (0 after a success)",
                                     registry=r)
        self.last_success = Gauge("reconciler_git_last_success_timestamp_seconds",
                                  "When a fetch from git last worked (Unix time)", registry=r)
        self.last_attempt = Gauge("reconciler_git_last_attempt_timestamp_seconds",
                                  "When the agent last fetched from git (Unix time)",
                                  registry=r)
        self.stale = Gauge("reconciler_git_stale", "1 while no fetch from git worked for "
                           "longer than git.stale_after (then /healthz is degraded)",
                           registry=r)
        self.stale_after = Gauge("reconciler_git_stale_after_seconds",
                                 "The agent's git.stale_after setting", registry=r)

    def update(self, health: GitHealth) -> None:
        """After each fetch."""
        self.up.set(0 if health.last_error else 1)
        if health.last_error:
            self.failures.inc()
        self.failures_in_row.set(health.failures)
        if health.last_success is not None:
            self.last_success.set(health.last_success)
        if health.last_attempt is not None:
            self.last_attempt.set(health.last_attempt)
