"""The infrastructure zoo: grids, datacenters, cloud and purchase prices, and their units.

Hand checks quote the cited figure (see zoo/data/infra/*.yaml for each source).
"""

from __future__ import annotations

import math

import pytest

import mlsysim
from mlsysim import Q_
from mlsysim.errors import DimensionError, MLSysimError, SpecError, UnknownNameError
from mlsysim.specs.infra import (
    CloudPrice,
    Datacenter,
    GridSpec,
    NoPublishedPriceError,
    PurchasePrice,
)
from mlsysim.units import DimensionalityError
from mlsysim.zoo import CloudPrices, Datacenters, Grids, Infra, PurchasePrices

REGISTRIES = [Grids, Datacenters, CloudPrices, PurchasePrices]


# ---- units: currency and CO2e are their own dimensions -----------------------------------

def test_carbon_intensity_and_hourly_price_parse_and_convert():
    assert Q_("450 gCO2e/kWh").to("kgCO2e/MWh").magnitude == pytest.approx(450)
    assert Q_("2.5 USD/h").to("USD/s").magnitude == pytest.approx(2.5 / 3600)
    assert Q_("1 tCO2e").to("kgCO2e").magnitude == pytest.approx(1000)
    assert Q_("3 usd") == Q_("3 dollar") == Q_("3 USD")


def test_energy_times_intensity_is_mass_of_co2e():
    # 100 kWh x 450 g/kWh = 45,000 g = 45 kg
    assert (Q_("100 kWh") * Q_("450 gCO2e/kWh")).to("kgCO2e").magnitude == pytest.approx(45)


def test_co2e_never_adds_to_plain_mass():
    with pytest.raises(DimensionalityError):
        Q_("1 gCO2e") + Q_("1 g")
    with pytest.raises(DimensionalityError):
        Q_("1 kgCO2e").to("kg")


def test_money_never_adds_to_energy_or_time():
    with pytest.raises(DimensionalityError):
        Q_("1 USD") + Q_("1 kWh")
    with pytest.raises(DimensionalityError):
        Q_("1 USD/h").to("1/h")


# ---- every entry loads, with provenance ------------------------------------------------

@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r._kind)
def test_every_entry_loads_with_source_and_as_of(registry):
    assert len(registry) > 0
    for spec in registry:
        assert spec.key and spec.source.strip() and spec.source != "user-defined"
        assert spec.as_of and spec.as_of != "n/a"
        if spec.estimate:
            assert spec.notes


def test_grids_cover_the_regions_users_name():
    assert len(Grids) >= 20
    for name in ["US_Avg", "Quebec", "Norway", "Poland", "CAISO", "ERCOT", "PJM", "MISO",
                 "NYISO", "Washington", "France", "Germany", "Sweden", "Ireland", "UK",
                 "Japan", "Singapore", "India", "China", "Australia", "Brazil", "World"]:
        assert name in Grids, name
    for grid in Grids:
        assert grid.basis == "lifecycle"          # one basis for every zoo entry
        assert 0 < grid.carbon_intensity_g_kwh < 1000
        if grid.electricity_price is not None:
            assert grid.price_sector == "industrial"


def test_incumbent_names_resolve():
    assert Infra.Grids.US_Avg.carbon_intensity_g_kwh == 409
    assert Infra.Grids.Quebec is Grids.get("CA-QC")
    assert isinstance(Infra.Grids.Norway.carbon_intensity_g_kwh, float)
    assert mlsysim.Infra is Infra
    assert mlsysim.GridSpec is GridSpec and mlsysim.Datacenter is Datacenter


# ---- hand checks against the cited figures ------------------------------------------------

