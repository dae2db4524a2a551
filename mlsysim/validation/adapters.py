"""From a reference row to a prediction: a registry of adapters keyed by (category, metric).

An adapter is a function ``fn(row, notes) -> Prediction`` registered with
``@adapter(category, metric)``. It predicts the row's metric with the public API only (zoo
names, ``Engine.solve``, ``ServingModel().solve``, result attributes) and appends each
assumption it makes to ``notes``. It never reads the measured value, and no row has a setting
of its own: every choice it makes is one of the documented rules below.

:func:`predict_row` looks the row's (category, metric) up. A row without an adapter is skipped
with a reason (training rows of a kind DistributedModel does not predict, energy rows for an
energy model);
an adapter raises :class:`Skip` for a row it cannot predict (lengths not published, a device
not in the zoo, ...) and any :class:`~mlsysim.errors.MLSysimError` a solver raises becomes a
skipped row keeping the solver's message. A new kind of measurement (training time, energy)
plugs in by registering an adapter; a category or metric that is not built into the reference
schema is declared by that registration.

The built-in adapters cover the inference categories and transformer training:

- **non-generative models** (CNNs, encoders, diffusion, recommendation): ``Engine.solve`` at
  the row's batch; ``latency_ms`` is the latency, ``throughput_samples_per_s`` the throughput x
  ``num_devices`` (one model copy per device). A batch chosen by the engine is
  :func:`largest_fitting_batch`.
- **generative models**: ``ServingModel().solve`` at the tensor-parallel degree of
  :func:`stated_tp`, otherwise :func:`smallest_fitting_tp`; the other devices are data-parallel
  replicas. Throughputs count the tokens of whole requests over their whole time, prefill
  included (:func:`predict_serving`).
- **training runs** (``mfu``, ``tflops_per_gpu``, ``tokens_per_s_per_gpu``, ``step_time_s``):
  ``DistributedModel().solve`` with the parallelism the source published, read from
  ``reference/training_setups.yaml`` by row id; flop rates are converted to the source's own
  flop convention (:func:`predict_training`).
- **training runs' energy, carbon and GPU-hours** (category ``energy``): the same
  ``DistributedModel().solve`` with the run's token budget (``time_to_train``, ``gpu_hours``),
  then ``SustainabilityModel().solve`` with the published PUE and grid intensity, read from
  ``reference/energy_setups.yaml`` by the row's ``scenario`` (:func:`predict_energy`).

Left out: reading the reference file (``reference``), statistics (``stats``) and the report
(``report``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import Field, field_validator, model_validator

from ..errors import DataFileError, MLSysimError, SpecError, UnknownNameError, ValidationError
from ..specs.base import Spec, raise_spec_error
from .reference import METRIC_UNITS, ReferenceRow

__all__ = ["Prediction", "Skip", "Adapter", "adapter", "register_adapter", "unregister_adapter",
           "get_adapter", "adapters", "declared_vocabulary", "predict_row", "predicted",
           "skipped", "predict_inference", "predict_engine", "predict_serving",
           "largest_fitting_batch", "stated_tp", "smallest_fitting_tp", "serving_batch",
           "row_precisions", "benchmark_name", "SKIP_CODES", "INFERENCE_CATEGORIES",
           "ENGINE_METRICS", "SERVING_METRICS", "MAX_ENGINE_BATCH", "MAX_TP",
           "DEFAULT_OUTPUT_LEN", "BENCHMARK_SEQ_LEN", "BENCHMARK_MEAN_SEQ_LEN",
           "SAMPLE_MISMATCH", "TrainingSetup",
           "training_setups", "training_flops", "predict_training", "TRAINING_SETUPS",
           "TRAINING_METRICS", "FLOPS_CONVENTIONS", "EnergySetup", "EnergySetups",
           "energy_setups", "energy_run", "EnergyRun", "predict_energy", "ENERGY_SETUPS",
           "ENERGY_METRICS", "ENERGY_SCOPES", "HOST_BOUND", "host_bound", "EAGER_SCENARIOS",
           "GRAPH_RUNS"]

# --- documented rules (no per-row settings) ------------------------------------------------
MAX_ENGINE_BATCH = 256      # batch "chosen by the engine": largest power of two <= this that fits
MAX_TP = 8                  # one scale-up domain of 8 devices (HGX/OAM boards)
DEFAULT_OUTPUT_LEN = 128    # output length assumed for per-token rates when a source omits it
# Inputs fixed by a benchmark's definition (not by a measurement): MLPerf Inference bert-99 runs
# SQuAD v1.1 at max_seq_len 384 (mlcommons/inference language/bert).
BENCHMARK_SEQ_LEN = {("mlperf", "BERT_Large"): 384}
# Throughput rows of a harness that drops the padding run each sample at its own length, so the
# work per sample is the mean unpadded length. NVIDIA's bert harness "truncate[s] the padded part
# of the input sequences and concatenate[s] the truncated sequences" (inference_results_v4.0,
# closed/NVIDIA/code/bert/tensorrt/README.md); padding is 54 % of SQuAD v1.1's tokens at max
# length 384 (openreview.net/forum?id=3nzKUh9a4M), so the mean is 0.46 x 384 = 176.6 -> 177.
# Latency rows keep the padded maximum: a p90 latency is set by the long samples, and the
# length distribution's p90 is not published.
BENCHMARK_MEAN_SEQ_LEN = {("mlperf", "BERT_Large"): 177}
# Rows whose "sample" is a different unit of work from the zoo model's sample.
SAMPLE_MISMATCH = {
    ("mlperf", "UNet3D"): "the zoo's UNet3D sample is one 128^3 patch; an MLPerf 3d-unet sample "
                          "is a whole KiTS19 case, swept by many overlapping patches",
    ("mlperf", "DLRM_v2"): "the zoo's DLRM_v2 sample is one user-item pair; an MLPerf dlrm-v2 "
                           "sample aggregates a variable number of Criteo pairs (the reference "
                           "harness's --samples-to-aggregate-quantile-file: 'number of samples "
                           "to be treated as one'; 100-700 per mlcommons/inference issue "
                           "#1628), a number the results do not publish",
}

# Scenarios run by an eager framework: predicted unfused (``Engine.solve(eager=True)``).
EAGER_SCENARIOS = ("pytorch-eager",)
# (scenario, model) or (scenario, model, device) replayed from CUDA graphs
# (``Engine.solve(cuda_graphs=True)``): NVIDIA's MLPerf Inference v3.x submission code sets
# use_graphs = True in SingleStreamGPUBaseConfig of configs/resnet50/SingleStream and
# configs/bert/SingleStream; RetinaNet's base sets False and its Orin and Orin_NX classes
# True (mlcommons/inference_results_v3.1 closed/NVIDIA/configs/retinanet/SingleStream).
GRAPH_RUNS = {("mlperf-single-stream", "ResNet50"), ("mlperf-single-stream", "BERT_Large"),
              ("mlperf-single-stream", "RetinaNet", "JetsonAGXOrin"),
              ("mlperf-single-stream", "RetinaNet", "JetsonOrinNX")}

# Measurements whose time is set off the device, shown by the source's own sweep (device speed
# or batch changes the work several-fold, the time barely moves); no device model predicts them.
HOST_BOUND = {
    "triton-offline": "a Triton client sends each batch over the network (dle_triton_resnet50): "
                      "batch-1 latency is 2.13 / 2.84 / 3.00 ms on A100 / V100 / T4 although "
                      "the A100 does 4-5x the T4's FLOP/s, and A100 throughput falls from "
                      "2,858/s at batch 32 to 2,662/s at batch 128 while the device's work "
                      "quadruples",
    "pytorch-eager@1": "eager PyTorch at batch 1 times the harness's Python loop "
                       "(dle_resnet50_pytorch): 12.96 ms on T4, 12.78 ms on V100 (a V100 does "
                       "~2x a T4's FLOP/s), about 8x the 175 kernels x 9.4 us eager dispatch "
                       "(MIC-156)",
}


def host_bound(row: ReferenceRow) -> str | None:
    """Why the row's time is set off the device (:data:`HOST_BOUND`), or None."""
    scenario = row.scenario.lower()
    return HOST_BOUND.get(scenario) or (HOST_BOUND.get(f"{scenario}@1")
                                        if row.batch_size == 1 else None)


