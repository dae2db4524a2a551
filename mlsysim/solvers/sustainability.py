"""Energy, carbon and water of a job on a system: what the accelerators draw while doing it,
never TDP x time.

For a job of ``T`` seconds on ``N`` nodes (a bare chip: its accelerators, no host)::

    P_acc     = util * P(u_c, u_m) + (1 - util) * P_idle           (core/power.py)
    IT energy = N * (accelerators per node * P_acc + host power) * T
    facility  = IT energy * PUE                                     (datacenter)
    carbon    = facility energy * grid carbon intensity             (gCO2e/kWh, annual mean;
                                                                     a month's or hour's
                                                                     profile factor if given)
    water     = IT energy * site WUE + facility energy * grid water intensity
    embodied  = accelerators * embodied carbon * T / service life   (the job's share of the
                                                                     devices' life)

The activity ``(u_c, u_m)`` comes from a prediction: a training step
(``DistributedResult``: its slowest stage's per-operator breakdown over the step), a single
pass (``PerformanceProfile``: its per-operator breakdown), or the incumbent's ``mfu`` keyword
(u_c = mfu). ``util`` is the share of the duration the fleet is busy. The duration is given,
or comes from the training result's ``time_to_train`` (the predicted time for its token
budget, not a reported one).
Left out: cooling and network energy beyond PUE, the host's variation with load, embodied
carbon of anything but the accelerators, grid marginal (vs average) intensity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..specs.hardware import HardwareSpec
from ..specs.system import Fleet
from ..units import Q_

__all__ = ["SustainabilityModel", "SustainabilityResult", "Footprint", "footprint",
           "embodied_carbon_kg", "service_life_years", "duration_seconds"]

OWNER = "SustainabilityModel"
SECONDS_PER_DAY = 86400.0


@lru_cache(maxsize=1)
def _embodied_data() -> dict[str, dict]:
    from ..zoo import DATA, _read_yaml
    return {e["key"]: e for e in _read_yaml(DATA / "infra" / "embodied.yaml")}


def embodied_carbon_kg(hardware: HardwareSpec) -> tuple[float | None, str]:
    """(kgCO2e per accelerator, where it comes from) or (None, why it is unknown)."""
    entry = _embodied_data().get(hardware.key)
    if entry is None:
        return None, (f"no published embodied carbon for {hardware.name}; give "
                      "embodied_kg_per_accelerator")
    kg = float(Q_(entry["embodied"]).to("kgCO2e").magnitude)
    return kg, f"{entry['source']} ({'estimate' if entry.get('estimate') else 'published'})"


def service_life_years() -> float:
    """The default service life (years) over which devices are amortized, with its source in
    zoo/data/infra/embodied.yaml."""
    return float(Q_(_embodied_data()["service_life"]["service_life"]).to("year").magnitude)


def _system(system, owner: str = OWNER):
    from ..core.collectives import system_spec
    return system_spec(system, owner, "fleet")


def _datacenter(datacenter, grid, owner: str):
    """(PUE, site WUE L/kWh or None, grid spec, datacenter name)."""
    from ..specs.infra import Datacenter, GridSpec
    from ..zoo import Datacenters, Grids
    dc = Datacenters.get(datacenter) if isinstance(datacenter, str) else datacenter
    if dc is not None and not isinstance(dc, Datacenter):
        raise ValidationError("datacenter", "must be a Datacenter or a zoo name (see "
                              f"mlsysim.Infra.Datacenters). Got {datacenter!r} instead.",
                              owner=owner)
    g = Grids.get(grid) if isinstance(grid, str) else grid
    if g is not None and not isinstance(g, GridSpec):
        raise ValidationError("grid", "must be a GridSpec or a zoo name (see "
                              f"mlsysim.Infra.Grids). Got {grid!r} instead.", owner=owner)
    g = g or (dc.grid if dc is not None else None)
    if g is None:
        raise ValidationError("grid", "is needed: name the region's grid (e.g. 'Quebec', "
                              "'US_Avg'), or a datacenter that has one.", owner=owner)
    if dc is None:
        raise ValidationError("datacenter", "is needed for its PUE: a zoo datacenter (e.g. "
                              "'Hyperscale', 'Enterprise') or Datacenter(name=..., grid=..., "
                              "pue=...).", owner=owner)
    return dc.effective_pue, dc.wue_l_kwh, g, dc.name


def _activity(run, mfu, owner: str) -> tuple[float, float, str]:
    """(u_c, u_m, how) from a prediction or the mfu keyword."""
    from ..core.engine import PerformanceProfile
    from .distributed import DistributedResult
    if run is not None and mfu is not None:
        raise ValidationError("mfu", "and run both give the activity; give one.", owner=owner)
    if isinstance(run, DistributedResult):
        u_c, u_m = run.activity
        return u_c, u_m, f"training step breakdown (u_c {u_c:.3f}, u_m {u_m:.3f})"
    if isinstance(run, PerformanceProfile):
        from ..core.power import activity
        u_c, u_m = activity(run)
        return u_c, u_m, f"pass breakdown (u_c {u_c:.3f}, u_m {u_m:.3f})"
    if run is not None:
        raise ValidationError("run", "must be a DistributedResult or PerformanceProfile. Got "
                              f"{type(run).__name__} instead.", owner=owner)
    if mfu is None:
        raise ValidationError("mfu", "or run is needed: power follows what the accelerators "
                              "do (TDP x time is never assumed).", owner=owner)
    return check.fraction("mfu", mfu, owner), 0.0, f"mfu {float(mfu):.3f}"


@dataclass(frozen=True)
class Footprint:
    """The shared arithmetic of energy, carbon and water (module docstring), SI floats."""

    seconds: float
    accelerators: int
    accelerator_w: float
    host_w: float                 # all hosts together
    it_w: float
    pue: float
    grid_g_kwh: float
    grid_water_l_kwh: float | None
    site_wue_l_kwh: float | None
    embodied_kg: float | None
    embodied_reason: str
    notes: tuple[str, ...]

    @property
    def it_kwh(self) -> float:
        return self.it_w * self.seconds / 3.6e6

    @property
    def facility_kwh(self) -> float:
        return self.it_kwh * self.pue

    @property
    def accelerator_kwh(self) -> float:
        """The accelerators' own energy (no hosts, no facility overhead)."""
        return self.accelerators * self.accelerator_w * self.seconds / 3.6e6

    @property
    def carbon_kg(self) -> float:
        return self.facility_kwh * self.grid_g_kwh / 1000.0

    @property
    def water_l(self) -> float | None:
        if self.site_wue_l_kwh is None and self.grid_water_l_kwh is None:
            return None
        return self.it_kwh * (self.site_wue_l_kwh or 0.0) + \
            self.facility_kwh * (self.grid_water_l_kwh or 0.0)


