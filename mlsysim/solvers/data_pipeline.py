"""The input pipeline: can storage and the CPUs feed what the training (or inference) step eats?

A step consumes ``D`` samples per second (``DistributedResult.effective_throughput``,
``Engine.solve(...).throughput``, or a number). The pipeline reads each sample's ``s`` bytes
from storage and spends ``c`` CPU-seconds per sample on decode and augmentation, spread over
``w`` workers (cores). With prefetching that overlaps every stage with the step, the pipeline
delivers the slowest stage's rate (the producer-consumer bound of Murray et al. 2021,
"tf.data: A Machine Learning Data Processing Framework", VLDB, sec. 2; Mohan et al. 2021,
"Analyzing and Mitigating Data Stalls in DNN Training", VLDB, sec. 3)::

    R_storage = B / s                       storage bandwidth B, byte/s
    R_cpu     = w / c                       c = sum over steps of 1 / rate_per_core
    R         = min(R_storage, R_cpu)
    throughput     = min(D, R)
    stall_fraction = max(0, 1 - R / D)      share of the step's time spent waiting for data

``DataModel`` checks both stages; ``TransformationModel`` sizes the CPU stage alone
(``cpu_cores_needed = D c``). A per-sample CPU cost is either the user's (seconds per sample
per core) or the sum of named steps of ``zoo/data/preprocessing.yaml``: published one-thread
throughputs (JPEG decode by library on ImageNet, augmentation transforms), each with its
source. No cost is ever assumed.

Left out: caching (page cache, a dataset held in host memory after the first epoch), storage
latency and small-file IOPS limits, shuffling buffers, the host-to-device copy, GPU decode
(DALI, nvJPEG), contention between workers (SMT siblings, memory bandwidth: per-core rates
scale linearly here, an upper bound), and warm-up before the prefetch buffer fills.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import DataFileError, UnknownNameError, ValidationError
from ..specs.base import QuantityOf, Sourced
from ..units import Q_, Rate

__all__ = ["DataModel", "DataPipelineResult", "TransformationModel", "TransformationResult",
           "PreprocessingCost", "preprocessing_costs", "stall_fraction"]


# --- the sourced data -----------------------------------------------------------------------
class PreprocessingCost(Sourced):
    """One published input-pipeline step: ``rate_per_core`` samples per second on one CPU
    thread (an entry of ``zoo/data/preprocessing.yaml``)."""

    key: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    name: str
    step: str
    library: str
    rate_per_core: QuantityOf("sample/s")
    measured_on: str
    dataset: str

    @property
    def cost_s(self) -> float:
        """CPU-seconds per sample on one core: ``1 / rate_per_core``."""
        return 1.0 / float(self.rate_per_core.to("sample/s").magnitude)


@lru_cache(maxsize=1)
def preprocessing_costs() -> dict[str, PreprocessingCost]:
    """The entries of ``zoo/data/preprocessing.yaml`` by key (read once).

    >>> round(preprocessing_costs()["jpeg_decode_pillow"].cost_s * 1e3, 3)   # 1 / 577 per s
    1.733
    """
    from ..zoo import DATA, _read_yaml

    path = DATA / "preprocessing.yaml"
    out: dict[str, PreprocessingCost] = {}
    for i, raw in enumerate(_read_yaml(path)):
        key = raw.get("key", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
        entry = PreprocessingCost.from_dict(raw, f"{path.name} entry {key}")
        if entry.key in out:
            raise DataFileError(f"{path.name}: duplicate key '{entry.key}'")
        out[entry.key] = entry
    return out


def stall_fraction(supply: float, demand: float) -> float:
    """``max(0, 1 - supply / demand)``: share of a consumer's time spent waiting when a
    producer delivers ``supply`` items/s and it could take ``demand`` items/s."""
    return max(0.0, 1.0 - supply / demand)


# --- inputs -----------------------------------------------------------------------------------
def _samples_per_s(value, owner: str, name: str = "samples_per_s_required") -> float:
    """A demand in samples/s: a number, a Rate or quantity in sample/s (or 1/s), or a result
    with ``effective_throughput`` (DistributedModel) or ``throughput`` (Engine.solve)."""
    for attr in ("effective_throughput", "throughput"):
        if not isinstance(value, (numbers.Real, Q_, str)) and hasattr(value, attr):
            value = getattr(value, attr)
            break
    if isinstance(value, Rate):
        value = value.quantity
    if isinstance(value, str):
        try:
            value = Q_(value)
        except Exception:
            raise ValidationError(name, f"must be a rate such as '2000 sample/s'. Got {value!r} "
                                  "instead.", owner=owner) from None
    if isinstance(value, Q_):
        try:
            q = value.to("sample/s") if value.dimensionality == Q_(1, "sample/s").dimensionality \
                else value.to("1/s")
        except Exception:
            raise ValidationError(name, f"must be in sample/s. Got {value!r} instead.",
                                  owner=owner) from None
        value = float(q.magnitude)
    return check.positive_float(name, value, owner)


def _bytes(value, owner: str, name: str) -> float:
    """A positive, finite size: a number of bytes, '110 kB' or a quantity."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check.positive_float(name, value, owner)
    try:
        b = float((Q_(value) if isinstance(value, str) else value).to("byte").magnitude)
    except Exception:
        raise ValidationError(name, f"must be a size such as '110 kB'. Got {value!r} instead.",
                              owner=owner) from None
    if not math.isfinite(b) or b <= 0:
        raise ValidationError(name, f"must be positive and finite. Got {value!r} instead.",
                              owner=owner)
    return b


