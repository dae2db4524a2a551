"""Engine.solve: the tutorial contract and hand-checkable physics."""

import math

import numpy as np
import pytest

import mlsysim
from mlsysim import Engine
from mlsysim.core.calibration import calibration

A100, H100 = mlsysim.Hardware.Cloud.A100, mlsysim.Hardware.Cloud.H100
RESNET, LLAMA = mlsysim.Models.ResNet50, mlsysim.Models.Llama3_8B
BATCHES = [1, 4, 16, 32, 64, 128, 256]


def test_tutorial_resnet50_a100_batch1():
    p = Engine.solve(model=RESNET, hardware=A100, batch_size=1, precision="fp16")
    assert p.bottleneck == "Memory"
    # API.md: 0.54 ms +-20 %; public A100 batch-1 ResNet-50 measurements are ~0.5 ms.
    assert 0.54 * 0.8 <= p.latency.to("ms").magnitude <= 0.54 * 1.2
    assert float(p.throughput) == pytest.approx(1 / p.latency.to("s").magnitude)
    assert f"{p.throughput:.0f}" == str(round(float(p.throughput)))


def test_batch_sweep_monotone_and_saturating():
    profiles = [Engine.solve(RESNET, A100, batch_size=b) for b in BATCHES]
    lat = [p.latency_s for p in profiles]
    thr = [float(p.throughput) for p in profiles]
    assert all(b >= a for a, b in zip(lat, lat[1:]))
    assert all(b >= a for a, b in zip(thr, thr[1:]))
    # Throughput stays under the compute roof: 312e12 / 8.19e9 flop per image = 38.1k images/s.
    roof = 312e12 / (2 * RESNET.macs_per_sample)
    assert max(thr) < roof
    # ...and saturates: the last doubling gains less than 15 %.
    assert thr[-1] / thr[-2] < 1.15


def test_regime_flips_from_memory_to_compute_and_h100_flips_later():
    def flip(hw):
        for b in range(1, 513):
            if Engine.solve(RESNET, hw, batch_size=b).bottleneck == "Compute":
                return b
        return math.inf
    a, h = flip(A100), flip(H100)
    assert Engine.solve(RESNET, A100, batch_size=1).bottleneck == "Memory"
    assert 1 < a < math.inf
    assert h > a  # the H100 ridge (295 flop/byte) lies right of the A100's (153)


def test_operator_regime_follows_the_ridge_point():
    """Each operator is labelled Compute exactly when its intensity exceeds peak / bandwidth."""
    p = Engine.solve(RESNET, A100, batch_size=16)
    ridge = p.ridge_point.magnitude
    for op in p.operators:
        if op["kind"] in ("conv", "gemm"):
            assert (op["flops"] / op["bytes"] > ridge) == (op["regime"] == "Compute"), op["name"]


def test_ridge_point_is_the_engine_peak_over_bandwidth():
    p = Engine.solve(RESNET, A100)
    assert p.ridge_point.magnitude == pytest.approx(312e12 / 2.039e12)
    assert p.peak_flops.magnitude == pytest.approx(312)


def test_llama3_8b_decode_is_memory_bound_near_weight_streaming_time():
    p = Engine.solve(model=LLAMA, hardware=A100, batch_size=1, precision="fp16")
    assert p.phase == "decode" and p.bottleneck == "Memory"
    assert p.arithmetic_intensity.magnitude < 2  # "about 1 flop/byte"
    # Weights streamed per token (embedding table excluded: only one row is gathered):
    # 8.03e9 - 128256*4096 = 7.505e9 params * 2 B = 15.01 GB; / 2.039 TB/s = 7.36 ms.
    floor = 7.505e9 * 2 / 2.039e12
    eff = calibration().efficiency("A100", "fp16")
    assert p.latency_s > floor
    # Within the calibrated memory efficiency plus the KV read (2048 ctx * 131072 B = 0.27 GB)
    # and kernel overheads.
    ceiling = (15.01e9 + 0.27e9) / (2.039e12 * eff.memory) + 400 * eff.kernel_overhead_s
    assert p.latency_s < ceiling * 1.05


def test_a100_to_h100_decode_speedup_tracks_bandwidth():
    a = Engine.solve(LLAMA, A100, batch_size=1)
    h = Engine.solve(LLAMA, H100, batch_size=1)
    speedup = a.latency_s / h.latency_s
    bw_ratio, flops_ratio = 3.35 / 2.039, 989.5 / 312
    assert abs(speedup - bw_ratio) < abs(speedup - flops_ratio)
    assert speedup == pytest.approx(bw_ratio, rel=0.25)


