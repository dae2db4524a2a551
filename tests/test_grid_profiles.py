"""Published time profiles of grid carbon intensity (zoo/data/infra/grids.yaml).

Source of every profile here: Electricity Maps' 2022 data (lifecycle, consumption-based) as
processed by N. Bashir (MIT) and published by mcsc-impact-climate:

- hourly: ``Geo-FTADS-Analysis/data/daily_carbon_intensity_data_usa/<ZONE>_avg_std_dist.csv``,
  column ``mean``, one row per hour of day. The rows are UTC hours (CAISO's solar trough falls
  in rows 16-22 = 08-14 PST), so the zoo rotates them to local standard time:
  ``profile[h] = mean[(h + offset) % 24] / average(mean)``.
- monthly (the same 8 grids): ``Geo-TIDE/web/daily_rates/<ZONE>_daily_avg_std.csv``, the 365
  daily means of 2022 averaged by calendar month (``monthly[m] = month_mean[m] / average of
  the 12``), 3 decimals, the rounding residue on the largest factor.

The ``UTC_ROWS`` below are the ``mean`` column as published (gCO2e/kWh, rows 0..23 UTC).
"""

from __future__ import annotations

import math

import pytest

from mlsysim.errors import MLSysimError
from mlsysim.specs.infra import GridSpec
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

# The other seven, the same way (gCO2e/kWh, Jan..Dec, 2 decimals), from
# Geo-TIDE/web/daily_rates/<ZONE>_daily_avg_std.csv, rows 2022-01-01..2022-12-31.
SOURCE_MONTHS = {
    "US_California_CAISO": CAISO_MONTHS,
    "US_Texas_ERCOT": [417.58, 401.99, 334.64, 335.89, 353.38, 411.89, 431.51, 460.85, 454.00,
                       420.41, 394.39, 404.80],
    "US_PJM": [476.41, 446.02, 404.33, 412.92, 400.52, 426.54, 459.28, 465.09, 411.17, 380.03,
               386.11, 435.58],
    "US_MISO": [554.41, 538.29, 494.34, 485.44, 505.06, 538.95, 586.17, 576.46, 520.71, 490.66,
                470.46, 532.95],
    "US_NYISO": [298.81, 289.60, 270.69, 253.08, 274.32, 269.26, 306.88, 316.67, 284.70, 271.01,
                 272.59, 267.87],
    "US_Northwest_BPA": [82.44, 79.12, 84.60, 85.44, 53.37, 37.83, 62.27, 99.97, 139.92, 171.43,
                         118.80, 136.01],
    "US_Oregon_PacifiCorp": [260.30, 262.61, 289.26, 304.94, 264.80, 191.64, 103.24, 108.73,
                             222.87, 305.11, 236.68, 281.95],
    "US_Carolinas_Duke": [334.94, 318.47, 218.29, 270.51, 330.05, 324.81, 354.33, 325.68,
                          306.55, 313.56, 310.21, 334.19],
}


def _profiled():
    grids = [Grids.get(k) for k in Grids.list()]
    return [g for g in grids if g.monthly_profile is not None or g.hourly_profile is not None]


# ---- every profile in the zoo is well formed ----------------------------------------------

def test_the_profiled_grids_are_the_sourced_ones():
    assert sorted(g.key for g in _profiled()) == sorted(UTC_ROWS)
    # Every profiled grid has both shapes.
    assert sorted(g.key for g in _profiled() if g.monthly_profile is not None) == sorted(
        UTC_ROWS)
    assert sorted(SOURCE_MONTHS) == sorted(UTC_ROWS)


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


# ---- each monthly profile is its source's monthly means over their mean -----------------

@pytest.mark.parametrize("key", sorted(SOURCE_MONTHS))
def test_monthly_profile_is_the_source_months_over_their_mean(key):
    months = SOURCE_MONTHS[key]
    mean = sum(months) / 12
    prof = Grids.get(key).monthly_profile
    for m in range(12):
        # 3-decimal rounding, at most 0.001 of residue on the largest, and the 2-decimal
        # transcription of the month means above
        assert prof[m] == pytest.approx(months[m] / mean, abs=1.6e-3)