def _bandwidth(value, owner: str, name: str) -> float:
    """A bandwidth: '2 GB/s', a quantity, or a number of byte/s."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check.positive_float(name, value, owner)
    return check.bandwidth(name, value, owner)


def _seconds(value, owner: str, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check.positive_float(name, value, owner, allow_zero=allow_zero)
    try:
        s = float((Q_(value) if isinstance(value, str) else value).to("s").magnitude)
    except Exception:
        raise ValidationError(name, f"must be seconds (a number or a time such as '2 ms'). "
                              f"Got {value!r} instead.", owner=owner) from None
    return check.positive_float(name, s, owner, allow_zero=allow_zero)


def _steps(value, owner: str, name: str) -> tuple[str, ...]:
    """Keys of preprocessing.yaml: one name or a sequence of names."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not value or \
            not all(isinstance(k, str) for k in value):
        raise ValidationError(name, "must be a key of zoo/data/preprocessing.yaml or a "
                              f"non-empty list of them. Got {value!r} instead.", owner=owner)
    table = preprocessing_costs()
    for k in value:
        if k not in table:
            raise UnknownNameError("preprocessing step", k, table)
    return tuple(value)


def _cpu_cost(value, owner: str, name: str) -> tuple[float, tuple[str, ...]]:
    """(CPU-seconds per sample, preprocessing.yaml keys used) from seconds, a time, key(s),
    or a TransformationResult."""
    if isinstance(value, TransformationResult):
        return value.cost_s_per_sample, value.steps
    if isinstance(value, str) and value not in preprocessing_costs():
        try:
            Q_(value)                       # a quantity: a time, or the wrong dimension
        except Exception:
            _steps(value, owner, name)      # not one: an unknown step, with the closest names
        return _seconds(value, owner, name), ()
    if isinstance(value, (str, list, tuple)):
        keys = _steps(value, owner, name)
        return sum(preprocessing_costs()[k].cost_s for k in keys), keys
    return _seconds(value, owner, name), ()


def _max_stall(value, owner: str) -> float:
    f = check.fraction("max_stall_fraction", value, owner)
    if f >= 1.0:
        raise ValidationError("max_stall_fraction", f"must be below 1. Got {value!r} instead.",
                              owner=owner)
    return f


def _ceil(x: float) -> int:
    """Whole units covering ``x``, without rounding noise pushing 2.0000000000000004 to 3."""
    return math.ceil(x * (1.0 - 1e-12))


# --- demand against supply, shared by both results ----------------------------------------
class _SupplyAgainstDemand:
    """Views of a result with ``demand_per_s`` (D) and ``supply`` (R), both samples/s."""

    demand_per_s: float
    supply: float

    @property
    def samples_per_s_required(self) -> Rate:
        return Rate(self.demand_per_s, "sample/s")

    @property
    def supply_samples_per_s(self) -> Rate:
        return Rate(self.supply, "sample/s")

    @property
    def effective_throughput(self) -> Rate:
        """``min(D, R)``: samples/s the step actually gets."""
        return Rate(min(self.demand_per_s, self.supply), "sample/s")

    @property
    def stall_fraction(self) -> float:
        return stall_fraction(self.supply, self.demand_per_s)