def test_prefill_is_compute_bound_and_costs_two_flops_per_param_per_token():
    p = Engine.solve(LLAMA, H100, batch_size=1, seq_len=2048, phase="prefill")
    assert p.bottleneck == "Compute"
    # Matmul flops ~ 2 * 6.98e9 (non-embedding, non-head weights) * 2048 tokens = 28.6 TFLOP,
    # plus causal attention 4*4096*(2048*2049/2)*32 layers = 1.1 TFLOP, plus the LM head.
    assert p.flops_total == pytest.approx(2 * 6.98e9 * 2048 + 1.1e12 + 1.05e9, rel=0.02)


def test_infeasible_when_weights_do_not_fit():
    p = Engine.solve(mlsysim.Models.Llama3_70B, A100, batch_size=1)
    assert not p.feasible
    # The A100 80GB holds 81920 MiB (nvidia-smi) = 81920 x 2^20 B = 85.9e9 B, printed "85.9 GB".
    assert "needs" in p.reason and "has 85.9 GB" in p.reason
    assert p.memory_footprint.to("GB").magnitude > 140  # 70.6e9 params * 2 B


def test_kv_cache_grows_footprint_with_batch_and_context():
    small = Engine.solve(LLAMA, A100, batch_size=1, seq_len=1024)
    big = Engine.solve(LLAMA, A100, batch_size=8, seq_len=4096)
    # KV per token 131,072 B: 8 * 4097 * 131072 - 1 * 1025 * 131072 = 4.16 GB more; decode
    # activations (one token: 4096 + 2*14336 wide, plus 128256 logits, fp16) are ~0.3 MB each.
    delta = big.memory_footprint.to("B").magnitude - small.memory_footprint.to("B").magnitude
    assert delta == pytest.approx((8 * 4097 - 1025) * 131072, rel=0.01)


def test_sweep_matches_scalar_solves():
    sweep = Engine.sweep(RESNET, A100, BATCHES)
    for i, b in enumerate(BATCHES):
        p = Engine.solve(RESNET, A100, batch_size=b)
        assert sweep["latency_s"][i] == pytest.approx(p.latency_s, rel=1e-12)
        assert sweep["bottleneck"][i] == p.bottleneck


def test_sweep_uses_a_float64_batch_array_without_copying_it():
    """Batch sizes already in float64 are read in place (a million-batch sweep allocates no
    second input array): the returned batch_size is the caller's array, still [1, 2, 4]. An
    int list is converted once, to float64."""
    batches = np.array([1.0, 2.0, 4.0])
    out = Engine.sweep(RESNET, A100, batches)
    assert np.shares_memory(out["batch_size"], batches)
    assert out["batch_size"].tolist() == [1.0, 2.0, 4.0]
    ints = Engine.sweep(RESNET, A100, [1, 2, 4])["batch_size"]
    assert ints.dtype == np.float64 and ints.tolist() == [1.0, 2.0, 4.0]


def test_band_brackets_the_prediction():
    p = Engine.solve(LLAMA, H100, batch_size=4)
    lo, hi = p.band
    assert lo.magnitude <= p.latency.magnitude <= hi.magnitude
    assert lo.magnitude < hi.magnitude


def test_explain_and_to_dict():
    p = Engine.solve(RESNET, A100, batch_size=1)
    text = p.explain()
    assert "ridge point 153.0 flop/byte" in text and "Memory" in text
    d = p.to_dict()
    assert d["bottleneck"] == "Memory"
    assert d["latency"]["unit"] == "ms"
    assert d["latency"]["value"] == pytest.approx(p.latency.magnitude)


@pytest.mark.parametrize("model", list(mlsysim.Models), ids=lambda m: m.key)
def test_every_model_solves_on_h100(model):
    p = Engine.solve(model, H100, batch_size=1)
    assert p.latency_s > 0 and math.isfinite(p.latency_s)
    assert p.flops_total > 0 and p.bytes_total > 0
    assert p.flops_total / p.latency_s <= 989.5e12


@pytest.mark.parametrize("hw", list(mlsysim.Hardware), ids=lambda h: h.key)
def test_every_device_runs_resnet(hw):
    """No device runs ResNet-50 faster than its own roofs allow: latency >= max(F / peak,
    bytes / bandwidth) at the spec peak and bandwidth (efficiencies are <= 1), and the
    reported MFU is F / (latency x peak), at most 1."""
    precision = hw.compute.default_precision
    p = Engine.solve(RESNET, hw, batch_size=1, precision=precision)
    peak = hw.peak(precision).to("flop/s").magnitude
    roof = max(p.flops_total / peak, p.bytes_total / hw._base["bandwidth"])
    assert roof <= p.latency_s, hw.key
    assert p.mfu == pytest.approx(p.flops_total / (p.latency_s * peak), rel=1e-9)
    assert p.mfu <= 1.0


