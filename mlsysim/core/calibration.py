"""Efficiency terms of the cost model, fitted to published microbenchmarks and nothing else.

Data: ``mlsysim/validation/microbench/microbench.csv`` (sources in SOURCES.md beside it).
How each term is derived (``fit_calibration``):

- GEMM: a matrix multiply of F flop reaches ``eta(F) = eta_max * (1 - exp(-(F / F0)^alpha))``
  of the dense peak: small GEMMs leave most of the device idle (too few tiles to fill every
  SM, wave quantization, pipeline fill). ``F0 = peak * tau`` scales the knee with the device:
  a faster device needs a bigger problem to fill. ``tau`` (seconds) and ``alpha`` are global,
  ``eta_max`` is per device and precision class (16-bit, 8-bit, 4-bit); together they minimize
  the squared log error over every GEMM row with a known shape. ``alpha`` is searched in
  (0, 1]: the elasticity of ``eta`` in F is at most ``alpha``, so time ``F / (peak * eta)``
  never decreases as F grows.
- Best-of-search rows: ml-engineering's MAMF tables list the fastest shape of a brute-force
  shape search, a maximum over shapes. Where a device and class also have fixed-shape rows, its
  best-of-search rows sit a median ``b`` above the fit (``best_of_search_bias``); a group whose
  only rows are best-of-search gets ``eta_max / b``, the typical shape, not the luckiest one.
- Memory: achieved fraction of the spec bandwidth = median measured copy bandwidth / spec.
- Attention: fused attention kernels' measured fraction of the dense peak (a device without
  rows: its GEMM eta_max times the median attention/GEMM ratio of the devices with rows).
- Kernel overhead: median measured per-kernel launch/dispatch time (interquartile range for
  the band: the rows mix raw driver launches with framework dispatch).

A device without its own rows gets the median of the devices that have them, and the result
lists that term as estimated. Spreads (10th/90th percentiles of measured over fitted) become
the uncertainty band.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from statistics import median

from ..errors import DataFileError
from .datafile import open_text

__all__ = ["Efficiency", "Calibration", "load_microbench", "fit_calibration", "calibration",
           "MICROBENCH_CSV", "precision_class", "canonical_precision", "BEST_OF_SEARCH_SOURCES",
           "best_of_search_correction", "attention_kernel_ratio", "training_attention_factor",
           "ATTENTION_KERNELS_CSV"]

MICROBENCH_CSV = Path(__file__).parents[1] / "validation" / "microbench" / "microbench.csv"
ATTENTION_KERNELS_CSV = MICROBENCH_CSV.with_name("attention_kernels.csv")
WEIGHT_ONLY_GEMV_CSV = MICROBENCH_CSV.with_name("weight_only_gemv.csv")
_COLUMNS = ("id", "hardware", "kind", "precision", "m", "n", "k", "message_bytes",
            "num_devices", "metric", "value", "unit", "source_key", "notes")


def canonical_precision(text: str) -> str:
    """'FP8 (e4m3)' -> 'fp8', 'BF16' -> 'bf16': the zoo's precision names."""
    p = text.lower()
    for name in ("tf32", "bf16", "fp16", "fp32", "fp64", "fp8", "fp6", "fp4", "int8", "int4"):
        if name in p:
            return name
    return "fp16" if "16" in p else p.split()[0] if p else ""


def precision_class(precision: str) -> str:
    """GEMM efficiency is fitted per class: 8-bit formats behave alike, as do 16-bit ones."""
    p = precision.lower()
    if any(t in p for t in ("fp8", "int8", "e4m3", "e5m2")):
        return "8bit"
    if any(t in p for t in ("fp4", "int4", "fp6")):
        return "4bit"
    if any(t in p for t in ("fp32", "tf32", "fp64")):
        return "32bit"
    return "16bit"


# A device's own copy bandwidth is known to about +-5 %: BabelStream's Copy, Triad and Dot
# kernels differ by that much on one device (H100: 2.90, 2.97, 3.18 TB/s, MIC-018's notes).
OWN_MEMORY_SPREAD = (0.95, 1.05)


