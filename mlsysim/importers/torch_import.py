"""PyTorch modules onto the operator table: ``Models.from_torch(module, example_inputs)``.

Needs the extra ``torch`` (``torch>=2.1``). The module is traced once by ``torch.export.export``
(non-strict) in eval mode (restored afterwards): every parameter, buffer and input becomes a
*fake* tensor, shapes and dtypes without storage, so nothing is computed and no weight is
copied. A module built under ``with torch.device("meta"):`` has no weights at all, which is how
a full-size model (Llama-3-8B: 32 GB in fp32) imports on a laptop; the example inputs are
re-created, empty, on the module's device. Each ATen operator of the exported graph becomes a
plain record (see :mod:`.graph`, whose cost rules and row grouping are shared with the ONNX
importer) and :class:`~mlsysim.workloads.imported.ImportedWorkload` builds the table for each
solve from the records: no re-trace per batch size or sequence length.

Axes. Axis 0 of every tensor input is the batch, traced as a dynamic dimension
(``torch.export.Dim.AUTO``). ``seq_axis`` names the sequence axis (one int for every input, or
one per positional input): it is dynamic too and takes the solve's ``seq_len``. Sizes derived
from them (``batch * seq`` after a reshape, ``seq + 2`` after a pad) are kept as expressions
and evaluated per sample (batch at 1). The trace uses a batch of at least 2 (PyTorch
specializes sizes 0 and 1), distinct from the sequence length, so the two never merge. A batch
the module pins to a constant is traced at that size and divided out per sample (as a fixed
ONNX batch is). Data-dependent sizes (``nonzero``, ``torch.where(mask)``): where the mask is
drawn from a ``topk`` over ``E`` experts (mixture-of-experts routing), the count is the
balanced share ``numel(indices) / E`` (``tokens * k / E``); any other is counted as 1 and
listed in ``notes``.

Operators (the rules themselves are in :mod:`.graph`):

- ``conv1d/2d/3d``, ``convolution`` -> conv (``conv_transpose*``: transposed conv);
  ``linear``, ``mm``, ``bmm``, ``matmul``, ``addmm``, ``baddbmm``, ``einsum`` -> gemm, ``K``
  from the shapes; ``scaled_dot_product_attention`` and its flash, efficient and cuDNN
  variants -> attention (QK^T and PV, ``2*2*H*Lq*Lk*D`` flop; ``is_causal`` halves the pairs
  as the zoo's causal prefill does).
- ``batch_norm``, ``layer_norm``, ``group_norm``, ``instance_norm``, ``rms_norm`` -> norm. An
  eval-mode batch norm whose input is a convolution used nowhere else is folded into it (the
  convolution gains a bias of ``Cout`` if it had none), as inference runtimes and
  ``torch.onnx.export`` do.
- ``embedding`` -> embedding; activations, arithmetic, comparisons, ``softmax`` -> elementwise;
  ``sum``/``mean``/``amax``... -> reductions; ``max_pool*``/``avg_pool*`` -> pooling,
  ``adaptive_*_pool*`` -> global pooling.
- copies: ``cat``, ``stack``, ``clone``, casts, ``pad``, ``repeat``, ``index``, ``gather``,
  ``scatter``..., and ``reshape``/``flatten``/``contiguous`` of a non-contiguous tensor (a
  contiguous one is a view; this is a slight over-count where PyTorch can still view).
- views (free): ``view``, ``permute``, ``transpose``, ``t``, ``expand``, ``unsqueeze``,
  ``squeeze``, ``slice``, ``select``, ``split``, ``chunk``, ``detach``, eval ``dropout``,
  ``getitem`` on a tuple, shape queries and assertions.
- an operator whose tensor inputs are all parameters, buffers or constants (a weight
  transpose, a RoPE table, a causal mask built with ``torch.ones``) is batch-independent:
  taken as constant-folded, not costed, and its output read as a weight (counted in notes).

Anything else (``topk``, ``nonzero``, ``fft_*``, ``sort``, custom ops, higher-order control
flow) is unmodeled: listed in ``ImportedWorkload.unmodeled`` with its node count and its
activation bytes in ``unmodeled_bytes``. ``parameter_count`` counts parameter elements (tied
weights once), not buffers; resident weights are parameters plus floating-point buffers.
Pointwise ops that are the only use of a convolution's or GEMM's output run in its epilogue
(:func:`~.graph.fuse_epilogues`, views and folded batch norms looked through), so an imported
ResNet-50 costs what the zoo's does. Left out: other fusion, training passes, KV caches (an
imported module is one forward pass).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from ..errors import SpecError, ValidationError
from ..workloads.imported import ImportedWorkload
from .graph import Graph, SymDim, fuse_epilogues, workload_key

__all__ = ["from_torch", "TORCH_RULES"]

OWNER = "Models.from_torch"


def _rules() -> dict[str, str]:
    by_rule = {
        "conv": "conv1d conv2d conv3d convolution _convolution",
        "conv_transpose": "conv_transpose1d conv_transpose2d conv_transpose3d",
        "gemm": "linear mm bmm matmul addmm baddbmm addbmm addmv mv dot",
        "einsum": "einsum",
        "attention": "scaled_dot_product_attention _scaled_dot_product_flash_attention "
                     "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention "
                     "_scaled_dot_product_flash_attention_for_cpu "
                     "_scaled_dot_product_fused_attention_overrideable",
        "norm": "batch_norm native_batch_norm _native_batch_norm_legit "
                "_native_batch_norm_legit_no_training layer_norm native_layer_norm group_norm "
                "native_group_norm instance_norm rms_norm _fused_rms_norm",
        "embedding": "embedding",
        "pool": "max_pool1d max_pool2d max_pool3d max_pool1d_with_indices "
                "max_pool2d_with_indices max_pool3d_with_indices avg_pool1d avg_pool2d "
                "avg_pool3d",
        "global_pool": "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d "
                       "_adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool1d "
                       "adaptive_max_pool2d adaptive_max_pool3d",
        "reduce": "sum mean amax amin max min argmax argmin prod var std var_mean std_mean "
                  "norm linalg_vector_norm logsumexp cumsum cumprod any all count_nonzero",
        "elementwise": "abs add sub rsub mul div true_divide floor_divide remainder fmod pow "
                       "sqrt rsqrt exp exp2 expm1 log log2 log10 log1p neg reciprocal relu "
                       "relu6 leaky_relu prelu _prelu_kernel elu selu celu gelu silu sigmoid "
                       "hardsigmoid hardswish hardtanh tanh erf erfc softplus softsign mish "
                       "clamp clamp_min clamp_max clip softmax _softmax log_softmax "
                       "_log_softmax _safe_softmax maximum minimum where eq ne lt le gt ge "
                       "logical_not logical_and logical_or logical_xor bitwise_not bitwise_and "
                       "bitwise_or bitwise_xor floor ceil round trunc sign sin cos tan square "
                       "masked_fill threshold triu tril lerp addcmul addcdiv glu logit isnan "
                       "isinf nan_to_num fill zero upsample_nearest1d upsample_nearest2d "
                       "upsample_nearest3d upsample_linear1d upsample_bilinear2d "
                       "upsample_trilinear3d upsample_bicubic2d _upsample_nearest_exact2d "
                       "_upsample_bilinear2d_aa",
        "copy": "cat concat concatenate stack hstack vstack clone contiguous reshape flatten to "
                "_to_copy "
                "type_as copy pad constant_pad_nd reflection_pad1d reflection_pad2d "
                "reflection_pad3d replication_pad1d replication_pad2d replication_pad3d "
                "repeat repeat_interleave tile index index_select gather scatter scatter_add "
                "scatter_reduce index_add index_put index_copy index_fill masked_scatter roll "
                "flip zeros_like ones_like full_like empty_like rand_like randn_like one_hot "
                "pixel_shuffle pixel_unshuffle narrow_copy slice_scatter select_scatter "
                "diagonal_scatter take im2col col2im",
    }
    return {op: rule for rule, ops in by_rule.items() for op in ops.split()}


TORCH_RULES = _rules()

# Always free: no kernel, or a view of their input.
_VIEWS = frozenset((
    "view _unsafe_view view_as permute transpose t expand expand_as unsqueeze squeeze select "
    "slice narrow alias detach split split_with_sizes unsafe_split chunk unbind as_strided "
    "real imag view_as_real view_as_complex movedim moveaxis swapaxes swapdims diagonal "
    "unflatten unfold lift_fresh_copy _assert_tensor_metadata _assert_async "
    "_assert_scalar sym_size sym_numel sym_stride sym_storage_offset sym_constrain_range "
    "sym_constrain_range_for_size _local_scalar_dense item dropout native_dropout "
    "feature_dropout alpha_dropout feature_alpha_dropout resolve_conj resolve_neg "
    "_functional_assert_async scalar_tensor").split())
# Views when their input is contiguous (and of an unchanged dtype), copies otherwise.
_MAYBE_VIEWS = frozenset("reshape flatten contiguous to _to_copy type_as clone".split())
_TOPK = frozenset({"topk"})
_NONZERO = frozenset({"nonzero", "argwhere", "nonzero_static"})


def _import_torch():
    try:
        import torch
        from torch.export import Dim  # noqa: F401  (torch >= 2.1)
    except ImportError as exc:
        raise SpecError("Models.from_torch needs PyTorch (torch>=2.1): pip install "
                        "'mlsysim[torch]'") from exc
    return torch


def _op_name(target) -> str:
    """``aten.conv2d.default`` -> ``conv2d``; in-place ``relu_`` -> ``relu``; other
    namespaces keep theirs (``mylib.fused_op``); higher-order ops are ``higher_order.cond``."""
    schema = getattr(target, "_schema", None)
    if schema is not None:
        ns, _, name = schema.name.partition("::")
        if name.endswith("_") and not name.endswith("__"):
            name = name[:-1]
        return name if ns == "aten" else f"{ns}.{name}"
    hop = getattr(target, "_name", None)  # a HigherOrderOperator (cond, while_loop, ...)
    return f"higher_order.{hop}" if hop else getattr(target, "__name__", str(target))


def _named_args(node) -> dict:
    """The node's arguments by schema name (positional and keyword)."""
    schema = getattr(node.target, "_schema", None)
    out = dict(node.kwargs)
    if schema is not None:
        for a, v in zip(schema.arguments, node.args):
            out[a.name] = v
    return out


