"""Activation memory of mixture-of-experts layers in training (Korthikanti et al. 2022's
per-layer count, the MLP at the routed width): what one layer keeps per token, in 16-bit
elements, with dropout masks (h each in attention and the MLP), sequence parallelism at
tp = 1 (nothing replicated), no recomputation, capacity factor 1.25:

    attention  6 h + h (mask) + 4 kv_dim
    MLP        2 h + h (mask) + 2 (mats + 1) width      mats = 2 for a gated FFN
    norms      4 h

Mixtral 8x7B (h 4,096, kv_dim 8 x 128 = 1,024, 2 of 8 experts of 14,336, every layer MoE):
    attention 24,576 + 4,096 + 4,096 = 32,768
    width 14,336 x 2 x 1.25 = 35,840; MLP 12,288 + 6 x 35,840 = 227,328
    per layer 32,768 + 227,328 + 16,384 = 276,480

DeepSeek-V3 (h 7,168, kv_dim 128 x 56 = 7,168, 3 dense layers of 61 with FFN 18,432; 58 MoE
layers: 8 routed experts of 2,048 plus 1 shared):
    attention 11 h = 78,848; norms 28,672
    dense MLP 21,504 + 6 x 18,432 = 132,096 -> 239,616
    routed width 2,048 x 8 x 1.25 + 2,048 = 22,528; MLP 21,504 + 135,168 -> 264,192
    per layer (3 x 239,616 + 58 x 264,192) / 61 = 16,041,984 / 61 = 262,983.344
"""

import pytest

from mlsysim.solvers.distributed import activation_bytes, kept_per_token
from mlsysim.zoo import Models


def test_mixtral_keeps_its_routed_mlp_at_the_capacity_width():
    assert kept_per_token(Models.get("Mixtral_8x7B"), 1, 4096, True, "none", 1.25) == 276_480


def test_deepseek_v3_mixes_dense_and_routed_layers_by_their_share():
    assert kept_per_token(Models.get("DeepSeek_V3"), 1, 4096, True, "none", 1.25) == \
        pytest.approx(16_041_984 / 61, rel=1e-12)


def test_a_capacity_factor_of_one_keeps_the_routed_tokens_only():
    """Mixtral at capacity 1: width 28,672, MLP 12,288 + 172,032, per layer 233,472."""
    assert kept_per_token(Models.get("Mixtral_8x7B"), 1, 4096, True, "none", 1.0) == 233_472


def test_mixtral_activation_bytes_of_one_stage():
    """One sequence of 4,096 tokens, one stage, one micro-batch in flight: 32 layers x 4,096
    tokens x 276,480 elements (16-bit units, e = 2) + the fp32 logits 4 x 4,096 x 32,000 =
    36,238,786,560 + 524,288,000 = 36,763,074,560 B."""
    acts = activation_bytes(Models.get("Mixtral_8x7B"), tp=1, pp=1, cp=1, v=1, stage=0, m=1,
                            mbs=1, seq=4096, e=2, sp=True, recompute="none",
                            schedule="1f1b", capacity_factor=1.25)
    assert acts == 36_763_074_560
