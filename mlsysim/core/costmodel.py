"""The operator cost model: time of a lowered workload on one device.

For every operator (row of an :class:`~mlsysim.workloads.OperatorTable`) at batch B:

    t_op = max( F / (peak * eta_c(F)),  bytes / (BW * eta_mem),  t_kernel )

with F = flops_per_sample * B and bytes = weight_bytes * touched(B) + act_bytes * B. eta_c is
the size-dependent GEMM (or attention) efficiency and eta_mem the achieved fraction of the
bandwidth, both from :mod:`~mlsysim.core.calibration`. t_kernel is the host's per-kernel
launch and dispatch time: launches are asynchronous, so the device finishes a kernel every
max(kernel time, issue interval) and a kernel shorter than t_kernel is launch-bound. Operators
fused into another kernel's epilogue have no launch of their own.
Elementwise operators run on the vector units (the fp32 peak) rather than the tensor cores.
Attention runs in 16 bits when the rest computes in 8 bits or fewer: FlashAttention-2 takes
fp16/bf16 only, and FP8 serving and training stacks (vLLM, TensorRT-LLM's FP16 context
attention, Transformer Engine without its opt-in FP8 attention) keep attention in 16 bits; the
calibrated attention efficiency is a fraction of that 16-bit peak. GEMMs computing in 8 bits
or fewer run at ``Efficiency.quantized_gemm_speed`` of those terms on both roofs: the kernels
of a software generation (``zoo.QuantizedKernels``; 1 for the microbenchmarks' own). GEMMs with
weight-only quantized weights read them at ``Efficiency.weight_stream_speed`` of the memory
speed (the kernel dequantizes each weight: a measured GEMV ratio, 1 where none is).

Collective rows (``OpKind.COLLECTIVE``) are priced on the system's communication path by the
alpha-beta model of :mod:`~mlsysim.core.collectives`, ``t = min_k(a_k + b_k * bytes * B)`` over
the algorithms it may choose, and never on the memory or compute roofs. Overlap rule (two
streams, compute and communication): blocking collectives add to the critical path; those
marked ``comm_overlap`` hide behind the pass's compute time and only their excess shows::

    latency = t_compute + t_comm_blocking + max(0, t_comm_overlap - t_compute)

The roofline *regime* of an operator uses the ideal roofs (F/peak vs bytes/BW, i.e. its
arithmetic intensity against the ridge point); the workload's regime is the one whose operators
take most of the predicted time. ``B`` may be a scalar or a numpy array (a sweep): the same
code path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cache import ContentCache
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from ..workloads.operators import OperatorTable, OpKind
from .calibration import Efficiency

__all__ = ["Prepared", "prepare", "evaluate", "evaluate_parts", "Evaluation", "Stacked", "stack",
           "stacked_latencies"]


@dataclass(frozen=True)
class Prepared:
    """Per (workload table, device, precision) constants, computed once, so that evaluating a
    batch costs a dozen vector operations."""

    table: OperatorTable
    efficiency: Efficiency
    peak: float                 # dense peak at the precision, flop/s
    bandwidth: float            # spec bandwidth, byte/s
    g_pow: np.ndarray           # (flops_per_sample / F0)^alpha; huge where the ramp is moot
    alpha: float
    k_tc: np.ndarray            # flops_per_sample / (op peak * eta_max): seconds per sample
    neg_g_pow: np.ndarray       # -g_pow and -k_tc: 1 - exp(-x) is -expm1(-x), and keeping
    neg_k_tc: np.ndarray        # the signs in the constants saves two negations per call
    tm_w: np.ndarray            # weight_bytes / (BW * eta_mem)
    wb: np.ndarray              # weight bytes read per row (messages of collectives excluded)
    ab: np.ndarray              # activation bytes per sample per row (likewise)
    tm_a: np.ndarray            # act_bytes_per_sample / (BW * eta_mem)
    regime_batch: np.ndarray    # batch above which the op's intensity exceeds the ridge
    inv_peak_ideal: np.ndarray  # 1 / op peak
    max_compute_scale: np.ndarray  # 1 / eta_max: a band's efficiency scale never passes peak
    count: np.ndarray
    flops_per_batch: float      # sum over ops of flops_per_sample * count
    weight_bytes: float         # sum over ops of weight_bytes * count
    act_bytes_per_batch: float  # sum over ops of act_bytes_per_sample * count
    inv_bw_eff: float
    inv_bw: float
    launch_floor: np.ndarray    # t_kernel on launched rows, 0 on fused ones
    kernels: float
    comm_rows: np.ndarray | None = None   # indices of collective rows
    comm_a: np.ndarray | None = None      # (rows, algorithms) seconds per collective
    comm_b: np.ndarray | None = None      # (rows, algorithms) seconds per sample
    comm_overlap: np.ndarray | None = None
    quantized_slow: np.ndarray | float = 1.0   # per row: 1 / Efficiency.quantized_gemm_speed
    weight_slow: np.ndarray | float = 1.0      # per row: 1 / Efficiency.weight_stream_speed
    path: object | None = None            # the CommPath the collectives were priced on


_CACHE = ContentCache("prepared")


def _comm_terms(table: OperatorTable, path, algorithm: str):
    """Per collective row, the (a, b) candidates of every algorithm it may use, padded to a
    common count with copies of the first (so min over them is unchanged)."""
    from ..workloads.operators import COMM_KINDS
    from .collectives import collective_terms

    rows = np.flatnonzero(table.kind == OpKind.COLLECTIVE)
    cands = []
    for i in rows:
        n, span = int(table.comm_group[i]), int(table.comm_span[i])
        c = collective_terms(path, COMM_KINDS[table.comm_kind[i]], n, algorithm, span=span)
        cands.append(c)
    k = max(len(c) for c in cands)
    full = [c + [c[0]] * (k - len(c)) for c in cands]
    per_byte = np.array([[t[1] for t in c] for c in full])
    # A message may have a batch-independent part (gradients, gathered weights: in
    # weight_bytes) and a per-sample part (activations: in act_bytes_per_sample).
    a = np.array([[t[0] for t in c] for c in full]) + per_byte * table.weight_bytes[rows, None]
    b = per_byte * table.act_bytes_per_sample[rows, None]
    return rows, a, b


def prepare(table: OperatorTable, hardware: HardwareSpec, precision: str,
            eff: Efficiency, sparse: bool = False, path=None,
            algorithm: str = "auto") -> Prepared:
    """``sparse``: weight matmuls (GEMM, convolution) run at the device's published 2:4
    sparse peak; attention and vector work stay dense. ``path``: the system's
    :class:`~mlsysim.core.collectives.CommPath` for the table's collective rows (default: the
    chip's own scale-up interconnect)."""
    key = (table, hardware, precision, eff, sparse, path, algorithm)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    base = hardware._base
    peak, bw = base[f"peak_{precision}"], base["bandwidth"]
    gemm_peak = base[f"sparse_{precision}"] if sparse else peak
    vector = base.get("peak_fp32", peak)
    attn_peak = peak
    if BYTES_PER_ELEMENT[precision] < 2.0:       # module docstring: attention in 16 bits
        attn_peak = base.get("peak_fp16", base.get("peak_bf16", peak))
    kind, f = table.kind, table.flops_per_sample
    gemm = (kind == OpKind.GEMM) | (kind == OpKind.CONV)
    attn = kind == OpKind.ATTENTION
    tensor = gemm | attn
    op_peak = np.where(gemm, gemm_peak, np.where(attn, attn_peak, vector))
    eta_max = np.where(gemm, eff.gemm_max, np.where(attn, eff.attention_max, 1.0))
    # A software generation's 8-bit GEMM kernels (module docstring): both roofs of those rows.
    slow = 1.0
    if eff.quantized_gemm_speed != 1.0 and BYTES_PER_ELEMENT[precision] < 2.0:
        slow = np.where(gemm, 1.0 / eff.quantized_gemm_speed, 1.0)
    ramp = tensor & (f > 0)
    with np.errstate(divide="ignore"):
        g_pow = np.where(ramp, (f / (np.where(attn, attn_peak, peak) * eff.gemm_tau_s))
                         ** eff.gemm_alpha, 1e6)
    inv_bw_eff = 1.0 / (bw * eff.memory)
    # Compute regime iff f*B/op_peak > (wb + act*B)/bw, i.e. B * (f/op_peak - act/bw) > wb/bw.
    slope = f / op_peak - table.act_bytes_per_sample / bw
    with np.errstate(divide="ignore", invalid="ignore"):
        regime_batch = np.where(slope > 0, (table.weight_bytes / bw) / slope, np.inf)
    count = table.count
    comm = dict(comm_rows=None, comm_a=None, comm_b=None, comm_overlap=None, path=path)
    act_bytes, wb = table.act_bytes_per_sample, table.weight_bytes
    if table.has_comm:
        from .collectives import comm_path
        if path is None:
            path = comm_path(hardware)
        rows, a, b = _comm_terms(table, path, algorithm)
        comm = dict(comm_rows=rows, comm_a=a, comm_b=b,
                    comm_overlap=table.comm_overlap[rows], path=path)
        comm_row = kind == OpKind.COLLECTIVE        # their bytes are messages, not traffic
        act_bytes = np.where(comm_row, 0.0, act_bytes)
        wb = np.where(comm_row, 0.0, wb)
    # Weight-only quantized GEMMs (module docstring): their weight reads only.
    weight_slow = 1.0
    if eff.weight_stream_speed != 1.0:
        weight_slow = np.where(gemm, 1.0 / eff.weight_stream_speed, 1.0)
    k_tc = f / (op_peak * eta_max) * slow
    row_inv_bw_eff = inv_bw_eff * slow
    prepared = Prepared(
        table=table, efficiency=eff, peak=peak, bandwidth=bw, g_pow=g_pow,
        alpha=eff.gemm_alpha, k_tc=k_tc, neg_g_pow=-g_pow, neg_k_tc=-k_tc,
        tm_w=wb * row_inv_bw_eff * weight_slow, wb=wb, ab=act_bytes,
        tm_a=act_bytes * row_inv_bw_eff, regime_batch=regime_batch,
        inv_peak_ideal=1.0 / op_peak, max_compute_scale=1.0 / eta_max, count=count,
        flops_per_batch=float(f @ count), weight_bytes=float(wb @ count),
        act_bytes_per_batch=float(act_bytes @ count),
        inv_bw_eff=inv_bw_eff, inv_bw=1.0 / bw, quantized_slow=slow, weight_slow=weight_slow,
        launch_floor=table.launches * eff.kernel_overhead_s,
        kernels=float(count @ table.launches), **comm,
    )
    return _CACHE.put(key, prepared)


