"""`history` (what each applied plan did to an object, from the journal) and `revert` (apply
the spec an object had after one of them)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.cli.exits import EXIT_ERROR, EXIT_OK
from reconciler.errors import ConfigError, DriverError, PlanError, SafetyError, StateError
from reconciler.text import printable


def register(sub: Any) -> None:
    from reconciler.cli.engine_commands import _common

    p = sub.add_parser("history", help="each applied plan that changed an object, from the "
                       "journal: when, commit, changes, outcome")
    p.add_argument("name", nargs="?", metavar="NAME|KIND/NAME")
    p.add_argument("--state-dir")
    p.add_argument("--config")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("revert", help="apply the spec an object had after an earlier plan "
                       "(hosts without git; with git, revert the commit instead)")
    p.add_argument("name", metavar="NAME|KIND/NAME")
    p.add_argument("--to", required=True, metavar="PLAN_ID",
                   help="the plan (its id, or a unique prefix) whose result to go back to")
    _common(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_revert)


def _error(message: str) -> int:
    print(f"reconciler: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def cmd_history(args: argparse.Namespace) -> int:
    from reconciler.engine.config import load_config
    from reconciler.engine.history import entries

    try:
        config = load_config(args.config, state_dir=args.state_dir)
    except ConfigError as exc:
        return _error(str(exc))
    found = entries(config.state_dir, args.name)
    if args.format == "json":
        json.dump([{"plan_id": e.plan_id, "created": e.created, "commit": e.commit,
                    "object": e.object, "action": e.action, "update": e.update,
                    "changes": e.changes, "outcome": e.outcome, "source": e.source}
                   for e in found], sys.stdout, indent=2)
        print()
        return EXIT_OK
    if not found:
        print("No applied plan changed " + (printable(args.name) if args.name else
                                             "anything") + " in this state directory's journal.")
        return EXIT_OK
    for e in found:
        commit = f"  commit {printable(e.commit)[:12]}" if e.commit else ""
        update = f" ({e.update})" if e.update else ""
        print(f"{printable(e.created)}  plan {e.plan_id}  {printable(e.object)}  "
              f"{printable(e.action)}{printable(update)}  {e.outcome}{commit}")
        for change in e.changes:
            print(f"    {printable(change.get('field'))}: {printable(change.get('old'))} -> "
                  f"{printable(change.get('new'))}")
    return EXIT_OK


def cmd_revert(args: argparse.Namespace) -> int:
    from reconciler.cli.engine_commands import _open

    opened = _open(args)
    if isinstance(opened, int):
        return opened
    config, hosts = opened
    try:
        return _revert(args, config, hosts)
    except (PlanError, DriverError, SafetyError, StateError) as exc:
        return _error(str(exc))
    finally:
        hosts.close()


def _revert(args: argparse.Namespace, config: Any, hosts: Any) -> int:
    from reconciler.cli.engine_commands import _confirmed, _run_steps
    from reconciler.engine import marks, render
    from reconciler.engine.history import spec_after
    from reconciler.engine.journal import Journal
    from reconciler.engine.lock import StateLock
    from reconciler.engine.plan import Desired, make_plan
    from reconciler.model import KINDS, canonical
    from reconciler.model.fields import SECRET_FIELDS, Ref, flatten

    entry = spec_after(config.state_dir, args.name, args.to)
    if entry is None or entry.spec is None:
        return _error(f"no applied plan {printable(args.to)} set a spec of "
                      f"{printable(args.name)}; `reconciler history {printable(args.name)}` "
                      "lists them")
    git = (config.extra.get("git") or {}).get("url")
    if git:
        commit = f" (commit {entry.commit})" if entry.commit else ""
        return _error(f"this host follows {printable(git)}: revert the change in the "
                      f"repository instead{printable(commit)}, so the agent and the "
                      "repository agree")
    flat = flatten(entry.spec)
    concealed = [f for f in SECRET_FIELDS if f in flat and isinstance(flat[f], dict) and any(
        str(v).startswith("sha256:") for v in flat[f].values())]
    if concealed:
        return _error(f"the journal keeps {', '.join(concealed)} as digests; revert cannot "
                      "restore those values: put the spec back in its file instead")
    kind, name = entry.object.split("/", 1)
    ref = Ref(kind.capitalize(), name)
    model = KINDS[ref.kind].model_validate({"kind": ref.kind, **entry.spec})
    spec = canonical(model)
    spec.pop("kind", None)
    with StateLock(config.state_dir, "apply"):
        live_all = hosts.observe()
        if ref not in live_all:
            return _error(f"{ref} is not on the host; its spec file brings it back")
        dtype = spec.get("type", "network") if ref.kind == "Domain" else "network"
        desired = Desired(ref, dtype, spec, entry.source)
        plan = make_plan([desired], hosts, failed_files=set(), roots=(),
                         settings=config.settings, observed={ref: live_all[ref]},
                         marks=marks.read(config.state_dir))
        sys.stdout.write(render.text(plan))
        if not plan.has_changes:
            print(f"{ref} already has the spec plan {entry.plan_id} left it with.")
            return EXIT_ERROR if plan.refused else EXIT_OK
        if not args.yes and not _confirmed():
            return EXIT_ERROR
        journal = Journal(config.state_dir)
        try:
            report = _run_steps(args, config, hosts, journal, plan, set())
        finally:
            journal.close()
    ok = report is not None and report.ok
    print(f"Revert of {ref} to plan {entry.plan_id}: {'done' if ok else 'failed'}.")
    if ok and entry.source:
        print(f"note: {printable(entry.source)} still holds the newer spec; the next apply of "
              "its directory changes the object back: edit the file to keep this",
              file=sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR
