"""DistributedModel: a training step on a fleet, checked against hand-derived numbers."""

import pytest

import mlsysim
from mlsysim import DistributedModel, Fleet, Systems
from mlsysim.errors import UnsupportedPrecisionError, ValidationError

DM = DistributedModel()
ONE_NODE = Systems.Nodes.DGX_H100
TWO_NODES = Fleet(name="2 x DGX H100", node=ONE_NODE, count=2)


def solve(**kw):
    args = dict(model="Llama3_8B", fleet=ONE_NODE, batch_size=64, seq_len=2048, zero_stage=1)
    args.update(kw)
    return DM.solve(**args)


def test_pipeline_bubble_by_hand():
    # p = 8 stages, m = 16 micro-batches per replica: bubble (p-1)/(m+p-1) = 7/23 of the
    # pipelined time; interleaving v = 2 divides the bubble by v: 3.5 / 19.5.
    r = solve(pp_size=8, batch_size=16)
    assert r.microbatch_count == 16 and r.parallelism["dp"] == 1
    assert r.bubble_s / (r.compute_s + r.bubble_s) == pytest.approx(7 / 23, rel=1e-12)
    rv = solve(pp_size=8, batch_size=16, v_stages=2)
    assert rv.bubble_s / (rv.compute_s + rv.bubble_s) == pytest.approx(3.5 / 19.5, rel=1e-12)


def test_mixed_precision_adam_is_16_bytes_per_parameter():
    # No ZeRO, no TP/PP: bf16 weights 2 + bf16 gradients 2 + fp32 master 4 + two fp32
    # moments 8 = 16 B per parameter [Rajbhandari et al. 2020].
    r = solve(zero_stage=0)
    m = r.memory
    params = mlsysim.Models.Llama3_8B.parameter_count
    assert (m.weights + m.gradients + m.optimizer) / params == pytest.approx(16.0)
    # 16 B x 8.03e9 = 128 GB > 0.95 x 81559 MiB = 0.95 x 81559 x 2^20 B = 81.2 GB (H100 usable)
    assert not r.feasible and "optimizer state" in r.reason
    # ZeRO-1 shards the 12 B of optimizer state over the 8 ranks: 2 + 2 + 12/8 = 5.5 B.
    z1 = solve(zero_stage=1).memory
    assert (z1.weights + z1.gradients + z1.optimizer) / params == pytest.approx(5.5)
    z3 = solve(zero_stage=3).memory
    assert (z3.weights + z3.gradients + z3.optimizer) / params == pytest.approx(2.0)
    sgd = solve(zero_stage=0, optimizer="sgd").memory
    assert (sgd.weights + sgd.gradients + sgd.optimizer) / params == pytest.approx(12.0)


def test_tp_one_means_no_tp_communication():
    assert solve().tp_comm_s == 0.0
    r = solve(tp_size=2)
    assert r.tp_comm_s > 0 and r.parallelism == {"dp": 4, "tp": 2, "pp": 1, "cp": 1, "ep": 1}


def test_doubling_dp_at_fixed_global_batch_halves_compute_per_device():
    one, two = solve(fleet=ONE_NODE), solve(fleet=TWO_NODES)
    assert two.parallelism["dp"] == 16 and two.microbatch_count == one.microbatch_count / 2
    assert two.compute_s == pytest.approx(one.compute_s / 2, rel=1e-12)
    # ... while its gradient all-reduce now crosses InfiniBand.
    assert two.dp_comm_s > one.dp_comm_s


def test_mfu_convention_by_hand():
    r = solve()
    m = mlsysim.Models.Llama3_8B
    per_token = 6 * m.parameter_count + 12 * m.layers * m.heads * m.d_head * 2048
    assert r.model_flops == pytest.approx(per_token * 64 * 2048)
    assert r.mfu == pytest.approx(r.model_flops / (8 * 989.5e12 * r.step_s), rel=1e-3)
    assert r.tokens_per_s == pytest.approx(64 * 2048 / r.step_s)
    budget = solve(token_budget=1e12)
    assert budget.time_to_train.to("s").magnitude == pytest.approx(1e12 / float(
        budget.tokens_per_s))
    assert budget.gpu_hours.magnitude == pytest.approx(
        budget.time_to_train.to("h").magnitude * 8)


def test_recomputation_trades_time_for_memory():
    none, full = solve(), solve(activation_recomputation="full")
    assert full.memory.activations < none.memory.activations
    assert full.step_s > none.step_s and full.hfu > none.hfu
    # Full recomputation keeps each layer's input: 2 s b h bytes per layer per micro-batch.
    m = mlsysim.Models.Llama3_8B
    logits = 4 * 2048 * m.vocab
    assert full.memory.activations - logits == pytest.approx(2 * 2048 * m.hidden * m.layers)


