"""Energy, carbon, water and money (SustainabilityModel, EconomicsModel, PlacementOptimizer),
checked by hand."""

import math

import pytest

import mlsysim
from mlsysim import EconomicsModel, PlacementOptimizer, SustainabilityModel
from mlsysim.core.power import device_power, power_params
from mlsysim.errors import UnknownNameError, ValidationError
from mlsysim.specs.infra import Datacenter, GridSpec

S = SustainabilityModel()
GRID = GridSpec(name="Test grid", carbon_intensity="400 gCO2e/kWh", water_intensity="2 L/kWh",
                electricity_price="0.10 USD/kWh")
DC = Datacenter(name="Test DC", grid=GRID, pue=1.25, wue="0.5 L/kWh")


def test_energy_carbon_and_water_by_hand():
    # One H100 chip (no host) at MFU 0.4 for 10 days: P = device_power(H100, 0.4, 0);
    # IT energy = P x 240 h; facility = x 1.25; carbon = facility x 0.4 kg/kWh; water = IT x
    # 0.5 + facility x 2 L/kWh.
    r = S.solve("H100", duration_days=10, datacenter=DC, mfu=0.4)
    p = device_power("H100", 0.4, 0.0)
    it = p * 240 / 1000
    assert r.it_energy_kwh == pytest.approx(it, rel=1e-12)
    assert r.total_energy_kwh == pytest.approx(it * 1.25, rel=1e-12)
    assert r.carbon_footprint_kg == pytest.approx(it * 1.25 * 0.4, rel=1e-12)
    assert r.water_usage_liters == pytest.approx(it * 0.5 + it * 1.25 * 2, rel=1e-12)
    # Never TDP x time: at MFU 0.4 the chip draws less than its 700 W.
    assert p < power_params("H100").max_w


def test_twice_the_intensity_twice_the_carbon_and_the_idle_floor():
    dirty = GridSpec(name="Dirty", carbon_intensity="800 gCO2e/kWh")
    a = S.solve("H100", duration_days=1, datacenter=DC, mfu=0.4)
    b = S.solve("H100", duration_days=1, datacenter=DC, grid=dirty, mfu=0.4)
    assert b.carbon_footprint_kg == pytest.approx(2 * a.carbon_footprint_kg, rel=1e-12)
    idle = S.solve("H100", duration_days=1, datacenter=DC, mfu=0.4, utilization=0.0)
    assert idle.it_energy_kwh == pytest.approx(power_params("H100").idle_w * 24 / 1000)


def test_nodes_add_their_hosts_and_embodied_share_scales_with_the_job():
    # DGX H100: 8 x P_acc + host_power (4.6 kW: 10.2 kW system - 8 x 700 W, the zoo's entry).
    r = S.solve("DGX_H100", duration_days=1, datacenter=DC, mfu=0.4)
    host = float(mlsysim.Systems.Nodes.DGX_H100.host_power.to("W").magnitude)
    assert r.fp.it_w == pytest.approx(8 * device_power("H100", 0.4, 0.0) + host, rel=1e-12)
    # A100's embodied carbon (Chien et al. 2023: 318 kgCO2e per GPU, an estimate) spread over
    # the 6-year service life: a 73.05-day job on 8 GPUs carries 8 x 318 x 73.05/2191.5.
    a = S.solve("DGX_A100", duration_days=73.05, datacenter=DC, mfu=0.4)
    assert a.embodied_carbon_kg == pytest.approx(8 * 318 * 73.05 / (6 * 365.25), rel=1e-9)
    half = S.solve("DGX_A100", duration_days=73.05, datacenter=DC, mfu=0.4,
                   service_life_years=12)
    assert half.embodied_carbon_kg == pytest.approx(a.embodied_carbon_kg / 2, rel=1e-12)
    assert r.embodied_carbon_kg is None and "H100" in r.fp.embodied_reason


