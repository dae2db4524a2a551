"""Which device spec matters, and what device a target needs: sensitivity and synthesis.

:class:`SensitivitySolver` measures the elasticity of a prediction with respect to each spec of
the device it runs on,

    e_x = d ln(metric) / d ln(x)
        ~ [ln m(x (1 + h)) - ln m(x (1 - h))] / [ln(1 + h) - ln(1 - h)]

(a central finite difference in log space, exact for a power law m ~ x^e), for x = memory
bandwidth, every dense and sparse compute peak scaled together, memory capacity, the scale-up
interconnect's bandwidth, and the calibrated efficiency terms eta_gemm_max, eta_mem and the
per-kernel overhead t_kernel. Each perturbed device is ``hardware.model_copy(update=...)`` (so
it is validated and keeps its key, hence its calibration); efficiency terms are perturbed
through the device's ``efficiency`` override (:class:`~mlsysim.specs.hardware.EfficiencySpec`)
seeded with the calibrated values, which reproduces the nominal prediction exactly. A resource
that does not bind has elasticity 0; one that binds alone has -1 (a latency inversely
proportional to it); e.g. batch-1 LLM decode has e_bandwidth ~ -1 and e_peak ~ 0.

:class:`SynthesisSolver` is the inverse roofline: the memory bandwidth and compute a device
needs to run one pass in a target time,

    BW >= bytes_per_step / (T * eta_mem),   peak >= flops_per_step / (T * eta_gemm_max),

each necessary (the other resource infinite). Operators take max(compute, memory) each, so a
device with exactly both takes between T and 2 T; the *balanced* device, both scaled by
k = sum_i max(F_i / F, Q_i / Q) in [1, 2], meets T exactly at the ideal roofs.

Left out: the GEMM efficiency ramp's shape (tau, alpha) and the attention efficiency are not
perturbed (only their cap eta_gemm_max is); the serving solver with CUDA graphs replaces
t_kernel by the graph launch cost, so t_kernel has elasticity 0 there; host-link bandwidth,
on-chip memory and TDP are not varied; the sensitivity runs on one chip (not a node or fleet).
Synthesis uses eta_max for every compute operator (no size ramp, no vector-unit peak) and
treats the launch floor kernels x t_kernel only as a feasibility bound, not as added time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..core.costmodel import _touched
from ..core.engine import SingleNodeModel, efficiency_for, resolve
from ..errors import ValidationError
from ..specs.configs import ServingConfig
from ..specs.hardware import BYTES_PER_ELEMENT, EfficiencySpec, HardwareSpec
from ..specs.model import ModelSpec
from ..units import Q_, Rate
from ..workloads import default_phase, lower

__all__ = ["SensitivitySolver", "SensitivityResult", "SynthesisSolver", "SynthesisResult",
           "SPECS"]

# name -> (label for binding / display, SI unit of the spec's value)
SPECS: dict[str, tuple[str, str]] = {
    "memory_bandwidth": ("memory bandwidth", "byte/s"),
    "peak_flops": ("compute", "flop/s"),
    "memory_capacity": ("memory capacity", "byte"),
    "interconnect_bandwidth": ("interconnect", "byte/s"),
    "eta_gemm_max": ("GEMM efficiency", ""),
    "eta_memory": ("memory efficiency", ""),
    "kernel_overhead": ("launch", "s"),
}
_DEVICE_SPECS = ("memory_bandwidth", "peak_flops", "memory_capacity", "interconnect_bandwidth")
_ENGINE_KEYS = ("batch_size", "precision", "seq_len", "phase")
_METRICS = {"engine": ("latency", "throughput"),
            "serving": ("e2e_latency", "itl", "ttft", "tokens_per_s")}
_MAIN = {"engine": "latency", "serving": "e2e_latency"}
OWNER = "SensitivitySolver"


def _spec_value(hw: HardwareSpec, name: str, eff: EfficiencySpec) -> float | None:
    """The spec's nominal value in SI units (None: the device has no such spec)."""
    if name == "memory_bandwidth":
        return hw._base["bandwidth"]
    if name == "peak_flops":
        return hw._base[f"peak_{hw.compute.default_precision}"]
    if name == "memory_capacity":
        return hw._base["capacity"]
    if name == "interconnect_bandwidth":
        ic = hw.interconnect
        return None if ic is None else float(ic.bandwidth.to("byte/s").magnitude)
    if name == "eta_gemm_max":
        return eff.gemm_max
    if name == "eta_memory":
        return eff.memory
    return float(eff.kernel_overhead.to("s").magnitude)