SKIP_CODES = {
    "no-training-solver": "training metric without a training adapter (the adapters "
                          "predict one optimizer step of a published transformer run; time to "
                          "train needs the steps to converge)",
    "no-energy-model": "energy per inference: no adapter predicts it yet (training runs' "
                       "energy is the energy category)",
    "ambiguous-metric": "the source leaves the metric ambiguous (output-only vs input+output "
                        "tokens, or per GPU vs all GPUs)",
    "no-adapter": "no adapter is registered for the row's (category, metric)",
    "unknown-model": "model not in the zoo",
    "unknown-hardware": "hardware not in the zoo",
    "sample-mismatch": "benchmark sample is a different unit of work from the zoo model's",
    "host-bound": "the measured time is set off the device (a network client, a framework's "
                  "Python loop), as the source's own sweep shows",
    "missing-lengths": "prompt/output lengths not published",
    "missing-batch": "batch size not published for a latency metric",
    "unsupported-precision": "device has no peak for the stated precision",
    "solver-refused": "the solver rejects the configuration",
    "missing-setup": "training row without a published parallelism setup in "
                     "training_setups.yaml",
    "missing-site": "energy row whose source publishes neither the PUE nor the grid "
                    "intensity (nor how its figure was computed)",
    "unknown-node": "the run's servers are not in the zoo (no node or cluster to build the "
                    "fleet from)",
    "other-accelerators": "the measurement runs on accelerators beside the zoo device's "
                          "(a SoC's deep-learning accelerators), which no spec models",
}

# MLPerf Offline on Jetson Orin runs the GPU and both DLA cores: NVIDIA's submission configs
# split the expected rate as "GPU-only QPS", "DLA-only (1x) QPS" and "GPU + 2 DLA QPS"
# (ResNet-50 on AGX Orin: 4,500 + 2 x 600 -> 6,100; mlcommons/inference_results_v3.0
# closed/NVIDIA/configs/resnet50/Offline/__init__.py, class Orin). The zoo's Orins are the GPU.
WITH_DLA = {("mlperf-offline", "JetsonAGXOrin"), ("mlperf-offline", "JetsonOrinNX")}

INFERENCE_CATEGORIES = ("vision_inference", "llm_inference", "llm_serving", "recsys_inference")
# The training metrics predict_training serves (units in the reference schema's METRIC_UNITS).
TRAINING_METRICS = ("mfu", "tflops_per_gpu", "tokens_per_s_per_gpu", "step_time_s")
ENGINE_METRICS = ("latency_ms", "throughput_samples_per_s")
SERVING_METRICS = ("ttft_ms", "itl_ms", "latency_ms", "output_tokens_per_s",
                   "output_tokens_per_s_per_gpu", "total_tokens_per_s")


# --- what an adapter returns ---------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """What the model says for one row.

    Attributes
    ----------
    status : "ok" | "infeasible" | "skipped"
        ``infeasible``: predicted, but the measured configuration does not fit in memory.
    value, low, high : float or None
        The prediction and its calibration band, in the row's unit (``None`` when skipped).
    reason : str or None
        Why the row is skipped or infeasible.
    code : str or None
        The skip reason code (a key of :data:`SKIP_CODES` for the built-in adapters).
    method : str
        Which API call and quantity gave the value.
    assumptions : tuple of str
        Every assumption made for the row.
    """

    status: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    reason: str | None = None
    code: str | None = None
    method: str = ""
    assumptions: tuple[str, ...] = ()


class Skip(Exception):
    """Raised by an adapter for a row it cannot predict: a skip ``code`` and the ``reason``."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def skipped(code: str, reason: str, assumptions: Iterable[str] = ()) -> Prediction:
    """A skipped row's prediction: no value, a code and a reason.

    Examples
    --------
    >>> skipped("missing-lengths", "output length not published").status
    'skipped'
    """
    return Prediction(status="skipped", code=code, reason=reason,
                      assumptions=tuple(assumptions))


def predicted(value: float, low: float, high: float, feasible: bool, reason: str | None,
              method: str, notes: Iterable[str]) -> Prediction:
    """A predicted row: ``ok``, or ``infeasible`` when the configuration does not fit.

    Parameters
    ----------
    value, low, high : the prediction and its band, in the row's unit
    feasible, reason : the solver's verdict on memory and its explanation
    method : the API call and quantity used
    notes : the assumptions made

    Examples
    --------
    >>> predicted(2.0, 1.5, 2.5, True, None, "Engine.solve().latency", ()).status
    'ok'
    """
    return Prediction(status="ok" if feasible else "infeasible", value=float(value),
                      low=float(low), high=float(high),
                      reason=None if feasible else f"does not fit: {reason}", method=method,
                      assumptions=tuple(notes))


# --- the registry --------------------------------------------------------------------------
Adapter = Callable[[ReferenceRow, list], Prediction]
_ADAPTERS: dict[tuple[str, str], Adapter] = {}
_DECLARED_UNITS: dict[tuple[str, str], tuple[str, ...]] = {}


