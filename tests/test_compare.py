"""compare(): the difference table and its explanation, as printed (ResNet-50 at batch 8 moved
from an A100 to an H100)."""

import math

import pytest

from mlsysim import Engine
from mlsysim.solvers.compare import compare


@pytest.fixture(scope="module")
def a100_to_h100():
    a = Engine.solve(model="ResNet50", hardware="A100", batch_size=8)
    b = Engine.solve(model="ResNet50", hardware="H100", batch_size=8)
    return compare(a, b)


def test_difference_table_columns_are_in_microseconds(a100_to_h100):
    t = a100_to_h100.__rich__()
    assert [c.header for c in t.columns] == ["operator", "A (us)", "B (us)", "B - A (us)",
                                             "share"]


def test_explain_folds_operators_past_the_eighth_into_one_line(a100_to_h100):
    """ResNet-50 has 32 operator rows: the explanation lists the 8 largest and folds the other
    32 - 8 = 24 into one line whose sum is dT minus the 8 listed: -263.6 us - (-30.0 - 20.6 -
    18.0 - 18.0 - 17.2 - 13.8 - 12.0 - 11.6 = -141.2 us) = -122.4 us, -122.5 us before the
    listed rows are rounded."""
    d = a100_to_h100
    assert len(d.operator_rows) == 32
    lines = d.explain().splitlines()
    assert lines[-1] == "    (24 more operators: -122.5 us)"
    shown = math.fsum(b - a for _, a, b in d.operator_rows[:8])
    assert (d.difference_s - shown) * 1e6 == pytest.approx(-122.5, abs=0.05)
