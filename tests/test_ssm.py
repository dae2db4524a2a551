"""Mamba's operator rows (workloads/ssm.py), each checked against the spec by hand."""

import pytest

import mlsysim
from mlsysim.workloads.ssm import lower_ssm

MAMBA = mlsysim.Models.get("Mamba_2_8B")   # d = 2560, d_inner = 5120, N = 16, rank 160


@pytest.fixture(scope="module")
def prefill():
    """128-token prefill in 2-byte activations over two pipeline stages."""
    return lower_ssm(MAMBA, phase="prefill", seq_len=128, e=2, pp=2)


def _row(table, name):
    i = table.names.index(name)
    return (table.flops_per_sample[i], table.weight_bytes[i], table.act_bytes_per_sample[i])


def test_mamba_spec_is_the_one_the_rows_below_assume():
    assert (MAMBA.d_model, MAMBA.d_inner, MAMBA.d_state, MAMBA.rank, MAMBA.vocab) == (
        2560, 5120, 16, 160, 50280)


def test_projection_gemms_read_their_inputs_and_write_their_outputs(prefill):
    """A GEMM of cin -> cout over t = 128 tokens moves t (cin + cout) x 2 B of activations:
    in_proj 2560 -> 10240: 128 x 12800 x 2 = 3,276,800 B; x_proj 5120 -> r + 2N = 192:
    128 x 5312 x 2 = 1,359,872 B, its flops 2 x 128 x 5120 x 192 = 251,658,240; dt_proj
    160 -> 5120: 128 x 5280 x 2 = 1,351,680 B; out_proj 5120 -> 2560: 128 x 7680 x 2 =
    1,966,080 B."""
    assert _row(prefill, "layer.in_proj")[2] == 3_276_800
    assert _row(prefill, "layer.x_proj") == (251_658_240, 5120 * 192 * 2, 1_359_872)
    assert _row(prefill, "layer.dt_proj")[2] == 1_351_680
    assert _row(prefill, "layer.out_proj")[2] == 1_966_080


def test_final_norm_reads_and_writes_one_hidden_vector(prefill):
    """The last token's norm: 2 x d x e = 2 x 2560 x 2 = 10,240 B, 8 d = 20,480 flops."""
    assert _row(prefill, "final_norm") == (20_480, 0.0, 10_240)


def test_pipeline_hand_off_is_a_flop_free_collective_row(prefill):
    """pp = 2: one send of t x d x e = 128 x 2560 x 2 = 655,360 B per sample, no flops and no
    weights (a collective moves bytes, it computes nothing)."""
    assert _row(prefill, "pp_send") == (0.0, 0.0, 655_360)
