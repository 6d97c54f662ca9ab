"""Bad spec files through the real CLI: exit 1, `FILE:LINE:COL: error: <what is wrong>`, the
line of the offending key or element, never a traceback, and no trust given to the input."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from specs_support import REPO, run_cli

SEEDS = (REPO / ".." / "shared" / "seeds").resolve()
SECRET = "s3cr3t-never-to-be-shown-0d5f"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    bad: str  # the file the error is charged to
    word: str  # a distinctive word of the message
    line: int | None = None  # expected line of the error, when it is known
    whole_dir: bool = False  # validate the directory (checks across files)
    absent: tuple[str, ...] = field(default=())  # text that must not appear in the output


def domain(name: str, *lines: str, kind: str = "lxc") -> str:
    return "\n".join(["kind: Domain", f"name: {name}", f"type: {kind}", *lines]) + "\n"


def vserver_as_mailed() -> str:
    """The VServer proposal exactly as mailed (seeds/000): its tags are never closed."""
    text = (SEEDS / "000_996b76f283aa57b2.txt").read_text()
    start = text.index("<domain type='vserver'")
    end = text.index("I realize this is not")
    return text[start:end].rstrip() + "\n"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<domain type='lxc'><name>x</name><description>&lol9;</description></domain>
"""
QUADRATIC = ('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "' + "A" * 20000 + '">]>\n'
             "<domain type='lxc'><name>x</name><description>" + "&a;" * 20000 +
             "</description></domain>\n")
YAML_BOMB = "\n".join([
    "kind: Domain", "name: bomb", "type: lxc",
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi",
                                                              strict=True)),
    "hosts: *i", ""])


