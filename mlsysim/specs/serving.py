"""Serving-engine presets: scheduler limits and per-step overhead, as data with sources."""

from __future__ import annotations

from pydantic import Field

from .base import QuantityOf, Sourced

__all__ = ["ServingEngineSpec"]


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
    group: str = "ServingEngine"
