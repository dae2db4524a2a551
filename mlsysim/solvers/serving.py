"""LLM serving on one device or one tensor-/pipeline-parallel group: TTFT, inter-token latency,
tokens/s, KV-cache capacity, speculative decoding, prefix caching and disaggregated prefill.

Model of a request of ``seq_len`` prompt tokens and ``output_len`` generated tokens, served in a
batch of ``batch_size`` such requests:

- TTFT = prefill(prompt - cached prefix, for the whole batch) + TP all-reduces
  (+ the KV transfer to the decode device when prefill and decode are disaggregated).
- ITL (TPOT, first token excluded) = one decode step at the mean context
  ``seq_len + (output_len - 1) / 2`` (exact where step time is linear in context) + TP
  all-reduces; with speculative decoding, (draft_len draft steps + one verification pass over
  draft_len + 1 tokens) / E[accepted + 1], E = (1 - a^(k+1)) / (1 - a) [Leviathan et al. 2023].
- Tensor parallelism splits heads, FFN width and vocabulary over ``tp_size`` devices and adds two
  all-reduces of the layer activations per layer [Shoeybi et al. 2019, Megatron-LM, sec. 3];
  pipeline parallelism splits layers over ``pp_size`` stages: the same per-token latency plus
  (pp - 1) activation hand-offs, ``pp_size`` micro-batches of ``batch_size`` in flight for
  throughput, so each stage holds its layers' cache for all of them (per device: the whole
  model's cache of one micro-batch).
- Memory per device: weights / (tp * pp) + paged KV cache + activations must fit in
  ``memory_utilization`` of the capacity (vLLM's default 0.9 leaves the rest to the runtime).
Left out: queueing (see ContinuousBatchingModel and TailLatencyModel), sampling cost, CPU-GPU
scheduling gaps beyond the per-kernel launch floor, preemption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..cache import ContentCache
from ..core import validate as check
from ..core.calibration import Efficiency
from ..core.contract import REQUIRED, Option
from ..core.costmodel import evaluate, prepare, stack, stacked_latencies
from ..core.engine import ForwardModel, efficiency_for, resolve
from ..core.memory import MemoryBudget
from ..core.result import Result
from ..errors import ValidationError
from ..specs.configs import ServingConfig
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from ..specs.model import ModelSpec, SSMSpec, TransformerSpec
from ..units import Q_, Rate
from ..workloads import lower
from ..workloads.ssm import ssm_state_bytes
from ..workloads.transformer import (
    Segment,
    kv_bytes_per_token,
    kv_cache_bytes,
    lower_segments,
    query_heads_per_kv_head,
)

__all__ = ["ServingModel", "ServingResult", "ServingPlan", "METRIC_DEFINITIONS", "pass_time",
           "serving_times", "expected_accepted_tokens"]

OWNER = "ServingModel"
DEFAULT_MEMORY_UTILIZATION = 0.9   # without an engine preset: vLLM's gpu_memory_utilization default

METRIC_DEFINITIONS = {
    "ttft": "time to first token: prefill of the (uncached) prompt for the whole batch, plus "
            "tensor-parallel communication and any KV transfer; no queueing",
    "itl": "inter-token latency = TPOT excluding the first token: mean time per output token "
           "over the generation, per sequence",
    "e2e_latency": "ttft + (output_len - 1) * itl",
    "tokens_per_s": "output tokens per second of the whole serving group (all tp*pp devices)",
    "tokens_per_s_per_device": "tokens_per_s / (tp_size * pp_size)",
    "tokens_per_s_per_user": "output tokens per second seen by one sequence = 1 / itl",
}


def expected_accepted_tokens(acceptance: float, draft_len: int) -> float:
    """Tokens produced per verification step when each draft token is accepted independently
    with probability ``acceptance``: (1 - a^(k+1)) / (1 - a), k + 1 at a = 1."""
    if acceptance >= 1.0:
        return draft_len + 1.0
    return (1.0 - acceptance ** (draft_len + 1)) / (1.0 - acceptance)


_TABLES = ContentCache("serving passes")
_EFF_CACHE = ContentCache("serving efficiency")


def serving_efficiency(hardware: HardwareSpec, precision: str, cuda_graphs: bool,
                       variant: str = "nominal", kernels=None,
                       weight_precision: str | None = None) -> Efficiency:
    """The device's efficiencies (``variant``: nominal, or the band's fast/slow edge). Serving
    engines replay decode steps as CUDA graphs: no host dispatch per kernel, so the per-kernel
    floor drops to the smallest measured launch cost (a raw driver launch); without graphs
    the framework's median dispatch cost applies. ``kernels``: a
    :class:`~mlsysim.specs.serving.QuantizedKernelSpec`, whose speed (and, at the band's
    edges, its range) the 8-bit GEMMs run at. ``weight_precision`` below ``precision``
    (weight-only quantization): the GEMMs stream their weights at the measured fraction of
    the memory speed of a dequantizing GEMV (:func:`weight_only_speed`)."""
    key = (hardware, precision, cuda_graphs, variant, kernels, weight_precision)
    hit = _EFF_CACHE.get(key)
    if hit is None:
        eff = efficiency_for(hardware, precision, cuda_graphs)
        if kernels is not None:
            lo, hi = kernels.speed_range
            eff = replace(eff, quantized_gemm_speed=kernels.speed,
                          quantized_gemm_spread=(lo / kernels.speed, hi / kernels.speed))
        measured = weight_only_speed(precision, weight_precision)
        if measured is not None:
            speed, (lo, hi) = measured
            eff = replace(eff, weight_stream_speed=speed,
                          weight_stream_spread=(lo / speed, hi / speed))
        hit = _EFF_CACHE.put(key, eff.variant(variant))
    return hit


def weight_only_speed(precision: str, weight_precision: str | None):
    """(speed, (low, high)) at which weight-only quantized GEMMs stream ``weight_precision``
    weights while computing in ``precision`` (core.calibration.weight_only_stream_speed),
    or None: weights not below the compute precision, or no measurement for them."""
    if weight_precision is None or \
            BYTES_PER_ELEMENT[weight_precision] >= BYTES_PER_ELEMENT[precision]:
        return None
    from ..core.calibration import weight_only_stream_speed
    return weight_only_stream_speed(weight_precision)


def pass_time(model: ModelSpec, hardware: HardwareSpec, segments: tuple[Segment, ...],
              batch, *, precision: str, e: float, kv_e: float, we: float, tp: int,
              eff: Efficiency, encoder: bool = False, phase: str | None = None, path=None):
    """Seconds for one pass of ``batch`` samples (an int, or an (n, 1) array for a sweep), each
    made of ``segments`` (transformers), or of ``phase`` over ``segments[0]`` (SSMs); its
    collectives on ``path`` (default: the chip's own interconnect)."""
    p = pass_prepared(model, hardware, segments, precision=precision, e=e, kv_e=kv_e, we=we,
                      tp=tp, eff=eff, encoder=encoder, phase=phase, path=path)
    t = evaluate(p, batch).latency
    return float(t) if isinstance(batch, int) else t


def pass_prepared(model: ModelSpec, hardware: HardwareSpec, segments: tuple[Segment, ...], *,
                  precision: str, e: float, kv_e: float, we: float, tp: int, eff: Efficiency,
                  encoder: bool = False, phase: str | None = None, flash: bool = True,
                  sparse: bool = False, pp: int = 1, path=None, kv_per_query_head: bool = False):
    """The prepared cost table of one pass (cached per model, segments and precisions); its
    tensor- and pipeline-parallel collectives are priced on ``path`` (default: the chip's
    own interconnect). ``kv_per_query_head``: the generation kernel reads the KV cache once
    per query head (``decode_attention="per_head"``)."""
    key = ("pass", model, segments, e, kv_e, we, tp, pp, encoder, phase, flash,
           kv_per_query_head)
    table = _TABLES.get(key)
    if table is None:
        if isinstance(model, TransformerSpec):
            table = lower_segments(model, list(segments), e=e, kv_e=kv_e, we=we, tp=tp, pp=pp,
                                   encoder=encoder, flash=flash,
                                   kv_per_query_head=kv_per_query_head)
        else:
            seg = segments[0]
            table = lower(model, phase=phase, seq_len=seg.queries if phase == "prefill"
                          else seg.prefix, e=e, kv_e=kv_e, we=we, pp=pp)
        table = _TABLES.put(key, table if table.source is not None
                            else table.with_source(key))
    return prepare(table, hardware, precision, eff, sparse, path)


@dataclass(frozen=True, eq=False, repr=False)
class ServingResult(Result):
    model: ModelSpec
    hardware: HardwareSpec
    decode_hardware: HardwareSpec
    batch_size: int
    seq_len: int
    output_len: int
    precision: str
    weight_precision: str
    kv_precision: str
    tp_size: int
    pp_size: int
    cached_prefix_len: int
    prefill_s: float
    ttft_s: float
    itl_s: float
    decode_step_s: float
    comm_prefill_s: float
    comm_decode_s: float
    kv_transfer_s: float
    weights_bytes: float          # per device
    kv_bytes_per_token: float     # whole model, at kv precision (before TP split)
    kv_bytes_per_sequence: float  # per device, paged, at full length
    activation_bytes: float       # per device
    usable_bytes: float           # per device: capacity * memory_utilization
    page_size: int
    accepted_per_step: float = 1.0
    draft_model: ModelSpec | None = None
    notes: tuple[str, ...] = field(default=())
    _plan: Any = field(default=None, repr=False)
    step_overhead_s: float = 0.0  # the engine preset's fixed cost per step (0: none)
    engine: str | None = None

    @property
    def band(self) -> dict[str, tuple[Any, Any]]:
        """(low, high) TTFT and ITL at the edges of the calibration spread."""
        if "_band" not in self.__dict__:
            edge = {}
            for v in ("fast", "slow"):       # the same plan's passes at the spread's edges
                pre, comm_p, _, _, itl, kv = serving_times(self._plan.at(v), self.batch_size)
                edge[v] = (Q_(float(pre + comm_p + kv), "s").to("ms"),
                           Q_(float(itl), "s").to("ms"),
                           Rate(self.pp_size * self.batch_size / float(itl), "token/s"))
            object.__setattr__(self, "_band", {
                "ttft": (edge["fast"][0], edge["slow"][0]),
                "itl": (edge["fast"][1], edge["slow"][1]),
                "tokens_per_s": (edge["slow"][2], edge["fast"][2])})
        return self._band

    # --- headline quantities ---------------------------------------------------------
    @property
    def ttft(self):
        return Q_(self.ttft_s, "s").to("ms")

    @property
    def itl(self):
        return Q_(self.itl_s, "s").to("ms")

    tpot = itl

    @property
    def e2e_latency(self):
        return Q_(self.ttft_s + (self.output_len - 1) * self.itl_s, "s").to("ms")

    @property
    def tokens_per_s(self) -> Rate:
        return Rate(self.pp_size * self.batch_size / self.itl_s, "token/s")

    @property
    def tokens_per_s_per_device(self) -> Rate:
        return Rate(float(self.tokens_per_s) / (self.tp_size * self.pp_size), "token/s")

    @property
    def tokens_per_s_per_user(self) -> Rate:
        return Rate(1.0 / self.itl_s, "token/s")

    @property
    def kv_cache_per_token(self):
        return Q_(self.kv_bytes_per_token, "byte")

    @property
    def system(self):
        """What the request runs on: the chip, or the node or fleet whose fabrics price the
        collectives."""
        return self._plan.system

    @property
    def memory(self) -> MemoryBudget:
        """Bytes per device: weights, KV per sequence, activation buffers, usable."""
        return self._plan.memory

    @property
    def memory_per_device_bytes(self) -> float:
        return float(self.memory.total(self.batch_size))

    @property
    def memory_footprint(self):
        return Q_(self.memory_per_device_bytes, "byte").to("GB")

    @property
    def kv_capacity_bytes(self) -> float:
        return self.memory.free_for_samples()

    @property
    def max_concurrent_sequences(self) -> int:
        return self.memory.max_batch()

    @property
    def feasible(self) -> bool:
        return bool(self.memory.fits(self.batch_size))

    @property
    def reason(self) -> str | None:
        return self.memory.reason(
            self.batch_size, f"{self.decode_hardware.name} "
            f"({self.decode_hardware.memory.capacity.to('GB').magnitude:.4g} GB x "
            f"memory_utilization {self.usable_bytes / self.decode_hardware._base['capacity']:.3g})")

    @property
    def binding(self) -> str:
        """"memory capacity" if the weights alone overflow the usable memory, "KV capacity" if
        the KV cache does; otherwise what takes most of a decode step: "memory bandwidth",
        "compute", "launch" (the decode pass's operators) or "interconnect" (TP/PP comm)."""
        if not self.feasible:
            return ("memory capacity" if self.weights_bytes + self.activation_bytes >
                    self.usable_bytes else "KV capacity")
        from ..core.engine import time_by_resource
        times = time_by_resource(self._plan.step, self.batch_size)
        # The step's table may already hold the TP/PP collectives; count them once.
        times["interconnect"] = max(times["interconnect"], self.comm_decode_s)
        return max(times, key=times.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("one batch served alone: no queueing, no preemption",
                "ITL = a pure decode step at the mean context, prompt + (output_len - 1) / 2: "
                "other requests' prefills interleaved with it under load are not in it "
                "(ContinuousBatchingModel, or `serve --qps`, gives the loaded ITL)",
                f"paged KV cache reserved at full length (pages of {self.page_size} tokens)",
                f"usable memory {self.usable_bytes / 1e9:.4g} GB per device",
                "tensor parallelism: two all-reduces of the activations per layer",
                (f"{self.engine}: {self.step_overhead_s * 1e3:.3g} ms of fixed cost per step "
                 "(scheduling, sampling, output processing) in the prefill and every decode "
                 "step, from the ServingEngines preset (an estimate; see its notes)"
                 if self.engine else "no engine preset: no per-step fixed cost (the "
                 "roofline of the kernels and collectives alone; engine= adds one)"),
                *(line.strip() for line in self._weight_only_lines()))

    main_latency = "e2e_latency"
    summary_inputs = ("model", "hardware", "batch_size:batch", "seq_len:prompt",
                      "output_len:output", "tp_size:tp")
    summary_numbers = ("ttft", "itl", "tokens_per_s:")

    def _speculative_terms(self) -> tuple[int, float, float]:
        """(draft_len, one draft step, the verification pass) in seconds at this batch."""
        plan = self._plan
        return (plan.draft_len, float(evaluate(plan.draft_step, self.batch_size).latency),
                float(evaluate(plan.verify, self.batch_size).latency))

    def _speculative_trace_terms(self) -> dict[str, float]:
        if self.draft_model is None or self._plan is None:
            return {}
        k, draft, verify = self._speculative_terms()
        return {"draft_len": k, "draft_step_s": draft, "verify_s": verify}

    def _itl_line(self) -> str:
        mid = f"{self.seq_len + (self.output_len - 1) / 2:.0f}"
        over = (f" + {self.step_overhead_s * 1e3:.3g} ms {self.engine} step overhead"
                if self.engine else "")
        if self.draft_model is None or self._plan is None:
            return (f"  ITL = (decode step {self.decode_step_s * 1e3:.4g} ms + TP comm "
                    f"{self.comm_decode_s * 1e3:.3g} ms at mean context {mid}"
                    + (f"; the step includes {self.step_overhead_s * 1e3:.3g} ms engine "
                       "overhead" if self.engine else "")
                    + f") = {self.itl_s * 1e3:.4g} ms")
        k, draft, verify = self._speculative_terms()
        return (f"  ITL = ({k} x draft step {draft * 1e3:.4g} ms + verification of {k + 1} "
                f"tokens {verify * 1e3:.4g} ms{over}, at mean context {mid}) / "
                f"{self.accepted_per_step:.3g} tokens per speculative step = "
                f"{self.itl_s * 1e3:.4g} ms")

    def trace(self) -> dict[str, Any]:
        """Provenance: the serving equations with their terms, and the decode step's operator
        trace (constants with sources, per-operator times)."""
        from ..core.engine import build_trace
        step = build_trace(self.decode_hardware, self.precision, self._plan.step,
                           self.batch_size, {})
        return {
            "equations": {
                "ttft": "prefill + tp_comm_prefill + kv_transfer",
                "itl": ("(draft_len * draft_step + verify) / E[tokens per speculative step]"
                        if self.draft_model else "decode_step(mean context) + tp_comm_decode"),
                "e2e": "ttft + (output_len - 1) * itl",
                "kv_per_sequence": "kv_cache_bytes(prompt + output, paged) * kv_share / pp",
            },
            "terms": {"prefill_s": self.prefill_s, "decode_step_s": self.decode_step_s,
                      "comm_prefill_s": self.comm_prefill_s,
                      "comm_decode_s": self.comm_decode_s,
                      "kv_transfer_s": self.kv_transfer_s,
                      "accepted_per_step": self.accepted_per_step,
                      "kv_bytes_per_token": self.kv_bytes_per_token,
                      "kv_bytes_per_sequence": self.kv_bytes_per_sequence,
                      "weights_bytes_per_device": self.weights_bytes,
                      **self._speculative_trace_terms()},
            "result": {"ttft_s": self.ttft_s, "itl_s": self.itl_s},
            "decode_step": step,
        }

    def headline(self) -> dict[str, Any]:
        band = self.band
        return {
            "model": self.model.name, "hardware": self.hardware.name,
            "decode_hardware": self.decode_hardware.name, "batch_size": self.batch_size,
            "prompt_len": self.seq_len, "output_len": self.output_len,
            "precision": self.precision, "weight_precision": self.weight_precision,
            "kv_precision": self.kv_precision, "tp_size": self.tp_size, "pp_size": self.pp_size,
            "engine": self.engine, "step_overhead_s": self.step_overhead_s,
            "ttft": self.ttft, "ttft_low": band["ttft"][0], "ttft_high": band["ttft"][1],
            "itl": self.itl, "itl_low": band["itl"][0], "itl_high": band["itl"][1],
            "e2e_latency": self.e2e_latency,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s_per_device,
            "tokens_per_s_per_user": self.tokens_per_s_per_user,
            "kv_cache_per_token": self.kv_cache_per_token,
            "memory_per_device": self.memory_footprint,
            "max_concurrent_sequences": self.max_concurrent_sequences,
            "feasible": self.feasible, "reason": self.reason,
            "metric_definitions": METRIC_DEFINITIONS,
        }

    def explain(self) -> str:
        lines = [
            f"{self.model.name} serving on {self.tp_size * self.pp_size} x "
            f"{self.hardware.name} (tp={self.tp_size}, pp={self.pp_size}"
            + (f"; of {self.system.name}" if self.system is not self.hardware else "")
            + f"), batch "
            f"{self.batch_size}, prompt {self.seq_len} (+{self.cached_prefix_len} cached), "
            f"output {self.output_len}; weights {self.weight_precision}, activations "
            f"{self.precision}, KV {self.kv_precision}",
            f"  TTFT = prefill {self.prefill_s * 1e3:.4g} ms + TP comm "
            f"{self.comm_prefill_s * 1e3:.3g} ms + KV transfer {self.kv_transfer_s * 1e3:.3g} "
            f"ms = {self.ttft_s * 1e3:.4g} ms"
            + (f" (prefill includes {self.engine}'s {self.step_overhead_s * 1e3:.3g} ms step "
               "overhead)" if self.engine else ""),
            self._itl_line(),
            "  band (calibration spread): TTFT {:.4g}-{:.4g} ms, ITL {:.4g}-{:.4g} ms".format(
                *(q.magnitude for q in (*self.band["ttft"], *self.band["itl"]))),
            f"  KV cache: {self.kv_bytes_per_token:,.0f} B/token (whole model) -> "
            f"{self.kv_bytes_per_sequence / 1e6:.4g} MB per sequence per device "
            f"(pages of {self.page_size} tokens)",
            f"  memory per device: weights {self.weights_bytes / 1e9:.4g} GB + KV "
            f"{self.batch_size * self.kv_bytes_per_sequence / 1e9:.4g} GB + activations "
            f"{self.activation_bytes / 1e9:.3g} GB of {self.usable_bytes / 1e9:.4g} GB usable"
            f" -> {'fits' if self.feasible else 'DOES NOT FIT'}; up to "
            f"{self.max_concurrent_sequences} sequences",
            *self._decode_attention_lines(),
            *self._quantized_kernel_lines(),
            *self._weight_only_lines(),
            *(f"  note: {n}" for n in self.notes),
        ]
        return "\n".join(lines)

    def _quantized_kernel_lines(self) -> list[str]:
        plan = self._plan
        spec = plan.rebuild.kernels if plan is not None else None
        if spec is None:
            return []
        applies = BYTES_PER_ELEMENT[plan.precision] < 2.0
        lo, hi = spec.speed_range
        return [f"  8-bit GEMM kernels of {spec.name}: {spec.speed:.3g} of the "
                f"microbenchmarked speed (band {lo:.3g}-{hi:.3g})"
                + ("" if applies else f"; not applied: {plan.precision} computes in 16 bits")]

    def _weight_only_lines(self) -> list[str]:
        plan = self._plan
        wprec = plan.rebuild.wprec if plan is not None else None
        if wprec is None or BYTES_PER_ELEMENT[wprec] >= BYTES_PER_ELEMENT[plan.precision]:
            return []
        measured = weight_only_speed(plan.precision, wprec)
        if measured is None:
            return [f"  weight-only {wprec}: no dequantizing-GEMV measurement, so the "
                    "weights stream at the full memory speed (byte savings only)"]
        speed, (lo, hi) = measured
        return [f"  weight-only {wprec}: GEMMs stream their weights at {speed:.3g} of the "
                f"memory speed (band {lo:.3g}-{hi:.3g}), the kernel dequantizing each weight "
                "(PyTorch's gpt-fast GEMV microbenchmark, weight_only_gemv.csv)"]

    def _decode_attention_lines(self) -> list[str]:
        plan = self._plan
        if plan is None or plan.config.decode_attention != "per_head":
            return []
        group = query_heads_per_kv_head(self.model, self.tp_size)
        return [f"  decode attention per query head: each step reads a KV head's cache "
                f"{group:g} times (once per query head sharing it); the band's fast edge "
                "reads it once (L2 absorbing the rest)"]


@dataclass(frozen=True)
class PassRecipe:
    """How to prepare a serving config's passes at a calibration edge: plain data, so plans
    pickle and a band never re-runs validation."""

    model: ModelSpec
    hardware: HardwareSpec
    decode_hw: HardwareSpec
    path_p: Any
    path_d: Any
    prompt: int
    cached: int
    mid: int
    flash: bool
    pp: int
    precision: str
    e: float
    kv_e: float
    we: float
    tp: int
    sparse: bool
    graphs: bool
    draft: ModelSpec | None
    draft_len: int
    kv_per_query_head: bool = False
    kernels: Any = None             # QuantizedKernelSpec of the 8-bit GEMMs, or None
    wprec: str | None = None        # the weights' precision where it differs (weight-only)

    def __call__(self, variant: str) -> dict[str, Any]:
        """The prepared passes at ``variant`` (nominal, fast, slow)."""
        kw = dict(precision=self.precision, e=self.e, kv_e=self.kv_e, we=self.we, tp=self.tp,
                  sparse=self.sparse)
        eff_p = serving_efficiency(self.hardware, self.precision, False, variant, self.kernels,
                                   self.wprec)
        eff_d = serving_efficiency(self.decode_hw, self.precision, self.graphs, variant,
                                   self.kernels, self.wprec)
        model, pp, mid = self.model, self.pp, self.mid
        # Per-head re-reads of the KV cache may hit in L2; how many is not measured, so the
        # band's fast edge has L2 absorb them all (one read per KV head), the others none.
        reread = self.kv_per_query_head and variant != "fast"
        # The band's edges move the collectives by their fits' spread too.
        path_p, path_d = self.path_p.at(variant), self.path_d.at(variant)
        if isinstance(model, TransformerSpec):
            pre = pass_prepared(model, self.hardware, (Segment(self.prompt - self.cached,
                                                               self.cached),),
                                eff=eff_p, encoder=True, flash=self.flash, pp=pp,
                                path=path_p, **kw)
            step = pass_prepared(model, self.decode_hw, (Segment(1, mid),), eff=eff_d,
                                 flash=self.flash, pp=pp, path=path_d,
                                 kv_per_query_head=reread, **kw)
        else:
            pre = pass_prepared(model, self.hardware, (Segment(self.prompt),), eff=eff_p,
                                phase="prefill", pp=pp, path=path_p, **kw)
            step = pass_prepared(model, self.decode_hw, (Segment(1, mid),), eff=eff_d,
                                 phase="decode", pp=pp, path=path_d, **kw)
        out = dict(prefill=pre, step=step, draft_step=None, verify=None)
        if self.draft is not None:
            # The draft runs tensor-parallel within a stage; verification is a target pass
            # through the whole pipeline. Each pays its own collectives.
            per_head = dict(kv_per_query_head=reread)
            out["draft_step"] = pass_prepared(self.draft, self.decode_hw, (Segment(1, mid),),
                                              eff=eff_d, path=path_d, **per_head, **kw)
            out["verify"] = pass_prepared(model, self.decode_hw,
                                          (Segment(self.draft_len + 1, mid),), eff=eff_d, pp=pp,
                                          path=path_d, **per_head, **kw)
        return out


@dataclass(frozen=True)
class ServingPlan:
    """Everything about a serving config except the batch: validated once, then cached."""

    config: ServingConfig
    system: Any                  # the chip, node or fleet (resolved spec)
    model: ModelSpec
    hardware: HardwareSpec
    decode_hw: HardwareSpec
    draft: ModelSpec | None
    precision: str
    wprec: str
    kvprec: str
    prompt: int
    out: int
    cached: int
    tp: int
    pp: int
    page: int
    usable: float
    weights: float
    kv_tok: float
    kv_seq: float
    act: float
    act_bytes: float             # bytes per token of one layer's activation (communication)
    prefill: Any                 # prepared cost tables
    step: Any
    draft_step: Any
    verify: Any
    draft_len: int
    accepted: float
    kv_transfer_per_seq: float
    rebuild: PassRecipe | None = None   # variant -> the passes at that calibration edge
    step_overhead: float = 0.0          # seconds per engine step (the preset's), 0: none
    engine: str | None = None
    memory: MemoryBudget | None = None
    _edges: dict = field(default_factory=dict, repr=False, compare=False)
    _stacked: list = field(default_factory=list, repr=False, compare=False)

    def at(self, variant: str) -> ServingPlan:
        """This plan with its passes at a calibration edge ("fast", "slow")."""
        hit = self._edges.get(variant)
        if hit is None:
            hit = self._edges[variant] = replace(self, **self.rebuild(variant), _edges={},
                                                 _stacked=[])
        return hit

    @property
    def passes(self) -> tuple:
        """The prepared passes: (prefill, decode step[, draft step, verification])."""
        return (self.prefill, self.step) if self.draft is None else \
            (self.prefill, self.step, self.draft_step, self.verify)

    def passes_at(self, batch: int) -> list[tuple[float, float]]:
        """(latency, collective time) of (prefill, step[, draft step, verify]) at one scalar
        batch, priced together (:func:`~mlsysim.core.costmodel.stacked_latencies`) when
        they can be."""
        if not self._stacked:
            self._stacked.append((self.passes, stack(self.passes)))
        parts, stacked = self._stacked[0]
        if stacked is None:
            return [(float(e.latency), float(e.comm_time))
                    for e in (evaluate(p, batch) for p in parts)]
        return stacked_latencies(stacked, batch)


def serving_times(plan: ServingPlan, batch):
    """(prefill, TP/PP comm at prefill, decode step, TP/PP comm per step, ITL, KV transfer)
    in seconds at ``batch``: an int, or an (n, 1) array for a sweep over batch sizes (the same
    equations). Communication comes from the passes' collective rows."""
    if isinstance(batch, int):
        flat, passes = batch, plan.passes_at(batch)
    else:
        flat = batch[..., 0]
        passes = [(e.latency, e.comm_time) for e in (evaluate(p, batch) for p in plan.passes)]
    (t_p, comm_p), (t_d, comm_d) = passes[0], passes[1]
    # An engine preset's fixed cost per scheduler step: once for the prefill step, once per
    # decode step (a speculative round is one step: k draft launches and a verification).
    o = plan.step_overhead
    itl = t_d + o
    if plan.draft is not None:
        t_draft, t_verify = passes[2][0], passes[3][0]
        itl = (plan.draft_len * t_draft + t_verify + o) / plan.accepted
    return (t_p - comm_p + o, comm_p, t_d - comm_d + o, comm_d, itl,
            flat * plan.kv_transfer_per_seq)


_PLANS = ContentCache("serving plans")
# Group-wise weight quantization stores a 16-bit scale and a 16-bit zero point per group.
GROUP_SCALE_BYTES = 4.0


class ServingModel(ForwardModel):
    """Latency and throughput of serving a generative model (see the module docstring)."""

    options = (
        Option("model", REQUIRED, "generative model (decoder or SSM): spec or zoo name"),
        Option("hardware", REQUIRED, "device (prefill, and decode unless decode_hardware)"),
        Option("seq_len", None, "prompt tokens per request (required unless config)"),
        Option("batch_size", 1, "requests served together, or 'max' (largest that fits)"),
        Option("precision", None, "compute/activation precision; default: the device's"),
        Option("output_len", 128, "generated tokens per request"),
        Option("weight_precision", None, "weight storage precision; default: precision"),
        Option("kv_precision", None, "KV-cache precision; default: precision"),
        Option("tp_size", 1, "tensor-parallel devices"),
        Option("pp_size", 1, "pipeline stages"),
        Option("decode_hardware", None, "a separate decode device (disaggregated prefill)"),
        Option("network_bandwidth", None, "prefill->decode link for the KV cache, e.g. "
               "'50 GB/s'"),
        Option("cached_prefix_len", 0, "prompt tokens already in the KV cache"),
        Option("draft_model", None, "speculative decoding: the draft model"),
        Option("draft_acceptance_rate", None, "probability a draft token is accepted"),
        Option("draft_len", 4, "draft tokens per verification step"),
        Option("memory_utilization", None, "fraction of device memory for weights, "
               "activations and KV cache (default: the engine preset's own rule, else 0.9)"),
        Option("page_size", 16, "tokens per KV-cache page"),
        Option("cuda_graphs", None, "decode steps replayed as CUDA graphs (default: True, or "
               "the engine preset's)"),
        Option("sparsity", None, "'2:4' for the device's sparse peak, or None"),
        Option("attention_kernel", "flash", "'flash' or 'materialized'"),
        Option("decode_attention", "grouped", "'grouped' (each KV head's cache read once a "
               "step) or 'per_head' (once per query head: a masked-MHA generation kernel "
               "without GQA support, e.g. TensorRT-LLM before v0.7)"),
        Option("engine", None, "a serving-engine preset (ServingEngines: vllm, sglang, "
               "tensorrt_llm, static): its per-step fixed cost and CUDA-graph setting"),
        Option("weight_group_size", None, "group-wise quantized weights (int8/int4/fp4): "
               "weights per 16-bit scale and zero point, e.g. 128"),
        Option("quantized_kernels", None, "a software generation's 8-bit GEMM kernels "
               "(QuantizedKernels: tensorrt_llm_2024, tensorrt_llm_2024_int8): the fraction "
               "of the microbenchmarked GEMM speed they reached; default: the "
               "microbenchmarks' own"),
        Option("config", None, "a ServingConfig holding all of the above but model and "
               "hardware (the three-input form)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B, batch 8 on an H100; Llama-3-70B's 141 GB of fp16 weights on one
        H100 (77 GB usable: 0.9 x 81,559 MiB) does not fit."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_8B, hardware=Hardware.H100, seq_len=1024,
                        output_len=256, batch_size=8)
        return dict(model=Models.Llama3_70B, hardware=Hardware.H100, seq_len=1024)

    def solve(self, model, hardware, seq_len: int | None = None, batch_size: int | str = 1,
              precision: str | None = None, output_len: int = 128,
              weight_precision: str | None = None, kv_precision: str | None = None,
              tp_size: int = 1, pp_size: int = 1, decode_hardware=None,
              network_bandwidth=None, cached_prefix_len: int = 0, draft_model=None,
              draft_acceptance_rate: float | None = None, draft_len: int = 4,
              memory_utilization: float | None = None, page_size: int = 16,
              cuda_graphs: bool | None = None, sparsity: str | None = None,
              attention_kernel: str = "flash", decode_attention: str = "grouped",
              engine=None, weight_group_size: int | None = None, quantized_kernels=None,
              config: ServingConfig | None = None) -> ServingResult:
        """Serve ``batch_size`` requests of ``seq_len`` prompt and ``output_len`` new tokens.

        ``batch_size="max"`` picks the largest batch whose KV cache fits (max-throughput mode).
        ``sparsity="2:4"`` runs matmuls at the device's published 2:4-sparse peak and stores
        half the weights plus a 2-bit index per kept value (fp16: 1.125 B per weight).
        ``attention_kernel``: "flash" (scores stay on chip) or "materialized" (the score matrix
        round-trips memory: what naive attention costs at long prompts).
        ``decode_attention``: "grouped" (the default: each KV head's cache is read once per
        step, shared by its query heads, as FlashAttention's, FlashInfer's and XQA kernels
        do) or "per_head" (a generation kernel with one thread block per sequence and query
        head reads the cache once per query head, ``heads / kv_heads`` times as much under
        GQA: TensorRT-LLM's masked MHA before its MQA/GQA optimization of v0.7).
        ``precision`` is the compute/activation precision; ``weight_precision`` (e.g. "int4"
        for weight-only quantization) and ``kv_precision`` (e.g. "fp8") default to it.
        ``engine`` (a ``ServingEngines`` preset: "vllm", "sglang", "tensorrt_llm",
        "static") adds that engine's fixed cost per step to the prefill and every decode
        step, sets ``cuda_graphs`` from it (the same presets ``ContinuousBatchingModel``
        uses) and, unless ``memory_utilization`` is given, the memory the engine takes by
        its own default: vLLM 0.9 of the device, SGLang 0.79-0.88 by TP for weights and the
        KV pool, TensorRT-LLM 0.9 of what weights and activations leave; without one (the
        default) the times are the kernels' and collectives' alone, ``cuda_graphs`` defaults
        to True and 0.9 of the device is usable.
        ``quantized_kernels`` (a ``QuantizedKernels`` generation, e.g. "tensorrt_llm_2024")
        runs GEMMs that compute in 8 bits at the fraction of the microbenchmarked speed that
        generation reached in its engine's published FP8-over-FP16 speed-ups; default None:
        today's GEMM microbenchmarks.
        ``hardware`` is the system: a chip, or a node or fleet (``mlsysim.Systems``), whose
        fabrics price the tensor- and pipeline-parallel collectives; a group larger than the
        scale-up domain crosses the scale-out fabric. The keywords are the convenience form of
        ``solve(model, system, ServingConfig(...))`` (or ``config=``): the same fields, rules
        and messages.

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, output_len=256)
        >>> r.itl.to("ms").magnitude < r.ttft.to("ms").magnitude
        True
        """
        if isinstance(seq_len, ServingConfig):
            config, seq_len = seq_len, None
        if config is not None:
            batch_size = getattr(config, "batch_size", batch_size)
        plan = self.prepare(
            model, hardware, config, seq_len=seq_len, batch_size=batch_size,
            precision=precision, output_len=output_len, weight_precision=weight_precision,
            kv_precision=kv_precision, tp_size=tp_size, pp_size=pp_size,
            decode_hardware=decode_hardware, network_bandwidth=network_bandwidth,
            cached_prefix_len=cached_prefix_len, draft_model=draft_model,
            draft_acceptance_rate=draft_acceptance_rate, draft_len=draft_len,
            memory_utilization=memory_utilization, page_size=page_size,
            cuda_graphs=cuda_graphs, sparsity=sparsity, attention_kernel=attention_kernel,
            decode_attention=decode_attention,
            engine=engine, weight_group_size=weight_group_size,
            quantized_kernels=quantized_kernels)
        return self._evaluate(plan, batch_size)

    times = staticmethod(serving_times)

    def prepare(self, model, hardware, config: ServingConfig | None = None, *,
                seq_len=None, batch_size=1, precision=None, output_len=128,
                weight_precision=None, kv_precision=None, tp_size=1, pp_size=1,
                decode_hardware=None, network_bandwidth=None, cached_prefix_len=0,
                draft_model=None, draft_acceptance_rate=None, draft_len=4,
                memory_utilization=None, page_size=16, cuda_graphs=None, sparsity=None,
                attention_kernel="flash", decode_attention="grouped", engine=None,
                weight_group_size=None, quantized_kernels=None) -> ServingPlan:
        """The validated, lowered plan of a config, every batch size at once: what
        optimizers evaluate with :func:`serving_times` over an array of batches. Cached on
        the config's content (keyword calls on the arguments' identity and type)."""
        if config is not None:
            if not isinstance(config, ServingConfig):
                raise ValidationError("config", "must be a ServingConfig. Got "
                                      f"{type(config).__name__} instead.", owner=OWNER)
            key = (model, hardware, config)
        else:
            values = (seq_len, precision, output_len, weight_precision, kv_precision, tp_size,
                      pp_size, cached_prefix_len, draft_acceptance_rate, draft_len,
                      memory_utilization, page_size, cuda_graphs, sparsity, attention_kernel,
                      decode_attention,
                      engine, weight_group_size, quantized_kernels)
            # Types are part of the key: True == 1 and 2048.0 == 2048 must not reuse a plan
            # that validated the other value. Unhashable arguments are never cached.
            key = (model, hardware, decode_hardware, draft_model, network_bandwidth, values,
                   tuple(map(type, values)))
        plan = _PLANS.get(key)
        if plan is None:
            if config is None:
                config = ServingConfig(
                    seq_len=seq_len, batch_size=batch_size, precision=precision,
                    output_len=output_len, weight_precision=weight_precision,
                    kv_precision=kv_precision, tp_size=tp_size, pp_size=pp_size,
                    decode_hardware=decode_hardware, network_bandwidth=network_bandwidth,
                    cached_prefix_len=cached_prefix_len, draft_model=draft_model,
                    draft_acceptance_rate=draft_acceptance_rate, draft_len=draft_len,
                    memory_utilization=memory_utilization, page_size=page_size,
                    sparsity=sparsity, attention_kernel=attention_kernel,
                    decode_attention=decode_attention, engine=engine,
                    cuda_graphs=cuda_graphs, weight_group_size=weight_group_size,
                    quantized_kernels=quantized_kernels)
            plan = _PLANS.put(key, self._plan(model, hardware, config))
        return plan

    def _evaluate(self, plan: ServingPlan, batch_size) -> ServingResult:
        notes: list[str] = []
        if isinstance(batch_size, str) and batch_size == "max":
            batch = plan.memory.max_batch()  # kv_seq > 0: every model keeps state
            if batch < 1:
                batch = 1
                notes.append("not even one sequence fits: batch_size set to 1 (infeasible)")
        elif type(batch_size) is int and batch_size > 0:
            batch = batch_size
        else:
            batch = check.positive_int("batch_size", batch_size, OWNER)
        prefill, comm_p, step, comm_d, itl, kv_transfer = self.times(plan, batch)
        prefill, step, itl = float(prefill), float(step), float(itl)
        return ServingResult(
            model=plan.model, hardware=plan.hardware, decode_hardware=plan.decode_hw,
            batch_size=batch, seq_len=plan.prompt, output_len=plan.out,
            precision=plan.precision, weight_precision=plan.wprec, kv_precision=plan.kvprec,
            tp_size=plan.tp, pp_size=plan.pp, cached_prefix_len=plan.cached,
            prefill_s=prefill, ttft_s=prefill + comm_p + kv_transfer, itl_s=itl,
            decode_step_s=step, comm_prefill_s=comm_p, comm_decode_s=comm_d,
            kv_transfer_s=kv_transfer, weights_bytes=plan.weights,
            kv_bytes_per_token=plan.kv_tok, kv_bytes_per_sequence=plan.kv_seq,
            activation_bytes=plan.act, usable_bytes=plan.usable, page_size=plan.page,
            accepted_per_step=plan.accepted, draft_model=plan.draft, notes=tuple(notes),
            _plan=plan, step_overhead_s=plan.step_overhead, engine=plan.engine,
        )

    def _plan(self, model, system, config: ServingConfig) -> ServingPlan:
        """Check what needs the three inputs together, lower the passes and prepare their
        costs (the config's own fields are valid already)."""
        from ..core.collectives import resolve_system
        a = config.options()
        from ..core.collectives import system_spec
        resolved = system_spec(system, OWNER)
        hardware, path_p = resolve_system(resolved)
        model = resolve(model, hardware)[0]
        decode_hardware = a["decode_hardware"]
        decode_hw, path_d = (hardware, path_p) if decode_hardware is None else \
            resolve_system(decode_hardware)
        if not isinstance(model, (TransformerSpec, SSMSpec)) or \
                (isinstance(model, TransformerSpec) and model.kind == "encoder"):
            raise ValidationError("model", f"must be a generative model (decoder or SSM); "
                                  f"{model.name} is {model.architecture}.", owner=OWNER)
        precision = check.precision_of(hardware, a["precision"]
                                       or hardware.compute.default_precision, OWNER)
        if decode_hw is not hardware:
            check.precision_of(decode_hw, precision, OWNER)
        wprec = a["weight_precision"] or precision
        kvprec = a["kv_precision"] or precision
        e, we, kv_e = (BYTES_PER_ELEMENT[p] for p in (precision, wprec, kvprec))
        if a["weight_group_size"] is not None:
            # Group-wise quantization (GPTQ, AWQ, gpt-fast's int4): a 16-bit scale and a
            # 16-bit zero point per group, read with the weights: int4 in groups of 32 is
            # 0.5 + 4/32 = 0.625 B per weight.
            we = we + GROUP_SCALE_BYTES / a["weight_group_size"]
        sparsity = a["sparsity"]
        if sparsity is not None:
            for hw in (hardware, decode_hw):
                hw.peak(precision, sparse=True)  # raises, listing the sparse precisions
            we = we * 0.5 + 0.125
        prompt, out, cached = a["seq_len"], a["output_len"], a["cached_prefix_len"]
        tp, pp = a["tp_size"], a["pp_size"]
        if prompt + out - 1 > model.max_context:  # the last token is sampled, never cached
            raise ValidationError("seq_len", f"plus output_len - 1 ({prompt} + {out} - 1) "
                                  f"exceeds {model.name}'s context of {model.max_context} "
                                  "tokens.", owner=OWNER)
        check.parallel_split(model, tp, pp, {id(path_p): path_p, id(path_d): path_d}.values(),
                             OWNER)
        page = a["page_size"]
        transformer = isinstance(model, TransformerSpec)
        mid = prompt + (out - 1) // 2

        # KV (or SSM state) per sequence, per device, paged at full length.
        paged = math.ceil((prompt + out) / page) * page
        if transformer:
            kv_tok = kv_bytes_per_token(model, kv_e)
            share = 1.0 if model.mla else max(model.n_kv_heads / tp, 1) / model.n_kv_heads
            # A pipeline stage holds its layers' (1/pp) cache for the pp micro-batches in
            # flight: per device, the whole model's cache of one micro-batch.
            kv_seq = kv_cache_bytes(model, paged, kv_e) * share
        else:
            kv_tok = 0.0
            kv_seq = ssm_state_bytes(model, kv_e)
        weights = model.parameter_count * we / (tp * pp)

        kv_transfer = 0.0
        if decode_hardware is not None:
            if a["network_bandwidth"] is None:  # pragma: no cover - the config refuses it
                raise ValidationError("network_bandwidth", "is needed with decode_hardware "
                                      "(e.g. '50 GB/s') to move the prompt's KV cache.",
                                      owner=OWNER)
            bw = check.bandwidth("network_bandwidth", a["network_bandwidth"], OWNER)
            kv_transfer = (kv_cache_bytes(model, prompt, kv_e) if transformer
                           else ssm_state_bytes(model, kv_e)) / bw

        draft, accepted, k = None, 1.0, 0
        if a["draft_model"] is not None:
            draft = resolve(a["draft_model"], hardware)[0]
            if not isinstance(draft, TransformerSpec) or \
                    draft.vocab != getattr(model, "vocab", -1):
                raise ValidationError("draft_model", f"must share the target's vocabulary "
                                      f"({getattr(model, 'vocab', '?')} tokens); "
                                      f"{draft.name} has {getattr(draft, 'vocab', '?')}.",
                                      owner=OWNER)
            if a["draft_acceptance_rate"] is None:  # pragma: no cover - the config refuses it
                raise ValidationError("draft_acceptance_rate", "is needed with draft_model "
                                      "(a number between 0 and 1).", owner=OWNER)
            rate = a["draft_acceptance_rate"]
            if draft.heads % tp:
                raise ValidationError("draft_model", f"must split over tp_size={tp}: its "
                                      f"{draft.heads} heads are not divisible.", owner=OWNER)
            k = a["draft_len"]
            if not transformer:
                raise ValidationError("draft_model", "needs a transformer target.", owner=OWNER)
            accepted = expected_accepted_tokens(rate, k)
            # The draft is tensor-parallel like the target (and replicated per pipeline stage).
            weights += draft.parameter_count * we / tp
            d_share = 1.0 if draft.mla else max(draft.n_kv_heads / tp, 1) / draft.n_kv_heads
            kv_seq += kv_cache_bytes(draft, paged, kv_e) * d_share

        h = model.hidden if transformer else model.d_model
        graphs = True if a["cuda_graphs"] is None else bool(a["cuda_graphs"])
        overhead, engine, preset = 0.0, None, None
        if a["engine"] is not None:
            from ..specs.serving import ServingEngineSpec
            from ..zoo import ServingEngines
            preset = a["engine"] if isinstance(a["engine"], ServingEngineSpec) else \
                ServingEngines.get(a["engine"])       # unknown names raise with suggestions
            graphs, engine = preset.cuda_graphs, preset.name
            overhead = float(preset.step_overhead.to("s").magnitude)
        kernels = self._quantized_kernels(a["quantized_kernels"], hardware, decode_hw)
        act = self._activation_bytes(model, prompt, e, tp)
        capacity = decode_hw._base["capacity"]
        if a["memory_utilization"] is not None:     # the caller's fraction of the device
            usable = capacity * a["memory_utilization"]
        elif preset is not None:                    # the engine's own default and rule
            usable = preset.usable_bytes(capacity, weights, act, tp)
        else:
            usable = capacity * DEFAULT_MEMORY_UTILIZATION
        passes = PassRecipe(
            model=model, hardware=hardware, decode_hw=decode_hw, path_p=path_p, path_d=path_d,
            prompt=prompt, cached=cached, mid=mid, flash=a["attention_kernel"] == "flash",
            pp=pp, precision=precision, e=e, kv_e=kv_e, we=we, tp=tp,
            sparse=sparsity is not None, graphs=graphs, draft=draft, draft_len=k,
            kv_per_query_head=a["decode_attention"] == "per_head", kernels=kernels,
            wprec=wprec if wprec != precision else None)
        return ServingPlan(
            config=config, system=resolved, model=model, hardware=hardware, decode_hw=decode_hw,
            draft=draft, precision=precision, wprec=wprec, kvprec=kvprec, prompt=prompt,
            out=out, cached=cached, tp=tp, pp=pp, page=page,
            usable=usable, weights=weights, kv_tok=kv_tok,
            kv_seq=kv_seq, act=act, act_bytes=h * e,
            draft_len=k, accepted=accepted, kv_transfer_per_seq=kv_transfer, rebuild=passes,
            step_overhead=overhead, engine=engine,
            memory=MemoryBudget(weights=weights, usable=usable, per_sample=kv_seq,
                                activations=act, per_sample_label="KV" if transformer
                                else "state"),
            **passes("nominal"),
        )

    @staticmethod
    def _quantized_kernels(given, *devices):
        """The QuantizedKernelSpec named by ``given`` (a zoo key or spec), checked against the
        devices its measurements were made on; None for None."""
        if given is None:
            return None
        from ..specs.serving import QuantizedKernelSpec
        from ..zoo import QuantizedKernels
        spec = given if isinstance(given, QuantizedKernelSpec) else \
            QuantizedKernels.get(given)               # unknown names raise with suggestions
        for hw in devices:
            if hw.key not in spec.hardware:
                raise ValidationError("quantized_kernels", f"{spec.key} was measured on "
                                      f"{', '.join(spec.hardware)}; {hw.key} has no such "
                                      "measurement. Leave quantized_kernels out for the "
                                      "device's own GEMM microbenchmarks.", owner=OWNER)
        return spec

    @staticmethod
    def _activation_bytes(model, prompt: int, e: float, tp: int) -> float:
        """Peak activations of a prefill of one prompt (runtime buffers are sized for the
        largest step the engine schedules)."""
        if isinstance(model, TransformerSpec):
            width = (2 if model.ffn_gated else 1) * model.ffn / tp
            return prompt * (model.hidden + width) * e
        return prompt * (model.d_model + 2 * model.d_inner) * e
