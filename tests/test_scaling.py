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


def test_non_string_precision_with_a_fleet_is_refused_by_scaling_model():
    with pytest.raises(ValidationError) as e:
        ScalingModel().solve("5.76e23 flop", fleet="DGX_H100_SuperPOD_256", mfu=0.4,
                             precision=16)
    assert str(e.value) == ("The 'precision' parameter of ScalingModel must be a precision "
                            "name such as 'fp16'. Got 16 instead.")


def test_headline_without_fleet_leaves_the_fleet_fields_empty():
    """No fleet: fleet, accelerators, precision and mfu show None (not 0 accelerators)."""
    h = ScalingModel().solve("5.76e23 flop").headline()
    assert [h[k] for k in ("fleet", "accelerators", "precision", "mfu")] == [None] * 4
    assert h["dataset_tokens"] is None


def test_headline_dataset_tokens_is_a_token_quantity():
    """dataset_tokens=15e12 shows as 1.5e13 token (the unit kept, not a bare number)."""
    h = ScalingModel().solve("5.76e23 flop", dataset_tokens=15e12).headline()
    q = h["dataset_tokens"]
    assert str(q.units) == "token"
    assert q.magnitude == 15e12
