"""The core: operator cost model, calibration, and the single-node Engine."""

from .engine import Engine, ForwardModel, PerformanceProfile, SingleNodeModel

__all__ = ["Engine", "SingleNodeModel", "PerformanceProfile", "ForwardModel"]
