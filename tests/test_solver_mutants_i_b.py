"""Tests that pin behaviour a mutation run found unpinned in mlsysim/solvers (compare,
continuous_batching, data_pipeline, distributed). Every expected value is derived by hand in
the test."""

from __future__ import annotations

import pytest
from rich.console import Console

import mlsysim
from mlsysim.core.collectives import resolve_system
from mlsysim.errors import ValidationError
from mlsysim.solvers.compare import DifferenceResult
from mlsysim.solvers.continuous_batching import ContinuousBatchingModel
from mlsysim.solvers.data_pipeline import DataModel, TransformationModel
from mlsysim.solvers.distributed import NodeProfile
from mlsysim.solvers.serving import pass_time, serving_efficiency
from mlsysim.workloads.transformer import Segment


# --- compare: DifferenceResult ---------------------------------------------------------------
def _difference(total_b_s: float) -> DifferenceResult:
    """A = 2 ms; one operator 'gemm' 1.0 -> 1.5 ms and one term 'compute' 1.0 -> 2.0 ms."""
    return DifferenceResult(label_a="A1", label_b="B1", metric="latency", total_a_s=2e-3,
                            total_b_s=total_b_s, operator_rows=(("gemm", 1e-3, 1.5e-3),),
                            term_rows=(("compute", 1e-3, 2e-3),))


def _render(table) -> list[str]:
    console = Console(record=True, width=100)
    console.print(table)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_difference_table_rows_carry_a_b_delta_and_share():
    """B = 3 ms, so dT = +1 ms. The operator row: A 1000.0 us, B 1500.0 us, B - A +500.0 us,
    share 0.5 ms / 1 ms = 50.0 %; the term row: 1000.0, 2000.0, +1000.0, 100.0 %. Each row
    has all five cells in column order (operator, A, B, B - A, share)."""
    lines = _render(_difference(3e-3).__rich__())
    assert lines[0] == "latency: B - A = +1 ms   (A: A1; B: B1)"
    assert lines[4] == "│ gemm          │ 1000.0 │ 1500.0 │     +500.0 │  50.0% │"
    assert lines[6] == "│ term: compute │ 1000.0 │ 2000.0 │    +1000.0 │ 100.0% │"


def test_difference_table_with_no_difference_shows_dash_shares():
    """A = B = 2 ms: dT = 0, so no share can be computed; both the operator and the term row
    show '-' in the share column instead of dividing by zero."""
    lines = _render(_difference(2e-3).__rich__())
    assert lines[0] == "latency: B - A = +0 ms   (A: A1; B: B1)"
    assert lines[4] == "│ gemm          │ 1000.0 │ 1500.0 │     +500.0 │     - │"
    assert lines[6] == "│ term: compute │ 1000.0 │ 2000.0 │    +1000.0 │     - │"


def test_difference_explain_states_dt_in_ms():
    """A 2 ms, B 3 ms: dT = +1e-3 s = +1 ms exactly, T_b / T_a = 1.5; the term row is
    1.0000 -> 2.0000 ms (+1.0000 ms, +100 % of dT), the operator row 1000.0 -> 1500.0 us
    (+500.0 us, +50 %)."""
    assert _difference(3e-3).explain() == (
        "A: A1: latency = 2 ms\n"
        "B: B1: latency = 3 ms\n"
        "  dT = T_b - T_a = +1 ms (T_b / T_a = 1.5)\n"
        "  by term (each operator's time goes to the resource binding it):\n"
        "    compute            1.0000 ->     2.0000 ms     +1.0000 ms  (+100.0%)\n"
        "  by operator (largest first; the rows sum to dT):\n"
        "    gemm                             1000.0 ->     1500.0 us      +500.0 us  (+50.0%)")


# --- continuous batching ---------------------------------------------------------------------
def test_continuous_batching_step_with_one_whole_prompt_per_step():
    """Llama-3-8B on an H100 with vLLM, prompt P = 128, output 200, saturated (no arrival
    rate): the concurrency is vLLM's max_num_seqs cap, n = 256. Prompt tokens per step
    c = n P / Out = 256 x 128 / 200 = 163.84, under the chunk budget 2048 - 256 = 1792.
    c > P, so the step carries whole prompts: round(c / P) = round(1.28) = 1 prompt of 128
    tokens at offset 0, next to 256 decoding sequences at context P + Out // 2 = 228.
    tau = pass(256 x (1 @ 228) + 1 x (128 @ 0)) + 1 ms step overhead, fp16 throughout.
    Two prompts in that step would cost about 2.5 ms more (checked below)."""
    r = ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=128, output_len=200)
    assert (r.concurrency, r.max_concurrency) == (256.0, 256)
    assert r.prefill_chunk == pytest.approx(163.84, rel=1e-12)
    assert r.step_overhead_s == pytest.approx(1e-3, rel=1e-12)
    hw, path = resolve_system(mlsysim.Hardware.H100)
    eff = serving_efficiency(hw, "fp16", r.engine.cuda_graphs)

    def tau(prompts: int) -> float:
        segments = (Segment(1, 228, sequences=256), Segment(128, 0, sequences=prompts))
        return pass_time(mlsysim.Models.Llama3_8B, hw, segments, 1, precision="fp16", e=2,
                         kv_e=2, we=2, tp=1, eff=eff, path=path) + 1e-3

    assert r.step_s == pytest.approx(tau(1), rel=1e-12)
    assert tau(2) - tau(1) > 2e-3    # the two readings are far apart


