"""ParallelismOptimizer: the vectorized search agrees with DistributedModel config by config,
and counts what it prunes."""

import numpy as np
import pytest

import mlsysim
from mlsysim import DistributedModel, Fleet, ParallelismOptimizer, Systems
from mlsysim.errors import ValidationError

FLEET = Fleet(name="4 x DGX H100", node=Systems.Nodes.DGX_H100, count=4)


@pytest.fixture(scope="module")
def search():
    return ParallelismOptimizer().solve("Llama3_70B", FLEET, batch_size=64, seq_len=4096,
                                        top_k=40)


def _dm(cfg, **kw):
    c = dict(cfg)
    dp = c.pop("dp")
    return DistributedModel().solve("Llama3_70B", FLEET, batch_size=64, seq_len=4096,
                                    tp_size=c["tp"], pp_size=c["pp"], dp_size=dp,
                                    v_stages=c["v_stages"],
                                    microbatch_size=c["microbatch_size"],
                                    zero_stage=c["zero_stage"],
                                    activation_recomputation=c["activation_recomputation"],
                                    dropout=c["dropout"], **kw)


def test_best_config_is_what_distributed_model_reports(search):
    assert search.feasible
    r = _dm(search.best_config)
    assert r.step_s == pytest.approx(search.best_step_s, rel=1e-12)
    parts = search.top_candidates[0]["breakdown_ms"]
    assert sum(parts.values()) == pytest.approx(r.step_s * 1e3, rel=1e-12)
    assert parts["bubble"] == pytest.approx(r.bubble_s * 1e3, rel=1e-12)
    assert r.mfu == pytest.approx(search.best_mfu, rel=1e-12)
    assert float(r.tokens_per_s) == pytest.approx(float(search.best_throughput), rel=1e-12)


def test_random_candidates_agree_with_the_scalar_path(search):
    rng = np.random.default_rng(0)
    for i in rng.choice(len(search.top_candidates), size=8, replace=False):
        c = search.top_candidates[i]
        r = _dm(c["config"])
        assert r.step_s * 1e3 == pytest.approx(c["step_ms"], rel=1e-12), c["config"]
        assert r.memory.total(1) / 1e9 == pytest.approx(c["memory_gb"], rel=1e-12)
        assert r.feasible


def test_candidates_are_sorted_and_counts_add_up(search):
    steps = [c["step_ms"] for c in search.top_candidates]
    assert steps == sorted(steps)
    not_run = sum(v for k, v in search.pruned.items() if k != "out of memory")
    assert search.total_searched + not_run == search.search_space_size
    # 70B at 16 B/param unsharded needs 1.1 TB of state: some layouts must not fit.
    assert search.pruned["out of memory"] > 0


def test_nothing_fits_is_infeasible_with_the_counts():
    r = ParallelismOptimizer().solve("GPT3_175B", "DGX_H100", batch_size=8, seq_len=2048,
                                     zero_stages=(0,))
    assert not r.feasible and "out of memory" in r.reason and r.best_config is None


def test_mfu_objective_and_bad_input():
    r = ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                     objective="mfu", zero_stages=(1,))
    assert r.top_candidates[0]["mfu"] == max(c["mfu"] for c in r.top_candidates)
    with pytest.raises(ValidationError, match="objective"):
        ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64, objective="fast")
    with pytest.raises(ValidationError, match="zero_stages"):
        ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64, zero_stages=(5,))
    with pytest.raises(ValidationError, match="microbatch_sizes"):
        ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64,
                                     microbatch_sizes=(0,))
    assert mlsysim.ParallelismOptimizer is ParallelismOptimizer


def test_a_single_choice_may_be_given_bare():
    r = ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                     recomputation="full", zero_stages=1, v_stages=1)
    assert {c["config"]["activation_recomputation"] for c in r.top_candidates} == {"full"}
    assert {c["config"]["zero_stage"] for c in r.top_candidates} == {1}


def test_dropout_free_search_equals_distributed_model_and_uses_less_memory():
    """The same search for a model trained without dropout: every candidate equals
    DistributedModel with dropout=False, and the fullest memory of each shared config is
    lower (no masks; 2 h bytes per token and layer less, at least where activations are
    stored whole)."""
    off = ParallelismOptimizer().solve("Llama3_70B", FLEET, batch_size=64, seq_len=4096,
                                       top_k=10, dropout=False, zero_stages=(1,),
                                       recomputation=("none",))
    assert off.feasible
    for c in off.top_candidates:
        assert c["config"]["dropout"] is False
        r = _dm(c["config"])
        assert r.step_s * 1e3 == pytest.approx(c["step_ms"], rel=1e-12)
        on = _dm({**c["config"], "dropout": True})
        assert r.memory.activations < on.memory.activations


def test_each_lowering_keeps_only_its_best_fitting_configs():
    """The search turns only each lowering's top_k fitting configs into rows. With top_k
    larger than the grid every fitting config is a candidate, and only those: the count is
    the searched configs minus the out-of-memory ones. The best 3 of that full list are the
    3 a top_k=3 search returns, in the same order."""
    kw = dict(batch_size=64, seq_len=2048, zero_stages=(0, 1, 3), microbatch_sizes=(1, 2))
    opt = ParallelismOptimizer()
    every = opt.solve("Llama3_8B", "DGX_H100", top_k=10**6, **kw)
    fits = every.total_searched - every.pruned["out of memory"]
    assert fits > 3 and every.pruned["out of memory"] > 0
    assert len(every.top_candidates) == fits
    three = opt.solve("Llama3_8B", "DGX_H100", top_k=3, **kw)
    assert [c["config"] for c in three.top_candidates] == \
        [c["config"] for c in every.top_candidates[:3]]
    assert all(np.isfinite(c["step_ms"]) for c in every.top_candidates)


def test_a_backward_post_search_prices_zero3_as_distributed_model_does():
    """backward_prefetch="post" reaches the grid: among ZeRO-3 layouts every candidate's step
    is DistributedModel's with the same setting (to 1e-12), and wherever ZeRO-3 shards over
    replicas (dp > 1) slower than under 'pre' (the backward's gathers are waited for)."""
    args = ("Llama3_70B", FLEET)
    kw = dict(batch_size=64, seq_len=4096, zero_stages=(3,), top_k=6)
    post = ParallelismOptimizer().solve(*args, backward_prefetch="post", **kw)
    pre = ParallelismOptimizer().solve(*args, **kw)
    assert post.best_step_s >= pre.best_step_s
    sharded = 0
    for c in post.top_candidates:
        assert c["config"]["backward_prefetch"] == "post"
        r = _dm(c["config"], backward_prefetch="post")
        assert r.step_s * 1e3 == pytest.approx(c["step_ms"], rel=1e-12), c["config"]
        if c["config"]["dp"] > 1:
            sharded += 1
            assert r.step_s > _dm(c["config"]).step_s
    assert sharded > 0
    with pytest.raises(ValidationError) as info:
        ParallelismOptimizer().solve(*args, backward_prefetch="after", **kw)
    assert info.value.field == "backward_prefetch"
