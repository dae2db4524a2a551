"""The common result contract: frozen, with units, ``explain()``, ``to_dict()``, ``__rich__``."""

from __future__ import annotations

import json
import math
from typing import Any

from ..units import Q_, Rate

__all__ = ["Result", "jsonable"]


def jsonable(value: Any) -> Any:
    """Quantities -> {"value", "unit"}; Rates likewise; numpy scalars -> floats."""
    if isinstance(value, Rate):
        return {"value": float(value), "unit": value.unit}
    if isinstance(value, Q_):
        mag = float(value.magnitude)
        return {"value": mag if math.isfinite(mag) else None, "unit": f"{value.units:~P}"}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Result:
    """Mixin for results. Subclasses define ``headline()`` (an ordered dict of the main
    quantities) and ``explain()``."""

    def headline(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self.headline())

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __rich__(self):
        from ..show import fields_table
        return fields_table(type(self).__name__, self.headline())
