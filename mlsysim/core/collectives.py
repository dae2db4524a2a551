"""Collective communication time on a system: latency-bandwidth (alpha-beta) models per
algorithm, with the terms fitted per fabric to published NCCL/RCCL bus-bandwidth measurements.

Model [Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan 2009]. On a fabric whose endpoint
moves ``B`` byte/s each way, a collective of ``kind`` on a buffer of ``S`` bytes over ``n``
accelerators by ``algorithm`` takes::

    t(S, n) = steps(n) * alpha + factor(n) * S / (eta * B)

=========================  ==============  ================  ===============================
all-reduce algorithm       steps(n)        factor(n)         eta
=========================  ==============  ================  ===============================
nccl (fitted default)      2(n-1)          2(n-1)/n          eta_bus (fitted; > 1 with NVLS)
ring                       2(n-1)          2(n-1)/n          eta_ring (measured ring-only, else
                                                             min(eta_bus, 1))
tree (double binary)       2 ceil(log2 n)  2                 min(eta_bus, 1)
one_shot (small messages)  1               n-1               min(eta_bus, 1)
two_shot                   2               2(n-1)/n          min(eta_bus, 1)
in_network (NVLS, SHARP)   2               1                 eta_bus * 2(m-1)/m
=========================  ==============  ================  ===============================

Other kinds use ring schedules: reduce-scatter, all-gather and all-to-all ``n-1`` steps and
``(n-1)/n``; broadcast ``n-1`` and 1; send/recv (p2p) 1 and 1 (eta_p2p where a one-way copy
was measured). ``S`` follows nccl-tests: the whole buffer on one device. One-shot reads every
peer's buffer (TensorRT-LLM's and vLLM's custom all-reduce for small messages), two-shot
is a reduce-scatter plus an all-gather by direct writes, tree is NCCL's double binary tree
[Sanders, Speck & Traeff 2009], in_network reduces in the switch: each device sends ``S`` up
and receives ``S`` down. ``m`` is the device count of the fit's rows (8), so in-network and
the fitted default agree in bandwidth there.

``algorithm="auto"`` is what NCCL measured: the fitted default within the fitted group size;
beyond it (NCCL switches to trees and NVLS at scale) the fastest of the fitted default, tree
and, where the fabric reduces in the switch, in_network.

Across nodes. When the group outgrows the scale-up domain of ``L`` accelerators, it spans
``N = ceil(n / L)`` domains joined by the scale-out fabric at ``B_out`` per accelerator (NICs x
port bandwidth / accelerators per node, divided by the fleet's oversubscription ratio):

    hierarchical all-reduce = reduce-scatter within L + all-reduce of S/L across N (ring, or
                              in-network with SHARP) + all-gather within L

and ``auto`` takes the faster of that and a flat ring bottlenecked by ``B_out``. All-gather and
reduce-scatter have the same two levels (NCCL's rings enter and leave each node once per
channel, its channels spread over the node's NICs, so each port carries 1/L of the off-node
traffic):

    all-gather = all-gather of S/L across N (each member's own port) + all-gather within L
               = (N-1) alpha_out + (L-1) alpha_up + S [(N-1)/N / (L eta_out B_out)
                                                      + (L-1)/L / (eta_up B_up)]

(reduce-scatter the same in reverse), and ``auto`` takes the faster of that and the flat ring.
Broadcast crosses nodes as a flat ring limited by ``B_out``; all-to-all sends the (n-L)/n share
of its buffer off-node. A collective over one device, or of zero bytes, takes exactly 0 s.

Fit, scale-up (``fit_collectives``). nccl-tests reports busbw = algbw * 2(n-1)/n, so a row
(``S``, ``n``, busbw) was measured at ``t = 2(n-1)/n * S / busbw``. Rows are pooled by the fabric
their device sits on (``interconnect.fabric``; a chip without one is its own group). Per fabric,
alpha and ``c = 1/eta_bus`` minimize the least-squares error of time, each row's error divided by
its measured time (the rows span 32 KiB to 16 GiB, six orders of magnitude in time). Constraints
``alpha >= 0`` and ``0 < eta_bus <= ETA_BUS_MAX`` (a bounded two-variable least-squares problem,
solved exactly on the interior and the edges). A group whose rows hold a single size, or no
size up to ``LATENCY_ROW_MAX`` (256 KiB, the latency-dominated regime), gets the median alpha of
the other groups and a fitted eta. Rows run with NCCL_NVLS_ENABLE=0 are ring-only: they give
``eta_ring`` (median busbw / B), not the default fit. ``ETA_BUS_MAX = 2``: NVLS moves S per
device each way instead of 2(n-1)/n * S, at most a 2x gain.

Fit, scale-out (``fit_scale_out``). The multi-node rows are peaks over a sweep without their
message size, so only bandwidth is identifiable: per row, the scale-out ``eta`` for which the
hierarchical model's large-message busbw equals the measurement (capped at 1, where the row
is faster than the model explains), median per scale-out fabric. Scale-out alpha is not
identifiable from them: it is the fitted scale-up median or the fabric's published latency,
whichever is larger, and flagged ``estimated``. Which system a row ran on is data
(``validation/microbench/collective_systems.yaml``).

A fabric without rows gets the medians and is flagged ``estimated``, as is the ``host`` (PCIe)
path of a chip. Limits: one latency and one bandwidth per fabric (A100 busbw at 16-128 MiB sits
well below its asymptote, where the fit is optimistic by up to ~45%); no congestion, adaptive
routing or topology-aware ring placement beyond the oversubscription ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median

import numpy as np

from ..errors import InfeasibleConfigError, UnknownNameError, ValidationError
from ..specs.hardware import HardwareSpec
from ..specs.system import Fleet, NetworkFabric, Node, fabric_from_interconnect
from .calibration import MICROBENCH_CSV, _quantiles, load_microbench
from .validate import positive_float, positive_int

__all__ = [
    "ALGORITHMS",
    "COLLECTIVES",
    "ETA_BUS_MAX",
    "LATENCY_ROW_MAX",
    "FABRICS",
    "CollectiveCalibration",
    "CollectiveEfficiency",
    "CommPath",
    "collective_calibration",
    "collective_efficiency",
    "collective_terms",
    "collective_time",
    "comm_path",
    "resolve_system",
    "system_spec",
    "fit_collectives",
    "fit_scale_out",
    "fit_report",
]

_OWNER = "collective_time"
MICROBENCH_SYSTEMS = MICROBENCH_CSV.with_name("collective_systems.yaml")
ETA_BUS_MAX = 2.0
FABRICS = ("scale_up", "host")
ALGORITHMS = ("auto", "nccl", "ring", "tree", "one_shot", "two_shot", "in_network",
              "hierarchical")
# A latency is read only where it dominates: a fabric whose smallest all-reduce row is larger
# than this borrows the median alpha. NCCL and RCCL switch protocol (LL, LL128, Simple) and
# channel count with size, so a line through >= 1 MiB rows does not extrapolate to the few-kB
# messages of tensor-parallel decode (MI300X's RCCL rows start at 1 MiB: alone they put 77 us
# on an 8-GPU all-reduce of any size, twice H100's measured 34 us at 32 KiB).
LATENCY_ROW_MAX = 256 * 1024

# kind -> (latency steps, bandwidth factor) of the ring schedules; see the module docstring.
COLLECTIVES: dict[str, tuple] = {
    "allreduce": (lambda n: 2 * (n - 1), lambda n: 2 * (n - 1) / n),
    "reducescatter": (lambda n: n - 1, lambda n: (n - 1) / n),
    "allgather": (lambda n: n - 1, lambda n: (n - 1) / n),
    "alltoall": (lambda n: n - 1, lambda n: (n - 1) / n),
    "broadcast": (lambda n: n - 1, lambda n: 1.0),
    "p2p": (lambda n: 1, lambda n: 1.0),
}


@dataclass(frozen=True)
class CollectiveEfficiency:
    """Fitted collective terms of one fabric.

    ``alpha_s``: per-step latency (s); a ring all-reduce over n devices pays ``2(n-1) * alpha_s``.
    ``eta_bus``: achieved all-reduce bus bandwidth / per-direction link spec under NCCL's default
    algorithm (> 1 with in-switch reduction). ``eta_ring``: the same with rings only, where
    measured. ``estimated``: cross-fabric medians, not this fabric's own fit. ``rows``: ids of
    the microbenchmark rows behind the values; ``fit_devices``: their largest group size.
    """

    alpha_s: float
    eta_bus: float
    estimated: bool
    rows: tuple[str, ...] = ()
    eta_p2p: float | None = None          # measured unidirectional copy / link spec, if any
    spread: tuple[float, float] = (1.0, 1.0)  # 10th/90th pct of measured/fitted busbw
    eta_ring: float | None = None
    fit_devices: int = 8

    def __post_init__(self):
        if not (math.isfinite(self.alpha_s) and self.alpha_s >= 0):
            raise ValidationError("alpha_s", f"must be a finite non-negative number of seconds. "
                                  f"Got {self.alpha_s!r} instead.", owner="CollectiveEfficiency")
        if not (math.isfinite(self.eta_bus) and self.eta_bus > 0):
            raise ValidationError("eta_bus", f"must be a finite positive fraction. "
                                  f"Got {self.eta_bus!r} instead.", owner="CollectiveEfficiency")

    @property
    def in_switch_reduction(self) -> bool:
        """Measured all-reduce busbw beats the link spec (NVLS/SHARP reduction in the switch)."""
        return self.eta_bus > 1.0

    @property
    def eta_link(self) -> float:
        """Fraction of the link a schedule that moves real data achieves."""
        return min(self.eta_bus, 1.0)

    def eta(self, kind: str) -> float:
        """The fraction of the link bandwidth a collective of ``kind`` achieves (default
        algorithm)."""
        if kind == "allreduce":
            return self.eta_bus
        if kind == "p2p" and self.eta_p2p is not None:
            return self.eta_p2p
        return self.eta_link

    def latency_s(self, kind: str, n_devices: int) -> float:
        """The size-independent part alpha(n) of a ring collective over ``n_devices``."""
        return 0.0 if n_devices <= 1 else COLLECTIVES[kind][0](n_devices) * self.alpha_s


@dataclass(frozen=True)
class CollectiveCalibration:
    fabrics: dict[str, CollectiveEfficiency]   # own fits (estimated=False), by fabric key
    defaults: CollectiveEfficiency             # median alpha and eta_bus (estimated=True)
    residuals: dict[str, float]                # row id -> measured / fitted bandwidth
    skipped: dict[str, str] = field(default_factory=dict)  # row id -> why it is not used
    spread: tuple[float, float] = (1.0, 1.0)   # 10th/90th percentiles of all residuals
    scale_out: dict[str, CollectiveEfficiency] = field(default_factory=dict)
    scale_out_defaults: CollectiveEfficiency | None = None

    def efficiency(self, fabric_key: str | None, scope: str = "scale_up") -> CollectiveEfficiency:
        """A fabric's own fit, or the estimated defaults."""
        if scope == "scale_out":
            return self.scale_out.get(fabric_key, self.scale_out_defaults or self.defaults)
        if scope != "scale_up":      # the fits describe the fabric they were measured on
            return self.defaults
        return self.fabrics.get(fabric_key, self.defaults)


