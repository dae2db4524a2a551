"""The LLM Foundry MPT training-throughput rows (REF-255 to REF-296, source key
``llmfoundry_mpt_bench``): the benchmark models' sizes, every run scored, and how the
published numbers relate.

Source: mosaicml/llm-foundry ``scripts/train/benchmarking/README.md`` (commit 061f2c7c), tables
"H100 80GB BF16" and "A100 80GB with 1600 Gbps node-node interconnect (RoCE)", rows of the 7b,
13b, 30b and 70b models. The models are ``mlsysim/zoo/data/models/mpt.yaml``; the runs' setups
(FSDP FULL_SHARD = ZeRO-3 over every GPU) are in ``training_setups.yaml``.
"""

import math
import re

import pytest

from mlsysim.validation.adapters import predict_row, training_setups
from mlsysim.validation.reference import load_reference
from mlsysim.zoo import Models

ROWS = {r.id: r for r in load_reference() if r.source_key == "llmfoundry_mpt_bench"}
SETUPS = training_setups()
MPT = [m for m in Models if m.key.startswith("MPT_")]

# d_model, n_heads, n_layers of scripts/train/yamls/mpt/{7b,13b,30b,70b}.yaml.
SHAPES = {"7B": (4096, 32, 32), "13B": (5120, 40, 40), "30B": (7168, 56, 48),
          "70B": (8192, 64, 80)}
VOCAB = 50368


def mpt_parameters(h: int, layers: int, seq: int, vocab: int = VOCAB) -> int:
    """MPT with MPTConfig's defaults (learned positions, biases, LayerNorm, 4h GELU MLP, tied
    embedding): per layer QKV 3h^2 + 3h, output h^2 + h, MLP 8h^2 + 5h, two LayerNorms 4h,
    so 12h^2 + 13h; then the tied embedding V h, the position table s h and the final
    LayerNorm 2h."""
    return layers * (12 * h * h + 13 * h) + vocab * h + seq * h + 2 * h


# --- the models --------------------------------------------------------------------------------
def test_mpt_7b_and_70b_at_2048_by_hand():
    """7B at 2048: 32 x (12 x 4096^2 + 13 x 4096) = 32 x 201,379,840 = 6,444,154,880;
    + 50,368 x 4096 = 206,307,328; + 2048 x 4096 = 8,388,608; + 2 x 4096 = 8,192:
    6,658,859,008, the README's NumParams for 7b at SeqLen 2048.

    70B at 2048: 80 x (12 x 8192^2 + 13 x 8192) = 80 x 805,412,864 = 64,433,029,120;
    + 50,368 x 8192 = 412,614,656; + 2048 x 8192 = 16,777,216; + 16,384: 64,862,437,376.
    """
    assert 32 * (12 * 4096**2 + 13 * 4096) == 6_444_154_880
    assert Models.get("MPT_7B_S2048").parameter_count == 6_658_859_008
    assert 80 * (12 * 8192**2 + 13 * 8192) == 64_433_029_120
    assert Models.get("MPT_70B_S2048").parameter_count == 64_862_437_376


@pytest.mark.parametrize("model", MPT, ids=lambda m: m.key)
def test_mpt_entry_reproduces_the_readme_count_exactly(model):
    """Every entry's structure gives the README's NumParams to the parameter (the zoo's
    general test allows 2 %): the check that the benchmark models use learned positions and
    biases, unlike the released MPT-7B / MPT-30B (ALiBi, no biases)."""
    size, seq = re.fullmatch(r"MPT_(\d+B)_S(\d+)", model.key).groups()
    h, heads, layers = SHAPES[size]
    assert (model.hidden, model.heads, model.layers, model.ffn) == (h, heads, layers, 4 * h)
    assert (model.vocab, model.max_context, model.position) == (VOCAB, int(seq), "learned")
    assert model.bias and model.tied_embeddings and model.norm == "layernorm"
    assert model.parameter_count == mpt_parameters(h, layers, int(seq))
    assert model.parameter_count == model.published_parameters


def test_the_position_table_is_what_separates_the_sequence_lengths():
    """7B at 65,536 vs 2048: (65536 - 2048) x 4096 = 260,046,848 more weights, the README's
    6,918,905,856 - 6,658,859,008."""
    diff = (Models.get("MPT_7B_S65536").parameter_count
            - Models.get("MPT_7B_S2048").parameter_count)
    assert diff == (65536 - 2048) * 4096 == 6_918_905_856 - 6_658_859_008


