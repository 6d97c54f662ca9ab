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
from collections.abc import Callable
from pathlib import Path

from reconciler.drivers.text import last_line
from reconciler.errors import ConfigError, DriverError
from reconciler.log import get_logger

from .settings import GitSettings

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
GIT_TIMEOUT = 300.0


class GitError(DriverError):
    """A git command failed (fetch, archive)."""


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
            self._export(commit)
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
        with open(archive, "wb") as fh:
            self._git("archive", "--format=tar", commit, stdout=fh.fileno())
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        archive.unlink()
        os.rename(tmp, target)

    def _swap(self, commit: str) -> None:
        previous = self.current_commit()
        tmp = self.base / f".current-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.join("checkouts", commit), tmp)
        os.replace(tmp, self.link)  # atomic: the watcher sees one rename onto `current`
        if previous:
            (self.base / "previous").write_text(previous + "\n")

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


class GitPoller(threading.Thread):
    """Fetches at once, then every `interval` seconds (with 10 % jitter) until `stop` is set.
    The first fetch (a clone, maybe slow) runs here, not in the agent's start-up: systemd gets
    READY at once and SIGTERM is answered meanwhile."""

    def __init__(self, source: GitSource, stop: threading.Event,
                 on_commit: Callable[[str], None] | None = None) -> None:
        super().__init__(name="git", daemon=True)
        self.source, self.stop_event, self.on_commit = source, stop, on_commit
        self.last_error: str | None = None

    def run(self) -> None:
        first = True
        while True:
            interval = self.source.settings.interval * (0.9 + 0.2 * random.random())  # noqa: S311
            if not first and self.stop_event.wait(interval):
                return
            first = False
            try:
                commit = self.source.sync()
                self.last_error = None
                if commit and self.on_commit is not None:
                    self.on_commit(commit)
            except (GitError, OSError, subprocess.SubprocessError) as exc:
                self.last_error = str(exc)
                self.source.log.warning("git.failed", error=str(exc), url=self.source.settings.url)
