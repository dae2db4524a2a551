"""The unit system: distinct dimensions, MAC = 2 flop, byte with its own dimension."""

import pytest

from mlsysim import Q_
from mlsysim.units import DimensionalityError, Rate


def test_mac_is_two_flop():
    # ResNet-50's "4.1 GFLOPs" counts multiply-accumulates: 4.1 GMAC = 8.2 GFLOP exactly.
    assert Q_("4.1 GMAC").to("GFLOP").magnitude == pytest.approx(8.2, rel=1e-12)


def test_compute_rate_never_converts_to_bandwidth():
    with pytest.raises(DimensionalityError):
        Q_("312 TFLOP/s").to("GB/s")


def test_byte_is_not_dimensionless():
    # pint's default registry makes bytes dimensionless; ours must not.
    with pytest.raises(DimensionalityError):
        Q_("2 TB/s").to("1/s")
    assert Q_("1 GiB").to("byte").magnitude == 2**30


@pytest.mark.parametrize("a,b", [("param", "token"), ("token", "sample"), ("flop", "byte"),
                                 ("param", "byte")])
def test_counted_dimensions_are_distinct(a, b):
    with pytest.raises(DimensionalityError):
        Q_(1, a).to(b)


def test_tutorial_string_quantity():
    assert Q_("2 TB/s").to("GB/s").magnitude == pytest.approx(2000.0)
    assert Q_("312 TFLOPs/s").to("TFLOP/s").magnitude == pytest.approx(312.0)
    assert Q_("624 TOPS").to("TFLOP/s").magnitude == pytest.approx(624.0)


def test_rate_formats_as_a_bare_number_but_converts():
    r = Rate(1843.4, "sample/s")
    assert f"{r:.0f}" == "1843"
    assert r.to("sample/minute").magnitude == pytest.approx(1843.4 * 60)
