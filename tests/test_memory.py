"""Memory accounting (core/memory.py): one budget for every solver, checked by hand."""

import numpy as np
import pytest

import mlsysim
from mlsysim.core.memory import MemoryBudget


def test_budget_arithmetic_by_hand():
    # 16 GB weights + 2 GB buffers resident; 0.5 GB KV per sequence; 72 GB usable.
    m = MemoryBudget(weights=16e9, usable=72e9, per_sample=0.5e9, activations=2e9)
    assert m.total(10) == pytest.approx(16e9 + 10 * 0.5e9 + 2e9)       # 23 GB
    assert m.max_batch() == 108                                       # (72 - 18) / 0.5
    assert m.fits(108) and not m.fits(109)
    assert m.free_for_samples() == pytest.approx(54e9)
    assert list(m.fits(np.array([1, 108, 109]))) == [True, True, False]
    assert m.reason(108, "X") is None
    why = m.reason(200, "NVIDIA X")                                     # KV = 100 GB
    assert "largest: KV" in why and "118 GB" in why and "NVIDIA X has 72 GB" in why
    # Nothing fits when the resident part alone overflows.
    assert MemoryBudget(weights=80e9, usable=72e9, per_sample=1e9).max_batch() == 0
    # A single pass grows both per-sample terms: (72 - 18) / (0.5 + 0.25) = 72 samples.
    g = MemoryBudget(weights=16e9, usable=72e9, per_sample=0.5e9, activations=2e9,
                     activations_per_sample=0.25e9)
    assert g.max_batch() == 72 and g.fits(72) and not g.fits(73)
    assert g.terms(4) == {"weights": 16e9, "KV": 2e9, "activations": 3e9}


def test_training_terms_count_when_filled():
    m = MemoryBudget(weights=14e9, gradients=14e9, optimizer=56e9, usable=80e9,
                     activations_per_sample=1e9)
    assert m.total(1) == pytest.approx(85e9)                # 14 + 14 + 56 + 1
    assert not m.fits(1) and m.largest_term(1) == "optimizer state"


def test_serving_engine_and_optimizer_share_the_budget():
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=2048, output_len=256)
    m = r.memory
    assert r.max_concurrent_sequences == m.max_batch()
    assert r.memory_per_device_bytes == pytest.approx(m.total(1))
    # Llama-3-8B fp16 on one H100: weights 2 B x 8.03e9 params = 16.06 GB of the usable
    # 0.9 x 81559 MiB = 0.9 x 81559 x 2^20 B = 76.97e9 B (nvidia-smi's total for the H100 SXM).
    assert m.weights == pytest.approx(2 * mlsysim.Models.Llama3_8B.parameter_count)
    assert m.usable == pytest.approx(0.9 * 81559 * 2**20)
    top = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=2048, output_len=256,
                                       batch_size="max")
    assert top.batch_size == m.max_batch() and top.feasible
    over = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=2048, output_len=256,
                                        batch_size=m.max_batch() + 1)
    assert not over.feasible and "largest: KV" in over.reason
    opt = mlsysim.BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=2048,
                                            output_len=256, sla_latency_ms=1e9,
                                            arrival_rate_qps=1.0,
                                            max_batch_size=m.max_batch() + 1)
    fits = [f["fits"] for f in opt.front()]
    assert fits[-1] is False and all(fits[:-1])


def test_single_pass_budget_grows_with_the_batch():
    p = mlsysim.Engine.solve("ResNet50", "A100", batch_size=4)
    m = p.memory
    # a bare pass: the whole capacity, 81920 MiB = 81920 x 2^20 B = 85.9e9 B on the A100 80GB
    assert m.usable == pytest.approx(81920 * 2**20)
    assert m.total(4) == pytest.approx(p.weights_bytes + p.state_bytes + p.activation_bytes)
