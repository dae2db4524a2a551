"""ServingModel: KV-cache accounting for every attention variant, and serving physics."""

import pytest

import mlsysim
from mlsysim import ServingModel
from mlsysim.errors import ValidationError
from mlsysim.specs.model import TransformerSpec
from mlsysim.workloads.transformer import kv_bytes_per_token, kv_cache_bytes

M = mlsysim.Models
S = ServingModel()


# --- KV cache, hand-derived ---------------------------------------------------------------
def test_kv_llama3_8b_gqa():
    # 2 (K,V) * 32 layers * 8 KV heads * 128 head dim * 2 B = 131,072 B/token.
    assert kv_bytes_per_token(M.Llama3_8B, 2) == 131_072


def test_kv_llama2_7b_mha_is_four_times_gqa_8b():
    # 2 * 32 * 32 heads * 128 * 2 = 524,288: GQA must not be counted as MHA (or MQA).
    assert kv_bytes_per_token(M.Llama2_7B, 2) == 524_288


def test_kv_mqa():
    mqa = TransformerSpec(key="MQA", name="MQA", architecture="Transformer", group="Language",
                          kind="decoder", layers=4, hidden=1024, heads=16, kv_heads=1,
                          ffn=4096, vocab=1000, max_context=4096, published_parameters=1e6,
                          source="test", as_of="2024")
    # 2 * 4 layers * 1 KV head * 64 head dim * 2 B = 1,024 B/token.
    assert kv_bytes_per_token(mqa, 2) == 1_024


def test_kv_deepseek_v3_mla_latent():
    # MLA caches kv_lora_rank 512 + rope key 64 per layer: 61 * 576 * 2 B = 70,272 B/token,
    # 1/70th of what 128 full K/V heads of 128 dims would take (61*2*128*128*2 = 7,995,392).
    assert kv_bytes_per_token(M.DeepSeek_V3, 2) == 70_272


def test_kv_mistral_sliding_window_caps_the_cache():
    # Every layer keeps the last 4096 tokens: 8192 tokens cost as much as 4096.
    per_token = 2 * 32 * 8 * 128 * 2
    assert kv_cache_bytes(M.Mistral_7B, 8192, 2) == per_token * 4096
    assert kv_cache_bytes(M.Mistral_7B, 2048, 2) == per_token * 2048


def test_kv_gemma2_hybrid_local_global():
    # 42 layers alternate local (window 4096) and global; 8 KV heads x 256 dims x 2 x 2 B
    # = 8,192 B per token per layer. At 8192 tokens: 21*8192*8192 + 21*8192*4096.
    assert kv_cache_bytes(M.Gemma2_9B, 8192, 2) == 21 * 8192 * 8192 + 21 * 8192 * 4096


def test_fp8_kv_halves_the_cache():
    a = S.solve("Llama3_8B", "H100", seq_len=2048, output_len=256)
    b = S.solve("Llama3_8B", "H100", seq_len=2048, output_len=256, kv_precision="fp8")
    assert b.kv_bytes_per_sequence == pytest.approx(a.kv_bytes_per_sequence / 2)
    assert b.max_concurrent_sequences > 1.9 * a.max_concurrent_sequences


def test_paged_allocation_rounds_up_to_pages():
    # 1000 + 30 = 1030 tokens -> 65 pages of 16 = 1040 tokens of 131,072 B.
    r = S.solve("Llama3_8B", "H100", seq_len=1000, output_len=30, page_size=16)
    assert r.kv_bytes_per_sequence == 1040 * 131_072