def test_context_and_expert_parallelism_communicate():
    cp = solve(cp_size=2)
    assert cp.cp_comm_s > 0 and cp.memory.activations < solve().memory.activations
    moe = DM.solve("Mixtral_8x7B", TWO_NODES, batch_size=32, seq_len=4096, ep_size=8,
                   zero_stage=1)
    assert moe.ep_comm_s > 0
    dense_ep = DM.solve("Mixtral_8x7B", TWO_NODES, batch_size=32, seq_len=4096, zero_stage=1)
    assert dense_ep.ep_comm_s == 0.0
    # Experts sharded 8 ways hold less: weights drop by about 7/8 of the expert share.
    assert moe.memory.weights < 0.5 * dense_ep.memory.weights


def test_three_inputs_and_keywords_agree():
    cfg = mlsysim.DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1)
    assert DM.solve("Llama3_8B", ONE_NODE, cfg).to_dict() == solve().to_dict()


def test_a_repeated_keyword_call_reuses_its_result_but_not_across_types():
    """Keyword calls are cached on their arguments and their types: the same call returns the
    same (frozen) result, while True (== 1) and 64.0 (== 64) are validated afresh, not served
    the result that validated 1 or 64."""
    assert solve() is solve()
    solve(zero_stage=1, tp_size=1)
    with pytest.raises(ValidationError) as info:
        solve(tp_size=True)
    assert info.value.field == "tp_size"
    with pytest.raises(ValidationError) as info:
        solve(batch_size=64.5)
    assert info.value.field == "batch_size"


def test_keyword_values_equal_to_a_default_build_the_same_config():
    """The keyword path validates only values that differ from a field's default; the
    defaults table follows solve's keyword order, and a default passed as another type (1.0
    for the int 1, True for it, 1 for True) is still validated as given."""
    import inspect

    from mlsysim.solvers.distributed import _CONFIG_DEFAULTS
    keywords = list(inspect.signature(DistributedModel.solve).parameters)[3:-1]
    assert [name for name, _ in _CONFIG_DEFAULTS] == ["batch_size"] + keywords[1:]
    explicit = solve(tp_size=1, overlap_comm=True, memory_utilization=0.95,
                     rank_order="tp-cp-dp-pp")
    assert explicit.to_dict() == solve().to_dict()
    with pytest.raises(ValidationError) as info:
        solve(v_stages=True)
    assert info.value.field == "v_stages"
    assert solve(v_stages=1.0).to_dict() == solve().to_dict()      # a whole float is a whole number
    with pytest.raises(ValidationError) as info:
        solve(overlap_comm=1)
    assert info.value.field == "overlap_comm"


@pytest.mark.parametrize("kw, field", [
    ({"tp_size": 3}, "tp_size"),                       # 32 heads
    ({"pp_size": 64}, "pp_size"),                      # 32 layers
    ({"tp_size": 8, "dp_size": 2}, "dp_size"),         # 8 x 2 != 8 devices
    ({"tp_size": 16}, "tp_size"),                      # 16 does not divide 8 devices
    ({"batch_size": 60}, "batch_size"),                # not a multiple of dp = 8
    ({"microbatch_size": 3}, "microbatch_size"),       # 8 per replica
    ({"microbatch_count": 3}, "microbatch_count"),
    ({"cp_size": 3}, "cp_size"),
    ({"ep_size": 2}, "ep_size"),                       # Llama-3-8B has no experts
    ({"zero_stage": 4}, "zero_stage"),
    ({"activation_recomputation": "most"}, "activation_recomputation"),
    ({"seq_len": 10**6}, "seq_len"),
    ({"batch_size": 0}, "batch_size"),
    ({"capacity_factor": float("nan")}, "capacity_factor"),
    ({"v_stages": 2}, "v_stages"),                     # needs pp > 1
])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(ValidationError) as info:
        solve(**kw)
    assert info.value.field == field and field in str(info.value)


def test_unpublished_precision_is_refused():
    with pytest.raises(UnsupportedPrecisionError, match="fp8"):
        DM.solve("Llama3_8B", "DGX_A100", batch_size=64, precision="fp8")


def test_layered_models_train_data_parallel():
    # ResNet-50 on one DGX A100 (8 GPUs), 256 images per GPU: data parallelism only; model
    # flops are 3 x the forward's (forward + data and weight gradients).
    r = DM.solve("ResNet50", "DGX_A100", batch_size=2048, microbatch_size=256,
                 precision="fp16")
    assert r.parallelism["dp"] == 8 and r.feasible
    fwd = mlsysim.Engine.solve("ResNet50", "A100", batch_size=1, precision="fp16")
    assert r.model_flops == pytest.approx(3 * fwd.flops_total * 2048, rel=1e-9)
    assert r.dp_comm_s > 0 and "samples" in r.explain()
    # A bare chip trains on one device unless asked for more.
    assert DM.solve("ResNet50", "A100", batch_size=256, precision="fp16").devices == 1
    with pytest.raises(ValidationError, match="tp_size"):
        DM.solve("ResNet50", "DGX_A100", batch_size=256, tp_size=2)
    with pytest.raises(ValidationError, match="seq_len"):
        DM.solve("ResNet50", "DGX_A100", batch_size=256, seq_len=128)


