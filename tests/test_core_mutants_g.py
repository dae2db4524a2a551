"""Pins found unguarded by mutmut in core/ and workloads/: exact refusal messages, the regime
and binding of an operator on a tie and near the ridge, trace provenance, the assumptions key of
to_dict, and a few operator rows (Mamba's pipeline hand-off, a MoE router)."""

import re
import warnings

import pytest
from efficiencies import ideal as _ideal

import mlsysim
from mlsysim.core.calibration import fit_gemm
from mlsysim.core.collectives import CollectiveEfficiency, collective_time, fit_report
from mlsysim.core.costmodel import evaluate, prepare
from mlsysim.core.device_calibration import read_measurements
from mlsysim.core.engine import time_by_resource
from mlsysim.errors import ValidationError
from mlsysim.solvers.weight_streaming import WeightStreamingModel
from mlsysim.specs.hardware import HardwareSpec
from mlsysim.workloads.operators import OperatorBuilder, OpKind
from mlsysim.workloads.ssm import lower_ssm
from mlsysim.workloads.transformer import Segment, lower_segments

# A device with round numbers: 1e12 flop/s at fp16 (also its vector peak: no fp32 entry) and
# 1e12 byte/s, so a row's compute and memory terms can be compared exactly by hand.
ROUND = HardwareSpec(key="Round", name="Round", group="Cloud", vendor="Test",
                     compute={"dense": {"fp16": "1 TFLOP/s"}},
                     memory={"capacity": "10 GB", "bandwidth": "1 TB/s"},
                     source="test", as_of="2024")


# ------------------------------------------------------------------ operator regime and binding

def test_time_by_resource_counts_a_tie_between_compute_and_memory_as_compute():
    """A norm of 1 flop reading 1 byte on ROUND: t_c = 1 / 1e12 = 1 ps, t_m = 1 / (1e12 x 1.0)
    = 1 ps, the same float. A tie is compute (tc >= tm, as build_trace's binding), so the 1 ps
    pass is all compute and nothing is memory. Built by hand (prepare on an OperatorBuilder
    table): no zoo workload has an exact tie."""
    b = OperatorBuilder()
    b.add("norm", OpKind.NORM, flops=1.0, act_bytes=1.0)
    table = b.build(weight_total_bytes=0.0)
    p = prepare(table, ROUND, "fp16", _ideal())
    by = time_by_resource(p, 1)
    assert by["compute"] == pytest.approx(1e-12, rel=1e-12)
    assert by["memory bandwidth"] == 0.0
    assert by["launch"] == 0.0
    assert by["interconnect"] == 0.0


def test_routed_expert_regime_compares_flops_at_peak_with_touched_bytes_at_spec_bandwidth():
    """One routed-expert GEMM (8 experts, 2 active, 1 token) of 3 flops and 8 weight bytes at
    batch 1: the batch touches 1 - (1 - 2/8)^1 = 1/4 of the experts, 2 bytes. Regime: compute
    iff F / peak > bytes / BW: 3 ps > 2 ps, so compute. Time max(3 ps, 2 ps) = 3 ps, all of it
    compute-bound. (With bytes counted twice, 3 ps < 4 ps would call it memory-bound.)"""
    b = OperatorBuilder()
    b.add("expert", OpKind.GEMM, flops=3.0, weight_bytes=8.0, moe=(8, 2, 1.0))
    table = b.build(weight_total_bytes=8.0)
    ev = evaluate(prepare(table, ROUND, "fp16", _ideal()), 1)
    assert ev.latency == pytest.approx(3e-12, rel=1e-12)
    assert ev.compute_bound_time == pytest.approx(3e-12, rel=1e-12)
    assert ev.memory_bound_time == pytest.approx(0.0, abs=1e-24)
    assert ev.bytes == pytest.approx(2.0, rel=1e-12)


# ------------------------------------------------------------------------- trace provenance

def test_trace_eta_mem_names_the_h100_memcpy_rows():
    """H100's eta_mem comes from its two memcpy rows, MIC-018 (2900 GB/s) and MIC-020
    (2903 GB/s): median 2901.5 / 3350 GB/s spec = 0.866119..., and the trace lists them."""
    r = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=1)
    eta_mem = r.trace()["constants"]["eta_mem"]
    assert eta_mem["value"] == pytest.approx(2901.5 / 3350, rel=1e-12)
    assert eta_mem["rows"] == ["MIC-018", "MIC-020"]
    assert eta_mem["source"] == "fit to published microbenchmarks (see rows)"


def test_to_dict_carries_the_result_assumptions():
    """WeightStreamingResult's headline has no assumptions; to_dict adds its three."""
    d = WeightStreamingModel().solve("Llama3_8B", "H100").to_dict()
    assert d["assumptions"] == [
        "double buffering: layer i+1 streams while layer i computes",
        "compute spread evenly over the layers",
        "no contention between the stream and the device's own memory traffic"]


