"""Pareto plots of a sweep. matplotlib is imported here only, when a plot is made."""

from __future__ import annotations

__all__ = ["plot_pareto"]


def plot_pareto(result, x: str, y: str, *, x_goal: str = "min", y_goal: str = "max",
                feasible_only: bool = True, ax=None, max_points: int = 200_000):
    """Every config of ``result`` (a :class:`~mlsysim.optimize.sweep.SweepResult`, or a
    dict of columns) at (``x``, ``y``), with the Pareto front under ``x_goal`` and
    ``y_goal`` ("min" | "max") drawn as a staircase over it. Configs that do not fit in memory
    are left out unless ``feasible_only=False``; beyond ``max_points`` the background
    cloud is an even subsample (the front is always computed on every point).
    Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from ..errors import ValidationError
    from ..optimize.sweep import pareto_front

    cols = getattr(result, "columns", result)
    for name in (x, y):
        if name not in cols:
            raise ValidationError("x" if name == x else "y", f"must be one of "
                                  f"{', '.join(cols)}. Got {name!r} instead.",
                                  owner="plot_pareto")
    xs, ys = np.asarray(cols[x], dtype=float), np.asarray(cols[y], dtype=float)
    if feasible_only and "feasible" in cols:
        ok = np.asarray(cols["feasible"], dtype=bool)
        xs, ys = xs[ok], ys[ok]
    front = pareto_front({x: xs, y: ys}, {x: x_goal, y: y_goal})
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    else:
        fig = ax.figure
    step = max(1, xs.size // max_points)
    ax.scatter(xs[::step], ys[::step], s=4, color="tab:gray", alpha=0.3, linewidths=0,
               rasterized=True, label=f"{xs.size:,} configs")
    fx, fy = xs[front], ys[front]
    order = np.argsort(fx, kind="stable")
    ax.step(fx[order], fy[order], where="post", color="tab:red", lw=1.5)
    ax.scatter(fx, fy, s=14, color="tab:red", zorder=3, label=f"Pareto front ({front.size})")
    ax.set_xlabel(f"{x} ({x_goal})")
    ax.set_ylabel(f"{y} ({y_goal})")
    if xs.size and xs.min() > 0 and xs.max() / xs.min() > 100:
        ax.set_xscale("log")
    if ys.size and ys.min() > 0 and ys.max() / ys.min() > 100:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, ax
