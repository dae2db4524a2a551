"""``mlsysim audit FILE`` (run a declarative scenario and check its assertions) and ``mlsysim
schema`` (the JSON Schema of that file). Registered on the Typer app by ``register(app)``.

Exit codes: 0 when every assertion holds, 3 when one fails, 2 when the file does not validate
(one line naming the file and line of the bad key)."""

from __future__ import annotations

import json

import typer

__all__ = ["register"]


def audit_cmd(
    file: str = typer.Argument(..., help="Scenario file (mlsys.yaml), see `mlsysim schema`."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """Evaluate a declarative scenario: each assertion with its value and PASS/FAIL."""
    from ..scenarios import evaluate_scenario, load_scenario
    from . import EXIT_INFEASIBLE
    from .app import run_guarded

    result = run_guarded(as_json, lambda: evaluate_scenario(load_scenario(file)))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False, default=str))
    else:
        from rich.console import Console
        console = Console(highlight=False)
        console.print(result)
        for note in result.notes:
            console.print(f"note: {note}", markup=False)
        if not result.checks:
            console.print("no assertions: the runs were made and nothing was checked",
                          markup=False)
    if not result.passed:
        if not as_json:
            typer.echo(f"{len(result.failed)} of {len(result.checks)} assertions fail: "
                       + "; ".join(c.assertion.text for c in result.failed), err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


def schema_cmd():
    """Print the JSON Schema of a scenario file (mlsys.yaml)."""
    from ..specs.scenario import Scenario
    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)
    app.command("schema")(schema_cmd)
