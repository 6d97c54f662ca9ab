"""Saved plans: written for `apply PLANFILE`, and checked before a single step of one runs.

A saved plan is a file, and a file can be edited between `plan --out` and `apply`. Apply shows
the plan's objects and asks before it runs the plan's steps, so the steps must follow from the
objects: every step belongs to an object the plan lists with an action that has such a step,
every spec in a step is a spec the model accepts (the value rule holds), and the host's policy
and each driver's own checks hold for it now, as they would for a fresh plan. Against the host
as it is now: nothing not ours is touched, nothing protected is removed or replaced, and an
object whose state moved since the plan was made is left alone (plan again).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.engine import render
from reconciler.engine.hosts import Hosts
from reconciler.engine.plan import Plan, Settings
from reconciler.errors import PlanError
from reconciler.fsio import read_regular, write_atomic
from reconciler.model.fields import Ref

MAX_PLAN_BYTES = 64 * 1024 * 1024
# the steps each action may have, in any subset
_ALLOWED = {
    "create": {"provision", "define", "start"},
    "update": {"stop", "update", "start"},
    "replace": {"stop", "purge", "undefine", "provision", "define", "start"},
    "remove": {"stop", "undefine", "purge"},
}
_SPEC_STEPS = {"provision", "define", "update"}
_REMOVING = {"purge", "undefine"}


def save(plan: Plan, path: str | Path) -> None:
    """The plan with its secrets (apply needs them), readable by its owner only."""
    write_atomic(path, json.dumps(plan.to_json(secrets=True), indent=2) + "\n", 0o600)


def looks_saved(path: str) -> bool:
    """Is `path` a saved plan (whatever its name)? A plan is a JSON object with a plan id."""
    try:
        head = read_regular(path, 4096, follow=True)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"plan_id"' in head


def load(path: str) -> Plan:
    try:
        data = read_regular(path, MAX_PLAN_BYTES, follow=True)
        if len(data) > MAX_PLAN_BYTES:
            raise PlanError(f"{path} is larger than {MAX_PLAN_BYTES} bytes")
        return Plan.from_json(json.loads(data))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlanError(f"{path} is not a saved plan: {exc}") from None


def show(path: str, fmt: render.Format = "text", color: bool = False) -> str:
    """A saved plan as `plan` printed it (`reconciler show PLANFILE`), secret values as
    digests; a file that `apply` would refuse whole says so first, in its notes."""
    plan = load(path)
    problems = structural_problems(plan)
    if problems:
        plan = replace(plan, notes=("apply refuses this file, it is not one `plan` wrote: "
                                    + "; ".join(problems[:5]), *plan.notes))
    return render.render(plan, fmt, color)


def structural_problems(plan: Plan) -> list[str]:
    """Ways the plan's steps do not follow from its objects; any one refuses the whole plan,
    since it was not made by `plan` as it is."""
    out: list[str] = []
    objects: dict[Ref, Any] = {}
    for obj in plan.objects:
        if obj.ref in objects:
            out.append(f"{obj.ref} is listed twice")
        objects[obj.ref] = obj
    ids = {s.id for s in plan.steps}
    if len(ids) != len(plan.steps):
        out.append("two steps share an id")
    for step in plan.steps:
        owner = objects.get(step.ref)
        if owner is None:
            out.append(f"step {step.id} acts on {step.ref}, which the plan does not list")
            continue
        if step.kind not in _ALLOWED.get(owner.action, set()):
            out.append(f"step {step.id} ({step.kind}) does not follow from {step.ref}'s action "
                       f"{owner.action!r}")
        if step.id not in owner.steps:
            out.append(f"step {step.id} is not among {step.ref}'s steps")
        if (step.type, step.driver) != (owner.type, owner.driver):
            out.append(f"step {step.id} names another type or driver than {step.ref}")
        if step.id != f"{step.ref}:{step.kind}":
            out.append(f"step id {step.id!r} does not name its object and kind")
        out += [f"step {step.id} depends on unknown step {dep}" for dep in step.deps
                if dep not in ids]
        if step.kind in _SPEC_STEPS or step.spec is not None:
            out += _spec_problems(step.id, step.ref, step.spec)
    for obj in plan.objects:
        out += [f"{obj.ref} lists step {sid}, which the plan does not have"
                for sid in obj.steps if sid not in ids]
    return out


def _spec_problems(sid: str, ref: Ref, spec: dict[str, Any] | None) -> list[str]:
    """A step's spec must be one the loader would have produced: the model accepts it as it
    is (so the value rule holds), and it is the spec of the step's own object."""
    if not isinstance(spec, dict):
        return [f"step {sid} has no spec"]
    from reconciler.model import KINDS, canonical

    model = KINDS.get(ref.kind)
    if model is None or spec.get("name") != ref.name:
        return [f"step {sid}'s spec is not {ref}'s"]
    try:
        again = canonical(model.model_validate({**spec, "kind": ref.kind}))
    except ValueError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        return [f"step {sid}'s spec is not valid: {first[0].strip()}"]
    again.pop("kind", None)
    if again != spec:
        return [f"step {sid}'s spec is not in the form plan writes"]
    return []


def refusals_now(plan: Plan, hosts: Hosts, settings: Settings) -> dict[Ref, str]:
    """Objects of a (structurally sound) saved plan that may not be applied on the host as it
    is now, with why: the policy or the driver refuses their spec, or a removal or replace
    would touch what is not ours or is protected."""
    live = hosts.observe()
    out: dict[Ref, str] = {}
    for step in plan.steps:
        if step.ref in out:
            continue
        driver = hosts.drivers.get(step.driver)
        if driver is None:
            out[step.ref] = f"the plan names driver {step.driver!r}, which is not configured"
            continue
        if step.kind in _SPEC_STEPS and step.spec is not None:
            found = [*driver.check(step.ref.kind, step.type, step.spec),
                     *settings.policy.refusals(step.ref.kind, step.type, step.spec)]
            if found:
                out[step.ref] = "; ".join(map(str, found))
                continue
        current = live.get(step.ref)
        if step.kind in _REMOVING and current is not None:
            obj = current[1]
            if not obj.owned:
                out[step.ref] = f"{step.ref} is not managed by reconciler"
            elif obj.protected:
                out[step.ref] = f"{step.ref} is protected (protect: true)"
            elif step.kind == "purge" and not _purge_asked(step, plan, obj.last_applied):
                out[step.ref] = (f"a purge of {step.ref} that neither its spec nor the host "
                                 "asked for (removal: purge, or a replace allowed)")
    return out


def _purge_asked(step: Any, plan: Plan, last: dict[str, Any] | None) -> bool:
    """A purge follows from removal: purge (on the host, or in the spec that asks for the
    removal) or from a replace the new spec allows."""
    if (last or {}).get("removal") == "purge" or (step.spec or {}).get("removal") == "purge":
        return True
    return any(s.ref == step.ref and s.kind == "define" and (s.spec or {}).get("allow_replace")
               for s in plan.steps)


def with_erases_now(plan: Plan, hosts: Hosts) -> Plan:
    """The plan with every purge's `erases` worked out from the host now (a saved plan's own
    list is only what the file says)."""
    live = hosts.observe()
    objects = []
    for obj in plan.objects:
        found = live.get(obj.ref)
        erases: tuple[str, ...] = ()
        if obj.purges and found is not None and found[0] in hosts.drivers:
            erases = hosts.drivers[found[0]].erases(found[1])
        objects.append(replace(obj, erases=erases))
    return replace(plan, objects=tuple(objects))
