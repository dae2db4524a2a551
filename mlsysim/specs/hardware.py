"""Hardware specs: one accelerator (or chip) with its compute, memory and links.

What is modelled: peak throughput per precision (dense and, where published, 2:4 sparse),
memory capacity and bandwidth, on-chip memory, scale-up interconnect, TDP and price.
Left out: clocks, SM counts and cache hierarchies below "on-chip memory"; achieved efficiencies
live in the calibration data, not here.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator

from ..errors import UnsupportedPrecisionError
from ..units import Quantity
from .base import QuantityOf, Sourced, Spec

__all__ = ["Precision", "PRECISIONS", "BYTES_PER_ELEMENT", "ComputeSpec", "MemorySpec",
           "InterconnectSpec", "PriceSpec", "HardwareSpec", "HardwareGroup", "EfficiencySpec"]

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"]
PRECISIONS: tuple[str, ...] = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4",
                               "int8", "int4")
# Storage size of one element. tf32 is computed in tensor cores but stored as fp32.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp64": 8.0, "fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0,
    "fp6": 0.75, "fp4": 0.5, "int8": 1.0, "int4": 0.5,
}
HardwareGroup = Literal["Cloud", "Edge", "Mobile", "Tiny"]

FlopRate = QuantityOf("flop/s")
Bandwidth = QuantityOf("byte/s")
Bytes = QuantityOf("byte")


class ComputeSpec(Spec):
    """Peak math throughput per precision, as published (int ops counted as flop)."""

    dense: dict[Precision, FlopRate] = Field(min_length=1)
    sparse: dict[Precision, FlopRate] = {}
    default_precision: Precision = "fp16"

    @model_validator(mode="after")
    def _default_is_published(self):
        if self.default_precision not in self.dense:
            raise ValueError(
                f"default_precision '{self.default_precision}' has no dense peak; "
                f"published: {', '.join(self.dense)}")
        for p in self.sparse:
            if p not in self.dense:
                raise ValueError(f"sparse peak for '{p}' without a dense peak")
        return self

    @property
    def peak_flops(self) -> Quantity:
        """Dense peak at the default precision (the number the tutorial prints)."""
        return self.dense[self.default_precision]

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if p in self.dense]


class MemorySpec(Spec):
    capacity: Bytes
    bandwidth: Bandwidth
    type: str | None = None
    on_chip: Bytes | None = None


class InterconnectSpec(Spec):
    """Scale-up link of one device. ``bandwidth`` is per direction (NVLink 4's "900 GB/s" is
    450 GB/s each way); ``host_bandwidth`` is the host link (PCIe) per direction."""

    name: str
    bandwidth: Bandwidth
    host_bandwidth: Bandwidth | None = None
    max_devices: int | None = Field(default=None, gt=0)
    fabric: str | None = None    # zoo fabric key (Systems.Fabrics) whose collective fit applies

    @model_validator(mode="after")
    def _known_fabric(self):
        if self.fabric is not None:
            from ..zoo import Fabrics, is_fabric_name
            if not is_fabric_name(self.fabric):
                Fabrics.get(self.fabric)  # raises, suggesting the closest names
        return self


class PriceSpec(Spec):
    amount_usd: float = Field(gt=0, allow_inf_nan=False)
    kind: Literal["list", "street", "cloud_hourly", "estimate"]
    source: str
    as_of: str


class EfficiencySpec(Spec):
    """Efficiency terms calibrated for this device (``mlsysim calibrate`` writes them); they
    replace the package's fit from published microbenchmarks. Fractions are of spec peaks."""

    gemm_max: float = Field(gt=0, le=1, allow_inf_nan=False)
    gemm_tau: QuantityOf("s")
    gemm_alpha: float = Field(gt=0, le=1, allow_inf_nan=False)
    attention_max: float = Field(gt=0, le=1, allow_inf_nan=False)
    memory: float = Field(gt=0, le=1, allow_inf_nan=False)
    kernel_overhead: QuantityOf("s", allow_zero=True)
    source: str
    rows: int = Field(ge=0)           # measurements the fit used


class HardwareSpec(Sourced):
    """One device. ``key`` is its registry name (``Hardware.Cloud.A100``)."""

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    name: str
    group: HardwareGroup
    vendor: str
    aliases: list[str] = []
    form_factor: str | None = None
    release_year: int | None = Field(default=None, ge=1990, le=2035)
    compute: ComputeSpec
    memory: MemorySpec
    interconnect: InterconnectSpec | None = None
    tdp: QuantityOf("W") | None = None
    price: PriceSpec | None = None
    efficiency: EfficiencySpec | None = None

    def peak(self, precision: str | None = None, *, sparse: bool = False) -> Quantity:
        """Peak throughput at ``precision`` (dense unless ``sparse``); error if unpublished."""
        precision = precision or self.compute.default_precision
        table = self.compute.sparse if sparse else self.compute.dense
        if precision not in table:
            kind = "sparse " if sparse else ""
            raise UnsupportedPrecisionError(
                f"{kind}{precision}", self.name,
                [p for p in PRECISIONS if p in table] or ["(no sparse peak published)"])
        return table[precision]

    @cached_property
    def _base(self) -> dict[str, float]:
        """Plain floats in SI base units for the hot paths (flop/s, byte/s, byte)."""
        return {
            "bandwidth": float(self.memory.bandwidth.to("byte/s").magnitude),
            "capacity": float(self.memory.capacity.to("byte").magnitude),
            **{f"peak_{p}": float(q.to("flop/s").magnitude) for p, q in self.compute.dense.items()},
            **{f"sparse_{p}": float(q.to("flop/s").magnitude)
               for p, q in self.compute.sparse.items()},
        }

    def ridge_point(self, precision: str | None = None) -> Quantity:
        """Arithmetic intensity (flop/byte) where the compute and memory roofs meet."""
        return (self.peak(precision) / self.memory.bandwidth).to("flop/byte")

    def __repr__(self) -> str:
        return f"HardwareSpec({self.key}: {self.name})"

    def __str__(self) -> str:
        return self.name