def _names(what: str, value: str | Iterable[str]) -> tuple[str, ...]:
    try:
        names = (value,) if isinstance(value, str) else tuple(value)
    except TypeError:
        names = ()
    if not names or any(not isinstance(n, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", n)
                        for n in names):
        raise ValidationError(what, "must be one or more lower-case names (letters, digits, "
                              f"'_'). Got {value!r} instead.", owner="adapter")
    return names


def register_adapter(category: str | Iterable[str], metric: str | Iterable[str], fn: Adapter,
                     *, units: Iterable[str] | None = None, replace: bool = False) -> Adapter:
    """Register ``fn`` for every (category, metric) pair given.

    Parameters
    ----------
    category, metric : str or iterable of str
        The keys; several of each register the cross product.
    fn : callable ``(row, notes) -> Prediction``
    units : iterable of str, optional
        The units values of a metric that is not built into the reference schema may be
        published in (required for such a metric; refused for a built-in one, whose units the
        schema fixes).
    replace : bool
        Replace an adapter already registered for a pair (otherwise that is an error).

    Returns
    -------
    The adapter, so that this works as a decorator body.

    Raises
    ------
    ValidationError
        For a malformed name, a taken key without ``replace``, or missing/forbidden units.
    """
    cats, mets = _names("category", category), _names("metric", metric)
    allowed = tuple(units) if units is not None else None
    for m in mets:
        if m in METRIC_UNITS and allowed is not None:
            raise ValidationError("units", f"cannot be given for the built-in metric {m!r} "
                                  f"(published in: {', '.join(METRIC_UNITS[m])}).",
                                  owner="adapter")
        if m not in METRIC_UNITS and not allowed:
            raise ValidationError("units", f"are needed for the new metric {m!r}: the units "
                                  "its values may be published in.", owner="adapter")
    keys = [(c, m) for c in cats for m in mets]
    taken = [k for k in keys if k in _ADAPTERS and not replace]
    if taken:
        raise ValidationError("category", f"({taken[0][0]!r}, {taken[0][1]!r}) already has the "
                              f"adapter {_ADAPTERS[taken[0]].__name__}; pass replace=True to "
                              "replace it.", owner="adapter")
    for key in keys:
        _ADAPTERS[key] = fn
        if key[1] not in METRIC_UNITS:
            _DECLARED_UNITS[key] = allowed
    return fn


def adapter(category: str | Iterable[str], metric: str | Iterable[str], *,
            units: Iterable[str] | None = None, replace: bool = False):
    """Decorator form of :func:`register_adapter`.

    Examples
    --------
    >>> @adapter("toy_inference", "latency_ms")
    ... def toy(row, notes):
    ...     return predicted(1.0, 0.9, 1.1, True, None, "toy", notes)
    >>> get_adapter("toy_inference", "latency_ms") is toy
    True
    >>> unregister_adapter("toy_inference", "latency_ms") is toy
    True
    """
    def register(fn: Adapter) -> Adapter:
        return register_adapter(category, metric, fn, units=units, replace=replace)

    return register


def unregister_adapter(category: str, metric: str) -> Adapter | None:
    """Remove and return the adapter for (category, metric) (``None`` if there was none)."""
    _DECLARED_UNITS.pop((category, metric), None)
    return _ADAPTERS.pop((category, metric), None)


def get_adapter(category: str, metric: str) -> Adapter | None:
    """The adapter registered for (category, metric), or ``None``.

    Examples
    --------
    >>> get_adapter("llm_serving", "ttft_ms").__name__
    'predict_inference'
    >>> get_adapter("training", "time_to_train_min") is None
    True
    """
    return _ADAPTERS.get((category, metric))


def adapters() -> dict[tuple[str, str], Adapter]:
    """Every registered (category, metric) and its adapter, in registration order."""
    return dict(_ADAPTERS)


def declared_vocabulary() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Categories named by registered adapters, and new metrics with the units declared."""
    cats = tuple(dict.fromkeys(c for c, _ in _ADAPTERS))
    units: dict[str, tuple[str, ...]] = {}
    for (_, metric), allowed in _DECLARED_UNITS.items():
        units.setdefault(metric, allowed)
    return cats, units


# Why some rows have no adapter yet, checked in this order; any other (category, metric)
# without an adapter is skipped as "no-adapter".
def _no_adapter(row: ReferenceRow) -> Prediction:
    metric = row.metric
    if metric == "time_to_train_min":
        return skipped("no-training-solver", "time to train: DistributedModel times one "
                       "optimizer step; the steps to reach the target quality are not modelled")
    if row.category == "training":
        return skipped("no-training-solver", f"training row ({metric}): no training adapter "
                       "for this metric; the training adapters predict "
                       f"{', '.join(TRAINING_METRICS)} from a published parallelism setup")
    if metric == "energy_uj_per_inference":
        return skipped("no-energy-model", "energy per inference: no energy model yet")
    if metric == "tokens_per_s":
        return skipped("ambiguous-metric", "'tokens_per_s': the source does not say whether "
                       "input tokens are counted (a factor of up to 2 at equal ISL/OSL)")
    return skipped("no-adapter", f"no adapter is registered for ({row.category!r}, "
                   f"{metric!r}); register one with mlsysim.validation.adapters.adapter")


def predict_row(row: ReferenceRow | Mapping[str, Any]) -> Prediction:
    """The prediction for one reference row, by the adapter of its (category, metric).

    Parameters
    ----------
    row : ReferenceRow or mapping of column to cell

    Returns
    -------
    Prediction
        Skipped, with a reason, when no adapter is registered, the adapter raises
        :class:`Skip`, or a solver refuses the configuration (its message is kept).

    Examples
    --------
    >>> p = predict_row({"id": "X-1", "category": "vision_inference", "model": "ResNet50",
    ...     "hardware": "A100", "num_devices": "1", "precision": "fp16", "batch_size": "1",
    ...     "metric": "latency_ms", "value": "1", "unit": "ms"})
    >>> p.status, p.value > 0
    ('ok', True)
    """
    if not isinstance(row, ReferenceRow):
        row = ReferenceRow.from_mapping(row)
    fn = get_adapter(row.category, row.metric)
    if fn is None:
        return _no_adapter(row)
    notes: list[str] = []
    try:
        result = fn(row, notes)
    except Skip as s:
        return skipped(s.code, s.reason, notes)
    except MLSysimError as exc:
        return skipped("unsupported-precision" if "precision" in type(exc).__name__.lower()
                       else "solver-refused", f"{type(exc).__name__}: {exc}", notes)
    if not isinstance(result, Prediction):
        raise TypeError(f"the adapter {getattr(fn, '__name__', fn)!r} for ({row.category!r}, "
                        f"{row.metric!r}) returned {type(result).__name__}, not a Prediction")
    return result


# --- the choices the built-in adapters make (each a documented rule) -----------------------
R = TypeVar("R")


def benchmark_name(row: ReferenceRow) -> str:
    """The benchmark a row belongs to: ``"mlperf"`` for every MLPerf scenario, else the
    scenario in lower case (keys of :data:`BENCHMARK_SEQ_LEN` and :data:`SAMPLE_MISMATCH`)."""
    return "mlperf" if row.scenario.lower().startswith("mlperf") else row.scenario.lower()


def row_precisions(row: ReferenceRow, hw, generative: bool,
                   notes: list[str]) -> tuple[str, str | None]:
    """(compute precision, weight precision or ``None``) in the zoo's names.

    An empty precision is the device default (said in ``notes``); "int8/int4 weight-only" is
    int8/int4 weights with bf16 activations (generative models only); a precision the device
    has no published peak for raises :class:`Skip`, never substituted.
    """
    from ..core.calibration import canonical_precision

    supported = hw.compute.precisions
    text = row.precision.strip()
    if not text:
        p = hw.compute.default_precision
        notes.append(f"precision not stated: device default {p}")
        return p, None
    if "weight-only" in text.lower() or "weight only" in text.lower():
        if not generative:
            raise Skip("unsupported-precision", f"'{text}' (weight-only quantization) has no "
                       "equivalent for a non-generative model in the Engine")
        w = canonical_precision(text)
        c = "bf16" if "bf16" in supported else hw.compute.default_precision
        notes.append(f"weight-only {w}: {w} weights, {c} activations")
        return c, w
    p = canonical_precision(text)
    if p not in supported:
        raise Skip("unsupported-precision", f"precision '{text}' ({p}) has no published peak on"
                   f" {hw.name}; supported: {', '.join(supported)} (not substituted)")
    return p, None


_PER_GPU_OR_TOTAL = re.compile(r"per-GPU or total", re.IGNORECASE)
_GROUP_RE = re.compile(r"\bg(?:roup(?:\s*size)?)?\s*=?\s*(\d+)\b", re.IGNORECASE)


def weight_group_size(row: ReferenceRow) -> int | None:
    """The quantization group size a weight-only precision states, e.g. 'int4 weight-only
    (g32)' -> 32; None when none is stated.

    Examples
    --------
    >>> row = ReferenceRow(id="X", category="llm_inference", model="m", hardware="h",
    ...     num_devices=1, precision="int4 weight-only (g32)", metric="itl_ms", value=1.0,
    ...     unit="ms")
    >>> weight_group_size(row)
    32
    """
    if "weight" not in row.precision.lower():
        return None
    m = _GROUP_RE.search(row.precision)
    return int(m.group(1)) if m else None
_TP_RE = re.compile(r"\bTP\s*=?\s*(\d+)\b")
_WORLD_RE = re.compile(r"\bworld size\s*(\d+)\b", re.IGNORECASE)


def stated_tp(row: ReferenceRow) -> int | None:
    """The tensor-parallel degree the source states in the row's notes, if it does.

    ``TP=4``, ``TP8`` and ``world size 8`` give the number; "tensor parallel" alone means all
    ``num_devices``.

    Examples
    --------
    >>> row = ReferenceRow(id="X", category="llm_inference", model="m", hardware="h",
    ...                    num_devices=8, metric="itl_ms", value=1, unit="ms", notes="TP=4")
    >>> stated_tp(row)
    4
    """
    m = _TP_RE.search(row.notes) or _WORLD_RE.search(row.notes)
    if m:
        return int(m.group(1))
    if re.search(r"\btensor parallel", row.notes, re.IGNORECASE):
        return row.num_devices
    return None


def largest_fitting_batch(solve: Callable[[int], R],
                          limit: int = MAX_ENGINE_BATCH) -> tuple[int, R]:
    """The largest power of two <= ``limit`` whose result fits memory, and that result.

    ``solve(batch)`` returns a result with ``feasible``. When nothing fits the answer is batch
    1 (infeasible), so the row is reported as a memory error rather than dropped.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> largest_fitting_batch(lambda b: SimpleNamespace(feasible=b <= 100))[0]
    64
    """
    b = limit
    while True:
        r = solve(b)
        if r.feasible or b <= 1:
            return b, r
        b //= 2


def smallest_fitting_tp(solve: Callable[[int], R], limit: int,
                        heads: int | None = None) -> tuple[int, R]:
    """The smallest power-of-two tensor-parallel degree <= ``limit`` at which the model fits.

    Only degrees that divide ``heads`` (when given) are tried. When none fits, the largest
    degree tried is returned with its (infeasible) result.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> smallest_fitting_tp(lambda tp: SimpleNamespace(feasible=tp >= 4), limit=8)[0]
    4
    """
    tp, chosen = 1, None
    while tp <= limit:
        if heads is None or heads % tp == 0:
            chosen = (tp, solve(tp))
            if chosen[1].feasible:
                break
        tp *= 2
    if chosen is None:  # pragma: no cover - tp=1 divides every head count
        raise Skip("solver-refused", "no tensor-parallel degree divides the heads")
    return chosen


def serving_batch(solve: Callable[[int | str], R], batch: int | str,
                  limit: int = MAX_ENGINE_BATCH) -> R:
    """``solve(batch)``; a batch chosen by the engine (``"max"``: the most sequences whose KV
    cache fits) is capped at ``limit``."""
    r = solve(batch)
    if batch == "max" and r.batch_size > limit:
        r = solve(limit)
    return r


# --- the built-in adapters -----------------------------------------------------------------
def _is_generative(model) -> bool:
    from ..specs.model import SSMSpec, TransformerSpec

    return isinstance(model, SSMSpec) or (isinstance(model, TransformerSpec)
                                          and model.kind != "encoder")


@adapter(INFERENCE_CATEGORIES, tuple(dict.fromkeys(ENGINE_METRICS + SERVING_METRICS)))
def predict_inference(row: ReferenceRow, notes: list[str]) -> Prediction:
    """Any inference row: resolve zoo names, then :func:`predict_serving` for generative models
    and :func:`predict_engine` for the others.

    Skipped: a throughput the source does not say is per GPU or for all GPUs, a model or device
    not in the zoo (never mapped to a near match), a benchmark whose sample is a different unit
    of work from the zoo model's, a measurement set off the device (:func:`host_bound`), a
    generative metric for a non-generative model.
    """
    from ..zoo import Hardware, Models

    if row.num_devices > 1 and _PER_GPU_OR_TOTAL.search(row.notes):
        raise Skip("ambiguous-metric", f"the source does not say whether this throughput is "
                   f"per GPU or for all {row.num_devices} GPUs (a factor of {row.num_devices})")
    try:
        model = Models.get(row.model)
    except UnknownNameError as exc:
        raise Skip("unknown-model", str(exc)) from None
    try:
        hw = Hardware.get(row.hardware)
    except UnknownNameError as exc:
        raise Skip("unknown-hardware", str(exc)) from None
    mismatch = SAMPLE_MISMATCH.get((benchmark_name(row), row.model))
    if mismatch:
        raise Skip("sample-mismatch", mismatch)
    off_device = host_bound(row)
    if off_device:
        raise Skip("host-bound", off_device)
    if (row.scenario.lower(), row.hardware) in WITH_DLA:
        raise Skip("other-accelerators", f"MLPerf Offline on {row.hardware} runs the GPU and "
                   "both DLA cores (NVIDIA's Orin Offline configs: 'GPU + 2 DLA QPS', e.g. "
                   "ResNet-50 4,500 GPU-only + 2 x 600 DLA -> 6,100 expected); the zoo "
                   "device is the GPU, and no DLA spec is in the zoo")
    if _is_generative(model):
        return predict_serving(row, model, hw, notes)
    if row.metric not in ENGINE_METRICS:
        raise Skip("solver-refused", f"{row.metric} needs a generative model; {model.name} is "
                   f"{model.architecture}")
    return predict_engine(row, model, hw, notes)


# MLPerf Inference's Server scenario: Poisson queries, the result is the highest rate whose
# 99th-percentile latency meets the benchmark's bound (mlcommons/inference docs/index.md,
# "Server Scenario Latency Constraint").
MLPERF_SERVER_LATENCY_S = {"ResNet50": 0.015, "RetinaNet": 0.100, "BERT_Large": 0.130}


def _mlperf_server(row: ReferenceRow, solve, largest: int, n: int, offline: str,
                   notes: list[str]) -> tuple[float, float, float, str]:
    """(value, low, high, method) of an MLPerf Server row: each of the ``n`` devices is a
    batched server (``optimize.batching.server_capacity``: fill wait, M/D/1 queue of batches,
    service from ``Engine.solve``) at the highest Poisson rate whose p99 meets the benchmark's
    bound, over power-of-two batches up to ``largest``; the band from the service times'
    calibration edges."""
    from ..optimize.batching import server_capacity
    bound = MLPERF_SERVER_LATENCY_S.get(row.model)
    if bound is None:
        raise Skip("solver-refused", f"no MLPerf Server latency bound recorded for {row.model}")
    batches = [1 << i for i in range(largest.bit_length()) if 1 << i <= largest]
    results = [solve(b) for b in batches]
    edges = [[float(r.latency.to("s").magnitude) for r in results]]
    edges += [[float(r.band[k].to("s").magnitude) for r in results] for k in (0, 1)]
    (rate, b, p99), (fast, *_), (slow, *_) = (server_capacity(s, batches, bound)
                                              for s in edges)
    notes.append(f"MLPerf Server: the highest Poisson rate per device with p99 <= "
                 f"{bound * 1e3:g} ms (the benchmark's bound): batch {b}, p99 "
                 f"{p99 * 1e3:.3g} ms (fill wait + M/D/1 queue of batches + service)")
    method = (f"optimize.batching.server_capacity(Engine.solve(batch <= {largest}) latencies, "
              f"p99 <= {bound * 1e3:g} ms) x {n} device{'s' if n > 1 else ''}; "
              f"offline: {offline}")
    return rate * n, slow * n, fast * n, method


def predict_engine(row: ReferenceRow, model, hw, notes: list[str]) -> Prediction:
    """A non-generative model's ``latency_ms`` or ``throughput_samples_per_s`` by
    ``Engine.solve``.

    Throughput is per device x ``num_devices`` (data-parallel copies, no inter-device cost); a
    batch not published is :func:`largest_fitting_batch`. An MLPerf Server row is the highest
    Poisson rate whose p99 latency meets the benchmark's bound (:func:`_mlperf_server`). The
    sequence length of an encoder is the row's prompt length or the benchmark's
    (:data:`BENCHMARK_SEQ_LEN`; for throughput, the mean unpadded length where the harness
    drops padding, :data:`BENCHMARK_MEAN_SEQ_LEN`). An eager framework's rows
    (:data:`EAGER_SCENARIOS`) are solved unfused, runs the submitter replays from CUDA graphs
    (:data:`GRAPH_RUNS`) with ``cuda_graphs=True``.
    """
    from ..core.engine import Engine

    precision, _ = row_precisions(row, hw, False, notes)
    seq = row.prompt_len
    key = (benchmark_name(row), row.model)
    if seq is None and row.metric != "latency_ms" and key in BENCHMARK_MEAN_SEQ_LEN:
        seq = BENCHMARK_MEAN_SEQ_LEN[key]
        notes.append(f"sequence length {seq}: the mean unpadded length (the harness drops "
                     f"the padding of the benchmark's {BENCHMARK_SEQ_LEN[key]})")
    elif seq is None and key in BENCHMARK_SEQ_LEN:
        seq = BENCHMARK_SEQ_LEN[key]
        notes.append(f"sequence length {seq} from the benchmark definition")

    eager = row.scenario.lower() in EAGER_SCENARIOS
    if eager:
        notes.append("eager framework: solved unfused (eager=True): BatchNorm, activations "
                     "and residual adds as kernels of their own")
    graphs = ((row.scenario.lower(), row.model) in GRAPH_RUNS
              or (row.scenario.lower(), row.model, row.hardware) in GRAPH_RUNS)
    if graphs:
        notes.append("the submitter replays CUDA graphs (use_graphs = True in its "
                     "SingleStream config): cuda_graphs=True")

    def solve(batch: int):
        return Engine.solve(model=model, hardware=hw, batch_size=batch, precision=precision,
                            seq_len=seq, eager=eager, cuda_graphs=graphs)

    if row.metric == "latency_ms":
        if row.batch_size is None:
            raise Skip("missing-batch", "latency row without a batch size")
        p = solve(row.batch_size)
        lo, hi = (q.to("ms").magnitude for q in p.band)
        value, low, high = p.latency.to("ms").magnitude, lo, hi
        method = (f"Engine.solve(batch={p.batch_size}, {precision}"
                  f"{', eager' if eager else ''}{', cuda_graphs' if graphs else ''}).latency")
    else:  # throughput_samples_per_s
        if row.batch_size is None:
            batch, p = largest_fitting_batch(solve)
            notes.append(f"batch chosen by the engine: {batch} (largest power of two <= "
                         f"{MAX_ENGINE_BATCH} that fits)")
        else:
            batch, p = row.batch_size, solve(row.batch_size)
        n = row.num_devices
        lo, hi = (q.to("s").magnitude for q in p.band)
        value = float(p.throughput) * n
        low, high = batch / hi * n, batch / lo * n
        method = (f"Engine.solve(batch={batch}, {precision}{', eager' if eager else ''})"
                  f".throughput x {n} device"
                  f"{'s' if n > 1 else ''} (data parallel)")
        if row.scenario.lower() == "mlperf-server":
            value, low, high, method = _mlperf_server(row, solve, batch, n, method, notes)
    return predicted(value, low, high, p.feasible, p.reason, method, notes)


# TensorRT-LLM's generation kernel before v0.7 ran one thread block per sequence and query
# head, each reading its KV head's cache ("a single CUDA thread-block per head",
# docs/source/gpt_attention.md at commit 138f96d4, the performance.md of the v0.6.1 rows); the
# "MMHA optimization for MQA and GQA" came with the release of December 2023 (NVIDIA/
# TensorRT-LLM pull request #524, 2023-12-01: v0.7).
_TRTLLM_VERSION = re.compile(r"TensorRT-LLM v(\d+)\.(\d+)")
FIRST_GQA_MMHA = (0, 7)


def row_decode_attention(row: ReferenceRow, model, notes: list[str]) -> str:
    """``"per_head"`` for a GQA/MQA model served by a TensorRT-LLM release before v0.7 (its
    generation kernel reads the cache once per query head), else ``"grouped"``."""
    m = _TRTLLM_VERSION.search(row.framework or "")
    kv, heads = getattr(model, "n_kv_heads", None), getattr(model, "heads", None)
    if m and (int(m[1]), int(m[2])) < FIRST_GQA_MMHA and kv and heads and kv < heads and \
            not getattr(model, "mla", None):
        notes.append(f"{row.framework}: its masked-MHA generation kernel reads each KV head's "
                     f"cache once per query head ({heads // kv} query heads per KV head; GQA "
                     "support came in v0.7): decode_attention='per_head'")
        return "per_head"
    return "grouped"


def row_quantized_kernels(row: ReferenceRow, hw, precision: str, notes: list[str]):
    """The ``QuantizedKernels`` generation of a row that computes in 8 bits with an engine
    release that generation covers, on a device it was measured on, else None."""
    from ..specs.hardware import BYTES_PER_ELEMENT
    from ..zoo import QuantizedKernels
    m = _TRTLLM_VERSION.search(row.framework or "")
    if not m or BYTES_PER_ELEMENT.get(precision, 2.0) >= 2.0:
        return None
    release = (int(m[1]), int(m[2]))
    for key in QuantizedKernels.names():
        spec = QuantizedKernels.get(key)
        first, last = (tuple(int(x) for x in r.split(".")) for r in spec.releases)
        if spec.engine == "TensorRT-LLM" and first <= release <= last and \
                hw.key in spec.hardware and precision in spec.precisions:
            notes.append(f"{row.framework}: {precision} GEMMs at {spec.speed:.3g} of the "
                         f"microbenchmarked speed ({spec.name}; fitted to the engine's "
                         f"published FP8-over-FP16 speed-ups): quantized_kernels='{key}'")
            return key
    return None


def predict_serving(row: ReferenceRow, model, hw, notes: list[str]) -> Prediction:
    """A generative model's row by ``ServingModel().solve``.

    ``ttft_ms`` -> ttft, ``itl_ms`` -> itl, ``latency_ms`` -> e2e_latency (time to last
    token). ``output_tokens_per_s`` = replicas x batch x output_len / e2e_latency (static-batch
    benchmarks time the context phase too; in steady-state continuous batching each request's
    prefill takes its share of the same device time); ``total_tokens_per_s`` counts prompt +
    output tokens; ``output_tokens_per_s_per_gpu`` is divided by ``num_devices``.

    A row without a prompt length is skipped; a missing output length is 1 for ``ttft_ms``
    and :data:`DEFAULT_OUTPUT_LEN` for a per-token rate at a published batch. A throughput
    without a batch uses :func:`serving_batch` with ``"max"``.
    """
    from ..solvers.serving import GROUP_SCALE_BYTES, ServingModel

    metric = row.metric
    precision, wprec = row_precisions(row, hw, True, notes)
    prompt, out = row.prompt_len, row.output_len
    if prompt is None:
        raise Skip("missing-lengths", "prompt length not published (MLPerf datasets have "
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
            raise Skip("missing-lengths", "output length not published")
    if row.batch_size is not None:
        batch: int | str = row.batch_size
    elif metric in ("output_tokens_per_s", "output_tokens_per_s_per_gpu", "total_tokens_per_s"):
        batch = "max"
    else:
        raise Skip("missing-batch", f"{metric} row without a batch size")

    solver = ServingModel()
    group = weight_group_size(row)
    if group is not None:
        notes.append(f"group-wise {wprec} in groups of {group}: a 16-bit scale and zero point "
                     f"per group, {GROUP_SCALE_BYTES / group:.3g} B per weight more")

    decode_attention = row_decode_attention(row, model, notes)
    kernels = row_quantized_kernels(row, hw, precision, notes)

    def solve(tp: int):
        return serving_batch(
            lambda b: solver.solve(model=model, hardware=hw, seq_len=prompt, output_len=out,
                                   batch_size=b, precision=precision, weight_precision=wprec,
                                   tp_size=tp, weight_group_size=group,
                                   decode_attention=decode_attention,
                                   quantized_kernels=kernels), batch)

    tp = stated_tp(row)
    if tp is not None:
        r = solve(tp)
        notes.append(f"tp={tp} as stated by the source")
    else:
        limit = min(row.num_devices, MAX_TP)
        tp, r = smallest_fitting_tp(solve, limit, getattr(model, "heads", None))
        notes.append(f"tp={tp}: smallest power of two <= {limit} that fits")
    if tp > row.num_devices:
        raise Skip("solver-refused", f"stated tp={tp} exceeds num_devices={row.num_devices}")
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
    return predicted(value, low, high, r.feasible, r.reason, method, notes)


# --- training runs: DistributedModel with the published parallelism ------------------------
TRAINING_SETUPS = Path(__file__).parent / "reference" / "training_setups.yaml"
FLOPS_CONVENTIONS = ("megatron_recompute", "megatron", "palm")
_Pos = Annotated[int, Field(gt=0, strict=True)]


class TrainingSetup(Spec):
    """How one measured training run was configured: one entry of ``training_setups.yaml``
    (the file's header lists the fields). Frozen; unknown keys are errors."""

    cluster: str | None = None
    node: str | None = None
    nodes: _Pos | None = None
    fabric: str | None = None
    topology: str | None = None
    oversubscription_ratio: float | None = Field(default=None, ge=1.0, allow_inf_nan=False)
    tp: _Pos
    pp: _Pos
    cp: _Pos = 1
    ep: _Pos = 1
    dp: _Pos
    virtual_stages: _Pos = 1
    microbatch_size: _Pos
    seq_len: _Pos
    global_batch: _Pos
    recomputation: Literal["none", "selective", "full"]
    sequence_parallel: bool
    zero_stage: Literal[0, 1, 2, 3]
    overlap_comm: bool
    rank_order: Literal["tp-cp-dp-pp", "tp-cp-pp-dp"] = "tp-cp-dp-pp"
    attention_kernel: Literal["flash", "flash1", "triton", "xformers", "materialized"] = "flash"
    first_stage_layers: _Pos | None = None
    last_stage_layers: _Pos | None = None
    dropout: bool = True
    backward_prefetch: Literal["pre", "post"] = "pre"
    sharding_runtime: str | None = None
    precision: str
    flops_convention: Literal["megatron_recompute", "megatron", "palm"] | None = None
    why: str
    assumed: tuple[str, ...] = ()

    @field_validator("why")
    @classmethod
    def _why_given(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must quote the source the settings come from")
        return v

    @model_validator(mode="after")
    def _one_system(self):
        if (self.cluster is None) == (self.node is None):
            raise ValueError("give either cluster or node (with nodes), not both or neither")
        if self.node is not None and self.nodes is None:
            raise ValueError("node needs nodes (how many)")
        if self.cluster is not None and any(x is not None for x in (
                self.nodes, self.fabric, self.topology, self.oversubscription_ratio)):
            raise ValueError("nodes, fabric, topology and oversubscription_ratio go with node, "
                             "not with cluster (the cluster fixes them)")
        return self

    @property
    def devices(self) -> int:
        """Accelerators the parallelism covers: tp x pp x cp x dp."""
        return self.tp * self.pp * self.cp * self.dp

    def fleet(self):
        """The measured system: the zoo cluster, or ``nodes`` zoo nodes as a Fleet."""
        from ..specs.system import Fleet
        from ..zoo import Clusters, Nodes

        if self.cluster is not None:
            return Clusters.get(self.cluster)
        extra = {k: getattr(self, k) for k in ("fabric", "topology", "oversubscription_ratio")
                 if getattr(self, k) is not None}
        return Fleet(name=f"{self.nodes} x {self.node}", node=Nodes.get(self.node),
                     count=self.nodes, **extra)

    def solve(self, model, **extra):
        """DistributedModel's step for ``model`` with exactly this setup (``extra``: further
        DistributedModel options no setup field sets, e.g. ``token_budget``)."""
        from ..solvers.distributed import DistributedModel
        return DistributedModel().solve(
            model, self.fleet(), batch_size=self.global_batch, seq_len=self.seq_len,
            precision=self.precision, tp_size=self.tp, pp_size=self.pp, cp_size=self.cp,
            ep_size=self.ep, dp_size=self.dp, microbatch_size=self.microbatch_size,
            v_stages=self.virtual_stages, sequence_parallel=self.sequence_parallel,
            zero_stage=self.zero_stage, activation_recomputation=self.recomputation,
            overlap_comm=self.overlap_comm, rank_order=self.rank_order,
            attention_kernel=self.attention_kernel, first_stage_layers=self.first_stage_layers,
            last_stage_layers=self.last_stage_layers, dropout=self.dropout,
            backward_prefetch=self.backward_prefetch, sharding_runtime=self.sharding_runtime,
            **extra)


@lru_cache(maxsize=4)
def training_setups(path: str | Path | None = None) -> Mapping[str, TrainingSetup]:
    """Every entry of ``training_setups.yaml`` by row id, validated.

    Raises
    ------
    DataFileError
        Naming the file and the entry for unreadable YAML or a bad entry.

    Examples
    --------
    >>> s = training_setups()["REF-182"]
    >>> (s.tp, s.pp, s.dp, s.global_batch, s.recomputation)
    (8, 64, 6, 3072, 'full')
    """
    import yaml

    from ..core.datafile import open_text

    path = Path(path) if path is not None else TRAINING_SETUPS
    with open_text(path) as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise DataFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a mapping of row id to setup")
    out: dict[str, TrainingSetup] = {}
    for rid, raw in data.items():
        if not isinstance(raw, dict):
            raise DataFileError(f"{path}, entry {rid}: expected a mapping of fields")
        try:
            try:
                out[str(rid)] = TrainingSetup(**raw)
            except pydantic.ValidationError as exc:
                raise_spec_error(exc, f"training setup {rid}")
        except SpecError as exc:
            raise DataFileError(f"{path}, entry {rid}: {exc}") from None
    return out


def training_flops(convention: str, model, batch: int, seq: int) -> float:
    """Model flops of one optimizer step of ``batch`` sequences of ``seq`` tokens, counted the
    way a source counted them (so that a prediction and a measurement share one convention).

    ``l`` layers, ``h`` hidden, ``V`` vocabulary, ``B`` batch, ``s`` sequence length:

    - ``megatron_recompute``: ``96 B s l h^2 (1 + s / 6h + V / 16 l h)`` [Narayanan et al.
      2021, Eq. 3]: forward (2), backward (4) and the recompute forward (2) of every GEMM of
      the layers (24 B s h^2 + 4 B s^2 h per layer and pass), plus the logits once forward and
      backward (6 B s V h). "Achieved teraFLOP/s per GPU" in the Megatron papers is this over
      (GPUs x iteration time).
    - ``megatron``: ``72 B s l h^2 (1 + s / 6h + V / 12 l h)``, the same without the recompute
      forward: Korthikanti et al. 2022's model flops (their MFU).
    - ``palm``: ``(6 N + 12 L H Q T) B T`` with ``T = s`` [Chowdhery et al. 2022, App. B]: 6
      flops per parameter per token plus attention at the full, non-causal length; ``N`` is
      every weight (active weights for a mixture of experts), as DistributedModel counts MFU.

    Examples
    --------
    >>> from mlsysim.zoo import Models
    >>> m = Models.get("Megatron_GPT_1T")
    >>> f"{training_flops('megatron_recompute', m, 3072, 2048):.4e}"
    '5.1391e+19'
    """
    if convention not in FLOPS_CONVENTIONS:
        raise ValidationError("flops_convention", f"must be one of {', '.join(FLOPS_CONVENTIONS)}"
                              f". Got {convention!r} instead.", owner="training adapter")
    B, s = float(batch), float(seq)
    if convention == "palm":
        n = model.active_parameter_count if model.moe else model.parameter_count
        per_token = 6.0 * n + 12.0 * model.layers * model.heads * model.d_head * s
        return per_token * B * s
    L, h, V = float(model.layers), float(model.hidden), float(model.vocab)
    if convention == "megatron_recompute":
        return 96.0 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h))
    return 72.0 * B * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h))


