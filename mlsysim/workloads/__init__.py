"""Workloads: each model family lowers to a table of operators (see ``operators``).

``lower`` is the one entry point; it caches tables per (model, phase, length, precisions),
since a table serves every batch size.
"""

from __future__ import annotations

from ..cache import ContentCache
from ..errors import ValidationError
from ..specs.model import LayeredSpec, ModelSpec, SSMSpec, TransformerSpec
from .imported import ImportedWorkload
from .layered import lower_layered
from .operators import OperatorTable, OpKind
from .ssm import lower_ssm, ssm_state_bytes
from .transformer import kv_bytes_per_token, kv_cache_bytes, lower_transformer

__all__ = ["lower", "default_phase", "OperatorTable", "OpKind", "kv_bytes_per_token",
           "kv_cache_bytes", "ssm_state_bytes", "PHASES", "ImportedWorkload"]

PHASES = ("prefill", "decode", "forward")
_CACHE = ContentCache("lowering")


def default_phase(model: ModelSpec) -> str:
    """Decoders (and SSMs) default to one decode step, the regime that dominates generation;
    everything else to one forward pass."""
    if isinstance(model, SSMSpec) or (isinstance(model, TransformerSpec)
                                      and model.kind != "encoder"):
        return "decode"
    return "forward"


def allowed_phases(model: ModelSpec) -> tuple[str, ...]:
    if isinstance(model, ImportedWorkload):
        return model.phases
    if isinstance(model, LayeredSpec) or (isinstance(model, TransformerSpec)
                                          and model.kind == "encoder"):
        return ("forward",)
    return ("prefill", "decode")


def lower(model: ModelSpec, *, phase: str, seq_len: int, e: float,
          kv_e: float | None = None, we: float | None = None, tp: int = 1,
          prefix_len: int = 0, pp: int = 1, eager: bool = False) -> OperatorTable:
    """Lower one pass of ``model`` (per sample). ``e``/``kv_e``/``we``: bytes per activation,
    KV-cache and weight element; ``tp``: tensor-parallel degree (transformers);
    ``prefix_len``: prompt tokens already cached (prefill); ``pp``: pipeline stages (their
    activation hand-offs become collective rows); ``eager``: nothing fused, as an eager
    framework runs a layer-list model or an imported graph (``layered``). An
    :class:`ImportedWorkload` builds its own table (one forward pass; ``seq_len`` feeds its
    symbolic sequence axis, if any)."""
    key = ("lower", model, phase, seq_len, e, kv_e, we, tp, prefix_len, pp, eager)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    if phase not in allowed_phases(model):
        raise ValidationError("phase", f"must be one of {', '.join(allowed_phases(model))} for "
                              f"{model.name} ({model.architecture}). Got {phase!r} instead.")
    if eager and (isinstance(model, (TransformerSpec, SSMSpec)) or (
            isinstance(model, ImportedWorkload) and model.unfused_build is None)):
        raise ValidationError("eager", f"applies to layer-list models (CNNs, UNets) and "
                              f"imported graphs; {model.name} ({model.architecture}) is "
                              "lowered as an inference engine runs it (fused attention and "
                              "norms). Leave eager=False.")
    if isinstance(model, ImportedWorkload):
        if tp != 1 or pp != 1 or (we is not None and we != e):
            raise ValidationError("model", f"{model.name} is an imported graph: it lowers to "
                                  "one device at one precision (tp=1, pp=1, weights at the "
                                  "compute precision).")
        table = model.table(seq_len=seq_len, e=e, eager=eager)
    elif isinstance(model, TransformerSpec):
        table = lower_transformer(model, phase=phase, seq_len=seq_len, e=e, kv_e=kv_e, we=we,
                                  tp=tp, pp=pp, prefix_len=prefix_len)
    elif isinstance(model, SSMSpec):
        table = lower_ssm(model, phase=phase, seq_len=seq_len, e=e, we=we, kv_e=kv_e, pp=pp)
    else:
        table = lower_layered(model, e=e, eager=eager)
    return _CACHE.put(key, table.with_source(key))