@dataclass(frozen=True)
class Evaluation:
    """Totals at one batch (floats) or a sweep of batches (arrays), SI units."""

    latency: np.ndarray | float
    compute_bound_time: np.ndarray | float   # time in ops whose regime is compute
    memory_bound_time: np.ndarray | float
    flops: np.ndarray | float
    bytes: np.ndarray | float
    comm_time: np.ndarray | float = 0.0      # collectives on the critical path


def _touched(p: Prepared, batch):
    """Fraction of a row's weights read at ``batch``: a routed expert is read only if one of
    the batch's tokens picks it, 1 - (1 - k/E)^tokens under uniform routing."""
    t = p.table
    moe = t.moe_experts > 0
    experts = np.where(moe, t.moe_experts, 1.0)
    picks = np.where(moe, t.tokens_per_sample, 0.0) * batch
    return np.where(moe, 1.0 - (1.0 - t.moe_active / experts) ** picks, 1.0)


def op_times(p: Prepared, batch, *, compute_scale: float = 1.0, memory_scale: float = 1.0):
    """Per-op compute time, memory time and compute-regime mask at ``batch`` (broadcasts)."""
    # In-place where possible: a sweep's arrays are (batches x operators) large.
    # t_c = k_tc B / (1 - exp(-g B^alpha)) = (-k_tc B) / expm1(-g B^alpha)
    x = p.neg_g_pow * batch ** p.alpha
    tc = np.divide(p.neg_k_tc * batch, np.expm1(x, out=x), out=x)
    if p.table.has_moe:
        weights = p.wb * _touched(p, batch)
        moved = weights + p.ab * batch
        tm = (weights * p.weight_slow + p.ab * batch) * p.inv_bw_eff * p.quantized_slow
        compute = p.table.flops_per_sample * batch * p.inv_peak_ideal > moved * p.inv_bw
    else:
        tm = p.tm_a * batch
        tm += p.tm_w
        compute = batch > p.regime_batch
    if compute_scale != 1.0:
        tc = tc / np.minimum(compute_scale, p.max_compute_scale)
    if memory_scale != 1.0:
        tm = tm / memory_scale
    return tc, tm, compute


