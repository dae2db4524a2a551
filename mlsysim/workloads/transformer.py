"""Lowering of transformer stacks to operators, and their KV-cache accounting.

Per layer (what an optimized inference engine launches): norm (residual add fused), QKV
projection, attention (FlashAttention-style: scores never written to memory), output
projection, norm, up(+gate) projection, activation, down projection. MoE layers replace the
MLP by a router, routed experts (only the experts a batch picks are read) and shared experts.

Attention work per query: causal prefill attends to ``i`` earlier tokens (``min(i, window)``
on sliding-window layers), a decode step to the whole cached context, an encoder to every
token. QK^T and PV cost 2*d flops per (query, key) pair and head each [Vaswani et al. 2017].
MLA (DeepSeek-V3) caches one latent of ``kv_lora_rank + qk_rope_head_dim`` per token and
layer; decode uses the absorbed form (scores over the latent) [DeepSeek-V2 paper, sec. 2.1].
Norms (~8 flop per element) and activations (~5) carry rough vector-op counts: they are
memory-bound, so the count never sets their time. Left out: rotary embedding cost (fused into
QKV), dropout, sampling, the tokenizer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..specs.model import TransformerSpec
from .layered import add_layer_rows
from .operators import OperatorBuilder, OperatorTable, OpKind, Section

__all__ = ["lower_transformer", "lower_segments", "comm_bytes", "Segment", "kv_bytes_per_token",
           "kv_cache_bytes", "kv_bytes_per_token_layer"]


def kv_bytes_per_token_layer(spec: TransformerSpec, kv_bytes: float) -> float:
    """Cache bytes one token adds to one layer: K and V for each KV head (GQA/MQA share
    heads), or MLA's single compressed latent plus the shared RoPE key."""
    if spec.mla:
        return (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim) * kv_bytes
    return 2 * spec.n_kv_heads * spec.d_head * kv_bytes


def kv_bytes_per_token(spec: TransformerSpec, kv_bytes: float = 2.0) -> float:
    """Cache bytes per token over all decoder layers (Llama-3-8B fp16: 2*32*8*128*2 = 131072)."""
    return spec.layers * kv_bytes_per_token_layer(spec, kv_bytes)


def kv_cache_bytes(spec: TransformerSpec, tokens: float, kv_bytes: float = 2.0) -> float:
    """Cache bytes for one sequence of ``tokens``: sliding-window layers keep only the last
    ``sliding_window`` tokens; encoder-decoders add the cross-attention cache."""
    per_layer = kv_bytes_per_token_layer(spec, kv_bytes)
    local = spec.local_layers
    total = per_layer * (local * min(tokens, spec.sliding_window or tokens)
                         + (spec.layers - local) * tokens)
    if spec.kind == "encoder_decoder":
        total += spec.layers * per_layer * (spec.encoder_tokens or 0)
    return total


@dataclass(frozen=True)
class Segment:
    """Part of a pass: ``sequences`` independent sequences, each adding ``queries`` new tokens
    after ``prefix`` cached ones. A decode step of a batch is one segment (queries=1); a
    chunked-prefill step mixes a decode segment with a prefill chunk."""

    queries: int
    prefix: int = 0
    sequences: int = 1
    causal: bool = True

    @property
    def tokens(self) -> int:
        return self.queries * self.sequences

    def pairs(self, window: int | None) -> float:
        """Query-key pairs attended: sum over new tokens j of min(position j, window)."""
        q, p = self.queries, self.prefix
        if not self.causal:
            return float(self.sequences * q * (p + q))
        if window is None or p + q <= window:
            per = q * p + q * (q + 1) / 2
        else:
            a = max(0, window - p)  # new tokens that still see fewer than `window` keys
            per = a * p + a * (a + 1) / 2 + (q - a) * window
        return float(self.sequences * per)

    def score_elements(self) -> float:
        """Query-key scores a materialized kernel computes: the full ``queries x (prefix +
        queries)`` rectangle per sequence. A batched matmul cannot skip the masked half;
        the causal or window mask is applied to the written scores afterwards (Megatron-LM's
        CoreAttention: ``baddbmm`` into a ``[b * np, sq, sk]`` buffer, then the fused
        scale-mask softmax over it, megatron/model/transformer.py)."""
        return float(self.sequences * self.queries * (self.prefix + self.queries))

    def kv_tokens_read(self, window: int | None) -> float:
        """Cached plus new keys read once per sequence (FlashAttention streams them once)."""
        kept = min(self.prefix, window) if window else self.prefix
        return float(self.sequences * (kept + self.queries))


