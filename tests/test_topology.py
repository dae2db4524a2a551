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