def predict_training(row: ReferenceRow, notes: list[str]) -> Prediction:
    """A measured training run by ``DistributedModel().solve`` with the row's published
    parallelism (its ``training_setups.yaml`` entry).

    The metric follows from the predicted step time ``t`` on ``n`` devices:

    - ``step_time_s`` = ``t``; ``tokens_per_s_per_gpu`` = ``B s / (t n)`` (no convention).
    - ``tflops_per_gpu`` = ``F / (t n) / 1e12`` and ``mfu`` = ``100 F / (t n peak)`` with
      ``F`` = :func:`training_flops` in the setup's ``flops_convention`` and ``peak`` the
      device's dense peak at the run's precision. Measured and predicted rates then count the
      same flops, so the error is the step-time error: predicted / measured - 1 =
      ``t_measured / t_predicted - 1``. Example, REF-182 (1T GPT, 3072 A100): ``F`` = 96 x
      3072 x 2048 x 128 x 25600^2 x (1 + 2048/153600 + 51200/52428800) = 5.0665e19 x 1.01431
      = 5.1391e19 flop; the published 163 TFLOP/s per GPU is a step of 5.1391e19 / (3072 x
      163e12) = 102.6 s.

    The band is the step time's calibration band (``DistributedResult.step_band_s``), turned
    into the metric (a rate's low edge is the slow step). A setup
    missing for a training row is a skip (``missing-setup``); a setup that disagrees with its
    row (devices, batch) is a data error.
    """
    from ..zoo import Models

    setups = training_setups()
    setup = setups.get(row.id)
    if setup is None:
        raise Skip("missing-setup", f"no entry for {row.id} in training_setups.yaml (the "
                   "source's parallelism is needed to predict a training run)")
    if setup.devices != row.num_devices:
        raise DataFileError(f"{TRAINING_SETUPS}, entry {row.id}: tp x pp x cp x dp = "
                            f"{setup.devices}, but the row has num_devices={row.num_devices}")
    if row.batch_size is not None and row.batch_size != setup.global_batch:
        raise DataFileError(f"{TRAINING_SETUPS}, entry {row.id}: global_batch = "
                            f"{setup.global_batch}, but the row has batch_size={row.batch_size}")
    if row.metric in ("mfu", "tflops_per_gpu") and setup.flops_convention is None:
        raise DataFileError(f"{TRAINING_SETUPS}, entry {row.id}: a {row.metric} row needs the "
                            "source's flops_convention")
    try:
        model = Models.get(row.model)
    except UnknownNameError as exc:
        raise Skip("unknown-model", str(exc)) from None
    notes.extend(setup.assumed)
    r = setup.solve(model)
    if r.devices != row.num_devices:
        raise DataFileError(f"{TRAINING_SETUPS}, entry {row.id}: the fleet has {r.devices} "
                            f"devices, the row {row.num_devices}")
    t, n = r.step_s, r.devices
    call = (f"DistributedModel(tp={setup.tp}, pp={setup.pp}, cp={setup.cp}, ep={setup.ep}, "
            f"dp={setup.dp}, v={setup.virtual_stages}, mbs={setup.microbatch_size}, "
            f"batch={setup.global_batch} x {setup.seq_len}, {r.precision}, "
            f"recompute={setup.recomputation}, zero={setup.zero_stage})")
    if row.metric == "step_time_s":
        value, method = t, f"{call}.step_s"
    elif row.metric == "tokens_per_s_per_gpu":
        value, method = float(r.tokens_per_s_per_device), f"{call}.tokens_per_s_per_device"
    else:
        flops = training_flops(setup.flops_convention, model, setup.global_batch, setup.seq_len)
        if row.metric == "tflops_per_gpu":
            value = flops / (t * n) / 1e12
            method = f"{setup.flops_convention} flops / ({call}.step_s x {n}) in TFLOP/s"
        else:
            value = 100.0 * flops / (t * n * r.peak_flops)
            method = (f"{setup.flops_convention} flops / ({call}.step_s x {n} x "
                      f"{r.peak_flops / 1e12:.4g} TFLOP/s) in %")
    t_lo, t_hi = r.step_band_s
    if row.metric == "step_time_s":
        low, high = t_lo, t_hi
    else:                           # rates: inversely proportional to the step time
        low, high = value * t / t_hi, value * t / t_lo
    return predicted(value, low, high, r.feasible, r.reason, method, notes)


