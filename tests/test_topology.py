"""TopologyModel: a single switch's hops, and its refusals word for word."""

import pytest

from mlsysim.errors import ValidationError
from mlsysim.solvers.topology import TopologyModel

TOPOLOGY = TopologyModel()


def test_a_single_switch_is_two_links_between_any_two_nodes():
    """Ethernet 100G is a 'switched' fabric, modelled as one switch: 16 nodes with one port
    each hang off one radix-64 switch, so every pair is node -> switch -> node: 2 links on
    average and at most (one tier)."""
    r = TOPOLOGY.solve("Ethernet_100G", num_nodes=16)
    assert r.topology == "single_switch"
    assert (r.hops_avg, r.diameter, r.tiers) == (2.0, 2, 1)
    assert r.feasible


def test_a_fabric_with_no_modelled_topology_asks_for_one():
    """AMD Infinity Fabric is a mesh, which TopologyModel does not model: the topology must be
    named."""
    with pytest.raises(ValidationError) as info:
        TOPOLOGY.solve("AMD_Infinity_Fabric", num_nodes=8)
    assert info.value.field == "topology"
    assert str(info.value) == (
        "The 'topology' parameter of TopologyModel is needed: 'AMD Infinity Fabric (xGMI, "
        "Instinct MI300 series)' is a mesh; choose one of: fat_tree, rail_optimized, "
        "single_switch, torus, dragonfly.")


def test_an_oversubscription_below_one_is_refused_word_for_word():
    with pytest.raises(ValidationError) as info:
        TOPOLOGY.solve("InfiniBand_NDR", "fat_tree", 512, oversubscription_ratio=0.5)
    assert str(info.value) == ("The 'oversubscription_ratio' parameter of TopologyModel must "
                               "be at least 1. Got 0.5 instead.")


def test_switch_radix_below_four_is_refused_word_for_word():
    with pytest.raises(ValidationError) as info:
        TopologyModel().solve("TPU_v4_ICI", "torus", 8, switch_radix=3)
    assert info.value.field == "switch_radix"
    assert str(info.value) == ("The 'switch_radix' parameter of TopologyModel must be at least "
                               "4. Got 3 instead.")


def test_a_one_node_torus_has_no_bisection_links():
    """A single node cuts nothing: 0 links, 0 B/s across the bisection."""
    r = TopologyModel().solve("TPU_v4_ICI", "torus", 1)
    assert (r.bisection_links, r.bisection_bps) == (0.0, 0.0)


def test_an_overfull_dragonfly_lists_every_problem_and_its_group_count():
    """p=2 terminals per router, a=4 routers per group, h=2 global links per router: a group
    holds a p = 8 terminals, so 100 terminals need ceil(100 / 8) = 13 groups, but a h = 8
    global links per group reach only 9; the router radix p + a - 1 + h = 7 exceeds 4. The
    13-group bisection is 13 x 4 x 2 / 2 x (6 x 7) / (13 x 12 / 2) = 52 x 42 / 78 = 28 links."""
    r = TopologyModel().solve("TPU_v4_ICI", "dragonfly", 100, dragonfly_shape=(2, 4, 2),
                              switch_radix=4)
    assert not r.feasible
    assert r.reason == ("100 terminals need 13 groups; a dragonfly with a h = 8 global links "
                        "per group reaches 9; routers need radix p + a - 1 + h = 7, more than "
                        "the switch radix 4")
    assert r.bisection_links == pytest.approx(28.0, rel=1e-12)
    assert r.explain().splitlines()[2] == (
        "  dragonfly p=2, a=4, h=2: 13 group(s), router radix 7; bisection 28 global links x "
        "50 GB/s = 1.4 TB/s")