def _perturbed(hw: HardwareSpec, name: str, f: float, eff: EfficiencySpec) -> HardwareSpec:
    """``hw`` with spec ``name`` multiplied by ``f`` (a validated copy, same key)."""
    if name == "memory_bandwidth":
        return hw.model_copy(update={"memory": hw.memory.model_copy(
            update={"bandwidth": hw.memory.bandwidth * f})})
    if name == "memory_capacity":
        return hw.model_copy(update={"memory": hw.memory.model_copy(
            update={"capacity": hw.memory.capacity * f})})
    if name == "peak_flops":
        c = hw.compute
        return hw.model_copy(update={"compute": c.model_copy(update={
            "dense": {k: v * f for k, v in c.dense.items()},
            "sparse": {k: v * f for k, v in c.sparse.items()}})})
    if name == "interconnect_bandwidth":
        return hw.model_copy(update={"interconnect": hw.interconnect.model_copy(
            update={"bandwidth": hw.interconnect.bandwidth * f})})
    field = {"eta_gemm_max": "gemm_max", "eta_memory": "memory",
             "kernel_overhead": "kernel_overhead"}[name]
    value = getattr(eff, field) * f
    return hw.model_copy(update={"efficiency": eff.model_copy(update={field: value})})


def _efficiency_spec(hw: HardwareSpec, precision: str) -> EfficiencySpec:
    """The device's own calibration, or the package's calibrated terms as an override."""
    if hw.efficiency is not None:
        return hw.efficiency
    e = efficiency_for(hw, precision)
    return EfficiencySpec(
        gemm_max=e.gemm_max, gemm_tau=Q_(e.gemm_tau_s, "s"), gemm_alpha=e.gemm_alpha,
        attention_max=e.attention_max, memory=e.memory,
        kernel_overhead=Q_(e.kernel_overhead_s, "s"),
        source=f"package calibration of {hw.key} at {precision} (sensitivity baseline)", rows=0)


