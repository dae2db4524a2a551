"""Infrastructure a fleet runs in: electricity grids, datacenters, and what accelerators cost.

- :class:`GridSpec`: one electricity grid (a country, a US ISO or balancing authority, a
  province) with its annual-average **carbon intensity** (gCO2e per kWh generated, one basis
  for every zoo entry: *lifecycle*), the **water** its power plants consume per kWh (L/kWh,
  "EWIF", operational consumption, not withdrawal) and an **electricity price** (USD/kWh, the
  tariff sector named in ``price_sector``) where a source publishes them, with optional
  12-month or 24-hour profiles as factors relative to the annual average.
- :class:`Datacenter`: a facility or an archetype: its power usage effectiveness (PUE = total
  facility energy / IT energy, >= 1), its on-site water usage effectiveness (WUE = site water /
  IT energy, L/kWh) and the grid it draws from. ``pue_override`` (the incumbent's keyword)
  takes precedence over the published PUE.
- :class:`CloudPrice`: one published on-demand instance price, divided by the accelerators in
  the instance, with committed and spot rates where the provider publishes them.
- :class:`PurchasePrice`: a reported purchase price of one accelerator, or a reported range.

Zoo entries carry ``source`` and ``as_of``; values a source does not give are left out (None),
never filled with a default. Left out: marginal (as opposed to average) emission factors,
hourly grid data, embodied carbon of buildings, water scarcity weighting, exchange rates.

The arithmetic these specs feed is the plain product ``energy x intensity``:

>>> from mlsysim import Q_
>>> grid = GridSpec(name="example grid", carbon_intensity="400 gCO2e/kWh")
>>> f"{grid.emissions(Q_('250 kWh')):.1f~P}"          # 250 kWh x 400 g/kWh = 100 kg
'100.0 kgCO2e'
>>> Datacenter(name="x", grid=grid, pue_override=1.2).effective_pue
1.2
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from ..errors import MLSysimError
from ..units import Q_
from .base import QuantityOf
from .system import _by_name, _SystemSpec

__all__ = ["GridSpec", "Datacenter", "CloudPrice", "PurchasePrice", "NoPublishedPriceError",
           "DatacenterKind"]

DatacenterKind = Literal["hyperscale", "enterprise", "colocation", "named"]
PosInt = Annotated[int, Field(gt=0, strict=True)]
Pue = Annotated[float, Field(ge=1.0, allow_inf_nan=False)]
Money = QuantityOf("USD")
HourlyPrice = QuantityOf("USD/h")

# A profile's factors are relative to the annual average, so they must average to 1.
_PROFILE_MEAN_TOLERANCE = 0.02


class NoPublishedPriceError(MLSysimError, LookupError):
    """An accelerator (or provider) with no published price in the zoo. Never a default."""


def _hardware_key(value: Any) -> Any:
    """Accept a zoo hardware name or spec; keep its canonical registry key."""
    if isinstance(value, str):
        from .. import zoo
        return zoo.Hardware.get(value).key
    key = getattr(value, "key", None)
    if isinstance(key, str):
        return key
    return value


HardwareKey = Annotated[str, BeforeValidator(_hardware_key)]


def _check_profile(profile: list[float] | None, length: int, what: str) -> None:
    if profile is None:
        return
    if len(profile) != length:
        raise ValueError(f"{what} needs {length} factors (one per "
                         f"{'month' if length == 12 else 'hour'}), got {len(profile)}")
    for i, f in enumerate(profile):
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{what}[{i}] must be a finite positive factor (got {f!r})")
    mean = sum(profile) / length
    if abs(mean - 1.0) > _PROFILE_MEAN_TOLERANCE:
        raise ValueError(f"{what} factors are relative to the annual average and must average "
                         f"to 1 (got a mean of {mean:.3f})")


class GridSpec(_SystemSpec):
    """One electricity grid's carbon intensity, water intensity and price.

    ``carbon_intensity`` is the annual average in gCO2e per kWh for ``year``; ``basis`` says
    which emissions it counts (``lifecycle``: construction, fuel supply chain and combustion,
    the basis of every zoo entry; ``direct``: combustion only). ``monthly_profile`` (12,
    January first) and ``hourly_profile`` (24; index h is hour h of the grid's local standard
    time, one hour behind the clock under daylight saving) are factors relative to that
    average (they average to 1).
    ``water_intensity`` is the water power plants consume per kWh generated (EWIF).
    ``electricity_price`` is an average retail price for ``price_sector`` customers.
    """

    group: Literal["Grid"] = "Grid"
    region: str | None = None            # ISO 3166 code or grid-operator zone, e.g. US-TEX-ERCO
    carbon_intensity: QuantityOf("gCO2e/kWh", allow_zero=True)
    basis: Literal["lifecycle", "direct"] = "lifecycle"
    year: int | None = Field(default=None, ge=1990, le=2100)
    monthly_profile: list[float] | None = None
    hourly_profile: list[float] | None = None
    water_intensity: QuantityOf("L/kWh", allow_zero=True) | None = None
    electricity_price: QuantityOf("USD/kWh") | None = None
    price_sector: Literal["industrial", "commercial", "all"] | None = None

    @model_validator(mode="after")
    def _profiles(self):
        _check_profile(self.monthly_profile, 12, "monthly_profile")
        _check_profile(self.hourly_profile, 24, "hourly_profile")
        if self.price_sector is not None and self.electricity_price is None:
            raise ValueError("price_sector is set but electricity_price is not")
        return self

    @property
    def carbon_intensity_g_kwh(self) -> float:
        """Annual-average intensity as a plain float in gCO2e/kWh (the incumbent's name)."""
        return float(self.carbon_intensity.to("gCO2e/kWh").magnitude)

    @property
    def water_intensity_l_kwh(self) -> float | None:
        if self.water_intensity is None:
            return None
        return float(self.water_intensity.to("L/kWh").magnitude)

    @property
    def default_datacenter(self) -> "Datacenter":
        """The datacenter assumed on this grid when none is named: the zoo's first site on
        this grid with a published PUE, else the industry-average archetype
        (``Datacenters.Enterprise``: Uptime Institute's survey PUE, LBNL's US WUE)."""
        from ..zoo import Infra
        for name in Infra.Datacenters.names():
            site = Infra.Datacenters.get(name)
            if site.grid is not None and site.grid.key == self.key and self.key is not None:
                return site
        return Infra.Datacenters.get("Enterprise")

    @property
    def pue(self) -> float:
        """PUE of :attr:`default_datacenter` (the incumbent's grid field; PUE belongs to a
        datacenter, so a named one overrides it wherever a solver takes one)."""
        return float(self.default_datacenter.effective_pue)

    @property
    def wue(self) -> float | None:
        """On-site WUE (L/kWh) of :attr:`default_datacenter`, None where it publishes none."""
        w = self.default_datacenter.wue
        return None if w is None else float(w.to("L/kWh").magnitude)

    @property
    def electricity_price_usd_kwh(self) -> float | None:
        if self.electricity_price is None:
            return None
        return float(self.electricity_price.to("USD/kWh").magnitude)

    def intensity_in(self, month: int | None = None, hour: int | None = None):
        """Carbon intensity in a month (1-12) and/or hour of day (0-23), from the profiles.

        Without a published profile for what is asked, raises rather than returning the
        annual average as if it were the month's.
        """
        factor = 1.0
        if month is not None:
            if self.monthly_profile is None:
                raise MLSysimError(f"grid '{self.name}' has no published monthly profile; "
                                   "use carbon_intensity (the annual average)")
            if not (isinstance(month, int) and 1 <= month <= 12):
                raise MLSysimError(f"month must be 1-12 (got {month!r})")
            factor *= self.monthly_profile[month - 1]
        if hour is not None:
            if self.hourly_profile is None:
                raise MLSysimError(f"grid '{self.name}' has no published hourly profile; "
                                   "use carbon_intensity (the annual average)")
            if not (isinstance(hour, int) and 0 <= hour <= 23):
                raise MLSysimError(f"hour must be 0-23 (got {hour!r})")
            factor *= self.hourly_profile[hour]
        return (self.carbon_intensity * factor).to("gCO2e/kWh")

    @property
    def varies(self) -> bool:
        """Whether a published profile makes the intensity depend on when a job runs."""
        return self.monthly_profile is not None or self.hourly_profile is not None

    def year_factors(self):
        """The intensity factor of each of the 8,760 hours of a (non-leap) year: the month's
        factor times the hour's (1 where no profile is published), from 1 January 00:00."""
        import numpy as np
        days = np.repeat(np.arange(12), [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
        month = np.ones(12) if self.monthly_profile is None else np.array(self.monthly_profile)
        hour = np.ones(24) if self.hourly_profile is None else np.array(self.hourly_profile)
        return (month[days][:, None] * hour[None, :]).reshape(-1)

    def emissions(self, energy):
        """Operational emissions of ``energy`` drawn from this grid, in kgCO2e.

        ``energy`` is a quantity (``Q_("250 kWh")``) or a string with a unit; the result is
        ``energy x carbon_intensity`` (the grid's annual average).
        """
        return (Q_(energy) * self.carbon_intensity).to("kgCO2e")

    def __repr__(self) -> str:
        return f"GridSpec({self.key or self.name}: {self.carbon_intensity_g_kwh:g} gCO2e/kWh)"

    def __str__(self) -> str:
        return self.name


class Datacenter(_SystemSpec):
    """A datacenter (a named site or an archetype) and the grid it draws from.

    ``pue`` is the published power usage effectiveness (total facility energy / IT energy);
    ``pue_override`` (the incumbent's keyword) takes precedence, so ``effective_pue`` (and the
    ``pue`` attribute) is the override when given. One of the two is required: there is no
    default PUE. ``wue`` is on-site water usage effectiveness (site water / IT energy) where
    published, ``wue_basis`` whether the operator counts water consumed or withdrawn.
    ``grid`` is a :class:`GridSpec` or a zoo grid name; archetypes have none.
    """

    model_config = {**_SystemSpec.model_config, "populate_by_name": True}

    group: Literal["Datacenter"] = "Datacenter"
    kind: DatacenterKind = "named"
    operator: str | None = None
    grid: Annotated[GridSpec, _by_name("Grids")] | None = None
    site_pue: Pue | None = Field(default=None, alias="pue")
    pue_override: Pue | None = None
    wue: QuantityOf("L/kWh", allow_zero=True) | None = None
    wue_basis: Literal["consumption", "withdrawal"] | None = None

    @model_validator(mode="after")
    def _pue_given(self):
        if self.site_pue is None and self.pue_override is None:
            raise ValueError("give pue (the published value) or pue_override; a datacenter "
                             "has no default PUE")
        if self.wue_basis is not None and self.wue is None:
            raise ValueError("wue_basis is set but wue is not")
        return self

    @property
    def effective_pue(self) -> float:
        """``pue_override`` when given, else the published PUE."""
        return self.pue_override if self.pue_override is not None else self.site_pue

    @property
    def pue(self) -> float:
        """The PUE in effect (``pue_override`` takes precedence), as users already write."""
        return self.effective_pue

    @property
    def wue_l_kwh(self) -> float | None:
        return None if self.wue is None else float(self.wue.to("L/kWh").magnitude)

    def __repr__(self) -> str:
        grid = f", grid {self.grid.key or self.grid.name}" if self.grid is not None else ""
        return f"Datacenter({self.key or self.name}: PUE {self.effective_pue:g}{grid})"

    def __str__(self) -> str:
        return self.name


class CloudPrice(_SystemSpec):
    """One published cloud price for renting accelerators, per accelerator-hour.

    Give the instance's published ``instance_price`` (USD/h) and ``accelerators_per_instance``:
    ``price_per_accelerator_hour`` is their quotient. Where a provider prices per chip (TPUs),
    give ``price_per_accelerator_hour`` directly. Committed (reservation, capacity block,
    committed-use) and spot rates are per accelerator-hour too, only where published.
    """

    group: Literal["CloudPrice"] = "CloudPrice"
    accelerator: HardwareKey
    provider: str
    instance: str
    region: str
    accelerators_per_instance: PosInt = 1
    instance_price: HourlyPrice | None = None
    price_per_accelerator_hour: HourlyPrice | None = None
    committed_price_per_accelerator_hour: HourlyPrice | None = None
    committed_term: str | None = None
    spot_price_per_accelerator_hour: HourlyPrice | None = None

    @model_validator(mode="before")
    @classmethod
    def _per_accelerator(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("instance_price") is not None \
                and data.get("price_per_accelerator_hour") is None:
            n = data.get("accelerators_per_instance", 1)
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                from .base import _parse_quantity
                try:
                    total = _parse_quantity("USD/h", allow_zero=False)(data["instance_price"])
                except Exception:
                    return data            # the field validator reports the bad price
                data = {**data, "price_per_accelerator_hour": (total / n).to("USD/h")}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.price_per_accelerator_hour is None:
            raise ValueError("give instance_price (with accelerators_per_instance) or "
                             "price_per_accelerator_hour")
        if self.instance_price is not None:
            implied = float((self.instance_price / self.accelerators_per_instance)
                            .to("USD/h").magnitude)
            given = float(self.price_per_accelerator_hour.to("USD/h").magnitude)
            if abs(implied - given) > 0.005 * given:
                raise ValueError(f"price_per_accelerator_hour ({given:g} USD/h) disagrees "
                                 f"with instance_price / accelerators_per_instance "
                                 f"({implied:g} USD/h)")
        if (self.committed_price_per_accelerator_hour is None) != (self.committed_term is None):
            raise ValueError("committed_price_per_accelerator_hour and committed_term go "
                             "together")
        return self

    @property
    def usd_per_accelerator_hour(self) -> float:
        """On-demand price per accelerator-hour as a plain float (USD)."""
        return float(self.price_per_accelerator_hour.to("USD/h").magnitude)

    def __repr__(self) -> str:
        return (f"CloudPrice({self.provider} {self.instance}: "
                f"{self.usd_per_accelerator_hour:.4g} USD per {self.accelerator}-hour)")

    def __str__(self) -> str:
        return self.name


class PurchasePrice(_SystemSpec):
    """A reported purchase price of one accelerator: a point (``price``), a reported range
    (``price_low`` .. ``price_high``) or both. ``kind``: ``list`` (the vendor's list price),
    ``street`` (observed selling price), ``reported`` (a price quoted by press or analysts).
    A range without a point is an estimate by nature, so such entries must say
    ``estimate: true``; ``point`` is then the middle of the range."""

    group: Literal["PurchasePrice"] = "PurchasePrice"
    accelerator: HardwareKey
    kind: Literal["list", "street", "reported"]
    price: Money | None = None
    price_low: Money | None = None
    price_high: Money | None = None

    @model_validator(mode="after")
    def _range(self):
        lo, hi = self.price_low, self.price_high
        if (lo is None) != (hi is None):
            raise ValueError("price_low and price_high go together")
        if self.price is None and lo is None:
            raise ValueError("give price, or price_low and price_high")
        if lo is not None:
            lo_v, hi_v = (float(q.to("USD").magnitude) for q in (lo, hi))
            if lo_v > hi_v:
                raise ValueError(f"price_low ({lo_v:g} USD) exceeds price_high ({hi_v:g} USD)")
            if self.price is not None and not lo_v <= float(self.price.to("USD").magnitude) \
                    <= hi_v:
                raise ValueError("price lies outside price_low .. price_high")
            if self.price is None and not self.estimate:
                raise ValueError("a reported range without a point price is an estimate; "
                                 "mark it estimate: true with notes")
        return self

    @property
    def point(self):
        """The price, or the middle of the reported range, in USD."""
        if self.price is not None:
            return self.price.to("USD")
        return ((self.price_low + self.price_high) / 2).to("USD")

    @property
    def usd(self) -> float:
        return float(self.point.magnitude)

    def __repr__(self) -> str:
        rng = (f" ({self.price_low.to('USD').magnitude:,.0f}-"
               f"{self.price_high.to('USD').magnitude:,.0f})" if self.price_low is not None
               else "")
        return f"PurchasePrice({self.accelerator}: {self.usd:,.0f} USD{rng})"

    def __str__(self) -> str:
        return self.name
