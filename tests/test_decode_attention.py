"""decode_attention="per_head": a generation kernel with one thread block per (sequence, query
head) reads its KV head's cache once per query head (TensorRT-LLM's masked MHA before v0.7);
"grouped" (the default) reads each KV head once per step."""

import pytest

from mlsysim import ServingConfig, ServingModel
from mlsysim.validation.adapters import row_decode_attention
from mlsysim.validation.reference import ReferenceRow
from mlsysim.workloads.transformer import Segment, lower_segments
from mlsysim.zoo import Models

L70 = Models.get("Llama2_70B")     # 64 query heads, 8 KV heads, d_head 128
L7 = Models.get("Llama2_7B")       # 32 heads, no GQA


def _attention_bytes(model, segments, tp, per_head):
    t = lower_segments(model, segments, e=2, kv_e=1, we=1, tp=tp, kv_per_query_head=per_head)
    return float(t.act_bytes_per_sample[t.names.index("layer.attention")])


def test_per_head_reads_the_cache_once_per_query_head():
    """TP 4: 16 query heads and 2 KV heads per device. One KV token of one layer in fp8 is
    2 (K, V) x 8 heads x 128 x 1 B = 2,048 B, 512 B on one of 4 devices. A decode step over
    1,000 cached tokens reads 1,001 of them; per_head reads them 16 / 2 = 8 times, i.e.
    7 x 1,001 x 512 = 3,587,584 B more per layer and sequence."""
    seg = [Segment(1, 1000)]
    extra = _attention_bytes(L70, seg, 4, True) - _attention_bytes(L70, seg, 4, False)
    assert extra == pytest.approx(7 * 1001 * 512, rel=1e-12)


def test_tp_beyond_the_kv_heads_rereads_per_local_query_head():
    """TP 16: 4 query heads per device; the 8 KV heads are replicated (one per device, 2,048
    / 8 = 256 B per token): 3 extra reads x 1,001 x 256 B."""
    seg = [Segment(1, 1000)]
    extra = _attention_bytes(L70, seg, 16, True) - _attention_bytes(L70, seg, 16, False)
    assert extra == pytest.approx(3 * 1001 * 256, rel=1e-12)


def test_no_reread_without_gqa_or_in_a_prompt():
    """Multi-head attention has one query head per KV head; a prompt (no cache, 128 new
    tokens) runs the context FMHA, which the option does not touch."""
    assert _attention_bytes(L7, [Segment(1, 1000)], 1, True) == \
        _attention_bytes(L7, [Segment(1, 1000)], 1, False)
    assert _attention_bytes(L70, [Segment(128, 0)], 4, True) == \
        _attention_bytes(L70, [Segment(128, 0)], 4, False)


def test_per_head_slows_only_the_decode_step():
    kw = dict(seq_len=128, output_len=2048, batch_size=480, tp_size=4, precision="fp8")
    g = ServingModel().solve("Llama2_70B", "H100", **kw)
    p = ServingModel().solve("Llama2_70B", "H100", decode_attention="per_head", **kw)
    assert p.ttft == g.ttft
    assert p.itl.to("ms").magnitude > 2 * g.itl.to("ms").magnitude   # KV-read bound here
    c = ServingModel().solve("Llama2_70B", "H100", ServingConfig(decode_attention="per_head",
                                                                   **kw))
    assert c.itl == p.itl


def _row(framework, model):
    return ReferenceRow(id="REF-T1", category="llm_inference", model=model, hardware="H100",
                        num_devices=2, precision="fp8", batch_size=64, prompt_len=128,
                        output_len=128, scenario="s", metric="output_tokens_per_s",
                        value=1.0, unit="tokens/s", framework=framework, source_key="x")


@pytest.mark.parametrize(("framework", "model", "expected"), [
    ("TensorRT-LLM v0.6.1", L70, "per_head"),
    ("TensorRT-LLM v0.5", L70, "per_head"),
    ("TensorRT-LLM v0.7.1", L70, "grouped"),     # MMHA's GQA optimization (PR #524)
    ("TensorRT-LLM v0.6.1", L7, "grouped"),      # no GQA: nothing to re-read
    ("vLLM", L70, "grouped"),
])
def test_reference_rows_choose_the_kernel_by_release(framework, model, expected):
    notes: list[str] = []
    assert row_decode_attention(_row(framework, model.key), model, notes) == expected
    assert bool(notes) == (expected == "per_head")


def test_band_fast_edge_lets_l2_absorb_the_rereads():
    """How much of the re-reading L2 serves is not measured: the band's fast edge reads each
    KV head once (the grouped kernel's fast edge), the slow edge re-reads from DRAM."""
    kw = dict(seq_len=128, output_len=2048, batch_size=480, tp_size=4, precision="fp8")
    g = ServingModel().solve("Llama2_70B", "H100", **kw)
    p = ServingModel().solve("Llama2_70B", "H100", decode_attention="per_head", **kw)
    (g_lo, g_hi), (p_lo, p_hi) = g.band["itl"], p.band["itl"]
    assert p_lo == g_lo
    assert p_hi > 2 * g_hi
    assert p_lo < p.itl < p_hi


def test_explain_says_the_cache_is_read_per_query_head():
    """Llama-2 70B at TP 4: 16 query heads over 2 KV heads per device, 8 reads per step."""
    kw = dict(seq_len=128, output_len=256, batch_size=8, tp_size=4, precision="fp8")
    per = ServingModel().solve("Llama2_70B", "H100", decode_attention="per_head", **kw)
    line = [x for x in per.explain().splitlines() if "decode attention" in x]
    assert line == ["  decode attention per query head: each step reads a KV head's cache 8 "
                    "times (once per query head sharing it); the band's fast edge reads it "
                    "once (L2 absorbing the rest)"]
    grouped = ServingModel().solve("Llama2_70B", "H100", **kw)
    assert "decode attention" not in grouped.explain()
