"""Distributed training: one optimizer step of a transformer on a fleet, with data, tensor
(+ sequence), pipeline, context and expert parallelism, ZeRO sharding and recomputation.

Work. One micro-batch of ``microbatch_size`` sequences of ``seq_len / cp_size`` tokens per
device is lowered to the operator table (tensor-parallel shards, all logits), and
:func:`~mlsysim.workloads.training.training_table` adds its backward (data- and weight-gradient
GEMMs, FlashAttention-2's 2.5x attention backward), recomputation and collectives:

- TP: two all-reduces of the activations per layer forward, two backward [Megatron-LM,
  Shoeybi et al. 2019]; with sequence parallelism the same bytes as reduce-scatter +
  all-gather, norms and dropout sharded [Korthikanti et al. 2022].
- CP: ring attention all-gathers each layer's K and V over the ``cp`` group, overlapped with
  the attention compute [Liu et al. 2023]; gradients come back the same way.
- EP: two all-to-alls (dispatch, combine) per MoE layer forward and two backward, of
  ``tokens x active x hidden x capacity_factor`` [Lepikhin et al. 2021, GShard]; local experts
  only (``experts / ep`` per device).
- PP: one activation hand-off per stage boundary per micro-batch (gradients back), ``v`` times
  with interleaving; the pipeline's ranks are the outermost (Megatron's tp, cp, dp, pp order),
  so a hand-off crosses the scale-out fabric once a stage outgrows the scale-up domain.
- DP: the gradients of the local parameters (``grad bytes x params / (tp x pp)``, experts also
  ``/ ep``) all-reduced over the ``dp x cp`` ranks holding the same shard (reduce-scatter +
  all-gather with ZeRO-1/2: the same bytes), once per step, hidden behind the last
  micro-batch's backward when ``overlap_comm``; ZeRO-3 all-gathers the weights for every
  forward and backward and reduce-scatters the gradients per micro-batch, overlapped.

Step time (per replica; the slowest stage sets the pace)::

    t_mb   = max over stages (forward + backward of one micro-batch, collectives included)
    step   = m * t_mb + (p - 1) / v * t_mb + optimizer update + exposed DP communication
    bubble = ((p - 1) / v) / (m + (p - 1) / v)             [Narayanan et al. 2021, sec. 2.2]

with ``m = batch / (dp x microbatch_size)`` micro-batches per replica, ``p`` stages and ``v``
interleaved chunks per device. MFU counts the model's flops per token, ``6 N + 12 L h s``
(parameters; attention at full, non-causal, length: the Megatron/PaLM convention), HFU the
hardware's (backward, recomputation, causal attention as executed).

Memory per device (core/memory.py): weights + gradients + optimizer state of the local
parameters (mixed-precision Adam: 2 + 2 + 12 = 16 B/param [Rajbhandari et al. 2020, ZeRO,
sec. 3.1]; ZeRO-1 shards the 12, ZeRO-2 also the gradients, ZeRO-3 also the weights over
``dp x cp``) + activations of the micro-batches in flight (1F1B: ``p - stage`` of them, at most
``m``; GPipe: all ``m``; interleaving adds ``(p - 1) / (p v)`` on the first stage), per layer
from Korthikanti et al. 2022 (Table 2) generalized to GQA and gated MLPs, with
FlashAttention's scores never stored: ``s b (attn + mlp + 4h)`` bytes at 16 bit, ``attn = 7h +
4 kv_dim``, ``mlp = 3h + 2 (mats + 1) ffn``, of which ``10 s b h`` stay replicated under TP
without sequence parallelism; full recomputation keeps each layer's input only (``2 s b h``).
The last stage adds fp32 logits for the loss (``4 s b V / tp``). A ``memory_utilization``
fraction (0.95 by default, an estimate covering the CUDA context, NCCL buffers and allocator
fragmentation) of the capacity is usable.
Left out: data loading, loss and clipping kernels, stragglers and failures (ReliabilityModel),
pipeline warm-up differences between stages beyond the slowest-stage rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cache import ContentCache
from ..core import validate as check
from ..core.collectives import collective_time, resolve_system
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..core.costmodel import evaluate, prepare
from ..core.engine import efficiency_for, resolve
from ..core.memory import MemoryBudget, fmt_bytes
from ..errors import ValidationError
from ..specs.configs import DistributedConfig
from ..specs.hardware import HardwareSpec
from ..specs.model import ModelSpec, TransformerSpec
from ..units import Q_, Rate
from ..workloads.operators import OperatorBuilder, OpKind, Role, Section
from ..workloads.training import (
    Sharding,
    scale_rows,
    stage_layers,
    stage_table,
    training_table,
    with_collectives,
)
from ..workloads.transformer import Segment, lower_segments

__all__ = ["DistributedModel", "DistributedResult", "OPTIMIZER_STATE"]

OWNER = "DistributedModel"

# Optimizer state per parameter beyond the weights and gradients (bytes), and bytes the update
# reads and writes per parameter. Mixed precision adds an fp32 master copy (4 B).
# Adam/AdamW: two fp32 moments [Kingma & Ba 2015; ZeRO paper sec. 3.1: 12 B with the master];
# SGD with momentum: one fp32 buffer; Adafactor: factored second moment, O(rows + cols), taken
# as 0 per parameter [Shazeer & Stern 2018]; 8-bit Adam: two 1-byte moments [Dettmers et al.
# 2022].
OPTIMIZER_STATE: dict[str, float] = {"adam": 8.0, "adamw": 8.0, "sgd": 4.0, "adafactor": 0.0,
                                     "adam8bit": 2.0}

_PLANS = ContentCache("training plans")


def _element_bytes(precision: str) -> float:
    """Weights, gradients and activations stay 16-bit in fp8 and 16-bit training (Transformer
    Engine keeps fp8 for the GEMM inputs only); fp32/tf32 training stores 4 bytes."""
    return 4.0 if precision in ("fp32", "tf32") else 2.0


@dataclass(frozen=True)
class _Stage:
    fwd: Any            # prepared forward pass of one micro-batch
    bwd: Any            # prepared backward (+ recomputation)
    params: float       # local parameters on one device of this stage
    layers: int


@dataclass(frozen=True)
class _Plan:
    model: ModelSpec
    system: Any
    hardware: HardwareSpec
    config: DistributedConfig
    sharding: Sharding
    precision: str
    seq: int
    mbs: int
    m: int
    stages: tuple[_Stage, ...]
    optimizer_s: float
    dp_bytes: float
    dp_group: int
    dp_span: int
    usable: float
    activations: tuple[float, ...]      # per stage, bytes
    model_flops_per_token: float


@dataclass(frozen=True, eq=False, repr=False)
class DistributedResult(Result):
    """One training step: its time and breakdown, throughput, utilization, memory."""

    model: ModelSpec
    system: Any
    hardware: HardwareSpec
    batch_size: int
    seq_len: int
    precision: str
    parallelism: dict[str, int]
    microbatch_size: int
    microbatch_count: int
    v_stages: int
    step_s: float
    compute_s: float
    bubble_s: float
    optimizer_s: float
    tp_comm_s: float
    cp_comm_s: float
    ep_comm_s: float
    pp_comm_s: float
    dp_comm_s: float
    dp_exposed_s: float
    model_flops: float
    hardware_flops: float
    peak_flops: float
    devices: int
    memory: MemoryBudget
    activation_recomputation: str
    zero_stage: int
    token_budget: float | None = None
    notes: tuple[str, ...] = field(default=())

    main_latency = "step_latency_total"
    summary_inputs = ("model", "hardware", "batch_size:batch", "seq_len:seq")
    summary_numbers = ("step_latency_total:step", "mfu", "tokens_per_s:")

    # --- the incumbent's fields ---------------------------------------------------------
    @property
    def step_latency_total(self):
        return Q_(self.step_s, "s").to("ms")

    @property
    def tp_communication_latency(self):
        return Q_(self.tp_comm_s, "s").to("ms")

    @property
    def dp_communication_latency(self):
        return Q_(self.dp_exposed_s, "s").to("ms")

    @property
    def ep_communication_latency(self):
        return Q_(self.ep_comm_s, "s").to("ms")

    @property
    def cp_communication_latency(self):
        return Q_(self.cp_comm_s, "s").to("ms")

    @property
    def pp_communication_latency(self):
        return Q_(self.pp_comm_s, "s").to("ms")

    @property
    def communication_latency(self):
        """Communication on the critical path per step: TP, EP, PP hand-offs (CP overlaps
        attention and shows only its excess, counted in the micro-batch times) and exposed DP."""
        return Q_(self.tp_comm_s + self.ep_comm_s + self.pp_comm_s + self.dp_exposed_s,
                  "s").to("ms")

    @property
    def pipeline_bubble_latency(self):
        return Q_(self.bubble_s, "s").to("ms")

    @property
    def bubble_fraction(self) -> float:
        return self.bubble_s / self.step_s

    @property
    def scaling_efficiency(self) -> float:
        """Share of the step spent in useful micro-batch compute: (step - bubble - exposed
        communication - optimizer) / step."""
        useful = self.step_s - self.bubble_s - self.optimizer_s - self.dp_exposed_s - \
            (self.tp_comm_s + self.ep_comm_s + self.pp_comm_s)
        return max(useful, 0.0) / self.step_s

    @property
    def tokens_per_s(self) -> Rate:
        return Rate(self.batch_size * self.seq_len / self.step_s, "token/s")

    @property
    def effective_throughput(self) -> Rate:
        """Sequences per second of the whole fleet."""
        return Rate(self.batch_size / self.step_s, "sample/s")

    @property
    def tokens_per_s_per_device(self) -> Rate:
        return Rate(float(self.tokens_per_s) / self.devices, "token/s")

    @property
    def mfu(self) -> float:
        """Model flops (6 N + 12 L h s per token) / (devices x dense peak x step time)."""
        return self.model_flops / (self.devices * self.peak_flops * self.step_s)

    @property
    def hfu(self) -> float:
        """Hardware flops actually executed (backward, recomputation) / the same roof."""
        return self.hardware_flops / (self.devices * self.peak_flops * self.step_s)

    @property
    def time_to_train(self):
        """Wall time for ``token_budget`` tokens, when one was given."""
        if self.token_budget is None:
            return None
        return Q_(self.token_budget / float(self.tokens_per_s), "s").to("h")

    @property
    def gpu_hours(self):
        t = self.time_to_train
        return None if t is None else Q_(t.to("h").magnitude * self.devices, "h")

    @property
    def memory_per_device(self):
        return Q_(float(self.memory.total(1)), "byte").to("GB")

    @property
    def feasible(self) -> bool:
        return bool(self.memory.fits(1))

    @property
    def reason(self) -> str | None:
        return self.memory.reason(1, f"{self.hardware.name} (x memory_utilization)")

    @property
    def binding(self) -> str:
        if not self.feasible:
            return "memory capacity"
        parts = {"compute": self.compute_s - self.tp_comm_s - self.ep_comm_s - self.pp_comm_s,
                 "pipeline bubble": self.bubble_s,
                 "interconnect": self.tp_comm_s + self.ep_comm_s + self.pp_comm_s +
                 self.dp_exposed_s, "optimizer": self.optimizer_s}
        return max(parts, key=parts.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("MFU convention: 6 N + 12 L h s flops per token (Megatron/PaLM, non-causal)",
                "the slowest pipeline stage sets the pace; stages hold an even share of layers",
                "ranks ordered tp, cp, dp, pp (Megatron): tensor-parallel groups are adjacent",
                f"{self.memory.usable / 1e9:.4g} GB usable per device (memory_utilization of "
                "the capacity; the rest is CUDA context, NCCL buffers, fragmentation)",
                "weights, gradients and activations 16-bit (fp32 for fp32/tf32), fp32 master "
                "weights and optimizer state")

    def headline(self) -> dict[str, Any]:
        return {
            "model": self.model.name, "system": getattr(self.system, "name", str(self.system)),
            "hardware": self.hardware.name, "batch_size": self.batch_size,
            "seq_len": self.seq_len, "precision": self.precision,
            "parallelism": self.parallelism, "microbatch_size": self.microbatch_size,
            "microbatch_count": self.microbatch_count,
            "step_latency_total": self.step_latency_total,
            "pipeline_bubble_latency": self.pipeline_bubble_latency,
            "bubble_fraction": round(self.bubble_fraction, 4),
            "tp_communication_latency": self.tp_communication_latency,
            "cp_communication_latency": self.cp_communication_latency,
            "ep_communication_latency": self.ep_communication_latency,
            "pp_communication_latency": self.pp_communication_latency,
            "dp_communication_latency": self.dp_communication_latency,
            "communication_latency": self.communication_latency,
            "optimizer_latency": Q_(self.optimizer_s, "s").to("ms"),
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s_per_device,
            "effective_throughput": self.effective_throughput,
            "scaling_efficiency": round(self.scaling_efficiency, 4),
            "mfu": round(self.mfu, 4), "hfu": round(self.hfu, 4),
            "time_to_train": self.time_to_train, "gpu_hours": self.gpu_hours,
            "memory_per_device": self.memory_per_device,
            "memory_breakdown": {k: Q_(v, "byte").to("GB")
                                 for k, v in self.memory.terms(1).items()},
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        par = self.parallelism
        p, v, m = par["pp"], self.v_stages, self.microbatch_count
        lines = [
            f"{self.model.name} training on {self.devices} x {self.hardware.name} "
            f"(dp={par['dp']}, tp={par['tp']}, pp={p}, cp={par['cp']}, ep={par['ep']}), "
            f"global batch {self.batch_size} x {self.seq_len} tokens, {self.precision}",
            f"  micro-batches: m = {self.batch_size} / ({par['dp']} x {self.microbatch_size}) "
            f"= {m} per replica; t_mb (slowest stage, fwd + bwd + collectives) = "
            f"{self.compute_s / m * 1e3:.4g} ms",
            f"  step = m x t_mb {self.compute_s * 1e3:.4g} ms + bubble (p-1)/v x t_mb "
            f"{self.bubble_s * 1e3:.4g} ms + optimizer {self.optimizer_s * 1e3:.3g} ms + "
            f"exposed DP {self.dp_exposed_s * 1e3:.3g} ms (of {self.dp_comm_s * 1e3:.3g} ms) = "
            f"{self.step_s * 1e3:.4g} ms; bubble fraction ({p}-1)/{v} / ({m} + ({p}-1)/{v}) = "
            f"{self.bubble_fraction:.3f}",
            f"  in the micro-batches: TP comm {self.tp_comm_s * 1e3:.3g} ms, EP "
            f"{self.ep_comm_s * 1e3:.3g} ms, PP hand-offs {self.pp_comm_s * 1e3:.3g} ms, CP "
            f"(overlapped with attention) {self.cp_comm_s * 1e3:.3g} ms",
            f"  MFU = (6 N + 12 L h s) x tokens / (devices x peak x step) = "
            f"{self.model_flops:.4g} / ({self.devices} x {self.peak_flops / 1e12:.4g} TFLOP/s x "
            f"{self.step_s:.4g} s) = {self.mfu:.3f}; HFU {self.hfu:.3f}; "
            f"{float(self.tokens_per_s):,.0f} tokens/s",
            "  memory per device: " + ", ".join(
                f"{k} {fmt_bytes(x)}" for k, x in self.memory.terms(1).items())
            + f" = {fmt_bytes(float(self.memory.total(1)))} of {fmt_bytes(self.memory.usable)} "
            + ("-> fits" if self.feasible else "-> DOES NOT FIT"),
        ]
        if self.token_budget:
            lines.append(f"  {self.token_budget:.4g} tokens: {self.time_to_train:.4g~P}, "
                         f"{self.gpu_hours.magnitude:,.0f} GPU-hours")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class DistributedModel(ForwardModel):
    """Training step time, MFU and memory of a parallelized run (module docstring)."""

    options = (
        Option("model", REQUIRED, "transformer: spec or zoo name"),
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("batch_size", None, "global batch in sequences (required unless config)"),
        Option("seq_len", None, "tokens per sequence; default: the model's default length"),
        Option("precision", None, "compute precision; default bf16 where published"),
        Option("tp_size", 1, "tensor-parallel degree"),
        Option("pp_size", 1, "pipeline stages"),
        Option("cp_size", 1, "context-parallel degree (sequence split, ring attention)"),
        Option("ep_size", 1, "expert-parallel degree (MoE)"),
        Option("dp_size", None, "data-parallel replicas; default: devices / (tp pp cp)"),
        Option("microbatch_size", None, "sequences per micro-batch (default 1)"),
        Option("microbatch_count", None, "micro-batches per replica (instead of the size)"),
        Option("v_stages", 1, "interleaved chunks per device (virtual pipeline stages)"),
        Option("sequence_parallel", None, "Megatron sequence parallelism (default: tp > 1)"),
        Option("zero_stage", 0, "ZeRO stage 0-3 (3 = FSDP)"),
        Option("activation_recomputation", "none", "'none', 'selective' or 'full'"),
        Option("overlap_comm", True, "overlap DP gradient reduction with the backward"),
        Option("optimizer", "adam", "adam, adamw, sgd, adafactor or adam8bit"),
        Option("schedule", "1f1b", "'1f1b' or 'gpipe'"),
        Option("capacity_factor", 1.0, "MoE expert capacity factor (>= 1)"),
        Option("memory_utilization", 0.95, "usable fraction of device memory"),
        Option("token_budget", None, "tokens to train on (gives time and GPU-hours)"),
        Option("config", None, "a DistributedConfig with all of the above but model and fleet"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on one DGX H100 (8-way DP, ZeRO-1, batch 64 x 2048); GPT-3 175B
        unsharded on the same node needs 16 B x 175e9 params = 2.8 TB of state per GPU."""
        from ..zoo import Models, Nodes
        if feasible:
            return dict(model=Models.Llama3_8B, fleet=Nodes.DGX_H100, batch_size=64,
                        seq_len=2048, zero_stage=1)
        return dict(model=Models.GPT3_175B, fleet=Nodes.DGX_H100, batch_size=8, seq_len=2048)

    def solve(self, model, fleet, batch_size: int | None = None, seq_len: int | None = None,
              precision: str | None = None, tp_size: int = 1, pp_size: int = 1,
              cp_size: int = 1, ep_size: int = 1, dp_size: int | None = None,
              microbatch_size: int | None = None, microbatch_count: int | None = None,
              v_stages: int = 1, sequence_parallel: bool | None = None, zero_stage: int = 0,
              activation_recomputation: str = "none", overlap_comm: bool = True,
              optimizer: str = "adam", schedule: str = "1f1b", capacity_factor: float = 1.0,
              memory_utilization: float = 0.95, token_budget: float | None = None,
              config: DistributedConfig | None = None) -> DistributedResult:
        """One optimizer step of ``model`` on ``fleet`` (see the module docstring).

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64,
        ...                                      seq_len=2048, zero_stage=1)
        >>> r.parallelism["dp"], r.feasible, r.bubble_fraction
        (8, True, 0.0)
        """
        if isinstance(batch_size, DistributedConfig):
            config, batch_size = batch_size, None
        if config is None:
            config = DistributedConfig(
                batch_size=batch_size, seq_len=seq_len, precision=precision, tp_size=tp_size,
                pp_size=pp_size, cp_size=cp_size, ep_size=ep_size, dp_size=dp_size,
                microbatch_size=microbatch_size, microbatch_count=microbatch_count,
                v_stages=v_stages, sequence_parallel=sequence_parallel, zero_stage=zero_stage,
                activation_recomputation=activation_recomputation, overlap_comm=overlap_comm,
                optimizer=optimizer, schedule=schedule, capacity_factor=capacity_factor,
                memory_utilization=memory_utilization, token_budget=token_budget)
        elif not isinstance(config, DistributedConfig):
            raise ValidationError("config", "must be a DistributedConfig. Got "
                                  f"{type(config).__name__} instead.", owner=OWNER)
        # The config holds the batch too, so the whole (frozen) result is what is cached.
        key = (model, fleet, config)
        result = _PLANS.get(key)
        if result is None:
            result = _PLANS.put(key, _evaluate(_plan(model, fleet, config)))
        return result