def _normalize_inputs(torch, example_inputs) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    raise ValidationError("example_inputs", "must be a tensor or a tuple of the forward's "
                          f"positional arguments. Got {type(example_inputs).__name__} instead.",
                          owner=OWNER)


def _seq_axes(torch, args: tuple, seq_axis) -> list:
    """Per positional argument, the sequence axis of its tensors (None: none)."""
    if seq_axis is None:
        return [None] * len(args)
    if isinstance(seq_axis, bool) or not isinstance(seq_axis, (int, Sequence)):
        raise ValidationError("seq_axis", "must be an int, a sequence of int or None (one per "
                              f"positional input), or None. Got {seq_axis!r} instead.",
                              owner=OWNER)
    if isinstance(seq_axis, int):
        return [seq_axis] * len(args)
    axes = list(seq_axis)
    if len(axes) != len(args) or not all(a is None or (isinstance(a, int)
                                                        and not isinstance(a, bool))
                                         for a in axes):
        raise ValidationError("seq_axis", f"must give one int or None per positional input "
                              f"({len(args)}). Got {seq_axis!r} instead.", owner=OWNER)
    return axes


def _trace_inputs(torch, args: tuple, axes: list, device):
    """Empty inputs on the module's device (batch >= 2, distinct from the sequence length),
    the dynamic-shape spec for export, the batch and sequence sizes used, and notes."""
    from torch.export import Dim
    from torch.utils import _pytree as pytree

    notes: list[str] = []
    leaves_per_arg = []
    seq_lens: set[int] = set()
    batches: set[int] = set()
    for i, (arg, ax) in enumerate(zip(args, axes)):
        leaves, spec = pytree.tree_flatten(arg)
        resolved = []
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor):
                if leaf.dim() == 0:
                    resolved.append((leaf, None))
                    continue
                batches.add(int(leaf.shape[0]))
                a = None
                if ax is not None:
                    a = ax + leaf.dim() if ax < 0 else ax
                    if not 0 <= a < leaf.dim():
                        a = None
                    elif a == 0:
                        raise ValidationError("seq_axis", "must not be axis 0, the batch. Got "
                                              f"{ax} for input {i}.", owner=OWNER)
                    else:
                        seq_lens.add(max(int(leaf.shape[a]), 2))
                resolved.append((leaf, a))
            elif leaf is None or isinstance(leaf, (bool, int, float, str)):
                resolved.append((leaf, None))
            else:
                raise ValidationError("example_inputs", "must hold tensors (or None, bool, int, "
                                      f"float, str). Got {type(leaf).__name__} in input {i}.",
                                      owner=OWNER)
        leaves_per_arg.append((resolved, spec))
    if not batches:
        raise ValidationError("example_inputs", "must hold at least one tensor with a batch "
                              "axis (axis 0).", owner=OWNER)
    if any(a is not None for a in axes) and not seq_lens:
        raise ValidationError("seq_axis", f"names no axis of the example inputs. Got {axes!r} "
                              "for inputs of shapes " + ", ".join(
                                  str(tuple(x.shape)) for r, _ in leaves_per_arg
                                  for x, _ in r if isinstance(x, torch.Tensor)), owner=OWNER)
    batch = max(2, max(batches))
    while batch in seq_lens:
        batch += 1
    if batch not in batches or len(batches) > 1:
        notes.append(f"traced at a batch of {batch} (the example's {sorted(batches)}: PyTorch "
                     "fixes sizes 0 and 1, and the batch must differ from the sequence length)")

    new_args, dyn = [], []
    for (resolved, spec) in leaves_per_arg:
        leaves, dims = [], []
        for leaf, a in resolved:
            if isinstance(leaf, torch.Tensor) and leaf.dim() > 0:
                shape = list(leaf.shape)
                shape[0] = batch
                d = {0: Dim.AUTO}
                if a is not None:
                    if shape[a] < 2:
                        notes.append(f"sequence axis traced at length 2 (example: {shape[a]})")
                    shape[a] = max(shape[a], 2)
                    d[a] = Dim.AUTO
                leaves.append(torch.empty(shape, dtype=leaf.dtype, device=device))
                dims.append(d)
            elif isinstance(leaf, torch.Tensor):
                leaves.append(torch.empty((), dtype=leaf.dtype, device=device))
                dims.append(None)
            else:
                leaves.append(leaf)
                dims.append(None)
        new_args.append(pytree.tree_unflatten(leaves, spec))
        dyn.append(pytree.tree_unflatten(dims, spec))
    return tuple(new_args), tuple(dyn), batch, seq_lens, notes


