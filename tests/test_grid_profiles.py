"""Published time profiles of grid carbon intensity (zoo/data/infra/grids.yaml).

Source of every profile here: Electricity Maps' 2022 data (lifecycle, consumption-based) as
processed by N. Bashir (MIT) and published by mcsc-impact-climate:

- hourly: ``Geo-FTADS-Analysis/data/daily_carbon_intensity_data_usa/<ZONE>_avg_std_dist.csv``,
  column ``mean``, one row per hour of day. The rows are UTC hours (CAISO's solar trough falls
  in rows 16-22 = 08-14 PST), so the zoo rotates them to local standard time:
  ``profile[h] = mean[(h + offset) % 24] / average(mean)``.
- monthly (CAISO only): ``Geo-TIDE/web/daily_rates/US-CAL-CISO_daily_avg_std.csv``, the 365
  daily means of 2022 averaged by calendar month.

The ``UTC_ROWS`` below are the ``mean`` column as published (gCO2e/kWh, rows 0..23 UTC).
"""

from __future__ import annotations

import math

import pytest

from mlsysim.errors import MLSysimError
from mlsysim.zoo import Grids

# zoo key: (zone, hours UTC is ahead of local standard time, the file's 24 'mean' rows)
UTC_ROWS = {
    "US_California_CAISO": ("US-CAL-CISO", 8, [
        251.52, 286.93, 308.8, 313.37, 314.9, 317.81, 317.45, 314.58, 312.22, 310.05, 309.47,
        310.06, 309.39, 302.07, 275.68, 235.87, 202.71, 189.89, 186.87, 185.83, 186.19, 188.6,
        195.61, 215.72]),
    "US_Texas_ERCOT": ("US-TEX-ERCO", 6, [
        445.83, 445.39, 432.91, 417.52, 402.62, 389.26, 380.17, 376.15, 377.49, 382.16, 390.66,
        403.13, 411.4, 402.88, 388.21, 385.46, 389.3, 394.38, 398.05, 399.18, 398.43, 398.76,
        406.26, 427.72]),
    "US_PJM": ("US-MIDA-PJM", 5, [
        437.5, 439.08, 437.51, 435.47, 423.5, 416.49, 412.26, 410.03, 410.29, 413.08, 417.72,
        421.17, 424.36, 426.26, 427.48, 428.57, 427.88, 426.8, 425.98, 425.35, 425.9, 428.05,
        431.97, 435.49]),
    "US_MISO": ("US-MIDW-MISO", 6, [
        543.6, 542.52, 536.27, 528.73, 519.82, 510.13, 501.69, 497.72, 496.59, 499.01, 504.91,
        511.63, 519.47, 527.83, 533.49, 536.41, 537.26, 536.23, 534.21, 532.32, 531.34, 532.76,
        535.95, 540.6]),
    "US_NYISO": ("US-NY-NYIS", 5, [
        295.65, 291.89, 285.16, 279.79, 273.72, 269.8, 267.16, 265.84, 266.21, 268.38, 272.59,
        277.59, 282.13, 283.94, 283.25, 282.66, 282.86, 282.73, 282.94, 284.05, 287.92, 292.5,
        296.05, 297.46]),
    "US_Northwest_BPA": ("US-NW-BPAT", 8, [
        82.25, 79.39, 80.37, 83.53, 88.42, 95.67, 102.28, 106.46, 109.4, 111.3, 111.05, 108.6,
        101.98, 92.61, 90.52, 93.29, 94.86, 95.75, 96.97, 97.63, 98.37, 98.06, 96.48, 90.56]),
    "US_Oregon_PacifiCorp": ("US-NW-PACW", 8, [
        201.79, 205.89, 211.73, 220.38, 231.16, 247.44, 263.63, 276.12, 281.5, 283.72, 280.28,
        276.49, 260.55, 241.35, 235.24, 232.24, 224.11, 217.06, 215.58, 212.98, 211.86, 210.84,
        209.87, 206.39]),
    "US_Carolinas_Duke": ("US-CAR-DUK", 5, [
        325.2, 326.94, 326.99, 320.7, 313.33, 307.88, 303.67, 300.97, 301.22, 306.41, 311.91,
        312.73, 310.96, 308.27, 306.59, 304.48, 303.69, 304.25, 305.1, 306.72, 311.2, 317.84,
        322.78, 324.38]),
}

