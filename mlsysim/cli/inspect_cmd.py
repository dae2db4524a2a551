"""``mlsysim inspect PATH``: the operator table of an imported graph (ONNX today), device-free.

Prints per-kind counts, flops and bytes of one sample's pass, the parameter count, and what
the import left unmodeled (operator types, node counts, their share of nodes and of activation
bytes; their flops are unknown, since no cost rule exists). Registered on the Typer app by
``register(app)``.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

__all__ = ["register", "summarize"]


def summarize(workload, seq_len: int | None, precision: str) -> dict:
    """The imported table of ``workload`` at ``seq_len`` and ``precision``, as plain data
    (one sample; bytes = weights read once + activations)."""
    from ..errors import ValidationError
    from ..specs.hardware import BYTES_PER_ELEMENT
    from ..workloads.operators import OpKind

    if precision not in BYTES_PER_ELEMENT:
        raise ValidationError("--precision", f"must be one of {', '.join(BYTES_PER_ELEMENT)}. "
                              f"Got {precision!r} instead.", owner="mlsysim inspect")
    e = BYTES_PER_ELEMENT[precision]
    if workload.seq_axis:
        seq = workload.default_seq_len if seq_len is None else seq_len
        if type(seq) is not int or seq < 1:
            raise ValidationError("--seq-len", f"must be a positive integer. Got {seq!r} "
                                  "instead.", owner="mlsysim inspect")
    else:
        seq = None
    t = workload.table(seq_len=seq, e=e)
    flops = t.flops_per_sample * t.count
    moved = (t.weight_bytes + t.act_bytes_per_sample) * t.count
    kinds: dict[str, dict] = {}
    rows = []
    for i, name in enumerate(t.names):
        label = OpKind(t.kind[i]).label
        k = kinds.setdefault(label, {"count": 0, "flops": 0.0, "bytes": 0.0})
        k["count"] += int(t.count[i])
        k["flops"] += float(flops[i])
        k["bytes"] += float(moved[i])
        rows.append({"name": name, "kind": label, "count": int(t.count[i]),
                     "flops": float(flops[i]), "bytes": float(moved[i])})
    modelled_nodes = sum(r["count"] for r in rows)
    un_nodes = workload.unmodeled_nodes
    un_bytes = workload.unmodeled_bytes(seq, e) if workload.unmodeled_bytes else 0.0
    total_bytes = float(moved.sum()) + un_bytes
    return {
        "name": workload.name, "source": workload.source,
        "parameters": workload.parameter_count, "precision": precision, "seq_len": seq,
        "flops_per_sample": float(flops.sum()), "bytes_per_sample": float(moved.sum()),
        "weight_bytes": float(t.weight_total_bytes),
        "kinds": kinds, "operators": rows,
        "unmodeled": [{"op": op, "count": n} for op, n in workload.unmodeled],
        "unmodeled_share": {
            "nodes": un_nodes / (modelled_nodes + un_nodes) if un_nodes else 0.0,
            "bytes": un_bytes / total_bytes if total_bytes else 0.0,
            "flops": None if un_nodes else 0.0,   # unknown: no cost rule
        },
        "notes": list(workload.notes),
    }


def _print(s: dict) -> None:
    seq = f", seq_len {s['seq_len']}" if s["seq_len"] is not None else ""
    lines = [f"{s['name']} ({s['source']}): {s['parameters']:,} parameters, "
             f"{s['precision']}{seq}, per sample:",
             f"  {'kind':<12} {'kernels':>8} {'GFLOP':>12} {'MB':>12}"]
    for kind, k in sorted(s["kinds"].items(), key=lambda kv: -kv[1]["flops"]):
        lines.append(f"  {kind:<12} {k['count']:>8} {k['flops'] / 1e9:>12.4g} "
                     f"{k['bytes'] / 1e6:>12.4g}")
    lines.append(f"  {'total':<12} {sum(k['count'] for k in s['kinds'].values()):>8} "
                 f"{s['flops_per_sample'] / 1e9:>12.4g} {s['bytes_per_sample'] / 1e6:>12.4g}")
    if s["unmodeled"]:
        share = s["unmodeled_share"]
        ops = ", ".join(f"{u['op']} x{u['count']}" for u in s["unmodeled"])
        lines.append(f"  unmodeled (no cost rule, not in the totals): {ops}; "
                     f"{share['nodes']:.1%} of nodes, {share['bytes']:.1%} of bytes")
    else:
        lines.append("  unmodeled: none")
    lines.extend(f"  note: {n}" for n in s["notes"])
    typer.echo("\n".join(lines))


def inspect_cmd(
    path: str = typer.Argument(..., help="An ONNX file (.onnx)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Value of the symbolic "
                                          "sequence axis (default: the workload's)."),
    precision: str = typer.Option("fp16", "--precision", "-p", help="Element size of the "
                                  "bytes (fp32, fp16, int8, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """The operator table of an imported graph: kinds, counts, flops, bytes, unmodeled share."""
    from ..zoo import Models
    from .app import run_guarded

    summary = run_guarded(as_json, lambda: summarize(Models.from_onnx(path), seq_len,
                                                     precision))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print(summary)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
