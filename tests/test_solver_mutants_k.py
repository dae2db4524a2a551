"""Pins found unguarded by mutmut (sample K) in mlsysim/solvers: refusal messages in full
(checkpoint, data pipeline, distributed, network roofline, orchestration, reliability,
synthesis), the expert all-to-all crossing nodes when its span does, the pipeline bubble that
DistributedResult.explain prints, the receiver's all-gather in the network roofline's
pipeline bytes, the tail-latency root find's accuracy, ScalingResult.explain for a given
model size, the sensitivity solver's serving metric and units, and a "max" batch of exactly
one sequence. Every expected value is derived by hand in the test."""

from __future__ import annotations

import pytest

from mlsysim import Fleet, Systems
from mlsysim.core.collectives import comm_path
from mlsysim.errors import ValidationError
from mlsysim.solvers.checkpoint import CheckpointModel, checkpoint_bytes_per_param
from mlsysim.solvers.data_pipeline import DataModel
from mlsysim.solvers.distributed import DistributedModel
from mlsysim.solvers.network_roofline import NetworkRooflineModel
from mlsysim.solvers.orchestration import OrchestrationModel
from mlsysim.solvers.queueing import response_time_quantile, response_time_survival
from mlsysim.solvers.reliability import ReliabilityModel
from mlsysim.solvers.scaling import ScalingModel
from mlsysim.solvers.sensitivity import SensitivitySolver, SynthesisSolver
from mlsysim.solvers.serving import ServingModel
from mlsysim.specs.configs import DistributedConfig
from mlsysim.specs.hardware import HardwareSpec

DGX = Systems.Nodes.DGX_H100
# A chip with no interconnect at all: no host (PCIe) link is published.
NO_LINK = HardwareSpec(key="NoLink", name="NoLink", group="Cloud", vendor="Test",
                       compute={"dense": {"fp16": "1 TFLOP/s", "bf16": "1 TFLOP/s"}},
                       memory={"capacity": "10 GB", "bandwidth": "1 TB/s"},
                       source="test sheet", as_of="2024")


def _message(call) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        call()
    return err.value


# --- refusals, whole --------------------------------------------------------------------------
def test_checkpoint_refuses_a_hardware_that_is_no_system():
    """Kills checkpoint._system mutant 18 (the message upper-cased)."""
    e = _message(lambda: CheckpointModel().solve("Llama3_8B", 42))
    assert str(e) == ("The 'hardware' parameter of CheckpointModel must be a device, a Node or "
                      "a Fleet (spec or zoo name). Got 42 instead.")


def test_checkpoint_bytes_per_param_names_its_owner_for_a_bad_precision():
    """Kills checkpoint_bytes_per_param mutant 5 (the precision checked without the owner, so
    the message would lose "of CheckpointModel")."""
    e = _message(lambda: checkpoint_bytes_per_param("adam", "int4"))
    assert e.owner == "CheckpointModel"
    assert str(e) == ("The 'precision' parameter of CheckpointModel must be the precision the "
                      "weights are stored in, one of: fp32, bf16, fp16, fp8. Got 'int4' "
                      "instead.")
    e = _message(lambda: checkpoint_bytes_per_param("adam", "int4", owner="Mine"))
    assert e.owner == "Mine" and str(e).startswith("The 'precision' parameter of Mine must ")


def test_async_checkpoint_without_a_host_link_asks_for_the_snapshot_bandwidth():
    """Kills CheckpointModel.solve mutant 118 (the example bandwidth upper-cased). NO_LINK has
    no interconnect, so with the writers' bandwidth given only the snapshot's is missing."""
    e = _message(lambda: CheckpointModel().solve("Llama3_8B", NO_LINK, writer_bandwidth="10 GB/s",
                                                 async_checkpoint=True))
    assert str(e) == ("The 'snapshot_bandwidth' parameter of CheckpointModel is needed for an "
                      "async checkpoint: NoLink has no published host link (e.g. '64 GB/s').")


def test_data_model_asks_for_cpu_workers_with_a_decode_cost():
    """Kills DataModel.solve mutant 54 (the message's last words wrapped in "XX")."""
    e = _message(lambda: DataModel().solve(2000, "1 MB", "1 GB/s",
                                           decode_cost_s_per_sample=0.001))
    assert str(e) == ("The 'cpu_workers' parameter of DataModel must be given with "
                      "decode_cost_s_per_sample (the workers sharing the CPU work). Got None "
                      "instead.")


