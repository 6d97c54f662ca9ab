"""`import`: write specs for what already runs on a host, so it can be managed from files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reconciler.cli.engine_commands import config_from
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.lock import StateLock
from reconciler.errors import ConfigError, DriverError, SafetyError
from reconciler.text import printable


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="write specs for existing objects on a host")
    p.add_argument("--driver", required=True, help="lxc, libvirt, openvz, vserver, lxd or sim")
    p.add_argument("--uri", help="libvirt connection URI")
    p.add_argument("--lxcpath", help="LXC container directory")
    p.add_argument("--lxd-remote", metavar="URL", help="LXD server or cluster (--driver lxd)")
    p.add_argument("--state-dir")
    p.add_argument("--config")
    p.add_argument("--max-removal-share", type=float)
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write specs into")
    p.add_argument("--format", choices=("yaml", "xml"), default="yaml")
    p.add_argument("--name", action="append", help="only these objects (repeatable)")
    p.add_argument("--strict", action="store_true", help="a native config line the specs "
                   "would leave out is an error: nothing is adopted or written (exit 1)")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    try:
        config = config_from(args)
        lock = StateLock(config.state_dir, "import")  # adopting writes our stamp on the host
        lock.acquire()
    except (ConfigError, SafetyError) as exc:
        print(f"reconciler: error: {exc}", file=sys.stderr)
        return 1
    try:
        return _import(args, config)
    finally:
        lock.release()


def _import(args: argparse.Namespace, config: Config) -> int:
    from reconciler.model import KINDS
    from reconciler.specs.convert import to_xml_text, to_yaml

    try:
        hosts = build_hosts(config)
    except (ConfigError, DriverError) as exc:
        print(f"reconciler: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        driver = hosts.drivers[args.driver]
        if not driver.capabilities.imports:
            print(f"reconciler: error: driver {args.driver} cannot import", file=sys.stderr)
            return 1
        if args.strict:  # a dry run first: strictness must not leave half an adoption
            dry = driver.import_specs(names=args.name or None, adopt=False)
            if dry.not_converted:
                for note in dry.not_converted:
                    print(printable(note.report("error")), file=sys.stderr)
                print("reconciler: error: nothing imported (--strict)", file=sys.stderr)
                return 1
        found = driver.import_specs(names=args.name or None, out=str(out.resolve()),
                                    format=args.format)
        for ref, why in found.skipped:
            print(f"skipped {printable(ref)}: {printable(why)}", file=sys.stderr)
        for note in found.not_converted:
            print(printable(note.report()), file=sys.stderr)
        for raw in found.specs:
            if args.name and raw["name"] not in args.name:
                continue
            obj = KINDS[raw.get("kind", "Domain")].model_validate(raw)
            suffix = "yaml" if args.format == "yaml" else "xml"
            path = out / f"{obj.name}.{suffix}"  # the stamp's source, when the driver adopts
            text = to_yaml([obj]) if args.format == "yaml" else to_xml_text(obj)
            path.write_text(text)
            print(f"wrote {path}")
            written += 1
    except DriverError as exc:
        print(f"reconciler: error: {exc}", file=sys.stderr)
        return 1
    finally:
        hosts.close()
    print(f"{written} specs written to {out}")
    return 0
