"""Outputs the other suites leave loose: footprint refusals and provenance, the speculative
draft step, ServingModel's default output length, the pooled collective spread, the
scale-out flag, and the power helpers' refusals."""

import re

import pytest

import mlsysim
from mlsysim import Fleet, Systems
from mlsysim.core.collectives import comm_path, fit_collectives
from mlsysim.core.power import PowerRow, fit_power, node_power
from mlsysim.errors import DataFileError, ValidationError
from mlsysim.solvers.sustainability import footprint

_SITE = dict(datacenter="Hyperscale", grid="Quebec", mfu=0.4)


# ------------------------------------------------------------------ sustainability


def test_footprint_refuses_a_negative_duration_naming_its_owner():
    """footprint() is public (economics and placement call it too); its own check of the
    duration names the owner it was given: SustainabilityModel by default, or the caller's."""
    with pytest.raises(ValidationError) as err:
        footprint("DGX_H100", -1.0, **_SITE)
    assert err.value.owner == "SustainabilityModel"
    assert str(err.value) == ("The 'duration' parameter of SustainabilityModel must be a "
                              "finite positive number. Got -1.0 instead.")
    with pytest.raises(ValidationError, match=re.escape(
            "The 'duration' parameter of EconomicsModel must be a finite positive number. "
            "Got 0.0 instead.")):
        footprint("DGX_H100", 0.0, owner="EconomicsModel", **_SITE)


def test_given_embodied_carbon_is_amortized_and_its_source_says_given():
    """DGX H100 (8 GPUs) for 1 day, 150 kgCO2e per GPU given, 4-year life:
    8 x 150 x 1 / (4 x 365.25) = 0.82136 kgCO2e; the assumption names the source 'given'."""
    r = mlsysim.SustainabilityModel().solve("DGX_H100", duration_days=1,
                                            embodied_kg_per_accelerator=150,
                                            service_life_years=4, **_SITE)
    assert r.embodied_carbon_kg == pytest.approx(8 * 150 / (4 * 365.25), rel=1e-12)
    assert r.assumptions[-1] == "embodied carbon: given"


# ------------------------------------------------------------------------ serving


def test_speculative_draft_step_is_one_token_at_the_mean_context():
    """Llama-3-8B with a Llama-3.2-1B draft on H100, prompt 1024, output 128. A speculative
    round is ITL x accepted = k t_draft + t_verify(k), so one more draft token adds
    t_draft plus the verify pass's one extra token. t_draft is the draft's own decode step:
    one new token after 1024 + 127 // 2 = 1087 cached, i.e. the decode_step_s of the 1B model
    served alone with the same prompt and output. At batch 1 the 8B verify pass streams its
    weights, so one more verified token costs ~1 % of it; the tolerance is 3 %.
    A draft pass of 1087 new tokens instead would cost at least 2 x 1.236e9 x 1087 flop /
    989.5 Tflop/s = 2.7 ms, over twice the 1-token step."""
    S = mlsysim.ServingModel()
    kw = dict(hardware="H100", seq_len=1024, output_len=128)
    spec = dict(kw, model="Llama3_8B", draft_model="Llama3_2_1B", draft_acceptance_rate=0.8)
    r3, r4 = S.solve(draft_len=3, **spec), S.solve(draft_len=4, **spec)
    round3, round4 = r3.itl_s * r3.accepted_per_step, r4.itl_s * r4.accepted_per_step
    t_draft = S.solve("Llama3_2_1B", **kw).decode_step_s
    assert round4 - round3 == pytest.approx(t_draft, rel=0.03)


