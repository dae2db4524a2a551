"""The broadcast grid of ParallelismOptimizer (``evaluate_grid``): a mixed grid gives each
config exactly what that config gives alone, although the grid evaluates its per-depth and
per-(pp, dp) terms once per distinct value and picks the slowest and the fullest stage kinds
by comparison; ``evaluate_one``, the same equations in Python floats for a single solve, gives
what the grid gives on random configs; and ``factorize``, its sort-free ``np.unique``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mlsysim
from mlsysim.core.collectives import resolve_system, system_spec
from mlsysim.solvers.distributed import evaluate_grid, evaluate_one, factorize, parts_for

ARGS = dict(precision="bf16", seq=2048, recompute="selective", schedule="1f1b",
            overlap=True, optimizer="adam", capacity_factor=1.0, usable=80e9)


@pytest.mark.parametrize("x", [
    np.array([8, 2, 8, 4, 2, 0]),                 # small range: the table
    np.array([3, 10**9, 3, 7]),                   # range past 4 n + 4096: the sort
    np.array([-2, 5, -2]),                        # negatives: the sort
    np.array([1.5, 0.5, 1.5]),                    # floats: the sort
])
def test_factorize_is_np_unique_with_the_inverse(x):
    values, index = factorize(x)
    want_values, want_index = np.unique(x, return_inverse=True)
    assert values.tolist() == want_values.tolist()
    assert index.tolist() == want_index.ravel().tolist()
    assert values[index].tolist() == x.tolist()


@pytest.fixture(scope="module")
def setup():
    system = system_spec(mlsysim.Fleet(name="4 x DGX H100",
                                       node=mlsysim.Systems.Nodes.DGX_H100, count=4))
    hardware, path = resolve_system(system)
    model = mlsysim.Models.Llama3_8B
    # tp 2 without sequence parallelism: hand-offs also all-gather the tp shards.
    parts = parts_for(model, hardware, path, "bf16", 2048, 2, 1, 1, "selective", False, 1.0,
                      32)
    return system, model, parts


def _grid(rows):
    cols = dict(zip(("pp", "dp", "v", "mbs", "m", "zero"), np.array(rows).T))
    n = len(rows)
    return dict(tp=np.full(n, 2), cp=np.ones(n, dtype=int), **cols)


def test_a_mixed_grid_gives_every_config_what_it_gives_alone(setup):
    """16 devices / tp 2 = pp x dp; batch 32 = dp x m x mbs. Every key of the result, config
    by config, equals a one-config grid's (to the last bit but for summation order)."""
    system, model, parts = setup
    rows = []
    for pp, v, mbs, zero in itertools.product((1, 2, 4), (1, 2), (1, 2), (0, 1, 3)):
        if v > 1 and pp == 1:
            continue
        dp = 16 // pp
        rows.append((pp, dp, v, mbs, 32 // (dp * mbs), zero))
    grid = evaluate_grid(parts, system, model, _grid(rows), sp=False, **ARGS)
    keys = [k for k in grid if k != "slowest"]
    for i, row in enumerate(rows):
        alone = evaluate_grid(parts, system, model, _grid([row]), sp=False, **ARGS)
        for k in keys:
            assert grid[k][i] == pytest.approx(alone[k][0], rel=1e-12, abs=0.0), (row, k)
    # The grid mixes what it must: several depths, ZeRO-3 gathers, pipeline hand-offs.
    assert len(set(grid["p2p"].tolist())) > 2 and np.any(grid["p2p"] == 0.0)
    zero = np.array(rows)[:, 5]
    assert np.all(grid["weights"][zero == 3] < grid["weights"][zero == 0].min())


def test_a_grid_whose_lowering_columns_vary_is_refused(setup):
    """tp and cp are the lowering's (``parts``): a grid mixing two is a caller's bug."""
    system, model, parts = setup
    grid = _grid([(1, 16, 1, 1, 2, 0), (1, 16, 1, 1, 2, 0)])
    grid["tp"] = np.array([2, 4])
    with pytest.raises(ValueError, match=r"tp must be the same in every config .*\[2, 4\]"):
        evaluate_grid(parts, system, model, grid, sp=False, **ARGS)


@pytest.mark.parametrize("model_name,tp,recompute,sp,flash", [
    ("Llama3_8B", 2, "selective", False, True),    # hand-offs also all-gather the tp shards
    ("Llama3_8B", 4, "full", True, True),          # ZeRO-3's regather under recomputation
    ("GPT2", 1, "none", False, False),             # materialized scores, tied embeddings
    ("Mixtral_8x7B", 2, "none", True, True),       # MoE rows and their activations
    ("ResNet50", 1, "none", False, True),          # a layered model: one stage
])
def test_the_single_config_path_gives_what_the_grid_gives(setup, model_name, tp, recompute,
                                                          sp, flash):
    """A single solve prices its config with ``evaluate_one`` (floats); the optimizer with
    ``evaluate_grid`` (arrays). On 60 random configs per lowering (depth, interleaving,
    micro-batch, ZeRO stage, rank order, schedule, overlap, stage layout, band edge,
    backward prefetch, ZeRO-3 throughput cap) every
    key agrees to 1e-12: a factor changed in one of the two and not the other fails here."""
    system, _, _ = setup
    hardware, path = resolve_system(system)
    model = mlsysim.Models.get(model_name)
    layers = getattr(model, "layers", 1) if hasattr(model, "heads") else 1
    rng = np.random.default_rng(len(model_name) * 7 + tp)
    seq = 2048 if hasattr(model, "heads") else 1
    checked = 0
    while checked < 60:
        variant = ["nominal", "fast", "slow"][rng.integers(3)]
        dropout = bool(rng.integers(2))
        parts = parts_for(model, hardware, path, "bf16", seq, tp, 1, 1, recompute, sp, 1.0,
                          32, flash, dropout, variant)
        pp = int(rng.choice([1, 2, 4, 8])) if layers > 1 else 1
        if 32 % (tp * pp):
            continue
        dp = 32 // (tp * pp)
        v = int(rng.choice([1, 2])) if pp > 1 and layers % (2 * pp) == 0 else 1
        # Sizes past the 64 priced as one block take the single-size path.
        mbs, m = int(rng.choice([1, 2, 3, 80])), int(rng.choice([1, 2, 4, 8])) * pp
        layout = None
        if pp > 2 and rng.integers(2):
            layout = (int(rng.integers(1, layers // pp + 1)), None)
        opts = dict(precision="bf16", seq=seq if seq > 1 else 1, sp=sp, recompute=recompute,
                    schedule=["1f1b", "gpipe"][rng.integers(2)], overlap=bool(rng.integers(2)),
                    optimizer=["adam", "sgd", "adafactor" if seq > 1 else "adam8bit"][
                        rng.integers(3)],
                    capacity_factor=1.0, usable=80e9,
                    rank_order=["tp-cp-dp-pp", "tp-cp-pp-dp"][rng.integers(2)], flash=flash,
                    layout=layout, dropout=dropout, variant=variant,
                    zero3_split=bool(rng.integers(2)),
                    backward_prefetch=["pre", "post"][rng.integers(2)],
                    # a sharding runtime's cap: none, one that binds, one above NCCL's
                    zero3_throughput=[None, 2e9, 1e13][rng.integers(3)])
        zero = int(rng.integers(4))
        grid = evaluate_grid(parts, system, model, dict(
            tp=np.array([tp]), cp=np.array([1]), pp=np.array([pp]), dp=np.array([dp]),
            v=np.array([v]), mbs=np.array([mbs]), m=np.array([m]), zero=np.array([zero])),
            **opts)
        one = evaluate_one(parts, system, model, tp=tp, pp=pp, cp=1, dp=dp, v=v, mbs=mbs, m=m,
                           zero=zero, **opts)
        assert set(one) == set(grid)
        for k, value in one.items():
            assert value == pytest.approx(float(grid[k][0]), rel=1e-12, abs=0.0), (k, opts)
        checked += 1
