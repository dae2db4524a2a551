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

Non-US grids have a monthly profile only, from Electricity Maps' 2023 monthly averages
(data-portal files ``<ZONE>_2023_monthly.csv``, column ``Carbon Intensity gCO₂eq/kWh (LCA)``,
lifecycle) as published in ``gridsingularity/gsy-framework``,
``gsy_framework/resources/carbon_ratio_per_country/``: ``monthly[m] = month[m] / average of the
12``, 3 decimals, the rounding residue on the largest factor, as for the US grids. They have no
hourly profile, so a time of day still raises for them.
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


# Non-US grids, monthly only. zoo key: (Electricity Maps zone, the file's 12 LCA values,
# gCO2e/kWh, Jan..Dec 2023, as published), from
# gsy-framework/gsy_framework/resources/carbon_ratio_per_country/<ZONE>_2023_monthly.csv.
EM_2023_MONTHS = {
    "France": ("FR", [85.56, 103.25, 86.02, 52.23, 35.59, 47.85, 48.35, 47.59, 37.73, 35.75,
                      54.62, 48.29]),
    "Germany": ("DE", [475.20, 517.50, 428.45, 424.27, 349.40, 376.27, 322.18, 390.50, 423.14,
                       407.72, 440.83, 415.69]),
    "Norway": ("NO", [39.24, 31.68, 35.83, 36.02, 29.34, 28.29, 33.40, 33.88, 32.54, 31.91,
                      35.44, 42.02]),
    "Sweden": ("SE", [27.49, 25.09, 29.43, 25.41, 22.71, 20.08, 19.98, 17.03, 16.69, 17.06,
                      26.56, 36.49]),
    "Denmark": ("DK", [186.59, 172.79, 182.40, 140.98, 111.32, 117.71, 96.87, 124.77, 108.15,
                       92.67, 196.09, 214.38]),
    "Finland": ("FI", [125.90, 126.31, 119.88, 83.51, 53.32, 40.49, 37.62, 62.78, 41.07, 53.97,
                       92.28, 103.60]),
    "Ireland": ("IE", [369.23, 341.55, 377.26, 393.80, 455.34, 467.77, 384.03, 386.55, 410.33,
                       404.41, 361.74, 299.31]),
    "UK": ("GB", [188.00, 217.59, 209.81, 210.85, 198.98, 212.72, 185.28, 208.84, 203.22, 181.70,
                  211.91, 174.86]),
    "Netherlands": ("NL", [316.32, 350.50, 266.79, 344.72, 326.82, 269.00, 264.05, 312.73, 306.11,
                           240.96, 255.73, 212.25]),
    "Spain": ("ES", [126.40, 205.78, 156.88, 154.69, 167.77, 208.91, 189.61, 196.81, 214.46,
                     186.54, 133.24, 127.27]),
    "Poland": ("PL", [848.64, 834.76, 796.43, 795.08, 759.04, 777.12, 756.03, 797.55, 822.84,
                      801.95, 849.84, 801.68]),
    "Italy": ("IT", [409.97, 415.28, 381.72, 297.04, 273.15, 314.29, 329.15, 309.12, 333.34,
                     316.97, 289.32, 320.77]),
    "Switzerland": ("CH", [130.01, 143.08, 97.48, 89.34, 69.59, 63.21, 61.89, 60.15, 59.65, 61.47,
                           76.60, 82.48]),
    "Japan": ("JP", [501.92, 491.57, 472.99, 459.81, 454.87, 474.31, 479.92, 480.03, 481.70,
                     463.11, 481.37, 488.12]),
    "South_Korea": ("KR", [462.27, 459.66, 420.24, 435.90, 431.03, 447.23, 453.64, 461.11,
                           436.45, 419.13, 432.32, 452.20]),
    "Taiwan": ("TW", [513.33, 490.89, 471.59, 573.30, 562.43, 570.01, 562.33, 550.64, 550.33,
                      522.67, 514.30, 509.64]),
    "Singapore": ("SG", [491.48, 490.32, 489.37, 488.57, 486.41, 486.31, 486.81, 485.65, 486.29,
                         485.34, 487.01, 487.39]),
    "Brazil": ("BR", [63.37, 56.14, 58.99, 76.08, 83.72, 99.86, 96.00, 93.17, 87.70, 86.13,
                      98.27, 88.19]),
    "Ontario": ("CA-ON", [62.46, 52.08, 51.13, 38.09, 43.50, 97.62, 124.22, 98.83, 94.06, 66.37,
                          86.80, 90.98]),
}
SOURCE_MONTHS.update({key: months for key, (_zone, months) in EM_2023_MONTHS.items()})


