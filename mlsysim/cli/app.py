"""Typer application: ``eval`` and ``zoo`` (``serve``, ``validate``, ``calibrate`` are added by
their modules)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..errors import MLSysimError
from . import EXIT_INFEASIBLE, EXIT_USAGE, emit_error

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="MLSys·im: predict ML workload performance from first principles.")


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__
        typer.echo(f"mlsysim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", is_eager=True,
                                       callback=_print_version,
                                       help="Print the version and exit.")) -> None:
    pass

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")
TRACE_OPT = typer.Option(False, "--trace", help="Add the provenance trace: formula, constants "
                         "with sources, per-operator terms (stable, diffable).")


# API parameter -> the CLI option that sets it, where the names differ.
_API_TO_OPTION = {
    "tp_size": "tp", "pp_size": "pp", "cp_size": "cp", "ep_size": "ep", "dp_size": "dp",
    "microbatch_size": "mbs", "activation_recomputation": "recompute", "zero_stage": "zero",
    "token_budget": "tokens", "duration_days": "days", "top_k": "top",
}


def _command_flags() -> dict[str, str]:
    """API parameter -> flag (``--tp``) for the running command's options."""
    import importlib
    ctx = None
    for where in ("typer._click.globals", "click.globals"):  # typer >= 0.2x vendors click
        try:
            ctx = importlib.import_module(where).get_current_context(silent=True)
        except ImportError:
            continue
        if ctx is not None:
            break
    if ctx is None:
        return {}
    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params
             if getattr(p, "param_type_name", "") == "option" and p.name and p.opts}
    flags.update({api: flags[opt] for api, opt in _API_TO_OPTION.items() if opt in flags})
    return flags


def _name_flags(exc, flags: dict[str, str]) -> None:
    """Rewrite a ValidationError's "The 'seq_len' parameter of X" as the flag that sets it."""
    import re
    msg = str(exc)
    head = f"The '{exc.field}' parameter" + (f" of {exc.owner}" if exc.owner else "")
    if exc.field in flags and msg.startswith(head):
        msg = flags[exc.field] + msg[len(head):]
    msg = re.sub(r"'(\w+)'|\b(\w+_\w+)\b",
                 lambda m: flags.get(m.group(1) or m.group(2), m.group(0)), msg)
    exc.args = (msg,)


