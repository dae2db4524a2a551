"""Validated, frozen specs: hardware and models (systems, fabrics and grids come later)."""

from .base import Sourced, Spec
from .hardware import BYTES_PER_ELEMENT, PRECISIONS, ComputeSpec, HardwareSpec, MemorySpec
from .model import FAMILIES, LayeredSpec, LayerSpec, ModelSpec, SSMSpec, TransformerSpec

__all__ = ["Spec", "Sourced", "HardwareSpec", "ComputeSpec", "MemorySpec", "PRECISIONS",
           "BYTES_PER_ELEMENT", "ModelSpec", "TransformerSpec", "LayeredSpec", "SSMSpec",
           "LayerSpec", "FAMILIES"]
