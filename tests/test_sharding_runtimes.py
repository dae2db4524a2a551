"""ZeRO-3 sharding runtimes: the throughput of DeepSpeed's 2021 gathers from its published
pass timings, and DistributedModel's cap on ZeRO-3's collectives at it."""

import pytest

import mlsysim
from mlsysim.errors import SpecError, UnknownNameError, ValidationError
from mlsysim.solvers.distributed import (
    OVERLAP_SLOWDOWN,
    capped_per_byte,
    overlapped,
    zero3_throughput,
)
from mlsysim.specs.system import Fleet
from mlsysim.specs.training import ShardingRuntimeSpec
from mlsysim.zoo import Nodes, ShardingRuntimes

# bing_bert's published config (PR 1188): hidden 2560, 64 layers, intermediate 10240,
# vocabulary 32003: 64 x 78,676,480 per layer + 96,408,325 outside the layers.
BING_BERT_PARAMS = 5.1317e9


def test_deepspeed_2021_throughput_is_the_published_passes_bytes_over_their_times():
    """Forward: one fp16 gather, 2 B x 5.1317e9 x 7/8 = 8.9805 GB in 470 ms = 19.107 GB/s;
    backward: a gather and a reduce-scatter, 17.961 GB in 900 ms = 19.957 GB/s; the median
    of the two is their mean, 19.532 GB/s."""
    spec = ShardingRuntimes.get("deepspeed_2021")
    forward, backward = spec.measurements
    assert forward.bytes_per_rank == pytest.approx(2 * BING_BERT_PARAMS * 7 / 8, rel=1e-12)
    assert forward.throughput == pytest.approx(19.107e9, rel=1e-4)
    assert backward.throughput == pytest.approx(19.957e9, rel=1e-4)
    assert spec.bytes_per_s["nominal"] == pytest.approx(19.532e9, rel=1e-3)
    assert spec.bytes_per_s["fast"] == pytest.approx(19.957e9, rel=1e-3)
    assert spec.bytes_per_s["slow"] == pytest.approx(19.107e9, rel=1e-3)
    assert ShardingRuntimes.get("deepspeed_0_3") is spec


@pytest.mark.parametrize("variant", ["nominal", "fast", "slow"])
def test_each_measured_pass_was_communication_bound_under_the_overlap_rule(variant):
    """The pass time is the collectives' only if compute hides under them:
    overlapped(C, T, s) = max(T, C + T s / (1 + s)) = T, e.g. forward 60 + 470 x 0.76/1.76
    = 263 ms <= 470 ms; backward 120 + 900 x 0.432 = 509 ms <= 900 ms."""
    s = OVERLAP_SLOWDOWN[variant]
    for m in ShardingRuntimes.get("deepspeed_2021").measurements:
        t, c = m.time.to("s").magnitude, m.compute.to("s").magnitude
        assert overlapped(c, t, s) == t


def test_a_stated_throughput_the_measurements_do_not_give_is_refused():
    raw = dict(key="x", name="x", framework="x", releases="x", source="x", as_of="2021",
               throughput="25 GB/s", throughput_range=["19.11 GB/s", "19.96 GB/s"],
               measurements=[m.model_dump() for m in
                             ShardingRuntimes.get("deepspeed_2021").measurements])
    with pytest.raises(SpecError, match="throughput 25 GB/s disagrees with the "
                                        "measurements' 19.53 GB/s"):
        ShardingRuntimeSpec(**raw)


def test_the_cap_is_the_ranks_share_at_the_throughput_or_the_collective_models_if_slower():
    """Over 8 ranks at 19.53 GB/s a byte of the gathered message costs 7/8 / 19.53e9 =
    4.480e-11 s; a collective model already slower than that (1e-9 s/byte) is kept."""
    assert capped_per_byte(1e-12, 8, 19.53e9) == pytest.approx(7 / 8 / 19.53e9, rel=1e-12)
    assert capped_per_byte(1e-9, 8, 19.53e9) == 1e-9
    assert capped_per_byte(1e-12, 8, None) == 1e-12
    assert zero3_throughput(None) is None
    assert zero3_throughput("deepspeed_0_3", "slow") == pytest.approx(19.11e9)


