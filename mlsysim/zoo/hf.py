"""Import a transformer's structure from a Hugging Face ``config.json``.

>>> from mlsysim.zoo.hf import from_hf_config
>>> spec = from_hf_config("path/to/config.json")            # doctest: +SKIP
>>> mlsysim.Engine.solve(spec, "H100")                      # doctest: +SKIP

The file (or an already-parsed dict) is read locally; nothing is ever fetched from the network.
Supported ``model_type`` values: bert, deepseek_v2, deepseek_v3, gemma, gemma2, gpt2, llama,
mamba, mistral, mixtral, phi3, qwen2, qwen2_moe, qwen3, qwen3_moe, whisper. Anything else raises
:class:`~mlsysim.errors.SpecError` listing them. ``whisper`` gives an encoder-decoder
TransformerSpec and ``mamba`` an :class:`~mlsysim.specs.model.SSMSpec` (tables below). Not
supported: other encoder-decoders such as T5 (no zoo entry to check them against), Mamba-2
(``mamba2``), Phi-3-small (``phi3small``), BERT's relative position embeddings.

How config fields map onto :class:`~mlsysim.specs.model.TransformerSpec`:

==========================  ===============================================================
TransformerSpec             config.json
==========================  ===============================================================
layers                      num_hidden_layers (GPT-2: n_layer)
hidden                      hidden_size (n_embd)
heads                       num_attention_heads (n_head)
kind                        ``encoder`` for bert, else ``decoder``
kv_heads                    num_key_value_heads (default: heads; none for bert and deepseek)
head_dim                    head_dim (default: hidden / heads; qwen3, qwen3_moe: 128)
ffn                         intermediate_size (n_inner; GPT-2 default 4 x n_embd); for MoE
                            families the width of the dense layers
mla                         deepseek_v2/v3: q_lora_rank (null: no query latent), kv_lora_rank,
                            qk_nope_head_dim, qk_rope_head_dim, v_head_dim
vocab                       vocab_size
max_context                 max_position_embeddings (n_positions, n_ctx)
tied_embeddings             tie_word_embeddings (default per family, as in ``transformers``:
                            bert, gemma, gemma2 and gpt2 tie; the others do not)
activation, ffn_gated       hidden_act / hidden_activation / activation_function: the gated
                            families (all but gpt2 and bert: SiLU; gemma, gemma2: tanh
                            GELU) get ``ffn_gated=True`` and the elementwise function as
                            ``activation`` -- the zoo's convention (Gemma-2 is ``gelu_tanh`` +
                            gated, i.e. GeGLU); GPT-2's and BERT's MLPs are not gated
                            (``gelu_new`` is ``gelu_tanh``)
position, norm, bias        RoPE + RMSNorm for all but gpt2 and bert (learned positions,
                            LayerNorm, biases on every linear layer). qwen2, qwen2_moe:
                            ``qkv_bias``. llama, gemma, gemma2, qwen3, qwen3_moe:
                            ``attention_bias`` / ``mlp_bias`` (llama) when set. phi3 (fused
                            qkv_proj and gate_up_proj, the same weights as separate ones) and
                            deepseek: none (deepseek ``attention_bias: true`` is an error)
sliding_window              mistral: every layer (MistralConfig's default 4,096 when the key
                            is absent; ``null`` means none). mixtral: every layer when set.
                            phi3: every layer when set (Phi-3-mini: 2,047).
                            gemma2: ``layer_pattern [local, global]`` (layer 0 is local).
                            qwen2, qwen2_moe, qwen3, qwen3_moe: only with
                            ``use_sliding_window: true``, and then for layers
                            from ``max_window_layers`` on. ``use_sliding_window: false``
                            disables the window for every family. A ``layer_types`` list (newer
                            ``transformers``) is used as written when present.
moe                         mixtral: num_local_experts, num_experts_per_tok, expert_ffn =
                            intermediate_size.
                            qwen2_moe, qwen3_moe: num_experts, num_experts_per_tok,
                            moe_intermediate_size; dense_layers from a leading
                            ``mlp_only_layers`` (``decoder_sparse_step`` must be 1); qwen2_moe's
                            shared expert (shared_expert_intermediate_size, a multiple of
                            moe_intermediate_size) as that many shared experts of the routed
                            width (same weights and MACs).
                            deepseek_v2/v3: n_routed_experts, num_experts_per_tok,
                            n_shared_experts, moe_intermediate_size, dense_layers =
                            first_k_dense_replace (``moe_layer_freq`` must be 1)
==========================  ===============================================================

``whisper`` (WhisperConfig), built as the zoo's ``Whisper_Large_v3``:

==========================  ===============================================================
TransformerSpec             config.json
==========================  ===============================================================
kind                        ``encoder_decoder``; group ``Speech``
layers, encoder_layers      decoder_layers, encoder_layers (separate depths: turbo, distil)
hidden                      d_model
heads                       decoder_attention_heads; must equal encoder_attention_heads
ffn                         decoder_ffn_dim; must equal encoder_ffn_dim (the schema has one
                            layer shape for both stacks; different values are a SpecError)
encoder_tokens              max_source_positions (the encoder's frames and position table)
max_context                 max_target_positions (the decoder's learned positions)
vocab                       vocab_size
prefix_layers               the conv stem: conv1 num_mel_bins -> d_model, kernel 3, over
                            2 x max_source_positions frames, GELU; conv2 kernel 3 stride 2
                            down to max_source_positions, GELU (both with bias)
activation                  activation_function (default gelu), not gated
tied_embeddings             tie_word_embeddings (default true: proj_out is embed_tokens)
position, norm, bias        learned, LayerNorm, ``bias: true``. k_proj has no bias in the
                            checkpoint: the count is (2 x decoder_layers + encoder_layers) x
                            d_model over (large-v3: 122,880, 0.008 %), as in the zoo entry
==========================  ===============================================================

``mamba`` (MambaConfig), built as the zoo's ``Mamba_2_8B``:

==========================  ===============================================================
SSMSpec                     config.json
==========================  ===============================================================
layers                      num_hidden_layers (``n_layer``, which transformers ignores, is
                            not read)
d_model                     hidden_size
d_state, expand, d_conv     state_size, expand (an integer), conv_kernel;
                            intermediate_size, when present, must equal expand x hidden_size
dt_rank                     time_step_rank (default ``"auto"``: ceil(hidden_size / 16), the
                            schema's default, written as none)
vocab                       vocab_size (the checkpoint's, already padded)
tied_embeddings             tie_word_embeddings (default true)
biases                      use_conv_bias must be true (the schema counts the conv1d bias);
                            ``use_bias: true`` puts the in_proj and out_proj biases in
                            extra_parameters. max_context: the schema's default (no limit)
==========================  ===============================================================

Provenance: ``source`` is ``"Hugging Face config.json: <path>"`` (``"...: dict"`` for a dict).
A config.json carries no date, so ``as_of`` is ``"transformers <transformers_version>"`` when
the file records the library version that wrote it, else ``"unspecified"``; pass ``as_of`` to
give a real date. ``published_parameters`` defaults to the derived count (``notes`` says so):
a config.json holds no published figure, so pass one to have it checked against the structure
(within 10 %, :data:`mlsysim.zoo.PUBLISHED_PARAMETERS_TOLERANCE`).

Bad input is a typed error naming the file: DataFileError for an unreadable, non-UTF-8 or
binary file, invalid or too deeply nested JSON and a repeated key; SpecError for a missing,
ill-typed (``true`` as a count) or out-of-bound field (more than 10,000 layers, see
:mod:`mlsysim.specs.model`); ValidationError for a ``config`` that is neither a path nor a dict.

Weights the schema cannot express are put in ``extra_parameters`` so the derived count matches
the checkpoint: Gemma-2's post-attention and post-feedforward RMSNorms (2 x hidden per layer),
the ``o_proj`` bias (llama, gemma, gemma2, qwen3) when only ``attention_bias`` is set, Llama's
MLP biases when only ``mlp_bias`` is, Qwen3's per-head q_norm and k_norm (2 x head_dim per
layer), Qwen2-MoE's shared-expert gate (hidden per MoE layer), DeepSeek-V3's router
score-correction bias (n_routed_experts per MoE layer; its multi-token-prediction layers are not
counted, as transformers does not load them) and BERT's token-type embeddings and pooler
(counted as ``BertModel``, like the zoo's BERT entries). Elementwise details (logit
soft-capping, RoPE scaling, embedding scaling) do not change weights or matmul work and are not
modelled.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..core.datafile import read_text
from ..errors import DataFileError, SpecError, ValidationError
from ..specs.model import MAX_LAYERS, ModelSpec, SSMSpec, TransformerSpec
from . import check_published_parameters

__all__ = ["SUPPORTED_MODEL_TYPES", "from_hf_config"]

# Per family: tie_word_embeddings default, default activation, gated MLP, default sliding window
# (the transformers config class's defaults).
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama":   {"tied": False, "act": "silu", "gated": True, "window": None},
    "mistral": {"tied": False, "act": "silu", "gated": True, "window": 4096},
    "mixtral": {"tied": False, "act": "silu", "gated": True, "window": None},
    "qwen2":   {"tied": False, "act": "silu", "gated": True, "window": None},
    "qwen2_moe": {"tied": False, "act": "silu", "gated": True, "window": None},
    "qwen3":   {"tied": False, "act": "silu", "gated": True, "window": None},
    "qwen3_moe": {"tied": False, "act": "silu", "gated": True, "window": None},
    "phi3":    {"tied": False, "act": "silu", "gated": True, "window": None},
    "gemma":   {"tied": True, "act": "gelu_pytorch_tanh", "gated": True, "window": None},
    "gemma2":  {"tied": True, "act": "gelu_pytorch_tanh", "gated": True, "window": 4096},
    "gpt2":    {"tied": True, "act": "gelu_new", "gated": False, "window": None},
    "deepseek_v2": {"tied": False, "act": "silu", "gated": True, "window": None},
    "deepseek_v3": {"tied": False, "act": "silu", "gated": True, "window": None},
    "bert":    {"tied": True, "act": "gelu", "gated": False, "window": None},
    # Built by _whisper / _mamba (not the decoder path below): WhisperConfig and MambaConfig
    # tie the output projection to the token embedding.
    "whisper": {"tied": True, "act": "gelu", "gated": False, "window": None},
    "mamba":   {"tied": True, "act": "silu", "gated": False, "window": None},
}
_DEEPSEEK = ("deepseek_v2", "deepseek_v3")
# Families whose sliding window is switched on by use_sliding_window and applies from layer
# max_window_layers on (transformers' Qwen2/Qwen2-MoE/Qwen3 configs build layer_types so).
_QWEN_WINDOW = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")
_QWEN3 = ("qwen3", "qwen3_moe")           # q_norm/k_norm per head; attention_bias on q/k/v/o
SUPPORTED_MODEL_TYPES = tuple(sorted(_FAMILIES))

# transformers' ACT2FN names -> the schema's elementwise activation.
_ACTIVATIONS = {
    "silu": "silu", "swish": "silu",
    "gelu": "gelu", "gelu_python": "gelu",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
    "relu": "relu",
}

# Schema field -> accepted config keys, in order, with what the field means (for messages).
_KEYS = {
    "layers": (("num_hidden_layers", "n_layer"), "number of layers"),
    "hidden": (("hidden_size", "n_embd"), "model width"),
    "heads": (("num_attention_heads", "n_head"), "attention heads"),
    "ffn": (("intermediate_size", "n_inner"), "MLP width"),
    "vocab": (("vocab_size",), "vocabulary size"),
    "max_context": (("max_position_embeddings", "n_positions", "n_ctx"), "context length"),
}

# Schema field -> the config key it came from, to translate the schema's validation messages.
_CONFIG_NAME = {f: keys[0] for f, (keys, _) in _KEYS.items()} | {
    "kv_heads": "num_key_value_heads", "head_dim": "head_dim", "sliding_window": "sliding_window",
    "experts": "num_local_experts", "active": "num_experts_per_tok",
}

_MISSING = object()


class ConfigArgumentError(ValidationError, SpecError):
    """A ``config`` that is neither a path nor a dict: a ValidationError naming the argument,
    and a SpecError as this function's other input errors are (callers catch either)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """json object hook: a repeated key is an error (json's default keeps the last one)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(Exception):
    pass


