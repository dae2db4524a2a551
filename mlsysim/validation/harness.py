"""Predict every published measurement in ``reference/reference.csv`` and report the error.

The measurements are used to *check* the model, never to fit it: nothing here reads a measured
value before the prediction is made, and no row has its own setting. Every row gets a status:

- ``ok``: predicted; signed error = predicted / measured - 1, and whether the measurement lies
  inside the prediction's calibration band;
- ``infeasible``: predicted, but the model says the measured configuration does not fit in
  memory (a model error of its own kind: listed, kept out of the error statistics);
- ``skipped``: not predictable yet, with a reason (unknown zoo name, no training solver,
  lengths not published, ...). Rows are never dropped silently.

How a row becomes a prediction (``predict_row``; see ``MAPPING_RULES`` for the text that goes
into docs/accuracy.md):

- Non-generative models (CNNs, encoders, diffusion, recommendation): ``Engine.solve`` at the
  row's batch. ``latency_ms`` -> latency; ``throughput_samples_per_s`` -> throughput x
  num_devices (data-parallel replicas, one model copy per device). A batch "chosen by the
  engine" (MLPerf Offline/Server) becomes the largest power of two <= 256 that fits memory.
- Generative models: ``ServingModel().solve`` with tensor parallelism ``tp`` = the degree the
  source states (``TP=4``, ``TP8``, ``world size 8``, ``tensor parallel`` over all devices),
  otherwise the smallest power of two <= min(num_devices, 8) for which the model fits; the
  remaining devices are data-parallel replicas (num_devices / tp).
  ``ttft_ms`` -> ttft, ``itl_ms`` -> itl, ``latency_ms`` -> e2e_latency (time to last token);
  throughputs count the tokens of whole requests over their whole time, prefill included:
  ``output_tokens_per_s`` = replicas x batch x output_len / e2e_latency (static-batch
  benchmarks time the context phase too; in steady-state continuous batching every request's
  prefill takes its share of the same device time), ``total_tokens_per_s`` likewise with
  prompt_len + output_len tokens, ``output_tokens_per_s_per_gpu`` divided by num_devices.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..core.datafile import open_text
from ..errors import DataFileError, MLSysimError, UnknownNameError, ValidationError

__all__ = ["load_reference", "predict_row", "run_validation", "render_markdown",
           "write_accuracy_docs", "ReferenceRow", "Prediction", "RowResult", "ValidationReport",
           "REFERENCE_CSV", "BASELINE_JSON", "CATEGORIES", "METRICS", "COLUMNS"]

HERE = Path(__file__).parent
REFERENCE_CSV = HERE / "reference" / "reference.csv"
BASELINE_JSON = HERE / "accuracy_baseline.json"
ACCURACY_MD = Path(__file__).parents[2] / "docs" / "accuracy.md"

COLUMNS = ("id", "category", "model", "hardware", "num_devices", "precision", "batch_size",
           "prompt_len", "output_len", "scenario", "metric", "value", "unit", "framework",
           "source_key", "notes")
CATEGORIES = ("vision_inference", "llm_inference", "llm_serving", "training",
              "recsys_inference")
METRICS = ("latency_ms", "throughput_samples_per_s", "ttft_ms", "itl_ms", "output_tokens_per_s",
           "output_tokens_per_s_per_gpu", "total_tokens_per_s", "tokens_per_s",
           "time_to_train_min", "energy_uj_per_inference")

# --- documented rules (no per-row settings) ------------------------------------------------
MAX_ENGINE_BATCH = 256      # batch "chosen by the engine": largest power of two <= this that fits
MAX_TP = 8                  # one scale-up domain of 8 devices (HGX/OAM boards)
DEFAULT_OUTPUT_LEN = 128    # output length assumed for per-token rates when a source omits it
# Inputs fixed by a benchmark's definition (not by a measurement): MLPerf Inference bert-99 runs
# SQuAD v1.1 at max_seq_len 384 (mlcommons/inference language/bert).
BENCHMARK_SEQ_LEN = {("mlperf", "BERT_Large"): 384}
# Rows whose "sample" is a different unit of work from the zoo model's sample.
SAMPLE_MISMATCH = {
    ("mlperf", "UNet3D"): "the zoo's UNet3D sample is one 128^3 patch; an MLPerf 3d-unet sample "
                          "is a whole KiTS19 case, swept by many overlapping patches",
}

SKIP_CODES = {
    "no-training-solver": "training metric: no training solver yet",
    "no-energy-model": "energy metric: no energy model yet",
    "ambiguous-metric": "the source leaves the metric ambiguous (output-only vs input+output "
                        "tokens, or per GPU vs all GPUs)",
    "unknown-model": "model not in the zoo",
    "unknown-hardware": "hardware not in the zoo",
    "sample-mismatch": "benchmark sample is a different unit of work from the zoo model's",
    "missing-lengths": "prompt/output lengths not published",
    "missing-batch": "batch size not published for a latency metric",
    "unsupported-precision": "device has no peak for the stated precision",
    "solver-refused": "the solver rejects the configuration",
}


# --- reading the reference file ------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceRow:
    """One published measurement (types parsed; empty optional fields are ``None``/"")."""

    id: str
    category: str
    model: str
    hardware: str
    num_devices: int
    precision: str
    batch_size: int | None
    prompt_len: int | None
    output_len: int | None
    scenario: str
    metric: str
    value: float
    unit: str
    framework: str
    source_key: str
    notes: str
    line: int = 0
    path: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, line: int = 0,
                     path: str = "<row>") -> "ReferenceRow":
        """Parse a row of strings (as the csv module gives it); errors name file and line."""
        where = f"{path}, line {line}"

        def text(c: str) -> str:
            v = data.get(c)
            return "" if v is None else str(v).strip()

        def count(c: str, required: bool = False) -> int | None:
            v = text(c)
            if not v:
                if required:
                    raise DataFileError(f"{where}: column '{c}' is empty; it needs a whole "
                                        "number >= 1")
                return None
            try:
                n = float(v)
            except ValueError:
                raise DataFileError(f"{where}: column '{c}' must be a whole number >= 1. Got "
                                    f"{v!r} instead.") from None
            if not math.isfinite(n) or n < 1 or n != int(n):
                raise DataFileError(f"{where}: column '{c}' must be a whole number >= 1. Got "
                                    f"{v!r} instead.")
            return int(n)

        raw = text("value")
        try:
            value = float(raw)
        except ValueError:
            raise DataFileError(f"{where}: column 'value' must be a number. Got {raw!r} "
                                "instead.") from None
        if not math.isfinite(value) or value <= 0:
            raise DataFileError(f"{where}: column 'value' must be a positive number. Got "
                                f"{raw!r} instead.")
        metric, category = text("metric"), text("category")
        if metric not in METRICS:
            raise DataFileError(f"{where}: unknown metric {metric!r}; known metrics: "
                                f"{', '.join(METRICS)}")
        if category not in CATEGORIES:
            raise DataFileError(f"{where}: unknown category {category!r}; known categories: "
                                f"{', '.join(CATEGORIES)}")
        if not text("id"):
            raise DataFileError(f"{where}: column 'id' is empty")
        return cls(id=text("id"), category=category, model=text("model"),
                   hardware=text("hardware"), num_devices=count("num_devices", True),
                   precision=text("precision"), batch_size=count("batch_size"),
                   prompt_len=count("prompt_len"), output_len=count("output_len"),
                   scenario=text("scenario"), metric=metric, value=value, unit=text("unit"),
                   framework=text("framework"), source_key=text("source_key"),
                   notes=text("notes"), line=line, path=path)


def load_reference(path: str | Path | None = None) -> list[ReferenceRow]:
    """Rows of the reference file. A malformed row (wrong number of fields, a value that is not
    a number, an unknown metric or category, a duplicate id) raises
    :class:`~mlsysim.errors.DataFileError` naming the file and the line."""
    path = Path(path) if path is not None else REFERENCE_CSV
    rows: list[ReferenceRow] = []
    seen: dict[str, int] = {}
    with open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFileError(f"{path}, line 1: empty file; expected the header "
                                f"{','.join(COLUMNS)}") from None
        except csv.Error as exc:
            raise DataFileError(f"{path}, line 1: {exc}") from None
        header = [h.strip() for h in header]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataFileError(f"{path}, line 1: missing columns {', '.join(missing)}")
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise DataFileError(f"{path}, line {reader.line_num}: {exc}") from None
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataFileError(f"{path}, line {line}: {len(fields)} fields, expected "
                                    f"{len(header)} ({','.join(header)})")
            row = ReferenceRow.from_mapping(dict(zip(header, fields, strict=True)), line=line,
                                            path=str(path))
            if row.id in seen:
                raise DataFileError(f"{path}, line {line}: duplicate id {row.id!r} (first on "
                                    f"line {seen[row.id]})")
            seen[row.id] = line
            rows.append(row)
    return rows


# --- one row -> one prediction -------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """What the model says for one row. ``value``/``low``/``high`` are in the row's unit."""

    status: str                       # "ok" | "infeasible" | "skipped"
    value: float | None = None
    low: float | None = None
    high: float | None = None
    reason: str | None = None         # why skipped / infeasible
    code: str | None = None           # skip reason code (SKIP_CODES)
    method: str = ""                  # which API call and quantity
    assumptions: tuple[str, ...] = ()