def test_grid_values_equal_the_cited_figures():
    # Electricity Maps 2024 yearly averages (co2.js yearly_2024.json): CA-QC 35, PL 581,
    # US-TEX-ERCO 377; Ember 2023 world 481.
    assert Grids.Quebec.carbon_intensity_g_kwh == 35
    assert Grids.Poland.carbon_intensity_g_kwh == 581
    assert Grids.ERCOT.carbon_intensity_g_kwh == 377
    assert Grids.World.carbon_intensity_g_kwh == 481 and Grids.World.year == 2023
    # WRI 2020: US 0.83 gal/kWh = 3.14 L/kWh; world 1.27 gal/kWh = 4.81 L/kWh
    assert Grids.US_Avg.water_intensity_l_kwh == pytest.approx(0.83 * 3.785, abs=0.01)
    assert Grids.World.water_intensity_l_kwh == pytest.approx(1.27 * 3.785, abs=0.01)
    # EIA Electric Power Annual 2023: Texas industrial 6.60 cents/kWh
    assert Grids.ERCOT.electricity_price.to("USD/kWh").magnitude == pytest.approx(0.066)
    assert Grids.Singapore.water_intensity is None       # WRI has no entry: left out


def test_emissions_are_energy_times_intensity():
    # 1 MWh on Poland's grid: 1000 kWh x 581 g/kWh = 581 kg
    assert Grids.Poland.emissions("1 MWh").magnitude == pytest.approx(581)
    assert str(Grids.Poland.emissions(Q_("1 MWh")).units) == "kgCO2e"


def test_datacenter_pue_override_takes_precedence():
    dc = Datacenter(name="x", grid="Quebec", pue_override=1.2)
    assert dc.effective_pue == 1.2 and dc.pue == 1.2
    assert dc.grid is Grids.Quebec and dc.source == "user-defined"
    site = Datacenter(name="y", pue=1.3, pue_override=1.1)
    assert site.site_pue == 1.3 and site.pue == 1.1
    assert Datacenter(name="z", pue=1.4).pue == 1.4


def test_datacenter_values_equal_the_cited_figures():
    assert Datacenters.Hyperscale.pue == 1.10           # Google 2023 fleet average
    assert Datacenters.Enterprise.pue == 1.58           # Uptime Institute 2023 average
    assert Datacenters.Meta_Prineville.wue_l_kwh == pytest.approx(0.22)
    assert Datacenters.Meta_Prineville.grid is Grids.US_Oregon_PacifiCorp
    assert Datacenters.Meta_Lulea.estimate              # "in the region of 1.07"
    for dc in Datacenters:
        assert dc.pue >= 1


def test_cloud_price_is_instance_price_over_accelerators():
    p5 = CloudPrices.AWS_p5_48xlarge
    # p5.48xlarge on demand 98.32 USD/h / 8 H100 = 12.29 USD per GPU-hour
    assert p5.usd_per_accelerator_hour == pytest.approx(98.32 / 8)
    assert p5.committed_price_per_accelerator_hour.to("USD/h").magnitude == pytest.approx(4.916)
    assert Infra.cloud_price("H100") is p5
    # lowest on-demand per-accelerator price: the single-GPU g6.2xlarge beats g6.48xlarge / 8
    assert Infra.cloud_price("L4").instance == "g6.2xlarge"
    assert Infra.cloud_price("h200", provider="aws").as_of == "2026-08"


def test_no_published_price_is_an_error_not_a_default():
    with pytest.raises(NoPublishedPriceError, match="no published cloud price for MI300X.*H100"):
        Infra.cloud_price("MI300X")
    with pytest.raises(NoPublishedPriceError, match="Azure.*providers with one: AWS"):
        Infra.cloud_price("H100", provider="Azure")
    with pytest.raises(NoPublishedPriceError, match="no published purchase price for A100"):
        Infra.purchase_price("A100")
    with pytest.raises(UnknownNameError):
        Infra.cloud_price("H1000")
    assert issubclass(NoPublishedPriceError, MLSysimError)


def test_purchase_price_range_is_an_estimate_with_its_middle():
    b200 = Infra.purchase_price("B200")
    assert b200.estimate and b200.usd == pytest.approx(35_000)      # (30,000 + 40,000) / 2
    assert Infra.purchase_price("RTX4090").usd == 1599 and not PurchasePrices.RTX4090_List.estimate


# ---- bad input ------------------------------------------------------------------------

def test_pue_below_one_is_rejected_naming_the_field():
    with pytest.raises(SpecError, match="pue: must be greater than or equal to 1"):
        Datacenter(name="x", pue=0.9)
    with pytest.raises(SpecError, match="pue_override"):
        Datacenter(name="x", pue_override=0.5)
    with pytest.raises(SpecError, match="no default PUE"):
        Datacenter(name="x", grid="Quebec")


