"""The numbers explain() prints are the result's own, in the units it names. The presentation
snapshot masks numbers, so each line here pins one printed value to the field it shows (a
unit factor of 1e3 vs 1e9, a product vs a quotient), by hand where the arithmetic is short."""

import numpy as np
import pytest

import mlsysim
from mlsysim import (
    CheckpointModel,
    DataModel,
    DistributedModel,
    EconomicsModel,
    ServingModel,
    SustainabilityModel,
    TopologyModel,
)
from mlsysim.core.calibration import calibration, canonical_precision
from mlsysim.core.engine import Engine
from mlsysim.solvers.topology import dragonfly_hops


def test_serving_explain_prints_the_itl_in_ms():
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=128, output_len=8)
    assert f") = {r.itl_s * 1e3:.4g} ms" in r.explain()


def test_checkpoint_explain_prints_the_filesystem_cap_in_gb_per_s():
    """112.4 GB over min(64 GB/s, 5 GB/s) = 22.48 s."""
    r = CheckpointModel().solve("Llama3_8B", "H100", filesystem_limit_gbs=5)
    assert "min(1 x 64 GB/s [host link], 5 GB/s) = 5 GB/s -> filesystem bind" in r.explain()
    assert "no cap" in CheckpointModel().solve("Llama3_8B", "H100").explain()


def test_economics_explain_prints_other_opex_over_the_whole_period():
    """$12,000 a year for 730 days (2 years): $24,000 of other opex."""
    kw = {**EconomicsModel.example(), "duration_days": 730, "other_opex_per_year": 12_000}
    r = EconomicsModel().solve(**kw)
    assert r.years == pytest.approx(2.0, rel=1e-3)
    assert f"other opex ${12_000 * r.years:,.0f}" in r.explain()


def test_torus_explain_shows_the_bisection_arithmetic():
    """TPU v5p 16 x 16 x 24: 2 x 6144 / 24 = 512 links x 100 GB/s = 51.2 TB/s."""
    r = TopologyModel().solve("TPU_v5p_ICI", "torus", torus_shape=(16, 16, 24))
    assert ("torus 16 x 16 x 24: bisection = 2 N / a_max = 2 x 6144 / 24 = 512 links x "
            "100 GB/s = 51.2 TB/s") in r.explain()


def test_a_dragonfly_within_one_group_is_three_hops_at_most():
    """20 terminals, 5 per router, 10 routers per group: one group (20 <= 50), diameter 3.
    Pairs on a router 4 x 5 x 4 = 80 of 20 x 19 = 380, the other 300 in the group:
    avg = (2 x 80 + 3 x 300) / 380 = 2.7895."""
    avg, diameter = dragonfly_hops(20, 5, 10)
    assert diameter == 3 and avg == pytest.approx((2 * 80 + 3 * 300) / 380, rel=1e-12)


def test_sweep_flattens_a_grid_and_bounds_batches_at_2_to_the_53():
    grid = Engine.sweep(model="ResNet50", hardware="A100", batch_sizes=np.array([[1, 2], [4, 8]]))
    flat = Engine.sweep(model="ResNet50", hardware="A100", batch_sizes=[1, 2, 4, 8])
    assert grid["latency_s"].shape == (4,)
    assert np.array_equal(grid["latency_s"], flat["latency_s"])
    with pytest.raises(mlsysim.errors.ValidationError, match=r"up to 2\*\*53"):
        Engine.sweep(model="ResNet50", hardware="A100", batch_sizes=[2**53 + 2])


def test_a_calibrated_device_yaml_keeps_the_spec_field_order(tmp_path):
    from mlsysim.core.device_calibration import calibrate_device
    csv = tmp_path / "runs.csv"
    csv.write_text("kind,value,unit\nmemcpy,3000,GB/s\nlaunch,2.5,us\n")
    result = calibrate_device(csv, mlsysim.Hardware.H100)
    keys = [line.split(":")[0] for line in result.yaml().splitlines()
            if line and line[0].isalpha()]
    assert keys == list(result.hardware.model_dump(mode="json", exclude_none=True))
    assert keys != sorted(keys)


def test_mamba_scan_flops_by_hand():
    """Mamba-2.8B's selective scan is charged 9 flops per token, inner channel and state
    element (workloads/ssm.py): 9 x 512 x 5120 x 16 = 377,487,360 per layer at a 512-token
    prefill, 64 layers."""
    from mlsysim.workloads import lower
    t = lower(mlsysim.Models.get("Mamba_2_8B"), phase="prefill", seq_len=512, e=2, kv_e=2, we=2)
    i = list(t.names).index("layer.scan")
    assert t.flops_per_sample[i] == 9 * 512 * 5120 * 16 and t.count[i] == 64