def _load(config: Any) -> tuple[dict, str, Path | None]:
    """(parsed config, description for messages, path or None)."""
    if isinstance(config, dict):
        return config, "Hugging Face config (dict)", None
    if not isinstance(config, (str, os.PathLike)) or isinstance(config, bytes):
        raise ConfigArgumentError(
            "config", f"must be a path to a config.json or a parsed dict, got "
            f"{type(config).__name__} {config!r}", owner="from_hf_config")
    path = Path(config)
    if path.is_dir():
        path = path / "config.json"
    text = read_text(path, "Hugging Face config ")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise DataFileError(f"{path}: not a config.json (nested too deeply to read)") from None
    except _DuplicateKey as exc:
        key = exc.args[0]
        lines = [text.count("\n", 0, m.start()) + 1
                 for m in re.finditer(rf'"{re.escape(json.dumps(key)[1:-1])}"\s*:', text)]
        lines = sorted(set(lines))
        at = f", line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" \
            if lines else ""
        raise DataFileError(f"{path}{at}: duplicate key '{key}' (JSON keeps only the last "
                            "value; give it once)") from None
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a JSON object of config fields, "
                            f"got {type(data).__name__}")
    return data, f"Hugging Face config {path}", path


def _lookup(cfg: dict, keys: tuple[str, ...]) -> tuple[str, Any]:
    """First key present with a non-null value: (key, value), else (keys[0], _MISSING)."""
    for k in keys:
        if cfg.get(k) is not None:
            return k, cfg[k]
    return keys[0], _MISSING


