"""Training work as operator tables: the backward pass, recomputation, the optimizer update,
and one pipeline stage's share of a model.

From a lowered forward pass (per sample, on one tensor-parallel device), ``training_table``
adds, row by row:

==================  =====================================================================
forward row         backward rows (Role)
==================  =====================================================================
GEMM / conv         DGRAD: same flops, reads the weights and the output gradient, writes
                    the input gradient; WGRAD: same flops, reads the input activation and
                    the output gradient, accumulates the weight gradient (read + write at the
                    gradient precision) [the 2x-forward backward of Kaplan et al. 2020]
attention           DGRAD: 2.5x the forward flops (FlashAttention-2's backward runs five
                    matmuls to the forward's two, recomputing the scores; Dao 2023), twice
                    the bytes
elementwise, norm,  DGRAD: the forward flops, twice the bytes (read input and gradient,
embedding, scan     write gradient)
collective          the same collective again (Megatron's TP all-reduces come in conjugate
                    pairs: two per layer forward, two backward; pipeline hand-offs send
                    gradients back)
==================  =====================================================================

Recomputation repeats forward rows as RECOMPUTE: ``"full"`` every row of the layer stack,
``"selective"`` the attention rows only (Korthikanti et al. 2022). The optimizer update is one
OPTIMIZER row per step moving ``bytes_per_param`` per local parameter (batch-independent, so
in ``weight_bytes``). ``stage_table`` keeps a pipeline stage's rows: the layer stack scaled by
the stage's share of the layers (fractional counts stand for an average mix of layer types),
the embedding on the first stage, the head on the last, one hand-off per boundary.
Left out: loss kernels, gradient clipping, mixed-precision casts beyond the optimizer row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError
from .operators import OperatorTable, OpKind, Role, Section

__all__ = ["ATTENTION_BACKWARD", "Sharding", "training_table", "stage_table", "stage_layers",
           "with_collectives", "scale_rows", "section_tables", "RECOMPUTATION"]

RECOMPUTATION = ("none", "selective", "full")
ATTENTION_BACKWARD = 2.5      # FlashAttention-2 backward / forward flops (Dao 2023, sec. 3)


@dataclass(frozen=True)
class Sharding:
    """How one replica of a model is split: tensor (``tp``), pipeline (``pp``), context
    (``cp``) and expert (``ep``) parallelism, with ``dp`` data-parallel replicas. The product
    ``tp * pp * cp * dp`` is the number of devices; experts are sharded over ``ep`` of the
    ``dp * cp`` ranks (Megatron-style expert parallelism inside data parallelism)."""

    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    dp: int = 1

    def __post_init__(self):
        for name in ("tp", "pp", "cp", "ep", "dp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(f"{name}_size", f"must be a positive whole number. Got "
                                      f"{v!r} instead.", owner="Sharding")
        if (self.dp * self.cp) % self.ep:
            raise ValidationError("ep_size", f"must divide dp_size x cp_size (={self.dp} x "
                                  f"{self.cp}). Got {self.ep} instead.", owner="Sharding")

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.cp * self.dp


def _table(rows: dict[str, np.ndarray], names: tuple[str, ...], like: OperatorTable,
           weight_total: float) -> OperatorTable:
    return OperatorTable(
        names=names, kind=rows["kind"], count=rows["count"],
        flops_per_sample=rows["flops"], weight_bytes=rows["weight"],
        act_bytes_per_sample=rows["act"], moe_experts=rows["experts"],
        moe_active=rows["active"], tokens_per_sample=rows["tokens"], launches=rows["launches"],
        weight_total_bytes=weight_total, state_bytes_per_sample=0.0,
        act_peak_bytes_per_sample=like.act_peak_bytes_per_sample,
        has_moe=bool((rows["experts"] > 0).any()), comm_kind=rows["comm_kind"],
        comm_group=rows["group"], comm_span=rows["span"], comm_overlap=rows["overlap"],
        has_comm=bool((rows["kind"] == OpKind.COLLECTIVE).any()), role=rows["role"],
        section=rows["section"])


def _columns(t: OperatorTable) -> dict[str, np.ndarray]:
    return {"kind": t.kind, "count": t.count, "flops": t.flops_per_sample,
            "weight": t.weight_bytes, "act": t.act_bytes_per_sample, "experts": t.moe_experts,
            "active": t.moe_active, "tokens": t.tokens_per_sample, "launches": t.launches,
            "comm_kind": t.comm_kind, "group": t.comm_group, "span": t.comm_span,
            "overlap": t.comm_overlap, "role": t.role, "section": t.section}


def _take(cols: dict[str, np.ndarray], idx: np.ndarray, **change) -> dict[str, np.ndarray]:
    out = {k: v[idx].copy() for k, v in cols.items()}
    for k, v in change.items():
        out[k] = np.broadcast_to(v, out[k].shape).copy() if np.ndim(v) == 0 else v
    return out


def training_table(forward: OperatorTable, *, recompute: str = "none",
                   grad_ratio: float = 1.0, optimizer_bytes_per_param: float = 0.0,
                   params: float = 0.0, include_forward: bool = True,
                   attention_backward: float = ATTENTION_BACKWARD) -> OperatorTable:
    """A training step's rows for one micro-batch (module docstring), per sample.

    ``grad_ratio``: bytes of a gradient element / bytes of a weight element. The optimizer row
    (``params`` local parameters, ``optimizer_bytes_per_param`` moved each; its few flops per
    parameter are left out) is added when ``params > 0``; callers that run many micro-batches
    per step add it once. ``include_forward=False`` returns the backward
    (and recomputation) rows only.
    """
    if recompute not in RECOMPUTATION:
        raise ValidationError("activation_recomputation", f"must be one of "
                              f"{', '.join(RECOMPUTATION)}. Got {recompute!r} instead.")
    cols = _columns(forward)
    kind, n = forward.kind, len(forward)
    names = list(forward.names)
    parts, part_names = [], []
    if include_forward:
        parts.append(cols)
        part_names += names
    all_rows = np.arange(n)
    gemm = (kind == OpKind.GEMM) | (kind == OpKind.CONV)
    attn = kind == OpKind.ATTENTION
    comm = kind == OpKind.COLLECTIVE
    # DGRAD of everything: GEMMs as in the forward; attention 2.5x flops, 2x bytes; vector
    # work 2x bytes; collectives repeated.
    scale_f = np.where(attn, attention_backward, 1.0)
    scale_a = np.where(gemm | comm, 1.0, 2.0)
    parts.append(_take(cols, all_rows, flops=cols["flops"] * scale_f,
                       act=cols["act"] * scale_a, role=int(Role.DGRAD)))
    part_names += [f"{x}.dgrad" for x in names]
    wg = np.flatnonzero(gemm)
    if wg.size:
        parts.append(_take(cols, wg, weight=cols["weight"][wg] * 2.0 * grad_ratio,
                           role=int(Role.WGRAD)))
        part_names += [f"{names[i]}.wgrad" for i in wg]
    if recompute != "none":
        stack = forward.section == Section.STACK
        # Selective recomputation re-runs the attention core: QK^T, softmax, dropout, the
        # product with V (Korthikanti et al. 2022, sec. 5).
        core = attn | np.array([n.endswith(("attention_softmax", "attention_dropout"))
                                for n in names])
        pick = stack & ~comm if recompute == "full" else stack & core
        # Full recomputation also repeats the layers' TP collectives.
        if recompute == "full":
            pick = pick | (stack & comm & (forward.comm_kind == 0))
        rc = np.flatnonzero(pick)
        if rc.size:
            parts.append(_take(cols, rc, role=int(Role.RECOMPUTE)))
            part_names += [f"{names[i]}.recompute" for i in rc]
    if params > 0:
        one = {k: np.zeros(1, dtype=v.dtype) for k, v in cols.items()}
        one.update(kind=np.array([int(OpKind.ELEMENTWISE)]), count=np.array([1.0]),
                   flops=np.array([0.0]), weight=np.array([params * optimizer_bytes_per_param]),
                   launches=np.array([1.0]), comm_kind=np.array([-1]),
                   role=np.array([int(Role.OPTIMIZER)]), section=np.array([int(Section.STACK)]),
                   overlap=np.array([False]))
        parts.append(one)
        part_names.append("optimizer.update")
    rows = {k: np.concatenate([p[k] for p in parts]) for k in cols}
    return _table(rows, tuple(part_names), forward, forward.weight_total_bytes)


def stage_layers(layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage: as even as possible, the remainder on the first stages."""
    return [layers // pp + (1 if s < layers % pp else 0) for s in range(pp)]


def stage_table(table: OperatorTable, stage: int, pp: int, layers: int) -> OperatorTable:
    """Stage ``stage`` (0-based) of ``pp``: its share of the layer stack, the pre-stack rows on
    the first stage, the post-stack rows on the last, one hand-off per neighbouring stage."""
    if pp == 1:
        return table
    share = stage_layers(layers, pp)[stage] / layers
    cols = _columns(table)
    count = cols["count"].copy()
    sec = table.section
    p2p = (table.kind == OpKind.COLLECTIVE) & (table.comm_kind == 5)
    count = np.where(sec == Section.STACK, count * share, count)
    count = np.where(sec == Section.PRE, count * (stage == 0), count)
    count = np.where(sec == Section.POST, count * (stage == pp - 1), count)
    # Hand-offs: the forward row sends to the next stage (none from the last); its backward
    # copy sends gradients to the previous one (none from the first).
    fwd = table.role == Role.FORWARD
    count = np.where(p2p & fwd, float(stage < pp - 1), count)
    count = np.where(p2p & ~fwd, float(stage > 0), count)
    keep = np.flatnonzero(count > 0)
    cols["count"] = count
    rows = {k: v[keep] for k, v in cols.items()}
    weights = table.weight_bytes * table.count
    stage_weights = (table.weight_bytes * count)[table.role == Role.FORWARD].sum()
    total = weights[table.role == Role.FORWARD].sum()
    wt = table.weight_total_bytes * (stage_weights / total if total > 0 else 1.0 / pp)
    return _table(rows, tuple(table.names[i] for i in keep), table, wt)


def with_collectives(table: OperatorTable, rows: list[dict]) -> OperatorTable:
    """``table`` plus collective rows, each a dict of ``name``, ``kind`` (a COMM_KINDS name),
    ``group``, ``count``, and ``message_bytes`` (per sample) and/or ``fixed_bytes`` (per pass,
    batch-independent), optional ``span``, ``overlap``, ``section``."""
    from .operators import COMM_KINDS
    rows = [r for r in rows if r["group"] > 1 and r["count"] > 0]
    if not rows:
        return table
    cols = _columns(table)
    add = {
        "kind": np.full(len(rows), int(OpKind.COLLECTIVE)),
        "count": np.array([float(r["count"]) for r in rows]),
        "flops": np.zeros(len(rows)),
        "weight": np.array([float(r.get("fixed_bytes", 0.0)) for r in rows]),
        "act": np.array([float(r.get("message_bytes", 0.0)) for r in rows]),
        "experts": np.zeros(len(rows)), "active": np.zeros(len(rows)),
        "tokens": np.zeros(len(rows)), "launches": np.zeros(len(rows)),
        "comm_kind": np.array([COMM_KINDS.index(r["kind"]) for r in rows]),
        "group": np.array([float(r["group"]) for r in rows]),
        "span": np.array([float(r.get("span", r["group"])) for r in rows]),
        "overlap": np.array([bool(r.get("overlap", False)) for r in rows]),
        "role": np.array([int(r.get("role", Role.FORWARD)) for r in rows]),
        "section": np.array([int(r.get("section", Section.STACK)) for r in rows]),
    }
    merged = {k: np.concatenate([cols[k], add[k].astype(cols[k].dtype)]) for k in cols}
    return _table(merged, table.names + tuple(r["name"] for r in rows), table,
                  table.weight_total_bytes)


def scale_rows(table: OperatorTable, mask: np.ndarray, *, flops: float = 1.0,
               act: float = 1.0, weight: float = 1.0, drop_moe: bool = False) -> OperatorTable:
    """``table`` with the rows in ``mask`` scaled (a sharding or routing rule applied after
    lowering); ``drop_moe`` treats them as dense (every local expert is read)."""
    cols = _columns(table)
    cols["flops"] = np.where(mask, cols["flops"] * flops, cols["flops"])
    cols["act"] = np.where(mask, cols["act"] * act, cols["act"])
    cols["weight"] = np.where(mask, cols["weight"] * weight, cols["weight"])
    if drop_moe:
        cols["experts"] = np.where(mask, 0.0, cols["experts"])
    return _table(cols, table.names, table, table.weight_total_bytes)


def section_tables(table: OperatorTable) -> dict[str, OperatorTable | None]:
    """The table split into the parts a pipeline stage is made of: ``pre`` (first stage),
    ``stack`` (split over stages), ``post`` (last stage), and the hand-offs ``send`` (forward
    role: to the next stage) and ``recv_grad`` (backward role: to the previous one), each at
    count 1 per micro-batch. Stage s is ``[s = 0] pre + share(s) stack + [s = p-1] post`` plus
    its hand-offs: the same rows ``stage_table`` keeps, as sums a caller can broadcast over
    many pipeline depths at once. Empty parts are None."""
    p2p = (table.kind == OpKind.COLLECTIVE) & (table.comm_kind == 5)
    fwd = table.role == Role.FORWARD
    masks = {"pre": (table.section == Section.PRE) & ~p2p,
             "stack": (table.section == Section.STACK) & ~p2p,
             "post": (table.section == Section.POST) & ~p2p,
             "send": p2p & fwd, "recv_grad": p2p & ~fwd}
    cols = _columns(table)
    out: dict[str, OperatorTable | None] = {}
    for name, mask in masks.items():
        idx = np.flatnonzero(mask)
        if not idx.size:
            out[name] = None
            continue
        rows = {k: v[idx] for k, v in cols.items()}
        if name in ("send", "recv_grad"):
            rows["count"] = np.ones(idx.size)
        out[name] = _table(rows, tuple(table.names[i] for i in idx), table,
                           table.weight_total_bytes)
    return out
