"""Distributed training: one optimizer step of a transformer on a fleet, with data, tensor
(+ sequence), pipeline, context and expert parallelism, ZeRO sharding and recomputation; a
layered model (CNN) trains data-parallel (forward, backward and gradient all-reduce).

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
  micro-batch's backward when ``overlap_comm``. With ``v`` interleaved chunks each chunk's
  reduction is launched when that chunk's last micro-batch backward is done (Megatron-LM's
  interleaved schedule calls the chunk's grad sync at ``is_last_microbatch_for_model_chunk``,
  megatron/core/pipeline_parallel/schedules.py). In the last group of ``p`` micro-batches the
  chunks run their backwards in turn (chunk ``v-1`` first), so chunk ``c`` is final ``c p``
  chunk-backwards (``t_b / v`` each) before the end: the reduction ``D`` has the window
  ``W = ((v - 1) p + 1) t_b / v`` and the last chunk's ``D / v`` only its own backward::

      exposed = max(overlapped(t_b / v, D / v) - t_b / v,  overlapped(W, D) - W)

  (``v`` = 1: both terms are ``overlapped(t_b, D) - t_b``). Idle time in the drain only widens
  the window, so this is the least overlap the schedule allows. ZeRO-3 all-gathers the
  weights for every forward and backward and reduce-scatters the gradients per micro-batch,
  overlapped. When the backward gathers the next layer's weights is the framework's
  ``backward_prefetch``: before the current layer's gradients (``"pre"``, FSDP's
  BACKWARD_PRE and DeepSpeed's prefetch: overlapped) or after them (``"post"``, FSDP's
  BACKWARD_POST, which "overlaps the current reduce-scatter and the next gradient
  computation" (torch.distributed.fsdp.BackwardPrefetch) and nothing with the gather: the
  next layer's backward waits for it, so the backward's gathers add to the pass and only its
  reduce-scatter overlaps). Composer, under LLM Foundry, defaults to BACKWARD_POST
  (``composer/trainer/dist_strategy.py``, ``fsdp_config.get('backward_prefetch',
  'BACKWARD_POST')``); PyTorch FSDP's own default is BACKWARD_PRE. Early ZeRO-3 software
  gathered far below the fabric (per-parameter calls, host synchronization): a
  ``sharding_runtime`` caps each rank's received bytes per second at its measured throughput,
  ``max(b, (n - 1) / n / T)`` seconds per byte (:func:`capped_per_byte`).

Overlap. Compute slows while a collective runs beside it: NCCL's kernels hold SMs and
memory bandwidth. Kernel-level measurements of a GEMM beside an NCCL collective: 2.08 ms
against 1.18 ms alone on A100-SXM4-80GB (Nsight, NVIDIA/nccl issue 1428: ``s`` = 0.76), and an
H100 GEMM at ~47 % MFU beside an FSDP-prefetch all-gather against ~80 % alone (NVIDIA
developer forum, "Compute-Communication Overlap Causes Severe GEMM Performance Degradation
because of Tail Effect": 0.70; the all-gather's 24 blocks push a one-wave GEMM into a second
wave). ``s`` is their mean, 0.73; Lee et al. 2025 (arXiv:2507.03114), averaging whole
overlapped training steps on 4 A100, H100, MI250 and MI210 (where part of each collective
runs beside no GEMM), measured 18.9 %: the band's fast edge, 0.76 its slow one. Compute
``C`` beside an overlapped collective ``O`` then ends at ``max(O, C + O s / (1 + s))`` (the
collective covers ``O / (1 + s)`` of the compute at the slowed rate). It applies to every
overlapped collective: ZeRO-3's gathers, CP's ring exchange, the DP reduction behind the last
backward.

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

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..cache import ContentCache
from ..core import validate as check
from ..core.calibration import attention_kernel_ratio, training_attention_factor
from ..core.collectives import collective_terms, comm_path, resolve_system, system_spec
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..core.costmodel import evaluate_parts, prepare
from ..core.engine import efficiency_for, resolve
from ..core.memory import MemoryBudget, fmt_bytes, optimizer_state_bytes_per_param
from ..errors import ValidationError
from ..specs.configs import DistributedConfig
from ..specs.hardware import HardwareSpec
from ..specs.model import LayeredSpec, ModelSpec, TransformerSpec
from ..units import Q_, Rate
from ..workloads.operators import OpKind, Section
from ..workloads.training import (
    ATTENTION_BACKWARD,
    scale_rows,
    section_tables,
    training_table,
    with_collectives,
)
from ..workloads.transformer import Segment, lower_segments

__all__ = ["DistributedModel", "DistributedResult", "NodeProfile", "evaluate_grid",
           "parts_for"]

OWNER = "DistributedModel"
# Compute slowdown beside an overlapped collective (module docstring), by band variant: the
# mean of the kernel-level A100 (0.76) and H100 (0.70) measurements (nominal), Lee et al.
# 2025's whole-step average (fast edge) and the A100 measurement (slow edge).
OVERLAP_SLOWDOWN = {"nominal": 0.73, "fast": 0.189, "slow": 0.76}


_PLANS = ContentCache("training plans")


def _element_bytes(precision: str) -> float:
    """Weights, gradients and activations stay 16-bit in fp8 and 16-bit training (Transformer
    Engine keeps fp8 for the GEMM inputs only); fp32/tf32 training stores 4 bytes."""
    return 4.0 if precision in ("fp32", "tf32") else 2.0


@dataclass(frozen=True, eq=False, repr=False)
class NodeProfile(Result):
    """One node's share of a training step (``DistributedResult.node_profile``, the
    incumbent's name): its devices, the step as each of them spends it (micro-batch compute,
    exposed communication, pipeline bubble and optimizer: they add up to the step), memory
    per device and the node's token rate. Every device of a replica runs the pace of the
    slowest stage, so one profile stands for every node."""

    node: str
    devices: int                  # accelerators in the node
    step_s: float
    compute_s: float              # the micro-batches' compute, collectives inside them removed
    communication_s: float        # communication on the critical path (exposed)
    bubble_s: float
    optimizer_s: float
    memory_bytes: float           # per device
    capacity_bytes: float         # usable per device
    tokens_per_s: float           # the node's share of the fleet's rate
    mfu: float
    hfu: float
    feasible: bool = True
    reason: str | None = None

    main_latency = "latency"
    summary_inputs = ("node", "devices")
    summary_numbers = ("latency", "bottleneck", "memory_footprint:memory")

    @property
    def latency(self):
        return Q_(self.step_s, "s").to("ms")

    @property
    def latency_compute(self):
        return Q_(self.compute_s, "s").to("ms")

    @property
    def latency_communication(self):
        return Q_(self.communication_s, "s").to("ms")

    @property
    def latency_overhead(self):
        """Pipeline bubble and optimizer update."""
        return Q_(self.bubble_s + self.optimizer_s, "s").to("ms")

    @property
    def memory_footprint(self):
        return Q_(self.memory_bytes, "byte").to("GB")

    @property
    def throughput(self) -> Rate:
        return Rate(self.tokens_per_s, "token/s")

    @property
    def bottleneck(self) -> str:
        """The largest share of the step: "Compute", "Communication" or "Overhead" (bubble
        and optimizer); "Memory" when the config does not fit."""
        if not self.feasible:
            return "Memory"
        parts = {"Compute": self.compute_s, "Communication": self.communication_s,
                 "Overhead": self.bubble_s + self.optimizer_s}
        return max(parts, key=parts.get)

    @property
    def binding(self) -> str:
        return self.bottleneck.lower()

    def headline(self) -> dict[str, Any]:
        return {"node": self.node, "devices": self.devices, "latency": self.latency,
                "latency_compute": self.latency_compute,
                "latency_communication": self.latency_communication,
                "latency_overhead": self.latency_overhead, "bottleneck": self.bottleneck,
                "memory_footprint": self.memory_footprint, "throughput": self.throughput,
                "mfu": round(self.mfu, 4), "hfu": round(self.hfu, 4),
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        return (f"{self.node}: {self.devices} devices, each step {self.step_s * 1e3:.4g} ms = "
                f"compute {self.compute_s * 1e3:.4g} + exposed communication "
                f"{self.communication_s * 1e3:.4g} + bubble {self.bubble_s * 1e3:.4g} + "
                f"optimizer {self.optimizer_s * 1e3:.3g} ms ({self.bottleneck}); "
                f"{fmt_bytes(self.memory_bytes)} of {fmt_bytes(self.capacity_bytes)} per device"
                f"; {self.tokens_per_s:,.0f} tokens/s; MFU {self.mfu:.3f}")


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
    # ZeRO-3's weight gathers and gradient reduce-scatters over the step (in the micro-batch
    # times, overlapped), and the part of them the compute does not hide.
    zero3_comm_s: float = 0.0
    zero3_exposed_s: float = 0.0
    backward_prefetch: str = "pre"   # "post": the backward's gathers are waited for
    sharding_runtime: str | None = None   # ZeRO-3's software (ShardingRuntimes key), if capped
    token_budget: float | None = None
    notes: tuple[str, ...] = field(default=())
    activity: tuple[float, float] = (0.0, 0.0)   # (u_c, u_m) over the step (core/power.py)
    attention_kernel: str = "flash"
    attention_speed: float = 1.0  # fused attention's training speed / calibrated efficiency
    # () -> (fast, slow) step seconds at the calibration spread's edges, evaluated on demand.
    _band: Any = field(default=None, repr=False, compare=False)

    main_latency = "step_latency_total"
    summary_inputs = ("model", "hardware", "batch_size:batch", "seq_len:seq")
    summary_numbers = ("step_latency_total:step", "mfu", "tokens_per_s:")

    # --- the incumbent's fields ---------------------------------------------------------
    @property
    def _transformer(self) -> bool:
        return isinstance(self.model, TransformerSpec)

    @property
    def step_latency_total(self):
        return Q_(self.step_s, "s").to("ms")

    @property
    def step_band_s(self) -> tuple[float, float]:
        """(low, high) step seconds: the same configuration with every efficiency term and
        collective fit at the fast and the slow edge of its calibration spread (10th/90th
        percentiles of measured over fitted in the microbenchmarks), as the inference
        results' bands. Computed on first use."""
        cached = self.__dict__.get("_band_s")
        if cached is None:
            cached = self._band() if self._band is not None else (self.step_s, self.step_s)
            object.__setattr__(self, "_band_s", cached)
        return cached

    @property
    def band(self):
        """(low, high) step time, quantities (see :attr:`step_band_s`)."""
        lo, hi = self.step_band_s
        return Q_(lo, "s").to("ms"), Q_(hi, "s").to("ms")

    @property
    def tp_communication_latency(self):
        return Q_(self.tp_comm_s, "s").to("ms")

    @property
    def dp_communication_latency(self):
        """Data-parallel communication on the critical path: the gradient reduction's exposed
        part and, under ZeRO-3, the weight gathers and reduce-scatters compute does not hide."""
        return Q_(self.dp_exposed_s + self.zero3_exposed_s, "s").to("ms")

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
        attention and shows only its excess, counted in the micro-batch times), exposed DP and
        ZeRO-3's exposed gathers."""
        return Q_(self._exposed_comm_s, "s").to("ms")

    @property
    def _in_microbatch_comm_s(self) -> float:
        """Communication inside the micro-batch times (TP, EP, PP hand-offs, ZeRO-3's
        exposed gathers): part of ``compute_s`` as the step adds it, not compute."""
        return self.tp_comm_s + self.ep_comm_s + self.pp_comm_s + self.zero3_exposed_s

    @property
    def _exposed_comm_s(self) -> float:
        return (self.tp_comm_s + self.ep_comm_s + self.pp_comm_s + self.dp_exposed_s
                + self.zero3_exposed_s)

    @property
    def node_profile(self) -> NodeProfile:
        """One node's share of the step (:class:`NodeProfile`; a bare chip is a node of one):
        compute (the micro-batches less the collectives inside them), exposed communication,
        bubble and optimizer add up to the step."""
        node = getattr(self.system, "node", self.system)
        per_node = min(int(getattr(node, "accelerators_per_node", 1) or 1), self.devices)
        return NodeProfile(
            node=getattr(node, "name", str(node)), devices=per_node, step_s=self.step_s,
            compute_s=self.compute_s - self._in_microbatch_comm_s,
            communication_s=self._exposed_comm_s,
            bubble_s=self.bubble_s, optimizer_s=self.optimizer_s,
            memory_bytes=float(self.memory.total(1)), capacity_bytes=self.memory.usable,
            tokens_per_s=float(self.tokens_per_s) * per_node / self.devices,
            mfu=self.mfu, hfu=self.hfu, feasible=self.feasible, reason=self.reason)

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
        useful = self.step_s - self.bubble_s - self.optimizer_s - self._exposed_comm_s
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
        parts = {"compute": self.compute_s - self._in_microbatch_comm_s,
                 "pipeline bubble": self.bubble_s, "interconnect": self._exposed_comm_s,
                 "optimizer": self.optimizer_s}
        return max(parts, key=parts.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("MFU convention: 6 N + 12 L h s flops per token (Megatron/PaLM, non-causal)"
                if self._transformer else "MFU convention: 3 x forward flops per sample",
                "the slowest pipeline stage sets the pace; stages hold an even share of layers",
                "ranks ordered tp, cp, dp, pp (Megatron): tensor-parallel groups are adjacent",
                f"{self.memory.usable / 1e9:.4g} GB usable per device (memory_utilization of "
                "the capacity; the rest is CUDA context, NCCL buffers, fragmentation)",
                "weights, gradients and activations 16-bit (fp32 for fp32/tf32), fp32 master "
                "weights and optimizer state") + \
            ((self._attention_assumption(),) if self._transformer else ()) + \
            ((("ZeRO-3: each pass gathers the stage's weights over the data-parallel group, "
               "the backward reduce-scatters the gradients (overlapped); the backward's "
               "gathers " + ("overlap compute (backward_prefetch='pre', FSDP BACKWARD_PRE)"
                             if self.backward_prefetch == "pre" else
                             "are waited for (backward_prefetch='post', FSDP BACKWARD_POST)")
               + self._runtime_assumption()),)
             if self.zero_stage == 3 else ())

    def _runtime_assumption(self) -> str:
        if self.sharding_runtime is None:
            return "; at the collective model's NCCL bus bandwidth"
        from ..zoo import ShardingRuntimes
        spec = ShardingRuntimes.get(self.sharding_runtime)
        return (f"; each rank receives at most {spec.throughput.to('GB/s').magnitude:.4g} GB/s "
                f"in them, {spec.name}'s measured throughput (sharding_runtime="
                f"'{spec.key}')")

    def _attention_assumption(self) -> str:
        if self.attention_kernel == "materialized":
            return "attention materialized: scores, softmax and dropout as kernels of their own"
        name = {"flash": "FlashAttention-2", "flash1": "FlashAttention-1",
                "triton": "Triton FlashAttention (at FlashAttention-1's speed)",
                "xformers": "xformers memory-efficient attention"}[self.attention_kernel]
        return (f"attention: {name}, forward + backward at {self.attention_speed:.3g} x the "
                f"calibrated forward efficiency at {self.seq_len} tokens (measured ratios, "
                "Dao 2023 Fig. 4c)")

    def headline(self) -> dict[str, Any]:
        return {
            "model": self.model.name, "system": getattr(self.system, "name", str(self.system)),
            "hardware": self.hardware.name, "batch_size": self.batch_size,
            "seq_len": self.seq_len, "precision": self.precision,
            "parallelism": self.parallelism, "microbatch_size": self.microbatch_size,
            "microbatch_count": self.microbatch_count,
            "step_latency_total": self.step_latency_total,
            "step_latency_low": self.band[0], "step_latency_high": self.band[1],
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
            f"global batch {self.batch_size}"
            + (f" x {self.seq_len} tokens" if self._transformer else " samples")
            + f", {self.precision}",
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
            f"(overlapped with attention) {self.cp_comm_s * 1e3:.3g} ms"
            + (f", ZeRO-3 gathers and reduce-scatters {self.zero3_comm_s * 1e3:.4g} ms "
               + ("(overlapped; " if self.backward_prefetch == "pre" else
                  "(backward gathers waited for, BACKWARD_POST; ")
               + (f"capped by sharding_runtime '{self.sharding_runtime}'; "
                  if self.sharding_runtime is not None else "")
               + f"{self.zero3_exposed_s * 1e3:.4g} ms not hidden by compute)"
               if self.zero_stage == 3 else ""),
            "  MFU = " + ("(6 N + 12 L h s) x tokens" if self._transformer else
                          "3 x forward flops x samples")
            + " / (devices x peak x step) = "
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
        Option("rank_order", "tp-cp-dp-pp", "rank layout, innermost first: Megatron's "
               "'tp-cp-dp-pp' or 'tp-cp-pp-dp' (data parallelism outermost, as Llama 3)"),
        Option("attention_kernel", "flash", "'flash' (FlashAttention-2), 'flash1' "
               "(FlashAttention's first release), 'triton' (FlashAttention in Triton, "
               "2022-23), 'xformers' (xformers' memory-efficient attention): the last three "
               "slower than FlashAttention-2 by a measured ratio per sequence length; or "
               "'materialized' (scores in memory, pre-2022 kernels)"),
        Option("first_stage_layers", None, "layers on the first pipeline stage (default: an "
               "even share; Megatron's decoder_first_pipeline_num_layers)"),
        Option("last_stage_layers", None, "layers on the last pipeline stage (default: an "
               "even share)"),
        Option("dropout", True, "attention and hidden dropout on (Megatron-LM's 0.1): their "
               "masks are stored for the backward pass, and over materialized scores the "
               "attention dropout is a pass of its own (Llama-style models train without)"),
        Option("backward_prefetch", "pre", "ZeRO-3: when the backward gathers the next "
               "layer's weights: 'pre', before the current layer's gradients, so compute hides "
               "the gather (FSDP's BACKWARD_PRE, its default; DeepSpeed's prefetch); 'post', "
               "after them (FSDP's BACKWARD_POST, Composer's default): each backward gather "
               "is waited for, only the reduce-scatter overlaps"),
        Option("sharding_runtime", None, "ZeRO-3: the software whose measured throughput "
               "caps the gathers and reduce-scatters (a ShardingRuntimes key, e.g. "
               "'deepspeed_2021'); default None: NCCL at the fabric's calibrated bus bandwidth"),
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
              rank_order: str = "tp-cp-dp-pp", attention_kernel: str = "flash",
              first_stage_layers: int | None = None, last_stage_layers: int | None = None,
              dropout: bool = True, backward_prefetch: str = "pre",
              sharding_runtime: str | None = None,
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
        call = None
        if isinstance(batch_size, DistributedConfig):
            config, batch_size = batch_size, None
        if config is None:
            values = (batch_size, seq_len, precision, tp_size, pp_size, cp_size, ep_size,
                      dp_size, microbatch_size, microbatch_count, v_stages, sequence_parallel,
                      zero_stage, activation_recomputation, overlap_comm, optimizer, schedule,
                      capacity_factor, memory_utilization, token_budget, rank_order,
                      attention_kernel, first_stage_layers, last_stage_layers, dropout,
                      backward_prefetch, sharding_runtime)
            # A keyword call is cached on its arguments and their types (True == 1 and
            # 2048.0 == 2048 must not reuse a result that validated the other value);
            # unhashable arguments are never cached, so validation names them.
            call = (model, fleet, values, tuple(map(type, values)))
            result = _PLANS.get(call)
            if result is not None:
                return result
            # Only the values that differ from a field's default (in value or type) are
            # validated: a default is valid by construction, and skipping it halves the work.
            config = DistributedConfig(**{
                name: value for (name, default), value in zip(_CONFIG_DEFAULTS, values)
                if not (type(value) is type(default) and value == default)})
        elif not isinstance(config, DistributedConfig):
            raise ValidationError("config", "must be a DistributedConfig. Got "
                                  f"{type(config).__name__} instead.", owner=OWNER)
        # The config holds the batch too, so the whole (frozen) result is what is cached.
        key = (model, fleet, config)
        result = _PLANS.get(key)
        if result is None:
            result = _PLANS.put(key, _solve_one(model, fleet, config))
        if call is not None:
            _PLANS.put(call, result)
        return result


# DistributedConfig's fields and defaults, in the order of solve's keyword arguments.
_CONFIG_DEFAULTS = tuple((name, f.default) for name, f in DistributedConfig.model_fields.items())


# ------------------------------------------------------------------------- shared core
# One code path for a single config and a whole search: a lowering choice (tp, cp, ep,
# recomputation, sequence parallelism) is prepared once as section tables (pre, stack, post,
# hand-offs); pipeline depth, interleaving, micro-batch size, data parallelism and ZeRO are
# closed forms over numpy arrays on top (ParallelismOptimizer broadcasts them).

_PARTS = ContentCache("training parts", maxsize=512)
_DP_TERMS = ContentCache("data-parallel collective terms", maxsize=4096)


@dataclass(frozen=True)
class Parts:
    """Prepared section tables of one lowering choice, and its local parameters."""

    fwd: dict[str, Any]           # pre, stack, post, send -> Prepared | None
    bwd: dict[str, Any]           # pre, stack, post, recv_grad -> Prepared | None
    params: dict[str, float]      # local parameters per device: pre, stack (all layers), post,
                                  # tied (the LM head's copy of a tied embedding, in post)
    eff: Any
    layers: int
    model_flops_per_sample: float  # the MFU convention's flops per sequence (or image)
    act_per_sample: float = 0.0    # layered models: stored activations per sample (bytes)
    p2p_bytes_per_sample: float = 0.0  # a pipeline hand-off's message per sample (bytes)
    regather: bool = False         # full recomputation: the backward re-runs the forward
    overlap_slowdown: float = OVERLAP_SLOWDOWN["nominal"]  # s of the overlap rule
    attention_speed: float = 1.0   # fused attention's speed / the calibrated efficiency
    # Per micro-batch size: each section's times, activity and collectives (_section_terms).
    memo: dict = field(default_factory=dict, compare=False, repr=False)


def _lowering_check(model, tp: int, cp: int, ep: int, seq: int) -> None:
    if not isinstance(model, TransformerSpec):
        for name, value in (("tp_size", tp), ("cp_size", cp), ("ep_size", ep)):
            if value != 1:
                raise ValidationError(name, f"must be 1 for {model.name} ({model.architecture}"
                                      "): layered models train data-parallel. Got "
                                      f"{value} instead.", owner=OWNER)
        return
    if model.heads % tp:
        raise ValidationError("tp_size", f"must divide the number of attention heads "
                              f"(={model.heads}). Got {tp} instead.", owner=OWNER)
    if seq % cp:
        raise ValidationError("cp_size", f"must divide seq_len (={seq}). Got {cp} instead.",
                              owner=OWNER)
    if ep > 1 and (model.moe is None or model.moe.experts % ep):
        raise ValidationError("ep_size", "must divide the number of experts" + (
            f" (={model.moe.experts})" if model.moe else f"; {model.name} has none")
            + f". Got {ep} instead.", owner=OWNER)


def attention_speed(kernel: str, seq: int, variant: str = "nominal") -> float:
    """A fused attention kernel's forward + backward speed over a causal sequence of ``seq``
    query tokens, relative to the forward speed the device's attention efficiency is
    calibrated at (``core.calibration``): FlashAttention-2's measured curve
    (``training_attention_factor``) times the kernel's speed over FlashAttention-2's
    (``attention_kernel_ratio``). "flash1" is FlashAttention's first CUDA release. "triton",
    the Triton FlashAttention of 2022-23 (llm-foundry's ``flash_attn_triton.py``, whose author
    finds its forward + backward "slightly slower" than the CUDA FlashAttention of the time),
    runs at FlashAttention-1's speed, and at the slow edge of the band at OpenAI's
    ``triton.ops.flash_attention``'s, measured in the same figure; "xformers", xformers'
    memory-efficient attention (its cutlass kernel), at its own measured speed. Materialized
    attention is 1: it is priced as its own kernels."""
    if kernel == "materialized":
        return 1.0
    factor = training_attention_factor(seq)
    if kernel == "flash1" or (kernel == "triton" and variant != "slow"):
        return factor * attention_kernel_ratio("flash1", seq)
    if kernel == "triton":
        return factor * attention_kernel_ratio("triton_ops", seq)
    if kernel == "xformers":
        return factor * attention_kernel_ratio("xformers", seq)
    return factor


def parts_for(model: TransformerSpec, hardware: HardwareSpec, path, precision: str, seq: int,
              tp: int, cp: int, ep: int, recompute: str, sp: bool, capacity_factor: float,
              devices: int, flash: bool = True, dropout: bool = True,
              variant: str = "nominal", attention_kernel: str = "flash") -> Parts:
    """The prepared sections of one micro-batch sequence on one device (module docstring),
    with the efficiencies and collective fits at ``variant`` (nominal, or the calibration
    spread's fast or slow edge: the band).
    ``flash=False``: attention with materialized scores (pre-2022 kernels): the scores
    round-trip memory, and the backward runs four matmuls to the forward's two instead of
    FlashAttention-2's five (no recomputation of the scores); with ``dropout`` its attention
    dropout is a kernel of its own over the scores (FlashAttention fuses it).
    ``attention_kernel``: the fused kernel (flash, flash1, triton, xformers), whose training
    speed relative to the device's calibrated attention efficiency (:func:`attention_speed`)
    scales that efficiency."""
    key = (model, hardware, path, precision, seq, tp, cp, ep, recompute, sp, capacity_factor,
           devices, flash, dropout, variant, attention_kernel)
    hit = _PARTS.get(key)
    if hit is not None:
        return hit
    _lowering_check(model, tp, cp, ep, seq)
    e = _element_bytes(precision)
    eff = efficiency_for(hardware, precision).variant(variant)
    path = path.at(variant)
    if not isinstance(model, TransformerSpec):
        return _PARTS.put(key, _layered_parts(model, hardware, path, precision, e, recompute,
                                              eff, variant))
    q = seq // cp
    # Fused attention trains at its measured forward + backward speed over a causal sequence
    # (the calibration measures a forward pass); materialized scores are kernels of their own.
    ratio = attention_speed(attention_kernel if flash else "materialized", q, variant)
    if ratio != 1.0:
        eff = replace(eff, attention_max=eff.attention_max * ratio)
    # Ring attention over a causal sequence: each rank's queries see half the rest on average.
    fwd = lower_segments(model, [Segment(q, (seq - q) // 2)], e=e, kv_e=e, we=e, tp=tp, pp=1,
                         flash=flash, all_logits=True, dropout=dropout)
    stack = fwd.section == Section.STACK
    if sp and tp > 1:        # norms and dropout sharded over the TP group
        fwd = scale_rows(fwd, stack & (fwd.kind == OpKind.NORM), flops=1 / tp, act=1 / tp)
    expert = np.array([".experts." in n for n in fwd.names])
    if model.moe is not None:
        fwd = scale_rows(fwd, expert, flops=capacity_factor, act=capacity_factor,
                         weight=1 / ep, drop_moe=ep > 1)
    # Local parameters per section: the weight rows' shares of the resident weights, experts
    # split over ep as well.
    w_rows = fwd.weight_bytes * fwd.count
    expert_w = float(w_rows[expert].sum()) * ep
    expert_share = expert_w / max(float(w_rows.sum()) + expert_w * (1 - 1 / ep), 1e-30)
    total_local = model.parameter_count / tp * (1 - expert_share + expert_share / ep)
    # The embedding tables have no weight row (a lookup reads a few of their rows), yet the
    # first stage holds them, split over the TP group (Megatron-LM's vocab-parallel
    # embedding). A tied LM head reads the same table on the last stage, which keeps a copy
    # of it when it is not also the first (Megatron-LM all-reduces the two copies' gradients).
    embedding = (model.vocab + (model.max_context if model.position == "learned" else 0)) \
        * model.hidden / tp
    tied = model.vocab * model.hidden / tp if model.tied_embeddings and model.lm_head and \
        model.kind != "encoder" else 0.0
    rest = total_local - embedding + tied
    w_total = max(float(w_rows.sum()), 1e-30)
    params = {sec: rest * float(w_rows[fwd.section == code].sum()) / w_total
              for sec, code in (("pre", Section.PRE), ("stack", Section.STACK),
                                ("post", Section.POST))}
    params["pre"] += embedding
    params["tied"] = tied
    h = model.hidden
    kv_dim = model.n_kv_heads * model.d_head
    moe_layers = (model.layers - model.moe.dense_layers) if model.moe else 0
    fwd = with_collectives(fwd, [
        dict(name="cp_kv_allgather", kind="allgather", group=cp, count=model.layers,
             message_bytes=2 * seq * max(kv_dim / tp, model.d_head) * e, span=tp * cp,
             overlap=True),
        dict(name="ep_alltoall", kind="alltoall", group=ep, count=2 * moe_layers,
             message_bytes=q * h * e * (model.moe.active if model.moe else 0)
             * capacity_factor, span=tp * ep),
    ])
    bwd = training_table(fwd, recompute=recompute, include_forward=False,
                         attention_backward=ATTENTION_BACKWARD if flash else 2.0)

    def prep(tables: dict) -> dict:
        return {k: None if t is None else prepare(t, hardware, precision, eff, path=path)
                for k, t in tables.items()}

    f_sec, b_sec = section_tables(fwd), section_tables(bwd)
    n_active = model.active_parameter_count if model.moe else model.parameter_count
    # Model flops per sequence: 6 N + 12 L h s per token (attention at full length).
    per_token = 6 * n_active + 12 * model.layers * model.heads * model.d_head * seq
    parts = Parts(fwd=prep({k: f_sec[k] for k in ("pre", "stack", "post")}),
                  bwd=prep({k: b_sec[k] for k in ("pre", "stack", "post")}),
                  params=params, eff=eff, layers=model.layers, attention_speed=ratio,
                  model_flops_per_sample=float(per_token) * seq,
                  # A hand-off moves the activations of the micro-batch's tokens, split over
                  # the TP ranks (sequence parallelism, or Megatron's scatter-gather of the
                  # replicated tensor; Narayanan et al. 2021 sec. 4.1).
                  p2p_bytes_per_sample=q * h * e / tp, regather=recompute == "full",
                  overlap_slowdown=OVERLAP_SLOWDOWN[variant])
    return _PARTS.put(key, parts)


def _layered_parts(model, hardware, path, precision, e, recompute, eff,
                   variant: str = "nominal") -> Parts:
    """A CNN or other layered model: one image per sample, data-parallel only. Model flops
    per sample are 3x the forward (forward + data and weight gradients); stored activations
    are each operator's output (half the bytes it moves forward), all kept for the
    backward unless recomputed."""
    from ..workloads import lower
    fwd = lower(model, phase="forward", seq_len=1, e=e)
    bwd = training_table(fwd, recompute="none", include_forward=False)

    def prep(t):
        return prepare(t, hardware, precision, eff, path=path)

    f_sec, b_sec = section_tables(fwd), section_tables(bwd)
    fwd_flops = float(fwd.flops_per_sample @ fwd.count)
    acts = float((fwd.act_bytes_per_sample * fwd.count).sum()) / 2
    if recompute == "full":
        acts = float(fwd.act_peak_bytes_per_sample)
    return Parts(fwd={k: None if f_sec[k] is None else prep(f_sec[k])
                      for k in ("pre", "stack", "post")},
                 bwd={k: None if b_sec[k] is None else prep(b_sec[k])
                      for k in ("pre", "stack", "post")},
                 params={"pre": float(model.parameter_count), "stack": 0.0, "post": 0.0,
                         "tied": 0.0},
                 eff=eff, layers=1, model_flops_per_sample=3.0 * fwd_flops,
                 act_per_sample=acts, overlap_slowdown=OVERLAP_SLOWDOWN[variant])


def _part_times(prepared, mbs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compute, blocking, overlappable) seconds of a section at each micro-batch size."""
    if prepared is None:
        z = np.zeros_like(mbs, dtype=float)
        return z, z, z
    c, b, o = evaluate_parts(prepared, mbs[:, None].astype(float))
    return np.asarray(c), np.asarray(b), np.asarray(o)


_BLOCK = 64      # micro-batch sizes 1..64 are priced together the first time one is asked


def _section_terms(parts: Parts, mbs: int) -> dict[tuple[str, str], tuple]:
    """Each section's (compute, blocking, overlappable) seconds, (compute, memory) busy
    seconds and seconds per collective group at micro-batch size ``mbs``, as floats: what one
    config needs from the operator tables. Sizes up to _BLOCK are evaluated as one block (a
    numpy pass over 64 sizes costs about what one does) and kept in ``parts.memo``; a larger
    size is evaluated alone each time."""
    hit = parts.memo.get(mbs)
    if hit is not None:
        return hit
    from ..core.power import busy_seconds
    sizes = np.arange(1, _BLOCK + 1) if mbs <= _BLOCK else np.array([mbs])
    cols = {}
    for side in ("fwd", "bwd"):
        for sec, p in getattr(parts, side).items():
            if p is None:
                continue
            times = _part_times(p, sizes)
            busy = busy_seconds(p, sizes[:, None].astype(float))
            comm = _comm_by_name(p, sizes[:, None, None].astype(float))
            cols[side, sec] = (times, busy, comm)
    out = {}
    for j, size in enumerate(sizes.tolist()):
        out[size] = {key: (tuple(float(t[j]) for t in times), tuple(float(b[j]) for b in busy),
                           {name: float(t[j]) for name, t in comm.items()})
                     for key, (times, busy, comm) in cols.items()}
    if mbs <= _BLOCK:          # larger sizes are priced alone and not kept: the memo stays small
        parts.memo.update(out)
    return out[mbs]


def stage_layers_of(layers: int, pp, stage, layout=None):
    """Vectorized ``stage_layers``: layers on ``stage`` of ``pp`` (remainder on the first).
    ``layout`` = (first, last): the first and/or last stage's layers as set (None: an even
    share), the other stages splitting the rest evenly (remainder on the earliest)."""
    if layout is None or layout == (None, None):
        return layers // pp + (stage < layers % pp)
    first, last = layout
    fixed = (first is not None) + (last is not None)
    rest = layers - (first or 0) - (last or 0)
    n = np.maximum(pp - fixed, 1)
    j = stage - (first is not None)                  # index among the evenly split stages
    even = rest // n + (j < rest % n)
    out = np.where((stage == 0) & (first is not None), first or 0, even)
    return np.where((stage == pp - 1) & (last is not None), last or 0, out)


def check_layout(layers: int, pp: int, first, last, owner: str) -> None:
    """The first/last stage layer counts leave at least one layer for every other stage."""
    fixed = (first is not None) + (last is not None)
    rest = layers - (first or 0) - (last or 0)
    others = pp - fixed
    field = "first_stage_layers" if first is not None else "last_stage_layers"
    if rest < 0:
        given = " + ".join(f"{n}={v}" for n, v in (("first_stage_layers", first),
                                                    ("last_stage_layers", last))
                           if v is not None)
        raise ValidationError(field, f"must leave layers for the other stages: {given} "
                              f"exceeds the {layers} layers of the model.", owner=owner)
    if rest < others or (others == 0 and rest != 0):
        raise ValidationError(field, f"leaves {rest} of the {layers} layers for {others} "
                              f"other stage{'s' if others != 1 else ''} of pp_size={pp}"
                              + (": the first and last stages must hold them all"
                                 if others == 0 else ": each needs at least one") + ".",
                              owner=owner)


def stage_kinds(pp):
    """The stages that can be slowest: the first (pre-stack rows, most layers), one in the
    middle (both hand-offs), the last (post-stack rows)."""
    return [pp * 0, np.minimum(1, pp - 1), pp - 1]


def factorize(x) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each element into them) of an integer array, like
    ``np.unique(x, return_inverse=True)``; a search's columns hold a handful of small
    integers, so a table of their range replaces the sort when the range is small.

    >>> [a.tolist() for a in factorize(np.array([8, 2, 8, 4]))]
    [[2, 4, 8], [2, 0, 2, 1]]
    """
    x = np.asarray(x)
    if x.size and x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi <= 4 * x.size + 4096:
            seen = np.zeros(hi + 1, dtype=bool)
            seen[x] = True
            return np.flatnonzero(seen), (np.cumsum(seen) - 1)[x]
    return np.unique(x, return_inverse=True)


@dataclass(frozen=True)
class StageKind:
    """One stage kind (first, middle, last) across configs: per distinct depth (``*_d``) its
    index, layers, share of the stack and whether it holds the pre- and post-stack rows;
    ``depth`` is each config's depth among them, and the plain names are per config."""

    depth: Any
    stage_d: Any
    layers_d: Any
    share_d: Any
    first_d: Any
    last_d: Any

    stage = property(lambda self: self.stage_d[self.depth])
    layers = property(lambda self: self.layers_d[self.depth])
    share = property(lambda self: self.share_d[self.depth])
    first = property(lambda self: self.first_d[self.depth])
    last = property(lambda self: self.last_d[self.depth])


def stage_kind_table(layers: int, pp, layout=None) -> list[StageKind]:
    """The three stage kinds for every config of ``pp``, computed once per distinct depth
    (a search has a handful) and spread back over the configs. ``layout``: see
    :func:`stage_layers_of`."""
    depths, inv = factorize(pp)
    out = []
    for stage_d in stage_kinds(depths):
        layers_d = stage_layers_of(layers, depths, stage_d, layout)
        out.append(StageKind(depth=inv, stage_d=stage_d, layers_d=layers_d,
                             share_d=layers_d / layers, first_d=stage_d == 0,
                             last_d=stage_d == depths - 1))
    return out


def stage_params(parts: Parts, kind: StageKind):
    """Local parameters on one device of a stage ``kind``, per config (from its depths)."""
    tied = parts.params["tied"]      # one copy of a tied table when the first stage is the last
    return (parts.params["pre"] * kind.first_d + parts.params["stack"] * kind.share_d
            + parts.params["post"] * kind.last_d
            - tied * (kind.first_d & kind.last_d))[kind.depth]


def step_times(parts: Parts, mbs_idx, mbs_values: np.ndarray, pp, v, p2p,
               gather: tuple[Any, Any] | None = None,
               kinds: list[StageKind] | None = None,
               params: list | None = None, post: bool = False) -> list[tuple[Any, Any]]:
    """(forward, backward) seconds of one micro-batch on each stage kind, broadcast over
    configs: the overlap rule per pass, ``B + overlapped(C, O)``. ``mbs_idx`` indexes
    ``mbs_values`` (the distinct micro-batch sizes evaluated); ``p2p``: seconds of one
    pipeline hand-off per config (sent ``v`` times per micro-batch, activations forward to
    the next stage, gradients back). ``gather``: ZeRO-3's (seconds, seconds per local
    parameter) of one weight all-gather over the data-parallel group (overlapped; the
    backward also reduce-scatters the gradients: the same cost, and under full recomputation
    gathers the weights once more for the forward it re-runs: ZeRO-3's 3 x params per step
    [Rajbhandari et al. 2020, sec. 7.2] are a forward gather, a backward gather and the
    reduce-scatter, and a recomputed forward needs the weights ZeRO-3 does not keep). ``post``
    (FSDP's BACKWARD_POST): the backward's gathers start only once the layer before has its
    gradients, so they add to the pass; its reduce-scatter still overlaps."""
    f = {k: _part_times(p, mbs_values) for k, p in parts.fwd.items()}
    b = {k: _part_times(p, mbs_values) for k, p in parts.bwd.items()}
    mbs_idx = np.asarray(mbs_idx)

    def pass_time(d, w, cell, hand_on, extra, waited=0.0):
        # The sections' (compute, blocking, overlappable) seconds depend on the depth and the
        # micro-batch size alone: a table over the distinct pairs, gathered once per config.
        c, blk, ov = (sum(w[k][:, None] * d[k][i][None, :] for k in w).ravel()[cell]
                      for i in range(3))
        return blk + waited + hand_on * v_p2p + overlapped(c, ov + extra,
                                                           parts.overlap_slowdown)

    v_p2p = v * p2p
    out = []
    kinds = kinds if kinds is not None else stage_kind_table(parts.layers, pp)
    for i, kind in enumerate(kinds):
        w = {"pre": kind.first_d, "stack": kind.share_d, "post": kind.last_d}
        cell = kind.depth * len(mbs_values) + mbs_idx
        one = 0.0 if gather is None else gather[0] + gather[1] * (
            params[i] if params is not None else stage_params(parts, kind))
        gathers = (2 if parts.regather else 1) * one      # the backward's; + 1 reduce-scatter
        out.append((pass_time(f, w, cell, (~kind.last_d)[kind.depth], one),
                    pass_time(b, w, cell, (~kind.first_d)[kind.depth],
                              one + (0.0 if post else gathers), gathers if post else 0.0)))
    return out


def dp_exposed(t_b, reduction, v, pp, slowdown: float):
    """Seconds of the DP gradient ``reduction`` the step waits for, overlapped with the
    backward (module docstring): each of the ``v`` chunks' reductions starts when its last
    micro-batch backward is done, so the last chunk's share hides behind its own backward
    ``t_b / v`` and the whole behind ``W = ((v - 1) pp + 1) t_b / v``; ``v`` = 1 is the last
    micro-batch's backward ``t_b``.

    >>> float(dp_exposed(1.0, 3.0, 1, 4, 0.0)), float(dp_exposed(1.0, 3.0, 2, 4, 0.0))
    (2.0, 1.0)
    """
    window = ((v - 1) * pp + 1) * t_b / v
    return _maximum(overlapped(t_b / v, reduction / v, slowdown) - t_b / v,
                    overlapped(window, reduction, slowdown) - window)


def overlapped(compute, comm, slowdown: float):
    """Seconds until both ``compute`` and a ``comm`` overlapped with it are done, the compute
    slowed by ``slowdown`` while they share the device (module docstring):
    ``max(comm, compute + comm * s / (1 + s))``; ``s`` = 0 is the ideal ``max(compute, comm)``.
    Broadcasts."""
    return _maximum(comm, compute + comm * (slowdown / (1.0 + slowdown)))


def _maximum(a, b):
    """``np.maximum``, in plain Python when both are scalars (one config's hot path)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a if a >= b else b
    return np.maximum(a, b)


def _minimum(a, b):
    """``np.minimum``, in plain Python when both are scalars."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a if a <= b else b
    return np.minimum(a, b)


def _where(cond, a, b):
    """``np.where``, in plain Python when the condition is one bool."""
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    return np.where(cond, a, b)


def activation_bytes(model: TransformerSpec, *, tp, pp, cp, v, stage, m, mbs, seq: int,
                     e: float, sp: bool, recompute: str, schedule: str,
                     capacity_factor: float, flash: bool = True, layers=None,
                     dropout: bool = True, kept: float | None = None):
    """Activation bytes held by one device of ``stage`` (module docstring); broadcasts.
    ``layers``: the stage's layers when the caller has them (else derived); ``kept``:
    :func:`kept_per_token` of these arguments, when the caller has it."""
    if kept is None:
        kept = kept_per_token(model, tp, seq, sp, recompute, capacity_factor, flash, dropout)
    if layers is None:
        layers = stage_layers_of(model.layers, pp, stage)
    per_layer, logits = activation_terms(model, tp=tp, cp=cp, mbs=mbs, seq=seq, e=e, kept=kept)
    return per_layer * layers * in_flight_microbatches(schedule, m, pp, stage, v) + \
        _where(stage == pp - 1, logits, 0.0)


def activation_terms(model: TransformerSpec, *, tp, cp, mbs, seq: int, e: float,
                     kept: float) -> tuple:
    """(bytes one layer keeps per in-flight micro-batch, the last stage's fp32 logits per
    micro-batch) on one device: :func:`activation_bytes` is ``layers x in-flight x`` the
    first, plus the second on the last stage."""
    tokens = seq / cp * e / 2                # a sequence's tokens, in 16-bit element units
    return mbs * tokens * kept, mbs * 4 * seq / cp * model.vocab / tp


def in_flight_microbatches(schedule: str, m, pp, stage, v):
    """Micro-batches whose activations a ``stage`` holds at once: all ``m`` under GPipe;
    under 1F1B min(m, pp - stage), and an interleaved schedule's first stage
    (1 + (pp - 1) / (pp v)) times that (one stage holds no more). Broadcasts."""
    if schedule == "gpipe":
        return m * 1.0
    in_flight = _minimum(m, pp - stage)
    first = (v > 1) & (stage == 0) & (pp > 1)
    if first is True or (first is not False and np.any(first)):
        in_flight = _where(first, in_flight * (1 + (pp - 1) / (pp * v)), in_flight)
    return in_flight


_KEPT = ContentCache("activation elements kept per token", maxsize=1024)


def kept_per_token(model: TransformerSpec, tp: int, seq: int, sp: bool, recompute: str,
                   capacity_factor: float, flash: bool = True, dropout: bool = True) -> float:
    """16-bit elements one layer keeps per token for the backward pass on one of ``tp``
    devices (Korthikanti et al. 2022; module docstring): a constant of the model and the
    lowering, so it is worked out once and a config's activations are one product. Without
    ``dropout`` the attention and MLP dropout masks (one byte per element of the hidden
    state each, ``h`` bytes per token) are not stored."""
    key = (model, tp, seq, sp, recompute, capacity_factor, flash, dropout)
    hit = _KEPT.get(key)
    if hit is not None:
        return hit
    h = model.hidden
    kv_dim = model.n_kv_heads * model.d_head
    mats = 2 if model.ffn_gated else 1
    mask = h if dropout else 0            # one dropout mask each in attention and the MLP
    attn = 6 * h + mask + 4 * kv_dim

    def mlp(width: float) -> float:
        return 2 * h + mask + 2 * (mats + 1) * width

    moe_frac = 0.0 if model.moe is None else \
        (model.layers - model.moe.dense_layers) / model.layers
    per_dense = attn + mlp(model.ffn) + 4 * h
    per_moe = per_dense
    if model.moe is not None:
        mo = model.moe
        width = mo.expert_ffn * mo.active * capacity_factor + mo.expert_ffn * mo.shared_experts
        per_moe = attn + mlp(width) + 4 * h
    per_layer = (1 - moe_frac) * per_dense + moe_frac * per_moe
    if recompute == "full":
        kept = 2 * h / (tp if sp else 1)
    else:
        # Replicated without sequence parallelism: the norms' inputs (4h), the attention and
        # MLP inputs (4h) and the dropout masks (2h).
        rep_ = 8 * h + 2 * mask
        kept = per_layer / tp if sp else rep_ + (per_layer - rep_) / tp
        if not flash and recompute == "none":
            # Materialized scores: softmax output, dropout mask and output, 5 a s bytes per
            # token per layer (Korthikanti et al. 2022, Table 2); selective recomputation
            # exists to drop exactly these.
            kept = kept + 5 * model.heads * seq / tp
    return _KEPT.put(key, float(kept))


def _comm_by_name(p, batch) -> dict[str, Any]:
    """Seconds per pass of each collective row group (before the overlap rule); ``batch`` an
    int, or an array of shape (n, 1, 1) for n sizes at once (then arrays of n)."""
    if p is None or p.comm_rows is None:
        return {}
    per = np.min(p.comm_a + p.comm_b * batch, axis=-1) * p.count[p.comm_rows]
    out: dict[str, Any] = {}
    for j, i in enumerate(p.comm_rows):
        name = p.table.names[i].split(".")[0]
        t = per[..., j]
        out[name] = out.get(name, 0.0) + (float(t) if np.ndim(t) == 0 else t)
    return out


def optimizer_seconds(parts: Parts, nbytes):
    """The fused update: bytes / (BW x eta_mem), at least one kernel launch (broadcasts)."""
    inv = parts.memo.get("inv_bw_eff")
    if inv is None:
        inv = parts.memo["inv_bw_eff"] = next(
            t for t in (*parts.fwd.values(), *parts.bwd.values()) if t is not None).inv_bw_eff
    return _maximum(nbytes * inv, parts.eff.kernel_overhead_s)


def zero3_throughput(runtime: str | None, variant: str = "nominal") -> float | None:
    """Bytes/s each rank receives at most in ZeRO-3's gathers and reduce-scatters under the
    sharding ``runtime`` (a ShardingRuntimes key) at the calibration ``variant``: its
    measured median, or the fastest (``fast``) or slowest (``slow``) measurement; None
    (no runtime): uncapped."""
    if runtime is None:
        return None
    from ..zoo import ShardingRuntimes
    return ShardingRuntimes.get(runtime).bytes_per_s[variant]


def capped_per_byte(b, n, throughput: float | None):
    """Seconds per byte of a gathered (or reduce-scattered) message over ``n`` ranks when
    each rank receives at most ``throughput`` bytes/s: its ``(n - 1) / n`` share of the
    message at that rate, or the collective model's ``b`` where that is slower. Broadcasts."""
    if throughput is None:
        return b
    return _maximum(b, (n - 1) / n / throughput)


def dp_terms(system, n: int, span: int, kind: str = "allreduce",
             variant: str = "nominal") -> tuple[float, float]:
    """(seconds, seconds per byte) of the cheapest algorithm of a data-parallel collective
    over ``n`` ranks spread over ``span`` devices (large messages: the least per-byte cost),
    with the collective fits at ``variant``."""
    if n <= 1:
        return 0.0, 0.0
    key = (system, n, span, kind, variant)
    hit = _DP_TERMS.get(key)
    if hit is None:
        terms = collective_terms(comm_path(system).at(variant), kind, n, span=span)
        hit = _DP_TERMS.put(key, min(terms, key=lambda t: t[1]))
    return hit


def _depth(model) -> int:
    """Layers a pipeline can split: a transformer's stack; a layered model is one stage."""
    return model.layers if isinstance(model, TransformerSpec) else 1


_RESOLVED = ContentCache("training model and system resolutions", maxsize=256)


def _resolve(model, system, c: DistributedConfig):
    """(model, system, accelerator, communication path, precision, sequence length) of a
    call, checked; cached on the arguments as given (names or specs), as Engine's plans are."""
    key = (model, system, c.precision, c.seq_len)
    hit = _RESOLVED.get(key)
    if hit is None:
        hit = _RESOLVED.put(key, _resolve_checked(model, system, c))
    return hit


def _resolve_checked(model, system, c: DistributedConfig):
    system = system_spec(system, OWNER, "fleet")
    hardware, path = resolve_system(system)
    model = resolve(model, hardware)[0]
    if not isinstance(model, (TransformerSpec, LayeredSpec)):
        raise ValidationError("model", f"must be a transformer or a layered model (CNN); "
                              f"{model.name} is {model.architecture}.", owner=OWNER)
    precision = c.precision or ("bf16" if "bf16" in hardware.compute.dense else
                                hardware.compute.default_precision)
    precision = check.precision_of(hardware, precision, OWNER)
    if isinstance(model, LayeredSpec):
        if c.seq_len is not None:
            raise ValidationError("seq_len", f"does not apply to {model.name} (one image per "
                                  "sample); leave it out.", owner=OWNER)
        return model, system, hardware, path, precision, 1
    seq = c.seq_len or model.seq_len_default
    if seq > model.max_context:
        raise ValidationError("seq_len", f"must not exceed {model.name}'s context of "
                              f"{model.max_context} tokens. Got {seq} instead.", owner=OWNER)
    return model, system, hardware, path, precision, seq


def _solve_one(model, system, c: DistributedConfig) -> DistributedResult:
    model, system, hardware, path, precision, seq = _resolve(model, system, c)
    tp, pp, cp, ep, v = c.tp_size, c.pp_size, c.cp_size, c.ep_size, c.v_stages
    # A node or fleet trains on all its accelerators; a bare chip on the group asked for
    # (one device by default), within its own scale-up domain.
    devices = path.total
    if isinstance(system, HardwareSpec):
        devices = tp * pp * cp * (c.dp_size or 1)
        if devices > path.total:
            raise ValidationError("dp_size", f"x tp_size x pp_size x cp_size (={devices}) "
                                  f"exceeds the {path.total}-device domain of {system.name}; "
                                  "use a node or fleet (mlsysim.Systems).", owner=OWNER)
    _lowering_check(model, tp, cp, ep, seq)
    depth = _depth(model)
    if pp * v > depth:
        raise ValidationError("pp_size", f"times v_stages (={pp * v}) must not exceed "
                              f"the layers (={depth}) of {model.name}.", owner=OWNER)
    layout = (c.first_stage_layers, c.last_stage_layers)
    check_layout(depth, pp, *layout, OWNER)
    per_replica = tp * pp * cp
    if c.dp_size is None:
        if devices % per_replica:
            raise ValidationError("tp_size", f"times pp_size times cp_size (={per_replica}) must "
                                  f"divide the {devices} accelerators of {system.name}.",
                                  owner=OWNER)
        dp = devices // per_replica
    else:
        dp = c.dp_size
        if dp * per_replica != devices:
            raise ValidationError("dp_size", f"times tp_size x pp_size x cp_size (={dp} x "
                                  f"{per_replica}) must equal the {devices} accelerators of "
                                  f"{system.name}. Got dp_size={dp} instead.", owner=OWNER)
    if (dp * cp) % ep:       # Sharding's rule, checked here without building one per solve
        raise ValidationError("ep_size", f"must divide dp_size x cp_size (={dp} x {cp}). Got "
                              f"{ep} instead.", owner=OWNER)
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
    if v > 1 and m % pp:
        raise ValidationError("v_stages", f"needs micro-batches per replica (={m}) divisible "
                              f"by pp_size (={pp}) for the interleaved schedule.", owner=OWNER)
    sp = tp > 1 if c.sequence_parallel is None else c.sequence_parallel
    flash = c.attention_kernel != "materialized"     # FlashAttention 1 and Triton's are fused

    def at(variant: str):
        parts = parts_for(model, hardware, path, precision, seq, tp, cp, ep,
                          c.activation_recomputation, sp, c.capacity_factor, devices,
                          flash, c.dropout, variant, attention_kernel=c.attention_kernel)
        g = evaluate_one(
            parts, system, model, tp=tp, pp=pp, cp=cp, dp=dp, v=v, mbs=mbs, m=m,
            zero=c.zero_stage, precision=precision, seq=seq, sp=sp,
            recompute=c.activation_recomputation, schedule=c.schedule,
            overlap=c.overlap_comm, optimizer=c.optimizer,
            capacity_factor=c.capacity_factor, usable=hardware._base["capacity"]
            * c.memory_utilization, rank_order=c.rank_order,
            flash=flash, layout=layout, dropout=c.dropout,
            variant=variant, zero3_split=variant == "nominal",
            backward_prefetch=c.backward_prefetch,
            zero3_throughput=zero3_throughput(c.sharding_runtime, variant))
        return parts, g

    def band() -> tuple[float, float]:
        return tuple(at(edge)[1]["step"] for edge in ("fast", "slow"))

    parts, g = at("nominal")
    stage = (0, min(1, pp - 1), pp - 1)[g["slowest"]]         # stage_kinds()
    share = stage_layers_of(depth, pp, stage, layout) / depth
    # The slowest stage's collectives by name and its devices' activity over the step
    # (micro-batches busy, bubble and optimizer idle-ish: the power model's inputs).
    key = ("stage terms", mbs, pp, stage, layout)
    hit = parts.memo.get(key)
    if hit is None:
        comm: dict[str, float] = {}
        busy_c = busy_m = 0.0
        for (_side, sec), (_, (c_s, m_s), by_name) in _section_terms(parts, mbs).items():
            w = {"pre": stage == 0, "stack": share, "post": stage == pp - 1}[sec]
            for name, t in by_name.items():
                comm[name] = comm.get(name, 0.0) + w * t
            if w:
                busy_c, busy_m = busy_c + w * c_s, busy_m + w * m_s
        hit = (comm, busy_c, busy_m)
        if mbs <= _BLOCK:
            parts.memo[key] = hit
    comm, busy_c, busy_m = dict(hit[0]), hit[1], hit[2]
    hand_offs = v * ((stage < pp - 1) + (stage > 0)) * (pp > 1)
    comm["pp_send"] = float(hand_offs * g["p2p"])
    step_s = g["step"]
    act = (float(min(1.0, m * busy_c / step_s)), float(min(1.0, m * busy_m / step_s)))
    memory = MemoryBudget(weights=g["weights"], gradients=g["grads"],
                          optimizer=g["opt"], activations=g["acts"],
                          usable=hardware._base["capacity"] * c.memory_utilization,
                          per_sample_label="activations")
    notes = []
    window = ((v - 1) * pp + 1) * g["t_b"] / v       # dp_exposed()'s window
    if g["dp"] > window and c.overlap_comm:
        behind = "the last micro-batch's backward" if v == 1 else \
            f"the last backwards of its {v} chunks"
        notes.append(f"DP gradient reduction ({g['dp'] * 1e3:.3g} ms) outlasts {behind} "
                     f"({window * 1e3:.3g} ms)")
    return DistributedResult._built(
        model=model, system=system, hardware=hardware, batch_size=c.batch_size, seq_len=seq,
        precision=precision, parallelism={"dp": dp, "tp": tp, "pp": pp, "cp": cp, "ep": ep},
        microbatch_size=mbs, microbatch_count=m, v_stages=v, step_s=g["step"],
        compute_s=g["compute"], bubble_s=g["bubble"],
        optimizer_s=g["optimizer"], tp_comm_s=m * comm.get("tp_allreduce", 0.0),
        cp_comm_s=m * comm.get("cp_kv_allgather", 0.0),
        ep_comm_s=m * comm.get("ep_alltoall", 0.0), pp_comm_s=m * comm.get("pp_send", 0.0),
        dp_comm_s=g["dp"], dp_exposed_s=g["dp_exposed"],
        zero3_comm_s=g["z3"], zero3_exposed_s=g["z3_exposed"],
        backward_prefetch=c.backward_prefetch, sharding_runtime=c.sharding_runtime,
        model_flops=g["model_flops"],
        hardware_flops=g["hw_flops"],
        peak_flops=hardware._base[f"peak_{precision}"], devices=tp * pp * cp * dp, memory=memory,
        activation_recomputation=c.activation_recomputation, zero_stage=c.zero_stage,
        token_budget=c.token_budget, notes=tuple(notes), activity=act,
        attention_kernel=c.attention_kernel,
        attention_speed=parts.attention_speed,
        _band=band)


def evaluate_grid(parts: Parts, system, model: TransformerSpec, grid: dict[str, np.ndarray], *,
                  precision: str, seq: int, sp: bool, recompute: str, schedule: str,
                  overlap: bool, optimizer: str, capacity_factor: float,
                  usable: float, rank_order: str = "tp-cp-dp-pp",
                  flash: bool = True, layout=None, dropout: bool = True,
                  variant: str = "nominal", zero3_split: bool = False,
                  backward_prefetch: str = "pre",
                  zero3_throughput: float | None = None) -> dict[str, np.ndarray]:
    """Step time, its parts, flops and memory for every config of ``grid`` (arrays of equal
    length: pp, dp, v, mbs, m, zero; tp and cp are those of ``parts``), one lowering choice;
    the data-parallel collectives at ``variant`` (``parts`` carry their own). The single
    solve runs this with arrays of one element, and with ``zero3_split`` (ZeRO-3's gathers
    and their exposed part, timed once more without them: reported, not needed to rank).
    ``zero3_throughput``: bytes/s each rank receives at most in ZeRO-3's collectives (a
    sharding runtime's, :func:`zero3_throughput`); None: the collective model's."""
    pp, dp, v, mbs, m, zero = (np.asarray(grid[k]) for k in ("pp", "dp", "v", "mbs", "m",
                                                                "zero"))
    tp, cp = (_uniform(grid[k], k) for k in ("tp", "cp"))
    e = _element_bytes(precision)
    shard = dp * cp
    values, idx = factorize(mbs)
    # The collectives' (seconds, seconds per byte) depend on the group and its span, which
    # follow from (pp, dp): one lookup per distinct pair, spread over the configs.
    # Rank order (innermost first): Megatron's tp, cp, dp, pp puts pipeline stages
    # outermost (data-parallel ranks tp x cp apart, stages tp x cp x dp apart); Llama 3's
    # tp, cp, pp, dp puts data parallelism outermost (stages tp x cp apart).
    dp_outer = rank_order == "tp-cp-pp-dp"
    depths, pp_i = factorize(pp)
    widths, dp_i = factorize(dp)
    pairs, pair = factorize(pp_i * len(widths) + dp_i)
    pair_pp, pair_dp = depths[pairs // len(widths)], widths[pairs % len(widths)]
    dp_span = tp * cp * pair_dp * (pair_pp if dp_outer else 1)
    p2p_span = 2 * tp * cp * (1 if dp_outer else pair_dp)
    looked_up: dict[tuple, tuple[float, float]] = {}

    def group_terms(kind: str, n_pair, span_pair) -> tuple:
        """(seconds, seconds per byte) per config, one lookup per distinct (n, span)."""
        rows = []
        for n, span in zip(np.broadcast_to(n_pair, pairs.shape).tolist(),
                           np.broadcast_to(span_pair, pairs.shape).tolist()):
            if (kind, n, span) not in looked_up:
                looked_up[kind, n, span] = dp_terms(system, n, span, kind, variant)
            rows.append(looked_up[kind, n, span])
        ab = np.array(rows, dtype=float).reshape(-1, 2)
        return ab[pair, 0], ab[pair, 1]

    kinds = stage_kind_table(parts.layers, pp, layout)
    params = [stage_params(parts, k) for k in kinds]
    gather = None
    if np.any(zero == 3):       # ZeRO-3: gather the stage's weights per pass (overlapped)
        a, b = group_terms("allgather", pair_dp * cp, dp_span)
        b = capped_per_byte(b, dp * cp, zero3_throughput)
        z3 = zero == 3
        gather = (np.where(z3, a, 0.0), np.where(z3, b * e, 0.0))
    p2p = np.zeros(len(pp))
    if np.any(pp > 1) and parts.p2p_bytes_per_sample:
        a, b = group_terms("p2p", np.where(pair_pp > 1, 2, 1), np.where(pair_pp > 1, p2p_span, 1))
        p2p = a + b * parts.p2p_bytes_per_sample * mbs
        if not sp and tp > 1:
            # Without sequence parallelism the receiver all-gathers the tp shards back into
            # the replicated activation over the TP group's links (scatter-gather, ibid.).
            a, b = dp_terms(system, tp, tp, "allgather", variant)
            p2p = p2p + np.where(pp > 1, a + b * parts.p2p_bytes_per_sample * tp * mbs, 0.0)
    post = backward_prefetch == "post"
    stages = step_times(parts, idx, values, pp, v, p2p, gather, kinds, params, post)
    # The slowest stage kind (the first of equals), its backward and its parameters.
    t_slow, t_b = stages[0][0] + stages[0][1], stages[0][1]
    slowest = np.zeros(len(pp), dtype=np.intp)
    for i, (f, b) in enumerate(stages[1:], 1):
        t = f + b
        later = t > t_slow
        t_slow, t_b = np.where(later, t, t_slow), np.where(later, b, t_b)
        slowest = np.where(later, i, slowest)
    compute = m * t_slow
    bubble = (pp - 1) / v * t_slow
    # ZeRO-3's gathers and reduce-scatter per micro-batch on the slowest stage, and the part of
    # them compute does not hide (the same stage timed without them): reported, not re-priced.
    p_max = np.maximum.reduce(params)
    z3_comm = z3_exposed = np.zeros(len(pp))
    if gather is not None and zero3_split:
        cols = np.arange(len(pp))
        one = gather[0] + gather[1] * np.stack(params)[slowest, cols]
        z3_comm = m * (1 + (3 if parts.regather else 2)) * one
        bare = np.stack([f + b for f, b in step_times(parts, idx, values, pp, v, p2p, None,
                                                      kinds, params)])[slowest, cols]
        z3_exposed = m * (t_slow - bare)
    # DP gradient all-reduce (ZeRO-1/2: reduce-scatter + all-gather, the same bytes).
    a, b = group_terms("allreduce", pair_dp * cp, dp_span)
    dp_t = np.where(zero < 3, a + b * p_max * e, 0.0)
    exposed = dp_exposed(t_b, dp_t, v, pp, parts.overlap_slowdown) if overlap else dp_t
    # Optimizer state (core/memory.py) plus the fp32 master copy under mixed precision.
    state = optimizer_state_bytes_per_param(optimizer, model, OWNER) + (4.0 if e < 4 else 0.0)
    update = 2 * (state + e) + e                 # read and write state and weights, read grads
    opt_t = optimizer_seconds(parts, p_max / np.where(zero >= 1, shard, 1) * update)
    step = compute + bubble + opt_t + exposed
    # Memory: bytes per local parameter of weights, gradients and optimizer state as ZeRO
    # shards them, plus each stage kind's activations; the fullest stage kind.
    w_per = e / np.where(zero >= 3, shard, 1)
    g_per = e / np.where(zero >= 2, shard, 1)
    o_per = state / np.where(zero >= 1, shard, 1)
    per_param = w_per + g_per + o_per
    if isinstance(model, TransformerSpec):
        acts = [activation_bytes(model, tp=tp, pp=pp, cp=cp, v=v, stage=k.stage, m=m,
                                 mbs=mbs, seq=seq, e=e, sp=sp, recompute=recompute,
                                 schedule=schedule, capacity_factor=capacity_factor,
                                 flash=flash, layers=k.layers, dropout=dropout)
                for k in kinds]
    else:                    # one stage: the micro-batch's stored activations
        acts = [parts.act_per_sample * mbs * (1.0 if schedule == "1f1b" else m)
                for _ in kinds]
    p_full, a_full = params[0], acts[0]
    total = p_full * per_param + a_full
    for p_k, a_k in zip(params[1:], acts[1:]):
        t = p_k * per_param + a_k
        fuller = t > total
        total, p_full, a_full = (np.where(fuller, t, total), np.where(fuller, p_k, p_full),
                                 np.where(fuller, a_k, a_full))
    # Flops: model (6 N + 12 L h s per token) and hardware (every row executed, all devices).
    samples = (dp * m * mbs).astype(float)        # floats: flops overflow int64 past 9e18
    tokens = samples * seq
    # Hardware flops per sample on one device of a replica, all stages (stages add to one
    # full model), times the replica's tp x cp devices.
    per_sample = sum(p.flops_per_batch for side in (parts.fwd, parts.bwd)
                     for sec, p in side.items()
                     if p is not None and sec not in ("send", "recv_grad"))
    hw = per_sample * tp * cp * samples
    return {"step": step, "compute": compute, "bubble": bubble, "optimizer": opt_t, "p2p": p2p,
            "dp": dp_t, "dp_exposed": exposed, "t_b": t_b, "slowest": slowest,
            "z3": z3_comm, "z3_exposed": z3_exposed,
            "weights": p_full * w_per, "grads": p_full * g_per, "opt": p_full * o_per,
            "acts": a_full, "memory": total, "fits": total <= usable,
            "model_flops": parts.model_flops_per_sample * samples, "hw_flops": hw,
            "tokens": tokens}


def _layout_terms(parts: Parts, system, model, *, tp: int, pp: int, cp: int, dp: int, v: int,
                  mbs: int, zero: int, e: float, sp: bool, overlap: bool, optimizer: str,
                  layout, rank_order: str, variant: str, zero3_split: bool,
                  backward_prefetch: str, zero3_throughput: float | None) -> tuple:
    """:func:`evaluate_one`'s terms that do not depend on the micro-batch count: the stage
    kinds, the slowest stage's pass times, bubble, gathers, hand-off, the DP collective and
    its exposed part, the optimizer update (and ZeRO-3's per-micro-batch gathers)."""
    shard = dp * cp
    dp_outer = rank_order == "tp-cp-pp-dp"
    dp_span = tp * cp * dp * (pp if dp_outer else 1)
    p2p_span = 2 * tp * cp * (1 if dp_outer else dp)
    terms = _section_terms(parts, mbs)
    # stage_kinds(), each distinct stage once (pp = 1 and 2 repeat one): the index of a stage
    # in this list is its first index in the grid's three kinds, as the grid's "slowest" is.
    # A constant of the lowering and the pipeline layout, worked out once.
    kinds = parts.memo.get(("kinds", pp, layout))
    if kinds is None:
        kinds = []
        for stage in dict.fromkeys((0, min(1, pp - 1), pp - 1)):
            layers = int(stage_layers_of(parts.layers, pp, stage, layout))
            first, last = stage == 0, stage == pp - 1
            share = layers / parts.layers
            params = (parts.params["pre"] * first + parts.params["stack"] * share
                      + parts.params["post"] * last - parts.params["tied"] * (first & last))
            kinds.append((stage, layers, share, first, last, params))
        parts.memo["kinds", pp, layout] = kinds
    gather = None
    if zero == 3:
        a, b = dp_terms(system, dp * cp, dp_span, "allgather", variant)
        gather = (a, capped_per_byte(b, dp * cp, zero3_throughput) * e)
    p2p = 0.0
    if pp > 1 and parts.p2p_bytes_per_sample:
        a, b = dp_terms(system, 2, p2p_span, "p2p", variant)
        p2p = a + b * parts.p2p_bytes_per_sample * mbs
        if not sp and tp > 1:
            a, b = dp_terms(system, tp, tp, "allgather", variant)
            p2p = p2p + a + b * parts.p2p_bytes_per_sample * tp * mbs
    s = parts.overlap_slowdown
    share_s = s / (1.0 + s)

    # Each side's (compute, blocking, overlappable) seconds of its pre, stack and post sections.
    sides = parts.memo.get(("sides", mbs))
    if sides is None:
        none = (0.0, 0.0, 0.0)
        sides = tuple([terms[side, sec][0] if (side, sec) in terms else none
                       for sec in ("pre", "stack", "post")] for side in ("fwd", "bwd"))
        if mbs <= _BLOCK:                 # as _section_terms: the memo stays small
            parts.memo["sides", mbs] = sides
    fwd, bwd = sides

    def pass_time(t, first, share, last, hand_on: bool, extra: float,
                  waited: float = 0.0) -> float:
        pre, stack, post = t
        c = first * pre[0] + share * stack[0] + last * post[0]
        blk = first * pre[1] + share * stack[1] + last * post[1] + waited
        comm = first * pre[2] + share * stack[2] + last * post[2] + extra
        return blk + hand_on * (v * p2p) + max(comm, c + comm * share_s)   # overlapped()

    after = backward_prefetch == "post"       # step_times(post=): backward gathers waited for

    def stage_times(gathered) -> list[tuple[float, float]]:
        out = []
        for _, _, share, first, last, params in kinds:
            one = 0.0 if gathered is None else gathered[0] + gathered[1] * params
            gathers = (2 if parts.regather else 1) * one
            out.append((pass_time(fwd, first, share, last, not last, one),
                        pass_time(bwd, first, share, last, not first,
                                  one + (0.0 if after else gathers),
                                  gathers if after else 0.0)))
        return out

    stages = stage_times(gather)
    slowest, (t_f, t_b) = 0, stages[0]
    t_slow = t_f + t_b
    for i, (f, b) in enumerate(stages[1:], 1):
        if f + b > t_slow:
            slowest, t_slow, t_b = i, f + b, b
    bubble = (pp - 1) / v * t_slow
    p_max = max(k[5] for k in kinds)
    z3_one = z3_free = 0.0
    if gather is not None and zero3_split:
        z3_one = (1 + (3 if parts.regather else 2)) * (gather[0] + gather[1] * kinds[slowest][5])
        z3_free = sum(stage_times(None)[slowest])
    a, b = dp_terms(system, dp * cp, dp_span, "allreduce", variant)
    dp_t = a + b * p_max * e if zero < 3 else 0.0
    exposed = float(dp_exposed(t_b, dp_t, v, pp, s)) if overlap else dp_t
    state = parts.memo.get(("state", optimizer))
    if state is None:       # the lowering fixes the model and precision: one per optimizer
        state = parts.memo["state", optimizer] = \
            optimizer_state_bytes_per_param(optimizer, model, OWNER) + (4.0 if e < 4 else 0.0)
    update = 2 * (state + e) + e
    opt_t = float(optimizer_seconds(parts, p_max / (shard if zero >= 1 else 1) * update))
    return (kinds, slowest, t_slow, t_b, bubble, p_max, gather, p2p, z3_one, z3_free, dp_t,
            exposed, opt_t, state)


def evaluate_one(parts: Parts, system, model, *, tp: int, pp: int, cp: int, dp: int, v: int,
                 mbs: int, m: int, zero: int, precision: str, seq: int, sp: bool,
                 recompute: str, schedule: str, overlap: bool, optimizer: str,
                 capacity_factor: float, usable: float, rank_order: str = "tp-cp-dp-pp",
                 flash: bool = True, layout=None, dropout: bool = True,
                 variant: str = "nominal", zero3_split: bool = False,
                 backward_prefetch: str = "pre",
                 zero3_throughput: float | None = None) -> dict[str, Any]:
    """:func:`evaluate_grid` for one config, in Python floats: the same equations term for
    term (tests/test_grid_evaluation.py checks them equal on random configs), without
    numpy's per-call cost on arrays of one, which a single solve would spend its time on."""
    e = _element_bytes(precision)
    shard = dp * cp
    # Everything up to the step's micro-batch count m (stage times, the DP collective and its
    # exposed part, the optimizer) is a function of the layout alone: a batch sweep at one
    # layout prices it once (the memo key names every input it reads besides ``parts``).
    fixed_key = ("fixed", system, pp, v, mbs, dp, zero, sp, variant, layout, rank_order,
                 backward_prefetch, zero3_throughput, overlap, optimizer, zero3_split)
    fixed = parts.memo.get(fixed_key)
    if fixed is None:
        fixed = _layout_terms(parts, system, model, tp=tp, pp=pp, cp=cp, dp=dp, v=v, mbs=mbs,
                              zero=zero, e=e, sp=sp, overlap=overlap, optimizer=optimizer,
                              layout=layout, rank_order=rank_order, variant=variant,
                              zero3_split=zero3_split, backward_prefetch=backward_prefetch,
                              zero3_throughput=zero3_throughput)
        if mbs <= _BLOCK:               # as _section_terms: the memo stays small
            parts.memo[fixed_key] = fixed
    (kinds, slowest, t_slow, t_b, bubble, p_max, gather, p2p, z3_one, z3_free, dp_t, exposed,
     opt_t, state) = fixed
    compute = m * t_slow
    z3_comm = z3_exposed = 0.0
    if gather is not None and zero3_split:
        z3_comm = m * z3_one
        z3_exposed = m * (t_slow - z3_free)
    step = compute + bubble + opt_t + exposed
    w_per = e / (shard if zero >= 3 else 1)
    g_per = e / (shard if zero >= 2 else 1)
    o_per = state / (shard if zero >= 1 else 1)
    per_param = w_per + g_per + o_per
    total = p_full = a_full = None
    transformer = isinstance(model, TransformerSpec)
    if transformer:             # activation_bytes(), its per-stage factor worked out once
        key = ("kept", tp, seq, sp, recompute, capacity_factor, flash, dropout)
        kept = parts.memo.get(key)
        if kept is None:        # one per lowering (parts are one model's)
            kept = parts.memo[key] = kept_per_token(model, tp, seq, sp, recompute,
                                                    capacity_factor, flash, dropout)
        per_layer, logits = activation_terms(model, tp=tp, cp=cp, mbs=mbs, seq=seq, e=e,
                                             kept=kept)
    for stage, layers, _, _, _, params in kinds:
        if transformer:
            acts = float(per_layer * layers * in_flight_microbatches(schedule, m, pp, stage, v)
                         + (logits if stage == pp - 1 else 0.0))
        else:
            acts = parts.act_per_sample * mbs * (1.0 if schedule == "1f1b" else m)
        t = params * per_param + acts
        if total is None or t > total:
            total, p_full, a_full = t, params, acts
    samples = float(dp * m * mbs)
    per_sample = parts.memo.get("hw_flops_per_sample")
    if per_sample is None:
        per_sample = parts.memo["hw_flops_per_sample"] = sum(
            p.flops_per_batch for side in (parts.fwd, parts.bwd) for sec, p in side.items()
            if p is not None and sec not in ("send", "recv_grad"))
    return {"step": step, "compute": compute, "bubble": bubble, "optimizer": opt_t,
            "p2p": p2p, "dp": dp_t, "dp_exposed": exposed, "t_b": t_b, "slowest": slowest,
            "z3": z3_comm, "z3_exposed": z3_exposed,
            "weights": p_full * w_per, "grads": p_full * g_per, "opt": p_full * o_per,
            "acts": a_full, "memory": total, "fits": total <= usable,
            "model_flops": parts.model_flops_per_sample * samples,
            "hw_flops": per_sample * tp * cp * samples, "tokens": samples * seq}


def _uniform(column, name: str) -> int:
    """The one value of a grid column that must not vary (tp, cp: the lowering's own)."""
    column = np.asarray(column)
    value = int(column.flat[0])
    if np.any(column != value):
        raise ValueError(f"evaluate_grid: {name} must be the same in every config (it is the "
                         f"lowering's); got {sorted(set(column.tolist()))}")
    return value