def _ring_factor(n: float) -> float:
    return 2 * (n - 1) / n


def _solve(x1: np.ndarray, x2: np.ndarray, a_fixed: float | None = None) -> tuple[float, float]:
    """min sum (a*x1 + c*x2 - 1)^2 over a >= 0, c in [1/ETA_BUS_MAX, inf) (rows pre-divided by
    their measured time). Convex quadratic: the optimum is the interior stationary point if
    feasible, else the best point on an edge of the box."""
    c_min = 1.0 / ETA_BUS_MAX
    y = np.ones_like(x1)

    def err(a: float, c: float) -> float:
        return float(((a * x1 + c * x2 - y) ** 2).sum())

    def c_given(a: float) -> float:
        return max(c_min, float(x2 @ (y - a * x1)) / float(x2 @ x2))

    def a_given(c: float) -> float:
        d = float(x1 @ x1)
        return max(0.0, float(x1 @ (y - c * x2)) / d) if d > 0 else 0.0

    if a_fixed is not None:
        return a_fixed, c_given(a_fixed)
    cands = []
    A = np.stack([x1, x2], axis=1)
    sol, *_ = np.linalg.lstsq(A, y, rcond=None)
    if sol[0] >= 0 and sol[1] >= c_min:
        cands.append((float(sol[0]), float(sol[1])))
    cands.append((0.0, c_given(0.0)))
    cands.append((a_given(c_min), c_min))
    return min(cands, key=lambda ac: err(*ac))


