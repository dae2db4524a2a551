"""Breakdown plots (Agg backend): every bar, line and marker is the solver's own number.

Expectations are derived in each test from the result the plot is drawn from (Engine.solve,
ServingModel().solve, mlsysim.sweep / serving_sweep), never typed in.
"""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import mlsysim  # noqa: E402
from mlsysim.errors import ValidationError  # noqa: E402
from mlsysim.viz import (  # noqa: E402
    memory_parts,
    operator_parts,
    plot_memory_breakdown,
    plot_operator_breakdown,
    plot_roofline,
    plot_serving_components,
    plot_throughput_latency,
    plot_tp_scaling,
    serving_parts,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def bars(ax):
    from matplotlib.patches import Rectangle
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# --- operator breakdown -------------------------------------------------------------------
def test_operator_bars_sum_to_latency_and_are_sorted():
    """Llama-3-8B decode, batch 8 on an H100 (11 operator types): the top 5 bars are the five
    largest ``profile.operators`` times, descending; "other" holds the remaining 6; the bars
    sum to ``latency_s`` (one device: no communication beyond the operators)."""
    p = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=8, seq_len=1024)
    fig, ax = plot_operator_breakdown(p, top=5)
    widths = [b.get_width() / 1e3 for b in bars(ax)]          # ms -> s
    assert len(widths) == 6
    assert sum(widths) == pytest.approx(p.latency_s, rel=1e-9)
    assert widths[:5] == sorted(widths[:5], reverse=True)
    assert widths[:5] == pytest.approx([r["time_s"] for r in p.operators[:5]], rel=1e-12)
    assert widths[5] == pytest.approx(sum(r["time_s"] for r in p.operators[5:]), rel=1e-12)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:5] == [r["name"] for r in p.operators[:5]]
    assert labels[5] == f"other ({len(p.operators) - 5} operators)"
    notes = [t.get_text() for t in ax.texts]
    expected = ["compute-bound" if r["regime"] == "Compute" else "memory-bound"
                for r in p.operators[:5] if not r["launch_bound"]]
    assert [n.split(",")[0] for n in notes[:len(expected)]] == expected


def test_operator_kinds_sum_to_latency():
    """by="kind": one bar per operator kind, each the sum of its operators' times."""
    p = mlsysim.Engine.solve("ResNet50", "A100", batch_size=32)
    parts = operator_parts(p, top=100, by="kind")
    kinds = {}
    for r in p.operators:
        kinds[r["kind"]] = kinds.get(r["kind"], 0.0) + r["time_s"]
    assert {n: s for n, s, _ in parts} == pytest.approx(kinds, rel=1e-12)
    fig, ax = plot_operator_breakdown(p, top=2, by="kind")
    widths = [b.get_width() / 1e3 for b in bars(ax)]
    assert sum(widths) == pytest.approx(p.latency_s, rel=1e-9)
    assert widths[:2] == pytest.approx(sorted(kinds.values(), reverse=True)[:2], rel=1e-12)


def test_operator_breakdown_refuses_other_results():
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=256)
    with pytest.raises(ValidationError, match="PerformanceProfile"):
        plot_operator_breakdown(r)
    with pytest.raises(ValidationError, match="top"):
        operator_parts(mlsysim.Engine.solve("ResNet50", "A100"), top=0)


