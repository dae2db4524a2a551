"""Calibration: the package's fit to published microbenchmarks, and a user's own."""

import math

import pytest

import mlsysim
from mlsysim.core.calibration import (
    MICROBENCH_CSV,
    best_of_search_correction,
    calibration,
    canonical_precision,
    fit_gemm,
    load_microbench,
    plateau_levels,
    precision_class,
)
from mlsysim.core.device_calibration import calibrate_device
from mlsysim.errors import DataFileError


def test_memory_efficiency_is_median_copy_over_spec():
    # A100 copies: 1610 GB/s (BabelStream, Azure) and 1490 GB/s (torch copy_): median 1550
    # over the 2039 GB/s spec = 0.760.
    assert calibration().memory["A100"] == pytest.approx(1550 / 2039, rel=1e-6)
    # H100: 2900 and 2903 GB/s over 3350 -> 0.8661.
    assert calibration().memory["H100"] == pytest.approx(2901.5 / 3350, rel=1e-6)


def test_kernel_overhead_is_the_median_launch_row():
    rows = [r["value"] for r in load_microbench() if r["kind"] == "launch"]
    rows.sort()
    mid = len(rows) // 2
    expected = rows[mid] if len(rows) % 2 else (rows[mid - 1] + rows[mid]) / 2
    assert calibration().kernel_overhead_s == pytest.approx(expected * 1e-6)


def test_attention_efficiency_is_the_fused_kernel_row_over_the_16_bit_peak():
    """FlashAttention-2 forward rows (Azure AI benchmarking guide): H100 327.9 TFLOP/s over
    the 989.5 TFLOP/s fp16 peak = 0.33138; A100 179.5 / 312 = 0.57532. A device without a row
    (B200) gets its GEMM eta_max times the median attention/GEMM ratio of the devices with
    rows, flagged as estimated."""
    cal = calibration()
    assert cal.attention["H100"] == pytest.approx(327.9 / 989.5, rel=1e-9)
    assert cal.attention["A100"] == pytest.approx(179.5 / 312.0, rel=1e-9)
    assert "MI300X" in cal.attention and "B200" not in cal.attention
    b200 = cal.efficiency("B200", "bf16")
    assert "attention" in b200.estimated
    assert b200.attention_max == pytest.approx(
        min(b200.gemm_max * cal.defaults["attention_ratio"], b200.gemm_max), rel=1e-12)


def test_calibration_without_launch_or_copy_rows_names_what_is_missing():
    from mlsysim.core.calibration import device_specs, fit_calibration

    rows = load_microbench()
    specs = device_specs(rows)
    with pytest.raises(DataFileError, match="no kernel launch overhead rows"):
        fit_calibration([r for r in rows if r["kind"] != "launch"], *specs)
    with pytest.raises(DataFileError, match="no memory copy rows"):
        fit_calibration([r for r in rows if r["kind"] != "memcpy"], *specs)


def test_gemm_fit_is_physical():
    cal = calibration()
    assert 0 < cal.alpha <= 1          # time never decreases with GEMM size
    assert all(0 < v <= 1.0 for v in cal.gemm_max.values())
    lo, hi = cal.compute_spread
    assert lo < 1 < hi


def _ramp_rows(alpha, peak=1e15, tau=1e-5):
    """GEMM rows from eta = 0.8 (1 - exp(-(F / (peak * tau))^alpha)), F = 2 edge^3."""
    rows = []
    for i, edge in enumerate([256, 512, 1024, 2048, 4096, 8192, 16384]):
        f = 2.0 * edge ** 3
        eta = 0.8 * (1 - math.exp(-((f / (peak * tau)) ** alpha)))
        rows.append((f"r{i}", ("X", "16bit"), f, peak, eta))
    return rows


@pytest.mark.parametrize("alpha", [1 / 3, 1 / 2, 5 / 6, 1.0])
def test_fit_recovers_every_ramp_exponent_of_its_grid(alpha):
    """The alpha grid is 1/3, 1/2, 2/3, 5/6, 1 (2/3 is the test above): rows generated exactly
    from one of them, at tau = 10 us (10^(-8 + 0.03 x 100), a grid point), are fitted back with
    zero error, so the fit returns that alpha, that tau and eta_max = 0.8. The shallowest
    exponent, 1/3, is the one the three-shape H100 measurements (MEASURED below) pick."""
    t, a, gmax, resid = fit_gemm(_ramp_rows(alpha))
    assert a == pytest.approx(alpha, rel=1e-12)
    assert t == pytest.approx(1e-5, rel=1e-9)
    assert gmax[("X", "16bit")] == pytest.approx(0.8, rel=1e-9)
    assert all(r == pytest.approx(1.0, rel=1e-9) for r in resid.values())