def test_training_run_energy_comes_through_its_predicted_time():
    fleet = mlsysim.Fleet(name="4 x DGX H100", node="DGX_H100", count=4)
    t = mlsysim.DistributedModel().solve("Llama3_8B", fleet, batch_size=128, seq_len=4096,
                                         zero_stage=1, token_budget=1e11)
    r = S.solve(fleet, run=t, datacenter=DC)
    assert r.fp.seconds == pytest.approx(t.time_to_train.to("s").magnitude, rel=1e-12)
    assert r.tokens == pytest.approx(1e11, rel=1e-9)
    assert r.per_million_tokens["energy_kwh"] == pytest.approx(r.total_energy_kwh / 1e5)
    with pytest.raises(ValidationError, match="duration_days"):
        S.solve(fleet, run=t, duration_days=3, datacenter=DC)


def test_costs_by_hand():
    # Chip H100 at the Test grid's 0.10 USD/kWh, bought at 30,000 USD, amortized over 5 years,
    # rented at 2 USD/h, for 365.25 days (one year): capex share 30,000 / 5 = 6,000 USD.
    e = EconomicsModel().solve("H100", duration_days=365.25, datacenter=DC, mfu=0.4,
                               purchase_price=30000, cloud_price=2.0, amortization_years=5)
    assert e.capex_usd == pytest.approx(6000.0)
    assert e.opex_energy_usd == pytest.approx(e.total_energy_kwh * 0.10, rel=1e-12)
    assert e.tco_usd == pytest.approx(6000.0 + e.opex_energy_usd, rel=1e-12)
    assert e.cloud_usd == pytest.approx(2.0 * 365.25 * 24)
    twice = EconomicsModel().solve("H100", duration_days=730.5, datacenter=DC, mfu=0.4,
                                   purchase_price=30000, cloud_price=2.0, amortization_years=5)
    assert twice.tco_usd == pytest.approx(2 * e.tco_usd, rel=1e-12)  # cost scales with time


def test_unpriced_is_reported_never_invented():
    e = EconomicsModel().solve("MI300X", duration_days=30, datacenter=DC, mfu=0.4)
    assert e.capex_usd is None and e.cloud_usd is None and not e.feasible
    assert "MI300X" in e.reason and "purchase_price" in e.reason
    no_price = GridSpec(name="No price", carbon_intensity="100 gCO2e/kWh")
    e = EconomicsModel().solve("H100", duration_days=30, datacenter=DC, grid=no_price,
                               mfu=0.4, purchase_price=30000)
    assert e.opex_energy_usd is None and "kwh_price" in e.price_reason


def test_placement_ranks_by_carbon_and_cost():
    r = PlacementOptimizer().solve("DGX_H100", duration_days=30, mfu=0.4,
                                   regions=["US_Avg", "CAISO", "ERCOT"], objective="carbon")
    carbons = [c["carbon_kg"] for c in r.candidates]
    assert carbons == sorted(carbons) and r.best_region == r.candidates[0]["region"]
    # A high enough carbon price makes the cleanest grid the cheapest.
    taxed = PlacementOptimizer().solve("DGX_H100", duration_days=30, mfu=0.4,
                                       regions=["US_Avg", "CAISO", "BPA"],
                                       carbon_tax_per_ton=10_000)
    assert taxed.best_region == min(taxed.candidates, key=lambda c: c["carbon_kg"])["region"]
    with pytest.raises(UnknownNameError) as info:
        PlacementOptimizer().solve("DGX_H100", duration_days=30, mfu=0.4, regions=["Quebek"])
    assert "Quebec" in info.value.suggestions


# Time-shifting: a grid dirty for hours 0-11 (x1.5) and clean for 12-23 (x0.5), mean 1; and
# one dirty January-June (x1.2) and clean July-December (x0.8).
DAILY = GridSpec(name="Daily swing", carbon_intensity="400 gCO2e/kWh",
                 electricity_price="0.10 USD/kWh", hourly_profile=[1.5] * 12 + [0.5] * 12)
