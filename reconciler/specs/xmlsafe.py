"""Parsing XML without trusting it: no entities, no DTD, no network, bounded size."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from reconciler.errors import Location, SpecError

MAX_SPEC_BYTES = 4 * 1024 * 1024
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True,
)


def parse_xml(data: bytes, file: str) -> etree._Element:
    """The root element of `data`; a DOCTYPE (the door to entity bombs) is refused outright."""
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"file is {len(data)} bytes; specs are limited to {MAX_SPEC_BYTES}",
                        Location(file, 1, 1))
    declaration = _DOCTYPE.search(data) if b"<!" in data else None
    if declaration is not None:  # refused before lxml sees it: no entity is ever expanded
        line = data.count(b"\n", 0, declaration.start()) + 1
        raise SpecError("DOCTYPE and entity declarations are not allowed in specs (they are "
                        "how entity bombs and file reads get in); remove the <!DOCTYPE ...> "
                        "block", Location(file, line, 1))
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (1, 1)
        message = re.sub(r", line \d+, column \d+$", "", str(exc.msg))
        raise SpecError(f"malformed XML: {message}", Location(file, line, col + 1)) from None
    if root is None:
        raise SpecError("empty XML document", Location(file, 1, 1))
    tree = root.getroottree()
    docinfo: Any = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SpecError("DOCTYPE and entity declarations are not allowed in specs",
                        Location(file, 1, 1))
    return root


def canonical_xml(element: etree._Element) -> str:
    """A stable text form of an element: whitespace-only text dropped, attributes sorted."""
    copy = _strip(element)
    return etree.tostring(copy, method="c14n").decode()


def _strip(element: etree._Element) -> etree._Element:
    copy = etree.fromstring(etree.tostring(element), _PARSER)
    for node in copy.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    copy.tail = None
    return copy


def element_from_text(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), _PARSER)