class _Skip(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _skipped(code: str, reason: str, assumptions: Iterable[str] = ()) -> Prediction:
    return Prediction(status="skipped", code=code, reason=reason,
                      assumptions=tuple(assumptions))


def _benchmark(row: ReferenceRow) -> str:
    return "mlperf" if row.scenario.lower().startswith("mlperf") else row.scenario.lower()


def _precisions(row: ReferenceRow, hw, generative: bool, notes: list[str]):
    """(compute precision, weight precision or None) in the zoo's names, or _Skip."""
    from ..core.calibration import canonical_precision

    supported = hw.compute.precisions
    text = row.precision.strip()
    if not text:
        p = hw.compute.default_precision
        notes.append(f"precision not stated: device default {p}")
        return p, None
    if "weight-only" in text.lower() or "weight only" in text.lower():
        if not generative:
            raise _Skip("unsupported-precision", f"'{text}' (weight-only quantization) has no "
                        "equivalent for a non-generative model in the Engine")
        w = canonical_precision(text)
        c = "bf16" if "bf16" in supported else hw.compute.default_precision
        notes.append(f"weight-only {w}: {w} weights, {c} activations")
        return c, w
    p = canonical_precision(text)
    if p not in supported:
        raise _Skip("unsupported-precision", f"precision '{text}' ({p}) has no published peak on"
                    f" {hw.name}; supported: {', '.join(supported)} (not substituted)")
    return p, None


_PER_GPU_OR_TOTAL = re.compile(r"per-GPU or total", re.IGNORECASE)
_TP_RE = re.compile(r"\bTP\s*=?\s*(\d+)\b")
_WORLD_RE = re.compile(r"\bworld size\s*(\d+)\b", re.IGNORECASE)


def _stated_tp(row: ReferenceRow) -> int | None:
    """The tensor-parallel degree the source states, if it does (a configuration fact)."""
    m = _TP_RE.search(row.notes) or _WORLD_RE.search(row.notes)
    if m:
        return int(m.group(1))
    if re.search(r"\btensor parallel", row.notes, re.IGNORECASE):
        return row.num_devices
    return None


def _engine_batch(solve, notes: list[str]):
    """Largest power of two <= MAX_ENGINE_BATCH that fits memory (or batch 1, infeasible)."""
    b = MAX_ENGINE_BATCH
    while b >= 1:
        p = solve(b)
        if p.feasible or b == 1:
            notes.append(f"batch chosen by the engine: {b} (largest power of two <= "
                         f"{MAX_ENGINE_BATCH} that fits)")
            return b, p
        b //= 2
    raise AssertionError("unreachable")


def _predict_engine(row: ReferenceRow, model, hw, notes: list[str]) -> Prediction:
    from ..core.engine import Engine

    precision, _ = _precisions(row, hw, False, notes)
    seq = row.prompt_len
    if seq is None and (_benchmark(row), row.model) in BENCHMARK_SEQ_LEN:
        seq = BENCHMARK_SEQ_LEN[(_benchmark(row), row.model)]
        notes.append(f"sequence length {seq} from the benchmark definition")

    def solve(batch: int):
        return Engine.solve(model, hw, batch_size=batch, precision=precision, seq_len=seq)

    if row.metric == "latency_ms":
        if row.batch_size is None:
            raise _Skip("missing-batch", "latency row without a batch size")
        p = solve(row.batch_size)
        lo, hi = (q.to("ms").magnitude for q in p.band)
        value, low, high = p.latency.to("ms").magnitude, lo, hi
        method = f"Engine.solve(batch={p.batch_size}, {precision}).latency"
    else:  # throughput_samples_per_s
        if row.batch_size is None:
            batch, p = _engine_batch(solve, notes)
        else:
            batch, p = row.batch_size, solve(row.batch_size)
        n = row.num_devices
        lo, hi = (q.to("s").magnitude for q in p.band)
        value = float(p.throughput) * n
        low, high = batch / hi * n, batch / lo * n
        method = (f"Engine.solve(batch={batch}, {precision}).throughput x {n} device"
                  f"{'s' if n > 1 else ''} (data parallel)")
        if row.scenario.lower() == "mlperf-server":
            notes.append("Server scenario predicted as Offline (no latency bound): an upper "
                         "bound")
    return _finish(value, low, high, p.feasible, p.reason, method, notes)


def _finish(value, low, high, feasible: bool, reason, method, notes) -> Prediction:
    return Prediction(status="ok" if feasible else "infeasible", value=float(value),
                      low=float(low), high=float(high),
                      reason=None if feasible else f"does not fit: {reason}", method=method,
                      assumptions=tuple(notes))


def _predict_serving(row: ReferenceRow, model, hw, notes: list[str]) -> Prediction:
    from ..solvers.serving import ServingModel

    metric = row.metric
    precision, wprec = _precisions(row, hw, True, notes)
    prompt, out = row.prompt_len, row.output_len
    if prompt is None:
        raise _Skip("missing-lengths", "prompt length not published (MLPerf datasets have "
                    "variable lengths)")
    if out is None:
        if metric == "ttft_ms":
            out = 1
        elif metric in ("itl_ms", "output_tokens_per_s", "output_tokens_per_s_per_gpu") and \
                row.batch_size is not None:
            out = DEFAULT_OUTPUT_LEN
            notes.append(f"output length not stated: {out} assumed (a per-token rate depends "
                         "on it only through the mean context)")
        else:
            raise _Skip("missing-lengths", "output length not published")
    if row.batch_size is not None:
        batch: int | str = row.batch_size
    elif metric in ("output_tokens_per_s", "output_tokens_per_s_per_gpu", "total_tokens_per_s"):
        batch = "max"
    else:
        raise _Skip("missing-batch", f"{metric} row without a batch size")

    solver = ServingModel()

    def solve(tp: int, b):
        r = solver.solve(model, hw, seq_len=prompt, output_len=out, batch_size=b,
                         precision=precision, weight_precision=wprec, tp_size=tp)
        if b == "max" and r.batch_size > MAX_ENGINE_BATCH:
            r = solver.solve(model, hw, seq_len=prompt, output_len=out,
                             batch_size=MAX_ENGINE_BATCH, precision=precision,
                             weight_precision=wprec, tp_size=tp)
        return r

    stated = _stated_tp(row)
    if stated is not None:
        tp = stated
        r = solve(tp, batch)
        notes.append(f"tp={tp} as stated by the source")
    else:
        limit = min(row.num_devices, MAX_TP)
        tp, r = 1, None
        while tp <= limit:
            heads = getattr(model, "heads", None)
            if heads is None or heads % tp == 0:
                r = solve(tp, batch)
                if r.feasible:
                    break
            if tp * 2 > limit:
                break
            tp *= 2
        if r is None:  # pragma: no cover - tp=1 always divides the heads
            raise _Skip("solver-refused", "no tensor-parallel degree divides the heads")
        notes.append(f"tp={tp}: smallest power of two <= {limit} that fits")
    if tp > row.num_devices:
        raise _Skip("solver-refused", f"stated tp={tp} exceeds num_devices={row.num_devices}")
    replicas = row.num_devices // tp
    if batch == "max":
        notes.append(f"batch chosen by the engine: {r.batch_size} (most sequences whose KV "
                     f"cache fits, at most {MAX_ENGINE_BATCH})")

    band = r.band
    t_lo, t_hi = (q.to("ms").magnitude for q in band["ttft"])
    i_lo, i_hi = (q.to("ms").magnitude for q in band["itl"])
    ttft, itl = r.ttft.to("ms").magnitude, r.itl.to("ms").magnitude
    e2e = r.e2e_latency.to("ms").magnitude
    e_lo, e_hi = t_lo + (out - 1) * i_lo, t_hi + (out - 1) * i_hi
    b = r.batch_size
    dp = f" x {replicas} replicas" if replicas > 1 else ""
    call = (f"ServingModel(tp={tp}, batch={b}, {r.precision}"
            + (f", weights {r.weight_precision}" if wprec else "")
            + f", prompt={prompt}, out={out})")
    if metric == "ttft_ms":
        value, low, high, method = ttft, t_lo, t_hi, f"{call}.ttft"
    elif metric == "itl_ms":
        value, low, high, method = itl, i_lo, i_hi, f"{call}.itl"
    elif metric == "latency_ms":
        value, low, high, method = e2e, e_lo, e_hi, f"{call}.e2e_latency"
    else:
        tokens = b * (prompt + out if metric == "total_tokens_per_s" else out) * replicas
        per = row.num_devices if metric == "output_tokens_per_s_per_gpu" else 1
        value, low, high = (tokens / t * 1e3 / per for t in (e2e, e_hi, e_lo))
        what = "(prompt+output)" if metric == "total_tokens_per_s" else "output"
        method = (f"{call}: batch x {what} tokens / e2e_latency{dp}"
                  + (f" / {per} devices" if per > 1 else ""))
    return _finish(value, low, high, r.feasible, r.reason, method, notes)


def predict_row(row: ReferenceRow | Mapping[str, Any]) -> Prediction:
    """The prediction for one reference row (see the module docstring for the mapping)."""
    from ..specs.model import SSMSpec, TransformerSpec
    from ..zoo import Hardware, Models

    if not isinstance(row, ReferenceRow):
        row = ReferenceRow.from_mapping(row)
    notes: list[str] = []
    metric = row.metric
    if row.category == "training" or metric == "time_to_train_min":
        return _skipped("no-training-solver", f"training row ({metric}): no training solver "
                        "yet")
    if metric == "energy_uj_per_inference":
        return _skipped("no-energy-model", "energy per inference: no energy model yet")
    if metric == "tokens_per_s":
        return _skipped("ambiguous-metric", "'tokens_per_s': the source does not say whether "
                        "input tokens are counted (a factor of up to 2 at equal ISL/OSL)")
    if row.num_devices > 1 and _PER_GPU_OR_TOTAL.search(row.notes):
        return _skipped("ambiguous-metric", f"the source does not say whether this throughput "
                        f"is per GPU or for all {row.num_devices} GPUs (a factor of "
                        f"{row.num_devices})")
    try:
        model = Models.get(row.model)
    except UnknownNameError as exc:
        return _skipped("unknown-model", str(exc))
    try:
        hw = Hardware.get(row.hardware)
    except UnknownNameError as exc:
        return _skipped("unknown-hardware", str(exc))
    mismatch = SAMPLE_MISMATCH.get((_benchmark(row), row.model))
    if mismatch:
        return _skipped("sample-mismatch", mismatch)
    generative = isinstance(model, SSMSpec) or (isinstance(model, TransformerSpec)
                                                and model.kind != "encoder")
    engine_metrics = ("latency_ms", "throughput_samples_per_s")
    try:
        if generative:
            return _predict_serving(row, model, hw, notes)
        if metric not in engine_metrics:
            return _skipped("solver-refused", f"{metric} needs a generative model; "
                            f"{model.name} is {model.architecture}")
        return _predict_engine(row, model, hw, notes)
    except _Skip as s:
        return _skipped(s.code, s.reason, notes)
    except MLSysimError as exc:
        return _skipped("unsupported-precision" if "precision" in type(exc).__name__.lower()
                        else "solver-refused", f"{type(exc).__name__}: {exc}", notes)


# --- the report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RowResult:
    row: ReferenceRow
    prediction: Prediction

    @property
    def status(self) -> str:
        return self.prediction.status

    @property
    def measured(self) -> float:
        return self.row.value

    @property
    def predicted(self) -> float | None:
        return self.prediction.value

    @property
    def signed_error(self) -> float | None:
        """predicted / measured - 1 (positive: the model predicts more than was measured)."""
        if self.prediction.value is None:
            return None
        return self.prediction.value / self.row.value - 1.0

    @property
    def abs_error(self) -> float | None:
        e = self.signed_error
        return None if e is None else abs(e)

    @property
    def inside_band(self) -> bool | None:
        p = self.prediction
        if p.low is None or p.high is None:
            return None
        lo, hi = min(p.low, p.high), max(p.low, p.high)
        return lo <= self.row.value <= hi

    def to_dict(self) -> dict[str, Any]:
        r, p = self.row, self.prediction
        return {
            "id": r.id, "category": r.category, "model": r.model, "hardware": r.hardware,
            "num_devices": r.num_devices, "precision": r.precision or None,
            "batch_size": r.batch_size, "prompt_len": r.prompt_len, "output_len": r.output_len,
            "scenario": r.scenario, "metric": r.metric, "unit": r.unit,
            "source_key": r.source_key, "status": p.status, "measured": r.value,
            "predicted": p.value, "band_low": p.low, "band_high": p.high,
            "signed_error": self.signed_error, "abs_error": self.abs_error,
            "inside_band": self.inside_band, "reason": p.reason, "skip_code": p.code,
            "method": p.method or None, "assumptions": list(p.assumptions),
        }


def _quantile(xs: list[float], q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default)."""
    if not xs:
        return None
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    a, b = xs[int(math.floor(i))], xs[int(math.ceil(i))]
    return a + (b - a) * (i - math.floor(i))


def _summary(results: list[RowResult]) -> dict[str, Any]:
    ok = [r for r in results if r.status == "ok"]
    errs = [r.abs_error for r in ok]
    worst = max(ok, key=lambda r: r.abs_error) if ok else None
    band = [r.inside_band for r in ok if r.inside_band is not None]
    return {
        "n_rows": len(results),
        "n_ok": len(ok),
        "n_infeasible": sum(r.status == "infeasible" for r in results),
        "n_skipped": sum(r.status == "skipped" for r in results),
        "median_abs_error": _quantile(errs, 0.5),
        "p90_abs_error": _quantile(errs, 0.9),
        "worst_abs_error": worst.abs_error if worst else None,
        "worst_id": worst.row.id if worst else None,
        "median_signed_error": _quantile([r.signed_error for r in ok], 0.5),
        "band_coverage": (sum(band) / len(band)) if band else None,
    }


@dataclass
class ValidationReport:
    """Every row's result and the per-category summary."""

    results: list[RowResult]
    categories: tuple[str, ...]
    reference: str = str(REFERENCE_CSV)
    elapsed_s: float = 0.0
    summary: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self):
        self.summary = {c: _summary([r for r in self.results if r.row.category == c])
                        for c in self.categories}
        self.summary["all"] = _summary(self.results)

    def by_status(self, status: str) -> list[RowResult]:
        return [r for r in self.results if r.status == status]

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.by_status("skipped"):
            counts[r.prediction.code or "?"] = counts.get(r.prediction.code or "?", 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "reference": self.reference,
            "error_definition": "signed_error = predicted / measured - 1; abs_error = "
                                "|signed_error|; band_coverage = share of ok rows whose "
                                "measurement lies inside the prediction's band",
            "categories": self.summary,
            "skipped_by_reason": self.skipped_by_reason,
            "skip_reason_text": {k: SKIP_CODES.get(k, k) for k in self.skipped_by_reason},
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if rows:
            d["rows"] = [r.to_dict() for r in self.results]
        return d

    def table(self):
        """The per-category summary as a rich Table."""
        from rich.table import Table

        t = Table(title="MLSys·im vs published measurements (|predicted/measured - 1|)",
                  header_style="bold")
        for h in ("category", "rows", "ok", "infeas.", "skipped", "median |err|", "p90 |err|",
                  "worst |err| (row)", "median signed", "in band"):
            t.add_column(h, justify="left" if h == "category" else "right")
        for cat, s in self.summary.items():
            t.add_row(cat, str(s["n_rows"]), str(s["n_ok"]), str(s["n_infeasible"]),
                      str(s["n_skipped"]), _pct(s["median_abs_error"]),
                      _pct(s["p90_abs_error"]),
                      f"{_pct(s['worst_abs_error'])} ({s['worst_id']})" if s["worst_id"]
                      else "-", _pct(s["median_signed_error"], signed=True),
                      _pct(s["band_coverage"]), style="bold" if cat == "all" else None)
        return t

    def rows_table(self, statuses: Iterable[str] = ("ok", "infeasible", "skipped")):
        """Every row: measured, predicted, error, band, status or reason (a rich Table)."""
        from rich.table import Table

        statuses = set(statuses)
        t = Table(title="Rows (error = predicted / measured - 1; reasons in --json)",
                  header_style="bold")
        for h in ("id", "model", "hardware", "n", "metric", "measured", "predicted", "error",
                  "band", "status / reason"):
            t.add_column(h, justify="right" if h in ("n", "measured", "predicted", "error")
                         else "left", overflow="fold")
        for r in self.results:
            if r.status not in statuses:
                continue
            p = r.prediction
            band = "-" if p.low is None else (
                f"{_num(p.low)}-{_num(p.high)} {'in' if r.inside_band else 'out'}")
            status = {"ok": "ok", "infeasible": "infeasible (memory)"}.get(
                r.status, f"skipped: {p.code}")
            t.add_row(r.row.id, r.row.model, r.row.hardware, str(r.row.num_devices),
                      r.row.metric, _num(r.measured), _num(p.value),
                      _pct(r.signed_error, signed=True), band, status)
        return t

    def __rich__(self):
        return self.table()


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    x = round(x * 100, 1) + 0.0  # no "-0.0%"
    return f"{x:+.1f}%" if signed and x else f"{x:.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def run_validation(categories: Iterable[str] | None = None,
                   path: str | Path | None = None) -> ValidationReport:
    """Predict every row of the reference file (or those of ``categories``) and report."""
    t0 = time.perf_counter()
    if categories is not None:
        categories = tuple(categories)
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            raise ValidationError("categories", f"contains unknown {', '.join(map(repr, unknown))}"
                                  f"; choose from {', '.join(CATEGORIES)}.",
                                  owner="run_validation")
    rows = load_reference(path)
    wanted = categories or tuple(c for c in CATEGORIES if any(r.category == c for r in rows))
    results = [RowResult(r, predict_row(r)) for r in rows if r.category in wanted]
    return ValidationReport(results=results, categories=tuple(wanted),
                            reference=str(Path(path) if path else REFERENCE_CSV),
                            elapsed_s=time.perf_counter() - t0)


