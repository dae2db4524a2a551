"""Typer application: ``eval`` and ``zoo`` (``serve``, ``validate``, ``calibrate`` are added by
their modules)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..errors import MLSysimError
from . import EXIT_INFEASIBLE, EXIT_USAGE, emit_error

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="MLSys·im: predict ML workload performance from first principles.")

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")


def run_guarded(as_json: bool, fn):
    """Run ``fn``; map our errors to one line and exit 2, never a traceback."""
    try:
        return fn()
    except MLSysimError as exc:
        emit_error(exc, as_json)
        raise typer.Exit(EXIT_USAGE) from None


def print_result(result, as_json: bool, explain: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.console import Console
    console = Console(highlight=False)
    console.print(result)
    if explain:
        console.print(result.explain(), markup=False)


@app.command("eval")
def eval_cmd(
    model: str = typer.Argument(..., help="Model zoo name, e.g. Llama3_70B"),
    hardware: str = typer.Argument(..., help="Hardware zoo name, e.g. H100"),
    batch_size: int = typer.Option(1, "--batch-size", "-b", help="Samples per pass."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p",
                                            help="Default: the device's (fp16 on GPUs)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens (context or prompt)."),
    phase: Optional[str] = typer.Option(None, "--phase", help="decode | prefill | forward"),
    explain: bool = typer.Option(False, "--explain", help="Show the equations and numbers."),
    as_json: bool = JSON_OPT,
):
    """One model on one device: latency, throughput, bottleneck, memory."""
    from ..core.engine import Engine

    profile = run_guarded(as_json, lambda: Engine.solve(
        model, hardware, batch_size=batch_size, precision=precision, seq_len=seq_len,
        phase=phase))
    print_result(profile, as_json, explain)
    if not profile.feasible:
        if not as_json:
            typer.echo(f"infeasible: {profile.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command("zoo")
def zoo_cmd(
    kind: str = typer.Argument("models", help="models | hardware"),
    name: Optional[str] = typer.Argument(None, help="Show one entry in full."),
    as_json: bool = JSON_OPT,
):
    """List the zoo, or show one entry with its sources."""
    from ..zoo import Hardware, Models

    registries = {"models": Models, "model": Models, "hardware": Hardware, "hw": Hardware}
    if kind not in registries:
        emit_error(MLSysimError(f"unknown zoo kind '{kind}'; choose models or hardware"), as_json)
        raise typer.Exit(EXIT_USAGE)
    reg = registries[kind]
    if name:
        spec = run_guarded(as_json, lambda: reg.get(name))
        data = spec.model_dump(mode="json")
        if kind in ("models", "model"):
            data["derived_parameters"] = spec.parameter_count
        typer.echo(json.dumps(data, indent=2) if as_json else _pretty(data))
        return
    rows = []
    for spec in reg:
        if reg is Models:
            rows.append({"key": spec.key, "name": spec.name, "group": spec.group,
                         "architecture": spec.architecture,
                         "parameters": f"{spec.parameter_count / 1e9:.4g} B"})
        else:
            rows.append({"key": spec.key, "name": spec.name, "group": spec.group,
                         "peak": f"{spec.compute.peak_flops.to('TFLOP/s').magnitude:.4g} TFLOP/s "
                                 f"({spec.compute.default_precision})",
                         "bandwidth": f"{spec.memory.bandwidth.to('GB/s').magnitude:.4g} GB/s",
                         "memory": f"{spec.memory.capacity.to('GB').magnitude:.4g} GB"})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from ..show import table
    table(list(rows[0]), [list(r.values()) for r in rows])


def _pretty(data: dict, indent: int = 0) -> str:
    lines = []
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(" " * indent + f"{k}:")
            lines.append(_pretty(v, indent + 2))
        else:
            lines.append(" " * indent + f"{k}: {v}")
    return "\n".join(lines)
