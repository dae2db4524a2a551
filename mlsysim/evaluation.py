"""One scorecard for one scenario, named ready-made scenarios, and pipelines of solver stages.

:class:`SystemEvaluator` runs a scenario (an ``mlsys.yaml``, a :class:`~mlsysim.specs.scenario.
Scenario`, or the same fields as keywords) through :func:`~mlsysim.scenarios.evaluate_scenario`
and reads five axes off the results, one row each:

- performance: single-pass latency, serving inter-token latency, or training step time (with
  throughput, TTFT and MFU in the detail);
- memory: the largest per-device footprint of the runs against the chip's capacity;
- cost: USD per million tokens where the run produces tokens, else USD for the run
  (EconomicsModel: the owned TCO where a purchase price is known, else the cloud price),
  "unpriced" with the reason when neither is known;
- carbon: gCO2e per million tokens, else kgCO2e for the run (SustainabilityModel);
- reliability: goodput of a training job on a node or fleet (ReliabilityModel, with the
  checkpoint's blocking time from CheckpointModel), fleet MTBF in the detail.

Cost and carbon need the scenario's ``footprint`` section; without it those rows are "n/a".
A scenario's assertions set the verdict of the axis they measure (``carbon.*`` -> carbon,
``cost.*`` -> cost, ``memory.*`` and memory footprints -> memory, the rest -> performance).

:data:`Scenarios` names the scenarios shipped in ``mlsysim/scenarios_data``
(``Scenarios.LLMChatServing.evaluate()``). :class:`Pipeline` runs named stages in order, each a
callable of the results so far, with callbacks on every intermediate result.

Left out on purpose: weighting the axes into one score (the verdicts stay per axis), and
reliability of serving (no job length: it is modelled for training runs only).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .core.contract import ForwardModel, Option, Result
from .errors import MLSysimError, UnknownNameError, ValidationError

__all__ = ["AxisScore", "Scorecard", "SystemEvaluator", "Scenarios", "NamedScenario",
           "Pipeline", "PipelineError", "AXES"]

AXES = ("performance", "memory", "cost", "carbon", "reliability")

#: the job length the reliability row assumes when the scenario gives none (hours)
DEFAULT_JOB_HOURS = 30 * 24.0


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class AxisScore:
    """One row of a scorecard: ``value`` in ``unit`` (None when not assessed), a short
    ``verdict``, ``passed`` (True / False, or None when the row is informational or not
    assessed) and a one-line ``detail``."""

    axis: str
    metric: str
    value: float | None
    unit: str
    verdict: str
    passed: bool | None
    detail: str = ""

    def value_text(self) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value:.4g} {self.unit}".strip()

    def to_dict(self) -> dict[str, Any]:
        v = self.value
        return {"axis": self.axis, "metric": self.metric,
                "value": v if v is None or math.isfinite(v) else None, "unit": self.unit,
                "verdict": self.verdict, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True, eq=False, repr=False)
class Scorecard(Result):
    """Performance, memory, cost, carbon and reliability of one scenario, one row each.

    ``evaluation`` is the :class:`~mlsysim.scenarios.ScenarioResult` the rows were read from
    (its ``runs`` hold every solver result, including ``reliability`` and ``checkpoint`` when
    the reliability row was computed)."""

    name: str
    rows: tuple[AxisScore, ...]
    evaluation: Any
    notes: tuple[str, ...] = field(default=())

    @property
    def runs(self) -> dict[str, Any]:
        """The solver results by section (single, serving, training, carbon, cost, ...)."""
        return self.evaluation.runs

    def __getitem__(self, axis: str) -> AxisScore:
        for row in self.rows:
            if row.axis == axis:
                return row
        raise UnknownNameError("scorecard axis", axis, [r.axis for r in self.rows])

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(r.axis for r in self.rows)

    @property
    def failed(self) -> tuple[AxisScore, ...]:
        return tuple(r for r in self.rows if r.passed is False)

    @property
    def feasible(self) -> bool:
        return not self.failed

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return "; ".join(f"{r.axis}: {r.verdict}" + (f" ({r.detail})" if r.detail else "")
                         for r in self.failed)

    @property
    def binding(self) -> str:
        """The first failing axis, else what binds the performance run."""
        if self.failed:
            return self.failed[0].axis
        for section in ("training", "serving", "single"):
            if section in self.runs:
                return self.runs[section].binding
        return "none"

    @property
    def assumptions(self) -> tuple[str, ...]:
        out = ["cost: the owned TCO where a purchase price is known, else the cloud price",
               "assertions set the verdict of the axis they measure"]
        if "reliability" in self.runs:
            out.append("reliability: checkpoint blocking time from CheckpointModel's defaults; "
                       "interval at Young's optimum")
        return (*out, *self.notes)

    def headline(self) -> dict[str, Any]:
        return {"scenario": self.name, **{r.axis: r.to_dict() for r in self.rows},
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        lines = [f"Scorecard of {self.name}:"]
        width = max(len(r.axis) for r in self.rows)
        for r in self.rows:
            lines.append(f"  {r.axis:<{width}}  {r.metric} = {r.value_text()}  -> {r.verdict}")
            if r.detail:
                lines.append(f"  {'':<{width}}    {r.detail}")
        checks = self.evaluation.checks
        if checks:
            lines.append(f"  assertions: {len(checks) - len(self.evaluation.failed)}/"
                         f"{len(checks)} pass")
            for c in checks:
                lines.append(f"    {'PASS' if c.passed else 'FAIL'}  {c.assertion.text}  "
                             f"(value {c.value_text()})")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        items = ", ".join(f"{r.axis}={r.value_text()} {_mark(r.passed)}" for r in self.rows)
        return f"Scorecard({self.name!r}: {items})"

    def __rich__(self):
        from rich.table import Table
        t = Table(title=f"Scorecard: {self.name}", header_style="bold")
        for col in ("axis", "metric", "value", "verdict", "detail"):
            t.add_column(col)
        style = {True: "green", False: "bold red", None: "dim"}
        for r in self.rows:
            t.add_row(r.axis, r.metric, r.value_text(),
                      f"[{style[r.passed]}]{r.verdict}[/{style[r.passed]}]", r.detail)
        return t

    def _repr_html_(self) -> str:
        esc = html.escape
        color = {True: "#d8f0d8", False: "#f6d5d5", None: "#eeeeee"}
        rows = "".join(
            f"<tr style=\"background:{color[r.passed]}\"><th style=\"text-align:left\">"
            f"{esc(r.axis)}</th><td>{esc(r.metric)}</td><td>{esc(r.value_text())}</td>"
            f"<td>{esc(r.verdict)}</td><td>{esc(r.detail)}</td></tr>" for r in self.rows)
        return (f"<table><caption style=\"text-align:left\"><b>Scorecard: {esc(self.name)}"
                f"</b></caption>{rows}</table>")


def _mark(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[passed]


# ----------------------------------------------------------------------------- the evaluator
class SystemEvaluator(ForwardModel, register=False):
    """One :class:`Scorecard` for one scenario (see the module docstring).

    Examples
    --------
    >>> from mlsysim.evaluation import SystemEvaluator
    >>> card = SystemEvaluator().solve(workload="ResNet50", system="A100",
    ...                                single={"batch_size": 1})
    >>> card.axes
    ('performance', 'memory', 'cost', 'carbon', 'reliability')
    >>> card["memory"].passed
    True
    """

    options = (
        Option("scenario", None, "a Scenario, a path to an mlsys.yaml, or a Scenarios name"),
        Option("workload", None, "zoo model name (with system and a run, instead of scenario)"),
        Option("system", None, "zoo chip / node / cluster name, or {node, count}"),
        Option("single", None, "Engine.solve options (batch_size, precision, ...)"),
        Option("serving", None, "ServingModel options (seq_len, output_len, batch_size, ...)"),
        Option("training", None, "DistributedModel options (batch_size, tp_size, ...)"),
        Option("footprint", None, "datacenter, grid, duration_days, ...: cost and carbon"),
        Option("assertions", (), "assertion strings, e.g. 'serving.itl < 30 ms'"),
        Option("name", None, "the scenario's name (keywords only; default from the workload)"),
    )

    def solve(self, scenario=None, *, workload=None, system=None, single=None, serving=None,
              training=None, footprint=None, assertions=(), name=None) -> Scorecard:
        """Evaluate ``scenario`` (or the scenario the keywords describe) on every axis."""
        s = _as_scenario(scenario, workload=workload, system=system, single=single,
                         serving=serving, training=training, footprint=footprint,
                         assertions=assertions, name=name)
        return _score(s)


def _as_scenario(scenario, **kw):
    from .scenarios import load_scenario
    from .specs.scenario import Scenario
    given = {k: v for k, v in kw.items() if v not in (None, ())}
    if scenario is not None:
        if given:
            raise ValidationError(next(iter(given)), "cannot be combined with a scenario; "
                                  "give either a scenario or its fields as keywords",
                                  owner="SystemEvaluator")
        if isinstance(scenario, Scenario):
            return scenario
        if isinstance(scenario, NamedScenario):
            return scenario.scenario
        if isinstance(scenario, (str, Path)):
            path = Path(scenario)
            if isinstance(scenario, str) and not path.exists() and \
                    not scenario.endswith((".yaml", ".yml")):
                return Scenarios.get(scenario).scenario
            return load_scenario(path)
        raise ValidationError("scenario", f"must be a Scenario, a path to an mlsys.yaml or a "
                              f"Scenarios name. Got {type(scenario).__name__} instead.",
                              owner="SystemEvaluator")
    if "workload" not in given or "system" not in given:
        raise ValidationError("scenario", "is missing: give a scenario, or workload= and "
                              "system= with single=, serving= or training=",
                              owner="SystemEvaluator")
    data = {k: v for k, v in given.items() if k != "name"}
    data["name"] = kw.get("name") or f"{given['workload']} on {_system_label(given['system'])}"
    data["assertions"] = list(kw.get("assertions") or ())
    return Scenario(**data)


def _system_label(system) -> str:
    if isinstance(system, Mapping):
        return f"{system.get('count')} x {system.get('node')}"
    return str(system)


def _with_cost_assertion(scenario):
    """The scenario with a vacuous ``cost.tco_usd >= 0 USD`` so evaluate_scenario also runs
    EconomicsModel (it does so only when a cost assertion asks); the check is dropped after."""
    from .specs.scenario import Assertion
    if scenario.footprint is None or any(a.path.startswith("cost.") for a in
                                         scenario.assertions):
        return scenario, False
    extra = scenario.model_copy(update={"assertions": [
        *scenario.assertions, Assertion.parse("cost.tco_usd >= 0 USD")]})
    extra._source, extra._lines = scenario._source, scenario._lines
    return extra, True


def _axis_of(path: str) -> str:
    if path.startswith(("memory.", )) or path.endswith(("memory_footprint",
                                                         "memory_per_device")):
        return "memory"
    head = path.split(".", 1)[0]
    return head if head in ("cost", "carbon") else "performance"


def _score(scenario) -> Scorecard:
    from .scenarios import ScenarioResult, _chip, evaluate_scenario

    run_scenario, added = _with_cost_assertion(scenario)
    ev = evaluate_scenario(run_scenario)
    checks = ev.checks[:-1] if added else ev.checks
    runs = dict(ev.runs)
    notes = list(ev.notes)
    system = scenario.system_spec()
    chip = _chip(system)
    rel_row = _reliability(scenario, system, runs, notes)
    ev = ScenarioResult(scenario=scenario, runs=runs, checks=checks, notes=ev.notes)
    by_axis: dict[str, list] = {a: [] for a in AXES}
    for c in checks:
        by_axis[_axis_of(c.assertion.path)].append(c)
    rows = (_performance(runs), _memory(runs, chip), _cost(scenario, runs),
            _carbon(scenario, runs), rel_row)
    rows = tuple(_judged(r, by_axis[r.axis]) for r in rows)
    return Scorecard(name=scenario.name, rows=rows, evaluation=ev, notes=tuple(notes))


def _judged(row: AxisScore, checks: list) -> AxisScore:
    """The row's verdict with its assertions folded in: any failing one fails the axis."""
    if not checks:
        return row
    bad = [c for c in checks if not c.passed]
    n = len(checks)
    if bad:
        what = "; ".join(f"{c.assertion.text} (value {c.value_text()})" for c in bad)
        return AxisScore(row.axis, row.metric, row.value, row.unit,
                         f"fails {len(bad)}/{n} assertions: {what}", False, row.detail)
    verdict = f"{row.verdict}; {n}/{n} assertions pass"
    return AxisScore(row.axis, row.metric, row.value, row.unit, verdict,
                     row.passed is not False, row.detail)


def _mag(q, unit: str) -> float:
    return float(q.to(unit).magnitude)


def _performance(runs: dict) -> AxisScore:
    if "training" in runs:
        r = runs["training"]
        return AxisScore("performance", "step time", _mag(r.step_latency_total, "s"), "s",
                         "runs" if r.feasible else f"infeasible: {r.reason}", r.feasible,
                         f"MFU {r.mfu:.3g}, {_mag(r.tokens_per_s, 'token/s'):,.4g} token/s")
    if "serving" in runs:
        r = runs["serving"]
        return AxisScore("performance", "inter-token latency", _mag(r.itl, "ms"), "ms",
                         "runs" if r.feasible else f"infeasible: {r.reason}", r.feasible,
                         f"TTFT {_mag(r.ttft, 'ms'):.4g} ms, "
                         f"{_mag(r.tokens_per_s, 'token/s'):,.4g} token/s")
    r = runs["single"]
    return AxisScore("performance", "latency", _mag(r.latency, "ms"), "ms",
                     "runs" if r.feasible else f"infeasible: {r.reason}", r.feasible,
                     f"{_mag(r.throughput, 'sample/s'):,.4g} sample/s, MFU {r.mfu:.3g}, "
                     f"{r.bottleneck}-bound")


def _memory(runs: dict, chip) -> AxisScore:
    from .scenarios import _memory_per_device, _value
    used = _memory_per_device(runs)
    cap = _mag(chip.memory.capacity, "GB")
    fits, why = _value("memory.feasible", runs)
    share = f"{used:.4g} of {cap:.4g} GB per device ({100 * used / cap:.0f} %)"
    return AxisScore("memory", "per device", used, "GB",
                     "fits" if fits else "does not fit", bool(fits),
                     share if fits else f"{share}; {why}")