@dataclass(frozen=True, eq=False, repr=False)
class SensitivityResult(Result):
    """Elasticities of one prediction with respect to each device spec (SI floats inside)."""

    model: ModelSpec
    hardware: HardwareSpec
    solver: str
    metric: str
    metric_unit: str             # SI unit of the metric: "s" or "1/s" per counted thing
    value: float                 # the metric at the nominal device
    latency_s: float             # the underlying solver's main latency at the nominal device
    relative_step: float
    names: tuple[str, ...]
    spec_values: tuple[float, ...]
    elasticity_values: tuple[float, ...]
    lower: tuple[float, ...]     # metric at x (1 - h)
    upper: tuple[float, ...]     # metric at x (1 + h), or the nominal value (one-sided)
    one_sided: tuple[bool, ...]
    left_out: tuple[str, ...]
    feasible: bool = True
    reason: str | None = None

    main_latency = "latency_s"
    summary_inputs = ("model", "hardware", "metric:")
    summary_numbers = ("bandwidth_elasticity:e_bw", "peak_elasticity:e_peak")

    @property
    def elasticities(self) -> dict[str, float]:
        """``{spec name: d ln(metric) / d ln(spec)}``."""
        return dict(zip(self.names, self.elasticity_values))

    @property
    def bandwidth_elasticity(self) -> float:
        return self.elasticities["memory_bandwidth"]

    @property
    def peak_elasticity(self) -> float:
        return self.elasticities["peak_flops"]

    @property
    def metric_value(self):
        if self.metric_unit == "s":
            return Q_(self.value, "s").to("ms")
        return Rate(self.value, self.metric_unit)

    @property
    def latency(self):
        return Q_(self.latency_s, "s").to("ms")

    @property
    def binding(self) -> str:
        """The device spec the metric is most elastic to; "launch" when the per-kernel
        overhead outweighs every device spec."""
        e = self.elasticities
        specs = [n for n in self.names if n in _DEVICE_SPECS]
        top = max(specs, key=lambda n: abs(e[n]))
        if abs(e.get("kernel_overhead", 0.0)) > abs(e[top]):
            return "launch"
        return SPECS[top][0]

    @property
    def assumptions(self) -> tuple[str, ...]:
        return (f"central finite differences in log space, relative step {self.relative_step}",
                "every dense and sparse peak scaled together",
                "efficiency terms perturbed through the device's efficiency override",
                *(f"left out: {x}" for x in self.left_out))

    def ranked(self) -> list[tuple[str, float]]:
        """(spec, elasticity), largest magnitude first."""
        return sorted(self.elasticities.items(), key=lambda kv: -abs(kv[1]))

    def headline(self) -> dict[str, Any]:
        return {"model": self.model.name, "hardware": self.hardware.name,
                "solver": self.solver, "metric": self.metric,
                "metric_value": self.metric_value, "latency": self.latency,
                "relative_step": self.relative_step, "elasticities": self.elasticities,
                "feasible": self.feasible, "reason": self.reason}

    def __rich__(self):
        from rich.table import Table

        from ..show import format_value
        t = Table(title=f"{type(self).__name__}: d ln({self.metric}) / d ln(spec), "
                  f"{self.model.name} on {self.hardware.name}", header_style="bold",
                  title_justify="left")
        for h in ("spec", "value", "elasticity"):
            t.add_column(h, justify="left" if h == "spec" else "right")
        values = dict(zip(self.names, self.spec_values))
        for name, e in self.ranked():
            unit = SPECS[name][1]
            t.add_row(name, format_value(Q_(values[name], unit) if unit else values[name]),
                      f"{e:+.3f}")
        return t

    def explain(self) -> str:
        h = self.relative_step
        lines = [f"{self.model.name} on {self.hardware.name} ({self.solver}): {self.metric} = "
                 f"{self.value:.6g} {self.metric_unit}"
                 + ("" if self.feasible else f" (infeasible: {self.reason})"),
                 f"  e_x = [ln m(x(1+h)) - ln m(x(1-h))] / [ln(1+h) - ln(1-h)], h = {h}"]
        for i, name in enumerate(self.names):
            up = "m(x)" if self.one_sided[i] else "m(x(1+h))"
            lines.append(f"  {name:<23} x = {self.spec_values[i]:.4g}  {up} = "
                         f"{self.upper[i]:.6g}, m(x(1-h)) = {self.lower[i]:.6g}  ->  e = "
                         f"{self.elasticity_values[i]:+.4f}"
                         + ("  (one-sided: x(1+h) exceeds its bound)" if self.one_sided[i]
                            else ""))
        lines += [f"  left out: {x}" for x in self.left_out]
        return "\n".join(lines)


