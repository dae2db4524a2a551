"""Serving-side solvers: continuous batching, batching optimizer, compression, weight
streaming, test-time scaling: values and invariants (the shared contract is test_contract.py)."""

import json
import math

import pytest

import mlsysim
from mlsysim import (
    BatchingOptimizer,
    CompressionModel,
    ContinuousBatchingModel,
    InferenceScalingModel,
    ServingModel,
    WeightStreamingModel,
)
from mlsysim.errors import (
    MLSysimError,
    UnknownNameError,
    UnsupportedPrecisionError,
    ValidationError,
)
from mlsysim.solvers.serving import expected_accepted_tokens

CB = ContinuousBatchingModel()


def test_continuous_batching_meets_the_arrival_rate_with_little_law():
    r = CB.solve("Llama3_8B", "H100", prompt_len=1024, output_len=256, arrival_rate_qps=5)
    assert r.feasible
    # Steady state: N / (tau * O) >= lambda, with N the smallest such concurrency.
    assert float(r.requests_per_s) >= 5
    smaller = CB.solve("Llama3_8B", "H100", prompt_len=1024, output_len=256,
                       arrival_rate_qps=2)
    assert smaller.concurrency < r.concurrency
    assert r.tpot.magnitude == pytest.approx(r.step_s * 1e3)


def test_continuous_batching_saturates_and_reports_overload():
    sat = CB.solve("Llama3_8B", "H100", prompt_len=1024, output_len=256)
    over = CB.solve("Llama3_8B", "H100", prompt_len=1024, output_len=256,
                    arrival_rate_qps=2 * float(sat.requests_per_s))
    assert sat.feasible and not over.feasible
    assert "exceeds the capacity" in over.reason
    assert sat.concurrency == sat.max_concurrency


def test_step_overhead_is_the_term_rooflines_miss():
    # At low load a step is tiny, so the per-step overhead is a visible share of TPOT.
    vllm = CB.solve("Llama3_8B", "H100", prompt_len=256, output_len=64, arrival_rate_qps=0.5)
    sgl = CB.solve("Llama3_8B", "H100", prompt_len=256, output_len=64, arrival_rate_qps=0.5,
                   engine="sglang")
    assert vllm.tpot.magnitude - sgl.tpot.magnitude == pytest.approx(1.0 - 0.3, abs=0.05)


def test_engine_presets_are_sourced_data():
    engines = list(mlsysim.ServingEngines)
    assert {e.key for e in engines} >= {"vllm", "sglang", "tensorrt_llm"}
    for e in engines:
        assert e.source and (not e.estimate or e.notes)


def test_batching_optimizer_front_and_choice():
    r = BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=512, output_len=64,
                                  sla_latency_ms=4000, arrival_rate_qps=5)
    assert r.feasible
    front = r.front()
    assert len(front) == 256
    best = front[r.best_batch_size - 1]
    assert best["meets_sla"] and best["p99_ms"] <= 4000
    # No SLA-meeting batch has more throughput than the chosen one.
    assert all(p["throughput_rps"] <= best["throughput_rps"] + 1e-9
               for p in front if p["meets_sla"])
    # The front is consistent with single solves: service time = TTFT + 63 ITL at batch 8.
    s = ServingModel().solve("Llama3_8B", "H100", seq_len=512, output_len=64, batch_size=8)
    assert front[7]["service_ms"] == pytest.approx(s.e2e_latency.magnitude, rel=1e-6)
    json.dumps(r.to_dict())


def test_batching_optimizer_impossible_sla():
    r = BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=512, output_len=64,
                                  sla_latency_ms=1, arrival_rate_qps=5)
    assert not r.feasible and "no batch size" in r.reason


def test_compression_methods():
    c = CompressionModel()
    w4 = c.solve("Llama3_8B", "H100", "int4_weight_only", seq_len=1024)
    assert w4.weight_memory_ratio == pytest.approx(0.25)
    assert w4.itl_speedup > 2 and w4.ttft_speedup == pytest.approx(1.0, abs=0.05)
    kv = c.solve("Llama3_8B", "H100", "fp8_kv", seq_len=4096, output_len=4096)
    assert kv.concurrency_gain > 1.9
    sp = c.solve("Llama3_8B", "H100", "sparse_2_4", seq_len=1024)
    assert sp.weight_memory_ratio == pytest.approx(0.5625)  # (1 B values + 0.125 B index) / 2 B
    assert sp.ttft_speedup > 1.5  # prefill runs at the 2x sparse peak
    with pytest.raises(UnsupportedPrecisionError):
        c.solve("Llama3_8B", "A100", "w8a8_fp8")   # no fp8 tensor cores on the A100
    with pytest.raises(UnknownNameError):
        c.solve("Llama3_8B", "H100", "int3")


