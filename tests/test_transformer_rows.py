"""Transformer, MoE, MLA, encoder-decoder and SSM rows of the operator table by hand, at 16-bit
(e = 2 bytes per element). Found unguarded by a mutmut sample: a row's bytes or flops could be
wrong with no test failing."""

import pytest

import mlsysim
from mlsysim.solvers.serving import ServingModel
from mlsysim.workloads import lower
from mlsysim.workloads.transformer import Segment, lower_segments, lower_transformer

M = mlsysim.Models


def _row(table, name):
    i = list(table.names).index(name)
    return dict(count=float(table.count[i]), flops=float(table.flops_per_sample[i]),
                weights=float(table.weight_bytes[i]), acts=float(table.act_bytes_per_sample[i]))


def test_routed_experts_up_projection():
    """Mixtral-8x7B, 16 prompt tokens: hidden 4096, expert width 14336, gated (up + gate), 2 of
    8 experts per token. Weights of all 8 experts: 4096 x 14336 x 2 x 2 B x 8 = 1,879,048,192
    B; flops of the 2 active: 2 x 16 x 117,440,512 x 2 = 7,516,192,768; activations read and
    written per active expert: 16 x (4096 + 2 x 14336) x 2 B x 2 = 2,097,152 B."""
    t = lower_segments(M.get("Mixtral_8x7B"), [Segment(16, 0)], e=2.0, kv_e=2.0, we=2.0)
    assert _row(t, "layer.moe.experts.up") == dict(
        count=32.0, flops=7_516_192_768.0, weights=1_879_048_192.0, acts=2_097_152.0)


def test_mla_attention_expands_for_a_prompt_and_absorbs_for_decode():
    """DeepSeek-V3's 3 dense layers, 128 heads. A 16-token prompt expands K and V per head:
    2 (128 nope + 64 rope) + 2 x 128 (v) = 640 flop per pair, over 16 x 17 / 2 = 136 causal
    pairs: 128 x 640 x 136 = 11,141,120. One decode token over 100 cached works on the
    latent: 2 (512 + 64) + 2 x 512 = 2,176 per pair, 101 pairs: 28,131,328."""
    v3 = M.get("DeepSeek_V3")
    prompt = lower_segments(v3, [Segment(16, 0)], e=2.0, kv_e=2.0, we=2.0)
    step = lower_segments(v3, [Segment(1, 100)], e=2.0, kv_e=2.0, we=2.0)
    assert _row(prompt, "layer.attention")["flops"] == 11_141_120.0
    assert _row(step, "layer.attention")["flops"] == 28_131_328.0
    assert _row(step, "layer.attention")["count"] == 3.0


@pytest.mark.parametrize("tp", [1, 2])
def test_whisper_projects_the_encoder_output_into_every_decoder_layer(tp):
    """Whisper large-v3: each of the 32 decoder layers projects the 1,500 encoder frames to
    K and V once per prompt: 2 x 20 heads x 64 x 1280 / tp = 3,276,800 / tp weights;
    2 x 1500 x 3,276,800 / tp flops; it reads the 1500 x 1280 output and writes K and V
    (3 x 1500 x 1280 x 2 B = 11,520,000 B, the full width: its input is replicated)."""
    t = lower_transformer(M.get("Whisper_Large_v3"), phase="prefill", seq_len=8, e=2.0, tp=tp)
    assert _row(t, "decoder.cross_kv") == dict(
        count=32.0, flops=9_830_400_000.0 / tp, weights=6_553_600.0 / tp, acts=11_520_000.0)


def test_ssm_embedding_and_head():
    """Mamba-2.8B, 8 prompt tokens, d_model 2560, vocabulary 50280: the embedding gathers
    8 x 2560 x 2 B = 40,960 B and computes nothing; the head projects the last token,
    2 x 2560 x 50280 = 257,433,600 flops over the same number of weight bytes, reading 2560
    and writing 50280 values: 105,680 B."""
    t = lower(M.get("Mamba_2_8B"), phase="prefill", seq_len=8, e=2.0)
    assert _row(t, "embedding") == dict(count=1.0, flops=0.0, weights=0.0, acts=40_960.0)
    assert _row(t, "lm_head") == dict(count=1.0, flops=257_433_600.0, weights=257_433_600.0,
                                      acts=105_680.0)


def test_prefill_activation_buffer_counts_the_gate_only_when_there_is_one():
    """The runtime's peak activation buffer for a 512-token prompt is prompt x (hidden + MLP
    width) x e: GPT-J (no gate) 512 x (4096 + 16384) x 2 = 20,971,520 B; Llama-3-8B (gated)
    on 2 TP ranks 512 x (4096 + 2 x 14336 / 2) x 2 = 18,874,368 B."""
    assert ServingModel._activation_bytes(M.get("GPTJ_6B"), 512, 2.0, 1) == 20_971_520.0
    assert ServingModel._activation_bytes(M.get("Llama3_8B"), 512, 2.0, 2) == 18_874_368.0


def test_band_edges_carry_their_own_overlap_slowdown():
    """The overlap slowdown by band edge: nominal the mean of the kernel-level measurements
    (A100 0.76, H100 0.70: 0.73), fast Lee et al. 2025's whole-step average 0.189, slow 0.76."""
    from mlsysim.core.collectives import resolve_system
    from mlsysim.solvers.distributed import parts_for

    hw, path = resolve_system(mlsysim.Systems.Nodes.DGX_H100)
    model = M.get("Llama3_8B")
    for variant, s in (("nominal", 0.73), ("fast", 0.189), ("slow", 0.76)):
        parts = parts_for(model, hw, path, "bf16", 1024, 1, 1, 1, "none", False, 1.0, 8,
                          variant=variant)
        assert parts.overlap_slowdown == s