class SensitivitySolver(ForwardModel):
    """Elasticity of a prediction with respect to each device spec (see the module docstring)."""

    options = (
        Option("model", REQUIRED, "the workload: a model spec or zoo name"),
        Option("hardware", REQUIRED, "the device (one chip): a hardware spec or zoo name"),
        Option("solver", "engine", '"engine" (one pass, Engine.solve) or "serving" '
               "(ServingModel)"),
        Option("config", None, "the solver's options: a dict (engine: batch_size, precision, "
               "seq_len, phase; serving: ServingConfig fields) or a ServingConfig"),
        Option("metric", None, "engine: latency | throughput; serving: e2e_latency | itl | "
               "ttft | tokens_per_s; default: the solver's main latency"),
        Option("relative_step", 0.01, "finite-difference step h, a fraction in (0, 0.5)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B batch-1 decode over 1024 cached tokens on an H100 (bandwidth-bound);
        Llama-3-70B's 141 GB of fp16 weights on an 80 GB A100 does not fit (its elasticities
        are still those of the pass's time)."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_8B, hardware=Hardware.H100,
                        config={"batch_size": 1, "seq_len": 1024})
        return dict(model=Models.Llama3_70B, hardware=Hardware.A100,
                    config={"batch_size": 1, "seq_len": 1024})

    def solve(self, model, hardware, solver: str = "engine", config=None,
              metric: str | None = None, relative_step: float = 0.01) -> SensitivityResult:
        """Elasticities d ln(metric) / d ln(spec) for every device spec.

        Parameters
        ----------
        model, hardware : spec or zoo name (hardware: one chip)
        solver : "engine" (``Engine.solve``: one pass) or "serving" (``ServingModel``)
        config : dict or ServingConfig, the solver's options (engine: ``batch_size``,
            ``precision``, ``seq_len``, ``phase``; serving: the fields of ServingConfig,
            ``seq_len`` required)
        metric : str, engine: "latency" (s) | "throughput" (samples/s); serving:
            "e2e_latency" | "itl" | "ttft" (s) | "tokens_per_s"; default: the main latency
        relative_step : float in (0, 0.5), the relative step h of the central difference

        Returns
        -------
        SensitivityResult: ``elasticities`` (dict, dimensionless), ``binding``, ``ranked()``.

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.SensitivitySolver().solve("Llama2_7B", "L4",
        ...                                       config={"batch_size": 1, "seq_len": 1024})
        >>> round(r.elasticities["memory_bandwidth"], 2), round(r.elasticities["peak_flops"], 2)
        (-0.99, 0.0)
        >>> r.elasticities["memory_capacity"]
        0.0
        """
        if solver not in _METRICS:
            raise ValidationError("solver", f"must be one of: {', '.join(_METRICS)}. Got "
                                  f"{solver!r} instead.", owner=OWNER)
        metric = _MAIN[solver] if metric is None else metric
        if metric not in _METRICS[solver]:
            raise ValidationError("metric", f"must be one of: {', '.join(_METRICS[solver])} "
                                  f"for solver {solver!r}. Got {metric!r} instead.",
                                  owner=OWNER)
        h = check.positive_float("relative_step", relative_step, OWNER)
        if not h < 0.5:
            raise ValidationError("relative_step", "must be below 0.5. Got "
                                  f"{relative_step!r} instead.", owner=OWNER)
        model, hardware = resolve(model, hardware)
        run, precision = self._runner(model, solver, config, metric, hardware)
        base = run(hardware)
        value, latency, feasible, reason = base
        eff = _efficiency_spec(hardware, precision)
        names, vals, es, lo, hi, one = [], [], [], [], [], []
        left_out = []
        for name in SPECS:
            x = _spec_value(hardware, name, eff)
            if x is None:
                left_out.append(f"{name} ({hardware.name} has no scale-up interconnect)")
                continue
            if name == "kernel_overhead" and x == 0:
                left_out.append("kernel_overhead (zero on this device: no log step)")
                continue
            bounded = name in ("eta_gemm_max", "eta_memory") and x * (1 + h) > 1.0
            m_lo = run(_perturbed(hardware, name, 1 - h, eff))[0]
            m_hi = value if bounded else run(_perturbed(hardware, name, 1 + h, eff))[0]
            denom = -math.log1p(-h) if bounded else math.log1p(h) - math.log1p(-h)
            e = (math.log(m_hi) - math.log(m_lo)) / denom
            names.append(name)
            vals.append(x)
            es.append(0.0 if abs(e) < 1e-12 else e)
            lo.append(m_lo)
            hi.append(m_hi)
            one.append(bounded)
        unit = "s" if metric in ("latency", "e2e_latency", "itl", "ttft") else \
            ("sample/s" if solver == "engine" else "token/s")
        return SensitivityResult(
            model=model, hardware=hardware, solver=solver, metric=metric, metric_unit=unit,
            value=value, latency_s=latency, relative_step=h, names=tuple(names),
            spec_values=tuple(vals), elasticity_values=tuple(es), lower=tuple(lo),
            upper=tuple(hi), one_sided=tuple(one), left_out=tuple(left_out),
            feasible=feasible, reason=reason)

    @staticmethod
    def _runner(model, solver: str, config, metric: str, hardware: HardwareSpec):
        """A function device -> (metric, main latency s, feasible, reason), and the
        precision the efficiencies are read at."""
        if solver == "engine":
            if config is None:
                config = {}
            if not isinstance(config, dict):
                raise ValidationError("config", "must be a dict of Engine.solve options ("
                                      f"{', '.join(_ENGINE_KEYS)}). Got "
                                      f"{type(config).__name__} instead.", owner=OWNER)
            extra = set(config) - set(_ENGINE_KEYS)
            if extra:
                raise ValidationError("config", f"has unknown keys {sorted(extra)}; allowed: "
                                      f"{', '.join(_ENGINE_KEYS)}.", owner=OWNER)
            opts = dict(config)
            engine = SingleNodeModel()

            def run(hw):
                p = engine.solve(model, hw, **opts)
                m = p.latency_s if metric == "latency" else p.batch_size / p.latency_s
                return m, p.latency_s, p.feasible, p.reason
            return run, engine.solve(model, hardware, **opts).precision
        from .serving import ServingModel
        if isinstance(config, dict):
            config = ServingConfig(**config)
        if not isinstance(config, ServingConfig):
            raise ValidationError("config", "must be a ServingConfig or a dict of its fields "
                                  "(seq_len required) for solver 'serving'. Got "
                                  f"{config!r} instead.", owner=OWNER)
        serving = ServingModel()

        def run(hw):
            r = serving.solve(model, hw, config=config)
            m = {"e2e_latency": r.ttft_s + (r.output_len - 1) * r.itl_s, "itl": r.itl_s,
                 "ttft": r.ttft_s, "tokens_per_s": float(r.tokens_per_s)}[metric]
            return m, r.ttft_s + (r.output_len - 1) * r.itl_s, r.feasible, r.reason
        return run, serving.solve(model, hardware, config=config).precision


# --- synthesis ---------------------------------------------------------------------------------
SYN_OWNER = "SynthesisSolver"


@dataclass(frozen=True, eq=False, repr=False)
class SynthesisResult(Result):
    """What a device needs to run one pass in ``target_s`` (SI floats inside)."""

    model: ModelSpec
    metric: str
    phase: str
    precision: str
    batch_size: int
    seq_len: int | None
    target_s: float
    flops: float                 # per pass (step), flop
    bytes: float                 # moved per pass, byte (weights once + activations + KV)
    weights_bytes: float         # resident weights (the footprint)
    weights_read_bytes: float    # weights read by the step (embedding rows, routed experts)
    state_bytes: float           # KV cache / SSM state of the batch
    activation_bytes: float
    balance: float               # k = sum_i max(F_i / F, Q_i / Q), in [1, 2]
    memory_share: float          # share of the balanced device's time in memory-bound ops
    eta_compute: float           # 1 without a reference device
    eta_memory: float
    kernels: float
    kernel_overhead_s: float     # 0 without a reference device
    reference: str | None = None
    feasible: bool = True
    reason: str | None = None

    summary_inputs = ("model", "metric:", "target_latency:target")
    summary_numbers = ("required_bandwidth:bw", "required_compute:peak")

    @property
    def target_latency(self):
        return Q_(self.target_s, "s").to("ms")

    @property
    def required_bandwidth_bps(self) -> float:
        return self.bytes / (self.target_s * self.eta_memory)

    @property
    def required_flops_per_s(self) -> float:
        return self.flops / (self.target_s * self.eta_compute)

    @property
    def required_bandwidth(self):
        return Q_(self.required_bandwidth_bps, "byte/s").to("TB/s")

    @property
    def required_compute(self):
        return Q_(self.required_flops_per_s, "flop/s").to("TFLOP/s")

    @property
    def balanced_bandwidth(self):
        return Q_(self.required_bandwidth_bps * self.balance, "byte/s").to("TB/s")

    @property
    def balanced_compute(self):
        return Q_(self.required_flops_per_s * self.balance, "flop/s").to("TFLOP/s")

    @property
    def required_capacity(self):
        return Q_(self.weights_bytes + self.state_bytes + self.activation_bytes,
                  "byte").to("GB")

    @property
    def launch_floor(self):
        return Q_(self.kernels * self.kernel_overhead_s, "s").to("ms")

    @property
    def arithmetic_intensity(self):
        return Q_(self.flops / self.bytes, "flop/byte")

    @property
    def binding(self) -> str:
        if not self.feasible:
            return "launch"
        return "memory bandwidth" if self.memory_share >= 0.5 else "compute"

    @property
    def assumptions(self) -> tuple[str, ...]:
        eff = (f"efficiencies of {self.reference}: eta_gemm_max={self.eta_compute:.3f}, "
               f"eta_mem={self.eta_memory:.3f}" if self.reference else
               "ideal roofs: no efficiency losses")
        return ("requirements are necessary: each assumes the other resource is unlimited",
                "balanced device: both scaled by k so that sum_i max(F_i/P, Q_i/B) = T",
                eff, "launch floor = kernels x t_kernel is a bound, not added time",
                "one device, one pass of the lowered operator table")

    def headline(self) -> dict[str, Any]:
        return {"model": self.model.name, "metric": self.metric, "phase": self.phase,
                "precision": self.precision, "batch_size": self.batch_size,
                "seq_len": self.seq_len, "target_latency": self.target_latency,
                "required_bandwidth": self.required_bandwidth,
                "required_compute": self.required_compute, "balance": self.balance,
                "balanced_bandwidth": self.balanced_bandwidth,
                "balanced_compute": self.balanced_compute,
                "required_capacity": self.required_capacity,
                "arithmetic_intensity": self.arithmetic_intensity,
                "launch_floor": self.launch_floor, "reference": self.reference,
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        T = self.target_s
        what = f"{self.phase} of {self.model.name}, batch {self.batch_size}" + \
            (f", seq_len {self.seq_len}" if self.seq_len else "") + f", {self.precision}"
        return "\n".join([
            f"Inverse roofline for {what} in {T * 1e3:.4g} ms ({self.metric})",
            f"  bytes/step = weights read {self.weights_read_bytes / 1e9:.4g} GB + activations"
            f" and state {(self.bytes - self.weights_read_bytes) / 1e9:.4g} GB = "
            f"{self.bytes / 1e9:.4g} GB; flops/step = {self.flops / 1e12:.4g} TFLOP",
            f"  BW   >= bytes / (T * eta_mem) = {self.bytes:.4g} / ({T:.4g} * "
            f"{self.eta_memory:.3g}) = {self.required_bandwidth.magnitude:.4g} TB/s",
            f"  peak >= flops / (T * eta_c)   = {self.flops:.4g} / ({T:.4g} * "
            f"{self.eta_compute:.3g}) = {self.required_compute.magnitude:.4g} TFLOP/s",
            f"  balanced device: k = sum_i max(F_i/F, Q_i/Q) = {self.balance:.4f} -> "
            f"{self.balanced_bandwidth.magnitude:.4g} TB/s and "
            f"{self.balanced_compute.magnitude:.4g} TFLOP/s meet T exactly at ideal roofs "
            f"({self.memory_share:.0%} of that time memory-bound)",
            f"  capacity >= {self.required_capacity.magnitude:.4g} GB (weights + state + "
            "largest activation set)",
            (f"  launch floor: {self.kernels:.0f} kernels x {self.kernel_overhead_s * 1e6:.3g}"
             f" us = {self.launch_floor.magnitude:.4g} ms "
             + ("< T" if self.feasible else f">= T: INFEASIBLE ({self.reason})"))
            if self.reference else "  launch floor: not modelled without a reference device",
        ])


class SynthesisSolver(ForwardModel):
    """The inverse roofline: the bandwidth and compute a device needs to meet a latency."""

    options = (
        Option("model", REQUIRED, "the workload: a model spec or zoo name"),
        Option("target_latency", REQUIRED, "time per step, e.g. '50 ms' (a time > 0)"),
        Option("metric", "itl", '"itl" (one decode step: time per output token) or '
               '"latency" (one pass in the model\'s default phase)'),
        Option("precision", "fp16", "storage and compute precision"),
        Option("batch_size", 1, "sequences (samples) per step, >= 1"),
        Option("seq_len", None, "tokens: cached context (decode) or sequence; default: the "
               "model's"),
        Option("efficiency", None, "a reference device (spec or zoo name) whose calibrated "
               "efficiencies and kernel overhead apply; None: ideal roofs"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-2-70B decode at 50 ms per token in fp16; at 1 ms per token with H100
        efficiencies the step's 643 kernel launches alone (x 8.1 us = 5.2 ms) exceed the
        target."""
        from ..zoo import Models
        if feasible:
            return dict(model=Models.Llama2_70B, target_latency="50 ms")
        return dict(model=Models.Llama2_70B, target_latency="1 ms", efficiency="H100")

    def solve(self, model, target_latency, metric: str = "itl", precision: str = "fp16",
              batch_size: int = 1, seq_len: int | None = None,
              efficiency=None) -> SynthesisResult:
        """The memory bandwidth and dense compute a device needs to run one step in
        ``target_latency``.

        Parameters
        ----------
        model : spec or zoo name
        target_latency : time quantity or string ("50 ms"), > 0
        metric : "itl" (one decode step over ``seq_len`` cached tokens; decoders and SSMs) or
            "latency" (one pass in the model's default phase, as ``Engine.solve``)
        precision : str, element size of weights, activations and KV cache ("fp16": 2 B)
        batch_size : int >= 1
        seq_len : int, tokens (default: the model's ``default_seq_len``)
        efficiency : None (ideal roofs) or a reference device whose calibrated eta_gemm_max,
            eta_mem and t_kernel are applied

        Returns
        -------
        SynthesisResult: ``required_bandwidth`` (TB/s), ``required_compute`` (TFLOP/s),
        ``balanced_*`` (both scaled by k), ``required_capacity`` (GB).

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.SynthesisSolver().solve("Llama2_70B", "50 ms")
        >>> round(r.required_bandwidth.to("TB/s").magnitude, 1)
        2.8
        """
        from ..zoo import Hardware, Models
        if isinstance(model, str):
            model = Models.get(model)
        if not isinstance(model, ModelSpec):
            raise ValidationError("model", f"must be a model spec or zoo name. Got {model!r} "
                                  "instead.", owner=SYN_OWNER)
        target = _seconds("target_latency", target_latency)
        if metric not in ("itl", "latency"):
            raise ValidationError("metric", f"must be 'itl' or 'latency'. Got {metric!r} "
                                  "instead.", owner=SYN_OWNER)
        if not isinstance(precision, str) or precision not in BYTES_PER_ELEMENT:
            raise ValidationError("precision", f"must be one of: {', '.join(BYTES_PER_ELEMENT)}"
                                  f". Got {precision!r} instead.", owner=SYN_OWNER)
        batch = check.positive_int("batch_size", batch_size, SYN_OWNER)
        phase = default_phase(model)
        if metric == "itl" and phase != "decode":
            raise ValidationError("metric", f"'itl' needs a generative model; {model.name} "
                                  f"runs a single '{phase}' pass (use metric='latency').",
                                  owner=SYN_OWNER)
        seq = SingleNodeModel._seq_len(model, seq_len, SYN_OWNER)
        ref = None
        eta_c = eta_m = 1.0
        t_kernel = 0.0
        if efficiency is not None:
            if isinstance(efficiency, str):
                efficiency = Hardware.get(efficiency)
            if not isinstance(efficiency, HardwareSpec):
                raise ValidationError("efficiency", "must be a hardware spec or zoo name (the "
                                      f"reference device). Got {efficiency!r} instead.",
                                      owner=SYN_OWNER)
            check.precision_of(efficiency, precision, SYN_OWNER)
            eff = efficiency_for(efficiency, precision)
            ref, eta_c, eta_m, t_kernel = efficiency.name, eff.gemm_max, eff.memory, \
                eff.kernel_overhead_s
        table = lower(model, phase=phase, seq_len=seq or 1, e=BYTES_PER_ELEMENT[precision])
        n = table.count
        f_i = table.flops_per_sample * batch * n
        w_i = table.weight_bytes * _touched(SimpleNamespace(table=table), batch) * n
        q_i = w_i + table.act_bytes_per_sample * batch * n
        flops, moved = float(f_i.sum()), float(q_i.sum())
        # Balanced design: P = k F / T, B = k Q / T gives sum_i max(F_i/P, Q_i/B) = T exactly.
        share = np.maximum(f_i / flops if flops > 0 else 0.0 * f_i, q_i / moved)
        balance = float(share.sum())
        mem_share = float(share[q_i / moved >= (f_i / flops if flops > 0 else 0 * f_i)].sum()
                          / balance)
        kernels = float(n @ table.launches)
        floor = kernels * t_kernel
        feasible = floor < target
        reason = None if feasible else (
            f"the target {target * 1e3:.4g} ms is below the launch floor of {kernels:.0f} "
            f"kernels x {t_kernel * 1e6:.3g} us = {floor * 1e3:.4g} ms on {ref}: no "
            "bandwidth or compute meets it")
        return SynthesisResult(
            model=model, metric=metric, phase=phase, precision=precision, batch_size=batch,
            seq_len=seq, target_s=target, flops=flops, bytes=moved,
            weights_bytes=table.weight_total_bytes, weights_read_bytes=float(w_i.sum()),
            state_bytes=table.state_bytes_per_sample * batch,
            activation_bytes=table.act_peak_bytes_per_sample * batch, balance=balance,
            memory_share=mem_share, eta_compute=eta_c, eta_memory=eta_m, kernels=kernels,
            kernel_overhead_s=t_kernel, reference=ref, feasible=feasible, reason=reason)


def _seconds(name: str, value) -> float:
    """A positive, finite time ('50 ms' or a quantity) in seconds."""
    try:
        q = Q_(value) if isinstance(value, str) else value
        s = float(q.to("s").magnitude)
    except Exception:
        raise ValidationError(name, f"must be a time such as '50 ms'. Got {value!r} "
                              "instead.", owner=SYN_OWNER) from None
    if not math.isfinite(s) or s <= 0:
        raise ValidationError(name, f"must be a positive, finite time. Got {value!r} instead.",
                              owner=SYN_OWNER)
    return s
