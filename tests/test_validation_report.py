"""Error statistics, the Markdown report filled from its template, and the docs dev script."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlsysim.errors import DataFileError
from mlsysim.validation import stats
from mlsysim.validation.adapters import predicted, skipped
from mlsysim.validation.harness import run_validation
from mlsysim.validation.reference import ReferenceRow
from mlsysim.validation.report import (
    TEMPLATE,
    RowResult,
    ValidationReport,
    baseline_from,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[1]


def _result(rid, category, measured, value=None, band=(None, None), status="ok"):
    row = ReferenceRow(id=rid, category=category, model="m", hardware="h", num_devices=1,
                       metric="latency_ms", value=measured, unit="ms", source_key="src")
    if status == "skipped":
        return RowResult(row, skipped("missing-lengths", "not published"))
    return RowResult(row, predicted(value, *band, status == "ok", "too big", "test", ()))


@pytest.fixture(scope="module")
def small():
    """Hand-made results whose statistics are easy to check."""
    return ValidationReport(results=[
        _result("A", "vision_inference", 1.0, 1.5, (1.4, 1.6)),     # +50%, outside band
        _result("B", "vision_inference", 2.0, 1.0, (0.5, 2.5)),     # -50%, inside
        _result("C", "vision_inference", 4.0, 5.0, (3.0, 6.0)),     # +25%, inside
        _result("D", "vision_inference", 1.0, 9.0, (8.0, 10.0), status="infeasible"),
        _result("E", "llm_inference", 1.0, status="skipped"),
    ], categories=("vision_inference", "llm_inference"))


@pytest.fixture(scope="module")
def report():
    return run_validation()


# --- statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize("xs", [[3.0], [5.0, 1.0], [0.3, 0.1, 0.9, 0.4, 2.0, 0.05, 1.1]])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_quantile_is_numpys_linear_method(xs, q):
    assert stats.quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)))


def test_summary_of_hand_made_results(small):
    s = small.summary["vision_inference"]
    assert (s["n_rows"], s["n_ok"], s["n_infeasible"], s["n_skipped"]) == (4, 3, 1, 0)
    assert s["median_abs_error"] == pytest.approx(0.5)      # |errors| 0.5, 0.5, 0.25
    assert s["worst_abs_error"] == pytest.approx(0.5) and s["worst_id"] == "A"
    assert s["median_signed_error"] == pytest.approx(0.25)  # -0.5, 0.25, 0.5
    assert s["band_coverage"] == pytest.approx(2 / 3)       # the infeasible row is not counted
    empty = small.summary["llm_inference"]
    assert empty["n_skipped"] == 1 and empty["median_abs_error"] is None
    assert empty["band_coverage"] is None and empty["worst_id"] is None
    assert small.summary["all"]["n_rows"] == 5
    assert small.skipped_by_reason == {"missing-lengths": 1}


def test_band_edges_may_come_in_either_order():
    assert stats.inside_band(2.0, 3.0, 1.0) and stats.inside_band(2.0, 1.0, 3.0)
    assert stats.inside_band(1.0, 1.0, 1.0) and not stats.inside_band(1.1, 1.0, 1.0)


def test_sources_are_grouped_over_ok_rows_only(small):
    groups = stats.group_by_source(small.results)
    assert [(name, [r.row.id for r in rs]) for name, rs in groups] == [
        ("src / h / latency_ms", ["A", "B", "C"])]


def test_row_dict_has_the_error_and_the_band(small):
    d = small.results[0].to_dict()
    assert d["signed_error"] == pytest.approx(0.5) and d["inside_band"] is False
    assert (d["band_low"], d["band_high"], d["status"]) == (1.4, 1.6, "ok")
    json.dumps(small.to_dict())  # JSON-ready


# --- the Markdown page -----------------------------------------------------------------------
def test_page_has_every_placeholder_filled(report):
    text = render_markdown(report)
    assert not re.search(r"\{[a-z_]+(:[^}]*)?\}", text)
    assert "<!--" not in text and text.startswith("# Accuracy")
    assert "(not predicted)" not in text
    assert f"{len(report.results)} rows: {len(report.by_status('ok'))} predicted" in text


def test_row_ids_in_the_prose_come_from_the_template(report):
    # Every row id named outside the generated tables is written in the template.
    template_ids = set(re.findall(r"REF-\d+", TEMPLATE.read_text(encoding="utf-8")))
    prose = [ln for ln in render_markdown(report).splitlines() if not ln.startswith("|")]
    assert set(re.findall(r"REF-\d+", "\n".join(prose))) <= template_ids


def test_template_placeholders_quote_live_errors(small, tmp_path):
    t = tmp_path / "t.md"
    t.write_text("<!-- notes -->\nA {err:A}, B {err:B}, A-C {range:A,B,C}, E {err:E}; "
                 "{count:ok} of {count:rows}, {tolerance}.\n", encoding="utf-8")
    assert render_markdown(small, t) == ("A +50.0%, B -50.0%, A-C -50.0% to +50.0%, "
                                         "E (not predicted); 3 of 5, 1 percentage point.\n")


@pytest.mark.parametrize("text, says", [
    ("{err:REF-999}", "rows not in the report: REF-999"),
    ("{table:nope}", "unknown placeholder '{table:nope}'"),
    ("{errr:A}", "unknown placeholder"),
])
def test_template_mistakes_are_data_file_errors(small, tmp_path, text, says):
    t = tmp_path / "t.md"
    t.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=re.escape(says)) as err:
        render_markdown(small, t)
    assert str(t) in str(err.value)


def test_baseline_has_the_summary_figures(report):
    base = baseline_from(report)
    assert base["tolerance"] == 0.01
    for cat, s in report.summary.items():
        assert base["categories"][cat]["n_ok"] == s["n_ok"]
        assert base["categories"][cat]["worst_id"] == s["worst_id"]


# --- the dev script --------------------------------------------------------------------------
def _script():
    spec = importlib.util.spec_from_file_location("write_accuracy_docs",
                                                  ROOT / "scripts" / "write_accuracy_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dev_script_writes_the_page_and_the_baseline(tmp_path, capsys):
    script = _script()
    doc, base = tmp_path / "docs" / "accuracy.md", tmp_path / "baseline.json"
    args = ["--doc", str(doc), "--baseline", str(base)]
    assert script.main([*args, "--check"]) == 1  # nothing there yet
    assert script.main(args) == 0
    assert script.main([*args, "--check"]) == 0
    assert "| **all** |" in doc.read_text(encoding="utf-8")
    assert json.loads(base.read_text(encoding="utf-8"))["categories"]["all"]["n_rows"] > 100
    assert script.DOC == ROOT / "docs" / "accuracy.md"
    capsys.readouterr()


def test_package_has_no_writer_into_the_source_tree():
    from mlsysim.validation import harness, report
    for mod in (harness, report):
        assert not hasattr(mod, "write_accuracy_docs") and not hasattr(mod, "_main")
        assert "parents[2]" not in Path(mod.__file__).read_text(encoding="utf-8")
