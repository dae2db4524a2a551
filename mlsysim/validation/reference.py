"""The schema of ``reference/reference.csv``: one published measurement per row, as a spec.

A row names what was measured (``category``, ``metric``, ``value`` in ``unit``), on what
(``model``, ``hardware``, ``num_devices``, ``precision``) and under which configuration
(``batch_size``, ``prompt_len``, ``output_len``, ``scenario``), with its provenance
(``framework``, ``source_key`` into ``reference/SOURCES.md``, free-text ``notes``).

:class:`ReferenceRow` is a frozen pydantic model that checks each field and the rules between
them (the unit must be one the metric is measured in); :func:`load_reference` reads the CSV file
and raises :class:`~mlsysim.errors.DataFileError` naming the file, the line and the row id of
the first bad row. The vocabulary of categories and metrics is the built-in one below plus what
registered adapters declare (:mod:`mlsysim.validation.adapters`), so a new kind of measurement
is added by registering an adapter for it.

Left out: how a row becomes a prediction (``adapters``), the statistics (``stats``) and the
report (``report``). Values are never converted or corrected here: they stay as published.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydantic
from pydantic import field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..core.datafile import open_text
from ..errors import DataFileError
from ..specs.base import Spec

__all__ = ["ReferenceRow", "load_reference", "known_categories", "known_metric_units",
           "REFERENCE_CSV", "COLUMNS", "CATEGORIES", "METRICS", "METRIC_UNITS"]

REFERENCE_CSV = Path(__file__).parent / "reference" / "reference.csv"

COLUMNS = ("id", "category", "model", "hardware", "num_devices", "precision", "batch_size",
           "prompt_len", "output_len", "scenario", "metric", "value", "unit", "framework",
           "source_key", "notes")
CATEGORIES = ("vision_inference", "llm_inference", "llm_serving", "training",
              "recsys_inference", "energy")
# Each metric and the units its values may be published in (as spelled in the file). A
# throughput in samples/s is also published as images, inferences or queries per second.
METRIC_UNITS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "latency_ms": ("ms",),
    "throughput_samples_per_s": ("samples/s", "img/s", "inferences/s", "queries/s"),
    "ttft_ms": ("ms",),
    "itl_ms": ("ms",),
    "output_tokens_per_s": ("tokens/s",),
    "output_tokens_per_s_per_gpu": ("tokens/s/GPU",),
    "total_tokens_per_s": ("tokens/s",),
    "tokens_per_s": ("tokens/s",),
    "time_to_train_min": ("min",),
    "energy_uj_per_inference": ("uJ/inference",),
    # Training runs, each in the flop convention of its source where it counts flops
    # (mlsysim.validation.adapters.predict_training converts predictions to it).
    "mfu": ("%",),                                # model flops utilization
    "tflops_per_gpu": ("TFLOP/s/GPU",),           # achieved flop rate per GPU
    "tokens_per_s_per_gpu": ("tokens/s/GPU",),    # training tokens per second per GPU
    "step_time_s": ("s",),                        # one optimizer step (iteration)
    # Whole training runs as their sources report them (mlsysim.validation.adapters.
    # predict_energy): energy in the scope the source counted (the run's energy_scope),
    # operational carbon, and accelerator-hours.
    "energy_mwh": ("MWh",),                       # training energy
    "co2e_t": ("tCO2e",),                         # operational carbon, metric tonnes CO2e
    "gpu_hours": ("GPU-h",),                      # accelerator-hours of the run
})
METRICS = tuple(METRIC_UNITS)

_TEXT = ("model", "hardware", "precision", "scenario", "unit", "framework", "source_key",
         "notes")
_REQUIRED_TEXT = ("id", "category", "metric", "model", "hardware", "unit")
_COUNTS = ("num_devices", "batch_size", "prompt_len", "output_len")


def known_categories() -> tuple[str, ...]:
    """The built-in categories, then those that only registered adapters name.

    Examples
    --------
    >>> known_categories()[:2]
    ('vision_inference', 'llm_inference')
    """
    from .adapters import declared_vocabulary

    extra, _ = declared_vocabulary()
    return CATEGORIES + tuple(c for c in extra if c not in CATEGORIES)


def known_metric_units() -> dict[str, tuple[str, ...]]:
    """Every known metric and its allowed units: the built-in ones, then the adapters' ones.

    Examples
    --------
    >>> known_metric_units()["ttft_ms"]
    ('ms',)
    """
    from .adapters import declared_vocabulary

    _, extra = declared_vocabulary()
    units = dict(METRIC_UNITS)
    for metric, allowed in extra.items():
        units.setdefault(metric, allowed)
    return units


def _error(message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError("reference_row", message, ctx)


class ReferenceRow(Spec):
    """One published measurement, parsed and checked.

    Empty optional cells become ``""`` (text) or ``None`` (counts). ``line`` and ``path`` say
    where the row was read from (0 and ``""`` for a row built in code).

    Parameters
    ----------
    id : str
        Unique row id, e.g. ``"REF-001"``.
    category : str
        One of :func:`known_categories`.
    model, hardware : str
        Zoo names (a name not in the zoo is kept; the row is then skipped with a reason).
    num_devices : int
        Accelerators in the measured system (>= 1).
    precision : str
        As published (``"FP8 (e4m3)"``, ``"int4 weight-only (g32)"``); empty if not stated.
    batch_size, prompt_len, output_len : int or None
        Sequences or samples per batch, prompt and output tokens; ``None`` when not published.
    scenario, framework, source_key, notes : str
        Benchmark scenario, serving stack, key into ``SOURCES.md`` and free text.
    metric : str
        One of :func:`known_metric_units`.
    value : float
        The measurement, finite and positive, in ``unit``.
    unit : str
        One of the units allowed for ``metric``.

    Raises
    ------
    DataFileError
        Naming the file, line and row id (when known) and every bad field.

    Examples
    --------
    >>> row = ReferenceRow(id="R-1", category="vision_inference", model="ResNet50",
    ...                    hardware="A100", num_devices="1", metric="latency_ms",
    ...                    value="0.5", unit="ms")
    >>> row.value, row.batch_size
    (0.5, None)
    """

    id: str
    category: str
    model: str = ""
    hardware: str = ""
    num_devices: int
    precision: str = ""
    batch_size: int | None = None
    prompt_len: int | None = None
    output_len: int | None = None
    scenario: str = ""
    metric: str
    value: float
    unit: str = ""
    framework: str = ""
    source_key: str = ""
    notes: str = ""
    line: int = 0
    path: str = ""

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise DataFileError(f"{_where(data)}: {_describe(exc)}") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, line: int = 0,
                     path: str = "") -> ReferenceRow:
        """A row from a mapping of column name to cell (strings, as the csv module gives).

        Parameters
        ----------
        data : mapping
            Cells by column name; missing optional columns count as empty.
        line, path : where the row was read from, for error messages.

        Examples
        --------
        >>> ReferenceRow.from_mapping({"id": "R-2", "category": "llm_inference",
        ...     "model": "Llama2_7B", "hardware": "H100", "num_devices": "8",
        ...     "metric": "ttft_ms", "value": "12.5", "unit": "ms", "batch_size": ""}).num_devices
        8
        """
        return cls(**dict(data), line=line, path=path)

    @field_validator(*_TEXT, "id", "category", "metric", mode="before")
    @classmethod
    def _text(cls, v: Any, info: pydantic.ValidationInfo) -> str:
        text = "" if v is None else str(v).strip()
        if not text and info.field_name in _REQUIRED_TEXT:
            raise _error("is empty; every row needs one")
        return text

    @field_validator(*_COUNTS, mode="before")
    @classmethod
    def _count(cls, v: Any, info: pydantic.ValidationInfo) -> int | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            if info.field_name == "num_devices":
                raise _error("is empty; it needs a whole number >= 1")
            return None
        try:
            if isinstance(v, bool):
                raise TypeError
            n = float(v)
        except (TypeError, ValueError):
            raise _error("must be a whole number >= 1. Got {got} instead.", got=repr(v)) from None
        if not math.isfinite(n) or n < 1 or n != int(n):
            raise _error("must be a whole number >= 1. Got {got} instead.", got=repr(v))
        return int(n)

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> float:
        try:
            if isinstance(v, bool):
                raise TypeError
            x = float(v.strip() if isinstance(v, str) else v)
        except (TypeError, ValueError):
            raise _error("must be a number. Got {got} instead.", got=repr(v)) from None
        if not math.isfinite(x) or x <= 0:
            raise _error("must be a finite, positive number. Got {got} instead.", got=repr(v))
        return x

    @field_validator("category")
    @classmethod
    def _known_category(cls, v: str) -> str:
        known = known_categories()
        if v not in known:
            raise _error("unknown category {got}; known categories: {known}", got=repr(v),
                         known=", ".join(known))
        return v

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        known = known_metric_units()
        if v not in known:
            raise _error("unknown metric {got}; known metrics: {known}", got=repr(v),
                         known=", ".join(known))
        return v

    @model_validator(mode="after")
    def _unit_matches_metric(self) -> ReferenceRow:
        allowed = known_metric_units()[self.metric]
        if self.unit not in allowed:
            raise _error("column 'unit' is {got}, but metric {metric} is published in: "
                         "{allowed}", got=repr(self.unit), metric=repr(self.metric),
                         allowed=", ".join(allowed))
        return self


def _where(data: Mapping[str, Any]) -> str:
    """'file, line N (row ID)' from what is known of a row's origin."""
    path, line = data.get("path") or "", data.get("line") or 0
    rid = str(data.get("id") or "").strip()
    if not path:
        return f"reference row {rid!r}" if rid else "reference row"
    where = f"{path}, line {line}" if line else path
    return f"{where} (row {rid!r})" if rid else where


