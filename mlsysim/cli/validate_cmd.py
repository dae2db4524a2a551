"""``mlsysim validate``: predictions against published measurements, per row and per category.

Registered on the Typer app by ``register(app)``.
"""

from __future__ import annotations

import json
from typing import List, Optional

import typer

__all__ = ["register", "validate_cmd"]


def validate_cmd(
    category: Optional[List[str]] = typer.Option(
        None, "--category", "-c",
        help="Only this category (repeatable): vision_inference, llm_inference, llm_serving, "
             "training, recsys_inference."),
    rows: bool = typer.Option(False, "--rows", help="Print every row's prediction and error."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """Compare predictions with the published measurements in the reference data."""
    from ..validation.adapters import SKIP_CODES
    from ..validation.harness import run_validation
    from .app import run_guarded

    report = run_guarded(as_json, lambda: run_validation(category or None))
    if as_json:
        typer.echo(json.dumps(report.to_dict(rows=True), indent=2))
        return
    from rich.console import Console

    console = Console(highlight=False, width=max(Console().width, 132))
    if rows:
        console.print(report.rows_table())
    console.print(report.table())
    skipped = report.skipped_by_reason
    if skipped:
        console.print("skipped rows by reason:")
        for code, n in skipped.items():
            console.print(f"  {n:3d}  {SKIP_CODES.get(code, code)} ({code})", markup=False)
    console.print(f"{len(report.results)} rows in {report.elapsed_s:.2f} s; error = "
                  "predicted / measured - 1; --rows for every row, --json for all fields.",
                  markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to ``app`` (once: a second call changes nothing)."""
    if any(c.name == "validate" for c in app.registered_commands):
        return
    app.command("validate")(validate_cmd)
