"""Serving-engine presets: scheduler limits, per-step overhead and the memory the engine takes,
as data with sources."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import QuantityOf, Sourced

__all__ = ["ServingEngineSpec", "QuantizedKernelSpec"]


class ServingEngineSpec(Sourced):
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    name: str
    aliases: list[str] = []
    max_num_batched_tokens: int = Field(gt=0)   # tokens per step (chunked-prefill budget)
    max_num_seqs: int = Field(gt=0)             # sequences running at once
    chunked_prefill: bool
    max_concurrent_prefills: int = Field(default=1, gt=0)  # prompts sharing a step's budget
    cuda_graphs: bool
    step_overhead: QuantityOf("s", allow_zero=True)
    # How much device memory the engine takes (its default setting):
    #   total  - weights, activations and KV cache within fraction x capacity (vLLM's
    #            gpu_memory_utilization);
    #   static - weights and the KV pool within fraction x capacity, activation buffers outside
    #            it (SGLang's mem_fraction_static);
    #   free   - the KV cache gets fraction x the memory left after weights and activations
    #            (TensorRT-LLM's free_gpu_memory_fraction).
    memory_rule: Literal["total", "static", "free"] = "total"
    memory_fraction: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    # Where the default depends on the tensor-parallel degree: {tp: fraction}, the entry of
    # the largest tp not above the run's applies (SGLang lowers it as tp grows).
    memory_fraction_by_tp: dict[int, float] = {}
    group: str = "ServingEngine"

    @field_validator("memory_fraction_by_tp")
    @classmethod
    def _fractions(cls, v: dict[int, float]) -> dict[int, float]:
        for tp, f in v.items():
            if tp < 1 or not 0 < f <= 1:
                raise ValueError(f"memory_fraction_by_tp needs tp >= 1 and 0 < fraction <= 1; "
                                 f"got {tp}: {f}")
        return v

    def fraction(self, tp: int = 1) -> float:
        """The memory fraction at tensor-parallel degree ``tp``.

        >>> from mlsysim.zoo import ServingEngines
        >>> ServingEngines.get("sglang").fraction(1), ServingEngines.get("sglang").fraction(8)
        (0.88, 0.81)
        """
        steps = [t for t in self.memory_fraction_by_tp if t <= tp]
        return self.memory_fraction_by_tp[max(steps)] if steps else self.memory_fraction

    def usable_bytes(self, capacity: float, weights: float, activations: float,
                     tp: int = 1) -> float:
        """Bytes of one device the engine uses for weights, activations and KV cache, by its
        ``memory_rule``: total f C; static f C + A; free W + A + f (C - W - A) (never more
        than C, never less than W + A when those alone do not fit)."""
        f = self.fraction(tp)
        if self.memory_rule == "total":
            return f * capacity
        if self.memory_rule == "static":
            return min(capacity, f * capacity + activations)
        resident = weights + activations
        return resident + f * max(capacity - resident, 0.0)


class QuantizedKernelSpec(Sourced):
    """How fast one software generation's 8-bit GEMM kernels ran, as a fraction of what the
    device's GEMM microbenchmarks (today's cuBLASLt) give: fitted so that the serving model
    reproduces that generation's published speed-ups over 16 bits in the same engine on the
    same device (``measurements``; ``scripts/fit_quantized_kernels.py`` refits ``speed``
    and ``speed_range``, and a test checks them current)."""

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    name: str
    aliases: list[str] = []
    engine: str
    releases: tuple[str, str]              # first and last release the speed is used for
    hardware: list[str]                    # device keys the measurements were made on
    precisions: list[str]                  # compute precisions the kernels run in
    speed: float = Field(gt=0, le=1, allow_inf_nan=False)
    speed_range: tuple[float, float]       # the fits of single measurements: the band
    measurements: list[dict]
    group: str = "QuantizedKernels"

    @field_validator("speed_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 1:
            raise ValueError(f"speed_range needs 0 < low <= high <= 1; got {v}")
        return v