def test_distributed_refuses_a_sequence_length_for_a_cnn():
    """Kills distributed._resolve mutant 38 (the message None)."""
    e = _message(lambda: DistributedModel().solve("ResNet50", "H100", batch_size=8,
                                                  seq_len=128))
    assert str(e) == ("The 'seq_len' parameter of DistributedModel does not apply to ResNet-50 "
                      "(one image per sample); leave it out.")


def test_network_roofline_refuses_context_parallelism_in_full():
    """Kills NetworkRooflineModel.solve mutant 72 (the middle of the message wrapped in
    "XX")."""
    e = _message(lambda: NetworkRooflineModel().solve(
        "Llama3_8B", DGX, config=DistributedConfig(batch_size=8, cp_size=2)))
    assert str(e) == ("The 'cp_size' parameter of NetworkRooflineModel must be 1: "
                      "NetworkRooflineModel counts DP, TP and PP traffic only (context- and "
                      "expert-parallel traffic is left out). Got 2 instead.")


def test_orchestration_caps_the_job_slots_under_the_cluster_gpus_name():
    """Kills OrchestrationModel.solve mutant 73 (the field named "XXcluster_gpusXX"). 2,000,000
    GPUs in 1-GPU jobs are 2,000,000 slots, over the 1,000,000 the Erlang recursion takes."""
    e = _message(lambda: OrchestrationModel().solve(1, 1, 1, 2_000_000))
    assert e.field == "cluster_gpus"
    assert str(e) == ("The 'cluster_gpus' parameter of OrchestrationModel divided by "
                      "mean_job_gpus must be at most 1,000,000 job slots. Got 2,000,000 "
                      "instead.")


def test_reliability_refuses_an_infeasible_run_as_its_own():
    """Kills reliability._run_work mutant 52 (the refusal without its owner). Llama-3-8B
    unsharded (ZeRO-0: 16 B/param = 128 GB of weights, gradients and Adam state) does not
    fit one 80 GB H100 of a DGX."""
    run = DistributedModel().solve("Llama3_8B", DGX, batch_size=8, seq_len=2048, zero_stage=0,
                                   token_budget=1e9)
    assert not run.feasible
    e = _message(lambda: ReliabilityModel().solve(run=run, checkpoint_time_s=50))
    assert e.owner == "ReliabilityModel"
    assert str(e) == (f"The 'run' parameter of ReliabilityModel is infeasible ({run.reason}); "
                      "a job that does not run has no failures to plan for.")


def test_synthesis_refuses_a_model_that_is_no_spec_in_full():
    """Kills SynthesisSolver.solve mutant 17 (the last word wrapped in "XX")."""
    e = _message(lambda: SynthesisSolver().solve(42, "10 ms"))
    assert str(e) == ("The 'model' parameter of SynthesisSolver must be a model spec or zoo "
                      "name. Got 42 instead.")


# --- distributed: the expert all-to-all's span, the printed bubble -----------------------------
def test_expert_alltoall_crosses_nodes_when_tp_times_ep_spans_them():
    """Kills parts_for mutant 266 (the ep_alltoall row without span = tp x ep, so priced as
    two adjacent ranks on NVLink). Mixtral-8x7B, tp = 8, ep = 2 on two DGX H100 (16 GPUs,
    scale-up domain 8): the two EP ranks are a TP group (8 devices) apart, so the group spans
    16 devices and crosses the NICs with L = max(1, 2 x 8 // 16) = 1 member per domain:
    t = (n - 1) alpha_out + (n - L) / n x S / (eta_out x 50 GB/s), n = 2.
    S = 4,096 tokens x 4,096 hidden x 2 B x 2 active experts x capacity 1.0 = 67,108,864 B.
    Batch 2 over dp = 16 / 8 = 2 replicas: m = 1 micro-batch of 1; two all-to-alls per MoE
    layer forward and two backward over 32 layers: 128 per step."""
    fleet = Fleet(name="2 x DGX H100", node=DGX, count=2)
    r = DistributedModel().solve("Mixtral_8x7B", fleet, batch_size=2, seq_len=4096, tp_size=8,
                                 ep_size=2, zero_stage=1)
    assert r.microbatch_count == 1
    path = comm_path(fleet)
    assert path.domain == 8 and path.out_bw == pytest.approx(50e9)
    s = 4096 * 4096 * 2 * 2 * 1.0
    one = path.out_eff.alpha_s + 0.5 * s / (path.out_eff.eta_link * 50e9)
    assert r.ep_comm_s == pytest.approx(128 * one, rel=1e-9)


