"""plot_footprint: the stacked bars are the result's own numbers (Agg backend)."""

import subprocess
import sys

import matplotlib
import pytest

matplotlib.use("Agg")

import mlsysim  # noqa: E402
from mlsysim.errors import ValidationError  # noqa: E402
from mlsysim.viz import footprint_parts, plot_footprint  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def heights(ax):
    return [p.get_height() for p in ax.patches]


def bottoms(ax):
    return [p.get_y() for p in ax.patches]


def test_sustainability_bars_are_the_results_numbers():
    """DGX A100 (embodied carbon published): energy = accelerators N P T + hosts + IT (PUE - 1)
    = facility energy; carbon = operational + embodied."""
    r = mlsysim.SustainabilityModel().solve("DGX_A100", duration_days=30, mfu=0.4,
                                            datacenter="Hyperscale", grid="Quebec")
    fig, ax = plot_footprint(r)
    f = r.fp
    hours = f.seconds / 3600
    acc, host, over = heights(ax[0])
    assert acc == pytest.approx(f.accelerators * f.accelerator_w * hours / 1000, rel=1e-12)
    assert host == pytest.approx(f.host_w * hours / 1000, rel=1e-12)
    assert over == pytest.approx(r.it_energy_kwh * (r.pue - 1), rel=1e-12)
    assert acc + host == pytest.approx(r.it_energy_kwh, rel=1e-12)
    assert acc + host + over == pytest.approx(r.total_energy_kwh, rel=1e-12)
    assert bottoms(ax[0]) == pytest.approx([0, acc, acc + host])
    op, emb = heights(ax[1])
    assert op == pytest.approx(r.carbon_footprint_kg, rel=1e-12)
    assert emb == pytest.approx(r.embodied_carbon_kg, rel=1e-12)
    assert op + emb == pytest.approx(r.total_carbon_kg, rel=1e-12)
    assert bottoms(ax[1]) == pytest.approx([0, op])
    assert fig.axes[0] is ax[0]


def test_economics_result_without_embodied_carbon():
    """H100 has no published embodied carbon: one carbon segment, and the title says so."""
    r = mlsysim.EconomicsModel().solve("DGX_H100", duration_days=30, mfu=0.4,
                                       datacenter="Hyperscale", grid="PJM")
    fig, ax = plot_footprint(r)
    assert sum(heights(ax[0])) == pytest.approx(r.total_energy_kwh, rel=1e-12)
    assert heights(ax[1]) == pytest.approx([r.carbon_footprint_kg], rel=1e-12)
    assert "unknown" in ax[1].get_title()
    energy, carbon = footprint_parts(r)
    assert list(carbon) == ["operational"] and len(energy) == 3


def test_draws_into_given_axes_and_refuses_other_results():
    import matplotlib.pyplot as plt
    r = mlsysim.SustainabilityModel().solve("H100", duration_days=1, mfu=0.5,
                                            datacenter="Hyperscale", grid="Quebec")
    fig, axes = plt.subplots(1, 2)
    got_fig, got = plot_footprint(r, axes=axes)
    assert got_fig is fig and got[0] is axes[0]
    assert heights(axes[0])[1] == 0.0                  # a bare chip: no host counted
    with pytest.raises(ValidationError, match="SustainabilityResult"):
        plot_footprint(mlsysim.Engine.solve("ResNet50", "A100"))


def test_importing_the_plots_does_not_import_matplotlib():
    code = "import sys, mlsysim.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr
