"""Commands an operator types often start without loading what reads specs: a stray
top-level import would quietly bring the whole model (pydantic) back into every start-up.
(The time itself is measured by bench/startup.py, never asserted here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pydantic", "reconciler.model.domain", "reconciler.specs.loader",
         "reconciler.specs.files", "reconciler.specs.xml_read", "reconciler.specs.yaml_io",
         "lxml", "yaml")
PROBE = """
import json, sys
from reconciler.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}),
      file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def loaded_by(*args: str) -> tuple[object, list[str]]:
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         timeout=60, check=False)
    last = res.stderr.strip().split("\n")[-1]
    report = json.loads(last)
    return report["code"], report["loaded"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["status"], ["show"],
                                  ["show", "--format", "json"]])
def test_light_commands_load_no_spec_reader(tmp_path: Path, args: list[str]) -> None:
    extra = ["--state-dir", str(tmp_path / "state")] if args[0] in ("status", "show") else []
    code, loaded = loaded_by(*args, *extra)
    assert code in (0, 3), code  # status exits 3 when no agent ran here
    assert loaded == []


def test_the_probe_sees_a_command_that_reads_specs(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("kind: Domain\nname: s\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n")
    code, loaded = loaded_by("validate", str(spec))
    assert code == 0 and "pydantic" in loaded
