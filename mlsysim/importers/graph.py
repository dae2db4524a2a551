"""Imported graphs as plain data, and the cost rules that turn them into an operator table.

Backend-independent half of the importers: :mod:`.onnx_import` and :mod:`.torch_import` read
their graphs into *records*, one per node, and :class:`Graph` costs them per sample and groups
identical rows, so a 100-layer model stays a small table. A record is the plain tuple

    (op, name, input shapes, input-is-weight flags, output shapes, extra)

``op`` is the operator's name in its source (``"Conv"`` in ONNX, ``"conv2d"`` in PyTorch); a
per-backend *rule map* gives its cost rule (one of :data:`RULES`), and an op the map does not
know is *unmodeled*. A shape is a tuple of axes: an ``int``, the name of a symbolic axis (the
batch name or a sequence name), or a :class:`SymDim` (a size derived from them, such as
``batch * seq`` after a reshape). A weight input (ONNX initializer, PyTorch parameter or buffer)
is read once per kernel; every other input and every output per sample.

Cost rules, per sample (``numel`` counts a tensor's elements with the batch axis at 1):

- ``conv``: ``2 * Cout * Cin/groups * prod(k) * prod(out spatial)`` flop, i.e. two flop per
  weight element per output position (``2 * Cin/groups * prod(k)`` per output element);
  ``conv_transpose``: two flop per weight element per *input* position.
- ``gemm``: ``2 * M * N * K`` = ``2 * numel(Y) * K``, ``K`` the last axis of the left operand
  (its first with ``extra = (trans_a,)`` set, or when it is 1-D); a bias add runs in the
  epilogue (not counted, as in the zoo's layered lowering). ``einsum``: ``2 * numel(index
  space)`` per product of two operands (``extra`` holds the index space's shape).
- ``attention`` (scaled dot-product attention, inputs ``Q [..., Lq, E]``, ``K [..., Lk, E]``,
  ``V [..., Lk, Ev]``): QK^T and PV cost ``2 * (E + Ev)`` flop per (query, key) pair and query
  head [Vaswani et al. 2017], i.e. ``2*2*H*Lq*Lk*D``; with ``extra = (True,)`` (causal, the
  mask aligned at the top left) query ``i`` sees ``min(i + 1, Lk)`` keys, ``Lq (Lq + 1) / 2``
  pairs for ``Lq = Lk``, the zoo's causal prefill count. Scores stay on chip
  (FlashAttention-style): bytes are Q, K, V (and a mask) read and the output written.
- elementwise and activations: one flop per output element; reductions: one per input element;
  pooling: ``prod(kernel)`` per output element (global and adaptive pools: one per input
  element).
- ``norm`` (batch, layer, instance, group, RMS norms): 8 flop per element (the zoo's rule).
- ``embedding``, and an ONNX ``Gather`` from an initializer: a lookup (one flop and one read
  per output element; the gathered rows are read, not the whole table).
- ``copy`` (transpose, concat, slice, pad, cast, gather of activations...): no flops, their
  activation traffic. ``view`` (reshape, squeeze, identity...): free, no kernel.

Bytes are counted in elements and priced at the solve precision's element size. Anything the
rule map does not know is listed with its node count, with the activation bytes it touches
available through :meth:`Graph.unmodeled_bytes`, never costed as time 0 in silence.

Epilogue fusion (:func:`fuse_epilogues`), as inference compilers do and as the zoo's lowerings
assume: a pointwise op whose input is the only use of a convolution's or GEMM's output (or of
an op already fused into one) runs in that kernel's epilogue: no launch of its own, its flops
kept, and of its bytes only its other operands read (a residual add reads its second input);
a chain (conv -> add -> relu) fuses whole. Softmax and resampling are not pointwise and stay
kernels of their own.
Left out: fusion beyond epilogues (norms, attention blocks), control flow, quantized kernels.
"""

from __future__ import annotations

import math
from typing import Callable

from ..workloads.operators import OperatorBuilder, OperatorTable, OpKind

