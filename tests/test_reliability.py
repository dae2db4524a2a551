"""ReliabilityModel's explain(): the interval line says where tau came from, and the goodput
line prints the arithmetic it evaluates, on a fleet whose MTBF is given (numbers by hand)."""

import mlsysim
from mlsysim import Fleet, Systems

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
