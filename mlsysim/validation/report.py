"""The validation report: per-row results, per-category summaries and their renderings.

:class:`ValidationReport` holds every row's :class:`RowResult` and the summaries of
:mod:`~mlsysim.validation.stats`; it renders itself as rich tables (``mlsysim validate``) and
as JSON-ready data (``to_dict``). :func:`render_markdown` fills the Markdown template shipped
with the package (``accuracy_template.md``): the prose, including every sentence that names a
row, lives in that template and quotes row errors through placeholders, so the page states
the numbers of the run it was made from. :func:`baseline_from` gives the per-category figures
the regression guard compares against.

Left out: writing files. The package never writes into its own directory; the dev script
``scripts/write_accuracy_docs.py`` writes docs/accuracy.md and the baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFileError
from . import stats
from .adapters import SKIP_CODES, Prediction
from .reference import REFERENCE_CSV, ReferenceRow

__all__ = ["RowResult", "ValidationReport", "render_markdown", "baseline_from",
           "format_percent", "format_number", "TEMPLATE", "BASELINE_JSON", "BASELINE_TOLERANCE"]

TEMPLATE = Path(__file__).parent / "accuracy_template.md"
BASELINE_JSON = Path(__file__).parent / "accuracy_baseline.json"
# A category's median |error| may rise by at most this much above its baseline (a fraction).
BASELINE_TOLERANCE = 0.01


def format_percent(x: float | None, signed: bool = False) -> str:
    """A fraction as a percentage with one decimal (``"-"`` for ``None``; never ``-0.0%``).

    Examples
    --------
    >>> format_percent(0.1234), format_percent(-0.0004, signed=True), format_percent(None)
    ('12.3%', '0.0%', '-')
    >>> format_percent(0.5, signed=True)
    '+50.0%'
    """
    if x is None:
        return "-"
    x = round(x * 100, 1) + 0.0  # no "-0.0%"
    return f"{x:+.1f}%" if signed and x else f"{x:.1f}%"


def format_number(x: float | None) -> str:
    """Four significant digits (``"-"`` for ``None``).

    Examples
    --------
    >>> format_number(6105000.0), format_number(2.5764)
    ('6.105e+06', '2.576')
    """
    return "-" if x is None else f"{x:.4g}"


_pct, _num = format_percent, format_number


# --- the data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowResult:
    """One reference row and the prediction for it."""

    row: ReferenceRow
    prediction: Prediction

    @property
    def status(self) -> str:
        """``"ok"``, ``"infeasible"`` or ``"skipped"``."""
        return self.prediction.status

    @property
    def measured(self) -> float:
        """The published value, in the row's unit."""
        return self.row.value

    @property
    def predicted(self) -> float | None:
        """The predicted value, in the row's unit (``None`` when skipped)."""
        return self.prediction.value

    @property
    def signed_error(self) -> float | None:
        """predicted / measured - 1 (positive: the model predicts more than was measured)."""
        if self.prediction.value is None:
            return None
        return stats.signed_error(self.prediction.value, self.row.value)

    @property
    def abs_error(self) -> float | None:
        """|signed_error|."""
        e = self.signed_error
        return None if e is None else abs(e)

    @property
    def inside_band(self) -> bool | None:
        """Whether the measurement lies inside the prediction's calibration band."""
        return stats.inside_band(self.row.value, self.prediction.low, self.prediction.high)

    def to_dict(self) -> dict[str, Any]:
        """The row's fields, the prediction and its error (JSON-ready)."""
        r, p = self.row, self.prediction
        return {
            "id": r.id, "category": r.category, "model": r.model, "hardware": r.hardware,
            "num_devices": r.num_devices, "precision": r.precision or None,
            "batch_size": r.batch_size, "prompt_len": r.prompt_len, "output_len": r.output_len,
            "scenario": r.scenario, "metric": r.metric, "unit": r.unit,
            "source_key": r.source_key, "status": p.status, "measured": r.value,
            "predicted": p.value, "band_low": p.low, "band_high": p.high,
            "signed_error": self.signed_error, "abs_error": self.abs_error,
            "inside_band": self.inside_band, "reason": p.reason, "skip_code": p.code,
            "method": p.method or None, "assumptions": list(p.assumptions),
        }


