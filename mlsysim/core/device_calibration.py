"""Calibrate one device from the user's own microbenchmarks: ``mlsysim calibrate``.

Input: a CSV with a header and one measurement per row:

    kind,precision,m,n,k,value,unit
    gemm,bf16,4096,4096,4096,612.3,TFLOP/s     # achieved matmul throughput at that shape
    memcpy,,,,,2850,GB/s                       # device-to-device copy bandwidth
    attention,bf16,,,,410,TFLOP/s              # fused attention forward throughput
    launch,,,,,4.5,us                          # per-kernel launch/dispatch time

The same fits as the package's calibration run on these rows alone: eta_max (and, with at least
three GEMM shapes, the ramp tau and alpha; else the package's) from the GEMM rows, eta_mem
from copies, the attention fraction, and the median launch time. Terms without rows keep the
package's values. The result is the zoo's device spec plus an ``efficiency`` block, written as
YAML that ``mlsysim.load_hardware`` reads back and every solver then uses.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from ..errors import DataFileError
from ..specs.hardware import PRECISIONS, HardwareSpec
from .calibration import calibration, canonical_precision, fit_gemm, gemm_rows
from .datafile import as_path, open_text

__all__ = ["calibrate_device", "DeviceCalibration", "read_measurements"]

_UNITS = {"gemm": "TFLOP/s", "attention": "TFLOP/s", "memcpy": "GB/s", "launch": "us"}


def read_measurements(path: str | Path, hardware_key: str) -> list[dict]:
    """Parse the user's CSV; errors name the file and line."""
    path = as_path(path, "calibrate_device", field="measurements")
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        try:
            return _parse(reader, path, hardware_key)
        except csv.Error as exc:
            raise DataFileError(f"{path}, line {reader.line_num}: not a CSV row ({exc})") from None


def _parse(reader: csv.DictReader, path: Path, hardware_key: str) -> list[dict]:
    rows = []
    need = {"kind", "value", "unit"}
    if not need <= set(reader.fieldnames or []):
        raise DataFileError(f"{path}, line 1: the header needs kind, value and unit "
                            "(and precision, m, n, k for gemm rows)")
    for row in reader:
        line = reader.line_num
        kind = (row.get("kind") or "").strip().lower()
        if kind not in _UNITS:
            raise DataFileError(f"{path}, line {line}: kind {kind!r} is not one of "
                                f"{', '.join(_UNITS)}")
        if (row.get("unit") or "").strip() != _UNITS[kind]:
            raise DataFileError(f"{path}, line {line}: a {kind} row is in {_UNITS[kind]}, "
                                f"got {row.get('unit')!r}")
        try:
            value = float(row["value"])
            dims = [float(row[c]) if (row.get(c) or "").strip() else None
                    for c in ("m", "n", "k")]
        except ValueError as exc:
            raise DataFileError(f"{path}, line {line}: {exc}") from None
        if not math.isfinite(value) or value <= 0:
            raise DataFileError(f"{path}, line {line}: value must be a positive number")
        for c, d in zip("mnk", dims):
            # A GEMM size is a positive whole number; a negative or zero one would make
            # the fit's flop count meaningless (or complex).
            if d is not None and (not math.isfinite(d) or d <= 0 or not d.is_integer()):
                raise DataFileError(f"{path}, line {line}: GEMM size {c} must be a positive "
                                    f"whole number, got {row[c].strip()!r}")
        if kind == "gemm" and any(d is not None for d in dims) and None in dims:
            raise DataFileError(f"{path}, line {line}: give all of m, n and k for a gemm "
                                "row, or none (a shape-less row counts as large)")
        rows.append({"id": f"{path.name}:{line}", "hardware": hardware_key, "kind": kind,
                     "precision": (row.get("precision") or "fp16").strip() or "fp16",
                     "m": dims[0], "n": dims[1], "k": dims[2], "value": value})
    if not rows:
        raise DataFileError(f"{path}: no measurements")
    return rows


def _check_below_peaks(rows: list[dict], path, hardware: HardwareSpec, peaks: dict,
                       bandwidth: float) -> None:
    """A measurement above the datasheet peak is a unit slip (GFLOP/s written as TFLOP/s,
    bidirectional GB/s) or a wrong device: refuse it naming the peak rather than cap the
    efficiency at 1.0, which would hide the slip in a plausible-looking fit."""
    for r in rows:
        line = r["id"].rsplit(":", 1)[1]
        if r["kind"] in ("gemm", "attention"):
            prec = canonical_precision(r["precision"])
            peak = peaks.get((hardware.key, prec))
            if peak and r["value"] * 1e12 > peak:
                raise DataFileError(
                    f"{path}, line {line}: {r['kind']} {r['value']:g} TFLOP/s exceeds "
                    f"{hardware.name}'s {prec} datasheet peak of {peak / 1e12:g} TFLOP/s "
                    "(a unit slip? the column is TFLOP/s)")
        elif r["kind"] == "memcpy" and r["value"] * 1e9 > bandwidth:
            raise DataFileError(
                f"{path}, line {line}: memcpy {r['value']:g} GB/s exceeds {hardware.name}'s "
                f"datasheet memory bandwidth of {bandwidth / 1e9:g} GB/s (a unit slip, or "
                "read + write bytes counted twice?)")


