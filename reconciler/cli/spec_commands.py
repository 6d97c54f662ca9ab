"""`validate`, `convert` and `schema`: the commands that only read specs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reconciler.cli.native import NATIVE_SOURCES
from reconciler.errors import Location, SpecError
from reconciler.specs import rng  # light: what reads specs loads where a command needs it
from reconciler.text import printable


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check spec files; errors as FILE:LINE:COL: error: ...")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--schema", metavar="DIR", help="libvirt RelaxNG schema directory "
                   f"(default: {rng.DEFAULT_SCHEMA_DIR} when installed)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("convert", help="write a spec file in the other form (XML <-> YAML)")
    p.add_argument("file")
    p.add_argument("--to", choices=("yaml", "xml"), required=True)
    p.add_argument("--from", dest="source_format", choices=("spec", *NATIVE_SOURCES),
                   default="spec", help="what FILE is: a spec (default) or a native config; "
                   "lines a native config has and the spec does not are warnings on stderr")
    p.add_argument("--openvz-version", choices=("legacy", "3", "7"), default="legacy",
                   help="with --from openvz: the vzctl whose rules read the file (legacy "
                   "3.x/4.x, or OpenVZ 7: which duplicate line wins, what is ignored)")
    p.add_argument("--strict", action="store_true",
                   help="a native line left out of the spec is an error (exit 1, no output)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p.set_defaults(func=cmd_schema)


def error_record(err: SpecError) -> dict[str, Any]:
    loc = err.location
    return {"file": loc.file if loc else None, "line": max(loc.line, 1) if loc else 1,
            "col": max(loc.col, 1) if loc else 1, "severity": "error", "message": err.message}


def cmd_validate(args: argparse.Namespace) -> int:
    from reconciler.specs.loader import load_paths

    result = load_paths(args.paths)
    errors = list(result.errors)
    for root in result.missing_roots:
        errors.append(SpecError("no such file or directory", Location(root, 1, 1)))
    schema_dir = rng.schema_dir(args.schema)
    if args.schema and schema_dir is None:
        print(f"reconciler: error: schema directory {args.schema} has no domain.rng",
              file=sys.stderr)
        return 1
    if schema_dir is not None:
        for name, loaded in result.files.items():
            if loaded.ok and name.endswith(".xml"):
                errors.extend(rng.validate_file(Path(name), schema_dir))
    errors.sort(key=lambda e: (e.location.file, e.location.line) if e.location else ("", 0))
    objects = sum(len(f.objects) for f in result.files.values())
    if args.format == "json":
        json.dump({"valid": not errors, "files": len(result.files), "objects": objects,
                   "errors": [error_record(e) for e in errors]}, sys.stdout, indent=2)
        print()
    else:
        for err in errors:
            print(err)
        if not errors:
            print(f"{len(result.files)} files, {objects} objects: valid")
        else:
            failed = len({e.location.file for e in errors if e.location})
            print(f"{len(errors)} error(s) in {failed} of {len(result.files)} files",
                  file=sys.stderr)
    return 1 if errors or result.missing_roots else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from reconciler.specs.convert import to_xml_text, to_yaml
    from reconciler.specs.files import load_file

    path = Path(args.file)
    if args.source_format != "spec":
        from reconciler.cli.native import convert_native

        try:
            converted = convert_native(args.source_format, path,
                                       openvz_version=args.openvz_version)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            return 1
        for note in converted.not_converted:
            print(printable(note.report("error" if args.strict else "warning")),
                  file=sys.stderr)
        for where, why in converted.warnings:
            print(printable(f"{where}: {'error' if args.strict else 'warning'}: {why}"),
                  file=sys.stderr)
        if args.strict and (converted.not_converted or converted.warnings):
            return 1
        objects = converted.objects
    else:
        loaded = load_file(path)
        if not loaded.ok:
            for err in loaded.errors:
                print(err, file=sys.stderr)
            return 1
        objects = [obj for obj, _ in loaded.objects]
    if args.to == "yaml":
        sys.stdout.write(to_yaml(objects))
    else:
        if len(objects) != 1:
            print(f"reconciler: error: {path} holds {len(objects)} objects; XML holds one per file",
                  file=sys.stderr)
            return 1
        sys.stdout.write(to_xml_text(objects[0]))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from reconciler.specs.schema import json_schema

    json.dump(json_schema(), sys.stdout, indent=2)
    print()
    return 0
