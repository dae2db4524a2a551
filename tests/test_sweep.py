"""Grid sweeps equal the scalar solvers point by point; skips are counted; Pareto fronts."""

import json

import numpy as np
import pytest

import mlsysim
from mlsysim import Engine, ServingModel
from mlsysim.errors import MLSysimError, ValidationError
from mlsysim.optimize.sweep import SweepResult, pareto_front, serving_sweep, sweep

BATCHES = [1, 3, 8, 64, 511, 4096]


@pytest.fixture(scope="module")
def grid():
    return sweep(["Llama3_8B", "ResNet50", "Mamba_2_8B"], ["A100", "H100"], BATCHES,
                 precisions=["fp16", "fp8"], seq_lens=[512, 4096, 100_000])


def test_grid_values_equal_scalar_solves(grid):
    rng = np.random.default_rng(0)
    assert len(grid) > 0
    for i in rng.choice(len(grid), 40, replace=False):
        row = {k: v[i] for k, v in grid.columns.items()}
        model = {"Llama-3-8B": "Llama3_8B", "ResNet-50": "ResNet50",
                 "Mamba-2.8B": "Mamba_2_8B"}[str(row["model"])]
        hw = {"NVIDIA A100 80GB SXM": "A100", "NVIDIA H100 SXM5 80GB": "H100"}[
            str(row["hardware"])]
        p = Engine.solve(model, hw, batch_size=int(row["batch_size"]),
                         precision=str(row["precision"]),
                         seq_len=int(row["seq_len"]) or None)
        assert row["latency_s"] == pytest.approx(p.latency_s, rel=1e-12)
        assert row["throughput"] == pytest.approx(float(p.throughput), rel=1e-12)
        assert row["bottleneck"] == p.bottleneck
        assert row["memory_bytes"] == pytest.approx(p.memory_footprint.to("byte").magnitude,
                                                    rel=1e-12)
        assert bool(row["feasible"]) == p.feasible
        assert p.seq_len == (int(row["seq_len"]) or None)


def test_every_grid_point_is_counted_once(grid):
    total = 3 * 2 * 2 * 3 * len(BATCHES)
    counts = grid.counts
    assert counts["evaluated"] == len(grid)
    assert counts["feasible"] + counts["memory capacity"] == len(grid)
    assert len(grid) + sum(grid.skipped.values()) == total
    nb = len(BATCHES)
    # A100 has no fp8: 3 models x (3 seq for the two sequence models, 1 for ResNet).
    assert grid.skipped["unsupported precision"] == (3 + 3 + 1) * nb
    # 100k tokens exceed Llama-3-8B's 8,192 (not Mamba's): A100 fp16, H100 fp16 and fp8.
    assert grid.skipped["seq_len beyond context"] == 3 * nb
    # ResNet-50 runs once per (device, precision): the two other seq_lens are not repeated.
    assert grid.skipped["no sequence"] == 2 * 2 * 2 * nb
    assert all(msg for _, msg in grid.skipped_plans)
    assert not grid["feasible"].all()           # batch 4096 of a decode does not fit
    resnet = grid["model"] == "ResNet-50"
    assert (grid["seq_len"][resnet] == 0).all()


def test_layout_is_the_declared_grid(grid):
    nb = len(BATCHES)
    assert (grid["batch_size"].reshape(-1, nb) == BATCHES).all()
    for name in ("model", "hardware", "precision", "seq_len", "tp_size"):
        block = grid[name].reshape(-1, nb)
        assert (block == block[:, :1]).all()
    assert set(grid.columns) == {"model", "hardware", "precision", "seq_len", "tp_size",
                                 "batch_size",
                                 "latency_s", "throughput", "bottleneck", "memory_bytes",
                                 "feasible"}


def test_defaults_and_single_names():
    r = sweep("Llama3_8B", "H100", [1, 2])
    p = Engine.solve("Llama3_8B", "H100", batch_size=2)
    assert len(r) == 2 and r.skipped == {}
    assert r["precision"][0] == p.precision and r["seq_len"][0] == p.seq_len
    assert r["latency_s"][1] == pytest.approx(p.latency_s, rel=1e-12)


def test_tp_axis_and_memory_utilization_equal_scalar_solves():
    """tp_sizes 1, 2, 3, 8 over Llama-3-70B (64 heads: tp=3 refused) and ResNet-50 (one device
    only: tp > 1 refused) on H100 at memory_utilization 0.9: each row is the Engine.solve of
    the same split, and the skips count 1 + 3 plans x 3 batches."""
    r = sweep(["Llama3_70B", "ResNet50"], ["H100"], [1, 8, 64], seq_lens=[1024],
              tp_sizes=[1, 2, 3, 8], memory_utilization=0.9)
    assert r.skipped == {"tp_size not applicable": (1 + 3) * 3}
    assert sorted(set(r["tp_size"].tolist())) == [1, 2, 8]
    for i in range(len(r)):
        model = "Llama3_70B" if r["model"][i] == "Llama-3-70B" else "ResNet50"
        p = Engine.solve(model, "H100", batch_size=int(r["batch_size"][i]),
                         seq_len=int(r["seq_len"][i]) or None, tp_size=int(r["tp_size"][i]),
                         memory_utilization=0.9)
        assert r["latency_s"][i] == pytest.approx(p.latency_s, rel=1e-12)
        assert r["memory_bytes"][i] == pytest.approx(p.memory.total(p.batch_size), rel=1e-12)
        assert bool(r["feasible"][i]) == p.feasible
    # 70B fp16 (141 GB of weights) fits 0.9 x 85.5 GB only split: tp=2 -> 70.6 GB per device.
    fits = {int(t): bool(f) for m, t, f, b in zip(r["model"], r["tp_size"], r["feasible"],
                                                  r["batch_size"]) if m == "Llama-3-70B"
            and b == 1}
    assert fits == {1: False, 2: True, 8: True}


