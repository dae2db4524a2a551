"""Pins found unguarded by mutmut (sample L) in solvers/: the communication row of a
difference, the context-parallel refusal of a layered model, activations kept without sequence
parallelism, the efficiency example's sequence length, the rounding of the orchestration
utilization, the queueing refusals and the deterministic-service line, two reliability
refusals in full, a serving pass over an array of batches, the draft length prepare() defaults
to, and weight streaming of a model without weight layers."""

import numpy as np
import pytest

import mlsysim
from mlsysim import Fleet, Systems
from mlsysim.core.engine import efficiency_for
from mlsysim.errors import ValidationError
from mlsysim.solvers.compare import compare
from mlsysim.solvers.distributed import activation_bytes
from mlsysim.solvers.efficiency import EfficiencyModel
from mlsysim.solvers.orchestration import OrchestrationModel
from mlsysim.solvers.serving import ServingModel, pass_time
from mlsysim.specs.model import LayeredSpec
from mlsysim.workloads.transformer import Segment

FLEET = Fleet(name="4 x DGX H100", node=Systems.Nodes.DGX_H100, count=4, mtbf_hours=10)


# ---------------------------------------------------------------------------------- compare
def test_a_difference_lists_communication_under_its_own_name():
    """Kills _side mutant 95 (the row stored as "COMMUNICATION"). Two single-GPU passes have
    no collectives: t_comm = T - sum of operator times = 0 on each side, and the operator
    rows (communication included, 0 s) sum to T_b - T_a."""
    a = mlsysim.Engine.solve("Llama3_8B", "A100", seq_len=1024)
    b = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    d = compare(a, b)
    assert "COMMUNICATION" not in d.operators
    assert d.operators["communication"] == pytest.approx(0.0, abs=1e-15)
    assert sum(d.operators.values()) == pytest.approx(d.difference_s, rel=1e-9)


# ------------------------------------------------------------------------------ distributed
def test_a_layered_model_refuses_context_parallelism_by_field_name():
    """Kills _lowering_check mutant 4 (the field named "XXcp_sizeXX")."""
    with pytest.raises(ValidationError) as err:
        mlsysim.DistributedModel().solve("ResNet50", "DGX_H100", batch_size=64, cp_size=2)
    assert err.value.field == "cp_size"
    assert str(err.value) == ("The 'cp_size' parameter of DistributedModel must be 1 for "
                              "ResNet-50 (CNN): layered models train data-parallel. Got 2 "
                              "instead.")


def test_activations_without_sequence_parallelism_keep_the_replicated_part_whole():
    """Kills activation_bytes mutants 90 (always divided by tp) and 93 (the split part
    multiplied by tp). Llama-3-8B: h 4096, KV width 8 x 128 = 1024, gated FFN 14336, dropout
    masks h each. Per token per layer (16-bit): attention 6h + h + 4 x 1024 = 32768, MLP
    2h + h + 2 x 3 x 14336 = 98304, plus 4h = 16384: 147456. Replicated without SP: 8h + 2h
    = 40960. At tp 2 without SP: 40960 + (147456 - 40960) / 2 = 94208 (with SP 147456 / 2 =
    73728). Stage 0 of pp 2 holds 16 layers and one micro-batch in flight (1F1B, m = 1), no
    logits: 16 x 2048 tokens x 94208 = 3,087,007,744 B (SP: 16 x 2048 x 73728 =
    2,415,919,104 B)."""
    kw = dict(tp=2, pp=2, cp=1, v=1, stage=0, m=1, mbs=1, seq=2048, e=2.0,
              recompute="selective", schedule="1f1b", capacity_factor=1.0)
    model = mlsysim.Models.Llama3_8B
    assert activation_bytes(model, sp=False, **kw) == pytest.approx(3_087_007_744, rel=1e-12)
    assert activation_bytes(model, sp=True, **kw) == pytest.approx(2_415_919_104, rel=1e-12)


# ------------------------------------------------------------------------------- efficiency
def test_efficiency_example_states_its_sequence_length():
    """Kills EfficiencyModel.example mutant 20 (seq_len left to the model default). The
    docstring's example is batch 64 x 2048: the config says 2048 itself."""
    cfg = EfficiencyModel.example()["config"]
    assert cfg.seq_len == 2048 and cfg.batch_size == 64 and cfg.zero_stage == 1


# ---------------------------------------------------------------------------- orchestration
def test_orchestration_headline_rounds_utilization_to_six_places():
    """Kills OrchestrationResult.headline mutant 24 (rounded to 7 places). 24 GPUs of 8-GPU
    jobs are c = 3 slots; 1 job/h of 1 h is a = 1: rho = 1/3, shown as 0.333333."""
    r = OrchestrationModel().solve(1.0, 8, 1.0, 24)
    assert r.servers == 3 and r.utilization == pytest.approx(1 / 3, rel=1e-12)
    assert r.headline()["utilization"] == 0.333333


# --------------------------------------------------------------------------------- queueing
def test_tail_latency_refuses_a_huge_cv_naming_its_owner():
    """Kills _cv mutant 19 (the owner dropped)."""
    with pytest.raises(ValidationError) as err:
        mlsysim.TailLatencyModel().solve(arrival_rate_qps=50, service_latency_ms=10,
                                         service_time_cv=2e6)
    assert err.value.owner == "TailLatencyModel.solve"
    assert str(err.value) == (
        "The 'service_time_cv' parameter of TailLatencyModel.solve must be at most 1e+06 (a "
        "coefficient of variation; 1 = exponential, 0 = deterministic). Got 2000000.0 "
        "instead.")