def cases(tmp: Path) -> list[Case]:
    secret_file = tmp / "secret.txt"
    return [
        # ---- malformed input
        Case("vserver-proposal-as-mailed", {"testvm.xml": vserver_as_mailed()}, "testvm.xml",
             "malformed XML", line=24),
        Case("xml-unclosed", {"a.xml": "<domain type='lxc'>\n  <name>a</name>\n  <memory>1"},
             "a.xml", "malformed XML", line=3),
        Case("xml-mismatched-tag", {"a.xml": "<domain type='lxc'>\n<name>a</nme>\n</domain>\n"},
             "a.xml", "malformed XML", line=2),
        Case("yaml-bad-indent", {"a.yaml": "kind: Domain\nname: a\n  type: lxc\n"}, "a.yaml",
             "malformed YAML", line=3),
        Case("empty-file", {"a.yaml": ""}, "a.yaml", "empty", line=1),
        Case("whitespace-only", {"a.xml": "\n\n   \n"}, "a.xml", "empty", line=1),
        Case("binary-garbage", {"a.yaml": bytes(range(256)) * 8}, "a.yaml", "binary", line=1),
        Case("not-utf8", {"a.yaml": b"kind: Domain\nname: caf\xe9\n"}, "a.yaml", "UTF-8"),
        Case("yaml-list-at-top", {"a.yaml": "- kind: Domain\n  name: a\n"}, "a.yaml",
             "not a mapping", line=1),
        Case("unknown-root-element", {"a.xml": "<?xml version='1.0'?>\n<container/>\n"}, "a.xml",
             "unknown root element", line=2),
        # ---- hostile input
        Case("billion-laughs", {"a.xml": BILLION_LAUGHS}, "a.xml", "DOCTYPE", line=2),
        Case("quadratic-blowup", {"a.xml": QUADRATIC}, "a.xml", "DOCTYPE", line=2),
        Case("external-entity-local-file",
             {"a.xml": f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM '
                       f'"file://{secret_file}">]>\n'
                       "<domain type='lxc'><name>&x;</name></domain>\n",
              "secret.txt": SECRET + "\n"}, "a.xml", "DOCTYPE", line=2, absent=(SECRET,)),
        Case("yaml-python-tag",
             {"a.yaml": domain("a", "description: !!python/object/apply:os.system ['id']")},
             "a.yaml", "!!python", line=4),
        Case("yaml-alias-bomb", {"a.yaml": YAML_BOMB}, "a.yaml", "alias bomb"),
        Case("yaml-recursive-alias", {"a.yaml": domain("a", "hosts: &h [x, *h]")}, "a.yaml",
             "refers to"),
        Case("yaml-deep-nesting", {"a.yaml": "a: " + "[" * 20000 + "]" * 20000 + "\n"},
             "a.yaml", "nested", line=1),
        # ---- wrong values
        Case("wrong-type-int", {"a.yaml": domain("a", "cpu:", "  count: many")}, "a.yaml",
             "whole number", line=5),
        Case("wrong-type-bool", {"a.yaml": domain("a", "autostart: sometimes")}, "a.yaml",
             "true or false", line=4),
        Case("negative-size", {"a.yaml": domain("a", "memory: -512MiB")}, "a.yaml", "negative",
             line=4),
        Case("absurd-size", {"a.yaml": domain("a", "memory: 99999999TiB")}, "a.yaml",
             "absurdly large", line=4),
        Case("unknown-unit", {"a.yaml": domain("a", "memory: 5 parsecs")}, "a.yaml",
             "unknown unit", line=4),
        Case("negative-id", {"a.yaml": domain("a", "id: -3", kind="openvz")}, "a.yaml",
             "greater than or equal", line=4),
        Case("xml-negative-memory",
             {"a.xml": "<domain type='lxc'>\n  <name>a</name>\n  <memory unit='KiB'>-1</memory>\n"
                       "</domain>\n"}, "a.xml", "not a size", line=3),
        Case("xml-unknown-unit",
             {"a.xml": "<domain type='lxc'>\n  <name>a</name>\n  <memory unit='parsec'>1</memory>"
                       "\n</domain>\n"}, "a.xml", "unknown unit", line=3),
        Case("unknown-kind", {"a.yaml": "kind: Gadget\nname: a\n"}, "a.yaml", "unknown kind",
             line=1),
        Case("unknown-field", {"a.yaml": domain("a", "memroy: 1GiB")}, "a.yaml",
             "did you mean 'memory'", line=4),
        Case("unknown-nested-field",
             {"a.yaml": domain("a", "interfaces:", "  - type: bridge", "    sorce: br0")},
             "a.yaml", "did you mean 'source'", line=6),
        Case("xml-extension-unknown-field",
             {"a.xml": "<domain type='lxc'>\n<name>a</name>\n<metadata>\n"
                       "<rc:spec xmlns:rc='urn:reconciler:spec:1'>\n<rc:memory>1</rc:memory>\n"
                       "</rc:spec></metadata></domain>\n"}, "a.xml", "unknown field", line=5),
        Case("xml-extension-bad-state",
             {"a.xml": "<domain type='lxc'>\n<name>a</name>\n<metadata>\n"
                       "<rc:spec xmlns:rc='urn:reconciler:spec:1'>\n<rc:state>asleep</rc:state>\n"
                       "</rc:spec></metadata></domain>\n"}, "a.xml", "'running'", line=5),
        Case("beancounter-barrier-above-limit",
             {"a.yaml": domain("a", "limits:", "  numproc: [100, 50]", kind="openvz")},
             "a.yaml", "barrier 100 is above limit 50", line=5),
        Case("unknown-beancounter",
             {"a.yaml": domain("a", "limits:", "  numprocs: [1, 1]", kind="openvz")}, "a.yaml",
             "unknown beancounter", line=5),
        # ---- names and paths that would reach a shell or the file system
        Case("name-shell-command", {"a.yaml": domain('"a;rm -rf /"')}, "a.yaml", "not a valid name",
             line=2),
        Case("name-command-substitution", {"a.yaml": domain('"$(id)"')}, "a.yaml",
             "not a valid name", line=2),
        Case("name-path-traversal", {"a.yaml": domain('"../etc"')}, "a.yaml", "not a valid name",
             line=2),
        Case("xml-name-shell", {"a.xml": "<domain type='lxc'>\n<name>`reboot`</name>\n</domain>"},
             "a.xml", "not a valid name", line=2),
        Case("mount-source-dotdot",
             {"a.yaml": domain("a", "filesystems:", "  - type: mount", "    source: /srv/../etc",
                               "    target: /x")}, "a.yaml", "'..'", line=6),
        Case("mount-source-relative",
             {"a.yaml": domain("a", "filesystems:", "  - {type: mount, source: srv, target: /x}")},
             "a.yaml", "absolute", line=5),
        Case("device-name-shell",
             {"a.yaml": domain("a", "interfaces:", "  - {type: bridge, source: 'br0;reboot'}")},
             "a.yaml", "device name", line=5),
        # ---- missing and malformed fields
        Case("missing-name", {"a.yaml": "kind: Domain\ntype: lxc\n"}, "a.yaml",
             "required field is missing", line=1),
        Case("missing-type", {"a.yaml": "kind: Domain\nname: a\n"}, "a.yaml", "one of: lxc",
             line=1),
        Case("missing-template-name",
             {"a.yaml": domain("a", "filesystems:", "  - {type: template, target: /}")},
             "a.yaml", "needs 'name'", line=5),
        Case("bad-ip", {"a.yaml": domain("a", "interfaces:", "  - type: routed",
                                         "    ip: [192.0.2.300/24]")},
             "a.yaml", "not an IP address", line=6),
        Case("xml-bad-ip",
             {"a.xml": "<domain type='lxc'>\n<name>a</name>\n<devices>\n"
                       "<interface type='ethernet'>\n<ip address='10.0.0.999'/>\n</interface>\n"
                       "</devices></domain>\n"}, "a.xml", "not an IP address", line=4),
        Case("bad-mac", {"a.yaml": domain("a", "interfaces:", "  - type: bridge",
                                          "    source: br0", "    mac: '52:54:00:zz:00:01'")},
             "a.yaml", "MAC address", line=7),
        Case("prefix-out-of-range",
             {"a.yaml": domain("a", "interfaces:", "  - {type: routed, ip: ['2001:db8::1/129']}")},
             "a.yaml", "out of range", line=5),
        Case("quota-soft-above-hard",
             {"a.yaml": domain("a", "quota:", "  space: [2GiB, 1GiB]", kind="openvz")},
             "a.yaml", "soft limit 2GiB is above hard limit 1GiB", line=5),
        Case("xml-quota-soft-above-hard",
             {"a.xml": "<domain type='openvz'>\n<name>a</name>\n<devices>\n"
                       "<filesystem type='template'><source name='t'/><target dir='/'/>\n"
                       "<space_hard_limit>1</space_hard_limit><space_soft_limit>2"
                       "</space_soft_limit>\n</filesystem></devices></domain>\n"},
             "a.xml", "soft limit", line=4),
    ]


