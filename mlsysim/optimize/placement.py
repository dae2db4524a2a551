"""Where to run a job: regions ranked by cost, carbon, or cost with a carbon price.

For each candidate grid the job's energy is the same (same system, activity, duration and
datacenter PUE); what changes is the price and the carbon of each kWh::

    cost(region)   = facility energy * electricity price + carbon tax * tCO2e
                     (+ the capital share, the same everywhere, when the device is priced)
    carbon(region) = facility energy * grid intensity

``objective``: "cost" (the sum above), "carbon", or "weighted" (cost with the carbon tax, the
same as "cost" when the tax is given). Grids without a published electricity price cannot be
costed: they are ranked by carbon only when the objective is "carbon", and otherwise listed as
skipped with the reason. Unknown region names raise with the closest ones.

Time-shifting (``time_shift=True``): a job of ``T`` hours that may start at any hour of the
year draws a constant power, so on a grid with a published monthly and/or hourly profile its
carbon is ``energy / T * annual intensity * sum of the hourly factors over the T hours from
its start`` (:meth:`~mlsysim.specs.infra.GridSpec.year_factors`; a job past a year wraps
around). Every start hour is evaluated (one cumulative sum) and the lowest kept; the candidate
says when (``start``, in the grid's local standard time) and what the annual average would
have given (``carbon_kg_flat``).
Grids without a profile keep the annual average.
Left out: pausing and resuming a job, hourly electricity prices, transmission and
data-movement costs, capacity limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..solvers.sustainability import _datacenter, duration_seconds, footprint

__all__ = ["PlacementOptimizer", "PlacementResult"]

OWNER = "PlacementOptimizer"
OBJECTIVES = ("cost", "carbon", "weighted")


@dataclass(frozen=True, eq=False, repr=False)
class PlacementResult(Result):
    """Regions ranked for one job."""

    objective: str
    carbon_tax_per_ton: float
    candidates: tuple[dict[str, Any], ...]
    skipped: dict[str, str] = field(default_factory=dict)
    time_shift: bool = False

    main_latency = None
    summary_inputs = ("objective",)
    summary_numbers = ("best_region:best", "lowest_tco:USD")

    @property
    def best(self) -> dict[str, Any] | None:
        return self.candidates[0] if self.candidates else None

    @property
    def best_region(self) -> str | None:
        return None if self.best is None else self.best["region"]

    @property
    def lowest_tco(self) -> float | None:
        return None if self.best is None else self.best["cost_usd"]

    @property
    def carbon_footprint(self) -> float | None:
        """kgCO2e of the job in the best region."""
        return None if self.best is None else self.best["carbon_kg"]

    @property
    def top_candidates(self) -> list[dict[str, Any]]:
        return list(self.candidates[:10])

    @property
    def feasible(self) -> bool:
        return bool(self.candidates)

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return "no region could be ranked: " + "; ".join(f"{k}: {v}"
                                                         for k, v in self.skipped.items())

    @property
    def binding(self) -> str:
        return self.objective if self.feasible else "unpriced"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("the same datacenter PUE/WUE in every region",
                ("the best start hour of the year on grids with a published profile, the "
                 "annual average elsewhere; average electricity price" if self.time_shift else
                 "grids' annual-average intensity and average electricity price"))

    def headline(self) -> dict[str, Any]:
        return {"objective": self.objective, "carbon_tax_per_ton": self.carbon_tax_per_ton,
                "best_region": self.best_region, "lowest_tco": self.lowest_tco,
                "carbon_footprint": self.carbon_footprint,
                "top_candidates": self.top_candidates, "skipped": self.skipped,
                "time_shift": self.time_shift, "feasible": self.feasible,
                "reason": self.reason}

    def explain(self) -> str:
        lines = [f"regions by {self.objective} (carbon tax ${self.carbon_tax_per_ton:g}/t):"]
        for c in self.candidates[:10]:
            cost = "unpriced" if c["cost_usd"] is None else f"${c['cost_usd']:,.0f}"
            when = f"  from {c['start']} ({c['carbon_kg_flat']:,.0f} kg at the annual " \
                "average)" if c.get("start") else ""
            lines.append(f"  {c['region']:<28} {cost:>12}  {c['carbon_kg']:>12,.0f} kgCO2e  "
                         f"({c['intensity_g_kwh']:.0f} g/kWh){when}")
        if self.skipped:
            lines.append("  skipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        return "\n".join(lines)


class PlacementOptimizer(ForwardModel):
    """Rank regions for a job by cost, carbon or both (module docstring)."""

    options = (
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("duration_days", None, "job length; default: the run's predicted time to train"),
        Option("regions", None, "zoo grid names or GridSpecs to compare (default: every zoo "
               "grid)"),
        Option("carbon_tax_per_ton", 0.0, "USD per tCO2e added to the cost"),
        Option("datacenter", "Hyperscale", "zoo datacenter or Datacenter for PUE and WUE"),
        Option("mfu", None, "compute activity as a fraction of peak (or give run)"),
        Option("run", None, "a DistributedResult or PerformanceProfile"),
        Option("objective", "weighted", "'cost', 'carbon' or 'weighted'"),
        Option("time_shift", False, "start each job at its grid's lowest-carbon hour of the "
               "year (grids with a published profile)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """A DGX H100 for 30 days at 40 % MFU across US regions with a $50/t carbon price;
        a region list of grids without prices cannot be costed."""
        if feasible:
            return dict(fleet="DGX_H100", duration_days=30, mfu=0.4, carbon_tax_per_ton=50.0,
                        regions=["US_Avg", "ERCOT", "CAISO", "PJM"])
        return dict(fleet="DGX_H100", duration_days=30, mfu=0.4, regions=["Quebec", "France"],
                    objective="cost")

    def solve(self, fleet, duration_days=None, regions=None, carbon_tax_per_ton: float = 0.0,
              datacenter="Hyperscale", mfu=None, run=None, objective: str = "weighted",
              time_shift: bool = False) -> PlacementResult:
        """Rank the regions.

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.PlacementOptimizer().solve("DGX_H100", duration_days=30, mfu=0.4,
        ...                                        regions=["US_Avg", "CAISO"],
        ...                                        objective="carbon")
        >>> r.best_region
        'California (CAISO)'
        """
        from ..zoo import Grids
        if objective not in OBJECTIVES:
            raise ValidationError("objective", f"must be one of {', '.join(OBJECTIVES)}. Got "
                                  f"{objective!r} instead.", owner=OWNER)
        tax = check.positive_float("carbon_tax_per_ton", carbon_tax_per_ton, OWNER,
                                   allow_zero=True)
        if not isinstance(time_shift, bool):
            raise ValidationError("time_shift", f"must be True or False. Got {time_shift!r} "
                                  "instead.", owner=OWNER)
        if regions is None:
            grids = list(Grids)
        else:
            if isinstance(regions, str) or not hasattr(regions, "__iter__"):
                raise ValidationError("regions", "must be a list of zoo grid names. Got "
                                      f"{regions!r} instead.", owner=OWNER)
            from ..specs.infra import GridSpec
            # Zoo names (unknown ones raise with the closest) or GridSpecs of the user's own.
            grids = [r if isinstance(r, GridSpec) else Grids.get(r) for r in regions]
            if not grids:
                raise ValidationError("regions", "must name at least one region (leave it out "
                                      "to rank every zoo grid). Got [] instead.", owner=OWNER)
        seconds = duration_seconds(duration_days, run, OWNER)
        _datacenter(datacenter, grids[0] if grids else "US_Avg", OWNER)   # validate it once
        out, skipped = [], {}
        for g in grids:
            fp = footprint(fleet, seconds, run=run, mfu=mfu, datacenter=datacenter, grid=g,
                           owner=OWNER)
            price = g.electricity_price_usd_kwh
            carbon, start, intensity = fp.carbon_kg, None, fp.grid_g_kwh
            if time_shift and g.varies:
                share, start = _best_start(g, seconds)
                carbon, intensity = fp.carbon_kg * share, fp.grid_g_kwh * share
            cost = None
            if price is not None:
                cost = fp.facility_kwh * price + tax * carbon / 1000.0
            elif objective != "carbon":
                skipped[g.name] = "no published electricity price"
                continue
            out.append({"region": g.name, "key": g.key, "cost_usd": cost,
                        "carbon_kg": carbon, "energy_kwh": fp.facility_kwh,
                        "intensity_g_kwh": intensity, "price_usd_kwh": price,
                        "water_l": fp.water_l, "start": start,
                        "carbon_kg_flat": fp.carbon_kg})
        if objective == "carbon":
            out.sort(key=lambda c: c["carbon_kg"])
        else:
            out.sort(key=lambda c: c["cost_usd"])
        return PlacementResult(objective=objective, carbon_tax_per_ton=tax,
                               candidates=tuple(out), skipped=skipped, time_shift=time_shift)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _best_start(grid, seconds: float) -> tuple[float, str]:
    """(mean intensity factor over the job from its best start hour, that start as text).

    The job covers ``T = seconds / 3600`` hours: whole hours plus a fraction of the next, the
    year's factors repeated as often as the job needs (a cumulative sum over the repeated
    year gives every start's total at once)."""
    import numpy as np
    year = grid.year_factors()
    hours = seconds / 3600.0
    whole = int(math.floor(hours))
    frac = hours - whole
    reps = whole // year.size + 2
    cs = np.concatenate(([0.0], np.cumsum(np.tile(year, reps))))
    starts = np.arange(year.size)
    total = cs[starts + whole] - cs[starts] + frac * np.tile(year, reps)[starts + whole]
    # The earliest of the starts tied at the minimum (sums of the same factors in another
    # order differ in the last bits).
    best = int(np.flatnonzero(total <= total.min() + 1e-9 * max(hours, 1.0))[0])
    days = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])
    day = best // 24
    month = int(np.searchsorted(days, day, side="right") - 1)
    when = f"{_MONTHS[month]} {day - days[month] + 1:02d} {best % 24:02d}:00"
    return float(total[best] / hours), when