def _export(torch, module, args, dyn):
    """``torch.export.export`` in eval mode (each submodule's mode restored), stack-trace
    recording off (a third of the trace time); errors become one-line ``SpecError``."""
    import torch.fx.config as fx_config

    modes = [(m, m.training) for m in module.modules()]
    stacks = getattr(fx_config, "do_not_emit_stack_traces", None)
    try:
        module.eval()
        if stacks is not None:
            fx_config.do_not_emit_stack_traces = True
        return torch.export.export(module, args, dynamic_shapes=dyn, strict=False)
    except Exception as exc:  # torch raises many types; the user needs the first line
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
        raise SpecError(f"torch.export could not trace {type(module).__name__} ({reason}). "
                        "Make forward traceable (no data-dependent Python control flow) or "
                        "export it to ONNX.") from None
    finally:
        if stacks is not None:
            fx_config.do_not_emit_stack_traces = stacks
        for m, mode in modes:
            m.training = mode


class _Reader:
    """Walks an ExportedProgram's graph into records (see :mod:`.graph`)."""

    def __init__(self, torch, ep, batch: int, seq_lens: set[int], top: str):
        import sympy

        self.torch, self.sympy, self.ep, self.top = torch, sympy, ep, top
        self.const: set = set()          # nodes holding weights or values derived from them
        self.bindings: dict = {}         # unbacked symbol -> expected size (MoE routing)
        self.symdims: dict = {}
        self.unresolved: set[str] = set()
        self.routed = 0
        self.folded = 0
        self.bn_folded = 0
        self.bn_records: list[int] = []   # records of the folded batch norms
        self.bsym = None
        self.seq_syms: set = set()
        sig = ep.graph_signature
        weights = {*sig.inputs_to_parameters, *sig.inputs_to_buffers,
                   *sig.inputs_to_lifted_tensor_constants}
        user = set(sig.user_inputs)
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in weights:
                    self.const.add(node)
                elif node.name in user:
                    self._axes_of(node, batch, seq_lens)
            elif node.op == "get_attr":
                self.const.add(node)
        self.batch_fixed = self.bsym is None   # the module pinned the batch to a constant

    def _axes_of(self, node, batch: int, seq_lens: set[int]) -> None:
        """Classify the input's symbolic sizes by their trace value: batch or sequence."""
        val = node.meta.get("val")
        if not isinstance(val, self.torch.Tensor) or val.dim() == 0:
            return
        for i, d in enumerate(val.shape):
            if isinstance(d, int):
                continue
            expr = d.node.expr
            if not isinstance(expr, self.sympy.Symbol):
                continue
            hint = d.node.hint
            if hint == batch and i == 0:
                self.bsym = expr
            elif hint in seq_lens:
                self.seq_syms.add(expr)

    # -- shapes ---------------------------------------------------------------------------
    def dim(self, d):
        if isinstance(d, int):
            return d
        expr = d.node.expr
        if self.bindings:
            expr = expr.xreplace(self.bindings)
        if expr.is_Integer:
            return int(expr)
        if expr == self.bsym:
            return "batch"
        if expr in self.seq_syms:
            return "seq"
        return self._symdim(expr)

    def _symdim(self, expr):
        hit = self.symdims.get(expr)
        if hit is not None:
            return hit
        free = expr.free_symbols
        other = free - self.seq_syms - {self.bsym}
        self.unresolved.update(str(s) for s in other)
        fixed = {s: 1 for s in other}
        if self.bsym in free:
            fixed[self.bsym] = 1
        seqs = tuple(self.seq_syms & free)
        names = {s: self.sympy.Symbol("seq") for s in seqs}
        if self.bsym is not None:
            names[self.bsym] = self.sympy.Symbol("batch")
        label = str(expr.xreplace(names))

        def value(seq, expr=expr, fixed=fixed, seqs=seqs):
            try:
                return float(expr.xreplace({**fixed, **{s: seq or 1 for s in seqs}}))
            except (TypeError, ValueError):
                return 1.0

        sd = self.symdims[expr] = SymDim(label, value)
        return sd

    def shape(self, val) -> tuple:
        return tuple(self.dim(d) for d in val.shape)

    # -- nodes ----------------------------------------------------------------------------
    def _tensor_inputs(self, node) -> list:
        fx = self.torch.fx
        out = []

        def visit(a):
            if isinstance(a, fx.Node):
                if isinstance(a.meta.get("val"), self.torch.Tensor):
                    out.append(a)
            elif isinstance(a, (list, tuple)):
                for x in a:
                    visit(x)

        for a in (*node.args, *node.kwargs.values()):
            visit(a)
        return out

    def _outputs(self, node) -> list:
        val = node.meta.get("val")
        T = self.torch.Tensor
        if isinstance(val, T):
            return [val]
        if isinstance(val, (tuple, list)):
            used = {u.args[1] for u in node.users if u.target is operator.getitem}
            return [v for i, v in enumerate(val) if isinstance(v, T) and (i == 0 or i in used)]
        return []

    def _is_view(self, op: str, node, ins: list, outs: list) -> bool:
        if op in _VIEWS:
            if op.endswith("dropout") and _named_args(node).get("train", False):
                return False
            return True
        if op in _MAYBE_VIEWS and ins:
            src = ins[0].meta["val"]
            if op == "clone":
                return False
            if outs and outs[0].dtype != src.dtype:
                return False
            try:
                return bool(src.is_contiguous())
            except Exception:  # data-dependent strides: count the copy
                return False
        return False

    def _route(self, node, mask) -> None:
        """Bind a data-dependent count (``nonzero`` of a mask) to the balanced share of a
        top-k routing: ``numel(indices) / E``."""
        outs = self._outputs(node)
        if not outs or not outs[0].shape or isinstance(outs[0].shape[0], int):
            return
        sym = outs[0].shape[0].node.expr
        if not isinstance(sym, self.sympy.Symbol):
            return
        seen, frontier = set(), [mask]
        for _ in range(8):
            nxt = []
            for n in frontier:
                if n in seen:
                    continue
                seen.add(n)
                src = n.args[0] if n.target is operator.getitem else n
                if getattr(src, "op", None) == "call_function" and \
                        _op_name(src.target) in _TOPK:
                    x = src.args[0].meta["val"]
                    dim = _named_args(src).get("dim", -1)
                    experts = x.shape[dim]
                    idx = src.meta["val"][1]
                    if isinstance(experts, int) and experts > 0:
                        numel = self.sympy.Integer(1)
                        for d in idx.shape:
                            numel *= d if isinstance(d, int) else d.node.expr
                        self.bindings[sym] = numel / experts
                        self.routed += 1
                    return
                nxt.extend(self._tensor_inputs(n))
            frontier = nxt

    def records(self) -> list:
        recs: list[list] = []
        where: dict = {}
        alias: dict = {}                 # a view, tuple item or folded op -> the node it shows
        inputs: list = []                # each record's tensor input nodes
        self.fused: dict[int, int] = {}
        for node in self.ep.graph.nodes:
            if node.op != "call_function":
                continue
            target = node.target
            ins = self._tensor_inputs(node)
            if target is operator.getitem:
                if node.args[0] in self.const:
                    self.const.add(node)
                elif ins:
                    alias[node] = ins[0]
                continue
            outs = self._outputs(node)
            if not outs:
                continue
            if all(a in self.const for a in ins):
                self.const.add(node)
                op = _op_name(target)
                if op not in _VIEWS and op not in _MAYBE_VIEWS:
                    self.folded += 1
                continue
            op = _op_name(target)
            if op == "where" and len(node.args) == 1:
                op = "nonzero"
            elif op in ("max", "min") and len(ins) == 2:
                op = "maximum" if op == "max" else "minimum"
            if op in _NONZERO:
                self._route(node, ins[0])
            if self._is_view(op, node, ins, outs):
                if ins:
                    alias[node] = ins[0]
                continue
            rule = TORCH_RULES.get(op)
            extra: tuple = ()
            if op in ("addmm", "addbmm", "addmv", "baddbmm"):
                ins = [*ins[1:], ins[0]]          # addmm(bias, a, b): left operand first
            if op == "convolution" or op == "_convolution":
                if _named_args(node).get("transposed", False):
                    op = "conv_transpose"
                    rule = "conv_transpose"
            elif rule == "attention":
                extra = (bool(_named_args(node).get("is_causal", False)),)
            elif rule == "pool":
                k = _named_args(node).get("kernel_size", 1)
                nd = outs[0].dim() - 2 if outs[0].dim() > 2 else 1
                extra = (tuple(k) * (nd if len(tuple(k)) == 1 else 1)
                         if isinstance(k, (list, tuple)) else (int(k),) * nd,)
            elif rule == "einsum":
                extra = self._einsum(node)
            rec = [op, self._label(node), tuple(self.shape(a.meta["val"]) for a in ins),
                   tuple(a in self.const for a in ins), tuple(self.shape(v) for v in outs),
                   extra]
            if rule == "norm" and "batch_norm" in op and self._fold_bn(node, recs, where):
                # Kept for an eager pass (its own kernel there); compiled passes skip it.
                alias[node] = node.args[0]
                self.bn_records.append(len(recs))
            else:
                where[node] = len(recs)
            recs.append(rec)
            inputs.append(ins)

        def source(n):
            while n in alias:
                n = alias[n]
            return n

        def uses(n) -> int:
            return sum(uses(u) if u in alias else 1 for u in n.users)

        producers = [[where.get(source(a)) for a in ins] for ins in inputs]
        counts = [0] * len(recs)
        for node, i in where.items():
            counts[i] = uses(node)
        records = [tuple(r) for r in recs]
        self.fused = fuse_epilogues(records, TORCH_RULES, producers, counts)
        return records

    def _fold_bn(self, node, recs, where) -> bool:
        args = _named_args(node)
        src = node.args[0]
        if args.get("training", False) or src not in where or len(src.users) != 1:
            return False
        rec = recs[where[src]]
        if TORCH_RULES.get(rec[0]) != "conv":
            return False
        if len(rec[2]) < 3:  # the folded shift becomes the convolution's bias
            rec[2] = (*rec[2], (rec[2][1][0],))
            rec[3] = (*rec[3], True)
        self.bn_folded += 1
        return True

    def _einsum(self, node) -> tuple:
        eq = str(node.args[0]).replace(" ", "")
        operands = [a.meta["val"] for a in node.args[1]]
        terms = eq.split("->")[0].split(",")
        sizes: dict = {}
        for term, val in zip(terms, operands):
            dims = self.shape(val)
            if "..." in term:
                head, tail = term.split("...")
                n = len(dims) - len(head) - len(tail)
                letters = [*head, *(f"_{i}" for i in range(n)), *tail]
            else:
                letters = list(term)
            for c, d in zip(letters, dims):
                if c not in sizes or sizes[c] == 1:
                    sizes[c] = d
        return (tuple(sizes.values()), len(operands))

    def _label(self, node) -> str:
        """The submodule's path (``layer1.0.conv1``); the top module's class name."""
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack.values()))[0] if stack else ""
        return path or self.top


