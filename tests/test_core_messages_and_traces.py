"""Core messages, traces and sweeps pinned to hand-derived values.

Found missing by mutmut (mlsysim/core/: collectives, contract, device_calibration, engine,
power): no test read the full refusal text of a collective kind, a fabric or a device-power
broadcast, the regime a compute-bound operator's trace row names, the microbenchmark rows
behind eta_gemm_max, the "above the ridge" explain() wording, a sweep's throughput, the sweep's
chunking, or a Result's "attr?" summary entry without a label.

One fp16 layer is used throughout where a by-hand number is needed: a 4096 x 4096 fully
connected layer (no bias) over one token per sample, so per sample F = 2 * 4096^2 =
33,554,432 flop and 2 * (4096 + 4096) = 16,384 B of activations, plus 2 * 4096^2 =
33,554,432 B of weights read once per pass. The H100's roofs are 989.5 TFLOP/s (fp16 dense)
and 3,350 GB/s: ridge 989.5e12 / 3.35e12 = 295.37 flop/byte.
"""

import dataclasses
import re

import numpy as np
import pytest

from mlsysim import Engine
from mlsysim.core.contract import Result
from mlsysim.errors import DataFileError, ValidationError
from mlsysim.specs.model import LayeredSpec

FC = LayeredSpec.model_validate({
    "key": "FC", "name": "FC", "architecture": "test", "group": "Tiny",
    "published_parameters": 4096 * 4096, "family": "layers", "source": "test",
    "as_of": "2026",
    "blocks": [{"name": "b", "layers": [{"op": "fc", "name": "fc", "cin": 4096,
                                         "cout": 4096}]}]})


# --- Result.__repr__ ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Replicated(Result):
    name: str
    replicas: int
    seconds: float

    summary_inputs = ("replicas?", "name:")
    summary_numbers = ("seconds",)


def test_repr_optional_input_without_label_is_hidden_at_one_and_shown_otherwise():
    """The docstring's own form "tp_size?" (no label): the "?" is stripped before the attribute
    is read, so at 1 the item is left out and at 2 it shows as replicas=2; seconds 0.5 prints
    with format "{:.4g}" as 0.5."""
    assert repr(_Replicated("toy", 1, 0.5)) == "_Replicated(toy: seconds=0.5)"
    assert repr(_Replicated("toy", 2, 0.5)) == "_Replicated(replicas=2, toy: seconds=0.5)"


# --- collectives ----------------------------------------------------------------------------
def test_collective_time_refuses_an_unknown_kind_listing_the_six_kinds():
    """The six ring schedules are allreduce, reducescatter, allgather, alltoall, broadcast and
    p2p (sendrecv is an alias): the refusal lists them comma-separated and quotes the input."""
    from mlsysim.core.collectives import collective_time
    with pytest.raises(ValidationError) as e:
        collective_time("DGX_H100", "gather", 1e6, 8)
    assert str(e.value) == (
        "The 'kind' parameter of collective_time must be one of allreduce, reducescatter, "
        "allgather, alltoall, broadcast, p2p. Got 'gather' instead.")
    assert (e.value.field, e.value.owner) == ("kind", "collective_time")


def test_collective_efficiency_refuses_an_unknown_fabric_naming_its_owner():
    """collective_efficiency's fabric is scale_up or host; like collective_time it reports as
    the collective_time model (owner collective_time)."""
    from mlsysim.core.collectives import collective_efficiency
    with pytest.raises(ValidationError) as e:
        collective_efficiency("DGX_H100", fabric="nvlink")
    assert str(e.value) == ("The 'fabric' parameter of collective_time must be one of "
                            "scale_up, host. Got 'nvlink' instead.")
    assert (e.value.field, e.value.owner) == ("fabric", "collective_time")


# --- power ----------------------------------------------------------------------------------
def test_device_power_refuses_unbroadcastable_utilizations_naming_both_shapes():
    """Two compute fractions against three memory fractions do not broadcast: the message gives
    both shapes, (2,) and (3,)."""
    from mlsysim.core.power import device_power
    with pytest.raises(ValidationError) as e:
        device_power("A100_40GB", np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]))
    assert str(e.value) == ("The 'memory_util' parameter of device_power must broadcast "
                            "against compute_util (shapes (2,) and (3,)).")
    assert e.value.owner == "device_power"


# --- engine: trace, explain, sweep ----------------------------------------------------------
def test_trace_names_a_gemm_compute_regime_above_its_regime_batch():
    """The FC layer is compute-regime when b * F / peak > (W + b * act) / BW, i.e. above
    b* = 1 / (BW / peak - (1/4096 + 1/4096)) = 1 / (3.3856e-3 - 4.883e-4) = 345.1: at batch
    1024 its trace row says "Compute", at batch 64 "Memory"."""
    hot = Engine.solve(FC, "H100", batch_size=1024).trace()["operators"]
    cold = Engine.solve(FC, "H100", batch_size=64).trace()["operators"]
    assert [(o["name"], o["regime"]) for o in hot] == [("b.fc", "Compute")]
    assert [(o["name"], o["regime"]) for o in cold] == [("b.fc", "Memory")]


