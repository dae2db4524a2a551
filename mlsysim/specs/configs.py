"""Solver configs: the third input of ``solve(workload, system, config)``.

A config is a frozen, validated pydantic model holding everything about a run that is neither
the workload nor the system: batch, lengths, precisions, parallelism, engine options. Field
rules live here once, written with the same checks (:mod:`mlsysim.core.validate`) the keyword
path always used, so ``ServingModel().solve(m, h, seq_len=1024, tp_size=4)`` and
``ServingModel().solve(m, h, ServingConfig(seq_len=1024, tp_size=4))`` accept and refuse the
same values with the same message ("The 'tp_size' parameter of ServingModel must be a
positive whole number. Got 0 instead."). Rules that need the workload or the system (TP
divides the heads, lengths within the context, TP within the scale-up domain or on a
scale-out fabric) are checked by the solver when the three inputs meet.

Configs hash by content, so equal configs share one cached plan; their JSON Schema
(``ServingConfig.model_json_schema()``) is what declarative scenario files are checked against.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pydantic
from pydantic import BeforeValidator, field_validator, model_validator

from ..errors import ValidationError
from .base import Spec

__all__ = ["Config", "ServingConfig", "ContinuousBatchingConfig", "DistributedConfig",
           "serving_options"]


def _check(fn_name: str, **kw):
    """A before-validator running one of core.validate's checks (raising our error)."""

    fn = None

    def run(value: Any, info: pydantic.ValidationInfo) -> Any:
        nonlocal fn
        if value is None:
            return value
        if fn is None:      # bound on first use: core imports specs
            from ..core import validate as check
            fn = getattr(check, fn_name)
        return fn(info.field_name, value, "", **kw)

    return BeforeValidator(run)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


PosInt = Annotated[int, _check("positive_int")]
NonNegInt = Annotated[int, _check("non_negative_int")]
Fraction = Annotated[float, _check("fraction")]
def _numpy_bool(value: Any) -> Any:
    """A numpy boolean (a sweep's column) is a bool; "yes", 1 and None stay errors."""
    return bool(value) if isinstance(value, np.bool_) else value


Flag = Annotated[bool, pydantic.Field(strict=True), BeforeValidator(_numpy_bool)]
PrecisionName = Annotated[Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4",
                                  "int8", "int4"], BeforeValidator(_lower)]


class Config(Spec):
    """Base of solver configs. Errors are :class:`~mlsysim.errors.ValidationError` naming the
    field and the solver (``owner``), in the package's one message template."""

    # Defaults are valid by construction, so they are not validated again: a solve's keyword
    # path builds a config per new call, and this saved ~7 us of a new training solve.
    model_config = pydantic.ConfigDict(validate_default=False)
    owner: ClassVar[str] = "solver"

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise _our_error(exc, self.owner) from None

    def __hash__(self) -> int:
        return self._content_hash

    def __eq__(self, other) -> bool:
        return self is other or (type(other) is type(self)
                                 and self._content_hash == other._content_hash
                                 and self.__dict__ == other.__dict__)

    @cached_property
    def _content_hash(self) -> int:
        try:                            # every field hashable: the common case, one call
            return hash(tuple(self.__dict__.items()))
        except TypeError:
            return hash(tuple((k, _hashable(v)) for k, v in self.__dict__.items()))

    def options(self) -> dict[str, Any]:
        """The fields as keyword arguments of the solver's ``solve``."""
        return {k: getattr(self, k) for k in type(self).model_fields}


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _our_error(exc: pydantic.ValidationError, owner: str) -> ValidationError:
    errors = exc.errors()
    ours = [e for e in errors if isinstance((e.get("ctx") or {}).get("error"), ValidationError)]
    err = (ours or errors)[0]
    field = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("literal[",
                                                                          "function-")))
    field = field or "(config)"
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ValidationError):        # one of core.validate's checks
        text = str(cause).split(" parameter ", 1)[-1]
        if text.startswith("of "):
            text = text.split(" ", 2)[-1]
        return ValidationError(cause.field, text, owner=owner)
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(exc.title and _fields(exc.title) or [])
        return ValidationError(field, f"is not an option; choose from: {allowed}.", owner=owner)
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be"):]
    got = err.get("input")
    if err["type"] == "bool_type":
        msg = "must be True or False"
    elif got is None and err["type"] in ("int_type", "float_type", "string_type"):
        kind = {"int_type": "a whole number", "float_type": "a number",
                "string_type": "a name"}[err["type"]]
        msg = f"is required ({kind})"
    return ValidationError(field, f"{msg}." + (f" Got {got!r} instead." if field != "(config)"
                                               else ""), owner=owner)


def _fields(title: str) -> list[str]:
    cls = {c.__name__: c for c in (ServingConfig, ContinuousBatchingConfig,
                                   DistributedConfig)}.get(title)
    return list(cls.model_fields) if cls else []