def run_guarded(as_json: bool, fn, flags: dict[str, str] | None = None):
    """Run ``fn``; map our errors to one line and exit 2, never a traceback. A parameter the
    error names is shown as the command's flag (``--seq-len``, ``--tp``), or by ``flags``."""
    from ..errors import ValidationError
    try:
        return fn()
    except ValidationError as exc:
        _name_flags(exc, {**_command_flags(), **(flags or {})})
        emit_error(exc, as_json)
        raise typer.Exit(EXIT_USAGE) from None
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
    model: str = typer.Argument(..., help="Model zoo name or file, e.g. Llama3_70B; a comma "
                                          "list sweeps, e.g. ResNet50,Llama3_8B"),
    hardware: str = typer.Argument(..., help="Hardware zoo name or YAML, e.g. H100; a comma "
                                             "list sweeps, e.g. A100,H100"),
    batch_size: str = typer.Option("1", "--batch-size", "-b",
                                   help="Samples per pass; a comma list sweeps (1,8,64)."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p",
                                            help="Default: the device's (fp16 on GPUs); a "
                                                 "comma list sweeps (fp16,bf16)."),
    seq_len: Optional[str] = typer.Option(None, "--seq-len", help="Tokens (context or "
                                          "prompt); a comma list sweeps."),
    phase: Optional[str] = typer.Option(None, "--phase", help="decode | prefill | forward"),
    tp_size: str = typer.Option("1", "--tp", help="Tensor-parallel devices (transformers); "
                                "a comma list sweeps (1,2,4,8)."),
    pp_size: int = typer.Option(1, "--pp", help="Pipeline stages (one configuration)."),
    memory_utilization: float = typer.Option(
        1.0, "--memory-utilization", help="Fraction of device memory the pass may use "
        "(default 1, the whole device, as Engine.solve; serve keeps 0.9 for the engine)."),
    eager: bool = typer.Option(False, "--eager", help="Run unfused, as eager PyTorch does "
                               "(CNNs and imported graphs; one configuration)."),
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", help="Kernels replayed from a "
                                     "captured CUDA graph (one configuration)."),
    explain: bool = typer.Option(False, "--explain", help="Show the equations and numbers."),
    trace: bool = TRACE_OPT,
    as_csv: bool = typer.Option(False, "--csv", help="Print the table as CSV (one row per "
                                "configuration)."),
    as_json: bool = JSON_OPT,
):
    """One model on one device (or one pass split over --tp x --pp devices): latency,
    throughput, bottleneck, memory per device. Comma lists in MODEL, HARDWARE, --batch-size,
    --precision, --seq-len or --tp evaluate the whole grid (mlsysim.sweep) into one table, or
    --csv / --json rows."""
    from ..core.engine import Engine

    models = _items(model, "MODEL", as_json, path_ok=True)
    devices = _items(hardware, "HARDWARE", as_json, path_ok=True)
    batches = [_whole(b, "--batch-size", as_json)
               for b in _items(batch_size, "--batch-size", as_json)]
    precisions = None if precision is None else [
        p.lower() for p in _items(precision, "--precision", as_json)]
    seqs = None if seq_len is None else [_whole(s, "--seq-len", as_json)
                                         for s in _items(seq_len, "--seq-len", as_json)]
    phase = None if phase is None else phase.strip().lower()
    tps = [_whole(t, "--tp", as_json) for t in _items(tp_size, "--tp", as_json)]
    grid = (models, devices, batches, precisions or [None], seqs or [None], tps)
    if as_csv or any(len(axis) > 1 for axis in grid):
        if pp_size != 1:
            _usage("--pp: give one configuration to split into pipeline stages (comma lists "
                   "sweep --tp only)", as_json)
        if eager or cuda_graphs:
            _usage(f"{'--eager' if eager else '--cuda-graphs'}: give one configuration "
                   "(comma lists sweep compiled passes with framework dispatch)", as_json)
        _eval_sweep(models, devices, batches, precisions, seqs, phase, explain, trace,
                    as_csv, as_json, tps, memory_utilization)
        return
    profile = run_guarded(as_json, lambda: Engine.solve(
        workload_arg(models[0]), hardware_arg(devices[0]), batch_size=batches[0],
        precision=None if precisions is None else precisions[0],
        seq_len=None if seqs is None else seqs[0], phase=phase, tp_size=tps[0],
        pp_size=pp_size, memory_utilization=memory_utilization, eager=eager,
        cuda_graphs=cuda_graphs))
    print_result(profile, as_json, explain, trace)
    if not profile.feasible:
        if not as_json:
            typer.echo(f"infeasible: {profile.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def _usage(message: str, as_json: bool, command: str = "eval"):
    from . import _Usage
    emit_error(_Usage(f"{message} (see: mlsysim {command} --help)"), as_json)
    raise typer.Exit(EXIT_USAGE)


def _items(text: str, flag: str, as_json: bool, path_ok: bool = False,
           command: str = "eval") -> list[str]:
    """The items of a comma list (one item: a plain value); an empty item is a usage error.
    A path that exists is one item even if its name holds a comma."""
    if path_ok and "," in text:
        from pathlib import Path
        if Path(text).exists():
            return [text]
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        _usage(f"{flag}: empty item in {text!r}", as_json, command)
    return items


def _whole(text: str, flag: str, as_json: bool, command: str = "eval") -> int:
    try:
        return int(text)
    except ValueError:
        _usage(f"{flag}: {text!r} is not a whole number", as_json, command)


# The sweep table: column -> (header, cell formatter).
_SWEEP_TABLE = {
    "model": ("model", str), "hardware": ("hardware", str), "precision": ("prec", str),
    "seq_len": ("seq", lambda s: str(s) if s else "-"),
    "tp_size": ("tp", str),
    "batch_size": ("batch", str),
    "latency_s": ("latency", lambda x: _si(x, "s")),
    "throughput": ("samples/s", lambda x: _si(x, "")),
    "bottleneck": ("bound", str),
    "memory_bytes": ("memory", lambda x: _si(x, "B")),
    "feasible": ("fits", lambda f: "yes" if f else "no"),
}


def _eval_sweep(models, devices, batches, precisions, seqs, phase, explain: bool,
                trace: bool, as_csv: bool, as_json: bool, tps=(1,),
                memory_utilization: float = 1.0) -> None:
    """``eval`` over comma lists: the grid through :func:`mlsysim.sweep`, one row a config."""
    from ..core.engine import resolve
    from ..optimize.sweep import PHASES, sweep
    from ..specs.hardware import BYTES_PER_ELEMENT
    from ..zoo import Hardware, Models

    if as_csv and as_json:
        _usage("--csv and --json: choose one", as_json)
    if explain or trace:
        _usage("--explain and --trace show one configuration; give single values, not comma "
               "lists", as_json)
    for b in batches:
        if b < 1:
            _usage(f"--batch-size: {b} is not a positive whole number", as_json)
    for s in seqs or ():
        if s < 1:
            _usage(f"--seq-len: {s} is not a positive whole number", as_json)
    for t in tps:
        if t < 1:
            _usage(f"--tp: {t} is not a positive whole number", as_json)
    for p in precisions or ():
        if p not in BYTES_PER_ELEMENT:
            _usage(f"--precision: {p!r} is not a precision; choose from "
                   f"{', '.join(BYTES_PER_ELEMENT)}", as_json)
    if phase is not None and phase not in PHASES:
        _usage(f"--phase: {phase!r} is not one of {', '.join(PHASES)}", as_json)

    def named(arg: str, fn):
        try:
            return fn()
        except MLSysimError as exc:
            exc.args = (f"{arg}: {exc}",)
            emit_error(exc, as_json)
            raise typer.Exit(EXIT_USAGE) from None

    def model_spec(m):
        spec = workload_arg(m)
        return Models.get(spec) if isinstance(spec, str) else resolve(spec, "H100")[0]

    def device_spec(h):
        spec = hardware_arg(h)
        return Hardware.get(spec) if isinstance(spec, str) else spec

    model_specs = [named("MODEL", lambda m=m: model_spec(m)) for m in models]
    device_specs = [named("HARDWARE", lambda h=h: device_spec(h)) for h in devices]
    result = run_guarded(as_json, lambda: sweep(model_specs, device_specs, batches,
                                                precisions=precisions, seq_lens=seqs,
                                                phase=phase, tp_sizes=tps,
                                                memory_utilization=memory_utilization))
    # The table names models and devices by the keys the user types (JSON/CSV: full names).
    keys = {spec.name: getattr(spec, "key", None) or spec.name
            for spec in (*model_specs, *device_specs)}
    _print_sweep(result, _SWEEP_TABLE, keys, as_csv, as_json)


def _print_sweep(result, layout: dict, keys: dict[str, str], as_csv: bool,
                 as_json: bool, flags: dict[str, str] | None = None) -> None:
    """A SweepResult as one rich table (columns and formats from ``layout``; model and device
    names shown by ``keys``), or --json rows / --csv, with the skipped configs as a footer."""
    cols = result.to_dict()["columns"]
    rows = [dict(zip(cols, values)) for values in zip(*cols.values())]
    skipped = _skipped_note(result, flags or {})
    if not rows:
        emit_error(MLSysimError("nothing to evaluate: " + (skipped or "an empty grid")),
                   as_json)
        raise typer.Exit(EXIT_USAGE)
    if as_json or as_csv:
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            import csv
            import io
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(list(cols))
            writer.writerows([list(r.values()) for r in rows])
            typer.echo(buf.getvalue(), nl=False)
        if skipped:
            typer.echo(skipped, err=True)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Columns that say nothing are hidden: no sequence anywhere, no split anywhere.
    shown = [k for k in layout if k in cols and (k != "seq_len" or any(cols[k]))
             and (k != "tp_size" or any(t != 1 for t in cols[k]))]
    cells = [[keys.get(r[k], r[k]) if k in ("model", "hardware") else layout[k][1](r[k])
              for k in shown] for r in rows]
    # One space between columns, so the usual grid fits an 80-column terminal.
    t = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for i, k in enumerate(shown):
        text = k in ("model", "hardware")
        t.add_column(layout[k][0], justify="left" if text else "right", no_wrap=True,
                     min_width=max(len(c[i]) for c in cells) if text else None)
    for c in cells:
        t.add_row(*c)
    console = Console(highlight=False)
    console.print(t)
    fits = sum(r["feasible"] for r in rows)
    typer.echo(f"{len(rows)} configurations, {fits} fit in memory" +
               (f"; {skipped}" if skipped else ""))


def _skipped_note(result, flags: dict[str, str]) -> str:
    """'skipped 3 configs: unsupported precision (Llama 3 8B on A100, fp8)', or ''; the
    sweep's axis names shown as ``flags`` (seq_len -> --prompt-len)."""
    import re
    # A model without a sequence is evaluated once, not refused: no note for that.
    counts = {r: n for r, n in result.skipped.items() if r != "no sequence"}
    if not counts:
        return ""
    whats = [what for what, message in result.skipped_plans
             if not message.endswith("evaluated once")]
    listed = "; ".join(whats[:4]) + (f"; and {len(whats) - 4} more" if len(whats) > 4 else "")
    reasons = ", ".join(f"{n} {reason}" for reason, n in counts.items())
    n = sum(counts.values())
    note = f"skipped {n} config{'' if n == 1 else 's'} ({reasons}): {listed}"
    return re.sub(r"\b(\w+_\w+)\b", lambda m: flags.get(m.group(1), m.group(1)), note)


_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "u"), (1e-9, "n"))


