"""The numbers every solver shows a user, pinned: the values of ``headline()``, the numbers
printed in ``explain()`` and the values in ``trace()`` (less its copy of the headline), for
every registered solver's feasible and infeasible ``example()``, against
``tests/data/presentation_values.json``.

``tests/test_presentation.py`` pins the words, keys and units with the numbers masked; this file
pins the numbers, so a unit factor nudged (``1e3`` -> ``1001``), a format changed (``:.3g`` ->
``:.4g``), a term dropped from a printed sum or a headline value computed another way is seen
even where no hand-derived test reads that figure. The solver tests derive values by hand; this
one only says "what the user sees has not moved". After an intended change, regenerate and read
the diff::

    python tests/test_presentation_values.py

How numbers are compared, and why this is robust across machines:

- **Stored full floats** (headline and trace values) are compared with a relative tolerance of
  1e-6 (``rel=1e-6``). Everything here is closed-form float arithmetic or a bisection/search
  converged far below that, so two machines differ by a few ulps (1e-15 relative, e.g. a libm
  ``exp``), never 1e-6; the smallest mutation the survivors showed, ``1e3`` -> ``1001``, is
  1e-3 relative. Rounding to 4 significant figures instead would flip at rounding edges (a
  value at 1.23450000 vs 1.23449999 rounds to different figures) and would hide changes below
  5e-4, so it is neither more robust nor as sensitive.
- **Printed numbers** (every number inside a string: an ``explain()`` line, a trace equation)
  are what the solver's own format wrote, already rounded to 3-4 figures. They are compared as
  text, exactly, when written with at most 6 significant digits (the solver chose that
  rounding, and a shown value changes only if its float crosses a decimal rounding edge by a
  last-bit difference: for a 4-figure format about one chance in 1e11 per number); one written
  with more digits (a raw ``repr`` or ``:.12f``, e.g. "MFU + terms = 1.000000000000") is
  compared as a float with the same ``rel=1e-6``, since its last digits are float noise.
  Integers with thousands separators (parameter counts) are exact integers: compared as text.
  The words around them must match exactly too (test_presentation already says so, masked).
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
from test_presentation import _NUMBER

from mlsysim.solvers.base import all_solvers
from mlsysim.units import Q_, Rate

SNAPSHOT = Path(__file__).parent / "data" / "presentation_values.json"
REL = 1e-6
_RAW_DIGITS = 6        # a printed number with more significant digits is compared as a float


def _float(x: float):
    x = float(x)
    return x if math.isfinite(x) else repr(x)        # "inf", "-inf", "nan": JSON has none


def _plain(value):
    """Headline values as JSON data: a quantity or Rate as ``{"value", "unit"}``, non-finite
    floats as their repr (so inf and NaN stay apart, unlike the package's ``jsonable``)."""
    if isinstance(value, Rate):
        return {"value": _float(value), "unit": value.unit}
    if isinstance(value, Q_):
        mag = value.magnitude
        if hasattr(mag, "tolist") and not isinstance(mag, float):
            mag = mag.tolist()
        return {"value": _plain(mag), "unit": f"{value.units:~P}"}
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):                      # numpy scalars and arrays
        return _plain(value.tolist())
    return str(value)


def values(cls, feasible: bool) -> dict:
    """The numbers ``cls``'s feasible (or infeasible) example shows."""
    r = cls().solve(**cls.example(feasible))
    trace = {k: v for k, v in r.trace().items() if k != "headline"}
    return {"headline": _plain(r.headline()), "explain": r.explain().splitlines(),
            "trace": _plain(trace)}


def _current() -> dict:
    return {f"{cls.__name__}[{'feasible' if f else 'infeasible'}]": values(cls, f)
            for cls in all_solvers() for f in (True, False)}


def _digits(number: str) -> int:
    mantissa = re.split(r"[eE]", number)[0]
    return len(re.sub(r"\D", "", mantissa).lstrip("0"))


def _same_number(now: str, then: str) -> bool:
    if now == then:
        return True
    raw = "." in then or "e" in then.lower()
    if raw and max(_digits(now), _digits(then)) > _RAW_DIGITS:
        return math.isclose(float(now.replace(",", "")), float(then.replace(",", "")),
                            rel_tol=REL)
    return False


def _same_text(now: str, then: str) -> bool:
    if _NUMBER.sub("#", now) != _NUMBER.sub("#", then):
        return False
    return all(_same_number(a, b) for a, b in zip(_NUMBER.findall(now), _NUMBER.findall(then)))


def differences(now, then, where: str = "") -> list[str]:
    """Where ``now`` and ``then`` differ, one line each (empty when they agree)."""
    if isinstance(then, dict) and isinstance(now, dict):
        if sorted(now) != sorted(then):
            return [f"{where}: keys {sorted(now)} != {sorted(then)}"]
        return [d for k in then for d in differences(now[k], then[k], f"{where}.{k}")]
    if isinstance(then, list) and isinstance(now, list):
        if len(now) != len(then):
            return [f"{where}: {len(now)} items != {len(then)}"]
        return [d for i, (a, b) in enumerate(zip(now, then))
                for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(then, bool) or isinstance(now, bool) or then is None or now is None:
        ok = now is then or (type(now) is type(then) and now == then)
    elif isinstance(then, (int, float)) and isinstance(now, (int, float)):
        ok = (isinstance(now, int) == isinstance(then, int)) and (
            now == then if isinstance(then, int) else math.isclose(now, then, rel_tol=REL))
    elif isinstance(then, str) and isinstance(now, str):
        ok = _same_text(now, then)
    else:
        ok = False
    return [] if ok else [f"{where}: {now!r} != stored {then!r}"]


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


CASES = [(cls, f) for cls in all_solvers() for f in (True, False)]


def test_every_solver_example_has_a_snapshot(stored):
    assert sorted(stored) == sorted(_current())


@pytest.mark.parametrize("cls, feasible", CASES,
                         ids=[f"{c.__name__}-{'feasible' if f else 'infeasible'}"
                              for c, f in CASES])
def test_the_numbers_a_solver_shows_are_unchanged(cls, feasible, stored):
    key = f"{cls.__name__}[{'feasible' if feasible else 'infeasible'}]"
    diff = differences(values(cls, feasible), stored[key], key)
    assert not diff, ("\n".join(diff[:20])
                      + "\nintended? regenerate with: python tests/test_presentation_values.py")


def test_the_comparison_sees_a_one_in_a_thousand_change_and_tolerates_float_noise():
    """The comparator itself: a printed 12.35 ms is not 12.36 ms and 1000.0 is not 1001.0,
    a raw 1.000000000000 equals 1.000000000001 (rel 1e-12 < 1e-6), and a word changed next to
    an equal number is a difference."""
    assert differences("t = 12.35 ms", "t = 12.36 ms")
    assert differences(1001.0, 1000.0) and not differences(1000.0 * (1 + 1e-9), 1000.0)
    assert not differences("= 1.000000000001", "= 1.000000000000")
    assert differences("t = 12.35 s", "t = 12.35 ms")
    assert differences({"a": 1}, {"a": 1.0}) and differences(True, 1)


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(_current(), indent=1, sort_keys=True, ensure_ascii=False)
                        + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)
