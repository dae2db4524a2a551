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
Left out: rotary embedding cost (fused into QKV), dropout, sampling, the tokenizer.
"""

from __future__ import annotations

from collections import Counter

from ..specs.model import TransformerSpec
from .layered import add_layer_rows
from .operators import OperatorBuilder, OperatorTable, OpKind

__all__ = ["lower_transformer", "kv_bytes_per_token", "kv_cache_bytes", "kv_bytes_per_token_layer"]


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
    total = 0.0
    for i in range(spec.layers):
        kept = min(tokens, spec.sliding_window) if spec.is_local(i) else tokens
        total += per_layer * kept
    if spec.kind == "encoder_decoder":
        total += spec.layers * per_layer * (spec.encoder_tokens or 0)
    return total


def _causal_pairs(tokens: int, window: int | None) -> float:
    """Query-key pairs of causal attention over ``tokens``: sum over i of min(i, window)."""
    if window is None or window >= tokens:
        return tokens * (tokens + 1) / 2
    return window * tokens - window * (window - 1) / 2


def _mlp_rows(b: OperatorBuilder, spec: TransformerSpec, width: int, tokens: int, e: float,
              count: int, prefix: str, moe: tuple[int, int, float] | None = None,
              experts_total: int = 1, active: int = 1) -> None:
    """Up(+gate), activation and down projection. With ``moe`` the rows are routed experts:
    weights are those of all ``experts_total`` experts, flops those of the ``active`` ones."""
    h = spec.hidden
    up_w = h * width * (2 if spec.ffn_gated else 1)
    down_w = width * h
    b.add(f"{prefix}.up", OpKind.GEMM, flops=2 * tokens * up_w * active,
          weight_bytes=up_w * e * experts_total,
          act_bytes=tokens * (h + width * (2 if spec.ffn_gated else 1)) * e * active,
          count=count, moe=moe)
    b.add(f"{prefix}.act", OpKind.ELEMENTWISE, flops=5 * tokens * width * active,
          act_bytes=tokens * width * (3 if spec.ffn_gated else 2) * e * active, count=count)
    b.add(f"{prefix}.down", OpKind.GEMM, flops=2 * tokens * down_w * active,
          weight_bytes=down_w * e * experts_total, act_bytes=tokens * (width + h) * e * active,
          count=count, moe=moe)


def _stack_rows(b: OperatorBuilder, spec: TransformerSpec, *, tokens: int, context: int,
                mode: str, e: float, kv_e: float, layers: int, cross_tokens: int = 0,
                prefix: str = "layer") -> None:
    """Rows for ``layers`` transformer layers processing ``tokens`` new tokens per sample.

    mode: "causal" (prefill), "decode" (attend to ``context`` cached tokens) or "full"
    (bidirectional encoder)."""
    h, heads, d = spec.hidden, spec.heads, spec.d_head
    per_tok_kv = kv_bytes_per_token_layer(spec, kv_e)
    attn_w = spec.attn_params
    o_w = heads * (spec.mla.v_head_dim if spec.mla else d) * h
    qkv_w = attn_w - o_w

    groups = Counter()
    for i in range(layers):
        is_moe = bool(spec.moe) and i >= spec.moe.dense_layers and prefix == "layer"
        groups[(spec.is_local(i) and prefix == "layer", is_moe)] += 1

    for (local, is_moe), n in sorted(groups.items()):
        tag = f"{prefix}{'.local' if local else ''}{'.moe' if is_moe else ''}"
        window = spec.sliding_window if local else None
        if mode == "decode":
            ctx = min(context, window) if window else context
            pairs = tokens * ctx
            kv_read = ctx * per_tok_kv
        elif mode == "causal":
            pairs = _causal_pairs(tokens, window)
            kv_read = tokens * per_tok_kv
        else:
            pairs = tokens * tokens
            kv_read = tokens * per_tok_kv
        if spec.mla:
            m = spec.mla
            per_pair = (2 * (m.kv_lora_rank + m.qk_rope_head_dim) + 2 * m.kv_lora_rank
                        if mode == "decode" else
                        2 * (m.qk_nope_head_dim + m.qk_rope_head_dim) + 2 * m.v_head_dim)
        else:
            per_pair = 4 * d
        kv_write = tokens * per_tok_kv if mode != "full" else 0.0
        b.add(f"{tag}.norm", OpKind.NORM, flops=8 * tokens * h, act_bytes=4 * tokens * h * e,
              count=n)
        b.add(f"{tag}.qkv", OpKind.GEMM, flops=2 * tokens * qkv_w, weight_bytes=qkv_w * e,
              act_bytes=tokens * (h + qkv_w / h) * e, count=n)
        b.add(f"{tag}.attention", OpKind.ATTENTION, flops=heads * per_pair * pairs,
              act_bytes=kv_read + kv_write + 2 * tokens * heads * d * e, count=n)
        b.add(f"{tag}.o_proj", OpKind.GEMM, flops=2 * tokens * o_w, weight_bytes=o_w * e,
              act_bytes=tokens * (o_w / h + h) * e, count=n)
        if cross_tokens:
            # Cross-attention over cached encoder K/V: Q and O projections plus attention.
            qo = 2 * heads * d * h
            b.add(f"{tag}.cross_qo", OpKind.GEMM, flops=2 * tokens * qo, weight_bytes=qo * e,
                  act_bytes=4 * tokens * h * e, count=n)
            b.add(f"{tag}.cross_attention", OpKind.ATTENTION,
                  flops=4 * d * heads * tokens * cross_tokens,
                  act_bytes=cross_tokens * per_tok_kv + 2 * tokens * heads * d * e, count=n)
        b.add(f"{tag}.norm2", OpKind.NORM, flops=8 * tokens * h, act_bytes=4 * tokens * h * e,
              count=n)
        if is_moe:
            m = spec.moe
            b.add(f"{tag}.router", OpKind.GEMM, flops=2 * tokens * h * m.experts,
                  weight_bytes=h * m.experts * e, act_bytes=tokens * (h + m.experts) * e,
                  count=n)
            _mlp_rows(b, spec, m.expert_ffn, tokens, e, n, f"{tag}.experts",
                      moe=(m.experts, m.active, float(tokens)), experts_total=m.experts,
                      active=m.active)
            if m.shared_experts:
                _mlp_rows(b, spec, m.expert_ffn * m.shared_experts, tokens, e, n,
                          f"{tag}.shared_expert")
        else:
            _mlp_rows(b, spec, spec.ffn, tokens, e, n, f"{tag}.mlp")


def lower_transformer(spec: TransformerSpec, *, phase: str, seq_len: int, e: float,
                      kv_e: float | None = None) -> OperatorTable:
    """Operators of one sample's pass. ``phase``: "prefill" (``seq_len`` prompt tokens),
    "decode" (one new token over ``seq_len`` cached ones) or "forward" (encoders)."""
    kv_e = e if kv_e is None else kv_e
    b = OperatorBuilder()
    h = spec.hidden
    for layer in spec.prefix_layers:
        add_layer_rows(b, layer, e, runs=1, prefix="prefix")

    enc_tokens = spec.encoder_tokens or 0
    if spec.kind == "encoder":
        tokens = seq_len
        if spec.vocab > 1:
            b.add("embedding", OpKind.EMBEDDING, flops=0, act_bytes=tokens * h * e)
        _stack_rows(b, spec, tokens=tokens, context=tokens, mode="full", e=e, kv_e=kv_e,
                    layers=spec.layers)
        b.add("final_norm", OpKind.NORM, flops=8 * tokens * h, act_bytes=2 * tokens * h * e)
        state = 0.0
    else:
        if spec.kind == "encoder_decoder" and phase == "prefill":
            _stack_rows(b, spec, tokens=enc_tokens, context=enc_tokens, mode="full", e=e,
                        kv_e=kv_e, layers=spec.encoder_layers, prefix="encoder")
            cross_kv = 2 * spec.n_kv_heads * spec.d_head * h
            b.add("decoder.cross_kv", OpKind.GEMM, flops=2 * enc_tokens * cross_kv,
                  weight_bytes=cross_kv * e, act_bytes=enc_tokens * h * e * 3,
                  count=spec.layers)
        tokens = 1 if phase == "decode" else seq_len
        b.add("embedding", OpKind.EMBEDDING, flops=0, act_bytes=tokens * h * e)
        _stack_rows(b, spec, tokens=tokens, context=seq_len,
                    mode="decode" if phase == "decode" else "causal", e=e, kv_e=kv_e,
                    layers=spec.layers, cross_tokens=enc_tokens)
        b.add("final_norm", OpKind.NORM, flops=8 * h, act_bytes=2 * h * e)
        if spec.lm_head:
            # Logits for the last position only: what generation needs (prefill and decode).
            b.add("lm_head", OpKind.GEMM, flops=2 * h * spec.vocab,
                  weight_bytes=h * spec.vocab * e, act_bytes=(h + spec.vocab) * e)
        state = kv_cache_bytes(spec, seq_len + (1 if phase == "decode" else 0), kv_e)
    # Largest live activation set: a layer's input plus the widest intermediate (the gated MLP
    # or the QKV output) for every token of the pass; attention scores are never materialized.
    width = max((2 if spec.ffn_gated else 1) * max(spec.ffn, spec.moe.expert_ffn * spec.moe.active
                                                   if spec.moe else 0),
                spec.attn_params // h)
    act_peak = max(tokens, enc_tokens) * (h + width) * e + (spec.vocab * e if spec.lm_head else 0)
    return b.build(weight_total_bytes=spec.parameter_count * e, state_bytes_per_sample=state,
                   act_peak_bytes_per_sample=act_peak)