def test_weights_and_capacity():
    r = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=1024)
    assert r.weights_bytes == pytest.approx(16.06e9, rel=1e-3)   # 8.03e9 params * 2 B
    # usable = 0.9 x 81559 MiB = 0.9 x 81559 x 2^20 B = 76.97e9 B (nvidia-smi's H100 total);
    # KV per sequence 2048 tokens * 131,072 B = 268 MB, so (76.97 - 16.06 - act) GB / 268 MB = 226.
    free = 0.9 * 81559 * 2**20 - r.weights_bytes - r.activation_bytes
    assert r.max_concurrent_sequences == int(free // (2048 * 131_072))


# --- latency physics --------------------------------------------------------------------
def test_decode_itl_at_batch1_is_weight_streaming_bound():
    r = S.solve("Llama3_8B", "A100", seq_len=512, output_len=128)
    floor = 7.505e9 * 2 / 2.039e12  # weights read per token (embedding excluded) / bandwidth
    assert floor < r.itl_s < floor / 0.70  # within the calibrated memory efficiency


def test_a100_to_h100_itl_speedup_tracks_bandwidth():
    a = S.solve("Llama3_8B", "A100", seq_len=512, output_len=128)
    h = S.solve("Llama3_8B", "H100", seq_len=512, output_len=128)
    assert a.itl_s / h.itl_s == pytest.approx(3.35 / 2.039, rel=0.2)


def test_ttft_grows_faster_than_linearly_with_prompt():
    short = S.solve("Llama3_70B", "H100", seq_len=1024, output_len=16, tp_size=8)
    long = S.solve("Llama3_70B", "H100", seq_len=8000, output_len=16, tp_size=8)
    # Matmuls scale with the prompt (x7.8); causal attention adds a quadratic term on top.
    assert long.prefill_s > 8000 / 1024 * short.prefill_s


def test_prefix_caching_cuts_ttft():
    full = S.solve("Llama3_8B", "H100", seq_len=4096, output_len=16)
    cached = S.solve("Llama3_8B", "H100", seq_len=4096, output_len=16, cached_prefix_len=3072)
    assert cached.ttft_s < 0.35 * full.ttft_s


def test_speculative_decoding_helps_when_accepted_and_hurts_when_not():
    base = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=256)
    good = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=256,
                   draft_model="Llama3_2_1B", draft_acceptance_rate=0.9)
    bad = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=256,
                  draft_model="Llama3_2_1B", draft_acceptance_rate=0.05)
    assert good.itl_s < base.itl_s < bad.itl_s
    # k=4, a=0.9: E = (1 - 0.9^5) / 0.1 = 4.0951 tokens per verification.
    assert good.accepted_per_step == pytest.approx(4.0951, rel=1e-4)


def test_draft_with_other_vocabulary_rejected():
    with pytest.raises(ValidationError, match="vocabulary"):
        S.solve("Llama3_8B", "H100", seq_len=128, draft_model="Mistral_7B",
                draft_acceptance_rate=0.5)


def test_max_throughput_mode_fills_memory():
    r = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=1024, batch_size="max")
    assert r.feasible and r.batch_size == r.max_concurrent_sequences
    one_more = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=1024,
                       batch_size=r.batch_size + 1)
    assert not one_more.feasible and "needs" in one_more.reason


def test_weight_only_int4_shrinks_weights_and_speeds_decode():
    fp16 = S.solve("Llama3_8B", "A100", seq_len=512, output_len=128)
    w4 = S.solve("Llama3_8B", "A100", seq_len=512, output_len=128, weight_precision="int4")
    assert w4.weights_bytes == pytest.approx(fp16.weights_bytes / 4)
    assert w4.itl_s < 0.5 * fp16.itl_s


def test_disaggregated_prefill_adds_kv_transfer():
    # Prompt KV: 4096 tokens * 131,072 B = 537 MB over 50 GB/s = 10.7 ms.
    r = S.solve("Llama3_8B", "H100", seq_len=4096, output_len=64, decode_hardware="A100",
                network_bandwidth="50 GB/s")
    assert r.kv_transfer_s == pytest.approx(4096 * 131_072 / 50e9)
    assert r.decode_hardware.key == "A100"


def test_mamba_state_is_fixed():
    short = S.solve("Mamba_2_8B", "H100", seq_len=512, output_len=64)
    long = S.solve("Mamba_2_8B", "H100", seq_len=8192, output_len=64)
    assert short.kv_bytes_per_sequence == long.kv_bytes_per_sequence
    assert long.itl_s == pytest.approx(short.itl_s, rel=0.01)


def test_moe_decode_reads_more_experts_as_batch_grows():
    one = S.solve("Mixtral_8x7B", "H100", seq_len=512, output_len=64, precision="fp8")
    many = S.solve("Mixtral_8x7B", "H100", seq_len=512, output_len=64, precision="fp8",
                   batch_size=32)
    # batch 1 reads 2 of 8 experts per layer; batch 32 reads nearly all 8 (1-(6/8)^32 ~ 1).
    assert many.itl_s > 2.0 * one.itl_s


