"""Training-step terms by hand: ring attention's causal share under context parallelism, the
fabric the data-parallel all-reduce crosses, the pipeline hand-off row's group and span, the
collectives full recomputation repeats, Whisper's cross-attention projection bytes, and the
exact refusals of a stage layout and of an expert split."""

import re

import pytest

import mlsysim
from mlsysim import Fleet, Systems
from mlsysim.core.collectives import collective_time, comm_path
from mlsysim.errors import ValidationError
from mlsysim.solvers.distributed import parts_for
from mlsysim.workloads.operators import OpKind, Role
from mlsysim.workloads.training import Sharding, training_table
from mlsysim.workloads.transformer import Segment, lower_segments

LLAMA = mlsysim.Models.get("Llama3_8B")     # hidden 4096, 32 layers, 32 heads of 128, 8 KV
DM = mlsysim.DistributedModel()


def _row(table, name):
    return list(table.names).index(name)


def test_context_parallel_ranks_attend_to_half_the_rest_of_the_sequence():
    """Ring attention, cp = 2 over 512 causal tokens: each rank holds q = 256 queries that
    see on average (512 - 256) / 2 = 128 earlier tokens, Segment(256, 128). Pairs per head:
    256 x 128 + 256 x 257 / 2 = 32,768 + 32,896 = 65,664; flops 32 heads x 4 x 128 x 65,664 =
    1,075,838,976 per layer. Bytes: K/V read for 128 + 256 tokens and written for 256, at
    2 x 8 x 128 x 2 = 4096 B each: 1,572,864 + 1,048,576, plus Q in and O out,
    2 x 256 x 32 x 128 x 2 = 4,194,304: 6,815,744 B. (A third of the rest, 85 tokens, would
    give 256 x 85 + 32,896 = 54,656 pairs, 895,483,904 flops.)"""
    hw = mlsysim.Hardware.get("H100")
    parts = parts_for(LLAMA, hw, comm_path(hw), "bf16", 512, 1, 2, 1, "none", False, 1.0, 2)
    t = parts.fwd["stack"].table
    i = _row(t, "layer.attention")
    assert float(t.flops_per_sample[i]) == 1_075_838_976.0
    assert float(t.act_bytes_per_sample[i]) == 6_815_744.0
    assert float(t.count[i]) == 32.0


def test_data_parallel_pair_eight_ranks_apart_crosses_the_scale_out_fabric():
    """Llama-3-8B on 2 DGX H100 as tp 8 x dp 2 (Megatron order tp, cp, dp, pp): the two ranks
    holding the same shard are tp x cp = 8 apart, so the pair spans tp x cp x dp = 16 devices,
    one in each node. Its all-reduce moves the local gradients, 2 B x 8,030,261,248 / 8 =
    2,007,565,312 B, over InfiniBand: the collective over 2 ranks spread over 16 devices
    (47.0 ms), not the same pair inside one node's NVLink (span 8: 4.6 ms)."""
    two = Fleet(name="2xDGX", node=Systems.Nodes.DGX_H100, count=2)
    r = DM.solve("Llama3_8B", two, batch_size=16, seq_len=2048, tp_size=8, zero_stage=1)
    grads = 2 * 8_030_261_248 / 8
    assert r.parallelism == {"dp": 2, "tp": 8, "pp": 1, "cp": 1, "ep": 1}
    across = collective_time(two, "allreduce", grads, 2, span=16)
    inside = collective_time(two, "allreduce", grads, 2, span=8)
    assert r.dp_comm_s == pytest.approx(across, rel=1e-12)
    assert across == pytest.approx(0.0470, rel=1e-2)
    assert inside < across / 5


