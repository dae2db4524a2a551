"""SensitivitySolver, SynthesisSolver and the differential explainer, on hand-derived values."""

from __future__ import annotations

import math

import pytest

import mlsysim
from mlsysim.core.engine import efficiency_for, time_by_resource
from mlsysim.errors import ValidationError
from mlsysim.solvers.compare import DifferentialExplainer, compare
from mlsysim.solvers.sensitivity import SensitivitySolver, SynthesisSolver


# --- sensitivity -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def decode_l4():
    """Llama-2-7B batch-1 decode over 1024 cached tokens on an L4 (300 GB/s, 24 GB)."""
    return SensitivitySolver().solve("Llama2_7B", "L4", config={"batch_size": 1,
                                                                "seq_len": 1024})


def test_batch1_decode_is_bound_by_bandwidth_not_peak(decode_l4):
    """Weights read: 2 B x (6.74e9 params - 32000 x 4096 embedding) = 13.2 GB at 300 GB/s x
    eta_mem 0.835 = 52.7 ms, plus the KV cache 32 layers x 2 x 1024 x 4096 x 2 B = 0.54 GB
    (2.1 ms): 54.9 ms of memory-bound time, every GEMM at 1 flop/byte far below the ridge;
    98 launch-bound kernels x 8.1 us = 0.79 ms. Memory-bound time scales as 1 / BW, the rest
    not at all, so e_BW = -54.9 / 55.7 = -0.986 and e_peak = 0."""
    r = decode_l4
    e = r.elasticities
    p = mlsysim.Engine.solve("Llama2_7B", "L4", seq_len=1024)
    share = time_by_resource(p._prepared, 1)
    assert r.latency_s == p.latency_s
    assert e["memory_bandwidth"] == pytest.approx(-share["memory bandwidth"] / p.latency_s,
                                                  abs=2e-3)
    assert -1.0 - 1e-9 <= e["memory_bandwidth"] < -0.98
    assert abs(e["peak_flops"]) < 1e-3
    assert e["kernel_overhead"] == pytest.approx(share["launch"] / p.latency_s, abs=2e-3)
    assert r.binding == "memory bandwidth"


def test_capacity_has_zero_elasticity_while_it_fits(decode_l4):
    """Capacity decides whether the pass fits (13.5 GB of 24 GB here), never how long it
    takes."""
    assert decode_l4.feasible
    assert decode_l4.elasticities["memory_capacity"] == 0.0
    assert decode_l4.elasticities["interconnect_bandwidth"] == 0.0   # one device: no comm


def test_memory_efficiency_and_bandwidth_enter_as_one_product(decode_l4):
    """t_mem = bytes / (BW x eta_mem): the two elasticities are the same number."""
    e = decode_l4.elasticities
    assert e["eta_memory"] == pytest.approx(e["memory_bandwidth"], rel=1e-9)
    assert e["eta_gemm_max"] == 0.0          # no compute-bound GEMM at batch 1


def test_prefill_is_compute_bound():
    """Prefill of 8 x 1024 tokens of Llama-3-8B: ~2 x 8e9 x 8192 = 1.3e17 flop against 16 GB
    of weights, ~8000 flop/byte, far above the H100's ridge (295 flop/byte): the peak binds.
    e_peak > -1 because the size-dependent GEMM efficiency is read at F / peak."""
    r = SensitivitySolver().solve("Llama3_8B", "H100", config={
        "batch_size": 8, "seq_len": 1024, "phase": "prefill"})
    e = r.elasticities
    assert -1.0 <= e["peak_flops"] < -0.85 and e["memory_bandwidth"] > -0.15
    assert r.binding == "compute"


def test_serving_sensitivity_sees_the_interconnect_only_with_tp():
    cfg = {"seq_len": 1024, "batch_size": 8, "output_len": 64}
    one = SensitivitySolver().solve("Llama3_8B", "H100", solver="serving", config=cfg,
                                    metric="itl")
    two = SensitivitySolver().solve("Llama3_8B", "H100", solver="serving",
                                    config={**cfg, "tp_size": 2}, metric="itl")
    assert one.elasticities["interconnect_bandwidth"] == 0.0
    assert two.elasticities["interconnect_bandwidth"] < 0.0
    # CUDA graphs replace t_kernel by the graph launch cost: the device's t_kernel is moot.
    assert one.elasticities["kernel_overhead"] == 0.0
    tps = SensitivitySolver().solve("Llama3_8B", "H100", solver="serving", config=cfg,
                                    metric="tokens_per_s")
    assert tps.elasticities["memory_bandwidth"] == pytest.approx(
        -one.elasticities["memory_bandwidth"], rel=1e-9)   # tokens/s = pp x batch / itl