# --- serving components -------------------------------------------------------------------
def test_serving_bars_sum_to_ttft_and_itl():
    """tp=4 on an H100: TTFT = prefill + TP comm (no KV transfer), ITL = decode step + TP
    comm; the stacked segments are these terms of the result, in ms."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, batch_size=8,
                                     tp_size=4)
    fig, ax = plot_serving_components(r)
    segs = [(b.get_x() + b.get_width() / 2, b.get_height() / 1e3, b.get_y() / 1e3)
            for b in bars(ax)]
    ttft = [h for x, h, _ in segs if x == 0]
    itl = [h for x, h, _ in segs if x == 1]
    assert ttft == pytest.approx([r.prefill_s, r.comm_prefill_s], rel=1e-12)
    assert itl == pytest.approx([r.decode_step_s, r.comm_decode_s], rel=1e-12)
    assert sum(ttft) == pytest.approx(r.ttft_s, rel=1e-9)
    assert sum(itl) == pytest.approx(r.itl_s, rel=1e-9)
    assert [b for x, _, b in segs if x == 0] == pytest.approx([0, r.prefill_s], rel=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TTFT", "ITL"]


def test_serving_parts_with_kv_transfer_and_draft():
    """Disaggregated prefill adds a KV-transfer segment; speculative decoding's ITL is one
    segment (the result does not split draft and verify) equal to itl_s."""
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024,
                                     decode_hardware="A100", network_bandwidth="50 GB/s")
    parts = serving_parts(r)
    assert parts["TTFT"]["KV transfer"] == r.kv_transfer_s > 0
    assert sum(parts["TTFT"].values()) == pytest.approx(r.ttft_s, rel=1e-9)
    s = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024,
                                     draft_model="Llama3_2_1B", draft_acceptance_rate=0.8)
    (only,) = serving_parts(s)["ITL"].values()
    assert only == s.itl_s
    fig, ax = plot_serving_components(s)
    assert sum(b.get_height() for b in bars(ax) if b.get_x() > 0.5) / 1e3 == \
        pytest.approx(s.itl_s, rel=1e-9)


# --- memory -------------------------------------------------------------------------------
def test_memory_bars_sum_to_footprint_and_line_is_usable():
    """Llama-3-70B on one H100: weights + KV + activations = memory.total(1) > usable
    (0.9 x capacity), so the bar is annotated "does not fit"."""
    r = mlsysim.ServingModel().solve("Llama3_70B", "H100", seq_len=1024)
    fig, ax = plot_memory_breakdown(r)
    heights = [b.get_height() * 1e9 for b in bars(ax)]
    assert heights == pytest.approx(list(r.memory.terms(1).values()), rel=1e-12)
    assert sum(heights) == pytest.approx(r.memory_per_device_bytes, rel=1e-9)
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == pytest.approx([r.usable_bytes / 1e9] * 2, rel=1e-12)
    assert not r.feasible
    assert any(t.get_text().startswith("does not fit") for t in ax.texts)


def test_memory_bar_that_fits_has_no_warning():
    """A single pass (Engine.solve) against the whole capacity: weights, state and
    activations of the profile, under the line, no annotation."""
    p = mlsysim.Engine.solve("Llama3_8B", "H100", batch_size=8, seq_len=1024)
    parts, usable = memory_parts(p)
    assert usable == p.memory.usable
    assert sum(parts.values()) == pytest.approx(p.memory_footprint.to("byte").magnitude,
                                                rel=1e-9)
    fig, ax = plot_memory_breakdown(p)
    assert sum(b.get_height() for b in bars(ax)) * 1e9 == pytest.approx(sum(parts.values()))
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(usable / 1e9)
    assert not any("does not fit" in t.get_text() for t in ax.texts)
    with pytest.raises(ValidationError, match="memory budget"):
        memory_parts(object())


# --- throughput vs latency ----------------------------------------------------------------
def hollow_points(ax):
    pts = []
    for c in ax.collections:
        assert len(c.get_facecolors()) == 0          # every scatter here is hollow
        pts.extend(map(tuple, c.get_offsets()))
    return pts


def test_throughput_latency_one_line_per_group_hollow_infeasible():
    """2 models x 2 devices: 4 groups; Llama-3-70B (141 GB of fp16 weights) fits on neither
    80 GB device, so its 10 rows are the hollow points; each line holds its group's feasible
    rows in batch order."""
    s = mlsysim.sweep(["Llama3_8B", "Llama3_70B"], ["A100", "H100"], [1, 4, 16, 64, 256])
    fig, ax = plot_throughput_latency(s)
    lines = ax.get_lines()
    assert len(lines) == 4
    bad = ~s["feasible"]
    assert np.count_nonzero(bad) == 10
    assert sorted(hollow_points(ax)) == sorted(zip(s["latency_s"][bad], s["throughput"][bad]))
    for line in lines:
        model, hardware = line.get_label().split(", ")
        rows = (s["model"] == model) & (s["hardware"] == hardware) & s["feasible"]
        assert list(line.get_xdata()) == list(s["latency_s"][rows])
        assert list(line.get_ydata()) == list(s["throughput"][rows])
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count("does not fit") == 1


def test_throughput_latency_on_a_serving_sweep():
    """serving_sweep columns: x/y fall back to itl_s/tokens_per_s; groups by tp_size (tp=3 is
    skipped by the sweep: 32 heads); batch 4096 at a 4k prompt (KV 128 kB/token x 4,224
    tokens per sequence) overflows one H100."""
    s = mlsysim.serving_sweep("Llama3_8B", "H100", [4096], [128], [1, 64, 4096],
                              tp_sizes=(1, 2, 3))
    fig, ax = plot_throughput_latency(s)
    assert [line.get_label() for line in ax.get_lines()] == ["tp_size 1", "tp_size 2"]
    bad = ~s["feasible"]
    assert s.skipped == {"tp_size not applicable": 3}
    assert np.count_nonzero(bad) >= 1
    assert sorted(hollow_points(ax)) == sorted(zip(s["itl_s"][bad], s["tokens_per_s"][bad]))
    assert ax.get_xlabel() == "itl_s" and ax.get_ylabel() == "tokens_per_s"
    with pytest.raises(ValidationError, match="must be one of"):
        plot_throughput_latency(s, x="nope")


# --- tensor-parallel scaling --------------------------------------------------------------
def test_tp_scaling_is_the_solvers_numbers():
    """tp in (1, 2, 3, 4, 8, 16) on one H100 for Llama-3-8B: 3 does not divide 32 heads and 16
    exceeds the chip's NVLink domain of 8, so both are skipped with a note; ITL and tokens/s
    at the rest are ServingModel().solve's."""
    fig, (ax, twin) = plot_tp_scaling("Llama3_8B", "H100", (1, 2, 3, 4, 8, 16), batch_size=8,
                                      seq_len=1024)
    ok = (1, 2, 4, 8)
    solved = [mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, batch_size=8,
                                           tp_size=t) for t in ok]
    itl_line, = ax.get_lines()
    tok_line, = twin.get_lines()
    assert list(itl_line.get_xdata()) == list(ok)
    assert list(tok_line.get_xdata()) == list(ok)
    assert list(itl_line.get_ydata()) == pytest.approx([r.itl_s * 1e3 for r in solved],
                                                       rel=1e-12)
    assert list(tok_line.get_ydata()) == pytest.approx([float(r.tokens_per_s) for r in solved],
                                                       rel=1e-12)
    assert any("tp=3" in t.get_text() and "tp=16" in t.get_text() for t in ax.texts)
    assert len(ax.collections) == 0      # everything fits: no hollow markers


