"""Predict every published measurement in ``reference/reference.csv`` and report the error.

The measurements are used to *check* the model, never to fit it: no adapter reads a measured
value, and no row has its own setting. Every row gets a status:

- ``ok``: predicted; signed error = predicted / measured - 1, and whether the measurement lies
  inside the prediction's calibration band;
- ``infeasible``: predicted, but the model says the measured configuration does not fit in
  memory (a model error of its own kind: listed, kept out of the error statistics);
- ``skipped``: not predictable yet, with a reason (unknown zoo name, no training solver,
  lengths not published, ...). Rows are never dropped silently.

This module only orchestrates: the schema is in :mod:`~mlsysim.validation.reference`, the
prediction of a row in :mod:`~mlsysim.validation.adapters`, the statistics in
:mod:`~mlsysim.validation.stats` and the report in :mod:`~mlsysim.validation.report`; their
public names are re-exported here. The command line is ``mlsysim validate``; the dev script
``scripts/write_accuracy_docs.py`` writes docs/accuracy.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import ValidationError
from .adapters import SKIP_CODES, Prediction, predict_row
from .reference import (
    CATEGORIES,
    COLUMNS,
    METRICS,
    REFERENCE_CSV,
    ReferenceRow,
    known_categories,
    load_reference,
)
from .report import BASELINE_JSON, RowResult, ValidationReport, baseline_from, render_markdown

__all__ = ["run_validation", "load_reference", "predict_row", "render_markdown",
           "baseline_from", "ReferenceRow", "Prediction", "RowResult", "ValidationReport",
           "REFERENCE_CSV", "BASELINE_JSON", "CATEGORIES", "METRICS", "COLUMNS", "SKIP_CODES"]


def run_validation(categories: Iterable[str] | None = None,
                   path: str | Path | None = None) -> ValidationReport:
    """Predict every row of the reference file (or those of ``categories``) and report.

    Parameters
    ----------
    categories : iterable of str, optional
        Only rows of these categories (see
        :func:`~mlsysim.validation.reference.known_categories`); default: every category that
        has rows, in the schema's order.
    path : str or Path, optional
        A reference file; default: the package's ``reference/reference.csv``.

    Returns
    -------
    ValidationReport

    Raises
    ------
    ValidationError
        For an unknown category.
    DataFileError
        For a malformed reference file.

    Examples
    --------
    >>> report = run_validation(["recsys_inference"])
    >>> report.summary["recsys_inference"]["n_rows"]
    2
    """
    t0 = time.perf_counter()
    known = known_categories()
    if categories is not None:
        categories = tuple(categories)
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise ValidationError("categories", f"contains unknown {', '.join(map(repr, unknown))}"
                                  f"; choose from {', '.join(known)}.", owner="run_validation")
    rows = load_reference(path)
    wanted = categories or tuple(c for c in known if any(r.category == c for r in rows))
    results = [RowResult(r, predict_row(r)) for r in rows if r.category in wanted]
    return ValidationReport(results=results, categories=tuple(wanted),
                            reference=str(Path(path) if path else REFERENCE_CSV),
                            elapsed_s=time.perf_counter() - t0)
