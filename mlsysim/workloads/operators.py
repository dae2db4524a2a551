"""Operators: what a workload lowers to, as columns of numpy arrays (one row per kernel type).

Every quantity is linear in the batch size, which lets one lowering serve every batch: a row's
work at batch ``B`` is ``flops = flops_per_sample * B`` and
``bytes = weight_bytes * touched(B) + act_bytes_per_sample * B``. ``touched`` is 1 except for
mixture-of-experts expert weights, of which a batch reads only the experts its tokens pick.
``count`` is how many identical kernels the row stands for (layers x repeats x runs).

Communication is work like any other: a ``COLLECTIVE`` row carries its message (bytes per
device per sample, in ``act_bytes_per_sample``), the collective kind, the size of the group
it runs over (``comm_group``) and the span of devices that group is placed in
(``comm_span``: a pipeline hand-off between two stages of a tp x pp group spans tp x pp), so
the cost model can tell which fabric it crosses. ``comm_overlap`` marks collectives that may
run on the communication stream while compute continues (gradient all-reduce); blocking ones
(tensor-parallel all-reduce) sit on the critical path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = ["OpKind", "OperatorTable", "OperatorBuilder", "COMM_KINDS", "Role", "Section"]

# Collective kinds a COLLECTIVE row may carry; codes index this tuple.
COMM_KINDS = ("allreduce", "allgather", "reducescatter", "alltoall", "broadcast", "p2p")


class Role(IntEnum):
    """What a row does in a training step (inference passes are all FORWARD)."""

    FORWARD = 0
    DGRAD = 1         # backward: gradient of the input (and every non-GEMM backward)
    WGRAD = 2         # backward: gradient of the weights
    RECOMPUTE = 3     # forward work repeated in the backward (activation recomputation)
    OPTIMIZER = 4     # the weight update


class Section(IntEnum):
    """Where a row sits in the model, so a pipeline stage can take its share."""

    PRE = 0           # before the repeated layers (embedding, prefix layers): first stage
    STACK = 1         # the repeated layers (and their collectives): split over stages
    POST = 2          # after them (final norm, LM head, loss): last stage


class OpKind(IntEnum):
    GEMM = 0          # dense matrix multiply (linear layers, 1x1 convs as GEMM)
    CONV = 1          # convolution (implicit GEMM)
    ATTENTION = 2     # fused score + softmax + value product (FlashAttention-style)
    ELEMENTWISE = 3   # adds, activations, pooling, rotary, resampling
    NORM = 4          # layer/RMS/group norm
    EMBEDDING = 5     # table gathers
    SCAN = 6          # state-space selective scan
    COLLECTIVE = 7    # communication between devices (all-reduce, all-gather, send/recv, ...)

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, eq=False)
class OperatorTable:
    names: tuple[str, ...]
    kind: np.ndarray                 # OpKind codes
    count: np.ndarray                # identical kernels per sample pass
    flops_per_sample: np.ndarray     # flop per kernel per sample
    weight_bytes: np.ndarray         # bytes read once per kernel, whatever the batch
    act_bytes_per_sample: np.ndarray  # bytes per kernel per sample (activations, KV cache)
    moe_experts: np.ndarray          # >0 on routed-expert rows: experts to choose from
    moe_active: np.ndarray           # experts each token picks
    tokens_per_sample: np.ndarray    # tokens routed per sample (MoE rows)
    launches: np.ndarray             # kernel launches per row instance: 0 if fused into another
    weight_total_bytes: float        # resident weights (all experts), for the footprint
    state_bytes_per_sample: float    # KV cache or SSM state held per sample
    act_peak_bytes_per_sample: float  # largest live activation set of one kernel, per sample
    has_moe: bool = field(default=False)
    comm_kind: np.ndarray | None = None   # index into COMM_KINDS; -1 on compute rows
    comm_group: np.ndarray | None = None  # devices in the collective's group
    comm_span: np.ndarray | None = None   # devices the group is placed in (fabric choice)
    comm_overlap: np.ndarray | None = None  # 1: may overlap compute; 0: blocking
    has_comm: bool = field(default=False)
    role: np.ndarray | None = None          # Role codes
    section: np.ndarray | None = None       # Section codes
    # What the table was lowered from (model spec and lowering arguments): its identity for
    # caches. A table built by hand has none and is only equal to itself.
    source: tuple | None = field(default=None, repr=False)

    def __hash__(self) -> int:
        return hash(self.source) if self.source is not None else id(self)

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return (isinstance(other, OperatorTable) and self.source is not None
                and self.source == other.source)

    def with_source(self, source: tuple) -> OperatorTable:
        """This table, labelled with what it was lowered from."""
        object.__setattr__(self, "source", source)
        return self

    def __len__(self) -> int:
        return len(self.names)


class OperatorBuilder:
    """Collects rows, then freezes them into an :class:`OperatorTable`."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.section = Section.PRE    # set by the lowering as it walks the model

    def add(self, name: str, kind: OpKind, *, flops: float, weight_bytes: float = 0.0,
            act_bytes: float = 0.0, count: float = 1, moe: tuple[int, int, float] | None = None,
            fused: bool = False):
        """``fused``: the work runs in another kernel's epilogue (no launch of its own)."""
        if count <= 0:
            return
        experts, active, tokens = moe or (0, 0, 0.0)
        self.rows.append((name, int(kind), float(count), float(flops), float(weight_bytes),
                          float(act_bytes), experts, active, tokens, 0.0 if fused else 1.0,
                          -1, 0, 0, 0, int(Role.FORWARD), int(self.section)))

    def collective(self, name: str, kind: str, *, message_bytes: float, group: int,
                   count: float = 1, span: int | None = None, overlap: bool = False):
        """A collective of ``kind`` over ``group`` devices moving ``message_bytes`` per device
        per sample (nccl-tests convention), ``count`` times per pass. Groups of one are free
        and add no row."""
        if count <= 0 or group <= 1:
            return
        self.rows.append((name, int(OpKind.COLLECTIVE), float(count), 0.0, 0.0,
                          float(message_bytes), 0, 0, 0.0, 0.0, COMM_KINDS.index(kind),
                          int(group), int(span or group), int(overlap), int(Role.FORWARD),
                          int(self.section)))

    def build(self, *, weight_total_bytes: float, state_bytes_per_sample: float = 0.0,
              act_peak_bytes_per_sample: float | None = None) -> OperatorTable:
        cols = list(zip(*self.rows))
        names = tuple(cols[0])
        arr = [np.asarray(c, dtype=np.float64) for c in cols[2:]]
        act = arr[3]
        kind = np.asarray(cols[1], dtype=np.int64)
        comm = kind == OpKind.COLLECTIVE
        peak = float(np.where(comm, 0.0, act).max()) if act_peak_bytes_per_sample is None \
            else act_peak_bytes_per_sample
        experts = arr[4]
        return OperatorTable(
            names=names, kind=kind, count=arr[0],
            flops_per_sample=arr[1], weight_bytes=arr[2], act_bytes_per_sample=act,
            moe_experts=experts, moe_active=arr[5], tokens_per_sample=arr[6], launches=arr[7],
            weight_total_bytes=float(weight_total_bytes),
            state_bytes_per_sample=float(state_bytes_per_sample),
            act_peak_bytes_per_sample=peak, has_moe=bool((experts > 0).any()),
            comm_kind=np.asarray(cols[10], dtype=np.int64), comm_group=arr[9],
            comm_span=arr[10], comm_overlap=arr[11].astype(bool), has_comm=bool(comm.any()),
            role=np.asarray(cols[14], dtype=np.int64),
            section=np.asarray(cols[15], dtype=np.int64),
        )