def test_fit_recovers_a_known_ramp():
    """Rows generated from eta = 0.8 (1 - exp(-(F / (peak * 10 us))^(2/3))) are fitted back."""
    peak, tau, alpha = 1e15, 1e-5, 2 / 3
    rows = []
    for i, edge in enumerate([256, 512, 1024, 2048, 4096, 8192, 16384]):
        f = 2.0 * edge ** 3
        eta = 0.8 * (1 - math.exp(-((f / (peak * tau)) ** alpha)))
        rows.append((f"r{i}", ("X", "16bit"), f, peak, eta))
    t, a, gmax, resid = fit_gemm(rows)
    assert a == pytest.approx(alpha)
    assert t == pytest.approx(tau, rel=0.08)  # the tau grid has 7 % steps
    assert gmax[("X", "16bit")] == pytest.approx(0.8, rel=0.05)


def test_precision_names():
    assert canonical_precision("FP8 (e4m3)") == "fp8"
    assert canonical_precision("BF16") == "bf16"
    assert precision_class("int8") == "8bit" and precision_class("bf16") == "16bit"


def test_every_shipped_row_parses_with_a_source():
    text = MICROBENCH_CSV.with_name("SOURCES.md").read_text()
    for r in load_microbench():
        assert r["source_key"] and r["source_key"] in text, r["id"]


def test_malformed_microbench_names_file_and_line(tmp_path):
    bad = tmp_path / "mb.csv"
    bad.write_text("id,hardware,kind,precision,m,n,k,message_bytes,num_devices,metric,value,"
                   "unit,source_key,notes\nX,A100,gemm,bf16,1,1,1,,1,gemm_tflops,abc,TFLOP/s,s,\n")
    with pytest.raises(DataFileError, match="mb.csv, line 2"):
        load_microbench(bad)


MEASURED = """kind,precision,m,n,k,value,unit
gemm,bf16,1024,1024,1024,300,TFLOP/s
gemm,bf16,4096,4096,4096,700,TFLOP/s
gemm,bf16,8192,8192,8192,760,TFLOP/s
memcpy,,,,,3000,GB/s
launch,,,,,2.5,us
"""


