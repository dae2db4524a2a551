"""Import a decoder's structure from a Hugging Face ``config.json``.

>>> from mlsysim.zoo.hf import from_hf_config
>>> spec = from_hf_config("path/to/config.json")            # doctest: +SKIP
>>> mlsysim.Engine.solve(spec, "H100")                      # doctest: +SKIP

The file (or an already-parsed dict) is read locally; nothing is ever fetched from the network.
Supported ``model_type`` values: gemma, gemma2, gpt2, llama, mistral, mixtral, qwen2. Anything else
raises :class:`~mlsysim.errors.SpecError` listing them.

How config fields map onto :class:`~mlsysim.specs.model.TransformerSpec`:

==========================  ===============================================================
TransformerSpec             config.json
==========================  ===============================================================
layers                      num_hidden_layers (GPT-2: n_layer)
hidden                      hidden_size (n_embd)
heads                       num_attention_heads (n_head)
kv_heads                    num_key_value_heads (default: heads)
head_dim                    head_dim (default: hidden / heads)
ffn                         intermediate_size (n_inner; GPT-2 default 4 x n_embd)
vocab                       vocab_size
max_context                 max_position_embeddings (n_positions, n_ctx)
tied_embeddings             tie_word_embeddings (default per family, as in ``transformers``:
                            gemma, gemma2 and gpt2 tie; llama, mistral, mixtral, qwen2 do not)
activation, ffn_gated       hidden_act / hidden_activation / activation_function: the gated
                            families (llama, mistral, mixtral, qwen2: SiLU; gemma, gemma2: tanh
                            GELU) get ``ffn_gated=True`` and the elementwise function as
                            ``activation`` -- the zoo's convention (Gemma-2 is ``gelu_tanh`` +
                            gated, i.e. GeGLU); GPT-2's MLP is not gated (``gelu_new`` is
                            ``gelu_tanh``)
position, norm, bias        RoPE + RMSNorm for all but GPT-2 (learned positions, LayerNorm,
                            biases on every linear layer). qwen2: ``qkv_bias``. llama, gemma,
                            gemma2: ``attention_bias`` / ``mlp_bias`` when set
sliding_window              mistral: every layer (MistralConfig's default 4,096 when the key
                            is absent; ``null`` means none). mixtral: every layer when set.
                            gemma2: ``layer_pattern [local, global]`` (layer 0 is local).
                            qwen2: only with ``use_sliding_window: true``, and then for layers
                            from ``max_window_layers`` on. ``use_sliding_window: false``
                            disables the window for every family. A ``layer_types`` list (newer
                            ``transformers``) is used as written when present.
moe                         mixtral: num_local_experts, num_experts_per_tok, expert_ffn =
                            intermediate_size
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
the ``o_proj`` bias (llama, gemma, gemma2) when only ``attention_bias`` is set and Llama's MLP
biases when only ``mlp_bias`` is. Elementwise details (logit soft-capping, RoPE scaling,
embedding scaling) do not change weights or matmul work and are not modelled.
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
from ..specs.model import MAX_LAYERS, TransformerSpec
from . import check_published_parameters

__all__ = ["SUPPORTED_MODEL_TYPES", "from_hf_config"]

# Per family: tie_word_embeddings default, default activation, gated MLP, default sliding window
# (the transformers config class's defaults).
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama":   {"tied": False, "act": "silu", "gated": True, "window": None},
    "mistral": {"tied": False, "act": "silu", "gated": True, "window": 4096},
    "mixtral": {"tied": False, "act": "silu", "gated": True, "window": None},
    "qwen2":   {"tied": False, "act": "silu", "gated": True, "window": None},
    "gemma":   {"tied": True, "act": "gelu_pytorch_tanh", "gated": True, "window": None},
    "gemma2":  {"tied": True, "act": "gelu_pytorch_tanh", "gated": True, "window": 4096},
    "gpt2":    {"tied": True, "act": "gelu_new", "gated": False, "window": None},
}
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
    elif model_type == "qwen2":
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
                   as_of: str | None = None) -> TransformerSpec:
    """Build a :class:`TransformerSpec` from a Hugging Face ``config.json``.

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
    else:
        ffn = _required(cfg, "ffn", where, model_type)
        kv = cfg.get("num_key_value_heads")
        kv_heads = heads if kv is None else _pos_int(kv, "num_key_value_heads", where)
        hd = cfg.get("head_dim")
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

    fields: dict[str, Any] = {
        "kind": "decoder", "layers": layers, "hidden": hidden, "heads": heads,
        "kv_heads": kv_heads, "head_dim": head_dim, "ffn": ffn, "ffn_gated": fam["gated"],
        "activation": _ACTIVATIONS[act], "vocab": vocab, "max_context": max_context,
        "tied_embeddings": _bool(cfg, "tie_word_embeddings", fam["tied"], where),
        "position": "learned" if model_type == "gpt2" else "rope",
        "norm": "layernorm" if model_type == "gpt2" else "rmsnorm",
    }
    extra = 0

    # Biases.
    if model_type == "gpt2":
        fields["bias"] = True
    elif model_type == "qwen2":
        fields["qkv_bias"] = True      # Qwen2Attention: q/k/v with bias, o_proj without
    elif model_type in ("llama", "gemma", "gemma2"):
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

    # Sliding-window attention.
    # Only these families' attention honours the key (transformers ignores it elsewhere).
    window = cfg.get("sliding_window", fam["window"]) \
        if model_type in ("mistral", "mixtral", "qwen2", "gemma2") else None
    if model_type == "qwen2" and not _bool(cfg, "use_sliding_window", False, where):
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
        moe = {}
        for field, k in (("experts", "num_local_experts"), ("active", "num_experts_per_tok")):
            if cfg.get(k) is None:
                raise SpecError(f"{where}: missing required field '{k}' for model_type "
                                f"'mixtral'")
            moe[field] = _pos_int(cfg[k], k, where)
        moe["expert_ffn"] = ffn
        fields["moe"] = moe
        architecture = "MoE Transformer"

    if model_type == "gemma2":
        extra += layers * 2 * hidden
        notes.append(f"extra_parameters includes Gemma-2's post-attention and post-feedforward "
                     f"RMSNorms, which the schema's two norms per layer leave out: "
                     f"{layers} x 2 x {hidden} = {layers * 2 * hidden:,}. Logit soft-capping "
                     "is elementwise and not modelled.")
    fields["extra_parameters"] = extra

    # Identity and provenance.
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
        key=key, name=name, architecture=architecture, group="Language",
        source=f"Hugging Face config.json: {path if path is not None else 'dict'}",
        as_of=as_of,
    )

    derived = published_parameters is None
    try:
        if derived:
            probe = TransformerSpec(**fields, published_parameters=1.0,
                                    notes=" ".join(notes))
            published_parameters = float(probe.parameter_count)
            notes.append("published_parameters not given; set to the derived count.")
        elif isinstance(published_parameters, bool) or \
                not isinstance(published_parameters, (int, float)) or \
                not math.isfinite(published_parameters) or published_parameters <= 0:
            raise SpecError(f"published_parameters must be a positive number, got "
                            f"{published_parameters!r}")
        spec = TransformerSpec(**fields, published_parameters=float(published_parameters),
                               notes=" ".join(notes))
    except SpecError as exc:
        msg = str(exc)
        named = [f"{f} <- {k}" for f, k in _CONFIG_NAME.items() if re.search(rf"\b{f}\b", msg)]
        hint = f"\n  (schema field <- config key: {'; '.join(named)})" if named else ""
        raise type(exc)(f"{where}: {msg}{hint}") from None
    if not derived:
        check_published_parameters(spec, where)
    return spec
