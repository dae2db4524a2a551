"""The adapter registry, and the documented choices the built-in adapters make.

A made-up category plugs in by registering an adapter, without touching the harness; a row
whose (category, metric) has no adapter is skipped with a reason, never dropped.
"""

from types import SimpleNamespace

import pytest

from mlsysim.errors import DataFileError, InfeasibleConfigError, ValidationError
from mlsysim.validation import adapters as ad
from mlsysim.validation.adapters import (
    SKIP_CODES,
    Skip,
    adapter,
    get_adapter,
    largest_fitting_batch,
    predict_row,
    predicted,
    register_adapter,
    serving_batch,
    smallest_fitting_tp,
    stated_tp,
    unregister_adapter,
)
from mlsysim.validation.harness import run_validation
from mlsysim.validation.reference import (
    CATEGORIES,
    COLUMNS,
    ReferenceRow,
    known_categories,
    known_metric_units,
)


def _csv(tmp_path, *rows):
    lines = [",".join(COLUMNS)]
    for r in rows:
        lines.append(",".join(str(r.get(c, "")) for c in COLUMNS))
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(**kw):
    base = dict(id="T-1", category="toy_inference", model="ResNet50", hardware="A100",
                num_devices="1", metric="latency_ms", value="2.0", unit="ms")
    return {**base, **kw}


@pytest.fixture
def toy():
    """A made-up category with one adapter; unregistered afterwards."""
    calls = []

    @adapter("toy_inference", "latency_ms")
    def predict_toy(row, notes):
        calls.append(row.id)
        notes.append("toy rule: 1 ms per device")
        return predicted(1.0 * row.num_devices, 0.8, 1.2, True, None, "toy", notes)

    yield calls
    unregister_adapter("toy_inference", "latency_ms")


# --- the registry ----------------------------------------------------------------------------
def test_built_in_adapters_cover_every_inference_pair():
    for cat in ad.INFERENCE_CATEGORIES:
        for metric in ad.ENGINE_METRICS + ad.SERVING_METRICS:
            assert get_adapter(cat, metric) is ad.predict_inference, (cat, metric)
    assert {m for c, m in ad.adapters() if c == "training"} == set(ad.TRAINING_METRICS)


def test_made_up_category_is_used_by_run_validation(tmp_path, toy):
    assert "toy_inference" in known_categories()
    path = _csv(tmp_path, _row(), _row(id="T-2", num_devices="4"))
    report = run_validation(path=path)
    assert toy == ["T-1", "T-2"]
    assert report.categories == ("toy_inference",)
    assert [r.predicted for r in report.results] == [1.0, 4.0]
    assert report.results[0].signed_error == pytest.approx(-0.5)
    assert report.results[0].inside_band is False
    assert report.results[0].prediction.assumptions == ("toy rule: 1 ms per device",)
    assert report.summary["toy_inference"]["n_ok"] == 2
    assert run_validation(["toy_inference"], path=path).summary["all"]["n_rows"] == 2


def test_unregistered_category_is_no_longer_known(tmp_path):
    assert "toy_inference" not in known_categories()
    with pytest.raises(DataFileError, match="unknown category 'toy_inference'"):
        run_validation(path=_csv(tmp_path, _row()))


def test_pair_without_adapter_is_skipped_with_a_reason(toy):
    p = predict_row(_row(metric="ttft_ms"))
    assert p.status == "skipped" and p.code == "no-adapter" and p.code in SKIP_CODES
    assert "('toy_inference', 'ttft_ms')" in p.reason and p.value is None
    assert toy == []


@pytest.mark.parametrize("category, metric, unit, code", [
    ("training", "throughput_samples_per_s", "img/s", "no-training-solver"),
    ("vision_inference", "time_to_train_min", "min", "no-training-solver"),
    ("vision_inference", "energy_uj_per_inference", "uJ/inference", "no-energy-model"),
    ("llm_serving", "tokens_per_s", "tokens/s", "ambiguous-metric"),
])
def test_known_gaps_say_why_there_is_no_adapter(category, metric, unit, code):
    p = predict_row(_row(category=category, metric=metric, unit=unit))
    assert p.status == "skipped" and p.code == code and p.reason