def test_phase_not_applicable_is_counted():
    r = sweep(["Llama3_8B", "ResNet50"], ["H100"], [1, 2], phase="prefill",
              seq_lens=[128])
    assert r.skipped == {"phase not applicable": 2}
    assert r["latency_s"][0] == pytest.approx(
        Engine.solve("Llama3_8B", "H100", phase="prefill", seq_len=128).latency_s, rel=1e-12)


@pytest.mark.parametrize("kw", [dict(batch_sizes=[0]), dict(batch_sizes=[1.5]),
                                dict(batch_sizes=[]), dict(precisions=["fp17"]),
                                dict(seq_lens=[-1]), dict(phase="decdoe"),
                                dict(precisions=[]), dict(tp_sizes=[0]),
                                dict(memory_utilization=0.0),
                                dict(memory_utilization=1.2)])
def test_bad_axes_raise(kw):
    args = {"models": "Llama3_8B", "hardware": "H100", "batch_sizes": [1], **kw}
    with pytest.raises(ValidationError):
        sweep(**args)


def test_unknown_model_raises():
    with pytest.raises(MLSysimError):
        sweep(["NoSuchModel"], ["H100"], [1])


def test_to_dict_round_trip(grid):
    d = grid.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = SweepResult.from_dict(json.loads(text))
    assert back.skipped == grid.skipped
    assert back.skipped_plans == grid.skipped_plans
    for k, v in grid.columns.items():
        assert (back[k] == v).all(), k
        assert back[k].dtype.kind == v.dtype.kind


def test_to_frame(grid):
    pd = pytest.importorskip("pandas")
    df = grid.to_frame()
    assert isinstance(df, pd.DataFrame) and len(df) == len(grid)
    assert (df["latency_s"].to_numpy() == grid["latency_s"]).all()
    assert list(df["model"].astype(str)) == list(grid["model"])


