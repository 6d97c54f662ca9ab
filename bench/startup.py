"""Start-up time of each CLI command an operator types often, next to the floor: the same
interpreter starting and doing nothing (`python -c pass`), measured in the same run.

    python bench/startup.py [REPEAT]      (default 15)

Each figure is the median wall time of REPEAT runs of a fresh process; the commands run on
`sim` against an empty state directory, so what is measured is what the command loads, not
what it reads.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [
    ("--version", ["--version"]),
    ("--help", ["--help"]),
    ("status", ["status", "--state-dir", "{state}"]),
    ("show (sim)", ["show", "--state-dir", "{state}"]),
    ("plan (sim, 1 spec)", ["plan", "{spec}", "--state-dir", "{state}"]),
    ("validate (1 spec)", ["validate", "{spec}"]),
]
SPEC = "kind: Domain\nname: s1\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n"


def run(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{tmp}/s1.yaml"
        with open(spec, "w") as f:
            f.write(SPEC)
        floor = run([sys.executable, "-c", "pass"], repeat)
        print(f"{'command':<22} {'median':>8} {'over floor':>11}")
        print(f"{'python -c pass':<22} {floor:7.3f}s {'':>11}")
        for label, args in COMMANDS:
            argv = [sys.executable, "-m", "reconciler",
                    *(a.format(state=f"{tmp}/state", spec=spec) for a in args)]
            took = run(argv, repeat)
            print(f"{label:<22} {took:7.3f}s {took - floor:+10.3f}s")


if __name__ == "__main__":
    main()