def test_distributed_explain_prints_the_pipeline_bubble_in_ms():
    """Kills DistributedResult.explain mutant 27 (the bubble printed / 1e3 instead of x 1e3).
    Llama-3-8B with pp = 2 (v = 1) on a DGX H100: the bubble is (p - 1) / v = 1 micro-batch
    time, so it prints the same ms as t_mb on the line above, and the step's terms add up
    (m x t_mb + bubble = 3 t_mb for m = 2)."""
    r = DistributedModel().solve("Llama3_8B", DGX, batch_size=8, seq_len=2048, pp_size=2)
    assert r.microbatch_count == 2 and r.v_stages == 1
    t_mb = r.compute_s / 2
    assert r.bubble_s == pytest.approx(t_mb, rel=1e-12)
    lines = r.explain().splitlines()
    assert lines[1].endswith(f"t_mb (slowest stage, fwd + bwd + collectives) = "
                             f"{t_mb * 1e3:.4g} ms")
    assert lines[2].startswith(f"  step = m x t_mb {2 * t_mb * 1e3:.4g} ms + bubble (p-1)/v x "
                               f"t_mb {t_mb * 1e3:.4g} ms + optimizer ")


# --- network roofline: the receiver's all-gather of a pipeline hand-off -----------------------
def test_pipeline_bytes_add_the_tp_allgather_once_tp_crosses_nodes():
    """Kills _roofline mutant 124 (the receiver's all-gather bytes divided by the activation
    instead of multiplied). Llama-3-8B on four DGX H100 (32 GPUs, domain 8), tp = 16, pp = 2,
    dp = 1, batch 4 (m = 4 micro-batches of 1 x 2048 tokens, v = 1), sequence parallelism off.
    act = 1 x 2048 x 4096 x 2 B = 16,777,216 B. The hand-off between stages tp x dp = 16 apart
    (a pair spanning 32) crosses: 1 x act / tp = 1,048,576 B; the TP group of 16 spans two
    domains, L = 8 members each, N = 2, so the all-gather sends (N-1)/N/L = 1/16 of act =
    1,048,576 B more. pp = 2 sends one way: Q_pp = m x v x 2,097,152 = 8,388,608 B."""
    fleet = Fleet(name="4 x DGX H100", node=DGX, count=4)
    c = DistributedConfig(batch_size=4, seq_len=2048, tp_size=16, pp_size=2,
                          sequence_parallel=False)
    r = NetworkRooflineModel().solve("Llama3_8B", fleet, config=c)
    assert r.training.microbatch_count == 4 and r.training.microbatch_size == 1
    assert r.pp_bytes == pytest.approx(8_388_608, rel=1e-12)
    # With sequence parallelism the receiver keeps its shard: the hand-offs alone.
    sp = NetworkRooflineModel().solve("Llama3_8B", fleet, config=c.model_copy(
        update={"sequence_parallel": True}))
    assert sp.pp_bytes == pytest.approx(4 * 1_048_576, rel=1e-12)


# --- queueing: the Illinois root find ----------------------------------------------------------
def test_response_quantile_solves_the_tail_to_machine_precision():
    """Kills _State.response_quantile mutant 104 (the Illinois step doubling the stale end's
    value instead of halving it: the bracket then stalls and the 200 iterations end short of
    the root). 300 servers at rho = 0.95 (285 requests/s of 1 s), heavy-tailed service (cv = 4,
    the two-phase fit): the 0.97 quantile t must satisfy P(T > t) = 1 - 0.97 = 0.03; the
    function promises ~1e-15, and this checks 1e-12 (the stalled bracket is off by 3e-8)."""
    t = response_time_quantile(0.97, 285.0, 1.0, 300, 4.0)
    assert 3.3 < t < 3.4
    assert response_time_survival(t, 285.0, 1.0, 300, 4.0) == pytest.approx(0.03, rel=1e-12)