def test_to_frame_without_pandas_says_how(grid, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(MLSysimError, match="pip install pandas"):
        grid.to_frame()


def test_unknown_column_is_named(grid):
    with pytest.raises(ValidationError, match="latency_s"):
        grid["latency"]


def test_progress_bar_only_when_asked(capsys):
    sweep("Llama3_8B", "H100", [1, 2])
    assert capsys.readouterr().err == ""
    sweep("Llama3_8B", "H100", [1, 2], progress=True)   # rich on stderr; must not fail


def test_lazy_names():
    assert mlsysim.sweep is sweep and mlsysim.serving_sweep is serving_sweep
    assert mlsysim.pareto_front is pareto_front


# --- serving -------------------------------------------------------------------------------
def test_serving_sweep_equals_solve():
    batches = [1, 2, 7, 32, 300]
    r = serving_sweep("Llama3_8B", "H100", [512, 2048, 8000], [128, 512], batches,
                      tp_sizes=(1, 3))
    # 8000 + 512 - 1 exceeds the 8,192 context (checked first, for both tp sizes); tp 3
    # does not divide the 32 heads (the other five prompt/output pairs).
    nb = len(batches)
    assert r.skipped == {"context exceeded": 2 * nb, "tp_size not applicable": 5 * nb}
    assert len(r) == 5 * nb
    rng = np.random.default_rng(1)
    s = ServingModel()
    for i in rng.choice(len(r), 12, replace=False):
        ref = s.solve("Llama3_8B", "H100", seq_len=int(r["seq_len"][i]),
                      output_len=int(r["output_len"][i]), tp_size=int(r["tp_size"][i]),
                      batch_size=int(r["batch_size"][i]))
        assert r["ttft_s"][i] == pytest.approx(ref.ttft_s, rel=1e-12)
        assert r["itl_s"][i] == pytest.approx(ref.itl_s, rel=1e-12)
        assert r["e2e_s"][i] == pytest.approx(ref.e2e_latency.to("s").magnitude, rel=1e-12)
        assert r["tokens_per_s"][i] == pytest.approx(float(ref.tokens_per_s), rel=1e-12)
        assert r["memory_bytes"][i] == pytest.approx(ref.memory_per_device_bytes, rel=1e-12)
        assert bool(r["feasible"][i]) == ref.feasible


def test_serving_sweep_on_a_node_with_tp():
    node = mlsysim.Systems.Nodes.DGX_H100
    r = serving_sweep("Llama3_70B", node, [1024], [128], [1, 16], tp_sizes=(2, 8))
    ref = ServingModel().solve("Llama3_70B", node, seq_len=1024, output_len=128, tp_size=8,
                               batch_size=16)
    assert r["itl_s"][-1] == pytest.approx(ref.itl_s, rel=1e-12)
    assert r["ttft_s"][-1] == pytest.approx(ref.ttft_s, rel=1e-12)


def test_serving_sweep_bad_axes_raise():
    with pytest.raises(ValidationError):
        serving_sweep("Llama3_8B", "H100", [0], [128], [1])
    with pytest.raises(ValidationError):
        serving_sweep("Llama3_8B", "H100", [128], [128], [1], tp_sizes=())


# --- Pareto fronts -----------------------------------------------------------------------
# (latency, throughput): lower latency and higher throughput are better.
POINTS = {"lat": np.array([1.0, 2.0, 2.0, 3.0, 4.0, 1.5, 3.0, 5.0, 2.0]),
          "thr": np.array([1.0, 3.0, 2.0, 5.0, 5.0, 1.0, 5.0, 6.0, 3.0])}
# 0 (1,1) front; 1,8 (2,3) equal, both front; 2 (2,2) dominated by 1; 3,6 (3,5) equal, front;
# 4 (4,5) dominated by 3; 5 (1.5,1) dominated by 0; 7 (5,6) front.
FRONT = {0, 1, 8, 3, 6, 7}


def test_pareto_two_objectives():
    idx = pareto_front(POINTS, {"lat": "min", "thr": "max"})
    assert set(idx.tolist()) == FRONT and len(idx) == len(FRONT)
    assert (np.diff(POINTS["lat"][idx]) >= 0).all()    # ordered by the first objective


def test_pareto_directions_flip():
    idx = pareto_front(POINTS, {"lat": "max", "thr": "min"})
    # (5,6) highest lat; (4,5) beats (3,5); (2,2) beats (2,3); (1.5,1) beats (1,1).
    assert set(idx.tolist()) == {7, 4, 2, 5}


def test_pareto_many_objectives_matches_brute_force():
    rng = np.random.default_rng(3)
    cols = {k: rng.integers(0, 6, 400).astype(float) for k in "abc"}
    goals = {"a": "min", "b": "max", "c": "min"}
    idx = pareto_front(cols, goals)
    v = np.stack([cols["a"], -cols["b"], cols["c"]], axis=1)
    ref = {i for i in range(400) if not any(
        (v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(400))}
    assert set(idx.tolist()) == ref
    two = pareto_front(cols, {"a": "min", "b": "max"})
    w = v[:, :2]
    ref2 = {i for i in range(400) if not any(
        (w[j] <= w[i]).all() and (w[j] < w[i]).any() for j in range(400))}
    assert set(two.tolist()) == ref2


def test_pareto_one_objective_and_empty():
    assert set(pareto_front(POINTS, {"thr": "max"}).tolist()) == {7}
    assert pareto_front({"a": np.array([])}, {"a": "min"}).size == 0


@pytest.mark.parametrize("goals", [{}, {"lat": "smallest"}, {"nope": "min"}])
def test_pareto_bad_objectives(goals):
    with pytest.raises(ValidationError):
        pareto_front(POINTS, goals)


def test_pareto_refuses_nan():
    with pytest.raises(ValidationError, match="NaN"):
        pareto_front({"a": np.array([1.0, np.nan])}, {"a": "min"})


def test_sweep_result_pareto(grid):
    front = grid.pareto({"latency_s": "min", "throughput": "max"})
    assert len(front) > 0 and front["feasible"].all()
    ok = grid["feasible"]
    lat, thr = grid["latency_s"][ok], grid["throughput"][ok]
    for a, b in zip(front["latency_s"], front["throughput"]):
        assert not np.any((lat <= a) & (thr >= b) & ((lat < a) | (thr > b)))


def test_plot_pareto(grid):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlsysim.viz import plot_pareto
    fig, ax = plot_pareto(grid, "latency_s", "throughput")
    front = grid.pareto({"latency_s": "min", "throughput": "max"})
    assert ax.collections[1].get_offsets().shape[0] == len(front)
    with pytest.raises(ValidationError):
        plot_pareto(grid, "latency", "throughput")
    plt.close("all")


def test_progress_auto_decides_by_estimated_time():
    from mlsysim.optimize import sweep as S
    assert not S._show_progress(None, 48, 1_000_000, S.ENGINE_PLAN_S)
    assert S._show_progress(None, 2_000, 10, S.ENGINE_PLAN_S)
    assert S._show_progress(None, 1, 20_000_000, S.ENGINE_PLAN_S)
    assert S._show_progress(True, 1, 1, S.ENGINE_PLAN_S)
    assert not S._show_progress(False, 10**6, 10**9, S.ENGINE_PLAN_S)