def test_pipeline_hand_off_row_is_a_pair_placed_in_the_tp_x_pp_group():
    """Llama-3-8B, 16 tokens, tp 2 x pp 2: the hand-off is one p2p (kind 5) between 2
    devices whose group spans tp x pp = 4 devices, 16 x 4096 x 2 = 131,072 B per sample,
    pp - 1 = 1 per pass; the TP all-reduce (kind 0) is a group of 2 placed in 2, the same
    131,072 B, 2 x 32 = 64 per pass."""
    t = lower_segments(LLAMA, [Segment(16)], e=2.0, tp=2, pp=2)
    send, ar = _row(t, "pp_send"), _row(t, "tp_allreduce")
    got = [(int(t.comm_kind[i]), float(t.comm_group[i]), float(t.comm_span[i]),
            float(t.act_bytes_per_sample[i]), float(t.count[i])) for i in (send, ar)]
    assert got == [(5, 2.0, 4.0, 131_072.0, 1.0), (0, 2.0, 2.0, 131_072.0, 64.0)]


def test_full_recomputation_repeats_the_tp_all_reduce_but_not_the_hand_off():
    """Full recomputation re-runs the layer stack's forward, its TP all-reduces included
    (they are part of each layer's forward), but not the pipeline hand-off, which the
    stage already received: of tp 2 x pp 2's two stack collectives only tp_allreduce comes
    back as a RECOMPUTE row, at its forward count of 64."""
    t = lower_segments(LLAMA, [Segment(16)], e=2.0, tp=2, pp=2)
    tt = training_table(t, recompute="full")
    rc = [(n, float(c)) for n, r, k, c in zip(tt.names, tt.role, tt.kind, tt.count)
          if r == Role.RECOMPUTE and k == OpKind.COLLECTIVE]
    assert rc == [("tp_allreduce.recompute", 64.0)]


def test_whisper_cross_attention_projections_move_four_hidden_vectors_per_token():
    """Whisper large-v3 decoder (hidden 1280, 20 heads of 64), 10 tokens, 16-bit: the cross
    Q and O projections read the input and write Q, read the attention output and write O,
    4 x 10 x 1280 x 2 = 102,400 B, with 2 x 10 x (2 x 20 x 64 x 1280) = 65,536,000 flops,
    once in each of 32 layers."""
    whisper = mlsysim.Models.get("Whisper_Large_v3")
    t = lower_segments(whisper, [Segment(10)], e=2.0)
    i = _row(t, "layer.cross_qo")
    assert (float(t.act_bytes_per_sample[i]), float(t.flops_per_sample[i]),
            float(t.count[i])) == (102_400.0, 65_536_000.0, 32.0)


@pytest.mark.parametrize("kw, field, message", [
    (dict(pp_size=3, first_stage_layers=31), "first_stage_layers",
     "leaves 1 of the 32 layers for 2 other stages of pp_size=3: each needs at least one."),
    (dict(pp_size=2, last_stage_layers=32), "last_stage_layers",
     "leaves 0 of the 32 layers for 1 other stage of pp_size=2: each needs at least one."),
    (dict(pp_size=2, first_stage_layers=10, last_stage_layers=10), "first_stage_layers",
     "leaves 12 of the 32 layers for 0 other stages of pp_size=2: the first and last stages "
     "must hold them all."),
])
def test_a_stage_layout_without_layers_for_the_rest_is_refused_word_for_word(kw, field,
                                                                              message):
    """Llama-3-8B's 32 layers: 31 on the first of 3 stages leave 1 for the other 2; all 32 on
    the last of 2 leave none for the first; 10 + 10 on 2 stages leave 12 nobody holds."""
    with pytest.raises(ValidationError) as exc:
        DM.solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=2048, **kw)
    assert (exc.value.field, exc.value.owner) == (field, "DistributedModel")
    assert str(exc.value) == f"The '{field}' parameter of DistributedModel {message}"


def test_sharding_refuses_an_expert_split_that_does_not_divide_the_data_ranks():
    """ep = 3 cannot split the dp x cp = 2 x 1 ranks that hold the experts."""
    with pytest.raises(ValidationError, match=re.escape(
            "The 'ep_size' parameter of Sharding must divide dp_size x cp_size (=2 x 1). "
            "Got 3 instead.")) as exc:
        Sharding(ep=3, dp=2)
    assert (exc.value.field, exc.value.owner) == ("ep_size", "Sharding")