def test_materialized_attention_costs_time_and_memory():
    # Scores in memory: 5 a s bytes per token per layer kept (Korthikanti et al. 2022), and
    # they round-trip HBM, so the step is slower than with FlashAttention.
    flash, mat = solve(), solve(attention_kernel="materialized")
    m = mlsysim.Models.Llama3_8B
    extra = 5 * m.heads * 2048 * m.layers * 2048             # per micro-batch sequence
    assert mat.memory.activations - flash.memory.activations == pytest.approx(extra)
    assert mat.step_s > flash.step_s
    sel = solve(attention_kernel="materialized", activation_recomputation="selective")
    assert sel.memory.activations == pytest.approx(flash.memory.activations)


def test_stage_layout_moves_layers_off_the_first_and_last_stages():
    """Llama-3-8B's 32 layers on pp = 4 with 5 on the first and 7 on the last stage: the two
    middle stages split the other 20, 10 each (with 6 on the last, 21: 11 then 10, the
    remainder on the earlier); one fixed end leaves the rest even (27 over 3: 9 each); the
    even default puts the remainder first (34 over 4: 9, 9, 8, 8)."""
    import numpy as np

    from mlsysim.solvers.distributed import stage_layers_of
    stages = np.arange(4)
    assert stage_layers_of(32, 4, stages, (5, 7)).tolist() == [5, 10, 10, 7]
    assert stage_layers_of(32, 4, stages, (5, None)).tolist() == [5, 9, 9, 9]
    assert stage_layers_of(32, 4, stages, (5, 6)).tolist() == [5, 11, 10, 6]  # 21 over 2
    assert stage_layers_of(34, 4, stages).tolist() == [9, 9, 8, 8]
    kw = dict(batch_size=64, seq_len=2048, zero_stage=1)
    for layout, field in (((30, 3), "first_stage_layers"), ((None, 30), "last_stage_layers")):
        with pytest.raises(ValidationError) as err:
            DistributedModel().solve("Llama3_8B", "DGX_H100", pp_size=4, tp_size=2,
                                     first_stage_layers=layout[0],
                                     last_stage_layers=layout[1], **kw)
        assert err.value.field == field
    with pytest.raises(ValidationError, match="hold them all"):
        DistributedModel().solve("Llama3_8B", "DGX_H100", pp_size=2, tp_size=4,
                                 first_stage_layers=10, last_stage_layers=10, **kw)
    with pytest.raises(ValidationError) as err:
        DistributedModel().solve("Llama3_8B", "DGX_H100", first_stage_layers=4, **kw)
    assert err.value.field == "first_stage_layers"


def test_dropout_masks_are_h_bytes_per_token_and_layer_each():
    """Llama-3-8B, one DGX H100, dp 8, micro-batch 1 x 2048 tokens, no recomputation, no SP:
    dropout's two masks (attention, MLP) are h = 4,096 bytes per token and layer each, all
    replicated: 2 x 4,096 x 2,048 tokens x 32 layers = 536.9 MB less without dropout."""
    kw = dict(batch_size=64, seq_len=2048, zero_stage=1, microbatch_size=1)
    on = DistributedModel().solve("Llama3_8B", "DGX_H100", **kw)
    off = DistributedModel().solve("Llama3_8B", "DGX_H100", dropout=False, **kw)
    assert on.memory.activations - off.memory.activations == pytest.approx(
        2 * 4096 * 2048 * 32, rel=1e-9)


@pytest.mark.parametrize("recompute, gathers", [("full", 3), ("selective", 2), ("none", 2)])
def test_zero3_backward_gathers_again_under_full_recomputation(recompute, gathers):
    """ZeRO-3 per micro-batch: one weight all-gather in the forward; in the backward a gather
    and the reduce-scatter (the same cost), plus one more gather under full recomputation,
    whose re-run forward needs the weights ZeRO-3 dropped. With the gather made to dwarf the
    compute (1,000 s), backward / forward = 3 with full recomputation, 2 otherwise."""
    import numpy as np

    from mlsysim.core.collectives import comm_path
    from mlsysim.solvers.distributed import parts_for, step_times
    hw = mlsysim.Hardware.get("H100")
    parts = parts_for(mlsysim.Models.get("Llama3_8B"), hw, comm_path(hw), "bf16", 2048, 1, 1, 1,
                      recompute, False, 1.0, 8)
    one = np.array([1000.0])
    stages = step_times(parts, np.array([0]), np.array([1]), np.array([1]), np.array([1]),
                        np.zeros(1), gather=(one, np.zeros(1)))
    f, b = stages[0]
    assert float(b[0] / f[0]) == pytest.approx(gathers, rel=1e-3)


