"""The reference-data schema: every bad row is refused with its file, line, row id and field."""

import math

import pydantic
import pytest

from mlsysim.errors import DataFileError, SpecError
from mlsysim.validation.reference import (
    CATEGORIES,
    COLUMNS,
    METRIC_UNITS,
    METRICS,
    REFERENCE_CSV,
    ReferenceRow,
    known_categories,
    known_metric_units,
    load_reference,
)

GOOD = ('REF-1,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,0.5,ms,TRT,src,'
        '"a note, with a comma"')
ROW = dict(id="R-1", category="vision_inference", model="ResNet50", hardware="A100",
           num_devices="1", precision="fp16", batch_size="1", metric="latency_ms", value="0.5",
           unit="ms")


def _write(tmp_path, *lines, header=",".join(COLUMNS)):
    path = tmp_path / "ref.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


# --- the package's file --------------------------------------------------------------------
def test_package_reference_loads_with_unique_ids_and_lines():
    rows = load_reference()
    assert len(rows) > 100
    assert len({r.id for r in rows}) == len(rows)
    assert all(r.path == str(REFERENCE_CSV) and r.line >= 2 for r in rows)
    assert {r.category for r in rows} <= set(CATEGORIES)
    assert all(r.unit in METRIC_UNITS[r.metric] for r in rows)


def test_vocabulary_is_the_built_in_one_without_extra_adapters():
    assert known_categories() == CATEGORIES
    assert tuple(known_metric_units()) == METRICS


# --- one row -------------------------------------------------------------------------------
def test_cells_are_parsed_and_empty_optional_cells_are_none_or_empty():
    row = ReferenceRow(**ROW)
    assert row.value == 0.5 and row.num_devices == 1 and row.batch_size == 1
    assert row.prompt_len is None and row.output_len is None and row.notes == ""
    assert ReferenceRow(**{**ROW, "batch_size": "8.0"}).batch_size == 8  # a whole float


def test_row_is_frozen():
    row = ReferenceRow(**ROW)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        row.value = 1.0


@pytest.mark.parametrize("field, bad, says", [
    ("metric", "latency_s", "unknown metric 'latency_s'; known metrics: latency_ms"),
    ("category", "vision", "unknown category 'vision'; known categories: vision_inference"),
    ("value", "nan", "must be a finite, positive number"),
    ("value", float("nan"), "must be a finite, positive number"),
    ("value", "-3", "must be a finite, positive number"),
    ("value", "fast", "must be a number"),
    ("num_devices", "", "is empty"),
    ("num_devices", "0", "whole number >= 1"),
    ("batch_size", "1.5", "whole number >= 1"),
    ("prompt_len", "inf", "whole number >= 1"),
    ("model", " ", "is empty"),
])
def test_bad_field_is_refused_naming_the_field(field, bad, says):
    with pytest.raises(DataFileError) as err:
        ReferenceRow(**{**ROW, field: bad})
    msg = str(err.value)
    assert f"column '{field}'" in msg and says in msg and "row 'R-1'" in msg


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(DataFileError) as err:
        ReferenceRow(**{**ROW, "value": "nan", "metric": "speed"})
    assert "column 'value'" in str(err.value) and "column 'metric'" in str(err.value)


def test_unit_must_be_one_the_metric_is_published_in():
    with pytest.raises(DataFileError, match=r"column 'unit' is 's', but metric 'latency_ms' "
                                            r"is published in: ms"):
        ReferenceRow(**{**ROW, "unit": "s"})
    assert ReferenceRow(**{**ROW, "metric": "throughput_samples_per_s",
                           "unit": "img/s"}).unit == "img/s"


def test_unknown_and_missing_columns_are_named():
    with pytest.raises(DataFileError, match=r"column 'speed' is not a known column"):
        ReferenceRow(**ROW, speed="1")
    with pytest.raises(DataFileError, match=r"column 'value' is missing"):
        ReferenceRow(**{k: v for k, v in ROW.items() if k != "value"})


def test_data_file_error_is_a_spec_error():
    assert issubclass(DataFileError, SpecError)


# --- the file ------------------------------------------------------------------------------
def test_wellformed_file_loads(tmp_path):
    rows = load_reference(_write(tmp_path, GOOD, ""))
    assert len(rows) == 1 and rows[0].value == 0.5 and rows[0].prompt_len is None
    assert rows[0].line == 2 and rows[0].notes == "a note, with a comma"


@pytest.mark.parametrize("bad, what", [
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,0.5,ms,TRT,src",
     "fields"),
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,fast,ms,TRT,src,n",
     "column 'value'"),
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_s,0.5,ms,TRT,src,n",
     "column 'metric'"),
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,nan,ms,TRT,src,n",
     "column 'value'"),
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1.5,,,test,latency_ms,0.5,ms,TRT,src,n",
     "column 'batch_size'"),
    ("REF-2,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,0.5,s,TRT,src,n",
     "column 'unit'"),
    ("REF-1,vision_inference,ResNet50,A100,1,fp16,1,,,test,latency_ms,0.5,ms,TRT,src,n",
     "duplicate id 'REF-1' (first on line 2)"),
])
def test_malformed_row_names_file_and_line(tmp_path, bad, what):
    path = _write(tmp_path, GOOD, bad)
    with pytest.raises(DataFileError) as err:
        load_reference(path)
    msg = str(err.value)
    assert str(path) in msg and "line 3" in msg and what in msg


def test_bad_field_error_names_the_row_id(tmp_path):
    path = _write(tmp_path, GOOD, "REF-9,vision_inference,ResNet50,A100,1,fp16,1,,,test,"
                                  "latency_ms,nan,ms,TRT,src,n")
    with pytest.raises(DataFileError, match=r"line 3 \(row 'REF-9'\): column 'value'"):
        load_reference(path)


def test_missing_column_is_reported_on_line_1(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("id,category,model\nREF-1,vision_inference,ResNet50\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 1: missing columns"):
        load_reference(path)


def test_unknown_column_is_reported_on_line_1(tmp_path):
    path = _write(tmp_path, GOOD + ",x", header=",".join(COLUMNS) + ",extra")
    with pytest.raises(DataFileError, match=r"line 1: unknown columns extra"):
        load_reference(path)


def test_empty_and_missing_files_are_data_file_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataFileError, match="line 1: empty file"):
        load_reference(empty)
    with pytest.raises(DataFileError, match="cannot read"):
        load_reference(tmp_path / "nope.csv")


def test_values_are_kept_as_published(tmp_path):
    rows = load_reference(_write(tmp_path, GOOD.replace(",0.5,", ",1e-3,")))
    assert math.isclose(rows[0].value, 1e-3)