SEASONAL = GridSpec(name="Seasonal swing", carbon_intensity="400 gCO2e/kWh",
                    electricity_price="0.10 USD/kWh", monthly_profile=[1.2] * 6 + [0.8] * 6)


@pytest.mark.parametrize("grid, hours, share, start", [
    (DAILY, 12, 0.5, "Jan 01 12:00"),        # the whole clean half-day
    (DAILY, 6, 0.5, "Jan 01 12:00"),         # the first clean start (ties keep the earliest)
    (DAILY, 24, 1.0, "Jan 01 00:00"),        # a whole day averages out
    (DAILY, 30, 27 / 30, "Jan 01 12:00"),    # 12 x 0.5 + 12 x 1.5 + 6 x 0.5 = 27
    (DAILY, 12.5, 6.75 / 12.5, "Jan 01 12:00"),  # 12 x 0.5 + 0.5 h of the next, x 1.5
    (SEASONAL, 31 * 24, 0.8, "Jul 01 00:00"),
    (SEASONAL, 365 * 24, (181 * 1.2 + 184 * 0.8) / 365, "Jan 01 00:00"),  # days per half
])
def test_time_shift_starts_at_the_cleanest_hour(grid, hours, share, start):
    """carbon = flat carbon x (mean factor over the job from its best start hour)."""
    kw = dict(duration_days=hours / 24, mfu=0.4, regions=[grid, GRID], objective="carbon")
    flat = PlacementOptimizer().solve("DGX_H100", **kw)
    shifted = PlacementOptimizer().solve("DGX_H100", time_shift=True, **kw)
    c = {x["region"]: x for x in shifted.candidates}
    f = {x["region"]: x for x in flat.candidates}
    assert c[grid.name]["carbon_kg"] == pytest.approx(f[grid.name]["carbon_kg"] * share,
                                                      rel=1e-9)
    assert c[grid.name]["start"] == start and f[grid.name]["start"] is None
    assert c[grid.name]["carbon_kg_flat"] == pytest.approx(f[grid.name]["carbon_kg"])
    # No profile: the annual average either way.
    assert c["Test grid"]["carbon_kg"] == f["Test grid"]["carbon_kg"]
    assert c["Test grid"]["start"] is None


def test_time_shift_moves_cost_through_the_carbon_tax_and_is_checked():
    """$50/t on a 12-hour job: cost = energy x $0.10 + 50 x tCO2e at the shifted carbon."""
    r = PlacementOptimizer().solve("DGX_H100", duration_days=0.5, mfu=0.4, regions=[DAILY],
                                   carbon_tax_per_ton=50, time_shift=True)
    c = r.best
    assert c["cost_usd"] == pytest.approx(c["energy_kwh"] * 0.10 + 50 * c["carbon_kg"] / 1e3,
                                          rel=1e-12)
    assert "from Jan 01 12:00" in r.explain() and r.time_shift
    with pytest.raises(ValidationError) as info:
        PlacementOptimizer().solve("DGX_H100", duration_days=1, mfu=0.4, time_shift="yes")
    assert info.value.field == "time_shift"


@pytest.mark.parametrize("kw, field", [
    ({"duration_days": -1}, "duration_days"), ({"duration_days": math.nan}, "duration_days"),
    ({"mfu": 1.5}, "mfu"), ({"utilization": -0.1}, "utilization"), ({"mfu": None}, "mfu"),
    ({"embodied_kg_per_accelerator": -5}, "embodied_kg_per_accelerator"),
    ({"grid": GridSpec, "datacenter": None}, "grid"), ({"month": 13}, "month"),
])
def test_bad_input_names_the_field(kw, field):
    args = dict(duration_days=1, datacenter=DC, mfu=0.4)
    args.update(kw)
    if args.get("grid") is GridSpec:
        args["grid"] = 42
    with pytest.raises(ValidationError) as info:
        S.solve("H100", **args)
    assert info.value.field == field


