"""`plan`, `apply` and `show`: the commands that look at, and change, a host."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from reconciler.cli.exits import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from reconciler.cli.progress import Display
from reconciler.engine import render, saved
from reconciler.engine.apply import DEFAULT_PARALLEL, ApplyReport
from reconciler.engine.config import Config, build_hosts, load_config
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import Journal
from reconciler.engine.lock import StateLock
from reconciler.engine.plan import Plan
from reconciler.errors import ConfigError, DriverError, PlanError, SafetyError, StateError
from reconciler.log import divert, get_logger
from reconciler.model.fields import concealed
from reconciler.text import printable, wants_color

if TYPE_CHECKING:
    from reconciler.engine.passes import Pass
    from reconciler.specs.loader import SpecSet



def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--driver", help="driver for all objects: sim (default), lxc, libvirt, "
                   "openvz, vserver, lxd")
    p.add_argument("--uri", help="libvirt connection URI (with --driver libvirt)")
    p.add_argument("--lxcpath", help="LXC container directory (with --driver lxc)")
    p.add_argument("--lxd-remote", metavar="URL", help="LXD server or cluster (with --driver "
                   "lxd): unix:///PATH/unix.socket or https://HOST:8443 (certificates in "
                   "the agent config)")
    p.add_argument("--state-dir", help="where journal, status and sim state live")
    p.add_argument("--config", help="agent config file (YAML)")
    p.add_argument("--max-removal-share", type=float,
                   help="refuse a pass removing more than this share of managed objects (0.5)")


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="show what would change, and why (dry run)")
    p.add_argument("path", nargs="+", metavar="PATH")
    _common(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--out", metavar="FILE", help="save the plan for `apply FILE`")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when there are changes, 0 when none, 1 on error")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="make the host equal to the specs (or apply a saved plan)")
    p.add_argument("path", nargs="+", metavar="PATH|PLANFILE")
    _common(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--parallel", type=int, default=None,
                   help=f"steps run at once ({DEFAULT_PARALLEL})")
    p.add_argument("--now", action="store_true",
                   help="restart now what waits for a maintenance window or a deferred restart")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("graph", help="the plan's steps and their order as a graph (Mermaid "
                       "or Graphviz DOT), from specs or a saved plan")
    p.add_argument("path", nargs="+", metavar="PATH|PLANFILE")
    _common(p)
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("show", help="list live objects; one object's spec as the host has it; "
                       "or a saved plan")
    p.add_argument("target", nargs="?", metavar="NAME|KIND/NAME|PLANFILE",
                   help="an object (its spec as the host has it, secret values as digests; "
                   "`import` writes specs to keep) or a plan saved by `plan --out`")
    _common(p)
    p.add_argument("--format", choices=SHOW_FORMATS, default=None,
                   help="list: text|json; object: yaml (default)|xml|json; "
                   "saved plan: text (default)|json|markdown")
    p.set_defaults(func=cmd_show)


def config_from(args: argparse.Namespace) -> Config:
    options: dict[str, Any] = {}
    if getattr(args, "uri", None):
        options["uri"] = args.uri
    if getattr(args, "lxcpath", None):
        options["lxcpath"] = args.lxcpath
    if getattr(args, "lxd_remote", None):
        options["remote"] = args.lxd_remote
    return load_config(args.config, state_dir=args.state_dir, driver=args.driver,
                       driver_options=options, parallel=getattr(args, "parallel", None),
                       max_removal_share=args.max_removal_share)


def _sim_notice(config: Config) -> None:
    if config.simulated_by_default:
        print(f"note: using the simulated host 'sim' (state in {config.state_dir}/sim); nothing "
              "on this machine's containers or VMs changes. Choose a real driver with "
              "--driver lxc|libvirt|openvz|vserver|lxd or a --config file.", file=sys.stderr)


def _error(message: str) -> int:
    print(f"reconciler: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _open(args: argparse.Namespace) -> tuple[Config, Hosts] | int:
    """Config and drivers from the options, or the exit code of a clear error."""
    try:
        config = config_from(args)
        hosts = build_hosts(config)
    except (ConfigError, DriverError) as exc:
        return _error(str(exc))
    except OSError as exc:  # the state directory cannot be made
        return _error(f"cannot use {exc.filename}: {exc.strerror}; choose a state directory "
                      "you can write with --state-dir")
    _sim_notice(config)
    return config, hosts


def cmd_plan(args: argparse.Namespace) -> int:
    result = _planned(args)
    if isinstance(result, int):
        return result
    plan = result.plan
    if args.out:
        try:
            saved.save(plan, args.out)
        except OSError as exc:
            return _error(f"cannot write {printable(args.out)}: {exc.strerror}")
    sys.stdout.write(render.render(plan, args.format,
                                   color=wants_color(sys.stdout, args.no_color)))
    if _unfulfilled(result.specs, plan):
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def _planned(args: argparse.Namespace) -> Pass | int:
    """`plan`'s and `graph`'s pass: the host opened, planned and closed again, the spec
    files' problems reported; an exit status when that failed."""
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    config, hosts = opened
    try:
        result = _compute(args, config, hosts)
    except (DriverError, StateError) as exc:
        return _error(f"cannot read the host: {exc}")
    finally:
        hosts.close()
    _report_inputs(result.specs)
    return result


