"""What every solver shows a user, pinned: the keys and units of ``headline()`` (the JSON the
CLI's ``--json`` prints), the top-level keys of ``trace()``, and the words of ``explain()``.

Numbers are masked (``#``): the solver tests check values by hand; this file catches a renamed
or dropped field, a unit that changed, a line of the explanation lost or garbled (mutmut's
``"XXkeyXX"`` mutants live here). After an intended change, regenerate the snapshot::

    python tests/test_presentation.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mlsysim.solvers.base import all_solvers
from mlsysim.units import Q_, Rate

SNAPSHOT = Path(__file__).parent / "data" / "presentation.json"
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _unit(value) -> str:
    if isinstance(value, Rate):
        return f"rate {value.quantity.units:~}"
    if isinstance(value, Q_):
        return f"{value.units:~}" or "dimensionless"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_unit(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{len(value)}]"
    return type(value).__name__


def presentation(cls) -> dict:
    """The masked face of ``cls``'s feasible example."""
    r = cls().solve(**cls.example(True))
    return {
        "headline": {k: _unit(v) for k, v in r.headline().items()},
        "trace": sorted(r.trace()),
        "explain": _NUMBER.sub("#", r.explain()).splitlines(),
    }


def _current() -> dict:
    return {cls.__name__: presentation(cls) for cls in all_solvers()}


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_solver_has_a_snapshot(stored):
    assert sorted(stored) == sorted(cls.__name__ for cls in all_solvers())


@pytest.mark.parametrize("cls", all_solvers(), ids=lambda c: c.__name__)
def test_what_a_solver_shows_is_unchanged(cls, stored):
    now, then = presentation(cls), stored[cls.__name__]
    hint = "intended? regenerate with: python tests/test_presentation.py"
    assert now["headline"] == then["headline"], hint
    assert now["trace"] == then["trace"], hint
    assert now["explain"] == then["explain"], hint


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(_current(), indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)
