"""Pins found unguarded by mutmut in core/ and the compression and data-pipeline solvers: the
fp6 precision name, the collective fits' p2p refusal text and GB/s scale, the owner named by
system_spec and DataModel's cpu_workers refusals, Prepared.k_tc, a user calibration's kept
terms, the profile explanation at the ridge and its state bytes, the idle row of the power
file, the clamp of compute activity at 1, and CompressionModel's serving options and
explanation."""

import pytest

import mlsysim
from mlsysim.core.calibration import Efficiency, canonical_precision
from mlsysim.core.collectives import fit_collectives, fit_scale_out, system_spec
from mlsysim.core.costmodel import prepare
from mlsysim.core.device_calibration import calibrate_device
from mlsysim.core.power import activity, busy_seconds, load_power_rows
from mlsysim.errors import DataFileError, ValidationError
from mlsysim.solvers.compression import CompressionModel
from mlsysim.solvers.data_pipeline import DataModel
from mlsysim.specs.hardware import HardwareSpec
from mlsysim.specs.system import Node
from mlsysim.workloads.operators import OperatorBuilder, OpKind


def _device(peak: str, bandwidth: str, efficiency: dict | None = None) -> HardwareSpec:
    extra = {} if efficiency is None else {"efficiency": efficiency}
    return HardwareSpec(key="T", name="T", group="Cloud", vendor="Test",
                        compute={"dense": {"fp16": peak, "fp32": peak}},
                        memory={"capacity": "1000 GB", "bandwidth": bandwidth},
                        source="test sheet", as_of="2024", **extra)


# ------------------------------------------------------------------------------ calibration

@pytest.mark.parametrize("text", ["MXFP6", "MXFP6 (e3m2)", "fp6"])
def test_canonical_precision_finds_fp6_inside_a_longer_name(text):
    """'MXFP6' holds 'fp6' but no other zoo name, so it maps to 'fp6'; without the 'fp6'
    entry the fallback would return the first word, 'mxfp6'."""
    assert canonical_precision(text) == "fp6"


def test_user_calibration_without_gemm_rows_keeps_gemm_in_lower_case(tmp_path):
    """Only a copy and a launch row: memory and kernel overhead are fitted; gemm and
    attention are kept from the package, named as the report prints them."""
    csv = tmp_path / "runs.csv"
    csv.write_text("kind,precision,m,n,k,value,unit\nmemcpy,,,,,3000,GB/s\n"
                   "launch,,,,,2.5,us\n")
    result = calibrate_device(csv, mlsysim.Hardware.H100)
    assert result.fitted == ("memory", "kernel overhead")
    assert result.kept == ("gemm", "attention")
    assert result.report().splitlines()[1] == (
        "  fitted: memory, kernel overhead; kept from the package: gemm, attention")


# ------------------------------------------------------------------------------ collectives

def test_fit_collectives_p2p_row_above_the_link_names_the_spec_in_gb_per_s():
    """A p2p row of 500 GB/s on a link of 400e9 byte/s per direction (400 GB/s) is skipped."""
    rows = [{"id": "P1", "kind": "p2p", "hardware": "X", "value": 500.0, "num_devices": 2,
             "message_bytes": 2**30, "notes": ""}]
    cal = fit_collectives(rows, {"X": (400e9, 8)})
    assert cal.skipped == {"P1": "500 GB/s exceeds the 400 GB/s per-direction link spec: an "
                                 "aggregate of both directions, not a one-way copy"}


def test_fit_scale_out_reads_the_row_in_decimal_gigabytes_per_second():
    """One accelerator per node (L = 1, so no scale-up term, b_up = 0) and one 400 Gb/s NDR
    NIC each: out_bw = 50e9 byte/s. Four nodes (N = n = 4):
    c = 2 (N - 1) / N / L / out_bw = 1.5 / 50e9 = 3e-11 s/byte at eta = 1;
    20 GB/s measured = 2e10 byte/s -> per_byte = 2 (n - 1) / n / 2e10 = 7.5e-11 s/byte;
    eta = c / per_byte = 0.4 (relative tolerance 1e-12: a GB of 1e9 + 1 bytes would move it
    by 1e-9)."""
    node = Node.from_dict({"name": "t", "accelerator": "H100", "accelerators_per_node": 1,
                           "intra_node_fabric": "NVLink4", "nics_per_node": 1,
                           "nic_fabric": "InfiniBand_NDR"}, "test")
    rows = [{"id": "R", "kind": "allreduce", "num_devices": 4, "value": 20.0}]
    fits, default, residuals = fit_scale_out(rows, {"R": node}, fit_collectives([], {}))
    assert fits["InfiniBand_NDR"].eta_bus == pytest.approx(0.4, rel=1e-12)
    assert default.eta_bus == pytest.approx(0.4, rel=1e-12)
    assert residuals == {"R": pytest.approx(1.0, rel=1e-12)}


def test_system_spec_refusal_names_collective_time():
    with pytest.raises(ValidationError) as err:
        system_spec(42)
    assert str(err.value) == ("The 'hardware' parameter of collective_time must be a hardware "
                              "spec, node, fleet or zoo name. Got 42 instead.")
    assert err.value.owner == "collective_time"


# ------------------------------------------------------------------------------- cost model

def test_prepare_k_tc_is_seconds_per_sample_at_eta_max():
    """One GEMM of 4e12 flop on a 1 TFLOP/s device at eta_max = 0.5:
    k_tc = 4e12 / (1e12 x 0.5) = 8 s per sample, and neg_k_tc is its negative."""
    b = OperatorBuilder()
    b.add("mm", OpKind.GEMM, flops=4e12)
    table = b.build(weight_total_bytes=0.0)
    eff = Efficiency(gemm_max=0.5, gemm_tau_s=1e-15, gemm_alpha=1.0, attention_max=1.0,
                     memory=1.0, kernel_overhead_s=0.0)
    p = prepare(table, _device("1 TFLOP/s", "1 TB/s"), "fp16", eff)
    assert p.k_tc.tolist() == pytest.approx([8.0], rel=1e-12)
    assert p.neg_k_tc.tolist() == pytest.approx([-8.0], rel=1e-12)


