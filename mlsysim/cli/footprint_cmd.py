"""``mlsysim carbon`` (energy, carbon and water of a job), ``mlsysim cost`` (owning vs
renting it) and ``mlsysim place`` (which region, and when), thin commands over
SustainabilityModel, EconomicsModel and PlacementOptimizer. ``--train MODEL``
chains a DistributedModel run on the same system: its predicted activity sets the power and,
with ``--tokens``, its predicted time to train sets the duration. Registered on the Typer app
by ``register(app)``."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

__all__ = ["register"]

TRAIN_HELP = "Chain a training run of this model on SYSTEM (activity, and duration with --tokens)."

# The options the three commands share: the job, and the training run --train chains.
System = Annotated[str, typer.Argument(help="Chip, node or cluster, e.g. DGX_H100")]
Days = Annotated[Optional[float], typer.Option("--days", help="Job length (default: the "
                                               "--train run's time to train for --tokens).")]
Mfu = Annotated[Optional[float], typer.Option("--mfu", help="Compute activity, 0-1 (or "
                                              "--train).")]
Nodes = Annotated[Optional[int], typer.Option("--nodes", help="Repeat the node N times.")]
Train = Annotated[Optional[str], typer.Option("--train", help=TRAIN_HELP)]
Batch = Annotated[Optional[int], typer.Option("--batch-size", "-b",
                                              help="--train: global batch, sequences.")]
SeqLen = Annotated[Optional[int], typer.Option("--seq-len", help="--train: tokens per "
                                               "sequence.")]
Tokens = Annotated[Optional[float], typer.Option("--tokens", help="--train: token budget.")]
Precision = Annotated[Optional[str], typer.Option("--precision", "-p")]
Tp = Annotated[int, typer.Option("--tp")]
Pp = Annotated[int, typer.Option("--pp")]
Zero = Annotated[int, typer.Option("--zero", help="--train: ZeRO stage 0-3.")]
Explain = Annotated[bool, typer.Option("--explain")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _train_run(model, system, batch_size, seq_len, precision, tokens, tp, pp, zero,
               owner: str):
    """The DistributedModel run of ``--train``, or None."""
    if model is None:
        for flag, value in (("--batch-size", batch_size), ("--seq-len", seq_len),
                            ("--tokens", tokens), ("--precision", precision)):
            if value is not None:
                from ..errors import ValidationError
                raise ValidationError(flag, "applies to a chained training run; give --train "
                                      "MODEL.", owner=owner)
        return None
    if batch_size is None:
        from ..errors import ValidationError
        raise ValidationError("--batch-size", "is needed with --train (global batch, "
                              "sequences).", owner=owner)
    from ..solvers.distributed import DistributedModel
    return DistributedModel().solve(model, system, batch_size=batch_size, seq_len=seq_len,
                                    precision=precision, tp_size=tp, pp_size=pp,
                                    zero_stage=zero, token_budget=tokens)


def _emit(result, run, as_json: bool, explain: bool) -> None:
    from . import EXIT_INFEASIBLE
    from .app import print_result
    if as_json:
        out = result.to_dict()
        if run is not None:
            out["training"] = run.to_dict()
        typer.echo(json.dumps(out, indent=2))
    else:
        if run is not None:
            print_result(run, False)
        print_result(result, False, explain)
    if not result.feasible:
        if not as_json:
            typer.echo(f"infeasible: {result.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def carbon_cmd(
    system: System, days: Days = None, mfu: Mfu = None,
    datacenter: Optional[str] = typer.Option(None, "--datacenter", help="Zoo datacenter, "
                                             "e.g. Hyperscale (PUE, WUE)."),
    grid: Optional[str] = typer.Option(None, "--grid", "--region", help="Zoo grid, e.g. "
                                       "Quebec (default: the datacenter's)."),
    utilization: float = typer.Option(1.0, "--utilization", help="Busy share of the days."),
    month: Optional[int] = typer.Option(None, "--month", help="1-12: the grid's intensity in "
                                        "that month (grids with a published profile)."),
    nodes: Nodes = None, train: Train = None, batch_size: Batch = None,
    seq_len: SeqLen = None, tokens: Tokens = None, precision: Precision = None,
    tp: Tp = 1, pp: Pp = 1, zero: Zero = 0, explain: Explain = False, as_json: Json = False,
):
    """Energy, carbon (operational and embodied) and water of a job on a system."""
    from ..solvers.sustainability import SustainabilityModel
    from .app import run_guarded
    from .train_cmd import _system

    def go():
        fleet = _system(system, nodes)
        run = _train_run(train, fleet, batch_size, seq_len, precision, tokens, tp, pp, zero,
                         "mlsysim carbon")
        return run, SustainabilityModel().solve(fleet, duration_days=days,
                                                datacenter=datacenter, mfu=mfu, grid=grid,
                                                run=run, utilization=utilization, month=month)

    run, result = run_guarded(as_json, go)
    _emit(result, run, as_json, explain)


def cost_cmd(
    system: System, days: Days = None, mfu: Mfu = None,
    datacenter: Optional[str] = typer.Option(None, "--datacenter", help="Zoo datacenter, "
                                             "e.g. Hyperscale (PUE, WUE)."),
    grid: Optional[str] = typer.Option(None, "--grid", "--region", help="Zoo grid, e.g. PJM "
                                       "(default: the datacenter's)."),
    purchase_price: Optional[float] = typer.Option(None, "--purchase-price",
                                                   help="USD per accelerator."),
    cloud_price: Optional[float] = typer.Option(None, "--cloud-price",
                                                help="USD per accelerator-hour."),
    kwh_price: Optional[float] = typer.Option(None, "--kwh-price", help="USD per kWh."),
    utilization: float = typer.Option(1.0, "--utilization", help="Busy share of the days."),
    nodes: Nodes = None, train: Train = None, batch_size: Batch = None,
    seq_len: SeqLen = None, tokens: Tokens = None, precision: Precision = None,
    tp: Tp = 1, pp: Pp = 1, zero: Zero = 0, explain: Explain = False, as_json: Json = False,
):
    """Cost of a job: capital share, energy and TCO, against renting the accelerators."""
    from ..solvers.economics import EconomicsModel
    from .app import run_guarded
    from .train_cmd import _system

    def go():
        fleet = _system(system, nodes)
        run = _train_run(train, fleet, batch_size, seq_len, precision, tokens, tp, pp, zero,
                         "mlsysim cost")
        return run, EconomicsModel().solve(fleet, duration_days=days, kwh_price=kwh_price,
                                           datacenter=datacenter, grid=grid, mfu=mfu,
                                           run=run, utilization=utilization,
                                           purchase_price=purchase_price,
                                           cloud_price=cloud_price)

    run, result = run_guarded(as_json, go)
    _emit(result, run, as_json, explain)


def place_cmd(
    system: System, days: Days = None, mfu: Mfu = None,
    regions: Optional[str] = typer.Option(None, "--regions", help="Comma list of zoo grids "
                                          "(default: every grid), e.g. US_Avg,CAISO,Quebec."),
    objective: str = typer.Option("weighted", "--objective", help="cost | carbon | weighted "
                                  "(cost with --carbon-tax)."),
    carbon_tax: float = typer.Option(0.0, "--carbon-tax", help="USD per tCO2e."),
    time_shift: bool = typer.Option(False, "--time-shift", help="Start the job at each "
                                    "grid's cleanest hour of the year (published profiles)."),
    datacenter: str = typer.Option("Hyperscale", "--datacenter", help="Zoo datacenter (PUE, "
                                   "WUE), the same in every region."),
    nodes: Nodes = None, train: Train = None, batch_size: Batch = None,
    seq_len: SeqLen = None, tokens: Tokens = None, precision: Precision = None,
    tp: Tp = 1, pp: Pp = 1, zero: Zero = 0, explain: Explain = False, as_json: Json = False,
):
    """Where (and, with --time-shift, when) to run a job: regions ranked by cost, carbon or
    cost with a carbon price."""
    from ..optimize.placement import PlacementOptimizer
    from .app import run_guarded
    from .train_cmd import _system

    def go():
        fleet = _system(system, nodes)
        run = _train_run(train, fleet, batch_size, seq_len, precision, tokens, tp, pp, zero,
                         "mlsysim place")
        names = None if regions is None else [r.strip() for r in regions.split(",")]
        return run, PlacementOptimizer().solve(
            fleet, duration_days=days, regions=names, carbon_tax_per_ton=carbon_tax,
            datacenter=datacenter, mfu=mfu, run=run, objective=objective.strip().lower(),
            time_shift=time_shift)

    run, result = run_guarded(as_json, go)
    if as_json:
        _emit(result, run, as_json, explain)
        return
    from . import EXIT_INFEASIBLE
    from .app import print_result
    if run is not None:
        print_result(run, False)
    typer.echo(result.explain())     # the ranking is the answer (--json has every field)
    if explain:
        typer.echo("assumptions: " + "; ".join(result.assumptions))
    if not result.feasible:
        typer.echo(f"infeasible: {result.reason}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def register(app: typer.Typer) -> None:
    app.command("carbon")(carbon_cmd)
    app.command("cost")(cost_cmd)
    app.command("place")(place_cmd)
