"""Terminal output on rich: ``info`` for an aligned block of fields, ``table`` for rows.

Quantities are shown with compact units and four significant digits ("25.56 Mparam",
"0.3263 ms"); a quantity already in a readable range keeps the unit it was given.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["info", "table", "format_value", "fields_table"]


def format_value(value: Any) -> str:
    from .units import Q_, Rate

    if isinstance(value, Rate):
        return f"{float(value):.4g} {value.unit}"
    if isinstance(value, Q_):
        mag = float(value.magnitude)
        if math.isfinite(mag) and mag != 0 and not 0.01 <= abs(mag) < 10_000:
            value = value.to_compact()
            mag = float(value.magnitude)
        return f"{mag:.4g} {value.units:~P}".strip()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    return str(value)


def _console():
    from rich.console import Console
    return Console(highlight=False)


def fields_table(title: str | None, fields: dict[str, Any]):
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.title_justify = "left"
    grid.title_style = "bold"
    grid.add_column(style="cyan", no_wrap=True)
    grid.add_column()
    for key, value in fields.items():
        if isinstance(value, dict):  # nested detail (definitions, traces) belongs in --json
            continue
        grid.add_row(str(key).replace("_", " "), format_value(value))
    return grid


def info(title: str | None = None, /, **fields: Any) -> None:
    """Print an aligned block: ``info("Model", Name="ResNet-50", Parameters=q)``."""
    _console().print(fields_table(title, fields))


def table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print a table of rows; cells are formatted like ``info`` values."""
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for h in headers:
        t.add_column(str(h), justify="right")
    for row in rows:
        t.add_row(*(format_value(c) for c in row))
    _console().print(t)