register_adapter("training", TRAINING_METRICS, predict_training)


# --- training runs' energy, carbon and GPU-hours: DistributedModel + SustainabilityModel ---
ENERGY_SETUPS = Path(__file__).parent / "reference" / "energy_setups.yaml"
# The metrics predict_energy serves (units in the reference schema's METRIC_UNITS).
ENERGY_METRICS = ("energy_mwh", "co2e_t", "gpu_hours")
# What a source's energy figure counts: the facility (accelerators + hosts, x PUE), the
# accelerators alone x PUE, or the accelerators alone (no PUE); the ``_tdp`` scopes are the
# sources that did not measure but multiplied GPU-hours by the TDP (Meta's model cards, x PUE;
# Luccioni et al.'s BLOOM "dynamic" consumption, without): the prediction is then put in that
# same convention, predicted GPU-hours x TDP (x PUE), so the row checks the predicted time,
# and the activity-based energy is given in the notes.
ENERGY_SCOPES = ("facility", "accelerators_pue", "accelerators", "accelerators_tdp_pue",
                 "accelerators_tdp")


class EnergySetup(TrainingSetup):
    """One published training run whose energy, carbon or GPU-hours is reported: a
    :class:`TrainingSetup` (how the run was parallelised) plus what it trained on and where
    (one entry under ``runs:`` of ``energy_setups.yaml``; the file's header lists the fields).

    ``model`` is the run's zoo model, ``token_budget`` the tokens it trained on, ``site``,
    ``pue``, ``grid`` and ``carbon_intensity_g_kwh`` the datacenter and grid as the source
    reports (or, marked under ``assumed:``, as stated there), ``energy_scope`` what the
    source's energy figure counts (:data:`ENERGY_SCOPES`)."""

    model: str
    token_budget: float = Field(gt=0, allow_inf_nan=False)
    site: str
    pue: float = Field(ge=1.0, allow_inf_nan=False)
    grid: str
    carbon_intensity_g_kwh: float = Field(ge=0.0, allow_inf_nan=False)
    energy_scope: Literal["facility", "accelerators_pue", "accelerators",
                          "accelerators_tdp_pue", "accelerators_tdp"]

    def datacenter(self):
        """The run's site as a Datacenter with its PUE on a grid of the stated intensity."""
        from ..specs.infra import Datacenter, GridSpec
        grid = GridSpec(name=self.grid,
                        carbon_intensity=f"{self.carbon_intensity_g_kwh} gCO2e/kWh")
        return Datacenter(name=self.site, grid=grid, pue=self.pue)

    def solve(self, model, **extra):
        """DistributedModel's run of ``model``: this setup's step with its token budget."""
        return super().solve(model, token_budget=self.token_budget, **extra)


