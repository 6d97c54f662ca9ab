"""What every driver does with what it read from its host, kept once: the model's canonical
form of an observed spec (leaving out, and saying, what the model refuses), and the observed
objects an import writes specs for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from reconciler.drivers.base import ImportResult, LiveObject
from reconciler.errors import PermanentError
from reconciler.model import Domain, canonical
from reconciler.model.fields import POLICY_FIELDS

_ATTEMPTS = 16  # fields dropped one after another at most, before giving up


def validated(raw: dict[str, Any], culprits: tuple[str, ...]) -> tuple[dict[str, Any],
                                                                        dict[str, str]]:
    """The canonical form of an observed spec, and field -> why the model refused it. A value
    the model refuses (a hand-written hostname with an underscore, say) is left out and
    reported, instead of hiding the whole guest from the engine. `culprits`: the fields to
    drop first, in order, when a rule over the whole object fails and names none."""
    raw = dict(raw)
    refused: dict[str, str] = {}
    for _ in range(_ATTEMPTS):
        try:
            spec = canonical(Domain.model_validate(raw))
        except ValidationError as exc:
            fields = {str(err["loc"][0]): str(err.get("msg", "")) for err in exc.errors()
                      if err.get("loc") and err["loc"][0] not in ("name", "type")}
            if not fields:
                culprit = next((f for f in culprits if f in raw), None)
                if culprit is None:
                    raise PermanentError(f"cannot read {raw.get('name')}: {exc}") from None
                fields = {culprit: str(exc.errors()[0].get("msg", ""))}
            for name, why in fields.items():
                raw.pop(name, None)
                refused.setdefault(name, why)
            continue
        spec.pop("kind", None)
        return spec, refused
    raise PermanentError(f"cannot read {raw.get('name')}")


def importable(objects: Iterable[LiveObject], wanted: set[str] | None,
               found: ImportResult) -> Iterator[tuple[LiveObject, dict[str, Any]]]:
    """The objects `import` writes a spec for (those named, when names are given), each with
    its spec as import writes it: its run state when stopped, and the engine's fields its
    stamp kept. One another owner stamped is skipped, and `found` says so."""
    for obj in objects:
        if wanted is not None and obj.ref.name not in wanted:
            continue
        if obj.stamp is not None and not obj.owned:
            found.skipped.append((str(obj.ref), f"owned by {obj.stamp.owner!r}"))
            continue
        spec = dict(obj.spec)
        if obj.state == "stopped":
            spec["state"] = "stopped"
        if obj.owned and obj.last_applied:
            spec.update({k: v for k, v in obj.last_applied.items() if k in POLICY_FIELDS})
        yield obj, spec