def query_heads_per_kv_head(spec: TransformerSpec, tp: int) -> float:
    """Query heads sharing one KV head on one of ``tp`` devices (KV heads are replicated when
    tp exceeds them): 64 / 8 = 8 for Llama-2 70B at any tp up to 8, 4 at tp 16."""
    return spec.heads / tp / max(spec.n_kv_heads / tp, 1)


def _mlp_rows(b: OperatorBuilder, spec: TransformerSpec, width: float, tokens: float,
              e: float, we: float, count: int, prefix: str,
              moe: tuple[int, int, float] | None = None, experts_total: int = 1,
              active: int = 1) -> None:
    """Up(+gate), activation and down projection for ``width`` (already divided by TP). With
    ``moe`` the rows are routed experts: weights of all ``experts_total`` experts, flops of the
    ``active`` ones."""
    h = spec.hidden
    mats = 2 if spec.ffn_gated else 1
    up_w, down_w = h * width * mats, width * h
    b.add(f"{prefix}.up", OpKind.GEMM, flops=2 * tokens * up_w * active,
          weight_bytes=up_w * we * experts_total,
          act_bytes=tokens * (h + width * mats) * e * active, count=count, moe=moe)
    b.add(f"{prefix}.act", OpKind.ELEMENTWISE, flops=5 * tokens * width * active,
          act_bytes=tokens * width * (mats + 1) * e * active, count=count)
    b.add(f"{prefix}.down", OpKind.GEMM, flops=2 * tokens * down_w * active,
          weight_bytes=down_w * we * experts_total, act_bytes=tokens * (width + h) * e * active,
          count=count, moe=moe)


