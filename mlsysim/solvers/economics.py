"""Money: what a job costs to own and run, or to rent.

    capex share  = accelerators * purchase price * T / amortization years
    energy cost  = facility energy * electricity price         (SustainabilityModel's energy)
    TCO          = capex share + energy cost + other opex * T   (other_opex_per_year: network,
                                                                 staff, space; the user's
                                                                 numbers, none are assumed)
    cloud        = accelerator-hours * the lowest published on-demand price per
                   accelerator-hour (mlsysim.Infra.CloudPrices)

Prices come from the zoo (``Infra.purchase_price``, ``Infra.cloud_price``, a grid's
electricity price) or from the caller; an unpriced device or grid gives ``None`` for that
figure with the reason, never a made-up default. Per million tokens and per hour follow.
Left out: financing, resale value, utilization-dependent discounts, taxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..specs.hardware import HardwareSpec
from ..units import Q_
from .sustainability import (
    SECONDS_PER_DAY,
    Footprint,
    _datacenter,
    _run_reason,
    _system,
    duration_seconds,
    footprint,
    service_life_years,
)

__all__ = ["EconomicsModel", "EconomicsResult"]

OWNER = "EconomicsModel"


def _price(value, name: str, unit: str) -> float:
    """A price from a number (in ``unit``), a quantity or a string with units."""
    if isinstance(value, (str, Q_)):
        try:
            q = Q_(value) if isinstance(value, str) else value
            v = float(q.to(unit).magnitude)
        except Exception:
            example = {"USD/kWh": "0.08 USD/kWh", "USD/h": "2.5 USD/h"}.get(unit, "30000 USD")
            raise ValidationError(name, f"must be a price in {unit} (e.g. '{example}'). Got "
                                  f"{value!r} instead.", owner=OWNER) from None
        return check.positive_float(name, v, OWNER, allow_zero=True)
    return check.positive_float(name, value, OWNER, allow_zero=True)


@dataclass(frozen=True, eq=False, repr=False)
class EconomicsResult(Result):
    """Owning and renting costs of one job, and its energy, carbon and water."""

    system: Any
    region_name: str
    fp: Footprint
    kwh_price: float | None
    price_reason: str | None
    purchase_per_accelerator: float | None
    purchase_reason: str
    amortization_years: float
    other_opex_per_year: float
    cloud_per_accelerator_hour: float | None
    cloud_reason: str
    tokens: float | None = None
    notes: tuple[str, ...] = field(default=())
    run_reason: str | None = None

    main_latency = None
    summary_inputs = ("region_name:region",)
    summary_numbers = ("tco_usd:TCO USD", "cloud_usd:cloud USD")

    @property
    def years(self) -> float:
        return self.fp.seconds / (365.25 * SECONDS_PER_DAY)

    @property
    def capex_total_usd(self) -> float | None:
        p = self.purchase_per_accelerator
        return None if p is None else p * self.fp.accelerators

    @property
    def capex_usd(self) -> float | None:
        """The job's share of the purchase: duration / amortization period."""
        c = self.capex_total_usd
        return None if c is None else c * self.years / self.amortization_years

    @property
    def opex_energy_usd(self) -> float | None:
        return None if self.kwh_price is None else self.fp.facility_kwh * self.kwh_price

    @property
    def total_opex_usd(self) -> float | None:
        e = self.opex_energy_usd
        return None if e is None else e + self.other_opex_per_year * self.years

    @property
    def tco_usd(self) -> float | None:
        if self.capex_usd is None or self.total_opex_usd is None:
            return None
        return self.capex_usd + self.total_opex_usd

    @property
    def cloud_usd(self) -> float | None:
        c = self.cloud_per_accelerator_hour
        return None if c is None else c * self.fp.accelerators * self.fp.seconds / 3600

    @property
    def usd_per_hour(self) -> float | None:
        t = self.tco_usd
        return None if t is None else t / (self.fp.seconds / 3600)

    @property
    def usd_per_million_tokens(self) -> dict[str, float | None] | None:
        if not self.tokens:
            return None
        k = 1e6 / self.tokens
        return {"owned": None if self.tco_usd is None else self.tco_usd * k,
                "cloud": None if self.cloud_usd is None else self.cloud_usd * k}

    # the incumbent's energy/carbon fields
    it_energy_kwh = property(lambda self: self.fp.it_kwh)
    total_energy_kwh = property(lambda self: self.fp.facility_kwh)
    carbon_footprint_kg = property(lambda self: self.fp.carbon_kg)
    water_usage_liters = property(lambda self: self.fp.water_l)
    pue = property(lambda self: self.fp.pue)

    @property
    def feasible(self) -> bool:
        return self.run_reason is None and (self.tco_usd is not None or
                                            self.cloud_usd is not None)

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        if self.run_reason is not None:
            return f"the run does not fit: {self.run_reason}"
        return "; ".join(r for r in (self.purchase_reason if self.capex_usd is None else None,
                                     self.price_reason, self.cloud_reason) if r)

    @property
    def binding(self) -> str:
        if not self.feasible:
            return "unpriced"
        parts = {"capital": self.capex_usd or 0.0, "energy": self.opex_energy_usd or 0.0,
                 "other opex": self.other_opex_per_year * self.years}
        return max(parts, key=parts.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        return (f"capital amortized over {self.amortization_years:g} years, straight line",
                f"purchase price: {self.purchase_reason}", f"cloud price: {self.cloud_reason}",
                "energy as SustainabilityModel (power from activity x time x PUE)")

    def headline(self) -> dict[str, Any]:
        return {"system": getattr(self.system, "name", str(self.system)),
                "region": self.region_name, "duration": Q_(self.fp.seconds, "s").to("day"),
                "capex_total_usd": self.capex_total_usd, "capex_usd": self.capex_usd,
                "opex_energy_usd": self.opex_energy_usd, "total_opex_usd": self.total_opex_usd,
                "tco_usd": self.tco_usd, "cloud_usd": self.cloud_usd,
                "usd_per_hour": self.usd_per_hour,
                "usd_per_million_tokens": self.usd_per_million_tokens,
                "it_energy_kwh": self.it_energy_kwh, "total_energy_kwh": self.total_energy_kwh,
                "carbon_footprint_kg": self.carbon_footprint_kg,
                "water_usage_liters": self.water_usage_liters, "pue": self.pue,
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        f = self.fp

        def usd(x):
            return "unpriced" if x is None else f"${x:,.0f}"

        lines = [
            f"{getattr(self.system, 'name', self.system)} for {f.seconds / 86400:.4g} days "
            f"({self.region_name})",
            f"  capex share = {f.accelerators} x "
            + ("unpriced" if self.purchase_per_accelerator is None else
               f"${self.purchase_per_accelerator:,.0f}")
            + f" x {self.years:.3g} y / {self.amortization_years:g} y = {usd(self.capex_usd)}",
            f"  energy = {f.facility_kwh:,.4g} kWh x "
            + ("unpriced" if self.kwh_price is None else f"${self.kwh_price:.4g}/kWh")
            + f" = {usd(self.opex_energy_usd)}; other opex "
            f"{usd(self.other_opex_per_year * self.years)}",
            f"  TCO = {usd(self.tco_usd)}; renting: {usd(self.cloud_usd)} ("
            + ("unpriced" if self.cloud_per_accelerator_hour is None else
               f"${self.cloud_per_accelerator_hour:.4g}/accelerator-hour") + ")",
        ]
        notes = [*(r for r in (self.price_reason,) if r), *self.notes]
        if self.capex_usd is None:
            notes.append(self.purchase_reason)
        if self.cloud_usd is None:
            notes.append(self.cloud_reason)
        return "\n".join(lines + [f"  note: {n}" for n in notes])


class EconomicsModel(ForwardModel):
    """Owning vs renting a system for a job (module docstring)."""

    options = (
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("duration_days", None, "job length; default: the run's predicted time to train"),
        Option("kwh_price", None, "electricity price (USD/kWh; default: the grid's)"),
        Option("datacenter", None, "zoo datacenter or Datacenter (PUE, WUE, grid)"),
        Option("grid", None, "zoo grid or GridSpec (default: the datacenter's)"),
        Option("mfu", None, "compute activity as a fraction of peak (or give run)"),
        Option("amortization_years", None, "years to depreciate over (default: the zoo's "
               "service life)"),
        Option("run", None, "a DistributedResult or PerformanceProfile"),
        Option("utilization", 1.0, "share of the duration the fleet is busy"),
        Option("purchase_price", None, "USD per accelerator (default: the zoo's, if any)"),
        Option("cloud_price", None, "USD per accelerator-hour (default: the zoo's lowest)"),
        Option("other_opex_per_year", 0.0, "USD per year beyond energy (network, staff)"),
        Option("tokens", None, "tokens produced (USD per million tokens)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """A DGX H100 for 30 days at 40 % MFU in a hyperscale datacenter in Virginia (PJM);
        MI300X has neither a published purchase nor cloud price in the zoo."""
        if feasible:
            return dict(fleet="DGX_H100", duration_days=30, datacenter="Hyperscale",
                        grid="PJM", mfu=0.4)
        return dict(fleet="MI300X", duration_days=30, datacenter="Hyperscale", grid="PJM",
                    mfu=0.4)

    def solve(self, fleet, duration_days=None, kwh_price=None, datacenter=None, grid=None,
              mfu=None, amortization_years=None, run=None, utilization: float = 1.0,
              purchase_price=None, cloud_price=None, other_opex_per_year: float = 0.0,
              tokens=None) -> EconomicsResult:
        """Costs of the job.

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.EconomicsModel().solve("DGX_H100", duration_days=30,
        ...                                    datacenter="Hyperscale", grid="PJM", mfu=0.4)
        >>> r.tco_usd == r.capex_usd + r.opex_energy_usd
        True
        """
        from ..specs.infra import NoPublishedPriceError
        from ..zoo import Infra
        seconds = duration_seconds(duration_days, run, OWNER)
        fp = footprint(fleet, seconds, run=run, mfu=mfu, datacenter=datacenter, grid=grid,
                       utilization=utilization, owner=OWNER)
        system = _system(fleet, OWNER)
        _, _, g, _ = _datacenter(datacenter, grid, OWNER)
        chip = system if isinstance(system, HardwareSpec) else system.accelerator
        price_reason = None
        if kwh_price is not None:
            kwh = _price(kwh_price, "kwh_price", "USD/kWh")
        elif g.electricity_price_usd_kwh is not None:
            kwh = g.electricity_price_usd_kwh
        else:
            kwh, price_reason = None, (f"{g.name} publishes no electricity price; give "
                                       "kwh_price")
        if purchase_price is not None:
            buy, buy_reason = _price(purchase_price, "purchase_price", "USD"), "given"
        else:
            try:
                entry = Infra.purchase_price(chip)
                buy = entry.usd
                buy_reason = f"{entry.name} ({entry.source}" + (
                    ", estimate)" if entry.estimate else ")")
            except NoPublishedPriceError as exc:
                buy, buy_reason = None, f"{exc}; give purchase_price"
        if cloud_price is not None:
            rent, rent_reason = _price(cloud_price, "cloud_price", "USD/h"), "given"
        else:
            try:
                entry = Infra.cloud_price(chip)
                rent = entry.usd_per_accelerator_hour
                rent_reason = f"{entry.provider} {entry.instance} on demand ({entry.source})"
            except NoPublishedPriceError as exc:
                rent, rent_reason = None, f"{exc}; give cloud_price"
        years = service_life_years() if amortization_years is None else \
            check.positive_float("amortization_years", amortization_years, OWNER)
        other = _price(other_opex_per_year, "other_opex_per_year", "USD")
        if tokens is None and run is not None and hasattr(run, "tokens_per_s"):
            tokens = float(run.tokens_per_s) * seconds
        if tokens is not None:
            check.positive_float("tokens", tokens, OWNER)
        return EconomicsResult(
            system=system, region_name=g.name, fp=fp, kwh_price=kwh, price_reason=price_reason,
            purchase_per_accelerator=buy, purchase_reason=buy_reason, amortization_years=years,
            other_opex_per_year=other, cloud_per_accelerator_hour=rent,
            cloud_reason=rent_reason, tokens=tokens, run_reason=_run_reason(run))