@dataclass(frozen=True)
class Efficiency:
    """The efficiency terms for one device and precision. All fractions are of spec peaks."""

    gemm_max: float
    gemm_tau_s: float
    gemm_alpha: float
    attention_max: float
    memory: float
    kernel_overhead_s: float
    estimated: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    # Multiplicative spreads of measured/fitted (low, high) for the uncertainty band.
    compute_spread: tuple[float, float] = (1.0, 1.0)
    memory_spread: tuple[float, float] = (1.0, 1.0)
    overhead_spread: tuple[float, float] = (1.0, 1.0)
    # GEMMs computing in 8 bits or fewer run at this fraction of the speed above, on both
    # roofs: the kernels of a software generation (zoo QuantizedKernels), 1 for today's.
    quantized_gemm_speed: float = 1.0
    quantized_gemm_spread: tuple[float, float] = (1.0, 1.0)
    # GEMMs whose weights are stored below the compute precision (weight-only quantization)
    # stream them at this fraction of the memory speed: the kernel dequantizes each weight
    # (weight_only_stream_speed); 1 where the weights are not quantized or nothing is measured.
    weight_stream_speed: float = 1.0
    weight_stream_spread: tuple[float, float] = (1.0, 1.0)

    def variant(self, which: str) -> "Efficiency":
        """The efficiencies at the fast or slow edge of the calibration spread (the band)."""
        if which == "nominal":
            return self
        i = 1 if which == "fast" else 0
        c, m = self.compute_spread[i], self.memory_spread[i]
        o = self.overhead_spread[1 - i]
        return replace(self, gemm_max=min(self.gemm_max * c, 1.0),
                       attention_max=min(self.attention_max * c, 1.0),
                       memory=min(self.memory * m, 1.0),
                       kernel_overhead_s=self.kernel_overhead_s * o,
                       quantized_gemm_speed=min(self.quantized_gemm_speed
                                                * self.quantized_gemm_spread[i], 1.0),
                       weight_stream_speed=min(self.weight_stream_speed
                                               * self.weight_stream_spread[i], 1.0))



@dataclass(frozen=True)
class Calibration:
    tau_s: float
    alpha: float
    gemm_max: dict[tuple[str, str], float]
    memory: dict[str, float]
    attention: dict[str, float]            # fraction of dense 16-bit peak
    kernel_overhead_s: float
    graph_kernel_s: float                  # smallest measured launch cost (graph replay bound)
    overhead_range_s: tuple[float, float]
    gemm_residuals: dict[str, float]       # row id -> measured/fitted
    memory_spread: tuple[float, float]
    compute_spread: tuple[float, float]
    defaults: dict[str, float] = field(default_factory=dict)
    row_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    best_of_search_bias: float = 1.0       # median measured/fitted of MAMF rows in mixed groups

    def provenance(self, hardware_key: str, precision: str) -> dict[str, list[str]]:
        """Microbenchmark row ids behind each efficiency term of a device (empty: the term is
        the cross-device median, i.e. estimated)."""
        cls = precision_class(precision)
        gemm = self.row_ids.get(f"gemm:{hardware_key}:{cls}") or \
            self.row_ids.get(f"gemm:{hardware_key}:16bit", ())
        return {"gemm_max": list(gemm), "gemm_ramp (tau, alpha)": ["all GEMM rows with a shape"],
                "memory": list(self.row_ids.get(f"memory:{hardware_key}", ())),
                "attention": list(self.row_ids.get(f"attention:{hardware_key}", ())),
                "kernel_overhead": list(self.row_ids.get("launch", ()))}

    def efficiency(self, hardware_key: str, precision: str) -> Efficiency:
        est: list[str] = []
        cls = precision_class(precision)
        gm = self.gemm_max.get((hardware_key, cls))
        if gm is None:
            gm = self.gemm_max.get((hardware_key, "16bit"))
            if gm is not None and cls != "16bit":
                est.append(f"gemm ({cls} taken from 16-bit)")
        if gm is None:
            gm = self.defaults["gemm_max"]
            est.append("gemm")
        mem = self.memory.get(hardware_key)
        if mem is None:
            mem = self.defaults["memory"]
            est.append("memory")
        att = self.attention.get(hardware_key)
        if att is None:
            att = gm * self.defaults["attention_ratio"]
            est.append("attention")
        own_mem = hardware_key in self.memory
        return Efficiency(
            gemm_max=gm, gemm_tau_s=self.tau_s, gemm_alpha=self.alpha,
            attention_max=min(att, gm), memory=mem,
            kernel_overhead_s=self.kernel_overhead_s, estimated=tuple(est),
            compute_spread=self.compute_spread,
            memory_spread=OWN_MEMORY_SPREAD if own_mem else self.memory_spread,
            overhead_spread=(self.overhead_range_s[0] / self.kernel_overhead_s,
                             self.overhead_range_s[1] / self.kernel_overhead_s),
        )


