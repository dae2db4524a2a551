"""Workload rows (ssm, training, transformer) a mutmut sample found unguarded, checked by hand
at 16-bit activations (e = 2 bytes per element)."""

import pytest

import mlsysim
from mlsysim.workloads.ssm import lower_ssm
from mlsysim.workloads.training import with_collectives
from mlsysim.workloads.transformer import lower_transformer

LLAMA = mlsysim.Models.get("Llama3_8B")    # hidden 4096, ffn 14336 gated, vocab 128256
MAMBA = mlsysim.Models.get("Mamba_2_8B")   # d_model 2560, 64 layers


def _row(table, name):
    i = table.names.index(name)
    return dict(count=float(table.count[i]), flops=float(table.flops_per_sample[i]),
                acts=float(table.act_bytes_per_sample[i]))


def test_mamba_layer_norm_costs_eight_flops_per_element():
    """Prefill of t = 128 tokens, d = 2560: 8 t d = 8 x 128 x 2560 = 2,621,440 flops per layer
    norm, reading and writing 4 t d e = 4 x 128 x 2560 x 2 = 2,621,440 B, 64 layers."""
    assert (MAMBA.d_model, MAMBA.layers) == (2560, 64)
    t = lower_ssm(MAMBA, phase="prefill", seq_len=128, e=2)
    assert _row(t, "layer.norm") == dict(count=64.0, flops=2_621_440.0, acts=2_621_440.0)


def test_decoder_embedding_writes_one_hidden_vector_per_token():
    """Llama-3-8B prefill of 16 tokens: the embedding lookup writes 16 x 4096 x 2 B =
    131,072 B and does no flops."""
    t = lower_transformer(LLAMA, phase="prefill", seq_len=16, e=2)
    assert _row(t, "embedding") == dict(count=1.0, flops=0.0, acts=131_072.0)


def test_activation_peak_counts_the_vocabulary_shard_under_tensor_parallelism():
    """Llama-3-8B, 16 prompt tokens, tp = 2. Widest intermediate per device: the gated MLP,
    2 x 14336 / 2 = 14336 (the QKV+O width 41,943,040 / 4096 / 2 = 5120 is narrower). Peak:
    16 x (4096 + 14336) x 2 B = 589,824 B plus one token's logits shard, 128256 / 2 x 2 B =
    128,256 B: 718,080 B. (Multiplying by tp instead would give 1,102,848 B.)"""
    assert (LLAMA.hidden, LLAMA.ffn, LLAMA.vocab, LLAMA.attn_params) == (
        4096, 14336, 128256, 41_943_040)
    t = lower_transformer(LLAMA, phase="prefill", seq_len=16, e=2, tp=2)
    assert t.act_peak_bytes_per_sample == pytest.approx(718_080.0, rel=1e-12)


def test_with_collectives_drops_groups_of_one():
    """A collective over one device moves nothing and adds no row: a group-1 all-reduce
    leaves the table as it was (the same object), while a group-2 one adds exactly one row
    named after it, carrying its 1000 B message and count 3."""
    t = lower_transformer(LLAMA, phase="decode", seq_len=16, e=2)
    solo = dict(name="solo_allreduce", kind="allreduce", group=1, count=3, message_bytes=1000.0)
    assert with_collectives(t, [solo]) is t
    pair = dict(solo, name="pair_allreduce", group=2)
    out = with_collectives(t, [solo, pair])
    assert out.names == t.names + ("pair_allreduce",)
    assert (float(out.act_bytes_per_sample[-1]), float(out.count[-1]),
            float(out.comm_group[-1])) == (1000.0, 3.0, 2.0)
