"""Error statistics of predictions against measurements.

Signed error = predicted / measured - 1 (positive: the model predicts more than was measured;
for a latency that means slower, for a throughput faster). The summaries use |error| over the
rows whose status is ``ok``; ``infeasible`` and ``skipped`` rows are counted, never averaged.
Band coverage is the share of ``ok`` rows whose measurement lies inside the prediction's
calibration band.

The functions take any objects with the attributes of
:class:`~mlsysim.validation.report.RowResult` (``status``, ``signed_error``, ``abs_error``,
``inside_band``, ``row.id``, ``row.category``, ``row.source_key``, ``row.hardware``,
``row.metric``). Left out: formatting (``report``) and anything that reads the reference file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["signed_error", "inside_band", "quantile", "band_coverage", "summarize",
           "summaries", "group_by_source"]


def signed_error(predicted: float, measured: float) -> float:
    """predicted / measured - 1.

    Examples
    --------
    >>> round(signed_error(1.5, 1.0), 6), round(signed_error(0.5, 1.0), 6)
    (0.5, -0.5)
    """
    return predicted / measured - 1.0


def inside_band(measured: float, low: float | None, high: float | None) -> bool | None:
    """Whether ``measured`` lies in the band [min(low, high), max(low, high)] (``None``: no
    band). The edges may come in either order: a throughput's band is inverted from the
    latency band it is computed from.

    Examples
    --------
    >>> inside_band(2.0, 3.0, 1.0), inside_band(4.0, 1.0, 3.0), inside_band(1.0, None, None)
    (True, False, None)
    """
    if low is None or high is None:
        return None
    return min(low, high) <= measured <= max(low, high)


def quantile(xs: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile by linear interpolation between order statistics (numpy's default
    method); ``None`` for no values.

    Examples
    --------
    >>> quantile([4.0, 1.0, 3.0, 2.0], 0.5), quantile([1.0, 2.0, 3.0], 0.9), quantile([], 0.5)
    (2.5, 2.8, None)
    """
    xs = sorted(xs)
    if not xs:
        return None
    i = q * (len(xs) - 1)
    a, b = xs[int(math.floor(i))], xs[int(math.ceil(i))]
    return a + (b - a) * (i - math.floor(i))


def band_coverage(results: Iterable[Any]) -> float | None:
    """Share of ``ok`` results whose measurement is inside their band (``None``: no bands)."""
    band = [r.inside_band for r in results if r.status == "ok" and r.inside_band is not None]
    return (sum(band) / len(band)) if band else None


def summarize(results: Sequence[Any]) -> dict[str, Any]:
    """Counts by status, median / p90 / worst |error| (with the worst row's id), median signed
    error and band coverage of ``results``.

    Examples
    --------
    >>> summarize([])["n_rows"], summarize([])["median_abs_error"]
    (0, None)
    """
    ok = [r for r in results if r.status == "ok"]
    errs = [r.abs_error for r in ok]
    worst = max(ok, key=lambda r: r.abs_error) if ok else None
    return {
        "n_rows": len(results),
        "n_ok": len(ok),
        "n_infeasible": sum(r.status == "infeasible" for r in results),
        "n_skipped": sum(r.status == "skipped" for r in results),
        "median_abs_error": quantile(errs, 0.5),
        "p90_abs_error": quantile(errs, 0.9),
        "worst_abs_error": worst.abs_error if worst else None,
        "worst_id": worst.row.id if worst else None,
        "median_signed_error": quantile([r.signed_error for r in ok], 0.5),
        "band_coverage": band_coverage(ok),
    }


def summaries(results: Sequence[Any], categories: Iterable[str]) -> dict[str, dict[str, Any]]:
    """:func:`summarize` per category, in the order given, then ``"all"`` over every result."""
    out = {c: summarize([r for r in results if r.row.category == c]) for c in categories}
    out["all"] = summarize(results)
    return out


def group_by_source(results: Iterable[Any]) -> list[tuple[str, list[Any]]]:
    """``ok`` results grouped by "source / hardware / metric", sorted by that name."""
    groups: dict[str, list[Any]] = {}
    for r in results:
        if r.status == "ok":
            groups.setdefault(f"{r.row.source_key} / {r.row.hardware} / {r.row.metric}",
                              []).append(r)
    return sorted(groups.items(), key=lambda kv: kv[0])
