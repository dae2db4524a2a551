"""Memory accounting (core/memory.py): one budget for every solver, checked by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlsysim
from mlsysim.core.memory import (
    MemoryBudget,
    canonical_optimizer,
    fmt_bytes,
    optimizer_state_bytes_per_param,
)
from mlsysim.errors import ValidationError


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


def test_max_batch_edges_by_hand():
    """Edges of max_batch, each worked out: it is the largest B with fits(B)."""
    # Nothing grows with the batch: any batch fits (int64 max) unless the fixed part alone
    # overflows (0); exactly full still fits.
    assert MemoryBudget(weights=1.0, usable=2.0).max_batch() == np.iinfo(np.int64).max
    assert MemoryBudget(weights=2.0, usable=2.0).max_batch() == np.iinfo(np.int64).max
    assert MemoryBudget(weights=3.0, usable=2.0).max_batch() == 0
    # Sub-byte per-sample terms (a per-sample state split over pipeline stages): 10 B free at
    # 0.5 B per sample is 20 samples; 0.5 B free at 0.25 B is 2.
    assert MemoryBudget(weights=0.0, usable=10.0, per_sample=0.5).max_batch() == 20
    assert MemoryBudget(weights=0.5, usable=1.0, per_sample=0.25).max_batch() == 2
    # 1.0 // 0.1 is 9.0 in floating point, yet ten 0.1 B samples total exactly 1.0: fits.
    m = MemoryBudget(weights=0.0, usable=1.0, per_sample=0.1)
    assert m.fits(10) and not m.fits(11) and m.max_batch() == 10
    # Overflowing budgets have no room for samples.
    assert MemoryBudget(weights=3.0, usable=2.0).free_for_samples() == 0.0
    assert MemoryBudget(weights=1.5, usable=2.0).free_for_samples() == 0.5


@given(fixed=st.floats(0, 1e12), usable=st.floats(1, 1e12),
       per=st.floats(1e-3, 1e10), act=st.floats(0, 1e10))
def test_max_batch_is_the_largest_batch_that_fits(fixed, usable, per, act):
    m = MemoryBudget(weights=fixed, usable=usable, per_sample=per,
                     activations_per_sample=act)
    b = m.max_batch()
    assert not m.fits(b + 1)
    assert b == 0 or m.fits(b)


def test_terms_and_reason_by_hand():
    """Terms keep their names (the per-sample one by its label), drop empty ones but always
    show the weights, keep sub-byte ones; the reason lists them in that order."""
    m = MemoryBudget(weights=0.0, usable=1e9, per_sample=0.5, gradients=2e9, optimizer=4e9,
                     per_sample_label="state")
    assert m.terms(1) == {"weights": 0.0, "gradients": 2e9, "optimizer state": 4e9,
                          "state": 0.5}
    assert m.largest_term(1) == "optimizer state"
    assert m.reason(1, "X (x 0.9)") == (
        "needs 6 GB per device (weights 0 B, gradients 2 GB, optimizer state 4 GB, state "
        "0.5 B; largest: optimizer state), X (x 0.9) has 1 GB")


@pytest.mark.parametrize("n, text", [
    (1.2e12, "1.2 TB"), (1e12, "1 TB"), (999e9, "999 GB"), (1e9, "1 GB"),
    (3.4e6, "3.4 MB"), (1e6, "1 MB"), (5e3, "5 kB"), (1e3, "1 kB"), (999, "999 B"),
    (0.5, "0.5 B")])
def test_fmt_bytes_prefixes(n, text):
    assert fmt_bytes(n) == text


@pytest.mark.parametrize("name", ["AdamW", "adam-w", " ADAM_W ", "adamw-8bit", "8bit-Adam"])
def test_optimizer_aliases(name):
    assert canonical_optimizer(name) in ("adam", "adam8bit")


def test_unknown_optimizer_error_names_field_owner_choices_and_near_miss():
    with pytest.raises(ValidationError) as err:
        canonical_optimizer("adamm", "DistributedModel")
    text = str(err.value)
    assert err.value.field == "optimizer"
    assert text.startswith("The 'optimizer' parameter of DistributedModel must be one of: "
                           "adam, sgd, adafactor, adam8bit")
    assert text.endswith("Got 'adamm' instead. Did you mean: adam, adamw, adam8bit?")
    with pytest.raises(ValidationError) as far:
        canonical_optimizer(7)
    assert str(far.value).endswith("Got 7 instead.")


def test_adafactor_without_a_hidden_size_says_what_to_choose():
    with pytest.raises(ValidationError) as err:
        optimizer_state_bytes_per_param("adafactor", mlsysim.Models.ResNet50, "Trainer")
    assert err.value.field == "optimizer"
    assert str(err.value) == (
        "The 'optimizer' parameter of Trainer 'adafactor' needs a model with a hidden size "
        "(a transformer or SSM) to size its factored state; choose one of: adam, sgd, "
        "adam8bit for 'ResNet-50'.")
    # A model given by name (no spec) is quoted as given; an unknown optimizer names the
    # caller too.
    with pytest.raises(ValidationError, match=r"adam8bit for 'MyNet'\.$"):
        optimizer_state_bytes_per_param("adafactor", "MyNet")
    with pytest.raises(ValidationError, match="parameter of Trainer must be one of"):
        optimizer_state_bytes_per_param("adamx", None, "Trainer")
    # With one: 2 x 4 B / hidden; Llama-3-8B's hidden is 4096.
    assert optimizer_state_bytes_per_param("adafactor", mlsysim.Models.Llama3_8B) == 8 / 4096