def _pos_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not value.is_integer()) or value <= 0:
        raise SpecError(f"{where}: field '{key}' must be a positive integer, "
                        f"got {value!r} ({type(value).__name__})")
    return int(value)


def _bool(cfg: dict, key: str, default: bool, where: str) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"{where}: field '{key}' must be true or false, got {value!r}")
    return value


def _required(cfg: dict, field: str, where: str, model_type: str) -> int:
    keys, meaning = _KEYS[field]
    key, value = _lookup(cfg, keys)
    if value is _MISSING:
        also = f" (also accepted: {', '.join(keys[1:])})" if len(keys) > 1 else ""
        raise SpecError(f"{where}: missing required field '{keys[0]}' ({meaning}){also} "
                        f"for model_type '{model_type}'")
    return _pos_int(value, key, where)


def _required_key(cfg: dict, key: str, meaning: str, where: str, model_type: str) -> int:
    """A family-specific required count (MoE, MLA fields): positive integer or SpecError."""
    if cfg.get(key) is None:
        raise SpecError(f"{where}: missing required field '{key}' ({meaning}) for model_type "
                        f"'{model_type}'")
    return _pos_int(cfg[key], key, where)


def _count(cfg: dict, key: str, default: int, where: str) -> int:
    """A non-negative count with the transformers config class's default when absent."""
    value = cfg.get(key)
    if value is None:
        return default
    if value == 0 and not isinstance(value, bool):
        return 0
    return _pos_int(value, key, where)


def _key_from(name: str) -> str:
    key = re.sub(r"[^A-Za-z0-9_]+", "_", name.rstrip("/").split("/")[-1])
    key = re.sub(r"_+", "_", key).strip("_")
    if key and key[0].isdigit():
        key = "M_" + key
    return key


