"""Energy rows of the reference: reported GPU-hours, energy and carbon of whole training runs,
predicted through DistributedModel's time to train and SustainabilityModel's power.

The runs (reference.csv, category ``energy``) are configured in ``energy_setups.yaml``, keyed
by the rows' ``scenario``; see :func:`mlsysim.validation.adapters.predict_energy`.
"""

import pytest

from mlsysim.errors import DataFileError
from mlsysim.validation.adapters import (
    ENERGY_METRICS,
    ENERGY_SCOPES,
    SKIP_CODES,
    energy_run,
    energy_setups,
    predict_energy,
    predict_row,
)
from mlsysim.validation.reference import CATEGORIES, METRIC_UNITS, ReferenceRow, load_reference
from mlsysim.zoo import Models

ROWS = {r.id: r for r in load_reference() if r.category == "energy"}
SETUPS = energy_setups()


def _row(**kw):
    base = dict(id="E-1", category="energy", model="BLOOM_176B", hardware="A100",
                num_devices=384, batch_size=2048, scenario="bloom-176b", metric="gpu_hours",
                value=1.0, unit="GPU-h")
    base.update(kw)
    return ReferenceRow(**base)


# --- schema and files -------------------------------------------------------------------------
def test_energy_category_and_metrics_are_registered():
    assert "energy" in CATEGORIES
    assert METRIC_UNITS["energy_mwh"] == ("MWh",)
    assert METRIC_UNITS["co2e_t"] == ("tCO2e",)
    assert METRIC_UNITS["gpu_hours"] == ("GPU-h",)
    assert {r.metric for r in ROWS.values()} <= set(ENERGY_METRICS)


def test_setups_load_and_cover_every_energy_row():
    assert len(SETUPS.runs) >= 10
    scenarios = {r.scenario for r in ROWS.values()}
    listed = set(SETUPS.runs) | set(SETUPS.not_predicted)
    assert scenarios == listed, "a row without a run, or a run without a row"
    assert not set(SETUPS.runs) & set(SETUPS.not_predicted)
    assert all(code in SKIP_CODES for code, _ in SETUPS.not_predicted.values())


@pytest.mark.parametrize("key", sorted(energy_setups().runs))
def test_setup_agrees_with_its_rows(key):
    s = SETUPS.runs[key]
    rows = [r for r in ROWS.values() if r.scenario == key]
    assert rows
    assert s.why.strip() and s.energy_scope in ENERGY_SCOPES
    assert s.devices == s.fleet().total_accelerators
    assert s.global_batch % (s.dp * s.microbatch_size) == 0
    Models.get(s.model)
    for r in rows:
        assert r.model == s.model and r.num_devices == s.devices
        assert r.batch_size == s.global_batch


def test_every_energy_row_is_predicted_or_says_why():
    for rid, row in ROWS.items():
        p = predict_row(row)
        if row.scenario in SETUPS.not_predicted:
            assert p.status == "skipped", rid
            assert (p.code, p.reason) == SETUPS.not_predicted[row.scenario], rid
        else:
            assert p.status in ("ok", "infeasible"), (rid, p.reason)
            assert p.value > 0 and p.method, rid
            assert 0 < p.low < p.value < p.high, rid  # the time to train's band
    predicted = [r for r in ROWS.values() if r.scenario in SETUPS.runs]
    assert len(predicted) >= 25


def test_sources_that_computed_tdp_x_time_say_so():
    for row in ROWS.values():
        if row.source_key in ("luccioni2022", "llama1_2023", "llama2_2023", "llama3_card",
                              "llama31_card") and row.metric != "gpu_hours":
            assert "TDP x time" in row.notes, row.id