class _NotPredicted(Spec):
    code: str
    reason: str

    @field_validator("code")
    @classmethod
    def _known_code(cls, v: str) -> str:
        if v not in SKIP_CODES:
            raise ValueError(f"unknown skip code {v!r}; known: {', '.join(SKIP_CODES)}")
        return v


@dataclass(frozen=True)
class EnergySetups:
    """``energy_setups.yaml``: the predicted runs and, for each run that is not predicted,
    its skip code and reason (both keyed by the rows' ``scenario``)."""

    runs: Mapping[str, EnergySetup]
    not_predicted: Mapping[str, tuple[str, str]]


@lru_cache(maxsize=4)
def energy_setups(path: str | Path | None = None) -> EnergySetups:
    """Every run of ``energy_setups.yaml``, validated.

    Raises
    ------
    DataFileError
        Naming the file and the entry for unreadable YAML or a bad entry.

    Examples
    --------
    >>> s = energy_setups().runs["bloom-176b"]
    >>> (s.tp, s.pp, s.dp, s.token_budget, s.pue, s.energy_scope)
    (4, 12, 8, 366000000000.0, 1.2, 'accelerators_tdp')
    """
    import yaml

    from ..core.datafile import open_text

    path = Path(path) if path is not None else ENERGY_SETUPS
    with open_text(path) as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise DataFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or set(data) - {"runs", "not_predicted"}:
        raise DataFileError(f"{path}: expected a mapping with 'runs' (and 'not_predicted')")
    out: dict[str, EnergySetup] = {}
    skip: dict[str, tuple[str, str]] = {}
    for section, kind in (("runs", EnergySetup), ("not_predicted", _NotPredicted)):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise DataFileError(f"{path}, {section}: expected a mapping of run name to fields")
        for key, raw in entries.items():
            if not isinstance(raw, dict):
                raise DataFileError(f"{path}, {section}.{key}: expected a mapping of fields")
            if str(key) in out or str(key) in skip:
                raise DataFileError(f"{path}, {section}.{key}: the run is listed twice")
            try:
                try:
                    entry = kind(**raw)
                except pydantic.ValidationError as exc:
                    raise_spec_error(exc, f"energy setup {key}")
            except SpecError as exc:
                raise DataFileError(f"{path}, {section}.{key}: {exc}") from None
            if section == "runs":
                out[str(key)] = entry
            else:
                skip[str(key)] = (entry.code, entry.reason)
    return EnergySetups(runs=out, not_predicted=skip)