def _layer_kinds(cfg: dict, model_type: str, layers: int, where: str) -> list[str] | None:
    """Per-layer attention kinds ("local"/"global"), or None when every layer is global."""
    types = cfg.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers or not all(
                t in ("sliding_attention", "full_attention") for t in types):
            raise SpecError(f"{where}: field 'layer_types' must list 'sliding_attention' or "
                            f"'full_attention' for each of the {layers} layers")
        kinds = ["local" if t == "sliding_attention" else "global" for t in types]
    elif model_type == "gemma2":
        kinds = ["local" if i % 2 == 0 else "global" for i in range(layers)]
    elif model_type in _QWEN_WINDOW:
        # transformers: sliding attention from layer max_window_layers on (when enabled).
        first = cfg.get("max_window_layers", 28)
        first = _pos_int(first, "max_window_layers", where) if first else 0
        kinds = ["local" if i >= first else "global" for i in range(layers)]
    else:
        kinds = ["local"] * layers
    return kinds if "local" in kinds else None


def _period(seq: list) -> int:
    """Length of the shortest prefix p with seq[i] == seq[i % p] for every i: n minus the
    longest proper border (KMP failure function), linear in the layer count where trying every
    period was quadratic."""
    n = len(seq)
    fail = [0] * n
    k = 0
    for i in range(1, n):
        while k and seq[i] != seq[k]:
            k = fail[k - 1]
        if seq[i] == seq[k]:
            k += 1
        fail[i] = k
    return n - fail[-1] if n else 0


