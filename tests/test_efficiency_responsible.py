"""EfficiencyModel (where the lost FLOPs go) and ResponsibleEngineeringModel (the compute of
DP-SGD, the data of a small subgroup), checked against numbers derived by hand."""

import math

import pytest

import mlsysim
from mlsysim.errors import UnknownNameError, ValidationError
from mlsysim.solvers.responsible import clipping_factor, clipping_methods, hoeffding_samples
from mlsysim.specs.configs import DistributedConfig

D = mlsysim.DistributedModel()
E = mlsysim.EfficiencyModel()
R = mlsysim.ResponsibleEngineeringModel()


def dp_only():
    """Llama-3-8B, 8-way DP on one DGX H100: no bubble, no TP/EP/PP communication."""
    return D.solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048, zero_stage=1,
                   token_budget=1e9)


def pipelined(recompute="none"):
    """Llama-3-70B, tp 4 x pp 2 on one DGX H100: a bubble and TP and PP communication."""
    return D.solve("Llama3_70B", "DGX_H100", batch_size=16, seq_len=4096, tp_size=4,
                   pp_size=2, activation_recomputation=recompute)


# --- EfficiencyModel ---------------------------------------------------------------------------
# Runs are built inside the test, not at collection: a broken solver then fails this test
# instead of the whole module's import.
@pytest.mark.parametrize("make", [
    dp_only, pipelined, lambda: pipelined("full"),
    lambda: D.solve("Mixtral_8x7B", "DGX_H100", batch_size=64, seq_len=4096, ep_size=8,
                    zero_stage=1),
    lambda: D.solve("ResNet50", "DGX_H100", batch_size=256)],
    ids=["dp", "tp-pp", "tp-pp-recompute", "moe-ep", "cnn"])
def test_the_terms_and_mfu_sum_to_one(make):
    r = E.solve(make())
    assert r.mfu + r.bubble + r.communication + r.optimizer + r.recomputation + r.kernel == \
        pytest.approx(1.0, abs=1e-12)
    assert r.total == pytest.approx(1.0, abs=1e-12)
    assert r.kernel >= 0 and r.hfu <= r.useful
    assert "check: MFU + terms = 1.0000000000" in r.explain()


def test_data_parallel_step_by_hand():
    """No pipeline and no TP/EP: bubble = 0; the gradient reduction hides behind the last
    backward but slows it by 73 % while they overlap, so communication = 0.73 / 1.73 of
    the reduction over the step; optimizer = t_opt / t_step; recomputation = HFU - MFU;
    kernel = 1 - optimizer - communication - HFU."""
    run = dp_only()
    r = E.solve(run)
    assert r.bubble == 0.0 and run.dp_comm_s > 0
    assert run.dp_exposed_s == pytest.approx(run.dp_comm_s * 0.73 / 1.73, rel=1e-12)
    assert r.communication == pytest.approx(run.dp_exposed_s / run.step_s, rel=1e-12)
    assert r.optimizer == pytest.approx(run.optimizer_s / run.step_s, rel=1e-15)
    assert r.mfu == run.mfu and r.hfu == run.hfu
    assert r.recomputation == pytest.approx(run.hfu - run.mfu, abs=1e-15)
    assert r.kernel == pytest.approx(
        1 - run.optimizer_s / run.step_s - r.communication - run.hfu, abs=1e-15)
    # No recomputation: the convention counts attention at full length, the causal kernels
    # execute less, so the "recomputation" share is negative (a gain the convention hides).
    assert r.recomputation < 0
    assert r.binding == "kernel efficiency"


def test_pipeline_and_tensor_parallel_terms_by_hand():
    run = pipelined()
    r = E.solve(run)
    s = run.step_s
    assert r.bubble == pytest.approx(run.bubble_fraction, rel=1e-15) and r.bubble > 0
    assert r.communication == pytest.approx(
        (run.tp_comm_s + run.ep_comm_s + run.pp_comm_s + run.dp_exposed_s) / s, rel=1e-14)
    assert r.tp_share == pytest.approx(run.tp_comm_s / s) and r.tp_share > 0
    assert r.pp_share == pytest.approx(run.pp_comm_s / s) and r.pp_share > 0
    assert r.useful == pytest.approx(run.scaling_efficiency, abs=1e-12)