def test_sensitivity_reads_each_spec_at_its_datasheet_value():
    """H100 at batch 256 over 1,024 tokens: the peak is the 16-bit dense 989.5 TFLOP/s, a
    compute-leaning but mostly memory-bound step (e_peak in (-1, 0))."""
    r = mlsysim.SensitivitySolver().solve("Llama3_8B", "H100",
                                          config={"batch_size": 256, "seq_len": 1024})
    assert set(r.elasticities) >= {"peak_flops", "memory_bandwidth", "memory_capacity"}
    assert -1 < r.elasticities["peak_flops"] < 0
    assert "peak_flops              x = 9.895e+14" in r.explain()


def test_trace_efficiencies_are_dimensionless_and_zero_bytes_take_no_time():
    from mlsysim.core.collectives import collective_time
    c = Engine.solve(model="Llama3_8B", hardware="H100", batch_size=1).trace()["constants"]
    assert c["eta_attention"]["unit"] == "1" and c["eta_mem"]["unit"] == "1"
    zero = collective_time("H100", "allreduce", 0, 8)
    assert zero == 0.0 and isinstance(zero, float)
    assert collective_time("H100", "send_recv", 1e6, 2) == collective_time("H100", "p2p", 1e6, 2)


def test_continuous_batching_reads_weights_at_their_own_precision():
    """Llama-3-70B on 4 H100 at a trickle (one sequence decoding): bf16 weights are 2 B per
    parameter, 70.6e9 x 2 / 4 = 35 GB per device per step; int4 weight-only about 0.5 B plus
    group scales, under 10 GB. The step is weight-read bound, so int4 takes well under 0.6 of
    the bf16 step."""
    from mlsysim import ContinuousBatchingModel
    kw = dict(prompt_len=512, output_len=128, arrival_rate_qps=0.05, tp_size=4)
    bf16 = ContinuousBatchingModel().solve("Llama3_70B", "H100", **kw)
    int4 = ContinuousBatchingModel().solve("Llama3_70B", "H100", weight_precision="int4", **kw)
    assert bf16.concurrency == int4.concurrency == 1.0
    assert int4.step_s < 0.6 * bf16.step_s


def test_tf32_and_fp32_training_store_four_byte_weights():
    """Llama-3-8B's 8,030,261,248 parameters, data parallel (no sharding of the weights):
    bf16 keeps 2 B each, 16,060,522,496 B; tf32 and fp32 training keep 4 B, 32,121,044,992 B."""
    n = 8_030_261_248
    for precision, width in (("bf16", 2), ("tf32", 4), ("fp32", 4)):
        r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_A100", batch_size=64,
                                             seq_len=2048, precision=precision, zero_stage=1)
        assert r.memory.weights == width * n, precision


def test_to_dict_quantities_are_value_and_unit_pairs():
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=128, output_len=8)
    ttft = r.to_dict()["ttft"]
    assert set(ttft) == {"value", "unit"} and ttft["unit"] == "ms"
    assert ttft["value"] == pytest.approx(r.ttft.to("ms").magnitude, rel=1e-12)
    rate = r.to_dict()["tokens_per_s"]                     # a Rate, not a pint quantity
    assert rate == {"value": pytest.approx(float(r.tokens_per_s), rel=1e-12), "unit": "token/s"}
    assert set(r.trace()["equations"]) >= {"ttft", "itl"}


def test_headlines_show_the_inputs_in_their_units():
    """10 kB per sample at 1 GB/s: 1e9 / 1e4 = 100,000 samples/s from storage; a 5 GB/s
    filesystem cap is shown as 5 GB/s, an uncapped one as None."""
    h = DataModel().solve(100, "10 kB", "1 GB/s").headline()
    assert h["bytes_per_sample"].to("kB").magnitude == pytest.approx(10.0)
    assert h["storage_samples_per_s"].magnitude == pytest.approx(1e5)
    capped = CheckpointModel().solve("Llama3_8B", "H100", filesystem_limit_gbs=5).headline()
    assert capped["filesystem_limit"].to("GB/s").magnitude == pytest.approx(5.0)
    assert CheckpointModel().solve("Llama3_8B", "H100").headline()["filesystem_limit"] is None


def test_sustainability_headline_names_the_system():
    r = SustainabilityModel().solve("DGX_H100", duration_days=1, grid="Quebec",
                                    datacenter="Hyperscale", mfu=0.4)
    assert r.headline()["system"] == mlsysim.Systems.Nodes.DGX_H100.name


def test_canonical_precision_of_free_text():
    """A name in the text wins; a bare '16' means fp16; anything else is its first word."""
    assert canonical_precision("FP8 (e4m3)") == "fp8"
    assert canonical_precision("16-bit float") == "fp16"
    assert canonical_precision("mixed precision") == "mixed"
    assert canonical_precision("") == ""