# CAISO 2022, the daily means averaged by calendar month (gCO2e/kWh, Jan..Dec).
CAISO_MONTHS = [269.33, 238.88, 215.93, 234.71, 192.98, 214.65, 249.39, 291.70, 301.86,
                318.99, 314.22, 325.99]


def _profiled():
    grids = [Grids.get(k) for k in Grids.list()]
    return [g for g in grids if g.monthly_profile is not None or g.hourly_profile is not None]


# ---- every profile in the zoo is well formed ----------------------------------------------

def test_the_profiled_grids_are_the_sourced_ones():
    assert sorted(g.key for g in _profiled()) == sorted(UTC_ROWS)
    assert [g.key for g in _profiled() if g.monthly_profile is not None] == [
        "US_California_CAISO"]


@pytest.mark.parametrize("grid", _profiled(), ids=lambda g: g.key)
def test_every_profile_has_the_right_length_positive_factors_and_averages_to_one(grid):
    for profile, n in ((grid.monthly_profile, 12), (grid.hourly_profile, 24)):
        if profile is None:
            continue
        assert len(profile) == n
        assert all(math.isfinite(f) and f > 0 for f in profile)
        # The zoo rounds to 3 decimals and puts the rounding residue on the largest factor,
        # so the mean is 1 to float precision (the loader only enforces 2 %).
        assert sum(profile) / n == pytest.approx(1.0, abs=1e-9)
    assert grid.varies
    # year_factors is month x hour over 8,760 hours; both shapes average to 1, so does it
    # (to the calendar weighting of the months: within 0.5 % for CAISO's monthly shape).
    assert grid.year_factors().mean() == pytest.approx(1.0, rel=5e-3)


# ---- each hourly profile is its source's table, rotated to local standard time ----------

@pytest.mark.parametrize("key", sorted(UTC_ROWS))
def test_hourly_profile_is_the_published_table_over_its_mean(key):
    zone, offset, rows = UTC_ROWS[key]
    grid = Grids.get(key)
    assert grid.region == zone
    mean = sum(rows) / 24
    for h in range(24):
        # 3-decimal rounding, plus at most 0.002 of residue on the largest factor
        assert grid.hourly_profile[h] == pytest.approx(rows[(h + offset) % 24] / mean,
                                                       abs=2.6e-3)


def test_caiso_duck_curve_midday_trough_and_evening_peak():
    """CAISO 2022, rows in UTC, local = UTC-8. The trough is row 19 (11:00 PST):
    185.83 / 264.23 (the 24 rows' mean) = 0.7033; the peak is row 5 (21:00 PST):
    317.81 / 264.23 = 1.2028. On the 2024 annual 229 gCO2e/kWh: 11:00 -> 229 x 0.7033 =
    161.1, 21:00 -> 229 x 1.2028 = 275.4 gCO2e/kWh."""
    g = Grids.get("CAISO")
    prof = g.hourly_profile
    assert prof.index(min(prof)) == 11
    assert prof.index(max(prof)) == 21
    assert g.intensity_in(hour=11).to("gCO2e/kWh").magnitude == pytest.approx(161.1, rel=0.01)
    assert g.intensity_in(hour=21).to("gCO2e/kWh").magnitude == pytest.approx(275.4, rel=0.01)
    # The solar hours (09-14 local) all sit below 0.75 of the average.
    assert all(prof[h] < 0.75 for h in range(9, 15))


def test_caiso_monthly_profile_spring_low_and_autumn_winter_high():
    """CAISO 2022 monthly means (Jan..Dec, gCO2e/kWh): 269.3 238.9 215.9 234.7 193.0 214.7
    249.4 291.7 301.9 319.0 314.2 326.0; their mean is 264.05. May (hydro and solar) is
    lowest: 192.98 / 264.05 = 0.7308; December highest: 325.99 / 264.05 = 1.2346. On 229:
    May -> 167.4, December -> 282.7 gCO2e/kWh. May at 11:00 PST: 229 x 0.7308 x 0.7033 =
    117.7 gCO2e/kWh."""
    g = Grids.get("US_California_CAISO")
    mean = sum(CAISO_MONTHS) / 12
    for m in range(12):
        assert g.monthly_profile[m] == pytest.approx(CAISO_MONTHS[m] / mean, abs=1.5e-3)
    prof = g.monthly_profile
    assert prof.index(min(prof)) == 4       # May
    assert prof.index(max(prof)) == 11      # December
    assert g.intensity_in(month=5).to("gCO2e/kWh").magnitude == pytest.approx(167.4, rel=0.01)
    assert g.intensity_in(month=12).to("gCO2e/kWh").magnitude == pytest.approx(282.7,
                                                                               rel=0.01)
    assert g.intensity_in(month=5, hour=11).to("gCO2e/kWh").magnitude == pytest.approx(
        117.7, rel=0.01)


