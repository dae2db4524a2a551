"""Full-grid sweeps as data: every (model, device, precision, seq_len, batch) at once.

A grid is declared by its axes; each (model, device, precision, seq_len) combination is
validated, lowered and prepared once (the same plan ``Engine.solve`` uses), and all batch sizes
are evaluated with the cost model's one code path over a numpy array of batches. Combinations
the solver refuses (a precision the device has no peak for, a sequence beyond the model's
context, ...) are counted per reason in :attr:`SweepResult.skipped`; configs that are
evaluated but do not fit in memory stay in the table with ``feasible == False``.

>>> import mlsysim
>>> r = mlsysim.sweep(["Llama3_8B"], ["A100", "H100"], [1, 8, 64], precisions=["fp16", "fp8"])
>>> len(r), r.skipped
(9, {'unsupported precision': 3})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MLSysimError, UnsupportedPrecisionError, ValidationError

__all__ = ["SweepResult", "sweep", "serving_sweep", "pareto_front"]

PHASES = ("decode", "prefill", "forward")
# Batches evaluated per call: (chunk x operators) float arrays stay in the CPU's cache.
CHUNK = 4096
# Above this estimate of seconds, progress=None shows a progress bar.
PROGRESS_AFTER_S = 1.0
# Seconds to validate, lower and prepare one combination (measured on a laptop-class CPU:
# ~0.3 ms for an Engine plan with warm caches, ~5 ms for a serving plan), and per config.
ENGINE_PLAN_S, SERVING_PLAN_S = 1e-3, 5e-3
CONFIG_COST_S = 1e-7
# A Dask sweep cuts its grid into this many slices per worker, so a slow slice (a large
# model's lowering) does not leave the other workers idle at the end.
DASK_SLICES_PER_WORKER = 4


@dataclass(frozen=True, eq=False)
class SweepResult:
    """A columnar table of a sweep: ``columns`` maps names to equal-length numpy arrays.

    ``skipped`` counts the configs (batch sizes included) that were not evaluated, per
    reason; ``skipped_plans`` names each refused combination with the solver's message.
    """

    columns: dict[str, np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_plans: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise ValidationError("column", f"must be one of {', '.join(self.columns)}. Got "
                                  f"{name!r} instead.", owner="SweepResult") from None

    def __repr__(self) -> str:
        feasible = int(np.count_nonzero(self.columns["feasible"])) if "feasible" in \
            self.columns else len(self)
        return (f"SweepResult({len(self)} configs, {feasible} fit in memory, skipped "
                f"{sum(self.skipped.values())}: {self.skipped})")

    @property
    def counts(self) -> dict[str, int]:
        """Configs evaluated, fitting, not fitting (memory capacity) and skipped per reason:
        every point of the declared grid is in exactly one of the last three."""
        fit = int(np.count_nonzero(self.columns["feasible"])) if len(self) else 0
        return {"evaluated": len(self), "feasible": fit, "memory capacity": len(self) - fit,
                **self.skipped}

    def select(self, index) -> SweepResult:
        """The rows at ``index`` (a boolean mask or integer indices), same skip counts."""
        return SweepResult({k: v[index] for k, v in self.columns.items()}, dict(self.skipped),
                           self.skipped_plans)

    def pareto(self, objectives: dict[str, str], feasible_only: bool = True) -> SweepResult:
        """The non-dominated rows under ``objectives`` (column -> "min" | "max"), ordered by
        the first objective; infeasible rows are left out unless ``feasible_only=False``."""
        rows = np.arange(len(self))
        if feasible_only and "feasible" in self.columns:
            rows = np.flatnonzero(self.columns["feasible"])
        sub = {k: self[k][rows] for k in objectives}
        return self.select(rows[pareto_front(sub, objectives)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every column as a list, and the skip counts."""
        return {"columns": {k: v.tolist() for k, v in self.columns.items()},
                "skipped": dict(self.skipped),
                "skipped_plans": [list(p) for p in self.skipped_plans]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepResult:
        return cls({k: np.asarray(v) for k, v in d["columns"].items()}, dict(d["skipped"]),
                   tuple(tuple(p) for p in d.get("skipped_plans", ())))

    @classmethod
    def concat(cls, parts) -> SweepResult:
        """One table of ``parts`` in order: rows appended, skip counts added, refusals kept."""
        parts = list(parts)
        tables = [p.columns for p in parts if p.columns]
        skipped: dict[str, int] = {}
        for p in parts:
            for reason, n in p.skipped.items():
                skipped[reason] = skipped.get(reason, 0) + n
        if len(tables) == 1:         # the local sweep: keep its arrays, copy nothing
            columns = dict(tables[0])
        else:
            columns = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]} \
                if tables else {}
        return cls(columns, skipped, tuple(r for p in parts for r in p.skipped_plans))

    def to_frame(self):
        """A pandas DataFrame (pandas is optional: ``pip install 'mlsysim[frames]'``); text
        columns become categoricals."""
        try:
            import pandas as pd
        except ImportError:
            raise MLSysimError("SweepResult.to_frame needs pandas, which is not installed: "
                               "pip install pandas (or pip install 'mlsysim[frames]')") from None
        cols = {k: (pd.Categorical(v) if v.dtype.kind in "US" else v)
                for k, v in self.columns.items()}
        return pd.DataFrame(cols)

    def to_parquet(self, path) -> None:
        """Write the table as Parquet (needs pandas and pyarrow: ``pip install
        'mlsysim[frames]'``)."""
        frame = self.to_frame()
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise MLSysimError("SweepResult.to_parquet needs pyarrow, which is not installed: "
                               "pip install pyarrow (or pip install 'mlsysim[frames]')"
                               ) from None
        frame.to_parquet(path, index=False)