def from_hf_config(config: str | Path | dict, *, name: str | None = None,
                   key: str | None = None, published_parameters: float | None = None,
                   as_of: str | None = None) -> TransformerSpec | SSMSpec:
    """Build a :class:`TransformerSpec` (an :class:`SSMSpec` for ``mamba``) from a Hugging
    Face ``config.json``.

    Parameters
    ----------
    config : path to a config.json (or to the folder holding one), or the parsed dict
    name : display name; default ``_name_or_path`` from the config, else the file's stem (its
        folder's name for a file called config.json), else the model_type
    key : identifier for the spec; default derived from ``name`` (last path component,
        non-identifier characters replaced by ``_``)
    published_parameters : the published parameter count to check the structure against
        (a SpecError naming both numbers when they differ by more than
        ``PUBLISHED_PARAMETERS_TOLERANCE``, 10 %); default the derived count
    as_of : date of the information; default ``"transformers <version>"`` from the config's
        ``transformers_version``, else ``"unspecified"``

    Raises :class:`~mlsysim.errors.SpecError` for an unsupported model_type or a missing or
    ill-typed field, naming the field and the file.
    """
    cfg, where, path = _load(config)
    model_type = cfg.get("model_type")
    if model_type is None:
        raise SpecError(f"{where}: missing required field 'model_type'; supported: "
                        f"{', '.join(SUPPORTED_MODEL_TYPES)}")
    if not isinstance(model_type, str) or model_type not in _FAMILIES:
        raise SpecError(f"{where}: model_type {model_type!r} is not supported; supported: "
                        f"{', '.join(SUPPORTED_MODEL_TYPES)}")
    fam = _FAMILIES[model_type]
    notes = [f"Imported from a Hugging Face config.json (model_type {model_type})."]
    if model_type in _OTHER_BUILDERS:
        cls, build, config_names = _OTHER_BUILDERS[model_type]
        fields = build(cfg, where, notes)
        return _build(cls, fields, notes, cfg, path, where, name=name, key=key, as_of=as_of,
                      published_parameters=published_parameters, config_names=config_names,
                      model_type=model_type)

    layers = _required(cfg, "layers", where, model_type)
    if layers > MAX_LAYERS:                   # before any per-layer list is built
        key_used = _lookup(cfg, _KEYS["layers"][0])[0]
        raise SpecError(f"{where}: field '{key_used}' = {layers:,} exceeds the schema's bound "
                        f"of {MAX_LAYERS:,} layers (the deepest published stacks have ~200)")
    hidden = _required(cfg, "hidden", where, model_type)
    heads = _required(cfg, "heads", where, model_type)
    vocab = _required(cfg, "vocab", where, model_type)
    max_context = _required(cfg, "max_context", where, model_type)
    if model_type == "gpt2":
        ffn_key, ffn = _lookup(cfg, _KEYS["ffn"][0])
        ffn = 4 * hidden if ffn is _MISSING else _pos_int(ffn, ffn_key, where)
        kv_heads, head_dim = None, None
    elif model_type == "bert" or model_type in _DEEPSEEK:
        # BERT: plain multi-head attention. DeepSeek: MLA sets the head shapes (config.json's
        # num_key_value_heads equals the heads and names no cached K/V; the latent is cached).
        ffn = _required(cfg, "ffn", where, model_type)
        kv_heads, head_dim = None, None
    else:
        ffn = _required(cfg, "ffn", where, model_type)
        kv = cfg.get("num_key_value_heads")
        kv_heads = heads if kv is None else _pos_int(kv, "num_key_value_heads", where)
        hd = cfg.get("head_dim", 128 if model_type in _QWEN3 else None)   # Qwen3Config: 128
        head_dim = None if hd is None else _pos_int(hd, "head_dim", where)

    # Activation: gemma reads hidden_activation first (transformers' Gemma/Gemma-2 MLP does);
    # Gemma 1 configs say "gelu" but the checkpoints use the tanh approximation.
    act_keys = {"gpt2": ("activation_function",),
                "gemma": ("hidden_activation", "hidden_act"),
                "gemma2": ("hidden_activation", "hidden_act")}.get(model_type, ("hidden_act",))
    act_key, act = _lookup(cfg, act_keys)
    if act is _MISSING:
        act = fam["act"]
    if model_type == "gemma" and act_key == "hidden_act" and act == "gelu":
        act = "gelu_pytorch_tanh"
        notes.append("hidden_act 'gelu' read as gelu_pytorch_tanh, as transformers does for "
                     "Gemma.")
    if not isinstance(act, str) or act not in _ACTIVATIONS:
        raise SpecError(f"{where}: field '{act_key}' = {act!r} is not a supported activation; "
                        f"supported: {', '.join(sorted(_ACTIVATIONS))}")

    learned = model_type in ("gpt2", "bert")
    fields: dict[str, Any] = {
        "kind": "encoder" if model_type == "bert" else "decoder",
        "layers": layers, "hidden": hidden, "heads": heads,
        "kv_heads": kv_heads, "head_dim": head_dim, "ffn": ffn, "ffn_gated": fam["gated"],
        "activation": _ACTIVATIONS[act], "vocab": vocab, "max_context": max_context,
        "tied_embeddings": _bool(cfg, "tie_word_embeddings", fam["tied"], where),
        "position": "learned" if learned else "rope",
        "norm": "layernorm" if learned else "rmsnorm",
    }
    extra = 0

    # Biases.
    if model_type in ("gpt2", "bert"):
        fields["bias"] = True
    elif model_type in ("qwen2", "qwen2_moe"):
        fields["qkv_bias"] = True      # Qwen2Attention: q/k/v with bias, o_proj without
    elif model_type in ("llama", "gemma", "gemma2", *_QWEN3):
        attn_bias = _bool(cfg, "attention_bias", False, where)
        mlp_bias = model_type == "llama" and _bool(cfg, "mlp_bias", False, where)
        if attn_bias and mlp_bias:
            fields["bias"] = True
        elif attn_bias:
            fields["qkv_bias"] = True
            extra += layers * hidden
            notes.append(f"extra_parameters includes the o_proj biases ({layers} x {hidden}).")
        elif mlp_bias:
            extra += layers * (2 * ffn + hidden)
            notes.append(f"extra_parameters includes the MLP biases ({layers} x (2 x {ffn} + "
                         f"{hidden})).")
    elif model_type in _DEEPSEEK and _bool(cfg, "attention_bias", False, where):
        raise SpecError(f"{where}: field 'attention_bias' = true is not supported for "
                        f"model_type '{model_type}' (the schema's MLA has no biases)")
    # phi3: Phi3Attention's fused qkv_proj and o_proj and the MLP have no biases.

    # Sliding-window attention.
    # Only these families' attention honours the key (transformers ignores it elsewhere).
    window = cfg.get("sliding_window", fam["window"]) \
        if model_type in ("mistral", "mixtral", "gemma2", "phi3", *_QWEN_WINDOW) else None
    if model_type in _QWEN_WINDOW and not _bool(cfg, "use_sliding_window", False, where):
        window = None
    if cfg.get("use_sliding_window") is False:
        window = None
    if window is not None:
        window = _pos_int(window, "sliding_window", where)
        kinds = _layer_kinds(cfg, model_type, layers, where)
        if kinds is None:
            pass                       # the window applies to no layer
        elif all(k == "local" for k in kinds):
            fields["sliding_window"] = window
        else:
            # The shortest repeating prefix; a list of every layer's kind if nothing repeats.
            period = _period(kinds)
            fields["sliding_window"] = window
            fields["layer_pattern"] = kinds[:period]

    # Mixture of experts.
    architecture = "Transformer"
    if model_type == "mixtral":
        fields["moe"] = {
            "experts": _required_key(cfg, "num_local_experts", "experts per layer", where,
                                     model_type),
            "active": _required_key(cfg, "num_experts_per_tok", "experts per token", where,
                                    model_type),
            "expert_ffn": ffn,
        }
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        # Qwen2MoeSparseMoeBlock: routed experts of moe_intermediate_size plus one shared expert
        # of shared_expert_intermediate_size behind a sigmoid gate (Linear(hidden, 1)); Qwen3's
        # block has routed experts only, whatever the config says of a shared one. The
        # schema counts shared experts of the routed width, so the shared expert is written as
        # shared_expert_intermediate_size / moe_intermediate_size of them (same weights and
        # MACs: a gated MLP's weights are linear in its width).
        expert_ffn = _required_key(cfg, "moe_intermediate_size", "routed expert MLP width",
                                   where, model_type)
        shared = _count(cfg, "shared_expert_intermediate_size", 0, where) \
            if model_type == "qwen2_moe" else 0
        if shared % expert_ffn:
            raise SpecError(f"{where}: field 'shared_expert_intermediate_size' (={shared}) must "
                            f"be a multiple of 'moe_intermediate_size' (={expert_ffn}) for "
                            f"model_type '{model_type}' (the schema's shared experts have the "
                            f"routed width)")
        step = _count(cfg, "decoder_sparse_step", 1, where)
        dense = cfg.get("mlp_only_layers") or []
        if not isinstance(dense, list) or dense != list(range(len(dense))) or step != 1:
            raise SpecError(f"{where}: fields 'decoder_sparse_step' (={step}) and "
                            f"'mlp_only_layers' (={dense!r}) are not supported for model_type "
                            f"'{model_type}' unless the dense layers are the leading ones (step 1, "
                            f"mlp_only_layers 0..k-1)")
        fields["moe"] = {
            "experts": _required_key(cfg, "num_experts", "routed experts per layer", where,
                                     model_type),
            "active": _required_key(cfg, "num_experts_per_tok", "experts per token", where,
                                    model_type),
            "expert_ffn": expert_ffn, "shared_experts": shared // expert_ffn,
            "dense_layers": len(dense),
        }
        if shared:
            moe_layers = layers - len(dense)
            extra += moe_layers * hidden
            notes.append(f"The shared expert (width {shared}) is counted as "
                         f"{shared // expert_ffn} shared experts of width {expert_ffn}; "
                         f"extra_parameters includes its gate ({moe_layers} x {hidden}).")
    elif model_type in _DEEPSEEK:
        # DeepseekV2/V3MoE: n_routed_experts routed experts and n_shared_experts shared ones,
        # all of moe_intermediate_size, in every layer from first_k_dense_replace on; the first
        # layers are dense with intermediate_size (arXiv:2405.04434 Sec. 2.2, 2412.19437 Sec. 2.1).
        freq = _count(cfg, "moe_layer_freq", 1, where)
        if freq != 1:
            raise SpecError(f"{where}: field 'moe_layer_freq' = {freq} is not supported for "
                            f"model_type '{model_type}' (the schema's MoE layers follow the "
                            f"dense ones, i.e. moe_layer_freq 1)")
        experts = _required_key(cfg, "n_routed_experts", "routed experts per layer", where,
                                model_type)
        if "n_shared_experts" not in cfg:
            raise SpecError(f"{where}: missing required field 'n_shared_experts' (shared "
                            f"experts per layer; null for none) for model_type '{model_type}'")
        dense_layers = _count(cfg, "first_k_dense_replace", 0, where)
        fields["moe"] = {
            "experts": experts,
            "active": _required_key(cfg, "num_experts_per_tok", "experts per token", where,
                                    model_type),
            "expert_ffn": _required_key(cfg, "moe_intermediate_size", "expert MLP width",
                                        where, model_type),
            "shared_experts": _count(cfg, "n_shared_experts", 0, where),
            "dense_layers": dense_layers,
        }
        # Multi-head latent attention (arXiv:2405.04434 Sec. 2.1). q_lora_rank null: queries
        # are projected directly (DeepSeek-V2-Lite).
        if "q_lora_rank" not in cfg:
            raise SpecError(f"{where}: missing required field 'q_lora_rank' (query latent "
                            f"rank; null for none) for model_type '{model_type}'")
        q_rank = cfg["q_lora_rank"]
        fields["mla"] = {
            "q_lora_rank": None if q_rank is None else _pos_int(q_rank, "q_lora_rank", where),
            **{k: _required_key(cfg, k, meaning, where, model_type) for k, meaning in (
                ("kv_lora_rank", "key/value latent rank"),
                ("qk_rope_head_dim", "RoPE part of each query/key head"),
                ("qk_nope_head_dim", "non-RoPE part of each query/key head"),
                ("v_head_dim", "value head width"))},
        }
        if model_type == "deepseek_v3" and dense_layers < layers:
            # DeepseekV3TopkRouter's e_score_correction_bias (auxiliary-loss-free balancing).
            n = (layers - dense_layers) * experts
            extra += n
            notes.append(f"extra_parameters includes the routers' score-correction biases "
                         f"({layers - dense_layers} x {experts} = {n:,}).")
        if cfg.get("num_nextn_predict_layers"):
            notes.append("The multi-token-prediction layers (num_nextn_predict_layers) are "
                         "not counted; transformers does not load them.")
    if "moe" in fields:
        architecture = "MoE Transformer"

    if model_type == "gemma2":
        extra += layers * 2 * hidden
        notes.append(f"extra_parameters includes Gemma-2's post-attention and post-feedforward "
                     f"RMSNorms, which the schema's two norms per layer leave out: "
                     f"{layers} x 2 x {hidden} = {layers * 2 * hidden:,}. Logit soft-capping "
                     "is elementwise and not modelled.")
    elif model_type in _QWEN3:
        d = head_dim or hidden // heads
        extra += layers * 2 * d
        notes.append(f"extra_parameters includes Qwen3's per-head q_norm and k_norm RMSNorms "
                     f"({layers} x 2 x {d} = {layers * 2 * d:,}).")
    elif model_type == "bert":
        pos_type = cfg.get("position_embedding_type", "absolute")
        if pos_type != "absolute":
            raise SpecError(f"{where}: field 'position_embedding_type' = {pos_type!r} is not "
                            f"supported for model_type 'bert' (only 'absolute')")
        if _bool(cfg, "is_decoder", False, where) or \
                _bool(cfg, "add_cross_attention", False, where):
            raise SpecError(f"{where}: fields 'is_decoder' / 'add_cross_attention' are not "
                            f"supported for model_type 'bert' (encoder only)")
        types = _count(cfg, "type_vocab_size", 2, where)          # BertConfig's default: 2
        extra += types * hidden + hidden * hidden + hidden
        notes.append(f"Counted as BertModel (encoder + pooler, no task head), as the zoo's BERT "
                     f"entries are. extra_parameters = token-type embeddings ({types} x "
                     f"{hidden}) + pooler ({hidden} x {hidden} + {hidden}). BERT is post-LN "
                     f"with no final LayerNorm; the schema's final norm stands for the "
                     f"embedding LayerNorm (same size).")
    fields["extra_parameters"] = extra
    fields.update(architecture=architecture, group="Language")
    return _build(TransformerSpec, fields, notes, cfg, path, where, name=name, key=key,
                  as_of=as_of, published_parameters=published_parameters,
                  config_names=_CONFIG_NAME, model_type=model_type)