@pytest.mark.parametrize("recompute, gathers, per_mb", [("none", 1, 3), ("full", 2, 4)])
def test_backward_post_waits_for_the_backward_gathers(recompute, gathers, per_mb):
    """FSDP BACKWARD_POST gathers the next layer's weights only after the current layer's
    gradients: the backward's gathers (g = 1 per micro-batch, 2 under full recomputation)
    add to the pass and only the reduce-scatter overlaps. Llama-3-8B, ZeRO-3 on one DGX H100,
    batch 64 x 2048 (m = 8): the compute per backward (~120 ms) outlasts its collectives
    (~32 ms each), so under BACKWARD_PRE the backward ends at C + (g + 1) t s / (1 + s) and
    under POST at g t + C + t s / (1 + s): POST costs m g t / (1 + s) more per step, with
    t = zero3_comm_s / (m x per_mb) (per_mb: the forward gather, g, the reduce-scatter).
    Doubling the factor, or charging POST's reduce-scatter too, fails this."""
    from mlsysim.solvers.distributed import OVERLAP_SLOWDOWN
    pre = solve(zero_stage=3, activation_recomputation=recompute)
    post = solve(zero_stage=3, activation_recomputation=recompute, backward_prefetch="post")
    m = pre.microbatch_count
    t = pre.zero3_comm_s / (m * per_mb)
    s = OVERLAP_SLOWDOWN["nominal"]
    assert post.step_s - pre.step_s == pytest.approx(m * gathers * t / (1 + s), rel=1e-9)
    assert post.zero3_comm_s == pre.zero3_comm_s              # the same traffic, less hidden
    assert post.zero3_exposed_s - pre.zero3_exposed_s == pytest.approx(
        m * gathers * t / (1 + s), rel=1e-9)
    assert "BACKWARD_POST" in post.explain() and "BACKWARD_POST" not in pre.explain()


def test_step_times_prefetches_before_unless_told_post():
    """step_times (the grid's pass times) overlaps the backward's gathers by default; post=
    adds them to the backward. A 1 ms gather beside a Llama-3-8B micro-batch (compute-bound):
    the forward is the same either way, the backward longer by exactly g t / (1 + s) = 1 ms /
    1.73 (g = 1 gather without recomputation)."""
    import numpy as np

    from mlsysim.core.collectives import comm_path
    from mlsysim.solvers.distributed import OVERLAP_SLOWDOWN, parts_for, step_times
    hw = mlsysim.Hardware.get("H100")
    parts = parts_for(mlsysim.Models.get("Llama3_8B"), hw, comm_path(hw), "bf16", 2048, 1, 1, 1,
                      "none", False, 1.0, 8)
    args = (parts, np.array([0]), np.array([1]), np.array([1]), np.array([1]), np.zeros(1))
    gather = (np.array([1e-3]), np.zeros(1))
    default, pre, post = (step_times(*args, gather=gather, **kw)[0]
                          for kw in ({}, {"post": False}, {"post": True}))
    assert float(default[1][0]) == float(pre[1][0])
    assert float(post[0][0]) == float(pre[0][0])
    assert float(post[1][0] - pre[1][0]) == pytest.approx(
        1e-3 / (1 + OVERLAP_SLOWDOWN["nominal"]), rel=1e-9)


def test_backward_post_needs_zero3():
    with pytest.raises(ValidationError) as info:
        solve(zero_stage=2, backward_prefetch="post")
    assert info.value.field == "backward_prefetch" and "zero_stage=3" in str(info.value)
    with pytest.raises(ValidationError) as info:
        solve(zero_stage=3, backward_prefetch="later")
    assert info.value.field == "backward_prefetch"


def test_zero3_gathers_are_reported_as_communication():
    """ZeRO-3 on 4 DGX H100 over InfiniBand NDR, Llama-3-8B (8,030,261,248 parameters, bf16),
    batch 32 x 512, one sequence per GPU. Each pass all-gathers the 16.06 GB of weights over
    the 32 data-parallel ranks, t_g = a + 2 B x 8.030e9 x b with (a, b) the fleet's all-gather
    terms, two levels: each GPU's NDR port carries (N-1)/N / L = 3/4 / 8 of the buffer at
    eta_out x 50 GB/s and the node's 8 pieces meet over NVLink, 7/8 at eta_up x 450 GB/s:
    b = 0.09375 / (0.8538 x 50e9) + 0.875 / (0.9803 x 450e9) = 1 / (239.3 GB/s), so
    t_g = 16.06e9 / 239.3e9 = 0.0671 s; forward gather, backward gather and reduce-scatter
    make 3 t_g = 0.2015 s per step. Compute is ~37 ms, so every pass waits for its gathers:
    the micro-batch time equals the gather time, most of it is exposed (0.2015 - 0.037), and
    the step is interconnect-bound. Before, those seconds were reported as 0 ms of
    communication and the step as compute-bound."""
    from mlsysim.core.collectives import comm_path
    from mlsysim.solvers.distributed import dp_terms
    from mlsysim.solvers.efficiency import EfficiencyModel
    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    r = DistributedModel().solve("Llama3_8B", fleet, batch_size=32, seq_len=512,
                                 zero_stage=3)
    p = comm_path(fleet)
    a, b = dp_terms(fleet, 32, 32, "allgather")
    assert b == pytest.approx(3 / 4 / 8 / (p.out_eff.eta_link * 50e9)
                              + 7 / 8 / (p.up_eff.eta_link * 450e9), rel=1e-12)
    assert 1 / b / 1e9 == pytest.approx(239.3, rel=1e-3)
    t_g = a + b * 2 * 8_030_261_248
    assert t_g == pytest.approx(0.06715, rel=1e-3)
    assert r.zero3_comm_s == pytest.approx(3 * t_g, rel=1e-9)
    assert r.compute_s == pytest.approx(r.zero3_comm_s, rel=1e-9)
    assert 0.15 < r.zero3_exposed_s < r.zero3_comm_s - 0.025
    exposed_ms = r.zero3_exposed_s * 1e3
    assert r.communication_latency.to("ms").magnitude == pytest.approx(exposed_ms)
    assert r.dp_communication_latency.to("ms").magnitude == pytest.approx(exposed_ms)
    assert r.binding == "interconnect"
    assert r.scaling_efficiency == pytest.approx(
        1 - (r.zero3_exposed_s + r.optimizer_s) / r.step_s, rel=1e-9)
    assert (f"ZeRO-3 gathers and reduce-scatters {r.zero3_comm_s * 1e3:.4g} ms (overlapped; "
            f"{exposed_ms:.4g} ms not hidden by compute)") in r.explain()
    eff = EfficiencyModel().solve(r)
    assert eff.dp_share == pytest.approx(r.zero3_exposed_s / r.step_s, rel=1e-9)
    full = DistributedModel().solve("Llama3_8B", fleet, batch_size=32, seq_len=512,
                                    zero_stage=3, activation_recomputation="full")
    assert full.zero3_comm_s == pytest.approx(4 * t_g, rel=1e-9)   # + the recompute gather