def cross_file_cases() -> list[Case]:
    ct = "kind: Domain\nname: {name}\ntype: openvz\nid: {id}\n"
    nic = "interfaces:\n  - type: bridge\n    source: br0\n    mac: '{mac}'\n"
    return [
        Case("duplicate-names", {"a.yaml": domain("web"), "b.yaml": domain("web")}, "b.yaml",
             "duplicate Domain name", line=2, whole_dir=True),
        Case("duplicate-ctids",
             {"a.yaml": ct.format(name="one", id=105), "b.yaml": ct.format(name="two", id=105)},
             "b.yaml", "openvz id 105 is already used", line=4, whole_dir=True),
        Case("duplicate-uuids",
             {"a.yaml": domain("one", "uuid: 8dfd44b3-1e76-d8d3-3515-0a2d98211ea0"),
              "b.xml": "<domain type='lxc'>\n  <name>two</name>\n"
                       "  <uuid>8dfd44b31e76d8d335150a2d98211ea0</uuid>\n</domain>\n"},
             "b.xml", "UUID", line=3, whole_dir=True),
        Case("duplicate-macs",
             {"a.yaml": domain("one") + nic.format(mac="52:54:00:00:00:01"),
              "b.yaml": domain("two") + nic.format(mac="52:54:00:00:00:01")},
             "b.yaml", "MAC 52:54:00:00:00:01 is already used", line=7, whole_dir=True),
        Case("same-ip-on-two-domains",
             {"a.yaml": domain("one", "interfaces:", "  - {type: routed, ip: [192.0.2.5/24]}"),
              "b.yaml": domain("two", "interfaces:", "  - type: routed",
                               "    ip: [192.0.2.7/24, 192.0.2.5/24]")},
             "b.yaml", "IP address 192.0.2.5", line=6, whole_dir=True),
        Case("unknown-profile",
             {"a.yaml": domain("one", "profile: vps.huge", kind="openvz")}, "a.yaml",
             "profile 'vps.huge' is not defined", line=4, whole_dir=True),
        Case("unknown-network",
             {"a.yaml": domain("one", "interfaces:", "  - type: network", "    source: nonet")},
             "a.yaml", "network 'nonet' is not defined", line=6, whole_dir=True),
        Case("unknown-depends-on",
             {"a.yaml": domain("one", "depends_on: [db]")}, "a.yaml", "depends_on names 'db'",
             line=4, whole_dir=True),
        Case("dependency-cycle",
             {"a.yaml": domain("one", "depends_on: [two]"),
              "b.yaml": domain("two", "depends_on: [three]"),
              "c.yaml": domain("three", "depends_on: [one]")},
             "a.yaml", "dependency cycle", line=4, whole_dir=True),
    ]