# --- a pass split over devices: tp_size, pp_size, memory_utilization ----------------------
@pytest.mark.parametrize("tp, pp", [(1, 1), (8, 1), (4, 2)])
def test_split_pass_is_the_serving_decode_step(tp, pp):
    """One decode step of Llama-3-8B over 1024 cached tokens at batch 8: Engine.solve with
    tp/pp lowers the same table as ServingModel's decode pass (output_len=1 puts its ITL at
    the same context; cuda_graphs=False gives both the eager launch floor), so the two agree
    to the last bit. A broken TP lowering or collective path in either would split them."""
    p = Engine.solve(LLAMA, H100, batch_size=8, seq_len=1024, tp_size=tp, pp_size=pp)
    s = mlsysim.ServingModel().solve(model=LLAMA, hardware=H100, seq_len=1024, output_len=1,
                                     batch_size=8, tp_size=tp, pp_size=pp, cuda_graphs=False)
    assert p.latency_s == pytest.approx(s.itl_s, rel=1e-12)
    assert (p.tp_size, p.pp_size) == (tp, pp)


def test_split_pass_memory_is_per_device():
    """Llama-3-70B fp16 decode at batch 8, 1024 cached tokens on tp=4 x pp=2:
    weights 70,553,706,496 params x 2 B / 8 = 17.64 GB per device; KV 1024 tokens x
    (2 x 80 layers x 8 heads x 128 x 2 B = 327,680 B) x 8 sequences = 2.684 GB, split by
    tp=4 (8 KV heads over 4 ranks: 2 each) and pp=2 -> 0.3355 GB per device."""
    p = Engine.solve("Llama3_70B", H100, batch_size=8, seq_len=1024, tp_size=4, pp_size=2)
    assert p.weights_bytes == pytest.approx(70_553_706_496 * 2 / 8, rel=1e-3)
    assert p.state_bytes == pytest.approx(1024 * 327_680 * 8 / 8, rel=0.01)
    assert p.memory.weights == p.weights_bytes and p.memory.per_sample * 8 == p.state_bytes
    assert p.feasible
    # A pipeline keeps one pass per stage in flight: twice the samples per second.
    assert float(p.throughput) == pytest.approx(2 * 8 / p.latency_s, rel=1e-12)
    # The unsplit pass does not fit an 80 GB part: 141 GB of weights.
    whole = Engine.solve("Llama3_70B", H100, batch_size=8, seq_len=1024)
    assert not whole.feasible and "weights" in whole.reason


def test_memory_utilization_sets_the_usable_bytes():
    """Llama-3-8B fp16 on an 80 GiB A100: 16.06 GB of weights fit in 0.9 x 85.9 GB but not in
    0.15 x 85.9 = 12.9 GB; the usable bytes are capacity x memory_utilization exactly."""
    cap = A100.memory.capacity.to("byte").magnitude
    p = Engine.solve(LLAMA, A100, seq_len=128, memory_utilization=0.9)
    assert p.memory.usable == pytest.approx(0.9 * cap, rel=1e-12) and p.feasible
    q = Engine.solve(LLAMA, A100, seq_len=128, memory_utilization=0.15)
    assert not q.feasible and "12.9 GB" in q.reason
    assert Engine.solve(LLAMA, A100, seq_len=128).memory.usable == cap


@pytest.mark.parametrize("kw, field", [
    (dict(model="Llama3_70B", tp_size=3), "tp_size"),           # 64 heads
    (dict(model="Llama3_70B", tp_size=16), "tp_size"),          # beyond the NVLink domain
    (dict(model="Llama3_70B", pp_size=81), "pp_size"),          # 80 layers
    (dict(model="ResNet50", tp_size=2), "tp_size"),             # a CNN is not split
    (dict(model="Llama3_8B", tp_size=True), "tp_size"),
    (dict(model="Llama3_8B", memory_utilization=0.0), "memory_utilization"),
    (dict(model="Llama3_8B", memory_utilization=float("nan")), "memory_utilization"),
    (dict(model="Llama3_8B", memory_utilization=1.5), "memory_utilization"),
])
def test_split_pass_bad_input_names_the_field(kw, field):
    with pytest.raises(mlsysim.errors.ValidationError) as err:
        Engine.solve(hardware=H100, **kw)
    assert err.value.field == field