def _num(v: str) -> float | None:
    v = (v or "").strip()
    return float(v) if v else None


def load_microbench(path: Path | None = None) -> list[dict]:
    """Rows of the microbenchmark file; a malformed row fails with the file and line."""
    path = Path(path) if path is not None else MICROBENCH_CSV
    rows = []
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFileError(f"{path}, line 1: missing columns {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            try:
                row["value"] = float(row["value"])
                for c in ("m", "n", "k", "message_bytes", "num_devices"):
                    row[c] = _num(row[c])
            except ValueError as exc:
                raise DataFileError(f"{path}, line {line}: {exc}") from None
            if not math.isfinite(row["value"]) or row["value"] <= 0:
                raise DataFileError(f"{path}, line {line}: value must be a positive number")
            row["line"] = line
            rows.append(row)
    return rows


def _quantiles(xs: list[float], lo: float = 0.1, hi: float = 0.9) -> tuple[float, float]:
    xs = sorted(xs)
    if not xs:
        return (1.0, 1.0)
    def q(p: float) -> float:
        i = p * (len(xs) - 1)
        a, b = xs[int(math.floor(i))], xs[int(math.ceil(i))]
        return a + (b - a) * (i - math.floor(i))
    return (q(lo), q(hi))


def gemm_rows(rows: list[dict], peaks: dict[tuple[str, str], float]) -> list[tuple]:
    """(id, (hardware, precision class), flops, peak, measured eta) for every GEMM row whose
    device and precision have a published peak; shape-less rows count as large (F = inf)."""
    out = []
    for r in rows:
        if r["kind"] != "gemm":
            continue
        prec = canonical_precision(r["precision"])
        peak = peaks.get((r["hardware"], prec))
        if peak is None:
            continue
        flops = 2 * r["m"] * r["n"] * r["k"] if r["m"] and r["n"] and r["k"] else math.inf
        out.append((r["id"], (r["hardware"], precision_class(prec)), flops, peak,
                    r["value"] * 1e12 / peak))
    return out


def _shape(flops: float, peak: float, tau: float, alpha: float) -> float:
    if math.isinf(flops):
        return 1.0
    return 1 - math.exp(-((flops / (peak * tau)) ** alpha))


# Sources whose GEMM rows are the best shape of a brute-force shape search (the ml-engineering
# MAMF finder: "torch.matmul brute-force shape search ... best shape listed"), not a fixed shape.
BEST_OF_SEARCH_SOURCES = frozenset({"mlengineering", "mlengineering_old"})


def best_of_search_correction(rows: list[dict], gemm: list[tuple], gmax: dict, residuals: dict,
                              plateau: dict | None = None) -> tuple[dict, dict, float]:
    """(eta_max per group, residuals, bias b) after the best-of-search correction: ``b`` is the
    median, over best-of-search rows in groups that also hold fixed-shape rows, of the row's
    eta / shape over its group's measured ``plateau`` (:func:`plateau_levels`; the joint fit's
    eta_max where a group has no plateau rows), and a group of best-of-search rows only gets
    ``eta_max / b`` (its rows' residuals become ``b`` times larger). Without a mixed group
    ``b = 1`` and nothing changes.

    Against the plateau, not the joint fit: a group's small shapes move its fitted eta_max
    (GB200's 1024^3 and 2048^3 run 1.6x ahead of the shared ramp, lifting the fit to the MAMF
    best itself), whereas the plateau is what a sustained large GEMM reaches."""
    plateau = plateau or {}
    source = {r["id"]: r.get("source_key") for r in rows}
    best = {rid for rid, *_ in gemm if source.get(rid) in BEST_OF_SEARCH_SOURCES}
    members: dict[tuple[str, str], list[str]] = {}
    for rid, g, *_ in gemm:
        members.setdefault(g, []).append(rid)
    mixed = [residuals[rid] * gmax[g] / plateau.get(g, gmax[g])
             for g, ids in members.items() if not set(ids) <= best
             for rid in ids if rid in best]
    bias = median(mixed) if mixed else 1.0
    only = {g for g, ids in members.items() if set(ids) <= best}
    gmax = {g: v / bias if g in only else v for g, v in gmax.items()}
    residuals = {rid: residuals[rid] * bias if g in only else residuals[rid]
                 for rid, g, *_ in gemm}
    return gmax, residuals, bias


def fit_gemm(gemm: list[tuple], fixed: tuple[float, float] | None = None):
    """Fit (tau, alpha, eta_max per group, residuals) to GEMM rows by a grid search over tau
    and alpha (or with ``fixed=(tau, alpha)``): for fixed (tau, alpha) the best log-space
    eta_max of a group is the geometric mean of eta / shape over its rows."""
    import numpy as np

    keys = sorted({g for _, g, _, _, _ in gemm})
    group = np.array([keys.index(g) for _, g, _, _, _ in gemm])
    ratio = np.array([f / p for _, _, f, p, _ in gemm])            # F / peak, seconds
    log_eta = np.log([eta for *_, eta in gemm])
    onehot = np.eye(len(keys))[group]                               # rows x groups
    taus = np.array([fixed[0]]) if fixed else 10.0 ** (-8 + 0.03 * np.arange(161))
    alphas = (fixed[1],) if fixed else (1 / 3, 1 / 2, 2 / 3, 5 / 6, 1.0)
    best = None
    for alpha in alphas:
        with np.errstate(over="ignore", divide="ignore"):
            log_shape = np.log(-np.expm1(-(ratio[None, :] / taus[:, None]) ** alpha))
        log_shape[:, np.isinf(ratio)] = 0.0
        resid = log_eta[None, :] - log_shape                        # taus x rows
        log_gmax = (resid @ onehot) / onehot.sum(axis=0)           # taus x groups
        err = ((resid - log_gmax[:, group]) ** 2).sum(axis=1)
        i = int(np.argmin(err))
        if best is None or err[i] < best[0] - 1e-12:
            best = (float(err[i]), float(taus[i]), alpha,
                    {g: float(np.exp(log_gmax[i, j])) for j, g in enumerate(keys)})
    _, tau, alpha, gmax = best
    residuals = {rid: eta / (gmax[g] * _shape(f, p, tau, alpha)) for rid, g, f, p, eta in gemm}
    return tau, alpha, gmax, residuals


# A GEMM row measures the plateau eta_max when its shape factor is at least this (the ramp
# term has faded) and it is compute-bound on the device's roofline.
PLATEAU_SHAPE = 0.9
_ELEMENT_BYTES = {"16bit": 2.0, "8bit": 1.0, "4bit": 0.5, "32bit": 4.0}


def plateau_levels(rows: list[dict], gemm: list[tuple], bandwidths: dict[str, float],
                   tau: float, alpha: float) -> dict[tuple[str, str], float]:
    """Each group's measured plateau: the geometric mean of eta / shape over its fixed-shape
    GEMM rows (not a best-of-search maximum) whose shape factor is at least
    :data:`PLATEAU_SHAPE` and whose arithmetic intensity ``2 m n k / (e (m k + k n + m n))`` is
    above the device's ridge ``peak / bandwidth`` (small and memory-bound shapes measure the
    ramp and the memory roof). Groups without such rows are absent."""
    by_id = {r["id"]: r for r in rows}
    logs: dict[tuple[str, str], list[float]] = {}
    for rid, g, f, peak, eta in gemm:
        r = by_id[rid]
        shape = _shape(f, peak, tau, alpha)
        if r.get("source_key") in BEST_OF_SEARCH_SOURCES or shape < PLATEAU_SHAPE:
            continue
        if not math.isinf(f):
            intensity = f / (_ELEMENT_BYTES[g[1]] * (r["m"] * r["k"] + r["k"] * r["n"]
                                                     + r["m"] * r["n"]))
            bw = bandwidths.get(g[0])
            if bw is not None and intensity < peak / bw:
                continue
        logs.setdefault(g, []).append(math.log(eta / shape))
    return {g: math.exp(sum(v) / len(v)) for g, v in logs.items()}


def fit_calibration(rows: list[dict], peaks: dict[tuple[str, str], float],
                    bandwidths: dict[str, float]) -> Calibration:
    """Fit the efficiency terms. ``peaks[(hardware, precision)]`` is the dense peak (flop/s) and
    ``bandwidths[hardware]`` the spec bandwidth (byte/s) of every device the rows name."""
    gemm = gemm_rows(rows, peaks)
    tau, alpha, gmax, residuals = fit_gemm(gemm)
    plateau = plateau_levels(rows, gemm, bandwidths, tau, alpha)
    gmax, residuals, bias = best_of_search_correction(rows, gemm, gmax, residuals, plateau)
    row_ids: dict[str, list[str]] = {}
    for rid, (hw, cls), *_ in gemm:
        row_ids.setdefault(f"gemm:{hw}:{cls}", []).append(rid)
    for r in rows:
        if r["kind"] == "memcpy" and r["hardware"] in bandwidths:
            row_ids.setdefault(f"memory:{r['hardware']}", []).append(r["id"])
        elif r["kind"] == "attention":
            row_ids.setdefault(f"attention:{r['hardware']}", []).append(r["id"])
        elif r["kind"] == "launch":
            row_ids.setdefault("launch", []).append(r["id"])

    memory: dict[str, list[float]] = {}
    for r in rows:
        if r["kind"] == "memcpy" and r["hardware"] in bandwidths:
            memory.setdefault(r["hardware"], []).append(
                r["value"] * 1e9 / bandwidths[r["hardware"]])
    mem = {h: median(v) for h, v in memory.items()}

    attention: dict[str, float] = {}
    ratios = []
    for r in rows:
        if r["kind"] == "attention":
            peak = peaks.get((r["hardware"], "fp16")) or peaks.get((r["hardware"], "bf16"))
            if peak is None:
                continue
            eta = r["value"] * 1e12 / peak
            attention[r["hardware"]] = max(attention.get(r["hardware"], 0.0), eta)
    for h, eta in attention.items():
        if (h, "16bit") in gmax:
            ratios.append(eta / gmax[(h, "16bit")])

    launch = [r["value"] * 1e-6 for r in rows if r["kind"] == "launch"]
    if not launch:
        raise DataFileError("microbench data has no kernel launch overhead rows (kind=launch)")
    if not mem:
        raise DataFileError("microbench data has no memory copy rows (kind=memcpy)")
    mem_values = list(mem.values())
    return Calibration(
        tau_s=tau, alpha=alpha, gemm_max=gmax, memory=mem, attention=attention,
        kernel_overhead_s=median(launch), graph_kernel_s=min(launch),
        overhead_range_s=_quantiles(launch, 0.25, 0.75),
        gemm_residuals=residuals,
        memory_spread=tuple(v / median(mem_values) for v in _quantiles(mem_values)),
        compute_spread=_quantiles(list(residuals.values())),
        defaults={"gemm_max": median([v for (h, c), v in gmax.items() if c == "16bit"]
                                     or list(gmax.values())),
                  "memory": median(mem_values),
                  "attention_ratio": median(ratios) if ratios else 1.0},
        row_ids={k: tuple(v) for k, v in row_ids.items()},
        best_of_search_bias=bias,
    )


def device_specs(rows: list[dict]) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """(dense peaks by (device, precision), spec bandwidths by device) of the zoo devices the
    rows measure: the datasheet side of :func:`fit_calibration`."""
    from ..specs.hardware import PRECISIONS
    from ..zoo import Hardware

    peaks: dict[tuple[str, str], float] = {}
    bandwidths: dict[str, float] = {}
    # Only the devices the rows measure: building every zoo entry would cost the first solve
    # ~20 ms of validation for peaks the fit never reads.
    for key in sorted({r["hardware"] for r in rows} & set(Hardware.names())):
        hw = Hardware.get(key)
        base = hw._base
        bandwidths[hw.key] = base["bandwidth"]
        for p in PRECISIONS:
            if f"peak_{p}" in base:
                peaks[(hw.key, p)] = base[f"peak_{p}"]
    return peaks, bandwidths


@lru_cache(maxsize=1)
def calibration() -> Calibration:
    """The package's calibration, fitted once from the shipped microbenchmarks."""
    rows = load_microbench()
    return fit_calibration(rows, *device_specs(rows))


@lru_cache(maxsize=1)
def _attention_kernel_speeds() -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(kernel, passes) -> [(sequence length, TFLOP/s)] from attention_kernels.csv: one
    device and head dimension, so the ratios below compare like with like."""
    speeds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with open_text(ATTENTION_KERNELS_CSV) as fh:
        for row in csv.DictReader(fh):
            speeds.setdefault((row["kernel"], row["passes"]), []).append(
                (float(row["seq_len"]), float(row["value"])))
    return {k: sorted(v) for k, v in speeds.items()}


def _log_interpolate(points: list[tuple[float, float]], seq_len: float) -> float:
    """Linear in log2(seq_len) between measured lengths, held at the nearest one outside
    them (no trend is extrapolated)."""
    pts = [(math.log2(s), v) for s, v in points]
    x = math.log2(max(seq_len, 1.0))
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, r0), (x1, r1) in zip(pts, pts[1:]):
        if x <= x1:
            return r0 + (r1 - r0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def attention_kernel_ratio(kernel: str, seq_len: float) -> float:
    """Speed of attention ``kernel`` over FlashAttention-2's at ``seq_len`` tokens (forward +
    backward, causal, measured on one device: attention_kernels.csv), interpolated by
    :func:`_log_interpolate`. ``"flash2"`` is 1.

    >>> round(attention_kernel_ratio("flash1", 2048), 4)        # 77 / 140
    0.55
    >>> round(attention_kernel_ratio("triton_ops", 65536), 4)   # held at 16k: 67 / 171
    0.3918
    """
    speeds = _attention_kernel_speeds()
    kernels = sorted({k for k, passes in speeds if passes == "fwd+bwd"})
    if kernel not in kernels:
        raise ValueError(f"no attention-kernel measurements for {kernel!r}; measured: "
                         f"{', '.join(kernels)}")
    ref = dict(speeds["flash2", "fwd+bwd"])
    return _log_interpolate([(s, v / ref[s]) for s, v in speeds[kernel, "fwd+bwd"]
                             if s in ref], seq_len)


@lru_cache(maxsize=1)
def _weight_only_ratios() -> dict[str, list[float]]:
    """weight dtype -> [its GEMV's bandwidth / the same kernel's 16-bit baseline], one ratio
    per measured pair of weight_only_gemv.csv."""
    with open_text(WEIGHT_ONLY_GEMV_CSV) as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    ratios: dict[str, list[float]] = {}
    for r in rows.values():
        if r["baseline"]:
            base = rows[r["baseline"]]
            ratios.setdefault(r["weight_dtype"], []).append(float(r["value"])
                                                              / float(base["value"]))
    return ratios


def weight_only_stream_speed(weight_precision: str) -> tuple[float, tuple[float, float]] | None:
    """(median, (lowest, highest)) fraction of a 16-bit GEMV's bytes per second at which a
    weight-only kernel with ``weight_precision`` weights streams them (it dequantizes each
    weight in the kernel; weight_only_gemv.csv), or None where nothing is measured.

    >>> s, (lo, hi) = weight_only_stream_speed("int8")   # 984.06 / 1137.92, 870 / 990
    >>> round(s, 4), round(lo, 4), round(hi, 4)
    (0.8718, 0.8648, 0.8788)
    >>> weight_only_stream_speed("int4") is None
    True
    """
    each = _weight_only_ratios().get(weight_precision)
    if not each:
        return None
    return median(each), (min(each), max(each))


def training_attention_factor(seq_len: float) -> float:
    """FlashAttention-2's forward + backward speed over a causal sequence of ``seq_len``
    tokens relative to the forward speed a device's attention efficiency is calibrated at
    (8K tokens): the backward runs slower than the forward, and short causal sequences
    slower than long ones (attention_kernels.csv).

    >>> round(training_attention_factor(8192), 4)     # 165 / 179.5
    0.9192
    >>> round(training_attention_factor(2048), 4)     # 140 / 179.5
    0.7799
    """
    speeds = _attention_kernel_speeds()
    (_, forward), = speeds["flash2", "fwd"]
    return _log_interpolate([(s, v / forward) for s, v in speeds["flash2", "fwd+bwd"]],
                            seq_len)
