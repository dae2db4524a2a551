"""Model specs: enough structure to count parameters and lower to operators.

Three families share one base (:class:`ModelSpec`):

- ``transformer``: decoder, encoder or encoder-decoder stacks, with GQA/MQA, gated MLPs, MoE,
  MLA (DeepSeek's compressed KV) and sliding-window layers.
- ``layers``: an explicit list of layers (convolutions, linear layers, attention, embeddings),
  grouped in blocks that may run several times per sample (a UNet run for every denoising
  step). CNNs, diffusion UNets, recommenders and tiny models use it.
- ``ssm``: Mamba-style selective state-space stacks (a fixed state instead of a KV cache).

Parameter counts and MACs are *derived* from the structure; ``published_parameters`` is the
figure from the source, kept to check the derivation (tests require 2 % agreement).
Left out: training-only parameters, buffers (BatchNorm running statistics), tokenizers.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from ..units import Q_, Quantity
from .base import Sourced, Spec

__all__ = ["LayerSpec", "BlockSpec", "MoESpec", "MLASpec", "ModelSpec", "TransformerSpec",
           "LayeredSpec", "SSMSpec", "FAMILIES", "ModelGroup"]

ModelGroup = Literal["Vision", "Language", "StateSpace", "Recommendation", "GenerativeVision",
                     "Speech", "Tiny"]
# Bounds on structural sizes: far above any published model, low enough that per-layer work
# stays interactive and no product of sizes overflows a float.
# - layers (a stack's depth): 10,000. The deepest published stacks have ~200 layers; parameter
#   counts and lowering still walk the layers in Python (~1 us a layer), so 10^9 layers would
#   hang for an hour, 10^4 takes milliseconds.
# - widths (hidden, ffn, heads, head and state dims, channels, experts): 10^6, ten times the
#   widest published (Megatron 1T: ffn 102,400).
# - other counts (vocabulary, context, tokens, embedding rows, repeats, runs, spatial sizes,
#   extra parameters): 10^15, so products of a few of them stay far inside float range.
# Integers are strict: ``true`` or ``"32"`` where a count is expected is an error, not 1 or 32.
MAX_LAYERS = 10_000
MAX_WIDTH = 1_000_000
MAX_COUNT = 10**15
PosInt = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH, strict=True)]
NonNegWidth = Annotated[int, Field(ge=0, le=MAX_WIDTH, strict=True)]
Depth = Annotated[int, Field(gt=0, le=MAX_LAYERS, strict=True)]
NonNegDepth = Annotated[int, Field(ge=0, le=MAX_LAYERS, strict=True)]
# Spatial sizes: an int, or one per dimension (1-D audio to 3-D video; 4 leaves room).
Dims = Union[PosInt, Annotated[list[PosInt], Field(min_length=1, max_length=4)]]


def _prod(x: int | list[int]) -> int:
    return x if isinstance(x, int) else math.prod(x)


# ----------------------------------------------------------------------------- layers family
class LayerSpec(Spec):
    """One layer (or ``repeat`` identical copies with separate weights).

    ops and the fields they use:
      conv       cin, cout, k, out (output spatial size), stride=1, groups=1, bias, bn
      fc         cin (in features), cout (out features), tokens=1 (rows per sample), bias
      attention  tokens (queries), kv_tokens (default tokens), heads, head_dim  (no weights:
                 the score and value products; projections are separate fc layers)
      norm       c, out or tokens; affine weights 2*c (group/layer norm) unless affine=false
      pool, add, act, upsample, concat   c, out or tokens (elementwise traffic, no weights)
      embedding  rows, dim, lookups (per sample)
    """

    op: Literal["conv", "fc", "attention", "norm", "pool", "add", "act", "upsample", "concat",
                "embedding"]
    name: str | None = None
    repeat: PosInt = 1
    cin: Width | None = None
    cout: Width | None = None
    c: Width | None = None
    k: Dims | None = None
    out: Dims | None = None
    stride: PosInt = 1
    groups: Width = 1
    bias: bool = False
    bn: bool = False
    affine: bool = True
    tokens: PosInt | None = None
    kv_tokens: PosInt | None = None
    heads: Width | None = None
    head_dim: Width | None = None
    rows: PosInt | None = None
    dim: Width | None = None
    lookups: PosInt | None = None

    @model_validator(mode="after")
    def _fields_for_op(self):
        need = {
            "conv": ("cin", "cout", "k", "out"), "fc": ("cin", "cout"),
            "attention": ("tokens", "heads", "head_dim"), "embedding": ("rows", "dim", "lookups"),
        }.get(self.op, ("c",))
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a '{self.op}' layer needs {', '.join(missing)}")
        if self.op in ("norm", "pool", "add", "act", "upsample", "concat") and \
                self.out is None and self.tokens is None:
            raise ValueError(f"a '{self.op}' layer needs out (spatial size) or tokens")
        if self.op == "conv":
            if self.cin % self.groups or self.cout % self.groups:
                raise ValueError(f"groups (={self.groups}) must divide cin (={self.cin}) "
                                 f"and cout (={self.cout})")
            if not isinstance(self.k, int) and not isinstance(self.out, int) and \
                    len(self.k) != len(self.out):
                raise ValueError("k and out must have the same number of spatial dimensions")
        return self

    # Per copy, per sample ---------------------------------------------------------------
    @property
    def spatial(self) -> int:
        """Output positions per sample: pixels, voxels, frames or tokens. An int ``out`` is a
        square (or, with a 3-D kernel list, a cube); a list gives every dimension."""
        if self.out is None:
            return self.tokens or 1
        if isinstance(self.out, list):
            return _prod(self.out)
        dims = len(self.k) if isinstance(self.k, list) else 2
        return self.out ** dims

    @property
    def kernel_size(self) -> int:
        if self.k is None:
            return 1
        if isinstance(self.k, list):
            return _prod(self.k)
        return self.k ** (len(self.out) if isinstance(self.out, list) else 2)

    @property
    def params(self) -> int:
        if self.op == "conv":
            w = self.kernel_size * (self.cin // self.groups) * self.cout
            return w + (self.cout if self.bias else 0) + (2 * self.cout if self.bn else 0)
        if self.op == "fc":
            return self.cin * self.cout + (self.cout if self.bias else 0)
        if self.op == "norm":
            return 2 * self.c if self.affine else 0
        if self.op == "embedding":
            return self.rows * self.dim
        return 0

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample (elementwise ops: none)."""
        if self.op == "conv":
            return self.kernel_size * (self.cin // self.groups) * self.cout * self.spatial
        if self.op == "fc":
            return self.cin * self.cout * (self.tokens or 1)
        if self.op == "attention":
            kv = self.kv_tokens or self.tokens
            return 2 * self.tokens * kv * self.heads * self.head_dim  # QK^T and PV
        return 0


class BlockSpec(Spec):
    """Layers that share weights across ``runs`` executions per sample (e.g. denoising steps)."""

    name: str
    runs: PosInt = 1
    layers: list[LayerSpec] = Field(min_length=1)


# ------------------------------------------------------------------------- transformer parts
class MoESpec(Spec):
    experts: Width
    active: Width
    expert_ffn: Width
    shared_experts: NonNegWidth = 0
    dense_layers: NonNegDepth = 0          # leading layers with a dense FFN (DeepSeek-V3: 3)

    @model_validator(mode="after")
    def _active_le_experts(self):
        if self.active > self.experts:
            raise ValueError(f"active experts (={self.active}) exceed experts (={self.experts})")
        return self


class MLASpec(Spec):
    """Multi-head latent attention (DeepSeek-V2/V3): K and V are cached as one compressed
    latent of ``kv_lora_rank`` plus a shared RoPE key of ``qk_rope_head_dim`` per token."""

    kv_lora_rank: Width
    qk_rope_head_dim: Width
    qk_nope_head_dim: Width
    v_head_dim: Width
    q_lora_rank: Width | None = None


class ModelSpec(Sourced):
    """Common fields of every model entry."""

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    name: str
    architecture: str                     # shown to users: "CNN", "Transformer", "MoE", ...
    group: ModelGroup
    aliases: list[str] = []
    published_parameters: float = Field(gt=0, allow_inf_nan=False)
    published_macs: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    extra_parameters: NonNegInt = 0       # weights outside the modelled structure (see notes)

    @property
    def parameters(self) -> Quantity:
        """Parameter count derived from the structure."""
        return Q_(float(self.parameter_count), "param")

    @property
    def inference_flops(self) -> Quantity:
        """Forward-pass work for one sample, in MAC (1 MAC = 2 flop); see ``macs_per_sample``."""
        return Q_(float(self.macs_per_sample), "MAC")

    @property
    def parameter_count(self) -> int:  # pragma: no cover - every family defines it
        raise NotImplementedError

    @property
    def macs_per_sample(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key}: {self.name})"

    def __str__(self) -> str:
        return self.name