def _profiled():
    grids = [Grids.get(k) for k in Grids.list()]
    return [g for g in grids if g.monthly_profile is not None or g.hourly_profile is not None]


# ---- every profile in the zoo is well formed ----------------------------------------------

def test_the_profiled_grids_are_the_sourced_ones():
    assert sorted(g.key for g in _profiled()) == sorted([*UTC_ROWS, *EM_2023_MONTHS])
    # The 8 US grids have both shapes; the non-US ones a monthly shape only.
    assert sorted(g.key for g in _profiled() if g.hourly_profile is not None) == sorted(UTC_ROWS)
    assert sorted(g.key for g in _profiled() if g.monthly_profile is not None) == sorted(
        SOURCE_MONTHS)
    assert sorted(SOURCE_MONTHS) == sorted([*UTC_ROWS, *EM_2023_MONTHS])
    assert not set(UTC_ROWS) & set(EM_2023_MONTHS)
    # Each non-US profile is its own zone's file.
    for key, (zone, _months) in EM_2023_MONTHS.items():
        assert Grids.get(key).region == zone


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
    # (to the calendar weighting of the months: within 0.5 % for CAISO's monthly shape, 0.50 %
    # for France's, whose highest month is the short February: 0.9950).
    assert grid.year_factors().mean() == pytest.approx(1.0, rel=6e-3)


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
        # 3-decimal rounding, at most 0.002 of residue on the largest (Germany's and Spain's;
        # 0.001 at most for the US grids), and the 2-decimal transcription of the US month
        # means above
        assert prof[m] == pytest.approx(months[m] / mean, abs=2.6e-3)


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


