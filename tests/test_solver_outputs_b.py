"""Shown values and refusals of the reliability, sensitivity, serving, topology and
weight-streaming solvers, and Mamba's conv1d row: each number derived by hand below."""

import pytest

import mlsysim
from mlsysim.core.engine import efficiency_for
from mlsysim.errors import ValidationError
from mlsysim.solvers.sensitivity import SensitivitySolver
from mlsysim.solvers.serving import METRIC_DEFINITIONS
from mlsysim.solvers.topology import TopologyModel, balanced_torus_shape
from mlsysim.specs.hardware import EfficiencySpec
from mlsysim.workloads.ssm import lower_ssm


# --- weight streaming -----------------------------------------------------------------------
def test_weight_streaming_without_a_host_link_asks_for_the_stream_bandwidth():
    """TPU v5e has an ICI interconnect but publishes no host (PCIe) bandwidth, so with no
    stream_bandwidth given there is no link to stream the weights over: a ValidationError on
    stream_bandwidth, not an AttributeError on the missing link."""
    with pytest.raises(ValidationError) as info:
        mlsysim.WeightStreamingModel().solve("Llama3_8B", "TPUv5e")
    assert (info.value.field, info.value.owner) == ("stream_bandwidth", "WeightStreamingModel")
    assert str(info.value) == (
        "The 'stream_bandwidth' parameter of WeightStreamingModel is needed: Google Cloud TPU "
        "v5e has no published host link (e.g. '64 GB/s').")


# --- reliability ----------------------------------------------------------------------------
def test_reliability_explain_shows_the_job_length_in_hours_over_the_mtbf():
    """The Llama 3 405B partition: 16,384 H100 at 419 interruptions per 16,384 x 54 x 24
    GPU-hours, so M = 54 x 24 / 419 = 1296/419 = 3.0931 h. A 720 h job: T/M = 720 x 419 /
    1296 = 232.78 failures, P(>=1) = 1 - exp(-232.78) = 1 (to double precision), and
    24 / M = 24 x 419 / 1296 = 7.7593 per day. T is shown in hours (720), not seconds."""
    model = mlsysim.ReliabilityModel()
    r = model.solve(**model.example())
    assert r.explain().splitlines()[2] == (
        "  E[failures] = T/M = 720/3.093 = 232.8;  P(>=1) = 1 - exp(-T/M) = 1;  "
        "7.759 per day")


