"""Tests that pin behaviour a mutation run found unpinned in mlsysim/solvers (economics,
network_roofline, queueing, responsible, sensitivity). Every expected value is derived by
hand in the test."""

from __future__ import annotations

import math

import pytest

import mlsysim
from mlsysim import Systems
from mlsysim.errors import ValidationError
from mlsysim.solvers.distributed import DistributedModel
from mlsysim.solvers.network_roofline import NetworkRooflineModel
from mlsysim.solvers.queueing import response_time_quantile, response_time_survival
from mlsysim.solvers.responsible import ResponsibleEngineeringModel
from mlsysim.solvers.sensitivity import SensitivitySolver


# --- economics -------------------------------------------------------------------------------
def test_economics_of_a_run_that_does_not_fit_is_infeasible_with_the_runs_reason():
    """GPT-3 175B unsharded on one DGX H100 needs 2.88 TB per GPU: the run cannot happen.
    Its three days are still priced (DGX H100 has a purchase and a cloud price), so the only
    reason the costing is infeasible is the run's own, passed on verbatim behind "the run does
    not fit: ", and the binding term is "unpriced"."""
    run = DistributedModel().solve("GPT3_175B", "DGX_H100", batch_size=8, seq_len=2048)
    assert run.feasible is False
    r = mlsysim.EconomicsModel().solve("DGX_H100", duration_days=3, run=run,
                                       datacenter="Hyperscale", grid="PJM")
    assert r.run_reason == run.reason
    assert r.reason == f"the run does not fit: {run.reason}"
    assert r.feasible is False and r.binding == "unpriced"
    # The prices themselves are there: cloud = 8 GPUs x 72 h x the hourly rate.
    assert r.cloud_usd == pytest.approx(8 * 72 * r.cloud_per_accelerator_hour, rel=1e-12)
    assert r.tco_usd == pytest.approx(r.capex_usd + r.opex_energy_usd, rel=1e-12)


# --- network roofline ------------------------------------------------------------------------
def test_pipeline_hand_off_inside_one_nvlink_domain_sends_nothing_over_the_fabric():
    """Llama-3-8B on the 256-GPU SuperPOD (NVLink domains of 8), tp=4, pp=2, dp=32, batch 64
    (m = 64 / 32 = 2 micro-batches of 1, v = 1).

    Rank order tp-cp-pp-dp: the next stage is tp = 4 ranks away, so a stage hand-off pair
    spans 2 x 4 = 8 ranks = one NVLink domain: Q_pp = 0.
    Rank order tp-cp-dp-pp: the next stage is tp x dp = 128 ranks away (span 256 > 8), so each
    hand-off crosses the fabric: act = 1 x 2048 x 4096 x 2 B = 16,777,216 B, sent as act / tp
    (sequence parallel), once per micro-batch (pp = 2: one neighbour),
    Q_pp = m v act / tp = 2 x 1 x 16,777,216 / 4 = 8,388,608 B."""
    fleet = Systems.Clusters.DGX_H100_SuperPOD_256
    kw = dict(batch_size=64, seq_len=2048, tp_size=4, pp_size=2)
    inner = NetworkRooflineModel().solve("Llama3_8B", fleet, rank_order="tp-cp-pp-dp", **kw)
    outer = NetworkRooflineModel().solve("Llama3_8B", fleet, rank_order="tp-cp-dp-pp", **kw)
    assert inner.training.microbatch_count == 2 and inner.training.v_stages == 1
    assert inner.pp_bytes == 0.0
    assert outer.pp_bytes == pytest.approx(8_388_608, rel=1e-12)


def test_network_roofline_without_a_batch_size_names_it():
    """No config and no batch_size: the refusal's exact text (capital 'Got None')."""
    with pytest.raises(ValidationError) as e:
        NetworkRooflineModel().solve("Llama3_8B", "DGX_H100")
    assert e.value.field == "batch_size"
    assert str(e.value) == (
        "The 'batch_size' parameter of NetworkRooflineModel must be given (the global batch "
        "in sequences) unless a config is. Got None instead.")


def test_explain_with_a_fabric_but_no_scale_out_traffic_says_nothing_crosses():
    """Llama-3-8B tp=8 on one DGX H100: the node has an InfiniBand NIC (B = 50 GB/s per GPU)
    but the TP group of 8 is one NVLink domain, so Q = 0 and I = inf: explain() says so, at
    the H100's bf16 peak P = 989.5 TFLOP/s, and has no 'I = F/Q' line."""
    r = NetworkRooflineModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=2048,
                                     tp_size=8)
    assert r.scale_out_bps == 50e9 and r.scale_out_bytes == 0.0
    lines = r.explain().splitlines()
    assert lines[3] == ("  nothing crosses the scale-out fabric: I = inf, compute-bound at "
                        "P = 989.5 TFLOP/s")
    assert not any(line.startswith("  I = F/Q") for line in lines)