def test_full_recomputation_shows_as_recomputation():
    """Full recomputation re-runs the forward: about one more forward (2N of 6N per token)
    of executed flops, so the recomputation share grows by about a third of HFU."""
    plain, full = E.solve(pipelined()), E.solve(pipelined("full"))
    assert full.recomputation > 0 > plain.recomputation
    ratio = full.run.hardware_flops / plain.run.hardware_flops
    assert 1.25 < ratio < 1.40


def test_the_convenience_form_is_the_same_run():
    cfg = DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1)
    a = E.solve(model="Llama3_8B", fleet="DGX_H100", config=cfg)
    b = E.solve(D.solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048, zero_stage=1))
    assert a.to_dict() == b.to_dict()


def test_an_infeasible_run_is_decomposed_and_flagged():
    r = E.solve(D.solve("GPT3_175B", "DGX_H100", batch_size=8, seq_len=2048))
    assert not r.feasible and "does not fit" in r.reason
    assert r.total == pytest.approx(1.0, abs=1e-12) and r.binding == "optimizer"


@pytest.mark.parametrize("kwargs, field", [
    ({}, "run"),
    ({"run": "Llama3_8B"}, "run"),
    ({"run": "dp_only", "model": "Llama3_8B"}, "model"),
    ({"model": "Llama3_8B", "fleet": "DGX_H100"}, "config"),
    ({"model": "Llama3_8B", "fleet": "DGX_H100", "config": {"batch_size": 8}}, "config"),
])
def test_efficiency_bad_input_names_the_field(kwargs, field):
    if kwargs.get("run") == "dp_only":         # built here, not at collection
        kwargs = {**kwargs, "run": dp_only()}
    with pytest.raises(ValidationError) as exc:
        E.solve(**kwargs)
    assert exc.value.field == field and "EfficiencyModel" in str(exc.value)


# --- ResponsibleEngineeringModel: subgroup data ------------------------------------------------
def test_hoeffding_hand_values():
    # n >= ln(2/delta) / (2 eps^2): ln(40) / 0.005 = 737.78; ln(200) / 2e-4 = 26,491.6
    assert hoeffding_samples(0.05, 0.95) == 738
    assert hoeffding_samples(0.01, 0.99) == 26492
    # A metric in a range of 2 (e.g. [-1, 1]) at twice the margin needs the same n.
    assert hoeffding_samples(0.10, 0.95, metric_range=2.0) == 738
    # The bound is met at n and missed at n - 1.
    for eps, conf in ((0.05, 0.95), (0.02, 0.9), (0.1, 0.999)):
        n = hoeffding_samples(eps, conf)
        assert 2 * math.exp(-2 * n * eps ** 2) <= 1 - conf < 2 * math.exp(-2 * (n - 1) * eps ** 2)


def test_a_one_percent_subgroup_needs_a_hundred_times_the_data():
    r = R.solve(margin=0.05, confidence=0.95, subgroup_fraction=0.01)
    assert (r.subgroup_samples, r.total_samples) == (738, 73_800)
    assert r.feasible and r.dp is None and r.binding == "subgroup samples"
    assert r.subgroup.extra_samples == 73_800          # no dataset given: all of it


