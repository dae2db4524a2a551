"""Tests that pin behaviour a mutation run (sample J) found unpinned in mlsysim/solvers
(distributed, economics, network_roofline, queueing, reliability, responsible). Every expected
value is derived by hand in the test."""

from __future__ import annotations

import dataclasses

import pytest
from test_layered_lowering import SPEC as LAYERED_SPEC

import mlsysim
from mlsysim.core.collectives import collective_time
from mlsysim.core.engine import efficiency_for
from mlsysim.errors import ValidationError
from mlsysim.solvers.distributed import DistributedModel
from mlsysim.solvers.economics import EconomicsModel
from mlsysim.solvers.network_roofline import NetworkRooflineModel
from mlsysim.solvers.queueing import response_time_quantile
from mlsysim.solvers.reliability import ReliabilityModel
from mlsysim.solvers.responsible import ResponsibleEngineeringModel
from mlsysim.specs.infra import Datacenter, GridSpec

# The layered spec of tests/test_layered_lowering.py: a 3-D conv, an fc, an attention, an
# embedding, and a block of one fc run twice per sample.
KINDS = LAYERED_SPEC
T_KERNEL = 8.1e-6   # H100's fitted per-kernel launch time (fp16), as Engine.explain prints it


def _kinds_run():
    """KINDS, fp16, batch 4 in one micro-batch of 4 on one H100: m = 1, no collectives."""
    return DistributedModel().solve(KINDS, "H100", batch_size=4, precision="fp16",
                                    microbatch_size=4)


# --- distributed: a layered model's forward and the step it prints ---------------------------
def test_layered_step_runs_its_forward_and_backward_kernels():
    """Kills _layered_parts mutant 67 (the forward's prepared sections all None, so a layered
    model's micro-batch would run only its backward). Every kernel of KINDS at batch 4 is
    launch-bound on an H100: the largest, the conv's data gradient, is 4 x 27,648 flop =
    0.11 Mflop (0.1 ns at 989.5 TFLOP/s) and 4 x 2,560 + 432 B = 10.7 kB (3.2 ns at
    3.35 TB/s), far under t_kernel = 8.1 us. The forward launches 6 kernels (c3, proj, attn,
    emb and loop.step twice); the backward 10: a data gradient of each of those 6 and a weight
    gradient of c3, proj and loop.step (twice). t_mb = (6 + 10) x 8.1 us = 129.6 us, against
    10 x 8.1 = 81 us without the forward; the optimizer is one more kernel: step = 137.7 us."""
    assert efficiency_for(mlsysim.Hardware.H100, "fp16").kernel_overhead_s == T_KERNEL
    r = _kinds_run()
    assert r.microbatch_count == 1
    assert r.compute_s == pytest.approx(16 * T_KERNEL, rel=1e-12)
    assert r.optimizer_s == pytest.approx(T_KERNEL, rel=1e-12)
    assert r.step_s == pytest.approx(17 * T_KERNEL, rel=1e-12)


def test_distributed_explain_prints_the_step_sum_in_ms():
    """Kills DistributedResult.explain mutant 26 (m x t_mb printed x 1001 instead of x 1e3).
    KINDS as above: m x t_mb = 1 x 129.6 us = 0.1296 ms (x 1001 would print 0.1297),
    optimizer 8.1 us = 0.0081 ms, nothing exposed: step 0.1377 ms."""
    line = _kinds_run().explain().splitlines()[2]
    assert line == ("  step = m x t_mb 0.1296 ms + bubble (p-1)/v x t_mb 0 ms + optimizer "
                    "0.0081 ms + exposed DP 0 ms (of 0 ms) = 0.1377 ms; bubble fraction "
                    "(1-1)/1 / (1 + (1-1)/1) = 0.000")


def test_distributed_explain_prints_cp_comm_in_ms():
    """Kills DistributedResult.explain mutant 44 (the CP time printed / 1e3 instead of x 1e3).
    Llama-3-8B (32 layers, 8 KV heads of 128) at 8,192 tokens, cp = 2 on a DGX H100: dp = 8 /
    2 = 4, m = 8 / (4 x 1) = 2 micro-batches. Each layer all-gathers K and V of the whole
    sequence: 2 x 8,192 x 1,024 x 2 B = 33,554,432 B over the pair, in the forward and again
    in the backward (collectives repeat): 2 x 32 x 2 = 128 all-gathers per step, each
    collective_time(DGX_H100, allgather, 33,554,432 B, 2) = 40.7 us: 5.21 ms, printed in ms
    (not 5.21e-06)."""
    r = DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=8192,
                                 cp_size=2, precision="bf16")
    assert (r.parallelism["cp"], r.parallelism["dp"], r.microbatch_count) == (2, 4, 2)
    one = float(collective_time("DGX_H100", "allgather", 2 * 8192 * 1024 * 2, 2))
    assert one == pytest.approx(40.7e-6, rel=2e-3)
    assert r.cp_comm_s == pytest.approx(128 * one, rel=1e-12)
    assert f"CP (overlapped with attention) {128 * one * 1e3:.3g} ms" in r.explain()
    assert "CP (overlapped with attention) 5.21 ms" in r.explain()