def _describe(exc: pydantic.ValidationError) -> str:
    """One clause per bad field, each naming its column."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            parts.append(f"column '{loc}' is missing")
        elif err["type"] == "extra_forbidden":
            parts.append(f"column '{loc}' is not a known column; known: {', '.join(COLUMNS)}")
        elif loc:
            parts.append(f"column '{loc}' {err['msg']}")
        else:
            parts.append(err["msg"])
    return "; ".join(parts)


def load_reference(path: str | Path | None = None) -> list[ReferenceRow]:
    """Every row of a reference file, in file order.

    Parameters
    ----------
    path : str or Path, optional
        A CSV file with the header :data:`COLUMNS` (in any order); default: the package's
        ``reference/reference.csv``. Blank lines are ignored.

    Raises
    ------
    DataFileError
        Naming the file and line (and the row id) for an unreadable file, a missing or unknown
        column, a row with the wrong number of fields, a bad field (see :class:`ReferenceRow`)
        or a duplicate id.

    Examples
    --------
    >>> rows = load_reference()
    >>> rows[0].id, rows[0].line
    ('REF-001', 2)
    """
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
        unknown = [c for c in header if c not in COLUMNS]
        if unknown:
            raise DataFileError(f"{path}, line 1: unknown columns {', '.join(unknown)}; known "
                                f"columns: {', '.join(COLUMNS)}")
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
