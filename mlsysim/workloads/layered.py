"""Lowering of explicit layer lists (CNNs, UNets, recommenders) to operators.

Each layer becomes one kernel: convolutions and linear layers read their weights once per
kernel and their input and output activations per sample; pooling, resampling, concatenation
and norms only move activations. Activations and residual adds run in the epilogue of the
kernel before them (no launch; an add reads its second operand). Embedding gathers read
``lookups`` rows per sample, not the whole table. Blocks that run ``runs`` times per sample
(denoising steps) repeat their kernels, weights included: an iteration re-reads its weights.
Left out: layout transforms, im2col copies, and fusion across layers beyond the bias/BN/ReLU
epilogue of a convolution.

``eager=True`` lowers the pass as an eager framework (PyTorch without compilation) runs it:
nothing is fused, so every activation and residual add is its own kernel that reads and writes
its tensors, and a convolution is followed by a BatchNorm kernel (with ``bn``) and an
activation kernel, each reading and writing its output. The layer lists leave a convolution's
activation implicit, so one is charged after every convolution: in a ResNet bottleneck the one
it misses (after the residual add) has the size of the one it adds (after the 1x1 expansion)
and only a stage's downsample is over-charged; so are linear bottlenecks (MobileNetV2,
EfficientNet projections); in a UNet block the SiLU before each convolution is counted once.
"""

from __future__ import annotations

from ..specs.model import LayeredSpec, LayerSpec
from .operators import OperatorBuilder, OperatorTable, OpKind

__all__ = ["lower_layered", "add_layer_rows"]

_EPILOGUE = {"add", "act"}


def add_layer_rows(b: OperatorBuilder, layer: LayerSpec, e: float, *, runs: int,
                   prefix: str, eager: bool = False) -> float:
    """Add the kernel for ``layer`` (``eager``: unfused, module docstring); returns its
    activation bytes per sample (in + out)."""
    name = f"{prefix}.{layer.name or layer.op}"
    count = layer.repeat * runs
    out = layer.spatial
    if layer.op == "conv":
        dims = len(layer.k) if isinstance(layer.k, list) else \
            (len(layer.out) if isinstance(layer.out, list) else 2)
        act = (layer.cin * out * layer.stride ** dims + layer.cout * out) * e
        b.add(name, OpKind.CONV, flops=2 * layer.macs, weight_bytes=layer.params * e,
              act_bytes=act, count=count)
        if eager:
            y = layer.cout * out
            if layer.bn:
                b.add(f"{name}.bn", OpKind.NORM, flops=2 * y, weight_bytes=4 * layer.cout * e,
                      act_bytes=2 * y * e, count=count)
            b.add(f"{name}.act", OpKind.ELEMENTWISE, flops=y, act_bytes=2 * y * e,
                  count=count)
    elif layer.op == "fc":
        tokens = layer.tokens or 1
        act = (layer.cin + layer.cout) * tokens * e
        b.add(name, OpKind.GEMM, flops=2 * layer.macs, weight_bytes=layer.params * e,
              act_bytes=act, count=count)
    elif layer.op == "attention":
        kv = layer.kv_tokens or layer.tokens
        act = (2 * layer.tokens + 2 * kv) * layer.heads * layer.head_dim * e
        b.add(name, OpKind.ATTENTION, flops=2 * layer.macs, act_bytes=act, count=count)
    elif layer.op == "embedding":
        act = layer.lookups * layer.dim * e
        b.add(name, OpKind.EMBEDDING, flops=layer.lookups * layer.dim, act_bytes=act,
              count=count)
    elif layer.op == "norm":
        act = 2 * layer.c * out * e
        b.add(name, OpKind.NORM, flops=8 * layer.c * out, weight_bytes=layer.params * e,
              act_bytes=act, count=count)
    elif layer.op in _EPILOGUE and eager:
        # Its own kernel: reads its operands (two for an add) and writes the result.
        act = (3 if layer.op == "add" else 2) * layer.c * out * e
        b.add(name, OpKind.ELEMENTWISE, flops=layer.c * out, act_bytes=act, count=count)
    elif layer.op in _EPILOGUE:
        # Fused into the producing kernel's epilogue, as inference compilers do: an
        # activation costs nothing extra; a residual add reads its second operand once.
        act = layer.c * out * e if layer.op == "add" else 0.0
        b.add(name, OpKind.ELEMENTWISE, flops=layer.c * out, act_bytes=act, count=count,
              fused=True)
    else:
        # Pooling reads stride^2 inputs per output; resampling and concatenation copy.
        reads = layer.stride ** 2 if layer.op == "pool" else 1
        act = (reads + 1) * layer.c * out * e
        b.add(name, OpKind.ELEMENTWISE, flops=reads * layer.c * out, act_bytes=act,
              count=count)
    return act


def lower_layered(spec: LayeredSpec, *, e: float, eager: bool = False) -> OperatorTable:
    b = OperatorBuilder()
    peak = 0.0
    for block in spec.all_blocks:
        for layer in block.layers:
            peak = max(peak, add_layer_rows(b, layer, e, runs=block.runs, prefix=block.name,
                                            eager=eager))
    return b.build(weight_total_bytes=spec.parameter_count * e, act_peak_bytes_per_sample=peak)
