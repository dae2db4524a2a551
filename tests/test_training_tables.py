"""Training work in the operator table: backward and recomputation rows, the optimizer row,
pipeline-stage slicing and the sharding description, checked by hand."""

import numpy as np
import pytest

import mlsysim
from mlsysim.errors import ValidationError
from mlsysim.workloads.operators import OpKind, Role, Section
from mlsysim.workloads.training import Sharding, stage_layers, stage_table, training_table
from mlsysim.workloads.transformer import Segment, lower_segments

LLAMA = mlsysim.Models.Llama3_8B


def forward(tp=1, pp=1, seq=2048):
    return lower_segments(LLAMA, [Segment(seq)], e=2.0, tp=tp, pp=pp, all_logits=True)


def flops(table, mask=None):
    f = table.flops_per_sample * table.count
    return float(f.sum() if mask is None else f[mask].sum())


def test_backward_is_twice_the_forward_for_gemms_and_2_5x_for_attention():
    fwd = forward()
    t = training_table(fwd)
    gemm_f = flops(fwd, fwd.kind == OpKind.GEMM)
    attn_f = flops(fwd, fwd.kind == OpKind.ATTENTION)
    # GEMMs: forward F + data gradient F + weight gradient F = 3F (6 N per token overall).
    assert flops(t, t.kind == OpKind.GEMM) == pytest.approx(3 * gemm_f)
    # FlashAttention-2 backward: 2.5x the forward -> 3.5x in all.
    assert flops(t, t.kind == OpKind.ATTENTION) == pytest.approx(3.5 * attn_f)
    # 6 N per token: Llama-3-8B's GEMM weights (7.5e9 without the embedding table) x 2048.
    n_gemm = LLAMA.parameter_count - LLAMA.vocab * LLAMA.hidden
    assert flops(t, t.kind == OpKind.GEMM) == pytest.approx(6 * n_gemm * 2048, rel=0.01)
    assert set(np.unique(t.role)) == {Role.FORWARD, Role.DGRAD, Role.WGRAD}


def test_recomputation_repeats_the_stack():
    fwd = forward()
    stack = fwd.section == Section.STACK
    none, full = training_table(fwd), training_table(fwd, recompute="full")
    sel = training_table(fwd, recompute="selective")
    assert flops(full) - flops(none) == pytest.approx(flops(fwd, stack & (fwd.kind !=
                                                                            OpKind.COLLECTIVE)))
    assert flops(sel) - flops(none) == pytest.approx(flops(fwd, stack & (fwd.kind ==
                                                                           OpKind.ATTENTION)))
    with pytest.raises(ValidationError, match="activation_recomputation"):
        training_table(fwd, recompute="some")


def test_tp_collectives_come_in_conjugate_pairs():
    t = training_table(forward(tp=2))
    ar = (t.kind == OpKind.COLLECTIVE) & (t.comm_kind == 0)
    # 2 all-reduces per layer forward + 2 backward = 4 x 32 layers.
    assert float(t.count[ar].sum()) == 4 * LLAMA.layers
    assert training_table(forward(tp=1)).has_comm is False       # TP=1: no TP communication


def test_optimizer_row_moves_its_bytes_once_per_step():
    t = training_table(forward(), params=1e9, optimizer_bytes_per_param=16.0)
    opt = t.role == Role.OPTIMIZER
    assert opt.sum() == 1 and t.weight_bytes[opt][0] == pytest.approx(16e9)
    assert t.act_bytes_per_sample[opt][0] == 0.0                 # batch-independent


def test_stages_add_up_to_the_model():
    full = training_table(forward(pp=4))
    stages = [stage_table(full, s, 4, LLAMA.layers) for s in range(4)]
    non_p2p = ~((full.kind == OpKind.COLLECTIVE) & (full.comm_kind == 5))
    assert sum(flops(s) for s in stages) == pytest.approx(flops(full, non_p2p))
    assert "embedding" in stages[0].names and "embedding" not in stages[1].names
    assert "lm_head" in stages[3].names and "lm_head" not in stages[0].names
    # Hand-offs: stage 0 sends activations forward only, stage 3 gradients back only.
    def sends(s):
        p2p = (s.kind == OpKind.COLLECTIVE) & (s.comm_kind == 5)
        return {int(r): float(c) for r, c in zip(s.role[p2p], s.count[p2p])}
    assert sends(stages[0]) == {Role.FORWARD: 1.0}
    assert sends(stages[3]) == {Role.DGRAD: 1.0}
    assert sends(stages[1]) == {Role.FORWARD: 1.0, Role.DGRAD: 1.0}
    assert sum(s.weight_total_bytes for s in stages) == pytest.approx(full.weight_total_bytes)
    assert stage_layers(30, 4) == [8, 8, 7, 7]


def test_sharding_checks_its_sizes():
    assert Sharding(tp=8, pp=4, dp=32).devices == 1024
    with pytest.raises(ValidationError, match="tp_size"):
        Sharding(tp=0)
    with pytest.raises(ValidationError, match="ep_size"):
        Sharding(dp=6, ep=4)