# ----------------------------------------------------------------------------------- engine

def test_explain_calls_an_intensity_equal_to_the_ridge_below_it():
    """A device whose peak is ResNet-50's flops per second and whose bandwidth is its bytes
    per second has ridge = flops / bytes = the pass's arithmetic intensity, exactly (the same
    two floats divided). 'above' needs a strictly larger intensity."""
    first = mlsysim.Engine.solve("ResNet50", _device("1 TFLOP/s", "1 TB/s"), batch_size=1)
    f, q = first.flops_total, first.bytes_total
    p = mlsysim.Engine.solve("ResNet50", _device(f"{f!r} flop/s", f"{q!r} byte/s"),
                             batch_size=1)
    assert p.arithmetic_intensity.magnitude == p.ridge_point.magnitude == f / q
    work = p.explain().splitlines()[2]
    assert work.endswith(f"arithmetic intensity {f / q:.1f} flop/byte (below the ridge)")


def test_explain_memory_line_shows_the_kv_cache_in_gigabytes():
    """Llama-3-8B decode, batch 4, 1024 cached tokens + the new one on an H100: the KV cache
    is 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 B = 131072 B per token and sequence,
    x 1025 tokens x 4 sequences = 537,395,200 B = 0.5374 GB; weights 8,030,261,248 params x
    2 B = 16.06 GB."""
    p = mlsysim.Engine.solve("Llama3_8B", "H100", phase="decode", seq_len=1024, batch_size=4)
    assert p.state_bytes == 131072 * 1025 * 4
    line = next(s for s in p.explain().splitlines() if s.startswith("  memory: "))
    assert line.startswith("  memory: weights 16.06 GB + state 0.5374 GB + activations ")


# ------------------------------------------------------------------------------------ power

_HEADER = ("id,hardware,role,activity,precision,compute_util,memory_util,power_w,power_low_w,"
           "power_high_w,quality,derived,source_key,condition")


def test_power_file_idle_row_with_activity_is_refused(tmp_path):
    path = tmp_path / "power.csv"
    path.write_text(_HEADER + "\nI1,H100,idle,,bf16,0.2,0,70,,,,,,\n")
    with pytest.raises(DataFileError) as err:
        load_power_rows(path)
    assert str(err.value) == f"{path}, line 2: an idle row has zero activity"


def test_compute_activity_is_clamped_at_one_when_rounding_overshoots(monkeypatch):
    """ResNet-50 at batch 7 on a 7 TFLOP/s device with 1e21 byte/s of bandwidth and ideal
    efficiencies (eta 1, ramp faded, no launch floor): every operator is compute-bound at
    peak, so busy compute time = latency and u_c = 1, u_m = 0, up to rounding (the two sums
    round differently: F x B x (1 / peak) against F / peak x B, and a dot product's summation
    order is the BLAS build's). Whichever side of 1 the ratio lands on, the clamp returns
    exactly 1.0: forced one ulp above here, as it lands on some machines."""
    import mlsysim.core.power as power
    eff = {"gemm_max": 1, "gemm_tau": "1e-15 s", "gemm_alpha": 1, "attention_max": 1,
           "memory": 1, "kernel_overhead": "0 s", "source": "test", "rows": 0}
    p = mlsysim.Engine.solve("ResNet50", _device("7 TFLOP/s", "1e9 TB/s", eff), batch_size=7)
    busy_c, busy_m = busy_seconds(p._prepared, p.batch_size)
    assert busy_c / p.latency_s == pytest.approx(1.0, rel=1e-12)
    assert busy_m == 0.0
    over = p.latency_s * (1 + 2.0 ** -52)
    assert over / p.latency_s > 1.0
    monkeypatch.setattr(power, "busy_seconds", lambda prepared, batch: (over, 0.0))
    assert activity(p) == (1.0, 0.0)


# ------------------------------------------------------------------------------ compression

def test_compression_baseline_uses_the_serving_options():
    """serving={'tp_size': 2} reaches the baseline too: Llama-3-8B's 8,030,261,248 fp16
    params (16,060,522,496 B) split over 2 devices = 8,030,261,248 B per device on both
    sides of an fp8 KV cache (which leaves the weights alone)."""
    r = CompressionModel().solve("Llama3_8B", "H100", "fp8_kv", serving={"tp_size": 2})
    assert r.baseline.weights_bytes == 8_030_261_248
    assert r.compressed.weights_bytes == 8_030_261_248
    assert r.weight_memory_ratio == 1.0


def test_compression_explain_weights_line_in_gigabytes():
    """int4 weights: 8,030,261,248 params x 2 B = 16.06 GB -> x 0.5 B = 4.015 GB, x0.25."""
    r = CompressionModel().solve("Llama3_8B", "H100", "int4_weight_only")
    assert r.explain().splitlines()[1] == "  weights 16.06 -> 4.015 GB per device (x0.25)"


# ---------------------------------------------------------------------------- data pipeline

def test_data_model_refuses_zero_cpu_workers_naming_data_model():
    with pytest.raises(ValidationError) as err:
        DataModel().solve(2000, "1 MB", "1 GB/s", decode_cost_s_per_sample=0.001,
                          cpu_workers=0)
    assert str(err.value) == ("The 'cpu_workers' parameter of DataModel must be a positive "
                              "whole number. Got 0 instead.")
