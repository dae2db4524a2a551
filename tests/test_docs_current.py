"""Generated documentation stays current with the code that generates it."""

from pathlib import Path

from mlsysim.core.collectives import fit_report

ROOT = Path(__file__).resolve().parents[1]


def test_collectives_fit_table_is_current():
    # Regenerate with: python scripts/write_collectives_doc.py
    assert fit_report() in (ROOT / "docs" / "collectives.md").read_text()