@pytest.fixture(scope="module")
def zero3_on_384_a100():
    fleet = Fleet(name="48 x DGX A100", node=Nodes.get("DGX_A100"), count=48)
    kw = dict(batch_size=1536, seq_len=2048, precision="fp16", zero_stage=3,
              microbatch_size=4, activation_recomputation="full")
    solve = mlsysim.DistributedModel().solve
    return (solve("Megatron_GPT_175B", fleet, **kw),
            solve("Megatron_GPT_175B", fleet, sharding_runtime="deepspeed_2021", **kw),
            solve("Megatron_GPT_175B", fleet, sharding_runtime="deepspeed_2021",
                  **{**kw, "activation_recomputation": "none", "microbatch_size": 1}))


def test_zero3_collectives_at_the_runtimes_throughput(zero3_on_384_a100):
    """GPT-3 175B (174.616e9 parameters, all local at tp = pp = 1) on 384 A100, one
    micro-batch per replica. Under full recomputation the step gathers the fp16 weights three
    times (forward, recomputed forward, backward) and reduce-scatters the gradients once:
    4 x 2 B x 174.616e9 x 383/384 / 19.53e9 = 71.34 s. Without recomputation, 4 micro-batches
    of 3: 12 x 17.835 s = 214.0 s."""
    _, capped, no_recompute = zero3_on_384_a100
    one = 2 * 174.616e9 * 383 / 384 / 19.53e9
    assert capped.zero3_comm_s == pytest.approx(4 * one, rel=2e-3)
    assert no_recompute.zero3_comm_s == pytest.approx(4 * 3 * one, rel=2e-3)
    assert capped.sharding_runtime == "deepspeed_2021"


def test_the_cap_only_slows_the_step_and_is_stated(zero3_on_384_a100):
    nccl, capped, _ = zero3_on_384_a100
    assert capped.zero3_comm_s > 5 * nccl.zero3_comm_s     # 71.3 s against NCCL's 12.7 s
    assert capped.step_s > nccl.step_s
    assert any("19.53 GB/s" in a and "deepspeed_2021" in a for a in capped.assumptions)
    assert "capped by sharding_runtime 'deepspeed_2021'" in capped.explain()
    assert not any("GB/s in them" in a for a in nccl.assumptions)


def test_a_runtime_needs_zero3_and_a_known_name():
    kw = dict(batch_size=64, seq_len=2048)
    with pytest.raises(ValidationError, match="sharding_runtime.*needs zero_stage=3"):
        mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", zero_stage=1,
                                         sharding_runtime="deepspeed_2021", **kw)
    with pytest.raises(UnknownNameError, match="deepspeed_2021"):
        mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", zero_stage=3,
                                         sharding_runtime="deepspeed", **kw)
    with pytest.raises(UnknownNameError, match="deepspeed_2021"):
        mlsysim.ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", zero_stages=(3,),
                                             sharding_runtime="deepspeed", **kw)


def test_the_optimizer_prices_zero3_with_the_runtime_as_the_solve_does():
    """The search's best ZeRO-3 layout, solved alone with its config, gives the same step."""
    fleet = Fleet(name="48 x DGX A100", node=Nodes.get("DGX_A100"), count=48)
    kw = dict(batch_size=1536, seq_len=2048, precision="fp16")
    r = mlsysim.ParallelismOptimizer().solve(
        "Megatron_GPT_175B", fleet, zero_stages=(3,), max_tp=1, max_pp=1,
        recomputation=("full",), microbatch_sizes=(4,), sharding_runtime="deepspeed_0_3", **kw)
    c = r.best_config
    assert c["sharding_runtime"] == "deepspeed_2021"
    alone = mlsysim.DistributedModel().solve(
        "Megatron_GPT_175B", fleet, zero_stage=3, microbatch_size=4,
        activation_recomputation="full", sharding_runtime=c["sharding_runtime"], **kw)
    assert r.best_step_s == pytest.approx(alone.step_s, rel=1e-12)