class TransformerSpec(ModelSpec):
    """Transformer stacks. For ``encoder_decoder``, ``layers`` counts decoder layers and
    ``encoder_layers`` the encoder's; ``encoder_tokens`` fixes the encoder length (Whisper: 1500
    audio frames). A sample is one token for decoders (``macs_per_sample`` at zero context) and
    one ``default_seq_len`` sequence for encoders."""

    family: Literal["transformer"] = "transformer"
    kind: Literal["decoder", "encoder", "encoder_decoder"]
    layers: Depth
    encoder_layers: NonNegDepth = 0
    encoder_tokens: PosInt | None = None
    hidden: Width
    heads: Width
    kv_heads: Width | None = None
    head_dim: Width | None = None
    ffn: Width
    ffn_gated: bool = False
    activation: Literal["gelu", "gelu_tanh", "relu", "silu", "geglu", "swiglu"] = "gelu"
    vocab: PosInt
    max_context: PosInt
    default_seq_len: PosInt | None = None
    tied_embeddings: bool = False
    position: Literal["rope", "learned", "alibi", "none", "sinusoidal"] = "rope"
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    bias: bool = False                    # biases on every linear layer (GPT-2, BERT)
    qkv_bias: bool = False                # biases on Q, K, V only (Qwen2)
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    sliding_window: PosInt | None = None
    # Attention kind per layer, repeating: ["local", "global"] alternates (Gemma-2). With a
    # sliding_window and no pattern, every layer is local (Mistral 7B).
    layer_pattern: list[Literal["local", "global"]] | None = None
    prefix_layers: list[LayerSpec] = []   # e.g. ViT patch embedding, Whisper conv stem
    lm_head: bool = True                  # decoders: output projection to the vocabulary

    @model_validator(mode="after")
    def _consistent(self):
        if self.head_dim is None and self.mla is None and self.hidden % self.heads:
            raise ValueError(f"heads (={self.heads}) must divide hidden (={self.hidden}) "
                             "unless head_dim is given")
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"kv_heads (={kv}) must divide heads (={self.heads})")
        if self.kind == "encoder_decoder" and not self.encoder_layers:
            raise ValueError("an encoder_decoder needs encoder_layers")
        if self.layer_pattern and not self.sliding_window:
            raise ValueError("layer_pattern needs sliding_window")
        if self.moe and self.moe.dense_layers > self.layers:
            raise ValueError("moe.dense_layers exceeds layers")
        return self

    # --- structure helpers -------------------------------------------------------------
    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def seq_len_default(self) -> int:
        return self.default_seq_len or min(self.max_context, 2048)

    @cached_property
    def local_layers(self) -> int:
        """How many layers use the sliding window."""
        return sum(self.is_local(i) for i in range(self.layers))

    def is_local(self, layer: int) -> bool:
        if not self.sliding_window:
            return False
        if not self.layer_pattern:
            return True
        return self.layer_pattern[layer % len(self.layer_pattern)] == "local"

    @property
    def attn_params(self) -> int:
        h, d = self.hidden, self.d_head
        if self.mla:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = (h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * self.heads * qk
                 if m.q_lora_rank else h * self.heads * qk)
            kv = (h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
                  + m.kv_lora_rank * self.heads * (m.qk_nope_head_dim + m.v_head_dim))
            return q + kv + self.heads * m.v_head_dim * h
        q, kv, o = h * self.heads * d, 2 * h * self.n_kv_heads * d, self.heads * d * h
        b = 0
        if self.bias:
            b = self.heads * d + 2 * self.n_kv_heads * d + h
        elif self.qkv_bias:
            b = self.heads * d + 2 * self.n_kv_heads * d
        return q + kv + o + b

    def mlp_params(self, width: int) -> int:
        mats = 3 if self.ffn_gated else 2
        b = (width * (mats - 1) + self.hidden) if self.bias else 0
        return mats * self.hidden * width + b

    @property
    def norm_params(self) -> int:
        return self.hidden * (2 if self.norm == "layernorm" else 1)

    def ffn_params(self, layer: int) -> tuple[int, int]:
        """(total, active) FFN weights of decoder ``layer``."""
        if not self.moe or layer < self.moe.dense_layers:
            p = self.mlp_params(self.ffn)
            return p, p
        m = self.moe
        expert = self.mlp_params(m.expert_ffn)
        router = self.hidden * m.experts
        return (m.experts + m.shared_experts) * expert + router, \
            (m.active + m.shared_experts) * expert + router

    @cached_property
    def parameter_count(self) -> int:
        h = self.hidden
        emb = self.vocab * h
        pos = self.max_context * h if self.position == "learned" else 0
        head = 0 if (self.tied_embeddings or not self.lm_head or self.kind == "encoder") \
            else self.vocab * h
        dec = sum(self.attn_params + self.ffn_params(i)[0] + 2 * self.norm_params
                  for i in range(self.layers))
        if self.kind == "encoder_decoder":
            # Decoder layers also carry cross-attention (same shape as self-attention) + a norm.
            dec += self.layers * (self.attn_params + self.norm_params)
            enc = self.encoder_layers * (self.attn_params + self.mlp_params(self.ffn)
                                         + 2 * self.norm_params) + self.norm_params
            enc_pos = (self.encoder_tokens or 0) * h if self.position != "none" else 0
            dec += enc + enc_pos
        prefix = sum(layer.params * layer.repeat for layer in self.prefix_layers)
        return emb + pos + head + dec + self.norm_params + prefix + self.extra_parameters

    @cached_property
    def active_parameter_count(self) -> int:
        """Weights touched per token (MoE: routed experts only)."""
        if not self.moe:
            return self.parameter_count
        unused = sum(t - a for t, a in (self.ffn_params(i) for i in range(self.layers)))
        return self.parameter_count - unused

    @cached_property
    def macs_per_sample(self) -> float:
        """Decoder: MACs per generated token at zero context (the matmul weights it touches,
        embeddings excluded, LM head included). Encoder: MACs for one ``default_seq_len``
        sequence including attention scores and the prefix layers (ViT's patch embedding)."""
        h = self.hidden
        per_token = sum(self.attn_params + self.ffn_params(i)[1] for i in range(self.layers))
        if self.lm_head and self.kind != "encoder":
            per_token += self.vocab * h
        if self.kind == "encoder":
            s = self.seq_len_default
            attn = 2 * s * s * self.heads * self.d_head * self.layers
            prefix = sum(layer.macs * layer.repeat for layer in self.prefix_layers)
            return float(per_token * s + attn + prefix)
        return float(per_token)