def from_torch(module, example_inputs, *, seq_axis=None, name: str | None = None,
               default_seq_len: int = 128) -> ImportedWorkload:
    """Import a ``torch.nn.Module`` as a workload ``Engine.solve`` accepts (extra ``torch``).

    Parameters
    ----------
    module : torch.nn.Module, on any device; build it under ``torch.device("meta")`` to import
        without allocating weights. Traced in eval mode, left as it was.
    example_inputs : torch.Tensor or tuple, the forward's positional arguments (tensors, or
        None/bool/int/float/str); only their shapes and dtypes are used. Axis 0 of every
        tensor is the batch.
    seq_axis : int, or one int-or-None per positional input, or None: the sequence axis, which
        takes the solve's ``seq_len`` (e.g. 1 for token ids ``[batch, seq]``). None: no
        sequence axis (the graph is fixed but for the batch).
    name : str, shown to users; default: the module's class name
    default_seq_len : int, the sequence length of a solve that gives none (with ``seq_axis``)

    Returns
    -------
    ImportedWorkload, with ``parameter_count`` (parameter elements, buffers excluded), the
    unmodeled operators and their node counts, and ``notes`` on what the import assumed.
    Raises ``SpecError`` if torch is missing or the module cannot be traced,
    ``ValidationError`` for a non-module or unusable example inputs.

    Examples
    --------
    >>> import torch, mlsysim                                                # doctest: +SKIP
    >>> m = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.GELU())  # doctest: +SKIP
    >>> w = mlsysim.Models.from_torch(m, torch.empty(1, 16, 512), seq_axis=1)  # doctest: +SKIP
    >>> mlsysim.Engine.solve(w, "A100", batch_size=8, seq_len=2048).latency  # doctest: +SKIP
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise ValidationError("module", f"must be a torch.nn.Module. Got "
                              f"{type(module).__name__} instead.", owner=OWNER)
    if isinstance(default_seq_len, bool) or not isinstance(default_seq_len, int) \
            or default_seq_len < 1:
        raise ValidationError("default_seq_len", f"must be a positive int. Got "
                              f"{default_seq_len!r} instead.", owner=OWNER)
    args = _normalize_inputs(torch, example_inputs)
    axes = _seq_axes(torch, args, seq_axis)
    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    device = first.device if first is not None else torch.device("cpu")
    trace_args, dyn, batch, seq_lens, notes = _trace_inputs(torch, args, axes, device)
    ep = _export(torch, module, trace_args, dyn)

    reader = _Reader(torch, ep, batch, seq_lens, type(module).__name__)
    nodes = reader.records()
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    label = name or type(module).__name__
    g = Graph(label, nodes, batch if reader.batch_fixed else "batch",
              frozenset({"seq"}) if reader.seq_syms else frozenset(), params + buffers,
              rules=TORCH_RULES, fused=reader.fused, folded=frozenset(reader.bn_records))

    notes.append("traced in eval mode by torch.export (fake tensors: no weight read or copied)")
    if reader.batch_fixed:
        notes.append(f"the module fixes the batch at {batch}: work divided by {batch} per "
                     "sample")
    if seq_lens and not reader.seq_syms:
        notes.append("the module fixes the sequence length: seq_len has no effect")
    max_context = None
    for s in reader.seq_syms:
        vr = ep.range_constraints.get(s)
        upper = getattr(vr, "upper", None)
        if upper is not None and upper.is_Integer:
            max_context = int(upper) if max_context is None else min(max_context, int(upper))
    if max_context is not None:
        notes.append(f"the trace holds for sequence lengths up to {max_context}")
    if reader.bn_folded:
        notes.append(f"{reader.bn_folded} eval-mode batch norm(s) folded into the preceding "
                     "convolution")
    if reader.folded:
        notes.append(f"{reader.folded} operator(s) on weights and constants only taken as "
                     "constant-folded (not costed)")
    if reader.routed:
        notes.append(f"{reader.routed} data-dependent expert token count(s) taken as the "
                     "balanced share of a top-k routing (tokens * k / experts)")
    if reader.unresolved:
        notes.append("data-dependent sizes counted as 1: "
                     + ", ".join(sorted(reader.unresolved)))
    cls = type(module)
    return ImportedWorkload(
        name=label, key=workload_key(label, "torch_module"), parameter_count=int(params),
        build=g.build, unfused_build=g.unfused_build, unmodeled=g.unmodeled(),
        seq_axis=bool(reader.seq_syms),
        default_seq_len=default_seq_len, unmodeled_bytes=g.unmodeled_bytes,
        source=f"torch.nn.Module {cls.__module__}.{cls.__qualname__}", notes=tuple(notes),
        max_context=max_context)