def test_serving_default_output_length_is_128_tokens():
    """Option output_len defaults to 128: e2e = TTFT + (128 - 1) x ITL."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024)
    assert r.output_len == 128
    assert r.e2e_latency.to("s").magnitude == pytest.approx(r.ttft_s + 127 * r.itl_s,
                                                            rel=1e-12)


# -------------------------------------------------------------------- collectives


def _allreduce(rid, dev, busbw_gbs):
    return {"id": rid, "hardware": dev, "kind": "allreduce", "message_bytes": 2**30,
            "num_devices": 8, "value": busbw_gbs, "notes": ""}


def test_pooled_collective_spread_reaches_the_defaults_and_rowless_fabrics():
    """Fabric X: two 1 GiB all-reduces over 8 at busbw 50 and 100 GB/s on a 100 GB/s link.
    One size: alpha is not identified, so it is the (empty) median, 0, and with alpha = 0
    each row's x2 = busbw / B = 0.5, 1.0; c = sum x2 / sum x2^2 = 1.5 / 1.25 = 1.2, so
    residuals c x2 = 0.6, 1.2 and their 10th/90th percentiles (linear) are
    0.6 + 0.1 x 0.6 = 0.66 and 0.6 + 0.9 x 0.6 = 1.14. The defaults carry that spread, and
    so does fabric Y, which has only a p2p row and takes the defaults' terms."""
    rows = [_allreduce("R1", "X", 50.0), _allreduce("R2", "X", 100.0),
            {"id": "P1", "hardware": "Y", "kind": "p2p", "message_bytes": 2**30,
             "num_devices": 2, "value": 80.0, "notes": ""}]
    cal = fit_collectives(rows, {"X": (100e9, 8), "Y": (100e9, 8)})
    assert cal.residuals["R1"] == pytest.approx(0.6, rel=1e-12)
    assert cal.residuals["R2"] == pytest.approx(1.2, rel=1e-12)
    assert cal.defaults.eta_bus == pytest.approx(1 / 1.2, rel=1e-12)
    assert cal.defaults.spread == pytest.approx((0.66, 1.14), rel=1e-12)
    assert cal.spread == pytest.approx((0.66, 1.14), rel=1e-12)
    assert cal.fabrics["Y"].spread == pytest.approx((0.66, 1.14), rel=1e-12)
    assert cal.fabrics["Y"].eta_p2p == pytest.approx(0.8, rel=1e-12)


def test_scale_out_terms_are_always_flagged_estimated():
    """The multi-node rows are peaks without message sizes, so scale-out alpha is never
    fitted (module docstring): even InfiniBand NDR, which has its own bandwidth fit (rows
    MIC-037, MIC-151), is flagged estimated, while the node's NVLink fit is not."""
    fleet = Fleet(name="4xDGX", node=Systems.Nodes.DGX_H100, count=4,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    path = comm_path(fleet)
    assert path.out_eff.rows == ("MIC-037", "MIC-151")
    assert path.out_eff.estimated is True
    assert path.up_eff.estimated is False


# -------------------------------------------------------------------------- power


def test_node_power_refusals_name_node_power():
    with pytest.raises(ValidationError) as err:
        node_power("DGX_H100", -5)
    assert err.value.owner == "node_power"
    assert str(err.value) == ("The 'accelerator_watts' parameter of node_power must be a finite "
                              "non-negative number (or array). Got -5 instead.")
    with pytest.raises(ValidationError) as err:
        node_power(42, 100.0)
    assert str(err.value) == ("The 'node' parameter of node_power must be a Node spec or zoo "
                              "name. Got 42 instead.")


@pytest.mark.parametrize("device", ["A10G", "NoSuchGPU"])
def test_fit_power_refuses_a_device_without_a_zoo_tdp(device):
    """A10G's zoo spec publishes no tdp, and an unknown key has no spec at all (Hardware.get
    raises a LookupError): the fit says which rows and device need one, not an
    AttributeError or a TypeError."""
    row = PowerRow(id="R1", hardware=device, role="idle", activity="idle", precision="",
                   compute_util=0.0, memory_util=0.0, power_w=20.0, power_low_w=None,
                   power_high_w=None, quality="", derived="", source_key="", condition="")
    with pytest.raises(DataFileError) as err:
        fit_power([row])
    assert str(err.value) == f"power rows R1: device '{device}' needs a zoo spec with a tdp"