# --- docs/accuracy.md and the regression baseline -----------------------------------------
MAPPING_RULES = """\
- **Non-generative models** (CNNs, BERT, SDXL, DLRM): `Engine.solve(model, hardware,
  batch_size, precision)`. `latency_ms` is the predicted latency at the row's batch;
  `throughput_samples_per_s` is the predicted throughput x `num_devices` (one model copy per
  device, data parallel: no inter-device cost). A batch "chosen by the submitter/engine"
  (MLPerf Offline and Server) is the largest power of two <= 256 that fits memory (the
  predicted throughput of the CNNs, BERT and SDXL changes < 5 % between 128 and 256; DLRM-v2
  is still launch-bound there and would keep growing). MLPerf Server rows are predicted as
  Offline, i.e. without the latency bound: an upper bound by construction. MLPerf bert-99 runs
  at the benchmark's max_seq_len of 384 tokens.
- **Generative models**: `ServingModel().solve(model, hardware, seq_len=prompt_len,
  output_len, batch_size, precision, weight_precision, tp_size)`. The tensor-parallel degree
  is the one the source states (`TP=4`, `TP8`, `world size 8`, "tensor parallel" over all
  devices); otherwise the smallest power of two <= min(num_devices, 8) for which the model
  fits. The other devices are data-parallel replicas (`num_devices / tp`).
  `ttft_ms` -> `ttft`; `itl_ms` -> `itl`; `latency_ms` -> `e2e_latency` (time to last
  token). Throughputs count whole requests over their whole time, prefill included:
  `output_tokens_per_s` = replicas x batch x output_len / e2e_latency (static-batch benchmarks
  time the context phase too, and in steady-state continuous batching every request's prefill
  takes its share of the same device time); `total_tokens_per_s` counts prompt + output
  tokens; `output_tokens_per_s_per_gpu` is divided by `num_devices`. A batch chosen by the
  engine is the most sequences whose KV cache fits, at most 256.
- **Precision**: the row's text mapped to the zoo's names (`FP8 (e4m3)` -> fp8, `fp16 (AMP)`
  -> fp16); "int8/int4 weight-only" -> int8/int4 weights with bf16 activations. An empty
  precision uses the device default (fp16) and says so in the row; a precision the device has
  no peak for is skipped, never substituted.
- **Lengths**: rows without a prompt length are skipped (MLPerf LLM datasets have variable
  lengths, not published per row). A per-token rate (ITL, tokens/s at a given batch) without
  an output length assumes 128 output tokens: it moves only the mean context (for gpt-fast's
  5-token prompt, KV reads stay < 1 % of weight reads).
- **Skipped, with the reason in every row**: training metrics (no training solver yet), energy,
  metrics the source leaves ambiguous (output-only vs input+output tokens, per-GPU vs total),
  devices or models not in the zoo (never mapped to a near match), benchmarks whose sample is
  a different unit of work (MLPerf 3d-unet: a whole KiTS19 case vs the zoo's 128^3 patch), and
  configurations the solver refuses (its message is kept).
- **Error**: signed error = predicted / measured - 1; the statistics use |error| over `ok`
  rows. The band is the calibration spread of every efficiency term (fitted to
  microbenchmarks, not to these rows); coverage is the share of `ok` rows whose measurement
  lies inside it. `infeasible` rows (the model says the measured configuration does not fit
  in memory) are listed but kept out of the error statistics.
"""

