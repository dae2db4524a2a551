"""Regenerate the fit table in docs/collectives.md from the shipped microbenchmarks (a dev
script; tests/test_docs_current.py fails when the page is stale).

    python scripts/write_collectives_doc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "collectives.md"
BEGIN, END = "<!-- fit table: begin -->", "<!-- fit table: end -->"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from mlsysim.core.collectives import fit_report

    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{fit_report()}{END}{tail}")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
