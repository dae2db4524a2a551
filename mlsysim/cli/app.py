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
TRACE_OPT = typer.Option(False, "--trace", help="Add the provenance trace: formula, constants "
                         "with sources, per-operator terms (stable, diffable).")


def run_guarded(as_json: bool, fn):
    """Run ``fn``; map our errors to one line and exit 2, never a traceback."""
    try:
        return fn()
    except MLSysimError as exc:
        emit_error(exc, as_json)
        raise typer.Exit(EXIT_USAGE) from None


def workload_arg(text: str):
    """A zoo model name, or a path: an ONNX graph, a Hugging Face config.json, a model YAML."""
    from pathlib import Path
    path = Path(text)
    if path.suffix.lower() in (".onnx", ".json", ".yaml", ".yml"):
        from ..zoo import Models, load_model
        if path.suffix.lower() == ".onnx":
            return Models.from_onnx(path)
        if path.suffix.lower() == ".json":
            return Models.from_hf_config(path)
        return load_model(path)
    return text


def hardware_arg(text: str):
    """A zoo hardware name, or a hardware YAML (e.g. a calibrated device profile)."""
    from pathlib import Path
    if Path(text).suffix.lower() in (".yaml", ".yml"):
        from ..zoo import load_hardware
        return load_hardware(text)
    return text