class ServingConfig(Config):
    """One serving run of ``batch_size`` requests (see :class:`~mlsysim.ServingModel`)."""

    owner: ClassVar[str] = "ServingModel"

    seq_len: PosInt
    batch_size: Literal["max"] | PosInt = 1
    output_len: PosInt = 128
    precision: str | None = None         # checked against the device: it must publish a peak
    weight_precision: PrecisionName | None = None
    kv_precision: PrecisionName | None = None
    tp_size: PosInt = 1
    pp_size: PosInt = 1
    decode_hardware: Any = None          # a chip, node or fleet (spec or zoo name)
    network_bandwidth: Any = None        # '50 GB/s' or a quantity: prefill -> decode KV link
    cached_prefix_len: NonNegInt = 0
    draft_model: Any = None              # a model spec or zoo name
    draft_acceptance_rate: Fraction | None = None
    draft_len: PosInt = 4
    memory_utilization: Fraction | None = None   # None: the engine preset's rule, else 0.9
    page_size: PosInt = 16
    cuda_graphs: Flag | None = None      # None: True, or the engine preset's
    sparsity: Literal["2:4"] | None = None
    attention_kernel: Literal["flash", "materialized"] = "flash"
    decode_attention: Literal["grouped", "per_head"] = "grouped"  # per_head: the generation
    # kernel reads each KV head's cache once per query head (masked MHA without GQA support)
    engine: Any = None                   # a ServingEngines preset (zoo key or spec)
    quantized_kernels: Any = None        # a QuantizedKernels generation (zoo key or spec)
    weight_group_size: PosInt | None = None  # group-wise quantized weights: one 16-bit scale
                                             # and zero point per group of this many

    @model_validator(mode="after")
    def _cross_fields(self):
        if self.weight_group_size is not None and (self.weight_precision is None or
                                                   self.weight_precision not in
                                                   ("int8", "int4", "fp4", "fp6")):
            raise ValidationError("weight_group_size", "applies to integer or 4-bit weights "
                                  "(weight_precision int8, int4, fp4 or fp6). Got "
                                  f"weight_precision={self.weight_precision!r} instead.",
                                  owner=self.owner)
        if self.engine is not None and self.cuda_graphs is not None:
            raise ValidationError("cuda_graphs", "is set by the engine preset (its "
                                  "cuda_graphs field); give engine or cuda_graphs, not both.",
                                  owner=self.owner)
        if self.cached_prefix_len >= self.seq_len:
            raise ValidationError("cached_prefix_len", f"must be below seq_len "
                                  f"(={self.seq_len}). Got {self.cached_prefix_len} instead.",
                                  owner=self.owner)
        if self.draft_model is not None and self.draft_acceptance_rate is None:
            raise ValidationError("draft_acceptance_rate", "is needed with draft_model (a "
                                  "number between 0 and 1).", owner=self.owner)
        if self.decode_hardware is not None and self.network_bandwidth is None:
            raise ValidationError("network_bandwidth", "is needed with decode_hardware (e.g. "
                                  "'50 GB/s') to move the prompt's KV cache.", owner=self.owner)
        if self.network_bandwidth is not None:
            if self.decode_hardware is None:
                raise ValidationError("network_bandwidth", "applies only with decode_hardware "
                                      "(the prefill-to-decode KV link of disaggregated "
                                      "serving); give decode_hardware or leave it out.",
                                      owner=self.owner)
            from ..core import validate as check
            check.bandwidth("network_bandwidth", self.network_bandwidth, self.owner)
        if self.memory_utilization == 0:
            raise ValidationError("memory_utilization", "must be above 0 (the fraction of "
                                  "device memory the engine may use). Got 0 instead.",
                                  owner=self.owner)
        return self


