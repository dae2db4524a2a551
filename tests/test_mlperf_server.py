"""MLPerf's scenario rules in the validation: the Server scenario as the highest Poisson rate a
batched server sustains with its p99 latency within the benchmark's bound
(optimize.batching.server_capacity), and Jetson Orin Offline runs, which use the DLA cores
beside the GPU, skipped."""

import math

import numpy as np
import pytest

from mlsysim.optimize.batching import batched_p99, server_capacity
from mlsysim.validation.adapters import MLPERF_SERVER_LATENCY_S, predict_row
from mlsysim.validation.reference import ReferenceRow


def test_one_at_a_time_capacity_by_hand():
    """Batch 1, 5 ms a request, p99 <= 15 ms: W_q,99 = ln(rho / 0.01) / (mu - lambda) / 2
    must be 10 ms with mu = 200/s, rho = lambda / 200, i.e. ln(lambda / 2) = 0.02 (200 -
    lambda): lambda = 44.68/s (ln 22.34 = 3.106 = 0.02 x 155.32)."""
    rate, batch, p99 = server_capacity([0.005], [1], 0.015)
    assert batch == 1 and rate == pytest.approx(44.68, abs=0.01)
    assert p99 == pytest.approx(0.015, rel=1e-6)
    assert math.log(rate / 2) == pytest.approx(0.02 * (200 - rate), rel=1e-6)


def test_the_capacity_is_the_largest_rate_a_fine_grid_finds():
    """Batches 1-64 served in 2 ms + 1 ms per request, p99 <= 40 ms: the search equals a
    brute-force scan of 20,000 rates per batch to the scan's resolution."""
    batches = [1, 2, 4, 8, 16, 32, 64]
    service = [0.002 + 0.001 * b for b in batches]
    rate, batch, _ = server_capacity(service, batches, 0.040)
    best = (0.0, 0)
    for b, s in zip(batches, service):
        grid = np.linspace(1e-3, b / s, 20_000, endpoint=False)
        ok = [r for r in grid if batched_p99(b, float(r), s) <= 0.040]
        if ok and max(ok) > best[0]:
            best = (max(ok), b)
    assert batch == best[1]
    assert rate == pytest.approx(best[0], rel=2e-4)
    assert rate < batch / service[batches.index(batch)]      # below saturation


def test_no_batch_meets_a_bound_shorter_than_its_service():
    assert server_capacity([0.020, 0.030], [1, 2], 0.015) == (0.0, 0, math.inf)


def test_batched_p99_is_infinite_at_saturation_and_counts_the_fill_wait():
    assert batched_p99(4, 400.0, 0.010) == math.inf          # rho = 100 x 0.01 = 1
    # Batches of 4 at 100/s fill in 3 / 100 s; the queue of batches runs at rho 0.25.
    wait = math.log(0.25 / 0.01) / (100.0 - 25.0) / 2
    assert batched_p99(4, 100.0, 0.010) == pytest.approx(0.03 + wait + 0.010, rel=1e-9)


def _row(scenario, model="ResNet50", metric="throughput_samples_per_s"):
    return ReferenceRow(id="REF-T1", category="vision_inference", model=model,
                        hardware="H200", num_devices=8, precision="int8", batch_size=None,
                        prompt_len=None, output_len=None, scenario=scenario, metric=metric,
                        value=1.0, unit="queries/s", framework="TensorRT",
                        source_key="mlperf_inf_v41")


@pytest.mark.parametrize("model", ["ResNet50", "BERT_Large"])
def test_a_server_row_is_below_its_offline_twin_and_names_its_bound(model):
    """MLPerf's bounds: ResNet-50 15 ms, BERT 130 ms (mlcommons/inference docs/index.md). The
    Server prediction is the queue-limited rate, below the Offline one (the same batches
    with no latency bound) and above half of it for these models."""
    offline = predict_row(_row("mlperf-offline", model))
    server = predict_row(_row("mlperf-server", model))
    assert 0.5 * offline.value < server.value < offline.value
    bound = MLPERF_SERVER_LATENCY_S[model] * 1e3
    assert any(f"p99 <= {bound:g} ms" in n for n in server.assumptions)
    assert server.low <= server.value <= server.high


def test_orin_offline_rows_use_the_dlas_and_are_skipped_singlestream_rows_are_not():
    from mlsysim.validation.adapters import SKIP_CODES
    from mlsysim.validation.reference import load_reference
    rows = {r.id: r for r in load_reference()}
    offline = predict_row(rows["REF-042"])          # ResNet-50 Offline on AGX Orin
    assert offline.status == "skipped" and offline.code == "other-accelerators"
    assert "GPU + 2 DLA" in offline.reason and "other-accelerators" in SKIP_CODES
    assert predict_row(rows["REF-041"]).status == "ok"   # SingleStream: the GPU alone
