"""`rlimits/` (per context, vlimit --dir) and `ulimits/` (per process, exec-ulimit).

native-formats.md §2.3: a plain `<res>` rlimits file sets min, soft and hard; `.min`, `.soft`,
`.hard` then override one each. ulimits have no `.min`, clamp a soft limit above the hard one,
and give every resource without a file an unlimited hard limit (nofile: 1048576). Both use the
limit syntax of numbers.limit_value and exit 255 on a bad value. Unlimited is stored as "inf".
"""

from __future__ import annotations

import resource
from pathlib import Path

from . import numbers

RLIMITS = ("cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as",
           "locks", "msgqueue", "nsock", "openfd", "anon", "shmem", "semary", "nsems", "dentry")
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "nofile", "nproc", "rss", "stack")
NOFILE_CEILING = 1024 * 1024

Limit = int | str


class LimitError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.rc = 255


def _read(path: Path, shown: str) -> Limit | None:
    if not path.is_file():
        return None
    value = numbers.limit_value(path.read_bytes())
    if value is None:
        raise LimitError(f"Invalid limit in '{shown}'")
    return value


def read_rlimits(directory: Path) -> dict[str, dict[str, Limit]]:
    """vlimit --dir DIR --missingok: {resource: {"min"|"soft"|"hard": value}} for what is set."""
    result: dict[str, dict[str, Limit]] = {}
    for res in RLIMITS:
        entry: dict[str, Limit] = {}
        base = _read(directory / res, str(directory / res))
        if base is not None:
            entry = {"min": base, "soft": base, "hard": base}
        for suffix in ("min", "soft", "hard"):
            path = directory / f"{res}.{suffix}"
            value = _read(path, str(path))
            if value is not None:
                entry[suffix] = value
        if entry:
            result[res] = entry
    return result


LINUX_RLIMIT_CODES = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5,
                      "nproc": 6, "nofile": 7, "memlock": 8, "locks": 10}


def _ulimit_code(res: str) -> int:
    # Python's resource module lacks RLIMIT_LOCKS; the Linux numbers are stable
    return int(getattr(resource, f"RLIMIT_{res.upper()}", LINUX_RLIMIT_CODES[res]))


def _as_limit(value: int) -> Limit:
    return numbers.INF if value == resource.RLIM_INFINITY else value


def _above(soft: Limit, hard: Limit) -> bool:
    if hard == numbers.INF:
        return False
    return soft == numbers.INF or int(soft) > int(hard)


def read_ulimits(directory: Path) -> dict[str, dict[str, Limit]]:
    """exec-ulimit DIR: {resource: {"soft", "hard"}} for all ten resources it handles.

    A resource starts from the simulator's own limits, as exec-ulimit starts from its own.
    Errors name the resource only (not the file), as exec-ulimit does.
    """
    result: dict[str, dict[str, Limit]] = {}
    for res in ULIMITS:
        soft_now, hard_now = resource.getrlimit(_ulimit_code(res))
        soft, hard = _as_limit(soft_now), _as_limit(hard_now)
        modified = False
        plain = _read(directory / res, res)
        if plain is not None:
            soft, hard, modified = plain, plain, True
        hard_file = _read(directory / f"{res}.hard", res)
        if hard_file is not None:
            hard, modified = hard_file, True
        soft_file = _read(directory / f"{res}.soft", res)
        if soft_file is not None:
            soft, modified = soft_file, True
        if modified and _above(soft, hard):
            soft = hard
        if not modified:
            hard = NOFILE_CEILING if res == "nofile" else numbers.INF
        result[res] = {"soft": soft, "hard": hard}
    return result