# ------------------------------------------------------------------------------------ plan

def _plan(model, system, c: DistributedConfig) -> _Plan:
    from ..core.collectives import _system
    system = _system(system)
    hardware, path = resolve_system(system)
    model = resolve(model, hardware)[0]
    if not isinstance(model, TransformerSpec):
        raise ValidationError("model", f"must be a transformer; {model.name} is "
                              f"{model.architecture} (DistributedModel lowers transformer "
                              "stacks).", owner=OWNER)
    precision = c.precision or ("bf16" if "bf16" in hardware.compute.dense else
                                hardware.compute.default_precision)
    precision = check.precision_of(hardware, precision, OWNER)
    seq = c.seq_len or model.seq_len_default
    if seq > model.max_context:
        raise ValidationError("seq_len", f"must not exceed {model.name}'s context of "
                              f"{model.max_context} tokens. Got {seq} instead.", owner=OWNER)
    devices = path.total
    tp, pp, cp, ep = c.tp_size, c.pp_size, c.cp_size, c.ep_size
    if model.heads % tp:
        raise ValidationError("tp_size", f"must divide the number of attention heads "
                              f"(={model.heads}). Got {tp} instead.", owner=OWNER)
    if pp * c.v_stages > model.layers:
        raise ValidationError("pp_size", f"times v_stages (={pp * c.v_stages}) must not exceed "
                              f"the layers (={model.layers}).", owner=OWNER)
    if seq % cp:
        raise ValidationError("cp_size", f"must divide seq_len (={seq}). Got {cp} instead.",
                              owner=OWNER)
    if ep > 1 and (model.moe is None or model.moe.experts % ep):
        raise ValidationError("ep_size", "must divide the number of experts" + (
            f" (={model.moe.experts})" if model.moe else f"; {model.name} has none")
            + f". Got {ep} instead.", owner=OWNER)
    per_replica = tp * pp * cp
    if c.dp_size is None:
        if devices % per_replica:
            raise ValidationError("tp_size", f"x pp_size x cp_size (={per_replica}) must divide "
                                  f"the {devices} accelerators of {system.name}.", owner=OWNER)
        dp = devices // per_replica
    else:
        dp = c.dp_size
        if dp * per_replica != devices:
            raise ValidationError("dp_size", f"x tp_size x pp_size x cp_size (={dp} x "
                                  f"{per_replica}) must equal the {devices} accelerators of "
                                  f"{system.name}. Got dp_size={dp} instead.", owner=OWNER)
    sharding = Sharding(tp=tp, pp=pp, cp=cp, ep=ep, dp=dp)
    if c.batch_size % dp:
        raise ValidationError("batch_size", f"must be a multiple of dp_size (={dp}). Got "
                              f"{c.batch_size} instead.", owner=OWNER)
    local = c.batch_size // dp
    if c.microbatch_count is not None:
        if local % c.microbatch_count:
            raise ValidationError("microbatch_count", f"must divide the {local} sequences per "
                                  f"replica (batch_size / dp_size). Got {c.microbatch_count} "
                                  "instead.", owner=OWNER)
        mbs = local // c.microbatch_count
    else:
        mbs = c.microbatch_size or 1
        if local % mbs:
            raise ValidationError("microbatch_size", f"must divide the {local} sequences per "
                                  f"replica (batch_size / dp_size). Got {mbs} instead.",
                                  owner=OWNER)
    m = local // mbs
    if c.v_stages > 1 and m % pp:
        raise ValidationError("v_stages", f"needs micro-batches per replica (={m}) divisible "
                              f"by pp_size (={pp}) for the interleaved schedule.", owner=OWNER)
    sp = tp > 1 if c.sequence_parallel is None else c.sequence_parallel

    e = _element_bytes(precision)
    q = seq // cp
    # Ring attention over a causal sequence: each rank's queries see half the rest on average.
    seg = Segment(q, (seq - q) // 2)
    fwd = lower_segments(model, [seg], e=e, kv_e=e, we=e, tp=tp, pp=1, flash=True,
                         all_logits=True)
    stack = fwd.section == Section.STACK
    if sp and tp > 1:        # norms and dropout sharded over the TP group
        fwd = scale_rows(fwd, stack & (fwd.kind == OpKind.NORM), flops=1 / tp, act=1 / tp)
    expert = np.array([".experts." in n for n in fwd.names])
    if model.moe is not None:
        fwd = scale_rows(fwd, expert, flops=c.capacity_factor, act=c.capacity_factor,
                         weight=1 / ep, drop_moe=ep > 1)
    h = model.hidden
    kv_dim = model.n_kv_heads * model.d_head
    moe_layers = (model.layers - model.moe.dense_layers) if model.moe else 0
    rows = [
        dict(name="cp_kv_allgather", kind="allgather", group=cp, count=model.layers,
             message_bytes=2 * seq * max(kv_dim / tp, model.d_head) * e, span=tp * cp,
             overlap=True),
        dict(name="ep_alltoall", kind="alltoall", group=ep, count=2 * moe_layers,
             message_bytes=q * h * e * (model.moe.active if model.moe else 0)
             * c.capacity_factor, span=tp * ep),
        dict(name="pp_send", kind="p2p", group=2 if pp > 1 else 1, count=1.0 * c.v_stages,
             message_bytes=q * h * e, span=devices),
    ]
    # Parameters held per device (all stages): expert weights split over ep as well (the
    # expert rows' weight bytes are already divided by ep, so undo that for the share).
    w_rows = fwd.weight_bytes * fwd.count
    expert_w = float(w_rows[expert].sum()) * ep
    expert_share = expert_w / max(float(w_rows.sum()) + expert_w * (1 - 1 / ep), 1e-30)
    fwd = with_collectives(fwd, rows)
    total_local = model.parameter_count / tp * (1 - expert_share + expert_share / ep)
    opt_state = OPTIMIZER_STATE[c.optimizer] + (4.0 if e < 4 else 0.0)
    update_bytes = 2 * (opt_state + e) + e      # read and write state and weights, read grads
    dp_group = dp * cp
    zero3 = c.zero_stage == 3
    eff = efficiency_for(hardware, precision)
    stages, acts = [], []
    for s in range(pp):
        f_s = stage_table(fwd, s, pp, model.layers)
        share = f_s.weight_total_bytes / max(fwd.weight_total_bytes, 1e-30)
        params = total_local * share
        b_s = training_table(f_s, recompute=c.activation_recomputation, include_forward=False)
        if zero3:            # FSDP: gather the weights for forward and backward, scatter grads
            gather = dict(name="zero3_allgather", kind="allgather", group=dp_group, count=1,
                          fixed_bytes=params * e, span=tp * cp * dp, overlap=True)
            f_s = with_collectives(f_s, [gather])
            b_s = with_collectives(b_s, [{**gather, "role": Role.DGRAD},
                                         dict(name="zero3_reducescatter", kind="reducescatter",
                                              group=dp_group, count=1, fixed_bytes=params * e,
                                              span=tp * cp * dp, overlap=True,
                                              role=Role.DGRAD)])
        stages.append(_Stage(fwd=prepare(f_s, hardware, precision, eff, path=path),
                             bwd=prepare(b_s, hardware, precision, eff, path=path),
                             params=params, layers=stage_layers(model.layers, pp)[s]))
        acts.append(_activations(model, c, sharding, s, m, mbs, seq, e, sp))
    # The optimizer update of the largest stage's (ZeRO-sharded) parameters, once per step.
    opt_params = max(st.params for st in stages) / (dp_group if c.zero_stage >= 1 else 1)
    ob = OperatorBuilder()
    ob.add("optimizer.update", OpKind.ELEMENTWISE, flops=0.0,
           weight_bytes=opt_params * update_bytes)
    opt_t = float(evaluate(prepare(ob.build(weight_total_bytes=0.0), hardware, precision,
                                   eff), 1).latency)
    # Model flops per token: 6 N + 12 L h s (attention at full length, non-causal).
    n_active = model.active_parameter_count if model.moe else model.parameter_count
    flops_token = 6 * n_active + 12 * model.layers * model.heads * model.d_head * seq
    return _Plan(
        model=model, system=system, hardware=hardware, config=c, sharding=sharding,
        precision=precision, seq=seq, mbs=mbs, m=m, stages=tuple(stages), optimizer_s=opt_t,
        dp_bytes=max(st.params for st in stages) * e, dp_group=dp_group,
        dp_span=tp * cp * dp, usable=hardware._base["capacity"] * c.memory_utilization,
        activations=tuple(acts), model_flops_per_token=flops_token)


def _activations(model: TransformerSpec, c: DistributedConfig, sh: Sharding, stage: int,
                 m: int, mbs: int, seq: int, e: float, sp: bool) -> float:
    """Activation bytes held by one device of ``stage`` (module docstring)."""
    h, tp, pp, v = model.hidden, sh.tp, sh.pp, c.v_stages
    s_b = seq / sh.cp * mbs * e / 2          # token count, in units of 16-bit elements
    kv_dim = model.n_kv_heads * model.d_head
    mats = 2 if model.ffn_gated else 1
    attn = 7 * h + 4 * kv_dim

    def mlp(width: float) -> float:
        return 3 * h + 2 * (mats + 1) * width

    layers = stage_layers(model.layers, pp)[stage]
    moe_layers = 0 if model.moe is None else round(
        layers * (model.layers - model.moe.dense_layers) / model.layers)
    per_dense = attn + mlp(model.ffn) + 4 * h
    per_moe = per_dense
    if model.moe is not None:
        mo = model.moe
        width = mo.expert_ffn * mo.active * c.capacity_factor + mo.expert_ffn * mo.shared_experts
        per_moe = attn + mlp(width) + 4 * h
    total = (layers - moe_layers) * per_dense + moe_layers * per_moe
    if c.activation_recomputation == "full":
        per_layer_kept = 2 * h * layers / (tp if sp else 1)
    elif sp:
        per_layer_kept = total / tp
    else:
        per_layer_kept = 10 * h * layers + (total - 10 * h * layers) / tp
    if c.schedule == "gpipe":
        in_flight = m
    else:
        in_flight = min(m, pp - stage)
        if v > 1 and stage == 0:
            in_flight *= 1 + (pp - 1) / (pp * v)
    acts = s_b * per_layer_kept * in_flight
    if stage == pp - 1:                      # fp32 logits for the loss, one micro-batch
        acts += 4 * seq / sh.cp * mbs * model.vocab / tp
    return acts


# ------------------------------------------------------------------------------------ step

def _comm_by_name(p, batch: int) -> dict[str, float]:
    """Seconds per pass of each collective row group (before the overlap rule)."""
    if p.comm_rows is None:
        return {}
    per = np.min(p.comm_a + p.comm_b * batch, axis=-1) * p.count[p.comm_rows]
    out: dict[str, float] = {}
    for i, t in zip(p.comm_rows, per):
        name = p.table.names[i].split(".")[0]
        out[name] = out.get(name, 0.0) + float(t)
    return out


def _evaluate(plan: _Plan) -> DistributedResult:
    c, sh, m = plan.config, plan.sharding, plan.m
    times, comms = [], []
    hw_flops = 0.0
    for st in plan.stages:
        ef, eb = evaluate(st.fwd, plan.mbs), evaluate(st.bwd, plan.mbs)
        times.append((float(ef.latency), float(eb.latency)))
        comm = _comm_by_name(st.fwd, plan.mbs)
        for k, val in _comm_by_name(st.bwd, plan.mbs).items():
            comm[k] = comm.get(k, 0.0) + val
        comms.append(comm)
        hw_flops += (float(ef.flops) + float(eb.flops)) * m
    slowest = max(range(len(times)), key=lambda i: sum(times[i]))
    t_f, t_b = times[slowest]
    t_mb = t_f + t_b
    p, v = sh.pp, c.v_stages
    compute = m * t_mb
    bubble = (p - 1) / v * t_mb
    dp_t = 0.0
    if sh.dp * sh.cp > 1 and c.zero_stage < 3:
        dp_t = float(collective_time(plan.system, "allreduce", plan.dp_bytes, plan.dp_group,
                                     span=plan.dp_span))
    exposed = max(0.0, dp_t - t_b) if c.overlap_comm else dp_t
    step = compute + bubble + plan.optimizer_s + exposed
    comm = comms[slowest]
    # Memory of the fullest stage.
    e = _element_bytes(plan.precision)
    budgets = []
    for st, act in zip(plan.stages, plan.activations):
        shard = sh.dp * sh.cp
        opt_state = (OPTIMIZER_STATE[c.optimizer] + (4.0 if e < 4 else 0.0)) * st.params
        grads = e * st.params
        weights = e * st.params
        if c.zero_stage >= 1:
            opt_state /= shard
        if c.zero_stage >= 2:
            grads /= shard
        if c.zero_stage >= 3:
            weights /= shard
        budgets.append(MemoryBudget(weights=weights, gradients=grads, optimizer=opt_state,
                                    activations=act, usable=plan.usable,
                                    per_sample_label="activations"))
    memory = max(budgets, key=lambda b: b.total(1))
    notes = []
    if exposed > 0 and c.overlap_comm:
        notes.append(f"DP gradient reduction ({dp_t * 1e3:.3g} ms) outlasts the last "
                     f"micro-batch's backward ({t_b * 1e3:.3g} ms)")
    tokens = c.batch_size * plan.seq
    return DistributedResult(
        model=plan.model, system=plan.system, hardware=plan.hardware,
        batch_size=c.batch_size, seq_len=plan.seq, precision=plan.precision,
        parallelism={"dp": sh.dp, "tp": sh.tp, "pp": sh.pp, "cp": sh.cp, "ep": sh.ep},
        microbatch_size=plan.mbs, microbatch_count=m, v_stages=v, step_s=step,
        compute_s=compute, bubble_s=bubble, optimizer_s=plan.optimizer_s,
        tp_comm_s=m * comm.get("tp_allreduce", 0.0), cp_comm_s=m * comm.get(
            "cp_kv_allgather", 0.0), ep_comm_s=m * comm.get("ep_alltoall", 0.0),
        pp_comm_s=m * comm.get("pp_send", 0.0), dp_comm_s=dp_t, dp_exposed_s=exposed,
        model_flops=plan.model_flops_per_token * tokens, hardware_flops=hw_flops * sh.dp
        * sh.cp * sh.tp, peak_flops=plan.hardware._base[f"peak_{plan.precision}"],
        devices=sh.devices, memory=memory,
        activation_recomputation=c.activation_recomputation, zero_stage=c.zero_stage,
        token_budget=c.token_budget, notes=tuple(notes))
