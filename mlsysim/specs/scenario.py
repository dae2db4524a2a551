"""A declarative scenario (``mlsys.yaml``): one workload on one system, the solver runs to make
and the assertions its predictions must satisfy.

A scenario names a zoo model (``workload``), a zoo chip, node or cluster (``system``, or an
inline fleet ``{node, count}``) and any of four runs: ``single`` (:meth:`Engine.solve`),
``serving`` (:class:`~mlsysim.ServingModel`, the fields of
:class:`~mlsysim.specs.configs.ServingConfig`), ``training``
(:class:`~mlsysim.DistributedModel`, the fields of
:class:`~mlsysim.specs.configs.DistributedConfig`) and ``footprint`` (energy, carbon and cost
chained from the training run, else the single pass or the serving run). ``assertions`` are
strings such as ``"serving.itl < 30 ms"`` or ``"memory.feasible"``, parsed here, at validation
time, into (path, operator, threshold with unit): an unknown path, a threshold in the wrong
dimension or an assertion on a run the scenario does not declare is an error naming the
assertion. Running the solvers and checking the assertions is :mod:`mlsysim.scenarios`.

Every mapping forbids unknown keys. :func:`mlsysim.scenarios.load_scenario` reads the file
with line marks, so each error names the file and line of the offending key.

Not modelled here: sweeps over several configs (one scenario is one point), request streams
(ContinuousBatchingModel), and assertions across scenarios.
"""

from __future__ import annotations

import contextvars
import math
import re
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from pydantic import BeforeValidator, PrivateAttr, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema

from ..errors import MLSysimError, SpecError
from .base import Spec
from .configs import DistributedConfig, PosInt, ServingConfig

__all__ = ["Scenario", "Assertion", "ScenarioError", "METRICS", "SingleRun", "Footprint",
           "InlineFleet", "ScenarioSchema"]


class ScenarioError(SpecError):
    """A scenario file that does not validate; the message names the file and line."""


# ----------------------------------------------------------------------------- metrics
# path -> (section that must be declared, unit of the value or "" for a number or "bool",
#          what it is). The evaluator (mlsysim.scenarios) reads each from the solver results.
METRICS: dict[str, tuple[str, str, str]] = {
    "single.latency": ("single", "ms", "Engine.solve latency of one pass"),
    "single.throughput": ("single", "sample/s", "samples per second"),
    "single.memory_footprint": ("single", "GB", "weights + activations (+ KV) of the pass"),
    "single.mfu": ("single", "", "model FLOP utilisation of the pass"),
    "single.feasible": ("single", "bool", "the pass fits in device memory"),
    "serving.ttft": ("serving", "ms", "time to first token"),
    "serving.itl": ("serving", "ms", "inter-token latency"),
    "serving.e2e_latency": ("serving", "ms", "prompt + all output tokens"),
    "serving.tokens_per_s": ("serving", "token/s", "output tokens per second, all requests"),
    "serving.tokens_per_s_per_user": ("serving", "token/s", "output tokens per second, one "
                                      "request"),
    "serving.memory_footprint": ("serving", "GB", "weights + KV cache of the batch"),
    "serving.max_concurrent_sequences": ("serving", "", "sequences the KV cache holds"),
    "serving.feasible": ("serving", "bool", "the batch fits"),
    "training.step_latency_total": ("training", "ms", "one optimizer step"),
    "training.step_time": ("training", "ms", "one optimizer step (alias)"),
    "training.mfu": ("training", "", "model FLOP utilisation"),
    "training.hfu": ("training", "", "hardware FLOP utilisation (with recomputation)"),
    "training.tokens_per_s": ("training", "token/s", "training tokens per second, whole fleet"),
    "training.memory_per_device": ("training", "GB", "peak memory of one device"),
    "training.scaling_efficiency": ("training", "", "step compute share"),
    "training.bubble_fraction": ("training", "", "pipeline bubble share of the step"),
    "training.time_to_train": ("training", "day", "time for token_budget tokens"),
    "training.feasible": ("training", "bool", "the layout fits in device memory"),
    "memory.feasible": ("", "bool", "every declared run fits in device memory"),
    "memory.per_device": ("", "GB", "the largest per-device footprint of the declared runs"),
    "carbon.kg": ("footprint", "kg", "operational carbon, kgCO2e"),
    "carbon.total_kg": ("footprint", "kg", "operational + embodied carbon, kgCO2e"),
    "carbon.energy_kwh": ("footprint", "kWh", "facility energy"),
    "carbon.per_million_tokens": ("footprint", "g", "gCO2e per million tokens"),
    "carbon.energy_per_million_tokens": ("footprint", "kWh", "facility energy per million "
                                         "tokens"),
    "carbon.water_liters": ("footprint", "L", "water (site + grid)"),
    "cost.tco_usd": ("footprint", "USD", "capital share + energy of the job"),
    "cost.energy_usd": ("footprint", "USD", "energy cost of the job"),
}