# --- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("kw,field", [
    (dict(seq_len=8000, output_len=500), "seq_len"),
    (dict(seq_len=-5), "seq_len"),
    (dict(seq_len=128, output_len=0), "output_len"),
    (dict(seq_len=128, draft_model="Llama3_2_1B", draft_acceptance_rate=1.5),
     "draft_acceptance_rate"),
    (dict(seq_len=128, cached_prefix_len=128), "cached_prefix_len"),
    (dict(seq_len=128, weight_precision="fp12"), "weight_precision"),
    (dict(seq_len=128, decode_hardware="A100"), "network_bandwidth"),
])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(ValidationError, match=field):
        S.solve("Llama3_8B", "H100", **kw)


def test_encoder_models_are_not_served():
    with pytest.raises(ValidationError, match="generative"):
        S.solve("BERT_Base", "H100", seq_len=128)


def test_materialized_attention_costs_more_at_long_prompts():
    flash = S.solve("Llama3_8B", "H100", seq_len=8000, output_len=16)
    naive = S.solve("Llama3_8B", "H100", seq_len=8000, output_len=16,
                    attention_kernel="materialized")
    # The matmuls fill the whole 8000 x 8000 score rectangle, causal mask or not: 4 passes x
    # 32 heads x 64.0e6 scores x 2 B = 16.4 GB per layer, 524 GB in all: at least
    # 524e9 / 3.35e12 = 156 ms of traffic. Flash attention's own time is compute over the
    # causal half: 4 * 128 * 32 heads * 32.0e6 pairs * 32 layers = 1.68e13 flop at
    # 989.5e12 * 0.331 = 51 ms. Each attention kernel takes the max of its two roofs, so the
    # extra lies between 156 - 51 ms and the traffic at the calibrated bandwidth (0.866 of
    # spec): 182 ms. (Scores over the causal half alone would give 27-91 ms: excluded.)
    extra = naive.prefill_s - flash.prefill_s
    assert 524e9 / 3.35e12 - 1.68e13 / (989.5e12 * 0.331) < extra < 524e9 / (3.35e12 * 0.86)
    with pytest.raises(ValidationError, match="attention_kernel"):
        S.solve("Llama3_8B", "H100", seq_len=128, attention_kernel="paged")


def test_tp_and_pp_messages_stay_16_bit_under_fp8_compute():
    """Engines quantize GEMM inputs to fp8 but all-reduce and hand off the 16-bit GEMM outputs.

    Llama-3-8B decode, one token per sample, hidden 4096: each of the 2 x 32 = 64 all-reduces
    and each pipeline hand-off carries 4096 elements x 2 B = 8192 B at fp8 (e = 1 B) as at
    fp16; fp32 activations (e = 4 B) send 16384 B."""
    from mlsysim.workloads.transformer import lower_transformer

    spec = mlsysim.Models.get("Llama3_8B")
    for e, want in ((1.0, 8192.0), (2.0, 8192.0), (4.0, 16384.0)):
        t = lower_transformer(spec, phase="decode", seq_len=128, e=e, tp=2, pp=2)
        names = list(t.names)
        ar, pp = names.index("tp_allreduce"), names.index("pp_send")
        assert t.act_bytes_per_sample[ar] == want and t.count[ar] == 64
        assert t.act_bytes_per_sample[pp] == want
    # End to end: the TP communication of a step is the same at fp8 and fp16 compute.
    kw = dict(model="Llama3_70B", hardware="H100", seq_len=128, output_len=16, batch_size=1,
              tp_size=8)
    fp8, fp16 = (ServingModel().solve(precision=p, **kw) for p in ("fp8", "fp16"))
    assert fp8.comm_decode_s == pytest.approx(fp16.comm_decode_s, rel=1e-12)
    assert fp8.comm_decode_s > 0