def test_compression_example_is_a_four_sequence_int4_batch_served_as_serving_would():
    """The feasible example compresses Llama-3-8B's weights to int4 on an H100 and decodes 4
    sequences at once (seq_len 1024, output 256 by default): both sides run at batch 4, and the
    compressed ITL is ServingModel's at batch 4 with int4 weights (2.091 ms; 5.838 ms in fp16)."""
    ex = CompressionModel.example(True)
    r = CompressionModel().solve(**ex)
    assert ex["method"] == "int4_weight_only"
    assert r.baseline.batch_size == r.compressed.batch_size == 4
    same = ServingModel().solve("Llama3_8B", "H100", seq_len=1024, output_len=256, batch_size=4,
                                weight_precision="int4")
    assert r.compressed.itl.to("ms").magnitude == pytest.approx(same.itl.to("ms").magnitude,
                                                                rel=1e-12)
    assert r.compressed.itl.to("ms").magnitude == pytest.approx(2.091, abs=5e-4)


def test_weight_streaming_over_pcie_is_stream_bound_and_hidden_when_fast():
    slow = WeightStreamingModel().solve("Llama3_70B", "H100", batch_size=1)
    # 70.55e9 params * 2 B / 80 layers = 1.764 GB per layer over 64 GB/s = 27.6 ms per layer.
    assert slow.stream_per_layer_s == pytest.approx(70.55e9 * 2 / 80 / 64e9, rel=0.01)
    assert not slow.hidden
    fast = WeightStreamingModel().solve("Llama3_70B", "H100", batch_size=64, phase="prefill",
                                        seq_len=4096, stream_bandwidth="1 TB/s")
    assert fast.hidden


def test_weight_streaming_compute_never_grows_with_memory_bandwidth():
    # A decode step hidden behind a fast stream: its device time without the weight reads is
    # set by launch floors and activations, so twice the HBM bandwidth cannot lengthen it
    # (subtracting the weight reads from the whole pass used to make it 4.6% slower).
    h = mlsysim.Hardware.H100
    fast_hbm = h.model_copy(update={"memory": h.memory.model_copy(
        update={"bandwidth": h.memory.bandwidth * 2})})
    a = WeightStreamingModel().solve("Llama3_70B", h, stream_bandwidth="200 TB/s")
    b = WeightStreamingModel().solve("Llama3_70B", fast_hbm, stream_bandwidth="200 TB/s")
    assert a.hidden and b.total_s <= a.total_s
    p = mlsysim.Engine.solve("Llama3_70B", h)
    assert a.compute_per_layer_s * a.layers == pytest.approx(p.latency_without_weight_reads_s())
    assert p.latency_without_weight_reads_s() <= p.latency_s


def test_weight_streaming_needs_room_for_two_layers_and_the_cache():
    # 64 sequences x 8192 tokens x 320 KiB of KV per token = 172 GB > the H100's
    # 81559 MiB = 81559 x 2^20 B = 85.5 GB.
    r = WeightStreamingModel().solve("Llama3_70B", "H100", batch_size=64, seq_len=8192)
    assert not r.feasible and "172 GB" in r.reason and r.binding == "memory capacity"
    assert r.memory_bytes == pytest.approx(2 * r.layer_bytes + r.state_bytes +
                                           r.activation_bytes)


def test_inference_scaling_costs_more_with_reasoning():
    r = InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=512, reasoning_steps=4,
                                      tokens_per_step=256, num_samples=2)
    assert r.tokens_generated == 2 * (4 * 256 + 256)
    assert r.latency_multiplier > 4  # 1280 output tokens vs 256
    assert r.energy.to("kJ").magnitude > 0