def test_split_pass_on_a_node_uses_its_fabric_and_repr_shows_the_split():
    """A DGX H100 is 8 H100s on NVLink 4: the chip's own scale-up link, so tp=8 on the node
    and on the bare chip give the same pass; an unsplit profile's repr hides tp and pp."""
    node = Engine.solve("Llama3_70B", "DGX_H100", batch_size=8, seq_len=1024, tp_size=8)
    chip = Engine.solve("Llama3_70B", H100, batch_size=8, seq_len=1024, tp_size=8)
    assert node.latency_s == pytest.approx(chip.latency_s, rel=1e-9)
    assert "tp=8" in repr(chip) and "pp=" not in repr(chip)
    assert "tp=" not in repr(Engine.solve(LLAMA, H100))


def test_attention_computes_in_16_bits_under_fp8():
    """Llama-3-8B prefill of 8,192 tokens on an H100: the attention kernels' compute time is
    the same at fp8 as at fp16 (FlashAttention-2 is fp16/bf16 only; the calibrated attention
    efficiency is a fraction of the 989 TFLOP/s 16-bit peak), while the GEMMs run at the
    1,979 TFLOP/s fp8 peak: faster. F = 4 x 128 x 32 heads x (8192 x 8193 / 2) pairs x 32
    layers = 1.126e13 flop, so t >= F / 989e12 = 11.4 ms."""
    def rows(p):
        r = Engine.solve(LLAMA, H100, phase="prefill", seq_len=8192, precision=p)
        return {o["name"]: o for o in r.operators}
    fp8, fp16 = rows("fp8"), rows("fp16")
    att = next(k for k in fp8 if k.endswith("attention"))
    assert fp8[att]["compute_s"] == pytest.approx(fp16[att]["compute_s"], rel=1e-12)
    assert fp8[att]["compute_s"] >= 4 * 128 * 32 * 8192 * 8193 / 2 * 32 / 989e12
    gemm = next(k for k in fp8 if k.endswith("mlp.up_gate") or k.endswith("qkv"))
    assert fp8[gemm]["compute_s"] < 0.75 * fp16[gemm]["compute_s"]


@pytest.mark.parametrize("batch", [1, 256])
def test_trace_operators_add_up_to_the_latency(batch):
    """Each operator of the trace takes the largest of its compute, memory and launch terms
    (the cost model's t_op); count x time over the operators is the pass's latency on one
    device (no collectives), and the binding names the term that won. ResNet-50 on an A100:
    launch- and memory-bound operators at batch 1, compute-bound ones at 256."""
    p = Engine.solve(RESNET, A100, batch_size=batch)
    t = p.trace()
    assert t["hardware"]["key"] == "A100" and t["result"]["latency_s"] == p.latency_s
    total = 0.0
    for op in t["operators"]:
        floor_wins = op["binding"] == "launch"
        assert op["time_s"] >= max(op["compute_s"], op["memory_s"])
        if not floor_wins:
            assert op["time_s"] == max(op["compute_s"], op["memory_s"])
            assert op["binding"] == ("compute" if op["compute_s"] >= op["memory_s"]
                                     else "memory")
        total += op["count"] * op["time_s"]
    assert total == pytest.approx(p.latency_s, rel=1e-12)
    kinds = {op["binding"] for op in t["operators"]}
    assert "compute" in kinds if batch == 256 else {"launch", "memory"} <= kinds


def test_trace_names_each_constant_with_its_unit_and_source():
    """The trace's provenance for ResNet-50 on an A100: the device's key, datasheet and date; the
    bandwidth, which has no per-field source in the zoo entry, cites the datasheet; the capacity
    cites its own field source; the fitted terms carry their units (tau and t_kernel in
    seconds) and the microbenchmark rows behind them (t_kernel: every 'launch' row)."""
    from mlsysim.core.calibration import load_microbench
    p = Engine.solve(RESNET, A100, batch_size=8)
    t = p.trace()
    assert t["hardware"] == {"key": "A100", "source": A100.source, "as_of": "2021-06"}
    c = t["constants"]
    assert c["bandwidth"] == {"value": 2039e9, "unit": "byte/s", "source": A100.source}
    assert c["capacity"] == {"value": 80 * 2**30, "unit": "byte",
                             "source": A100.field_sources["memory.capacity"]}
    assert {k: c[k]["unit"] for k in c} == {
        "peak_flops": "flop/s", "bandwidth": "byte/s", "capacity": "byte", "eta_gemm_max": "1",
        "tau": "s", "alpha": "1", "eta_attention": "1", "eta_mem": "1", "t_kernel": "s"}
    launch_rows = [r["id"] for r in load_microbench() if r["kind"] == "launch"]
    assert c["t_kernel"]["rows"] == launch_rows and len(launch_rows) == 8
    assert c["t_kernel"]["value"] == pytest.approx(8.1e-6, rel=1e-12)


