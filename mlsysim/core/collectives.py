"""Collective communication time: a latency-bandwidth (alpha-beta) model of ring collectives,
fitted to published all-reduce microbenchmarks and nothing else.

Model [Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan 2009]. Over ``n`` devices on a
fabric whose per-device link moves ``B`` byte/s in each direction, a collective on a buffer of
``S`` bytes takes::

    t(S, n) = steps(n) * alpha + factor(n) * S / (eta * B)

=============  ============  ===============  ===========================================
kind           steps(n)      factor(n)        eta used
=============  ============  ===============  ===========================================
allreduce      2(n-1)        2(n-1)/n         eta_bus (fitted; may exceed 1, see below)
reducescatter  n-1           (n-1)/n          min(eta_bus, 1)
allgather      n-1           (n-1)/n          min(eta_bus, 1)
alltoall       n-1           (n-1)/n          min(eta_bus, 1)
broadcast      n-1           1                min(eta_bus, 1)
p2p            1             1                eta_p2p if measured, else min(eta_bus, 1)
=============  ============  ===============  ===========================================

``S`` follows the nccl-tests convention: the whole buffer on one device (all-gather's output,
reduce-scatter's input, all-to-all's send buffer). ``alpha`` is the per-step latency of the
ring, so the all-reduce latency is ``2(n-1) * alpha``; ``B_bus = eta * B`` is the bus bandwidth.
A collective over one device, or of zero bytes, takes exactly 0 s.

Fit (``fit_collectives``). nccl-tests reports all-reduce "busbw" = algbw * 2(n-1)/n, so a row
(``S``, ``n``, busbw) was measured at ``t = 2(n-1)/n * S / busbw``. Per device (zoo key), alpha
and ``c = 1/eta_bus`` minimize the least-squares error of time, each row's error divided by its
measured time (``sum (1 - t_model/t_measured)^2``): the rows span 32 KiB to 16 GiB, six orders of
magnitude in time, and an unweighted fit would let the 100 ms rows set everything and the
latency-bound ones nothing. Constraints: ``alpha >= 0`` and ``0 < eta_bus <= ETA_BUS_MAX``
(a bounded two-variable least-squares problem, solved exactly by checking the interior optimum
and the four edges). A device whose rows hold a single message size gets the median alpha and a
fitted eta only.

In-switch reduction. NVLink SHARP (NCCL's NVLS) reduces inside the NVSwitch, so measured busbw
can exceed the per-direction link spec (eta_bus > 1: H200 reaches 482 GB/s on 450 GB/s links).
That is kept for all-reduce (it is what the device delivers) and bounded by ``ETA_BUS_MAX = 2``
(NVLS moves S per device each way instead of 2(n-1)/n * S, at most a 2x gain). The other
collectives move real data over the links, so they use ``min(eta_bus, 1)``; the efficiency says
``in_switch_reduction`` when eta_bus > 1.

Rows used and left out. All-reduce rows need ``message_bytes`` and ``num_devices`` (peaks without
a size, such as the multi-node rows, and the GB200 rows whose GPU count is not stated are left
out), must fit within the device's scale-up domain (``num_devices <= max_devices``; scale-out
rows are left out) and must use NCCL's default algorithm (``NCCL_NVLS_ENABLE=0`` rows are left
out). P2P rows give ``eta_p2p`` (median measured / link spec) unless they exceed the
per-direction link spec, which a unidirectional copy cannot: those are aggregates of both
directions and are left out. ``CollectiveCalibration.skipped`` gives each left-out row's reason.

A device without rows gets the median alpha and median eta_bus of the fitted devices and is
flagged ``estimated``, as is every device on the ``host`` (PCIe) fabric: the fits describe the
scale-up fabric they were measured on.

Limits. The rows are all 8-device, single-node; ``steps(n)`` extrapolates the ring's latency
linearly in n, which is pessimistic at large n where NCCL switches to tree or NVLS algorithms.
The model has one bandwidth: on A100 the measured busbw is still well below its asymptote at
16-128 MiB (NCCL's protocol and channel choices), where the fit is optimistic by up to ~45%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median

import numpy as np

from ..errors import InfeasibleConfigError, ValidationError
from ..specs.hardware import HardwareSpec
from .calibration import _quantiles, load_microbench
from .validate import positive_float, positive_int

__all__ = [
    "COLLECTIVES",
    "ETA_BUS_MAX",
    "FABRICS",
    "CollectiveCalibration",
    "CollectiveEfficiency",
    "collective_calibration",
    "collective_efficiency",
    "collective_time",
    "fit_collectives",
]

_OWNER = "collective_time"
ETA_BUS_MAX = 2.0
FABRICS = ("scale_up", "host")
# kind -> (latency steps, bandwidth factor) as functions of n; see the module docstring.
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
    """Fitted collective terms of one device's fabric.

    ``alpha_s``: per-step latency (s); an all-reduce over n devices pays ``2(n-1) * alpha_s``.
    ``eta_bus``: achieved bus bandwidth / per-direction link spec for all-reduce (> 1 with
    in-switch reduction). ``estimated``: alpha and eta_bus are cross-device medians, not this
    device's own fit. ``rows``: ids of the microbenchmark rows behind the values.
    """

    alpha_s: float
    eta_bus: float
    estimated: bool
    rows: tuple[str, ...] = ()
    eta_p2p: float | None = None          # measured unidirectional copy / link spec, if any
    spread: tuple[float, float] = (1.0, 1.0)  # 10th/90th pct of measured/fitted busbw

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

    def eta(self, kind: str) -> float:
        """The fraction of the link bandwidth a collective of ``kind`` achieves."""
        if kind == "allreduce":
            return self.eta_bus
        if kind == "p2p" and self.eta_p2p is not None:
            return self.eta_p2p
        return min(self.eta_bus, 1.0)

    def latency_s(self, kind: str, n_devices: int) -> float:
        """The size-independent part alpha(n) of a collective over ``n_devices``."""
        return 0.0 if n_devices <= 1 else COLLECTIVES[kind][0](n_devices) * self.alpha_s


@dataclass(frozen=True)
class CollectiveCalibration:
    devices: dict[str, CollectiveEfficiency]   # own fits (estimated=False), by zoo key
    defaults: CollectiveEfficiency             # median alpha and eta_bus (estimated=True)
    residuals: dict[str, float]                # row id -> measured / fitted bandwidth
    skipped: dict[str, str] = field(default_factory=dict)  # row id -> why it is not used
    spread: tuple[float, float] = (1.0, 1.0)   # 10th/90th percentiles of all residuals

    def efficiency(self, hardware_key: str, fabric: str = "scale_up") -> CollectiveEfficiency:
        """The device's own fit, or the estimated defaults (keeping any measured eta_p2p)."""
        if fabric != "scale_up":     # the fits describe the fabric they were measured on
            return self.defaults
        return self.devices.get(hardware_key, self.defaults)


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