def test_zero3_gathers_hidden_by_compute_leave_the_step_compute_bound():
    """The same model on one DGX H100 at batch 64 x 8192: 8 sequences of 8192 tokens per GPU
    take ~6.2 s of compute against 0.76 s of gathers over NVLink, so only the compute
    slowdown beside them shows, s / (1 + s) = 0.73 / 1.73 = 42 % of the gathers, and no other
    stage is ZeRO-3 (zero_stage=1 reports no gathers at all)."""
    r = DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=8192,
                                 zero_stage=3)
    assert r.zero3_exposed_s == pytest.approx(r.zero3_comm_s * 0.73 / 1.73, rel=1e-9)
    assert r.binding == "compute"
    z1 = DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=8192,
                                  zero_stage=1)
    assert (z1.zero3_comm_s, z1.zero3_exposed_s) == (0.0, 0.0)
    assert "ZeRO-3" not in z1.explain()


def test_step_band_is_the_calibration_spread_by_hand():
    """Llama-3-8B on one H100, bf16, batch 8 x 4096: no collectives. Every operator's time is
    the max of a compute term (divided by the compute spread at an edge), a memory term
    (divided by the memory spread) and a launch floor (times the launch spread), and the
    optimizer update is memory-bound. H100 bf16 spreads: compute (0.805, 1.216), memory
    (0.95, 1.05), launch (0.775, 1.920), so the fast step lies within [0.775, 1/1.05 = 0.952]
    of the nominal and the slow one within [1/0.95 = 1.053, 1.920]. The pass is GEMM-bound:
    both edges sit within 2 % of the compute edges 1/1.216 = 0.822 and 1/0.805 = 1.243."""
    from mlsysim.core.engine import efficiency_for
    eff = efficiency_for(mlsysim.Hardware.get("H100"), "bf16")
    assert eff.compute_spread == pytest.approx((0.805, 1.216), abs=1e-3)
    assert eff.memory_spread == pytest.approx((0.95, 1.05))
    assert eff.overhead_spread == pytest.approx((0.775, 1.920), abs=1e-3)
    r = DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=4096)
    lo, hi = r.step_band_s
    assert 0.775 <= lo / r.step_s <= 0.952 and 1.053 <= hi / r.step_s <= 1.920
    assert lo / r.step_s == pytest.approx(1 / 1.216, rel=0.02)
    assert hi / r.step_s == pytest.approx(1 / 0.805, rel=0.02)
    assert [q.to("s").magnitude for q in r.band] == pytest.approx([lo, hi])
    d = r.to_dict()
    assert d["step_latency_low"] == {"value": pytest.approx(lo * 1e3), "unit": "ms"}


@pytest.mark.parametrize("tp, zero", [(1, 1), (8, 1), (8, 3), (4, 0)])
def test_step_band_moves_the_collectives_too(tp, zero):
    """On a 4-node fleet the band's edges also scale every collective by its fit's spread:
    the band brackets the nominal step whatever the mix of compute and communication."""
    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    r = DistributedModel().solve("Llama3_8B", fleet, batch_size=64, seq_len=4096,
                                 tp_size=tp, zero_stage=zero)
    lo, hi = r.step_band_s
    assert lo < r.step_s < hi


def test_step_band_scales_a_communication_bound_step_by_the_fits_spread():
    """ZeRO-3 on 4 DGX H100 over InfiniBand NDR, batch 32 x 512 (one sequence per GPU): the
    weight all-gathers across nodes set the step. The fast edge divides every collective time
    by the largest spread of the path's fits (the scale-out fit's 90th percentile, 1.377):
    fast / nominal = 1 / 1.377 = 0.726, below what efficiency terms alone could reach (the
    launch spread's 0.775, the compute edge 1 / 1.216 = 0.822)."""
    from mlsysim.core.collectives import comm_path
    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    assert comm_path(fleet).out_eff.spread[1] == pytest.approx(1.377, abs=1e-3)
    r = DistributedModel().solve("Llama3_8B", fleet, batch_size=32, seq_len=512,
                                 zero_stage=3)
    lo, hi = r.step_band_s
    assert lo / r.step_s == pytest.approx(1 / 1.377, rel=0.01)
    assert lo / r.step_s < 0.775