def write(tmp: Path, case: Case) -> Path:
    folder = tmp / "specs"
    folder.mkdir()
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def check(case: Case, tmp: Path) -> None:
    folder = write(tmp, case)
    target = folder if case.whole_dir else folder / case.bad
    done = run_cli("validate", str(target))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    pattern = re.compile(rf"^{re.escape(str(folder / case.bad))}:(\d+):(\d+): error: (.*)$",
                         re.MULTILINE)
    found = [m for m in pattern.finditer(done.stdout) if case.word in m.group(3)]
    assert found, f"no error naming {case.word!r} for {case.bad}:\n{output}"
    if case.line is not None:
        assert int(found[0].group(1)) == case.line, found[0].group(0)
    for text in case.absent:
        assert text not in output


ALL_IDS = [c.id for c in cases(Path("/x"))]
CROSS_IDS = [c.id for c in cross_file_cases()]


def test_there_are_enough_cases() -> None:
    assert len(ALL_IDS) + len(CROSS_IDS) >= 30
    assert len(set(ALL_IDS + CROSS_IDS)) == len(ALL_IDS + CROSS_IDS)


@pytest.mark.parametrize("case_id", ALL_IDS)
def test_bad_file(case_id: str, tmp_path: Path) -> None:
    [case] = [c for c in cases(tmp_path / "specs") if c.id == case_id]
    check(case, tmp_path)


@pytest.mark.parametrize("case_id", CROSS_IDS)
def test_conflict_across_files(case_id: str, tmp_path: Path) -> None:
    [case] = [c for c in cross_file_cases() if c.id == case_id]
    check(case, tmp_path)


def test_only_the_later_file_is_charged_with_a_duplicate(tmp_path: Path) -> None:
    folder = write(tmp_path, cross_file_cases()[0])
    done = run_cli("validate", "--format", "json", str(folder))
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert {e["file"] for e in report["errors"]} == {str(folder / "b.yaml")}


def test_file_of_50_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    """The tail of the file is a YAML python tag: had the file been parsed, the error would
    name the tag; it names the size instead."""
    big = tmp_path / "big.yaml"
    with big.open("w") as out:
        out.write(domain("big"))
        line = "# " + "x" * 1021 + "\n"
        for _ in range(50 * 1024):
            out.write(line)
        out.write("description: !!python/object/apply:os.system ['id']\n")
    assert big.stat().st_size > 50 * 1024 * 1024
    done = run_cli("validate", str(big), timeout=60)
    assert done.returncode == 1
    assert re.search(rf"^{re.escape(str(big))}:1:1: error: .*refused before parsing",
                     done.stdout, re.MULTILINE), done.stdout
    assert "python" not in done.stdout


def test_json_format_reports_each_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(domain("a", "memory: lots", "cpu:", "  count: 0"))
    done = run_cli("validate", "--format", "json", str(bad))
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is False and report["files"] == 1 and report["objects"] == 0
    assert [(e["file"], e["line"], e["severity"]) for e in report["errors"]] == \
        [(str(bad), 4, "error"), (str(bad), 6, "error")]
    assert "memory" in report["errors"][0]["message"]
    assert "greater than or equal to 1" in report["errors"][1]["message"]


def test_missing_path(tmp_path: Path) -> None:
    done = run_cli("validate", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert f"{tmp_path / 'nowhere'}:1:1: error: no such file or directory" in done.stdout


def test_a_good_file_next_to_bad_ones_still_loads(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(domain("good"))
    (tmp_path / "bad.yaml").write_text(domain("bad", "memory: lots"))
    done = run_cli("validate", "--format", "json", str(tmp_path))
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["objects"] == 1
    assert [e["file"] for e in report["errors"]] == [str(tmp_path / "bad.yaml")]