def _tokens_figure(per_million: dict | None, key: str):
    return None if not per_million else per_million.get(key)


def _cost(scenario, runs: dict) -> AxisScore:
    if "cost" not in runs:
        return AxisScore("cost", "cost", None, "", "n/a", None,
                         "the scenario declares no footprint section")
    c = runs["cost"]
    per = c.usd_per_million_tokens
    basis = "owned" if c.tco_usd is not None else "cloud"
    if not c.feasible:
        return AxisScore("cost", "cost", None, "", "unpriced", None, c.reason or "")
    days = c.fp.seconds / 86400
    if per is not None and per.get(basis) is not None:
        other = "cloud" if basis == "owned" else "owned"
        alt = per.get(other)
        detail = f"{basis} ({days:.3g} days)" + \
            (f"; {other}: {alt:.4g} USD/Mtoken" if alt is not None else "")
        return AxisScore("cost", "per million tokens", per[basis], "USD/Mtoken", "priced",
                         None, detail)
    total = c.tco_usd if basis == "owned" else c.cloud_usd
    return AxisScore("cost", "per run", total, "USD", "priced", None,
                     f"{basis}, {days:.3g} days")


def _carbon(scenario, runs: dict) -> AxisScore:
    if "carbon" not in runs:
        return AxisScore("carbon", "carbon", None, "", "n/a", None,
                         "the scenario declares no footprint section")
    c = runs["carbon"]
    if not c.feasible:
        return AxisScore("carbon", "carbon", None, "", "n/a", None, c.reason or "")
    g = _tokens_figure(c.per_million_tokens, "carbon_g")
    detail = f"{c.total_energy_kwh:,.4g} kWh at the facility, {c.region_name}"
    if g is not None:
        return AxisScore("carbon", "per million tokens", g, "gCO2e/Mtoken", "assessed", None,
                         detail)
    return AxisScore("carbon", "per run", c.carbon_footprint_kg, "kgCO2e", "assessed", None,
                     detail)


