"""Our stamp on an LXD instance or network: `user.*` config keys, which LXD keeps with the
object (cluster-wide, in its database) and never interprets.

    user.reconciler.owner      "reconciler"
    user.reconciler.source     the spec file the object came from
    user.reconciler.spec       the last-applied canonical spec, as compact JSON
    user.reconciler.undefined  set on an instance `undefine` kept (data kept, not listed)

Only the object's own config is read, never its expanded config: a profile carrying these
keys would otherwise make every instance using it look like ours.

A guest can read its own `user.*` keys through /dev/lxd (LXD's guest API): the stamp holds
nothing the instance's own config does not already show it, except the spec file's path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.drivers.base import Stamp

PREFIX = "user.reconciler."
OWNER_KEY = PREFIX + "owner"
SOURCE_KEY = PREFIX + "source"
SPEC_KEY = PREFIX + "spec"
UNDEFINED_KEY = PREFIX + "undefined"


def read(config: Mapping[str, Any]) -> Stamp | None:
    """The stamp in an object's own config (None if absent or unreadable)."""
    owner = config.get(OWNER_KEY)
    text = config.get(SPEC_KEY)
    if not isinstance(owner, str) or not isinstance(text, str):
        return None
    try:
        spec = json.loads(text)
    except ValueError:
        return None
    source = config.get(SOURCE_KEY)
    return Stamp.from_json({"owner": owner, "source": source or None, "spec": spec})


def write(config: dict[str, Any], stamp: Stamp) -> None:
    """Put `stamp` into `config` (in place)."""
    config[OWNER_KEY] = stamp.owner
    config[SPEC_KEY] = json.dumps(stamp.spec, sort_keys=True, separators=(",", ":"))
    if stamp.source:
        config[SOURCE_KEY] = stamp.source
    else:
        config.pop(SOURCE_KEY, None)


def undefined(config: Mapping[str, Any]) -> bool:
    return bool(config.get(UNDEFINED_KEY))


def undefine(config: dict[str, Any]) -> None:
    """Mark an instance undefined (in place): kept with its data, never autostarted; what
    it said about autostart is kept in the mark, to come back with the instance."""
    config[UNDEFINED_KEY] = json.dumps({"boot.autostart": config.get("boot.autostart")})
    config["boot.autostart"] = "false"


def undefined_record(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """What `undefine` recorded (None when the instance is not undefined)."""
    text = config.get(UNDEFINED_KEY)
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