def print_result(result, as_json: bool, explain: bool = False, trace: bool = False) -> None:
    if as_json:
        out = result.to_dict()
        if trace:
            out["trace"] = result.trace()
        typer.echo(json.dumps(out, indent=2, sort_keys=trace))
        return
    if trace:
        typer.echo(json.dumps(result.trace(), indent=2, sort_keys=True))
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
    trace: bool = TRACE_OPT,
    as_json: bool = JSON_OPT,
):
    """One model on one device: latency, throughput, bottleneck, memory."""
    from ..core.engine import Engine

    profile = run_guarded(as_json, lambda: Engine.solve(
        workload_arg(model), hardware_arg(hardware), batch_size=batch_size,
        precision=precision, seq_len=seq_len, phase=phase))
    print_result(profile, as_json, explain, trace)
    if not profile.feasible:
        if not as_json:
            typer.echo(f"infeasible: {profile.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command("serve")
def serve_cmd(
    model: str = typer.Argument(..., help="Generative model, e.g. Llama3_70B"),
    hardware: str = typer.Argument(..., help="Device, e.g. H100"),
    prompt_len: int = typer.Option(1024, "--prompt-len", help="Prompt tokens."),
    output_len: int = typer.Option(256, "--output-len", help="Generated tokens."),
    batch_size: str = typer.Option("1", "--batch-size", "-b", help="A number, or 'max'."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p"),
    weight_precision: Optional[str] = typer.Option(None, "--weight-precision"),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision"),
    tp_size: int = typer.Option(1, "--tp", help="Tensor-parallel devices."),
    pp_size: int = typer.Option(1, "--pp", help="Pipeline stages."),
    qps: Optional[float] = typer.Option(None, "--qps", help="Arrival rate for tail latency."),
    slo_p99_ms: Optional[float] = typer.Option(None, "--slo-p99-ms",
                                               help="Check p99 latency against this SLO."),
    explain: bool = typer.Option(False, "--explain"),
    trace: bool = TRACE_OPT,
    as_json: bool = JSON_OPT,
):
    """Serve a generative model: TTFT, ITL, tokens/s, KV capacity (and p99 under --qps)."""
    from ..solvers.serving import ServingModel

    batch = batch_size if batch_size == "max" else _int_or_error(batch_size, as_json)
    result = run_guarded(as_json, lambda: ServingModel().solve(
        model, hardware, seq_len=prompt_len, output_len=output_len, batch_size=batch,
        precision=precision, weight_precision=weight_precision, kv_precision=kv_precision,
        tp_size=tp_size, pp_size=pp_size))
    tail = None
    if qps is not None:
        from ..solvers.queueing import TailLatencyModel
        tail = run_guarded(as_json, lambda: TailLatencyModel().solve(
            arrival_rate_qps=qps / result.batch_size,
            service_latency_ms=result.e2e_latency.to("ms").magnitude))
    if as_json:
        out = result.to_dict()
        if tail is not None:
            out["tail_latency"] = tail.to_dict()
        if trace:
            out["trace"] = result.trace()
        typer.echo(json.dumps(out, indent=2, sort_keys=trace))
    else:
        print_result(result, False, explain, trace)
        if tail is not None:
            print_result(tail, False, explain)
    slo_missed = slo_p99_ms is not None and tail is not None and \
        (not tail.feasible or tail.p99.to("ms").magnitude > slo_p99_ms)
    if not result.feasible or (tail is not None and not tail.feasible) or slo_missed:
        if not as_json:
            why = result.reason or (tail.reason if tail is not None and not tail.feasible
                                    else f"p99 {tail.p99.to('ms').magnitude:.4g} ms exceeds "
                                         f"the SLO of {slo_p99_ms:g} ms")
            typer.echo(f"infeasible: {why}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def _int_or_error(text: str, as_json: bool) -> int:
    try:
        return int(text)
    except ValueError:
        emit_error(MLSysimError(f"--batch-size must be a whole number or 'max'; got {text!r}"),
                   as_json)
        raise typer.Exit(EXIT_USAGE) from None


@app.command("calibrate")
def calibrate_cmd(
    measurements: str = typer.Argument(..., help="CSV: kind,precision,m,n,k,value,unit"),
    hardware: str = typer.Option(..., "--hardware", help="Zoo device the runs were made on."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write the device profile YAML here."),
    as_json: bool = JSON_OPT,
):
    """Fit the efficiency terms to your own measurements; write a device profile YAML."""
    from ..core.device_calibration import calibrate_device
    from ..zoo import Hardware

    result = run_guarded(as_json, lambda: calibrate_device(measurements, Hardware.get(hardware)))
    if output:
        from pathlib import Path
        try:
            Path(output).write_text(result.yaml())
        except OSError as exc:
            emit_error(MLSysimError(f"cannot write {output}: {exc.strerror}"), as_json)
            raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        typer.echo(json.dumps({
            "hardware": result.hardware.name, "fitted": list(result.fitted),
            "kept": list(result.kept), "residuals": result.residuals,
            "efficiency": result.hardware.efficiency.model_dump(mode="json"),
            "output": output}, indent=2))
    else:
        typer.echo(result.report())
        typer.echo(f"wrote {output}: use mlsysim.load_hardware({output!r})" if output
                   else result.yaml())


@app.command("zoo")
def zoo_cmd(
    kind: str = typer.Argument("models", help="models | hardware | nodes | fabrics | clusters"),
    name: Optional[str] = typer.Argument(None, help="Show one entry in full."),
    as_json: bool = JSON_OPT,
):
    """List the zoo, or show one entry with its sources."""
    from ..zoo import Clusters, Fabrics, Hardware, Models, Nodes

    registries = {"models": Models, "model": Models, "hardware": Hardware, "hw": Hardware,
                  "nodes": Nodes, "fabrics": Fabrics, "clusters": Clusters}
    if kind not in registries:
        emit_error(MLSysimError(f"unknown zoo kind '{kind}'; choose models, hardware, nodes, "
                                "fabrics or clusters"), as_json)
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
        elif reg is Fabrics:
            rows.append({"key": spec.key, "name": spec.name, "scope": spec.scope,
                         "per device": f"{spec.device_bandwidth.magnitude:.4g} GB/s",
                         "in-network reduction": spec.in_network_reduction or ""})
        elif reg is Nodes:
            rows.append({"key": spec.key, "name": spec.name,
                         "accelerators": f"{spec.accelerators_per_node} x "
                                         f"{spec.accelerator.key}",
                         "scale-up domain": spec.domain,
                         "scale-out": f"{spec.nics_per_node} x {spec.nic_fabric.key}"
                         if spec.nic_fabric else ""})
        elif reg is Clusters:
            rows.append({"key": spec.key, "name": spec.name,
                         "nodes": f"{spec.count} x {spec.node.key}",
                         "accelerators": spec.total_accelerators,
                         "fabric": spec.fabric.key if spec.fabric else ""})
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


def _register_commands() -> None:
    from . import audit_cmd, footprint_cmd, inspect_cmd, train_cmd, validate_cmd
    for module in (validate_cmd, train_cmd, footprint_cmd, audit_cmd, inspect_cmd):
        module.register(app)


_register_commands()
