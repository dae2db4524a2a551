"""Accelerator power from what the accelerator is doing: never TDP x time.

Model. A device draws its idle power plus a share of the headroom to its board power limit set
by how hard its compute units and its memory are driven::

    P(u_c, u_m) = P_idle + (P_max - P_idle) * min(1, a * u_c + b * u_m)

- ``u_c`` (compute activity): the share of time in compute-bound operators weighted by how close
  they run to peak, ``sum over compute-bound ops of F_i / (peak_i * T)`` = achieved flop/s over
  peak while the compute units bind. A GEMM microbenchmark has ``u_c`` = its fraction of peak.
- ``u_m`` (memory activity): the memory-bound share weighted by achieved over spec bandwidth,
  ``sum over memory-bound ops of bytes_i / (BW * T)``. A streaming kernel has ``u_m`` = its
  achieved fraction of the spec bandwidth.
- ``P_max`` = the spec's ``tdp``, the limit the board enforces (power capping throttles clocks,
  so measured GEMM power saturates there: rows PWR-010..013 sit at 98-100 % of 400 W).
- ``P_idle``: median of the device's measured idle rows; a device without one gets the
  cross-device median idle/TDP fraction times its TDP (flagged estimated).
- ``a``, ``b``: per device, bounded least squares of ``(P - P_idle) / (P_max - P_idle)`` on the
  device's rows (grid search over [0, 4]^2, so P stays in [P_idle, P_max] and is monotone in both
  activities). A coefficient no row of the device identifies is the median over the devices
  that have one (flagged estimated). Two coefficients per device, plus its idle.

Operators bound by neither (collectives, launch gaps) add time but no activity, so they draw
idle power. ``profile_power`` reads a :class:`~mlsysim.core.engine.PerformanceProfile`'s
per-operator breakdown; ``node_power`` adds the host's published power.

Data: ``mlsysim/validation/microbench/power.csv``, published board-power measurements with their
condition; sources in POWER_SOURCES.md beside it. Rows with role ``fit`` are fitted, ``idle``
rows give P_idle, ``context`` rows are reported (residual where their activity is known) but not
fitted, each with the reason. ``power_calibration()`` holds the fit, every row's residual and
the spread of measured/predicted over the fitted rows, and each fitted row's *transfer* error
(predicted with the other devices' coefficients): the error to expect on a device without rows.

Left out: clocks/DVFS and power-cap dynamics below the mean (one number per activity), operand
values (zero-filled GEMMs draw 40 % less: PWR-015..019), temperature and leakage, sub-second
swings (the Llama 3 paper reports tens of MW across a 16k-GPU job), the ~25 % sampling window
of nvidia-smi on A100/H100 (Yang et al. 2023), communication power (PWR-025: an all-reduce
draws ~44 W over idle), and the host's variation with load (``host_power`` is one number).
"""

from __future__ import annotations

import csv
import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import median
from typing import Callable, Iterable

import numpy as np

from ..cache import ContentCache
from ..errors import DataFileError, ValidationError
from .datafile import open_text

__all__ = ["POWER_CSV", "PowerRow", "PowerParams", "PowerResidual", "DeviceFit",
           "PowerCalibration", "NodePower", "load_power_rows", "fit_power", "power_calibration",
           "power_params", "device_power", "activity", "busy_seconds", "profile_power",
           "node_power", "energy", "energy_kwh", "power_report"]

POWER_CSV = Path(__file__).parents[1] / "validation" / "microbench" / "power.csv"
_COLUMNS = ("id", "hardware", "role", "activity", "precision", "compute_util", "memory_util",
            "power_w", "power_low_w", "power_high_w", "quality", "derived", "source_key",
            "condition")
ROLES = ("idle", "fit", "context")
COEFF_MAX = 4.0      # upper bound of a and b: a device at its cap from 25 % activity at most
IDENTIFIES = 0.05    # a row identifies a coefficient when its activity on that axis exceeds this