# The analysis of the run (written from it; row errors in {err:ID} / {range:ID,...} are filled
# in from the live report, so the numbers stay current when the model changes).
WEAK_SPOTS = """\
Every group below is a physics or definition gap, not noise; none is corrected per row. The
errors quoted are filled in from the run this page was generated with.

1. **Precision the source does not state (MLPerf, TensorRT).** Rows without a precision are
   predicted at the device default, fp16. NVIDIA's closed submissions run ResNet-50 and BERT in
   INT8 (twice the fp16 tensor peak, half the bytes) and BERT on unpadded variable-length
   sequences (SQuAD questions are mostly shorter than the 384 tokens we charge). Offline
   throughput is therefore under-predicted ({range:REF-001,REF-033,REF-036,REF-039,REF-042}
   for ResNet-50, {range:REF-004,REF-034} for BERT) and SingleStream latency over-predicted
   ({range:REF-037,REF-040,REF-043} for BERT). Where the working set fits on chip the DRAM
   roofline is also the wrong bound: ResNet-50 on L4 ({err:REF-038}) is predicted
   memory-bound at 300 GB/s, while INT8 weights (25 MB) and activations largely fit in its
   48 MB L2. ResNet-50 batch 1 on A100 lands at {err:REF-035} while the same system's
   Offline row is {err:REF-036}: the batch-1 agreement is no evidence that fp16 was right.
2. **Host, framework and serving-stack time outside the device.** PyTorch eager at batch 1
   ({range:REF-056,REF-058,REF-060}) is Python dispatch of ~160 eager ops plus per-iteration
   host work; the cost model charges only a per-kernel launch floor fitted to launch
   microbenchmarks. The Triton + ONNX Runtime rows time the client: batch-1 latency includes
   the request round trip ({range:REF-050,REF-052,REF-054}) and batch-128 throughput includes
   shipping 128 fp32 images (77 MB) per request ({range:REF-051,REF-053,REF-055}). PyTorch
   eager at batch 256 ({range:REF-057,REF-059}) runs unfused BatchNorm/ReLU and AMP casts
   where the zoo's ResNet-50 assumes the folded, fused kernels of an inference engine. These
   rows measure the software stack; a device model cannot get them right without modelling
   it.
3. **Small-message all-reduce in tensor-parallel decode.** The collective model is a ring
   fitted to nccl/rccl-tests: an 8-GPU all-reduce of a few kB costs 2(n-1) ring steps (about
   37 us on H100, 77 us on MI300X) and a 70B decode step has 160 of them. TensorRT-LLM on H100
   matches (Llama-3 70B/405B time to last token
   {range:REF-112,REF-114,REF-116,REF-118,REF-120,REF-122,REF-124,REF-126}),
   but vLLM on MI300X is over-predicted ({range:REF-111,REF-113,REF-115,REF-117,REF-119,REF-121})
   for 70B and less for 405B ({range:REF-123,REF-125}), where the weights weigh more: the
   measured ~9.3 ms per token leaves at most ~30 us per all-reduce, i.e. the one-shot custom
   all-reduce serving engines use instead of a ring. The MI300X max-load throughputs are low
   for the same reason ({range:REF-127,REF-129}). gpt-fast on A100 shows the same at TP8
   ({err:REF-104} for 7B, {err:REF-107} for 70B) while TP2/TP4 are
   {range:REF-102,REF-103,REF-105,REF-106}.
4. **Fixed per-call overhead in time to first token.** TensorRT-LLM v0.5 gptSessionBenchmark
   times a whole generate() call with one output token. At 128-token prompts the model is
   short by a few ms ({range:REF-061,REF-063,REF-065,REF-067,REF-069,REF-071,REF-073,REF-075}):
   session setup, sampling and host synchronisation are not in the prefill model. At 2048
   tokens A100 FP16 is exact ({range:REF-074,REF-076}) but H100 FP8 stays low
   ({range:REF-064,REF-066}): the FP8 efficiency is fitted to current cuBLASLt GEMMs, and the
   FP8 kernels of a 2023 release likely ran below it.
5. **Weight-only quantization (int8/int4).** Predicted as pure byte savings: gpt-fast int8 is
   {range:REF-098,REF-100} and int4 (group size 32) {range:REF-099,REF-101} at TP1. Unpacking
   int4 and applying group scales inside the GEMV keeps these kernels from streaming at full
   bandwidth; the cost model has no dequantization term.
6. **Large-batch, long-output decode (TensorRT-LLM v0.6.1, Llama-2 70B FP8).** Batch 480 and
   64 with 2048 output tokens are over-predicted ({range:REF-082,REF-084}); short outputs less
   so ({range:REF-081,REF-083}). The KV cache dominates these steps. Rows do not state the KV
   precision: we keep it at the compute precision (fp8), while an fp16 KV cache (the default
   unless configured) doubles those bytes, and the decode-attention kernels of that release
   were not yet GQA-aware. The row cannot separate the two.
7. **Recommendation (DLRM-v2).** Over-predicted ~10x ({range:REF-006,REF-022}). The zoo's
   sample moves ~55 kB of fp16 embedding rows and 16 MMAC; at H100/H200 bandwidth that is
   microseconds, so the prediction is launch-bound at batch 256. The measured ~75-80k
   samples/s per GPU is far below both roofs: the MLPerf pipeline (queries of 100-700 samples
   assembled on the host, multi-hot index transfer, 214 scattered 128-dim gathers per sample)
   is not modelled, and no row splits it.
8. **Memory accounting in static-batch engines.** The TensorRT-LLM v0.6.1 configurations
   listed under "Infeasible rows" do not fit here: with fp16 KV reserved for the full output
   length, e.g. Llama-2 7B batch 60 x 2176 tokens needs 82 GB on an 80 GB A100. The engine
   must have used a smaller KV footprint than we charge; their throughput predictions are
   still {range:REF-088,REF-089,REF-090,REF-095}.
9. **The band is narrow.** It is the spread of the microbenchmark calibration (GEMM residuals,
   copy bandwidth, launch cost) and covers few end-to-end rows: it describes device-physics
   uncertainty, not framework overhead, unknown precision or workload-definition gaps. Read
   it as a lower bound on the uncertainty of an end-to-end number.

Where it is good: batch-1 decode that is bandwidth-bound and not all-reduce-bound (gpt-fast
bf16 at TP1-TP4, {range:REF-097,REF-102,REF-103,REF-105,REF-106}); TensorRT-LLM 0.16 on H100,
time to last token at batch 1-8
({range:REF-112,REF-114,REF-116,REF-118,REF-120,REF-122,REF-124,REF-126}) and max-load
throughput ({err:REF-128} at 128/2048, {err:REF-130} at 2048/2048); SDXL images/s
({range:REF-012,REF-021}); static-batch Llama-2 7B throughput on H100 and L40S
({range:REF-078,REF-079,REF-080,REF-094,REF-096}).
"""