def test_band_edges_scale_tensor_parallel_all_reduces_by_the_fits_spread():
    """The band's edges price every collective of a DGX H100's path at its fits' spread
    (``CommPath.at``): NVLink's 10th/90th percentiles of measured over fitted bus bandwidth
    (0.825, 1.099) and the scale-out fit's (0.970, 1.377). The slow edge takes the lowest,
    so each TP all-reduce lasts 1 / 0.825 = 1.212 times as long; the fast edge the highest,
    1 / 1.377 = 0.726 times."""
    from mlsysim.core.collectives import comm_path, resolve_system
    from mlsysim.solvers.distributed import _comm_by_name, parts_for
    node = Systems.Nodes.DGX_H100
    hw, path = resolve_system(node)
    assert comm_path(node).up_eff.spread == pytest.approx((0.825, 1.099), abs=1e-3)
    assert comm_path(node).out_eff.spread == pytest.approx((0.970, 1.377), abs=1e-3)
    model = mlsysim.Models.get("Llama3_8B")

    def tp_time(variant):
        parts = parts_for(model, hw, path, "bf16", 1024, 8, 1, 1, "none", True, 1.0, 8,
                          variant=variant)
        return _comm_by_name(parts.fwd["stack"], 2)["tp_allreduce"]

    nominal = tp_time("nominal")
    assert nominal > 0
    assert tp_time("slow") / nominal == pytest.approx(1 / 0.825, rel=2e-3)
    assert tp_time("fast") / nominal == pytest.approx(1 / 1.377, rel=2e-3)


def test_overlapped_compute_slows_beside_a_collective():
    """A GEMM beside an NCCL collective ran 76 % slower on A100 (nccl issue 1428: 2.08 vs
    1.18 ms) and 70 % on H100 (~47 % against ~80 % MFU); Lee et al. 2025 averaged 18.9 % over
    whole overlapped steps: s = 0.73 (their mean), band 0.189-0.76. Compute C beside a
    collective O ends at max(O, C + O s / (1 + s)): s = 0.189, C = 10, O = 1: the collective
    covers 1 / 1.189 = 0.841 of the compute in its 1 s, the remaining 9.159 run alone: 10.159.
    A collective longer than the slowed compute (O = 10 > 1 x 1.189) sets the time alone;
    s = 0 is the ideal max(C, O)."""
    from mlsysim.solvers.distributed import OVERLAP_SLOWDOWN, overlapped

    assert OVERLAP_SLOWDOWN == {"nominal": 0.73, "fast": 0.189, "slow": 0.76}
    assert OVERLAP_SLOWDOWN["nominal"] == pytest.approx((0.76 + 0.70) / 2, rel=1e-12)
    assert overlapped(10.0, 1.0, 0.189) == pytest.approx(10.0 + 0.189 / 1.189, rel=1e-12)
    assert overlapped(1.0, 10.0, 0.189) == 10.0
    assert overlapped(10.0, 1.0, 0.0) == 10.0
    assert overlapped(3.0, 5.0, 0.40) == 5.0                # 3 + 5 x 0.4 / 1.4 = 4.43 < 5
    assert overlapped(4.0, 5.0, 0.40) == pytest.approx(4.0 + 5.0 * 0.4 / 1.4, rel=1e-12)


def test_overlapped_gradient_reduction_still_costs_the_compute_it_slows():
    """Llama-3-8B, ZeRO-1, batch 64 x 2048 on 2 DGX H100 over InfiniBand NDR: the gradient
    reduction (111 ms) runs beside the last micro-batch's backward (97.2 ms). Slowed by 73 %,
    that backward ends at max(111, 97.2 + 111 x 0.73 / 1.73 = 144.0) ms, so 111 x 0.42197 =
    46.8 ms show (the ideal rule would show 111 - 97.2 = 13.8 ms); without overlap all 111 ms
    do, and the step is 111 x (1 - 0.42197) = 64.1 ms longer."""
    fleet = Fleet(name="2xDGX", node=ONE_NODE, count=2, fabric=Systems.Fabrics.InfiniBand_NDR)
    r = DM.solve("Llama3_8B", fleet, batch_size=64, seq_len=2048, zero_stage=1)
    serial = DM.solve("Llama3_8B", fleet, batch_size=64, seq_len=2048, zero_stage=1,
                      overlap_comm=False)
    k = 0.73 / 1.73
    assert r.dp_comm_s == pytest.approx(0.1108, rel=1e-3)
    assert r.dp_exposed_s == pytest.approx(k * r.dp_comm_s, rel=1e-12)
    assert serial.dp_exposed_s == serial.dp_comm_s
    assert serial.step_s - r.step_s == pytest.approx(r.dp_comm_s * (1 - k), rel=1e-9)