def fit_collectives(rows: list[dict],
                    links: dict[str, tuple[float, int | None]]) -> CollectiveCalibration:
    """Fit alpha and eta_bus per device. ``links[key] = (per-direction scale-up bandwidth in
    byte/s, max_devices or None)`` for every device the rows may name; rows of other devices
    are skipped. ``rows`` are ``load_microbench()`` rows; only allreduce and p2p are read."""
    skipped: dict[str, str] = {}
    allreduce: dict[str, list[tuple[str, float, float, float]]] = {}
    p2p: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        kind = r["kind"]
        if kind not in ("allreduce", "p2p"):
            continue
        rid, key = r["id"], r["hardware"]
        if key not in links:
            skipped[rid] = f"'{key}' is not a zoo device with a scale-up interconnect"
            continue
        bw, max_dev = links[key]
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
            skipped[rid] = f"{n:g} devices exceed the {max_dev}-device scale-up domain (scale-out)"
        elif "NVLS_ENABLE=0" in (r.get("notes") or ""):
            skipped[rid] = "non-default NCCL algorithm (NCCL_NVLS_ENABLE=0)"
        elif n < 2:
            skipped[rid] = "fewer than 2 devices"
        else:
            allreduce.setdefault(key, []).append((rid, r["message_bytes"], n, value))

    def design(key):
        bw = links[key][0]
        pts = allreduce[key]
        n = np.array([p[2] for p in pts])
        S = np.array([p[1] for p in pts])
        t = _ring_factor(n) * S / np.array([p[3] for p in pts])     # measured time
        return pts, 2 * (n - 1) / t, _ring_factor(n) * S / bw / t

    fits: dict[str, tuple[float, float]] = {}
    single = []
    for key in sorted(allreduce):
        pts, x1, x2 = design(key)
        if len({(p[1], p[2]) for p in pts}) < 2:
            single.append(key)                  # alpha not identifiable from one size
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
                                            rows=tuple(own), spread=_quantiles(list(own.values())))
    etas = [e.eta_bus for e in devices.values()]
    default_eta = median(etas) if etas else 0.8
    all_res = list(residuals.values())
    spread = _quantiles(all_res)
    defaults = CollectiveEfficiency(alpha_s=alpha_med, eta_bus=default_eta, estimated=True,
                                    rows=tuple(residuals), spread=spread)
    for key, pts in p2p.items():
        eta = median([e for _, e in pts])
        for rid, e in pts:
            residuals[rid] = e / eta
        base = devices.get(key, defaults)
        devices[key] = CollectiveEfficiency(
            alpha_s=base.alpha_s, eta_bus=base.eta_bus, estimated=base.estimated,
            rows=(base.rows if key in fits else ()) + tuple(rid for rid, _ in pts),
            eta_p2p=eta, spread=base.spread)
    return CollectiveCalibration(devices=devices, defaults=defaults, residuals=residuals,
                                 skipped=skipped, spread=spread)