def footprint(system, seconds: float, *, run=None, mfu=None, datacenter=None, grid=None,
              utilization: float = 1.0, embodied_kg_per_accelerator: float | None = None,
              service_life: float | None = None, month: int | None = None,
              owner: str = OWNER) -> Footprint:
    """Energy, carbon and water terms of ``seconds`` on ``system`` (module docstring)."""
    from ..core.power import node_power, power_params
    system = _system(system, owner)
    seconds = check.positive_float("duration", seconds, owner)
    util = check.fraction("utilization", utilization, owner)
    u_c, u_m, how = _activity(run, mfu, owner)
    pue, wue, g, _ = _datacenter(datacenter, grid, owner)
    chip = system if isinstance(system, HardwareSpec) else system.accelerator
    params = power_params(chip)
    busy = float(params.watts(u_c, u_m))
    acc_w = util * busy + (1 - util) * params.idle_w
    notes = [f"accelerator power from {how}: {busy:.4g} W busy, {params.idle_w:.4g} W idle, "
             f"{util:.0%} busy"]
    if isinstance(system, HardwareSpec):
        n_acc, host = 1, 0.0
        notes.append("a bare chip: no host power counted (give a node or fleet for it)")
    else:
        node = system.node if isinstance(system, Fleet) else system
        nodes = system.count if isinstance(system, Fleet) else 1
        n_acc = nodes * node.accelerators_per_node
        if node.host_power is None and node.system_power is None:
            host = 0.0
            notes.append(f"{node.name} publishes neither host_power nor system_power: hosts "
                         "are left out, so energy is the accelerators' (a lower bound)")
        else:
            np_ = node_power(node, acc_w)
            host = nodes * np_.host_w
            if np_.estimated:
                notes.append(np_.reason)
    intensity = g.carbon_intensity_g_kwh
    if month is not None:
        m = check.positive_int("month", month, owner)
        if m > 12:
            raise ValidationError("month", f"must be 1-12. Got {month!r} instead.", owner=owner)
        if g.monthly_profile is None:
            raise ValidationError("month", f"needs a monthly profile; {g.name} publishes only "
                                  "an annual average.", owner=owner)
        intensity *= g.monthly_profile[m - 1]
    if embodied_kg_per_accelerator is not None:
        kg = check.positive_float("embodied_kg_per_accelerator", embodied_kg_per_accelerator,
                                  owner, allow_zero=True)
        e_reason = "given"
    else:
        kg, e_reason = embodied_carbon_kg(chip)
    life = service_life_years() if service_life is None else \
        check.positive_float("service_life_years", service_life, owner)
    embodied = None if kg is None else \
        n_acc * kg * seconds / (life * 365.25 * SECONDS_PER_DAY)
    if g.water_intensity_l_kwh is None:
        notes.append(f"{g.name} publishes no water intensity: grid water left out")
    return Footprint(seconds=seconds, accelerators=n_acc, accelerator_w=acc_w, host_w=host,
                     it_w=n_acc * acc_w + host, pue=pue, grid_g_kwh=intensity,
                     grid_water_l_kwh=g.water_intensity_l_kwh, site_wue_l_kwh=wue,
                     embodied_kg=embodied, embodied_reason=e_reason, notes=tuple(notes))