def test_rank_order_decides_which_fabric_the_pipeline_and_data_parallel_groups_cross():
    """Llama-3-8B on 2 DGX H100 (16 GPUs) as tp 4 x pp 2 x dp 2, batch 16 x 2048, m = 8
    micro-batches. Megatron's order (tp, cp, dp, pp innermost first) puts the two stages
    tp x dp = 8 ranks apart, in the other node: each hand-off of 2048 x 4096 x 2 B / 4 =
    4 MiB (one per micro-batch on the first or last stage) crosses InfiniBand, while the DP
    pairs sit 4 apart on NVLink. Llama 3's order (tp, cp, pp, dp) swaps them: stages 4 apart
    on NVLink, DP across nodes. pp_comm = 8 x one p2p over the span (2 x the stage distance)."""
    from mlsysim.core.collectives import collective_time
    two = Fleet(name="2xDGX", node=ONE_NODE, count=2)
    kw = dict(batch_size=16, seq_len=2048, tp_size=4, pp_size=2, zero_stage=1)
    meg = DM.solve("Llama3_8B", two, **kw)
    llama = DM.solve("Llama3_8B", two, rank_order="tp-cp-pp-dp", **kw)
    hand_off = 2048 * 4096 * 2 / 4
    assert meg.microbatch_count == 8
    assert meg.pp_comm_s == pytest.approx(
        8 * collective_time(two, "p2p", hand_off, 2, span=16), rel=1e-12)
    assert llama.pp_comm_s == pytest.approx(
        8 * collective_time(two, "p2p", hand_off, 2, span=8), rel=1e-12)
    assert llama.pp_comm_s < meg.pp_comm_s / 5 and llama.dp_comm_s > 5 * meg.dp_comm_s


def test_a_fixed_first_or_last_stage_leaves_the_rest_to_the_others():
    """32 layers: first stage set to 10 on 2 stages leaves 22 on the last; first and last set
    to 10 on 3 stages leave 12 on the one between; on 4 stages the 12 split 6 + 6; unset, 32
    over 3 stages is 11 + 11 + 10 (the remainder on the earliest)."""
    from mlsysim.solvers.distributed import stage_layers_of
    assert [int(stage_layers_of(32, 2, s, (10, None))) for s in range(2)] == [10, 22]
    assert [int(stage_layers_of(32, 3, s, (10, 10))) for s in range(3)] == [10, 12, 10]
    assert [int(stage_layers_of(32, 4, s, (10, 10))) for s in range(4)] == [10, 6, 6, 10]
    assert [int(stage_layers_of(32, 3, s)) for s in range(3)] == [11, 11, 10]


@pytest.mark.parametrize("v, pp, slowdown, exposed", [
    (1, 4, 0.0, 2.0),        # v = 1: behind the last backward only, 3 - 1
    (2, 4, 0.0, 1.0),        # the last chunk's 1.5 s behind its own 0.5 s backward
    (4, 4, 0.0, 0.5),        # W = 13 / 4 = 3.25 s > 3: the last chunk's 0.75 - 0.25
    (8, 16, 0.0, 0.25),      # W = 113 / 8: the last chunk's 0.375 - 0.125
    (8, 16, 0.189, 3.0 * 0.189 / 1.189),   # W = 14.1 s hides all: only the slowdown shows
])
def test_interleaved_chunks_reduce_their_gradients_as_they_finish(v, pp, slowdown, exposed):
    """Megatron-LM's interleaved schedule launches a model chunk's gradient reduction when its
    last micro-batch backward is done; in the last group of p micro-batches the chunks'
    backwards run in turn, so chunk c is final c p chunk-backwards (t_b / v each) before the
    end. With t_b = 1 s and a reduction D = 3 s: exposed = max(overlapped(t_b / v, D / v) -
    t_b / v, overlapped(W, D) - W), W = ((v - 1) p + 1) t_b / v. v = 2, p = 4: W = 2.5 s,
    3 - 2.5 = 0.5, but the last chunk's 1.5 s behind its 0.5 s backward leaves 1.0. With the
    overlap slowdown s, a reduction inside the window costs D s / (1 + s) of slowed compute."""
    from mlsysim.solvers.distributed import dp_exposed
    assert float(dp_exposed(1.0, 3.0, v, pp, slowdown)) == pytest.approx(exposed, rel=1e-12)


def test_llama3_405b_gradient_reduction_hides_in_the_interleaved_drain():
    """Llama 3 405B's 16K-GPU setup (Table 4: TP 8, PP 16, DP 128, 8K tokens; v = 7 here): the
    stage's ZeRO-2 reduction over 128 ranks across pods takes D = 1.91 s against a 0.212 s
    backward per micro-batch. Behind the last backward alone 1.71 s of it showed; the
    chunks' window W = (6 x 16 + 1) x 0.212 / 7 = 2.94 s holds all of it, so only the
    compute slowdown beside it shows, D s / (1 + s) = 1.91 x 0.73 / 1.73 = 0.807 s."""
    from mlsysim.validation.adapters import training_setups
    r = training_setups()["REF-207"].solve(mlsysim.Models.get("Llama3_405B"))
    assert r.dp_comm_s == pytest.approx(1.9117, rel=1e-3)
    assert r.dp_exposed_s == pytest.approx(r.dp_comm_s * 0.73 / 1.73, rel=1e-3)