def test_trace_lists_the_gemm_rows_behind_eta_gemm_max():
    """The A100's eta_gemm_max is fitted to its 16-bit GEMM rows: the trace lists exactly the
    microbenchmark file's gemm rows for A100 (all bf16 or fp16: MIC-001, MIC-012, MIC-041 to
    MIC-047). The T4 has no GEMM rows (its eta_gemm_max is the cross-device estimate): an
    empty list, still present."""
    from mlsysim.core.calibration import load_microbench
    expected = [r["id"] for r in load_microbench()
                if r["kind"] == "gemm" and r["hardware"] == "A100"]
    assert expected == ["MIC-001", "MIC-012"] + [f"MIC-0{i}" for i in range(41, 48)]
    a100 = Engine.solve("ResNet50", "A100", batch_size=8).trace()["constants"]
    assert a100["eta_gemm_max"]["rows"] == expected
    t4 = Engine.solve("ResNet50", "T4", batch_size=8).trace()["constants"]
    assert t4["eta_gemm_max"]["rows"] == []


def test_explain_work_line_says_above_or_below_the_ridge():
    """Batch 1024: F = 1024 * 33,554,432 = 34.36 GFLOP; bytes = 33,554,432 + 1024 * 16,384 =
    50.33 MB; intensity 1024 * 2048 / (2048 + 1024) = 682.7 flop/byte, above the 295.4 ridge.
    Batch 64: 2.147 GFLOP, 33,554,432 + 1,048,576 = 34.6 MB, 64 * 2048 / 2112 = 62.1 below."""
    hot = Engine.solve(FC, "H100", batch_size=1024).explain().splitlines()
    cold = Engine.solve(FC, "H100", batch_size=64).explain().splitlines()
    assert ("  work: 34.36 GFLOP, 50.33 MB moved -> arithmetic intensity 682.7 flop/byte "
            "(above the ridge)") in hot
    assert ("  work: 2.147 GFLOP, 34.6 MB moved -> arithmetic intensity 62.1 flop/byte "
            "(below the ridge)") in cold


def test_sweep_throughput_is_batch_over_latency():
    """Throughput is samples per second: batch / latency, the same number Engine.solve gives
    at each batch (64 and 1024 here)."""
    from mlsysim.core.engine import SingleNodeModel
    out = SingleNodeModel().sweep(FC, "H100", batch_sizes=[64, 1024])
    np.testing.assert_allclose(out["throughput"], np.array([64, 1024]) / out["latency_s"],
                               rtol=1e-12)
    for b, tput in zip((64, 1024), out["throughput"]):
        one = Engine.solve(FC, "H100", batch_size=b)
        assert tput == pytest.approx(b / one.latency_s, rel=1e-12)


def test_sweep_evaluates_in_chunks_of_sweep_chunk(monkeypatch):
    """The sweep evaluates SWEEP_CHUNK = 4096 batches per array: 5000 batches take
    ceil(5000 / 4096) = 2 calls of 4096 and 904 rows (not one call per batch). Private: the
    chunking shows only in the number and size of the cost-model calls."""
    import mlsysim.core.engine as engine
    sizes = []
    real = engine.evaluate

    def counting(prepared, batch, **kw):
        sizes.append(batch.shape[0])
        return real(prepared, batch, **kw)

    monkeypatch.setattr(engine, "evaluate", counting)
    out = engine.SingleNodeModel().sweep(FC, "H100", batch_sizes=np.arange(1, 5001))
    assert engine.SWEEP_CHUNK == 4096 and sizes == [4096, 904]
    assert out["latency_s"].shape == (5000,)


# --- device calibration ---------------------------------------------------------------------
CSV_HEADER = "kind,precision,m,n,k,value,unit\n"


def test_calibrate_refuses_a_gemm_row_with_a_partial_shape(tmp_path):
    """A gemm row with m and k but no n: the message names the file and line 2 (after the
    header) and says why none is allowed (a shape-less row counts as large)."""
    import mlsysim
    from mlsysim.core.device_calibration import calibrate_device
    p = tmp_path / "m.csv"
    p.write_text(CSV_HEADER + "gemm,bf16,4096,,4096,600,TFLOP/s\n")
    with pytest.raises(DataFileError, match=re.escape(
            f"{p}, line 2: give all of m, n and k for a gemm row, or none (a shape-less row "
            "counts as large)")):
        calibrate_device(p, mlsysim.Hardware.H100)


def test_calibrate_refuses_a_copy_above_the_datasheet_bandwidth(tmp_path):
    """4,000 GB/s of memcpy on an H100 (3,350 GB/s datasheet) is refused with the likely
    slips named."""
    import mlsysim
    from mlsysim.core.device_calibration import calibrate_device
    h100 = mlsysim.Hardware.H100
    p = tmp_path / "m.csv"
    p.write_text(CSV_HEADER + "memcpy,,,,,4000,GB/s\n")
    with pytest.raises(DataFileError) as e:
        calibrate_device(p, h100)
    assert str(e.value) == (
        f"{p}, line 2: memcpy 4000 GB/s exceeds {h100.name}'s datasheet memory bandwidth of "
        "3350 GB/s (a unit slip, or read + write bytes counted twice?)")
    assert h100.name == "NVIDIA H100 SXM5 80GB"