def _run_reason(run) -> str | None:
    """Why the predicted run cannot happen (it does not fit), or None."""
    if run is None or getattr(run, "feasible", True):
        return None
    return run.reason


def duration_seconds(duration_days, run, owner: str) -> float:
    """The job's length: given in days, or the training result's predicted time to train."""
    if duration_days is not None:
        if run is not None and getattr(run, "time_to_train", None) is not None:
            raise ValidationError("duration_days", "and the run's token budget both set the "
                                  "duration; give one.", owner=owner)
        return check.positive_float("duration_days", duration_days, owner) * SECONDS_PER_DAY
    t = getattr(run, "time_to_train", None)
    if t is None:
        raise ValidationError("duration_days", "is needed (or a training run with a "
                              "token_budget, whose predicted time to train is used).",
                              owner=owner)
    return float(t.to("s").magnitude)


@dataclass(frozen=True, eq=False, repr=False)
class SustainabilityResult(Result):
    """Energy, carbon and water of one job."""

    system: Any
    region_name: str
    datacenter_name: str
    fp: Footprint
    tokens: float | None = None
    queries: float | None = None
    notes: tuple[str, ...] = field(default=())
    run_reason: str | None = None        # the run's own infeasibility, if it has one

    main_latency = None
    summary_inputs = ("region_name:region",)
    summary_numbers = ("total_energy_kwh:kWh", "carbon_footprint_kg:kgCO2e")

    @property
    def it_energy_kwh(self) -> float:
        return self.fp.it_kwh

    @property
    def total_energy_kwh(self) -> float:
        return self.fp.facility_kwh

    @property
    def pue(self) -> float:
        return self.fp.pue

    @property
    def accelerator_energy_kwh(self) -> float:
        """The accelerators alone: what TDP-based estimates count (at activity, not TDP)."""
        return self.fp.accelerator_kwh

    @property
    def carbon_footprint_kg(self) -> float:
        """Operational carbon (facility energy x grid intensity)."""
        return self.fp.carbon_kg

    @property
    def embodied_carbon_kg(self) -> float | None:
        return self.fp.embodied_kg

    @property
    def total_carbon_kg(self) -> float | None:
        e = self.fp.embodied_kg
        return None if e is None else self.fp.carbon_kg + e

    @property
    def water_usage_liters(self) -> float | None:
        return self.fp.water_l

    @property
    def power(self):
        return Q_(self.fp.it_w, "W").to("kW")

    @property
    def per_day(self) -> dict[str, float]:
        days = self.fp.seconds / SECONDS_PER_DAY
        return {"energy_kwh": self.total_energy_kwh / days,
                "carbon_kg": self.carbon_footprint_kg / days}

    @property
    def per_million_tokens(self) -> dict[str, float] | None:
        if not self.tokens:
            return None
        k = 1e6 / self.tokens
        return {"energy_kwh": self.total_energy_kwh * k, "carbon_g": self.carbon_footprint_kg
                * 1000 * k}

    @property
    def per_1k_queries(self) -> dict[str, float] | None:
        if not self.queries:
            return None
        k = 1e3 / self.queries
        return {"energy_kwh": self.total_energy_kwh * k, "carbon_g": self.carbon_footprint_kg
                * 1000 * k}

    @property
    def feasible(self) -> bool:
        return self.run_reason is None

    @property
    def reason(self) -> str | None:
        return None if self.run_reason is None else f"the run does not fit: {self.run_reason}"

    @property
    def binding(self) -> str:
        return "grid carbon" if self.feasible else "memory capacity"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("energy = power from activity x time (never TDP x time) x PUE",
                "carbon at the grid's annual-average (lifecycle) intensity",
                f"embodied carbon: {self.fp.embodied_reason}")

    def headline(self) -> dict[str, Any]:
        return {"system": getattr(self.system, "name", str(self.system)),
                "region": self.region_name, "datacenter": self.datacenter_name,
                "duration": Q_(self.fp.seconds, "s").to("day"), "power": self.power,
                "accelerator_energy_kwh": self.accelerator_energy_kwh,
                "it_energy_kwh": self.it_energy_kwh, "total_energy_kwh": self.total_energy_kwh,
                "pue": self.pue, "carbon_footprint_kg": self.carbon_footprint_kg,
                "embodied_carbon_kg": self.embodied_carbon_kg,
                "total_carbon_kg": self.total_carbon_kg,
                "water_usage_liters": self.water_usage_liters, "per_day": self.per_day,
                "per_million_tokens": self.per_million_tokens,
                "per_1k_queries": self.per_1k_queries, "feasible": self.feasible,
                "reason": self.reason}

    def explain(self) -> str:
        f = self.fp
        lines = [
            f"{getattr(self.system, 'name', self.system)} for {f.seconds / 86400:.4g} days in "
            f"{self.datacenter_name} on the {self.region_name} grid",
            f"  IT power = {f.accelerators} x {f.accelerator_w:.4g} W + hosts {f.host_w:.4g} W = "
            f"{f.it_w / 1e3:.4g} kW; IT energy {f.it_kwh:,.4g} kWh x PUE {f.pue:g} = "
            f"{f.facility_kwh:,.4g} kWh",
            f"  carbon = {f.facility_kwh:,.4g} kWh x {f.grid_g_kwh:.4g} gCO2e/kWh = "
            f"{f.carbon_kg:,.4g} kgCO2e; embodied "
            + (f"{f.embodied_kg:,.4g} kgCO2e" if f.embodied_kg is not None else
               f"unknown ({f.embodied_reason})"),
            "  water = " + ("unknown" if f.water_l is None else
                            f"IT x WUE {f.site_wue_l_kwh or 0:g} + facility x grid "
                            f"{f.grid_water_l_kwh or 0:g} L/kWh = {f.water_l:,.4g} L"),
        ]
        return "\n".join(lines + [f"  note: {n}" for n in (*f.notes, *self.notes)])