# --- input checks ----------------------------------------------------------------------
def _as_list(value) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _batches(batch_sizes, owner: str) -> np.ndarray:
    try:
        b = np.asarray(batch_sizes, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        b = np.array([np.nan])
    if b.size == 0 or not np.all(np.isfinite(b)) or np.any(b < 1) or np.any(b != np.floor(b)):
        raise ValidationError("batch_sizes", "must be positive whole numbers. Got "
                              f"{batch_sizes!r} instead.", owner=owner)
    return b


def _ints(name: str, values, owner: str) -> list[int]:
    from ..core import validate as check
    out = [check.positive_int(name, v, owner) for v in _as_list(values)]
    if not out:
        raise ValidationError(name, "must hold at least one value. Got an empty list "
                              "instead.", owner=owner)
    return out


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, show: bool, total: int, what: str):
        self.bar = None
        if show:
            from rich.console import Console
            from rich.progress import Progress
            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(what, total=total)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _show_progress(progress, plans: int, configs: int, plan_s: float) -> bool:
    if progress is None:
        return plans * plan_s + configs * CONFIG_COST_S > PROGRESS_AFTER_S
    return bool(progress)


# --- the Engine grid ---------------------------------------------------------------------
def _engine_plan(model, hardware, precision, seq_len, phase, owner: str, tp: int = 1,
                 memory_utilization: float = 1.0):
    """The plan ``Engine.solve`` would use (its cache key, its validation)."""
    from ..core.engine import _PLANS, Engine
    key = (model, hardware, precision, seq_len, phase, type(seq_len), type(precision),
           tp, 1, memory_utilization, type(tp), int, False, bool, False, bool)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS.put(key, Engine._solver._plan(model, hardware, precision, seq_len,
                                                    phase, owner, tp, 1, memory_utilization))
    return plan