__all__ = ["Graph", "SymDim", "RULES", "ONNX_RULES", "fuse_epilogues", "ELEMENTWISE_OPS",
           "REDUCE_OPS",
           "NORM_OPS", "POOL_OPS", "GLOBAL_POOL_OPS", "COPY_OPS", "VIEW_OPS", "UNKNOWN",
           "workload_key"]

RULES = ("view", "conv", "conv_transpose", "gemm", "einsum", "attention", "norm", "embedding",
         "gather", "pool", "global_pool", "reduce", "elementwise", "copy")

# ONNX operator types by cost rule.
ELEMENTWISE_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Neg", "Abs",
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Erf", "Softplus", "Softsign", "Mish", "Clip", "Softmax",
    "LogSoftmax", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less", "Greater", "Not",
    "And", "Or", "Floor", "Ceil", "Round", "Sin", "Cos", "Resize", "Upsample",
})
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                        "ReduceL2", "ReduceSumSquare", "ArgMax", "ArgMin"})
NORM_OPS = frozenset({"BatchNormalization", "LayerNormalization", "InstanceNormalization",
                      "GroupNormalization", "RMSNormalization", "LpNormalization"})
POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})
GLOBAL_POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
COPY_OPS = frozenset({"Transpose", "Concat", "Split", "Slice", "Expand", "Pad", "Tile", "Cast",
                      "Gather", "GatherElements", "ScatterND", "DepthToSpace", "SpaceToDepth"})
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout",
                      "Shape", "Size", "Constant", "ConstantOfShape", "Range"})

ONNX_RULES: dict[str, str] = {
    **{op: "elementwise" for op in ELEMENTWISE_OPS}, **{op: "reduce" for op in REDUCE_OPS},
    **{op: "norm" for op in NORM_OPS}, **{op: "pool" for op in POOL_OPS},
    **{op: "global_pool" for op in GLOBAL_POOL_OPS}, **{op: "copy" for op in COPY_OPS},
    **{op: "view" for op in VIEW_OPS},
    "Conv": "conv", "ConvTranspose": "conv_transpose", "Gemm": "gemm", "MatMul": "gemm",
    "Gather": "gather",
}
UNKNOWN = "?"  # an axis the reader could not resolve


class SymDim:
    """A size derived from the symbolic axes (``batch * seq``, ``seq + 2``...).

    ``fn(seq)`` gives its value per sample (batch axis at 1) for a sequence length (``None``
    on graphs without a sequence axis); values are cached per ``seq``. ``label`` is shown in
    notes and reprs.
    """

    __slots__ = ("label", "_fn", "_cache")

    def __init__(self, label: str, fn: Callable[[int | None], float]):
        self.label, self._fn, self._cache = label, fn, {}

    def value(self, seq: int | None) -> float:
        v = self._cache.get(seq)
        if v is None:
            v = self._cache[seq] = float(self._fn(seq))
        return v

    def __repr__(self) -> str:
        return self.label


def workload_key(name: str, fallback: str) -> str:
    """An identifier for traces: ``name`` with non-alphanumerics as ``_``."""
    key = "".join(c if c.isalnum() else "_" for c in name) or fallback
    return "_" + key if key[0].isdigit() else key


# Elementwise-rule ops that are not pointwise (a row reduction, a resampling): never fused.
_NOT_POINTWISE = ("softmax", "upsample", "resize")


def fuse_epilogues(records: list, rules: dict[str, str], producers: list, users: list
                   ) -> dict[int, int]:
    """Record index -> the input position absorbed, for every pointwise record that runs in
    the epilogue of the kernel producing that input (module docstring).

    ``producers[i][j]``: the index of the record producing input ``j`` of record ``i`` (views
    looked through; None for graph inputs and weights); ``users[i]``: how many records use
    record ``i``'s output."""
    fused: dict[int, int] = {}
    for i, rec in enumerate(records):
        op = rec[0]
        if rules.get(op) != "elementwise" or any(t in op.lower() for t in _NOT_POINTWISE):
            continue
        for j, p in enumerate(producers[i]):
            if p is None or users[p] != 1:
                continue
            if rules.get(records[p][0]) in ("conv", "gemm") or p in fused:
                fused[i] = j
                break
    return fused