def _compute(args: argparse.Namespace, config: Config, hosts: Hosts) -> Pass:
    """The plan of `args.path` on this host, with what earlier passes left (marks) and,
    with `apply --now`, every maintenance window open."""
    from reconciler.engine import marks, passes

    settings = config.settings
    if getattr(args, "now", False):
        settings = replace(settings, ignore_windows=True)
    return passes.compute_plan(args.path, hosts, settings, context=_context(args.path, hosts),
                               marks=marks.read(config.state_dir))


def _context(paths: list[str], hosts: Hosts) -> dict[str, object]:
    """What a plan's header says of where it comes from: the drivers, and the commit of the
    git work tree holding the specs when there is one."""
    from reconciler.engine.commit import context_for

    return {"drivers": sorted(hosts.names()), **context_for(paths)}


def cmd_graph(args: argparse.Namespace) -> int:
    from reconciler.engine import graph

    if len(args.path) == 1 and saved.looks_saved(args.path[0]):
        try:
            plan = saved.load(args.path[0])
        except PlanError as exc:
            return _error(str(exc))
    else:
        result = _planned(args)
        if isinstance(result, int):
            return result
        sys.stdout.write(graph.mermaid(result.plan) if args.format == "mermaid"
                         else graph.dot(result.plan))
        return EXIT_ERROR if _unfulfilled(result.specs, result.plan) else EXIT_OK
    sys.stdout.write(graph.mermaid(plan) if args.format == "mermaid" else graph.dot(plan))
    return EXIT_OK


def _report_inputs(specs: SpecSet) -> None:
    """Spec errors and missing spec paths, on stderr, one per line."""
    for err in specs.errors:
        print(err, file=sys.stderr)
    for root in specs.missing_roots:
        print(f"reconciler: error: {printable(root)}: no such file or directory",
              file=sys.stderr)


def _unfulfilled(specs: SpecSet, plan: Plan) -> bool:
    """Exit 1, as Terraform does for a plan with errors: a spec that failed to load, a path
    that is missing, an object or a removal that was refused."""
    return bool(specs.errors or specs.missing_roots or plan.refused)


def cmd_apply(args: argparse.Namespace) -> int:
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    config, hosts = opened
    try:
        # held from the plan to the last step: nobody else changes the host in between
        with StateLock(config.state_dir, "apply"):
            return _apply(args, config, hosts)
    except (PlanError, DriverError, SafetyError, StateError) as exc:
        return _error(str(exc))
    finally:
        hosts.close()