# --- queueing --------------------------------------------------------------------------------
def test_response_time_survival_names_itself_in_refusals_and_matches_mm1():
    """M/M/1 with lambda = 1/s and S = 0.5 s (mu = 2/s): T ~ Exp(mu - lambda = 1/s), so
    P(T > 1 s) = e^-1 = 0.367879. Bad inputs are refused in the function's own name."""
    assert response_time_survival(1.0, 1.0, 0.5, 1) == pytest.approx(math.exp(-1), rel=1e-12)
    with pytest.raises(ValidationError) as e:
        response_time_survival(-1, 1.0, 0.5, 1)
    assert str(e.value) == ("The 't' parameter of response_time_survival must be a finite "
                            "non-negative number. Got -1 instead.")
    with pytest.raises(ValidationError) as e:
        response_time_survival(1, -1.0, 0.5, 1)
    assert str(e.value) == ("The 'arrival_rate' parameter of response_time_survival must be "
                            "a finite positive number. Got -1.0 instead.")


def test_quantile_of_nearly_deterministic_service_in_a_loaded_queue():
    """One server, S = 1e8 s, lambda = 0.999e-8 /s: a = rho = 0.999, C = rho (c = 1). With
    cv = 1e-20 the service is deterministic to float precision, so T99 must equal the cv = 0
    closed form: k = (1 + 0) / 2 = 0.5, theta = (1 - a) / S / k = 2e-11 /s,
    T99 = S + ln(C / 0.01) / theta = 1e8 + ln(99.9) / 2e-11 = 1e8 + 4.6041697 x 5e10
        = 2.303085e11 s.
    The root finder's bracket must reach that far (the wait term dwarfs the service)."""
    a = 0.999e-8 * 1e8
    expected = 1e8 + math.log(a / 0.01) / ((1 - a) / 1e8 / 0.5)
    assert expected == pytest.approx(2.303085e11, rel=1e-6)
    assert response_time_quantile(0.99, 0.999e-8, 1e8, 1, 0.0) == pytest.approx(expected,
                                                                                 rel=1e-12)
    assert response_time_quantile(0.99, 0.999e-8, 1e8, 1, 1e-20) == pytest.approx(expected,
                                                                                   rel=1e-12)


# --- responsible -----------------------------------------------------------------------------
def test_responsible_example_spells_out_its_sequence_length():
    """The example is what the docs show and a user copies: Llama-3-8B at batch 64 x 2048
    tokens (the same step as EfficiencyModel's example), with the 2048 written out rather
    than left to the model's default; the run it solves is 64 x 2048 = 131,072 tokens/step."""
    kw = ResponsibleEngineeringModel.example()
    cfg = kw["config"]
    assert (cfg.batch_size, cfg.seq_len, cfg.zero_stage, cfg.token_budget) == (64, 2048, 1, 1e9)
    r = ResponsibleEngineeringModel().solve(**kw)
    assert r.run.batch_size * r.run.seq_len == 131_072


# --- sensitivity -----------------------------------------------------------------------------
def test_sensitivity_table_left_aligns_the_spec_names():
    """The rich table: the spec column (names) left-justified, numbers right-justified."""
    r = SensitivitySolver().solve("Llama3_8B", "H100", config={"batch_size": 1, "seq_len": 1024})
    t = r.__rich__()
    assert [(c.header, c.justify) for c in t.columns] == [
        ("spec", "left"), ("value", "right"), ("elasticity", "right")]


def test_sensitivity_on_a_chip_without_interconnect_keeps_the_later_specs():
    """A Jetson AGX Orin has no scale-up interconnect: only interconnect_bandwidth is left out
    (with its reason); the three specs after it in SPECS order keep their elasticities. Batch-1
    decode is memory-bound plus launches, T = Q / (eta_m B) + n t_k, so e_B = e_eta_m =
    -T_mem / T and e_tk = T_k / T: e_tk - e_B = 1, and compute does not bind (e_P = 0)."""
    r = SensitivitySolver().solve("Llama3_8B", "JetsonAGXOrin",
                                  config={"batch_size": 1, "seq_len": 1024})
    assert r.left_out == ("interconnect_bandwidth (NVIDIA Jetson AGX Orin 64GB has no "
                          "scale-up interconnect)",)
    assert r.names == ("memory_bandwidth", "peak_flops", "memory_capacity", "eta_gemm_max",
                       "eta_memory", "kernel_overhead")
    e = r.elasticities
    assert e["eta_memory"] == pytest.approx(e["memory_bandwidth"], rel=1e-9)
    assert e["kernel_overhead"] - e["memory_bandwidth"] == pytest.approx(1.0, abs=1e-6)
    assert e["peak_flops"] == 0.0