# --- scaling: the explanation for a given model size -------------------------------------------
def test_scaling_explain_for_a_given_model_size():
    """Kills ScalingResult.explain mutant 11 (no lines for a given model size, so explain()
    fails). C = 6e23 flop, N = 1e11: D = C / (6 N) = 6e23 / 6e11 = 1e12 tokens, D/N = 10."""
    r = ScalingModel().solve("6e23 flop", target_model_size=1e11)
    assert r.explain() == ("C = 6e+23 flop for a model of N = 1e+11 params\n"
                           "  D = C / (6 N) = 6e+23 / (6 x 1e+11) = 1e+12 tokens (D/N = 10)")


# --- sensitivity: the serving metric and the units ---------------------------------------------
SERVING = {"seq_len": 1024, "output_len": 64}


def test_sensitivity_e2e_latency_is_ttft_plus_the_remaining_tokens():
    """Kills SensitivitySolver._runner mutant 84 (e2e = TTFT - (n - 1) ITL) and solve mutant
    174 (e2e_latency's unit not "s"). The end-to-end latency of 64 output tokens is the TTFT
    (the first token) plus 63 inter-token latencies, in seconds; it is the serving solver's
    main latency too."""
    s = ServingModel().solve("Llama3_8B", "H100", **SERVING)
    e2e = s.ttft_s + 63 * s.itl_s
    r = SensitivitySolver().solve("Llama3_8B", "H100", solver="serving", config=SERVING,
                                  metric="e2e_latency")
    assert r.value == pytest.approx(e2e, rel=1e-12)
    assert r.latency_s == pytest.approx(e2e, rel=1e-12)
    assert r.metric_unit == "s"
    assert r.headline()["metric_value"].to("s").magnitude == pytest.approx(e2e, rel=1e-12)


def test_sensitivity_rates_are_samples_for_the_engine_and_tokens_for_serving():
    """Kills SensitivitySolver.solve mutants 180 (the engine's throughput in token/s) and 181
    (serving's tokens_per_s in sample/s). Engine throughput = batch / latency = 4 / t samples
    per second; serving's is its tokens_per_s."""
    eng = SensitivitySolver().solve("Llama3_8B", "H100", config={"batch_size": 4,
                                                                 "seq_len": 1024},
                                    metric="throughput")
    assert eng.metric_unit == "sample/s"
    assert eng.value == pytest.approx(4 / eng.latency_s, rel=1e-12)
    srv = SensitivitySolver().solve("Llama3_8B", "H100", solver="serving", config=SERVING,
                                    metric="tokens_per_s")
    assert srv.metric_unit == "token/s"
    s = ServingModel().solve("Llama3_8B", "H100", **SERVING)
    assert srv.value == pytest.approx(float(s.tokens_per_s), rel=1e-12)


# --- serving: a "max" batch of exactly one sequence --------------------------------------------
def test_max_batch_of_exactly_one_sequence_is_feasible_without_a_note():
    """Kills ServingModel._evaluate mutant 7 (batch <= 1 taken for "not even one fits").
    Llama-3-8B on an H100 (81,559 MiB = 85,520,809,984 B) at memory_utilization 0.21:
    usable 17,959,370,096.64 B; weights 16,060,522,496 B + activation buffers 528,482,304 B
    leave 1,370,365,296.64 B for KV. One sequence of 8,064 + 128 = 8,192 tokens x 131,072 B
    (32 layers x 2 x 8 KV heads x 128 x 2 B) = 1 GiB fits; two (2 GiB) do not: batch 1."""
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=8064, output_len=128,
                             batch_size="max", memory_utilization=0.21)
    assert r.usable_bytes == pytest.approx(0.21 * 85_520_809_984, rel=1e-12)
    assert r.kv_bytes_per_sequence == 8192 * 131072
    assert r.weights_bytes + r.activation_bytes == pytest.approx(16_589_004_800, rel=1e-12)
    assert r.batch_size == 1 and r.feasible and r.notes == ()