def _apply(args: argparse.Namespace, config: Config, hosts: Hosts) -> int:

    skip: set[str] = set()
    unfulfilled = False
    from_saved = len(args.path) == 1 and saved.looks_saved(args.path[0])
    if from_saved:
        plan = _saved_plan(args.path[0], config, hosts, skip)
        unfulfilled = bool(skip)
    else:
        result = _compute(args, config, hosts)
        plan = result.plan
        _report_inputs(result.specs)
        unfulfilled = _unfulfilled(result.specs, plan)
    sys.stdout.write(render.text(plan, color=wants_color(sys.stdout, args.no_color)))
    if not plan.has_changes or len(skip) == len(plan.steps):
        if not plan.has_changes:  # nothing to run; still journal what it says, settle marks
            from reconciler.engine import passes

            journal = Journal(config.state_dir)
            try:
                passes.apply_planned(plan, hosts, journal)
            finally:
                journal.close()
        return EXIT_ERROR if unfulfilled else EXIT_OK
    # a saved plan was the review: applying it asks nothing more
    if not (args.yes or from_saved) and not _confirmed():
        return EXIT_ERROR
    journal = Journal(config.state_dir)
    try:
        report = _run_steps(args, config, hosts, journal, plan, skip)
    finally:
        journal.close()
    assert report is not None  # the plan has steps
    counts = report.counts()
    print(f"Apply {plan.id}: {counts['succeeded']} steps succeeded, {counts['failed']} failed, "
          f"{counts['skipped']} skipped.")
    for outcome in report.outcomes.values():
        if outcome.result == "failed":
            print(f"  failed: {outcome.step}: {printable(outcome.error)}", file=sys.stderr)
    if report.interrupted:
        not_started = sum(1 for o in report.outcomes.values() if o.error == "not started")
        print(f"Interrupted: {not_started} steps were not started; `plan` shows what is left.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok and not unfulfilled else EXIT_ERROR


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        _error("refusing to apply without confirmation: not a terminal; pass --yes")
        return False
    try:
        answer = input("Apply these changes? Only 'yes' is accepted: ")
    except EOFError:  # Ctrl-D
        print()
        answer = ""
    if answer.strip() != "yes":
        print("Not applied.")
        return False
    return True


def _run_steps(args: argparse.Namespace, config: Config, hosts: Hosts, journal: Journal,
               plan: Plan, skip: set[str]) -> ApplyReport | None:
    from reconciler.engine import passes

    """Apply, with Ctrl-C handled as Terraform does: the first stops new steps and lets the
    running ones finish (the journal records the interruption), a second exits at once. At a
    terminal a live display shows the steps in flight."""
    stop = threading.Event()
    display = Display(sys.stderr, plan.steps, wants_color(sys.stderr, args.no_color)) \
        if sys.stderr.isatty() else None

    def on_interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            sys.stderr.write("\nreconciler: interrupted again: exiting now; steps in flight "
                             "may be half done (the journal shows which)\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        message = ("Interrupt: no new step starts; waiting for the running ones to finish "
                   "(Ctrl-C again to exit at once)")
        if display is not None:
            display.say(message)
        else:
            print(message, file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        if display is None:
            return passes.apply_planned(plan, hosts, journal, parallel=config.parallel,
                                 journal_max_bytes=config.journal_max_bytes, stop=stop,
                                 skip=skip, max_restarts=config.maintenance.max_restarts)
        with display, divert(display.log_line):
            return passes.apply_planned(plan, hosts, journal, parallel=config.parallel,
                                 journal_max_bytes=config.journal_max_bytes, stop=stop,
                                 skip=skip, progress=display.finished,
                                 started=display.started,
                                 max_restarts=config.maintenance.max_restarts)
    finally:
        signal.signal(signal.SIGINT, previous)


def _saved_plan(path: str, config: Config, hosts: Hosts, skip: set[str]) -> Plan:
    """A saved plan, checked: refused whole if its steps do not follow from its objects;
    objects the host moved under, or that the policy or the host refuses now, are skipped
    (their step ids added to `skip`)."""
    from reconciler.engine import passes

    plan = saved.load(path)
    problems = saved.structural_problems(plan)
    if problems:
        raise PlanError("refusing the saved plan, it is not one `plan` wrote: "
                        + "; ".join(printable(p) for p in problems[:5]))
    refused = {**passes.stale_objects(plan, hosts),
               **saved.refusals_now(plan, hosts, config.settings)}
    for ref, why in refused.items():
        print(f"refused: {printable(why)}", file=sys.stderr)
        get_logger(plan_id=plan.id).warning("plan.refused", object=str(ref), reason=why)
        skip |= {s.id for s in plan.steps if s.ref == ref}
    if refused and len(skip) == len(plan.steps):
        print("reconciler: error: the saved plan can be applied to no object it changes; plan "
              "again", file=sys.stderr)
    return saved.with_erases_now(plan, hosts)


SHOW_FORMATS = ("text", "json", "markdown", "yaml", "xml")
_FORMATS_OF = {"list": ("text", "json"), "object": ("yaml", "xml", "json"),
               "plan": ("text", "json", "markdown")}


def _show_format(args: argparse.Namespace, what: str) -> str | None:
    chosen = args.format or _FORMATS_OF[what][0]
    if chosen not in _FORMATS_OF[what]:
        _error(f"a{'n' if what == 'object' else ''} {what} is shown as "
               f"{' or '.join(_FORMATS_OF[what])}, not {chosen}")
        return None
    return chosen


def cmd_show(args: argparse.Namespace) -> int:
    if args.target and saved.looks_saved(args.target):
        return _show_plan(args)
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    _, hosts = opened
    try:
        live = hosts.observe()
    except DriverError as exc:
        return _error(f"cannot read the host: {exc}")
    finally:
        hosts.close()
    if args.target:
        return _show_object(args, live)
    fmt = _show_format(args, "list")
    if fmt is None:
        return EXIT_ERROR
    rows = []
    for ref, (driver, obj) in sorted(live.items()):
        rows.append({"object": str(ref), "type": obj.type, "driver": driver, "state": obj.state,
                     "managed": obj.owned, "protect": obj.protected, "data": obj.data,
                     "source": obj.stamp.source if obj.stamp else None,
                     "id": obj.spec.get("id")})
    if fmt == "json":
        json.dump(rows, sys.stdout, indent=2)
        print()
        return EXIT_OK
    if not rows:
        print("No objects on the host.")
        return EXIT_OK
    width = max(len(str(r["object"])) for r in rows)
    print(f"{'OBJECT':<{width}}  {'TYPE':<8} {'STATE':<8} {'MANAGED':<7} {'ID':<6} SOURCE")
    for r in rows:
        print(f"{r['object']:<{width}}  {r['type']:<8} {r['state']:<8} "
              f"{'yes' if r['managed'] else 'no':<7} {r['id'] or '-'!s:<6} "
              f"{printable(r['source'] or '-')}{'  (protected)' if r['protect'] else ''}")
    return EXIT_OK


def _show_object(args: argparse.Namespace, live: dict[Any, Any]) -> int:
    """One object's spec as the host has it, as `virsh dumpxml` shows a domain."""
    fmt = _show_format(args, "object")
    if fmt is None:
        return EXIT_ERROR
    wanted = args.target.lower()
    found = [(ref, obj) for ref, (_, obj) in live.items()
             if ref.name == args.target or str(ref).lower() == wanted]
    if not found:
        return _error(f"no object {printable(args.target)} on the host; `reconciler show` "
                      "lists them")
    if len(found) > 1:
        return _error(f"{printable(args.target)} names "
                      f"{' and '.join(str(ref) for ref, _ in sorted(found))}; say which")
    ref, obj = found[0]
    spec = {"kind": ref.kind, **(concealed(obj.spec) or {})}
    if fmt == "json":
        json.dump(spec, sys.stdout, indent=2)
        print()
        return EXIT_OK
    from reconciler.model import KINDS
    from reconciler.specs.convert import to_xml_text, to_yaml

    model = KINDS[ref.kind].model_validate(spec)
    sys.stdout.write(to_yaml([model]) if fmt == "yaml" else to_xml_text(model))
    return EXIT_OK


def _show_plan(args: argparse.Namespace) -> int:
    fmt = _show_format(args, "plan")
    if fmt is None:
        return EXIT_ERROR
    try:
        sys.stdout.write(saved.show(args.target, cast("render.Format", fmt),
                                    color=wants_color(sys.stdout, args.no_color)))
    except PlanError as exc:
        return _error(f"cannot read the saved plan {printable(args.target)}: {exc}")
    return EXIT_OK