def test_explain_prints_the_memory_footprint_in_gb():
    """ResNet-50 has 25,557,032 parameters: fp16 weights are 51,114,064 B = 0.05111 GB;
    inference keeps no optimizer state; the batch-8 activations are the profile's 19,267,584 B
    = 0.01927 GB; the sum is 0.07038 GB of the A100's 80 GiB = 85.9 GB at memory_utilization 1."""
    p = Engine.solve(RESNET, A100, batch_size=8)
    assert p.weights_bytes == 2 * 25_557_032 and p.activation_bytes == 19_267_584
    assert ("  memory: weights 0.05111 GB + state 0 GB + activations 0.01927 GB = 0.07038 GB "
            "per device of 85.9 GB usable (1 x 85.9 GB) -> fits") in p.explain().splitlines()


def test_comm_terms_price_a_batch_independent_message_into_the_fixed_part():
    """A 1 GB gradient all-reduce over the 8 GPUs of a DGX H100, given as fixed_bytes (per
    pass, not per sample): its whole time a + b * 1e9 lands in the batch-independent part
    ``a`` (the same seconds collective_time gives for 1e9 bytes), and the per-sample part is
    zero."""
    from mlsysim.core.collectives import collective_time, comm_path
    from mlsysim.core.costmodel import _comm_terms
    from mlsysim.core.engine import SingleNodeModel
    from mlsysim.workloads.training import with_collectives
    base = SingleNodeModel().solve(**SingleNodeModel.example())._prepared.table
    table = with_collectives(base, [{"name": "grad", "kind": "allreduce", "group": 8,
                                     "count": 1, "fixed_bytes": 1e9}])
    rows, a, b = _comm_terms(table, comm_path("DGX_H100"), "auto")
    assert list(rows) == [len(base.names)]
    assert a.shape == (1, 1)
    assert a[0, 0] == pytest.approx(collective_time("DGX_H100", "allreduce", 1e9, 8), rel=1e-12)
    assert a[0, 0] == pytest.approx(4.0044e-3, rel=1e-4)
    assert b[0, 0] == 0.0


def test_op_times_compute_scale_divides_compute_up_to_the_efficiency_ceiling():
    """compute_scale 1.2 speeds each op's compute by min(1.2, 1 / eta_max): the GEMMs
    (eta_max = gemm_max, 1/eta 1.318) and attention (1/eta 3.02) by 1.2, the vector ops
    (eta_max 1) not at all. Memory times are untouched."""
    from mlsysim.core.costmodel import op_times
    from mlsysim.core.engine import SingleNodeModel
    p = SingleNodeModel().solve(**SingleNodeModel.example())._prepared
    tc1, tm1, _ = op_times(p, 8)
    tc2, tm2, _ = op_times(p, 8, compute_scale=1.2)
    gemm_like = p.max_compute_scale > 1.2
    assert gemm_like.sum() == 6          # qkv, attention, o_proj, mlp.up, mlp.down, lm_head
    np.testing.assert_allclose(tc2[gemm_like], tc1[gemm_like] / 1.2, rtol=1e-12)
    np.testing.assert_allclose(tc2[~gemm_like], tc1[~gemm_like], rtol=1e-12)
    np.testing.assert_array_equal(tm2, tm1)


def test_trace_names_the_zoo_fit_and_each_operators_regime():
    """A zoo H100 (no user efficiency): every efficiency constant's source is the published
    fit; Llama-3-8B decode at batch 8 is memory-regime in all 11 operators, spelled
    "Memory"."""
    from mlsysim.core.engine import SingleNodeModel
    r = SingleNodeModel().solve(**SingleNodeModel.example())
    tr = r.trace()
    for k in ("eta_gemm_max", "tau", "alpha", "eta_attention", "eta_mem", "t_kernel"):
        assert tr["constants"][k]["source"] == "fit to published microbenchmarks (see rows)"
    assert [o["regime"] for o in tr["operators"]] == ["Memory"] * 11