REFERENCE_ISSUES = """\
Found while validating, and how each was handled (values are never changed):

- **Azure AI-benchmarking-guide rows (REF-131..147) were relabelled output tokens/s.** The
  guide's `LLMBenchmark.py` runs TensorRT-LLM's `benchmarks/python/benchmark.py`, whose
  `tokens_per_sec` is `batch_size * output_len / latency`: output tokens only. As
  "input+output" they implied an implausibly slow device (17x off in every row). Their
  precision is inferred from a `config.json` default (fp8), but the measured H100/A100 ratio
  (~3.1x for the 7-8B models) is the fp16 peak ratio (989/312), not fp8's (~6x): they may be
  fp16 runs, which would explain the H100/H200 rows' over-prediction.
- **TensorRT-LLM v0.6.1 "Throughput (out tok/s)" for A100 TP4** (REF-091..093) are flagged
  in their notes as per-GPU-or-total ambiguous and skipped as such.
- **GPT-J at a 2048-token prompt** (REF-062, REF-068, REF-072) fits: generating n tokens
  caches only prompt + n - 1 positions (ServingModel now checks exactly that). REF-086
  (2048 + 2048) exceeds GPT-J's context outright.
- **MLPerf LLM rows** (22) have no prompt/output lengths (variable-length datasets); adding the
  datasets' mean lengths to the reference would let them be predicted.
"""


