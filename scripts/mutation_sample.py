"""A random sample of mutmut's mutants of core/, solvers/ and workloads/, run and tallied.

All ~21,000 mutants at ~6 s each would take about a day and a half on two cores; a uniform
sample of a few hundred estimates the kill rate to a few points (the 95% Wilson interval is
printed). Usage, after ``pip install -e ".[mutation]"``::

    python scripts/mutation_sample.py              # 300 mutants, seed 20261201
    python scripts/mutation_sample.py --size 100 --seed 7
    python scripts/mutation_sample.py --tally      # re-read the last sample's results

The sample's names are kept in ``mutants/sample.txt``; ``mutmut results`` and ``mutmut show
NAME`` read the outcomes afterwards. docs/testing.md records the last run and judges its
survivors.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "mutants" / "sample.txt"
# Every mutant runs in a fresh interpreter that imports the trampolined sources; without
# bytecode caches each one recompiles them (~15 s here, over the CPU limit of most mutants,
# which then read as timeouts), so a PYTHONDONTWRITEBYTECODE in the environment is dropped.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _results() -> dict[str, str]:
    """Every mutant's status by name (``mutmut results --all true``)."""
    out = subprocess.run(["mutmut", "results", "--all", "true"], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout
    status = {}
    for line in out.splitlines():
        name, sep, state = line.strip().rpartition(": ")
        if sep:
            status[name] = state
    return status


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def tally(names: list[str]) -> int:
    status = _results()
    counts: dict[str, list[str]] = {}
    for name in names:
        counts.setdefault(status.get(name, "missing"), []).append(name)
    for state in sorted(counts):
        print(f"{state:>12}: {len(counts[state])}")
    killed = len(counts.get("killed", []))
    judged = killed + len(counts.get("survived", [])) + len(counts.get("timeout", []))
    lo, hi = _wilson(killed, judged)
    print(f"killed {killed} of {judged} run ({100 * killed / max(judged, 1):.1f} %, 95 % "
          f"interval {100 * lo:.1f}-{100 * hi:.1f} %); 'no tests' means no test calls the code")
    for name in counts.get("survived", []) + counts.get("no tests", []):
        print(f"  {status[name]:>9}  {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--tally", action="store_true", help="only tally the last sample")
    args = ap.parse_args(argv)
    if args.tally:
        return tally(SAMPLE.read_text().split())
    # Generate (or refresh) the mutants: a filter that matches none stops mutmut right after
    # generation, before its stats run.
    subprocess.run(["mutmut", "run", "mlsysim.no_such_function_*"], cwd=ROOT, env=ENV,
                   capture_output=True)
    names = sorted(_results())
    if not names:
        print("mutmut generated no mutants (is the 'mutation' extra installed?)")
        return 1
    sample = sorted(random.Random(args.seed).sample(names, min(args.size, len(names))))
    SAMPLE.write_text("\n".join(sample) + "\n")
    print(f"{len(sample)} of {len(names)} mutants (seed {args.seed}) -> {SAMPLE}")
    subprocess.run(["mutmut", "run", *sample], cwd=ROOT, env=ENV)
    return tally(sample)


if __name__ == "__main__":
    sys.exit(main())