def sweep(models, hardware, batch_sizes, precisions=None, seq_lens=None, phase=None, *,
          tp_sizes=(1,), memory_utilization: float = 1.0, progress: bool | None = None,
          client=None) -> SweepResult:
    """Every (model, device, precision, seq_len, tp_size, batch) of the grid, as
    ``Engine.solve`` predicts it.

    Parameters
    ----------
    models, hardware : a spec or zoo name, or a list of them
    batch_sizes : positive whole numbers (evaluated together, per plan)
    precisions : list of precision names; default: each device's default precision
    seq_lens : list of token counts; default: each model's default. Models without a
        sequence (CNNs) are evaluated once, with ``seq_len`` 0.
    phase : one phase for every model, or None for each model's default
    tp_sizes : tensor-parallel degrees (each device's own scale-up domain carries the
        all-reduces); a model or device a degree does not apply to is skipped for it
    memory_utilization : fraction of each device's capacity a pass may use, in (0, 1]
    progress : show a progress bar (True/False); None: only for sweeps estimated to take
        over a second
    client : a ``dask.distributed.Client`` to spread the grid's plans over its workers
        (extra ``distributed``); None sweeps in this process. The table is the same.

    Combinations the solver refuses are counted in ``skipped`` by reason ("unsupported
    precision", "seq_len beyond context", "phase not applicable", "tp_size not applicable",
    "no sequence"); invalid axis values (a negative batch, an unknown precision name) raise.
    Columns: model, hardware, precision, seq_len, tp_size, batch_size, latency_s, throughput
    (samples/s), bottleneck, memory_bytes (per device), feasible.
    """
    from ..core.engine import resolve
    from ..specs.hardware import BYTES_PER_ELEMENT
    from ..specs.model import SSMSpec, TransformerSpec

    owner = "sweep"
    batches = _batches(batch_sizes, owner)
    nb = batches.size
    models_, hardware_ = _as_list(models), _as_list(hardware)
    if not models_ or not hardware_:
        raise ValidationError("models" if not models_ else "hardware", "must hold at least "
                              "one spec or zoo name.", owner=owner)
    models_ = [resolve(m, hardware_[0])[0] for m in models_]
    devices = [resolve(models_[0], h)[1] for h in hardware_]
    if precisions is not None:
        precisions = _as_list(precisions)
        for p in precisions:
            if not isinstance(p, str) or p.strip().lower() not in BYTES_PER_ELEMENT:
                raise ValidationError("precisions", f"must name precisions such as 'fp16' "
                                      f"({', '.join(BYTES_PER_ELEMENT)}). Got {p!r} instead.",
                                      owner=owner)
        if not precisions:
            raise ValidationError("precisions", "must hold at least one precision (or be "
                                  "None for each device's default).", owner=owner)
    seqs = None if seq_lens is None else _ints("seq_lens", seq_lens, owner)
    tps = _ints("tp_sizes", tp_sizes, owner)
    from ..core import validate as check
    util = check.fraction("memory_utilization", memory_utilization, owner)
    if util == 0.0:
        raise ValidationError("memory_utilization", "must be above 0 (a fraction of the "
                              "device in (0, 1]). Got 0 instead.", owner=owner)
    if phase is not None and phase not in PHASES:
        raise ValidationError("phase", f"must be one of {', '.join(PHASES)} or None. Got "
                              f"{phase!r} instead.", owner=owner)

    skipped: dict[str, int] = {}
    refused: list[tuple[str, str]] = []

    def skip(reason: str, what: str, message: str, n: int = nb) -> None:
        skipped[reason] = skipped.get(reason, 0) + n
        refused.append((what, message))

    grid = []
    for m in models_:
        sequenced = isinstance(m, (TransformerSpec, SSMSpec))
        for h in devices:
            for p in (precisions or [h.compute.default_precision]):
                for i, s in enumerate(seqs or [None]):
                    for t in tps:
                        what = (f"{m.name} on {h.name}, {p}" + (f", seq_len {s}" if s else "")
                                + (f", tp_size {t}" if t > 1 else ""))
                        if not sequenced and i > 0:
                            skip("no sequence", what, f"{m.name} has no sequence length; "
                                 "evaluated once")
                            continue
                        grid.append((m, h, p, s if sequenced else None, t, what))
    head = SweepResult({}, skipped, tuple(refused))
    if client is not None:
        return _on_dask(owner, client, _evaluate_grid, grid, batches,
                        {"phase": phase, "memory_utilization": util}, ENGINE_PLAN_S, progress,
                        head)
    show = _show_progress(progress, len(grid), len(grid) * nb, ENGINE_PLAN_S)
    bar = _Progress(show, len(grid), f"sweep: {len(grid)} plans x {nb} batch sizes")
    try:
        part = _evaluate_grid(grid, batches, phase, bar.advance, memory_utilization=util)
    finally:
        bar.close()
    return SweepResult.concat([head, part])