def test_engine_preset_adds_its_step_overhead_once_per_step():
    """One source of per-step cost: the ServingEngines presets. vLLM's 1.0 ms and SGLang's
    0.3 ms land once in the prefill step (TTFT) and once in every decode step (ITL); the
    static preset (no CUDA graphs, 2.0 ms) equals cuda_graphs=False plus 2.0 ms. A
    speculative round is one step: ITL = (k t_draft + t_verify + o) / accepted tokens."""
    from mlsysim.zoo import ServingEngines

    kw = dict(model="Llama3_8B", hardware="H100", seq_len=1024, output_len=256, batch_size=8)
    base = ServingModel().solve(**kw)
    for key in ("vllm", "sglang"):
        o = ServingEngines.get(key).step_overhead.to("s").magnitude
        r = ServingModel().solve(engine=key, **kw)
        assert r.itl_s - base.itl_s == pytest.approx(o, rel=1e-9)
        assert r.ttft_s - base.ttft_s == pytest.approx(o, rel=1e-9)
        assert r.step_overhead_s == o and r.engine == ServingEngines.get(key).name
    eager = ServingModel().solve(cuda_graphs=False, **kw)
    static = ServingModel().solve(engine="static", **kw)
    assert static.itl_s - eager.itl_s == pytest.approx(2.0e-3, rel=1e-9)
    spec = dict(kw, draft_model="Llama3_2_1B", draft_acceptance_rate=0.8, draft_len=4)
    plain = ServingModel().solve(**spec)
    withe = ServingModel().solve(engine="vllm", **spec)
    assert (withe.itl_s - plain.itl_s) * withe.accepted_per_step == pytest.approx(1e-3,
                                                                                  rel=1e-9)


def test_engine_and_cuda_graphs_are_one_choice_and_names_are_checked():
    kw = dict(model="Llama3_8B", hardware="H100", seq_len=128)
    with pytest.raises(ValidationError) as err:
        ServingModel().solve(engine="vllm", cuda_graphs=False, **kw)
    assert err.value.field == "cuda_graphs"
    with pytest.raises(mlsysim.errors.UnknownNameError) as err:
        ServingModel().solve(engine="vlm", **kw)
    assert "vllm" in err.value.suggestions


def test_fp8_passes_move_16_bit_activations_but_8_bit_weights_and_kv():
    """Llama-3-8B prefill of 512 tokens per sample: a norm reads and writes 4 x 512 x 4096
    elements = 8.39 MB at 2 B whether the pass computes in fp8 or fp16 (GEMMs write 16-bit
    outputs; only GEMM inputs are quantized); the weights (qkv: 4096 x 6144) and the KV
    written (512 tokens x 2 x 8 heads x 128 x 32 layers) halve at fp8."""
    from mlsysim.workloads.transformer import lower_transformer

    spec = mlsysim.Models.get("Llama3_8B")
    t8, t16 = (lower_transformer(spec, phase="prefill", seq_len=512, e=e) for e in (1.0, 2.0))
    n8, n16 = list(t8.names), list(t16.names)
    norm = n8.index("layer.norm")
    assert t8.act_bytes_per_sample[norm] == t16.act_bytes_per_sample[n16.index("layer.norm")] \
        == 4 * 512 * 4096 * 2
    qkv = n8.index("layer.qkv")
    assert t8.weight_bytes[qkv] == 4096 * 6144 * 1.0
    assert t16.weight_bytes[n16.index("layer.qkv")] == 4096 * 6144 * 2.0
    assert t8.state_bytes_per_sample * 2 == pytest.approx(t16.state_bytes_per_sample)


def test_group_wise_quantized_weights_carry_their_scales():
    """int4 in groups of 32 with a 16-bit scale and zero point per group: 0.5 + 4 / 32 =
    0.625 B per weight, 1.25x plain int4; groups of 128: 0.53125 B (1.0625x). Refused for
    16-bit weights (nothing is grouped)."""
    kw = dict(model="Llama2_7B", hardware="A100", seq_len=5, output_len=128,
              precision="bf16", weight_precision="int4")
    plain = ServingModel().solve(**kw)
    for group, ratio in ((32, 1.25), (128, 1.0625)):
        r = ServingModel().solve(weight_group_size=group, **kw)
        assert r.weights_bytes == pytest.approx(plain.weights_bytes * ratio, rel=1e-12)
        assert r.itl_s > plain.itl_s
    with pytest.raises(ValidationError) as err:
        ServingModel().solve(model="Llama2_7B", hardware="A100", seq_len=5,
                             weight_group_size=32)
    assert err.value.field == "weight_group_size"


