"""Read and evaluate declarative scenarios (``mlsys.yaml``, :class:`~mlsysim.specs.scenario.
Scenario`): run the solvers a scenario declares and check each of its assertions.

:func:`load_scenario` parses the YAML with line marks (PyYAML's compose API: every mapping key
and list item keeps its line), so a bad key, a wrong type or an unknown assertion path is
reported as ``file:line: key.path: what is wrong``. :func:`evaluate_scenario` runs, in this
order, ``single`` (Engine.solve on the system's chip), ``serving`` (ServingModel),
``training`` (DistributedModel) and ``footprint`` (SustainabilityModel, and EconomicsModel when
a ``cost.*`` assertion asks for it), then reads each assertion's value from the results.

The footprint's activity is the training run's, else the single pass's, else a decode pass
of the serving batch on the system's chip (the regime that dominates generation), unless
``footprint.mfu`` is given; with serving, the tokens for per-million-token figures are the
serving throughput times the duration and utilisation.

Deliberately left out: sweeps and optimizers (a scenario is one point) and caching results
across scenarios (the solvers cache their own plans by content).
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MLSysimError
from .specs.scenario import METRICS, Assertion, Scenario, ScenarioError

__all__ = ["load_scenario", "evaluate_scenario", "ScenarioResult", "Check", "parse_yaml"]


# ------------------------------------------------------------------------- reading


def parse_yaml(text: str, source: str = "scenario") -> tuple[Any, dict[tuple, int]]:
    """Parse YAML into plain data and the 1-based line of each key path (mapping keys and
    list items, as tuples). Duplicate keys are errors naming both lines."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}
        if node is None:
            raise ScenarioError(f"{source}:1: the file is empty; expected a mapping of "
                                "scenario fields")
        lines[()] = node.start_mark.line + 1
        return _build(loader, node, (), lines, source), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ScenarioError(f"{source}{line}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()


def _build(loader, node, loc: tuple, lines: dict, source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)):
                raise ScenarioError(f"{source}:{line}: a key must be a plain name")
            if key in out:
                raise ScenarioError(f"{source}:{line}: duplicate key '{key}' (first on line "
                                    f"{lines[loc + (key,)]})")
            lines[loc + (key,)] = line
            out[key] = _build(loader, value_node, loc + (key,), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            items.append(_build(loader, item, loc + (i,), lines, source))
        return items
    return loader.construct_object(node, deep=True)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors (:class:`ScenarioError`) name the file and
    the line of the bad key, e.g. ``chat.yaml:6: serving.tp_sise: ... is not an option``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    data, lines = parse_yaml(text, str(path))
    return Scenario.from_dict(data, source=str(path), lines=lines)


# ------------------------------------------------------------------------- evaluating


@dataclass(frozen=True)
class Check:
    """One assertion with the value it was checked against (in the metric's unit)."""

    assertion: Assertion
    value: float | bool | None
    passed: bool
    note: str | None = None

    def value_text(self) -> str:
        v = self.value
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return "true" if v else "false"
        return f"{v:.4g} {self.assertion.unit}".strip()

    def to_dict(self) -> dict[str, Any]:
        a = self.assertion
        return {"assertion": a.text, "path": a.path, "op": a.op, "threshold": a.threshold,
                "unit": a.unit, "value": self.value, "passed": self.passed, "note": self.note}


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """The solver results of a scenario (by section) and each assertion's check."""

    scenario: Scenario
    runs: dict[str, Any]
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """Every assertion holds (vacuously true without assertions)."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "source": self.scenario.source,
                "passed": self.passed, "assertions": [c.to_dict() for c in self.checks],
                "runs": {k: r.to_dict() for k, r in self.runs.items()},
                "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, default=str)

    def __rich__(self):
        from rich.table import Table
        t = Table(title=f"{self.scenario.name}: {len(self.checks) - len(self.failed)}/"
                        f"{len(self.checks)} assertions pass")
        for col in ("assertion", "value", "result"):
            t.add_column(col)
        for c in self.checks:
            t.add_row(c.assertion.text, c.value_text() + (f" ({c.note})" if c.note else ""),
                      "[green]PASS[/green]" if c.passed else "[bold red]FAIL[/bold red]")
        return t

    def __repr__(self) -> str:
        return (f"ScenarioResult({self.scenario.name!r}, {len(self.checks) - len(self.failed)}"
                f"/{len(self.checks)} pass)")


@contextmanager
def _located(scenario: Scenario, section: str):
    """Solver errors (a precision the chip lacks, TP not dividing the heads) name the file
    and line of the section that asked for the run."""
    try:
        yield
    except ScenarioError:
        raise
    except MLSysimError as exc:
        field = getattr(exc, "field", None)
        key = (section, field) if isinstance(field, str) and (section, field) in \
            scenario._lines else (section,)
        raise ScenarioError(f"{scenario.where(*key)}: {'.'.join(key)}: {exc}") from None


def _chip(system):
    from .specs.system import Fleet, Node
    if isinstance(system, Fleet):
        return system.node.accelerator
    if isinstance(system, Node):
        return system.accelerator
    return system


def evaluate_scenario(scenario: Scenario) -> ScenarioResult:
    """Run the solvers ``scenario`` declares and check its assertions.

    Examples
    --------
    >>> from mlsysim.specs.scenario import Scenario
    >>> from mlsysim.scenarios import evaluate_scenario
    >>> s = Scenario(name="r50", workload="ResNet50", system="A100",
    ...              single={"batch_size": 1}, assertions=["single.latency < 1 ms"])
    >>> evaluate_scenario(s).passed
    True
    """
    from .core.engine import Engine

    if not isinstance(scenario, Scenario):
        raise ScenarioError(f"evaluate_scenario needs a Scenario (see load_scenario); got "
                            f"{type(scenario).__name__}")
    with _located(scenario, "system"):
        system = scenario.system_spec()
    runs: dict[str, Any] = {}
    notes: list[str] = []
    if scenario.single is not None:
        with _located(scenario, "single"):
            if _chip(system) is not system:
                notes.append(f"single: one {_chip(system).name} of {system.name}")
            runs["single"] = Engine.solve(scenario.workload, _chip(system),
                                          **scenario.single.model_dump())
    if scenario.serving is not None:
        from .solvers.serving import ServingModel
        with _located(scenario, "serving"):
            runs["serving"] = ServingModel().solve(scenario.workload, system,
                                                   **scenario.serving.options())
    if scenario.training is not None:
        from .solvers.distributed import DistributedModel
        with _located(scenario, "training"):
            runs["training"] = DistributedModel().solve(scenario.workload, system,
                                                        **scenario.training.options())
    if scenario.footprint is not None:
        with _located(scenario, "footprint"):
            runs.update(_footprint(scenario, system, runs, notes))
    checks = tuple(_check(a, runs) for a in scenario.assertions)
    return ScenarioResult(scenario=scenario, runs=runs, checks=checks, notes=tuple(notes))


def _footprint(scenario: Scenario, system, runs: dict, notes: list) -> dict[str, Any]:
    from .core.engine import Engine
    from .solvers.sustainability import SECONDS_PER_DAY, SustainabilityModel

    f = scenario.footprint
    kw: dict[str, Any] = dict(duration_days=f.duration_days, datacenter=f.datacenter,
                              grid=f.grid, utilization=f.utilization)
    tokens = None
    if f.mfu is not None:
        kw["mfu"] = f.mfu
    elif "training" in runs:
        kw["run"] = runs["training"]
    elif "single" in runs:
        kw["run"] = runs["single"]
    else:
        s = runs["serving"]
        chip = _chip(system)
        kw["run"] = Engine.solve(scenario.workload, chip, batch_size=s.batch_size,
                                 precision=scenario.serving.precision, seq_len=s.seq_len,
                                 phase="decode")
        notes.append(f"footprint: activity of a decode pass of {s.batch_size} sequences on "
                     f"{chip.name}")
    if "serving" in runs and "training" not in runs:
        days = f.duration_days
        tokens = float(runs["serving"].tokens_per_s.to("token/s").magnitude) * days * \
            SECONDS_PER_DAY * f.utilization
        kw["tokens"] = tokens
    out = {"carbon": SustainabilityModel().solve(system, **kw)}
    if any(a.path.startswith("cost.") for a in scenario.assertions):
        from .solvers.economics import EconomicsModel
        kw.pop("tokens", None)
        out["cost"] = EconomicsModel().solve(system, kwh_price=f.kwh_price, tokens=tokens, **kw)
    return out


def _mag(value: Any, unit: str) -> float | None:
    if value is None:
        return None
    if hasattr(value, "to") and hasattr(value, "magnitude"):
        return float(value.to(unit).magnitude)
    return float(value)


_GETTERS: dict[str, tuple[str, Any]] = {
    "single.latency": ("single", lambda r: r.latency),
    "single.throughput": ("single", lambda r: r.throughput),
    "single.memory_footprint": ("single", lambda r: r.memory_footprint),
    "single.mfu": ("single", lambda r: r.mfu),
    "single.feasible": ("single", lambda r: r.feasible),
    "serving.ttft": ("serving", lambda r: r.ttft),
    "serving.itl": ("serving", lambda r: r.itl),
    "serving.e2e_latency": ("serving", lambda r: r.e2e_latency),
    "serving.tokens_per_s": ("serving", lambda r: r.tokens_per_s),
    "serving.tokens_per_s_per_user": ("serving", lambda r: r.tokens_per_s_per_user),
    "serving.memory_footprint": ("serving", lambda r: r.memory_footprint),
    "serving.max_concurrent_sequences": ("serving", lambda r: r.max_concurrent_sequences),
    "serving.feasible": ("serving", lambda r: r.feasible),
    "training.step_latency_total": ("training", lambda r: r.step_latency_total),
    "training.step_time": ("training", lambda r: r.step_latency_total),
    "training.mfu": ("training", lambda r: r.mfu),
    "training.hfu": ("training", lambda r: r.hfu),
    "training.tokens_per_s": ("training", lambda r: r.tokens_per_s),
    "training.memory_per_device": ("training", lambda r: r.memory_per_device),
    "training.scaling_efficiency": ("training", lambda r: r.scaling_efficiency),
    "training.bubble_fraction": ("training", lambda r: r.bubble_fraction),
    "training.time_to_train": ("training", lambda r: r.time_to_train),
    "training.feasible": ("training", lambda r: r.feasible),
    "carbon.kg": ("carbon", lambda r: r.carbon_footprint_kg),
    "carbon.total_kg": ("carbon", lambda r: r.total_carbon_kg),
    "carbon.energy_kwh": ("carbon", lambda r: r.total_energy_kwh),
    "carbon.per_million_tokens": ("carbon", lambda r: (r.per_million_tokens or {})
                                  .get("carbon_g")),
    "carbon.energy_per_million_tokens": ("carbon", lambda r: (r.per_million_tokens or {})
                                         .get("energy_kwh")),
    "carbon.water_liters": ("carbon", lambda r: r.water_usage_liters),
    "cost.tco_usd": ("cost", lambda r: r.tco_usd),
    "cost.energy_usd": ("cost", lambda r: r.opex_energy_usd),
}


def _memory_per_device(runs: dict) -> float | None:
    from .units import Q_
    sizes = []
    if "single" in runs:
        sizes.append(_mag(runs["single"].memory_footprint, "GB"))
    if "serving" in runs:
        sizes.append(_mag(Q_(runs["serving"].memory_per_device_bytes, "B"), "GB"))
    if "training" in runs:
        sizes.append(_mag(runs["training"].memory_per_device, "GB"))
    return max(sizes) if sizes else None


def _value(path: str, runs: dict) -> tuple[Any, str | None]:
    unit = METRICS[path][1]
    if path == "memory.feasible":
        bad = [f"{k}: {r.reason}" for k, r in runs.items()
               if k in ("single", "serving", "training") and not r.feasible]
        return not bad, "; ".join(bad) or None
    if path == "memory.per_device":
        return _memory_per_device(runs), None
    section, get = _GETTERS[path]
    raw = get(runs[section])
    if unit == "bool":
        return bool(raw), None if raw else getattr(runs[section], "reason", None)
    if raw is None:
        why = {"training.time_to_train": "no token_budget in training",
               "carbon.per_million_tokens": "no tokens: add training or serving",
               "carbon.energy_per_million_tokens": "no tokens: add training or serving",
               "carbon.total_kg": "embodied carbon not published for this device",
               "carbon.water_liters": "no water figures for this site or grid"}
        return None, why.get(path, "not available")
    return _mag(raw, unit or ""), None


def _check(a: Assertion, runs: dict) -> Check:
    value, note = _value(a.path, runs)
    if value is None:
        return Check(a, None, False, note)
    if isinstance(value, float) and not math.isfinite(value):
        return Check(a, None, False, "not finite")
    return Check(a, value, a.holds(value), note if not a.holds(value) else None)