def _reliability(scenario, system, runs: dict, notes: list) -> AxisScore:
    from .specs.system import Fleet, Node
    if "training" not in runs or not isinstance(system, (Node, Fleet)):
        return AxisScore("reliability", "goodput", None, "", "n/a", None,
                         "modelled for training jobs on a node or fleet")
    from .solvers.checkpoint import CheckpointModel
    from .solvers.reliability import ReliabilityModel
    t = runs["training"]
    if t.time_to_train is not None:
        hours = _mag(t.time_to_train, "hour")
    elif scenario.footprint is not None and scenario.footprint.duration_days is not None:
        hours = scenario.footprint.duration_days * 24.0
    else:
        hours = DEFAULT_JOB_HOURS
        notes.append(f"reliability: a job of {DEFAULT_JOB_HOURS:g} h assumed (no token_budget "
                     "or footprint.duration_days)")
    ckpt = CheckpointModel().solve(scenario.workload, system,
                                   precision=scenario.training.precision)
    rel = ReliabilityModel().solve(system, job_duration_hours=hours,
                                   checkpoint_time_s=ckpt.blocking_s)
    runs["checkpoint"], runs["reliability"] = ckpt, rel
    detail = (f"fleet MTBF {_mag(rel.fleet_mtbf, 'hour'):.4g} h, {rel.expected_failures:.3g} "
              f"failures in {hours:.4g} h, checkpoint {ckpt.blocking_s:.3g} s every "
              f"{_mag(rel.checkpoint_interval, 'min'):.3g} min")
    return AxisScore("reliability", "goodput", rel.goodput_ratio, "",
                     "holds up" if rel.feasible else f"infeasible: {rel.reason}",
                     rel.feasible, detail)