# --- DataModel ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class DataPipelineResult(_SupplyAgainstDemand, Result):
    """Storage and CPU stages of an input pipeline against the step's demand. Floats are SI
    inside (samples/s, bytes, byte/s, seconds); the properties give quantities."""

    demand_per_s: float                 # D
    bytes_per_sample: float             # s
    storage_bps: float                  # B
    cpu_cost_s: float | None            # c, CPU-seconds per sample (None: not modelled)
    cpu_workers: int | None             # w
    steps: tuple[str, ...]              # preprocessing.yaml keys behind c, if any
    max_stall_fraction: float

    summary_numbers = ("supply_samples_per_s:supply", "samples_per_s_required:demand",
                       "stall_fraction:stall", "binding")

    @property
    def storage_rate(self) -> float:
        """``B / s`` samples/s."""
        return self.storage_bps / self.bytes_per_sample

    @property
    def cpu_rate(self) -> float:
        """``w / c`` samples/s (inf when no CPU cost is given)."""
        if self.cpu_cost_s is None:
            return math.inf
        return self.cpu_workers / self.cpu_cost_s if self.cpu_cost_s > 0 else math.inf

    @property
    def supply(self) -> float:
        return min(self.storage_rate, self.cpu_rate)

    @property
    def storage_samples_per_s(self) -> Rate:
        return Rate(self.storage_rate, "sample/s")

    @property
    def decode_samples_per_s(self) -> Rate | None:
        return None if self.cpu_cost_s is None else Rate(self.cpu_rate, "sample/s")

    @property
    def required_storage_bandwidth(self):
        """``D s``: what storage must deliver for no stall."""
        return Q_(self.demand_per_s * self.bytes_per_sample, "byte/s").to("GB/s")

    @property
    def workers_needed(self) -> int | None:
        """``ceil(D c)``: CPU workers for no decode stall."""
        return None if self.cpu_cost_s is None else _ceil(self.demand_per_s * self.cpu_cost_s)

    @property
    def feasible(self) -> bool:
        return self.stall_fraction <= self.max_stall_fraction

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"the input pipeline supplies {self.supply:.4g} samples/s ({self.binding} "
                f"binds), the step consumes {self.demand_per_s:.4g}: stall fraction "
                f"{self.stall_fraction:.3g} > {self.max_stall_fraction:.3g} tolerated")

    @property
    def binding(self) -> str:
        """"storage" or "decode" when that stage is slower than the step, else "none"."""
        if self.supply >= self.demand_per_s:
            return "none"
        return "storage" if self.storage_rate <= self.cpu_rate else "decode"

    @property
    def assumptions(self) -> tuple[str, ...]:
        out = ["prefetching overlaps storage, CPU work and the step (slowest stage sets "
               "the rate)", "storage bandwidth, workers and demand are for the same scope "
               "(the whole job or one node)"]
        if self.cpu_cost_s is None:
            out.append("CPU decode not modelled (no decode_cost_s_per_sample)")
        else:
            out.append("CPU workers scale linearly" + (
                " at the one-thread rates of preprocessing.yaml" if self.steps else ""))
        out.append("no caching: every sample is read from storage each epoch")
        return tuple(out)

    def headline(self) -> dict[str, Any]:
        return {
            "samples_per_s_required": self.samples_per_s_required,
            "bytes_per_sample": Q_(self.bytes_per_sample, "byte").to("kB"),
            "storage_bandwidth": Q_(self.storage_bps, "byte/s").to("GB/s"),
            "storage_samples_per_s": self.storage_samples_per_s,
            "decode_cost": None if self.cpu_cost_s is None else Q_(self.cpu_cost_s * 1e3, "ms"),
            "cpu_workers": self.cpu_workers,
            "decode_samples_per_s": self.decode_samples_per_s,
            "supply_samples_per_s": self.supply_samples_per_s,
            "effective_throughput": self.effective_throughput,
            "stall_fraction": round(self.stall_fraction, 6),
            "required_storage_bandwidth": self.required_storage_bandwidth,
            "workers_needed": self.workers_needed,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        d, s, b = self.demand_per_s, self.bytes_per_sample, self.storage_bps
        lines = [
            f"step consumes D = {d:.4g} samples/s of {s / 1e3:.4g} kB each",
            f"  storage: R_storage = B/s = {b / 1e9:.4g} GB/s / {s / 1e3:.4g} kB = "
            f"{self.storage_rate:.4g} samples/s (needs D*s = {d * s / 1e9:.4g} GB/s)",
        ]
        if self.cpu_cost_s is None:
            lines.append("  decode: not modelled (give decode_cost_s_per_sample)")
        else:
            src = f" ({' + '.join(self.steps)}, preprocessing.yaml)" if self.steps else ""
            lines.append(
                f"  decode: R_cpu = w/c = {self.cpu_workers} / {self.cpu_cost_s * 1e3:.4g} ms"
                f"{src} = {self.cpu_rate:.4g} samples/s (needs ceil(D*c) = "
                f"{self.workers_needed} workers)")
        lines.append(
            f"  R = min(stages) = {self.supply:.4g} samples/s; stall = max(0, 1 - R/D) = "
            f"max(0, 1 - {self.supply:.4g}/{d:.4g}) = {self.stall_fraction:.4g}; the step gets "
            f"{float(self.effective_throughput):.4g} samples/s; binding: {self.binding}")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


class DataModel(ForwardModel):
    """Input-pipeline throughput (storage, then CPU decode) against what the step consumes
    (see the module docstring)."""

    options = (
        Option("samples_per_s_required", REQUIRED, "samples/s the step consumes: a number, a "
               "rate, or a result with effective_throughput / throughput"),
        Option("bytes_per_sample", REQUIRED, "bytes read from storage per sample ('110 kB')"),
        Option("storage_bandwidth", REQUIRED, "read bandwidth storage delivers ('2 GB/s')"),
        Option("decode_cost_s_per_sample", None, "CPU-seconds per sample: seconds, a time, "
               "preprocessing.yaml key(s) or a TransformationResult; None: not modelled"),
        Option("cpu_workers", None, "CPU workers (cores) decoding; needed with a decode cost"),
        Option("max_stall_fraction", 0.0, "stall share still called feasible, in [0, 1)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """3,000 ImageNet images/s of 110 kB (0.33 GB/s) from 2 GB/s storage, OpenCV decode on
        8 cores (5,768/s); then the same on 4 cores (2,884/s: decode stalls the step)."""
        return dict(samples_per_s_required=3000.0, bytes_per_sample="110 kB",
                    storage_bandwidth="2 GB/s", decode_cost_s_per_sample="jpeg_decode_opencv",
                    cpu_workers=8 if feasible else 4)

    def solve(self, samples_per_s_required, bytes_per_sample, storage_bandwidth,
              decode_cost_s_per_sample=None, cpu_workers: int | None = None,
              max_stall_fraction: float = 0.0) -> DataPipelineResult:
        """Whether storage and the CPUs keep up with the step.

        Parameters
        ----------
        samples_per_s_required : samples/s the step consumes (a number, a Rate or quantity,
            or a result with ``effective_throughput`` or ``throughput``), > 0
        bytes_per_sample : bytes read per sample (a number of bytes, '110 kB'), > 0
        storage_bandwidth : read bandwidth ('2 GB/s', a quantity, or a number of byte/s), > 0
        decode_cost_s_per_sample : CPU-seconds per sample on one core: a number (s), a time
            ('1.4 ms'), a key or list of keys of ``zoo/data/preprocessing.yaml``, or a
            TransformationResult; None leaves the CPU stage out
        cpu_workers : int >= 1, workers (cores) sharing the CPU work; required with a cost
        max_stall_fraction : float in [0, 1), the stall still reported as feasible

        Returns
        -------
        DataPipelineResult with ``stall_fraction``, ``binding`` ("storage", "decode" or
        "none"), ``effective_throughput``, ``storage_samples_per_s``,
        ``decode_samples_per_s``, ``required_storage_bandwidth`` and ``workers_needed``.

        Examples
        --------
        2,000 samples/s of 1 MB need 2 GB/s; 1 GB/s of storage gives 1,000/s, so the step
        waits half the time: stall = 1 - 1000/2000 = 0.5.

        >>> r = DataModel().solve(2000, "1 MB", "1 GB/s")
        >>> r.stall_fraction, r.binding, float(r.effective_throughput)
        (0.5, 'storage', 1000.0)
        """
        owner = "DataModel"
        d = _samples_per_s(samples_per_s_required, owner)
        s = _bytes(bytes_per_sample, owner, "bytes_per_sample")
        b = _bandwidth(storage_bandwidth, owner, "storage_bandwidth")
        cost, steps, w = None, (), None
        if decode_cost_s_per_sample is not None:
            cost, steps = _cpu_cost(decode_cost_s_per_sample, owner, "decode_cost_s_per_sample")
            if cpu_workers is None:
                raise ValidationError("cpu_workers", "must be given with "
                                      "decode_cost_s_per_sample (the workers sharing the CPU "
                                      "work). Got None instead.", owner=owner)
            w = check.positive_int("cpu_workers", cpu_workers, owner)
        elif cpu_workers is not None:
            w = check.positive_int("cpu_workers", cpu_workers, owner)
        return DataPipelineResult(
            demand_per_s=d, bytes_per_sample=s, storage_bps=b, cpu_cost_s=cost, cpu_workers=w,
            steps=steps, max_stall_fraction=_max_stall(max_stall_fraction, owner))


# --- TransformationModel --------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class TransformationResult(_SupplyAgainstDemand, Result):
    """CPU cost of preprocessing (decode, augmentation, tokenization) against the demand."""

    demand_per_s: float                         # D
    steps: tuple[str, ...]                      # preprocessing.yaml keys
    step_costs_s: tuple[float, ...]             # 1 / rate of each, CPU-seconds per sample
    user_cost_s: float                          # cost_s_per_sample given by the user
    cpu_cores: int | None                       # cores available (None: sized to demand)
    max_stall_fraction: float

    summary_numbers = ("cpu_cores_needed:cores_needed", "cpu_cores:cores",
                       "stall_fraction:stall")

    @property
    def cost_s_per_sample(self) -> float:
        """``c = sum(1 / rate_k) + user cost``: CPU-seconds per sample."""
        return sum(self.step_costs_s) + self.user_cost_s

    @property
    def cpu_cores_needed(self) -> float:
        """``D c``: cores kept busy by the demand (core-equivalents, fractional)."""
        return self.demand_per_s * self.cost_s_per_sample

    @property
    def min_cpu_cores(self) -> int:
        """``ceil(D c)``: whole cores for no stall."""
        return max(1, _ceil(self.cpu_cores_needed))

    @property
    def supply(self) -> float:
        """``cores / c`` samples/s (the demand itself when cores are sized to it)."""
        if self.cpu_cores is None:
            return self.demand_per_s
        return self.cpu_cores / self.cost_s_per_sample if self.cost_s_per_sample > 0 \
            else math.inf

    @property
    def feasible(self) -> bool:
        return self.stall_fraction <= self.max_stall_fraction

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"{self.cpu_cores} CPU cores preprocess {self.supply:.4g} samples/s, the step "
                f"consumes {self.demand_per_s:.4g} (needs {self.min_cpu_cores} cores): stall "
                f"fraction {self.stall_fraction:.3g} > {self.max_stall_fraction:.3g} tolerated")

    @property
    def binding(self) -> str:
        """"cpu cores" when the cores are too few for the demand, else "none"."""
        return "cpu cores" if self.supply < self.demand_per_s else "none"

    @property
    def assumptions(self) -> tuple[str, ...]:
        out = ["steps run one after another per sample; costs add",
               "cores scale linearly (no SMT, memory-bandwidth or process contention)"]
        if self.steps:
            out.append("one-thread rates of preprocessing.yaml, measured on the CPUs named "
                       "there, each transform on the full decoded image")
        if self.cpu_cores is None:
            out.append("cores sized to the demand (cpu_cores not given)")
        return tuple(out)

    def headline(self) -> dict[str, Any]:
        return {
            "samples_per_s_required": self.samples_per_s_required,
            "steps": list(self.steps),
            "step_costs": {k: Q_(c * 1e3, "ms") for k, c in zip(self.steps, self.step_costs_s)},
            "cost_per_sample": Q_(self.cost_s_per_sample * 1e3, "ms"),
            "cpu_cores_needed": round(self.cpu_cores_needed, 6),
            "min_cpu_cores": self.min_cpu_cores, "cpu_cores": self.cpu_cores,
            "supply_samples_per_s": self.supply_samples_per_s,
            "effective_throughput": self.effective_throughput,
            "stall_fraction": round(self.stall_fraction, 6),
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        terms = [f"1/({1 / c:.6g}/s) ({k})" for k, c in zip(self.steps, self.step_costs_s)]
        if self.user_cost_s or not terms:
            terms.append(f"{self.user_cost_s * 1e3:.4g} ms (given)")
        c, d = self.cost_s_per_sample, self.demand_per_s
        lines = [
            f"step consumes D = {d:.4g} samples/s",
            f"  c = {' + '.join(terms)} = {c * 1e3:.4g} ms CPU per sample",
            f"  cores needed = D*c = {d:.4g} * {c * 1e3:.4g} ms = {self.cpu_cores_needed:.4g} "
            f"-> {self.min_cpu_cores} cores",
        ]
        if self.cpu_cores is not None:
            lines.append(
                f"  {self.cpu_cores} cores: R = cores/c = {self.supply:.4g} samples/s; stall = "
                f"max(0, 1 - R/D) = {self.stall_fraction:.4g}; binding: {self.binding}")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


class TransformationModel(ForwardModel):
    """CPU cores that preprocessing (decode, augmentation, tokenization) needs to keep up with
    the step, and the stall with the cores there are (see the module docstring)."""

    options = (
        Option("samples_per_s_required", REQUIRED, "samples/s the step consumes: a number, a "
               "rate, or a result with effective_throughput / throughput"),
        Option("transforms", None, "preprocessing.yaml key(s), run in order per sample"),
        Option("cost_s_per_sample", 0.0, "further CPU-seconds per sample on one core (yours, "
               "e.g. measured tokenization), >= 0"),
        Option("cpu_cores", None, "cores available; None sizes them to the demand"),
        Option("max_stall_fraction", 0.0, "stall share still called feasible, in [0, 1)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """A ResNet-50 style pipeline for 3,000 images/s: OpenCV decode, Albumentations
        RandomResizedCrop, flip and normalize (2.24 ms per image, 6.7 cores); then on 4 cores."""
        return dict(samples_per_s_required=3000.0,
                    transforms=("jpeg_decode_opencv", "random_resized_crop_albumentations",
                                "horizontal_flip_albumentations", "normalize_albumentations"),
                    cpu_cores=8 if feasible else 4)

    def solve(self, samples_per_s_required, transforms=None, cost_s_per_sample=0.0,
              cpu_cores: int | None = None, max_stall_fraction: float = 0.0
              ) -> TransformationResult:
        """CPU cost of preprocessing per sample, cores needed, and the stall.

        Parameters
        ----------
        samples_per_s_required : samples/s the step consumes (a number, a Rate or quantity,
            or a result with ``effective_throughput`` or ``throughput``), > 0
        transforms : a key or list of keys of ``zoo/data/preprocessing.yaml`` (published
            one-thread rates), applied in order to every sample
        cost_s_per_sample : CPU-seconds per sample on one core of further work you measured
            (a number or a time such as '0.2 ms'), >= 0; ``transforms`` or a positive cost
            is required
        cpu_cores : int >= 1 or None, cores doing the work; None sizes them to the demand
        max_stall_fraction : float in [0, 1), the stall still reported as feasible

        Returns
        -------
        TransformationResult with ``cost_s_per_sample``, ``cpu_cores_needed`` (D c),
        ``min_cpu_cores``, ``stall_fraction`` and ``effective_throughput``.

        Examples
        --------
        Pillow decode runs 577 images/s on one core (preprocessing.yaml), 1.733 ms each: 1,000
        images/s need 1000 / 577 = 1.733 cores; on one core the step waits 1 - 577/1000.

        >>> r = TransformationModel().solve(1000, "jpeg_decode_pillow", cpu_cores=1)
        >>> round(r.cpu_cores_needed, 3), r.min_cpu_cores, round(r.stall_fraction, 3)
        (1.733, 2, 0.423)
        """
        owner = "TransformationModel"
        d = _samples_per_s(samples_per_s_required, owner)
        keys = () if transforms is None else _steps(transforms, owner, "transforms")
        user = _seconds(cost_s_per_sample, owner, "cost_s_per_sample", allow_zero=True)
        if not keys and user == 0.0:
            raise ValidationError("transforms", "or a positive cost_s_per_sample must give the "
                                  "CPU work per sample. Got neither.", owner=owner)
        cores = None if cpu_cores is None else check.positive_int("cpu_cores", cpu_cores, owner)
        table = preprocessing_costs()
        return TransformationResult(
            demand_per_s=d, steps=keys, step_costs_s=tuple(table[k].cost_s for k in keys),
            user_cost_s=user, cpu_cores=cores,
            max_stall_fraction=_max_stall(max_stall_fraction, owner))
