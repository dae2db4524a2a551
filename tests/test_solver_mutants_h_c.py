"""Pinned behaviours of the solvers that a mutation sample showed untested: error messages
that name their owner and field, the scaling result's accelerator count without a fleet,
the order of SensitivityResult.ranked(), one-sided steps on eta_memory, the serving example,
the serving plan's cached calibration edges and the weight-streaming layer split of a
non-transformer model."""

from __future__ import annotations

import math

import pytest

import mlsysim
from mlsysim.errors import ValidationError
from mlsysim.solvers.scaling import ScalingModel
from mlsysim.solvers.sensitivity import SensitivitySolver
from mlsysim.solvers.serving import ServingModel
from mlsysim.solvers.sustainability import duration_seconds
from mlsysim.solvers.weight_streaming import WeightStreamingModel


# --- reliability ------------------------------------------------------------------------------
def test_reliability_run_not_a_distributed_result_names_owner():
    """run=42 has no tokens_per_s: the message names the field and ReliabilityModel."""
    with pytest.raises(ValidationError) as err:
        mlsysim.ReliabilityModel().solve(run=42, checkpoint_time_s=50)
    assert str(err.value) == ("The 'run' parameter of ReliabilityModel must be a "
                              "DistributedResult. Got 42 instead.")
    assert err.value.owner == "ReliabilityModel"


def test_reliability_missing_job_duration_names_owner():
    """A fleet without job_duration_hours (and no run) is refused, naming ReliabilityModel."""
    with pytest.raises(ValidationError) as err:
        mlsysim.ReliabilityModel().solve("DGX_H100", checkpoint_time_s=50)
    assert str(err.value) == (
        "The 'job_duration_hours' parameter of ReliabilityModel is needed (wall-clock hours "
        "of the job), or give run=, a DistributedResult with a token_budget.")
    assert err.value.owner == "ReliabilityModel"


# --- scaling ----------------------------------------------------------------------------------
def test_scaling_without_fleet_counts_no_accelerators():
    """Without a fleet there are no accelerators: accelerators == 0 (peak and mfu nan),
    alongside N = sqrt(5.76e23 / 120) = 69.28e9 params."""
    r = ScalingModel().solve("5.76e23 flop")
    assert r.accelerators == 0
    assert math.isnan(r.peak_flops) and math.isnan(r.mfu)
    assert r.parameters == pytest.approx(math.sqrt(5.76e23 / 120.0), rel=1e-12)


def test_scaling_target_model_size_bool_message():
    """A bool is no parameter count; the message gives the example amount verbatim."""
    with pytest.raises(ValidationError) as err:
        ScalingModel().solve("5.76e23 flop", target_model_size=True)
    assert str(err.value) == ("The 'target_model_size' parameter of ScalingModel must be an "
                              "amount such as 70e9 or '70e9 param'. Got True instead.")


# --- sensitivity ------------------------------------------------------------------------------
def test_sensitivity_ranked_largest_magnitude_first():
    """Llama-2-7B batch-1 decode on an L4 is bandwidth-bound: |e_bw| = |e_eta_mem| ~ 0.99
    lead, the launch overhead (~0.014) follows, the four non-binding specs (0.0) come last.
    An alphabetical order would put eta_gemm_max (0.0) first."""
    r = SensitivitySolver().solve("Llama2_7B", "L4", config={"batch_size": 1, "seq_len": 1024})
    ranked = r.ranked()
    mags = [abs(e) for _, e in ranked]
    assert mags == sorted(mags, reverse=True)
    assert {ranked[0][0], ranked[1][0]} == {"memory_bandwidth", "eta_memory"}
    assert ranked[0][1] == pytest.approx(-0.9857, abs=1e-3)
    assert ranked[2][0] == "kernel_overhead"
    assert ranked[2][1] == pytest.approx(0.01425, abs=1e-4)
    assert {n for n, _ in ranked[3:]} == {"peak_flops", "memory_capacity",
                                          "interconnect_bandwidth", "eta_gemm_max"}
    assert all(e == 0.0 for _, e in ranked[3:])


