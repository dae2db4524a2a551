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


def _nine_operator_difference():
    """A 1 ms -> 2 ms difference over nine operators: eight of +100 us, the ninth +200 us;
    terms compute 0.4 -> 0.9 ms and memory 0.6 -> 1.1 ms (each +0.5 ms = 50.0 % of dT)."""
    from mlsysim.solvers.compare import DifferenceResult
    ops = tuple((f"op{i}", 1e-4, 2e-4) for i in range(8)) + (("op8", 1e-4, 3e-4),)
    return DifferenceResult(label_a="A", label_b="B", metric="latency", total_a_s=1e-3,
                            total_b_s=2e-3, operator_rows=ops,
                            term_rows=(("compute", 4e-4, 9e-4), ("memory", 6e-4, 1.1e-3)))


def test_explain_folds_a_ninth_operator_into_the_more_line():
    lines = _nine_operator_difference().explain().splitlines()
    assert lines[-1] == "    (1 more operators: +200.0 us)"
    assert sum(1 for ln in lines if ln.startswith("    op")) == 8


def test_difference_table_term_rows_show_their_share():
    from rich.console import Console
    console = Console(record=True, width=120)
    console.print(_nine_operator_difference().__rich__())
    rows = [ln.split() for ln in console.export_text().splitlines() if "term:" in ln]
    cells = [[c for c in r if c not in ("│", "┃")] for r in rows]
    assert cells == [["term:", "compute", "400.0", "900.0", "+500.0", "50.0%"],
                     ["term:", "memory", "600.0", "1100.0", "+500.0", "50.0%"]]