def _links(hw: HardwareSpec) -> tuple[float, float | None, int | None] | None:
    ic = hw.interconnect
    if ic is None:
        return None
    host = ic.host_bandwidth
    return (float(ic.bandwidth.to("byte/s").magnitude),
            None if host is None else float(host.to("byte/s").magnitude), ic.max_devices)


@lru_cache(maxsize=1)
def collective_calibration() -> CollectiveCalibration:
    """The package's collective calibration, fitted once from the shipped microbenchmarks."""
    from ..zoo import Hardware

    links = {}
    for hw in Hardware:
        link = _links(hw)
        if link is not None:
            links[hw.key] = (link[0], link[2])
    return fit_collectives(load_microbench(), links)


_LINKS: dict[int, tuple[HardwareSpec, tuple | None]] = {}


def _hardware(hardware) -> tuple[HardwareSpec, tuple | None]:
    if isinstance(hardware, str):
        from ..zoo import Hardware
        hardware = Hardware.get(hardware)
    if not isinstance(hardware, HardwareSpec):
        raise ValidationError("hardware", "must be a hardware spec or zoo name. "
                              f"Got {hardware!r} instead.", owner=_OWNER)
    hit = _LINKS.get(id(hardware))
    if hit is None or hit[0] is not hardware:
        hit = (hardware, _links(hardware))
        _LINKS[id(hardware)] = hit
    return hit


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


def collective_efficiency(hardware, fabric: str = "scale_up") -> CollectiveEfficiency:
    """The fitted (or estimated) collective terms for a device (spec or zoo name)."""
    hw, _ = _hardware(hardware)
    if fabric not in FABRICS:
        raise ValidationError("fabric", f"must be one of {', '.join(FABRICS)}. "
                              f"Got {fabric!r} instead.", owner=_OWNER)
    return collective_calibration().efficiency(hw.key, fabric)


def collective_time(hardware, kind: str, message_bytes, n_devices: int, *,
                    fabric: str = "scale_up",
                    efficiency: CollectiveEfficiency | None = None):
    """Seconds for one collective of ``kind`` on a ``message_bytes`` buffer over ``n_devices``.

    ``hardware``: a spec or zoo name. ``kind``: allreduce, allgather, reducescatter, alltoall,
    broadcast or p2p. ``message_bytes``: bytes per device (nccl-tests convention), a number, a
    numpy array (the result is then an array of the same shape) or a quantity of bytes.
    ``fabric``: ``scale_up`` (the device's interconnect, within ``max_devices``) or ``host``
    (its PCIe host link). ``efficiency`` overrides the calibrated terms (what-if studies).
    """
    hw, link = _hardware(hardware)
    kind = _kind(kind)
    size = _message_bytes(message_bytes)
    n = positive_int("n_devices", n_devices, _OWNER)
    if fabric not in FABRICS:
        raise ValidationError("fabric", f"must be one of {', '.join(FABRICS)}. "
                              f"Got {fabric!r} instead.", owner=_OWNER)
    if efficiency is not None and not isinstance(efficiency, CollectiveEfficiency):
        raise ValidationError("efficiency", "must be a CollectiveEfficiency. "
                              f"Got {efficiency!r} instead.", owner=_OWNER)
    if n == 1:
        return np.zeros_like(size) if isinstance(size, np.ndarray) else 0.0
    if link is None:
        raise InfeasibleConfigError(
            "interconnect", f"a link between {n} devices", "none",
            f"{hw.name} has no interconnect in its spec, so a {kind} over {n} devices cannot be "
            "modelled; use a device with one, or n_devices=1")
    bw, host_bw, max_dev = link
    if fabric == "host":
        if host_bw is None:
            raise InfeasibleConfigError(
                "host link", "a host_bandwidth", "none",
                f"{hw.name} publishes no host (PCIe) bandwidth; use fabric='scale_up'")
        bw = host_bw
    elif max_dev is not None and n > max_dev:
        raise InfeasibleConfigError(
            "scale-up domain", n, max_dev,
            f"a {kind} over {n} devices exceeds the {max_dev}-device scale-up domain of "
            f"{hw.name} ({hw.interconnect.name}); use at most {max_dev} devices per scale-up "
            "collective")
    eff = efficiency or collective_calibration().efficiency(hw.key, fabric)
    steps, factor = COLLECTIVES[kind]
    t = steps(n) * eff.alpha_s + factor(n) * size / (eff.eta(kind) * bw)
    if isinstance(size, np.ndarray):
        return np.where(size > 0, t, 0.0)
    return float(t) if size > 0 else 0.0
