"""Every libvirt corpus file: XML -> model -> YAML -> model -> XML keeps its meaning, and what
we write is valid against libvirt's own RelaxNG schemas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree
from specs_support import CORPUS, SCHEMAS, pretty_meaning, run_cli, xml_meaning

from reconciler.specs import rng
from reconciler.specs.convert import to_xml_text, to_yaml
from reconciler.specs.files import load_bytes, load_file
from reconciler.specs.loader import load_paths

FOLDERS = ("tests/lxcxml2xmldata", "tests/domainschemadata", "tests/networkxml2xmlin")
# networkxml2xmltest.c expects libvirt to refuse these four inputs
REJECTED_BY_LIBVIRT = {"routed-network-no-dns-extra-elements", "open-network-with-forward-dev",
                       "hostdev-duplicate", "passthrough-duplicate"}
# 13 LXC round-trip files + 4 schema examples + (47 network inputs - 4 rejected)
EXPECTED_FILES = 13 + 4 + 43


def corpus_files() -> list[Path]:
    found = []
    for folder in FOLDERS:
        found.extend(p for p in sorted((CORPUS / folder).glob("*.xml"))
                     if p.stem not in REJECTED_BY_LIBVIRT)
    return found


FILES = corpus_files()
IDS = [f"{p.parent.name}/{p.name}" for p in FILES]


def round_trip(path: Path) -> tuple[str, str]:
    """(YAML text, XML text) after XML -> model -> YAML -> model -> XML."""
    loaded = load_file(path)
    assert loaded.ok, loaded.errors
    [(obj, _line)] = loaded.objects
    yaml_text = to_yaml([obj])
    again = load_bytes(yaml_text.encode(), "x.yaml")
    assert again.ok, (again.errors, yaml_text)
    [(obj2, _line2)] = again.objects
    assert obj2 == obj, yaml_text
    return yaml_text, to_xml_text(obj2)


def test_corpus_file_count() -> None:
    assert len(FILES) == EXPECTED_FILES, [p.name for p in FILES]
    # and the rejected inputs really are there to be skipped
    present = {p.stem for p in (CORPUS / "tests/networkxml2xmlin").glob("*.xml")}
    assert present >= REJECTED_BY_LIBVIRT


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_round_trip_keeps_meaning(path: Path) -> None:
    _yaml, xml_out = round_trip(path)
    assert pretty_meaning(xml_out) == pretty_meaning(path.read_bytes())


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_written_xml_matches_libvirt_schema(path: Path) -> None:
    _yaml, xml_out = round_trip(path)
    root = etree.fromstring(xml_out.encode())
    assert rng.validate_element(root, SCHEMAS) == []


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_corpus_input_matches_libvirt_schema(path: Path) -> None:
    """The comparison baseline itself is valid (so a writer bug cannot hide behind it)."""
    root = etree.fromstring(path.read_bytes())
    assert rng.validate_element(root, SCHEMAS) == []


def test_second_round_trip_is_stable() -> None:
    """Writing our own output again changes nothing, byte for byte."""
    for path in FILES:
        _yaml, xml_out = round_trip(path)
        again = load_bytes(xml_out.encode(), "again.xml")
        assert again.ok, (path.name, again.errors)
        assert to_xml_text(again.objects[0][0]) == xml_out, path.name


# ------------------------------------------------------------------ the comparator itself

def test_meaning_ignores_what_libvirt_ignores() -> None:
    a = """<domain type='lxc'><name>a</name>
             <memory unit='MiB'>1</memory><vcpu placement='static'>1</vcpu>
             <metadata><rc:spec xmlns:rc='urn:reconciler:spec:1'><rc:state>running</rc:state>
             </rc:spec></metadata>
             <devices><interface type='ethernet'><ip address='10.0.0.1' family='ipv4'/>
             </interface></devices></domain>"""
    b = """<domain type='lxc'><devices><interface type='ethernet'><ip address='10.0.0.1'/>
             </interface></devices><vcpu>1</vcpu><memory>1024</memory><name>a</name></domain>"""
    assert xml_meaning(a) == xml_meaning(b)


def test_meaning_sees_real_differences() -> None:
    base = "<domain type='lxc'><name>a</name><memory>1024</memory>{}</domain>"
    args = "<os><type>exe</type><init>/i</init><initarg>{}</initarg><initarg>{}</initarg></os>"
    assert xml_meaning(base.format(args.format("x", "y"))) != \
        xml_meaning(base.format(args.format("y", "x")))
    assert xml_meaning(base.format("")) != xml_meaning(base.format("<vcpu>2</vcpu>"))
    assert xml_meaning("<domain><memory>1</memory></domain>") != \
        xml_meaning("<domain><memory unit='bytes'>1</memory></domain>")
    fs = "<devices><filesystem type='ram'><source usage='{}' {}/></filesystem></devices>"
    assert xml_meaning(base.format(fs.format("1024", ""))) == \
        xml_meaning(base.format(fs.format("1048576", "units='bytes'")))
    assert xml_meaning("<network><forward dev='e'/></network>") == \
        xml_meaning("<network><forward mode='nat' dev='e'><interface dev='e'/></forward>"
                    "</network>")
    assert xml_meaning("<network><forward dev='e'/></network>") != \
        xml_meaning("<network><forward mode='route' dev='e'/></network>")


# ------------------------------------------------------------------ `validate --schema`

def _batches_without_conflicts(paths: list[Path]) -> list[list[Path]]:
    """The corpus reuses names ('default', 'demo'), UUIDs and MACs across files, which one spec
    directory rightly refuses; split it into groups that can be validated together."""
    batches: list[list[Path]] = []
    for path in paths:
        for batch in batches:
            if not load_paths([*batch, path]).errors:
                batch.append(path)
                break
        else:
            batches.append([path])
    return batches


def test_validate_schema_accepts_every_corpus_file() -> None:
    batches = _batches_without_conflicts(FILES)
    assert sum(len(b) for b in batches) == EXPECTED_FILES
    assert len(batches) <= 28  # 28 networks are all called 'default'
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(
            lambda batch: run_cli("validate", "--schema", str(SCHEMAS), *map(str, batch)),
            batches))
    for batch, done in zip(batches, runs, strict=True):
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert f"{len(batch)} files, {len(batch)} objects: valid" in done.stdout


def test_validate_schema_in_process_for_every_corpus_file() -> None:
    for path in FILES:
        assert rng.validate_file(path, SCHEMAS) == [], path.name


def test_schema_dir_lookup() -> None:
    assert rng.schema_dir(str(SCHEMAS)) == SCHEMAS
    assert rng.schema_dir(str(SCHEMAS / "nonexistent")) is None


def test_validate_schema_rejects_invalid_libvirt_xml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain type='lxc'>\n  <name>bad</name>\n  <memory unit='KiB'>1024</memory>\n"
                   "  <clock offset='sideways'/>\n</domain>\n")
    done = run_cli("validate", "--schema", str(SCHEMAS), str(bad))
    assert done.returncode == 1
    assert f"{bad}:" in done.stdout
    assert "schema" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_validate_schema_dir_without_schemas(tmp_path: Path) -> None:
    spec = FILES[0]
    done = run_cli("validate", "--schema", str(tmp_path), str(spec))
    assert done.returncode == 1
    assert "domain.rng" in done.stderr