def test_the_dp_note_names_the_window_the_reduction_outlasts():
    """Llama-3-8B on 4 DGX H100 (IB NDR), pp = 2, batch 32 x 512: the 55.4 ms reduction of a
    stage's gradients over 16 ranks (4.015e9 parameters: 16 of the 32 layers and the
    525M-parameter embedding table or LM head) dwarfs the backward. v = 1 hides it behind the last
    micro-batch's backward t_b = D - exposed = 13.6 ms. With v = 2 (2 micro-batches) the window
    is ((2 - 1) x 2 + 1) t_b / 2 = 1.5 t_b = 20.4 ms (t_b a little longer: two hand-offs per
    micro-batch), and all the rest shows: exposed = D - W, the reduction being longer than the
    window's compute slowed beside it."""
    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)

    def run(v):
        return DistributedModel().solve("Llama3_8B", fleet, batch_size=32, seq_len=512,
                                        pp_size=2, v_stages=v, zero_stage=1)
    one, two = run(1), run(2)
    t_b = one.dp_comm_s - one.dp_exposed_s
    window = two.dp_comm_s - two.dp_exposed_s
    assert two.dp_comm_s == pytest.approx(one.dp_comm_s) == pytest.approx(0.0554, rel=1e-3)
    assert t_b == pytest.approx(0.0136, rel=0.01)
    assert window == pytest.approx(1.5 * t_b, rel=0.02)
    assert one.notes == (f"DP gradient reduction (55.4 ms) outlasts the last micro-batch's "
                         f"backward ({t_b * 1e3:.3g} ms)",)
    assert two.notes == (f"DP gradient reduction (55.4 ms) outlasts the last backwards of its "
                         f"2 chunks ({window * 1e3:.3g} ms)",)


def test_a_numpy_boolean_is_a_flag_but_yes_and_one_are_not():
    """Config flags are strict (True or False): a sweep's numpy booleans are the same flags,
    the string "yes" and the integer 1 are refused naming the field."""
    import numpy as np
    dm = DistributedModel()
    kw = dict(batch_size=64, seq_len=1024, zero_stage=3)
    assert dm.solve("Llama3_8B", "DGX_H100", dropout=np.False_, **kw).step_s == \
        dm.solve("Llama3_8B", "DGX_H100", dropout=False, **kw).step_s
    for bad in ("yes", 1):
        with pytest.raises(ValidationError, match=r"'dropout' parameter of DistributedModel "
                                                  r"must be True or False"):
            dm.solve("Llama3_8B", "DGX_H100", dropout=bad, **kw)


def test_a_zero3_result_states_its_backward_prefetch():
    """The result's assumptions say which prefetch priced the ZeRO-3 gathers; ZeRO-1 says
    nothing about gathers."""
    pre = solve(zero_stage=3).assumptions[-1]
    post = solve(zero_stage=3, backward_prefetch="post").assumptions[-1]
    assert pre.startswith("ZeRO-3:") and "BACKWARD_PRE" in pre
    assert "waited for" in post and "BACKWARD_POST" in post
    assert not any(a.startswith("ZeRO-3") for a in solve().assumptions)


def test_a_warm_solve_equals_a_cold_one_whatever_was_solved_before():
    """A single solve memoizes the terms that do not depend on the micro-batch count (stage
    times, the DP collective, the optimizer) per layout on the prepared lowering. Solved
    one after another on warm caches, configs that differ only in what such a memo could
    wrongly share (pipeline layout, rank order, prefetch, overlap, optimizer, ZeRO stage,
    micro-batch size, interleaving, sharding runtime, batch) give exactly what each gives
    solved alone after clear_caches(): step time and both band edges to 1e-12."""
    from mlsysim.cache import clear_caches

    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    base = dict(batch_size=64, seq_len=2048, tp_size=4, pp_size=4, zero_stage=1)
    variants = [{}, {"first_stage_layers": 5}, {"last_stage_layers": 6},
                {"rank_order": "tp-cp-pp-dp"}, {"overlap_comm": False}, {"optimizer": "sgd"},
                {"zero_stage": 0}, {"zero_stage": 2}, {"zero_stage": 3},
                {"zero_stage": 3, "backward_prefetch": "post"},
                {"zero_stage": 3, "sharding_runtime": "deepspeed_2021"},
                {"microbatch_size": 2}, {"v_stages": 2}, {"batch_size": 128}]
    configs = [{**base, **v} for v in variants]
    warm = []
    for c in configs:
        r = DistributedModel().solve("Llama3_8B", fleet, **c)
        warm.append((r.step_s, *r.step_band_s))
    assert len({w[0] for w in warm}) >= 10          # the variants do change the step
    for c, w in zip(configs, warm):
        clear_caches()
        r = DistributedModel().solve("Llama3_8B", fleet, **c)
        assert (r.step_s, *r.step_band_s) == pytest.approx(w, rel=1e-12), c