@dataclass
class ValidationReport:
    """Every row's result and the summary per category (and over ``"all"``).

    Attributes
    ----------
    results : list of RowResult
        In the reference file's order.
    categories : tuple of str
        The categories validated, in report order.
    reference : str
        The reference file read.
    elapsed_s : float
        Wall time of the run, seconds.
    summary : dict
        :func:`~mlsysim.validation.stats.summaries` of ``results``.
    """

    results: list[RowResult]
    categories: tuple[str, ...]
    reference: str = str(REFERENCE_CSV)
    elapsed_s: float = 0.0
    summary: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self):
        self.summary = stats.summaries(self.results, self.categories)

    def by_status(self, status: str) -> list[RowResult]:
        """The results with that status, in file order."""
        return [r for r in self.results if r.status == status]

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        """Skipped rows counted per skip code, most frequent first."""
        counts: dict[str, int] = {}
        for r in self.by_status("skipped"):
            counts[r.prediction.code or "?"] = counts.get(r.prediction.code or "?", 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        """Summaries, skip reasons and (with ``rows``) every row's result (JSON-ready)."""
        d: dict[str, Any] = {
            "reference": self.reference,
            "error_definition": "signed_error = predicted / measured - 1; abs_error = "
                                "|signed_error|; band_coverage = share of ok rows whose "
                                "measurement lies inside the prediction's band",
            "categories": self.summary,
            "skipped_by_reason": self.skipped_by_reason,
            "skip_reason_text": {k: SKIP_CODES.get(k, k) for k in self.skipped_by_reason},
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if rows:
            d["rows"] = [r.to_dict() for r in self.results]
        return d

    def table(self):
        """The per-category summary as a rich Table."""
        from rich.table import Table

        t = Table(title="MLSys·im vs published measurements (|predicted/measured - 1|)",
                  header_style="bold")
        for h in ("category", "rows", "ok", "infeas.", "skipped", "median |err|", "p90 |err|",
                  "worst |err| (row)", "median signed", "in band"):
            t.add_column(h, justify="left" if h == "category" else "right")
        for cat, s in self.summary.items():
            t.add_row(cat, str(s["n_rows"]), str(s["n_ok"]), str(s["n_infeasible"]),
                      str(s["n_skipped"]), _pct(s["median_abs_error"]),
                      _pct(s["p90_abs_error"]),
                      f"{_pct(s['worst_abs_error'])} ({s['worst_id']})" if s["worst_id"]
                      else "-", _pct(s["median_signed_error"], signed=True),
                      _pct(s["band_coverage"]), style="bold" if cat == "all" else None)
        return t

    def rows_table(self, statuses: Iterable[str] = ("ok", "infeasible", "skipped")):
        """Every row: measured, predicted, error, band, status or reason (a rich Table)."""
        from rich.table import Table

        statuses = set(statuses)
        t = Table(title="Rows (error = predicted / measured - 1; reasons in --json)",
                  header_style="bold")
        for h in ("id", "model", "hardware", "n", "metric", "measured", "predicted", "error",
                  "band", "status / reason"):
            t.add_column(h, justify="right" if h in ("n", "measured", "predicted", "error")
                         else "left", overflow="fold")
        for r in self.results:
            if r.status not in statuses:
                continue
            p = r.prediction
            band = "-" if p.low is None else (
                f"{_num(p.low)}-{_num(p.high)} {'in' if r.inside_band else 'out'}")
            status = {"ok": "ok", "infeasible": "infeasible (memory)"}.get(
                r.status, f"skipped: {p.code}")
            t.add_row(r.row.id, r.row.model, r.row.hardware, str(r.row.num_devices),
                      r.row.metric, _num(r.measured), _num(p.value),
                      _pct(r.signed_error, signed=True), band, status)
        return t

    def __rich__(self):
        return self.table()


# --- Markdown --------------------------------------------------------------------------------
def _table(header: Iterable[str], align: str, rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    sep = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", sep]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _categories_table(report: ValidationReport) -> str:
    def row(cat: str, s: dict[str, Any]) -> list[Any]:
        worst = f"{_pct(s['worst_abs_error'])} ({s['worst_id']})" if s["worst_id"] else "-"
        return [f"**{cat}**" if cat == "all" else cat, s["n_rows"], s["n_ok"],
                s["n_infeasible"], s["n_skipped"], _pct(s["median_abs_error"]),
                _pct(s["p90_abs_error"]), worst, _pct(s["median_signed_error"], signed=True),
                _pct(s["band_coverage"])]

    return _table(("category", "rows", "predicted", "infeasible", "skipped", "median \\|err\\|",
                   "p90 \\|err\\|", "worst \\|err\\| (row)", "median signed err",
                   "band coverage"), "lrrrrrrrrr",
                  [row(cat, s) for cat, s in report.summary.items()])


def _sources_table(report: ValidationReport) -> str:
    rows = []
    for name, rs in stats.group_by_source(report.results):
        s = stats.summarize(rs)
        rows.append([name, s["n_ok"], _pct(s["median_signed_error"], signed=True),
                     _pct(s["median_abs_error"]), _pct(s["band_coverage"])])
    return _table(("source / hardware / metric", "rows", "median signed err",
                   "median \\|err\\|", "band coverage"), "lrrrr", rows)


def _largest_errors_table(report: ValidationReport, n: int) -> str:
    ok = sorted(report.by_status("ok"), key=lambda r: -r.abs_error)
    return _table(("row", "model", "hardware", "devices", "metric", "measured", "predicted",
                   "error", "how"), "lllrlrrrl",
                  [[r.row.id, r.row.model, r.row.hardware, r.row.num_devices, r.row.metric,
                    _num(r.measured), _num(r.predicted), _pct(r.signed_error, signed=True),
                    r.prediction.method.replace("|", "/")] for r in ok[:n]])


def _infeasible_table(report: ValidationReport) -> str:
    inf = report.by_status("infeasible")
    if not inf:
        return "None: every predicted configuration fits in memory."
    return _table(("row", "model", "hardware", "devices", "precision", "batch", "predicted",
                   "error", "why"), "lllrlrrrl",
                  [[r.row.id, r.row.model, r.row.hardware, r.row.num_devices,
                    r.row.precision or "-", r.row.batch_size or "-", _num(r.predicted),
                    _pct(r.signed_error, signed=True), r.prediction.reason] for r in inf])


def _skipped_table(report: ValidationReport) -> str:
    rows = []
    for code, count in report.skipped_by_reason.items():
        ids = [r.row.id for r in report.by_status("skipped") if r.prediction.code == code]
        rows.append([f"{SKIP_CODES.get(code, code)} (`{code}`)", count, ", ".join(ids)])
    return _table(("reason", "rows", "ids"), "lrl", rows)


_TABLES = {"categories": _categories_table, "sources": _sources_table,
           "infeasible": _infeasible_table, "skipped": _skipped_table,
           "largest_errors": _largest_errors_table}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([A-Za-z0-9_,:\-\s]+))?\}")
_LEADING_COMMENT = re.compile(r"\A<!--.*?-->\n", re.DOTALL)


def _fill(text: str, report: ValidationReport, where: str) -> str:
    """Replace every placeholder of the template (see its leading comment) with its value."""
    by_id = {r.row.id: r for r in report.results}

    def errors(ids: list[str]) -> list[float]:
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise DataFileError(f"{where}: placeholder names rows not in the report: "
                                f"{', '.join(unknown)}")
        return sorted(e for e in (by_id[i].signed_error for i in ids) if e is not None)

    def sub(m: re.Match) -> str:
        name, arg = m.group(1), (m.group(2) or "").strip()
        ids = [i.strip() for i in arg.split(",") if i.strip()]
        if name == "err" and len(ids) == 1:
            e = errors(ids)
            return _pct(e[0], signed=True) if e else "(not predicted)"
        if name == "range" and ids:
            e = errors(ids)
            if not e:
                return "(not predicted)"
            lo, hi = _pct(e[0], signed=True), _pct(e[-1], signed=True)
            return lo if lo == hi else f"{lo} to {hi}"
        if name == "count" and arg in ("rows", "ok", "infeasible", "skipped"):
            return str(len(report.results) if arg == "rows" else len(report.by_status(arg)))
        if name == "tolerance" and not arg:
            pp = f"{BASELINE_TOLERANCE * 100:g}"
            return f"{pp} percentage point{'' if pp == '1' else 's'}"
        if name == "table":
            table, _, n = arg.partition(":")
            if table == "largest_errors" and n.isdigit():
                return _largest_errors_table(report, int(n))
            if table in _TABLES and table != "largest_errors" and not n:
                return _TABLES[table](report)
        raise DataFileError(f"{where}: unknown placeholder {m.group(0)!r}; see the comment at "
                            "the top of the template for the ones there are")

    return _PLACEHOLDER.sub(sub, text)


def render_markdown(report: ValidationReport, template: str | Path | None = None) -> str:
    """docs/accuracy.md for a validation run: the template with every placeholder filled.

    Parameters
    ----------
    report : ValidationReport
    template : str or Path, optional
        A Markdown template; default: the package's ``accuracy_template.md``. A leading
        ``<!-- ... -->`` comment documents the placeholders and is not copied.

    Returns
    -------
    str
        The page (pure: nothing is written).

    Raises
    ------
    DataFileError
        For an unknown placeholder or a row id the report does not have.
    """
    path = Path(template) if template is not None else TEMPLATE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc.strerror}") from None
    return _fill(_LEADING_COMMENT.sub("", text, count=1), report, str(path))


def baseline_from(report: ValidationReport) -> dict[str, Any]:
    """The per-category figures the regression guard ``tests/test_accuracy.py`` compares
    against (written with docs/accuracy.md to ``accuracy_baseline.json``)."""
    def r4(x):
        return None if x is None else round(x, 4)

    return {
        "about": "Per-category accuracy of MLSys·im against mlsysim/validation/reference/"
                 "reference.csv, written with docs/accuracy.md by `python "
                 "scripts/write_accuracy_docs.py`. tests/test_accuracy.py fails when a "
                 "category's median |error| rises above median_abs_error + tolerance.",
        "tolerance": BASELINE_TOLERANCE,
        "categories": {
            cat: {"n_rows": s["n_rows"], "n_ok": s["n_ok"],
                  "median_abs_error": r4(s["median_abs_error"]),
                  "p90_abs_error": r4(s["p90_abs_error"]),
                  "worst_abs_error": r4(s["worst_abs_error"]), "worst_id": s["worst_id"],
                  "band_coverage": r4(s["band_coverage"])}
            for cat, s in report.summary.items()
        },
    }