def evaluate(p: Prepared, batch, *, compute_scale: float = 1.0, memory_scale: float = 1.0,
             overhead_scale: float = 1.0) -> Evaluation:
    """Totals at ``batch`` (an int, or an array of shape (n, 1) for a sweep). The scales
    multiply the efficiencies (the uncertainty band)."""
    tc, tm, compute = op_times(p, batch, compute_scale=compute_scale, memory_scale=memory_scale)
    floor = p.launch_floor if overhead_scale == 1.0 else p.launch_floor * overhead_scale
    t = np.maximum(tc, tm, out=tc)
    np.maximum(t, floor, out=t)
    total = t @ p.count
    comm_t = 0.0
    if p.comm_rows is not None:
        comm_t = comm_time(p, batch, total)
        total = total + comm_t
    t_compute = np.multiply(t, compute, out=tm) @ p.count
    b = batch if isinstance(batch, (int, float)) else batch[..., 0]
    if p.table.has_moe:
        moved = (p.wb * _touched(p, batch)) @ p.count + p.act_bytes_per_batch * b
    else:
        moved = p.weight_bytes + p.act_bytes_per_batch * b
    return Evaluation(
        latency=total,
        compute_bound_time=t_compute, memory_bound_time=total - comm_t - t_compute,
        flops=p.flops_per_batch * b, bytes=moved, comm_time=comm_t,
    )


