"""core.validate's checks: the fast path for plain ints and floats (taken before the ABC
checks) accepts exactly what the full rules accept and returns the same value and type."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mlsysim.core import validate as check
from mlsysim.errors import ValidationError


def _full_positive_int(value):
    """The rule as written before the fast path: a Real, finite, whole, >= 1, not a bool."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                            np.floating)) \
        and math.isfinite(value) and value == int(value) and value >= 1
    return int(value) if ok else None


@given(st.one_of(st.integers(-10, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                 st.booleans()))
@example(1.0)          # the edges off the fast path: a float and a numpy int at the minimum
@example(np.int64(1))
@example(0.999)
def test_positive_int_agrees_with_its_rule(value):
    expected = _full_positive_int(value)
    if expected is None:
        with pytest.raises(ValidationError, match="must be a positive whole number"):
            check.positive_int("n", value, "T")
    else:
        got = check.positive_int("n", value, "T")
        assert got == expected and type(got) is int


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6),
                 st.booleans()))
def test_positive_float_and_fraction_agree_with_their_rules(value):
    real = not isinstance(value, bool)
    if real and math.isfinite(value) and value > 0:
        got = check.positive_float("x", value, "T")
        assert got == float(value) and type(got) is float
    else:
        with pytest.raises(ValidationError):
            check.positive_float("x", value, "T")
    if real and math.isfinite(value) and 0 <= value <= 1:
        got = check.fraction("f", value, "T")
        assert got == float(value) and type(got) is float
    else:
        with pytest.raises(ValidationError, match="between 0 and 1"):
            check.fraction("f", value, "T")


def test_numpy_and_bool_inputs_still_take_the_full_rules():
    assert check.positive_int("n", np.int64(8), "T") == 8
    assert type(check.positive_int("n", np.int64(8), "T")) is int
    assert check.positive_float("x", np.float32(0.5), "T") == 0.5
    assert check.positive_float("x", 0.0, "T", allow_zero=True) == 0.0
    for bad in (True, np.int64(0), "8"):
        with pytest.raises(ValidationError):
            check.positive_int("n", bad, "T")
    for bad in ("0.5", None, False):         # a number's text is not a number
        with pytest.raises(ValidationError, match="between 0 and 1"):
            check.fraction("f", bad, "T")
        with pytest.raises(ValidationError, match="positive number"):
            check.positive_float("x", bad, "T")
