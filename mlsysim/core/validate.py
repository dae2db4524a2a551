"""Checks at the config boundary: nothing invalid reaches the math.

Each check raises :class:`~mlsysim.errors.ValidationError` naming the parameter and its owner.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import UnsupportedPrecisionError, ValidationError
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec

__all__ = ["positive_int", "positive_float", "fraction", "precision_of", "non_negative_int",
           "bandwidth", "parallel_split", "flag"]


def positive_int(name: str, value, owner: str, *, kind: str = "positive") -> int:
    """A whole number >= 1 (bools, NaN, inf, fractions and strings are refused)."""
    if type(value) is int and value >= 1:   # the common case, without the ABC checks below
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value != int(value) or value < 1:
        raise ValidationError(name, f"must be a {kind} whole number. Got {value!r} instead.",
                              owner=owner)
    return int(value)


def flag(name: str, value, owner: str) -> bool:
    """True or False (numpy bools too); 1, "yes" and None are refused, not read as truthy."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValidationError(name, f"must be True or False. Got {value!r} instead.", owner=owner)


def non_negative_int(name: str, value, owner: str) -> int:
    """A whole number >= 0 (the refusal says non-negative: 0 is allowed)."""
    if value == 0 and not isinstance(value, bool):
        return 0
    return positive_int(name, value, owner, kind="non-negative")


def positive_float(name: str, value, owner: str, *, allow_zero: bool = False) -> float:
    if type(value) is float and 0.0 < value < math.inf:   # the common case (NaN fails it)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(name, f"must be a positive number. Got {value!r} instead.",
                              owner=owner)
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValidationError(name, f"must be a finite {kind} number. Got {value!r} instead.",
                              owner=owner)
    return v


def fraction(name: str, value, owner: str) -> float:
    """A number in [0, 1]."""
    if type(value) is float and 0.0 <= value <= 1.0:    # the common case (NaN fails it)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        raise ValidationError(name, f"must be a number between 0 and 1. Got {value!r} instead.",
                              owner=owner)
    return float(value)


def precision_of(hardware: HardwareSpec, precision, owner: str, name: str = "precision") -> str:
    """A precision the device has a published dense peak for."""
    if not isinstance(precision, str):
        raise ValidationError(name, f"must be a precision name such as 'fp16'. Got {precision!r} "
                              "instead.", owner=owner)
    p = precision.strip().lower()
    if p not in BYTES_PER_ELEMENT or p not in hardware.compute.dense:
        raise UnsupportedPrecisionError(precision, hardware.name, hardware.compute.precisions)
    return p


def bandwidth(name: str, value, owner: str) -> float:
    """A positive, finite bandwidth ('50 GB/s' or a quantity), in byte/s."""
    from ..units import Q_

    try:
        bw = float((Q_(value) if isinstance(value, str) else value).to("byte/s").magnitude)
    except Exception:
        raise ValidationError(name, f"must be a bandwidth such as '50 GB/s'. Got {value!r} "
                              "instead.", owner=owner) from None
    if not math.isfinite(bw) or bw <= 0:
        raise ValidationError(name, f"must be positive and finite. Got {value!r} instead.",
                              owner=owner)
    return bw


def parallel_split(model, tp: int, pp: int, paths, owner: str) -> None:
    """``tp`` x ``pp`` devices for ``model`` on the systems whose communication ``paths`` carry
    it: tensor parallelism splits attention heads (none for state-space models), a pipeline
    at most one layer per stage, and the group fits the scale-up domain unless a scale-out
    fabric joins domains, and never more accelerators than the system has."""
    from ..specs.model import SSMSpec, TransformerSpec

    if isinstance(model, SSMSpec) and tp > 1:
        raise ValidationError("tp_size", "must be 1 for state-space models.", owner=owner)
    if isinstance(model, TransformerSpec):
        if model.heads % tp:
            raise ValidationError("tp_size", f"must divide the number of attention heads "
                                  f"(={model.heads}). Got {tp} instead.", owner=owner)
        if pp > model.layers:
            raise ValidationError("pp_size", f"must not exceed the layers "
                                  f"(={model.layers}). Got {pp} instead.", owner=owner)
    group = tp * pp
    for path in paths:
        if group > path.domain and path.out_bw is None:
            raise ValidationError(
                "tp_size", f"times pp_size (={group}) exceeds the scale-up domain of "
                f"{path.name} ({path.domain} devices) and it has no scale-out fabric; "
                "use at most that many, or a node or fleet (mlsysim.Systems).", owner=owner)
        if group > path.total:
            raise ValidationError(
                "tp_size", f"times pp_size (={group}) exceeds the {path.total} "
                f"accelerators of {path.name}.", owner=owner)