def fit_collectives(rows: list[dict], links: dict[str, tuple[float, int | None]],
                    groups: dict[str, str] | None = None) -> CollectiveCalibration:
    """Fit alpha and eta_bus per fabric. ``links[device] = (per-direction scale-up bandwidth in
    byte/s, max_devices or None)`` for every device the rows may name; rows of other devices
    are skipped. ``groups[device]`` is the fabric the device's rows are pooled under (default:
    the device itself). ``rows`` are ``load_microbench()`` rows; allreduce and p2p are read."""
    groups = groups or {}
    skipped: dict[str, str] = {}
    allreduce: dict[str, list[tuple[str, float, float, float, float]]] = {}
    ring_only: dict[str, list[tuple[str, float]]] = {}
    p2p: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        kind = r["kind"]
        if kind not in ("allreduce", "p2p"):
            continue
        rid, dev = r["id"], r["hardware"]
        if dev not in links:
            skipped[rid] = f"'{dev}' is not a zoo device with a scale-up interconnect"
            continue
        key = groups.get(dev, dev)
        bw, max_dev = links[dev]
        value = r["value"] * 1e9                       # GB/s -> byte/s (decimal)
        n = r["num_devices"]
        if kind == "p2p":
            if value > bw * (1 + 1e-9):
                skipped[rid] = (f"{r['value']:g} GB/s exceeds the {bw / 1e9:g} GB/s per-direction "
                                "link spec: an aggregate of both directions, not a one-way copy")
            else:
                p2p.setdefault(key, []).append((rid, value / bw))
            continue
        if not r["message_bytes"]:
            skipped[rid] = "no message size (a peak over a sweep)"
        elif not n:
            skipped[rid] = "number of devices not stated"
        elif max_dev is not None and n > max_dev:
            skipped[rid] = (f"{n:g} devices exceed the {max_dev}-device scale-up domain "
                            "(scale-out: see fit_scale_out)")
        elif n < 2:
            skipped[rid] = "fewer than 2 devices"
        elif "NVLS_ENABLE=0" in (r.get("notes") or ""):
            ring_only.setdefault(key, []).append((rid, value / bw))
        else:
            allreduce.setdefault(key, []).append((rid, r["message_bytes"], n, value, bw))

    def design(key):
        pts = allreduce[key]
        bw = np.array([p[4] for p in pts])
        n = np.array([p[2] for p in pts])
        S = np.array([p[1] for p in pts])
        t = _ring_factor(n) * S / np.array([p[3] for p in pts])     # measured time
        return pts, 2 * (n - 1) / t, _ring_factor(n) * S / bw / t

    fits: dict[str, tuple[float, float]] = {}
    single = []
    for key in sorted(allreduce):
        pts, x1, x2 = design(key)
        if len({(p[1], p[2]) for p in pts}) < 2 or min(p[1] for p in pts) > LATENCY_ROW_MAX:
            single.append(key)                  # alpha not identifiable from these sizes
            continue
        fits[key] = _solve(x1, x2)
    alpha_med = median([a for a, _ in fits.values()]) if fits else 0.0
    for key in single:
        _, x1, x2 = design(key)
        fits[key] = _solve(x1, x2, a_fixed=alpha_med)

    residuals: dict[str, float] = {}
    devices: dict[str, CollectiveEfficiency] = {}
    for key, (a, c) in fits.items():
        pts, x1, x2 = design(key)
        ratio = a * x1 + c * x2                  # fitted / measured time = measured / fitted bw
        own = {p[0]: float(q) for p, q in zip(pts, ratio)}
        residuals.update(own)
        devices[key] = CollectiveEfficiency(alpha_s=a, eta_bus=1.0 / c, estimated=False,
                                            rows=tuple(own), spread=_quantiles(list(own.values())),
                                            fit_devices=int(max(p[2] for p in pts)))
    etas = [e.eta_bus for e in devices.values()]
    default_eta = median(etas) if etas else 0.8
    all_res = list(residuals.values())
    spread = _quantiles(all_res)
    defaults = CollectiveEfficiency(alpha_s=alpha_med, eta_bus=default_eta, estimated=True,
                                    rows=tuple(residuals), spread=spread)
    for key in sorted(set(p2p) | set(ring_only)):
        extra: dict[str, float | None] = {"eta_p2p": None, "eta_ring": None}
        new_rows: list[str] = []
        for name, pts in (("eta_p2p", p2p.get(key)), ("eta_ring", ring_only.get(key))):
            if pts:
                eta = median([e for _, e in pts])
                extra[name] = eta
                for rid, e in pts:
                    residuals[rid] = e / eta
                new_rows += [rid for rid, _ in pts]
        base = devices.get(key, defaults)
        devices[key] = CollectiveEfficiency(
            alpha_s=base.alpha_s, eta_bus=base.eta_bus, estimated=base.estimated,
            rows=(base.rows if key in fits else ()) + tuple(new_rows),
            spread=base.spread, fit_devices=base.fit_devices, **extra)
    return CollectiveCalibration(fabrics=devices, defaults=defaults, residuals=residuals,
                                 skipped=skipped, spread=spread)



