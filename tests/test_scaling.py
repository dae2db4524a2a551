"""ScalingModel's refusals, word for word."""

import pytest

from mlsysim.errors import ValidationError
from mlsysim.solvers.scaling import ScalingModel


def test_an_mfu_without_a_fleet_is_refused_and_says_what_is_missing():
    """mfu is a fraction of a fleet's peak: with no fleet there is nothing to apply it to."""
    with pytest.raises(ValidationError) as info:
        ScalingModel().solve("1e24 flop", mfu=0.4)
    assert info.value.field == "mfu"
    assert str(info.value) == ("The 'mfu' parameter of ScalingModel needs a fleet to apply to. "
                               "Got 0.4 without fleet=.")