def _si(x: float, unit: str, prefixes=_PREFIXES) -> str:
    """Four significant digits with the largest prefix that keeps the number >= 1:
    '80 GB', '3.35 TB/s', '1.979 PFLOP/s', '0.4636 ms' -> '463.6 us'."""
    import math
    x = float(x)
    if math.isfinite(x) and x != 0:
        for scale, prefix in prefixes:
            if abs(float(f"{x / scale:.4g}")) >= 1:
                return f"{x / scale:.4g} {prefix}{unit}".rstrip()
    return f"{x:.4g} {unit}".rstrip()


_COUNT_PREFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1.0, ""))


@app.command("serve")
def serve_cmd(
    model: str = typer.Argument(..., help="Generative model, e.g. Llama3_70B"),
    hardware: str = typer.Argument(..., help="Device, e.g. H100"),
    prompt_len: str = typer.Option("1024", "--prompt-len", help="Prompt tokens; a comma list "
                                   "sweeps."),
    output_len: str = typer.Option("256", "--output-len", help="Generated tokens; a comma "
                                   "list sweeps."),
    batch_size: str = typer.Option("1", "--batch-size", "-b", help="A number, or 'max'; a "
                                   "comma list sweeps (1,8,64)."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p"),
    weight_precision: Optional[str] = typer.Option(None, "--weight-precision"),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision"),
    tp_size: str = typer.Option("1", "--tp", help="Tensor-parallel devices; a comma list "
                                "sweeps (1,2,4,8)."),
    pp_size: int = typer.Option(1, "--pp", help="Pipeline stages."),
    qps: Optional[float] = typer.Option(None, "--qps", help="Arrival rate (requests/s): "
                                        "latency under load with the continuous-batching "
                                        "model, replicas needed."),
    engine: Optional[str] = typer.Option(
        None, "--engine", help="Serving engine preset: vllm | sglang | tensorrt_llm | static. "
        "Its per-step overhead and CUDA-graph setting apply to the table; under --qps it "
        "schedules the load (default there: vllm)."),
    slo_p99_ms: Optional[float] = typer.Option(None, "--slo-p99-ms",
                                               help="Check the p99 end-to-end latency under "
                                                    "--qps against this SLO (ms)."),
    draft_model: Optional[str] = typer.Option(None, "--draft-model",
                                              help="Speculative decoding: the draft model."),
    draft_acceptance: Optional[float] = typer.Option(None, "--draft-acceptance",
                                                     help="Probability a draft token is "
                                                          "accepted (with --draft-model)."),
    draft_len: Optional[int] = typer.Option(None, "--draft-len",
                                            help="Draft tokens per verification step "
                                                 "(default 4)."),
    prefix_len: int = typer.Option(0, "--prefix-len",
                                   help="Prompt tokens already in the KV cache (prefix cache)."),
    compression: Optional[str] = typer.Option(None, "--compression",
                                              help="Serve a compressed configuration: a "
                                                   "CompressionModel method, e.g. "
                                                   "int4_weight_only, w8a8_fp8, fp8_kv."),
    memory_utilization: Optional[float] = typer.Option(
        None, "--memory-utilization", help="Fraction of device memory the engine may use "
                                           "(default: the engine's own rule; 0.9 without "
                                           "--engine)."),
    quantized_kernels: Optional[str] = typer.Option(
        None, "--quantized-kernels", help="8-bit GEMMs at the speed a software generation "
        "reached (QuantizedKernels: tensorrt_llm_2024, tensorrt_llm_2024_int8); default: "
        "today's microbenchmarks."),
    explain: bool = typer.Option(False, "--explain"),
    trace: bool = TRACE_OPT,
    as_csv: bool = typer.Option(False, "--csv", help="Print the sweep table as CSV."),
    as_json: bool = JSON_OPT,
):
    """Serve a generative model: TTFT, ITL, tokens/s, KV capacity; under --qps the latency at
    that load (mean and p99), the replicas needed and the --slo-p99-ms verdict. Comma lists
    in --batch-size, --prompt-len, --output-len or --tp sweep the grid (mlsysim.serving_sweep)
    into one table, or --csv / --json rows."""
    import math

    from ..solvers.serving import ServingModel

    def usage(message: str):
        emit_error(MLSysimError(message), as_json)
        raise typer.Exit(EXIT_USAGE)

    # Choices are case-insensitive, like names: lowercased here, at the CLI boundary.
    precision, weight_precision, kv_precision, compression = (
        None if v is None else v.strip().lower()
        for v in (precision, weight_precision, kv_precision, compression))
    chosen = None if engine is None else engine.strip().lower()
    engine = chosen or "vllm"          # the load model's default
    axes = {flag: _items(text, flag, as_json, command="serve") for flag, text in (
        ("--prompt-len", prompt_len), ("--output-len", output_len),
        ("--batch-size", batch_size), ("--tp", tp_size))}
    if as_csv or any(len(items) > 1 for items in axes.values()):
        unswept = {"--qps": qps, "--slo-p99-ms": slo_p99_ms, "--draft-model": draft_model,
                   "--compression": compression, "--weight-precision": weight_precision,
                   "--kv-precision": kv_precision, "--memory-utilization": memory_utilization,
                   "--pp": None if pp_size == 1 else pp_size,
                   "--prefix-len": prefix_len or None, "--explain": explain or None,
                   "--engine": chosen, "--quantized-kernels": quantized_kernels,
                   "--trace": trace or None}
        for flag, value in unswept.items():
            if value is not None:
                _usage(f"{flag}: not with comma lists (the sweep serves each configuration "
                       "alone); give single values", as_json, "serve")
        _serve_sweep(model, hardware, axes, precision, as_csv, as_json)
        return
    prompt_len, output_len, tp_size = (_whole(v, flag, as_json, "serve") for v, flag in (
        (prompt_len, "--prompt-len"), (output_len, "--output-len"), (tp_size, "--tp")))
    if batch_size.strip().lower() == "max":
        batch_size = "max"
    if slo_p99_ms is not None:
        if qps is None:
            usage("--slo-p99-ms needs --qps: the p99 latency is a latency under load")
        if not math.isfinite(slo_p99_ms) or slo_p99_ms <= 0:
            usage(f"--slo-p99-ms must be a positive, finite number of ms; got {slo_p99_ms}")
    if qps is not None and (not math.isfinite(qps) or qps <= 0):
        usage(f"--qps must be a positive, finite number of requests/s; got {qps}")
    if draft_model is None and (draft_acceptance is not None or draft_len is not None):
        usage("--draft-acceptance and --draft-len need --draft-model")
    if qps is not None and pp_size != 1:
        usage("--pp with --qps: the continuous-batching model serves one tensor-parallel "
              "group (use --tp)")
    batch = batch_size if batch_size == "max" else _int_or_error(batch_size, as_json)
    opts = {k: v for k, v in dict(
        weight_precision=weight_precision, kv_precision=kv_precision, tp_size=tp_size,
        pp_size=pp_size, cached_prefix_len=prefix_len, draft_model=draft_model,
        draft_acceptance_rate=draft_acceptance, draft_len=draft_len,
        memory_utilization=memory_utilization, engine=chosen,
        quantized_kernels=quantized_kernels).items() if v is not None}
    comp = None
    if compression is not None:
        from ..solvers.compression import CompressionModel
        comp = _serve_guarded(as_json, lambda: CompressionModel().solve(
            model, hardware, compression, seq_len=prompt_len, output_len=output_len,
            batch_size=batch, precision=precision, serving=opts))
        result = comp.compressed
    else:
        result = _serve_guarded(as_json, lambda: ServingModel().solve(
            model, hardware, seq_len=prompt_len, output_len=output_len, batch_size=batch,
            precision=precision, **opts))
    load = None
    if qps is not None:
        sparsity = None
        if compression is not None:
            from ..solvers.compression import METHODS
            sparsity = METHODS[compression].get("sparsity")
        load = _serve_guarded(as_json, lambda: _serve_under_load(
            model, hardware, result, qps, engine, opts, sparsity))
    slo = None
    if slo_p99_ms is not None:
        value = load["p99"]["e2e_ms"]
        slo = {"target_ms": slo_p99_ms, "value_ms": value,
               "pass": value is not None and value <= slo_p99_ms,
               "metric": "p99 end-to-end latency under --qps"}
    if as_json:
        out = result.to_dict()
        if comp is not None:
            out["compression"] = {k: v for k, v in comp.to_dict().items()
                                  if k in ("method", "weights_baseline", "weights_compressed",
                                           "weight_memory_ratio", "itl_speedup",
                                           "ttft_speedup", "max_sequences_baseline",
                                           "max_sequences_compressed")}
        if load is not None:
            out["load"] = load
        if slo is not None:
            out["slo"] = slo
        if trace:
            out["trace"] = result.trace()
        typer.echo(json.dumps(out, indent=2, sort_keys=trace))
    else:
        print_result(result, False, explain, trace)
        if not trace:
            typer.echo("(the table above: one batch served alone, no queueing)")
            if comp is not None:
                typer.echo(f"compression {comp.method}: weights x{comp.weight_memory_ratio:.3g}"
                           f", ITL x{comp.itl_speedup:.3g} faster, TTFT "
                           f"x{comp.ttft_speedup:.3g} faster than uncompressed")
            if load is not None:
                typer.echo(_format_load(load))
            if slo is not None:
                shown = "inf" if slo["value_ms"] is None else f"{slo['value_ms']:.4g} ms"
                typer.echo(f"SLO p99 <= {slo_p99_ms:g} ms: "
                           f"{'PASS' if slo['pass'] else 'FAIL'} ({shown})")
    load_failed = load is not None and not load["feasible"]
    if not result.feasible or load_failed or (slo is not None and not slo["pass"]):
        if not as_json:
            if not result.feasible:
                why = result.reason
            elif load_failed:
                why = load["reason"]
            else:
                why = (f"p99 end-to-end latency {slo['value_ms']:.4g} ms exceeds the SLO of "
                       f"{slo_p99_ms:g} ms" if slo["value_ms"] is not None else
                       f"p99 end-to-end latency is unbounded; the SLO is {slo_p99_ms:g} ms")
            typer.echo(f"infeasible: {why}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


# The serving sweep table: column -> (header, cell formatter).
_SERVE_SWEEP_TABLE = {
    "seq_len": ("prompt", str), "output_len": ("output", str), "tp_size": ("tp", str),
    "batch_size": ("batch", str), "ttft_s": ("ttft", lambda x: _si(x, "s")),
    "itl_s": ("itl", lambda x: _si(x, "s")), "e2e_s": ("e2e", lambda x: _si(x, "s")),
    "tokens_per_s": ("tokens/s", lambda x: _si(x, "")),
    "memory_bytes": ("mem/device", lambda x: _si(x, "B")),
    "feasible": ("fits", lambda f: "yes" if f else "no"),
}


def _serve_sweep(model: str, hardware: str, axes: dict[str, list[str]], precision,
                 as_csv: bool, as_json: bool) -> None:
    """``serve`` over comma lists: the grid through :func:`mlsysim.serving_sweep`."""
    from ..optimize.sweep import serving_sweep

    if as_csv and as_json:
        _usage("--csv and --json: choose one", as_json, "serve")
    values = {}
    for flag, items in axes.items():
        values[flag] = [_whole(v, flag, as_json, "serve") for v in items]
        for v in values[flag]:
            if v < 1:
                _usage(f"{flag}: {v} is not a positive whole number", as_json, "serve")
    workload = run_guarded(as_json, lambda: workload_arg(model))
    system = run_guarded(as_json, lambda: hardware_arg(hardware))
    result = _serve_guarded(as_json, lambda: serving_sweep(
        workload, system, seq_lens=values["--prompt-len"], output_lens=values["--output-len"],
        batch_sizes=values["--batch-size"], tp_sizes=values["--tp"], precision=precision))
    if not (as_csv or as_json):
        typer.echo(f"{model} on {hardware}" + (f", {precision}" if precision else "") +
                   ": one batch served alone per row (no queueing)")
    _print_sweep(result, _SERVE_SWEEP_TABLE, {}, as_csv, as_json,
                 {"seq_len": "--prompt-len", "output_len": "--output-len", "tp_size": "--tp"})


# API parameter -> serve's flag, for error messages.
_SERVE_FLAGS = {
    "seq_len": "--prompt-len", "prompt_len": "--prompt-len", "output_len": "--output-len",
    "batch_size": "--batch-size", "precision": "--precision",
    "weight_precision": "--weight-precision", "kv_precision": "--kv-precision",
    "tp_size": "--tp", "pp_size": "--pp", "arrival_rate_qps": "--qps", "engine": "--engine",
    "cached_prefix_len": "--prefix-len", "draft_model": "--draft-model",
    "draft_acceptance_rate": "--draft-acceptance", "draft_len": "--draft-len",
    "memory_utilization": "--memory-utilization", "method": "--compression",
    "sparsity": "--compression", "seq_lens": "--prompt-len", "output_lens": "--output-len",
    "batch_sizes": "--batch-size", "tp_sizes": "--tp",
}


def _serve_guarded(as_json: bool, fn):
    """run_guarded, with serve's flags (``--prompt-len`` for ``seq_len``, ...)."""
    import re

    from ..errors import ValidationError

    def go():
        try:
            return fn()
        except ValidationError as exc:
            exc.args = (re.sub(r"is set by CompressionModel itself \(by the method '(\w+)'\); "
                               r"leave it out of serving\.",
                               r"is set by --compression \1; leave it out.", str(exc)),)
            raise
    return run_guarded(as_json, go, _SERVE_FLAGS)


def _finite_or_none(x: float):
    import math
    return x if math.isfinite(x) else None


def _serve_under_load(model, hardware, single, qps: float, engine: str, opts: dict,
                      sparsity) -> dict:
    """Latency at ``qps`` requests/s through ``engine`` (ContinuousBatchingModel), split over
    the fewest replicas (tensor-parallel groups) that carry it.

    Means come from the continuous-batching steady state: TTFT = mean wait for prefill slots +
    the prompt's chunked prefill steps, ITL = one engine step at the loaded concurrency. The
    only queue is the prefill admission (M/D/1 over the step's spare token budget, the same
    queue whose mean the continuous-batching model uses); TailLatencyModel with cv 0 gives its
    p50 and p99 wait (Allen-Cunneen). Prompt and output lengths are fixed, so prefill and decode
    are deterministic and ITL's p99 equals its mean. Speculative decoding, a cached prefix and
    2:4 sparsity, which the continuous-batching model does not take, scale the loaded ITL and
    prefill by ServingModel's ratio with and without them (ITL at the loaded concurrency,
    prefill at one prompt)."""
    import math

    from ..solvers.continuous_batching import ContinuousBatchingModel
    from ..solvers.queueing import TailLatencyModel
    from ..solvers.serving import ServingModel

    cbm = ContinuousBatchingModel()
    kw = dict(prompt_len=single.seq_len, output_len=single.output_len, engine=engine,
              precision=single.precision, weight_precision=single.weight_precision,
              kv_precision=single.kv_precision, tp_size=single.tp_size,
              memory_utilization=opts.get("memory_utilization"))
    saturated = cbm.solve(model, hardware, **kw)
    max_rate = float(saturated.requests_per_s)
    notes = []
    if not saturated.feasible:
        return {"engine": saturated.engine.name, "qps": qps, "feasible": False,
                "reason": saturated.reason, "replicas": None,
                "max_qps_per_replica": None, "mean": None, "p50": None,
                "p99": {"ttft_ms": None, "itl_ms": None, "e2e_ms": None}}
    replicas = max(1, math.ceil(qps / max_rate))
    for _ in range(64):   # the prefill budget may bind a little below max_rate
        cb = cbm.solve(model, hardware, arrival_rate_qps=qps / replicas, **kw)
        if cb.feasible:
            break
        replicas += 1
    extras = {k: opts[k] for k in ("cached_prefix_len", "draft_model",
                                   "draft_acceptance_rate", "draft_len") if opts.get(k)}
    if sparsity:
        extras["sparsity"] = sparsity
    itl_ratio = prefill_ratio = 1.0
    if extras:
        sm = ServingModel()
        base = dict(seq_len=single.seq_len, output_len=single.output_len,
                    precision=single.precision, weight_precision=single.weight_precision,
                    kv_precision=single.kv_precision, tp_size=single.tp_size,
                    memory_utilization=kw["memory_utilization"],
                    cuda_graphs=cb.engine.cuda_graphs)
        n = max(1, round(cb.concurrency))
        itl_ratio = (sm.solve(model, hardware, batch_size=n, **base, **extras).itl_s
                     / sm.solve(model, hardware, batch_size=n, **base).itl_s)
        prefill_ratio = (sm.solve(model, hardware, **base, **extras).prefill_s
                         / sm.solve(model, hardware, **base).prefill_s)
        flags = sorted({_SERVE_FLAGS[k] for k in extras})
        notes.append(f"{', '.join(flags)}: ITL x{itl_ratio:.3g} and prefill "
                     f"x{prefill_ratio:.3g} (ServingModel's ratio with and without); replicas "
                     "from the continuous-batching capacity without them")
    lam = qps / replicas
    tpot = cb.step_s * itl_ratio
    service = cb.ttft_service_s * prefill_ratio
    preset = cb.engine
    free = max(preset.max_num_batched_tokens - cb.concurrency, 1) if preset.chunked_prefill \
        else cb.prompt_len
    occupancy = (cb.prompt_len * cb.step_s / free if preset.chunked_prefill
                 else cb.ttft_service_s) * prefill_ratio
    queue = TailLatencyModel().solve(arrival_rate_qps=lam, service_latency_ms=occupancy * 1e3,
                                     service_time_cv=0.0)
    decode = (single.output_len - 1) * tpot
    if cb.feasible and queue.feasible:
        waits = {"mean": queue.mean_wait_s, "p50": queue.wait_quantile(0.5).to("s").magnitude,
                 "p99": queue.p99_wait_s}
    else:
        waits = dict.fromkeys(("mean", "p50", "p99"), math.inf)

    def row(wait: float) -> dict:
        return {"ttft_ms": _finite_or_none((wait + service) * 1e3), "itl_ms": tpot * 1e3,
                "e2e_ms": _finite_or_none((wait + service + decode) * 1e3)}

    return {
        "engine": preset.name, "qps": qps, "replicas": replicas,
        "qps_per_replica": lam, "max_qps_per_replica": max_rate,
        "devices": replicas * single.tp_size, "concurrency_per_replica": cb.concurrency,
        "binding": cb.binding, "feasible": bool(cb.feasible and queue.feasible),
        "reason": cb.reason or queue.reason,
        "mean": row(waits["mean"]), "p50": row(waits["p50"]), "p99": row(waits["p99"]),
        "definitions": {
            "mean": "the engine's steady state (ContinuousBatchingModel)",
            "p50/p99": "prefill-admission wait quantiles (TailLatencyModel, M/D/1, "
                       "Allen-Cunneen) + deterministic prefill and decode; ITL p99 = mean "
                       "(fixed prompt and output lengths)",
            "ttft": "wait for prefill slots + chunked prefill steps",
            "itl": "one engine step at the loaded concurrency (other requests' prefill "
                   "chunks included)",
            "e2e": "ttft + (output_len - 1) * itl"},
        "notes": notes,
    }


def _format_load(load: dict) -> str:
    if load["replicas"] is None:
        return f"under load ({load['engine']}): infeasible: {load['reason']}"

    def ms(x):
        return "inf" if x is None else f"{x:.4g} ms"

    lines = [f"under load: {load['qps']:g} req/s through {load['engine']} on "
             f"{load['replicas']} replica(s) ({load['devices']} device(s); up to "
             f"{load['max_qps_per_replica']:.4g} req/s each, "
             f"{load['concurrency_per_replica']:.0f} sequences in flight each)",
             f"  {'':12}{'mean':>12}{'p50':>12}{'p99':>12}"]
    for key, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("e2e_ms", "end-to-end")):
        lines.append(f"  {label:12}" + "".join(f"{ms(load[q][key]):>12}"
                                               for q in ("mean", "p50", "p99")))
    lines.append("  mean: the engine's steady state (ContinuousBatchingModel); p50/p99: "
                 "prefill-admission queue (M/D/1) + deterministic prefill and decode (fixed "
                 "lengths)")
    lines += [f"  note: {n}" for n in load["notes"]]
    if not load["feasible"]:
        lines.append(f"  infeasible: {load['reason']}")
    return "\n".join(lines)


def _int_or_error(text: str, as_json: bool) -> int:
    try:
        return int(text)
    except ValueError:
        emit_error(MLSysimError(f"--batch-size must be a whole number or 'max'; got {text!r}"),
                   as_json)
        raise typer.Exit(EXIT_USAGE) from None


@app.command("calibrate")
def calibrate_cmd(
    measurements: str = typer.Argument(..., help="CSV with the header "
                                       "kind,precision,m,n,k,value,unit (see above)."),
    hardware: str = typer.Option(..., "--hardware", help="Zoo device the runs were made on."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write the device profile YAML here."),
    as_json: bool = JSON_OPT,
):
    """Fit the efficiency terms to your own measurements; write a device profile YAML.

    MEASUREMENTS is a CSV file with a header row and one measurement per
    row. Columns: kind (gemm | attention | memcpy | launch), precision
    (gemm and attention rows; default fp16), m, n, k (GEMM sizes: all
    three or none, none counting as a large GEMM), value (a positive
    number) and unit, which must match the kind: gemm and attention in
    TFLOP/s (achieved dense throughput), memcpy in GB/s (device-to-device
    copy bandwidth), launch in us (per-kernel launch time). Example:

    \b
    kind,precision,m,n,k,value,unit
    gemm,bf16,4096,4096,4096,612.3,TFLOP/s
    memcpy,,,,,2850,GB/s
    attention,bf16,,,,410,TFLOP/s
    launch,,,,,4.5,us

    Three or more GEMM shapes fit the ramp (eta_max, tau, alpha); fewer
    fit eta_max only. Terms without rows keep the package's calibration.
    The format is also in docs/calibration.md.
    """
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
    kind: str = typer.Argument("models", help="models | hardware | nodes | fabrics | clusters "
                               "| sharding_runtimes"),
    name: Optional[str] = typer.Argument(None, help="Show one entry in full."),
    as_json: bool = JSON_OPT,
):
    """List the zoo, or show one entry with its sources."""
    from ..zoo import Clusters, Fabrics, Hardware, Models, Nodes, ShardingRuntimes

    registries = {"models": Models, "model": Models, "hardware": Hardware, "hw": Hardware,
                  "nodes": Nodes, "fabrics": Fabrics, "clusters": Clusters,
                  "sharding_runtimes": ShardingRuntimes}
    if kind not in registries:
        emit_error(MLSysimError(f"unknown zoo kind '{kind}'; choose models, hardware, nodes, "
                                "fabrics, clusters or sharding_runtimes"), as_json)
        raise typer.Exit(EXIT_USAGE)
    reg = registries[kind]
    if name:
        spec = run_guarded(as_json, lambda: reg.get(name))
        data = spec.model_dump(mode="json")
        if kind in ("models", "model"):
            data["derived_parameters"] = spec.parameter_count
        typer.echo(json.dumps(data, indent=2) if as_json else _pretty(data))
        return
    rows, cells = [], []   # rows: the --json objects; cells: the table, with SI prefixes
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
        elif reg is ShardingRuntimes:
            lo, hi = (q.to("GB/s").magnitude for q in spec.throughput_range)
            rows.append({"key": spec.key, "name": spec.name, "framework": spec.framework,
                         "throughput / device":
                             f"{spec.throughput.to('GB/s').magnitude:.4g} GB/s "
                             f"({lo:.4g}-{hi:.4g})",
                         "releases": spec.releases})
        else:
            rows.append({"key": spec.key, "name": spec.name, "group": spec.group,
                         "peak": f"{spec.compute.peak_flops.to('TFLOP/s').magnitude:.4g} TFLOP/s "
                                 f"({spec.compute.default_precision})",
                         "bandwidth": f"{spec.memory.bandwidth.to('GB/s').magnitude:.4g} GB/s",
                         "memory": f"{spec.memory.capacity.to('GB').magnitude:.4g} GB"})
        cells.append(_zoo_cells(reg, spec, rows[-1]))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _zoo_table(list(rows[0]), cells)


def _zoo_cells(reg, spec, row: dict) -> list[str]:
    """A zoo listing's table cells: the --json row with sizes in sensible prefixes."""
    from ..zoo import Fabrics, Hardware, Models

    cells = dict(row)
    if reg is Models:
        cells["parameters"] = _si(spec.parameter_count, "", _COUNT_PREFIXES)
    elif reg is Fabrics:
        cells["per device"] = _si(spec.device_bandwidth.to("B/s").magnitude, "B/s")
    elif reg is Hardware:
        cells["peak"] = (f"{_si(spec.compute.peak_flops.to('FLOP/s').magnitude, 'FLOP/s')} "
                         f"({spec.compute.default_precision})")
        cells["bandwidth"] = _si(spec.memory.bandwidth.to("B/s").magnitude, "B/s")
        cells["memory"] = _si(spec.memory.capacity.to("B").magnitude, "B")
    return ["-" if v is None else str(v) for v in cells.values()]


_ZOO_KEY_COLUMNS = ("key", "accelerators", "nodes", "scale-out", "fabric")


def _zoo_table(headers: list[str], cells: list[list[str]]) -> None:
    """The zoo table: the key column (what a user types) is never wrapped or cut; keys in
    other columns ("8 x <key>") stay whole too when the terminal is wide enough."""
    from rich.console import Console
    from rich.table import Table

    def build(whole_refs: bool) -> Table:
        t = Table(header_style="bold")
        for i, h in enumerate(headers):
            left = h in ("key", "name", "group", "architecture", "scope")
            # A column holding keys ("8 x A100"), not only numbers, is kept on one line.
            refs = h in _ZOO_KEY_COLUMNS and not all(c[i].isdigit() for c in cells)
            t.add_column(h, style="cyan" if i == 0 else None,
                         justify="left" if left else "right", overflow="fold",
                         no_wrap=i == 0 or (whole_refs and refs))
        for c in cells:
            t.add_row(*c)
        return t

    def needed(i: int, h: str) -> int:   # width of a column kept on one line, else ~8
        longest = max(len(x) for x in [h, *(c[i] for c in cells)])
        refs = h in _ZOO_KEY_COLUMNS and not all(c[i].isdigit() for c in cells)
        return longest if i == 0 or refs else min(longest, 8)

    console = Console(highlight=False)
    whole = sum(needed(i, h) + 3 for i, h in enumerate(headers)) + 1 <= console.width
    console.print(build(whole))


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
    # The help panels print a docstring's line breaks as they are ("latency,\n throughput"):
    # each paragraph is given as one line, for the terminal to wrap; one marked with click's
    # \b (an example) keeps its lines.
    import inspect

    def reflow(par: str) -> str:
        if par.startswith("\b\n"):
            return par[2:]
        return " ".join(par.split())

    for command in app.registered_commands:
        doc = command.help or inspect.getdoc(command.callback) or ""
        command.help = "\n\n".join(reflow(par) for par in doc.split("\n\n"))


_register_commands()