_OPS = ("<=", ">=", "==", "<", ">")
_ASSERTION = re.compile(r"^\s*(?P<path>[A-Za-z_][\w.]*)\s*(?:(?P<op><=|>=|==|<|>)\s*"
                        r"(?P<value>\S.*?))?\s*$")
_QUANTITY_PATTERN = (r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*\S.*$")
_ASSERTION_PATTERN = (r"^\s*[A-Za-z_][\w.]*\s*((<=|>=|==|<|>)\s*\S.*)?$")


class _At(ValueError):
    """A validation error that knows where in the file it belongs (a path of keys)."""

    def __init__(self, loc: tuple, message: str):
        self.loc = loc
        super().__init__(message)


class Assertion(Spec):
    """One parsed assertion: ``path op threshold [unit]``, or a bare boolean ``path``."""

    text: str
    path: str
    op: Literal["<", "<=", ">", ">=", "==", "is"]
    threshold: float | bool
    unit: str                      # the metric's unit the threshold was converted to; "" if none

    @classmethod
    def parse(cls, text: Any) -> Assertion:
        """'serving.itl < 30 ms' -> Assertion(path='serving.itl', op='<', threshold=30.0,
        unit='ms'). Raises ValueError naming the assertion."""
        if isinstance(text, Assertion):
            return text
        if not isinstance(text, str):
            raise ValueError(f"an assertion is a string such as 'serving.itl < 30 ms'; got "
                             f"{text!r}")
        m = _ASSERTION.match(text)
        if not m:
            raise ValueError(f"assertion '{text}' is not 'path op value' (ops: "
                             f"{', '.join(_OPS)}) or a bare boolean path")
        path, op, raw = m["path"], m["op"], m["value"]
        if path not in METRICS:
            from ..errors import closest
            near = closest(path, list(METRICS))
            hint = f"did you mean: {', '.join(near)}?" if near else \
                f"known paths: {', '.join(METRICS)}"
            raise ValueError(f"assertion '{text}': unknown path '{path}'; {hint}")
        unit = METRICS[path][1]
        if unit == "bool":
            if op is None:
                return cls(text=text, path=path, op="is", threshold=True, unit="")
            if op != "==" or raw.strip().lower() not in ("true", "false"):
                raise ValueError(f"assertion '{text}': {path} is true or false; write "
                                 f"'{path}' or '{path} == false'")
            return cls(text=text, path=path, op="is", threshold=raw.strip().lower() == "true",
                       unit="")
        if op is None:
            raise ValueError(f"assertion '{text}': {path} is a number; compare it, e.g. "
                             f"'{path} < {_example(unit)}'")
        return cls(text=text, path=path, op=op, threshold=_threshold(text, path, raw, unit),
                   unit=unit)

    def holds(self, value: float | bool) -> bool:
        """Whether ``value`` (in ``unit``) satisfies the assertion."""
        t = self.threshold
        if self.op == "is":
            return bool(value) is t
        if self.op == "==":
            return math.isclose(value, t, rel_tol=1e-9, abs_tol=0.0)
        return {"<": value < t, "<=": value <= t, ">": value > t, ">=": value >= t}[self.op]


def _example(unit: str) -> str:
    return {"ms": "30 ms", "GB": "80 GB", "token/s": "1000 token/s", "sample/s": "100 sample/s",
            "kg": "1000 kg", "g": "200 g", "kWh": "100 kWh", "L": "1000 L", "USD": "1000 USD",
            "day": "30 day", "": "0.4"}.get(unit, f"1 {unit}")


def _threshold(text: str, path: str, raw: str, unit: str) -> float:
    """The threshold as a float in the metric's unit (bare numbers only for pure numbers)."""
    from ..units import Q_
    try:
        q = Q_(raw)
    except Exception:
        raise ValueError(f"assertion '{text}': cannot read '{raw}' as a number or a quantity "
                         "(e.g. '30 ms')") from None
    mag = q.magnitude if hasattr(q, "magnitude") else q
    if not isinstance(mag, (int, float)) or isinstance(mag, bool) or not math.isfinite(mag):
        raise ValueError(f"assertion '{text}': the threshold must be a finite number; got "
                         f"'{raw}'")
    dimensionless = not hasattr(q, "units") or q.dimensionless
    if unit == "":
        if not dimensionless:
            raise ValueError(f"assertion '{text}': {path} is a pure number; got '{raw}' "
                             f"(write e.g. '0.4' or '40 %')")
        return float(q.to("").magnitude) if hasattr(q, "units") else float(q)
    if dimensionless:
        raise ValueError(f"assertion '{text}': a bare number has no unit; write it with "
                         f"one, e.g. '{path} < {_example(unit)}'")
    if unit in ("g", "kg") and q.dimensionality == Q_("1 gCO2e").dimensionality:
        q = Q_(q.to("gCO2e").magnitude, "g")     # carbon written as gCO2e: grams of CO2e
    try:
        return float(q.to(unit).magnitude)
    except Exception:
        raise ValueError(f"assertion '{text}': '{raw}' has dimension {q.dimensionality}; "
                         f"{path} is in {unit}") from None


def _assertion(value: Any) -> Any:
    return Assertion.parse(value)


AssertionText = Annotated[
    Assertion, BeforeValidator(_assertion),
    WithJsonSchema({"type": "string", "pattern": _ASSERTION_PATTERN,
                    "description": "'path op value [unit]' or a bare boolean path; ops <, <=, "
                                   ">, >=, ==; paths: " + ", ".join(METRICS),
                    "examples": ["serving.itl < 30 ms", "memory.feasible",
                                 "training.mfu > 0.4", "carbon.per_million_tokens < 200 g"]}),
]


def _zoo_name(kind: str):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a zoo {kind} name (a string); got {value!r}")
        from .. import zoo
        reg = {"model": zoo.Models, "node": zoo.Nodes, "datacenter": zoo.Infra.Datacenters,
               "grid": zoo.Infra.Grids, "fabric": zoo.Fabrics}[kind]
        try:
            reg.get(value)                          # UnknownNameError suggests the closest
        except MLSysimError as exc:
            raise ValueError(str(exc)) from None
        return value
    return BeforeValidator(check)


def _system_name(value: Any) -> Any:
    if isinstance(value, str):
        from ..core.collectives import system_spec
        try:
            system_spec(value)
        except MLSysimError as exc:
            raise ValueError(str(exc)) from None
    return value


class InlineFleet(Spec):
    """``count`` zoo nodes joined by the node's scale-out fabric (or ``fabric``)."""

    node: Annotated[str, _zoo_name("node")]
    count: PosInt
    fabric: Annotated[str, _zoo_name("fabric")] | None = None

    def build(self):
        from ..specs.system import Fleet
        from ..zoo import Fabrics, Nodes
        node = Nodes.get(self.node)
        kw = {"fabric": Fabrics.get(self.fabric)} if self.fabric else {}
        return Fleet(name=f"{self.count} x {node.name}", node=node, count=self.count, **kw)


class SingleRun(Spec):
    """Options of one :meth:`Engine.solve` pass."""

    batch_size: PosInt = 1
    precision: str | None = None
    seq_len: PosInt | None = None
    phase: Literal["decode", "prefill", "forward"] | None = None


class Footprint(Spec):
    """Energy, carbon and cost of the job: SustainabilityModel / EconomicsModel. The activity
    comes from the training run, else the single pass, else the serving batch's decode pass
    (or ``mfu``); ``duration_days`` defaults to the training run's time for ``token_budget``."""

    datacenter: Annotated[str, _zoo_name("datacenter")] | None = None
    grid: Annotated[str, _zoo_name("grid")] | None = None
    duration_days: Annotated[float, pydantic.Field(gt=0, allow_inf_nan=False)] | None = None
    mfu: Annotated[float, pydantic.Field(gt=0, le=1)] | None = None
    utilization: Annotated[float, pydantic.Field(gt=0, le=1)] = 1.0
    kwh_price: Annotated[float, pydantic.Field(gt=0, allow_inf_nan=False)] | None = None


_READING: contextvars.ContextVar[tuple[str | None, dict]] = contextvars.ContextVar(
    "scenario_reading", default=(None, {}))


class Scenario(Spec):
    """One ``mlsys.yaml``: a workload on a system, the runs to make, the assertions to check.

    Examples
    --------
    >>> from mlsysim.specs.scenario import Scenario
    >>> s = Scenario(name="chat", workload="Llama3_8B", system="H100",
    ...              serving={"seq_len": 1024, "output_len": 256},
    ...              assertions=["serving.itl < 30 ms", "memory.feasible"])
    >>> s.assertions[0].threshold, s.assertions[0].unit
    (30.0, 'ms')
    """

    name: str
    description: str | None = None
    workload: Annotated[str, _zoo_name("model")]
    system: Annotated[str, BeforeValidator(_system_name)] | InlineFleet
    single: SingleRun | None = None
    serving: ServingConfig | None = None
    training: DistributedConfig | None = None
    footprint: Footprint | None = None
    assertions: list[AssertionText] = []

    _source: str | None = PrivateAttr(default=None)
    _lines: dict = PrivateAttr(default_factory=dict)

    sections: ClassVar[tuple[str, ...]] = ("single", "serving", "training", "footprint")

    def __init__(self, **data: Any):
        # pydantic calls an overridden __init__ from model_validate too: one place formats.
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise scenario_error(exc, *_READING.get()) from None

    @pydantic.field_validator("name")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @pydantic.model_validator(mode="after")
    def _runs_declared(self):
        runs = [s for s in ("single", "serving", "training") if getattr(self, s) is not None]
        if not runs:
            raise _At((), "declares no run; add single, serving or training")
        for i, a in enumerate(self.assertions):
            need = METRICS[a.path][0]
            if need and getattr(self, need) is None:
                raise _At(("assertions", i), f"assertion '{a.text}' needs a '{need}' "
                          "section, which this scenario does not declare")
        if self.footprint is not None:
            f = self.footprint
            if f.duration_days is None and (self.training is None
                                            or self.training.token_budget is None):
                raise _At(("footprint",), "needs duration_days (or a training section with "
                          "token_budget, whose predicted time to train is the duration)")
        return self

    @property
    def source(self) -> str | None:
        """The file this scenario was read from, if any."""
        return self._source

    def where(self, *keys) -> str:
        """'file:line' of a key path (the nearest declared ancestor), or the scenario's name."""
        return _where(self._source, self._lines, tuple(keys))

    def system_spec(self):
        """The chip, node or fleet spec the runs use."""
        if isinstance(self.system, InlineFleet):
            return self.system.build()
        from ..core.collectives import system_spec
        return system_spec(self.system)

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None,
                  lines: dict | None = None) -> Scenario:
        """Validate a parsed mapping; errors name ``source`` and the line of the bad key
        (``lines`` maps key paths, as tuples, to 1-based lines)."""
        lines = lines or {}
        if not isinstance(data, dict):
            raise ScenarioError(f"{source or 'scenario'}:1: expected a mapping of scenario "
                                f"fields, got {type(data).__name__}")
        odd = [k for k in data if not isinstance(k, str)]
        if odd:
            raise ScenarioError(f"{_where(source, lines, (odd[0],))}: key {odd[0]!r} is not "
                                "a field name")
        token = _READING.set((source, lines))
        try:
            s = cls(**data)
        finally:
            _READING.reset(token)
        s._source = source
        s._lines = dict(lines)
        return s

    @classmethod
    def model_json_schema(cls, by_alias: bool = True, ref_template: str = "#/$defs/{model}",
                          schema_generator=None, mode="validation", **kw) -> dict[str, Any]:
        """JSON Schema of the file, with quantity and zoo-name fields described (not ``{}``)."""
        return super().model_json_schema(by_alias=by_alias, ref_template=ref_template,
                                         schema_generator=schema_generator or ScenarioSchema,
                                         mode=mode, **kw)