def test_gemm_efficiency_at_its_cap_uses_a_one_sided_step():
    hw = mlsysim.Hardware.H100
    eff = efficiency_for(hw, "fp16")
    from mlsysim.specs.hardware import EfficiencySpec
    capped = hw.model_copy(update={"efficiency": EfficiencySpec(
        gemm_max=1.0, gemm_tau=mlsysim.Q_(eff.gemm_tau_s, "s"), gemm_alpha=eff.gemm_alpha,
        attention_max=eff.attention_max, memory=eff.memory,
        kernel_overhead=mlsysim.Q_(eff.kernel_overhead_s, "s"), source="test", rows=1)})
    r = SensitivitySolver().solve("Llama3_8B", capped, config={"batch_size": 8, "seq_len": 512,
                                                               "phase": "prefill"})
    i = r.names.index("eta_gemm_max")
    assert r.one_sided[i] and -1.0 <= r.elasticities["eta_gemm_max"] < -0.5


@pytest.mark.parametrize("kwargs, field", [
    (dict(solver="training"), "solver"),
    (dict(metric="ttft"), "metric"),
    (dict(relative_step=0.0), "relative_step"),
    (dict(relative_step=0.6), "relative_step"),
    (dict(config={"batch": 2}), "config"),
    (dict(config=[1]), "config"),
    (dict(solver="serving", config=None), "config"),
    (dict(solver="serving", config={"seq_len": 0}), "seq_len"),
])
def test_sensitivity_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        SensitivitySolver().solve("Llama3_8B", "H100", **kwargs)
    assert info.value.field == field


# --- synthesis ---------------------------------------------------------------------------------
def test_llama2_70b_at_50ms_needs_about_2_8_tb_s():
    """The issue's hand value: 2 B x 70e9 params / 0.05 s = 2.8e12 B/s. Our exact bytes per
    step (Llama-2-70B: 80 layers, hidden 8192, 8 KV heads of 128, FFN 28672, vocab 32000):
    weights read = 80 x (167,772,160 qkv + 134,217,728 o + 939,524,096 up/gate +
    469,762,048 down) + 524,288,000 lm_head = 137,426,370,560 B (the embedding table is
    looked up, not read); KV read at 2048 cached tokens = 80 x 2 x 2048 x 8 x 128 x 2 B =
    671,088,640 B; activations add 0.05 GB (< 0.1 %). 138.10e9 B / 0.05 s = 2.762 TB/s,
    1.3 % below the issue's round 2.8 TB/s (which counts 70e9 params and no KV)."""
    r = SynthesisSolver().solve("Llama2_70B", "50 ms", precision="fp16")
    weights = 80 * (167_772_160 + 134_217_728 + 939_524_096 + 469_762_048) + 524_288_000
    kv = 80 * 2 * 2048 * 8 * 128 * 2
    assert r.weights_read_bytes == weights
    assert r.bytes == pytest.approx(weights + kv, rel=1e-3)
    assert r.required_bandwidth.to("TB/s").magnitude == pytest.approx(2.8, rel=0.02)
    assert r.required_bandwidth_bps == pytest.approx((weights + kv) / 0.05, rel=1e-3)
    # flops: 2 per weight (= the weight bytes at 2 B each) + attention 2 x 2 x 2048 x 64 x 128
    # per layer: 137.43e9 + 5.37e9 = 142.8 GFLOP -> 2.856 TFLOP/s, far below any GPU's peak.
    assert r.flops == pytest.approx(weights + 80 * 2 * 2 * 2048 * 64 * 128, rel=1e-3)
    assert r.binding == "memory bandwidth" and r.feasible
    assert 1.0 <= r.balance <= 2.0


def test_reference_efficiency_divides_the_requirements():
    """With H100 efficiencies, BW / eta_mem and peak / eta_gemm_max."""
    ideal = SynthesisSolver().solve("Llama2_70B", "50 ms")
    real = SynthesisSolver().solve("Llama2_70B", "50 ms", efficiency="H100")
    eff = efficiency_for(mlsysim.Hardware.H100, "fp16")
    assert real.required_bandwidth_bps == pytest.approx(ideal.required_bandwidth_bps
                                                        / eff.memory, rel=1e-12)
    assert real.required_flops_per_s == pytest.approx(ideal.required_flops_per_s
                                                      / eff.gemm_max, rel=1e-12)
    assert real.feasible   # 643 kernels x 8.1 us = 5.2 ms < 50 ms