def _causal_pairs(lq: float, lk: float) -> float:
    """Query-key pairs of a causal mask aligned at the top left: sum_i min(i + 1, Lk)."""
    if lq <= lk:
        return lq * (lq + 1) / 2
    return lk * (lk + 1) / 2 + (lq - lk) * lk


class Graph:
    """An imported graph as plain data; ``build(seq_len, e)`` makes the table.

    Parameters
    ----------
    name : str, the workload's name
    nodes : list of records (see the module docstring)
    batch : str or int, the batch axis name, or a fixed batch (work divided by it per sample)
    seq_names : frozenset of str, symbolic axes that take the solve's ``seq_len``
    weight_elems : int, resident weight elements (the footprint)
    rules : dict, op name -> cost rule (one of :data:`RULES`); other ops are unmodeled
    fused : dict, record index -> input position absorbed (:func:`fuse_epilogues`)
    folded : frozenset of record indices folded into their producer at import (eval batch
        norms): not costed, except in an unfused (eager) table where each is its own kernel
    """

    def __init__(self, name: str, nodes: list, batch: str | int, seq_names: frozenset,
                 weight_elems: int, rules: dict[str, str] | None = None,
                 fused: dict[int, int] | None = None, folded: frozenset = frozenset()):
        self.name, self.nodes, self.batch, self.seq_names = name, nodes, batch, seq_names
        self.weight_elems = weight_elems
        self.rules = ONNX_RULES if rules is None else rules
        self.fused = fused or {}
        self.folded = folded
        self.per_sample = 1.0 / batch if isinstance(batch, int) and batch > 1 else 1.0

    def _dim(self, d, seq: int | None) -> float:
        if isinstance(d, int):
            return float(d)
        if isinstance(d, SymDim):
            return d.value(seq)
        if d == self.batch:
            return 1.0
        if d in self.seq_names:
            return float(seq or 1)
        return 1.0  # unresolved: counted as 1 (reported in the notes)

    def numel(self, shape, seq) -> float:
        if shape is None:
            return 0.0
        n = 1.0
        for d in shape:
            n *= self._dim(d, seq)
        return n

    def is_unmodeled(self, rec) -> bool:
        return rec[0] not in self.rules

    def cost(self, rec, seq) -> tuple[OpKind, float, float, float] | None:
        """(kind, flops, weight elements, activation elements) per sample; None: free view;
        ``()``: unmodeled."""
        op, _, ins, is_init, outs, extra = rec
        rule = self.rules.get(op)
        if rule is None:
            return ()
        if rule == "view":
            return None
        numel = self.numel
        y = numel(outs[0], seq) if outs else 0.0
        weights = sum(numel(s, seq) for s, w in zip(ins, is_init) if w)
        act = sum(numel(s, seq) for s, w in zip(ins, is_init) if not w) + \
            sum(numel(s, seq) for s in outs)
        if rule == "conv":
            # W = [Cout, Cin/groups, *k]: 2 * Cin/groups * prod(k) flop per output element.
            w = ins[1]
            cout = self._dim(w[0], seq) if w else 0.0
            return OpKind.CONV, (2.0 * numel(w, seq) / cout * y if cout else 0.0), weights, act
        if rule == "conv_transpose":
            # W = [Cin, Cout/groups, *k]: 2 * Cout/groups * prod(k) flop per input element.
            x, w = ins[0], ins[1]
            cin = self._dim(w[0], seq) if w else 0.0
            flops = 2.0 * numel(w, seq) / cin * numel(x, seq) if cin else 0.0
            return OpKind.CONV, flops, weights, act
        if rule == "gemm":
            a = ins[0] if ins else None
            if a is None:
                return OpKind.GEMM, 0.0, weights, act
            trans_a = extra[0] if extra else 0
            kdim = a[0] if (trans_a or len(a) == 1) else a[-1]
            return OpKind.GEMM, 2.0 * y * self._dim(kdim, seq), weights, act
        if rule == "einsum":
            space, operands = extra
            per = numel(space, seq)
            return OpKind.GEMM, (2.0 * (operands - 1) * per if operands > 1 else per), \
                weights, act
        if rule == "attention":
            q, k = ins[0], ins[1]
            v = ins[2] if len(ins) > 2 else k
            lq, lk = self._dim(q[-2], seq), self._dim(k[-2], seq)
            width = self._dim(q[-1], seq) + self._dim(v[-1], seq)
            heads = numel(q, seq) / (lq * self._dim(q[-1], seq)) if lq else 0.0
            pairs = _causal_pairs(lq, lk) if extra and extra[0] else lq * lk
            return OpKind.ATTENTION, 2.0 * width * heads * pairs, weights, act
        if rule == "norm":
            return OpKind.NORM, 8.0 * y, weights, act
        if rule == "embedding" or (rule == "gather" and is_init and is_init[0]):
            # An embedding: the gathered rows are read, not the whole table.
            return OpKind.EMBEDDING, y, 0.0, 2 * y
        if rule == "pool":
            window = math.prod(extra[0]) if extra and extra[0] else 1
            return OpKind.ELEMENTWISE, window * y, weights, act
        if rule in ("global_pool", "reduce"):
            return OpKind.ELEMENTWISE, numel(ins[0], seq) if ins else 0.0, weights, act
        if rule == "elementwise":
            return OpKind.ELEMENTWISE, y, weights, act
        return OpKind.ELEMENTWISE, 0.0, weights, act  # copy (and a Gather of activations)

    def fused_cost(self, rec, pos: int, seq) -> tuple[OpKind, float, float, float]:
        """A pointwise op in its producer's epilogue: its flops; of its bytes only the
        activation operands other than input ``pos`` (the producer's output, in registers)."""
        _, _, ins, is_init, outs, _ = rec
        act = sum(self.numel(x, seq) for j, (x, w) in enumerate(zip(ins, is_init))
                  if not w and j != pos)
        weights = sum(self.numel(x, seq) for x, w in zip(ins, is_init) if w)
        return OpKind.ELEMENTWISE, self.numel(outs[0], seq) if outs else 0.0, weights, act

    def build(self, seq: int | None, e: float, fuse: bool = True) -> OperatorTable:
        """The table at sequence length ``seq`` and ``e`` bytes per element; ``fuse=False``:
        every node its own kernel (an eager framework's pass)."""
        s = self.per_sample
        rows: dict[tuple, list] = {}
        fused = self.fused if fuse else {}
        for i, rec in enumerate(self.nodes):
            if fuse and i in self.folded:
                continue
            pos = fused.get(i)
            c = self.cost(rec, seq) if pos is None else self.fused_cost(rec, pos, seq)
            if not c:
                continue
            kind, flops, weights, act = c
            key = (rec[0], int(kind), flops, weights, act, pos is not None)
            if key in rows:
                rows[key][1] += 1
            else:
                rows[key] = [rec[1], 1]
        b = OperatorBuilder()
        for (op, kind, flops, weights, act, fused), (name, count) in rows.items():
            b.add(f"{op} {name}", OpKind(kind), flops=flops * s, weight_bytes=weights * e,
                  act_bytes=act * s * e, count=count, fused=fused)
        if not b.rows:
            b.add("no modelled operators", OpKind.ELEMENTWISE, flops=0.0, count=1)
        return b.build(weight_total_bytes=self.weight_elems * e)

    def unfused_build(self, seq: int | None, e: float) -> OperatorTable:
        return self.build(seq, e, fuse=False)

    def unmodeled(self) -> tuple[tuple[str, int], ...]:
        """(op, node count) of the ops without a cost rule, sorted by op."""
        counts: dict[str, int] = {}
        for rec in self.nodes:
            if rec[0] not in self.rules:
                counts[rec[0]] = counts.get(rec[0], 0) + 1
        return tuple(sorted(counts.items()))

    def unmodeled_bytes(self, seq: int | None, e: float) -> float:
        total = 0.0
        for rec in self.nodes:
            if rec[0] not in self.rules:
                _, _, ins, is_init, outs, _ = rec
                total += sum(self.numel(x, seq) for x, w in zip(ins, is_init) if not w)
                total += sum(self.numel(x, seq) for x in outs)
        return total * self.per_sample * e
