"""YAML specs: safe loading only (C loader when present), several documents per file.

Loading is fast-path first: documents are read with the C safe loader and validated; only when
validation fails is the file composed again with node positions, to name the failing line.
"""

from __future__ import annotations

from typing import Any

import yaml

from reconciler.errors import Location, SpecError

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MAX_ALIASES = 100


class _CountingLoader(yaml.SafeLoader):
    """The pure-Python safe loader, used only to find positions and to count aliases."""


def load_documents(data: bytes, file: str) -> list[Any]:
    """Every document in the file, as plain data. Alias bombs and non-safe tags are errors."""
    if b"*" in data:
        _check_aliases(data, file)
    try:
        return [doc for doc in yaml.load_all(data, Loader=_Loader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if "could not determine a constructor" in str(exc):
            problem = f"{problem} (only plain YAML is allowed: no !!python or other tags)"
        raise SpecError(f"malformed YAML: {problem}", Location(file, line, col)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", Location(file, 1, 1)) from None


def _check_aliases(data: bytes, file: str) -> None:
    """Refuse more than a handful of aliases: the billion-laughs pattern of YAML."""
    count = 0
    try:
        for event in yaml.parse(data, Loader=_CountingLoader):
            if isinstance(event, yaml.AliasEvent):
                count += 1
                if count > MAX_ALIASES:
                    mark = event.start_mark
                    raise SpecError(f"more than {MAX_ALIASES} YAML aliases: refused as an "
                                    "alias bomb", Location(file, mark.line + 1, mark.column + 1))
    except yaml.YAMLError:
        return  # the real load reports syntax errors with their position


def locate(data: bytes, doc_index: int, path: tuple[Any, ...]) -> tuple[int, int]:
    """Line and column of `path` inside document `doc_index` (the deepest node that exists)."""
    try:
        nodes = list(yaml.compose_all(data, Loader=_CountingLoader))
    except yaml.YAMLError:
        return 1, 1
    nodes = [n for n in nodes if n is not None and not (isinstance(n, yaml.ScalarNode)
                                                      and n.value == "")]
    if doc_index >= len(nodes):
        return 1, 1
    node: yaml.Node = nodes[doc_index]
    best = node.start_mark
    for key in path:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(key):
                    nxt, best = v, k.start_mark
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
            best = nxt.start_mark
        if nxt is None:
            break
        node = nxt
    return best.line + 1, best.column + 1


def dump_documents(docs: list[dict[str, Any]]) -> str:
    return str(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                             width=100, explicit_start=len(docs) > 1))
