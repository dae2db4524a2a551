"""Plots (matplotlib, imported when a plot is made)."""

from .breakdown import (
    memory_parts,
    operator_parts,
    plot_memory_breakdown,
    plot_operator_breakdown,
    plot_serving_components,
    plot_throughput_latency,
    plot_tp_scaling,
    serving_parts,
)
from .footprint import footprint_parts, plot_footprint
from .pareto import plot_pareto
from .plots import plot_roofline
from .scorecard import plot_evaluation_scorecard

__all__ = ["footprint_parts", "memory_parts", "operator_parts", "plot_evaluation_scorecard",
           "plot_footprint", "plot_memory_breakdown", "plot_operator_breakdown", "plot_pareto",
           "plot_roofline", "plot_serving_components", "plot_throughput_latency",
           "plot_tp_scaling", "serving_parts"]