def test_inference_scaling_headline_rounds_the_latency_multiplier_to_three_places():
    """Four samples of 4 x 256 reasoning + 256 answer tokens on Llama-3-8B / H100: 7509.5 ms
    against 1472.6 ms for the answer alone, x5.09936, shown as 5.099 (three decimals)."""
    r = InferenceScalingModel().solve(**InferenceScalingModel.example())
    ratio = r.latency.to("ms").magnitude / r.baseline.e2e_latency.to("ms").magnitude
    assert ratio == pytest.approx(7509.54 / 1472.64, rel=1e-5)
    assert r.headline()["latency_multiplier"] == 5.099


def test_continuous_batching_runs_its_engine_at_the_precision_asked():
    """precision='fp8' reaches the single-request check: the A100 has no fp8 tensor cores, so
    the run is refused rather than quietly served in fp16."""
    with pytest.raises(UnsupportedPrecisionError) as exc:
        CB.solve("Llama3_8B", "A100", prompt_len=512, output_len=128, precision="fp8")
    assert str(exc.value) == ("precision 'fp8' is not supported by NVIDIA A100 80GB SXM; choose "
                              "one of: fp64, fp32, tf32, bf16, fp16, int8, int4")


def test_continuous_batching_without_an_arrival_rate_reports_no_prefill_wait():
    """Saturated (no arrival rate): TTFT is the prefill steps only, the wait is 0 ms. Prompt
    1024 with 256 decoding sequences fits the 2048-token budget's 1792 spare tokens in one
    chunk, so TTFT is that one 41.04 ms step."""
    r = CB.solve("Llama3_8B", "H100", prompt_len=1024, output_len=256)
    assert r.arrival_rate is None and r.concurrency == 256
    assert r.ttft_wait_s == 0.0
    assert r.ttft.to("ms").magnitude == pytest.approx(r.ttft_service_s * 1e3, rel=1e-12)
    assert r.ttft.to("ms").magnitude == pytest.approx(41.04, abs=0.005)
    assert "  TTFT = wait 0 ms + prefill (up to 1 prompt(s) share the spare budget) 41.04 ms; " \
           "TPOT = tau = 41.06 ms" in r.explain().splitlines()


def test_speculative_expected_tokens_edges():
    assert expected_accepted_tokens(0.0, 4) == 1.0
    assert expected_accepted_tokens(1.0, 4) == 5.0


# The contract every solver keeps (determinism, purity, units, roofs, JSON, display) is the
# battery in test_contract.py, run over all_solvers(); the tests here assert values.


def test_tp_one_means_zero_communication():
    r = ServingModel().solve("Llama3_70B", "H100", seq_len=512, pp_size=2)
    assert r.comm_prefill_s > 0  # the pipeline hand-off
    r1 = ServingModel().solve("Llama3_8B", "H100", seq_len=512)
    assert r1.comm_prefill_s == 0 and r1.comm_decode_s == 0


def test_tensor_parallel_70b_fits_and_speeds_decode():
    one = ServingModel().solve("Llama3_70B", "H100", seq_len=1024)
    four = ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=4)
    eight = ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=8)
    assert not one.feasible and four.feasible and eight.feasible
    assert eight.itl_s < four.itl_s
    assert four.comm_decode_s > 0
    with pytest.raises(ValidationError, match="tp_size"):
        ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=3)


def test_all_solver_errors_are_ours():
    with pytest.raises(MLSysimError):
        CB.solve("Llama3_8B", "H100", prompt_len=0, output_len=1)
    with pytest.raises(MLSysimError):
        BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=64, sla_latency_ms=math.nan,
                                  arrival_rate_qps=1)


def test_continuous_batching_sizes_its_cache_by_memory_utilization():
    """Llama-3-8B (16.06 GB of bf16 weights) on an H100 (81,559 MiB = 85.52 GB), prompts of
    512 and 64 outputs (576 tokens x 128 KiB of KV = 75.5 MB per sequence). At
    memory_utilization 0.25 the usable 21.38 GB leave (21.38 - 16.06 - 0.03) / 0.0755 = 70
    sequences; at 0.18 (15.39 GB) the weights alone do not fit, reported, not raised."""
    from mlsysim.solvers.continuous_batching import ContinuousBatchingModel
    ex = ContinuousBatchingModel.example(True)
    quarter = ContinuousBatchingModel().solve(**{**ex, "memory_utilization": 0.25})
    assert quarter.feasible and quarter.headline()["max_concurrency"] == 70
    tight = ContinuousBatchingModel().solve(**{**ex, "memory_utilization": 0.18})
    assert not tight.feasible and "memory_utilization 0.18" in tight.reason


