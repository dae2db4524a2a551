"""Why configuration A beats B: the latency difference attributed to operators and to terms.

Both sides are predictions of the operator cost model: two :class:`~mlsysim.PerformanceProfile`
(one pass; metric "latency") or two :class:`~mlsysim.solvers.serving.ServingResult` (metric
"itl", one decode step, or "ttft", the prefill). Each side's time splits exactly as

    T = sum over operator names of t_op  +  t_comm,     t_comm = T - sum_op t_op

(t_op = count x max(compute, memory, launch floor); t_comm the collectives on the critical path,
and for TTFT also the KV transfer of disaggregated prefill), so the difference
dT = T_b - T_a = sum_op (t_op,b - t_op,a) + (t_comm,b - t_comm,a) is attributed without a
remainder. Operators absent from one side count as 0 there. The same difference splits by term:
each operator's time goes to the resource that binds it (compute, memory, launch; the
classification of :func:`~mlsysim.core.engine.time_by_resource`), plus communication.

Left out: interactions (an operator whose binding term changes between A and B is charged
whole to each side's term, not split into "caused by bandwidth" and "caused by compute");
speculative decoding (its ITL mixes draft and verification passes: refused); queueing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..core.costmodel import op_times
from ..core.engine import PerformanceProfile, SingleNodeModel, time_by_resource
from ..errors import ValidationError
from ..units import Q_

__all__ = ["compare", "DifferentialExplainer", "DifferenceResult"]

OWNER = "DifferentialExplainer"
TERMS = ("compute", "memory", "launch", "communication")
_TERM_OF = {"compute": "compute", "memory bandwidth": "memory", "launch": "launch"}
_BINDING = {"compute": "compute", "memory": "memory bandwidth", "launch": "launch",
            "communication": "interconnect"}


def _ops(prepared, batch) -> dict[str, float]:
    """Seconds per operator name (rows of the same name summed): count x max(tc, tm, floor)."""
    tc, tm, _ = op_times(prepared, batch)
    t = np.maximum(np.maximum(tc, tm), prepared.launch_floor) * prepared.count
    out: dict[str, float] = {}
    for name, v in zip(prepared.table.names, t):
        out[name] = out.get(name, 0.0) + float(v)
    return out


def _side(r, metric: str | None, name: str):
    """(label, metric, total s, {op: s}, {term: s}, feasible, reason) of one result."""
    from .serving import ServingResult
    if isinstance(r, PerformanceProfile):
        metric = "latency" if metric is None else metric
        if metric != "latency":
            raise ValidationError("metric", f"must be 'latency' for a PerformanceProfile. Got "
                                  f"{metric!r} instead.", owner=OWNER)
        prepared, batch, total = r._prepared, r.batch_size, r.latency_s
        label = (f"{r.model.key} on {r.hardware.key}, batch {r.batch_size}, {r.precision}, "
                 f"{r.phase}")
    elif isinstance(r, ServingResult):
        metric = "itl" if metric is None else metric
        if metric not in ("itl", "ttft"):
            raise ValidationError("metric", f"must be 'itl' or 'ttft' for a ServingResult. Got "
                                  f"{metric!r} instead.", owner=OWNER)
        if metric == "itl" and r.draft_model is not None:
            raise ValidationError(name, "uses speculative decoding, whose ITL mixes draft and "
                                  "verification passes; compare metric='ttft' or runs without"
                                  " a draft model.", owner=OWNER)
        prepared = r._plan.step if metric == "itl" else r._plan.prefill
        batch = r.batch_size
        total = r.itl_s if metric == "itl" else r.ttft_s
        label = (f"{r.model.key} on {r.tp_size * r.pp_size} x {r.hardware.key} (tp "
                 f"{r.tp_size}, pp {r.pp_size}), batch {r.batch_size}, {r.precision}")
    else:
        raise ValidationError(name, "must be a PerformanceProfile or a ServingResult (or a "
                              "dict of the solver's options). Got "
                              f"{type(r).__name__} instead.", owner=OWNER)
    ops = _ops(prepared, batch)
    comm = total - math.fsum(ops.values())
    ops["communication"] = comm
    by = time_by_resource(prepared, batch)
    terms = {t: by[k] for k, t in _TERM_OF.items()}
    terms["communication"] = comm
    return label, metric, total, ops, terms, bool(r.feasible), r.reason


@dataclass(frozen=True, eq=False, repr=False)
class DifferenceResult(Result):
    """T_b - T_a attributed to operators and terms (seconds inside)."""

    label_a: str
    label_b: str
    metric: str
    total_a_s: float
    total_b_s: float
    operator_rows: tuple[tuple[str, float, float], ...]   # (name, a s, b s), largest |delta|
    term_rows: tuple[tuple[str, float, float], ...]       # (term, a s, b s), TERMS order
    feasible: bool = True
    reason: str | None = None

    summary_inputs = ("metric:",)
    summary_numbers = ("latency_a:a", "latency_b:b", "difference:delta", "binding:")

    @property
    def difference_s(self) -> float:
        """T_b - T_a, seconds."""
        return self.total_b_s - self.total_a_s

    @property
    def latency_a(self):
        return Q_(self.total_a_s, "s").to("ms")

    @property
    def latency_b(self):
        return Q_(self.total_b_s, "s").to("ms")

    @property
    def difference(self):
        return Q_(self.difference_s, "s").to("ms")

    @property
    def speedup(self) -> float:
        """T_b / T_a: how many times slower B is than A (below 1: B is faster)."""
        return self.total_b_s / self.total_a_s

    @property
    def operators(self) -> dict[str, float]:
        """{operator name: t_b - t_a} in seconds, largest magnitude first; they sum to the
        difference (the "communication" row included)."""
        return {n: b - a for n, a, b in self.operator_rows}

    @property
    def terms(self) -> dict[str, float]:
        """{term: t_b - t_a} in seconds for compute, memory, launch, communication."""
        return {n: b - a for n, a, b in self.term_rows}

    @property
    def binding(self) -> str:
        """The term whose change is largest in magnitude."""
        t = self.terms
        return _BINDING[max(t, key=lambda k: abs(t[k]))]

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("both sides priced by the same operator cost model",
                "t_comm = T - sum of operator times (collectives, KV transfer)",
                "an operator's time goes whole to the term that binds it on each side")

    def headline(self) -> dict[str, Any]:
        top = dict(list(self.operators.items())[:5])
        return {"metric": self.metric, "a": self.label_a, "b": self.label_b,
                "latency_a": self.latency_a, "latency_b": self.latency_b,
                "difference": self.difference, "speedup": round(self.speedup, 6),
                "terms": {k: Q_(v, "s").to("ms") for k, v in self.terms.items()},
                "top_operators": {k: Q_(v, "s").to("ms") for k, v in top.items()},
                "feasible": self.feasible, "reason": self.reason}

    def __rich__(self):
        from rich.table import Table
        d = self.difference_s
        t = Table(title=f"{self.metric}: B - A = {d * 1e3:+.4g} ms   (A: {self.label_a}; B: "
                  f"{self.label_b})", header_style="bold", title_justify="left")
        for h in ("operator", "A (us)", "B (us)", "B - A (us)", "share"):
            t.add_column(h, justify="left" if h == "operator" else "right")
        for name, a, b in self.operator_rows:
            share = f"{(b - a) / d:.1%}" if d else "-"
            t.add_row(name, f"{a * 1e6:.1f}", f"{b * 1e6:.1f}", f"{(b - a) * 1e6:+.1f}", share)
        t.add_section()
        for name, a, b in self.term_rows:
            share = f"{(b - a) / d:.1%}" if d else "-"
            t.add_row(f"term: {name}", f"{a * 1e6:.1f}", f"{b * 1e6:.1f}", f"{(b - a) * 1e6:+.1f}",
                      share)
        return t

    def explain(self) -> str:
        d = self.difference_s
        lines = [f"A: {self.label_a}: {self.metric} = {self.total_a_s * 1e3:.4g} ms",
                 f"B: {self.label_b}: {self.metric} = {self.total_b_s * 1e3:.4g} ms",
                 f"  dT = T_b - T_a = {d * 1e3:+.4g} ms (T_b / T_a = {self.speedup:.4g})"
                 + ("" if self.feasible else f"; infeasible: {self.reason}"),
                 "  by term (each operator's time goes to the resource binding it):"]
        for name, a, b in self.term_rows:
            lines.append(f"    {name:<14} {a * 1e3:10.4f} -> {b * 1e3:10.4f} ms  "
                         f"{(b - a) * 1e3:+10.4f} ms" + (f"  ({(b - a) / d:+.1%})" if d else ""))
        lines.append("  by operator (largest first; the rows sum to dT):")
        for name, a, b in self.operator_rows[:8]:
            lines.append(f"    {name:<28} {a * 1e6:10.1f} -> {b * 1e6:10.1f} us  "
                         f"{(b - a) * 1e6:+10.1f} us" + (f"  ({(b - a) / d:+.1%})" if d else ""))
        if len(self.operator_rows) > 8:
            rest = math.fsum(b - a for _, a, b in self.operator_rows[8:])
            lines.append(f"    ({len(self.operator_rows) - 8} more operators: "
                         f"{rest * 1e6:+.1f} us)")
        return "\n".join(lines)


def compare(a, b, metric: str | None = None) -> DifferenceResult:
    """Attribute ``b``'s latency minus ``a``'s to operators and terms.

    Parameters
    ----------
    a, b : two PerformanceProfile (``Engine.solve``) or two ServingResult (``ServingModel``)
    metric : "latency" (profiles, the default for them), "itl" (serving default) or "ttft"

    Returns
    -------
    DifferenceResult: ``operators`` and ``terms`` ({name: seconds of B - A}), which each sum
    to ``difference_s``; ``explain()``; a ranked table via ``__rich__``.

    Examples
    --------
    >>> import mlsysim
    >>> a = mlsysim.Engine.solve("Llama3_8B", "A100", seq_len=1024)
    >>> b = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=1024)
    >>> d = compare(a, b)
    >>> d.binding, d.difference_s < 0
    ('memory bandwidth', True)
    """
    la, ma, ta, oa, tea, fa, ra = _side(a, metric, "a")
    lb, mb, tb, ob, teb, fb, rb = _side(b, metric, "b")
    if type(a) is not type(b):
        raise ValidationError("b", f"must be of the same kind as a ({type(a).__name__}). Got "
                              f"{type(b).__name__} instead.", owner=OWNER)
    names = list(dict.fromkeys([*oa, *ob]))
    rows = sorted(((n, oa.get(n, 0.0), ob.get(n, 0.0)) for n in names),
                  key=lambda r: -abs(r[2] - r[1]))
    terms = tuple((t, tea[t], teb[t]) for t in TERMS)
    why = [f"{side}: {r}" for side, ok, r in (("a", fa, ra), ("b", fb, rb)) if not ok]
    return DifferenceResult(label_a=la, label_b=lb, metric=ma, total_a_s=ta, total_b_s=tb,
                            operator_rows=tuple(rows), term_rows=terms, feasible=not why,
                            reason="; ".join(why) or None)


class DifferentialExplainer(ForwardModel):
    """Why configuration A beats B (see the module docstring and :func:`compare`)."""

    options = (
        Option("a", REQUIRED, "configuration A: a PerformanceProfile or ServingResult, or a "
               "dict of the solver's options (model, hardware, ...)"),
        Option("b", REQUIRED, "configuration B, of the same kind as A"),
        Option("solver", "engine", '"engine" (Engine.solve) or "serving" (ServingModel): '
               "what runs A and B when they are dicts"),
        Option("metric", None, '"latency" (engine), "itl" (serving default) or "ttft"'),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B batch-1 decode on an A100 vs an H100; then the same against
        Llama-3-70B on an 80 GB A100, whose 141 GB of fp16 weights do not fit."""
        from ..zoo import Hardware, Models
        a = dict(model=Models.Llama3_8B, hardware=Hardware.A100, batch_size=1, seq_len=1024)
        if feasible:
            return dict(a=a, b={**a, "hardware": Hardware.H100})
        return dict(a=a, b={**a, "model": Models.Llama3_70B})

    def solve(self, a, b, solver: str = "engine", metric: str | None = None
              ) -> DifferenceResult:
        """Attribute T_b - T_a to operators and terms.

        Parameters
        ----------
        a, b : results (PerformanceProfile or ServingResult) or dicts of the options of
            ``solver`` (``model`` and ``hardware`` included), run first
        solver : "engine" or "serving", used for dicts
        metric : see :func:`compare`

        Returns
        -------
        DifferenceResult

        Examples
        --------
        >>> import mlsysim
        >>> cfg = dict(model="Llama3_8B", hardware="H100", seq_len=1024)
        >>> d = mlsysim.DifferentialExplainer().solve(cfg, {**cfg, "batch_size": 64})
        >>> abs(sum(d.operators.values()) - d.difference_s) < 1e-12
        True
        """
        if solver not in ("engine", "serving"):
            raise ValidationError("solver", f"must be 'engine' or 'serving'. Got {solver!r} "
                                  "instead.", owner=OWNER)
        return compare(self._run(a, "a", solver), self._run(b, "b", solver), metric)

    @staticmethod
    def _run(x, name: str, solver: str):
        if not isinstance(x, dict):
            return x
        if "model" not in x or "hardware" not in x:
            raise ValidationError(name, "must name 'model' and 'hardware' when given as a "
                                  "dict of options.", owner=OWNER)
        from .serving import ServingModel
        run = SingleNodeModel() if solver == "engine" else ServingModel()
        names = {o.name for o in run.options}
        extra = set(x) - names
        if extra:
            raise ValidationError(name, f"has options {sorted(extra)} that "
                                  f"{type(run).__name__} does not take.", owner=OWNER)
        return run.solve(**x)
