"""ONNX graphs onto the operator table: ``Models.from_onnx(path)`` (extra ``onnx``).

The file is read once: ``onnx.shape_inference.infer_shapes`` gives every tensor's shape, and
each node is kept as plain data (operator type, the shapes of its inputs and outputs, which
inputs are initializers). :class:`~mlsysim.workloads.imported.ImportedWorkload` then builds the
table per solve input without touching the file again.

Axes. Axis 0 of the graph inputs is the batch: symbolic (``dim_param``) or fixed. Every other
symbolic axis of a graph input (``'seq'``, ``'tokens'``, ...) is the sequence axis and takes the
solve's ``seq_len`` (all such names take the same value). A graph fixed at batch ``B > 1`` is
divided by ``B`` to give per-sample work. Axes shape inference cannot resolve count as 1 and
are reported in the workload's ``notes``.

Cost rules, per sample (``numel`` counts a tensor's elements, batch axis excluded; the rules and
the grouping of identical rows live in :mod:`.graph`, shared with the PyTorch importer):

- ``Conv``: ``2 * Cout * Cin/groups * prod(k) * prod(out spatial)`` flop, i.e. two flop per
  weight element per output position (``2 * Cin/groups * prod(k)`` per output element);
  ``ConvTranspose``: two flop per weight element per *input* position.
- ``Gemm`` / ``MatMul``: ``2 * M * N * K`` = ``2 * numel(Y) * K``; the bias add runs in the
  epilogue (not counted, as in the zoo's layered lowering).
- elementwise and activations: one flop per output element; reductions: one per input element;
  pooling: ``prod(kernel_shape)`` per output element (global pools: one per input element).
- ``BatchNormalization``, ``LayerNormalization``, ``InstanceNormalization``,
  ``GroupNormalization``: 8 flop per element (the zoo's norm rule).
- ``Gather`` from an initializer: an embedding lookup (one flop and one read per output element).
- copies (``Transpose``, ``Concat``, ``Split``, ``Slice``, ``Expand``, ``Pad``, ``Tile``,
  ``Cast``, a ``Gather`` of activations): no flops, their activation traffic.
- views (``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Dropout``,
  ``Shape``, ``Constant``...): free, no kernel.

Bytes: every initializer input of a node is read once per kernel (weight bytes); every other
input and every output is read or written per sample. All at the solve precision's element
size. The parameter count is the number of floating-point initializer elements, less the
BatchNormalization running statistics (buffers, as the zoo counts them).

Anything else (``LSTM``, ``Loop``, ``If``, ``NonMaxSuppression``, custom domains, ...) is
*unmodeled*: listed with its node count in ``ImportedWorkload.unmodeled``, with the activation
bytes it touches available through ``unmodeled_bytes``, never costed as time 0 in silence.
Pointwise nodes that are the only use of a convolution's or GEMM's output run in its epilogue
(:func:`~.graph.fuse_epilogues`; views looked through, a graph output counts as a use).
Left out: other fusion (each other modelled node is its own kernel), subgraphs of control
flow, quantized operators (QLinearConv, MatMulInteger: unmodeled).
"""

from __future__ import annotations

import math
import os

from ..errors import SpecError, ValidationError
from ..workloads.imported import ImportedWorkload
from .graph import (
    COPY_OPS,
    ELEMENTWISE_OPS,
    NORM_OPS,
    ONNX_RULES,
    POOL_OPS,
    UNKNOWN,
    VIEW_OPS,
    Graph,
    fuse_epilogues,
    workload_key,
)

__all__ = ["from_onnx", "ELEMENTWISE_OPS", "NORM_OPS", "POOL_OPS", "COPY_OPS", "VIEW_OPS"]

_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto codes)
_UNKNOWN = UNKNOWN               # an axis shape inference left unresolved