@pytest.mark.parametrize("key, low_m, high_m, mean, annual, low_g, high_g", [
    # France: May lowest (35.59 / 56.90 = 0.6255), February highest (103.25 / 56.90 = 1.8145)
    ("France", 5, 2, 56.90, 33, 20.64, 59.88),
    # Germany: July lowest (322.18 / 414.26 = 0.7777), February highest (517.50 / 414.26 = 1.2492)
    ("Germany", 7, 2, 414.26, 341, 265.20, 425.98),
    # Norway: June lowest (28.29 / 34.13 = 0.8288), December highest (42.02 / 34.13 = 1.2311)
    ("Norway", 6, 12, 34.13, 33, 27.35, 40.63),
    # Sweden: September lowest (16.69 / 23.67 = 0.7052), December highest (36.49 / 23.67 =
    # 1.5417)
    ("Sweden", 9, 12, 23.67, 23, 16.22, 35.46),
    # Denmark: October lowest (92.67 / 145.39 = 0.6374), December highest (214.38 / 145.39 =
    # 1.4745)
    ("Denmark", 10, 12, 145.39, 136, 86.68, 200.53),
    # Finland: July lowest (37.62 / 78.39 = 0.4799), February highest (126.31 / 78.39 = 1.6112)
    ("Finland", 7, 2, 78.39, 80, 38.39, 128.90),
    # Ireland: December lowest (299.31 / 387.61 = 0.7722), June highest (467.77 / 387.61 =
    # 1.2068)
    ("Ireland", 12, 6, 387.61, 352, 271.81, 424.80),
    # Great Britain: December lowest (174.86 / 200.31 = 0.8729), February highest (217.59 /
    # 200.31 = 1.0862)
    ("UK", 12, 2, 200.31, 175, 152.76, 190.09),
    # Netherlands: December lowest (212.25 / 288.83 = 0.7349), February highest (350.50 /
    # 288.83 = 1.2135)
    ("Netherlands", 12, 2, 288.83, 251, 184.45, 304.59),
    # Spain: January lowest (126.40 / 172.36 = 0.7333), September highest (214.46 / 172.36 =
    # 1.2442)
    ("Spain", 1, 9, 172.36, 129, 94.60, 160.51),
    # Italy: May lowest (273.15 / 332.51 = 0.8215), February highest (415.28 / 332.51 = 1.2489)
    ("Italy", 5, 2, 332.51, 267, 219.33, 333.46),
    # Poland: July lowest (756.03 / 803.41 = 0.9410), November highest (849.84 / 803.41 =
    # 1.0578)
    ("Poland", 7, 11, 803.41, 581, 546.73, 614.58),
    # Switzerland: September lowest (59.65 / 82.91 = 0.7194), February highest (143.08 / 82.91 =
    # 1.7257)
    ("Switzerland", 9, 2, 82.91, 42, 30.22, 72.48),
    # Japan: May lowest (454.87 / 477.48 = 0.9527), January highest (501.92 / 477.48 = 1.0512)
    ("Japan", 5, 1, 477.48, 464, 442.03, 487.75),
    # South Korea: October lowest (419.13 / 442.60 = 0.9470), January highest (462.27 / 442.60 =
    # 1.0444)
    ("South_Korea", 10, 1, 442.60, 423, 400.57, 441.80),
    # Taiwan: March lowest (471.59 / 532.62 = 0.8854), April highest (573.30 / 532.62 = 1.0764)
    ("Taiwan", 3, 4, 532.62, 525, 464.84, 565.10),
    # Singapore: October lowest (485.34 / 487.58 = 0.9954), January highest (491.48 / 487.58 =
    # 1.0080); gas-fired, nearly flat
    ("Singapore", 10, 1, 487.58, 485, 482.77, 488.88),
    # Brazil: February lowest (56.14 / 82.30 = 0.6821, wet season hydro), June highest (99.86 /
    # 82.30 = 1.2133)
    ("Brazil", 2, 6, 82.30, 91, 62.07, 110.41),
    # Ontario: April lowest (38.09 / 75.51 = 0.5044), July highest (124.22 / 75.51 = 1.6450,
    # gas peakers for summer demand)
    ("Ontario", 4, 7, 75.51, 91, 45.90, 149.70),
])
def test_low_and_high_months_match_the_source_non_us(key, low_m, high_m, mean, annual, low_g,
                                                     high_g):
    """intensity in a month = annual (2024) x (2023 month / mean of the 12), within 1 %; no
    hourly shape, so a time of day raises."""
    g = Grids.get(key)
    months = SOURCE_MONTHS[key]
    assert sum(months) / 12 == pytest.approx(mean, abs=0.01)
    assert months.index(min(months)) == low_m - 1
    assert months.index(max(months)) == high_m - 1
    assert g.carbon_intensity_g_kwh == annual
    prof = g.monthly_profile
    assert prof.index(min(prof)) == low_m - 1
    assert prof.index(max(prof)) == high_m - 1
    for month, stated in ((low_m, low_g), (high_m, high_g)):
        expected = annual * months[month - 1] / mean
        assert stated == pytest.approx(expected, rel=1e-3)
        got = g.intensity_in(month=month).to("gCO2e/kWh").magnitude
        assert got == pytest.approx(annual * prof[month - 1])
        assert got == pytest.approx(stated, rel=0.01)
    assert g.hourly_profile is None
    with pytest.raises(MLSysimError, match="no published hourly profile"):
        g.intensity_in(month=high_m, hour=18)


# ---- no profile, no time of day -----------------------------------------------------------

def test_grid_without_a_profile_raises_rather_than_returning_the_annual_average():
    with pytest.raises(MLSysimError, match="no published hourly profile"):
        Grids.get("Poland").intensity_in(hour=3)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        Grids.get("India").intensity_in(month=1)
    # An hourly-only grid still refuses a month (every zoo grid with an hourly profile now
    # also has a monthly one, so the grid is built here).
    hourly_only = GridSpec(name="g", carbon_intensity="200 gCO2e/kWh", hourly_profile=[1.0] * 24)
    assert hourly_only.intensity_in(hour=18).to("gCO2e/kWh").magnitude == pytest.approx(200)
    with pytest.raises(MLSysimError, match="no published monthly profile"):
        hourly_only.intensity_in(month=7, hour=18)
    # Without month or hour, the annual average.
    assert Grids.get("Poland").intensity_in().to("gCO2e/kWh").magnitude == pytest.approx(581)