def test_attention_dropout_on_materialized_scores_is_its_own_pass():
    """Megatron-LM applies attention dropout (0.1 by default) as a kernel after its fused
    softmax: over materialized scores it reads the probabilities and writes them dropped plus
    a one-byte mask, 2 e + 1 = 5 B per score and head at 16 bits, over the whole materialized
    rectangle (the causal mask zeroes half of it but the kernel still passes over it).
    Llama-3-8B, one causal segment of 512 tokens: 512 x 512 = 262,144 scores x 32 heads =
    8,388,608 per layer, 41,943,040 B (the causal half, 4,202,496, would be wrong).
    FlashAttention fuses dropout (no row); selective recomputation re-runs it with the rest of
    the attention core."""
    from mlsysim.workloads.training import training_table
    from mlsysim.workloads.transformer import Segment, lower_segments

    spec = mlsysim.Models.get("Llama3_8B")
    seg = [Segment(512, 0)]
    t = lower_segments(spec, seg, e=2.0, flash=False, dropout=True, all_logits=True)
    i = list(t.names).index("layer.attention_dropout")
    assert t.act_bytes_per_sample[i] == 8_388_608 * 5 and t.flops_per_sample[i] == 8_388_608
    assert t.count[i] == 32
    assert "layer.attention_dropout" not in lower_segments(spec, seg, e=2.0, flash=True,
                                                           dropout=True).names
    assert "layer.attention_dropout" not in lower_segments(spec, seg, e=2.0, flash=False).names
    sel = training_table(t, recompute="selective", include_forward=False)
    assert "layer.attention_dropout.recompute" in sel.names
    assert "layer.attention_softmax.recompute" in sel.names


def test_materialized_attention_computes_the_whole_score_rectangle():
    """A batched matmul cannot skip masked scores: materialized attention (Megatron-LM's
    ``baddbmm`` into a ``[b * np, sq, sk]`` buffer) computes and stores all of them, where
    FlashAttention skips the blocks above the diagonal. Llama-3-8B, 512 causal tokens, 32
    heads of 128: materialized 4 x 128 x 32 x 512 x 512 = 4,294,967,296 flop per layer;
    flash 4 x 128 x 32 x (512 x 513 / 2) = 2,151,677,952 (the causal pairs). The scores,
    4 passes x 32 x 512 x 512 x 2 B = 67,108,864 B, are on the attention row with Q, K, V
    and the output."""
    from mlsysim.workloads.transformer import Segment, lower_segments

    spec = mlsysim.Models.get("Llama3_8B")
    seg = [Segment(512, 0)]
    naive = lower_segments(spec, seg, e=2.0, flash=False)
    flash = lower_segments(spec, seg, e=2.0, flash=True)
    i, j = list(naive.names).index("layer.attention"), list(flash.names).index("layer.attention")
    assert naive.flops_per_sample[i] == 4 * 128 * 32 * 512 * 512
    assert flash.flops_per_sample[j] == 4 * 128 * 32 * 512 * 513 / 2
    assert naive.act_bytes_per_sample[i] - flash.act_bytes_per_sample[j] == 4 * 32 * 512 * 512 * 2


def test_pipeline_hand_offs_are_one_per_micro_batch_in_the_section_tables():
    """A 4-stage forward sends its activations pp - 1 = 3 times in all, but each stage sends
    once: ``section_tables`` counts the hand-off rows 1 per micro-batch, the activations of
    2048 tokens x 4096 x 2 B = 16,777,216 B each way (forward send, gradient back)."""
    from mlsysim.workloads.training import section_tables

    s = section_tables(training_table(forward(pp=4)))
    for part, name, role in (("send", "pp_send", Role.FORWARD),
                             ("recv_grad", "pp_send.dgrad", Role.DGRAD)):
        t = s[part]
        assert t.names == (name,)
        assert t.count.tolist() == [1.0] and t.role.tolist() == [role]
        assert t.act_bytes_per_sample.tolist() == [16_777_216.0]


def test_a_stage_of_a_backward_only_table_holds_an_even_share_of_the_weights():
    """Without forward rows there are no forward weights to apportion by: each of 4 stages
    carries 1/4 of Llama-3-8B's 16,060,522,496 B of bf16 weights, 4,015,130,624 B."""
    back = training_table(forward(pp=4), include_forward=False)
    assert back.weight_total_bytes == 16_060_522_496
    assert [stage_table(back, s, 4, LLAMA.layers).weight_total_bytes
            for s in range(4)] == [4_015_130_624.0] * 4


def test_sharding_size_message_names_its_owner():
    with pytest.raises(ValidationError) as info:
        Sharding(tp=0)
    assert str(info.value) == ("The 'tp_size' parameter of Sharding must be a positive whole "
                               "number. Got 0 instead.")


def test_an_added_collective_keeps_its_span_and_section():
    """A 2-way DP gradient all-reduce placed over 16 devices in the POST section: the row
    carries group 2, span 16 and section POST as given (not the group, not STACK)."""
    from mlsysim.workloads.training import with_collectives
    fwd = forward(seq=128)
    t = with_collectives(fwd, [dict(name="grad_sync", kind="allreduce", group=2, count=1,
                                    message_bytes=1e6, span=16, section=Section.POST)])
    assert t.names[-1] == "grad_sync" and len(t.names) == len(fwd.names) + 1
    assert (t.comm_group[-1], t.comm_span[-1], t.section[-1]) == (2.0, 16.0, Section.POST)
    assert t.act_bytes_per_sample[-1] == 1e6


def test_training_tables_hold_no_per_sample_state():
    """A training step keeps no KV cache: the tables built from a forward pass (backward rows,
    added collectives) carry 0 B of per-sample state, whatever the forward held."""
    from mlsysim.workloads.training import with_collectives
    fwd = forward(seq=128)
    assert training_table(fwd).state_bytes_per_sample == 0.0
    t = with_collectives(fwd, [dict(name="ar", kind="allreduce", group=2, count=1,
                                    message_bytes=8.0)])
    assert t.state_bytes_per_sample == 0.0