# ----------------------------------------------------------------------------- named scenarios
@dataclass(frozen=True)
class NamedScenario:
    """A scenario shipped with the package: ``scenario`` parses its YAML, ``evaluate()``
    scores it."""

    name: str
    file: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("mlsysim.scenarios_data").joinpath(self.file)))

    @property
    def scenario(self):
        from .scenarios import load_scenario
        return load_scenario(self.path)

    @property
    def description(self) -> str | None:
        return self.scenario.description

    def evaluate(self) -> Scorecard:
        return SystemEvaluator().solve(self.scenario)

    def __repr__(self) -> str:
        return f"NamedScenario({self.name!r}, {self.file!r})"


class _ScenarioRegistry:
    """The shipped scenarios by name: ``Scenarios.LLMChatServing``, ``Scenarios.get(name)``,
    ``Scenarios.names()``."""

    _FILES = {"LLMChatServing": "llm_chat_serving.yaml",
              "LLMTrainingCluster": "llm_training_cluster.yaml",
              "EdgeVision": "edge_vision.yaml",
              "VisionInference": "vision_inference.yaml"}

    def names(self) -> list[str]:
        return list(self._FILES)

    def get(self, name: str) -> NamedScenario:
        if not isinstance(name, str):
            raise ValidationError("name", f"must be a scenario name. Got "
                                  f"{type(name).__name__} instead.", owner="Scenarios")
        if name not in self._FILES:
            raise UnknownNameError("scenario", name, self._FILES)
        return NamedScenario(name, self._FILES[name])

    def __getattr__(self, name: str) -> NamedScenario:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __iter__(self):
        return (self.get(n) for n in self._FILES)

    def __len__(self) -> int:
        return len(self._FILES)

    def __contains__(self, name) -> bool:
        return name in self._FILES

    def __dir__(self):
        return [*super().__dir__(), *self._FILES]

    def __repr__(self) -> str:
        return f"Scenarios({', '.join(self._FILES)})"


Scenarios = _ScenarioRegistry()


