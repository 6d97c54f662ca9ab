"""YAML specs: safe loading only (C loader when present), several documents per file.

Loading is fast-path first: documents are read with the C safe loader and validated; only when
validation fails is the file composed again with node positions, to name the failing line.
Aliases are resolved by reference, so a billion-laughs document loads small; what it would
expand to is measured right after loading and refused before anything walks it.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import Any

import yaml

from reconciler.errors import Location, SpecError

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MAX_NODES = 200_000  # values in one file once aliases are expanded; a spec has hundreds
MAX_DOCUMENTS = 1000  # objects in one file; a directory holds any number of files


class _CountingLoader(yaml.SafeLoader):
    """The pure-Python safe loader, used only to find positions (on errors)."""


MAX_DEPTH = 64  # nesting of collections; a spec needs about 6
# a line indented by this many spaces/indicators is the only way block nesting gets deep;
# found as the file's start or a newline followed by them (not `^` with MULTILINE, which
# tries every byte: a leading literal lets `re` skip ahead to each newline)
_DEEP_START = re.compile(rb"[ \t?:-]{%d}" % MAX_DEPTH)
_DEEP_LINE = re.compile(rb"\n[ \t?:-]{%d}" % MAX_DEPTH)


def load_documents(data: bytes, file: str) -> list[Any]:
    """Every document in the file, as plain data. Alias bombs, deep nesting and non-safe tags
    are errors."""
    _check_depth(data, file)
    _check_documents(data, file)
    try:
        docs = [doc for doc in yaml.load_all(data, Loader=_Loader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or "invalid YAML"
        if "could not determine a constructor" in str(exc):
            problem = f"{problem} (only plain YAML is allowed: no !!python or other tags)"
        raise SpecError(f"malformed YAML: {problem}", Location(file, line, col)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", Location(file, 1, 1)) from None
    if b"*" in data:  # only aliases can make the data bigger than the text
        _check_expansion(docs, data, file)
    return docs


def _check_documents(data: bytes, file: str) -> None:
    """Refuse more than MAX_DOCUMENTS documents before anything parses them: the cost of a
    file must stay bounded by its size and shape, whatever it holds (600,000 empty documents
    in 2.4 MB took minutes to walk)."""
    if data.count(b"---") <= MAX_DOCUMENTS:  # a quick bound: most files have no separator
        return
    for count, found in enumerate(_DOC_SEPARATOR.finditer(data), start=1):
        if count > MAX_DOCUMENTS:
            line = data.count(b"\n", 0, found.start()) + 1
            raise SpecError(f"more than {MAX_DOCUMENTS} YAML documents in one file; put the "
                            "objects in several files", Location(file, line, 1))


def _check_depth(data: bytes, file: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the C loader sees it: libyaml's composer
    recurses on the C stack and a few thousand levels crash the process.

    Depth is at most the flow brackets plus the deepest block indentation, both found at C
    speed; only when that bound is high are the parser's events (iterative) counted."""
    if data.count(b"[") + data.count(b"{") < MAX_DEPTH and not _DEEP_START.match(data) and \
            not _DEEP_LINE.search(data):
        return
    depth = 0
    try:
        for event in yaml.parse(data, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _too_deep(file, event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        # newer libyaml scans flow brackets ahead and stops at its own depth limit (1000)
        # before the parser hands us the 65th level
        if "nesting depth" in (getattr(exc, "problem", None) or ""):
            raise _too_deep(file, getattr(exc, "problem_mark", None)) from None
        return  # the load reports syntax errors with their position


def _too_deep(file: str, mark: Any) -> SpecError:
    return SpecError(f"nested more than {MAX_DEPTH} levels deep; a spec needs a handful",
                     Location(file, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1))


def _check_expansion(docs: list[Any], data: bytes, file: str) -> None:
    """Refuse data that aliases blow up (billion laughs) or that refers to itself: both would
    make every later step walk far more than the file holds."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _Refused("a YAML alias refers to the collection that contains it")
        open_.add(key)
        items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1
        for item in items:
            total += size(item)
            if total > MAX_NODES:
                raise _Refused(f"YAML aliases expand this file to more than {MAX_NODES} values "
                               "(an alias bomb); write the values out instead")
        open_.discard(key)
        sizes[key] = total
        return total

    try:
        total = 0
        for doc in docs:
            total += size(doc)
            if total > MAX_NODES:
                raise _Refused(f"YAML aliases expand this file to more than {MAX_NODES} values "
                               "(an alias bomb); write the values out instead")
    except _Refused as exc:
        line, col = _first_alias(data)
        raise SpecError(str(exc), Location(file, line, col)) from None


class _Refused(Exception):
    pass


def _first_alias(data: bytes) -> tuple[int, int]:
    try:
        for event in yaml.parse(data, Loader=_CountingLoader):
            mark = event.start_mark
            if isinstance(event, yaml.AliasEvent) and mark is not None:
                return mark.line + 1, mark.column + 1
    except yaml.YAMLError:
        pass
    return 1, 1


_DOC_SEPARATOR = re.compile(rb"^---(?=[ \t\r\n]|$)", re.MULTILINE)
_CONTENT_LINE = re.compile(rb"^(?![ \t]*(?:#|%|\.\.\.|\r?$))", re.MULTILINE)


def document_lines(data: bytes, count: int) -> list[int]:
    """The first line of each of the `count` documents, found by a text scan (the composer
    is pure Python and would cost more than the load). Falls back to composing when the scan
    does not find exactly `count` documents."""
    # (the MULTILINE scan tries every byte; most files have no separator at all)
    separators = _DOC_SEPARATOR.finditer(data) if b"---" in data else ()
    cuts = [0, *(m.end() for m in separators), len(data)]
    lines = []
    counted, newlines = 0, 0  # newlines before `counted`: each byte is counted once
    for start, end in itertools.pairwise(cuts):
        found = _CONTENT_LINE.search(data, start, end)
        if found is not None and found.start() < end:
            newlines += data.count(b"\n", counted, found.start())
            counted = found.start()
            lines.append(newlines + 1)
    if len(lines) == count:
        return lines
    return [locate(data, index, ())[0] for index in range(count)]


@lru_cache(maxsize=2)
def _composed(data: bytes) -> list[yaml.Node]:
    """The documents' node trees with positions (pure-Python; only needed to report errors)."""
    try:
        nodes = list(yaml.compose_all(data, Loader=_CountingLoader))
    except yaml.YAMLError:
        return []
    return [n for n in nodes if n is not None and not (isinstance(n, yaml.ScalarNode)
                                                      and n.value in ("", "~", "null"))]


def locate(data: bytes, doc_index: int, path: tuple[Any, ...]) -> tuple[int, int]:
    """Line and column of `path` inside document `doc_index` (the deepest node that exists)."""
    nodes = _composed(data)
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
