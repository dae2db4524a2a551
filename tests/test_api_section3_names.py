"""Two names of ../shared/API.md section 3 that users' notebooks read: a training result's
``node_profile`` and a grid's ``pue`` / ``wue``."""

from __future__ import annotations

import pytest

import mlsysim
from mlsysim import DistributedModel, Fleet, Infra, Systems

FLEET = Fleet(name="16 x DGX H100", node=Systems.Nodes.DGX_H100, count=16)


@pytest.fixture(scope="module")
def run():
    return DistributedModel().solve("Llama3_70B", FLEET, batch_size=256, seq_len=4096,
                                    precision="bf16", tp_size=8, pp_size=2, zero_stage=1)


def test_node_profile_splits_the_step_into_parts_that_add_up(run):
    """compute (micro-batches less the TP/EP/PP collectives in them) + exposed communication
    + bubble + optimizer = the step; 8 of the 128 GPUs are one node, so the node's token rate
    is 8/128 of the fleet's."""
    n = run.node_profile
    assert n.devices == 8 and n.node == "NVIDIA DGX H100"
    in_mb = run.tp_comm_s + run.ep_comm_s + run.pp_comm_s + run.zero3_exposed_s
    assert n.compute_s == pytest.approx(run.compute_s - in_mb, rel=1e-12)
    assert n.communication_s == pytest.approx(
        run.tp_comm_s + run.ep_comm_s + run.pp_comm_s + run.dp_exposed_s
        + run.zero3_exposed_s, rel=1e-12)
    total = n.compute_s + n.communication_s + n.bubble_s + n.optimizer_s
    assert total == pytest.approx(run.step_s, rel=1e-12)
    assert n.latency.to("ms").magnitude == pytest.approx(run.step_s * 1e3, rel=1e-12)
    assert float(n.throughput) == pytest.approx(float(run.tokens_per_s) * 8 / 128, rel=1e-12)
    assert n.memory_footprint.to("GB").magnitude == pytest.approx(
        run.memory_per_device.to("GB").magnitude, rel=1e-12)
    assert (n.mfu, n.feasible) == (run.mfu, True)
    # TP 8 over 80 layers leaves compute the largest part.
    assert n.bottleneck == "Compute" and n.binding == "compute"
    assert n.to_dict()["bottleneck"] == "Compute"


def test_node_profile_of_a_chip_is_one_device_and_says_memory_when_it_does_not_fit():
    """Llama-3-8B with Adam unsharded on one H100: 16 B/param x 8.03e9 = 128 GB of weights,
    gradients and optimizer state alone, past its 80 GB."""
    r = DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=2048)
    n = r.node_profile
    assert n.devices == 1 and not n.feasible
    assert n.bottleneck == "Memory" and n.reason == r.reason
    assert float(n.throughput) == pytest.approx(float(r.tokens_per_s), rel=1e-12)


def test_a_grid_carries_the_pue_and_wue_of_its_default_datacenter():
    """PUE belongs to a datacenter: a grid's is its zoo site's where one publishes it
    (Meta Prineville on PacifiCorp's Oregon grid: 1.09, WUE 0.22 L/kWh; Meta Lulea on SE1:
    1.07, no WUE), else the industry-average archetype's (Uptime Institute 1.58, LBNL's US
    average on-site WUE 0.36 L/kWh)."""
    G = Infra.Grids
    assert (G.Quebec.pue, G.Quebec.wue) == (1.58, 0.36)
    assert G.Quebec.default_datacenter.key == "Enterprise"
    assert G.get("US_Oregon_PacifiCorp").pue == 1.09
    assert G.get("US_Oregon_PacifiCorp").wue == 0.22
    assert (G.get("Sweden_SE1").pue, G.get("Sweden_SE1").wue) == (1.07, None)
    assert G.US_Avg.carbon_intensity_g_kwh > G.Norway.carbon_intensity_g_kwh
    assert isinstance(G.Poland.pue, float) and mlsysim.Infra.Grids.Poland.pue >= 1.0