def test_target_below_the_launch_floor_is_infeasible():
    """643 launched kernels x 8.1 us = 5.21 ms: no bandwidth makes a 1 ms step."""
    r = SynthesisSolver().solve("Llama2_70B", "1 ms", efficiency="H100")
    assert not r.feasible and "launch floor" in r.reason and r.binding == "launch"
    assert r.launch_floor.to("s").magnitude == pytest.approx(r.kernels * 8.1e-6, rel=1e-9)


def test_synthesis_of_a_cnn_pass():
    r = SynthesisSolver().solve("ResNet50", "1 ms", metric="latency", batch_size=32)
    assert r.phase == "forward" and r.required_compute.to("TFLOP/s").magnitude > 0


@pytest.mark.parametrize("kwargs, field", [
    (dict(target_latency="0 ms"), "target_latency"),
    (dict(target_latency="-5 ms"), "target_latency"),
    (dict(target_latency="5 GB"), "target_latency"),
    (dict(target_latency=0.05), "target_latency"),
    (dict(metric="ttft"), "metric"),
    (dict(precision="fp12"), "precision"),
    (dict(batch_size=0), "batch_size"),
    (dict(efficiency=3), "efficiency"),
    (dict(seq_len=10**6), "seq_len"),
])
def test_synthesis_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        SynthesisSolver().solve(**{"model": "Llama2_70B", "target_latency": "50 ms",
                                   **kwargs})
    assert info.value.field == field


def test_itl_needs_a_generative_model():
    with pytest.raises(ValidationError) as info:
        SynthesisSolver().solve("ResNet50", "1 ms")
    assert info.value.field == "metric"


# --- the differential explainer ----------------------------------------------------------------
def test_contributions_sum_exactly_to_the_difference():
    a = mlsysim.Engine.solve("Llama3_8B", "A100", seq_len=1024)
    b = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    d = compare(a, b)
    assert d.difference_s == b.latency_s - a.latency_s
    assert math.fsum(d.operators.values()) == pytest.approx(d.difference_s, rel=1e-12)
    assert math.fsum(d.terms.values()) == pytest.approx(d.difference_s, rel=1e-12)
    # Ranked by |contribution|; batch-1 decode: the weight GEMMs, memory-bound on both.
    deltas = [abs(v) for v in d.operators.values()]
    assert deltas == sorted(deltas, reverse=True)
    assert next(iter(d.operators)) == "layer.mlp.up" and d.binding == "memory bandwidth"
    # A memory-bound operator's time is bytes / (BW x eta_mem): mlp.up reads the same bytes
    # on both, so its time ratio is the inverse ratio of the effective bandwidths.
    row = {n: (x, y) for n, x, y in d.operator_rows}["layer.mlp.up"]
    ea, eb = efficiency_for(a.hardware, "fp16"), efficiency_for(b.hardware, "fp16")
    bw_a = a.hardware._base["bandwidth"] * ea.memory
    bw_b = b.hardware._base["bandwidth"] * eb.memory
    assert row[1] / row[0] == pytest.approx(bw_a / bw_b, rel=1e-9)
    assert "dT = T_b - T_a" in d.explain() and d.__rich__() is not None


def test_serving_difference_attributes_tp_communication():
    s = mlsysim.ServingModel()
    a = s.solve("Llama3_8B", "H100", seq_len=1024, batch_size=8)
    b = s.solve("Llama3_8B", "H100", seq_len=1024, batch_size=8, tp_size=2)
    d = compare(a, b)
    assert d.metric == "itl" and d.difference_s == pytest.approx(b.itl_s - a.itl_s)
    assert d.terms["communication"] == pytest.approx(b.comm_decode_s - a.comm_decode_s,
                                                     abs=1e-12)
    assert d.terms["communication"] > 0 and d.difference_s < 0
    assert math.fsum(d.operators.values()) == pytest.approx(d.difference_s, rel=1e-12)
    t = compare(a, b, metric="ttft")
    assert math.fsum(t.terms.values()) == pytest.approx(b.ttft_s - a.ttft_s, rel=1e-12)