def test_a_training_adapter_plugs_in_without_editing_the_harness():
    @adapter("training", "time_to_train_min")
    def train(row, notes):
        return predicted(60.0, 50.0, 70.0, True, None, "toy training", notes)

    try:
        p = predict_row(_row(category="training", metric="time_to_train_min", unit="min"))
        assert p.status == "ok" and p.value == 60.0
    finally:
        unregister_adapter("training", "time_to_train_min")
    assert get_adapter("training", "time_to_train_min") is None


def test_new_metric_declares_its_units(tmp_path):
    with pytest.raises(ValidationError, match="units"):
        register_adapter("toy_energy", "joules_per_image", lambda row, notes: None)
    with pytest.raises(ValidationError, match="built-in metric 'latency_ms'"):
        register_adapter("toy_energy", "latency_ms", lambda row, notes: None, units=("s",))

    @adapter("toy_energy", "joules_per_image", units=("J/image",))
    def energy(row, notes):
        return predicted(0.5, 0.4, 0.6, True, None, "toy energy", notes)

    try:
        assert known_metric_units()["joules_per_image"] == ("J/image",)
        row = _row(category="toy_energy", metric="joules_per_image", unit="J/image")
        assert predict_row(row).value == 0.5
        with pytest.raises(DataFileError, match="published in: J/image"):
            ReferenceRow(**{**row, "unit": "kJ"})
    finally:
        unregister_adapter("toy_energy", "joules_per_image")
    assert "joules_per_image" not in known_metric_units()


def test_taken_key_needs_replace(toy):
    def other(row, notes):
        return predicted(9.0, 9.0, 9.0, True, None, "other", notes)

    with pytest.raises(ValidationError, match="already has the adapter predict_toy"):
        register_adapter("toy_inference", "latency_ms", other)
    register_adapter("toy_inference", "latency_ms", other, replace=True)
    assert predict_row(_row()).value == 9.0


@pytest.mark.parametrize("bad", ["", "Toy", "toy inference", 3])
def test_malformed_names_are_refused(bad):
    with pytest.raises(ValidationError, match="lower-case names"):
        register_adapter(bad, "latency_ms", lambda row, notes: None)


def test_skip_and_solver_errors_become_skipped_rows_keeping_notes():
    @adapter("toy_inference", ("latency_ms", "ttft_ms"))
    def refuse(row, notes):
        notes.append("looked at it")
        if row.metric == "ttft_ms":
            raise Skip("missing-lengths", "no prompt length")
        raise InfeasibleConfigError("memory", "2 GB", "1 GB")

    try:
        p = predict_row(_row(metric="ttft_ms"))
        assert (p.status, p.code, p.reason, p.assumptions) == (
            "skipped", "missing-lengths", "no prompt length", ("looked at it",))
        p = predict_row(_row())
        assert p.code == "solver-refused" and p.reason.startswith("InfeasibleConfigError:")
    finally:
        for metric in ("latency_ms", "ttft_ms"):
            unregister_adapter("toy_inference", metric)
    assert known_categories() == CATEGORIES


# --- the documented choices ------------------------------------------------------------------
def test_largest_fitting_batch_halves_from_the_limit():
    tried = []

    def solve(b):
        tried.append(b)
        return SimpleNamespace(feasible=b <= 40)

    assert largest_fitting_batch(solve)[0] == 32
    assert tried == [256, 128, 64, 32]
    batch, result = largest_fitting_batch(lambda b: SimpleNamespace(feasible=False), limit=4)
    assert batch == 1 and not result.feasible  # nothing fits: batch 1, reported infeasible


