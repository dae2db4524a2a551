"""The solver contract as code: the base every solver and every result derives from.

A solver (:class:`ForwardModel`) declares the keywords its ``solve`` accepts once, as
:class:`Option` rows, registers itself when its class is defined (``all_solvers()`` lists them)
and gives a representative and an infeasible example for the contract battery
(``tests/test_contract.py``), which checks every registered solver for determinism, unmutated
inputs, units, monotonicity in bandwidth and FLOP/s, roofs, strict JSON and compact display.

A result (:class:`Result`) is a frozen dataclass with SI floats inside. The base adds only
methods and class attributes, never fields or an ``__init__``: building a result costs what
the dataclass costs, and everything derived (quantities, the binding resource, JSON, HTML) is
computed when asked for. It carries

- ``feasible`` (default True) and ``reason`` (None when feasible, a sentence when not),
- ``binding``: the resource that sets the headline number ("memory bandwidth", "compute",
  "launch", "KV capacity", "queueing", ...),
- ``assumptions``: short strings naming what the model takes for granted,
- ``headline()`` (the main quantities, in order), ``explain()`` (the equations with numbers),
  ``to_dict()`` / ``to_json()`` (magnitudes with unit strings; strict JSON: never NaN or
  Infinity, a non-finite number becomes null), ``trace()`` (provenance), ``__rich__``, a
  compact ``__repr__`` and ``_repr_html_`` for notebooks.

Left out on purpose: config validation (each solver validates at its own boundary, see
:mod:`~mlsysim.core.validate`) and any caching; a result never calls a solver.
"""

from __future__ import annotations

import html
import importlib
import json
import math
import pkgutil
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

from ..units import Q_, Rate

__all__ = ["ForwardModel", "Option", "REQUIRED", "Result", "all_solvers", "jsonable",
           "registered_solvers"]


# --- JSON -------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON data: quantities and Rates -> ``{"value", "unit"}``, numpy scalars and arrays
    -> floats and lists, and every non-finite float (NaN, +-inf) -> None.

    >>> jsonable({"t": Q_(2.0, "ms"), "x": float("inf")})
    {'t': {'value': 2.0, 'unit': 'ms'}, 'x': None}
    """
    if isinstance(value, Rate):
        mag = float(value)
        return {"value": mag if math.isfinite(mag) else None, "unit": value.unit}
    if isinstance(value, Q_):
        mag = float(value.magnitude)
        return {"value": mag if math.isfinite(mag) else None, "unit": f"{value.units:~P}"}
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return jsonable(value.tolist())
    return value


# --- solvers ------------------------------------------------------------------------------------
class _Required:
    """Marker for an option without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


@dataclass(frozen=True)
class Option:
    """One keyword of a solver's ``solve``: its name, default (``REQUIRED`` if none) and a
    one-line description with units."""

    name: str
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        """True when ``solve`` has no default for this keyword."""
        return self.default is REQUIRED


_REGISTRY: dict[str, type[ForwardModel]] = {}

# Where solvers live. Found by name when the full registry is asked for, the way plugins are:
# core never imports a solver module at import time.
SOLVER_PACKAGES = ("mlsysim.core.engine", "mlsysim.solvers", "mlsysim.optimize")


class ForwardModel:
    """Base of every solver: options declared once, one pure ``solve(...)``, no state.

    Subclasses set ``options`` (a tuple of :class:`Option`, in the order of ``solve``'s
    keywords; names starting with "_" are private and not declared) and ``example()``. No
    ``**kwargs`` pass-through: a solver that runs another takes its options as a config. Defining a
    subclass registers it; pass ``register=False`` in the class statement to opt out.

    Examples
    --------
    >>> from mlsysim.core.engine import SingleNodeModel
    >>> [o.name for o in SingleNodeModel.options][:3]
    ['model', 'hardware', 'batch_size']
    >>> SingleNodeModel()
    SingleNodeModel()
    """

    options: ClassVar[tuple[Option, ...]] = ()

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register:
            _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def solve(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Keyword arguments of a representative solve (``feasible=True``) or of one whose
        result is infeasible (``feasible=False``); the contract battery runs both."""
        raise NotImplementedError(f"{cls.__name__} declares no example")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The declared options that have defaults, as ``{name: default}``."""
        return {o.name: o.default for o in cls.options if not o.required}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def registered_solvers() -> tuple[type[ForwardModel], ...]:
    """The solver classes defined so far (imports nothing), sorted by name."""
    return tuple(sorted(_REGISTRY.values(), key=lambda c: (c.__name__, c.__module__)))


def all_solvers() -> tuple[type[ForwardModel], ...]:
    """Every solver class of the package, sorted by name: imports each module of
    ``SOLVER_PACKAGES`` first, so the registry is complete.

    >>> "ServingModel" in [s.__name__ for s in all_solvers()]
    True
    """
    for name in SOLVER_PACKAGES:
        mod = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(mod, "__path__", ())):
            importlib.import_module(f"{name}.{info.name}")
    return registered_solvers()


# --- results ------------------------------------------------------------------------------------
def _summary_item(result: Result, entry: str) -> str:
    """One ``repr`` item: ``entry`` is "attr" (shown as attr=value) or "attr:label" (shown
    as label=value, or the value alone when the label is empty); "attr" may be dotted
    ("scaled.model"); a spec shows its key."""
    name, colon, label = entry.partition(":")
    value = attrgetter(name)(result)
    key = getattr(value, "key", None)
    if isinstance(key, str):  # a spec: its key alone, unless a label is asked for
        return f"{label}={key}" if label else key
    from ..show import format_value
    label = label if colon else name
    return f"{label}={format_value(value)}" if label else format_value(value)