def _build(cls: type[ModelSpec], fields: dict[str, Any], notes: list[str], cfg: dict,
           path: Path | None, where: str, *, name: str | None, key: str | None,
           as_of: str | None, published_parameters: float | None,
           config_names: dict[str, str], model_type: str) -> ModelSpec:
    """Name, provenance and published count; build ``cls`` and translate its messages."""
    if name is None:
        n = cfg.get("_name_or_path")
        if isinstance(n, str) and n.strip():
            name = n.strip()
        elif path is not None:
            name = path.parent.name if path.stem == "config" and path.parent.name else path.stem
        else:
            name = model_type
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{where}: name must be a non-empty string, got {name!r}")
    if key is None:
        key = _key_from(name) or _key_from(model_type)
    if as_of is None:
        version = cfg.get("transformers_version")
        as_of = f"transformers {version}" if isinstance(version, str) and version.strip() \
            else "unspecified"
    fields.update(
        key=key, name=name,
        source=f"Hugging Face config.json: {path if path is not None else 'dict'}",
        as_of=as_of,
    )

    derived = published_parameters is None
    try:
        if derived:
            probe = cls(**fields, published_parameters=1.0, notes=" ".join(notes))
            published_parameters = float(probe.parameter_count)
            notes.append("published_parameters not given; set to the derived count.")
        elif isinstance(published_parameters, bool) or \
                not isinstance(published_parameters, (int, float)) or \
                not math.isfinite(published_parameters) or published_parameters <= 0:
            raise SpecError(f"published_parameters must be a positive number, got "
                            f"{published_parameters!r}")
        spec = cls(**fields, published_parameters=float(published_parameters),
                   notes=" ".join(notes))
    except SpecError as exc:
        msg = str(exc)
        named = [f"{f} <- {k}" for f, k in config_names.items() if re.search(rf"\b{f}\b", msg)]
        hint = f"\n  (schema field <- config key: {'; '.join(named)})" if named else ""
        raise type(exc)(f"{where}: {msg}{hint}") from None
    if not derived:
        check_published_parameters(spec, where)
    return spec