# --------------------------------------------------------------------------------- refusals

def test_solver_refuses_a_non_hardware_device_naming_the_field():
    with pytest.raises(ValidationError) as err:
        WeightStreamingModel().solve("Llama3_8B", 42)
    assert err.value.field == "hardware"
    assert str(err.value) == ("The 'hardware' parameter must be a hardware spec or zoo name. "
                              "Got 42 instead.")


def test_all_reduce_algorithm_on_an_all_gather_names_the_algorithm_field():
    """'tree' is an all-reduce schedule; an all-gather inside one DGX H100 runs as a ring."""
    with pytest.raises(ValidationError) as err:
        collective_time("DGX_H100", "allgather", 1e6, 8, algorithm="tree")
    assert (err.value.field, err.value.owner) == ("algorithm", "collective_time")
    assert str(err.value) == (
        "The 'algorithm' parameter of collective_time 'tree' applies to all-reduce only; "
        "allgather runs as a ring (use 'auto' or 'ring').")


def test_collective_efficiency_refuses_a_negative_alpha_with_the_value():
    with pytest.raises(ValidationError, match=re.escape(
            "The 'alpha_s' parameter of CollectiveEfficiency must be a finite non-negative "
            "number of seconds. Got -1e-06 instead.")):
        CollectiveEfficiency(alpha_s=-1e-6, eta_bus=0.8, estimated=True)


def test_fit_gemm_ignores_the_overflow_of_an_enormous_shape():
    """F / peak = 1e305 s over tau = 1e-8 s overflows to inf: its shape factor is 1, which is
    what the fit wants (a huge GEMM is on the plateau), so no RuntimeWarning. One row of eta
    0.5 in one group: eta_max = 0.5, residual 0.5 / (0.5 x 1) = 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau, alpha, gmax, res = fit_gemm([("A", ("X", "16bit"), 1e305, 1.0, 0.5)],
                                         fixed=(1e-8, 1.0))
    assert (tau, alpha) == (1e-8, 1.0)
    assert gmax == {("X", "16bit"): pytest.approx(0.5, rel=1e-12)}
    assert res == {"A": pytest.approx(1.0, rel=1e-12)}


def test_read_measurements_blank_precision_defaults_to_lowercase_fp16(tmp_path):
    """A precision cell of spaces strips to '' and falls back to 'fp16', the spelling the
    package's precision keys use."""
    csv = tmp_path / "m.csv"
    csv.write_text("kind,precision,m,n,k,value,unit\ngemm,  ,4096,4096,4096,500,TFLOP/s\n")
    rows = read_measurements(csv, "H100")
    assert rows == [{"id": "m.csv:2", "hardware": "H100", "kind": "gemm", "precision": "fp16",
                     "m": 4096.0, "n": 4096.0, "k": 4096.0, "value": 500.0}]


def test_fit_report_summary_header():
    lines = fit_report().splitlines()
    assert lines[:2] == [
        "| fabric | scope | alpha (us) | eta_bus | eta_ring | eta_p2p | all-reduce rows | "
        "median abs error | worst |", "|---|---|---|---|---|---|---|---|---|"]


# --------------------------------------------------------------------------- operator rows

def test_mamba_pipeline_hand_off_spans_all_stages():
    """Mamba 2.8B over pp = 4 stages: 3 hand-offs of t x d x e = 128 x 2560 x 2 = 655,360 B,
    each between 2 devices, placed over the 4 devices of the pipeline (the span decides
    whether the pair crosses a scale-up domain)."""
    t = lower_ssm(mlsysim.Models.get("Mamba_2_8B"), phase="prefill", seq_len=128, e=2, pp=4)
    i = t.names.index("pp_send")
    assert (t.count[i], t.act_bytes_per_sample[i]) == (3.0, 655_360.0)
    assert (t.comm_group[i], t.comm_span[i]) == (2.0, 4.0)


def test_moe_router_reads_a_hidden_by_experts_matrix():
    """Mixtral-8x7B (hidden 4096, 8 experts, 32 layers), 16 prompt tokens at 2 B: the router
    GEMM's weights 4096 x 8 x 2 = 65,536 B; flops 2 x 16 x 4096 x 8 = 1,048,576; activations
    16 x (4096 + 8) x 2 = 131,328 B; once per layer."""
    t = lower_segments(mlsysim.Models.get("Mixtral_8x7B"), [Segment(16, 0)], e=2.0, kv_e=2.0,
                       we=2.0)
    i = list(t.names).index("layer.moe.router")
    assert (t.count[i], t.flops_per_sample[i], t.weight_bytes[i],
            t.act_bytes_per_sample[i]) == (32.0, 1_048_576.0, 65_536.0, 131_328.0)
