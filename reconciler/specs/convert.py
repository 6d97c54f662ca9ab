"""Write a model object in either form; XML<->YAML keeps meaning."""

from __future__ import annotations

from lxml import etree

from reconciler.model import Domain, Network, Profile, Spec, canonical
from reconciler.specs.xml_read import NS
from reconciler.specs.xml_write import encode, to_xml
from reconciler.specs.yaml_io import dump_documents


def to_yaml(objects: list[Spec]) -> str:
    docs = []
    for obj in objects:
        data = canonical(obj)
        data = {"kind": obj.kind, **data}
        docs.append(data)
    return dump_documents(docs)


def to_xml_text(obj: Spec) -> str:
    if isinstance(obj, Domain | Network):
        return to_xml(obj)
    assert isinstance(obj, Profile)
    root = etree.Element(f"{{{NS}}}profile", nsmap={"rc": NS})
    for key, value in canonical(obj).items():
        if key != "kind":
            encode(root, key, value)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"