def test_tail_latency_explain_calls_cv_zero_deterministic():
    """Kills TailLatencyResult.explain mutant 57 (the deterministic case tested as cv == 1).
    M/D/1 at 50/s, 10 ms: E[T] = E[Wq] + S = 5 + 10 = 15 ms (k = 1/2, P(wait) = 0.5,
    0.5 x 0.5 / 50 = 5 ms); the line names S deterministic, not a shifted-exponential fit."""
    r = mlsysim.TailLatencyModel().solve(arrival_rate_qps=50, service_latency_ms=10,
                                         service_time_cv=0)
    text = r.explain()
    assert "  E[T] = E[Wq] + S = 5 + 10 = 15 ms" in text
    assert "(S deterministic)" in text and "shifted exponential" not in text


# ------------------------------------------------------------------------------ reliability
def test_reliability_refuses_a_run_and_a_job_length_together_in_full():
    """Kills _run_work mutant 45 (the message's "goodput" in capitals)."""
    run = mlsysim.DistributedModel().solve("Llama3_8B", FLEET, batch_size=64, seq_len=8192,
                                           zero_stage=1, token_budget=1e10)
    with pytest.raises(ValidationError) as err:
        mlsysim.ReliabilityModel().solve(run=run, job_duration_hours=5, checkpoint_time_s=50)
    assert str(err.value) == (
        "The 'job_duration_hours' parameter of ReliabilityModel and run both set the job's "
        "length; give one (with run, the wall time is its time to train / goodput).")


def test_reliability_without_a_checkpoint_time_names_its_owner():
    """Kills ReliabilityModel.solve mutant 50 (owner=None)."""
    with pytest.raises(ValidationError) as err:
        mlsysim.ReliabilityModel().solve(FLEET, job_duration_hours=100)
    assert err.value.owner == "ReliabilityModel"
    assert str(err.value) == (
        "The 'checkpoint_time_s' parameter of ReliabilityModel is needed: seconds one "
        "checkpoint blocks training (CheckpointModel gives it).")


# ---------------------------------------------------------------------------------- serving
def test_pass_time_over_an_array_of_batches_returns_the_array():
    """Kills pass_time mutant 33 (float() of every result: an array of two batches cannot
    be one float). A sweep over batches 1 and 8 of one decode step is the two int calls."""
    hw, model = mlsysim.Hardware.H100, mlsysim.Models.Llama3_8B
    kw = dict(precision="fp16", e=2.0, kv_e=2.0, we=2.0, tp=1, eff=efficiency_for(hw, "fp16"))
    seg = (Segment(1, 1024),)
    one, eight = pass_time(model, hw, seg, 1, **kw), pass_time(model, hw, seg, 8, **kw)
    assert type(one) is float
    t = pass_time(model, hw, seg, np.array([[1], [8]]), **kw)
    assert isinstance(t, np.ndarray) and t.size == 2
    assert np.ravel(t).tolist() == pytest.approx([one, eight], rel=1e-12)


def test_prepare_defaults_to_four_draft_tokens():
    """Kills ServingModel.prepare mutant 6 (draft_len default 5). With acceptance 0.7 and
    k = 4 draft tokens, E[tokens per step] = (1 - 0.7^5) / (1 - 0.7) = 0.83193 / 0.3 =
    2.7731 (k = 5 would give (1 - 0.7^6) / 0.3 = 2.94117)."""
    plan = ServingModel().prepare("Llama3_8B", "H100", seq_len=128, draft_model="Llama3_2_1B",
                                  draft_acceptance_rate=0.7)
    assert plan.draft_len == 4
    assert plan.accepted == pytest.approx(0.83193 / 0.3, rel=1e-12)


# ------------------------------------------------------------------------- weight streaming
def test_weight_streaming_a_model_without_weight_layers_counts_one_layer():
    """Kills WeightStreamingModel.solve mutant 56 (`or 2`). A layered model of one activation
    layer and 1,000,000 extra parameters has no layer with weights: it streams as one layer of
    1e6 x 2 B (fp16) = 2e6 B; at 1 GB/s that is 2 ms, and the total is the first stream plus
    one layer's max(compute, stream) = 2 + 2 = 4 ms (its compute is nanoseconds)."""
    d = mlsysim.Models.get("ResNet50").model_dump()
    d.update(name="NoWeights", layers=[{"op": "act", "c": 64, "out": [56, 56]}], blocks=[],
             extra_parameters=1_000_000, published_parameters=1_000_000)
    spec = LayeredSpec(**d)
    r = mlsysim.WeightStreamingModel().solve(spec, "H100", stream_bandwidth="1 GB/s")
    assert r.layers == 1
    assert r.layer_bytes == pytest.approx(2e6, rel=1e-12)
    assert r.stream_per_layer_s == pytest.approx(2e-3, rel=1e-12)
    assert r.compute_per_layer_s < 1e-6
    assert r.total_s == pytest.approx(4e-3, rel=1e-12)