def _layer_count(cfg: dict, key: str, meaning: str, where: str, model_type: str) -> int:
    """A required stack depth, bounded by the schema's MAX_LAYERS."""
    n = _required_key(cfg, key, meaning, where, model_type)
    if n > MAX_LAYERS:
        raise SpecError(f"{where}: field '{key}' = {n:,} exceeds the schema's bound of "
                        f"{MAX_LAYERS:,} layers (the deepest published stacks have ~200)")
    return n


def _whisper(cfg: dict, where: str, notes: list[str]) -> dict[str, Any]:
    """WhisperConfig -> an encoder_decoder TransformerSpec, built as the zoo's Whisper entry.

    WhisperModel (transformers ``modeling_whisper``): the encoder is conv1 (num_mel_bins ->
    d_model, kernel 3) + GELU, conv2 (kernel 3, stride 2) + GELU over 2 x max_source_positions
    mel frames, a max_source_positions x d_model position table, encoder_layers pre-LN layers and
    a final LayerNorm; the decoder has token and learned position embeddings
    (max_target_positions), decoder_layers layers with self- and cross-attention, a final
    LayerNorm, and proj_out tied to the token embedding."""
    mt = "whisper"
    req = {k: _required_key(cfg, k, meaning, where, mt) for k, meaning in (
        ("d_model", "model width"),
        ("encoder_attention_heads", "encoder attention heads"),
        ("decoder_attention_heads", "decoder attention heads"),
        ("encoder_ffn_dim", "encoder MLP width"),
        ("decoder_ffn_dim", "decoder MLP width"),
        ("vocab_size", "vocabulary size"),
        ("max_source_positions", "encoder length in frames after the conv stem"),
        ("max_target_positions", "decoder context length"),
        ("num_mel_bins", "mel channels into the conv stem"))}
    decoder_layers = _layer_count(cfg, "decoder_layers", "decoder layers", where, mt)
    encoder_layers = _layer_count(cfg, "encoder_layers", "encoder layers", where, mt)
    # The schema has one attention shape and one MLP width for both stacks.
    for enc, dec in (("encoder_attention_heads", "decoder_attention_heads"),
                     ("encoder_ffn_dim", "decoder_ffn_dim")):
        if req[enc] != req[dec]:
            raise SpecError(f"{where}: fields '{enc}' (={req[enc]}) and '{dec}' (={req[dec]}) "
                            f"differ; not supported for model_type 'whisper' (the schema's "
                            f"encoder and decoder layers share one shape)")
    act = cfg.get("activation_function", "gelu")                  # WhisperConfig's default
    if not isinstance(act, str) or act not in _ACTIVATIONS:
        raise SpecError(f"{where}: field 'activation_function' = {act!r} is not a supported "
                        f"activation; supported: {', '.join(sorted(_ACTIVATIONS))}")
    d, frames = req["d_model"], req["max_source_positions"]
    mels = req["num_mel_bins"]
    # Conv stem: conv1 keeps the 2 x max_source_positions frames (padding 1), conv2's stride 2
    # halves them to max_source_positions (WhisperEncoder checks the input has that length).
    prefix = [
        {"op": "conv", "name": "encoder.conv1", "cin": mels, "cout": d, "k": [3],
         "out": [2 * frames], "bias": True},
        {"op": "act", "name": "encoder.conv1.gelu", "c": d, "out": [2 * frames]},
        {"op": "conv", "name": "encoder.conv2", "cin": d, "cout": d, "k": [3], "stride": 2,
         "out": [frames], "bias": True},
        {"op": "act", "name": "encoder.conv2.gelu", "c": d, "out": [frames]},
    ]
    attn_blocks = 2 * decoder_layers + encoder_layers
    notes.append(
        f"Encoder: conv stem ({mels} mel bins x {2 * frames:,} frames -> {frames:,}), a "
        f"{frames:,} x {d:,} position table (encoder_tokens), {encoder_layers} layers. Decoder: "
        f"{decoder_layers} layers with self- and cross-attention, learned positions "
        f"({req['max_target_positions']}). WhisperAttention's k_proj has no bias; the schema's "
        f"`bias: true` counts one, {attn_blocks} attention blocks x {d:,} = "
        f"{attn_blocks * d:,} weights more than the checkpoint (as the zoo entry does).")
    return {
        "kind": "encoder_decoder", "layers": decoder_layers, "encoder_layers": encoder_layers,
        "encoder_tokens": frames, "hidden": d, "heads": req["decoder_attention_heads"],
        "ffn": req["decoder_ffn_dim"], "ffn_gated": False, "activation": _ACTIVATIONS[act],
        "vocab": req["vocab_size"], "max_context": req["max_target_positions"],
        "tied_embeddings": _bool(cfg, "tie_word_embeddings", True, where),
        "position": "learned", "norm": "layernorm", "bias": True, "prefix_layers": prefix,
        "extra_parameters": 0, "architecture": "Transformer", "group": "Speech",
    }