def test_a_dataset_too_small_for_the_subgroup_is_infeasible():
    """50,000 samples hold 500 of a 1 % subgroup: they certify eps = sqrt(ln 40 / (2 x 500)) =
    0.06074, not 0.05; 73,800 - 50,000 = 23,800 more are needed, at 0.02 USD each 476 USD."""
    r = R.solve(margin=0.05, subgroup_fraction=0.01, dataset_size=50_000,
                cost_per_sample="0.02 USD")
    g = r.subgroup
    assert not r.feasible and r.binding == "subgroup data" and "500 subgroup" in r.reason
    assert g.achievable_margin == pytest.approx(math.sqrt(math.log(40) / 1000), rel=1e-12)
    assert g.achievable_margin == pytest.approx(0.060736, abs=1e-6)
    assert g.extra_samples == 23_800
    assert g.extra_cost.to("USD").magnitude == pytest.approx(476.0)
    enough = R.solve(margin=0.05, subgroup_fraction=0.01, dataset_size=80_000)
    assert enough.feasible and enough.subgroup.extra_samples == 0


def test_subgroup_headline_without_a_run_leaves_time_and_flops_unknown():
    """Without a training run there is no time or flops per sample, so the headline gives
    None for the extra epoch's time and flops, while the counts stand: ln(40) / (2 x 0.05^2)
    = 737.78 -> 738 subgroup samples, / 0.01 = 73,800 in all, all of them extra."""
    h = R.solve(margin=0.05, confidence=0.95, subgroup_fraction=0.01).headline()
    assert h["extra_epoch_time"] is None and h["extra_epoch_flops"] is None
    assert (h["subgroup_samples"], h["total_samples"], h["extra_samples"]) == \
        (738, 73_800, 73_800)
    assert h["margin"] == 0.05 and h["subgroup_fraction"] == 0.01


def test_the_extra_data_costs_training_time_on_a_run():
    """One epoch over the extra samples costs step_s / batch per sample on the run's fleet, and
    the model flops per sample."""
    run = dp_only()
    r = R.solve(run=run, dp_slowdown=1.0, margin=0.05, subgroup_fraction=0.01)
    g = r.subgroup
    assert g.seconds_per_sample == pytest.approx(run.step_s / 64)
    assert r.headline()["extra_epoch_time"].to("s").magnitude == \
        pytest.approx(73_800 * run.step_s / 64)
    assert r.headline()["extra_epoch_flops"].to("flop").magnitude == \
        pytest.approx(73_800 * run.model_flops / 64)


# --- ResponsibleEngineeringModel: private training --------------------------------------------
def test_clipping_factors_are_the_published_ratios():
    # Bu et al. 2023: BK at 0.83x the non-private speed; BK 1.36x the speed of ghost clipping.
    # PyTorch blog 2024: Opacus per-sample gradients 0.68 s vs 0.55 s per iteration.
    assert clipping_factor("book_keeping")[0] == pytest.approx(1 / 0.83, rel=1e-12)
    assert clipping_factor("ghost_clipping")[0] == pytest.approx(1.36 / 0.83, rel=1e-12)
    assert clipping_factor("per_sample_hooks")[0] == pytest.approx(0.68 / 0.55, rel=1e-12)
    for e in clipping_methods().values():
        assert e.source.startswith("https://") and e.as_of and e.notes


def test_private_step_on_a_data_parallel_run_by_hand():
    """No bubble, no TP/PP/EP: step' = F x compute + optimizer + exposed DP; at 4x the batch
    4 F x compute + the same; F(ghost) = 1.36 / 0.83 = 1.6386, the backward x 1 + 1.5 (F - 1)
    = 1.9578 (ghost clipping's second backward)."""
    run = dp_only()
    r = R.solve(run=run, clipping="ghost_clipping", batch_multiplier=4, noise_multiplier=1.0)
    f = 1.36 / 0.83
    d = r.dp
    rest = run.optimizer_s + run.dp_exposed_s
    assert d.private_step_s == pytest.approx(f * run.compute_s + rest, rel=1e-12)
    assert d.private_batch_step_s == pytest.approx(4 * f * run.compute_s + rest, rel=1e-12)
    assert d.backward_multiplier == pytest.approx(1 + 1.5 * (f - 1), rel=1e-12)
    assert d.backward_multiplier == pytest.approx(1.9578, abs=1e-4)
    assert r.headline()["noise_std_over_clip"] == pytest.approx(1 / 256)    # sigma / (4 x 64)
    steps = 1e9 / (64 * 2048)
    assert d.steps == pytest.approx(steps)
    assert d.private_time_s == pytest.approx(steps * d.private_batch_step_s)
    assert r.headline()["extra_gpu_hours"] == pytest.approx(
        steps * (d.private_batch_step_s - run.step_s) * 8 / 3600)
    assert r.binding == "per-example clipping" and r.subgroup is None