# --- the hand-checked row: BLOOM-176B ---------------------------------------------------------
def test_bloom_energy_is_predicted_gpu_hours_times_the_tdp_as_the_source_computes_it():
    """BLOOM on 48 x 8 A100 (TP 4, PP 12, DP 8, 2,048 x 2,048 tokens per step, 366B tokens).

    Luccioni et al.'s 433 MWh is the GPUs alone, 1,082,990 GPU-h x 400 W TDP (no hosts, no
    PUE): the 'accelerators_tdp' scope, so the prediction is predicted GPU-hours x 400 W and
    carbon that x 57 g/kWh. The activity-based draw (predicted per-GPU power, below TDP) is
    reported beside it; the facility figure (hosts, x PUE 1.2) is SustainabilityModel's total
    on the fleet.
    """
    s = SETUPS.runs["bloom-176b"]
    assert (s.tp, s.pp, s.dp, s.microbatch_size, s.global_batch, s.seq_len) == \
        (4, 12, 8, 2, 2048, 2048)
    run = energy_run(s)
    r = run.result
    steps = 366e9 / (2048 * 2048)
    assert run.seconds == pytest.approx(steps * r.step_s, rel=1e-9)
    gpu_h = run.seconds / 3600 * 384
    assert r.gpu_hours.magnitude == pytest.approx(gpu_h, rel=1e-9)
    # Power from the step's activity: between idle and the 400 W TDP, never TDP itself.
    assert 100 < run.accelerator_w < 400
    kwh = gpu_h * run.accelerator_w / 1000
    assert run.accelerator_kwh == pytest.approx(kwh, rel=1e-9)

    by_metric = {r_.metric: r_ for r_ in ROWS.values() if r_.scenario == "bloom-176b"}
    energy = predict_row(by_metric["energy_mwh"])
    carbon = predict_row(by_metric["co2e_t"])
    hours = predict_row(by_metric["gpu_hours"])
    assert hours.value == pytest.approx(gpu_h, rel=1e-9)
    # Luccioni et al.'s 433 MWh is their GPU-hours x the 400 W TDP (no PUE): the prediction is
    # put in that convention, predicted GPU-hours x 400 W, so the energy error is the GPU-hours
    # error; the activity-based energy (P x T) is in the notes.
    assert energy.value == pytest.approx(gpu_h * 400.0 / 1e6, rel=1e-9)
    assert carbon.value == pytest.approx(gpu_h * 400.0 / 1e3 * 57 / 1e6, rel=1e-9)
    assert energy.value / 433.196 == pytest.approx(gpu_h / 1_082_990, rel=1e-3)
    assert any(f"{kwh / 1e3:,.4g} MWh" in n for n in energy.assumptions)

    # Facility scope: (384 accelerators + 48 DGX hosts at 3.3 kW) x T x PUE 1.2.
    facility = (384 * run.accelerator_w + 48 * 3300.0) * run.seconds / 3.6e6 * 1.2
    assert run.facility_kwh == pytest.approx(facility, rel=1e-9)


def test_meta_rows_are_gpu_hours_times_tdp_times_pue_as_the_cards_compute_them():
    """The LLaMA/Llama cards' energy is 'peak power capacity per GPU adjusted for PUE':
    GPU-hours x 400 W x 1.1 for LLaMA-65B, so the prediction is predicted GPU-hours x 400 W x
    1.1; the carbon is that x 385 g/kWh. The activity-based energy (P < TDP) is noted."""
    s = SETUPS.runs["llama1-65b"]
    run = energy_run(s)
    row = next(r for r in ROWS.values() if r.scenario == "llama1-65b" and
               r.metric == "energy_mwh")
    p = predict_row(row)
    gpu_h = run.result.gpu_hours.magnitude
    assert run.tdp_w == 400.0
    assert p.value == pytest.approx(gpu_h * 400.0 * 1.1 / 1e6, rel=1e-9)
    physical = gpu_h * run.accelerator_w * 1.1 / 1e6
    assert physical < p.value
    assert any(f"{physical:,.4g} MWh (x PUE)" in n for n in p.assumptions)


# --- data errors and skips --------------------------------------------------------------------
def test_a_row_of_an_unknown_run_is_skipped_with_its_reason():
    p = predict_row(_row(scenario="no-such-run"))
    assert p.status == "skipped" and p.code == "missing-setup" and "no-such-run" in p.reason


def test_a_row_that_disagrees_with_its_setup_is_a_data_error():
    with pytest.raises(DataFileError, match="num_devices"):
        predict_energy(_row(num_devices=512), [])
    with pytest.raises(DataFileError, match="model"):
        predict_energy(_row(model="LLaMA_65B"), [])
    # Through predict_row the error is a skipped row that keeps the message.
    p = predict_row(_row(num_devices=512))
    assert p.status == "skipped" and "num_devices" in p.reason


def test_bad_setups_file_names_the_entry(tmp_path):
    bad = tmp_path / "energy.yaml"
    bad.write_text("runs:\n  x:\n    model: BLOOM_176B\n    node: DGX_A100\n")
    with pytest.raises(DataFileError, match=r"runs\.x"):
        energy_setups(bad)
    bad.write_text("not_predicted:\n  y: {code: nope, reason: r}\n")
    with pytest.raises(DataFileError, match="not_predicted.y"):
        energy_setups(bad)