# ----------------------------------------------------------------------- errors with lines

def _where(source: str | None, lines: dict, loc: tuple) -> str:
    name = source or "scenario"
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    line = lines.get(loc)
    return f"{name}:{line}" if line else name


_BRANCH_TAGS = ("str", "int", "float", "bool", "InlineFleet", "constrained-str")


def _clean(loc) -> tuple:
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p.startswith(("function-", "literal[", "lax-or-strict")) or p in _BRANCH_TAGS)))


def scenario_error(exc: pydantic.ValidationError, source: str | None,
                   lines: dict) -> ScenarioError:
    """One line naming each bad key, 'file:line: key.path: what is wrong', in file order
    (joined by '; ')."""
    errors = [(e, _clean(e["loc"])) for e in exc.errors()]
    deeper = {loc[:i] for _, loc in errors for i in range(len(loc))}
    found: dict[tuple, tuple[int, str]] = {}
    for err, loc in errors:
        if err["type"] in ("string_type", "model_type", "model_attributes_type",
                           "dict_type") and loc in deeper:
            continue                  # the other branch of a union is the one meant
        cause = (err.get("ctx") or {}).get("error")
        msg = err["msg"].removeprefix("Value error, ")
        if isinstance(cause, _At):
            loc = loc + cause.loc
            msg = str(cause)
        elif err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'" + _allowed(loc)
        elif getattr(cause, "field", None) and cause.field != (loc[-1] if loc else None):
            loc = loc + (cause.field,)
        if msg.startswith("Input should be"):
            msg = "must be" + msg[len("Input should be"):]
        if err["type"] not in ("extra_forbidden", "missing", "value_error") and \
                not isinstance(err.get("input"), (dict, list)):
            msg += f" (got {err.get('input')!r})"
        key = ".".join(str(p) for p in loc) or "(scenario)"
        where = _where(source, lines, loc)
        line = int(where.rsplit(":", 1)[1]) if ":" in where else 0
        found.setdefault(loc, (line, f"{where}: {key}: {msg}"))
    return ScenarioError("; ".join(t for _, t in sorted(found.values(), key=lambda x: x[0])))