def test_negative_wue_is_rejected():
    with pytest.raises(SpecError, match="wue"):
        Datacenter(name="x", pue=1.2, wue="-1 L/kWh")


@pytest.mark.parametrize("field,value", [
    ("carbon_intensity", "nan gCO2e/kWh"),
    ("carbon_intensity", "-5 gCO2e/kWh"),
    ("water_intensity", "-1 L/kWh"),
    ("electricity_price", "nan USD/kWh"),
])
def test_nan_or_negative_grid_values_are_rejected(field, value):
    data = {"name": "g", "carbon_intensity": "100 gCO2e/kWh", field: value}
    with pytest.raises(SpecError, match=field):
        GridSpec(**data)


def test_nan_price_is_rejected():
    with pytest.raises(SpecError, match="instance_price"):
        CloudPrice(name="p", accelerator="H100", provider="AWS", instance="i", region="r",
                   accelerators_per_instance=8, instance_price="nan USD/h")
    with pytest.raises(SpecError, match="price"):
        PurchasePrice(name="p", accelerator="H100", kind="list", price="nan USD")


def test_wrong_units_are_dimension_errors():
    with pytest.raises(DimensionError, match="carbon_intensity"):
        GridSpec(name="g", carbon_intensity="400 g/kWh")       # plain grams, not CO2e
    with pytest.raises(DimensionError, match="price_per_accelerator_hour"):
        CloudPrice(name="p", accelerator="H100", provider="x", instance="i", region="r",
                   price_per_accelerator_hour="2 USD")


def test_unknown_grid_name_suggests_the_close_one():
    with pytest.raises(UnknownNameError, match="Quebec") as err:
        Datacenter(name="x", grid="Quebek", pue=1.2)
    assert "Quebec" in err.value.suggestions


def test_profiles_are_twelve_or_twentyfour_positive_factors_averaging_one():
    flat = [1.0] * 12
    grid = GridSpec(name="g", carbon_intensity="200 gCO2e/kWh", monthly_profile=flat)
    assert grid.intensity_in(month=7).magnitude == pytest.approx(200)
    with pytest.raises(SpecError, match="12 factors"):
        GridSpec(name="g", carbon_intensity="200 gCO2e/kWh", monthly_profile=[1.0] * 11)
    with pytest.raises(SpecError, match=r"hourly_profile\[3\]"):
        GridSpec(name="g", carbon_intensity="200 gCO2e/kWh",
                 hourly_profile=[1.0] * 3 + [-1.0] + [1.0] * 20)
    with pytest.raises(SpecError, match="average"):
        GridSpec(name="g", carbon_intensity="200 gCO2e/kWh", monthly_profile=[2.0] * 12)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        Grids.India.intensity_in(month=1)


def test_cloud_price_halves_must_agree():
    with pytest.raises(SpecError, match="disagrees"):
        CloudPrice(name="p", accelerator="H100", provider="x", instance="i", region="r",
                   accelerators_per_instance=8, instance_price="80 USD/h",
                   price_per_accelerator_hour="12 USD/h")
    ok = CloudPrice(name="p", accelerator="h100", provider="x", instance="i", region="r",
                    accelerators_per_instance=8, instance_price="80 USD/h")
    assert ok.accelerator == "H100" and math.isclose(ok.usd_per_accelerator_hour, 10)


def test_purchase_range_checks():
    with pytest.raises(SpecError, match="estimate"):
        PurchasePrice(name="p", accelerator="H100", kind="reported",
                      price_low="1 USD", price_high="2 USD")
    with pytest.raises(SpecError, match="exceeds"):
        PurchasePrice(name="p", accelerator="H100", kind="reported", estimate=True, notes="n",
                      price_low="3 USD", price_high="2 USD")


def test_specs_are_content_hashed_and_copy_validated():
    a = Datacenter(name="x", grid="Quebec", pue_override=1.2)
    b = Datacenter(name="x", grid="Quebec", pue_override=1.2)
    assert a == b and hash(a) == hash(b)
    assert a.model_copy(update={"pue_override": 1.3}).pue == 1.3
    with pytest.raises(SpecError):
        a.model_copy(update={"pue_override": 0.8})
