"""Shared pieces of every spec: the frozen pydantic base, quantity fields, provenance.

Quantities are written in data files as strings with units ("3.35 TB/s", "80 GB"); a field
declares the unit it must convert to, so a bandwidth written in TFLOP/s fails at load with a
dimension error naming the field.
"""

from __future__ import annotations

import math
import re
from functools import cached_property, lru_cache
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator
from pydantic_core import PydanticCustomError

from ..errors import DimensionError, SpecError
from ..units import Q_, Quantity, ureg

__all__ = ["Spec", "QuantityOf", "Sourced", "raise_spec_error"]


_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)\s+(\S.*?)\s*$",
                          re.IGNORECASE)


@lru_cache(maxsize=512)
def _units(text: str):
    return ureg.parse_units(text)


def _quantity_from_text(text: str) -> Quantity:
    """'3.35 TB/s' -> quantity. The number/unit split with cached unit parsing is ~20x faster
    than pint's general expression parser, which remains the fallback."""
    m = _NUMBER_UNIT.match(text)
    if m:
        try:
            return Q_(float(m.group(1)), _units(m.group(2)))
        except Exception:
            pass
    return Q_(text)


def _parse_quantity(unit: str, allow_zero: bool):
    target = ureg.Unit(unit)

    def parse(value: Any) -> Quantity:
        if isinstance(value, bool) or value is None:
            raise PydanticCustomError("quantity", "expected a quantity with a unit such as '{u}'",
                                      {"u": unit})
        if isinstance(value, (int, float)):
            raise PydanticCustomError(
                "quantity", "a bare number ({v}) has no unit; write it with one, e.g. '{v} {u}'",
                {"v": value, "u": unit})
        if isinstance(value, str):
            try:
                value = _quantity_from_text(value)
            except Exception:
                raise PydanticCustomError(
                    "quantity", "cannot read '{v}' as a quantity (expected e.g. '1 {u}')",
                    {"v": value, "u": unit}) from None
        if not isinstance(value, Q_):
            raise PydanticCustomError("quantity", "expected a quantity, got {t}",
                                      {"t": type(value).__name__})
        if value.dimensionality != target.dimensionality:
            raise PydanticCustomError(
                "dimension", "'{v}' has dimension {d}, expected a quantity convertible to '{u}'",
                {"v": f"{value:~P}", "d": str(value.dimensionality), "u": unit})
        mag = float(value.to(target).magnitude)
        if not math.isfinite(mag) or mag < 0 or (mag == 0 and not allow_zero):
            raise PydanticCustomError(
                "quantity", "must be a finite {p} quantity, got '{v}'",
                {"p": "non-negative" if allow_zero else "positive", "v": f"{value:~P}"})
        return value

    return parse


def QuantityOf(unit: str, *, allow_zero: bool = False):
    """An annotated quantity field that must convert to ``unit`` and be finite and positive."""
    return Annotated[
        Any,
        BeforeValidator(_parse_quantity(unit, allow_zero)),
        PlainSerializer(lambda q: f"{q:~P}", return_type=str),
    ]


def raise_spec_error(exc: pydantic.ValidationError, where: str) -> None:
    """Turn pydantic's error into ours: one line per bad field, named by its path."""
    lines = []
    dimension = False
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
        msg = err["msg"]
        if err["type"] == "dimension":
            dimension = True
        if err["type"] == "extra_forbidden":
            msg = "is not a known field (check its spelling)"
        else:
            # One template with solver parameters: "<field>: must be ... (got <value>)".
            msg = msg.removeprefix("Value error, ")
            if msg.startswith("Input should be"):
                msg = "must be" + msg[len("Input should be"):]
            got = err.get("input")
            if err["type"] not in ("missing", "value_error", "dimension", "quantity") and \
                    not isinstance(got, (dict, list)):
                msg += f" (got {got!r})"
        lines.append(f"  {loc}: {msg}")
    cls = DimensionError if dimension else SpecError
    raise cls(f"invalid {where}:\n" + "\n".join(lines)) from None


class Spec(BaseModel):
    """Frozen, strict base: unknown keys are errors, instances never change.

    Equality and hash are by content (the validated fields, as their JSON), so equal specs
    built separately are interchangeable as cache keys (:mod:`mlsysim.cache`). The JSON and
    its hash are computed once per instance: a cache lookup with an equal spec that is not
    the stored object compares two strings, not two fresh serializations (a fleet's costs
    about a millisecond).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True,
                              validate_default=True)

    def __hash__(self) -> int:
        return self._content_hash

    def __eq__(self, other) -> bool:
        return self is other or (type(other) is type(self)
                                 and self._content_hash == other._content_hash
                                 and self._content == other._content)

    @cached_property
    def _content(self) -> str:
        return self.model_dump_json()

    def __getstate__(self) -> dict[str, Any]:
        # str hashes are salted per process: a pickled hash would be wrong in a worker
        # (equal specs there would hash apart), so the cached content and hash stay behind.
        state = super().__getstate__()
        cached = state["__dict__"]
        if "_content" in cached or "_content_hash" in cached:
            state = {**state, "__dict__": {k: v for k, v in cached.items()
                                           if k not in ("_content", "_content_hash")}}
        return state

    @cached_property
    def _content_hash(self) -> int:
        return hash((type(self).__qualname__, self._content))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """A validated copy: ``update`` goes through the same checks as a new entry, and
        derived values (parameter counts, cached peaks) are recomputed, never carried over."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update or {})
        return type(self)(**data)


class Sourced(Spec):
    """An entry with provenance: where its numbers come from; estimates say how they were made.

    ``field_sources`` cites a different source for single fields (e.g. ``price``).
    """

    source: str
    as_of: str
    estimate: bool = False
    notes: str | None = None
    field_sources: dict[str, str] = {}

    def __init__(self, **data: Any):
        # Top-level entries only: nested specs must raise pydantic's errors so that the whole
        # entry reports every bad field with its full path at once.
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise_spec_error(exc, type(self).__name__)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs):
        """Validate a mapping into a spec, raising our SpecError (not pydantic's)."""
        if isinstance(obj, cls):
            return obj
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None):
        """Build from a parsed data-file entry; errors name ``where`` (file and entry)."""
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
        try:
            return cls(**data)
        except SpecError as exc:
            raise type(exc)(f"{where}: {exc}") from None

    @model_validator(mode="after")
    def _estimates_explained(self):
        if not self.source.strip():
            raise ValueError("source must name a datasheet, paper or URL")
        if self.estimate and not (self.notes and self.notes.strip()):
            raise ValueError("an entry marked estimate: true needs notes saying how it was "
                             "estimated")
        return self