def _stack_rows(b: OperatorBuilder, spec: TransformerSpec, segments: list[Segment], *,
                e: float, we: float, kv_e: float, layers: int, tp: int = 1,
                cross_tokens: int = 0, prefix: str = "layer", flash: bool = True,
                dropout: bool = False, kv_per_query_head: bool = False) -> None:
    """Rows for ``layers`` layers over the given segments, on one of ``tp`` tensor-parallel
    devices (heads, FFN width, experts' width and the KV heads split; MLA's latent cache is
    shared by all heads and so replicated). ``flash=False`` models materialized attention:
    the score matrix is written by QK^T, read and written by softmax, read by PV (4 passes of
    heads x scores elements, three kernels) instead of staying on chip; its matmuls compute
    the whole query x key rectangle (:meth:`Segment.score_elements`), causal or not.
    ``dropout`` (training with attention dropout on materialized scores, Megatron-LM's
    separate dropout after its fused softmax): one more kernel reads the probabilities and
    writes them dropped and a one-byte mask, 2 e + 1 bytes per score and head; FlashAttention
    fuses it. ``kv_per_query_head``: a generation-phase kernel that runs one thread block per
    (sequence, query head), each reading its KV head's cache (FasterTransformer's and
    TensorRT-LLM's masked MHA before their GQA support): a segment of few new tokens over a
    cache reads the cache once per query head, ``heads / kv_heads`` times (per device) what a
    grouped kernel reads; a prompt's FMHA is unaffected."""
    h, d = spec.hidden, spec.d_head
    heads = spec.heads / tp
    kv_share = 1.0 if spec.mla else max(spec.n_kv_heads / tp, 1) / spec.n_kv_heads
    per_tok_kv = kv_bytes_per_token_layer(spec, kv_e) * kv_share
    o_w = spec.heads * (spec.mla.v_head_dim if spec.mla else d) * h
    qkv_w = (spec.attn_params - o_w) / tp
    o_w /= tp
    tokens = float(sum(s.tokens for s in segments))
    writes = 0.0 if prefix == "encoder" else float(sum(s.tokens for s in segments))
    reread = query_heads_per_kv_head(spec, tp) if kv_per_query_head and not spec.mla else 1.0

    groups = Counter()
    for i in range(layers):
        is_moe = bool(spec.moe) and i >= spec.moe.dense_layers and prefix == "layer"
        groups[(spec.is_local(i) and prefix == "layer", is_moe)] += 1

    for (local, is_moe), n in sorted(groups.items()):
        tag = f"{prefix}{'.local' if local else ''}{'.moe' if is_moe else ''}"
        window = spec.sliding_window if local else None
        attn_flops = 0.0
        for s in segments:
            if spec.mla:
                m = spec.mla
                # Few new tokens over a cache (decode, speculative verification) use the
                # absorbed form: scores on the latent (DeepSeek-V2 paper, sec. 2.1.2); a prompt
                # expands K/V per head. 8 covers draft lengths in use.
                absorbed = s.queries <= 8 and s.prefix > 0
                per_pair = (2 * (m.kv_lora_rank + m.qk_rope_head_dim) + 2 * m.kv_lora_rank
                            if absorbed else
                            2 * (m.qk_nope_head_dim + m.qk_rope_head_dim) + 2 * m.v_head_dim)
            else:
                per_pair = 4 * d
            attn_flops += heads * per_pair * (s.pairs(window) if flash else s.score_elements())
        kv_read = sum(s.kv_tokens_read(window) * (reread if s.queries <= 8 and s.prefix > 0
                                                  else 1.0) for s in segments) * per_tok_kv
        b.add(f"{tag}.norm", OpKind.NORM, flops=8 * tokens * h, act_bytes=4 * tokens * h * e,
              count=n)
        b.add(f"{tag}.qkv", OpKind.GEMM, flops=2 * tokens * qkv_w, weight_bytes=qkv_w * we,
              act_bytes=tokens * (h + qkv_w / h) * e, count=n)
        # Materialized: every score of the rectangle is computed and stored, masked or not.
        grid = 0.0 if flash else heads * sum(s.score_elements() for s in segments)
        scores = 4 * grid * e
        b.add(f"{tag}.attention", OpKind.ATTENTION, flops=attn_flops,
              act_bytes=kv_read + writes * per_tok_kv + 2 * tokens * heads * d * e + scores,
              count=n)
        if not flash:  # the softmax and the second matmul run as kernels of their own
            b.add(f"{tag}.attention_softmax", OpKind.ELEMENTWISE, flops=0.0, count=2 * n)
            if dropout:
                b.add(f"{tag}.attention_dropout", OpKind.ELEMENTWISE, flops=grid,
                      act_bytes=grid * (2 * e + 1), count=n)
        b.add(f"{tag}.o_proj", OpKind.GEMM, flops=2 * tokens * o_w, weight_bytes=o_w * we,
              act_bytes=tokens * (o_w / h + h) * e, count=n)
        if cross_tokens:
            # Cross-attention over cached encoder K/V: Q and O projections plus attention.
            qo = 2 * heads * d * h
            b.add(f"{tag}.cross_qo", OpKind.GEMM, flops=2 * tokens * qo, weight_bytes=qo * we,
                  act_bytes=4 * tokens * h * e, count=n)
            b.add(f"{tag}.cross_attention", OpKind.ATTENTION,
                  flops=4 * d * heads * tokens * cross_tokens,
                  act_bytes=cross_tokens * per_tok_kv + 2 * tokens * heads * d * e, count=n)
        b.add(f"{tag}.norm2", OpKind.NORM, flops=8 * tokens * h, act_bytes=4 * tokens * h * e,
              count=n)
        if is_moe:
            m = spec.moe
            b.add(f"{tag}.router", OpKind.GEMM, flops=2 * tokens * h * m.experts,
                  weight_bytes=h * m.experts * we, act_bytes=tokens * (h + m.experts) * e,
                  count=n)
            _mlp_rows(b, spec, m.expert_ffn / tp, tokens, e, we, n, f"{tag}.experts",
                      moe=(m.experts, m.active, tokens), experts_total=m.experts,
                      active=m.active)
            if m.shared_experts:
                _mlp_rows(b, spec, m.expert_ffn * m.shared_experts / tp, tokens, e, we, n,
                          f"{tag}.shared_expert")
        else:
            _mlp_rows(b, spec, spec.ffn / tp, tokens, e, we, n, f"{tag}.mlp")