def evaluate_parts(p: Prepared, batch) -> tuple:
    """(compute, blocking collectives, overlappable collectives) seconds of a pass at
    ``batch``, before the overlap rule: pieces a caller sums over tables (pipeline stages)
    and then combines with ``latency = C + B + max(0, O - C)``."""
    tc, tm, _ = op_times(p, batch)
    t = np.maximum(tc, tm, out=tc)
    np.maximum(t, p.launch_floor, out=t)
    compute = t @ p.count
    if p.comm_rows is None:
        zero = compute * 0.0
        return compute, zero, zero
    b = batch if isinstance(batch, (int, float)) else batch[..., 0][..., None, None]
    per = np.min(p.comm_a + p.comm_b * b, axis=-1) * p.count[p.comm_rows]
    ov = p.comm_overlap
    return compute, per[..., ~ov].sum(axis=-1), per[..., ov].sum(axis=-1)


def comm_time(p: Prepared, batch, compute_total):
    """Seconds the collectives add to a pass of ``batch`` whose compute takes
    ``compute_total`` (the overlap rule in the module docstring)."""
    b = batch if isinstance(batch, (int, float)) else batch[..., 0][..., None, None]
    per = np.min(p.comm_a + p.comm_b * b, axis=-1) * p.count[p.comm_rows]
    ov = p.comm_overlap
    blocking = per[..., ~ov].sum(axis=-1)
    if not ov.any():
        return blocking
    hidden = per[..., ov].sum(axis=-1)
    return blocking + np.maximum(hidden - compute_total, 0.0)


@dataclass(frozen=True)
class Stacked:
    """Several prepared passes (a serving plan's prefill and decode step) as one set of
    arrays, so that one pass over them prices all of them at a scalar batch: a single solve
    spends its time on numpy's per-call cost, not on the rows."""

    parts: tuple[Prepared, ...]
    alpha: float
    neg_g_pow: np.ndarray       # Prepared's, concatenated
    neg_k_tc: np.ndarray
    tm_a: np.ndarray
    tm_w: np.ndarray
    launch_floor: np.ndarray
    counts: np.ndarray          # (rows, parts): a part's counts on its rows, 0 elsewhere


def stack(parts: tuple[Prepared, ...]) -> Stacked | None:
    """The parts as one :class:`Stacked`, or None where they cannot share the arithmetic
    (MoE rows, whose bytes depend on the batch, or different GEMM ramp exponents)."""
    if any(p.table.has_moe or p.alpha != parts[0].alpha for p in parts):
        return None
    cat = np.concatenate
    counts = np.zeros((sum(len(p.count) for p in parts), len(parts)))
    row = 0
    for j, p in enumerate(parts):
        counts[row:row + len(p.count), j] = p.count
        row += len(p.count)
    return Stacked(parts=parts, alpha=parts[0].alpha,
                   neg_g_pow=cat([p.neg_g_pow for p in parts]),
                   neg_k_tc=cat([p.neg_k_tc for p in parts]),
                   tm_a=cat([p.tm_a for p in parts]), tm_w=cat([p.tm_w for p in parts]),
                   launch_floor=cat([p.launch_floor for p in parts]), counts=counts)


def stacked_latencies(s: Stacked, batch: int) -> list[tuple[float, float]]:
    """(latency, collectives' share of it) of every part at one scalar ``batch``: the
    latency and comm_time of :func:`evaluate`, by the same equations."""
    # t_c = k_tc B / (1 - exp(-g B^alpha)) = (-k_tc B) / expm1(-g B^alpha)
    tc = s.neg_k_tc * batch / np.expm1(s.neg_g_pow * batch ** s.alpha)
    t = np.maximum(tc, s.tm_a * batch + s.tm_w, out=tc)
    np.maximum(t, s.launch_floor, out=t)
    out = []
    for p, total in zip(s.parts, (t @ s.counts).tolist()):
        comm_t = 0.0 if p.comm_rows is None else float(comm_time(p, batch, total))
        out.append((total + comm_t, comm_t))
    return out
