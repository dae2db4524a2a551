"""Pipeline stages and the embedding table: the first stage holds it (a lookup has no weight
row), the last the LM head; a tied head is a second copy of the table unless the first stage
is also the last."""

import pytest

import mlsysim

N = 1_235_814_400          # Llama-3.2-1B, tied embeddings
E = 128_256 * 2_048        # its embedding table = its LM head: 262,668,288
# A layer's GEMMs: 2 x 2048^2 + 2 x 2048 x 512 (q, o; k, v) + 3 x 2048 x 8192 = 60,817,408.
LAYER = 60_817_408
W_ROWS = 16 * LAYER + E    # the weight rows' parameters: 16 layers and the head


def _solve(pp, **kw):
    return mlsysim.DistributedModel().solve("Llama3_2_1B", "DGX_H100", batch_size=8,
                                            seq_len=1024, pp_size=pp, microbatch_count=1, **kw)


def test_one_stage_holds_one_copy_of_a_tied_table():
    """pp 1: all N parameters once, bf16 weights 2 B each."""
    assert _solve(1).memory.weights == pytest.approx(2 * N, rel=1e-12)


def test_the_last_stage_keeps_its_copy_of_a_tied_head():
    """pp 2, 8 + 8 layers: the N parameters (the tied table counted once, as the head's rows)
    spread over the weight rows by their bytes, plus the table again on the first stage:
    last = N x (8 x LAYER + E) / W_ROWS, first = E + N x 8 x LAYER / W_ROWS (14,375 fewer).
    With one micro-batch in flight the last stage (head and logits) is the fullest."""
    last = N * (8 * LAYER + E) / W_ROWS
    assert _solve(2).memory.weights == pytest.approx(2 * last, rel=1e-12)


def test_an_untied_table_moves_to_the_first_stage():
    """Llama-3-8B (untied): with every layer on the last stage but one, the first stage holds
    the 525,336,576-parameter embedding and one 218,103,808-parameter layer, far less than the
    last's 31 layers and head; so the last is the fullest, and it no longer carries a share
    of the table: (N - E) x (31 x 218,103,808 + 525,336,576) / 7,504,658,432."""
    n, e = 8_030_261_248, 128_256 * 4_096
    r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=1024,
                                         pp_size=2, microbatch_count=1, first_stage_layers=1,
                                         last_stage_layers=31)
    last = (n - e) * (31 * 218_103_808 + e) / 7_504_658_432
    assert r.memory.weights == pytest.approx(2 * last, rel=1e-12)