def _allowed(loc: tuple) -> str:
    models = {(): Scenario, ("single",): SingleRun, ("serving",): ServingConfig,
              ("training",): DistributedConfig, ("footprint",): Footprint,
              ("system",): InlineFleet}
    cls = models.get(tuple(loc[:-1]))
    return f"; allowed: {', '.join(cls.model_fields)}" if cls else ""


# ------------------------------------------------------------------------------ schema

_QUANTITY_DESCRIPTION = "a quantity with a unit, e.g. '{e}' (a string: number, space, unit)"
# Fields of the solver configs typed Any (a spec or a name) that the schema would leave {}.
_ANY_FIELDS: dict[str, dict[str, Any]] = {
    "network_bandwidth": {"type": "string", "pattern": _QUANTITY_PATTERN,
                          "description": _QUANTITY_DESCRIPTION.format(e="50 GB/s")
                          + "; convertible to GB/s"},
    "decode_hardware": {"type": "string", "description": "a zoo chip, node or cluster name "
                        "for disaggregated decode, e.g. 'H100'"},
    "draft_model": {"type": "string", "description": "a zoo model name for speculative "
                    "decoding, e.g. 'Llama3_8B'"},
    "engine": {"type": "string", "description": "a ServingEngines preset name, e.g. 'vllm'"},
    "quantized_kernels": {"type": "string", "description": "a QuantizedKernels generation "
                          "name, e.g. 'tensorrt_llm_2024'"},
}