# ----------------------------------------------------------------------- systems -> paths

@dataclass(frozen=True)
class CommPath:
    """How accelerators of one system reach each other: the scale-up fabric within a domain
    of ``domain`` accelerators, and the scale-out fabric between domains. Bandwidths are per
    accelerator, per direction, in byte/s."""

    name: str
    total: int                          # accelerators the system holds
    domain: int                         # accelerators per scale-up domain
    up_name: str | None
    up_bw: float | None
    up_eff: CollectiveEfficiency | None
    up_inr: bool
    out_name: str | None = None
    out_bw: float | None = None
    out_eff: CollectiveEfficiency | None = None
    out_inr: bool = False
    host_bw: float | None = None
    time_scale: float = 1.0             # multiplies every collective time (band edges)

    def with_efficiency(self, eff: CollectiveEfficiency) -> CommPath:
        from dataclasses import replace
        return replace(self, up_eff=eff)

    def at(self, variant: str) -> CommPath:
        """This path at an edge of its fits' spread (10th/90th percentile of measured over
        fitted bus bandwidth): "fast" divides every collective time by the high ratio,
        "slow" by the low one; "nominal" is the path itself."""
        if variant == "nominal":
            return self
        spreads = [e.spread for e in (self.up_eff, self.out_eff) if e is not None] or \
            [(1.0, 1.0)]
        ratio = max(s[1] for s in spreads) if variant == "fast" else min(s[0] for s in spreads)
        from dataclasses import replace
        return replace(self, time_scale=1.0 / ratio)


def _up_key(fabric: NetworkFabric | None, hw: HardwareSpec) -> str:
    if fabric is not None and fabric.calibration_key:
        return fabric.calibration_key
    return hw.key


def _up_fit(cal: CollectiveCalibration, key: str) -> CollectiveEfficiency:
    """A fabric's own fit; else the fit its zoo entry borrows (``calibration:``), flagged
    estimated; else the cross-fabric medians."""
    own = cal.fabrics.get(key)
    if own is not None:
        return own
    from ..zoo import Fabrics
    if key in Fabrics:
        stand_in = Fabrics.get(key).calibration
        if stand_in and stand_in != key and stand_in in cal.fabrics:
            from dataclasses import replace
            return replace(cal.fabrics[stand_in], estimated=True)
    return cal.defaults


def _scale_out_alpha(cal: CollectiveCalibration, fabric: NetworkFabric) -> float:
    lat = fabric._base["latency"]
    return max(cal.defaults.alpha_s, lat or 0.0)


def _out_eff(cal: CollectiveCalibration, fabric: NetworkFabric) -> CollectiveEfficiency:
    own = cal.scale_out.get(fabric.calibration_key)
    base = own or cal.scale_out_defaults or cal.defaults
    return CollectiveEfficiency(alpha_s=_scale_out_alpha(cal, fabric), eta_bus=base.eta_link,
                                estimated=True, rows=base.rows, spread=base.spread)


def comm_path(system) -> CommPath:
    """The communication path of a chip, node or fleet (spec or zoo name)."""
    system = system_spec(system)
    return _comm_path(system)


