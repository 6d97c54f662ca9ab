"""The git commit a spec directory is checked out at, for a plan's header.

The agent knows the commit it exported. A plan made by the CLI on a git work tree (a pull
request's checkout in CI) names the work tree's HEAD instead, read from `.git` as files: no git
process runs, so nothing in a repository's config (fsmonitor, hooks, aliases) can run either,
and the cost is a few small reads. A `.git` owned by someone other than us or the spec
directory's owner is ignored (a planted /tmp/.git names no commit), as is anything unusual
(reftable, a ref that cannot be resolved): then the header names no commit rather than a
wrong one. Uncommitted edits are not seen; the header says the commit is the work tree's HEAD.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from reconciler.fsio import read_regular

_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF = re.compile(r"^refs/[A-Za-z0-9._/+-]+$")
_SMALL = 4096  # HEAD, a loose ref, a gitdir or commondir file
_PACKED = 64 * 1024 * 1024  # packed-refs of a very large repository


def context_for(paths: Sequence[str]) -> dict[str, str]:
    """What a plan's `context` says of its specs' commit: `commit` and `commit_of`
    ("work tree HEAD"), or nothing when the paths are not in one git work tree."""
    commit = work_tree_commit(paths)
    return {"commit": commit, "commit_of": "work tree HEAD"} if commit else {}


def work_tree_commit(paths: Sequence[str]) -> str | None:
    """HEAD's commit of the git work tree holding every path (None: none, several, or it
    cannot be read)."""
    found = {_head(os.path.abspath(path)) for path in paths}
    return found.pop() if len(found) == 1 and None not in found else None


def _head(path: str) -> str | None:
    gitdir = _find_gitdir(path)
    if gitdir is None:
        return None
    head = _read(os.path.join(gitdir, "HEAD"))
    if head is None:
        return None
    if _SHA.match(head):
        return head
    if not head.startswith("ref: "):
        return None
    return _resolve(gitdir, head[5:].strip())


def _find_gitdir(path: str) -> str | None:
    """The git directory of the work tree holding `path`, looking up as git does and, as git
    does by default, not across a file system boundary."""
    try:
        start = os.stat(path)
    except OSError:
        return None
    owners = {os.geteuid(), start.st_uid}
    here = path if os.path.isdir(path) else os.path.dirname(path)
    while True:
        dotgit = os.path.join(here, ".git")
        try:
            found = os.lstat(dotgit)
        except OSError:
            found = None
        if found is not None:
            if found.st_uid not in owners:
                return None
            return dotgit if os.path.isdir(dotgit) else _linked_gitdir(dotgit, here)
        parent = os.path.dirname(here)
        try:
            if parent == here or os.stat(parent).st_dev != start.st_dev:
                return None
        except OSError:
            return None
        here = parent


def _linked_gitdir(dotgit: str, worktree: str) -> str | None:
    """A `.git` file (`gitdir: PATH`) of a linked work tree or a submodule."""
    text = _read(dotgit)
    if text is None or not text.startswith("gitdir: "):
        return None
    target = os.path.join(worktree, text[8:].strip())
    return target if os.path.isdir(target) else None


def _resolve(gitdir: str, ref: str) -> str | None:
    """A branch's commit: its loose ref, else its line in packed-refs (both kept in the common
    directory of a linked work tree)."""
    if not _REF.match(ref) or ".." in ref:
        return None
    common = _read(os.path.join(gitdir, "commondir"))
    base = os.path.normpath(os.path.join(gitdir, common)) if common else gitdir
    for where in dict.fromkeys((gitdir, base)):
        loose = _read(os.path.join(where, ref))
        if loose is not None:
            return loose if _SHA.match(loose) else None
    packed = _read(os.path.join(base, "packed-refs"), _PACKED)
    for line in (packed or "").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _SHA.match(sha):
            return sha
    return None


def _read(path: str, limit: int = _SMALL) -> str | None:
    try:
        data = read_regular(path, limit)
    except OSError:
        return None
    if len(data) > limit:
        return None
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        return None
