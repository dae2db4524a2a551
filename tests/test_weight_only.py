"""Weight-only quantized GEMMs stream their weights below the memory speed: the kernel
dequantizes each weight. The fraction comes from a GEMV microbenchmark pair
(validation/microbench/weight_only_gemv.csv: PyTorch's gpt-fast benchmark, torch.compile of
``W.to(x.dtype) @ x``): int8 984.06 / bf16 1137.92 GB/s = 0.86478 and 870 / 990 = 0.87879,
median 0.87179."""

import pytest

import mlsysim
from mlsysim.cache import clear_caches
from mlsysim.core.calibration import weight_only_stream_speed
from mlsysim.solvers import serving
from mlsysim.solvers.serving import serving_efficiency

INT8 = (984.06 / 1137.92 + 870 / 990) / 2          # 0.87179


def test_the_speed_is_the_median_of_the_measured_pairs():
    speed, (lo, hi) = weight_only_stream_speed("int8")
    assert speed == pytest.approx(INT8, rel=1e-12)
    assert (lo, hi) == pytest.approx((984.06 / 1137.92, 870 / 990), rel=1e-12)
    assert weight_only_stream_speed("int4") is None       # not measured: no factor
    assert weight_only_stream_speed("fp8") is None


def test_the_factor_applies_only_to_weights_below_the_compute_precision():
    """bf16 compute with int8 weights gets it, at the band's edges the pair's extremes; W8A8
    int8 (weights in the compute precision) and unmeasured int4 weights do not."""
    a100 = mlsysim.Hardware.get("A100")
    eff = serving_efficiency(a100, "bf16", True, "nominal", None, "int8")
    assert eff.weight_stream_speed == pytest.approx(INT8, rel=1e-12)
    assert serving_efficiency(a100, "bf16", True, "fast", None, "int8").weight_stream_speed \
        == pytest.approx(870 / 990, rel=1e-12)
    assert serving_efficiency(a100, "bf16", True, "slow", None, "int8").weight_stream_speed \
        == pytest.approx(984.06 / 1137.92, rel=1e-12)
    assert serving_efficiency(a100, "int8", True, "nominal", None, "int8") \
        .weight_stream_speed == 1.0
    assert serving_efficiency(a100, "bf16", True, "nominal", None, "int4") \
        .weight_stream_speed == 1.0
    assert serving_efficiency(a100, "bf16", True).weight_stream_speed == 1.0


def _decode_ops(model, monkeypatch=None, **kw):
    clear_caches()
    r = mlsysim.ServingModel().solve(model, "A100", seq_len=5, batch_size=1, precision="bf16",
                                     weight_precision="int8", output_len=200, **kw)
    return {o["name"]: o for o in r.trace()["decode_step"]["operators"]}, r


def test_gemm_weight_reads_slow_by_one_over_the_speed_and_nothing_else(monkeypatch):
    """Llama-2 7B decode at batch 1 on an A100 with int8 weights: the QKV GEMM reads
    4096 x 12288 x 1 B = 50,331,648 B of weights and (4096 + 12288) x 2 B = 32,768 B of
    activations; its memory time is (50,331,648 / 0.87179 + 32,768) / (BW eta_mem). With the
    factor taken away (no measurement) it is (50,331,648 + 32,768) / (BW eta_mem). Norms and
    attention, which hold no weights, take the same time either way."""
    from mlsysim.core.engine import efficiency_for
    with_factor, r = _decode_ops("Llama2_7B")
    assert "0.872 of the memory speed (band 0.865-0.879)" in r.explain()
    assert any("0.872 of the memory speed" in a for a in r.to_dict()["assumptions"])
    monkeypatch.setattr(serving, "weight_only_speed", lambda *a: None)
    without, _ = _decode_ops("Llama2_7B")
    clear_caches()
    a100 = mlsysim.Hardware.get("A100")
    bw_eff = a100._base["bandwidth"] * efficiency_for(a100, "bf16", True).memory
    wb, ab = 4096 * 12288, (4096 + 12288) * 2
    assert with_factor["layer.qkv"]["memory_s"] == pytest.approx((wb / INT8 + ab) / bw_eff,
                                                                 rel=1e-9)
    assert without["layer.qkv"]["memory_s"] == pytest.approx((wb + ab) / bw_eff, rel=1e-9)
    for name in ("layer.norm", "layer.attention", "layer.mlp.act"):
        assert with_factor[name]["memory_s"] == without[name]["memory_s"]


def test_routed_experts_read_their_weights_at_the_speed_too(monkeypatch):
    """Mixtral 8x7B (MoE rows take their own path: only the experts a batch's tokens pick
    are read): an expert GEMM's memory time grows by the same 1 / 0.87179 on its weights."""
    with_factor, _ = _decode_ops("Mixtral_8x7B")
    monkeypatch.setattr(serving, "weight_only_speed", lambda *a: None)
    without, _ = _decode_ops("Mixtral_8x7B")
    clear_caches()
    experts = [n for n in with_factor if n.endswith(("experts.up", "experts.down"))]
    assert len(experts) == 2
    assert with_factor["layer.moe.experts.act"]["memory_s"] == \
        without["layer.moe.experts.act"]["memory_s"]
    for name in experts:
        ratio = with_factor[name]["memory_s"] / without[name]["memory_s"]
        assert 1 / INT8 * 0.99 < ratio <= 1 / INT8 * (1 + 1e-9), name


def test_non_gemm_rows_with_weights_keep_the_memory_speed(monkeypatch):
    """Mamba-2.8B's selective scan holds weights of its own (A and D, 327,680 B per layer at
    int8) but is no dequantizing GEMV: its memory time is the same with the factor as
    without, while its in_proj GEMM slows by up to 1 / 0.87179."""
    with_factor, _ = _decode_ops("Mamba_2_8B")
    monkeypatch.setattr(serving, "weight_only_speed", lambda *a: None)
    without, _ = _decode_ops("Mamba_2_8B")
    clear_caches()
    assert with_factor["layer.scan"]["memory_s"] == without["layer.scan"]["memory_s"]
    ratio = with_factor["layer.in_proj"]["memory_s"] / without["layer.in_proj"]["memory_s"]
    assert 1 / INT8 * 0.99 < ratio <= 1 / INT8 * (1 + 1e-9)
