"""`reconciler graph`: the plan's step graph, from specs or a saved plan, as Mermaid (accepted
by Mermaid's own parser) or DOT (accepted by Graphviz)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.mermaid.oracles import dot, mermaid_parsed

NET = "kind: Network\nname: lan\nbridge: {name: vblan}\n"
VM = ("kind: Domain\nname: web\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n"
      "interfaces: [{type: network, source: lan}]\n")


def world(tmp_path: Path) -> tuple[Path, Path]:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "net.yaml").write_text(NET)
    (specs / "vm.yaml").write_text(VM)
    return specs, tmp_path / "state"


def test_mermaid_from_specs_and_from_a_saved_plan_agree(tmp_path: Path) -> None:
    specs, state = world(tmp_path)
    live = run_cli("graph", str(specs), "--state-dir", str(state))
    assert live.returncode == 0, live.stderr
    saved = tmp_path / "p.plan"
    assert run_cli("plan", str(specs), "--state-dir", str(state), "--out",
                   str(saved)).returncode == 0
    again = run_cli("graph", str(saved))
    assert again.returncode == 0 and again.stdout == live.stdout
    parsed = mermaid_parsed(live.stdout)
    assert parsed  # Mermaid read it


def test_dot_is_accepted_by_graphviz_and_orders_network_before_domain(tmp_path: Path) -> None:
    specs, state = world(tmp_path)
    res = run_cli("graph", str(specs), "--state-dir", str(state), "--format", "dot")
    assert res.returncode == 0, res.stderr
    done = dot(res.stdout)
    assert done.returncode == 0, done.stderr
    assert "network/lan" in res.stdout and "domain/web" in res.stdout


def test_a_broken_spec_is_an_error_and_still_graphs_the_rest(tmp_path: Path) -> None:
    specs, state = world(tmp_path)
    (specs / "bad.yaml").write_text("kind: Domain\nname: x\n")
    res = run_cli("graph", str(specs), "--state-dir", str(state))
    assert res.returncode == 1
    assert "bad.yaml" in res.stderr and "domain/web" in res.stdout