# --- serving --------------------------------------------------------------------------------
def test_serving_trace_e2e_equation_is_the_one_e2e_latency_evaluates():
    """The trace's e2e equation is written in the trace's own term names (ttft, itl,
    output_len), as METRIC_DEFINITIONS states it, and it is what e2e_latency computes:
    ttft + (output_len - 1) x itl, here with output_len = 8 (7 inter-token gaps)."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=128, output_len=8)
    t = r.trace()
    assert t["equations"]["e2e"] == "ttft + (output_len - 1) * itl"
    assert t["equations"]["e2e"] == METRIC_DEFINITIONS["e2e_latency"]
    e2e_s = t["result"]["ttft_s"] + (8 - 1) * t["result"]["itl_s"]
    assert r.e2e_latency.to("s").magnitude == pytest.approx(e2e_s, rel=1e-12)


# --- sensitivity ----------------------------------------------------------------------------
def test_sensitivity_relative_step_of_one_half_is_refused_word_for_word():
    """A central difference needs 1 - h > 0 well away from 0: h must be below 0.5, and 0.5
    itself is refused (capital 'Got', as every ValidationError words it)."""
    with pytest.raises(ValidationError) as info:
        SensitivitySolver().solve("Llama3_8B", "H100", relative_step=0.5)
    assert info.value.field == "relative_step"
    assert str(info.value) == ("The 'relative_step' parameter of SensitivitySolver must be "
                               "below 0.5. Got 0.5 instead.")


def test_sensitivity_leaves_out_a_zero_kernel_overhead_and_nothing_else():
    """An H100 whose calibration says launches cost 0 s: ln(0) has no step, so
    kernel_overhead is left out with its reason; every other spec is positive (and the H100
    has NVLink), so the other six keep their elasticities, in SPECS order."""
    hw = mlsysim.Hardware.H100
    e = efficiency_for(hw, "fp16")
    free_launch = hw.model_copy(update={"efficiency": EfficiencySpec(
        gemm_max=e.gemm_max, gemm_tau=mlsysim.Q_(e.gemm_tau_s, "s"), gemm_alpha=e.gemm_alpha,
        attention_max=e.attention_max, memory=e.memory,
        kernel_overhead=mlsysim.Q_(0.0, "s"), source="test: free launches", rows=1)})
    r = SensitivitySolver().solve("Llama3_8B", free_launch,
                                  config={"batch_size": 1, "seq_len": 128})
    assert r.left_out == ("kernel_overhead (zero on this device: no log step)",)
    assert r.names == ("memory_bandwidth", "peak_flops", "memory_capacity",
                       "interconnect_bandwidth", "eta_gemm_max", "eta_memory")
    assert "kernel_overhead" not in r.elasticities


# --- topology -------------------------------------------------------------------------------
def test_default_torus_shape_has_whole_number_sides_in_the_explanation():
    """512 TPU v4 chips: the most cubic 3-D shape is 8 x 8 x 8 (8^3 = 512). Bisection
    2 N / a_max = 2 x 512 / 8 = 128 links x 50 GB/s = 6.4 TB/s; hops 3 x 8/4 = 6 scaled by
    512/511 = 6.0117; diameter 3 x floor(8/2) = 12. Sides and diameter are integers."""
    assert balanced_torus_shape(512) == (8, 8, 8)
    assert all(type(side) is int for side in balanced_torus_shape(6144))   # 16 x 16 x 24
    lines = TopologyModel().solve("TPU_v4_ICI", "torus", 512).explain().splitlines()
    assert lines[2:4] == [
        "  torus 8 x 8 x 8: bisection = 2 N / a_max = 2 x 512 / 8 = 128 links x 50 GB/s = "
        "6.4 TB/s",
        "  avg hops = sum(a/4 or (a^2-1)/4a) x N/(N-1) = 6.012; diameter = sum floor(a/2) = 12"]


def test_dragonfly_explain_shows_five_minus_two_over_a_hops_between_groups():
    """16 TPU v4 nodes as a dragonfly p=2, a=4, h=2: groups of a p = 8, so g = 2 groups.
    Ordered pairs: 16 x 15 = 240; same router 8 x 2 x 1 = 16; same group 2 x 8 x 7 = 112.
    Between groups a route takes 5 - 2/a = 5 - 2/4 = 4.5 links, so the average is
    (2 x 16 + 3 x (112 - 16) + 4.5 x (240 - 112)) / 240 = (32 + 288 + 576) / 240 = 3.7333;
    diameter 5 (more than one group, a > 1)."""
    r = TopologyModel().solve("TPU_v4_ICI", "dragonfly", 16, dragonfly_shape=(2, 4, 2))
    assert r.hops_avg == pytest.approx(896 / 240, rel=1e-12)
    assert r.explain().splitlines()[3] == (
        "  avg hops 3.733 (2 same router, 3 same group, 5 - 2/a = 4.5 between groups); "
        "diameter 5")


# --- Mamba's conv1d row ---------------------------------------------------------------------
def test_mamba_conv1d_costs_two_flops_per_token_channel_and_tap():
    """Mamba-2.8B (d_inner 5,120, d_conv 4), a 128-token prefill in 2-byte activations: the
    depthwise causal conv does a multiply-add per (token, channel, tap), 2 x 128 x 5,120 x 4
    = 5,242,880 flops; its weights are 5,120 x (4 taps + 1 bias) x 2 B = 51,200 B, and it
    reads and writes 128 x 5,120 x 2 B each: 2,621,440 B."""
    spec = mlsysim.Models.get("Mamba_2_8B")
    assert (spec.d_inner, spec.d_conv) == (5120, 4)
    table = lower_ssm(spec, phase="prefill", seq_len=128, e=2)
    i = table.names.index("layer.conv1d")
    assert (table.flops_per_sample[i], table.weight_bytes[i],
            table.act_bytes_per_sample[i]) == (5_242_880, 51_200, 2_621_440)