def _group_rows(report: ValidationReport) -> list[tuple[str, list[RowResult]]]:
    groups: dict[str, list[RowResult]] = {}
    for r in report.results:
        if r.status == "ok":
            key = f"{r.row.source_key} / {r.row.hardware} / {r.row.metric}"
            groups.setdefault(key, []).append(r)
    return sorted(groups.items(), key=lambda kv: kv[0])


def _fill(text: str, report: ValidationReport) -> str:
    """Replace {err:ID}, {range:ID,...} and {out_only:ID,...} with the live row errors."""
    by_id = {r.row.id: r for r in report.results}

    def err(rid: str) -> float | None:
        r = by_id.get(rid)
        return r.signed_error if r is not None else None

    def out_only(rid: str) -> float | None:
        r = by_id.get(rid)
        if r is None or r.predicted is None or not r.row.output_len or not r.row.prompt_len:
            return None
        share = r.row.output_len / (r.row.prompt_len + r.row.output_len)
        return r.predicted * share / r.measured - 1.0

    def span(values: list[float | None]) -> str:
        vals = sorted(v for v in values if v is not None)
        if not vals:
            return "(not predicted)"
        lo, hi = _pct(vals[0], signed=True), _pct(vals[-1], signed=True)
        return lo if lo == hi else f"{lo} to {hi}"

    def without_source(m: re.Match) -> str:
        cat, src = m.group(1), m.group(2)
        errs = [r.abs_error for r in report.results if r.status == "ok"
                and r.row.category == cat and r.row.source_key != src]
        return f"{_pct(_quantile(errs, 0.5))} (p90 {_pct(_quantile(errs, 0.9))})"

    text = re.sub(r"\{median_without_source:(\w+):(\w+)\}", without_source, text)

    def sub(m: re.Match) -> str:
        kind, ids = m.group(1), [i.strip() for i in m.group(2).split(",")]
        if kind == "err":
            e = err(ids[0])
            return "(not predicted)" if e is None else _pct(e, signed=True)
        fn = out_only if kind == "out_only" else err
        return span([fn(i) for i in ids])

    return re.sub(r"\{(err|range|out_only):([A-Za-z0-9_,\-\s]+)\}", sub, text)


