"""A single ServingModel.solve prices its passes together (core.costmodel.stacked_latencies);
the stacked arithmetic must give what evaluate() gives pass by pass, collectives included."""

import pytest

from mlsysim import ServingModel
from mlsysim.core.costmodel import evaluate, stack, stacked_latencies

CASES = [
    ("Llama3_8B", "H100", {}),
    ("Llama3_70B", "H100", {"tp_size": 4}),                       # TP all-reduce rows
    ("Llama2_7B", "A100", {"weight_precision": "int4", "weight_group_size": 32}),
    ("Llama3_8B", "H100", {"draft_model": "Llama3_2_1B", "draft_acceptance_rate": 0.7}),
]


def _parts(plan):
    return (plan.prefill, plan.step) if plan.draft is None else \
        (plan.prefill, plan.step, plan.draft_step, plan.verify)


@pytest.mark.parametrize(("model", "hw", "kw"), CASES)
@pytest.mark.parametrize("batch", [1, 7, 64, 333])
def test_stacked_latencies_equal_pass_by_pass(model, hw, kw, batch):
    plan = ServingModel().prepare(model, hw, seq_len=1000, output_len=100, **kw)
    stacked = stack(_parts(plan))
    assert stacked is not None
    got = stacked_latencies(stacked, batch)
    assert len(got) == len(_parts(plan))
    for p, (latency, comm) in zip(_parts(plan), got):
        e = evaluate(p, batch)
        assert latency == pytest.approx(float(e.latency), rel=1e-12)
        assert comm == pytest.approx(float(e.comm_time), rel=1e-12, abs=0.0)


def test_tp_passes_carry_their_collectives():
    """TP=4: each pass's collective time is nonzero and the solve's TTFT/ITL split it off
    as evaluate() does (prefill_s + comm_prefill_s = the prefill pass's latency)."""
    plan = ServingModel().prepare("Llama3_70B", "H100", seq_len=1000, output_len=100,
                                  tp_size=4)
    (t_p, c_p), (t_d, c_d) = stacked_latencies(stack(_parts(plan)), 8)
    assert c_p > 0 and c_d > 0
    r = ServingModel().solve("Llama3_70B", "H100", seq_len=1000, output_len=100, tp_size=4,
                             batch_size=8)
    assert r.prefill_s + r.comm_prefill_s == pytest.approx(t_p, rel=1e-12)
    assert r.decode_step_s + r.comm_decode_s == pytest.approx(t_d, rel=1e-12)
    assert r.comm_prefill_s == pytest.approx(c_p, rel=1e-12)


def test_moe_passes_are_not_stacked():
    """Routed experts' bytes depend on the batch (1 - (1 - k/E)^tokens): no shared
    arithmetic, so stack() declines and the solve prices each pass by evaluate()."""
    plan = ServingModel().prepare("Mixtral_8x7B", "H100", seq_len=1000, output_len=100,
                                  tp_size=2)
    assert stack(_parts(plan)) is None
    (t_p, _), (t_d, _) = plan.passes_at(16)
    assert t_p == pytest.approx(float(evaluate(plan.prefill, 16).latency), rel=1e-15)
    assert t_d == pytest.approx(float(evaluate(plan.step, 16).latency), rel=1e-15)