class Result:
    """Base of every result (a frozen dataclass; this class adds no fields and no ``__init__``).

    Subclasses define ``headline()`` (an ordered dict of the main quantities), ``explain()``
    and ``binding``; and may override the class attributes below. ``feasible`` and ``reason``
    are plain class attributes so that a subclass can make them dataclass fields (keep such
    fields last: the inherited values become their defaults) or properties. Decorate subclasses
    with ``@dataclass(frozen=True, eq=False, repr=False)`` so the compact ``__repr__`` below is
    kept.

    Class attributes
    ----------------
    feasible : bool, True unless the subclass says otherwise
    reason : str | None, why it is infeasible (always set when ``feasible`` is False)
    assumptions : tuple[str, ...], what the model takes for granted
    main_latency : str | None, the attribute holding the headline latency (seconds as a float
        or array, or a time quantity); the battery checks faster hardware never increases it
    summary_inputs, summary_numbers : tuple[str, ...], attributes shown by ``repr``, each
        "attr" (shown attr=value) or "attr:label" (label=value; the value alone if empty);
        specs show their key; a trailing "?" omits the item while its value is 1 (``tp_size?``)
    """

    feasible = True
    reason: str | None = None
    assumptions: tuple[str, ...] = ()
    main_latency: ClassVar[str | None] = None
    summary_inputs: ClassVar[tuple[str, ...]] = ()
    summary_numbers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _built(cls, **values: Any):
        """The frozen dataclass ``cls(**values)`` without its generated ``__init__``, which
        sets each field through ``object.__setattr__`` (a tenth of a training solve for a
        result of forty fields): defaults filled in, names checked as ``__init__`` would.
        For results that define no ``__post_init__``."""
        plan = cls.__dict__.get("_build_plan")
        if plan is None:
            from dataclasses import MISSING, fields
            defaults, factories, required = {}, {}, set()
            for f in fields(cls):
                if f.default is not MISSING:
                    defaults[f.name] = f.default
                elif f.default_factory is not MISSING:
                    factories[f.name] = f.default_factory
                else:
                    required.add(f.name)
            names = frozenset(defaults) | frozenset(factories) | required
            plan = (defaults, factories, frozenset(required), names)
            type.__setattr__(cls, "_build_plan", plan)
        defaults, factories, required, names = plan
        if not names.issuperset(values) or not required.issubset(values):
            raise TypeError(f"{cls.__name__}: unknown fields {sorted(set(values) - names)}, "
                            f"missing {sorted(required - set(values))}")
        obj = object.__new__(cls)
        state = obj.__dict__
        state.update(defaults)
        for name, make in factories.items():
            state[name] = make()
        state.update(values)
        return obj

    def headline(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def binding(self) -> str:  # pragma: no cover - abstract
        """The resource that sets the headline number, as a short string."""
        raise NotImplementedError(f"{type(self).__name__} does not name its binding resource")

    def to_dict(self) -> dict[str, Any]:
        """The headline as JSON data, plus ``binding`` and ``assumptions``."""
        d = jsonable(self.headline())
        d.setdefault("feasible", bool(self.feasible))
        d.setdefault("reason", self.reason)
        d["binding"] = self.binding
        d["assumptions"] = list(self.assumptions)
        return d

    def to_json(self, **kwargs) -> str:
        """Strict JSON (``allow_nan=False``): non-finite numbers are written as null."""
        return json.dumps(jsonable(self.to_dict()), allow_nan=False, **kwargs)

    def trace(self) -> dict[str, Any]:
        """Provenance. The default is the headline with the binding resource and the
        assumptions; results built on the operator cost model give the full record."""
        return {"result": type(self).__name__, "headline": jsonable(self.headline()),
                "binding": self.binding, "assumptions": list(self.assumptions)}

    def __rich__(self):
        from ..show import fields_table
        fields = self.headline()
        if not {"bottleneck", "binding"} & fields.keys():
            # Every table names what binds (the ``to_dict`` key), next to the verdict.
            try:
                binding = self.binding
            except NotImplementedError:
                binding = None
            if binding is not None:
                at = list(fields).index("feasible") if "feasible" in fields else len(fields)
                items = list(fields.items())
                fields = dict(items[:at] + [("binding", binding)] + items[at:])
        return fields_table(type(self).__name__, fields)

    def __repr__(self) -> str:
        shown = [e.rstrip("?") for e in self.summary_inputs if not (
            e.endswith("?") and attrgetter(e.rstrip("?").split(":")[0])(self) == 1)]
        inputs = ", ".join(_summary_item(self, e) for e in shown)
        numbers = ", ".join(_summary_item(self, e) for e in self.summary_numbers)
        text = f"{type(self).__name__}({inputs}: {numbers})" if inputs else \
            f"{type(self).__name__}({numbers})"
        if not self.feasible:
            why = f"  infeasible: {self.reason}"
            text += "\n" + (why if len(text) + len(why) < 200 else why[:196 - len(text)] + "...")
        return text

    def _repr_html_(self) -> str:
        """The headline as a small HTML table (Jupyter)."""
        from ..show import format_value
        esc = html.escape
        rows = "".join(
            f"<tr><th style=\"text-align:left\">{esc(str(k).replace('_', ' '))}</th>"
            f"<td>{esc(format_value(v))}</td></tr>"
            for k, v in self.headline().items() if not isinstance(v, dict))
        return (f"<table><caption style=\"text-align:left\"><b>{esc(type(self).__name__)}</b>"
                f"</caption>{rows}</table>")