def _load(path):
    """The ModelProto of ``path`` (a file path or an in-memory ModelProto), shapes inferred."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SpecError("Models.from_onnx needs the 'onnx' package: pip install "
                        "'mlsysim[onnx]'") from exc
    if isinstance(path, onnx.ModelProto):
        model, where = path, "<ModelProto>"
    else:
        where = os.fspath(path)
        if not os.path.isfile(where):
            raise ValidationError("path", f"must be an ONNX file. Got {where!r}, which does not "
                                  "exist.", owner="Models.from_onnx")
        try:
            model = onnx.load(where)
        except Exception as exc:  # protobuf raises DecodeError, truncated files others
            raise SpecError(f"{where}: not a readable ONNX model "
                            f"({type(exc).__name__}: {exc})") from None
    if not model.graph.node:
        raise SpecError(f"{where}: the ONNX graph has no nodes")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise SpecError(f"{where}: ONNX shape inference failed "
                        f"({type(exc).__name__}: {exc})") from None
    return model, where


def _dims(type_proto) -> tuple | None:
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(_UNKNOWN)
    return tuple(out)


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.ints:
                return tuple(a.ints)
            return a.i if a.type == 2 else a.f if a.type == 1 else default
    return default


def _node_record(node, shapes: dict, inits: dict) -> tuple:
    """(op_type, name, input shapes, input-is-initializer flags, output shapes, extra)."""
    ins = tuple(shapes.get(n) if n not in inits else inits[n][0] for n in node.input if n)
    is_init = tuple(n in inits for n in node.input if n)
    outs = tuple(shapes.get(n) for n in node.output if n)
    extra = ()
    if node.op_type == "Gemm":
        extra = (_attr(node, "transA", 0), _attr(node, "transB", 0))
    elif node.op_type in POOL_OPS:
        extra = (_attr(node, "kernel_shape", ()),)
    return (node.op_type, node.name or node.op_type, ins, is_init, outs, extra)


def _epilogues(graph, records: list) -> dict[int, int]:
    """:func:`~.graph.fuse_epilogues` over the graph's connectivity: tensor names, views
    (reshape, squeeze, ...) looked through; a graph output counts as a use."""
    alias: dict[str, str] = {}
    made: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        if ONNX_RULES.get(node.op_type) == "view":
            for out in node.output:
                if node.input:
                    alias[out] = node.input[0]
        else:
            made.update((out, i) for out in node.output if out)

    def source(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    users = [0] * len(records)
    producers = []
    for node in graph.node:
        ins = [t for t in node.input if t]
        producers.append([made.get(source(t)) for t in ins])
        if ONNX_RULES.get(node.op_type) != "view":
            for t in ins:
                if source(t) in made:
                    users[made[source(t)]] += 1
    for out in graph.output:
        if source(out.name) in made:
            users[made[source(out.name)]] += 1
    return fuse_epilogues(records, ONNX_RULES, producers, users)


def from_onnx(path, *, name: str | None = None, default_seq_len: int = 128) -> ImportedWorkload:
    """Import an ONNX graph as a workload ``Engine.solve`` accepts.

    Parameters
    ----------
    path : str or os.PathLike (or an ``onnx.ModelProto``), the ``.onnx`` file
    name : str, shown to users; default: the graph's name, else the file's stem
    default_seq_len : int, the sequence length of a solve that gives none (graphs with a
        symbolic sequence axis only)

    Returns
    -------
    ImportedWorkload, with the parameter count, the unmodeled operator types and their node
    counts. Raises ``SpecError`` for a file that is not a readable ONNX model.

    Examples
    --------
    >>> import mlsysim                                       # doctest: +SKIP
    >>> w = mlsysim.Models.from_onnx("resnet50.onnx")          # doctest: +SKIP
    >>> mlsysim.Engine.solve(w, "A100", batch_size=8).latency  # doctest: +SKIP
    """
    model, where = _load(path)
    graph = model.graph
    inits = {t.name: (tuple(int(d) for d in t.dims), t.data_type) for t in graph.initializer}
    shapes: dict[str, tuple | None] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        shapes[vi.name] = _dims(vi.type)

    # Axis 0 of the graph inputs is the batch; other symbolic input axes are the sequence.
    batch: str | int = 1
    seq_names: set[str] = set()
    for vi in graph.input:
        if vi.name in inits:
            continue
        dims = shapes.get(vi.name) or ()
        for i, d in enumerate(dims):
            if i == 0:
                batch = d if d != _UNKNOWN else 1
            elif isinstance(d, str) and d != _UNKNOWN and d != batch:
                seq_names.add(d)

    buffers = set()
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            buffers.update(n for n in node.input[3:5] if n)
    floats = {n: math.prod(s) for n, (s, t) in inits.items() if t in _FLOAT_TYPES}
    params = sum(v for n, v in floats.items() if n not in buffers)

    # An Identity of an initializer is a weight too: exporters deduplicate equal
    # initializers (freshly initialized biases) and hand each user an Identity copy.
    weights = dict(inits)
    for node in graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in weights:
            weights.update((out, weights[node.input[0]]) for out in node.output if out)
    nodes = [_node_record(node, shapes, weights) for node in graph.node]
    g = Graph(name or graph.name or os.path.splitext(os.path.basename(where))[0], nodes,
              batch, frozenset(seq_names), sum(floats.values()),
              fused=_epilogues(graph, nodes))
    known = {batch, *seq_names}
    unresolved = {d for rec in nodes for s in (*rec[2], *rec[4]) if s for d in s
                  if isinstance(d, str) and d not in known}
    notes = []
    if unresolved:
        notes.append(f"axes shape inference left unresolved, counted as 1: "
                     f"{', '.join(sorted(unresolved))}")
    if isinstance(batch, int) and batch > 1:
        notes.append(f"exported at a fixed batch of {batch}: work divided by {batch} per sample")
    if len(seq_names) > 1:
        notes.append(f"symbolic axes {', '.join(sorted(seq_names))} all take seq_len")
    return ImportedWorkload(
        name=g.name, key=workload_key(g.name, "onnx_graph"), parameter_count=int(params),
        build=g.build, unfused_build=g.unfused_build,
        unmodeled=g.unmodeled(), seq_axis=bool(seq_names),
        default_seq_len=default_seq_len, unmodeled_bytes=g.unmodeled_bytes, source=where,
        notes=tuple(notes))