def _mamba(cfg: dict, where: str, notes: list[str]) -> dict[str, Any]:
    """MambaConfig -> SSMSpec, built as the zoo's Mamba entry.

    MambaMixer (transformers ``modeling_mamba``) per layer: in_proj (hidden -> 2 x
    intermediate, bias iff use_bias), conv1d (depthwise, conv_kernel, bias iff use_conv_bias),
    x_proj (intermediate -> time_step_rank + 2 x state_size), dt_proj (with bias), A_log
    (intermediate x state_size), D, out_proj (bias iff use_bias); one RMSNorm per layer, a final
    one, and lm_head tied to the embedding (vocab_size is already the padded row count)."""
    mt = "mamba"
    layers = _layer_count(cfg, "num_hidden_layers", "number of layers", where, mt)
    req = {k: _required_key(cfg, k, meaning, where, mt) for k, meaning in (
        ("hidden_size", "model width"), ("state_size", "SSM state per channel"),
        ("expand", "inner width / model width"), ("conv_kernel", "causal conv1d width"),
        ("vocab_size", "vocabulary size"))}
    d, expand = req["hidden_size"], req["expand"]
    inner = cfg.get("intermediate_size")
    if inner is not None and _pos_int(inner, "intermediate_size", where) != expand * d:
        raise SpecError(f"{where}: field 'intermediate_size' (={inner}) must equal 'expand' x "
                        f"'hidden_size' (={expand} x {d} = {expand * d}) for model_type 'mamba' "
                        f"(the schema's inner width)")
    rank = cfg.get("time_step_rank", "auto")                      # MambaConfig's default
    auto = math.ceil(d / 16)
    if rank != "auto":
        rank = _pos_int(rank, "time_step_rank", where)
    if not _bool(cfg, "use_conv_bias", True, where):
        raise SpecError(f"{where}: field 'use_conv_bias' = false is not supported for "
                        f"model_type 'mamba' (the schema counts the conv1d bias)")
    extra = 0
    if _bool(cfg, "use_bias", False, where):
        extra = layers * (2 * expand * d + d)
        notes.append(f"extra_parameters includes the in_proj and out_proj biases ({layers} x "
                     f"(2 x {expand * d:,} + {d:,})).")
    notes.append("No context limit in the config; max_context is the schema default.")
    return {
        "layers": layers, "d_model": d, "d_state": req["state_size"], "expand": expand,
        "d_conv": req["conv_kernel"],
        # "auto" (and its value written out) is the schema's default, ceil(hidden / 16).
        "dt_rank": None if rank in ("auto", auto) else rank,
        "vocab": req["vocab_size"],
        "tied_embeddings": _bool(cfg, "tie_word_embeddings", True, where),
        "extra_parameters": extra, "architecture": "SSM (Mamba)", "group": "StateSpace",
    }


# model_type -> (spec class, builder, schema field -> config key for the schema's messages).
_OTHER_BUILDERS = {
    "whisper": (TransformerSpec, _whisper, {
        "layers": "decoder_layers", "encoder_layers": "encoder_layers", "hidden": "d_model",
        "heads": "decoder_attention_heads", "ffn": "decoder_ffn_dim", "vocab": "vocab_size",
        "max_context": "max_target_positions", "encoder_tokens": "max_source_positions"}),
    "mamba": (SSMSpec, _mamba, {
        "layers": "num_hidden_layers", "d_model": "hidden_size", "d_state": "state_size",
        "expand": "expand", "d_conv": "conv_kernel", "dt_rank": "time_step_rank",
        "vocab": "vocab_size"}),
}
