"""Lowering of Mamba (selective state-space) stacks to operators.

Per layer: norm, in_proj (d_model -> 2*d_inner), causal depthwise conv1d, x_proj
(d_inner -> dt_rank + 2*d_state), dt_proj, the selective scan, out_proj [Gu & Dao 2023, Alg. 2].
The recurrent state is fixed per sequence: d_inner*d_state (SSM, kept in fp32) plus
d_inner*(d_conv-1) (conv window) per layer, whatever the context length; there is no KV cache.
The scan costs about 9 flop per (token, channel, state) element (discretize, update, read out).
"""

from __future__ import annotations

from ..specs.model import SSMSpec
from .operators import OperatorBuilder, OperatorTable, OpKind

__all__ = ["lower_ssm", "ssm_state_bytes"]

_STATE_BYTES = 4.0  # the scan state is kept in fp32 by the reference kernels


def ssm_state_bytes(spec: SSMSpec, e: float) -> float:
    """Recurrent state of one sequence over all layers (the conv window at ``e`` bytes)."""
    per_layer = spec.d_inner * spec.d_state * _STATE_BYTES + spec.d_inner * (spec.d_conv - 1) * e
    return spec.layers * per_layer


def lower_ssm(spec: SSMSpec, *, phase: str, seq_len: int, e: float, we: float | None = None,
              kv_e: float | None = None, pp: int = 1) -> OperatorTable:
    """``e``: activation bytes; ``we``: weight bytes; ``kv_e``: conv-window state bytes;
    ``pp``: pipeline stages, handing ``tokens x d_model`` activations on ``pp - 1`` times."""
    we = e if we is None else we
    kv_e = e if kv_e is None else kv_e
    b = OperatorBuilder()
    d, di, n, r, L = spec.d_model, spec.d_inner, spec.d_state, spec.rank, spec.layers
    t = 1 if phase == "decode" else seq_len
    state = ssm_state_bytes(spec, kv_e)
    b.add("embedding", OpKind.EMBEDDING, flops=0, act_bytes=t * d * e)
    b.add("layer.norm", OpKind.NORM, flops=8 * t * d, act_bytes=4 * t * d * e, count=L)
    for name, cin, cout in (("in_proj", d, 2 * di), ("x_proj", di, r + 2 * n),
                            ("dt_proj", r, di), ("out_proj", di, d)):
        b.add(f"layer.{name}", OpKind.GEMM, flops=2 * t * cin * cout,
              weight_bytes=cin * cout * we, act_bytes=t * (cin + cout) * e, count=L)
    b.add("layer.conv1d", OpKind.ELEMENTWISE, flops=2 * t * di * spec.d_conv,
          weight_bytes=di * (spec.d_conv + 1) * we, act_bytes=2 * t * di * e, count=L)
    # The scan reads x, dt, B, C and writes y per token; the state is read and written once per
    # pass (per token in decode, where it round-trips memory every step).
    b.add("layer.scan", OpKind.SCAN, flops=9 * t * di * n,
          weight_bytes=di * n * _STATE_BYTES,
          act_bytes=t * (3 * di + 2 * n) * e + 2 * state / L, count=L)
    b.add("final_norm", OpKind.NORM, flops=8 * d, act_bytes=2 * d * e)
    b.add("lm_head", OpKind.GEMM, flops=2 * d * spec.vocab, weight_bytes=d * spec.vocab * we,
          act_bytes=(d + spec.vocab) * e)
    b.collective("pp_send", "p2p", message_bytes=t * d * e, group=2, count=pp - 1, span=pp)
    return b.build(weight_total_bytes=spec.parameter_count * we, state_bytes_per_sample=state,
                   act_peak_bytes_per_sample=t * (d + 2 * di) * e + spec.vocab * e)