# --- the rows ---------------------------------------------------------------------------------
def test_rows_are_the_42_runs_of_the_two_tables():
    """22 H100 rows (70b x2, 30b x6, 13b x8, 7b x6) and 20 A100 80GB rows (70b x2, 30b x5,
    13b x6, 7b x7), numbered REF-255 to REF-296."""
    assert sorted(ROWS) == [f"REF-{i}" for i in range(255, 297)]
    assert sum(r.hardware == "H100" for r in ROWS.values()) == 22
    assert sum(r.hardware == "A100" for r in ROWS.values()) == 20
    assert {r.metric for r in ROWS.values()} == {"tokens_per_s_per_gpu"}


@pytest.mark.parametrize("rid", sorted(ROWS))
def test_setup_is_fsdp_full_shard_over_every_gpu(rid):
    row, s = ROWS[rid], SETUPS[rid]
    assert (s.tp, s.pp, s.cp, s.dp, s.zero_stage) == (1, 1, 1, row.num_devices, 3)
    assert s.node == ("DGX_H100" if row.hardware == "H100" else "DGX_A100")
    assert s.nodes * 8 == row.num_devices
    assert s.seq_len == Models.get(row.model).max_context
    # attn_impl triton (llm-foundry's flash_attn_triton.py) and no dropout in MPT's configs.
    assert s.attention_kernel == "triton" and "attn_impl triton" in s.why
    assert s.dropout is False
    ckpt = re.search(r"activation checkpointing (True|False)", row.notes).group(1)
    assert s.recomputation == ("full" if ckpt == "True" else "none")
    mbs, ga = map(int, re.search(r"MicroBatchSize (\d+) GradAccum (\d+)", row.notes).groups())
    # GlobalBatchSize = MicroBatchSize x GradAccum x #GPUs, as published.
    assert s.microbatch_size == mbs and s.global_batch == mbs * ga * row.num_devices


@pytest.mark.parametrize("rid", sorted(ROWS))
def test_every_mpt_run_is_scored_and_fits(rid):
    """Each run really ran, so DistributedModel must find it feasible (no false OOM)."""
    p = predict_row(ROWS[rid])
    assert p.status == "ok", (rid, p.reason)
    assert 0 < p.low < p.value < p.high


# --- the published numbers ---------------------------------------------------------------------
def _tokens_per_s(row) -> int:
    return int(re.search(r"Throughput (\d+) tokens/s", row.notes).group(1))


@pytest.mark.parametrize("rid, tokens, gpus, per_gpu", [
    ("REF-255", 66523, 64, 1039),   # 66,523 / 64 = 1,039.4
    ("REF-278", 11962, 32, 373),    # 11,962 / 32 = 373.8: the README truncates, not rounds
])
def test_tokens_per_gpu_is_the_readme_total_over_gpus(rid, tokens, gpus, per_gpu):
    row = ROWS[rid]
    assert (_tokens_per_s(row), row.num_devices, row.value) == (tokens, gpus, per_gpu)
    assert math.floor(tokens / gpus) == per_gpu


def test_every_row_value_is_its_total_over_its_gpus():
    for row in ROWS.values():
        assert math.floor(_tokens_per_s(row) / row.num_devices) == row.value, row.id


def test_readme_mfu_is_its_flops_per_token_times_tokens_per_gpu():
    """The README's MFU: (6 N + 12 l h s) flops per token x tokens/s/GPU / peak. A100 7b at
    2048 (REF-295): 6 x 6,658,859,008 + 12 x 32 x 4096 x 2048 = 39,953,154,048 + 3,221,225,472
    = 43,174,379,520 flop/token; x 4641 = 2.0037e14 flop/s, / 312e12 = 64.22 % (published
    64.23). H100 7b at 2048 (REF-275): x 10,643 / 989.5e12 = 46.44 % (published 46.44)."""
    per_token = 6 * 6_658_859_008 + 12 * 32 * 4096 * 2048
    assert per_token == 43_174_379_520
    assert 100 * per_token * ROWS["REF-295"].value / 312e12 == pytest.approx(64.23, abs=0.05)
    assert 100 * per_token * ROWS["REF-275"].value / 989.5e12 == pytest.approx(46.44, abs=0.05)


def test_predicted_rate_is_tokens_per_step_over_step_and_gpus():
    """tokens/s/GPU predicted = global batch x seq / (step x GPUs): REF-293 (7b, 8192, 8 A100,
    batch 128) moves 128 x 8192 = 1,048,576 tokens per step."""
    row = ROWS["REF-293"]
    s = SETUPS["REF-293"]
    r = s.solve(Models.get(row.model))
    assert s.global_batch * s.seq_len == 1_048_576
    assert predict_row(row).value == pytest.approx(1_048_576 / (r.step_s * 8), rel=1e-12)
