"""Fused attention kernels slower than FlashAttention-2 (issue 9, validation of the 2023 MPT
runs): a measured speed ratio per sequence length scales the device's attention efficiency.

The ratios come from one figure (Dao 2023, arXiv:2307.08691, Fig. 4c: A100, causal, head
dimension 64, forward + backward TFLOP/s), copied into
``mlsysim/validation/microbench/attention_kernels.csv`` beside the forward speed the
calibration measures (MIC-040: FlashAttention-2 forward at 8K tokens, 179.5 TFLOP/s):

    seq        512  1k   2k   4k   8k   16k
    FA-2        88  119  140  156  165  171
    FA-1        58   70   77   87   92   97
    triton.ops  59   75   79   76   79   67
    xformers    51   60   66   68   69   80
"""

import math

import numpy as np
import pytest

import mlsysim
from mlsysim.core.calibration import attention_kernel_ratio, training_attention_factor
from mlsysim.solvers.distributed import _resolve, attention_speed, parts_for
from mlsysim.specs.configs import DistributedConfig
from mlsysim.workloads.operators import OpKind

DM = mlsysim.DistributedModel()


@pytest.mark.parametrize("kernel, seq, expected", [
    ("flash1", 2048, 77 / 140),
    ("flash1", 16384, 97 / 171),
    ("triton_ops", 4096, 76 / 156),
    ("flash1", 256, 58 / 88),          # below the measured lengths: held at 512
    ("triton_ops", 65536, 67 / 171),   # above: held at 16k, no trend extrapolated
    ("xformers", 2048, 66 / 140),
    ("flash2", 3000, 1.0),
])
def test_the_ratio_is_the_measured_speed_over_flashattention_2s(kernel, seq, expected):
    assert attention_kernel_ratio(kernel, seq) == pytest.approx(expected, rel=1e-12)


def test_between_measured_lengths_the_ratio_is_linear_in_log2_of_the_length():
    """3000 tokens: log2(3000) = 11.5507, 55.07 % of the way from 2k (77/140 = 0.55) to 4k
    (87/156 = 0.557692): 0.55 + 0.5507 x 0.007692 = 0.554236."""
    frac = math.log2(3000) - 11
    expected = 77 / 140 + (87 / 156 - 77 / 140) * frac
    assert attention_kernel_ratio("flash1", 3000) == pytest.approx(expected, rel=1e-12)
    assert attention_kernel_ratio("flash1", 3000) == pytest.approx(0.554236, abs=1e-6)


def test_between_the_first_two_lengths_the_ratio_is_interpolated_too():
    """724 tokens: log2(724) = 9.4998, half-way from 512 (58/88 = 0.659091) to 1k (70/119 =
    0.588235): 0.659091 + 0.4998 x (0.588235 - 0.659091) = 0.623674."""
    frac = math.log2(724) - 9
    expected = 58 / 88 + (70 / 119 - 58 / 88) * frac
    assert attention_kernel_ratio("flash1", 724) == pytest.approx(expected, rel=1e-12)
    assert attention_kernel_ratio("flash1", 724) == pytest.approx(0.623674, abs=1e-6)


def test_the_interpolation_divides_by_the_gap_between_measured_lengths():
    """Points 4 doublings apart (1 -> 0, 16 -> 4): 4 tokens is 2 of the 4 doublings, so 2.0
    (the shipped lengths are one doubling apart, where dividing and multiplying agree)."""
    from mlsysim.core.calibration import _log_interpolate

    assert _log_interpolate([(1.0, 0.0), (16.0, 4.0)], 4.0) == pytest.approx(2.0, rel=1e-12)


def test_an_unmeasured_kernel_is_refused_with_the_measured_ones_named():
    with pytest.raises(ValueError, match="flash1, flash2, triton_ops, xformers"):
        attention_kernel_ratio("flash3", 2048)


@pytest.mark.parametrize("seq, expected", [(8192, 165 / 179.5), (2048, 140 / 179.5),
                                           (300, 88 / 179.5), (65536, 171 / 179.5)])
def test_training_prices_flashattention_2_at_its_forward_and_backward_speed(seq, expected):
    """The calibrated attention efficiency is a forward pass at 8K tokens (MIC-040: 179.5
    TFLOP/s on A100, head dim 64); FlashAttention-2's forward + backward over a causal
    sequence runs at 88-171 TFLOP/s from 512 to 16K tokens on the same device (Fig. 4c)."""
    assert training_attention_factor(seq) == pytest.approx(expected, rel=1e-12)


def test_triton_runs_at_flashattention_1s_speed_and_at_the_slow_edge_at_triton_ops():
    """llm-foundry's Triton kernel is documented as "slightly slower" than the CUDA
    FlashAttention of its time: nominal and fast edge FA-1, slow edge triton.ops; every
    kernel's speed is relative to the 179.5 TFLOP/s forward the calibration measured."""
    assert attention_speed("triton", 2048) == pytest.approx(77 / 179.5, rel=1e-12)
    assert attention_speed("triton", 2048, "fast") == pytest.approx(77 / 179.5, rel=1e-12)
    assert attention_speed("triton", 2048, "slow") == pytest.approx(79 / 179.5, rel=1e-12)
    assert attention_speed("triton", 16384, "slow") == pytest.approx(67 / 179.5, rel=1e-12)
    assert attention_speed("flash1", 16384, "slow") == pytest.approx(97 / 179.5, rel=1e-12)
    assert attention_speed("xformers", 4096, "slow") == pytest.approx(68 / 179.5, rel=1e-12)
    assert attention_speed("flash", 16384) == pytest.approx(171 / 179.5, rel=1e-12)
    assert attention_speed("materialized", 512) == 1.0


