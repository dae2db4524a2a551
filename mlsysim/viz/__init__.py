"""Plots (matplotlib, imported when a plot is made)."""

from .footprint import footprint_parts, plot_footprint
from .pareto import plot_pareto
from .plots import plot_roofline
from .scorecard import plot_evaluation_scorecard

__all__ = ["footprint_parts", "plot_footprint", "plot_evaluation_scorecard", "plot_pareto",
           "plot_roofline"]
