"""``mlsysim train`` (one training step on a fleet) and ``mlsysim optimize`` (search the
parallel layouts). Registered on the Typer app by ``register(app)``."""

from __future__ import annotations

import json
from typing import Optional

import typer

__all__ = ["register"]


def _system(name: str, nodes: Optional[int]):
    """A zoo chip, node or cluster; ``--nodes N`` makes a fleet of N of a node."""
    from ..core.collectives import system_spec
    from ..specs.system import Fleet, Node
    system = system_spec(name)
    if nodes is not None:
        if not isinstance(system, Node):
            from ..errors import ValidationError
            raise ValidationError("nodes", f"needs a node to repeat; {name} is not one "
                                  "(e.g. DGX_H100, see `mlsysim zoo nodes`).", owner="train")
        system = Fleet(name=f"{nodes} x {system.name}", node=system, count=nodes)
    return system


def train_cmd(
    model: str = typer.Argument(..., help="Transformer, e.g. Llama3_70B"),
    fleet: str = typer.Argument(..., help="Node or cluster, e.g. DGX_H100 or "
                                "DGX_H100_SuperPOD_256"),
    batch_size: int = typer.Option(..., "--batch-size", "-b", help="Global batch, sequences."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence."),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="Repeat the node N times."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p"),
    tp: int = typer.Option(1, "--tp"), pp: int = typer.Option(1, "--pp"),
    cp: int = typer.Option(1, "--cp"), ep: int = typer.Option(1, "--ep"),
    dp: Optional[int] = typer.Option(None, "--dp", help="Default: devices / (tp pp cp)."),
    mbs: Optional[int] = typer.Option(None, "--mbs", help="Micro-batch size (default 1)."),
    v_stages: int = typer.Option(1, "--v-stages", help="Interleaved chunks per device."),
    recompute: str = typer.Option("none", "--recompute", help="none | selective | full"),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3."),
    optimizer: str = typer.Option("adam", "--optimizer"),
    attention: str = typer.Option(
        "flash", "--attention", help="Attention kernel: flash (FlashAttention-2) | flash1 | "
        "triton | xformers (2022-23 kernels, slower by measured ratios) | materialized."),
    prefetch: str = typer.Option(
        "pre", "--backward-prefetch", help="With --zero 3: pre (the backward's weight gathers "
        "overlap compute; FSDP's default) | post (they are waited for: FSDP BACKWARD_POST, "
        "Composer's default)."),
    runtime: Optional[str] = typer.Option(
        None, "--sharding-runtime", help="With --zero 3: the sharding software whose measured "
        "gather throughput caps ZeRO-3's collectives, e.g. deepspeed_2021 (`mlsysim zoo "
        "sharding_runtimes`); default: the fabric's NCCL bandwidth."),
    tokens: Optional[float] = typer.Option(None, "--tokens", help="Token budget: time to "
                                           "train and GPU-hours."),
    checkpoint_s: Optional[float] = typer.Option(
        None, "--checkpoint-s", help="Seconds one checkpoint blocks training: with --tokens, "
        "adds the wall time with failures (ReliabilityModel: fleet MTBF, Young's interval, "
        "goodput)."),
    explain: bool = typer.Option(False, "--explain"),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """One training step on a fleet: step time and breakdown, MFU, tokens/s, memory."""
    from ..errors import ValidationError
    from ..solvers.distributed import DistributedModel
    from . import EXIT_INFEASIBLE
    from .app import print_result, run_guarded

    def solve():
        if checkpoint_s is not None and tokens is None:
            raise ValidationError("checkpoint_s", "needs --tokens: the wall time with "
                                  "failures is the time to train a token budget over goodput.",
                                  owner="train")
        return DistributedModel().solve(
            model, _system(fleet, nodes), batch_size=batch_size, seq_len=seq_len,
            precision=precision, tp_size=tp, pp_size=pp, cp_size=cp, ep_size=ep, dp_size=dp,
            microbatch_size=mbs, v_stages=v_stages, activation_recomputation=recompute,
            zero_stage=zero, optimizer=optimizer, attention_kernel=attention,
            backward_prefetch=prefetch, sharding_runtime=runtime, token_budget=tokens)

    result = run_guarded(as_json, solve, flags={"checkpoint_s": "--checkpoint-s",
                                                "attention_kernel": "--attention",
                                                "backward_prefetch": "--backward-prefetch",
                                                "sharding_runtime": "--sharding-runtime"})
    failures = None
    if checkpoint_s is not None and result.feasible:
        from ..solvers.reliability import ReliabilityModel
        failures = run_guarded(as_json, lambda: ReliabilityModel().solve(
            run=result, checkpoint_time_s=checkpoint_s),
            flags={"checkpoint_time_s": "--checkpoint-s"})
    if as_json and failures is not None:
        typer.echo(json.dumps({**result.to_dict(), "with_failures": failures.to_dict()},
                              indent=2))
    else:
        print_result(result, as_json, explain)
    if failures is not None and not as_json:
        typer.echo(_failures_line(failures))
        if explain:
            typer.echo(failures.explain())
    if not result.feasible:
        if not as_json:
            typer.echo(f"infeasible: {result.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def _failures_line(r) -> str:
    """One line: the chained run's wall time with failures and what it costs."""
    if not r.feasible:
        return f"with failures: {r.reason}"
    days = r.wall_time_to_train.to("day").magnitude
    return (f"with failures: {days:,.4g} days, {r.gpu_hours.to('hour').magnitude:,.4g} "
            f"GPU-hours (goodput {r.goodput_ratio:.3f}: fleet MTBF "
            f"{r.fleet_mtbf.to('hour').magnitude:.3g} h, about {r.expected_failures:,.0f} "
            f"interruptions, a {r.checkpoint_time_s:g} s checkpoint every "
            f"{r.checkpoint_interval.to('minute').magnitude:.3g} min)")


def optimize_cmd(
    model: str = typer.Argument(..., help="Transformer, e.g. GPT3_175B"),
    fleet: str = typer.Argument(..., help="Node or cluster"),
    batch_size: int = typer.Option(..., "--batch-size", "-b", help="Global batch, sequences."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len"),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="Repeat the node N times."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p"),
    max_tp: Optional[int] = typer.Option(None, "--max-tp"),
    max_pp: Optional[int] = typer.Option(None, "--max-pp"),
    objective: str = typer.Option("step_time", "--objective", help="step_time | mfu"),
    top: int = typer.Option(5, "--top", help="Candidates to show."),
    attention: str = typer.Option("flash", "--attention", help="Attention kernel, as for "
                                  "train: flash | flash1 | triton | xformers | materialized."),
    prefetch: str = typer.Option("pre", "--backward-prefetch", help="ZeRO-3 layouts, as for "
                                 "train: pre | post."),
    runtime: Optional[str] = typer.Option(None, "--sharding-runtime", help="ZeRO-3 layouts, "
                                          "as for train: e.g. deepspeed_2021."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """Search TP x PP x DP x micro-batch x interleaving x recomputation x ZeRO."""
    from ..optimize.parallelism import ParallelismOptimizer
    from . import EXIT_INFEASIBLE
    from .app import run_guarded

    result = run_guarded(as_json, lambda: ParallelismOptimizer().solve(
        model, _system(fleet, nodes), batch_size=batch_size, seq_len=seq_len,
        precision=precision, max_tp=max_tp, max_pp=max_pp, objective=objective, top_k=top,
        attention_kernel=attention, backward_prefetch=prefetch, sharding_runtime=runtime),
        flags={"attention_kernel": "--attention", "backward_prefetch": "--backward-prefetch",
               "sharding_runtime": "--sharding-runtime"})
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        from ..show import table
        typer.echo(result.explain().splitlines()[0])
        keys = ("tp", "pp", "dp", "v_stages", "microbatch_size", "zero_stage",
                "activation_recomputation")
        table(["tp", "pp", "dp", "v", "mbs", "zero", "recompute", "step ms", "MFU", "GB"],
              [[c["config"][k] for k in keys] + [f"{c['step_ms']:.5g}", f"{c['mfu']:.3f}",
                                                 f"{c['memory_gb']:.3g}"]
               for c in result.top_candidates])
    if not result.feasible:
        if not as_json:
            typer.echo(f"infeasible: {result.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("optimize")(optimize_cmd)