def test_provenance_of_a_device_without_copy_rows_is_empty_lists():
    """L40S has no GEMM, copy or attention rows in the shipped data: each term is the
    cross-device median (estimated), so no row ids, and no crash."""
    p = calibration().provenance("L40S", "fp16")
    assert p["memory"] == [] and p["attention"] == [] and p["gemm_max"] == []
    assert p["kernel_overhead"] and p["gemm_ramp (tau, alpha)"] == ["all GEMM rows with a shape"]


def test_trace_cites_the_field_source_of_a_driver_capacity():
    """MI300X's capacity is the driver's 196,592 MiB, cited to its own source, not the
    datasheet page the other fields come from."""
    c = Engine.solve(model="Llama3_8B", hardware="MI300X", batch_size=1).trace()["constants"]
    assert c["capacity"] == {"value": 196592 * 2**20, "unit": "byte",
                             "source": "https://github.com/ROCm/legacy-rocm-build/issues/4750"}


def test_fitted_scale_out_fabrics_are_not_flagged_estimated():
    from mlsysim.core.collectives import collective_calibration
    out = collective_calibration().scale_out
    assert {"InfiniBand_NDR", "InfiniBand_HDR"} <= set(out)
    assert not any(e.estimated for e in out.values())


def test_infeasible_reasons_name_each_memory_term():
    """Mamba's per-sequence term is its recurrent state, a transformer's training term its
    activations: the reason lists every term and the largest."""
    r = ServingModel().solve("Mamba_2_8B", "H100", seq_len=512, output_len=64,
                             batch_size=10**6)
    assert not r.feasible and r.reason.startswith("needs ")
    assert ", state " in r.reason and "largest: state)" in r.reason
    t = DistributedModel().solve("Llama3_70B", "DGX_H100", batch_size=64, seq_len=8192)
    assert not t.feasible and "weights " in t.reason and ", activations " in t.reason
    assert "largest: optimizer state)" in t.reason


def test_two_concurrent_prefills_split_the_budget_in_whole_tokens():
    """vLLM's 2,048-token budget with one sequence decoding leaves 2,047 for prompts; two
    concurrent prefills get 2,047 // 2 = 1,023 each. A 2,046-token prompt is 2 chunks, a
    2,047-token one 3 (1,023 + 1,023 + 1): one more step, which costs at least vLLM's 1 ms
    step overhead plus reading Llama-3-8B's 16 GB of bf16 weights (16 GB / 3.35 TB/s = 4.8
    ms at full bandwidth): over 5 ms more time to first token for one more token."""
    from mlsysim import ContinuousBatchingModel
    from mlsysim.zoo import ServingEngines
    two = ServingEngines.get("vllm").model_copy(update={"max_concurrent_prefills": 2})
    runs = [ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=p, output_len=64,
                                            arrival_rate_qps=0.1, engine=two)
            for p in (2046, 2047)]
    assert [r.concurrency for r in runs] == [1.0, 1.0]
    assert runs[1].ttft_service_s - runs[0].ttft_service_s > 1e-3 + 16e9 / 3.35e12


def test_explain_shows_the_fields_in_milliseconds():
    """The explain() lines print the result's own seconds x 1e3: the launch-bound operators'
    time of an Engine profile and the optimizer step of a training run."""
    p = Engine.solve(model="ResNet50", hardware="A100", batch_size=1)
    launch_s = sum(r["time_s"] for r in p.operators if r["launch_bound"])
    assert launch_s > 0
    assert f"({launch_s * 1e3:.3g} ms) are launch-bound" in p.explain()
    t = DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                 zero_stage=1)
    assert f"optimizer {t.optimizer_s * 1e3:.3g} ms + " in t.explain()


def test_serving_explain_prints_the_kv_transfer_in_ms():
    """Disaggregated prefill: 999 prompt tokens x 131,072 B of Llama-3-8B KV = 130,940,928 B
    over 131.072 GB/s = 0.999 ms, printed to 3 figures (just below the step to 1 ms)."""
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=999, output_len=64,
                             decode_hardware="A100", network_bandwidth="131.072 GB/s")
    assert r.kv_transfer_s == pytest.approx(999e-6, rel=1e-12)
    assert r.explain().splitlines()[1] == (
        f"  TTFT = prefill {r.prefill_s * 1e3:.4g} ms + TP comm 0 ms + KV transfer 0.999 ms = "
        f"{r.ttft_s * 1e3:.4g} ms")


def test_serving_explain_prints_the_mean_decode_context():
    """A 1,000-token prompt and 101 output tokens: the decode steps see 1,000 to 1,100 tokens,
    1000 + (101 - 1) / 2 = 1,050 on average."""
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=1000, output_len=101)
    assert r.explain().splitlines()[2] == (
        f"  ITL = (decode step {r.decode_step_s * 1e3:.4g} ms + TP comm 0 ms at mean context "
        f"1050) = {r.itl_s * 1e3:.4g} ms")
