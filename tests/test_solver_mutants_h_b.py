"""Tests that pin behaviour a mutation run found unpinned in mlsysim/solvers (compare,
continuous_batching, data_pipeline, inference_scaling, queueing). Every expected value is
derived by hand in the test."""

from __future__ import annotations

import math

import pytest

import mlsysim
from mlsysim.errors import ValidationError
from mlsysim.solvers.compare import compare
from mlsysim.solvers.queueing import TailLatencyModel, mmc_mean_wait


# --- compare ---------------------------------------------------------------------------------
def test_compare_names_b_when_b_is_not_a_result():
    """A profile against an int: the refusal names the parameter 'b' (not a mangled name)."""
    a = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    with pytest.raises(ValidationError) as e:
        compare(a, 42)
    assert e.value.field == "b"
    assert str(e.value) == (
        "The 'b' parameter of DifferentialExplainer must be a PerformanceProfile or a "
        "ServingResult (or a dict of the solver's options). Got int instead.")


def test_explain_of_identical_sides_has_no_share_column():
    """A profile compared with itself: every t_b - t_a is exactly 0, so dT = 0 and explain()
    omits the share "(x%)" (it would divide by dT = 0) on term and operator rows alike.
    Llama-3-8B decode has 12 operator names: 8 rows are listed, then "(4 more ...)"."""
    a = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    d = compare(a, a)
    assert d.difference_s == 0.0
    lines = d.explain().splitlines()
    i = lines.index("  by operator (largest first; the rows sum to dT):")
    op_lines = lines[i + 1:i + 9]
    assert len(op_lines) == 8
    for line in op_lines:
        assert line.endswith("        +0.0 us"), line
        assert "%" not in line
    assert lines[i + 9] == "    (4 more operators: +0.0 us)"
    term_lines = lines[4:8]
    assert [t.split()[0] for t in term_lines] == ["compute", "memory", "launch",
                                                   "communication"]
    for line in term_lines:
        assert line.endswith("    +0.0000 ms"), line


# --- continuous batching ---------------------------------------------------------------------
def test_continuous_batching_passes_kv_precision_to_the_cache():
    """Llama-3-8B (32 layers, 8 KV heads of 128) on an H100, prompt 7680, output 256.
    KV bytes per token = 2 (K, V) x 32 x 8 x 128 x bytes = 65,536 B in fp8, 131,072 B in fp16.
    A sequence holds 7680 + 256 - 1 = 7935 tokens -> 496 pages of 16 = 7936 tokens:
    fp8 520,093,696 B, fp16 1,040,187,392 B.
    Free for KV = 0.9 x 81,559 MiB (76,968,728,985.6 B) - fp16 weights 16,060,522,496 B
    - activations 503,316,480 B = 60,404,890,009.6 B.
    Cap = floor(free / per sequence): fp8 116 (116.14), fp16 58 (58.07); both below vLLM's
    max_num_seqs of 256. Saturated, N = cap; prompt tokens per step = min(30 N, 2048 - N)
    (share N x 7680 / 256, capped by the chunked-prefill budget left): fp8 min(3480, 1932)
    = 1932, fp16 min(1740, 1990) = 1740."""
    m = mlsysim.ContinuousBatchingModel()
    fp8 = m.solve("Llama3_8B", "H100", prompt_len=7680, output_len=256, kv_precision="fp8")
    fp16 = m.solve("Llama3_8B", "H100", prompt_len=7680, output_len=256)
    assert fp8.max_concurrency == 116
    assert fp16.max_concurrency == 58
    assert fp8.prefill_chunk == 1932.0
    assert fp16.prefill_chunk == 1740.0


# --- data pipeline ---------------------------------------------------------------------------
def test_data_model_checks_cpu_workers_without_decode_cost():
    """cpu_workers without a decode cost is still validated and kept: 2000 samples/s of 1 MB
    from 1 GB/s gives 1000/s, stall 1 - 1000/2000 = 0.5; 4 workers are recorded; 0 refused."""
    r = mlsysim.DataModel().solve(2000, "1 MB", "1 GB/s", cpu_workers=4)
    assert r.cpu_workers == 4
    assert r.stall_fraction == pytest.approx(0.5, abs=1e-12)
    assert r.cpu_rate == math.inf
    with pytest.raises(ValidationError) as e:
        mlsysim.DataModel().solve(2000, "1 MB", "1 GB/s", cpu_workers=0)
    assert str(e.value) == ("The 'cpu_workers' parameter of DataModel must be a positive "
                            "whole number. Got 0 instead.")


# --- inference scaling -----------------------------------------------------------------------
def test_inference_scaling_refusal_names_its_owner():
    with pytest.raises(ValidationError) as e:
        mlsysim.InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=0,
                                              reasoning_steps=1)
    assert e.value.owner == "InferenceScalingModel"
    assert str(e.value) == ("The 'prompt_len' parameter of InferenceScalingModel must be a "
                            "positive whole number. Got 0 instead.")


def test_inference_scaling_defaults_to_one_sample():
    """Default num_samples = 1: 2 steps x 256 + 256 answer = 768 tokens, one chain, batch 1."""
    r = mlsysim.InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=512,
                                              reasoning_steps=2)
    assert r.num_samples == 1
    assert r.scaled.batch_size == 1
    assert r.reasoning_tokens == 512
    assert r.tokens_generated == 768


# --- queueing --------------------------------------------------------------------------------
def test_queue_arrival_rate_refusal_names_its_owner():
    with pytest.raises(ValidationError) as e:
        mmc_mean_wait(0, 0.01, 1)
    assert e.value.owner == "mmc_mean_wait"
    assert str(e.value) == ("The 'arrival_rate' parameter of mmc_mean_wait must be a finite "
                            "positive number. Got 0 instead.")


def test_tail_latency_infeasible_example_is_two_replicas_overloaded():
    """250 req/s x 10 ms = 2.5 Erlangs on 2 replicas: rho = 1.25 (with 1 replica: 2.5)."""
    ex = TailLatencyModel.example(feasible=False)
    assert ex == dict(arrival_rate_qps=250, service_latency_ms=10, num_replicas=2)
    r = TailLatencyModel().solve(**ex)
    assert r.num_replicas == 2
    assert r.utilization == pytest.approx(1.25, rel=1e-12)
