"""DistributedModel's terms one at a time, by hand: the interleaved schedule's activation
memory, materialized attention's backward, a stage's local parameters, the overlap slowdown
at the band's edges for a layered model, and the DP-overlap note's printed values."""

import numpy as np
import pytest

import mlsysim
from mlsysim import Fleet, Systems
from mlsysim.core.collectives import comm_path, resolve_system
from mlsysim.errors import ValidationError
from mlsysim.solvers.distributed import (
    activation_bytes,
    parts_for,
    stage_kind_table,
    stage_params,
)

LLAMA = mlsysim.Models.get("Llama3_8B")


def _acts(stage, v, m=8, pp=4, schedule="1f1b"):
    return float(activation_bytes(LLAMA, tp=1, pp=pp, cp=1, v=v, stage=stage, m=m, mbs=1,
                                  seq=2048, e=2.0, sp=False, recompute="none",
                                  schedule=schedule, capacity_factor=1.0))


# One micro-batch's activations on one stage of Llama-3-8B (hidden 4096, 8 KV heads x 128 =
# 1024, gated MLP of 14336), 4 stages of 8 layers, 1 x 2048 tokens, 16-bit, no TP, dropout on.
# Per layer and token, in 16-bit units (Korthikanti et al. 2022, Table 2, with GQA):
#   attention 6 h + h (mask) + 4 x 1024 = 32,768; MLP 2 h + h (mask) + 2 (2 + 1) 14336 = 98,304;
#   norms 4 h = 16,384: 147,456 per layer, 1,179,648 for 8 layers;
#   x s b e / 2 = 2048 x 1 x 2 / 2 = 2048 -> 2,415,919,104 B per micro-batch.
PER_MICROBATCH = 2_415_919_104


def test_interleaved_first_stage_holds_one_plus_p_minus_one_over_pv_micro_batches():
    """1F1B: stage s holds min(m, p - s) micro-batches in flight; with v interleaved chunks
    the first stage holds p (1 + (p - 1) / (p v)) of them [Korthikanti et al. 2022, sec. 4.2.3].
    p = 4, m = 8: stage 0 holds 4 without interleaving (9,663,676,416 B); with v = 2,
    4 x (1 + 3 / 8) = 5.5 (13,287,555,072 B), with v = 4, 4 x (1 + 3 / 16) = 4.75
    (11,475,615,744 B). Stage 1 holds min(8, 3) = 3 either way (7,247,757,312 B): only the
    first stage runs ahead. (With (p + 1) the v = 2 first stage would hold 6.5.)"""
    assert _acts(0, v=1) == 4 * PER_MICROBATCH == 9_663_676_416
    assert _acts(0, v=2) == 5.5 * PER_MICROBATCH == 13_287_555_072
    assert _acts(0, v=4) == 4.75 * PER_MICROBATCH == 11_475_615_744
    assert _acts(1, v=2) == _acts(1, v=1) == 3 * PER_MICROBATCH == 7_247_757_312


def test_gpipe_holds_all_m_micro_batches_and_two_stages_interleave_too():
    """GPipe runs every forward before any backward, so each stage holds all m micro-batches:
    8 x PER_MICROBATCH on stage 0 of 4 (1F1B: min(8, 4) = 4) and on stage 1 (1F1B: 3).
    Two stages of 16 layers (2 x PER_MICROBATCH each), m = 4: 1F1B's first stage holds
    min(4, 2) = 2 micro-batches, interleaved over v = 2 chunks 2 x (1 + 1 / 4) = 2.5 of them:
    4 x and 5 x PER_MICROBATCH."""
    assert _acts(0, v=1, schedule="gpipe") == 8 * PER_MICROBATCH
    assert _acts(1, v=1, schedule="gpipe") == 8 * PER_MICROBATCH
    assert _acts(0, v=1, m=4, pp=2) == 4 * PER_MICROBATCH
    assert _acts(0, v=2, m=4, pp=2) == 5 * PER_MICROBATCH


def test_interleaved_first_stage_activations_in_a_solved_step():
    """The same rule through DistributedModel: Llama-3-8B on one DGX H100 as 4 stages x 2
    replicas, batch 8 x 2048, one sequence per micro-batch: m = 8 / 2 = 4. The first stage is
    the fullest (its activations 4 x 2,415,919,104 B, 5.5 x with v = 2, outweigh the last
    stage's head): 9,663,676,416 B, interleaved 13,287,555,072 B."""
    def solve(v):
        return mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8,
                                                seq_len=2048, pp_size=4, v_stages=v,
                                                zero_stage=1)
    plain, interleaved = solve(1), solve(2)
    assert plain.microbatch_count == interleaved.microbatch_count == 4
    assert plain.memory.activations == 9_663_676_416
    assert interleaved.memory.activations == 13_287_555_072


def _parts(flash, seq=512):
    hw = mlsysim.Hardware.get("H100")
    return parts_for(LLAMA, hw, comm_path(hw), "bf16", seq, 1, 1, 1, "none", False, 1.0, 1,
                     flash=flash)


