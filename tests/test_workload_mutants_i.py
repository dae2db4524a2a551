"""Serving, sustainability, topology and workload rows a mutmut sample found unguarded, each
value derived by hand in its test's docstring (16-bit elements, e = 2 bytes, unless stated)."""

import pytest

import mlsysim
from mlsysim.errors import ValidationError
from mlsysim.workloads.training import training_table
from mlsysim.workloads.transformer import Segment, lower_segments, lower_transformer

M = mlsysim.Models
S = mlsysim.ServingModel()


def _row(table, name):
    i = table.names.index(name)
    return dict(count=float(table.count[i]), weight=float(table.weight_bytes[i]),
                acts=float(table.act_bytes_per_sample[i]))


# --- Segment.pairs: sliding-window causal attention ------------------------------------------
def test_window_pairs_count_each_new_token_once_per_visible_key():
    """10 new tokens after 1 cached one, window 4. New token j (1-based) sits at position
    1 + j and sees min(1 + j, 4) keys: 2 + 3 + 4 + 7 x 4 = 37 pairs. The formula: a =
    window - prefix = 3 tokens still short of the window, a p + a (a + 1) / 2 + (q - a) w =
    3 + 6 + 28 = 37. (window + prefix would give a = 5 and 5 + 15 + 20 = 40; a / (a + 1) / 2
    would give 3 + 0.375 + 28 = 31.375.) Three sequences: 111."""
    brute = sum(min(1 + j, 4) for j in range(1, 11))
    assert brute == 37
    assert Segment(10, 1).pairs(4) == 37.0
    assert Segment(10, 1, sequences=3).pairs(4) == 111.0


# --- transformer lowering rows ---------------------------------------------------------------
def test_whisper_cross_attention_projections_read_their_weights_at_two_bytes():
    """Whisper-large-v3 decoder (20 heads x d_head 64, hidden 1280, 32 layers): the Q and O
    projections of cross-attention hold 2 x 20 x 64 x 1280 = 3,276,800 weights per layer, read
    at we = 2 B: 6,553,600 B per layer (dividing by we would give 1,638,400 B)."""
    w = M.get("Whisper_Large_v3")
    assert (w.heads, w.d_head, w.hidden, w.layers) == (20, 64, 1280, 32)
    t = lower_segments(w, [Segment(4)], e=2)
    row = _row(t, "layer.cross_qo")
    assert row["count"] == 32.0
    assert row["weight"] == pytest.approx(6_553_600.0, rel=1e-12)


def test_encoder_tensor_parallel_allreduce_row_is_named_and_sized():
    """BERT-Base (hidden 768, 12 layers), one 128-token sequence, tp = 2: the encoder's TP
    all-reduce row 'encoder.tp_allreduce' moves 128 x 768 x 2 B = 196,608 B, twice per layer
    (24 times), over a group of 2, and sits between the last MLP row and the final norm."""
    bert = M.get("BERT_Base")
    assert (bert.hidden, bert.layers) == (768, 12)
    t = lower_segments(bert, [Segment(128, causal=False)], e=2, tp=2)
    assert t.names[-3:] == ("encoder.mlp.down", "encoder.tp_allreduce", "final_norm")
    i = t.names.index("encoder.tp_allreduce")
    assert (float(t.act_bytes_per_sample[i]), float(t.count[i]), float(t.comm_group[i])) == (
        196_608.0, 24.0, 2.0)


def test_weight_gradients_scale_with_the_gradient_to_weight_byte_ratio():
    """Llama-3-8B QKV projection: (4096 + 2 x 8 x 128) x 4096 = 25,165,824 weights, 50,331,648
    B at 2 B. Its WGRAD row reads the weights and writes a gradient, 2 x that scaled by
    grad_ratio: fp32 gradients of bf16 weights (grad_ratio = 2) make 4 x 50,331,648 =
    201,326,592 B; grad_ratio = 0.5 makes 50,331,648 B. (Dividing by the ratio would swap
    them.)"""
    f = lower_transformer(M.get("Llama3_8B"), phase="prefill", seq_len=16, e=2)
    assert _row(f, "layer.qkv")["weight"] == 50_331_648.0
    fp32 = training_table(f, grad_ratio=2.0)
    half = training_table(f, grad_ratio=0.5)
    assert _row(fp32, "layer.qkv.wgrad")["weight"] == pytest.approx(201_326_592.0, rel=1e-12)
    assert _row(half, "layer.qkv.wgrad")["weight"] == pytest.approx(50_331_648.0, rel=1e-12)


# --- serving -----------------------------------------------------------------------------------
def test_serving_refuses_a_prompt_past_the_context_with_the_exact_message():
    """Llama-3-8B's context is 8192 tokens; a prompt of 8192 plus 2 outputs caches 8193."""
    with pytest.raises(ValidationError) as err:
        S.solve("Llama3_8B", "H100", seq_len=8192, output_len=2)
    assert str(err.value) == (
        "The 'seq_len' parameter of ServingModel plus output_len - 1 (8192 + 2 - 1) exceeds "
        "Llama-3-8B's context of 8192 tokens.")


def test_draft_model_kv_cache_is_paged_at_full_length_like_the_target():
    """Prompt 128 + output 128 = 256 tokens = 16 pages of 16. Target Llama-3-8B: 32 layers x
    2 x 8 KV heads x 128 x 2 B = 131,072 B/token -> 33,554,432 B. Draft Llama-3.2-1B: 16 x 2
    x 8 x 64 x 2 = 32,768 B/token -> 8,388,608 B. Together 41,943,040 B per sequence (the
    draft's cache at 2 tokens instead of 256 would give 33,619,968 B)."""
    plain = S.solve("Llama3_8B", "H100", seq_len=128, output_len=128)
    spec = S.solve("Llama3_8B", "H100", seq_len=128, output_len=128,
                   draft_model="Llama3_2_1B", draft_acceptance_rate=0.8)
    assert plain.page_size == 16
    assert plain.kv_bytes_per_sequence == pytest.approx(33_554_432.0, rel=1e-12)
    assert spec.kv_bytes_per_sequence == pytest.approx(41_943_040.0, rel=1e-12)


def test_serving_trace_names_its_four_equations():
    """The trace's equations are keyed ttft, itl, e2e and kv_per_sequence, with the KV one
    spelled out."""
    eq = S.solve("Llama3_8B", "H100", seq_len=128, output_len=16).trace()["equations"]
    assert list(eq) == ["ttft", "itl", "e2e", "kv_per_sequence"]
    assert eq["kv_per_sequence"] == "kv_cache_bytes(prompt + output, paged) * kv_share / pp"


# --- sustainability and topology messages ----------------------------------------------------
def test_sustainability_refuses_a_grid_that_is_not_a_gridspec():
    with pytest.raises(ValidationError) as err:
        mlsysim.SustainabilityModel().solve("DGX_H100", duration_days=1,
                                            datacenter="Hyperscale", grid=42, mfu=0.4)
    assert str(err.value) == (
        "The 'grid' parameter of SustainabilityModel must be a GridSpec or a zoo name (see "
        "mlsysim.Infra.Grids). Got 42 instead.")


def test_single_switch_reports_too_many_ports():
    """100 one-NIC nodes need 100 ports; a radix-64 switch has 64."""
    r = mlsysim.TopologyModel().solve("InfiniBand_NDR", "single_switch", 100)
    assert r.feasible is False
    assert r.reason == "one switch of radix 64 cannot take 100 ports"
