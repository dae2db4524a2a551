"""Weights streamed layer by layer from a slower memory (host DRAM over PCIe for CPU offload,
external weight stores for wafer-scale systems) while the device computes.

With double buffering, layer i+1's weights stream while layer i computes, so one pass takes

    T = t_stream(layer 0) + sum over layers of max(t_compute(layer), t_stream(layer)),
    t_stream = layer weight bytes / stream bandwidth,

and streaming is hidden when every layer's compute outlasts its stream. t_compute comes from
the single-node cost model (Engine), minus the weights' own memory reads, spread evenly over
the layers (embedding and head weights included in the per-layer share); the stream
bandwidth is the device's host link unless given.
Left out: contention between streaming and the device's own memory traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.engine import Engine, ForwardModel, resolve
from ..core.result import Result
from ..errors import ValidationError
from ..specs.hardware import BYTES_PER_ELEMENT
from ..specs.model import SSMSpec, TransformerSpec
from ..units import Q_

__all__ = ["WeightStreamingModel", "WeightStreamingResult"]

OWNER = "WeightStreamingModel"


@dataclass(frozen=True, eq=False)
class WeightStreamingResult(Result):
    model: Any
    hardware: Any
    layers: int
    stream_bandwidth: float      # byte/s
    layer_bytes: float           # weight bytes per layer
    stream_per_layer_s: float
    compute_per_layer_s: float
    total_s: float

    @property
    def hidden(self) -> bool:
        """True when compute hides the stream (compute-bound per layer)."""
        return self.compute_per_layer_s >= self.stream_per_layer_s

    @property
    def bound(self) -> str:
        return "Compute (streaming hidden)" if self.hidden else "Stream"

    @property
    def required_bandwidth(self):
        """Stream bandwidth at which streaming would just be hidden (inf: no compute)."""
        if self.compute_per_layer_s <= 0:
            return Q_(float("inf"), "GB/s")
        return Q_(self.layer_bytes / self.compute_per_layer_s, "byte/s").to("GB/s")

    @property
    def latency(self):
        return Q_(self.total_s, "s").to("ms")

    def headline(self) -> dict[str, Any]:
        return {"model": self.model.name, "hardware": self.hardware.name,
                "layers": self.layers, "bound": self.bound, "latency": self.latency,
                "stream_per_layer": Q_(self.stream_per_layer_s, "s").to("ms"),
                "compute_per_layer": Q_(self.compute_per_layer_s, "s").to("ms"),
                "stream_bandwidth": Q_(self.stream_bandwidth, "byte/s").to("GB/s"),
                "required_bandwidth": self.required_bandwidth}

    def explain(self) -> str:
        return (f"T = t_stream + {self.layers} x max(t_compute {self.compute_per_layer_s * 1e3:.4g}"
                f" ms, t_stream {self.stream_per_layer_s * 1e3:.4g} ms) = "
                f"{self.total_s * 1e3:.4g} ms; t_stream = {self.layer_bytes / 1e6:.4g} MB / "
                f"{self.stream_bandwidth / 1e9:.4g} GB/s -> {self.bound}; hiding it needs "
                f"{self.required_bandwidth.magnitude:.4g} GB/s")


class WeightStreamingModel(ForwardModel):
    def solve(self, model, hardware, batch_size: int = 1, seq_len: int | None = None,
              phase: str | None = None, precision: str | None = None,
              stream_bandwidth=None) -> WeightStreamingResult:
        model, hardware = resolve(model, hardware)
        p = Engine.solve(model, hardware, batch_size=batch_size, precision=precision,
                         seq_len=seq_len, phase=phase)
        if stream_bandwidth is None:
            link = hardware.interconnect
            if link is None or link.host_bandwidth is None:
                raise ValidationError("stream_bandwidth", f"is needed: {hardware.name} has no "
                                      "published host link (e.g. '64 GB/s').", owner=OWNER)
            bw = float(link.host_bandwidth.to("byte/s").magnitude)
        else:
            bw = check.bandwidth("stream_bandwidth", stream_bandwidth, OWNER)
        layers = model.layers if isinstance(model, (TransformerSpec, SSMSpec)) else \
            sum(1 for b in model.all_blocks for layer in b.layers if layer.params) or 1
        layer_bytes = model.parameter_count * BYTES_PER_ELEMENT[p.precision] / layers
        # Device time without the weights' own HBM reads (they arrive by stream instead); a
        # MoE pass reads only the experts its tokens pick, so at most the bytes it moves.
        read = min(p.weights_bytes, p.bytes_total)
        compute = max(p.latency_s - read / (hardware._base["bandwidth"] * p.efficiency.memory),
                      0.0) / layers
        stream = layer_bytes / bw
        total = stream + layers * max(compute, stream)
        return WeightStreamingResult(model=model, hardware=hardware, layers=layers,
                                     stream_bandwidth=bw, layer_bytes=layer_bytes,
                                     stream_per_layer_s=stream, compute_per_layer_s=compute,
                                     total_s=total)