def test_factor_one_gives_back_the_run_and_collectives_do_not_slow():
    """F = 1, M = 1 must reproduce the non-private step exactly (m t_mb + bubble + opt + DP);
    with F > 1 on a pipelined run, only the compute part of each micro-batch grows."""
    run = pipelined()
    same = R.solve(run=run, dp_slowdown=1.0).dp
    assert same.private_batch_step_s == pytest.approx(run.step_s, rel=1e-12)
    m = run.microbatch_count
    comm = (run.tp_comm_s + run.pp_comm_s + run.ep_comm_s) / m
    t_mb = run.compute_s / m
    t_p = 1.5 * (t_mb - comm) + comm
    d = R.solve(run=run, dp_slowdown=1.5).dp
    want = m * t_p + run.bubble_s * t_p / t_mb + run.optimizer_s + run.dp_exposed_s
    assert d.private_step_s == pytest.approx(want, rel=1e-12)
    assert d.private_step_s < 1.5 * run.step_s


def test_both_parts_together_and_the_convenience_form():
    cfg = DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1, token_budget=1e9)
    a = R.solve(model="Llama3_8B", fleet="DGX_H100", config=cfg, clipping="book_keeping",
                margin=0.05, subgroup_fraction=0.01)
    b = R.solve(run=dp_only(), clipping="book_keeping", margin=0.05, subgroup_fraction=0.01)
    assert a.to_dict() == b.to_dict()
    assert a.dp.factor == pytest.approx(1 / 0.83) and a.total_samples == 73_800
    assert "Hoeffding" in a.explain() and "ghost" not in a.explain()


@pytest.mark.parametrize("kwargs, field", [
    ({}, "margin"),
    ({"clipping": "book_keeping"}, "clipping"),
    ({"run": "dp_only"}, "clipping"),
    ({"run": "dp_only", "clipping": "book_keeping", "dp_slowdown": 1.2}, "clipping"),
    ({"run": "dp_only", "dp_slowdown": 0.9}, "dp_slowdown"),
    ({"run": "dp_only", "dp_slowdown": 1.2, "batch_multiplier": 0.5}, "batch_multiplier"),
    ({"run": "dp_only", "dp_slowdown": 1.2, "noise_multiplier": -1}, "noise_multiplier"),
    ({"margin": 0}, "margin"),
    ({"margin": 1.5}, "margin"),
    ({"margin": 0.05, "confidence": 1.0}, "confidence"),
    ({"margin": 0.05, "subgroup_fraction": 0}, "subgroup_fraction"),
    ({"margin": 0.05, "subgroup_fraction": 1.5}, "subgroup_fraction"),
    ({"margin": 0.05, "dataset_size": 10.5}, "dataset_size"),
    ({"margin": 0.05, "cost_per_sample": "a lot"}, "cost_per_sample"),
    ({"dataset_size": 1000}, "margin"),
])
def test_responsible_bad_input_names_the_field(kwargs, field):
    if kwargs.get("run") == "dp_only":         # built here, not at collection
        kwargs = {**kwargs, "run": dp_only()}
    with pytest.raises(ValidationError) as exc:
        R.solve(**kwargs)
    assert exc.value.field == field and "ResponsibleEngineeringModel" in str(exc.value)


def test_an_unknown_clipping_method_suggests_the_known_ones():
    with pytest.raises(UnknownNameError, match="ghost_clipping"):
        R.solve(run=dp_only(), clipping="ghost_clip")