@pytest.mark.parametrize("key, low_m, high_m, mean, annual, low_g, high_g, m, h, mh_g", [
    # ERCOT: March lowest (334.64 / 401.78 = 0.8329), August highest (460.85 / 401.78 =
    # 1.1470); August 18:00 CST: 377 x 1.1470 x 1.1096 (row 0: 445.83 / 401.81) = 479.8
    ("US_Texas_ERCOT", 3, 8, 401.78, 377, 314.0, 432.4, 8, 18, 479.8),
    # PJM: October lowest (380.03 / 425.33 = 0.8935), January highest (476.41 / 425.33 =
    # 1.1201); January 20:00 EST: 403 x 1.1201 x 1.0323 (row 1: 439.08 / 425.34) = 466.0
    ("US_PJM", 10, 1, 425.33, 403, 360.1, 451.4, 1, 20, 466.0),
    # MISO: November lowest (470.46 / 524.49 = 0.8970), July highest (586.17 / 524.49 =
    # 1.1176); July 18:00 CST: 487 x 1.1176 x 1.0362 (row 0: 543.60 / 524.60) = 564.0
    ("US_MISO", 11, 7, 524.49, 487, 436.8, 544.3, 7, 18, 564.0),
    # NYISO: April lowest (253.08 / 281.29 = 0.8997), August highest (316.67 / 281.29 =
    # 1.1258); August 18:00 EST: 302 x 1.1258 x 1.0573 (row 23: 297.46 / 281.34) = 359.5
    ("US_NYISO", 4, 8, 281.29, 302, 271.7, 340.0, 8, 18, 359.5),
    # BPA: June lowest (37.83 / 95.93 = 0.3943, spring-runoff hydro), October highest
    # (171.43 / 95.93 = 1.7870, low water); October 01:00 PST: 109 x 1.7870 x 1.1585
    # (row 9: 111.30 / 96.08) = 225.7
    ("US_Northwest_BPA", 6, 10, 95.93, 109, 43.0, 194.8, 10, 1, 225.7),
    # PacifiCorp West: July lowest (103.24 / 236.01 = 0.4374), October highest (305.11 /
    # 236.01 = 1.2928; April, 304.94, is within 0.1 % and rounds to the same 1.292);
    # October 01:00 PST: 197 x 1.2928 x 1.2034 (row 9: 283.72 / 235.76) = 306.5
    ("US_Oregon_PacifiCorp", 7, 10, 236.01, 197, 86.2, 254.7, 10, 1, 306.5),
    # Duke: March lowest (218.29 / 311.80 = 0.7001), July highest (354.33 / 311.80 =
    # 1.1364); July 21:00 EST: 315 x 1.1364 x 1.0486 (row 2: 326.99 / 311.84) = 375.4
    ("US_Carolinas_Duke", 3, 7, 311.80, 315, 220.5, 358.0, 7, 21, 375.4),
])
def test_low_and_high_months_match_the_source(key, low_m, high_m, mean, annual, low_g, high_g,
                                              m, h, mh_g):
    """intensity in a month = annual x (source month mean / mean of the 12), within 1 %; and
    month and hour multiply."""
    g = Grids.get(key)
    months = SOURCE_MONTHS[key]
    assert sum(months) / 12 == pytest.approx(mean, abs=0.01)
    assert months.index(min(months)) == low_m - 1
    assert months.index(max(months)) == high_m - 1
    assert g.carbon_intensity_g_kwh == annual
    prof = g.monthly_profile
    assert prof.index(min(prof)) == low_m - 1
    assert max(prof) == prof[high_m - 1]
    for month, stated in ((low_m, low_g), (high_m, high_g)):
        expected = annual * months[month - 1] / mean
        assert stated == pytest.approx(expected, rel=1e-3)
        got = g.intensity_in(month=month).to("gCO2e/kWh").magnitude
        assert got == pytest.approx(annual * prof[month - 1])
        assert got == pytest.approx(stated, rel=0.01)
    # month and hour: annual x monthly[m-1] x hourly[h]
    both = g.intensity_in(month=m, hour=h).to("gCO2e/kWh").magnitude
    assert both == pytest.approx(annual * prof[m - 1] * g.hourly_profile[h], rel=1e-12)
    assert both == pytest.approx(mh_g, rel=0.01)


# ---- no profile, no time of day -----------------------------------------------------------

def test_grid_without_a_profile_raises_rather_than_returning_the_annual_average():
    with pytest.raises(MLSysimError, match="no published hourly profile"):
        Grids.get("Poland").intensity_in(hour=3)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        Grids.get("Germany").intensity_in(month=1)
    # An hourly-only grid still refuses a month (every zoo grid with an hourly profile now
    # also has a monthly one, so the grid is built here).
    hourly_only = GridSpec(name="g", carbon_intensity="200 gCO2e/kWh", hourly_profile=[1.0] * 24)
    assert hourly_only.intensity_in(hour=18).to("gCO2e/kWh").magnitude == pytest.approx(200)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        hourly_only.intensity_in(month=7, hour=18)
    # Without month or hour, the annual average.
    assert Grids.get("Poland").intensity_in().to("gCO2e/kWh").magnitude == pytest.approx(581)