@lru_cache(maxsize=256)
def _comm_path(system) -> CommPath:
    cal = collective_calibration()
    if isinstance(system, HardwareSpec):
        hw = system
        fab = fabric_from_interconnect(hw)
        host = hw.interconnect.host_bandwidth if hw.interconnect else None
        return CommPath(
            name=hw.name, total=(hw.interconnect.max_devices or 1) if fab else 1,
            domain=(hw.interconnect.max_devices or 1) if fab else 1,
            up_name=fab.name if fab else None, up_bw=fab._base["device_bandwidth"] if fab
            else None, up_eff=_up_fit(cal, _up_key(fab, hw)) if fab else None,
            up_inr=False if fab is None else _inr(_up_fit(cal, _up_key(fab, hw))),
            host_bw=None if host is None else float(host.to("byte/s").magnitude))
    fleet = system if isinstance(system, Fleet) else None
    node: Node = fleet.node if fleet else system
    hw = node.accelerator
    up = node.intra_node_fabric
    out = fleet.fabric if fleet else node.nic_fabric
    total = fleet.total_accelerators if fleet else node.accelerators_per_node
    out_bw = None
    if out is not None and node.nics_per_node:
        out_bw = out._base["device_bandwidth"] * node.nics_per_node / node.accelerators_per_node
        if fleet is not None:
            out_bw /= fleet.effective_oversubscription
    host = hw.interconnect.host_bandwidth if hw.interconnect else None
    up_eff = _up_fit(cal, _up_key(up, hw)) if up is not None else None
    return CommPath(
        name=system.name, total=total, domain=min(node.domain, total),
        up_name=up.name if up else None, up_bw=up._base["device_bandwidth"] if up else None,
        up_eff=up_eff, up_inr=bool(up is not None and up.in_network_reduction),
        out_name=out.name if out else None, out_bw=out_bw,
        out_eff=_out_eff(cal, out) if out is not None and out_bw else None,
        out_inr=bool(out is not None and out.in_network_reduction == "SHARP"),
        host_bw=None if host is None else float(host.to("byte/s").magnitude))


def resolve_system(system, owner: str = _OWNER) -> tuple[HardwareSpec, CommPath]:
    """(the accelerator, the communication path) of a chip, node or fleet (spec or name);
    a refusal names ``owner``, the solver asked."""
    system = system_spec(system, owner)
    chip = system if isinstance(system, HardwareSpec) else system.accelerator
    return chip, _comm_path(system)


def _inr(eff: CollectiveEfficiency) -> bool:
    return eff.in_switch_reduction


def system_spec(system, owner: str = _OWNER, field: str = "hardware"):
    """A chip, node or fleet spec from a spec or zoo name (hardware, nodes, then clusters); a
    refusal names the solver asked (``owner``) and its parameter (``field``)."""
    if isinstance(system, (HardwareSpec, Node, Fleet)):
        return system
    if isinstance(system, str):
        from ..zoo import Clusters, Hardware, Nodes
        for reg in (Hardware, Nodes, Clusters):
            if system in reg:
                return reg.get(system)
        raise UnknownNameError("hardware or system", system,
                               [*Hardware.names(), *Nodes.names(), *Clusters.names()])
    raise ValidationError(field, "must be a hardware spec, node, fleet or zoo name. "
                          f"Got {system!r} instead.", owner=owner)


# ------------------------------------------------------------------------ alpha-beta terms

def _log2(n: int) -> int:
    return max(1, math.ceil(math.log2(n)))


def _within(kind: str, n: int, bw: float, eff: CollectiveEfficiency, algorithm: str,
            inr: bool) -> list[tuple[float, float]]:
    """(alpha term, seconds per byte) candidates inside one scale-up domain."""
    a = eff.alpha_s
    link = eff.eta_link
    if kind != "allreduce":
        if algorithm not in ("auto", "nccl", "ring"):
            raise ValidationError("algorithm", f"'{algorithm}' applies to all-reduce only; "
                                  f"{kind} runs as a ring (use 'auto' or 'ring').", owner=_OWNER)
        steps, factor = COLLECTIVES[kind]
        return [(steps(n) * a, factor(n) / (eff.eta(kind) * bw))]
    rf = 2 * (n - 1) / n
    m = eff.fit_devices
    eta_inr = eff.eta_bus * 2 * (m - 1) / m
    table = {
        "nccl": (2 * (n - 1) * a, rf / (eff.eta_bus * bw)),
        "ring": (2 * (n - 1) * a, rf / ((eff.eta_ring or link) * bw)),
        "tree": (2 * _log2(n) * a, 2.0 / (link * bw)),
        "one_shot": (a, (n - 1) / (link * bw)),
        "two_shot": (2 * a, rf / (link * bw)),
        "in_network": (2 * a, 1.0 / (eta_inr * bw)),
    }
    if algorithm == "auto":
        picks = ["nccl"] if n <= m else ["nccl", "tree"] + (["in_network"] if inr else [])
        return [table[p] for p in picks]
    if algorithm == "in_network" and not inr:
        raise ValidationError("algorithm", "'in_network' needs a fabric that reduces in the "
                              "switch (NVLS, SHARP); this one does not. Choose one of: auto, "
                              "nccl, ring, tree, one_shot, two_shot.", owner=_OWNER)
    if algorithm == "hierarchical":
        return [table["nccl"]]          # within one domain, hierarchical is the domain's own
    return [table[algorithm]]