# --- data pipeline ---------------------------------------------------------------------------
def test_transformation_accepts_a_zero_time_string_cost():
    """cost_s_per_sample may be 0 (>= 0); written as the time '0 ms' it is 0 s as well. Pillow
    decode alone then costs 1/577 s = 1.7331 ms per image (preprocessing.yaml), and 1,000
    images/s need 1000 / 577 = 1.7331 cores."""
    r = TransformationModel().solve(1000, "jpeg_decode_pillow", cost_s_per_sample="0 ms",
                                    cpu_cores=1)
    assert r.user_cost_s == 0.0
    assert r.cost_s_per_sample == pytest.approx(1 / 577, rel=1e-9)
    assert r.cpu_cores_needed == pytest.approx(1000 / 577, rel=1e-9)


def test_data_pipeline_explain_states_sample_size_in_kb():
    """2,000 samples/s of 1 MB = 1000 kB from 1 GB/s: storage gives 1e9 / 1e6 = 1000
    samples/s, the step needs 2000 x 1e6 = 2 GB/s; stall 1 - 1000/2000 = 0.5."""
    text = DataModel().solve(2000, "1 MB", "1 GB/s").explain()
    assert text.splitlines()[:2] == [
        "step consumes D = 2000 samples/s of 1000 kB each",
        "  storage: R_storage = B/s = 1 GB/s / 1000 kB = 1000 samples/s (needs D*s = 2 GB/s)"]


# --- distributed -----------------------------------------------------------------------------
def test_distributed_refuses_a_sequence_longer_than_the_context():
    """Llama-3-8B's context is 8192 tokens; seq_len 9000 is refused with that message."""
    with pytest.raises(ValidationError) as e:
        mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=9000)
    assert e.value.field == "seq_len"
    assert str(e.value) == (
        "The 'seq_len' parameter of DistributedModel must not exceed Llama-3-8B's context of "
        "8192 tokens. Got 9000 instead.")


def test_distributed_without_context_parallelism_has_no_cp_communication():
    """The docstring example (Llama-3-8B, DGX H100, 8-way DP, 8 micro-batches): cp = 1, so
    there is no context-parallel KV all-gather: 0 s of cp communication."""
    r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                         zero_stage=1)
    assert r.parallelism["cp"] == 1 and r.microbatch_count == 8
    assert r.cp_comm_s == 0.0
    assert float(r.cp_communication_latency.to("s").magnitude) == 0.0


def test_distributed_memory_is_that_of_the_fullest_stage():
    """Llama-3-8B on a DGX H100, pp 2 with 8 layers on the first stage and 24 on the last,
    one micro-batch: the last stage holds 3x the layers (and their activations), so it is the
    fullest and the per-device weights are its parameters.
    The first stage holds the embedding table, E = 128256 x 4096 = 525,336,576 (no weight
    row: a lookup); the other N - E = 8,030,261,248 - 525,336,576 = 7,504,924,672 parameters
    are spread over the weight rows by their bytes: a layer's GEMMs hold 2 x 4096^2 + 2 x 4096
    x 1024 + 3 x 4096 x 14336 = 218,103,808 (x 32 layers = 6,979,321,856), the LM head
    128256 x 4096 = 525,336,576 (post-stack), 7,504,658,432 in all. Last stage = (N - E) x
    (24/32 x 6,979,321,856 + 525,336,576) / 7,504,658,432 = (N - E) x 5,759,827,968 /
    7,504,658,432 params; bf16 weights and gradients 2 B each, Adam state + fp32 master 12 B.
    (The first stage: E + (N - E) x 1,744,830,464 / 7,504,658,432 = 2.27e9 params.)"""
    r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=2048,
                                         pp_size=2, microbatch_count=1, first_stage_layers=8,
                                         last_stage_layers=24)
    assert r.parallelism["pp"] == 2 and r.microbatch_count == 1
    params = (8_030_261_248 - 525_336_576) * 5_759_827_968 / 7_504_658_432
    assert r.memory.weights == pytest.approx(2 * params, rel=1e-9)
    assert r.memory.gradients == pytest.approx(2 * params, rel=1e-9)
    assert r.memory.optimizer == pytest.approx(12 * params, rel=1e-9)


def _node() -> NodeProfile:
    """Step 100 ms = compute 60 + communication 10 + bubble 20 + optimizer 10 ms."""
    return NodeProfile(node="Node X", devices=8, step_s=0.1, compute_s=0.06,
                       communication_s=0.01, bubble_s=0.02, optimizer_s=0.01,
                       memory_bytes=50e9, capacity_bytes=80e9, tokens_per_s=123456.0,
                       mfu=0.5, hfu=0.6)


def test_node_profile_headline_names_the_node():
    """The headline's first key is 'node' (the node's name), then 'devices'."""
    h = _node().headline()
    assert list(h)[:2] == ["node", "devices"]
    assert (h["node"], h["devices"]) == ("Node X", 8)


def test_node_profile_explain():
    """Every time in ms: 0.1 s = 100, 0.06 s = 60, 0.01 s = 10, bubble 0.02 s = 20, optimizer
    10; compute (60) beats communication (10) and overhead (20 + 10 = 30): 'Compute'.
    50e9 B = 50 GB of 80 GB; 123,456 tokens/s; MFU 0.500."""
    assert _node().explain() == (
        "Node X: 8 devices, each step 100 ms = compute 60 + exposed communication 10 + bubble "
        "20 + optimizer 10 ms (Compute); 50 GB of 80 GB per device; 123,456 tokens/s; "
        "MFU 0.500")
