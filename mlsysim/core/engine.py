"""Single-node performance: ``Engine.solve`` and the solver behind it, ``SingleNodeModel``.

One device runs one workload pass (a CNN forward pass, a transformer prefill over ``seq_len``
tokens, or one decode step over ``seq_len`` cached tokens) at a batch size and precision. The
time comes from the operator cost model (:mod:`~mlsysim.core.costmodel`); the memory
footprint is weights + per-sample state (KV cache / SSM state) + the largest activation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..cache import ContentCache
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from ..specs.model import ModelSpec, SSMSpec, TransformerSpec
from ..units import Q_, Rate
from ..workloads import default_phase, lower
from ..workloads.imported import ImportedWorkload
from ..workloads.operators import OpKind
from . import validate as check
from .calibration import OWN_MEMORY_SPREAD, Efficiency, calibration
from .contract import REQUIRED, ForwardModel, Option, Result
from .costmodel import Prepared, evaluate, op_times, prepare
from .memory import MemoryBudget

__all__ = ["Engine", "SingleNodeModel", "PerformanceProfile", "ForwardModel", "resolve",
           "efficiency_for", "time_by_resource"]


def resolve(model, hardware) -> tuple[ModelSpec, HardwareSpec]:
    """Accept specs or zoo names for model and hardware; an imported workload
    (:class:`~mlsysim.workloads.imported.ImportedWorkload`) stands in for a model spec."""
    from ..errors import ValidationError
    from ..zoo import Hardware, Models

    if isinstance(model, str):
        model = Models.get(model)
    if isinstance(hardware, str):
        hardware = Hardware.get(hardware)
    if not isinstance(model, (ModelSpec, ImportedWorkload)):
        raise ValidationError("model", "must be a model spec, imported workload or zoo name. "
                              f"Got {model!r} instead.")
    if not isinstance(hardware, HardwareSpec):
        raise ValidationError("hardware", "must be a hardware spec or zoo name. "
                              f"Got {hardware!r} instead.")
    return model, hardware


SWEEP_CHUNK = 4096          # batch sizes evaluated per array in a sweep
_EFF = ContentCache("efficiency")
# Validated, lowered and prepared (model, hardware, precision, seq_len, phase) combinations.
_PLANS = ContentCache("engine plans")


def efficiency_for(hardware: HardwareSpec, precision: str,
                   cuda_graphs: bool = False) -> Efficiency:
    """The device's efficiency terms at ``precision``. With ``cuda_graphs`` the kernels are
    replayed from a captured graph: no host dispatch per kernel, so the per-kernel floor is
    the smallest measured launch cost (a raw driver launch) instead of the framework
    median."""
    hit = _EFF.get((hardware, precision, cuda_graphs))
    if hit is not None:
        return hit
    if cuda_graphs:
        from dataclasses import replace
        eff = replace(efficiency_for(hardware, precision),
                      kernel_overhead_s=calibration().graph_kernel_s)
        return _EFF.put((hardware, precision, True), eff)
    own = hardware.efficiency
    cal = calibration()
    if own is not None:  # the user's calibration of this very device
        eff = Efficiency(
            gemm_max=own.gemm_max, gemm_tau_s=float(own.gemm_tau.to("s").magnitude),
            gemm_alpha=own.gemm_alpha, attention_max=own.attention_max, memory=own.memory,
            kernel_overhead_s=float(own.kernel_overhead.to("s").magnitude),
            rows=(f"{own.rows} user measurements: {own.source}",),
            compute_spread=cal.compute_spread, memory_spread=OWN_MEMORY_SPREAD,
            overhead_spread=(0.75, 1.25))
    else:
        eff = cal.efficiency(hardware.key, precision)
    return _EFF.put((hardware, precision, False), eff)


def _is_hardware_name(name: str) -> bool:
    from ..zoo import Hardware
    return name in Hardware


def pass_memory(table, hardware: HardwareSpec, pp: int = 1,
                memory_utilization: float = 1.0) -> MemoryBudget:
    """One pass on one device: weights, per-sample state and activations against the device
    capacity times ``memory_utilization`` (1: the whole device, no runtime reserve). The
    table is one tensor-parallel rank's (weights and KV already split by TP); a ``pp``-stage
    pipeline holds 1/pp of the layers, their weights and their KV per device, while the
    largest activation set (one layer's) stays whole."""
    return MemoryBudget(weights=table.weight_total_bytes / pp,
                        usable=hardware._base["capacity"] * memory_utilization,
                        per_sample=table.state_bytes_per_sample / pp,
                        activations_per_sample=table.act_peak_bytes_per_sample,
                        per_sample_label="state")


FORMULA = ("t = sum over kernels of count * max(F / (peak * eta_c(F)), bytes / (BW * eta_mem), "
           "t_kernel);  eta_c(F) = eta_max * (1 - exp(-(F / (peak * tau))^alpha))")


def build_trace(hardware: HardwareSpec, precision: str, prepared: Prepared, batch: int,
                extra: dict[str, Any]) -> dict[str, Any]:
    """The provenance record shared by every result built on the operator cost model."""
    eff = prepared.efficiency
    src = hardware.field_sources
    own = hardware.efficiency is not None
    rows = {} if own else calibration().provenance(hardware.key, precision)
    fit = "user calibration" if own else "fit to published microbenchmarks (see rows)"

    def const(value, unit, source, rows=None):
        d = {"value": value, "unit": unit, "source": source}
        if rows is not None:
            d["rows"] = rows
        return d

    tc, tm, compute = op_times(prepared, batch)
    ops = []
    for i, name in enumerate(prepared.table.names):
        t = max(tc[i], tm[i], prepared.launch_floor[i])
        ops.append({"name": name, "count": float(prepared.count[i]),
                    "compute_s": float(tc[i]), "memory_s": float(tm[i]), "time_s": float(t),
                    "binding": ("launch" if t == prepared.launch_floor[i] and t > 0 else
                                "compute" if tc[i] >= tm[i] else "memory"),
                    "regime": "Compute" if compute[i] else "Memory"})
    return {
        "formula": FORMULA,
        "hardware": {"key": hardware.key, "source": hardware.source, "as_of": hardware.as_of},
        "constants": {
            "peak_flops": const(prepared.peak, "flop/s",
                                src.get(f"compute.dense.{precision}", hardware.source)),
            "bandwidth": const(prepared.bandwidth, "byte/s",
                               src.get("memory.bandwidth", hardware.source)),
            "capacity": const(hardware._base["capacity"], "byte",
                              src.get("memory.capacity", hardware.source)),
            "eta_gemm_max": const(eff.gemm_max, "1", fit, rows.get("gemm_max")),
            "tau": const(eff.gemm_tau_s, "s", fit, rows.get("gemm_ramp (tau, alpha)")),
            "alpha": const(eff.gemm_alpha, "1", fit, rows.get("gemm_ramp (tau, alpha)")),
            "eta_attention": const(eff.attention_max, "1", fit, rows.get("attention")),
            "eta_mem": const(eff.memory, "1", fit, rows.get("memory")),
            "t_kernel": const(eff.kernel_overhead_s, "s", fit, rows.get("kernel_overhead")),
        },
        "estimated_terms": list(eff.estimated),
        "operators": ops,
        **extra,
    }


def time_by_resource(prepared: Prepared, batch: int) -> dict[str, float]:
    """Seconds of one pass spent in operators bound by each resource: "compute" (the
    efficiency-scaled compute term is the largest), "memory bandwidth", "launch" (the
    per-kernel floor), the same classification as :func:`build_trace`'s operators; plus
    "interconnect": whatever the cost model adds beyond the operators' own terms
    (communication on the critical path, zero on one device)."""
    tc, tm, _ = op_times(prepared, batch)
    floor = prepared.launch_floor
    t = np.maximum(np.maximum(tc, tm), floor)
    launch = (t == floor) & (floor > 0)
    compute = ~launch & (tc >= tm)
    memory = ~launch & ~compute
    n = prepared.count
    ops = float(t @ n)
    return {"memory bandwidth": float((t * memory) @ n), "compute": float((t * compute) @ n),
            "launch": float((t * launch) @ n),
            "interconnect": max(float(evaluate(prepared, batch).latency) - ops, 0.0)}


@dataclass(frozen=True, eq=False, repr=False)
class PerformanceProfile(Result):
    """What one device does with one workload pass. Times in seconds internally; the
    properties give quantities (``profile.latency.to('ms')``)."""

    model: ModelSpec
    hardware: HardwareSpec
    batch_size: int
    precision: str
    phase: str
    seq_len: int | None
    latency_s: float
    compute_bound_s: float
    memory_bound_s: float
    flops_total: float
    bytes_total: float
    weights_bytes: float
    state_bytes: float
    activation_bytes: float
    _prepared: Prepared = field(repr=False)
    tp_size: int = 1
    pp_size: int = 1
    memory_utilization: float = 1.0
    eager: bool = False
    cuda_graphs: bool = False

    # --- headline quantities ---------------------------------------------------------
    @property
    def bottleneck(self) -> str:
        """Roofline regime: "Compute" if compute-bound operators take most of the time."""
        return "Compute" if self.compute_bound_s > self.memory_bound_s else "Memory"

    @property
    def latency(self):
        return Q_(self.latency_s, "s").to("ms")

    @property
    def throughput(self) -> Rate:
        """Samples per second: batch / latency, times ``pp_size`` (a pipeline keeps one pass
        per stage in flight). A decode step yields one token per sequence, so for decode this
        is also tokens/s."""
        return Rate(self.pp_size * self.batch_size / self.latency_s, "sample/s")

    @property
    def tokens_per_second(self) -> Rate | None:
        if not isinstance(self.model, TransformerSpec) and self.phase == "forward":
            return None
        per_sample = 1 if self.phase == "decode" else (self.seq_len or 1)
        return Rate(self.pp_size * self.batch_size * per_sample / self.latency_s, "token/s")

    @property
    def arithmetic_intensity(self):
        return Q_(self.flops_total / self.bytes_total, "flop/byte")

    @property
    def ridge_point(self):
        return Q_(self._prepared.peak / self._prepared.bandwidth, "flop/byte")

    @property
    def peak_flops(self):
        return Q_(self._prepared.peak, "flop/s").to("TFLOP/s")

    @property
    def flops(self):
        return Q_(self.flops_total, "flop").to("GFLOP")

    @property
    def bytes_moved(self):
        return Q_(self.bytes_total, "byte").to("MB")

    @property
    def memory(self) -> MemoryBudget:
        """Bytes on the device: weights, per-sample state and activations, its capacity."""
        return pass_memory(self._prepared.table, self.hardware, self.pp_size,
                           self.memory_utilization)

    @property
    def memory_footprint(self):
        return Q_(float(self.memory.total(self.batch_size)), "byte").to("GB")

    @property
    def memory_capacity(self):
        return self.hardware.memory.capacity.to("GB")

    @property
    def feasible(self) -> bool:
        return bool(self.memory.fits(self.batch_size))

    @property
    def reason(self) -> str | None:
        return self.memory.reason(self.batch_size, self.hardware.name)

    @property
    def binding(self) -> str:
        """"memory capacity" when the pass does not fit; otherwise the resource whose bound
        operators take most of the predicted time ("memory bandwidth", "compute", "launch").
        Unlike ``bottleneck`` (the ideal-roof regime) this counts efficiencies: a small GEMM
        below the ridge can still be compute-bound at its low efficiency."""
        if not self.feasible:
            return "memory capacity"
        times = time_by_resource(self._prepared, self.batch_size)
        return max(times, key=times.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        eff = self._prepared.efficiency
        own = self.hardware.efficiency is not None
        tp, pp = self.tp_size, self.pp_size
        if tp * pp == 1:
            where = ("one device; kernels run back to back, none overlap",)
        else:
            where = (f"{tp * pp} devices (tp={tp}, pp={pp}); kernels of a rank run back to "
                     "back, none overlap"
                     + ("; two all-reduces of the activations per layer (16-bit)"
                        if tp > 1 else "")
                     + (f"; one hand-off per stage boundary, {pp} passes in flight "
                        "(throughput x pp)" if pp > 1 else ""),)
        util = self.memory_utilization
        return (
            *where,
            "each operator takes max(compute, memory, launch) time",
            ("eager execution: nothing fused; BatchNorm, activations and residual adds are "
             "kernels of their own" if self.eager else
             "compiled execution: BatchNorm folded, activations and residual adds fused into "
             "the producing kernel (eager=True for an eager framework)"),
            ("kernels replayed from a CUDA graph: each costs at least the smallest measured "
             "launch" if self.cuda_graphs else
             "each kernel costs at least the framework's median launch and dispatch time "
             "(cuda_graphs=True for graph replay)"),
            "efficiencies from " + ("the user's calibration" if own else
                                    "fits to published microbenchmarks"),
            *((f"estimated from other devices: {', '.join(eff.estimated)}",)
              if eff.estimated else ()),
            "memory = weights + per-sample state + the largest activation set, against "
            + ("the whole device capacity (memory_utilization 1: no runtime reserve; "
               "ServingModel keeps 0.9 for the engine)" if util == 1.0 else
               f"{util:g} of the device capacity (memory_utilization)"),
        )

    main_latency = "latency_s"
    summary_inputs = ("model", "hardware", "batch_size:batch", "precision:", "phase:",
                      "tp_size:tp?", "pp_size:pp?")
    summary_numbers = ("bottleneck:", "latency:", "throughput:")

    @property
    def mfu(self) -> float:
        """Model flops utilization: achieved flop/s over the dense peak."""
        return self.flops_total / self.latency_s / self._prepared.peak

    def latency_without_weight_reads_s(self) -> float:
        """Seconds the pass would take if its weights did not come from device memory
        (streamed straight into the kernels): every operator takes max(compute, activation
        traffic, launch floor); communication stays as it is. Never more than ``latency_s``."""
        p, b = self._prepared, self.batch_size
        tc, tm, _ = op_times(p, b)
        floor = p.launch_floor
        comm = self.latency_s - float(np.maximum(np.maximum(tc, tm), floor) @ p.count)
        t = np.maximum(np.maximum(tc, p.tm_a * b), floor)
        return float(t @ p.count) + max(comm, 0.0)

    @property
    def efficiency(self) -> Efficiency:
        return self._prepared.efficiency

    @cached_property
    def band(self) -> tuple[Any, Any]:
        """(low, high) latency from the calibration spread of every efficiency term."""
        eff, p = self._prepared.efficiency, self._prepared
        fast = evaluate(p, self.batch_size, compute_scale=eff.compute_spread[1],
                        memory_scale=eff.memory_spread[1], overhead_scale=eff.overhead_spread[0])
        slow = evaluate(p, self.batch_size, compute_scale=eff.compute_spread[0],
                        memory_scale=eff.memory_spread[0], overhead_scale=eff.overhead_spread[1])
        return Q_(float(fast.latency), "s").to("ms"), Q_(float(slow.latency), "s").to("ms")

    # --- breakdown ---------------------------------------------------------------------
    @cached_property
    def operators(self) -> list[dict[str, Any]]:
        """Per-operator breakdown, largest time first (seconds and bytes, per kernel type)."""
        p = self._prepared
        tc, tm, compute = op_times(p, self.batch_size)
        t = np.maximum(np.maximum(tc, tm), p.launch_floor)
        flops = p.table.flops_per_sample * self.batch_size
        moved = tm * p.bandwidth * p.efficiency.memory
        rows = []
        for i, name in enumerate(p.table.names):
            n = p.count[i]
            rows.append({
                "name": name, "kind": OpKind(p.table.kind[i]).label, "count": int(n),
                "time_s": float(t[i] * n),
                "launch_bound": bool(p.launch_floor[i] > max(tc[i], tm[i])),
                "compute_s": float(tc[i] * n), "memory_s": float(tm[i] * n),
                "flops": float(flops[i] * n), "bytes": float(moved[i] * n),
                "regime": "Compute" if compute[i] else "Memory",
            })
        rows.sort(key=lambda r: -r["time_s"])
        return rows

    def trace(self) -> dict[str, Any]:
        """Provenance of every number: the formula, each constant with its source, and the
        per-operator terms. Stable and diffable: sorted keys, operators in lowering order."""
        return build_trace(self.hardware, self.precision, self._prepared, self.batch_size, {
            "model": {"key": self.model.key, "parameters": self.model.parameter_count,
                      "source": self.model.source},
            "result": {"latency_s": self.latency_s, "bottleneck": self.bottleneck,
                       "flops": self.flops_total, "bytes": self.bytes_total},
        })

    def headline(self) -> dict[str, Any]:
        lo, hi = self.band
        d = {
            "model": self.model.name, "hardware": self.hardware.name,
            "batch_size": self.batch_size, "precision": self.precision, "phase": self.phase,
            "seq_len": self.seq_len, "tp_size": self.tp_size, "pp_size": self.pp_size,
            "eager": self.eager, "cuda_graphs": self.cuda_graphs,
            "bottleneck": self.bottleneck, "latency": self.latency,
            "latency_low": lo, "latency_high": hi, "throughput": self.throughput,
            "throughput_low": Rate(self.pp_size * self.batch_size / hi.to("s").magnitude,
                                   "sample/s"),
            "throughput_high": Rate(self.pp_size * self.batch_size / lo.to("s").magnitude,
                                    "sample/s"),
        }
        if self.tokens_per_second is not None:
            d["tokens_per_second"] = self.tokens_per_second
        d.update({
            "arithmetic_intensity": self.arithmetic_intensity, "ridge_point": self.ridge_point,
            "mfu": round(self.mfu, 4), "memory_footprint": self.memory_footprint,
            "memory_capacity": self.memory_capacity,
            "memory_utilization": self.memory_utilization, "feasible": self.feasible,
            "reason": self.reason,
        })
        return d

    def explain(self) -> str:
        p, eff = self._prepared, self._prepared.efficiency
        ai, ridge = self.arithmetic_intensity.magnitude, self.ridge_point.magnitude
        share = self.compute_bound_s / self.latency_s
        launch_bound = [r for r in self.operators if r["launch_bound"]]
        launch_s = sum(r["time_s"] for r in launch_bound)
        what = {"decode": f"one decode step over {self.seq_len} cached tokens",
                "prefill": f"prefill of {self.seq_len} tokens",
                "forward": "one forward pass" + (f" over {self.seq_len} tokens"
                                                 if self.seq_len else "")}[self.phase]
        lo, hi = self.band
        lines = [
            f"{self.model.name} on "
            + (f"{self.tp_size * self.pp_size} x {self.hardware.name} (tp={self.tp_size}, "
               f"pp={self.pp_size}; time is one rank's kernels and collectives)"
               if self.tp_size * self.pp_size > 1 else self.hardware.name)
            + f": {what}, batch {self.batch_size}, {self.precision}",
            f"  roofs: peak {self.peak_flops.magnitude:.4g} TFLOP/s ({self.precision} dense; "
            f"{self.hardware.source}), bandwidth {p.bandwidth / 1e9:.4g} GB/s -> ridge point "
            f"{ridge:.1f} flop/byte",
            f"  work: {self.flops_total / 1e9:.4g} GFLOP, {self.bytes_total / 1e6:.4g} MB moved"
            f" -> arithmetic intensity {ai:.1f} flop/byte "
            f"({'above' if ai > ridge else 'below'} the ridge)",
            "  time = sum over kernels of max(F / (peak * eta_c(F)), bytes / (BW * eta_mem), "
            "t_kernel),  eta_c(F) = eta_max * (1 - exp(-(F / (peak * tau))^alpha))",
            f"       = {self.latency_s * 1e3:.4g} ms over {p.kernels:.0f} kernels (band "
            f"{lo.magnitude:.3g}-{hi.magnitude:.3g} ms); {len(launch_bound)} operator types "
            f"({launch_s * 1e3:.3g} ms) are launch-bound at t_kernel = "
            f"{eff.kernel_overhead_s * 1e6:.3g} us",
            f"  regime: {self.bottleneck} ({share:.0%} of operator time in compute-bound "
            f"operators, {1 - share:.0%} in memory-bound ones)",
            f"  efficiency: eta_gemm_max={eff.gemm_max:.3f}, tau={eff.gemm_tau_s * 1e6:.3g} us, "
            f"alpha={eff.gemm_alpha:.3g}, "
            f"eta_attention={eff.attention_max:.3f}, eta_mem={eff.memory:.3f}, "
            f"t_kernel={eff.kernel_overhead_s * 1e6:.3g} us ("
            + (eff.rows[0] if eff.rows else "fitted to published microbenchmarks")
            + (f"; estimated from other devices: {', '.join(eff.estimated)}" if eff.estimated
               else "") + ")",
            f"  memory: weights {self.weights_bytes / 1e9:.4g} GB + state "
            f"{self.state_bytes / 1e9:.4g} GB + activations {self.activation_bytes / 1e9:.4g} GB"
            f" = {self.memory_footprint.magnitude:.4g} GB per device of "
            f"{self.memory.usable / 1e9:.4g} GB usable ({self.memory_utilization:g} x "
            f"{self.memory_capacity.magnitude:.4g} GB) -> "
            + ("fits" if self.feasible else f"DOES NOT FIT ({self.reason})"),
            "  top operators:",
        ]
        for r in self.operators[:5]:
            lines.append(f"    {r['name']:<28} x{r['count']:<4} {r['time_s'] * 1e6:10.1f} us  "
                         f"{r['regime']:<7} ({r['kind']})")
        return "\n".join(lines)



class SingleNodeModel(ForwardModel):
    """One workload pass on one device; the solver behind ``Engine.solve``."""

    options = (
        Option("model", REQUIRED, "the workload: a model spec or zoo name"),
        Option("hardware", REQUIRED, "the device: a hardware spec or zoo name"),
        Option("batch_size", 1, "samples (images, sequences) per pass, >= 1"),
        Option("precision", None, "compute precision; default: the device's default"),
        Option("seq_len", None, "tokens: cached context (decode), prompt (prefill) or "
               "sequence (encoders); default: the model's"),
        Option("phase", None, '"decode" | "prefill" | "forward"; default: by model family'),
        Option("tp_size", 1, "tensor-parallel devices (transformers)"),
        Option("pp_size", 1, "pipeline stages (transformers and SSMs)"),
        Option("memory_utilization", 1.0, "fraction of device memory the pass may use"),
        Option("eager", False, "run unfused, as an eager framework does (CNNs, imported "
               "graphs)"),
        Option("cuda_graphs", False, "kernels replayed from a captured graph (no host "
               "dispatch per kernel)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B decode at batch 8 on an H100; Llama-3-70B (141 GB of fp16 weights) on
        an 80 GB A100 does not fit."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_8B, hardware=Hardware.H100, batch_size=8,
                        seq_len=1024)
        return dict(model=Models.Llama3_70B, hardware=Hardware.A100, batch_size=1)

    def solve(self, model, hardware, batch_size: int = 1, precision: str | None = None,
              seq_len: int | None = None, phase: str | None = None, tp_size: int = 1,
              pp_size: int = 1, memory_utilization: float = 1.0,
              eager: bool = False, cuda_graphs: bool = False) -> PerformanceProfile:
        """Predict one pass of ``model`` on ``hardware``.

        Parameters
        ----------
        model : spec or zoo name
        hardware : spec or zoo name; with ``tp_size * pp_size > 1`` also a node or fleet
            (``mlsysim.Systems``), whose fabrics carry the collectives (a bare chip uses its
            own scale-up interconnect)
        batch_size : int >= 1, samples (images, sequences) per pass
        precision : str, one the device has a published peak for ("fp16", "bf16", "fp8", ...);
            default: the device's ``compute.default_precision`` (fp16 on GPUs)
        seq_len : int, tokens. Decoders: context already cached for ``phase="decode"`` (the
            default phase), prompt length for ``phase="prefill"``. Encoders: sequence length.
            Default: the model's ``default_seq_len`` or min(max_context, 2048).
        phase : "decode" | "prefill" for decoders and SSMs, "forward" for everything else.
        tp_size, pp_size : tensor-parallel devices and pipeline stages (default 1 each). The
            pass is one TP rank's operators plus its all-reduces, through every stage in turn;
            memory is per device (weights and KV split by tp x pp).
        memory_utilization : fraction of the capacity the pass may use, in (0, 1]; default 1
            (``ServingModel`` keeps 0.9 for the serving engine's runtime).
        eager : run the pass as an eager framework (PyTorch without compilation) does:
            nothing fused, BatchNorm and every activation and residual add its own kernel
            reading and writing its tensors (layer-list models and imported graphs).
            Default False: an inference compiler's folded BN and fused epilogues.
        cuda_graphs : the pass is replayed from a captured CUDA graph (TensorRT engines in
            MLPerf SingleStream, serving engines' decode): each kernel costs the smallest
            measured launch instead of the framework's median dispatch. Default False.

        Examples
        --------
        >>> import mlsysim
        >>> p = mlsysim.Engine.solve(mlsysim.Models.ResNet50, mlsysim.Hardware.Cloud.A100)
        >>> p.bottleneck
        'Memory'
        """
        # Types are part of the key, so seq_len=True never reuses the plan of seq_len=1.
        # An unhashable argument is never cached; the plan's validation names it.
        key = (model, hardware, precision, seq_len, phase, type(seq_len), type(precision),
               tp_size, pp_size, memory_utilization, type(tp_size), type(pp_size), eager,
               type(eager), cuda_graphs, type(cuda_graphs))
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS.put(key, self._plan(model, hardware, precision, seq_len, phase,
                                              "Engine.solve", tp_size, pp_size,
                                              memory_utilization, eager, cuda_graphs))
        _, _, model, hardware, precision, phase, seq, prepared, split = plan
        batch = batch_size if type(batch_size) is int and batch_size > 0 else \
            check.positive_int("batch_size", batch_size, "Engine.solve")
        ev = evaluate(prepared, batch)
        table = prepared.table
        return PerformanceProfile(
            model=model, hardware=hardware, batch_size=batch, precision=precision,
            phase=phase, seq_len=seq, latency_s=float(ev.latency),
            compute_bound_s=float(ev.compute_bound_time),
            memory_bound_s=float(ev.memory_bound_time),
            flops_total=float(ev.flops), bytes_total=float(ev.bytes),
            weights_bytes=table.weight_total_bytes / split[1],
            state_bytes=table.state_bytes_per_sample * batch / split[1],
            activation_bytes=table.act_peak_bytes_per_sample * batch, _prepared=prepared,
            tp_size=split[0], pp_size=split[1], memory_utilization=split[2],
            eager=split[3], cuda_graphs=split[4],
        )

    def _plan(self, model, hardware, precision, seq_len, phase, owner: str, tp=1, pp=1,
              memory_utilization=1.0, eager=False, cuda_graphs=False) -> tuple:
        """Validate everything but the batch, lower the workload, and prepare the costs."""
        raw_model, raw_hardware = model, hardware
        eager = check.flag("eager", eager, owner)
        graphs = check.flag("cuda_graphs", cuda_graphs, owner)
        tp = check.positive_int("tp_size", tp, owner)
        pp = check.positive_int("pp_size", pp, owner)
        util = check.fraction("memory_utilization", memory_utilization, owner)
        if util == 0.0:
            from ..errors import ValidationError
            raise ValidationError("memory_utilization", "must be above 0 (a fraction of the "
                                  "device in (0, 1]). Got 0 instead.", owner=owner)
        path = None
        if not isinstance(hardware, HardwareSpec) and not (isinstance(hardware, str)
                                                           and _is_hardware_name(hardware)):
            from .collectives import resolve_system  # a node or fleet, or an error naming it
            hardware, path = resolve_system(hardware, owner)
        model, hardware = resolve(model, hardware)
        if precision is None:
            precision = hardware.compute.default_precision
        precision = check.precision_of(hardware, precision, owner)
        phase = default_phase(model) if phase is None else phase
        if not isinstance(phase, str):
            from ..errors import ValidationError
            raise ValidationError("phase", f"must be a string. Got {phase!r} instead.",
                                  owner=owner)
        from ..workloads import allowed_phases
        if phase not in allowed_phases(model):
            from ..errors import ValidationError
            raise ValidationError("phase", f"must be one of {', '.join(allowed_phases(model))} "
                                  f"for {model.name} ({model.architecture}). Got {phase!r} "
                                  "instead.", owner=owner)
        seq = self._seq_len(model, seq_len, owner)
        if tp * pp > 1:
            if not isinstance(model, (TransformerSpec, SSMSpec)):
                from ..errors import ValidationError
                raise ValidationError("tp_size", f"times pp_size must be 1 for {model.name} "
                                      f"({model.architecture}): only transformers and "
                                      "state-space models are split over devices. Got "
                                      f"tp_size={tp}, pp_size={pp} instead.", owner=owner)
            from .collectives import comm_path
            path = path or comm_path(hardware)
            check.parallel_split(model, tp, pp, (path,), owner)
        table = lower(model, phase=phase, seq_len=seq or 1, e=BYTES_PER_ELEMENT[precision],
                      tp=tp, pp=pp, eager=eager)
        prepared = prepare(table, hardware, precision,
                           efficiency_for(hardware, precision, graphs), path=path)
        return (raw_model, raw_hardware, model, hardware, precision, phase, seq, prepared,
                (tp, pp, util, eager, graphs))

    @staticmethod
    def _seq_len(model: ModelSpec, seq_len, owner: str) -> int | None:
        if isinstance(model, ImportedWorkload) and model.seq_axis:
            if seq_len is None:
                return model.default_seq_len
            return check.positive_int("seq_len", seq_len, owner)
        limit = model.max_context if isinstance(model, (TransformerSpec, SSMSpec)) else None
        if limit is None:  # layered models have no sequence
            if seq_len is not None:
                check.positive_int("seq_len", seq_len, owner)
            return None
        if seq_len is None:
            return model.seq_len_default if isinstance(model, TransformerSpec) else 2048
        seq = check.positive_int("seq_len", seq_len, owner)
        if seq > limit:
            from ..errors import ValidationError
            raise ValidationError("seq_len", f"must not exceed {model.name}'s context of {limit}"
                                  f" tokens. Got {seq} instead.", owner=owner)
        return seq

    def sweep(self, model, hardware, batch_sizes, precision: str | None = None,
              seq_len: int | None = None, phase: str | None = None) -> dict[str, np.ndarray]:
        """Latency and throughput for many batch sizes at once (vectorized, same equations)."""
        owner = "Engine.sweep"
        from ..errors import ValidationError
        # Numbers only: numpy would read "8" as 8 and True as 1, and a Python int past float
        # range raises OverflowError. Whole numbers up to 2**53, the largest float64 counts
        # exactly.
        batches = None
        if not isinstance(batch_sizes, (str, bytes, bool, np.bool_)) and not (
                isinstance(batch_sizes, (list, tuple)) and any(
                    isinstance(b, (str, bytes, bool, np.bool_)) for b in batch_sizes)):
            try:
                arr = np.asarray(batch_sizes)
                if arr.dtype.kind in "iuf":
                    batches = arr.astype(np.float64, copy=False).reshape(-1)
            except (TypeError, ValueError, OverflowError):
                pass
        if batches is None:
            batches = np.array([np.nan])
        if batches.size == 0 or not np.all(np.isfinite(batches)) or np.any(batches < 1) or \
                np.any(batches > 2.0**53) or np.any(batches != np.floor(batches)):
            shown = repr(batch_sizes)
            shown = shown if len(shown) <= 80 else shown[:76] + " ..."
            raise ValidationError("batch_sizes", "must be positive whole numbers (ints or "
                                  "floats, not strings or booleans) up to 2**53. Got "
                                  f"{shown} instead.", owner=owner)
        *_, hardware, precision, phase, seq, prepared, _ = self._plan(
            model, hardware, precision, seq_len, phase, owner)
        table = prepared.table
        # The same equations in chunks that stay in cache: one (n x operators) array per
        # chunk instead of one for the whole sweep (about 6x faster at a million batches).
        latency = np.empty(batches.size)
        compute_bound = np.empty(batches.size, dtype=bool)
        for i in range(0, batches.size, SWEEP_CHUNK):
            ev = evaluate(prepared, batches[i:i + SWEEP_CHUNK, None])
            latency[i:i + SWEEP_CHUNK] = ev.latency
            compute_bound[i:i + SWEEP_CHUNK] = ev.compute_bound_time > ev.memory_bound_time
        memory = pass_memory(table, hardware)
        footprint = memory.total(batches)
        bottleneck = np.full(batches.size, "Memory", dtype="<U7")
        bottleneck[compute_bound] = "Compute"
        return {
            "batch_size": batches, "latency_s": latency, "throughput": batches / latency,
            "bottleneck": bottleneck, "memory_bytes": footprint,
            "feasible": memory.fits(batches),
        }


class Engine:
    """The tutorial's entry point: ``Engine.solve(model=..., hardware=..., batch_size=...)``."""

    _solver = SingleNodeModel()

    @staticmethod
    def solve(model, hardware, batch_size: int = 1, precision: str | None = None,
              seq_len: int | None = None, phase: str | None = None, tp_size: int = 1,
              pp_size: int = 1, memory_utilization: float = 1.0,
              eager: bool = False, cuda_graphs: bool = False) -> PerformanceProfile:
        return Engine._solver.solve(model, hardware, batch_size=batch_size,
                                    precision=precision, seq_len=seq_len, phase=phase,
                                    tp_size=tp_size, pp_size=pp_size,
                                    memory_utilization=memory_utilization, eager=eager,
                                    cuda_graphs=cuda_graphs)

    @staticmethod
    def sweep(model, hardware, batch_sizes, precision: str | None = None,
              seq_len: int | None = None,
              phase: str | None = None) -> dict[str, np.ndarray]:
        return Engine._solver.sweep(model, hardware, batch_sizes, precision=precision,
                                    seq_len=seq_len, phase=phase)
