"""GitOps: specs from a git repository, one commit at a time.

Layout under STATE/git/:

    repo.git/              a bare repository; `git fetch` from the configured URL
    checkouts/<commit>/    each commit, exported whole into its own new directory
    current -> checkouts/<commit>     swapped atomically (symlink + rename)

The watcher watches `current/<path>`: a new commit appears as one symlink swap, so it never
sees a mix of two commits; the previous checkout is kept until the next swap so a pass that
is still reading it finishes on one tree. Any URL git accepts works (https, ssh, file, a
local path); git never prompts (GIT_TERMINAL_PROMPT=0).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.drivers.text import lines
from reconciler.errors import ConfigError, DriverError
from reconciler.fsio import write_atomic
from reconciler.log import get_logger
from reconciler.text import printable

from .settings import GitSettings

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
GIT_TIMEOUT = 300.0
MAX_EXPORT_BYTES = 256 * 1024 * 1024  # what one commit's tree may hold, all files together
MAX_EXPORT_ENTRIES = 100_000
MAX_MESSAGE_CHARS = 4000  # of git's stderr kept for the status, /healthz and the log


class GitError(DriverError):
    """A git command failed (fetch, archive)."""


class GitRefused(GitError):
    """A commit whose tree cannot be used as a spec directory (it links outside itself, or is
    too big); it is not checked out, and the last good commit stays applied."""


class GitSource:
    def __init__(self, settings: GitSettings, state_dir: str | Path) -> None:
        if settings.path and (os.path.isabs(settings.path) or ".." in Path(settings.path).parts):
            raise ConfigError(f"git path {settings.path!r} must be relative, inside the repository")
        self.settings = settings
        self.base = Path(state_dir).absolute() / "git"
        self.repo = self.base / "repo.git"
        self.checkouts = self.base / "checkouts"
        self.link = self.base / "current"
        self.log = get_logger(source="git")
        self._lock = threading.Lock()
        self._refused: tuple[str, str] | None = None  # (commit, why)

    @property
    def root(self) -> str:
        """The spec directory the agent watches (through the `current` symlink)."""
        return str(self.link / self.settings.path) if self.settings.path else str(self.link)

    def _git(self, *args: str, stdout: int | None = subprocess.PIPE
             ) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            result = subprocess.run(["git", f"--git-dir={self.repo}", *args], env=env,
                                    stdout=stdout, stderr=subprocess.PIPE, timeout=GIT_TIMEOUT,
                                    check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]}: {exc}") from None
        if result.returncode != 0:
            message = tool_message(result.stderr.decode(errors="replace")) or \
                f"exit status {result.returncode}"
            raise GitError(f"git {args[0]} failed: {message}")
        return result

    def _init(self) -> None:
        if not (self.repo / "HEAD").exists():
            self.base.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", "--bare")  # at --git-dir; a failure says why, as fetch
        try:
            url: str | None = self._git("config", "--get", "remote.origin.url").stdout \
                .decode().strip()
        except GitError:
            url = None
        if url is None:
            self._git("remote", "add", "origin", self.settings.url)
        elif url != self.settings.url:
            self._git("remote", "set-url", "origin", self.settings.url)

    def current_commit(self) -> str | None:
        try:
            target = os.readlink(self.link)
        except OSError:
            return None
        name = os.path.basename(target.rstrip("/"))
        return name if _SHA.match(name) else None

    def commit_of(self, real_root: str | None) -> str | None:
        """The commit a resolved spec directory belongs to (None: not one of ours)."""
        if real_root is None:
            return None
        checkouts = str(self.checkouts.resolve()) + os.sep
        if not real_root.startswith(checkouts):
            return None
        name = real_root[len(checkouts):].split(os.sep, 1)[0]
        return name if _SHA.match(name) else None

    def sync(self) -> str | None:
        """Fetch; when the branch moved, export the new commit and swap `current` to it.
        Returns the new commit, or None when nothing changed."""
        with self._lock:
            self._init()
            ref = f"refs/heads/{self.settings.branch}" if self.settings.branch else "HEAD"
            self._git("fetch", "--quiet", "--no-tags", "origin", ref)
            commit = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}").stdout \
                .decode().strip()
            if not _SHA.match(commit):
                raise GitError(f"git rev-parse gave {commit!r}, not a commit id")
            if commit == self.current_commit():
                return None
            if self._refused is not None and self._refused[0] == commit:
                raise GitRefused(self._refused[1])  # refused before: the same tree again
            try:
                self._export(commit)
            except GitRefused as exc:
                self._refused = (commit, str(exc))
                raise
            self._swap(commit)
            self._prune(keep={commit, *self._previous()})
            self.log.info("git.synced", commit=commit, url=self.settings.url,
                          branch=self.settings.branch or "HEAD")
            return commit

    def _export(self, commit: str) -> None:
        target = self.checkouts / commit
        if target.is_dir():
            return
        self.checkouts.mkdir(parents=True, exist_ok=True)
        tmp = self.checkouts / f".tmp-{commit}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        archive = tmp.with_suffix(".tar")
        try:
            with open(archive, "wb") as fh:
                self._git("archive", "--format=tar", commit, stdout=fh.fileno())
            if archive.stat().st_size > MAX_EXPORT_BYTES + 1024 * 1024:
                raise GitRefused(f"commit {commit[:12]} refused: its tree is larger than "
                                 f"{MAX_EXPORT_BYTES >> 20} MiB")
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                check_tree(members, commit)
                tar.extractall(tmp, members=members, filter="data")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            archive.unlink(missing_ok=True)
        os.rename(tmp, target)

    def _swap(self, commit: str) -> None:
        previous = self.current_commit()
        tmp = self.base / f".current-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.join("checkouts", commit), tmp)
        os.replace(tmp, self.link)  # atomic: the watcher sees one rename onto `current`
        if previous:
            write_atomic(self.base / "previous", previous + "\n")

    def _previous(self) -> set[str]:
        try:
            text = (self.base / "previous").read_text().strip()
        except OSError:
            return set()
        return {text} if _SHA.match(text) else set()

    def _prune(self, keep: set[str]) -> None:
        for entry in self.checkouts.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


def tool_message(stderr: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """All of a tool's message, not only its last line: git often says what went wrong first
    and only "Could not read from remote repository" or "and the repository exists." last.
    Every line escaped (a remote's text may carry terminal escapes), blank ends dropped, and
    the middle of an overlong message left out, so both its first and its last words stay."""
    shown = [printable(line.rstrip()) for line in lines(stderr)]
    while shown and not shown[0]:
        shown.pop(0)
    while shown and not shown[-1]:
        shown.pop()
    text = "\n".join(shown)
    if len(text) <= limit:
        return text
    head, tail = text[:limit // 2], text[-(limit // 2):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters left out ...]\n{tail}"


def check_tree(members: list[tarfile.TarInfo], commit: str) -> None:
    """Refuse a commit's tree that could lead a reader out of it: a symlink with an absolute
    target or one that climbs out of the tree, a hard link, anything but files, directories
    and links; and a tree too large to check out."""
    total = 0
    if len(members) > MAX_EXPORT_ENTRIES:
        raise GitRefused(f"commit {commit[:12]} refused: more than {MAX_EXPORT_ENTRIES} entries")
    for member in members:
        name = member.name
        if member.issym():
            target = member.linkname
            inside = os.path.normpath(os.path.join(os.path.dirname(name), target))
            if os.path.isabs(target) or inside == ".." or inside.startswith("../"):
                raise GitRefused(f"commit {commit[:12]} refused: {name} links outside the "
                                 f"repository (to {target}); specs are read only from inside "
                                 "it")
        elif member.islnk() or not (member.isfile() or member.isdir()):
            raise GitRefused(f"commit {commit[:12]} refused: {name} is not a file, directory "
                             "or symlink")
        total += member.size
        if total > MAX_EXPORT_BYTES:
            raise GitRefused(f"commit {commit[:12]} refused: its tree is larger than "
                             f"{MAX_EXPORT_BYTES >> 20} MiB")


@dataclass(frozen=True)
class GitHealth:
    """How fetching goes, for /healthz, the status file and metrics. The poller replaces it
    whole after each fetch, so a reader in another thread never sees half of one."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None  # git's whole message (see `tool_message`)
    failures: int = 0          # in a row
    refused: str | None = None  # the newest commit refused, and why; cleared by a success

    def failed(self, at: float, error: str, refused: bool) -> GitHealth:
        return replace(self, last_attempt=at, last_error=error, failures=self.failures + 1,
                       refused=error if refused else self.refused)

    def succeeded(self, at: float, done: float) -> GitHealth:
        return GitHealth(last_attempt=at, last_success=done)

    def to_json(self) -> dict[str, Any]:
        return {"last_attempt": self.last_attempt, "last_success": self.last_success,
                "last_error": self.last_error, "failures": self.failures,
                "refused": self.refused}


class GitPoller(threading.Thread):
    """Fetches at once, then every `interval` seconds (with 10 % jitter) until `stop` is set,
    and at once when asked (`fetch_now`). The first fetch (a clone, maybe slow) runs here, not
    in the agent's start-up: systemd gets READY at once and SIGTERM is answered meanwhile. No
    failure ends it: a fetch that fails or a commit refused is reported (`health`, log) and
    the next poll tries again, so the next good commit applies. `kick` after setting `stop`."""

    def __init__(self, source: GitSource, stop: threading.Event,
                 on_commit: Callable[[str], None] | None = None,
                 on_result: Callable[[GitHealth], None] | None = None) -> None:
        super().__init__(name="git", daemon=True)
        self.source, self.stop_event, self.on_commit = source, stop, on_commit
        self.on_result = on_result
        self.health = GitHealth()
        self.started = time.time()  # staleness counts from here until a fetch works
        self._kick = threading.Event()
        self._lock = threading.Lock()
        self._waiting: list[Callable[[], None]] = []

    @property
    def last_error(self) -> str | None:
        return self.health.last_error

    def kick(self) -> None:
        """Cut the wait short: poll now (or notice `stop`)."""
        self._kick.set()

    def fetch_now(self, then: Callable[[], None]) -> None:
        """Fetch at once; call `then` when that fetch is done, whatever its result."""
        with self._lock:
            self._waiting.append(then)
        self._kick.set()

    def run(self) -> None:
        first = True
        while not self.stop_event.is_set():
            if not first:
                interval = self.source.settings.interval * (0.9 + 0.2 * random.random())  # noqa: S311
                self._kick.wait(interval)
                if self.stop_event.is_set():
                    return
            first = False
            self._kick.clear()
            with self._lock:  # those asking before this fetch starts are answered by it
                waiting, self._waiting = self._waiting, []
            self.poll()
            for then in waiting:
                then()

    def poll(self) -> None:
        attempt, before = time.time(), self.health
        try:
            commit = self.source.sync()
        except Exception as exc:  # every failure is reported; none ends the polling
            error = str(exc) or type(exc).__name__
            refused = isinstance(exc, GitRefused)
            self.health = health = before.failed(attempt, error, refused)
            if refused:
                self.source.log.error("git.refused", error=error, url=self.source.settings.url)
            else:
                self.source.log.warning("git.failed", error=error, failures=health.failures,
                                        url=self.source.settings.url)
        else:
            self.health = health = before.succeeded(attempt, time.time())
            if before.failures:
                self.source.log.info("git.recovered", failures=before.failures,
                                     url=self.source.settings.url)
            if commit and self.on_commit is not None:
                self.on_commit(commit)
        if self.on_result is not None:
            self.on_result(health)

    def since_success(self, now: float) -> float:
        """Seconds without a successful fetch (counted from the start before the first)."""
        last = self.health.last_success
        return now - (last if last is not None else self.started)

    def stale(self, now: float) -> bool:
        return self.since_success(now) > self.source.settings.stale_after

    def report(self, now: float) -> dict[str, Any]:
        """`health` with its staleness, for /healthz and the status file."""
        since = self.since_success(now)
        limit = self.source.settings.stale_after
        return {**self.health.to_json(), "since_success": round(since, 1),
                "stale_after": limit, "stale": since > limit}