# --- data -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerRow:
    """One published measurement of board power (W) and the activity it was measured at."""

    id: str
    hardware: str
    role: str
    activity: str
    precision: str
    compute_util: float | None
    memory_util: float | None
    power_w: float
    power_low_w: float | None
    power_high_w: float | None
    quality: str
    derived: str
    source_key: str
    condition: str
    line: int = 0


def _num(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def load_power_rows(path: str | Path | None = None) -> tuple[PowerRow, ...]:
    """Rows of the power file; a malformed row fails naming the file and line."""
    path = Path(path) if path is not None else POWER_CSV
    rows, seen = [], set()
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFileError(f"{path}, line 1: missing columns {', '.join(missing)}")
        for raw in reader:
            where = f"{path}, line {reader.line_num}"
            try:
                nums = {c: _num(raw[c]) for c in ("compute_util", "memory_util", "power_w",
                                                   "power_low_w", "power_high_w")}
            except ValueError as exc:
                raise DataFileError(f"{where}: {exc}") from None
            row = PowerRow(**{c: (raw[c] or "").strip() for c in _COLUMNS
                              if c not in nums}, **nums, line=reader.line_num)
            _check_row(row, where, seen)
            seen.add(row.id)
            rows.append(row)
    return tuple(rows)


def _check_row(row: PowerRow, where: str, seen: set) -> None:
    if not row.id or row.id in seen:
        raise DataFileError(f"{where}: id must be present and unique (got {row.id!r})")
    if row.role not in ROLES:
        raise DataFileError(f"{where}: role must be one of {', '.join(ROLES)} (got {row.role!r})")
    p = row.power_w
    if p is None or not math.isfinite(p) or p <= 0:
        raise DataFileError(f"{where}: power_w must be a positive number")
    for name in ("compute_util", "memory_util"):
        u = getattr(row, name)
        if u is not None and not (math.isfinite(u) and 0.0 <= u <= 1.0):
            raise DataFileError(f"{where}: {name} must be between 0 and 1 (got {u})")
        if u is None and row.role != "context":
            raise DataFileError(f"{where}: a {row.role} row needs {name}")
    if row.role == "idle" and (row.compute_util or row.memory_util):
        raise DataFileError(f"{where}: an idle row has zero activity")
    lo, hi = row.power_low_w, row.power_high_w
    if (lo is not None and lo > p) or (hi is not None and hi < p):
        raise DataFileError(f"{where}: power_w must lie within [power_low_w, power_high_w]")


# --- the fit ----------------------------------------------------------------------------------

def _activity_share(a, b, uc, um):
    return np.minimum(1.0, a * uc + b * um)


def _least_squares(uc, um, y, a_fixed=None, b_fixed=None) -> tuple[float, float]:
    """argmin over a, b in [0, COEFF_MAX] of sum (min(1, a uc + b um) - y)^2: a coarse grid
    (step 0.02) refined to 0.0002. Ties (rows at the cap) go to the smallest coefficients."""
    uc, um, y = (np.asarray(v, dtype=float) for v in (uc, um, y))

    def search(ag, bg):
        f = _activity_share(ag[:, None, None], bg[None, :, None], uc, um)
        err = ((f - y) ** 2).sum(axis=-1)
        i, j = np.unravel_index(np.argmin(err), err.shape)
        return float(ag[i]), float(bg[j])

    def grid(fixed, centre=None):
        if fixed is not None:
            return np.array([float(fixed)])
        if centre is None:
            return np.linspace(0.0, COEFF_MAX, 201)
        return np.unique(np.clip(np.linspace(centre - 0.02, centre + 0.02, 201), 0, COEFF_MAX))

    a, b = search(grid(a_fixed), grid(b_fixed))
    a, b = search(grid(a_fixed, a), grid(b_fixed, b))
    return round(a, 4), round(b, 4)


@dataclass(frozen=True)
class DeviceFit:
    """What the data say about one device: idle power and the two activity coefficients, each
    with the rows behind it (no rows: a cross-device median, listed in ``estimated``)."""

    key: str
    tdp_w: float
    idle_w: float
    compute_coeff: float
    memory_coeff: float
    idle_rows: tuple[str, ...] = ()
    compute_rows: tuple[str, ...] = ()
    memory_rows: tuple[str, ...] = ()
    estimated: tuple[str, ...] = ()


@dataclass(frozen=True)
class PowerParams:
    """The constants of ``P = idle + (max - idle) * min(1, a u_c + b u_m)`` for one device."""

    hardware: str
    idle_w: float
    max_w: float
    compute_coeff: float
    memory_coeff: float
    estimated: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()

    def watts(self, compute_util, memory_util):
        """Power at the given activities (floats or broadcasting arrays; not validated)."""
        f = _activity_share(self.compute_coeff, self.memory_coeff, compute_util, memory_util)
        return self.idle_w + (self.max_w - self.idle_w) * f

    def equation(self) -> str:
        return (f"P = {self.idle_w:.4g} W + ({self.max_w:.4g} - {self.idle_w:.4g}) W x "
                f"min(1, {self.compute_coeff:.3g} u_c + {self.memory_coeff:.3g} u_m)")


@dataclass(frozen=True)
class PowerResidual:
    """One row against the model. ``error`` = predicted / measured - 1; ``transfer_w``: the
    fitted row predicted with coefficients from the other devices only (its own idle)."""

    id: str
    hardware: str
    role: str
    activity: str
    compute_util: float
    memory_util: float
    measured_w: float
    predicted_w: float
    transfer_w: float | None = None

    @property
    def error(self) -> float:
        return self.predicted_w / self.measured_w - 1.0

    @property
    def ratio(self) -> float:
        """measured / predicted (the spread's quantity)."""
        return self.measured_w / self.predicted_w

    @property
    def transfer_error(self) -> float | None:
        return None if self.transfer_w is None else self.transfer_w / self.measured_w - 1.0


@dataclass(frozen=True)
class PowerCalibration:
    devices: dict[str, DeviceFit]
    compute_coeff_median: float
    memory_coeff_median: float
    idle_fraction_median: float
    residuals: tuple[PowerResidual, ...]
    spread: tuple[float, float]        # (min, max) of measured / predicted over fitted rows
    transfer_spread: tuple[float, float]

    @property
    def max_error(self) -> float:
        """Largest |predicted / measured - 1| over the fitted rows."""
        return max(abs(1.0 / self.spread[0] - 1.0), abs(1.0 / self.spread[1] - 1.0))

    def residual(self, row_id: str) -> PowerResidual:
        for r in self.residuals:
            if r.id == row_id:
                return r
        raise KeyError(row_id)

    def params(self, hardware) -> PowerParams:
        """The device's constants; ``hardware`` a spec (its ``tdp`` is ``P_max``)."""
        tdp = _tdp_w(hardware)
        fit = self.devices.get(hardware.key)
        est = []
        if fit is not None and fit.idle_rows:
            idle = fit.idle_w
        else:
            idle = self.idle_fraction_median * tdp
            est.append("idle")
        if idle >= tdp:  # only a measured idle can: the median fraction is below 1
            raise ValidationError("tdp", f"must exceed the device's measured idle power "
                                  f"({idle:.4g} W, rows {', '.join(fit.idle_rows)}). Got "
                                  f"{tdp:.4g} W instead.", owner=hardware.name)
        a = fit.compute_coeff if fit is not None and fit.compute_rows else None
        b = fit.memory_coeff if fit is not None and fit.memory_rows else None
        if a is None:
            a = self.compute_coeff_median
            est.append("compute")
        if b is None:
            b = self.memory_coeff_median
            est.append("memory")
        rows = () if fit is None else fit.idle_rows + fit.compute_rows + fit.memory_rows
        return PowerParams(hardware=hardware.key, idle_w=idle, max_w=tdp, compute_coeff=a,
                           memory_coeff=b, estimated=tuple(est), rows=rows)


def _zoo_tdp(key: str) -> float | None:
    from ..zoo import Hardware
    tdp = Hardware.get(key).tdp
    return None if tdp is None else float(tdp.to("W").magnitude)


def _medians(values: Iterable[float]) -> float | None:
    values = list(values)
    return median(values) if values else None


def fit_power(rows: Iterable[PowerRow],
              tdp_of: Callable[[str], float | None] = _zoo_tdp) -> PowerCalibration:
    """Fit the model to ``rows`` (see the module docstring). ``tdp_of(key)`` gives each row's
    device TDP in W (default: the zoo spec's)."""
    rows = list(rows)
    by_dev: dict[str, list[PowerRow]] = {}
    for r in rows:
        by_dev.setdefault(r.hardware, []).append(r)
    tdp = {}
    for key, rs in by_dev.items():
        try:
            t = tdp_of(key)
        except LookupError:
            t = None
        if t is None or not t > 0:
            raise DataFileError(f"power rows {', '.join(r.id for r in rs)}: device {key!r} "
                                "needs a zoo spec with a tdp")
        tdp[key] = float(t)
    idle = {k: median(r.power_w for r in rs if r.role == "idle")
            for k, rs in by_dev.items() if any(r.role == "idle" for r in rs)}
    idle_frac = _medians(idle[k] / tdp[k] for k in idle)
    if idle_frac is None:
        raise DataFileError("power rows: no idle row, so no device has an idle power")

    def idle_of(key):
        return idle.get(key, idle_frac * tdp[key])

    def arrays(rs, key):
        uc = np.array([r.compute_util for r in rs])
        um = np.array([r.memory_util for r in rs])
        y = (np.array([r.power_w for r in rs]) - idle_of(key)) / (tdp[key] - idle_of(key))
        return uc, um, y

    fit_rows = {k: [r for r in rs if r.role == "fit"] for k, rs in by_dev.items()}
    ident = {k: ([r.id for r in rs if r.compute_util > IDENTIFIES],
                 [r.id for r in rs if r.memory_util > IDENTIFIES]) for k, rs in fit_rows.items()}
    # Stage 1: each device's identified coefficients, the others held at zero.
    first = {}
    for k, rs in fit_rows.items():
        c_ids, m_ids = ident[k]
        if c_ids or m_ids:
            first[k] = _least_squares(*arrays(rs, k), a_fixed=None if c_ids else 0.0,
                                      b_fixed=None if m_ids else 0.0)
    a_vals = {k: v[0] for k, v in first.items() if ident[k][0]}
    b_vals = {k: v[1] for k, v in first.items() if ident[k][1]}
    a_med, b_med = _medians(a_vals.values()), _medians(b_vals.values())
    if a_med is None or b_med is None:
        raise DataFileError("power rows: the fit needs rows with compute activity and rows with "
                            f"memory activity above {IDENTIFIES}")
    # Stage 2: refit with unidentified coefficients at the cross-device medians.
    devices = {}
    for k in by_dev:
        c_ids, m_ids = ident.get(k, ([], []))
        a, b = a_med, b_med
        if c_ids or m_ids:
            a, b = _least_squares(*arrays(fit_rows[k], k), a_fixed=None if c_ids else a_med,
                                  b_fixed=None if m_ids else b_med)
        est = tuple(n for n, known in (("idle", k in idle), ("compute", c_ids),
                                       ("memory", m_ids)) if not known)
        devices[k] = DeviceFit(
            key=k, tdp_w=tdp[k], idle_w=idle_of(k), compute_coeff=a, memory_coeff=b,
            idle_rows=tuple(r.id for r in by_dev[k] if r.role == "idle"),
            compute_rows=tuple(c_ids), memory_rows=tuple(m_ids), estimated=est)

    def predict(key, uc, um, a=None, b=None):
        d = devices[key]
        a = d.compute_coeff if a is None else a
        b = d.memory_coeff if b is None else b
        return float(d.idle_w + (d.tdp_w - d.idle_w) * _activity_share(a, b, uc, um))

    residuals = []
    for r in rows:
        if r.compute_util is None or r.memory_util is None:
            continue
        transfer = None
        if r.role == "fit":
            a_o = _medians(v for k, v in a_vals.items() if k != r.hardware)
            b_o = _medians(v for k, v in b_vals.items() if k != r.hardware)
            if a_o is not None and b_o is not None:
                transfer = predict(r.hardware, r.compute_util, r.memory_util, a_o, b_o)
        residuals.append(PowerResidual(
            id=r.id, hardware=r.hardware, role=r.role, activity=r.activity,
            compute_util=r.compute_util, memory_util=r.memory_util, measured_w=r.power_w,
            predicted_w=predict(r.hardware, r.compute_util, r.memory_util),
            transfer_w=transfer))
    fitted = [r for r in residuals if r.role == "fit"]
    ratios = [r.ratio for r in fitted]
    t_ratios = [r.measured_w / r.transfer_w for r in fitted if r.transfer_w is not None]
    return PowerCalibration(
        devices=devices, compute_coeff_median=a_med, memory_coeff_median=b_med,
        idle_fraction_median=idle_frac, residuals=tuple(residuals),
        spread=(min(ratios), max(ratios)),
        transfer_spread=(min(t_ratios), max(t_ratios)) if t_ratios else (1.0, 1.0))


@lru_cache(maxsize=1)
def power_calibration() -> PowerCalibration:
    """The fit to the package's power data (cached)."""
    return fit_power(load_power_rows())


# --- evaluation ------------------------------------------------------------------------------

def _hardware(hardware, owner: str):
    from ..specs.hardware import HardwareSpec
    if isinstance(hardware, str):
        from ..zoo import Hardware
        hardware = Hardware.get(hardware)
    if not isinstance(hardware, HardwareSpec):
        raise ValidationError("hardware", f"must be a hardware spec or zoo name. Got "
                              f"{hardware!r} instead.", owner=owner)
    return hardware


def _tdp_w(hardware) -> float:
    if hardware.tdp is None:
        raise ValidationError("tdp", "is not published: device power needs it as the ceiling "
                              "P_max. Give the spec a tdp (e.g. tdp='300 W').",
                              owner=hardware.name)
    return float(hardware.tdp.to("W").magnitude)


_PARAMS = ContentCache("power params")


def power_params(hardware) -> PowerParams:
    """The fitted constants for ``hardware`` (spec or zoo name)."""
    hardware = _hardware(hardware, "power_params")
    hit = _PARAMS.get((hardware,))
    if hit is None:
        hit = _PARAMS.put((hardware,), power_calibration().params(hardware))
    return hit


def _fractions(name: str, value, owner: str):
    """A fraction in [0, 1], or an array of them (NaN, negatives, > 1 and non-numbers refused)."""
    bad = ValidationError(name, "must be a number between 0 and 1 (a fraction of the device's "
                          f"peak), or an array of them. Got {value!r} instead.", owner=owner)
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise bad
    if isinstance(value, numbers.Real):
        v = float(value)
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise bad
        return v
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise bad from None
    out = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if out.any():
        raise ValidationError(name, "must hold fractions between 0 and 1 (of the device's peak)."
                              f" Got {arr[out].flat[0]!r} instead.", owner=owner)
    return arr


def device_power(hardware, compute_util, memory_util):
    """Board power (W) of ``hardware`` at compute activity ``compute_util`` and memory activity
    ``memory_util`` (fractions of peak flop/s and of spec bandwidth, see the module docstring).

    Floats give a float; arrays broadcast and give an array.

    Examples
    --------
    >>> from mlsysim.core.power import device_power, power_params
    >>> p = power_params("A100_40GB")
    >>> device_power("A100_40GB", 0.0, 0.0) == p.idle_w
    True
    >>> device_power("A100_40GB", 1.0, 0.0) == p.max_w
    True
    """
    owner = "device_power"
    params = power_params(_hardware(hardware, owner))
    uc = _fractions("compute_util", compute_util, owner)
    um = _fractions("memory_util", memory_util, owner)
    try:
        watts = params.watts(uc, um)
    except ValueError:
        raise ValidationError("memory_util", f"must broadcast against compute_util (shapes "
                              f"{np.shape(uc)} and {np.shape(um)}).", owner=owner) from None
    return float(watts) if np.ndim(watts) == 0 else watts


def activity(profile) -> tuple[float, float]:
    """(u_c, u_m) of a :class:`~mlsysim.core.engine.PerformanceProfile` from its operators:
    each operator is compute- or memory-bound by its larger term (as ``time_by_resource``);
    ``u_c = sum_compute F_i / (peak_i T)``, ``u_m = sum_memory bytes_i / (BW T)``, T the pass's
    latency. Collectives and launch gaps add time and no activity."""
    from .engine import PerformanceProfile
    if not isinstance(profile, PerformanceProfile):
        raise ValidationError("profile", "must be a PerformanceProfile (what Engine.solve "
                              f"returns). Got {type(profile).__name__} instead.",
                              owner="profile_power")
    busy_c, busy_m = busy_seconds(profile._prepared, profile.batch_size)
    t = profile.latency_s
    # Each operator contributes at most its share of the time: the sum is <= 1 up to rounding.
    return min(max(busy_c / t, 0.0), 1.0), min(max(busy_m / t, 0.0), 1.0)


def busy_seconds(prepared, batch) -> tuple[float, float]:
    """(compute, memory) activity of a prepared pass in seconds at full rate: the ideal time
    of its compute-bound operators' flops at peak, and of its memory-bound operators' bytes at
    spec bandwidth. Divided by the time they are spread over, they are ``(u_c, u_m)``; passes
    of one step (pipeline stages, forward and backward) add."""
    from ..workloads.operators import OpKind
    from .costmodel import op_times
    p = prepared
    tc, tm, _ = op_times(p, batch)
    work = p.table.kind != OpKind.COLLECTIVE
    compute = work & (tc >= tm)
    memory = work & ~compute
    flops = p.table.flops_per_sample * batch
    busy = ((flops * p.inv_peak_ideal * compute) @ p.count,
            (tm * p.efficiency.memory * memory) @ p.count)
    # A batch array of shape (n, 1) gives n of each.
    return busy if np.ndim(busy[0]) else (float(busy[0]), float(busy[1]))


def profile_power(profile) -> float:
    """Mean board power (W) of the device over the pass ``profile`` describes.

    Examples
    --------
    >>> import mlsysim
    >>> from mlsysim.core.power import profile_power, power_params
    >>> decode = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=1, seq_len=1024)
    >>> power_params("H100").idle_w < profile_power(decode) < power_params("H100").max_w
    True
    """
    u_c, u_m = activity(profile)
    return float(power_params(profile.hardware).watts(u_c, u_m))


@dataclass(frozen=True)
class NodePower:
    """A node's power: ``watts = accelerators * accelerator_w + host_w``. ``estimated`` with
    its ``reason`` when the host's power was derived rather than published."""

    watts: float | np.ndarray
    accelerator_w: float | np.ndarray
    accelerators: int
    host_w: float
    estimated: bool = False
    reason: str | None = None


def _non_negative(name: str, value, owner: str):
    bad = ValidationError(name, f"must be a finite non-negative number (or array). Got {value!r} "
                          "instead.", owner=owner)
    if isinstance(value, (bool, str, bytes)):
        raise bad
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise bad from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise bad
    return float(arr) if arr.ndim == 0 else arr


def node_power(node, accelerator_watts) -> NodePower:
    """Power of ``node`` (a :class:`~mlsysim.specs.system.Node` or zoo name) whose accelerators
    each draw ``accelerator_watts`` (e.g. from :func:`profile_power`): accelerators x that +
    ``host_power``. A node without ``host_power`` but with ``system_power`` gets host = system
    power - accelerators x TDP (the datasheet's split), flagged estimated; with neither, an error
    names the missing field."""
    from ..specs.system import Node
    owner = "node_power"
    if isinstance(node, str):
        from ..zoo import Nodes
        node = Nodes.get(node)
    if not isinstance(node, Node):
        raise ValidationError("node", f"must be a Node spec or zoo name. Got {node!r} instead.",
                              owner=owner)
    per = _non_negative("accelerator_watts", accelerator_watts, owner)
    n = node.accelerators_per_node
    estimated, reason = False, None
    if node.host_power is not None:
        host = float(node.host_power.to("W").magnitude)
    elif node.system_power is not None and node.accelerator.tdp is not None:
        system = float(node.system_power.to("W").magnitude)
        tdp = _tdp_w(node.accelerator)
        host = system - n * tdp
        if host < 0:
            raise ValidationError("host_power", "is not published and cannot be derived: "
                                  f"system_power ({system:.4g} W) is below {n} x TDP "
                                  f"({n * tdp:.4g} W).", owner=node.name)
        estimated = True
        reason = (f"{node.name} publishes no host_power; host taken as system_power "
                  f"({system:.4g} W) - {n} x TDP ({tdp:.4g} W) = {host:.4g} W, a datasheet "
                  "maximum")
    else:
        raise ValidationError("host_power", "is not published (nor a system_power to derive "
                              "it from): node power needs it. Give the Node a host_power, e.g. "
                              "host_power='3 kW'.", owner=node.name)
    return NodePower(watts=n * per + host, accelerator_w=per, accelerators=n, host_w=host,
                     estimated=estimated, reason=reason)


def energy(power_w, seconds):
    """Joules drawn at ``power_w`` watts for ``seconds`` (floats or broadcasting arrays)."""
    p = _non_negative("power_w", power_w, "energy")
    s = _non_negative("seconds", seconds, "energy")
    return p * s


def energy_kwh(power_w, seconds):
    """Kilowatt-hours drawn at ``power_w`` for ``seconds`` (1 kWh = 3.6e6 J)."""
    return energy(power_w, seconds) / 3.6e6


# --- report ----------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f} %"


def power_report(cal: PowerCalibration | None = None) -> str:
    """Markdown tables of the fit: each device's constants and each row's error (docs/power.md
    embeds this text; a test keeps it current)."""
    cal = cal or power_calibration()
    lines = [f"Cross-device medians: a = {cal.compute_coeff_median:.4g}, "
             f"b = {cal.memory_coeff_median:.4g}, idle = {cal.idle_fraction_median:.3f} x TDP. "
             f"Fitted rows: measured / predicted in [{cal.spread[0]:.3f}, {cal.spread[1]:.3f}] "
             f"(max error {cal.max_error * 100:.1f} %); with other devices' coefficients "
             f"(transfer): [{cal.transfer_spread[0]:.3f}, {cal.transfer_spread[1]:.3f}].", "",
             "| device | TDP (W) | idle (W) | a (compute) | b (memory) | estimated |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for k in sorted(cal.devices):
        d = cal.devices[k]
        lines.append(f"| {k} | {d.tdp_w:.4g} | {d.idle_w:.4g} | {d.compute_coeff:.4g} | "
                     f"{d.memory_coeff:.4g} | {', '.join(d.estimated) or '-'} |")
    lines += ["", "| row | device | role | activity | u_c | u_m | measured (W) | predicted (W) |"
              " error | transfer error |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in cal.residuals:
        lines.append(f"| {r.id} | {r.hardware} | {r.role} | {r.activity} | {r.compute_util:.3f} "
                     f"| {r.memory_util:.3f} | {r.measured_w:.4g} | {r.predicted_w:.4g} | "
                     f"{_pct(r.error)} | {_pct(r.transfer_error)} |")
    return "\n".join(lines) + "\n"