class LayeredSpec(ModelSpec):
    """A model given as explicit layers (CNNs, UNets, recommenders, tiny models).

    Either ``layers`` (one block run once per sample) or ``blocks``."""

    family: Literal["layers"] = "layers"
    input: list[PosInt] | None = None     # per-sample input shape, e.g. [3, 224, 224]
    layers: list[LayerSpec] = []
    blocks: list[BlockSpec] = []

    @model_validator(mode="after")
    def _one_of(self):
        if bool(self.layers) == bool(self.blocks):
            raise ValueError("give exactly one of layers or blocks")
        return self

    @property
    def all_blocks(self) -> list[BlockSpec]:
        return self.blocks or [BlockSpec(name="main", layers=self.layers)]

    @cached_property
    def parameter_count(self) -> int:
        return sum(layer.params * layer.repeat for b in self.all_blocks for layer in b.layers) \
            + self.extra_parameters

    @cached_property
    def macs_per_sample(self) -> float:
        return float(sum(layer.macs * layer.repeat * b.runs for b in self.all_blocks
                         for layer in b.layers))


class SSMSpec(ModelSpec):
    """Mamba (selective SSM) stacks: per layer in_proj, causal conv1d, x_proj, dt_proj, the
    selective scan over a (d_inner x d_state) state, and out_proj."""

    family: Literal["ssm"] = "ssm"
    layers: Depth
    d_model: Width
    d_state: Width = 16
    expand: Width = 2
    d_conv: Width = 4
    dt_rank: Width | None = None
    vocab: PosInt
    max_context: PosInt = 1_000_000
    tied_embeddings: bool = True

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def layer_params(self) -> int:
        d, di, n, r = self.d_model, self.d_inner, self.d_state, self.rank
        return (d * 2 * di + di * self.d_conv + di + di * (r + 2 * n) + r * di + di
                + di * n + di + di * d + d)

    @cached_property
    def parameter_count(self) -> int:
        head = 0 if self.tied_embeddings else self.vocab * self.d_model
        return (self.vocab * self.d_model + head + self.layers * self.layer_params
                + self.d_model + self.extra_parameters)

    @cached_property
    def macs_per_sample(self) -> float:
        """MACs per generated token: every matmul weight plus the LM head."""
        per = self.layer_params - self.d_model
        return float(self.layers * per + self.vocab * self.d_model)


FAMILIES = {"transformer": TransformerSpec, "layers": LayeredSpec, "ssm": SSMSpec}
