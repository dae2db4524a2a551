"""Fit a software generation's 8-bit GEMM speed to its engine's published speed-ups.

A :class:`~mlsysim.specs.serving.QuantizedKernelSpec` lists measurements of one engine's FP8
throughput over its FP16 throughput on one device (same model, batch, prompt and output
lengths). For each, the speed ``s`` in (0, 1] at which the serving model's 8-bit GEMMs
reproduce it solves

    e2e(fp16) / e2e(fp8, GEMMs at s x the microbenchmarked speed) = measured speed-up

(the model's speed-up falls monotonically as ``s`` falls, so bisection finds it; a speed-up
above the model's at ``s`` = 1 fits at 1). The entry's ``speed`` is the median of these fits
and ``speed_range`` their extremes. ``scripts/fit_quantized_kernels.py`` writes them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

__all__ = ["MeasurementFit", "fit_speed", "fit_measurement"]


@dataclass(frozen=True)
class MeasurementFit:
    measurement: dict
    speed: float                 # the fitted fraction of the microbenchmarked GEMM speed
    model_speedup_at_1: float    # the model's FP8/FP16 speed-up with today's kernels


def _e2e(m: dict, precision: str, kernels) -> float:
    from ..solvers.serving import ServingModel
    r = ServingModel().solve(m["model"], m["hardware"], seq_len=m["prompt_len"],
                             output_len=m["output_len"], batch_size=m["batch"],
                             precision=precision, tp_size=m.get("tp", 1),
                             quantized_kernels=kernels)
    return float(r.e2e_latency.to("s").magnitude)


def fit_measurement(spec, m: dict, precision: str = "fp8", tol: float = 1e-4) -> MeasurementFit:
    """The speed at which the model reproduces measurement ``m`` of ``spec``."""
    base = _e2e(m, m.get("baseline", "fp16"), None)

    def speedup(s: float) -> float:
        trial = spec.model_copy(update={"speed": s, "speed_range": (s, s)})
        return base / _e2e(m, precision, trial)

    at_1 = speedup(1.0)
    target = float(m["speedup"])
    if target >= at_1:
        return MeasurementFit(m, 1.0, at_1)
    lo, hi = 0.05, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if speedup(mid) < target else (lo, mid)
    return MeasurementFit(m, 0.5 * (lo + hi), at_1)


def fit_speed(spec) -> tuple[float, tuple[float, float], list[MeasurementFit]]:
    """(median speed, (lowest, highest) single fit, the fits) over ``spec.measurements``."""
    precision = spec.precisions[0]
    fits = [fit_measurement(spec, m, precision) for m in spec.measurements]
    speeds = [f.speed for f in fits]
    return statistics.median(speeds), (min(speeds), max(speeds)), fits