def test_ercot_evening_peak_and_night_low():
    """ERCOT 2022, local = UTC-6. Peak row 0 (18:00 CST): 445.83 / 401.81 = 1.1096; low row 7
    (01:00 CST): 376.15 / 401.81 = 0.9361. On the 2024 annual 377: 18:00 -> 418.3,
    01:00 -> 352.9 gCO2e/kWh."""
    g = Grids.get("ERCOT")
    prof = g.hourly_profile
    assert prof.index(max(prof)) == 18
    assert prof.index(min(prof)) == 1
    assert g.intensity_in(hour=18).to("gCO2e/kWh").magnitude == pytest.approx(418.3, rel=0.01)
    assert g.intensity_in(hour=1).to("gCO2e/kWh").magnitude == pytest.approx(352.9, rel=0.01)


@pytest.mark.parametrize("key, low_h, low_row, high_h, high_row, mean, annual", [
    # PJM, UTC-5: low 02:00 EST = row 7 (410.03), high 20:00 EST = row 1 (439.08)
    ("US_PJM", 2, 7, 20, 1, 425.34, 403),
    # MISO, UTC-6: low 02:00 CST = row 8 (496.59), high 18:00 CST = row 0 (543.60)
    ("US_MISO", 2, 8, 18, 0, 524.60, 487),
    # NYISO, UTC-5: low 02:00 EST = row 7 (265.84), high 18:00 EST = row 23 (297.46)
    ("US_NYISO", 2, 7, 18, 23, 281.34, 302),
    # BPA, UTC-8: low 17:00 PST = row 1 (79.39), high 01:00 PST = row 9 (111.30)
    ("US_Northwest_BPA", 17, 1, 1, 9, 96.08, 109),
    # PacifiCorp West, UTC-8: low 16:00 PST = row 0 (201.79), high 01:00 PST = row 9 (283.72)
    ("US_Oregon_PacifiCorp", 16, 0, 1, 9, 235.76, 197),
    # Duke, UTC-5: low 02:00 EST = row 7 (300.97), high 21:00 EST = row 2 (326.99)
    ("US_Carolinas_Duke", 2, 7, 21, 2, 311.84, 315),
])
def test_low_and_high_hours_match_the_source(key, low_h, low_row, high_h, high_row, mean,
                                             annual):
    """intensity at an hour = annual x (source row / source mean), within 1 %."""
    g = Grids.get(key)
    rows = UTC_ROWS[key][2]
    assert sum(rows) / 24 == pytest.approx(mean, abs=0.01)
    prof = g.hourly_profile
    assert prof.index(min(prof)) == low_h
    assert prof.index(max(prof)) == high_h
    assert g.carbon_intensity_g_kwh == annual
    for h, row in ((low_h, low_row), (high_h, high_row)):
        expected = annual * rows[row] / mean
        assert g.intensity_in(hour=h).to("gCO2e/kWh").magnitude == pytest.approx(expected,
                                                                                 rel=0.01)


# ---- no profile, no time of day -----------------------------------------------------------

def test_grid_without_a_profile_raises_rather_than_returning_the_annual_average():
    with pytest.raises(MLSysimError, match="no published hourly profile"):
        Grids.get("Poland").intensity_in(hour=3)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        Grids.get("Germany").intensity_in(month=1)
    # An hourly-only grid still refuses a month.
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        Grids.get("ERCOT").intensity_in(month=7, hour=18)
    # Without month or hour, the annual average.
    assert Grids.get("Poland").intensity_in().to("gCO2e/kWh").magnitude == pytest.approx(581)