@dataclass(frozen=True)
class DeviceCalibration:
    hardware: HardwareSpec            # the calibrated spec (with .efficiency)
    residuals: dict[str, float]       # row id -> measured / fitted (GEMM rows)
    fitted: tuple[str, ...]           # terms fitted from the user's rows
    kept: tuple[str, ...]             # terms kept from the package calibration

    def yaml(self) -> str:
        import yaml
        data = self.hardware.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)

    def report(self) -> str:
        eff = self.hardware.efficiency
        lines = [f"calibrated {self.hardware.name} from {eff.rows} measurements",
                 f"  fitted: {', '.join(self.fitted) or 'nothing'}; kept from the package: "
                 f"{', '.join(self.kept) or 'nothing'}",
                 f"  eta_gemm_max={eff.gemm_max:.3f} tau={eff.gemm_tau} alpha={eff.gemm_alpha:.3g}"
                 f" eta_attention={eff.attention_max:.3f} eta_mem={eff.memory:.3f} "
                 f"t_kernel={eff.kernel_overhead}"]
        for rid, r in sorted(self.residuals.items()):
            lines.append(f"  {rid}: measured / fitted = {r:.3f}")
        return "\n".join(lines)


def calibrate_device(measurements: str | Path, hardware: HardwareSpec) -> DeviceCalibration:
    rows = read_measurements(measurements, hardware.key)
    base = hardware._base
    peaks = {(hardware.key, p): base[f"peak_{p}"] for p in PRECISIONS if f"peak_{p}" in base}
    cal = calibration()
    pkg = cal.efficiency(hardware.key, hardware.compute.default_precision)
    fitted, kept = [], []

    unusable = [r["id"] for r in rows if r["kind"] in ("gemm", "attention")
                and (hardware.key, canonical_precision(r["precision"])) not in peaks]
    if unusable:
        raise DataFileError(
            f"{', '.join(unusable)}: precision not published for {hardware.name}; it has "
            f"peaks for {', '.join(hardware.compute.precisions)}")
    _check_below_peaks(rows, Path(measurements), hardware, peaks, base["bandwidth"])
    gemm = gemm_rows(rows, peaks)
    residuals: dict[str, float] = {}
    tau, alpha, gemm_max = pkg.gemm_tau_s, pkg.gemm_alpha, pkg.gemm_max
    if gemm:
        shapes = {f for _, _, f, _, _ in gemm if math.isfinite(f)}
        fixed = None if len(shapes) >= 3 else (tau, alpha)
        tau, alpha, gmax, residuals = fit_gemm(gemm, fixed=fixed)
        gemm_max = min(max(gmax.values()), 1.0)
        fitted.append("gemm" + ("" if fixed is None else " (eta_max only: < 3 shapes)"))
    else:
        kept.append("gemm")
    mem = [r["value"] * 1e9 / base["bandwidth"] for r in rows if r["kind"] == "memcpy"]
    memory = min(median(mem), 1.0) if mem else pkg.memory
    (fitted if mem else kept).append("memory")
    att = []
    for r in rows:
        if r["kind"] == "attention":
            peak = peaks.get((hardware.key, canonical_precision(r["precision"])))
            if peak:
                att.append(r["value"] * 1e12 / peak)
    attention = min(max(att), 1.0) if att else min(pkg.attention_max, gemm_max)
    (fitted if att else kept).append("attention")
    launch = [r["value"] * 1e-6 for r in rows if r["kind"] == "launch"]
    overhead = median(launch) if launch else pkg.kernel_overhead_s
    (fitted if launch else kept).append("kernel overhead")

    data = hardware.model_dump(mode="json", exclude_none=True)
    data["name"] = f"{hardware.name} (calibrated)"
    data["efficiency"] = {
        "gemm_max": round(gemm_max, 4), "gemm_tau": f"{tau * 1e6:.4g} us",
        "gemm_alpha": round(alpha, 4), "attention_max": round(attention, 4),
        "memory": round(memory, 4), "kernel_overhead": f"{overhead * 1e6:.4g} us",
        "source": f"mlsysim calibrate {Path(measurements).name}", "rows": len(rows),
    }
    return DeviceCalibration(hardware=HardwareSpec.from_dict(data, "calibrated device"),
                             residuals=residuals, fitted=tuple(fitted), kept=tuple(kept))