def test_explainer_solver_runs_dict_configs():
    cfg = dict(model="Llama3_8B", hardware="H100", seq_len=1024)
    d = DifferentialExplainer().solve(cfg, {**cfg, "batch_size": 64})
    assert d.difference_s > 0 and d.feasible
    bad = DifferentialExplainer().solve(cfg, {**cfg, "model": "Llama3_70B"})
    assert not bad.feasible and bad.reason.startswith("b: ")


@pytest.mark.parametrize("a, b, kwargs, field", [
    (1, None, {}, "a"),
    ({"model": "Llama3_8B"}, None, {}, "a"),
    ({"model": "Llama3_8B", "hardware": "H100", "batch": 2}, None, {}, "a"),
    (None, None, {"solver": "x"}, "solver"),
    (None, None, {"metric": "itl"}, "metric"),
])
def test_explainer_bad_input_names_the_field(a, b, kwargs, field):
    cfg = dict(model="Llama3_8B", hardware="H100", seq_len=1024)
    with pytest.raises(ValidationError) as info:
        DifferentialExplainer().solve(cfg if a is None else a, cfg if b is None else b,
                                      **kwargs)
    assert info.value.field == field


def test_mixed_kinds_are_refused():
    p = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024)
    with pytest.raises(ValidationError) as info:
        compare(p, r, metric=None)
    assert info.value.field == "b"


def test_sensitivity_table_shows_each_spec_in_its_unit(decode_l4):
    """The rich table prints the L4's datasheet values in their units: 300 GB/s of memory
    bandwidth, 121 TFLOP/s dense fp16, PCIe Gen4 x16's 32 GB/s, an 8.1 us launch; the
    efficiencies are plain numbers."""
    t = decode_l4.__rich__()
    spec, value = list(t.columns[0].cells), list(t.columns[1].cells)
    shown = dict(zip(spec, value))
    assert {k: shown[k] for k in ("memory_bandwidth", "peak_flops", "interconnect_bandwidth",
                                  "kernel_overhead")} == {
        "memory_bandwidth": "300 GB/s", "peak_flops": "121 TFLOP/s",
        "interconnect_bandwidth": "32 GB/s", "kernel_overhead": "8.1 µs"}
    assert float(shown["eta_memory"]) == pytest.approx(0.835, abs=1e-3)     # no unit


def test_sensitivity_table_title_names_the_metric_model_and_device(decode_l4):
    assert decode_l4.__rich__().title == (
        "SensitivityResult: d ln(latency) / d ln(spec), Llama-2-7B on NVIDIA L4")


def test_launch_floor_reason_spells_out_the_floor():
    """643 kernels x 8.1 us = 5,208 us = 5.208 ms on the H100, above the 1 ms target."""
    r = SynthesisSolver().solve("Llama2_70B", "1 ms", efficiency="H100")
    assert r.reason == ("the target 1 ms is below the launch floor of 643 kernels x 8.1 us = "
                        "5.208 ms on NVIDIA H100 SXM5 80GB: no bandwidth or compute meets it")


def test_synthesis_state_is_the_kv_cache_of_the_whole_batch():
    """Llama-2-70B decode over 1,024 cached tokens plus the new one: 80 layers x 2 (K, V) x
    1,025 tokens x 8 KV heads x 128 x 2 B = 335,872,000 B per sequence; a batch of 4 holds
    1,343,488,000 B."""
    one = SynthesisSolver().solve("Llama2_70B", "50 ms", seq_len=1024)
    four = SynthesisSolver().solve("Llama2_70B", "50 ms", seq_len=1024, batch_size=4)
    assert one.state_bytes == 80 * 2 * 1025 * 8 * 128 * 2 == 335_872_000
    assert four.state_bytes == 4 * 335_872_000 == 1_343_488_000


@pytest.mark.parametrize("kwargs, message", [
    (dict(seq_len=10**6), "The 'seq_len' parameter of SynthesisSolver must not exceed "
     "Llama-2-70B's context of 4096 tokens. Got 1000000 instead."),
    (dict(efficiency=3), "The 'efficiency' parameter of SynthesisSolver must be a hardware "
     "spec or zoo name (the reference device). Got 3 instead."),
])
def test_synthesis_refusals_name_the_solver(kwargs, message):
    with pytest.raises(ValidationError) as info:
        SynthesisSolver().solve("Llama2_70B", "50 ms", **kwargs)
    assert str(info.value) == message