def test_ttft_band_moves_the_prefill_with_the_compute_spread():
    """A 4096-token prefill of Llama-3-8B, batch 8, on one H100 (fp16, no collectives) is
    GEMM-bound, so its band edges sit near the compute spread's: H100 fp16 (0.805, 1.216) ->
    fast ttft / ttft = 1 / 1.216 = 0.822, slow 1 / 0.805 = 1.243 (within 2 %: the memory-
    and launch-bound rows move by their own spreads). The headline shows the fast edge as
    ttft_low and the slow one as ttft_high."""
    from mlsysim.core.engine import efficiency_for
    r = S.solve("Llama3_8B", "H100", seq_len=4096, output_len=16, batch_size=8)
    assert r.precision == "fp16" and r.comm_prefill_s == 0.0
    spread = efficiency_for(mlsysim.Hardware.H100, "fp16").compute_spread
    assert spread == pytest.approx((0.805, 1.216), abs=1e-3)
    h = r.headline()
    low, high, ttft = (h[k].to("ms").magnitude for k in ("ttft_low", "ttft_high", "ttft"))
    assert low / ttft == pytest.approx(1 / 1.216, rel=0.02)
    assert high / ttft == pytest.approx(1 / 0.805, rel=0.02)
    assert (h["ttft_low"], h["ttft_high"]) == r.band["ttft"]


def test_decode_step_runs_at_the_mid_context_in_whole_tokens():
    """A 128-token prompt and 8 output tokens: the first comes from the prefill, the other 7
    decode steps see 128 ... 134 cached tokens, mean 128 + (8 - 1) // 2 = 131 (a whole
    number of tokens). Llama-3-8B's decode attention over 131 cached + 1 new: 32 heads x
    4 x 128 flop x 132 pairs = 2,162,688 per layer; bytes: 132 tokens of K and V read
    (132 x 2 x 8 x 128 x 2 B = 540,672), the new token's written (4,096), Q and the output
    (2 x 32 x 128 x 2 B = 16,384): 561,152 B."""
    plan = S.prepare("Llama3_8B", "H100", seq_len=128, output_len=8)
    t = plan.step.table
    i = list(t.names).index("layer.attention")
    assert (t.flops_per_sample[i], t.act_bytes_per_sample[i], t.count[i]) == (
        2_162_688.0, 561_152.0, 32.0)


def test_a_bad_batch_on_a_cached_plan_gets_the_same_message():
    """The plan of a config is cached without its batch: a second call with a bad batch is
    checked by the evaluation, in the words of the first."""
    message = ("The 'batch_size' parameter of ServingModel must be a positive whole number. "
               "Got 0 instead.")
    S.solve("Llama3_8B", "H100", seq_len=96, output_len=8, batch_size=1)  # plan now cached
    with pytest.raises(ValidationError) as info:
        S.solve("Llama3_8B", "H100", seq_len=96, output_len=8, batch_size=0)
    assert str(info.value) == message


def test_trace_itl_equation_divides_by_accepted_tokens_only_when_speculating():
    plain = S.solve("Llama3_8B", "H100", seq_len=128, output_len=8)
    spec = S.solve("Llama3_8B", "H100", seq_len=128, output_len=8, draft_model="Llama3_2_1B",
                   draft_acceptance_rate=0.8)
    assert plain.trace()["equations"]["itl"] == "decode_step(mean context) + tp_comm_decode"
    assert spec.trace()["equations"]["itl"] == ("(draft_len * draft_step + verify) / "
                                                "E[tokens per speculative step]")