def render_markdown(report: ValidationReport) -> str:
    """docs/accuracy.md from a validation run (pure: returns the text)."""
    out: list[str] = []
    add = out.append
    add("# Accuracy: MLSys·im against published measurements\n")
    add("_Generated by `python -m mlsysim.validation.harness --write` from "
        "`mlsysim/validation/reference/reference.csv` (sources: "
        "`mlsysim/validation/reference/SOURCES.md`). Do not edit by hand. The per-category "
        "figures are also written to `mlsysim/validation/accuracy_baseline.json`, the single "
        "source of truth for the regression guard `tests/test_accuracy.py` (a category's "
        "median |error| may not rise more than 1 percentage point above it)._\n")
    add("The measurements are used only to check predictions, never to fit them: the efficiency "
        "terms come from microbenchmarks (`mlsysim/validation/microbench/`), and no row has a "
        "setting of its own. Run it yourself: `mlsysim validate --rows`.\n")
    n = len(report.results)
    add(f"{n} rows: {len(report.by_status('ok'))} predicted, "
        f"{len(report.by_status('infeasible'))} infeasible, "
        f"{len(report.by_status('skipped'))} skipped (reasons below).\n")
    add("## Per category\n")
    add("Error = predicted / measured - 1. Band coverage = share of predicted rows whose "
        "measurement lies inside the prediction's calibration band.\n")
    add("| category | rows | predicted | infeasible | skipped | median \\|err\\| | "
        "p90 \\|err\\| | worst \\|err\\| (row) | median signed err | band coverage |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cat, s in report.summary.items():
        worst = f"{_pct(s['worst_abs_error'])} ({s['worst_id']})" if s["worst_id"] else "-"
        name = f"**{cat}**" if cat == "all" else cat
        add(f"| {name} | {s['n_rows']} | {s['n_ok']} | {s['n_infeasible']} | {s['n_skipped']} "
            f"| {_pct(s['median_abs_error'])} | {_pct(s['p90_abs_error'])} | {worst} | "
            f"{_pct(s['median_signed_error'], signed=True)} | {_pct(s['band_coverage'])} |")
    add("")
    add("## How a row becomes a prediction\n")
    add(MAPPING_RULES)
    add("## By source\n")
    add("Median signed error shows the direction: positive = the model predicts more (lower "
        "latency reads as negative, higher throughput as positive).\n")
    add("| source / hardware / metric | rows | median signed err | median \\|err\\| | "
        "band coverage |")
    add("|---|---:|---:|---:|---:|")
    for name, rs in _group_rows(report):
        s = _summary(rs)
        add(f"| {name} | {s['n_ok']} | {_pct(s['median_signed_error'], signed=True)} | "
            f"{_pct(s['median_abs_error'])} | {_pct(s['band_coverage'])} |")
    add("")
    add("## Where the model is weak, and why\n")
    add(_fill(WEAK_SPOTS, report))
    ok = sorted(report.by_status("ok"), key=lambda r: -r.abs_error)
    add("### The ten largest errors\n")
    add("| row | model | hardware | devices | metric | measured | predicted | error | how |")
    add("|---|---|---|---:|---|---:|---:|---:|---|")
    for r in ok[:10]:
        add(f"| {r.row.id} | {r.row.model} | {r.row.hardware} | {r.row.num_devices} | "
            f"{r.row.metric} | {_num(r.measured)} | {_num(r.predicted)} | "
            f"{_pct(r.signed_error, signed=True)} | {r.prediction.method.replace('|', '/')} |")
    add("")
    add("## Problems found in the reference data\n")
    add(_fill(REFERENCE_ISSUES, report))
    inf = report.by_status("infeasible")
    add("## Infeasible rows\n")
    if inf:
        add("The model says these measured configurations do not fit in memory; they are kept "
            "out of the statistics and counted as model errors of their own kind.\n")
        add("| row | model | hardware | devices | precision | batch | predicted | error | why |")
        add("|---|---|---|---:|---|---:|---:|---:|---|")
        for r in inf:
            add(f"| {r.row.id} | {r.row.model} | {r.row.hardware} | {r.row.num_devices} | "
                f"{r.row.precision or '-'} | {r.row.batch_size or '-'} | {_num(r.predicted)} | "
                f"{_pct(r.signed_error, signed=True)} | {r.prediction.reason} |")
    else:
        add("None: every predicted configuration fits in memory.")
    add("")
    add("## Skipped rows, by reason\n")
    add("| reason | rows | ids |")
    add("|---|---:|---|")
    for code, count in report.skipped_by_reason.items():
        ids = [r.row.id for r in report.by_status("skipped") if r.prediction.code == code]
        add(f"| {SKIP_CODES.get(code, code)} (`{code}`) | {count} | {', '.join(ids)} |")
    add("")
    return "\n".join(out)


def baseline_from(report: ValidationReport) -> dict[str, Any]:
    """The documented figures the regression guard compares against."""
    def r4(x):
        return None if x is None else round(x, 4)

    return {
        "about": "Per-category accuracy of MLSys·im against mlsysim/validation/reference/"
                 "reference.csv, written with docs/accuracy.md by `python -m "
                 "mlsysim.validation.harness --write`. tests/test_accuracy.py fails when a "
                 "category's median |error| rises above median_abs_error + tolerance.",
        "tolerance": 0.01,
        "categories": {
            cat: {"n_rows": s["n_rows"], "n_ok": s["n_ok"],
                  "median_abs_error": r4(s["median_abs_error"]),
                  "p90_abs_error": r4(s["p90_abs_error"]),
                  "worst_abs_error": r4(s["worst_abs_error"]), "worst_id": s["worst_id"],
                  "band_coverage": r4(s["band_coverage"])}
            for cat, s in report.summary.items()
        },
    }


def write_accuracy_docs(report: ValidationReport | None = None, doc_path: str | Path | None = None,
                        baseline_path: str | Path | None = None) -> tuple[Path, Path]:
    """Write docs/accuracy.md and accuracy_baseline.json from one run."""
    report = report or run_validation()
    doc = Path(doc_path) if doc_path else ACCURACY_MD
    base = Path(baseline_path) if baseline_path else BASELINE_JSON
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_markdown(report), encoding="utf-8")
    base.write_text(json.dumps(baseline_from(report), indent=2) + "\n", encoding="utf-8")
    return doc, base


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m mlsysim.validation.harness",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true",
                    help="write docs/accuracy.md and accuracy_baseline.json")
    ap.add_argument("--rows", action="store_true", help="print every row")
    args = ap.parse_args(argv)
    report = run_validation()
    from rich.console import Console
    console = Console(highlight=False)
    if args.rows:
        console.print(report.rows_table())
    console.print(report.table())
    console.print(f"skipped by reason: {report.skipped_by_reason}; {report.elapsed_s:.2f} s")
    if args.write:
        doc, base = write_accuracy_docs(report)
        console.print(f"wrote {doc} and {base}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
