"""Quantization and sparsity: what each compression method does to memory and speed.

Each method is a serving configuration (ServingModel) compared with the uncompressed baseline:
- weight-only int8/int4 (W8A16/W4A16): weights stored at 1 or 0.5 B, dequantized to the
  compute precision; decode (weight-streaming bound) speeds up, prefill does not.
- W8A8 int8 / fp8: weights and activations at 1 B and matmuls at the 8-bit peak (the device
  must publish one, else an error).
- fp8 KV cache: half the KV bytes: more concurrent sequences, faster long-context decode.
- 2:4 sparsity: the device's published sparse peak, half the weights plus 2-bit indices.
Accuracy effects are out of scope: this model says what a method buys, not what it costs in
quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.contract import REQUIRED, ForwardModel, Option, Result, jsonable
from ..errors import UnknownNameError
from ..specs.configs import ServingConfig, serving_options
from ..units import Q_
from .serving import ServingModel, ServingResult

__all__ = ["CompressionModel", "CompressionResult", "METHODS"]

METHODS: dict[str, dict[str, Any]] = {
    "none": {},
    "int8_weight_only": {"weight_precision": "int8"},
    "int4_weight_only": {"weight_precision": "int4"},
    "w8a8_int8": {"precision": "int8", "weight_precision": "int8", "kv_precision": "fp16"},
    "w8a8_fp8": {"precision": "fp8", "weight_precision": "fp8", "kv_precision": "fp16"},
    "fp8_kv": {"kv_precision": "fp8"},
    "sparse_2_4": {"sparsity": "2:4"},
}


@dataclass(frozen=True, eq=False, repr=False)
class CompressionResult(Result):
    method: str
    baseline: ServingResult
    compressed: ServingResult

    @property
    def weight_memory_ratio(self) -> float:
        return self.compressed.weights_bytes / self.baseline.weights_bytes

    @property
    def itl_speedup(self) -> float:
        return self.baseline.itl_s / self.compressed.itl_s

    @property
    def ttft_speedup(self) -> float:
        return self.baseline.ttft_s / self.compressed.ttft_s

    @property
    def concurrency_gain(self) -> float:
        base = max(self.baseline.max_concurrent_sequences, 1)
        return self.compressed.max_concurrent_sequences / base

    @property
    def feasible(self) -> bool:
        return self.compressed.feasible

    @property
    def reason(self) -> str | None:
        return None if self.compressed.feasible else f"compressed: {self.compressed.reason}"

    @property
    def binding(self) -> str:
        """The compressed configuration's binding resource (see ServingResult.binding)."""
        return self.compressed.binding

    @property
    def latency(self):
        """End-to-end latency of one request with compression."""
        return self.compressed.e2e_latency

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("accuracy effects are not modelled",
                "weights dequantized to the compute precision inside the matmul kernels",
                *self.compressed.assumptions)

    main_latency = "latency"
    summary_inputs = ("method:",)
    summary_numbers = ("weight_memory_ratio:weights", "itl_speedup", "ttft_speedup")

    def trace(self) -> dict[str, Any]:
        """Both serving configurations' traces, with the method's overrides."""
        return {"result": type(self).__name__, "method": self.method,
                "overrides": jsonable(METHODS[self.method]),
                "baseline": self.baseline.trace(), "compressed": self.compressed.trace()}

    def headline(self) -> dict[str, Any]:
        return {
            "model": self.baseline.model.name, "hardware": self.baseline.hardware.name,
            "method": self.method,
            "weights_baseline": Q_(self.baseline.weights_bytes, "B").to("GB"),
            "weights_compressed": Q_(self.compressed.weights_bytes, "B").to("GB"),
            "weight_memory_ratio": round(self.weight_memory_ratio, 4),
            "itl_baseline": self.baseline.itl, "itl_compressed": self.compressed.itl,
            "itl_speedup": round(self.itl_speedup, 3),
            "ttft_speedup": round(self.ttft_speedup, 3),
            "max_sequences_baseline": self.baseline.max_concurrent_sequences,
            "max_sequences_compressed": self.compressed.max_concurrent_sequences,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        return "\n".join([
            f"{self.method}: {METHODS[self.method] or 'baseline'}",
            f"  weights {self.baseline.weights_bytes / 1e9:.4g} -> "
            f"{self.compressed.weights_bytes / 1e9:.4g} GB per device "
            f"(x{self.weight_memory_ratio:.3g})",
            f"  ITL {self.baseline.itl_s * 1e3:.4g} -> {self.compressed.itl_s * 1e3:.4g} ms "
            f"(x{self.itl_speedup:.3g} faster); TTFT x{self.ttft_speedup:.3g}",
            f"  concurrent sequences {self.baseline.max_concurrent_sequences} -> "
            f"{self.compressed.max_concurrent_sequences}",
        ])


class CompressionModel(ForwardModel):
    """What a quantization or sparsity method buys against the uncompressed baseline."""

    options = (
        Option("model", REQUIRED, "generative model: spec or zoo name"),
        Option("hardware", REQUIRED, "device: spec or zoo name"),
        Option("method", REQUIRED, f"one of {', '.join(METHODS)}"),
        Option("seq_len", 1024, "prompt tokens per request"),
        Option("output_len", 256, "generated tokens per request"),
        Option("batch_size", 1, "requests served together, or 'max'"),
        Option("precision", None, "baseline compute precision; default: the device's"),
        Option("serving", None, "further ServingModel options: a dict of ServingConfig "
               "fields or a ServingConfig"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """int4 weights for Llama-3-8B on an H100; an fp8 KV cache does not shrink
        Llama-3-70B's 141 GB of weights to fit one H100."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_8B, hardware=Hardware.H100,
                        method="int4_weight_only", batch_size=4)
        return dict(model=Models.Llama3_70B, hardware=Hardware.H100, method="fp8_kv")

    def solve(self, model, hardware, method: str, seq_len: int = 1024, output_len: int = 256,
              batch_size: int | str = 1, precision: str | None = None,
              serving: ServingConfig | dict | None = None) -> CompressionResult:
        """Compare serving ``model`` with ``method`` (one of ``METHODS``) against no
        compression. ``serving``: further ServingModel options (a dict of ServingConfig
        fields or a ServingConfig), e.g. ``{"tp_size": 2}``."""
        if not isinstance(method, str) or method not in METHODS:
            raise UnknownNameError("compression method", str(method), METHODS)
        fixed = {k: f"by the method '{method}'" for k in METHODS[method]}
        opts = serving_options(serving, "CompressionModel", fixed)
        common = dict(seq_len=seq_len, output_len=output_len, batch_size=batch_size, **opts)
        base = ServingModel().solve(model, hardware, precision=precision, **common)
        opts = {"precision": precision, **METHODS[method]}
        return CompressionResult(method=method, baseline=base,
                                 compressed=ServingModel().solve(model, hardware, **opts,
                                                                 **common))