def collective_terms(path: CommPath, kind: str, n: int, algorithm: str = "auto",
                     scope: str = "scale_up", span: int | None = None
                     ) -> list[tuple[float, float]]:
    """Candidate (seconds, seconds per byte) pairs: ``t(S) = min_k(a_k + b_k * S)`` for S > 0.

    Linear in ``S``, so an operator table's collective rows (bytes linear in batch) stay
    linear in batch per candidate. ``span``: the devices the group's ``n`` members are spread
    over (members ``span / n`` apart, as data-parallel ranks are tensor-parallel groups apart);
    a group whose span outgrows the scale-up domain has ``n * domain / span`` members per
    domain (at least one) and crosses the scale-out fabric.
    """
    terms = _terms(path, kind, n, algorithm, scope, span or n)
    if path.time_scale != 1.0:
        terms = [(a * path.time_scale, b * path.time_scale) for a, b in terms]
    return terms


def _terms(path: CommPath, kind: str, n: int, algorithm: str,
           scope: str, span: int) -> list[tuple[float, float]]:
    if n <= 1:
        return [(0.0, 0.0)]
    if scope == "host":
        if path.host_bw is None:
            raise InfeasibleConfigError(
                "host link", "a host_bandwidth", "none",
                f"{path.name} publishes no host (PCIe) bandwidth; use fabric='scale_up'")
        eff = path.up_eff if path.up_eff is not None else collective_calibration().defaults
        return _within(kind, n, path.host_bw, eff, algorithm, False)
    if path.up_bw is None and path.out_bw is None:
        raise InfeasibleConfigError(
            "interconnect", f"a link between {n} devices", "none",
            f"{path.name} has no interconnect in its spec, so {_a(kind)} over {n} devices cannot "
            "be modelled; use a device with one, or n_devices=1")
    span = max(span, n)
    if span > path.total or (span > path.domain and path.out_bw is None):
        if path.out_bw is None:
            raise InfeasibleConfigError(
                "scale-up domain", n, path.domain,
                f"{_a(kind)} over {span} devices exceeds the {path.domain}-device scale-up "
                f"domain of {path.name} ({path.up_name}) and it has no scale-out fabric; use at "
                f"most {path.domain} devices per scale-up collective, or a fleet")
        raise InfeasibleConfigError(
            "accelerators", span, path.total,
            f"{_a(kind)} over {span} devices needs more than the {path.total} accelerators of "
            f"{path.name}")
    if span <= path.domain:
        return _within(kind, n, path.up_bw, path.up_eff, algorithm, path.up_inr)
    members = max(1, n * path.domain // span) if path.up_bw is not None else 1
    return _across(kind, n, path, algorithm, min(members, path.domain))


def _across(kind: str, n: int, path: CommPath, algorithm: str,
            L: int) -> list[tuple[float, float]]:
    """Candidates for a group spanning scale-up domains, ``L`` members per domain (see the
    module docstring)."""
    N = math.ceil(n / L)
    out, bw_out = path.out_eff, path.out_bw
    a_out, e_out = out.alpha_s, out.eta_link
    flat_steps, flat_factor = COLLECTIVES[kind]
    if kind == "alltoall":
        b = (n - L) / n / (e_out * bw_out)
        if L > 1:
            b += (L - 1) / n / (path.up_eff.eta_link * path.up_bw)
        return [((n - 1) * a_out, b)]
    flat = (flat_steps(n) * a_out, flat_factor(n) / (e_out * bw_out))
    if kind != "allreduce":
        if algorithm not in ("auto", "ring", "hierarchical", "nccl"):
            raise ValidationError("algorithm", f"'{algorithm}' applies to all-reduce only; "
                                  f"{kind} runs as a ring.", owner=_OWNER)
        if kind not in ("allgather", "reducescatter") or L == 1 or algorithm == "ring":
            return [flat]
        # Each of the L members per domain has its own scale-out port: across the N domains
        # the members of one local index exchange S / L each ((N-1)/N of it off-node), and
        # the domain's L pieces meet over the scale-up links ((L-1)/L of S).
        up = path.up_eff
        hier = ((N - 1) * a_out + (L - 1) * up.alpha_s,
                (N - 1) / N / L / (e_out * bw_out) + (L - 1) / L / (up.eta_link * path.up_bw))
        return [hier] if algorithm == "hierarchical" else [hier, flat]
    if algorithm in ("one_shot", "two_shot", "tree", "in_network"):
        raise ValidationError("algorithm", f"'{algorithm}' runs within one scale-up domain; a "
                              f"group of {n} spanning {N} domains uses 'hierarchical', 'ring' or "
                              "'auto'.", owner=_OWNER)
    hier_a = hier_b = 0.0
    if L > 1:
        up = path.up_eff
        hier_a += 2 * (L - 1) * up.alpha_s                       # reduce-scatter + all-gather
        hier_b += 2 * (L - 1) / L / (up.eta_link * path.up_bw)
    if path.out_inr:                                            # SHARP: reduce in the switch
        hier_a += 2 * a_out
        hier_b += 1.0 / L / (e_out * bw_out)
    else:
        hier_a += 2 * (N - 1) * a_out
        hier_b += 2 * (N - 1) / N / L / (e_out * bw_out)
    hier = (hier_a, hier_b)
    if algorithm == "hierarchical":
        return [hier]
    if algorithm in ("ring", "nccl"):
        return [flat]
    return [hier, flat]


def _a(kind: str) -> str:
    """The kind with its article: 'an allreduce', 'a broadcast'."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _kind(kind) -> str:
    norm = kind.lower().replace("_", "").replace("-", "").replace(" ", "") \
        if isinstance(kind, str) else None
    if norm == "sendrecv":
        norm = "p2p"
    if norm not in COLLECTIVES:
        raise ValidationError("kind", f"must be one of {', '.join(COLLECTIVES)}. "
                              f"Got {kind!r} instead.", owner=_OWNER)
    return norm


def _message_bytes(value):
    """A non-negative finite byte count: a number, a numpy array, or a quantity of bytes."""
    from ..units import Q_
    if isinstance(value, Q_):
        if not value.check("[information]"):
            raise ValidationError("message_bytes", f"must be a number of bytes. Got {value} "
                                  "instead.", owner=_OWNER)
        value = value.to("byte").magnitude
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            arr = None
        if arr is None or isinstance(value, np.ndarray) and value.dtype == bool \
                or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValidationError("message_bytes", "must hold finite non-negative byte counts. "
                                  f"Got {value!r} instead.", owner=_OWNER)
        return arr
    return positive_float("message_bytes", value, _OWNER, allow_zero=True)


def _algorithm(algorithm) -> str:
    if algorithm not in ALGORITHMS:
        raise ValidationError("algorithm", f"must be one of {', '.join(ALGORITHMS)}. "
                              f"Got {algorithm!r} instead.", owner=_OWNER)
    return algorithm


def collective_efficiency(system, fabric: str = "scale_up") -> CollectiveEfficiency:
    """The fitted (or estimated) scale-up collective terms of a chip, node or fleet."""
    if fabric not in FABRICS:
        raise ValidationError("fabric", f"must be one of {', '.join(FABRICS)}. "
                              f"Got {fabric!r} instead.", owner=_OWNER)
    path = comm_path(system)
    if fabric == "host" or path.up_eff is None:
        return collective_calibration().defaults
    return path.up_eff


def collective_time(system, kind: str, message_bytes, n_devices: int, *,
                    fabric: str = "scale_up", algorithm: str = "auto",
                    efficiency: CollectiveEfficiency | None = None, span: int | None = None):
    """Seconds for one collective of ``kind`` on a ``message_bytes`` buffer over ``n_devices``.

    ``system``: a chip, node or fleet (spec or zoo name); a group larger than its scale-up
    domain crosses the scale-out fabric. ``kind``: allreduce, allgather, reducescatter,
    alltoall, broadcast or p2p. ``message_bytes``: bytes per device (nccl-tests convention), a
    number, a numpy array (the result is then an array of the same shape) or a quantity of
    bytes. ``fabric``: ``scale_up`` or ``host`` (the chip's PCIe link). ``algorithm``: one of
    ``ALGORITHMS`` (module docstring). ``efficiency`` overrides the scale-up terms (what-if).
    ``span``: the devices the group is spread over (default ``n_devices``: adjacent ranks).

    Examples
    --------
    >>> collective_time("A100", "allreduce", 2**30, 1)        # one device: nothing to send
    0.0
    >>> collective_time("DGX_H100", "allreduce", 2**30, 8) > 0
    True
    """
    path = comm_path(system)
    kind = _kind(kind)
    size = _message_bytes(message_bytes)
    n = positive_int("n_devices", n_devices, _OWNER)
    if fabric not in FABRICS:
        raise ValidationError("fabric", f"must be one of {', '.join(FABRICS)}. "
                              f"Got {fabric!r} instead.", owner=_OWNER)
    algorithm = _algorithm(algorithm)
    if efficiency is not None:
        if not isinstance(efficiency, CollectiveEfficiency):
            raise ValidationError("efficiency", "must be a CollectiveEfficiency. "
                                  f"Got {efficiency!r} instead.", owner=_OWNER)
        path = path.with_efficiency(efficiency)
    if n == 1:
        return np.zeros_like(size) if isinstance(size, np.ndarray) else 0.0
    if span is not None:
        span = positive_int("span", span, _OWNER)
    terms = collective_terms(path, kind, n, algorithm, fabric, span)
    if len(terms) == 1:
        t = terms[0][0] + terms[0][1] * size
    else:
        t = np.minimum.reduce([a + b * size for a, b in terms])
    if isinstance(size, np.ndarray):
        return np.where(size > 0, t, 0.0)
    return float(t) if size > 0 else 0.0


# --------------------------------------------------------------------- package calibration

def _links(hw: HardwareSpec) -> tuple[float, int | None] | None:
    ic = hw.interconnect
    if ic is None:
        return None
    return float(ic.bandwidth.to("byte/s").magnitude), ic.max_devices


def fit_scale_out(rows: list[dict], systems: dict[str, Node],
                  scale_up: CollectiveCalibration) -> tuple[dict[str, CollectiveEfficiency],
                                                            CollectiveEfficiency | None,
                                                            dict[str, float]]:
    """Scale-out eta per fabric from multi-node peak-busbw rows (module docstring).

    ``systems[row id]`` is the node the row ran on; the row's ``num_devices`` give the nodes.
    Returns (fits by fabric key, their median as defaults, residuals by row id).
    """
    per_fabric: dict[str, list[tuple[str, float, float]]] = {}
    for r in rows:
        node = systems.get(r["id"])
        if node is None or r["kind"] != "allreduce":
            continue
        n = int(r["num_devices"])
        L = node.domain
        N = math.ceil(n / L)
        up = _up_fit(scale_up, _up_key(node.intra_node_fabric, node.accelerator))
        up_bw = node.intra_node_fabric._base["device_bandwidth"]
        out = node.nic_fabric
        out_bw = out._base["device_bandwidth"] * node.nics_per_node / node.accelerators_per_node
        b_up = 2 * (L - 1) / L / (up.eta_link * up_bw)
        c = 2 * (N - 1) / N / L / out_bw                 # seconds per byte at eta = 1
        measured = r["value"] * 1e9
        per_byte = 2 * (n - 1) / n / measured           # measured seconds per byte
        eta = 1.0 if per_byte <= b_up else min(1.0, c / (per_byte - b_up))
        per_fabric.setdefault(out.calibration_key, []).append((r["id"], eta, per_byte, b_up, c))
    fits, residuals = {}, {}
    for key, pts in per_fabric.items():
        eta = median(p[1] for p in pts)
        for rid, _, per_byte, b_up, c in pts:
            residuals[rid] = (b_up + c / eta) / per_byte   # measured / predicted busbw
        fits[key] = CollectiveEfficiency(
            alpha_s=scale_up.defaults.alpha_s, eta_bus=eta, estimated=False,
            rows=tuple(p[0] for p in pts),
            spread=_quantiles([residuals[p[0]] for p in pts]))
    default = None
    if fits:
        default = CollectiveEfficiency(
            alpha_s=scale_up.defaults.alpha_s, eta_bus=median(f.eta_bus for f in fits.values()),
            estimated=True, rows=tuple(residuals), spread=_quantiles(list(residuals.values())))
    return fits, default, residuals


def _row_systems() -> dict[str, Node]:
    from ..zoo import _read_yaml
    path = MICROBENCH_SYSTEMS
    out = {}
    for raw in _read_yaml(path):
        rid = raw.pop("row")
        raw.pop("why", None)
        out[rid] = Node.from_dict({"name": f"{rid} system", **raw}, f"{path.name} row {rid}")
    return out


@lru_cache(maxsize=1)
def collective_calibration() -> CollectiveCalibration:
    """The package's collective calibration, fitted once from the shipped microbenchmarks."""
    from dataclasses import replace

    from ..zoo import Hardware

    links, groups = {}, {}
    for hw in Hardware:
        link = _links(hw)
        if link is not None:
            links[hw.key] = link
            groups[hw.key] = hw.interconnect.fabric or hw.key
    rows = load_microbench()
    cal = fit_collectives(rows, links, groups)
    systems = _row_systems()
    fits, default, res = fit_scale_out(rows, systems, cal)
    skipped = {k: v for k, v in cal.skipped.items() if k not in res}
    return replace(cal, scale_out=fits, scale_out_defaults=default,
                   residuals={**cal.residuals, **res}, skipped=skipped)


def fit_report() -> str:
    """The collective fit per fabric as Markdown: the terms, and every row's error (measured
    over modelled bus bandwidth, minus 1). docs/collectives.md holds its output."""
    cal = collective_calibration()
    rows = {r["id"]: r for r in load_microbench()}

    def err(rid: str) -> float:
        return cal.residuals[rid] - 1.0

    out = ["| fabric | scope | alpha (us) | eta_bus | eta_ring | eta_p2p | all-reduce rows | "
           "median abs error | worst |", "|---|---|---|---|---|---|---|---|---|"]
    detail = ["| row | fabric | devices | size | measured busbw (GB/s) | error |",
              "|---|---|---|---|---|---|"]
    for scope, fits in (("scale-up", cal.fabrics), ("scale-out", cal.scale_out)):
        for key in sorted(fits):
            e = fits[key]
            ar = [r for r in e.rows if rows[r]["kind"] == "allreduce" and r in cal.residuals]
            errs = sorted(abs(err(r)) for r in ar)
            worst = max(ar, key=lambda r: abs(err(r))) if ar else None
            est = " (est.)" if scope == "scale-out" else ""
            out.append(
                f"| {key} | {scope} | {e.alpha_s * 1e6:.2f}{est}"
                f" | {e.eta_bus:.3f} | {'' if e.eta_ring is None else f'{e.eta_ring:.3f}'} | "
                f"{'' if e.eta_p2p is None else f'{e.eta_p2p:.3f}'} | {len(ar)} | "
                f"{median(errs) * 100:.1f}% | {abs(err(worst)) * 100:.1f}% ({worst}) |"
                if ar else f"| {key} | {scope} | {e.alpha_s * 1e6:.2f} | {e.eta_bus:.3f} | | | 0 "
                "| | |")
            for r in ar:
                row = rows[r]
                size = row["message_bytes"]
                detail.append(f"| {r} | {key} | {int(row['num_devices'])} | "
                              f"{'peak' if not size else f'{size / 2**20:g} MiB'} | "
                              f"{row['value']:g} | {err(r) * 100:+.1f}% |")
    d = cal.defaults
    out.append(f"\nFabrics without rows use the medians (alpha {d.alpha_s * 1e6:.2f} us, eta_bus "
               f"{d.eta_bus:.3f}), flagged estimated, unless their zoo entry names a stand-in "
               "fit (`calibration:`). Rows left out: " + "; ".join(
                   f"{k} ({v})" for k, v in sorted(cal.skipped.items())) + ".")
    return "\n".join(out + ["", "Per row (error = measured / modelled bus bandwidth - 1):", ""]
                     + detail) + "\n"
