"""Suite-wide fixtures."""

import os
import sys

import pytest


def _clear_memoized() -> None:
    """Empty every ContentCache and every functools cache of the package."""
    from mlsysim.cache import clear_caches

    clear_caches()
    for name, module in list(sys.modules.items()):
        if not name.startswith("mlsysim") or module is None:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


@pytest.fixture(autouse=True)
def _cold_caches_under_mutation_stats():
    """mutmut maps each function to the tests that call it, from one stats run of the suite;
    a memoized result (the calibration fit, a lowered table) would credit only the first test
    that built it, and that function's mutants would then run against that test alone. Under
    the stats run every test starts cold, so each is credited with what it really uses."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        _clear_memoized()
    yield
