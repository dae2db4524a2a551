"""ReliabilityModel's explain(): the interval line says where tau came from, and the goodput
line prints the arithmetic it evaluates, on a fleet whose MTBF is given (numbers by hand)."""

import pytest

import mlsysim
from mlsysim import Fleet, Systems
from mlsysim.errors import ValidationError

# 4 DGX H100 with a fleet MTBF of 10 h (M = 36,000 s), 50 s checkpoints, the default 300 s
# recovery. Young's interval sqrt(2 x 50 x 36,000) = 1,897.4 s.
FLEET = Fleet(name="4 x DGX H100", node=Systems.Nodes.DGX_H100, count=4, mtbf_hours=10)


def _lines(**kw):
    r = mlsysim.ReliabilityModel().solve(FLEET, job_duration_hours=100, checkpoint_time_s=50,
                                         **kw)
    return r.explain().splitlines()


def test_a_given_interval_is_labelled_given_and_enters_the_goodput_arithmetic():
    """tau = 1 h = 3,600 s: tau + delta = 3,650, half of it 1,825;
    goodput = 3600/3650 x (1 - (300 + 1825)/36000) = 0.986301 x 0.940972 = 0.9281."""
    lines = _lines(checkpoint_interval_hours=1)
    assert lines[5] == "  interval used: tau = 3600 s (given)"
    assert lines[6] == ("  goodput = tau/(tau+delta) * (1 - (R + (tau+delta)/2)/M) = "
                        "3600/3650 * (1 - (300 + 1825)/3.6e+04) = 0.9281")


def test_youngs_interval_is_labelled_youngs_when_none_is_given():
    """tau = 1,897.4 s: tau + delta = 1,947.4, half of it 973.7;
    goodput = 1897/1947 x (1 - (300 + 973.7)/36000) = 0.97432 x 0.96462 = 0.9399."""
    lines = _lines()
    assert lines[5] == "  interval used: tau = 1897 s (Young's)"
    assert lines[6] == ("  goodput = tau/(tau+delta) * (1 - (R + (tau+delta)/2)/M) = "
                        "1897/1947 * (1 - (300 + 973.7)/3.6e+04) = 0.9399")


def test_example_is_thirty_days_of_60_s_checkpoints_on_the_llama3_partition():
    """The docstring's example: 30 days = 720 h, 60 s checkpoints; the infeasible one adds a
    36 s (0.01 h) interval."""
    from mlsysim.solvers.reliability import ReliabilityModel
    fleet = Systems.Clusters.Meta_Llama3_405B_16K
    assert ReliabilityModel.example() == dict(fleet=fleet, job_duration_hours=720.0,
                                              checkpoint_time_s=60.0)
    assert ReliabilityModel.example(False) == dict(
        fleet=fleet, job_duration_hours=720.0, checkpoint_time_s=60.0,
        checkpoint_interval_hours=0.01)


def _run(**kw):
    return mlsysim.DistributedModel().solve("Llama3_8B", FLEET, batch_size=64, seq_len=8192,
                                            zero_stage=1, **kw)


def test_a_chained_run_lasts_its_failure_free_time_over_goodput():
    """On FLEET (M = 36,000 s) with 50 s checkpoints and Young's interval, goodput = 0.9399
    (above). A run's time to train C is failure-free work, so the job's wall time is
    T = C / 0.9399, its GPU-hours T x 32 and its expected failures T / 36,000 s."""
    run = _run(token_budget=1e10)
    c = run.time_to_train.to("s").magnitude
    r = mlsysim.ReliabilityModel().solve(run=run, checkpoint_time_s=50)
    assert r.fleet is FLEET and r.accelerators == 32
    assert r.goodput_ratio == pytest.approx(0.9399, abs=1e-4)
    assert r.useful_time_s == pytest.approx(c, rel=1e-12)
    assert r.wall_time_to_train.to("s").magnitude == pytest.approx(c / r.goodput_ratio,
                                                                  rel=1e-12)
    assert r.gpu_hours.to("hour").magnitude == pytest.approx(c / r.goodput_ratio * 32 / 3600,
                                                            rel=1e-12)
    assert r.expected_failures == pytest.approx(c / r.goodput_ratio / 36000, rel=1e-12)
    assert r.explain().splitlines()[-1].startswith(
        f"  wall time T = C / goodput = {c / 3600:.4g} h / 0.9399 = ")
    # Without a run there is no wall time to train, and the GPU-hours are the given job's.
    plain = mlsysim.ReliabilityModel().solve(FLEET, job_duration_hours=100,
                                             checkpoint_time_s=50)
    assert plain.wall_time_to_train is None
    assert plain.gpu_hours.to("hour").magnitude == pytest.approx(3200)


@pytest.mark.parametrize("kw, field", [
    (dict(run="not a run", checkpoint_time_s=50), "run"),
    (dict(checkpoint_time_s=50), "fleet"),
    (dict(fleet=FLEET, checkpoint_time_s=50), "job_duration_hours"),
    (dict(fleet=FLEET, job_duration_hours=10), "checkpoint_time_s"),
])
def test_chain_inputs_are_checked_by_name(kw, field):
    with pytest.raises(ValidationError) as err:
        mlsysim.ReliabilityModel().solve(**kw)
    assert err.value.field == field


def test_a_chained_run_needs_a_token_budget_and_one_length_and_must_fit():
    with pytest.raises(ValidationError, match="token_budget") as err:
        mlsysim.ReliabilityModel().solve(run=_run(), checkpoint_time_s=50)
    assert err.value.field == "run"
    with pytest.raises(ValidationError, match="give one") as err:
        mlsysim.ReliabilityModel().solve(run=_run(token_budget=1e10), job_duration_hours=5,
                                         checkpoint_time_s=50)
    assert err.value.field == "job_duration_hours"
    big = mlsysim.DistributedModel().solve("Llama3_70B", FLEET, batch_size=64, seq_len=8192,
                                           zero_stage=0, token_budget=1e10)
    assert not big.feasible
    with pytest.raises(ValidationError, match="infeasible") as err:
        mlsysim.ReliabilityModel().solve(run=big, checkpoint_time_s=50)
    assert err.value.field == "run"