# --- economics: a purchase price with units ---------------------------------------------------
GRID = GridSpec(name="Test grid", carbon_intensity="400 gCO2e/kWh", electricity_price="0.10 "
                "USD/kWh")
DC = Datacenter(name="Test DC", grid=GRID, pue=1.25, wue="0.5 L/kWh")


def test_purchase_price_given_as_a_string_in_usd():
    """Kills EconomicsModel.solve mutant 68 (the purchase price converted to an unknown unit,
    which refuses every string). '30000 USD' is 30,000 USD per H100; over 365.25 days with a
    5-year amortization the job's capex share is 30,000 / 5 = 6,000 USD, as with the bare
    number 30000."""
    kw = dict(duration_days=365.25, datacenter=DC, mfu=0.4, amortization_years=5)
    e = EconomicsModel().solve("H100", purchase_price="30000 USD", **kw)
    assert e.purchase_per_accelerator == 30000.0 and e.purchase_reason == "given"
    assert e.capex_usd == pytest.approx(6000.0, rel=1e-12)


# --- network roofline: the attainable flop/s it prints ---------------------------------------
def test_network_roofline_explain_prints_attainable_in_tflops():
    """Kills NetworkRooflineResult.explain mutant 43 (attainable divided by 1e12 + 1 for
    TFLOP/s). A relative 1e-12 shift shows only on a rounding boundary, so the example's
    result is given P = 1,000,500,000,000.5 flop/s: compute-bound (I = 1.05e5 flop/byte is
    right of the ridge P / 50 GB/s = 2.0e4), attainable = P, P / 1e12 = 1.0005000000005 ->
    '1.001' at 4 digits, where P / (1e12 + 1) = 1.0004999999995 would print '1'."""
    r = NetworkRooflineModel().solve(**NetworkRooflineModel.example())
    p = 1_000_500_000_000.5
    r = dataclasses.replace(r, peak_flops=p)
    assert r.bound == "compute" and r.attainable == p
    line = [x for x in r.explain().splitlines() if "attainable" in x][0]
    assert line.endswith(") = 1.001 TFLOP/s")
    assert line.startswith("  attainable = min(P, I*B) = min(1.001, ")


# --- queueing: who refuses a bad quantile ---------------------------------------------------
def test_response_time_quantile_refusal_names_itself():
    """Kills response_time_quantile mutant 3 (its owner name garbled in its refusals)."""
    with pytest.raises(ValidationError) as e:
        response_time_quantile(1.5, 10, 0.01, 1)
    assert e.value.owner == "response_time_quantile"
    assert str(e.value) == ("The 'q' parameter of response_time_quantile must be a probability "
                            "strictly between 0 and 1 (0.99 for the p99). Got 1.5 instead.")


# --- reliability: refusals in full ----------------------------------------------------------
def test_reliability_refuses_a_run_without_time_to_train():
    """Kills _run_work mutant 29 (the refusal's text garbled). KINDS was solved without a
    token_budget, so it has no time to train to chain."""
    with pytest.raises(ValidationError) as e:
        ReliabilityModel().solve(run=_kinds_run(), checkpoint_time_s=60.0)
    assert str(e.value) == ("The 'run' parameter of ReliabilityModel has no time to train: "
                            "solve DistributedModel with token_budget=... (tokens to train "
                            "on).")


def test_reliability_refuses_a_fleet_of_the_wrong_type():
    """Kills as_fleet mutant 23 (the refusal's text garbled): 42 is no Fleet, Node or name."""
    with pytest.raises(ValidationError) as e:
        ReliabilityModel().solve(42, job_duration_hours=1.0, checkpoint_time_s=60.0)
    assert str(e.value) == ("The 'fleet' parameter of ReliabilityModel must be a Fleet, a Node "
                            "or a zoo cluster name (Systems.Clusters). Got 42 instead.")


# --- responsible: the DP-SGD step it prints ---------------------------------------------------
def test_responsible_explain_prints_both_steps_in_ms():
    """Kills ResponsibleResult.explain mutant 24 (the non-private step printed / 1e3 instead of
    x 1e3). KINDS as above: t_mb = 129.6 us, no collectives, step = 137.7 us. A step factor
    F = 2 of one's own: t_mb' = 2 x 129.6 = 259.2 us, step' = 259.2 + 8.1 = 267.3 us =
    0.2673 ms against 0.1377 ms, x 267.3 / 137.7 = 1.941."""
    x = ResponsibleEngineeringModel().solve(run=_kinds_run(), dp_slowdown=2.0)
    assert x.dp.step_s == pytest.approx(17 * T_KERNEL, rel=1e-12)
    assert x.dp.private_step_s == pytest.approx(33 * T_KERNEL, rel=1e-12)
    assert x.explain().splitlines()[2] == (
        "  step' (batch x 1 = 1 micro-batches) = 0.2673 ms vs 0.1377 ms (same batch: "
        "0.2673 ms): x 1.941 for the same steps")
