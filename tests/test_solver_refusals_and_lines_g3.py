"""Refusals word for word and explain/headline values derived by hand, for the checkpoint,
compare, data-pipeline, network-roofline, orchestration, reliability, sensitivity,
sustainability and topology solvers."""

from __future__ import annotations

import pytest

import mlsysim
from mlsysim import Hardware, Models
from mlsysim.errors import UnknownNameError, ValidationError
from mlsysim.solvers.checkpoint import CheckpointModel
from mlsysim.solvers.compare import DifferenceResult, DifferentialExplainer, compare
from mlsysim.solvers.data_pipeline import TransformationModel
from mlsysim.solvers.network_roofline import NetworkRooflineModel
from mlsysim.solvers.orchestration import OrchestrationModel
from mlsysim.solvers.reliability import per_accelerator_rate
from mlsysim.solvers.sensitivity import SensitivityResult, SensitivitySolver
from mlsysim.solvers.sustainability import SustainabilityModel
from mlsysim.solvers.topology import TopologyModel
from mlsysim.specs.configs import DistributedConfig


def _refusal(exc_info, field: str, owner: str, text: str) -> None:
    e = exc_info.value
    assert (e.field, e.owner) == (field, owner)
    assert str(e) == text


# --- CheckpointModel --------------------------------------------------------------------------
def test_checkpoint_async_snapshot_bandwidth_that_is_no_bandwidth_is_refused_by_its_owner():
    """An async checkpoint with snapshot_bandwidth='fast': the field and CheckpointModel are
    named."""
    with pytest.raises(ValidationError) as info:
        CheckpointModel().solve("Llama3_8B", "DGX_H100", async_checkpoint=True,
                                snapshot_bandwidth="fast")
    _refusal(info, "snapshot_bandwidth", "CheckpointModel",
             "The 'snapshot_bandwidth' parameter of CheckpointModel must be a bandwidth such "
             "as '50 GB/s'. Got 'fast' instead.")


# --- compare / DifferentialExplainer ----------------------------------------------------------
def test_compare_counts_an_operator_missing_from_b_as_zero_there():
    """GPT-2 (attention + MLP blocks) against Mamba-2.8B (scan blocks): neither has the
    other's layer operators, so each such row carries exactly 0.0 on the side lacking it,
    and the B - A column still sums to dT (module docstring)."""
    a = mlsysim.Engine.solve("GPT2", "H100", seq_len=128)
    b = mlsysim.Engine.solve("Mamba_2_8B", "H100", seq_len=128)
    d = compare(a, b)
    rows = {n: (ta, tb) for n, ta, tb in d.operator_rows}
    assert rows["layer.attention"][1] == 0.0 and rows["layer.attention"][0] > 1e-9
    assert rows["layer.scan"][0] == 0.0 and rows["layer.scan"][1] > 1e-9
    assert sum(d.operators.values()) == pytest.approx(d.difference_s, rel=1e-9)


def test_difference_explain_shows_each_operator_side_in_microseconds():
    """A hand-made difference: matmul 2 s on A, 1 s on B, communication 0.5 s on both, so
    dT = 1.5 - 2.5 = -1 s. The matmul row reads 2 s = 2,000,000.0 us -> 1,000,000.0 us,
    -1,000,000.0 us, (-1) / (-1) = +100.0 % of dT."""
    d = DifferenceResult(
        label_a="A", label_b="B", metric="latency", total_a_s=2.5, total_b_s=1.5,
        operator_rows=(("matmul", 2.0, 1.0), ("communication", 0.5, 0.5)),
        term_rows=(("compute", 2.0, 1.0), ("memory", 0.0, 0.0), ("launch", 0.0, 0.0),
                   ("communication", 0.5, 0.5)))
    lines = d.explain().splitlines()
    assert lines[-2] == ("    matmul                        2000000.0 ->  1000000.0 us  "
                         "-1000000.0 us  (+100.0%)")
    assert lines[-1] == ("    communication                  500000.0 ->   500000.0 us  "
                         "      +0.0 us  (-0.0%)")


def test_differential_explainer_names_b_when_its_dict_lacks_hardware():
    cfg = dict(model="Llama3_8B", hardware="H100", seq_len=1024)
    with pytest.raises(ValidationError) as info:
        DifferentialExplainer().solve(cfg, {"model": "Llama3_8B"})
    _refusal(info, "b", "DifferentialExplainer",
             "The 'b' parameter of DifferentialExplainer must name 'model' and 'hardware' "
             "when given as a dict of options.")


# --- TransformationModel ----------------------------------------------------------------------
def test_transformation_headline_gives_each_step_cost_in_milliseconds():
    """Pillow decodes 577 images/s on one core (preprocessing.yaml): 1/577 s = 1.733102 ms
    per image; the headline's step cost is that, in ms."""
    r = TransformationModel().solve(samples_per_s_required=1000,
                                    transforms="jpeg_decode_pillow")
    cost = r.headline()["step_costs"]["jpeg_decode_pillow"]
    assert cost.to("s").magnitude == pytest.approx(1 / 577, rel=1e-12)
    assert round(cost.to("ms").magnitude, 6) == 1.733102


