"""Breakdown plots: where a pass's time goes (operators), what TTFT and ITL are made of, what
fills device memory, throughput against latency over a sweep, and tensor-parallel scaling.
matplotlib is imported here only, when a plot is made.

Each plot draws the result's own numbers: the ``*_parts`` helpers return them as plain
floats (seconds, bytes), so a plot can be checked against its solver. Left out: anything the
results do not expose (e.g. the decode step split into weight and KV reads).
"""

from __future__ import annotations

from typing import Any

__all__ = ["operator_parts", "serving_parts", "memory_parts", "plot_operator_breakdown",
           "plot_serving_components", "plot_memory_breakdown", "plot_throughput_latency",
           "plot_tp_scaling"]

BINDING_COLORS = {"compute-bound": "tab:red", "memory-bound": "tab:blue",
                  "launch-bound": "tab:purple", "mixed": "tab:gray",
                  "communication": "tab:orange"}


def _owner_error(owner: str, what: str, result) -> Exception:
    from ..errors import ValidationError
    return ValidationError("result", f"must be {what}. Got {type(result).__name__} instead.",
                           owner=owner)


def _binding(row: dict[str, Any]) -> str:
    if row.get("launch_bound"):
        return "launch-bound"
    return "compute-bound" if row["regime"] == "Compute" else "memory-bound"


def operator_parts(result, top: int = 10, by: str = "name") -> list[tuple[str, float, str]]:
    """(label, seconds, binding) bars of one pass: the ``top`` largest operators (``by="name"``)
    or operator kinds (``by="kind"``: gemm, attention, ...), largest first, then the rest as
    "other" and any time beyond the operators (communication on the critical path) as
    "communication". The seconds sum to ``result.latency_s``. A kind's binding is the one
    that holds most of its time; "other" is "mixed".

    >>> import mlsysim
    >>> p = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=8, seq_len=1024)
    >>> parts = operator_parts(p, top=3)
    >>> abs(sum(s for _, s, _ in parts) - p.latency_s) < 1e-12 * p.latency_s
    True
    """
    from ..core import validate as check
    from ..errors import ValidationError
    owner = "plot_operator_breakdown"
    rows = getattr(result, "operators", None)
    if not isinstance(rows, list) or not hasattr(result, "latency_s"):
        raise _owner_error(owner, "a PerformanceProfile (Engine.solve)", result)
    top = check.positive_int("top", top, owner)
    if by not in ("name", "kind"):
        raise ValidationError("by", f"must be 'name' or 'kind'. Got {by!r} instead.",
                              owner=owner)
    if by == "name":
        items = [(r["name"], r["time_s"], _binding(r)) for r in rows]
    else:
        kinds: dict[str, dict[str, float]] = {}
        for r in rows:
            k = kinds.setdefault(r["kind"], {})
            k[_binding(r)] = k.get(_binding(r), 0.0) + r["time_s"]
        items = [(name, sum(b.values()), max(b, key=b.get)) for name, b in kinds.items()]
    items.sort(key=lambda it: -it[1])
    parts = items[:top]
    rest = items[top:]
    if rest:
        parts.append((f"other ({len(rest)} {'operators' if by == 'name' else 'kinds'})",
                      sum(s for _, s, _ in rest), "mixed"))
    extra = result.latency_s - sum(s for _, s, _ in items)
    if extra > 1e-12 * result.latency_s:
        parts.append(("communication", extra, "communication"))
    return parts