def test_smallest_fitting_tp_tries_only_degrees_dividing_the_heads():
    tried = []

    def solve(tp):
        tried.append(tp)
        return SimpleNamespace(feasible=tp >= 8, tp=tp)

    tp, r = smallest_fitting_tp(solve, limit=8, heads=12)  # 8 does not divide 12
    assert tried == [1, 2, 4] and (tp, r.tp) == (4, 4) and not r.feasible
    tried.clear()
    assert smallest_fitting_tp(solve, limit=8, heads=64)[0] == 8 and tried == [1, 2, 4, 8]
    assert smallest_fitting_tp(solve, limit=2)[0] == 2


@pytest.mark.parametrize("notes, n, tp", [
    ("run with TP=4", 8, 4), ("TP8, 2 nodes", 16, 8), ("torchrun world size 2", 2, 2),
    ("tensor parallel across the node", 8, 8), ("batch 1", 8, None),
])
def test_stated_tp_reads_the_source_notes(notes, n, tp):
    row = ReferenceRow(**_row(category="llm_inference", num_devices=str(n), notes=notes))
    assert stated_tp(row) == tp


def test_serving_batch_caps_a_chosen_batch():
    def solve(b):
        return SimpleNamespace(batch_size=1000 if b == "max" else b)

    assert serving_batch(solve, "max").batch_size == ad.MAX_ENGINE_BATCH
    assert serving_batch(solve, "max", limit=2000).batch_size == 1000
    assert serving_batch(solve, 512).batch_size == 512  # a published batch is never capped


def test_generative_metric_for_a_cnn_is_refused_by_the_solver_rule():
    p = predict_row(_row(category="vision_inference", metric="ttft_ms", batch_size="1"))
    assert p.status == "skipped" and p.code == "solver-refused" and "generative" in p.reason


def test_adapter_must_return_a_prediction(toy):
    register_adapter("toy_inference", "latency_ms", lambda row, notes: 1.0, replace=True)
    with pytest.raises(TypeError, match="returned float, not a Prediction"):
        predict_row(_row())


def test_mlperf_dlrm_rows_are_a_different_unit_of_work():
    """An MLPerf dlrm-v2 sample aggregates 100-700 user-item pairs; the zoo's sample is one."""
    from mlsysim.validation.reference import load_reference
    rows = {r.id: r for r in load_reference()}
    for rid in ("REF-006", "REF-022"):
        p = predict_row(rows[rid])
        assert p.status == "skipped" and p.code == "sample-mismatch", rid
        assert "user-item pair" in p.reason and "#1628" in p.reason


def test_mlperf_bert_throughput_runs_at_the_mean_unpadded_length_latency_at_the_maximum():
    """NVIDIA's harness drops padding, so an Offline sample costs its own length: padding is
    54 % of SQuAD v1.1's tokens at 384, mean 0.46 x 384 = 176.6 -> 177. Offline throughput
    is then Engine.solve at seq 177 (x devices); a SingleStream p90 latency stays at 384."""
    from mlsysim.core.engine import Engine
    from mlsysim.validation.reference import load_reference
    assert ad.BENCHMARK_MEAN_SEQ_LEN[("mlperf", "BERT_Large")] == round(0.46 * 384)
    rows = {r.id: r for r in load_reference()}
    offline = predict_row(rows["REF-034"])                     # H100, Offline, 1 device
    assert any("sequence length 177" in n for n in offline.assumptions)
    want = Engine.solve(model="BERT_Large", hardware="H100", batch_size=256, precision="int8",
                        seq_len=177).throughput
    assert offline.value == pytest.approx(float(want), rel=1e-9)
    single = predict_row(rows["REF-037"])                      # A100, SingleStream p90
    assert any("sequence length 384 from the benchmark" in n for n in single.assumptions)
    want = Engine.solve(model="BERT_Large", hardware="A100", batch_size=1, precision="int8",
                        seq_len=384, cuda_graphs=True).latency.to("ms").magnitude
    assert single.value == pytest.approx(want, rel=1e-9)