def test_user_calibration_round_trip(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text(MEASURED)
    result = calibrate_device(csv, mlsysim.Hardware.H100)
    eff = result.hardware.efficiency
    assert eff.memory == pytest.approx(3000 / 3350, abs=1e-4)   # copy / spec bandwidth
    assert eff.kernel_overhead.to("us").magnitude == pytest.approx(2.5)
    assert all(0.9 < r < 1.1 for r in result.residuals.values())
    assert "attention" in result.kept
    # The report names what was fitted and what was kept, in that order, as printed.
    assert result.report().splitlines()[1] == (
        "  fitted: gemm, memory, kernel overhead; kept from the package: attention")
    out = tmp_path / "my_h100.yaml"
    out.write_text(result.yaml())
    mine = mlsysim.load_hardware(out)
    p = mlsysim.Engine.solve("Llama3_8B", mine)
    assert p.efficiency.memory == pytest.approx(eff.memory)
    assert "user measurements" in p.explain()
    # More achieved bandwidth than the package's H100 fit (0.866) -> faster decode.
    assert p.latency_s < mlsysim.Engine.solve("Llama3_8B", "H100").latency_s


def test_fewer_than_three_gemm_shapes_fit_eta_max_only(tmp_path):
    """Two shapes cannot pin the ramp: a user's 4096^3 and 8192^3 rows keep the package's
    tau and alpha and fit only the asymptote, the geometric mean of measured / ramp over them."""
    import math as m

    from mlsysim.core.calibration import calibration
    csv = tmp_path / "runs.csv"
    csv.write_text("kind,precision,m,n,k,value,unit\ngemm,bf16,4096,4096,4096,700,TFLOP/s\n"
                   "gemm,bf16,8192,8192,8192,760,TFLOP/s\n")
    result = calibrate_device(csv, mlsysim.Hardware.H100)
    eff, pkg = result.hardware.efficiency, calibration()
    assert eff.gemm_tau.to("s").magnitude == pytest.approx(pkg.tau_s, rel=1e-3)
    assert eff.gemm_alpha == pytest.approx(pkg.alpha, abs=1e-4)
    assert "gemm (eta_max only: < 3 shapes)" in result.fitted
    peak = 989.5e12

    def ramp(edge):
        return 1 - m.exp(-((2.0 * edge ** 3 / peak / pkg.tau_s) ** pkg.alpha))
    want = m.sqrt(700e12 / peak / ramp(4096) * 760e12 / peak / ramp(8192))
    assert eff.gemm_max == pytest.approx(want, abs=1e-4)


def test_user_attention_row_is_its_throughput_over_the_16_bit_peak(tmp_path):
    """A measured fused-attention forward of 410 TFLOP/s on an H100 (989.5 TFLOP/s dense
    fp16/bf16) is an attention efficiency of 410 / 989.5 = 0.4143, fitted rather than kept."""
    csv = tmp_path / "runs.csv"
    csv.write_text(MEASURED + "attention,bf16,,,,410,TFLOP/s\n")
    result = calibrate_device(csv, mlsysim.Hardware.H100)
    assert result.hardware.efficiency.attention_max == pytest.approx(410 / 989.5, abs=1e-4)
    assert "attention" in result.fitted and "attention" not in result.kept
    # Every kind has a row, so nothing is kept, and the report says so in a word.
    assert result.report().splitlines()[1] == (
        "  fitted: gemm, memory, attention, kernel overhead; kept from the package: nothing")


@pytest.mark.parametrize("text,match", [
    ("kind,value,unit\nflops,1,TFLOP/s\n", "line 2: kind"),
    ("kind,value,unit\nmemcpy,1,TFLOP/s\n", "line 2: a memcpy row is in GB/s"),
    ("kind,value,unit\nlaunch,-3,us\n", "line 2: value must be a positive"),
    ("kind,value\n", "line 1"),
])
def test_user_calibration_errors(tmp_path, text, match):
    csv = tmp_path / "runs.csv"
    csv.write_text(text)
    with pytest.raises(DataFileError, match=match):
        calibrate_device(csv, mlsysim.Hardware.H100)


def test_user_rows_in_a_precision_the_device_lacks_are_an_error(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("kind,precision,m,n,k,value,unit\ngemm,fp8,4096,4096,4096,500,TFLOP/s\n")
    with pytest.raises(DataFileError, match="runs.csv:2: precision not published"):
        calibrate_device(csv, mlsysim.Hardware.A100)


XLA_TABLE = MICROBENCH_CSV.with_name("xla_matmul_sm90_bf16.csv")


def _xla_rows():
    import csv
    with XLA_TABLE.open() as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    return [{k: int(v) for k, v in r.items()} for r in csv.DictReader(lines)]


def test_gemm_fit_predicts_the_held_out_xla_h100_table():
    """OpenXLA's 375-shape sm_90 bf16 matmul table (b in 1, 2, 4; m, n, k in 256..4096;
    mlsysim/validation/microbench/xla_matmul_sm90_bf16.csv) is not in the fit. Each shape as
    one GEMM kernel through the cost model on an H100 at bf16 (F = 2 b m n k, bytes = 2 b
    (mk + kn + mn), graph-replay launch floor: the table times kernels, not host dispatch):
    median |error| 6.6 % over all shapes and 5.7 % over those measured above 10 us; the
    max(compute, memory) roof runs 7 % fast where the two terms are within 2x of each other
    (a smooth roof (tc^3 + tm^3)^(1/3) would fit those best, a shift too small to carry)."""
    import numpy as np

    from mlsysim.core.costmodel import evaluate, op_times, prepare
    from mlsysim.core.engine import efficiency_for
    from mlsysim.workloads.operators import OperatorBuilder, OpKind

    hw = mlsysim.Hardware.get("H100")
    eff = efficiency_for(hw, "bf16", cuda_graphs=True)
    err, ratio, slow = [], [], []
    for r in _xla_rows():
        b, m, n, k = r["b"], r["m"], r["n"], r["k"]
        flops = 2.0 * b * m * n * k
        measured = flops / r["flops_per_s"]
        t = OperatorBuilder()
        t.add("gemm", OpKind.GEMM, flops=flops, act_bytes=2.0 * b * (m * k + k * n + m * n))
        p = prepare(t.build(weight_total_bytes=0.0), hw, "bf16", eff)
        predicted = float(evaluate(p, 1).latency)
        tc, tm, _ = op_times(p, 1)
        err.append(predicted / measured - 1)
        ratio.append(float(tc[0] / tm[0]))
        slow.append(measured > 10e-6)
    err, ratio, slow = np.array(err), np.array(ratio), np.array(slow)
    assert len(err) == 375 and slow.sum() == 236
    assert np.median(np.abs(err)) == pytest.approx(0.066, abs=0.01)
    assert np.median(np.abs(err[slow])) == pytest.approx(0.057, abs=0.01)
    cross = slow & (ratio > 0.5) & (ratio < 2)
    assert cross.sum() >= 100
    assert np.median(err[cross]) == pytest.approx(-0.07, abs=0.02)


def test_best_of_search_rows_alone_are_divided_by_the_median_bias_of_mixed_groups():
    """Groups X and Z hold a best-of-search (MAMF) row beside fixed-shape rows, at 1.2 and 1.0
    times their fit: b = median(1.2, 1.0) = 1.1. Group Y has a MAMF row only: eta_max 0.77 /
    1.1 = 0.70 and that row's residual 1.0 x 1.1 = 1.1; X and Z are left alone."""
    rows = [dict(id=i, source_key=s) for i, s in
            (("x1", "mlengineering"), ("x2", "azure_ai_bench"), ("y1", "mlengineering_old"),
             ("z1", "mlengineering"), ("z2", "zzc_torchperf_h100"))]
    g = {"x": ("X", "16bit"), "y": ("Y", "16bit"), "z": ("Z", "8bit")}
    gemm = [(r["id"], g[r["id"][0]], 1e12, 1e15, 0.5) for r in rows]
    gmax = {g["x"]: 0.8, g["y"]: 0.77, g["z"]: 0.6}
    res = {"x1": 1.2, "x2": 0.9, "y1": 1.0, "z1": 1.0, "z2": 1.0}
    new_max, new_res, bias = best_of_search_correction(rows, gemm, gmax, res)
    assert bias == pytest.approx(1.1)
    assert new_max == pytest.approx({g["x"]: 0.8, g["y"]: 0.7, g["z"]: 0.6})
    assert new_res == pytest.approx({**res, "y1": 1.1})
    # No mixed group: b = 1 and nothing moves.
    alone = [row for row in rows if row["id"] == "y1"]
    assert best_of_search_correction(alone, gemm[2:3], {g["y"]: 0.77}, {"y1": 1.0}) == \
        ({g["y"]: 0.77}, {"y1": 1.0}, 1.0)


def test_package_best_of_search_bias_and_b200_fp8():
    """The shipped MAMF rows in mixed groups sit, over their group's measured plateau (fixed
    large compute-bound GEMMs), at A100 1.203, A100 PCIe 1.232, H100 1.035 (bf16) and 1.060
    (fp8), H200 1.108 and GB200 1.264: median (1.108 + 1.203) / 2 = 1.156. B200 fp8's only row
    (MIC-011, 3,432.5 TFLOP/s of 4,500 = 0.7628 at 15360 x 4096 x 3072) then gives eta_max =
    0.7628 / shape / 1.156 = 0.661 (against the joint fits instead, GB200's 1024^3 and 2048^3
    rows lift its fit to its MAMF row and the bias was 1.070: B200 at 0.713)."""
    c = calibration()
    assert c.best_of_search_bias == pytest.approx(1.156, abs=0.002)
    f = 2 * 15360 * 4096 * 3072
    shape = 1 - math.exp(-((f / (4500e12 * c.tau_s)) ** c.alpha))
    assert c.gemm_max[("B200", "8bit")] == pytest.approx(3432.5 / 4500 / shape
                                                         / c.best_of_search_bias, rel=1e-9)
    assert c.gemm_residuals["MIC-011"] == pytest.approx(c.best_of_search_bias, rel=1e-9)
    assert c.gemm_max[("B200", "8bit")] == pytest.approx(0.661, abs=0.002)


def test_plateau_is_the_large_compute_bound_fixed_shape_rows():
    """Device D: 1e15 flop/s, 1e12 B/s (ridge 1,000 flop/B), tau 1e-6 s, alpha 1. Row a
    (8192^3 at 16 bit: F/peak = 1.1e-3 s, shape 1.0, intensity 8192 / 3 = 2,731 flop/B) at
    eta 0.6 is on the plateau; b (64^3: F/peak = 5.2e-10 s, shape 5e-4) is on the ramp; c
    (1,048,576 x 64 x 64: shape 1.0 but intensity 2 m n k / (2 (m k + k n + m n)) = 32 flop/B,
    below the ridge) is memory-bound; d is a MAMF best. Only a counts: plateau 0.6."""
    rows = [dict(id="a", source_key="azure", m=8192, n=8192, k=8192),
            dict(id="b", source_key="azure", m=64, n=64, k=64),
            dict(id="c", source_key="azure", m=1048576, n=64, k=64),
            dict(id="d", source_key="mlengineering", m=8192, n=8192, k=8192)]
    grp = ("D", "16bit")
    gemm = [(r["id"], grp, 2 * r["m"] * r["n"] * r["k"], 1e15, eta)
            for r, eta in zip(rows, (0.6, 0.1, 0.2, 0.9))]
    assert plateau_levels(rows, gemm, {"D": 1e12}, 1e-6, 1.0) == \
        pytest.approx({grp: 0.6}, rel=1e-6)
    # The MAMF row's ratio to the plateau (0.9 / 0.6 = 1.5) is the bias, not its residual
    # against the joint fit (0.9 / 0.8 = 1.125 here).
    _, _, bias = best_of_search_correction(rows, gemm, {grp: 0.8},
                                           {"a": 0.75, "b": 1.0, "c": 1.0, "d": 1.125},
                                           {grp: 0.6})
    assert bias == pytest.approx(1.5)