def plot_operator_breakdown(result, *, top: int = 10, by: str = "name", ax=None):
    """Horizontal bars of a pass's latency by operator (or ``by="kind"``), largest on top, the
    rest lumped as "other"; each bar is coloured and labelled by what binds it (compute-,
    memory- or launch-bound). ``result`` is a PerformanceProfile; bar lengths are
    :func:`operator_parts` in ms and sum to its latency. Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt

    parts = operator_parts(result, top=top, by=by)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(parts) + 1.5))
    else:
        fig = ax.figure
    ys = list(range(len(parts)))
    widths = [s * 1e3 for _, s, _ in parts]
    ax.barh(ys, widths, color=[BINDING_COLORS[b] for _, _, b in parts], height=0.7)
    total = result.latency_s * 1e3
    for y, (_, s, b), w in zip(ys, parts, widths):
        ax.annotate(f"{b}, {100 * s / result.latency_s:.1f}%", (w, y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([name for name, _, _ in parts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(widths) * 1.35 if widths else 1)
    ax.set_xlabel("time per pass (ms)")
    seq = f", seq {result.seq_len}" if getattr(result, "seq_len", None) else ""
    ax.set_title(f"{result.model.name} on {result.hardware.name}: {result.phase}, batch "
                 f"{result.batch_size}{seq}, {total:.4g} ms", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig, ax


def serving_parts(result) -> dict[str, dict[str, float]]:
    """{"TTFT": {component: s}, "ITL": {component: s}} of a ServingResult: TTFT = prefill +
    TP/PP communication + KV transfer; ITL = decode step + TP/PP communication, or with a
    draft model the speculative step per accepted token as one part (the result does not
    split it). Zero components are left out; each bar sums to ``ttft_s`` / ``itl_s``.

    >>> import mlsysim
    >>> r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, tp_size=2)
    >>> sorted(serving_parts(r)["TTFT"])
    ['TP/PP communication', 'prefill']
    """
    if not all(hasattr(result, a) for a in ("ttft_s", "itl_s", "prefill_s", "decode_step_s")):
        raise _owner_error("plot_serving_components", "a ServingResult (ServingModel.solve)",
                           result)
    ttft = {"prefill": result.prefill_s, "TP/PP communication": result.comm_prefill_s,
            "KV transfer": result.kv_transfer_s}
    if result.draft_model is not None:
        itl = {f"speculative step / {result.accepted_per_step:.3g} tokens": result.itl_s}
    else:
        itl = {"decode step": result.decode_step_s,
               "TP/PP communication": result.comm_decode_s}
    return {"TTFT": {k: v for k, v in ttft.items() if v > 0 or k == "prefill"},
            "ITL": {k: v for k, v in itl.items() if v > 0 or k != "TP/PP communication"}}


def plot_serving_components(result, *, ax=None):
    """Two stacked bars, TTFT and ITL of a ServingResult, split into their components
    (:func:`serving_parts`, in ms): prefill, communication and KV transfer; decode step and
    communication. Each segment's value is in the legend, each bar's total above it.
    Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt

    parts = serving_parts(result)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    else:
        fig = ax.figure
    colors = {"prefill": "tab:green", "TP/PP communication": "tab:orange",
              "KV transfer": "tab:brown", "decode step": "tab:blue"}
    tops = []
    for x, (bar, comps) in enumerate(parts.items()):
        bottom = 0.0
        for name, s in comps.items():
            ax.bar([x], [s * 1e3], bottom=bottom, width=0.5,
                   color=colors.get(name, "tab:cyan"), label=f"{bar}: {name} {s * 1e3:.4g} ms")
            bottom += s * 1e3
        ax.annotate(f"{bottom:.4g} ms", (x, bottom), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=8)
        tops.append(bottom)
    ax.set_xticks(range(len(parts)))
    ax.set_xticklabels(list(parts))
    ax.set_xlim(-0.75, len(parts) - 0.25)
    ax.set_ylim(0, max(tops) * (1.2 + 0.08 * sum(map(len, parts.values()))))
    ax.set_ylabel("ms")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{result.model.name} on {result.hardware.name} (tp={result.tp_size}, "
                 f"pp={result.pp_size})\nbatch {result.batch_size}, prompt {result.seq_len}, "
                 f"output {result.output_len}", fontsize=9)
    fig.tight_layout()
    return fig, ax