def serving_options(serving, owner: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """Keyword options for ServingModel from a solver's ``serving`` argument (a mapping of
    ServingConfig fields, or a ServingConfig), refusing the fields the solver sets itself."""
    if serving is None:
        opts: dict[str, Any] = {}
    elif isinstance(serving, ServingConfig):      # the solver's own fields are replaced
        opts = {k: v for k, v in serving.options().items()
                if k not in fixed and v != ServingConfig.model_fields[k].default}
    elif isinstance(serving, dict):
        opts = dict(serving)
    else:
        raise ValidationError("serving", "must be a ServingConfig or a dict of its fields. "
                              f"Got {type(serving).__name__} instead.", owner=owner)
    unknown = sorted(set(opts) - set(ServingConfig.model_fields))
    if unknown:
        raise ValidationError(unknown[0], "is not a ServingModel option; choose from: "
                              f"{', '.join(ServingConfig.model_fields)}.", owner=owner)
    clash = sorted(set(opts) & set(fixed))
    if clash:
        raise ValidationError(clash[0], f"is set by {owner} itself ({fixed[clash[0]]}); leave "
                              "it out of serving.", owner=owner)
    return opts


class ContinuousBatchingConfig(Config):
    """A stream of requests through a serving engine (see ContinuousBatchingModel)."""

    owner: ClassVar[str] = "ContinuousBatchingModel"

    prompt_len: PosInt
    output_len: PosInt
    arrival_rate_qps: Annotated[float, _check("positive_float")] | None = None
    engine: Any = "vllm"                 # a ServingEngines preset (name or spec)
    precision: str | None = None
    kv_precision: PrecisionName | None = None
    weight_precision: PrecisionName | None = None
    tp_size: PosInt = 1
    page_size: PosInt = 16
    memory_utilization: Fraction | None = None   # None: the engine preset's rule


class DistributedConfig(Config):
    """One training step of a data-, tensor-, pipeline-, context- and expert-parallel run (see
    :class:`~mlsysim.DistributedModel`). ``batch_size`` is the global batch in sequences;
    ``dp_size`` is derived from the fleet when omitted."""

    owner: ClassVar[str] = "DistributedModel"

    batch_size: PosInt
    seq_len: PosInt | None = None
    precision: str | None = None         # compute precision; default bf16 where published
    tp_size: PosInt = 1
    pp_size: PosInt = 1
    cp_size: PosInt = 1
    ep_size: PosInt = 1
    dp_size: PosInt | None = None
    microbatch_size: PosInt | None = None
    microbatch_count: PosInt | None = None
    v_stages: PosInt = 1
    sequence_parallel: Flag | None = None    # default: on whenever tp_size > 1
    zero_stage: Literal[0, 1, 2, 3] = 0
    activation_recomputation: Literal["none", "selective", "full"] = "none"
    overlap_comm: Flag = True
    optimizer: Literal["adam", "adamw", "sgd", "adafactor", "adam8bit"] = "adam"
    schedule: Literal["1f1b", "gpipe"] = "1f1b"
    capacity_factor: Annotated[float, _check("positive_float")] = 1.0
    memory_utilization: Fraction = 0.95
    token_budget: Annotated[float, _check("positive_float")] | None = None
    rank_order: Literal["tp-cp-dp-pp", "tp-cp-pp-dp"] = "tp-cp-dp-pp"
    attention_kernel: Literal["flash", "flash1", "triton", "xformers", "materialized"] = "flash"
    first_stage_layers: PosInt | None = None  # Megatron's decoder_first_pipeline_num_layers
    last_stage_layers: PosInt | None = None   # ... decoder_last_pipeline_num_layers
    dropout: Flag = True                      # attention and hidden dropout (masks stored)
    backward_prefetch: Literal["pre", "post"] = "pre"   # ZeRO-3: when backward gathers start
    sharding_runtime: str | None = None       # ZeRO-3's software: a ShardingRuntimes key

    @field_validator("sharding_runtime")
    @classmethod
    def _known_runtime(cls, v: str | None) -> str | None:
        # An alias becomes the key (one cache entry per runtime); unknown names raise with
        # the closest matches.
        if v is None:
            return None
        from ..zoo import ShardingRuntimes
        return ShardingRuntimes.get(v).key

    @model_validator(mode="after")
    def _cross_fields(self):
        if (self.first_stage_layers is not None or self.last_stage_layers is not None) and \
                self.pp_size == 1:
            raise ValidationError("first_stage_layers" if self.first_stage_layers is not None
                                  else "last_stage_layers", "needs pipeline parallelism "
                                  "(pp_size > 1).", owner=self.owner)
        if self.microbatch_size is not None and self.microbatch_count is not None:
            raise ValidationError("microbatch_count", "and microbatch_size are two ways to say "
                                  "the same thing; give one.", owner=self.owner)
        if self.capacity_factor < 1.0:
            raise ValidationError("capacity_factor", "must be at least 1 (tokens per expert "
                                  f"slot). Got {self.capacity_factor} instead.", owner=self.owner)
        if self.memory_utilization == 0:
            raise ValidationError("memory_utilization", "must be above 0. Got 0 instead.",
                                  owner=self.owner)
        if self.backward_prefetch == "post" and self.zero_stage != 3:
            raise ValidationError("backward_prefetch", "'post' is when ZeRO-3 gathers a "
                                  "layer's weights for the backward; it needs zero_stage=3. "
                                  f"Got zero_stage={self.zero_stage} instead.",
                                  owner=self.owner)
        if self.sharding_runtime is not None and self.zero_stage != 3:
            raise ValidationError("sharding_runtime", "sets how fast ZeRO-3's gathers and "
                                  "reduce-scatters run; it needs zero_stage=3. Got "
                                  f"zero_stage={self.zero_stage} instead.", owner=self.owner)
        if self.v_stages > 1 and self.pp_size == 1:
            raise ValidationError("v_stages", "needs pipeline parallelism (pp_size > 1). Got "
                                  f"{self.v_stages} instead.", owner=self.owner)
        return self