# ----------------------------------------------------------------------------- pipelines
class PipelineError(MLSysimError):
    """A pipeline stage (or a callback) failed; names the stage and keeps the results so far
    (``results``) and the original exception (``__cause__``)."""

    def __init__(self, stage: str, message: str, results: dict[str, Any] | None = None):
        self.stage = stage
        self.results = dict(results or {})
        super().__init__(message)


class Pipeline:
    """Named stages run in order; each is a callable ``(context: dict) -> result`` whose result
    joins the context under its name for the stages after it.

    ``stages`` is a list of callables (named by ``__name__``, a lambda by its position
    ``stage1``, ``stage2``, ...), of ``(name, callable)`` pairs, or a mapping of name to
    callable. Each callback is called as ``callback(name, result)`` after every stage.

    Examples
    --------
    >>> from mlsysim.evaluation import Pipeline
    >>> p = Pipeline([("a", lambda ctx: 2), ("b", lambda ctx: ctx["a"] * ctx["x"])])
    >>> p.run(x=5)
    {'a': 2, 'b': 10}
    """

    def __init__(self, stages, callbacks: Iterable[Callable[[str, Any], Any]] = ()):
        self.stages: tuple[tuple[str, Callable[[dict], Any]], ...] = _named_stages(stages)
        self.callbacks = tuple(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not callable(cb):
                raise ValidationError(f"callbacks[{i}]", f"must be callable. Got "
                                      f"{type(cb).__name__} instead.", owner="Pipeline")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.stages)

    def run(self, context: Mapping[str, Any] | None = None, **inputs: Any) -> dict[str, Any]:
        """Run every stage in order; returns ``{stage name: result}`` in stage order. The
        context a stage sees is ``context`` and ``inputs`` plus the results so far (a fresh
        dict per stage)."""
        base = {**(context or {}), **inputs}
        clash = [n for n in self.names if n in base]
        if clash:
            raise ValidationError("context", f"repeats the stage name '{clash[0]}'; stage "
                                  "results and inputs share one namespace", owner="Pipeline")
        results: dict[str, Any] = {}
        total = len(self.stages)
        for i, (name, fn) in enumerate(self.stages, 1):
            try:
                result = fn({**base, **results})
            except Exception as exc:
                raise PipelineError(name, f"stage '{name}' ({i} of {total}) failed: "
                                    f"{type(exc).__name__}: {exc}", results) from exc
            results[name] = result
            for cb in self.callbacks:
                try:
                    cb(name, result)
                except Exception as exc:
                    raise PipelineError(name, f"callback {_callable_name(cb)} after stage "
                                        f"'{name}' ({i} of {total}) failed: "
                                        f"{type(exc).__name__}: {exc}", results) from exc
        return results

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(self.names)})"


def _callable_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _named_stages(stages) -> tuple[tuple[str, Callable], ...]:
    if isinstance(stages, Mapping):
        items = list(stages.items())
    elif isinstance(stages, (str, bytes)) or not isinstance(stages, Iterable):
        raise ValidationError("stages", f"must be a list of callables or (name, callable) "
                              f"pairs. Got {type(stages).__name__} instead.", owner="Pipeline")
    else:
        items = []
        for i, s in enumerate(stages, 1):
            if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str):
                items.append(s)
            else:
                n = getattr(s, "__name__", None)
                items.append((n if n and n.isidentifier() else f"stage{i}", s))
    if not items:
        raise ValidationError("stages", "must hold at least one stage", owner="Pipeline")
    seen: set[str] = set()
    for i, (name, fn) in enumerate(items):
        if not isinstance(name, str) or not name:
            raise ValidationError(f"stages[{i}]", f"needs a non-empty string name. Got "
                                  f"{name!r} instead.", owner="Pipeline")
        if not callable(fn):
            raise ValidationError(f"stages[{i}]", f"('{name}') must be callable. Got "
                                  f"{type(fn).__name__} instead.", owner="Pipeline")
        if name in seen:
            raise ValidationError(f"stages[{i}]", f"repeats the name '{name}'; stage names "
                                  "must be unique", owner="Pipeline")
        seen.add(name)
    return tuple(items)