# --- NetworkRooflineModel ---------------------------------------------------------------------
def test_network_roofline_ridge_line_rounds_the_fabric_bandwidth_in_gb_s():
    """Two nodes of 8 H100 with one 99 GB/s NIC each: B = 99 / 8 = 12.375 GB/s per GPU,
    shown at 4 digits as 12.38 (the tie rounds to the even 8). Pure DP over 16 GPUs crosses
    the fabric. ridge = P / B = 989.5e12 / 12.375e9 = 79,959.6 flop/byte = 7.996e+04."""
    nic = mlsysim.NetworkFabric(name="99 GB/s NIC", bandwidth="99 GB/s")
    node = mlsysim.Node(name="8 x H100, one NIC", accelerator="H100",
                        accelerators_per_node=8, intra_node_fabric="NVLink4",
                        nics_per_node=1, nic_fabric=nic)
    fleet = mlsysim.Fleet(name="2 nodes", node=node, count=2)
    r = NetworkRooflineModel().solve("Llama3_2_1B", fleet, batch_size=16, seq_len=2048)
    assert r.scale_out_bps == 12.375e9
    line = r.explain().splitlines()[3]
    assert "; ridge = P/B = 989.5 TFLOP/s / 12.38 GB/s = 7.996e+04 flop/byte -> " in line


# --- OrchestrationModel -----------------------------------------------------------------------
def test_orchestration_zero_arrival_rate_is_refused_by_its_owner():
    with pytest.raises(ValidationError) as info:
        OrchestrationModel().solve(arrival_rate_jobs_per_h=0, mean_job_gpus=8,
                                   mean_job_hours=1, cluster_gpus=16)
    _refusal(info, "arrival_rate_jobs_per_h", "OrchestrationModel",
             "The 'arrival_rate_jobs_per_h' parameter of OrchestrationModel must be a finite "
             "positive number. Got 0 instead.")


# --- reliability ------------------------------------------------------------------------------
def test_unknown_interruption_rate_suggests_the_published_one():
    """reliability.yaml holds one job, Llama3_405B_H100; a near miss is pointed at it."""
    with pytest.raises(UnknownNameError) as info:
        per_accelerator_rate("Llama3_405B")
    assert (info.value.kind, info.value.name) == ("interruption rate", "Llama3_405B")
    assert str(info.value) == ("Unknown interruption rate 'Llama3_405B'. Did you mean: "
                               "Llama3_405B_H100?")


# --- SensitivitySolver ------------------------------------------------------------------------
def test_sensitivity_unknown_solver_is_refused_by_its_owner():
    with pytest.raises(ValidationError) as info:
        SensitivitySolver().solve("Llama3_8B", "H100", solver="training")
    _refusal(info, "solver", "SensitivitySolver",
             "The 'solver' parameter of SensitivitySolver must be one of: engine, serving. "
             "Got 'training' instead.")


def test_sensitivity_explain_flags_a_one_sided_step_in_lower_case():
    """eta_gemm_max at its cap 1.0 cannot step up, so m(x) stands in for m(x(1+h)). A
    latency m = 0.5 s / x with h = 0.01: m(x(1-h)) = 0.5 / 0.99 = 0.505051 s and
    e = (ln 0.5 - ln 0.50505) / -ln 0.99 = -1."""
    r = SensitivityResult(
        model=Models.Llama3_8B, hardware=Hardware.H100, solver="engine", metric="latency",
        metric_unit="s", value=0.5, latency_s=0.5, relative_step=0.01,
        names=("eta_gemm_max",), spec_values=(1.0,), elasticity_values=(-1.0,),
        lower=(0.5 / 0.99,), upper=(0.5,), one_sided=(True,), left_out=())
    assert r.explain().splitlines()[2] == (
        "  eta_gemm_max            x = 1  m(x) = 0.5, m(x(1-h)) = 0.505051  ->  e = -1.0000"
        "  (one-sided: x(1+h) exceeds its bound)")


# --- SustainabilityModel ----------------------------------------------------------------------
def test_sustainability_without_activity_asks_for_mfu_or_a_run():
    with pytest.raises(ValidationError) as info:
        SustainabilityModel().solve("DGX_H100", duration_days=1, datacenter="Hyperscale",
                                    grid="Quebec")
    _refusal(info, "mfu", "SustainabilityModel",
             "The 'mfu' parameter of SustainabilityModel or run is needed: power follows what "
             "the accelerators do (TDP x time is never assumed).")


def test_sustainability_refuses_days_next_to_a_token_budget_by_its_owner():
    """A run with a token budget predicts its own time to train; duration_days as well is
    two durations."""
    run = mlsysim.DistributedModel().solve(
        "Llama3_8B", "DGX_H100",
        config=DistributedConfig(batch_size=64, seq_len=2048, token_budget=1e9))
    with pytest.raises(ValidationError) as info:
        SustainabilityModel().solve("DGX_H100", duration_days=1, datacenter="Hyperscale",
                                    grid="Quebec", run=run)
    _refusal(info, "duration_days", "SustainabilityModel",
             "The 'duration_days' parameter of SustainabilityModel and the run's token budget "
             "both set the duration; give one.")


# --- TopologyModel ----------------------------------------------------------------------------
def test_single_switch_explain_shows_two_hops():
    """16 nodes with one 100 GbE port (12.5 GB/s) on one switch: bisection 8 x 12.5 GB/s =
    0.1 TB/s; every pair is node -> switch -> node, 2 hops and diameter 2; uniform traffic
    min(12.5, 4 x 100 / 16 = 25) = 12.5 GB/s, the injection binds."""
    lines = TopologyModel().solve("Ethernet_100G", num_nodes=16).explain().splitlines()
    assert lines[2:] == [
        "  bisection = floor(N/2) x B / r = 8 x 12.5 / 1 = 0.1 TB/s",
        "  one switch: hops 2, diameter 2",
        "  uniform traffic: min(B / r, 4 x bisection / N) = 12.5 GB/s per node -> injection"]