@dataclass(frozen=True)
class EnergyRun:
    """One run predicted end to end (SI floats, except ``result``).

    ``result`` is the DistributedResult (with ``time_to_train`` and ``gpu_hours``);
    ``accelerator_w`` the predicted draw of one accelerator over the run (from the step's
    activity, :mod:`mlsysim.core.power`), ``accelerator_kwh`` all accelerators' energy over
    the predicted time (no hosts, no PUE), ``facility_kwh`` SustainabilityModel's total
    (hosts included, x PUE) or ``None`` with ``facility_reason`` where the node publishes no
    host power."""

    result: Any
    seconds: float
    devices: int
    accelerator_w: float
    tdp_w: float | None
    accelerator_kwh: float
    pue: float
    carbon_intensity_g_kwh: float
    facility_kwh: float | None
    facility_reason: str | None

    def energy_kwh(self, scope: str) -> float:
        """Energy in a source's scope (:data:`ENERGY_SCOPES`)."""
        if scope == "accelerators":
            return self.accelerator_kwh
        if scope == "accelerators_pue":
            return self.accelerator_kwh * self.pue
        if scope in ("accelerators_tdp", "accelerators_tdp_pue"):
            if self.tdp_w is None:
                raise Skip("solver-refused", "the source's energy is GPU-hours x TDP, and the "
                           "zoo's accelerator publishes no TDP")
            kwh = self.devices * self.tdp_w * self.seconds / 3.6e6
            return kwh * (self.pue if scope == "accelerators_tdp_pue" else 1.0)
        if self.facility_kwh is None:
            raise Skip("solver-refused", f"facility energy needs the hosts' power: "
                       f"{self.facility_reason}")
        return self.facility_kwh

    def co2e_t(self, scope: str) -> float:
        """Operational carbon of the energy in ``scope``, tonnes CO2e."""
        return self.energy_kwh(scope) * self.carbon_intensity_g_kwh / 1e6