def test_the_ratio_divides_only_the_attention_rows_compute_time():
    """Llama-3-8B at 2,048 tokens on an H100: FlashAttention-1 (r = 77 / 140 = 0.55 of
    FlashAttention-2's speed) makes every attention row's seconds per sample at the compute
    roof (k_tc = F / (peak x eta_max)) 1 / 0.55 times FlashAttention-2's; GEMMs and vector
    rows keep theirs."""
    model, system, hw, path, prec, seq = _resolve("Llama3_8B", "DGX_H100",
                                                  DistributedConfig(batch_size=8, seq_len=2048))
    args = (model, hw, path, prec, seq, 1, 1, 1, "none", False, 1.0, 8)
    flash2 = parts_for(*args)
    fa1 = parts_for(*args, attention_kernel="flash1")
    for side in ("fwd", "bwd"):
        a, b = flash2.__dict__[side]["stack"], fa1.__dict__[side]["stack"]
        attn = np.asarray(a.table.kind) == OpKind.ATTENTION
        assert attn.any() and (~attn).any()
        assert b.k_tc[attn] == pytest.approx(a.k_tc[attn] * 140 / 77, rel=1e-12)
        assert np.array_equal(b.k_tc[~attn], a.k_tc[~attn])


def test_a_slower_attention_kernel_lengthens_the_step_and_lowers_mfu_alike():
    """Same model flops, so MFU falls by exactly the factor the step time grows; the growth
    is at most 1 / r (if the whole step were attention) and here, at 8k tokens where attention
    is about a third of the flops, well below it."""
    kw = dict(batch_size=8, seq_len=8192, zero_stage=1)
    fa2 = DM.solve("Llama3_8B", "DGX_H100", **kw)
    fa1 = DM.solve("Llama3_8B", "DGX_H100", attention_kernel="flash1", **kw)
    grow = fa1.step_s / fa2.step_s
    assert 1.05 < grow < 171 / 97
    assert fa2.mfu / fa1.mfu == pytest.approx(grow, rel=1e-12)
    triton = DM.solve("Llama3_8B", "DGX_H100", attention_kernel="triton", **kw)
    assert triton.step_s == fa1.step_s
    assert triton.step_band_s[1] > fa1.step_band_s[1]


def test_the_llama_1_and_2_runs_are_priced_with_the_xformers_attention_llama_1_names():
    """LLaMA (Touvron et al. 2023a) sec. 2.4 trains with xformers' causal attention; Llama 2
    keeps LLaMA 1's setup. Every other energy run keeps FlashAttention-2 (or materialized)."""
    from mlsysim.validation.adapters import energy_setups

    runs = energy_setups().runs
    for name, run in runs.items():
        expected = "xformers" if name.startswith(("llama1-", "llama2-")) else None
        if expected:
            assert run.attention_kernel == expected, name
        else:
            assert run.attention_kernel in ("flash", "materialized"), name


def test_the_optimizer_prices_the_kernel_the_way_the_single_solve_does():
    """ParallelismOptimizer(attention_kernel="triton") hands its best config, kernel included,
    to DistributedModel, which gives the same step; the kernel costs the search's best step
    time at 8K tokens (attention a third of the flops)."""
    kw = dict(batch_size=64, seq_len=8192, zero_stages=(1,), microbatch_sizes=(1,),
              recomputation=("selective",))
    opt = mlsysim.ParallelismOptimizer()
    flash = opt.solve("Llama3_8B", "DGX_H100", **kw)
    triton = opt.solve("Llama3_8B", "DGX_H100", attention_kernel="triton", **kw)
    assert triton.best_config["attention_kernel"] == "triton"
    assert triton.best_step_s > 1.05 * flash.best_step_s
    c = triton.best_config
    again = DM.solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=8192, tp_size=c["tp"],
                     pp_size=c["pp"], dp_size=c["dp"], v_stages=c["v_stages"],
                     microbatch_size=c["microbatch_size"], zero_stage=c["zero_stage"],
                     activation_recomputation=c["activation_recomputation"],
                     attention_kernel=c["attention_kernel"])
    assert again.step_s == pytest.approx(triton.best_step_s, rel=1e-9)


def test_the_result_says_how_attention_was_priced():
    """The assumptions name the kernel and its speed: FlashAttention-2 at 2,048 tokens is
    140 / 179.5 = 0.78 of the calibrated forward efficiency; a CNN has no such line."""
    r = DM.solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=2048, zero_stage=1)
    assert r.attention_kernel == "flash"
    assert r.attention_speed == pytest.approx(140 / 179.5, rel=1e-12)
    assert r.assumptions[-1].startswith("attention: FlashAttention-2, forward + backward at "
                                        "0.78 x the calibrated forward efficiency at 2048")
    cnn = DM.solve("ResNet50", "DGX_H100", batch_size=256)
    assert not any(a.startswith("attention") for a in cnn.assumptions)
