"""Solvers: one module per concern, each a ForwardModel with a pure ``solve(...)``."""
