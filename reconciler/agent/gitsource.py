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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.drivers.text import last_line
from reconciler.errors import ConfigError, DriverError
from reconciler.fsio import write_atomic
from reconciler.log import get_logger

from .settings import GitSettings

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
GIT_TIMEOUT = 300.0
MAX_EXPORT_BYTES = 256 * 1024 * 1024  # what one commit's tree may hold, all files together
MAX_EXPORT_ENTRIES = 100_000


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
            message = last_line(result.stderr.decode(errors="replace"))
            raise GitError(f"git {args[0]} failed: {message or result.returncode}")
        return result

    def _init(self) -> None:
        if not (self.repo / "HEAD").exists():
            self.base.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
            subprocess.run(["git", "init", "--quiet", "--bare", str(self.repo)], env=env,
                           check=True, capture_output=True, timeout=GIT_TIMEOUT)
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


@dataclass
class GitHealth:
    """How fetching goes, for healthz, the status file and metrics."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0          # in a row
    refused: str | None = None  # the newest commit refused, and why

    def to_json(self) -> dict[str, Any]:
        return {"last_attempt": self.last_attempt, "last_success": self.last_success,
                "last_error": self.last_error, "failures": self.failures,
                "refused": self.refused}


class GitPoller(threading.Thread):
    """Fetches at once, then every `interval` seconds (with 10 % jitter) until `stop` is set.
    The first fetch (a clone, maybe slow) runs here, not in the agent's start-up: systemd gets
    READY at once and SIGTERM is answered meanwhile. No failure ends it: a fetch that fails or
    a commit refused is reported (`health`, log) and the next poll tries again, so the next
    good commit applies."""

    def __init__(self, source: GitSource, stop: threading.Event,
                 on_commit: Callable[[str], None] | None = None,
                 on_result: Callable[[GitHealth], None] | None = None) -> None:
        super().__init__(name="git", daemon=True)
        self.source, self.stop_event, self.on_commit = source, stop, on_commit
        self.on_result = on_result
        self.health = GitHealth()

    @property
    def last_error(self) -> str | None:
        return self.health.last_error

    def run(self) -> None:
        first = True
        while True:
            interval = self.source.settings.interval * (0.9 + 0.2 * random.random())  # noqa: S311
            if not first and self.stop_event.wait(interval):
                return
            first = False
            self.poll()

    def poll(self) -> None:
        health = self.health
        health.last_attempt = time.time()
        try:
            commit = self.source.sync()
        except Exception as exc:  # every failure is reported; none ends the polling
            health.failures += 1
            health.last_error = str(exc) or type(exc).__name__
            if isinstance(exc, GitRefused):
                health.refused = str(exc)
                self.source.log.error("git.refused", error=str(exc),
                                      url=self.source.settings.url)
            else:
                self.source.log.warning("git.failed", error=health.last_error,
                                        failures=health.failures, url=self.source.settings.url)
        else:
            health.failures, health.last_error = 0, None
            health.last_success = time.time()
            if commit and self.on_commit is not None:
                self.on_commit(commit)
        if self.on_result is not None:
            self.on_result(health)
