"""Training-software presets: how fast one ZeRO-3 implementation moved weights and gradients,
as data with sources (``zoo/data/sharding_runtimes.yaml``)."""

from __future__ import annotations

from statistics import median
from typing import Literal

from pydantic import Field, model_validator

from .base import QuantityOf, Sourced, Spec

__all__ = ["ShardingRuntimeSpec", "PhaseTiming"]

# The stored throughput must be the measurements' median to this relative tolerance (the
# figures in the data file are rounded to three digits).
_TOLERANCE = 0.005


class PhaseTiming(Spec):
    """One published timing of a ZeRO-3 pass whose communication dominates it: ``collectives``
    weight all-gathers and gradient reduce-scatters of ``parameters`` at ``bytes_per_parameter``
    over ``ranks`` data-parallel ranks took ``time``; ``compute`` is the same pass without
    ZeRO-3's communication (its ZeRO-2 time, or an estimate from it: the solver's tests check
    that the pass was communication-bound, so that ``time`` is the collectives')."""

    phase: Literal["forward", "backward"]
    collectives: int = Field(gt=0, strict=True)
    parameters: float = Field(gt=0, allow_inf_nan=False)
    bytes_per_parameter: float = Field(gt=0, allow_inf_nan=False)
    ranks: int = Field(gt=1, strict=True)
    time: QuantityOf("s")
    compute: QuantityOf("s")

    @property
    def bytes_per_rank(self) -> float:
        """Bytes each rank receives: ``collectives x parameters x bytes x (ranks - 1) / ranks``
        (a ring all-gather or reduce-scatter brings each rank the other ranks' shards)."""
        return (self.collectives * self.parameters * self.bytes_per_parameter
                * (self.ranks - 1) / self.ranks)

    @property
    def throughput(self) -> float:
        """Bytes per second each rank received: ``bytes_per_rank / time``."""
        return self.bytes_per_rank / float(self.time.to("s").magnitude)


class ShardingRuntimeSpec(Sourced):
    """One ZeRO-3 implementation's collective throughput per device: the bytes per second each
    rank receives in its weight all-gathers and gradient reduce-scatters, whatever the fabric
    could carry (per-parameter calls, host synchronization and copies bound them, not the
    links). ``throughput`` is the median of ``measurements``' and ``throughput_range`` their
    extremes (the band); both are checked against the measurements when the entry loads."""

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    name: str
    aliases: list[str] = []
    framework: str
    releases: str                          # which versions the measurements cover, in words
    throughput: QuantityOf("byte/s")
    throughput_range: tuple[QuantityOf("byte/s"), QuantityOf("byte/s")]
    measurements: list[PhaseTiming] = Field(min_length=1)
    group: str = "ShardingRuntimes"

    @model_validator(mode="after")
    def _from_measurements(self):
        each = sorted(m.throughput for m in self.measurements)
        stated = (self.throughput, *self.throughput_range)
        for label, value, derived in zip(("throughput", "throughput_range low",
                                          "throughput_range high"),
                                         stated, (median(each), each[0], each[-1])):
            got = float(value.to("byte/s").magnitude)
            if abs(got - derived) > _TOLERANCE * derived:
                raise ValueError(f"{label} {got / 1e9:.4g} GB/s disagrees with the "
                                 f"measurements' {derived / 1e9:.4g} GB/s")
        return self

    @property
    def bytes_per_s(self) -> dict[str, float]:
        """The throughput at each calibration variant: nominal (the median), fast (the
        highest measurement) and slow (the lowest), in bytes/s."""
        lo, hi = (float(q.to("byte/s").magnitude) for q in self.throughput_range)
        return {"nominal": float(self.throughput.to("byte/s").magnitude), "fast": hi,
                "slow": lo}