class ScenarioSchema(GenerateJsonSchema):
    """Pydantic's generator, with quantity fields (``QuantityOf``) written as strings with a
    pattern and their unit, and the configs' spec-or-name fields described."""

    def function_before_schema(self, schema) -> dict[str, Any]:
        fn = schema.get("function", {}).get("function")
        unit = _quantity_unit(fn)
        if unit is not None:
            return {"type": "string", "pattern": _QUANTITY_PATTERN,
                    "description": _QUANTITY_DESCRIPTION.format(e=f"1 {unit}")
                    + f"; convertible to {unit}"}
        return super().function_before_schema(schema)

    def generate(self, schema, mode="validation"):
        out = super().generate(schema, mode=mode)
        for d in (out, *out.get("$defs", {}).values()):
            for name, prop in d.get("properties", {}).items():
                if name in _ANY_FIELDS and not ({"type", "anyOf", "$ref"} & set(prop)):
                    prop.update(_ANY_FIELDS[name])
        return out


def _quantity_unit(fn) -> str | None:
    """The unit of a ``QuantityOf`` field's validator (its closure holds the target unit)."""
    if getattr(fn, "__qualname__", "") != "_parse_quantity.<locals>.parse":
        return None
    names = fn.__code__.co_freevars
    cells = dict(zip(names, fn.__closure__ or ()))
    if "unit" in cells:
        return str(cells["unit"].cell_contents)
    if "target" in cells:
        return f"{cells['target'].cell_contents:~P}"
    return None