def test_sensitivity_eta_memory_step_one_sided_above_one():
    """L4's calibrated eta_mem is 0.8354; with h = 0.2, 0.8354 x 1.2 = 1.0025 > 1, so the
    step is one-sided: upper is the nominal value and e = [ln m - ln m(x 0.8)] / -ln(0.8).
    eta_gemm_max (0.5035 x 1.2 = 0.604) keeps its central difference."""
    r = SensitivitySolver().solve("Llama2_7B", "L4", config={"batch_size": 1, "seq_len": 1024},
                                  relative_step=0.2)
    i = r.names.index("eta_memory")
    assert r.spec_values[i] == pytest.approx(0.8354, abs=1e-4)
    assert r.one_sided[i] is True
    assert r.upper[i] == r.value
    e = (math.log(r.value) - math.log(r.lower[i])) / -math.log(0.8)
    assert r.elasticity_values[i] == pytest.approx(e, rel=1e-12)
    assert r.one_sided[r.names.index("eta_gemm_max")] is False


# --- serving ----------------------------------------------------------------------------------
def test_serving_example_is_batch_8():
    """The documented example: Llama-3-8B, batch 8 on an H100, 1024 + 256 tokens."""
    from mlsysim.zoo import Hardware, Models
    kw = ServingModel.example()
    assert kw == dict(model=Models.Llama3_8B, hardware=Hardware.H100, seq_len=1024,
                      output_len=256, batch_size=8)
    assert ServingModel().solve(**kw).batch_size == 8


def test_serving_plan_edges_are_cached():
    """ServingPlan.at(variant) builds the passes at a calibration edge once and reuses them:
    a second call returns the very same plan; the two edges differ from each other."""
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=1024, batch_size=8)
    plan = r._plan
    fast = plan.at("fast")
    assert plan.at("fast") is fast
    slow = plan.at("slow")
    assert plan.at("slow") is slow
    assert slow is not fast


# --- sustainability ---------------------------------------------------------------------------
def test_duration_seconds_missing_message():
    """No duration_days and no run with a time to train: the field is duration_days."""
    with pytest.raises(ValidationError) as err:
        duration_seconds(None, None, "SustainabilityModel")
    assert err.value.field == "duration_days"
    assert str(err.value) == (
        "The 'duration_days' parameter of SustainabilityModel is needed (or a training run "
        "with a token_budget, whose predicted time to train is used).")
    assert duration_seconds(2, None, "SustainabilityModel") == 2 * 86400.0


# --- weight streaming -------------------------------------------------------------------------
def test_weight_streaming_layered_model_splits_over_param_layers():
    """AlexNet (a layered spec, not a transformer) has 8 layers with parameters (5 conv + 3
    fc) and 61,100,840 params; at fp16 (2 byte) one layer streams 61,100,840 x 2 / 8 =
    15,275,210 byte, over 64 GB/s in 15,275,210 / 64e9 = 238.7 us."""
    r = WeightStreamingModel().solve("AlexNet", "H100", stream_bandwidth="64 GB/s")
    assert r.layers == 8
    assert r.layer_bytes == pytest.approx(61_100_840 * 2 / 8, rel=1e-12)
    assert r.stream_per_layer_s == pytest.approx(15_275_210 / 64e9, rel=1e-12)


def test_weight_streaming_headline_memory_needed():
    """memory_needed = 2 layer buffers + state + activations, in GB: AlexNet batch 1 at fp16,
    2 x 15,275,210 + 0 + 677,600 = 31,228,020 byte = 0.031228 GB."""
    r = WeightStreamingModel().solve("AlexNet", "H100", stream_bandwidth="64 GB/s")
    assert r.activation_bytes == pytest.approx(677_600, rel=1e-12)
    assert r.state_bytes == 0.0
    q = r.headline()["memory_needed"]
    assert q.to("byte").magnitude == pytest.approx(31_228_020, rel=1e-12)
    assert q.magnitude == pytest.approx(0.03122802, rel=1e-9)