@lru_cache(maxsize=64)
def energy_run(setup: EnergySetup) -> EnergyRun:
    """Predict one run: DistributedModel with the token budget, then SustainabilityModel at
    the run's site over the *predicted* time to train (never a reported duration).

    The accelerators' energy is SustainabilityModel on one accelerator (``fleet`` = the
    chip, ``run`` = the prediction: its power from the step's activity over the predicted
    time) times the devices; the facility energy is SustainabilityModel on the fleet.

    Examples
    --------
    >>> run = energy_run(energy_setups().runs["bloom-176b"])
    >>> run.devices, round(run.accelerator_kwh / run.result.gpu_hours.magnitude, 6) == \\
    ...     round(run.accelerator_w / 1000, 6)
    (384, True)
    """
    from ..solvers.sustainability import SustainabilityModel
    from ..zoo import Models

    model = Models.get(setup.model)
    r = setup.solve(model)
    fleet = setup.fleet()
    dc = setup.datacenter()
    chip = SustainabilityModel().solve(fleet.accelerator, run=r, datacenter=dc)
    seconds = float(r.time_to_train.to("s").magnitude)
    facility, why = None, None
    try:
        facility = SustainabilityModel().solve(fleet, run=r, datacenter=dc).total_energy_kwh
    except ValidationError as exc:
        why = str(exc)
    tdp = fleet.accelerator.tdp
    return EnergyRun(result=r, seconds=seconds, devices=r.devices,
                     accelerator_w=chip.fp.accelerator_w,
                     tdp_w=None if tdp is None else float(tdp.to("W").magnitude),
                     accelerator_kwh=chip.it_energy_kwh * r.devices, pue=chip.pue,
                     carbon_intensity_g_kwh=chip.fp.grid_g_kwh, facility_kwh=facility,
                     facility_reason=why)


def predict_energy(row: ReferenceRow, notes: list[str]) -> Prediction:
    """A reported training run's ``gpu_hours``, ``energy_mwh`` or ``co2e_t``: the row's
    ``scenario`` names its run in ``energy_setups.yaml`` (:func:`energy_run`).

    - ``gpu_hours`` = predicted ``time_to_train`` (token budget / predicted tokens per second)
      x devices: DistributedModel's ``gpu_hours``.
    - ``energy_mwh`` = the predicted energy in the scope the source counted (the run's
      ``energy_scope``): ``accelerators`` = devices x P x T, ``accelerators_pue`` = that x PUE,
      ``facility`` = SustainabilityModel's total energy (hosts included, x PUE), with P the
      predicted accelerator power (from the step's activity, never TDP) and T the predicted
      time to train. A source that multiplied its GPU-hours by the TDP (``accelerators_tdp``,
      ``accelerators_tdp_pue``) is compared in its own convention, devices x TDP x T (x PUE):
      its figure is an estimate of that form, not a measurement, so the row checks T; the
      activity-based energy devices x P x T (x PUE) is in the notes.
    - ``co2e_t`` = that energy x the grid intensity the source used.

    A run listed under ``not_predicted`` is skipped with its code and reason; a row whose
    run is missing is ``missing-setup``; a setup that disagrees with its row (model, devices,
    batch) is a data error. The band is the time to train's calibration band (every metric
    here is proportional to it; power is held at its nominal activity).
    """
    setups = energy_setups()
    key = row.scenario
    if key in setups.not_predicted:
        code, reason = setups.not_predicted[key]
        raise Skip(code, reason)
    setup = setups.runs.get(key)
    if setup is None:
        raise Skip("missing-setup", f"no run {key!r} in energy_setups.yaml (the row's scenario "
                   "names its run; its parallelism, token budget and site are needed)")
    where = f"{ENERGY_SETUPS}, runs.{key}"
    if setup.model != row.model:
        raise DataFileError(f"{where}: model {setup.model}, but row {row.id} has {row.model}")
    if setup.devices != row.num_devices:
        raise DataFileError(f"{where}: tp x pp x cp x dp = {setup.devices}, but row {row.id} "
                            f"has num_devices={row.num_devices}")
    if row.batch_size is not None and row.batch_size != setup.global_batch:
        raise DataFileError(f"{where}: global_batch = {setup.global_batch}, but row {row.id} "
                            f"has batch_size={row.batch_size}")
    from ..zoo import Models
    try:
        Models.get(row.model)
    except UnknownNameError as exc:
        raise Skip("unknown-model", str(exc)) from None
    notes.extend(setup.assumed)
    run = energy_run(setup)
    r = run.result
    days = run.seconds / 86400.0
    call = (f"DistributedModel(tp={setup.tp}, pp={setup.pp}, cp={setup.cp}, dp={setup.dp}, "
            f"mbs={setup.microbatch_size}, batch={setup.global_batch} x {setup.seq_len}, "
            f"{r.precision}, recompute={setup.recomputation}, zero={setup.zero_stage}, "
            f"token_budget={setup.token_budget:.4g})")
    notes.append(f"predicted: {days:,.1f} days on {run.devices} devices "
                 f"({r.gpu_hours.magnitude:,.0f} GPU-h), {run.accelerator_w:.0f} W per "
                 f"accelerator from the step's activity (u_c {r.activity[0]:.2f}, u_m "
                 f"{r.activity[1]:.2f})")
    if run.facility_kwh is not None:
        notes.append(f"facility energy (hosts included, x PUE {run.pue:g}): "
                     f"{run.facility_kwh / 1e3:,.4g} MWh")
    else:
        notes.append("facility energy not computed: the node publishes no host power")
    scope = setup.energy_scope
    tdp = f"{run.tdp_w:.0f} W TDP" if run.tdp_w is not None else "TDP"
    what = {"accelerators": f"{run.devices} x {run.accelerator_w:.0f} W x T",
            "accelerators_pue": f"{run.devices} x {run.accelerator_w:.0f} W x T x PUE "
                                f"{run.pue:g}",
            "accelerators_tdp": f"{run.devices} x {tdp} x T (the source's convention)",
            "accelerators_tdp_pue": f"{run.devices} x {tdp} x T x PUE {run.pue:g} (the "
                                    "source's convention)",
            "facility": f"SustainabilityModel total (hosts, x PUE {run.pue:g})"}[scope]
    if scope.startswith("accelerators_tdp") and row.metric != "gpu_hours":
        physical = run.energy_kwh(scope.replace("_tdp", "")) / 1e3
        notes.append(f"the source's figure is GPU-hours x TDP; at the predicted "
                     f"{run.accelerator_w:.0f} W per accelerator (the step's activity) the "
                     f"same run draws {physical:,.4g} MWh"
                     + (" (x PUE)" if scope.endswith("_pue") else ""))
    if row.metric == "gpu_hours":
        value, method = float(r.gpu_hours.magnitude), f"{call}.gpu_hours"
    elif row.metric == "energy_mwh":
        value = run.energy_kwh(scope) / 1e3
        method = f"{what} with T = {call}.time_to_train, in MWh ({scope})"
    else:
        value = run.co2e_t(scope)
        method = (f"({what}) x {run.carbon_intensity_g_kwh:g} gCO2e/kWh with T = "
                  f"{call}.time_to_train, in t ({scope})")
    # Band: the run's time at the calibration spread's edges, power held at its nominal
    # activity (every metric here is proportional to the time to train).
    t_lo, t_hi = r.step_band_s
    notes.append("band: the step time's calibration band, power at the nominal activity")
    return predicted(value, value * t_lo / r.step_s, value * t_hi / r.step_s, r.feasible,
                     r.reason, method, notes)


register_adapter("energy", ENERGY_METRICS, predict_energy)