def test_mla_absorbs_a_decode_token_over_a_single_cached_one():
    """The absorbed form applies from the first cached token on: DeepSeek-V3, one decode
    token over 1 cached works on the latent, 2 (512 + 64) + 2 x 512 = 2,176 flop per pair,
    over 2 pairs (the cached key and its own) and 128 heads: 557,056 per dense layer (the
    expanded form, 640 per pair, would be 163,840)."""
    step = lower_segments(M.get("DeepSeek_V3"), [Segment(1, 1)], e=2.0, kv_e=2.0, we=2.0)
    assert _row(step, "layer.attention")["flops"] == 557_056.0


def test_whisper_cross_attention_reads_the_encoder_cache_and_moves_q_and_o_per_token():
    """Whisper large-v3 prefill of 8 decoder tokens: cross-attention over the 1,500 encoder
    frames, 20 heads of 64. Flops 4 x 64 x 20 x 8 x 1500 = 61,440,000. Bytes: the cached
    encoder K and V, 1500 x 2 x 20 x 64 x 2 B = 7,680,000, plus Q read and the output
    written for the 8 tokens, 2 x 8 x 20 x 64 x 2 B = 40,960: 7,720,960 B."""
    t = lower_transformer(M.get("Whisper_Large_v3"), phase="prefill", seq_len=8, e=2.0)
    assert _row(t, "layer.cross_attention") == dict(
        count=32.0, flops=61_440_000.0, weights=0.0, acts=7_720_960.0)


def test_whisper_encoder_attention_writes_no_kv_cache():
    """Whisper large-v3's encoder attends bidirectionally over its 1,500 frames: 1500 x 1500
    pairs x 4 x 64 x 20 = 11,520,000,000 flops. It reads K and V once, 1500 x 5,120 B =
    7,680,000, and Q and the output, 2 x 1500 x 20 x 64 x 2 B = 7,680,000: 15,360,000 B.
    It writes no cache (the decoder's cross-attention K/V come from decoder.cross_kv): a
    decoder layer would add 1500 x 5,120 B more."""
    t = lower_transformer(M.get("Whisper_Large_v3"), phase="prefill", seq_len=8, e=2.0)
    assert _row(t, "encoder.attention") == dict(
        count=32.0, flops=11_520_000_000.0, weights=0.0, acts=15_360_000.0)


def test_bert_encoder_attention_and_final_norm():
    """BERT-base, 128 tokens, 12 layers of 12 heads x 64 (hidden 768), bidirectional:
    attention 4 x 64 x 12 x 128 x 128 = 50,331,648 flops, reading K and V
    (128 x 2 x 12 x 64 x 2 B = 393,216) and Q plus the output (another 393,216): 786,432 B,
    no cache written. The final norm: 8 x 128 x 768 = 786,432 flops over 2 x 128 x 768 x 2 B
    = 393,216 B, once, after the stack."""
    t = lower_transformer(M.get("BERT_Base"), phase="forward", seq_len=128, e=2.0)
    assert _row(t, "encoder.attention") == dict(
        count=12.0, flops=50_331_648.0, weights=0.0, acts=786_432.0)
    assert _row(t, "final_norm") == dict(count=1.0, flops=786_432.0, weights=0.0,
                                         acts=393_216.0)
    assert t.names[-1] == "final_norm"


def test_an_ungated_mlp_counts_its_width_once_in_the_activation_peak():
    """The largest live set is a layer's input plus its widest intermediate, for every token,
    plus one row of logits. GPT-J-6B (ungated MLP of 16,384 = 4 h; attention 4 h^2 params,
    4 h wide): 512 x (4096 + 16,384) x 2 B + 50,400 x 2 B = 20,971,520 + 100,800 = 21,072,320.
    GPT-2 (hidden 768, ungated MLP 3,072; attention 4 h^2 + 4 h params, 3,076 wide, the wider):
    512 x (768 + 3,076) x 2 B + 50,257 x 2 B = 3,936,256 + 100,514 = 4,036,770. A gated MLP
    would count its width twice (up and gate): GPT-J at 2 x 16,384 would be 37,849,536."""
    gptj = lower_transformer(M.get("GPTJ_6B"), phase="prefill", seq_len=512, e=2.0)
    gpt2 = lower_transformer(M.get("GPT2"), phase="prefill", seq_len=512, e=2.0)
    assert gptj.act_peak_bytes_per_sample == 512 * (4096 + 16_384) * 2 + 50_400 * 2 == 21_072_320
    assert gpt2.act_peak_bytes_per_sample == 512 * (768 + 3_076) * 2 + 50_257 * 2 == 4_036_770


def test_an_encoder_with_a_two_token_vocabulary_still_looks_up_embeddings():
    """BERT-Base's shape (h = 768) with vocab = 2: any vocabulary above one token is a lookup,
    128 tokens x 768 x 2 B = 196,608 B read; vocab = 1 means no token embedding at all."""
    bert = mlsysim.Models.get("BERT_Base")
    two = lower_segments(bert.model_copy(update={"vocab": 2}), [Segment(128)], e=2.0)
    assert two.names[0] == "embedding"
    assert two.act_bytes_per_sample[0] == 128 * 768 * 2
    one = lower_segments(bert.model_copy(update={"vocab": 1}), [Segment(128)], e=2.0)
    assert "embedding" not in one.names
