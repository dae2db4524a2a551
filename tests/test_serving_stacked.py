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


def test_overlapped_collectives_hide_behind_each_parts_own_compute():
    """Two passes, each a GEMM beside an overlapped all-reduce of 1e8 B over 2 ranks on an
    ideal 1e12 B/s link: the ring moves 2 x (2 - 1) / 2 x 1e8 B = 1e8 B, 0.1 ms. Beside a
    1 GFLOP GEMM (1 ms at 1 TFLOP/s) it hides entirely; beside a 1 MFLOP one (1 us) 0.1 ms -
    1 us = 99 us of it shows. Each part hides its collective behind its own compute only, as
    evaluate() prices it."""
    from efficiencies import ideal

    from mlsysim.core.collectives import CollectiveEfficiency, CommPath
    from mlsysim.core.costmodel import prepare
    from mlsysim.specs.hardware import HardwareSpec
    from mlsysim.workloads.operators import OperatorBuilder, OpKind

    hw = HardwareSpec(key="Round2", name="Round2", group="Cloud", vendor="Test",
                      compute={"dense": {"fp16": "1 TFLOP/s"}},
                      memory={"capacity": "10 GB", "bandwidth": "1 TB/s"},
                      source="test", as_of="2024")
    eta1 = CollectiveEfficiency(alpha_s=0.0, eta_bus=1.0, estimated=False)
    path = CommPath(name="round", total=8, domain=8, up_name="up", up_bw=1e12, up_eff=eta1,
                    up_inr=False)
    parts = []
    for flops in (1e9, 1e6):
        b = OperatorBuilder()
        b.add("gemm", OpKind.GEMM, flops=flops, weight_bytes=0.0, act_bytes=0.0)
        b.collective("grad", "allreduce", message_bytes=1e8, group=2, overlap=True)
        parts.append(prepare(b.build(weight_total_bytes=0.0), hw, "fp16", ideal(), path=path))
    got = stacked_latencies(stack(tuple(parts)), 1)
    for p, (latency, comm) in zip(parts, got):
        e = evaluate(p, 1)
        assert latency == pytest.approx(float(e.latency), rel=1e-12)
        assert comm == pytest.approx(float(e.comm_time), rel=1e-12, abs=1e-18)
    assert got[0] == pytest.approx((1e-3, 0.0), abs=1e-15)
    assert got[1][1] == pytest.approx(1e-4 - 1e-6, rel=1e-9)


def test_explain_counts_query_heads_per_device_when_tp_exceeds_the_kv_heads():
    """Qwen2.5-7B: 28 query heads, 4 KV heads. At TP 7 a device has 4 query heads and one
    replicated KV head: 4 reads a step, not the model's 28 / 4 = 7."""
    r = ServingModel().solve("Qwen2_5_7B", "DGX_H100", seq_len=128, output_len=64,
                             batch_size=8, tp_size=7, decode_attention="per_head")
    assert "reads a KV head's cache 4 times" in r.explain()