def comm_bytes(e: float) -> float:
    """Bytes per activation element of a transformer pass, on the wire and in memory: at least
    2. FP8 and INT8 engines quantize the inputs of GEMMs (a pass that reads the 16-bit tensor
    and writes the 8-bit one), but GEMMs write 16-bit outputs, norms, activations and attention
    run on 16-bit tensors, and the tensor-parallel all-reduce and pipeline hand-offs carry them
    (TensorRT-LLM's all-reduce runs on the fp16/bf16 activation type; vLLM's custom all-reduce
    takes fp16, bf16 and fp32 only): an fp8 pass moves about the activation bytes of an fp16
    one. Weights and the KV cache keep their own precisions."""
    return max(e, 2.0)


def lower_segments(spec: TransformerSpec, segments: list[Segment], *, e: float,
                   kv_e: float | None = None, we: float | None = None, tp: int = 1,
                   pp: int = 1, encoder: bool = False, flash: bool = True,
                   all_logits: bool = False, dropout: bool = False,
                   kv_per_query_head: bool = False) -> OperatorTable:
    """Operators of one decoder pass over ``segments`` (per sample), on one of ``tp``
    tensor-parallel devices of a ``pp``-stage pipeline. ``encoder``: also run the encoder
    (encoder-decoder prefill).

    Communication [Shoeybi et al. 2019, Megatron-LM sec. 3]: tensor parallelism all-reduces the
    layer activations twice per layer (after attention and after the MLP), ``tokens x hidden``
    elements each; a pipeline hands the activations of the pass from stage to stage, ``pp - 1``
    sends within the ``tp x pp`` group. Messages are at least 16-bit (:func:`comm_bytes`).
    ``all_logits``: the
    LM head runs on every token (training), not only each sequence's last (generation).
    ``kv_per_query_head``: the generation kernel reads the cache per query head
    (:func:`_stack_rows`)."""
    kv_e = e if kv_e is None else kv_e
    we = e if we is None else we
    e = ce = comm_bytes(e)      # activations (and their messages) in 16 bits or wider
    b = OperatorBuilder()
    h = spec.hidden
    span = tp * pp
    for layer in spec.prefix_layers:
        add_layer_rows(b, layer, we, runs=1, prefix="prefix")
    enc_tokens = spec.encoder_tokens or 0
    tokens = sum(s.tokens for s in segments)
    if spec.kind == "encoder":
        if spec.vocab > 1:
            b.add("embedding", OpKind.EMBEDDING, flops=0, act_bytes=tokens * h * e)
        b.section = Section.STACK
        _stack_rows(b, spec, segments, e=e, we=we, kv_e=kv_e, layers=spec.layers, tp=tp,
                    prefix="encoder", flash=flash)
        b.collective("encoder.tp_allreduce", "allreduce", message_bytes=tokens * h * ce,
                     group=tp, count=2 * spec.layers)
        b.section = Section.POST
        b.add("final_norm", OpKind.NORM, flops=8 * tokens * h, act_bytes=2 * tokens * h * e)
        state = 0.0
    else:
        if encoder and spec.kind == "encoder_decoder":
            _stack_rows(b, spec, [Segment(enc_tokens, causal=False)], e=e, we=we, kv_e=kv_e,
                        layers=spec.encoder_layers, tp=tp, prefix="encoder", flash=flash)
            b.collective("encoder.tp_allreduce", "allreduce", message_bytes=enc_tokens * h * ce,
                         group=tp, count=2 * spec.encoder_layers)
            cross_kv = 2 * spec.n_kv_heads * spec.d_head * h / tp
            b.add("decoder.cross_kv", OpKind.GEMM, flops=2 * enc_tokens * cross_kv,
                  weight_bytes=cross_kv * we, act_bytes=enc_tokens * h * e * 3,
                  count=spec.layers)
        b.add("embedding", OpKind.EMBEDDING, flops=0, act_bytes=tokens * h * e)
        b.section = Section.STACK
        _stack_rows(b, spec, segments, e=e, we=we, kv_e=kv_e, layers=spec.layers, tp=tp,
                    cross_tokens=enc_tokens, flash=flash, dropout=dropout,
                    kv_per_query_head=kv_per_query_head)
        b.collective("tp_allreduce", "allreduce", message_bytes=tokens * h * ce, group=tp,
                     count=2 * spec.layers)
        b.section = Section.POST
        # Logits for each sequence's last position only: what generation needs (every
        # position in training).
        last = tokens if all_logits else sum(s.sequences for s in segments)
        b.add("final_norm", OpKind.NORM, flops=8 * last * h, act_bytes=2 * last * h * e)
        if spec.lm_head:
            vocab = spec.vocab / tp  # vocabulary-parallel head under TP
            b.add("lm_head", OpKind.GEMM, flops=2 * last * h * vocab,
                  weight_bytes=h * vocab * we, act_bytes=last * (h + vocab) * e)
        kv_share = 1.0 if spec.mla else max(spec.n_kv_heads / tp, 1) / spec.n_kv_heads
        state = sum(kv_cache_bytes(spec, s.prefix + s.queries, kv_e) * s.sequences
                    for s in segments) * kv_share
    # Largest live activation set: a layer's input plus the widest intermediate (the gated MLP
    # or the QKV output) for every token of the pass; attention scores are never materialized.
    width = max((2 if spec.ffn_gated else 1) * max(spec.ffn, spec.moe.expert_ffn * spec.moe.active
                                                   if spec.moe else 0) / tp,
                spec.attn_params / h / tp)
    act_peak = max(tokens, enc_tokens) * (h + width) * e + \
        (spec.vocab / tp * e if spec.lm_head else 0)
    b.section = Section.STACK     # one hand-off per stage boundary
    b.collective("pp_send", "p2p", message_bytes=tokens * h * ce, group=2, count=pp - 1,
                 span=span)
    return b.build(weight_total_bytes=spec.parameter_count * we / tp,
                   state_bytes_per_sample=state, act_peak_bytes_per_sample=act_peak)


def lower_transformer(spec: TransformerSpec, *, phase: str, seq_len: int, e: float,
                      kv_e: float | None = None, we: float | None = None, tp: int = 1,
                      prefix_len: int = 0, pp: int = 1) -> OperatorTable:
    """Operators of one sample's pass. ``phase``: "prefill" (``seq_len`` prompt tokens, of which
    the first ``prefix_len`` are already cached), "decode" (one new token over ``seq_len``
    cached ones) or "forward" (encoders, bidirectional over ``seq_len``)."""
    if spec.kind == "encoder" or phase == "forward":
        segments = [Segment(seq_len, causal=False)]
    elif phase == "decode":
        segments = [Segment(1, seq_len)]
    else:
        segments = [Segment(seq_len - prefix_len, prefix_len)]
    return lower_segments(spec, segments, e=e, kv_e=kv_e, we=we, tp=tp, pp=pp,
                          encoder=phase == "prefill")
