"""Each solver's ``example()`` keywords are what the docs and a user copy: a zoo entry in them
is written as its zoo key, exactly (lookups forgive case and separators, a copied example
should not need to)."""

import pytest

from mlsysim import zoo
from mlsysim.core.contract import all_solvers

REGISTRIES = ("Hardware", "Models", "Nodes", "Clusters", "Datacenters", "Grids", "Fabrics",
              "ServingEngines")


def _zoo_keys() -> dict[str, str]:
    """Every zoo key, by its lower-cased spelling."""
    return {e.key.lower(): e.key for r in REGISTRIES for e in getattr(zoo, r)}


@pytest.mark.parametrize("feasible", [True, False])
@pytest.mark.parametrize("solver", all_solvers(), ids=lambda s: s.__name__)
def test_example_zoo_names_are_spelled_as_their_keys(solver, feasible):
    keys = _zoo_keys()
    for option, value in solver.example(feasible).items():
        if isinstance(value, str) and value.lower() in keys:
            assert value == keys[value.lower()], (solver.__name__, option)

