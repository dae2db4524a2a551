"""Accelerator power from activity (mlsysim.core.power) against the published rows in
validation/microbench/power.csv: hand checks, the fit's honesty, invariants, bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlsysim
from mlsysim.core import power as pw
from mlsysim.errors import DataFileError, MLSysimError, UnknownNameError, ValidationError
from mlsysim.specs.system import Node
from mlsysim.zoo import Nodes

ROOT = Path(__file__).resolve().parents[1]


# Read inside the tests, not at collection: a broken fit then fails the tests that use it
# instead of the module's import.
def _cal():
    return pw.power_calibration()


def _rows():
    return pw.load_power_rows()


# Every zoo device with a TDP (the model's ceiling).
DEVICES = [h.key for h in mlsysim.Hardware if h.tdp is not None]
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# Stated tolerance of the fit: the largest error over fitted rows stays within 12 % (it is
# 9.2 %: the A100 torch.add rows at 255 W and 300 W share one memory coefficient).
FIT_TOLERANCE = 0.12


def _row(row_id):
    return next(r for r in _rows() if r.id == row_id)


# --- data --------------------------------------------------------------------------------------

def test_every_row_names_a_zoo_device_with_a_tdp_and_a_documented_source():
    sources = (ROOT / "mlsysim/validation/microbench/POWER_SOURCES.md").read_text()
    assert len(_rows()) >= 30
    for r in _rows():
        assert mlsysim.Hardware.get(r.hardware).tdp is not None, r.id
        assert f"**{r.source_key}**" in sources, r.id
        assert r.condition, r.id


def test_fitted_and_idle_rows_carry_their_activity_and_derived_numbers_say_so():
    for r in _rows():
        if r.role in ("fit", "idle"):
            assert r.compute_util is not None and r.memory_util is not None, r.id
        if r.power_low_w is not None and r.power_high_w is not None and \
                r.power_w == (r.power_low_w + r.power_high_w) / 2 and r.role != "idle":
            assert "midpoint" in r.derived, r.id  # a midpoint of a published range is derived


def test_a_malformed_row_names_the_file_and_line(tmp_path):
    text = (ROOT / "mlsysim/validation/microbench/power.csv").read_text().splitlines()
    bad = tmp_path / "power.csv"
    bad.write_text("\n".join([text[0], text[1].replace(",60.67,", ",-3,")]) + "\n")
    with pytest.raises(DataFileError, match=r"power.csv, line 2: power_w"):
        pw.load_power_rows(bad)
    bad.write_text("\n".join([text[0], text[10].replace(",0.850,", ",1.7,")]) + "\n")
    with pytest.raises(DataFileError, match="compute_util must be between 0 and 1"):
        pw.load_power_rows(bad)
    bad.write_text("id,hardware\nX,A100\n")
    with pytest.raises(DataFileError, match="missing columns"):
        pw.load_power_rows(bad)


# --- hand checks -------------------------------------------------------------------------------

def test_zero_activity_draws_the_measured_idle_power():
    # A100 80GB SXM idles at 61, 62, 59 W (PWR-001): mean 60.67 W.
    assert pw.device_power("A100", 0.0, 0.0) == pytest.approx(60.67)
    assert pw.device_power("A100_40GB", 0, 0) == pytest.approx(66.5)          # PWR-002
    # Two B200 idle rows (137 W, 194 W): the median.
    assert pw.device_power("B200", 0, 0) == pytest.approx((137 + 194) / 2)


def test_full_activity_is_capped_at_tdp():
    for key in ("A100", "H100", "H200", "L4", "MI300X"):
        tdp = mlsysim.Hardware.get(key).tdp.to("W").magnitude
        assert pw.device_power(key, 1.0, 1.0) == pytest.approx(tdp)
        assert pw.device_power(key, 1.0, 0.0) == pytest.approx(tdp)


def test_the_equation_by_hand():
    # A100_40GB: idle 66.5 W, TDP 400 W, a and b fitted; P = idle + (TDP - idle) min(1, a uc + b um)
    p = pw.power_params("A100_40GB")
    expect = 66.5 + (400 - 66.5) * min(1.0, p.compute_coeff * 0.2 + p.memory_coeff * 0.3)
    assert pw.device_power("A100_40GB", 0.2, 0.3) == pytest.approx(expect)
    assert p.estimated == ()


def test_compute_bound_gemm_rows_near_tdp_are_reproduced_within_the_spread():
    # torch.mm 8192^3 at 83-85 % of peak draws 393-400 W of 400 W (PWR-010..013); SGEMM on
    # H100 at 77 % of fp32 peak 580-650 W (PWR-014).
    lo, hi = _cal().spread
    for rid in ("PWR-010", "PWR-011", "PWR-012", "PWR-013", "PWR-014"):
        r = _cal().residual(rid)
        assert lo <= r.measured_w / r.predicted_w <= hi
        assert abs(r.error) <= FIT_TOLERANCE
    for rid in ("PWR-010", "PWR-011", "PWR-012", "PWR-013"):
        assert _cal().residual(rid).predicted_w >= 0.97 * 400


def test_memory_bound_rows_draw_well_below_tdp():
    # torch.add at 87-89 % of spec bandwidth: 255-300 W of 400 W (PWR-020..023); decode on
    # H200 137-300 W of 700 W (PWR-026).
    for rid in ("PWR-020", "PWR-021", "PWR-022", "PWR-023"):
        r = _cal().residual(rid)
        assert r.predicted_w < 0.75 * 400
        assert abs(r.error) <= FIT_TOLERANCE
    h200 = _cal().residual("PWR-026")
    assert 137 <= h200.predicted_w <= 300


# --- the fit is honest -------------------------------------------------------------------------

def test_every_fitted_row_is_within_the_stated_spread():
    fitted = [r for r in _cal().residuals if r.role == "fit"]
    assert len(fitted) >= 10
    lo, hi = _cal().spread
    assert lo == pytest.approx(min(r.ratio for r in fitted))
    assert hi == pytest.approx(max(r.ratio for r in fitted))
    assert _cal().max_error <= FIT_TOLERANCE
    for r in fitted:
        assert abs(r.error) <= _cal().max_error + 1e-12


def test_residuals_recomputed_from_the_published_numbers():
    for r in _cal().residuals:
        d = _cal().devices[r.hardware]
        f = min(1.0, d.compute_coeff * r.compute_util + d.memory_coeff * r.memory_util)
        assert r.predicted_w == pytest.approx(d.idle_w + (d.tdp_w - d.idle_w) * f)
        assert r.measured_w == _row(r.id).power_w


def test_context_rows_are_reported_but_do_not_move_the_fit():
    rows = [r for r in _rows() if r.role != "context"]
    assert pw.fit_power(rows).devices == _cal().devices
    # Zero-operand GEMMs draw far less than the model's random-operand fit: reported, not fitted.
    assert _cal().residual("PWR-015").error > 0.3


def test_transfer_error_is_reported_for_rows_other_devices_can_predict():
    # Memory-bound power does not transfer well across devices: H200 decode with the other
    # devices' memory coefficient is predicted at about twice its measured power.
    h200 = _cal().residual("PWR-026")
    assert h200.transfer_error is not None and h200.transfer_error > 0.5
    lo, hi = _cal().transfer_spread
    assert lo <= 1.0 <= hi


def test_the_fit_recovers_known_coefficients():
    # Rows generated from idle 50 W, TDP 400 W, a = 1.3, b = 0.5 on a made-up device.
    def p(uc, um):
        return 50 + 350 * min(1.0, 1.3 * uc + 0.5 * um)
    pts = [(0.2, 0.0), (0.5, 0.0), (0.0, 0.4), (0.0, 0.9), (0.3, 0.3)]
    rows = [pw.PowerRow("I", "DEV", "idle", "idle", "", 0.0, 0.0, 50.0, None, None, "", "", "",
                        "")]
    rows += [pw.PowerRow(f"F{i}", "DEV", "fit", "x", "", uc, um, p(uc, um), None, None, "", "",
                         "", "") for i, (uc, um) in enumerate(pts)]
    cal = pw.fit_power(rows, tdp_of=lambda key: 400.0)
    d = cal.devices["DEV"]
    assert d.compute_coeff == pytest.approx(1.3, abs=1e-3)
    assert d.memory_coeff == pytest.approx(0.5, abs=1e-3)
    assert cal.max_error < 1e-3


def test_a_device_measured_busy_but_never_idle_takes_the_median_idle_fraction():
    """DEV idles at 50 of its 400 W (1/8); DEV2 (TDP 800 W) has only a busy row, so its idle
    is estimated at 800 / 8 = 100 W, and its compute coefficient is fitted above that: at
    u_c = 0.5 it draws 600 W = 100 + 700 x min(1, a x 0.5), a = 1/0.7 = 1.4286."""
    rows = [pw.PowerRow("I", "DEV", "idle", "idle", "", 0.0, 0.0, 50.0, None, None, "", "", "",
                        ""),
            pw.PowerRow("F", "DEV", "fit", "x", "", 0.5, 0.0, 225.0, None, None, "", "", "", ""),
            pw.PowerRow("G", "DEV", "fit", "x", "", 0.0, 0.5, 137.5, None, None, "", "", "", ""),
            pw.PowerRow("H", "DEV2", "fit", "x", "", 0.5, 0.0, 600.0, None, None, "", "", "",
                        "")]
    cal = pw.fit_power(rows, tdp_of=lambda key: {"DEV": 400.0, "DEV2": 800.0}[key])
    d2 = cal.devices["DEV2"]
    assert d2.idle_w == pytest.approx(100.0, rel=1e-12) and "idle" in d2.estimated
    assert d2.compute_coeff == pytest.approx(1 / 0.7, abs=1e-4)      # kept to 4 decimals


def test_devices_without_rows_use_cross_device_medians_flagged_estimated():
    l4 = pw.power_params("L4")
    assert set(l4.estimated) == {"idle", "compute", "memory"}
    assert l4.idle_w == pytest.approx(_cal().idle_fraction_median * 72.0)
    assert l4.compute_coeff == _cal().compute_coeff_median
    assert pw.power_params("H100").estimated == ("memory",)      # has an SGEMM row, no stream row
    assert pw.power_params("H200").estimated == ("compute",)     # has a decode row


def test_the_doc_table_is_current():
    assert pw.power_report() in (ROOT / "docs" / "power.md").read_text()


# --- invariants --------------------------------------------------------------------------------

@SETTINGS
@given(st.sampled_from(DEVICES), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1),
       st.floats(0, 1))
def test_power_stays_within_idle_and_tdp_and_is_monotone(device, uc, um, duc, dum):
    p = pw.power_params(device)
    w = pw.device_power(device, uc, um)
    assert p.idle_w - 1e-9 <= w <= p.max_w + 1e-9
    assert pw.device_power(device, min(1.0, uc + duc), um) >= w - 1e-9
    assert pw.device_power(device, uc, min(1.0, um + dum)) >= w - 1e-9


DECODE_DEVICES = ["A100", "A100_40GB", "H100", "H200", "V100", "MI300X", "B200", "L4", "T4"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DECODE_DEVICES), st.sampled_from(["Llama3_8B", "Mistral_7B"]),
       st.integers(1, 64), st.sampled_from([512, 1024, 2048]))
def test_decode_draws_less_than_compute_bound_prefill_on_the_same_device(device, model, batch,
                                                                         ctx):
    decode = mlsysim.Engine.solve(model, device, batch_size=batch, seq_len=ctx)
    prefill = mlsysim.Engine.solve(model, device, batch_size=4, seq_len=2048, phase="prefill")
    assert decode.bottleneck == "Memory" and prefill.bottleneck == "Compute"
    assert pw.profile_power(decode) < pw.profile_power(prefill)


def test_activity_of_a_profile_reads_its_operator_breakdown():
    decode = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=1, seq_len=1024)
    uc, um = pw.activity(decode)
    assert 0 <= uc < 0.01 and 0.5 < um <= 1.0
    assert uc + um <= 1.0 + 1e-9
    # By hand: bytes moved by memory-bound operators over (spec bandwidth x latency).
    ops = decode.operators
    moved = sum(r["bytes"] for r in ops if r["memory_s"] > r["compute_s"])
    bw = mlsysim.Hardware.H100.memory.bandwidth.to("byte/s").magnitude
    assert um == pytest.approx(moved / (bw * decode.latency_s), rel=1e-6)
    prefill = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=8, seq_len=2048,
                                   phase="prefill")
    uc, um = pw.activity(prefill)
    assert uc > 0.5 and uc > um
    assert pw.profile_power(prefill) == pytest.approx(pw.device_power("H100", uc, um))


def test_arrays_broadcast_and_agree_with_scalars():
    uc = np.array([[0.0], [0.4], [0.9]])
    um = np.array([0.0, 0.25, 0.5, 1.0])
    out = pw.device_power("H100", uc, um)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert out[i, j] == pytest.approx(pw.device_power("H100", float(uc[i, 0]),
                                                              float(um[j])))
    assert isinstance(pw.device_power("H100", 0.5, 0.5), float)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, float("inf"), "0.5", True, None,
                                 [0.2, float("nan")], [[0.1], [-1.0]]])
def test_bad_utilization_is_refused_naming_the_parameter(bad):
    with pytest.raises(ValidationError) as e:
        pw.device_power("H100", bad, 0.1)
    assert e.value.field == "compute_util" and "between 0 and 1" in str(e.value)
    with pytest.raises(ValidationError) as e:
        pw.device_power("H100", 0.1, bad)
    assert e.value.field == "memory_util"


def test_shapes_that_do_not_broadcast_are_refused():
    with pytest.raises(ValidationError, match="broadcast"):
        pw.device_power("H100", np.zeros(3), np.zeros(4))


def test_hardware_without_tdp_is_refused_naming_the_field():
    a10g = mlsysim.Hardware.get("A10G")
    assert a10g.tdp is None
    with pytest.raises(MLSysimError) as e:
        pw.device_power(a10g, 0.5, 0.5)
    assert isinstance(e.value, ValidationError) and e.value.field == "tdp"
    assert "tdp" in str(e.value) and a10g.name in str(e.value)


def test_missing_tdp_message_says_why_and_what_to_type():
    """The whole message: A10G publishes no TDP, and device power uses it as P_max."""
    with pytest.raises(ValidationError) as e:
        pw.device_power(mlsysim.Hardware.get("A10G"), 0.5, 0.5)
    assert str(e.value) == ("The 'tdp' parameter of NVIDIA A10G (AWS) is not published: device "
                            "power needs it as the ceiling P_max. Give the spec a tdp (e.g. "
                            "tdp='300 W').")


def test_unknown_hardware_and_wrong_types_are_refused():
    with pytest.raises(UnknownNameError):
        pw.device_power("H1000", 0.1, 0.1)
    with pytest.raises(ValidationError, match="hardware"):
        pw.device_power(42, 0.1, 0.1)
    with pytest.raises(ValidationError, match="PerformanceProfile"):
        pw.profile_power("not a profile")


def test_a_user_tdp_below_the_measured_idle_is_refused():
    h100 = mlsysim.Hardware.H100
    low = h100.model_copy(update={"tdp": mlsysim.Q_(100, "W")})
    with pytest.raises(ValidationError, match="idle"):
        pw.power_params(low)


# --- node power and energy ---------------------------------------------------------------------

def test_node_power_adds_the_host():
    n = pw.node_power("DGX_H100", 600.0)
    assert n.watts == pytest.approx(8 * 600 + 4600) and n.host_w == 4600
    assert not n.estimated and n.reason is None
    arr = pw.node_power("DGX_H100", np.array([100.0, 700.0]))
    assert arr.watts == pytest.approx([8 * 100 + 4600, 8 * 700 + 4600])


def test_node_without_host_power_says_so():
    with pytest.raises(ValidationError) as e:
        pw.node_power("HGX_H100", 600.0)
    assert e.value.field == "host_power"
    assert Nodes.get("HGX_H100").name in str(e.value)
    dgx = Nodes.get("DGX_H100")
    derived = Node(**{**dgx.model_dump(exclude={"key", "aliases"}), "host_power": None,
                      "accelerator": dgx.accelerator, "intra_node_fabric": dgx.intra_node_fabric,
                      "nic_fabric": dgx.nic_fabric})
    n = pw.node_power(derived, 600.0)
    assert n.estimated and "system_power" in n.reason
    assert n.host_w == pytest.approx(10200 - 8 * 700)
    with pytest.raises(ValidationError, match="accelerator_watts"):
        pw.node_power("DGX_H100", -1.0)


def _dgx_without_host_power(**update):
    dgx = Nodes.get("DGX_H100")
    return Node(**{**dgx.model_dump(exclude={"key", "aliases"}), "host_power": None,
                   "accelerator": dgx.accelerator, "intra_node_fabric": dgx.intra_node_fabric,
                   "nic_fabric": dgx.nic_fabric, **update})


def test_system_power_below_the_accelerators_tdp_cannot_give_a_host():
    """A DGX H100 with system_power 5 kW and no host_power: 5000 W - 8 x 700 W = -600 W, no
    host is derivable, and the message shows both sides of the comparison."""
    with pytest.raises(ValidationError) as e:
        pw.node_power(_dgx_without_host_power(system_power="5 kW"), 600.0)
    assert e.value.field == "host_power"
    assert str(e.value) == ("The 'host_power' parameter of NVIDIA DGX H100 is not published and "
                            "cannot be derived: system_power (5000 W) is below 8 x TDP (5600 W).")


def test_energy_is_power_times_time_never_tdp_times_time():
    assert pw.energy(700.0, 3600.0) == pytest.approx(2.52e6)
    assert pw.energy_kwh(700.0, 3600.0) == pytest.approx(0.7)
    assert pw.energy(np.array([1.0, 2.0]), 10.0) == pytest.approx([10.0, 20.0])
    with pytest.raises(ValidationError, match="seconds"):
        pw.energy(100.0, -1.0)
    decode = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=1, seq_len=1024)
    joules = pw.energy(pw.profile_power(decode), decode.latency_s)
    assert joules < 700.0 * decode.latency_s
    assert math.isfinite(joules)


def test_energy_refusal_names_the_seconds_argument():
    with pytest.raises(mlsysim.errors.ValidationError) as e:
        pw.energy(1.0, -1.0)
    assert str(e.value) == ("The 'seconds' parameter of energy must be a finite non-negative "
                            "number (or array). Got -1.0 instead.")


def test_power_params_refusal_names_itself_as_owner():
    with pytest.raises(mlsysim.errors.ValidationError) as e:
        pw.power_params(3)
    assert str(e.value) == ("The 'hardware' parameter of power_params must be a hardware spec "
                            "or zoo name. Got 3 instead.")


def _h100_row(rid, role, watts, cu=None, mu=None):
    return pw.PowerRow(id=rid, hardware="H100", role=role, activity="x", precision="bf16",
                       compute_util=cu, memory_util=mu, power_w=watts, power_low_w=None,
                       power_high_w=None, quality="q", derived="", source_key="s",
                       condition="")


def test_fit_power_without_an_idle_row_says_so():
    with pytest.raises(mlsysim.errors.DataFileError) as e:
        pw.fit_power([_h100_row("F1", "fit", 500.0, 0.9, 0.1)], tdp_of=lambda k: 700.0)
    assert str(e.value) == "power rows: no idle row, so no device has an idle power"


def test_params_refuses_a_tdp_below_the_measured_idle():
    """Rows measured 800 W idle (fit with a 1000 W TDP); the zoo H100's 700 W TDP is below
    it, so P_max = TDP cannot be the ceiling: the 'tdp' field is refused, naming rows and
    both powers."""
    from mlsysim.zoo import Hardware
    cal = pw.fit_power([_h100_row("I1", "idle", 800.0), _h100_row("F1", "fit", 900.0, 0.9, 0.1)],
                       tdp_of=lambda k: 1000.0)
    with pytest.raises(mlsysim.errors.ValidationError) as e:
        cal.params(Hardware.H100)
    assert e.value.field == "tdp"
    assert str(e.value) == ("The 'tdp' parameter of NVIDIA H100 SXM5 80GB must exceed the "
                            "device's measured idle power (800 W, rows I1). Got 700 W instead.")
