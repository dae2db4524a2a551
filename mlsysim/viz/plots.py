"""Roofline plots. matplotlib is imported here only, when a plot is made."""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["plot_roofline"]


def plot_roofline(hardware, workloads: Iterable[Any] = (), *, precision: str | None = None,
                  batch_size: int = 1, ax=None, **solve_kwargs):
    """Roofline of ``hardware`` with each workload at its arithmetic intensity.

    ``workloads`` holds models (solved with ``Engine.solve`` at ``batch_size``) or
    PerformanceProfiles (a profile from another device is re-solved on this one, so every
    point sits under these roofs). The ceilings use the same peak and bandwidth as the engine;
    the ridge point is labelled. Each point's legend entry names its phase and bottleneck;
    a pass that does not fit in the device's memory is hollow and labelled "does not fit".
    Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from ..core import validate as check
    from ..core.engine import Engine, PerformanceProfile
    from ..errors import ValidationError
    from ..specs.hardware import HardwareSpec
    from ..zoo import Hardware

    if isinstance(hardware, str):
        hardware = Hardware.get(hardware)
    if not isinstance(hardware, HardwareSpec):
        raise ValidationError("hardware", "must be a hardware spec or zoo name. Got "
                              f"{hardware!r} instead.", owner="plot_roofline")
    precision = check.precision_of(hardware, precision or hardware.compute.default_precision,
                                   "plot_roofline")
    peak = hardware.peak(precision).to("TFLOP/s").magnitude
    bw = hardware.memory.bandwidth.to("TB/s").magnitude
    ridge = peak / bw  # TFLOP/s / TB/s = flop/byte

    profiles = []
    for w in workloads:
        if isinstance(w, PerformanceProfile):
            if w.hardware is not hardware or w.precision != precision:
                w = Engine.solve(w.model, hardware, batch_size=w.batch_size,
                                 precision=precision, seq_len=w.seq_len, phase=w.phase)
        else:
            w = Engine.solve(w, hardware, batch_size=batch_size, precision=precision,
                             **solve_kwargs)
        profiles.append(w)
    intensities = [p.arithmetic_intensity.magnitude for p in profiles]
    lo = min([ridge / 100, *[x / 3 for x in intensities]])
    hi = max([ridge * 100, *[x * 3 for x in intensities]])
    x = np.logspace(np.log10(lo), np.log10(hi), 256)

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    ax.loglog(x, np.minimum(peak, bw * x), color="black", lw=2, label="attainable")
    ax.axhline(peak, color="tab:red", ls="--", lw=1,
               label=f"compute roof {peak:.4g} TFLOP/s ({precision})")
    ax.loglog(x, bw * x, color="tab:blue", ls="--", lw=1, label=f"memory roof {bw:.4g} TB/s")
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.annotate(f"ridge {ridge:.0f} flop/byte", (ridge, peak), textcoords="offset points",
                xytext=(6, -14), fontsize=9)
    achieved = [p.flops_total / p.latency_s / 1e12 for p in profiles]
    for p, ai, perf in zip(profiles, intensities, achieved):
        # A pass that does not fit in memory is drawn hollow and says so.
        fits = p.feasible
        ax.scatter([ai], [perf], zorder=3, s=40, **({} if fits else {"facecolors": "none",
                                                                    "edgecolors": "tab:red"}),
                   label=f"{p.model.name} ({p.phase}, batch {p.batch_size}): {p.bottleneck}"
                   + ("" if fits else ", does not fit"))
    ax.set_xlim(lo, hi)
    ax.set_ylim(min([bw * lo, *[a / 3 for a in achieved]]), peak * 3)
    ax.set_xlabel("arithmetic intensity (flop/byte)")
    ax.set_ylabel("performance (TFLOP/s)")
    ax.set_title(f"Roofline: {hardware.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig, ax
