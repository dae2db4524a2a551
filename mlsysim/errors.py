"""The exception types users see. Every user error derives from :class:`MLSysimError`.

Messages follow one template: what was wrong, where, and what is allowed instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "MLSysimError",
    "ValidationError",
    "UnknownNameError",
    "UnsupportedPrecisionError",
    "SpecError",
    "DimensionError",
    "InfeasibleConfigError",
    "DataFileError",
    "closest",
]


class MLSysimError(Exception):
    """Root of every error MLSys·im raises on purpose."""


class ValidationError(MLSysimError, ValueError):
    """A parameter value is out of its allowed domain (NaN, negative, fractional, ...)."""

    def __init__(self, field: str, message: str, *, owner: str | None = None):
        self.field = field
        self.owner = owner
        self.message = message
        where = f"The '{field}' parameter" + (f" of {owner}" if owner else "")
        super().__init__(f"{where} {message}")

    def owned_by(self, owner: str) -> ValidationError:
        """The same refusal in the name of ``owner``: a solver that passes its own parameters
        on to another one answers for them (ContinuousBatchingModel's tp_size is its own)."""
        return self if self.owner == owner else ValidationError(self.field, self.message,
                                                                owner=owner)


class UnknownNameError(MLSysimError, KeyError, AttributeError):
    """A zoo name (model, hardware, ...) that does not exist; suggests the closest ones."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind, self.name = kind, name
        self.choices = sorted(set(choices))
        self.suggestions = closest(name, self.choices)
        hint = (
            f" Did you mean: {', '.join(self.suggestions)}?"
            if self.suggestions
            else f" Known {kind} names: {', '.join(self.choices[:12])}"
            + (", ..." if len(self.choices) > 12 else "")
        )
        super().__init__(f"Unknown {kind} '{name}'.{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class UnsupportedPrecisionError(MLSysimError, ValueError):
    """A precision the device has no published peak for (never silently mapped to fp16)."""

    def __init__(self, precision: str, device: str, supported: Iterable[str]):
        self.precision, self.device = precision, device
        self.supported = list(supported)
        super().__init__(
            f"precision '{precision}' is not supported by {device}; "
            f"choose one of: {', '.join(self.supported)}"
        )


class SpecError(MLSysimError, ValueError):
    """A hardware/model/config spec that fails validation (field named in the message)."""


class DimensionError(SpecError):
    """A quantity with the wrong dimension, e.g. a bandwidth written in TFLOP/s."""


class DataFileError(SpecError):
    """A malformed data file; the message names the file (and the entry or line)."""


class InfeasibleConfigError(MLSysimError):
    """A config that cannot run: carries the resource, what it needs and what is available."""

    def __init__(self, resource: str, required, available, message: str | None = None):
        self.resource, self.required, self.available = resource, required, available
        super().__init__(message or f"needs {required} of {resource}, has {available}")


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` choices closest to ``name``, ignoring case, '-', '_' and '.'."""
    def norm(s: str) -> str:
        return s.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")

    choices = list(choices)
    by_norm: dict[str, str] = {}
    for c in choices:
        by_norm.setdefault(norm(c), c)
    hits = [by_norm[h] for h in difflib.get_close_matches(norm(name), list(by_norm), n=n,
                                                           cutoff=0.5)]
    hits += [c for k, c in by_norm.items() if k.startswith(norm(name)) and c not in hits]
    return hits[:n]
