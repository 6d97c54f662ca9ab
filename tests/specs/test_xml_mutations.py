"""Each corpus value replaced by junk: loading never raises, and whatever loads still round-trips
through both forms unchanged (no value is silently dropped or rewritten on the way)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from specs_support import CORPUS

from reconciler.specs.convert import to_xml_text, to_yaml
from reconciler.specs.files import load_bytes

FILES = [
    *sorted((CORPUS / "tests/lxcxml2xmldata").glob("*.xml")),
    *sorted((CORPUS / "tests/domainschemadata").glob("*.xml")),
    *(CORPUS / "tests/networkxml2xmlin" / f"{name}.xml" for name in (
        "nat-network", "dhcp6host-routed-network", "netboot-network", "hostdev",
        "host-bridge-net", "nat-network-dns-hosts", "nat-network-mtu", "metadata")),
]
JUNK = ("x", "-1", "")


def mutations(path: Path) -> list[tuple[str, bytes]]:
    """(what changed, document) for every text and attribute of every element."""
    out = []
    count = len(list(etree.fromstring(path.read_bytes()).iter()))
    for index in range(count):
        for junk in JUNK:
            root = etree.fromstring(path.read_bytes())
            el = list(root.iter())[index]
            if not isinstance(el.tag, str):
                continue
            if el.text and el.text.strip():
                el.text = junk
                out.append((f"<{el.tag}> text={junk!r}", etree.tostring(root)))
                el.text = "placeholder"
            for attr in list(el.attrib):
                root = etree.fromstring(path.read_bytes())
                target = list(root.iter())[index]
                target.set(attr, junk)
                out.append((f"<{target.tag} {attr}={junk!r}>", etree.tostring(root)))
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_junk_values_load_cleanly_or_fail_with_a_located_error(path: Path) -> None:
    loaded_ok = 0
    for what, data in mutations(path):
        loaded = load_bytes(data, "m.xml")  # must not raise
        if not loaded.ok:
            err = loaded.errors[0]
            assert err.location is not None and err.location.line >= 1, what
            assert str(err).startswith("m.xml:"), (what, str(err))
            continue
        loaded_ok += 1
        obj = loaded.objects[0][0]
        again_xml = load_bytes(to_xml_text(obj).encode(), "again.xml")
        again_yaml = load_bytes(to_yaml([obj]).encode(), "again.yaml")
        assert again_xml.ok and again_xml.objects[0][0] == obj, (what, again_xml.errors)
        assert again_yaml.ok and again_yaml.objects[0][0] == obj, (what, again_yaml.errors)
    assert loaded_ok > 0  # the unchanged parts of the file still load
