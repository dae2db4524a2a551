"""Bandwidths as networks quote them ("400 Gb/s": b is the bit, not the barn or the
gilbert), and a fleet whose nodes have no NICs is refused where it is built."""

from __future__ import annotations

import pytest

from mlsysim import Q_, Fleet, NetworkFabric, Node
from mlsysim.errors import SpecError


@pytest.mark.parametrize("text, gb_per_s", [
    ("400 Gb/s", 50.0),          # InfiniBand NDR: 400e9 bit/s / 8 = 50e9 B/s
    ("1.8 Tb/s", 225.0),         # 1.8e12 / 8
    ("100 Mb/s", 0.0125),        # 100e6 / 8 = 12.5 MB/s
    ("400 Gbit/s", 50.0),
    ("400 Gbps", 50.0),
])
def test_bit_rates_convert_to_bytes_per_second(text, gb_per_s):
    assert Q_(text).to("GB/s").magnitude == pytest.approx(gb_per_s, rel=1e-12)


def test_the_barn_and_the_gilbert_keep_their_names():
    assert Q_("8 kb").to("byte").magnitude == pytest.approx(1000.0, rel=1e-12)
    assert Q_("1 barn").to("m**2").magnitude == pytest.approx(1e-28, rel=1e-12)
    assert Q_("1 gilbert").dimensionality == Q_("1 ampere").dimensionality


def test_a_fabric_given_in_gigabits_builds():
    f = NetworkFabric(name="f", topology="fat_tree", bandwidth="400 Gb/s", latency="2 us")
    assert f.bandwidth.to("GB/s").magnitude == pytest.approx(50.0, rel=1e-12)


def test_a_fleet_of_nodes_without_nics_is_refused_naming_the_field():
    f = NetworkFabric(name="f", topology="fat_tree", bandwidth="400 Gb/s")
    node = Node(name="n", accelerator="H100", accelerators_per_node=4,
                intra_node_bw="450 GB/s")
    with pytest.raises(SpecError, match=r"nics_per_node=0, so fabric 'f' reaches none"):
        Fleet(name="x", node=node, count=8, fabric=f)
    assert Fleet(name="one", node=node, count=1, fabric=f).total_accelerators == 4