def test_bad_infra_specs_are_refused():
    with pytest.raises(mlsysim.errors.SpecError, match="pue"):
        Datacenter(name="x", grid=GRID, pue=0.9)
    with pytest.raises(mlsysim.errors.SpecError, match="wue"):
        Datacenter(name="x", grid=GRID, pue=1.2, wue="-1 L/kWh")
    with pytest.raises(ValidationError, match="kwh_price"):
        EconomicsModel().solve("H100", duration_days=1, datacenter=DC, mfu=0.4,
                               kwh_price=math.nan)


def test_nodes_without_published_host_power_count_accelerators_and_say_so():
    node = mlsysim.Systems.Nodes.HGX_H100
    assert node.host_power is None and node.system_power is None
    r = S.solve(node, duration_days=1, datacenter=DC, mfu=0.4)
    assert r.fp.host_w == 0.0 and any("lower bound" in n for n in r.fp.notes)
    assert r.accelerator_energy_kwh == pytest.approx(8 * device_power("H100", 0.4, 0.0) * 24
                                                     / 1000, rel=1e-12)


def test_a_run_of_the_wrong_type_is_refused_by_name():
    with pytest.raises(ValidationError) as info:
        S.solve("DGX_H100", duration_days=1, grid="Quebec", run=42)
    assert str(info.value) == ("The 'run' parameter of SustainabilityModel must be a "
                               "DistributedResult or PerformanceProfile. Got int instead.")


@pytest.mark.parametrize("kw, message", [
    ({"run": "profile", "mfu": 0.4}, "The 'mfu' parameter of SustainabilityModel and run both "
     "give the activity; give one."),
    ({"datacenter": None}, "The 'grid' parameter of SustainabilityModel is needed: name the "
     "region's grid (e.g. 'Quebec', 'US_Avg'), or a datacenter that has one."),
    ({"duration_days": 0}, "The 'duration_days' parameter of SustainabilityModel must be a "
     "finite positive number. Got 0 instead."),
])
def test_sustainability_refusals_word_for_word(kw, message):
    """Both a run and an mfu, no grid from anywhere, a zero-day job: each refused by name."""
    args = dict(duration_days=1, datacenter=DC, mfu=0.4)
    args.update(kw)
    if args.get("run") == "profile":
        args["run"] = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=128)
    with pytest.raises(ValidationError) as info:
        S.solve("H100", **args)
    assert str(info.value) == message


SEASONAL = GridSpec(name="Seasonal", carbon_intensity="400 gCO2e/kWh",
                    monthly_profile=[1.2] * 6 + [0.8] * 6)


def test_month_scales_the_intensity_by_the_grids_monthly_profile():
    """July is the 7th month: 400 g/kWh x profile[6] = 0.8 gives 320 g/kWh, so the carbon per
    facility kWh is 0.32 kg in July against the annual 0.40 kg."""
    dc = Datacenter(name="Seasonal DC", grid=SEASONAL, pue=1.25)
    july = S.solve("H100", duration_days=1, datacenter=dc, mfu=0.4, month=7)
    year = S.solve("H100", duration_days=1, datacenter=dc, mfu=0.4)
    assert july.carbon_footprint_kg / july.total_energy_kwh == pytest.approx(0.32, rel=1e-12)
    assert year.carbon_footprint_kg / year.total_energy_kwh == pytest.approx(0.40, rel=1e-12)


def test_month_on_an_annual_only_grid_is_refused_word_for_word():
    with pytest.raises(ValidationError) as info:
        S.solve("H100", duration_days=1, datacenter=DC, mfu=0.4, month=3)
    assert info.value.field == "month"
    assert str(info.value) == ("The 'month' parameter of SustainabilityModel needs a monthly "
                               "profile; Test grid publishes only an annual average.")


def test_a_negative_token_count_is_refused_under_its_own_name():
    with pytest.raises(ValidationError) as info:
        S.solve("H100", duration_days=1, datacenter=DC, mfu=0.4, tokens=-1)
    assert info.value.field == "tokens"
    assert str(info.value) == ("The 'tokens' parameter of SustainabilityModel must be a finite "
                               "positive number. Got -1 instead.")