class SustainabilityModel(ForwardModel):
    """Energy, carbon and water of a job on a system (module docstring)."""

    options = (
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("duration_days", None, "job length; default: the run's predicted time to train"),
        Option("datacenter", None, "zoo datacenter or Datacenter (PUE, WUE, grid)"),
        Option("mfu", None, "compute activity as a fraction of peak (or give run)"),
        Option("grid", None, "zoo grid or GridSpec (default: the datacenter's)"),
        Option("run", None, "a DistributedResult or PerformanceProfile: activity (and "
               "duration, with a token budget)"),
        Option("utilization", 1.0, "share of the duration the fleet is busy"),
        Option("embodied_kg_per_accelerator", None, "kgCO2e to make one accelerator "
               "(default: the zoo's, where published)"),
        Option("service_life_years", None, "years the devices serve (default: the zoo's)"),
        Option("tokens", None, "tokens produced (per-million-token figures)"),
        Option("queries", None, "queries served (per-1k-query figures)"),
        Option("month", None, "1-12: use the grid's monthly profile"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """A DGX H100 for 30 days at 40 % MFU in a hyperscale datacenter on Quebec's grid; the
        infeasible one trains GPT-3 175B unsharded on one DGX H100 (it does not fit)."""
        if feasible:
            return dict(fleet="DGX_H100", duration_days=30, datacenter="Hyperscale",
                        grid="Quebec", mfu=0.4)
        from .distributed import DistributedModel
        run = DistributedModel().solve("GPT3_175B", "DGX_H100", batch_size=8, seq_len=2048)
        return dict(fleet="DGX_H100", duration_days=30, datacenter="Hyperscale",
                    grid="Quebec", run=run)

    def solve(self, fleet, duration_days=None, datacenter=None, mfu=None, grid=None,
              run=None, utilization: float = 1.0, embodied_kg_per_accelerator=None,
              service_life_years=None, tokens=None, queries=None,
              month=None) -> SustainabilityResult:
        """Energy, carbon and water of the job.

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.SustainabilityModel().solve("DGX_H100", duration_days=1,
        ...                                         datacenter="Hyperscale", grid="Quebec",
        ...                                         mfu=0.4)
        >>> r.total_energy_kwh == r.it_energy_kwh * r.pue
        True
        """
        seconds = duration_seconds(duration_days, run, OWNER)
        fp = footprint(fleet, seconds, run=run, mfu=mfu, datacenter=datacenter, grid=grid,
                       utilization=utilization,
                       embodied_kg_per_accelerator=embodied_kg_per_accelerator,
                       service_life=service_life_years, month=month)
        _, _, g, dc_name = _datacenter(datacenter, grid, OWNER)
        if tokens is None and run is not None and hasattr(run, "tokens_per_s"):
            tokens = float(run.tokens_per_s) * seconds
        for name, v in (("tokens", tokens), ("queries", queries)):
            if v is not None:
                check.positive_float(name, v, OWNER)
        return SustainabilityResult(system=_system(fleet), region_name=g.name,
                                    datacenter_name=dc_name, fp=fp, tokens=tokens,
                                    queries=queries, run_reason=_run_reason(run))