def _row(prepared, name):
    t = prepared.table
    i = list(t.names).index(name)
    return float(t.flops_per_sample[i]), float(t.count[i])


def test_materialized_attention_backward_is_twice_its_forward():
    """Materialized attention (scores in memory) runs four matmuls in its backward to the
    forward's two: 2.0 x the forward flops; FlashAttention-2 runs five, recomputing the scores:
    2.5 x. Llama-3-8B, 512 causal tokens, 32 heads of 128, per layer: materialized forward
    4 x 128 x 32 x 512 x 512 = 4,294,967,296 (the whole rectangle), backward 8,589,934,592;
    flash forward 4 x 128 x 32 x 512 x 513 / 2 = 2,151,677,952, backward 5,379,194,880."""
    naive, flash = _parts(flash=False), _parts(flash=True)
    assert _row(naive.fwd["stack"], "layer.attention") == (4_294_967_296.0, 32.0)
    assert _row(naive.bwd["stack"], "layer.attention.dgrad") == (8_589_934_592.0, 32.0)
    assert _row(flash.fwd["stack"], "layer.attention") == (2_151_677_952.0, 32.0)
    assert _row(flash.bwd["stack"], "layer.attention.dgrad") == (5_379_194_880.0, 32.0)


def test_stage_params_put_the_remainder_on_the_first_stage():
    """32 layers over 3 stages: 11, 11, 10 (the remainder on the earliest). Local parameters
    of a stage: its share of the stack's, plus the pre-stack ones (the embedding table) on the
    first stage and the post-stack rows' (head) on the last; the three add up to the whole
    model, Llama-3-8B's 8,030,261,248 parameters (untied: no second copy)."""
    p = _parts(flash=True)
    pre, stack, post = (p.params[k] for k in ("pre", "stack", "post"))
    assert pre == pytest.approx(128_256 * 4_096, rel=1e-12)   # the embedding table alone
    got = [float(stage_params(p, k)[0]) for k in stage_kind_table(32, np.array([3]))]
    assert got == pytest.approx([pre + stack * 11 / 32, stack * 11 / 32,
                                 stack * 10 / 32 + post], rel=1e-12)
    assert sum(got) == pytest.approx(8_030_261_248, rel=1e-12)


def test_layered_model_band_edges_carry_their_own_overlap_slowdown():
    """A CNN's DP reduction overlaps its backward under the same rule as a transformer's: the
    nominal is the mean of the kernel-level GEMM-beside-NCCL slowdowns (A100 0.76, H100 0.70:
    0.73), the band's fast edge Lee et al. 2025's whole-step average (0.189), the slow edge the
    A100 measurement (0.76)."""
    hw, path = resolve_system(Systems.Nodes.DGX_H100)
    resnet = mlsysim.Models.get("ResNet50")
    for variant, s in (("nominal", 0.73), ("fast", 0.189), ("slow", 0.76)):
        parts = parts_for(resnet, hw, path, "bf16", 1, 1, 1, 1, "none", False, 1.0, 8,
                          variant=variant)
        assert parts.overlap_slowdown == s, variant


def test_dp_overlap_note_prints_the_reduction_and_the_backward_in_ms():
    """GPT-J-6B on 2 DGX H100 (dp = 16), batch 16 x 512: one micro-batch per replica, whose
    backward is far shorter than the gradient all-reduce across the nodes. When the reduction
    O outlasts the slowed backward (O >= t_b (1 + s)), exposed = O - t_b, so the note's
    backward is dp_comm_s - dp_exposed_s; both are printed in ms, 3 significant figures
    (83.5 ms and 19.1 ms today)."""
    fleet = Fleet(name="2 x DGX H100", node=Systems.Nodes.DGX_H100, count=2)
    r = mlsysim.DistributedModel().solve("GPTJ_6B", fleet, batch_size=16, seq_len=512,
                                         zero_stage=1)
    t_b = r.dp_comm_s - r.dp_exposed_s
    assert r.dp_comm_s >= 1.4 * t_b
    assert r.notes == (f"DP gradient reduction ({r.dp_comm_s * 1e3:.3g} ms) outlasts the last "
                       f"micro-batch's backward ({t_b * 1e3:.3g} ms)",)


def _flops_and_acts(prepared, name):
    t = prepared.table
    i = list(t.names).index(name)
    return float(t.flops_per_sample[i]), float(t.act_bytes_per_sample[i])