def test_tp_scaling_marks_sizes_that_do_not_fit():
    """Llama-3-70B on H100s: 141 GB of weights / tp per device; tp=1 (141 GB) does not fit
    the 77 GB budget, tp=2 (70.5 GB + KV + activations) does. One hollow marker, at tp=1."""
    fig, (ax, _) = plot_tp_scaling("Llama3_70B", "H100", (1, 2), seq_len=1024)
    r1 = mlsysim.ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=1)
    r2 = mlsysim.ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=2)
    assert not r1.feasible and r2.feasible
    (hollow,) = ax.collections
    assert [tuple(o) for o in hollow.get_offsets()] == [(1, pytest.approx(r1.itl_s * 1e3))]
    assert "does not fit" in ax.get_legend_handles_labels()[1]


# --- roofline -----------------------------------------------------------------------------
def test_roofline_names_phase_marks_misfits_and_bounds_axes():
    """ResNet-50 fits an A100; Llama-3-70B decode (141 GB) does not: its point is hollow and
    its legend entry says so; both entries name the phase; every point lies inside the axes."""
    fig, ax = plot_roofline("A100", [mlsysim.Models.ResNet50, mlsysim.Models.Llama3_70B])
    labels = [c.get_label() for c in ax.collections]
    assert "(forward, batch 1)" in labels[0] and "does not fit" not in labels[0]
    assert "(decode, batch 1)" in labels[1] and labels[1].endswith("does not fit")
    assert len(ax.collections[0].get_facecolors()) == 1
    assert len(ax.collections[1].get_facecolors()) == 0
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for c in ax.collections:
        (x, y), = c.get_offsets()
        assert x0 < x < x1 and y0 < y < y1
    peak = mlsysim.Hardware.get("A100").peak("fp16").to("TFLOP/s").magnitude
    assert y1 > peak