def memory_parts(result) -> tuple[dict[str, float], float]:
    """(bytes per device by term, usable bytes) of a result with a MemoryBudget ``memory``
    and a ``batch_size`` (PerformanceProfile, ServingResult): weights, gradients, optimizer
    state, KV cache or state, activations (zero terms left out but weights); the terms sum
    to ``memory.total(batch_size)``.

    >>> import mlsysim
    >>> r = mlsysim.ServingModel().solve("Llama3_70B", "H100", seq_len=1024)
    >>> parts, usable = memory_parts(r)
    >>> sum(parts.values()) > usable      # 141 GB of weights on a 77 GB budget
    True
    """
    from ..core.memory import MemoryBudget
    memory = getattr(result, "memory", None)
    if not isinstance(memory, MemoryBudget) or not hasattr(result, "batch_size"):
        raise _owner_error("plot_memory_breakdown", "a result with a memory budget "
                           "(Engine.solve, ServingModel.solve)", result)
    return memory.terms(result.batch_size), memory.usable


def plot_memory_breakdown(result, *, ax=None):
    """One stacked bar of the bytes per device (:func:`memory_parts`, in GB) against the
    device's usable capacity drawn as a horizontal line; a bar above the line is annotated
    "does not fit". Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt

    parts, usable = memory_parts(result)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 5))
    else:
        fig = ax.figure
    colors = {"weights": "tab:blue", "gradients": "tab:olive", "optimizer state": "tab:brown",
              "KV": "tab:green", "state": "tab:green", "activations": "tab:orange"}
    bottom = 0.0
    for name, b in parts.items():
        ax.bar([0], [b / 1e9], bottom=bottom, width=0.5, color=colors.get(name, "tab:gray"),
               label=f"{name}: {b / 1e9:.4g} GB")
        bottom += b / 1e9
    ax.axhline(usable / 1e9, color="black", ls="--", lw=1.5,
               label=f"usable: {usable / 1e9:.4g} GB")
    if bottom * 1e9 > usable:
        ax.annotate(f"does not fit: {bottom:.4g} GB", (0, bottom), xytext=(0, 4),
                    textcoords="offset points", ha="center", color="tab:red",
                    fontweight="bold", fontsize=9)
    ax.set_xticks([0])
    ax.set_xticklabels([f"batch {result.batch_size}"])
    ax.set_xlim(-0.75, 0.75)
    ax.set_ylim(0, max(bottom, usable / 1e9) * (1.2 + 0.08 * len(parts)))
    ax.set_ylabel("GB per device")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"Memory: {result.model.name} on "
                 f"{getattr(result, 'decode_hardware', result.hardware).name}", fontsize=9)
    fig.tight_layout()
    return fig, ax


# Group keys of an Engine sweep and of a serving sweep; x/y stand-ins of a serving sweep.
GROUP_KEYS = ("model", "hardware", "precision", "seq_len", "output_len", "tp_size")
SERVING_AXES = {"latency_s": "itl_s", "throughput": "tokens_per_s"}


def plot_throughput_latency(sweep_result, *, x: str = "latency_s", y: str = "throughput",
                            ax=None):
    """One curve per (model, hardware, precision[, seq_len]) group of a
    :func:`~mlsysim.sweep` (or per (seq_len, output_len, tp_size) of a
    :func:`~mlsysim.serving_sweep`, where ``x``/``y`` default to ``itl_s``/``tokens_per_s``),
    through its configs that fit, in batch order; configs that do not fit in memory
    (``feasible == False``) are hollow markers, "does not fit" in the legend.
    Returns ``(fig, ax)``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from ..errors import ValidationError

    cols = getattr(sweep_result, "columns", sweep_result)
    if not isinstance(cols, dict):
        raise _owner_error("plot_throughput_latency", "a SweepResult or a dict of columns",
                           sweep_result)
    x = SERVING_AXES[x] if x not in cols and x in SERVING_AXES else x
    y = SERVING_AXES[y] if y not in cols and y in SERVING_AXES else y
    for name, which in ((x, "x"), (y, "y")):
        if name not in cols:
            raise ValidationError(which, f"must be one of {', '.join(cols)}. Got {name!r} "
                                  "instead.", owner="plot_throughput_latency")
    xs, ys = np.asarray(cols[x], dtype=float), np.asarray(cols[y], dtype=float)
    n = xs.size
    ok = np.asarray(cols["feasible"], dtype=bool) if "feasible" in cols else np.ones(n, bool)
    # Group by every key column that varies (a constant one does not split the table).
    keys = [k for k in GROUP_KEYS if k in cols and np.unique(np.asarray(cols[k])).size > 1]
    if not keys:
        keys = [k for k in GROUP_KEYS[:3] if k in cols][:1]
    labels = np.array([", ".join(f"{cols[k][i]}" if k in ("model", "hardware", "precision")
                                 else f"{k} {cols[k][i]}" for k in keys) for i in range(n)])
    order_col = np.asarray(cols["batch_size"], dtype=float) if "batch_size" in cols else xs
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    marked = False
    for label in dict.fromkeys(labels.tolist()) or ["all"]:
        rows = np.flatnonzero(labels == label) if n else np.array([], dtype=int)
        rows = rows[np.argsort(order_col[rows], kind="stable")]
        fit = rows[ok[rows]]
        (line,) = ax.plot(xs[fit], ys[fit], marker="o", ms=4, lw=1.5, label=label or "all")
        bad = rows[~ok[rows]]
        if bad.size:
            ax.scatter(xs[bad], ys[bad], s=30, facecolors="none", edgecolors=line.get_color(),
                       zorder=3, label="_nolegend_" if marked else "does not fit")
            marked = True
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for values, setter in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if values.size and values.min() > 0 and values.max() / values.min() > 100:
            setter("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, ax


def plot_tp_scaling(model, hardware, tp_sizes=(1, 2, 4, 8), *, batch_size: int = 1,
                    seq_len: int = 1024, ax=None, **serving_kwargs):
    """ITL (ms, left axis) and tokens/s (right axis) of ``ServingModel().solve`` at each
    tensor-parallel size; sizes the solver refuses (a size that does not divide the heads
    or exceeds the system) are skipped with a note naming them, sizes that do not fit in
    memory are hollow markers. ``serving_kwargs`` reach the solver (``output_len``,
    ``precision``, ...). Returns ``(fig, (ax_itl, ax_tokens))``.
    """
    import matplotlib.pyplot as plt

    from ..errors import ValidationError
    from ..solvers.serving import ServingModel

    solver = ServingModel()
    results, skipped = [], []
    for tp in tp_sizes:
        try:
            results.append(solver.solve(model, hardware, seq_len=seq_len,
                                        batch_size=batch_size, tp_size=tp, **serving_kwargs))
        except ValidationError as e:
            if e.field != "tp_size":
                raise
            skipped.append((tp, str(e)))
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    twin = ax.twinx()
    tps = [r.tp_size for r in results]
    itl = [r.itl_s * 1e3 for r in results]
    tok = [float(r.tokens_per_s) for r in results]
    ax.plot(tps, itl, marker="o", color="tab:blue", label="ITL (ms)")
    twin.plot(tps, tok, marker="s", color="tab:red", label="tokens/s")
    bad = [r for r in results if not r.feasible]
    if bad:
        ax.scatter([r.tp_size for r in bad], [r.itl_s * 1e3 for r in bad], s=80,
                   facecolors="none", edgecolors="black", zorder=3, label="does not fit")
    ax.set_xscale("log", base=2)
    ax.set_xticks(tps or list(tp_sizes))
    ax.set_xticklabels([str(t) for t in (tps or list(tp_sizes))])
    ax.set_xlabel("tensor-parallel size")
    ax.set_ylabel("ITL (ms)", color="tab:blue")
    twin.set_ylabel("tokens/s", color="tab:red")
    if itl:
        ax.set_ylim(0, max(itl) * 1.15)
        twin.set_ylim(0, max(tok) * 1.15)
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper center")
    if skipped:
        ax.annotate("skipped: " + "; ".join(f"tp={tp}" for tp, _ in skipped),
                    (0.01, 0.01), xycoords="axes fraction", fontsize=8, color="tab:gray")
    name = getattr(results[0].model if results else model, "name", model)
    hw = getattr(results[0].hardware if results else hardware, "name", hardware)
    ax.set_title(f"{name} on {hw}: batch {batch_size}, prompt {seq_len}", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig, (ax, twin)
