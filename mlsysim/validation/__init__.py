"""Validation of MLSys·im predictions against published end-to-end measurements.

``reference/reference.csv`` holds measured results (sources in ``reference/SOURCES.md``); they
are used only to *check* predictions, never to fit them. ``run_validation()`` predicts every
row with the public API and reports the error per row and per category; ``mlsysim validate``
is the command-line front end and ``docs/accuracy.md`` the generated summary.

Modules: ``reference`` (the schema of a row), ``adapters`` (row -> prediction, registered per
(category, metric)), ``stats`` (error statistics), ``report`` (tables, JSON and the Markdown
page from ``accuracy_template.md``) and ``harness`` (``run_validation``).

Names are loaded lazily so that ``import mlsysim.validation`` stays cheap.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "run_validation": "harness",
    "load_reference": "reference",
    "ReferenceRow": "reference",
    "REFERENCE_CSV": "reference",
    "CATEGORIES": "reference",
    "METRICS": "reference",
    "predict_row": "adapters",
    "Prediction": "adapters",
    "adapter": "adapters",
    "get_adapter": "adapters",
    "render_markdown": "report",
    "RowResult": "report",
    "ValidationReport": "report",
    "BASELINE_JSON": "report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mlsysim.validation' has no attribute '{name}'") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
