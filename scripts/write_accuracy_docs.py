"""Regenerate docs/accuracy.md and mlsysim/validation/accuracy_baseline.json (a dev script).

Run from the repository root after a change that moves the accuracy figures, and explain the
change in the commit::

    python scripts/write_accuracy_docs.py            # write both files
    python scripts/write_accuracy_docs.py --check    # exit 1 if either would change

The page is the package's ``accuracy_template.md`` filled from one validation run; the
baseline holds the per-category figures the regression guard in tests/test_accuracy.py
compares against. The package itself never writes into the source tree: this script does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "accuracy.md"
BASELINE = ROOT / "mlsysim" / "validation" / "accuracy_baseline.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a file is out of date")
    ap.add_argument("--doc", type=Path, default=DOC, help=f"page to write (default: {DOC})")
    ap.add_argument("--baseline", type=Path, default=BASELINE,
                    help=f"baseline to write (default: {BASELINE})")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))  # the working tree's package, not an installed copy
    from mlsysim.validation.harness import run_validation
    from mlsysim.validation.report import baseline_from, render_markdown

    report = run_validation()
    outputs = {args.doc: render_markdown(report),
               args.baseline: json.dumps(baseline_from(report), indent=2) + "\n"}
    stale = [p for p, text in outputs.items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"out of date: {p}")
        return 1 if stale else 0
    for p, text in outputs.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