def test_a_confidence_of_zero_is_refused_like_one():
    """Hoeffding's n = ln(2 / delta) / (2 eps^2) needs 0 < 1 - delta < 1: a confidence of 0
    certifies nothing, so it is refused with the same words as 1."""
    with pytest.raises(ValidationError) as info:
        R.solve(margin=0.05, confidence=0.0)
    assert str(info.value) == (
        "The 'confidence' parameter of ResponsibleEngineeringModel must be strictly between 0 "
        "and 1 (1 needs infinitely many samples). Got 0.0 instead.")


@pytest.mark.parametrize("kwargs, field", [
    ({"batch_multiplier": 4}, "batch_multiplier"),
    ({"clipping": "ghost_clipping"}, "clipping"),
    ({"noise_multiplier": 1.0}, "noise_multiplier"),
])
def test_a_private_training_knob_without_a_run_names_itself(kwargs, field):
    """Clipping, batch multiplier and noise cost a training step: with only a subgroup margin
    there is no step to cost, and the knob given is the one named."""
    with pytest.raises(ValidationError) as info:
        R.solve(margin=0.05, **kwargs)
    assert info.value.field == field
    assert str(info.value) == (
        f"The '{field}' parameter of ResponsibleEngineeringModel needs a training run (run, "
        "or model, fleet and config) to cost.")


def test_a_subgroup_fraction_without_a_margin_names_the_fraction():
    with pytest.raises(ValidationError) as info:
        R.solve(subgroup_fraction=0.01)
    assert info.value.field == "margin"
    assert str(info.value) == (
        "The 'margin' parameter of ResponsibleEngineeringModel is needed with "
        "subgroup_fraction: the +- to certify the subgroup's metric within.")


def test_the_example_trains_at_four_times_the_batch():
    """The example (its docstring: ghost clipping at 4x the batch of 64, sigma = 1): the noise
    std of the mean gradient is sigma / B = 1 / (4 x 64) = 1/256 = 0.00390625 clip norms."""
    h = R.solve(**R.example()).headline()
    assert h["batch_multiplier"] == 4.0
    assert h["noise_std_over_clip"] == 1 / 256


def test_explain_prints_the_token_budgets_hours_before_and_after():
    """dp_slowdown = 1 at the run's own batch: the private run takes exactly the run's time.
    1e9 tokens / (64 x 2048) per step = 7,629.4 steps of step_s each, printed in hours on both
    sides of the arrow (2.503 h today)."""
    run = dp_only()
    lines = R.solve(run=run, dp_slowdown=1.0).explain().splitlines()
    hours = 1e9 / (64 * 2048) * run.step_s / 3600
    assert lines[3] == f"  1e+09 tokens in 7629 steps: {hours:.4g} h -> {hours:.4g} h"


def test_dp_explain_splits_the_micro_batch_around_its_communication():
    """Llama-3-8B on a DGX H100 at TP 2 x PP 2 with 4 micro-batches: per micro-batch
    t_mb = compute_s / 4 = 1.3350 s / 4 = 333.7 ms, of which t_comm = (TP 79.26 + PP 0.69) ms
    / 4 = 19.99 ms; both t_comm figures are per micro-batch (divided by m, not multiplied)."""
    from mlsysim.solvers.responsible import ResponsibleEngineeringModel
    kw = ResponsibleEngineeringModel.example()
    kw["config"] = DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1, token_budget=1e9,
                                     tp_size=2, pp_size=2, microbatch_count=4)
    r = ResponsibleEngineeringModel().solve(**kw)
    run = r.run
    assert run.microbatch_count == 4
    assert run.compute_s / 4 == pytest.approx(0.3337, rel=1e-3)
    assert (run.tp_comm_s + run.pp_comm_s) / 4 == pytest.approx(0.01999, rel=1e-3)
    assert r.explain().splitlines()[1] == (
        "  t_mb' = F (t_mb - t_comm) + t_comm = 1.639 x (333.7 - 19.99) ms + 19.99 ms")
