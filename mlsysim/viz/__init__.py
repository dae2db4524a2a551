"""Plots (matplotlib, imported when a plot is made)."""