def test_a_prefill_budget_a_third_of_a_token_short_caps_the_arrival_rate():
    """The c_cap check: at the cap the prompt budget binds as soon as it is any fraction of a
    token short of the steady demand (the tolerance is rounding, 1e-9, not a token).
    Llama-3-8B on an H100, prompts of 101 and 3 outputs, a vLLM preset capped at 8 sequences
    with a 277-token step budget: demand at the cap = 8 x 101 / 3 = 269.33 prompt tokens per
    step, the budget leaves 277 - 8 = 269, 1/3 short. Capacity = 269 / (101 tau) instead of
    the cache's 8 / (3 tau), 269 x 3 / 808 = 0.99876 of it (313.2 vs 313.6 req/s at this tau).
    One more token of budget (278) covers the demand, and the cap of 8 binds."""
    vllm = mlsysim.ServingEngines.get("vllm")
    kw = dict(prompt_len=101, output_len=3, arrival_rate_qps=1e6)
    short = vllm.model_copy(update={"max_num_seqs": 8, "max_num_batched_tokens": 277})
    r = CB.solve("Llama3_8B", "H100", engine=short, **kw)
    tau = r.step_s
    assert r.max_concurrency == 8 and r.prefill_chunk == 269.0
    assert f"{269 / (101 * tau):.4g}" == "313.2" and f"{8 / (3 * tau):.4g}" == "313.6"
    assert r.reason == ("arrival rate 1e+06 req/s exceeds the capacity of 313.2 req/s "
                        "(concurrency cap 8)")
    # Between the two capacities: refused only because of the third of a token.
    between = CB.solve("Llama3_8B", "H100", engine=short, prompt_len=101, output_len=3,
                       arrival_rate_qps=313.4)
    assert not between.feasible and "capacity of 313.2 req/s" in between.reason
    assert CB.solve("Llama3_8B", "H100", engine=short, prompt_len=101,
                    output_len=3).binding == "prefill budget"
    enough = vllm.model_copy(update={"max_num_seqs": 8, "max_num_batched_tokens": 278})
    e = CB.solve("Llama3_8B", "H100", engine=enough, **kw)
    assert e.prefill_chunk == pytest.approx(8 * 101 / 3, rel=1e-12)
    assert e.reason == ("arrival rate 1e+06 req/s exceeds the capacity of 313.6 req/s "
                        "(concurrency cap 8)")
    assert CB.solve("Llama3_8B", "H100", engine=enough, prompt_len=101,
                    output_len=3).binding == "max_num_seqs"


def test_an_overloaded_stream_waits_forever_without_an_internal_queueing_error():
    """Past the prefill budget's capacity the prompt queue is unstable and the wait is inf,
    reported, not computed: with a 10^13-token budget and prompts of 1 token, one prompt
    occupies P x tau / free = 1 x 12.6 ms / (10^13 - 256) = 1.26e-15 s of a step, under the
    1 ps a queue accepts, while 10^17 req/s x 1.26e-15 s = 126 >= 1. The decode side: 256
    sequences (max_num_seqs) / (tau x 1 output) = 256 / 12.6 ms = 2.033e4 req/s."""
    vllm = mlsysim.ServingEngines.get("vllm")
    huge = vllm.model_copy(update={"max_num_batched_tokens": 10**13})
    r = CB.solve("Llama3_8B", "H100", prompt_len=1, output_len=1, arrival_rate_qps=1e17,
                 engine=huge)
    occupancy = r.step_s / (10**13 - 256)
    assert occupancy < 1e-12 and 1e17 * occupancy >= 1
    assert r.ttft_wait_s == math.inf and not r.feasible
    assert r.reason == (f"arrival rate 1e+17 req/s exceeds the capacity of "
                        f"{256 / r.step_s:.4g} req/s (concurrency cap 256)")
    assert f"{256 / r.step_s:.4g}" == "2.033e+04"