def test_sequence_parallelism_shards_only_the_stack_norms_over_tp():
    """Llama-3-8B, 1,024 tokens, tp = 8 on one DGX H100. A layer norm costs 8 flop per element
    and moves 4 elements per element normalized (the residual add fused in): 8 x 1024 x 4096 =
    33,554,432 flop and 4 x 1024 x 4096 x 2 B = 33,554,432 B per sample, replicated on every TP
    rank without sequence parallelism. With it, each rank normalizes 1,024 / 8 = 128 tokens:
    4,194,304 flop and 4,194,304 B. The GEMMs are TP-sharded either way and do not change (the
    QKV projection: 2 x 1024 x 4096 x 6144 / 8 = 6,442,450,944 flop), nor does the final norm
    after the stack (8 x 1024 x 4096 = 33,554,432 flop; it reads and writes 2 x 1024 x 4096 x
    2 B = 16,777,216 B)."""
    hw, path = resolve_system(Systems.Nodes.DGX_H100)

    def rows(sp):
        p = parts_for(LLAMA, hw, path, "bf16", 1024, 8, 1, 1, "none", sp, 1.0, 8)
        got = {n: _flops_and_acts(p.fwd["stack"], n)
               for n in ("layer.norm", "layer.norm2", "layer.qkv")}
        return {**got, "final_norm": _flops_and_acts(p.fwd["post"], "final_norm")}

    plain, sharded = rows(False), rows(True)
    assert plain["layer.norm"] == plain["layer.norm2"] == (33_554_432.0, 33_554_432.0)
    assert sharded["layer.norm"] == sharded["layer.norm2"] == (4_194_304.0, 4_194_304.0)
    assert plain["layer.qkv"][0] == sharded["layer.qkv"][0] == 6_442_450_944.0
    assert plain["final_norm"] == sharded["final_norm"] == (33_554_432.0, 16_777_216.0)

def test_interleaving_needs_micro_batches_divisible_by_the_stages():
    """One DGX H100 as 2 stages x 4 replicas, batch 12: 12 / 4 = 3 micro-batches of one
    sequence per replica, which 2 stages cannot split into interleaved rounds."""
    with pytest.raises(ValidationError) as info:
        mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=12, seq_len=2048,
                                         pp_size=2, v_stages=2, zero_stage=1)
    assert info.value.field == "v_stages"
    assert str(info.value) == (
        "The 'v_stages' parameter of DistributedModel needs micro-batches per replica (=3) "
        "divisible by pp_size (=2) for the interleaved schedule.")


def test_fp32_training_keeps_no_separate_master_copy():
    """Adam keeps m and v in fp32: 8 B per parameter. Under fp16 mixed precision the optimizer
    adds the fp32 master copy (4 B): 12 B per parameter; fp32 training's weights are already
    the master copy, so it stays at 8 B. Llama-3-8B has N = 8,030,261,248 parameters: fp32
    weights 4 N = 32.12 GB, optimizer 8 N = 64.24 GB; fp16 weights 2 N, optimizer 12 N."""
    n = 8_030_261_248
    fp32 = mlsysim.DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=1024,
                                            precision="fp32")
    fp16 = mlsysim.DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=1024,
                                            precision="fp16")
    assert fp32.memory.weights == pytest.approx(4 * n, rel=1e-12)
    assert fp32.memory.optimizer == pytest.approx(8 * n, rel=1e-12)
    assert fp16.memory.weights == pytest.approx(2 * n, rel=1e-12)
    assert fp16.memory.optimizer == pytest.approx(12 * n, rel=1e-12)


def test_gpipe_holds_every_microbatchs_activations_on_a_non_transformer():
    """ResNet-50, batch 64 in micro-batches of 16: m = 4. 1F1B frees each micro-batch's
    activations after its backward, so one micro-batch is resident; GPipe runs all four
    forwards first and holds 4 x as many bytes."""
    one = mlsysim.DistributedModel().solve("ResNet50", "H100", batch_size=64, precision="fp16",
                                           microbatch_size=16, schedule="1f1b")
    gp = mlsysim.DistributedModel().solve("ResNet50", "H100", batch_size=64, precision="fp16",
                                          microbatch_size=16, schedule="gpipe")
    assert one.microbatch_count == gp.microbatch_count == 4
    assert gp.memory.activations == pytest.approx(4 * one.memory.activations, rel=1e-12)


def test_a_config_of_the_wrong_type_is_refused_word_for_word():
    with pytest.raises(ValidationError) as info:
        mlsysim.DistributedModel().solve("Llama3_8B", "H100", config=42)
    assert info.value.field == "config"
    assert str(info.value) == ("The 'config' parameter of DistributedModel must be a "
                               "DistributedConfig. Got int instead.")


def test_explain_shows_t_mb_as_the_compute_per_microbatch_in_ms():
    """Batch 8 at micro-batch 1 on one device: m = 8, and t_mb = compute_s / 8 printed in ms
    (about 70 ms for Llama-3-8B at 1024 tokens on an H100)."""
    r = mlsysim.DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=1024,
                                         precision="fp16")
    t_mb = r.compute_s / 8 * 1e3
    assert 60 < t_mb < 80
    assert r.explain().splitlines()[1] == (
        "  micro-batches: m = 8 / (1 x 1) = 8 per replica; t_mb (slowest stage, fwd + bwd + "
        f"collectives) = {t_mb:.4g} ms")
