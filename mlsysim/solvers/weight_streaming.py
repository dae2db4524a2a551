"""Weights streamed layer by layer from a slower memory (host DRAM over PCIe for CPU offload,
external weight stores for wafer-scale systems) while the device computes.

With double buffering, layer i+1's weights stream while layer i computes, so one pass takes

    T = t_stream(layer 0) + sum over layers of max(t_compute(layer), t_stream(layer)),
    t_stream = layer weight bytes / stream bandwidth,

and streaming is hidden when every layer's compute outlasts its stream. t_compute comes from
the single-node cost model (Engine) with each operator's weight reads left out (the operator
takes max(compute, activation traffic, launch floor)), spread evenly over the layers
(embedding and head weights included in the per-layer share); the stream bandwidth is the
device's host link unless given. The device holds two layers' weights (double buffering)
plus the batch's KV cache or state and activations; more is infeasible.
Left out: contention between streaming and the device's own memory traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, Option, Result
from ..core.engine import Engine, ForwardModel, resolve
from ..errors import ValidationError
from ..specs.hardware import BYTES_PER_ELEMENT
from ..specs.model import SSMSpec, TransformerSpec
from ..units import Q_

__all__ = ["WeightStreamingModel", "WeightStreamingResult"]

OWNER = "WeightStreamingModel"


@dataclass(frozen=True, eq=False, repr=False)
class WeightStreamingResult(Result):
    model: Any
    hardware: Any
    layers: int
    stream_bandwidth: float      # byte/s
    layer_bytes: float           # weight bytes per layer
    stream_per_layer_s: float
    compute_per_layer_s: float
    total_s: float
    state_bytes: float           # KV cache / SSM state of the batch, resident on the device
    activation_bytes: float
    capacity_bytes: float

    @property
    def memory_bytes(self) -> float:
        """Device memory needed: two layers' weights (double buffering) + state + activations."""
        return 2 * self.layer_bytes + self.state_bytes + self.activation_bytes

    @property
    def feasible(self) -> bool:
        return self.memory_bytes <= self.capacity_bytes

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"needs {self.memory_bytes / 1e9:.3g} GB on the device (2 x "
                f"{self.layer_bytes / 1e9:.3g} GB layer buffers + state "
                f"{self.state_bytes / 1e9:.3g} GB + activations "
                f"{self.activation_bytes / 1e9:.3g} GB), {self.hardware.name} has "
                f"{self.capacity_bytes / 1e9:.3g} GB")

    @property
    def binding(self) -> str:
        """"memory capacity" if the buffers and state do not fit; else "stream bandwidth"
        unless compute hides the stream ("compute")."""
        if not self.feasible:
            return "memory capacity"
        return "compute" if self.hidden else "stream bandwidth"

    assumptions = ("double buffering: layer i+1 streams while layer i computes",
                   "compute spread evenly over the layers",
                   "no contention between the stream and the device's own memory traffic")
    main_latency = "total_s"
    summary_inputs = ("model", "hardware", "stream_bandwidth_q:stream")
    summary_numbers = ("bound:", "latency:")

    @property
    def stream_bandwidth_q(self):
        """The stream bandwidth as a quantity (GB/s)."""
        return Q_(self.stream_bandwidth, "byte/s").to("GB/s")

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
                "stream_bandwidth": self.stream_bandwidth_q,
                "required_bandwidth": self.required_bandwidth,
                "memory_needed": Q_(self.memory_bytes, "byte").to("GB"),
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        return (f"T = t_stream + {self.layers} x max(t_compute {self.compute_per_layer_s * 1e3:.4g}"
                f" ms, t_stream {self.stream_per_layer_s * 1e3:.4g} ms) = "
                f"{self.total_s * 1e3:.4g} ms; t_stream = {self.layer_bytes / 1e6:.4g} MB / "
                f"{self.stream_bandwidth / 1e9:.4g} GB/s -> {self.bound}; hiding it needs "
                f"{self.required_bandwidth.magnitude:.4g} GB/s")


class WeightStreamingModel(ForwardModel):
    """One pass with the weights streamed in layer by layer (see the module docstring)."""

    options = (
        Option("model", REQUIRED, "workload: spec or zoo name"),
        Option("hardware", REQUIRED, "device: spec or zoo name"),
        Option("batch_size", 1, "samples per pass"),
        Option("seq_len", None, "tokens (as Engine.solve)"),
        Option("phase", None, '"decode" | "prefill" | "forward" (as Engine.solve)'),
        Option("precision", None, "precision of compute and of the streamed weights"),
        Option("stream_bandwidth", None, "link the weights come over, e.g. '64 GB/s'; "
               "default: the device's host link"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-70B prefill of 16 x 2048 tokens on an H100 over PCIe; then a decode
        batch of 64 at 8192 tokens, whose 172 GB KV cache cannot stay on the device."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_70B, hardware=Hardware.H100, batch_size=16,
                        phase="prefill", seq_len=2048)
        return dict(model=Models.Llama3_70B, hardware=Hardware.H100, batch_size=64,
                    seq_len=8192)

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
        # Device time without the weights' own HBM reads (they arrive by stream instead),
        # operator by operator: subtracting the reads from the whole pass would also remove
        # them from operators whose time compute or the launch floor sets.
        compute = p.latency_without_weight_reads_s() / layers
        stream = layer_bytes / bw
        total = stream + layers * max(compute, stream)
        return WeightStreamingResult(model=model, hardware=hardware, layers=layers,
                                     stream_bandwidth=bw, layer_bytes=layer_bytes,
                                     stream_per_layer_s=stream, compute_per_layer_s=compute,
                                     total_s=total, state_bytes=p.state_bytes,
                                     activation_bytes=p.activation_bytes,
                                     capacity_bytes=hardware._base["capacity"])