def _evaluate_grid(grid, batches: np.ndarray, phase, advance=lambda: None,
                   memory_utilization: float = 1.0) -> SweepResult:
    """Plan and evaluate each (model, device, precision, seq_len, tp_size) of ``grid`` at
    every batch; a module-level function so a Dask worker can run a slice of the grid."""
    from ..core.costmodel import evaluate
    from ..core.engine import pass_memory

    owner = "sweep"
    nb = batches.size
    skipped: dict[str, int] = {}
    refused: list[tuple[str, str]] = []

    def skip(reason: str, what: str, message: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + nb
        refused.append((what, message))

    plans = []
    for m, h, p, s, t, what in grid:
        try:
            plans.append(_engine_plan(m, h, p, s, phase, owner, t, memory_utilization))
        except UnsupportedPrecisionError as e:
            skip("unsupported precision", what, str(e))
        except ValidationError as e:
            if e.field == "seq_len":
                skip("seq_len beyond context", what, str(e))
            elif e.field == "phase":
                skip("phase not applicable", what, str(e))
            elif e.field == "tp_size":
                skip("tp_size not applicable", what, str(e))
            else:
                raise
        advance()

    n = len(plans) * nb
    cols = {
        "model": np.empty(n, dtype=f"U{max([len(g[0].name) for g in grid] + [1])}"),
        "hardware": np.empty(n, dtype=f"U{max([len(g[1].name) for g in grid] + [1])}"),
        "precision": np.empty(n, dtype="U8"),
        "seq_len": np.empty(n, dtype=np.int64),
        "tp_size": np.empty(n, dtype=np.int64),
        "batch_size": np.tile(batches.astype(np.int64), len(plans)),
        "latency_s": np.empty(n), "throughput": np.empty(n),
        "bottleneck": np.empty(n, dtype="U7"),
        "memory_bytes": np.empty(n), "feasible": np.empty(n, dtype=bool),
    }
    col = batches[:, None]
    for k, plan in enumerate(plans):
        _, _, model, device, precision, _, seq, prepared, (tp, _, util, _, _) = plan
        lo = k * nb
        rows = slice(lo, lo + nb)
        cols["model"][rows] = model.name
        cols["hardware"][rows] = device.name
        cols["precision"][rows] = precision
        cols["seq_len"][rows] = seq or 0
        cols["tp_size"][rows] = tp
        latency, compute = cols["latency_s"], np.empty(nb, dtype=bool)
        for c in range(0, nb, CHUNK):
            e = min(c + CHUNK, nb)
            ev = evaluate(prepared, col[c:e])
            latency[lo + c:lo + e] = ev.latency
            compute[c:e] = ev.compute_bound_time > ev.memory_bound_time
        bottleneck = cols["bottleneck"][rows]      # a view: fill, then mark (no temp)
        bottleneck[...] = "Memory"
        bottleneck[compute] = "Compute"
        np.divide(batches, latency[rows], out=cols["throughput"][rows])
        memory = pass_memory(prepared.table, device, 1, util)
        foot = memory.total(batches)
        cols["memory_bytes"][rows] = foot
        cols["feasible"][rows] = foot <= memory.usable
        advance()
    return SweepResult(cols, skipped, tuple(refused))


def _on_dask(owner: str, client, evaluate, grid, batches, kwargs, plan_s, progress,
             head: SweepResult | None = None) -> SweepResult:
    """Split ``grid`` into contiguous slices, a few per worker, run ``evaluate`` on each on
    ``client`` (a ``dask.distributed.Client``) and join them in grid order after ``head``
    (skips counted before planning): the same table as in this process, row for row."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise MLSysimError("client=... needs Dask's distributed scheduler, which is not "
                           "installed: pip install 'mlsysim[distributed]'") from None
    if not isinstance(client, Client):
        raise ValidationError("client", "must be a dask.distributed.Client (or None to sweep "
                              f"in this process). Got {type(client).__name__} instead.",
                              owner=owner)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(1, -(-len(grid) // (DASK_SLICES_PER_WORKER * workers)))
    slices = [grid[i:i + size] for i in range(0, len(grid), size)]
    # Scattered once to every worker rather than embedded in each task.
    shared = client.scatter(batches, broadcast=True, hash=False)
    futures = client.map(evaluate, slices, batches=shared, pure=False, **kwargs)
    bar = _Progress(_show_progress(progress, len(grid), len(grid) * batches.size, plan_s),
                    len(slices), f"sweep on Dask: {len(slices)} slices of {size} plans")
    try:
        for _ in as_completed(futures):
            bar.advance()
    finally:
        bar.close()
    parts = client.gather(futures)
    return SweepResult.concat([SweepResult({}) if head is None else head, *parts])


# --- serving -----------------------------------------------------------------------------
def serving_sweep(model, hardware, seq_lens, output_lens, batch_sizes, tp_sizes=(1,),
                  precision: str | None = None, *, progress: bool | None = None,
                  client=None) -> SweepResult:
    """Every (seq_len, output_len, tp_size, batch) of serving ``model`` on ``hardware`` (a
    chip, node or fleet), as ``ServingModel().solve`` predicts it: one plan per
    (seq_len, output_len, tp_size), all batch sizes at once; ``client`` (a
    ``dask.distributed.Client``) spreads the plans over its workers, as in :func:`sweep`.

    Combinations the solver refuses are counted in ``skipped`` ("context exceeded" when
    seq_len + output_len - 1 passes the model's context, "tp_size not applicable" when it
    does not divide the heads or the system); columns: seq_len, output_len, tp_size,
    batch_size, ttft_s, itl_s, e2e_s, tokens_per_s, memory_bytes (per device), feasible.
    """
    owner = "serving_sweep"
    batches = _batches(batch_sizes, owner)
    nb = batches.size
    seqs = _ints("seq_lens", seq_lens, owner)
    outs = _ints("output_lens", output_lens, owner)
    tps = _ints("tp_sizes", tp_sizes, owner)
    grid = [(model, hardware, precision, s, o, t) for s in seqs for o in outs for t in tps]
    if client is not None:
        return _on_dask(owner, client, _evaluate_serving_grid, grid, batches, {}, SERVING_PLAN_S,
                        progress)
    bar = _Progress(_show_progress(progress, len(grid), len(grid) * nb, SERVING_PLAN_S),
                    len(grid), f"serving sweep: {len(grid)} plans x {nb} batch sizes")
    try:
        return _evaluate_serving_grid(grid, batches, bar.advance)
    finally:
        bar.close()


def _evaluate_serving_grid(grid, batches: np.ndarray, advance=lambda: None) -> SweepResult:
    """Plan and evaluate each (model, hardware, precision, seq_len, output_len, tp_size) of
    ``grid`` at every batch (module level, so a Dask worker can run a slice)."""
    from ..solvers.serving import ServingModel, serving_times

    nb = batches.size
    solver = ServingModel()
    skipped: dict[str, int] = {}
    refused: list[tuple[str, str]] = []
    plans = []
    for model, hardware, precision, s, o, t in grid:
        try:
            plans.append(solver.prepare(model, hardware, seq_len=s, output_len=o, tp_size=t,
                                        precision=precision))
        except ValidationError as e:
            if e.field == "seq_len":
                reason = "context exceeded"
            elif e.field == "tp_size":
                reason = "tp_size not applicable"
            else:
                raise
            skipped[reason] = skipped.get(reason, 0) + nb
            refused.append((f"seq_len {s}, output_len {o}, tp_size {t}", str(e)))
        advance()
    n = len(plans) * nb
    cols = {k: np.empty(n, dtype=np.int64) for k in ("seq_len", "output_len", "tp_size")}
    cols["batch_size"] = np.tile(batches.astype(np.int64), len(plans))
    cols.update({k: np.empty(n) for k in ("ttft_s", "itl_s", "e2e_s", "tokens_per_s",
                                          "memory_bytes")})
    cols["feasible"] = np.empty(n, dtype=bool)
    col = batches[:, None]
    for k, plan in enumerate(plans):
        lo = k * nb
        rows = slice(lo, lo + nb)
        cols["seq_len"][rows], cols["output_len"][rows] = plan.prompt, plan.out
        cols["tp_size"][rows] = plan.tp
        for c in range(0, nb, CHUNK):
            part = slice(lo + c, lo + min(c + CHUNK, nb))
            prefill, comm_p, _, _, itl, kv = serving_times(plan, col[c:c + CHUNK])
            cols["ttft_s"][part] = prefill + comm_p + kv
            cols["itl_s"][part] = itl
        ttft, itl = cols["ttft_s"][rows], cols["itl_s"][rows]
        cols["e2e_s"][rows] = ttft + (plan.out - 1) * itl
        cols["tokens_per_s"][rows] = plan.pp * batches / itl
        foot = plan.memory.total(batches)
        cols["memory_bytes"][rows] = foot
        cols["feasible"][rows] = foot <= plan.memory.usable
        advance()
    return SweepResult(cols, skipped, tuple(refused))


# --- Pareto fronts -------------------------------------------------------------------------
_BLOCK = 1 << 22  # pairwise comparisons per block of the many-objective filter


def pareto_front(columns: dict[str, np.ndarray], objectives: dict[str, str]) -> np.ndarray:
    """Indices of the non-dominated points under ``objectives`` (column -> "min" | "max"),
    ordered by the first objective, best first.

    A point is dominated when another is at least as good in every objective and better in
    one; equal points are all kept. Two objectives: a sort and a running minimum,
    O(n log n). More: a pairwise filter in numpy blocks, O(n^2).
    """
    owner = "pareto_front"
    if not objectives:
        raise ValidationError("objectives", "must name at least one column, e.g. "
                              "{'latency_s': 'min'}.", owner=owner)
    vals = []
    for name, goal in objectives.items():
        if name not in columns:
            raise ValidationError("objectives", f"names a column that is not there: {name!r} "
                                  f"(columns: {', '.join(columns)}).", owner=owner)
        if goal not in ("min", "max"):
            raise ValidationError("objectives", f"must map each column to 'min' or 'max'. "
                                  f"Got {goal!r} for {name!r} instead.", owner=owner)
        v = np.asarray(columns[name], dtype=np.float64).reshape(-1)
        if np.isnan(v).any():
            raise ValidationError("objectives", f"column {name!r} holds NaN; filter those "
                                  "rows first.", owner=owner)
        vals.append(v if goal == "min" else -v)
    n = vals[0].size
    if any(v.size != n for v in vals):
        raise ValidationError("objectives", "columns must have equal lengths.", owner=owner)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(vals) == 1:
        front = np.flatnonzero(vals[0] == vals[0].min())
        return front
    if len(vals) == 2:
        a, b = vals
        order = np.lexsort((b, a))                    # by a, then b
        sa, sb = a[order], b[order]
        start = np.ones(n, dtype=bool)
        start[1:] = (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])   # first of equal points
        prev = np.empty(n)
        prev[0] = np.inf
        np.minimum.accumulate(sb[:-1], out=prev[1:])  # best b among the points before
        # Sorted and distinct: an earlier point is no worse in a and, when equal in a,
        # better in b; it dominates iff its b is no worse.
        keep_group = ~(prev[start] <= sb[start])
        keep = keep_group[np.cumsum(start) - 1]
        return order[keep]
    pts = np.stack(vals, axis=1)
    keep = np.ones(n, dtype=bool)
    step = max(1, _BLOCK // n)
    for lo in range(0, n, step):
        blk = pts[lo:lo + step, None, :]                     # (block, 1, k)
        le = np.all(pts[None, :, :] <= blk, axis=2)           # others no worse
        lt = np.any(pts[None, :, :] < blk, axis=2)            # ... and better in one
        keep[lo:lo + step] = ~np.any(le & lt, axis=1)
    front = np.flatnonzero(keep)
    return front[np.lexsort(tuple(v[front] for v in reversed(vals)))]