def test_speculative_explain_prints_the_terms_its_itl_is_made_of():
    """A speculative round is k = 4 draft steps and one verification of k + 1 = 5 tokens,
    yielding E = (1 - 0.8^5) / (1 - 0.8) = 3.3616 tokens; the ITL line shows those terms, and
    (4 x draft + verify) / 3.3616 is the ITL (it used to show the target's plain decode step,
    whose quotient by 3.36 is not the ITL)."""
    r = S.solve("Llama3_8B", "H100", seq_len=1024, output_len=128, draft_model="Llama3_2_1B",
                draft_acceptance_rate=0.8)
    terms = r.trace()["terms"]
    k, draft, verify = terms["draft_len"], terms["draft_step_s"], terms["verify_s"]
    assert k == 4 and r.accepted_per_step == pytest.approx(3.3616, rel=1e-12)
    assert (k * draft + verify) / 3.3616 == pytest.approx(r.itl_s, rel=1e-12)
    line = next(x for x in r.explain().splitlines() if x.startswith("  ITL ="))
    assert line == (f"  ITL = (4 x draft step {draft * 1e3:.4g} ms + verification of 5 tokens "
                    f"{verify * 1e3:.4g} ms, at mean context 1088) / 3.36 tokens per "
                    f"speculative step = {r.itl_s * 1e3:.4g} ms")
    assert verify > r.decode_step_s   # five tokens verified cost more than one decoded


def test_ssm_conv_window_state_follows_the_kv_precision():
    """Mamba-2.8B (64 layers, d_inner 5,120, d_state 16, d_conv 4): per layer the scan state
    5,120 x 16 x 4 B (fp32, always) = 327,680 B plus the conv window 5,120 x 3 x e. At the
    16-bit default (e = 2): 358,400 B x 64 = 22,937,600 B per sequence; with an fp8 KV/state
    precision (e = 1) the window halves: 343,040 B x 64 = 21,954,560 B."""
    from mlsysim.workloads import lower
    mamba = M.get("Mamba_2_8B")
    assert lower(mamba, phase="decode", seq_len=512, e=2.0).state_bytes_per_sample == 22_937_600
    assert lower(mamba, phase="decode", seq_len=512, e=2.0,
                 kv_e=1.0).state_bytes_per_sample == 21_954_560
    fp8 = S.solve("Mamba_2_8B", "H100", seq_len=512, output_len=64, kv_precision="fp8")
    assert fp8.kv_bytes_per_sequence == 21_954_560


_LLAMA3 = mlsysim.Models.get("Llama3_8B")
# A small draft sharing Llama-3's 128256-token vocabulary, with 6 heads (2 KV heads).
_DRAFT6 = _LLAMA3.model_copy(update={"key": "Draft6", "name": "Draft6", "heads": 6,
                                     "kv_heads": 2, "hidden": 768, "head_dim": 128,
                                     "layers": 2, "ffn": 2048})


def test_kv_per_device_is_one_kv_head_each_at_tp_equal_to_kv_heads():
    """Llama-3-8B's KV per token: 32 layers x 2 (K, V) x 8 KV heads x 128 x 2 B = 131072 B.
    Prompt 1024 + output 1024 = 2048 tokens (a whole number of 16-token pages). TP=8 gives
    each device one of the 8 KV heads: 131072 x 2048 / 8 = 33,554,432 B per sequence."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "DGX_H100", seq_len=1024, output_len=1024,
                                     tp_size=8)
    assert r.kv_bytes_per_token == 131072
    assert r.kv_bytes_per_sequence == pytest.approx(131072 * 2048 / 8, rel=1e-12)


def test_a_draft_whose_heads_do_not_split_over_tp_is_refused_word_for_word():
    with pytest.raises(ValidationError) as info:
        mlsysim.ServingModel().solve("Llama3_8B", "DGX_H100", seq_len=1024, tp_size=4,
                                     draft_model=_DRAFT6, draft_acceptance_rate=0.7)
    assert info.value.field == "draft_model"
    assert str(info.value) == ("The 'draft_model' parameter of ServingModel must split over "
                               "tp_size=4: its 6 heads are not divisible.")


def test_trace_terms_carry_the_expected_accepted_tokens_per_step():
    """Acceptance 0.5, draft length 4: E[tokens per step] = (1 - 0.5^5) / (1 - 0.5)
    = 1.9375."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, draft_model=_DRAFT6,
                                     draft_acceptance_rate=0.5, draft_len=4)
    assert r.trace()["terms"]["accepted_per_step"] == pytest.approx(1.9375, rel=1e-12)
