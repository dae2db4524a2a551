"""Layer lists lowered to operators (workloads/layered.py): every row's flops and bytes by hand.

One spec holds one layer of each kind the CNN, UNet and recommender zoo entries use, at fp16
(e = 2 bytes per element). Found missing by mutmut: no test read the rows of fc, attention,
embedding, 3-D convolution or repeated-block layers.
"""

import pytest

from mlsysim import Engine
from mlsysim.specs.model import LayeredSpec
from mlsysim.workloads import OpKind, lower

SPEC = LayeredSpec.model_validate({
    "key": "Kinds", "name": "Kinds", "architecture": "test", "group": "Tiny",
    "published_parameters": 216 + 144 + 800 + 16, "family": "layers", "source": "test",
    "as_of": "2026",
    "blocks": [
        {"name": "enc", "layers": [
            {"op": "conv", "name": "c3", "cin": 2, "cout": 4, "k": [3, 3, 3],
             "out": [4, 4, 4], "stride": 2},
            {"op": "fc", "name": "proj", "cin": 8, "cout": 16, "tokens": 3, "bias": True},
            {"op": "attention", "name": "attn", "tokens": 3, "kv_tokens": 5, "heads": 2,
             "head_dim": 4},
            {"op": "embedding", "name": "emb", "rows": 100, "dim": 8, "lookups": 3}]},
        {"name": "loop", "runs": 2, "layers": [{"op": "fc", "name": "step", "cin": 4,
                                                "cout": 4}]}]})


def _row(table, name):
    i = table.names.index(name)
    return dict(kind=OpKind(int(table.kind[i])), count=float(table.count[i]),
                flops=float(table.flops_per_sample[i]),
                weights=float(table.weight_bytes[i]), acts=float(table.act_bytes_per_sample[i]))


def test_every_layer_kind_by_hand():
    t = lower(SPEC, phase="forward", seq_len=1, e=2.0)
    # 3-D conv, 3x3x3 kernel, stride 2 into a 4x4x4 output (64 positions): it reads
    # cin x 64 x 2^3 = 1,024 input elements and writes cout x 64 = 256: 2,560 B.
    # 2 x 27 x 4 = 216 weights (432 B); 216 x 64 = 13,824 MAC = 27,648 flop.
    assert _row(t, "enc.c3") == dict(kind=OpKind.CONV, count=1.0, flops=27_648.0,
                                     weights=432.0, acts=2_560.0)
    # fc over 3 tokens: (8 + 16) x 3 x 2 B = 144 B moved; 8 x 16 + 16 bias = 144 weights
    # (288 B); 8 x 16 x 3 = 384 MAC = 768 flop.
    assert _row(t, "enc.proj") == dict(kind=OpKind.GEMM, count=1.0, flops=768.0,
                                       weights=288.0, acts=144.0)
    # Attention, 3 queries over 5 keys, 2 heads of 4: Q and the output (2 x 3) plus K and V
    # (2 x 5) rows of 2 x 4 values: 16 x 8 x 2 B = 256 B; QK^T and PV 2 x 3 x 5 x 8 = 240 MAC.
    assert _row(t, "enc.attn") == dict(kind=OpKind.ATTENTION, count=1.0, flops=480.0,
                                       weights=0.0, acts=256.0)
    # Embedding: 3 gathered rows of 8 (48 B), not the 100-row table.
    assert _row(t, "enc.emb") == dict(kind=OpKind.EMBEDDING, count=1.0, flops=24.0,
                                      weights=0.0, acts=48.0)
    # A block run twice per sample: its fc (one token) runs twice, weights re-read each run.
    assert _row(t, "loop.step") == dict(kind=OpKind.GEMM, count=2.0, flops=32.0,
                                        weights=32.0, acts=16.0)
    # Resident weights: every parameter once (216 + 144 + 800 + 16 = 1,176 x 2 B); the
    # largest activation set of one kernel is the conv's 2,560 B.
    assert t.weight_total_bytes == 2_352.0
    assert t.act_peak_bytes_per_sample == 2_560.0


def test_largest_activation_set_sets_the_activation_footprint():
    """Engine.solve's activation bytes are the largest kernel's set times the batch."""
    p = Engine.solve(SPEC, "A100", batch_size=10)
    assert p.activation_bytes == pytest.approx(10 * 2_560.0)
    assert p.weights_bytes == pytest.approx(2_352.0)


@pytest.mark.parametrize("k, out", [([3, 3, 3], 4), (3, [4, 4, 4])])
def test_a_3d_convolution_is_recognised_from_either_list(k, out):
    """A kernel list or an output list of three sizes makes the convolution 3-D: the stride-2
    input read is cin x 64 outputs x 2^3 (a 2-D reading would count 2^2)."""
    spec = LayeredSpec.model_validate({
        "key": "C3", "name": "C3", "architecture": "test", "group": "Tiny",
        "published_parameters": 216 if isinstance(k, list) else 72, "family": "layers",
        "source": "test", "as_of": "2026",
        "blocks": [{"name": "b", "layers": [{"op": "conv", "name": "c", "cin": 2, "cout": 4,
                                             "k": k, "out": out, "stride": 2}]}]})
    t = lower(spec, phase="forward", seq_len=1, e=2.0)
    assert float(t.act_bytes_per_sample[0]) == (2 * 64 * 8 + 4 * 64) * 2.0


def test_norms_pools_copies_and_repeats_by_hand():
    """c = 4 channels over a 2 x 2 output (4 positions, 16 elements), fp16.

    - GroupNorm: reads and writes 16 elements (64 B), 8 flop per element (128), 2 x 4 affine
      weights (16 B).
    - Max pool, stride 2: each output reads 2^2 inputs: (4 + 1) x 16 x 2 B = 160 B, 64 flop.
    - Upsample into a 4 x 4 output: a copy, (1 + 1) x 64 x 2 B = 256 B, 64 flop.
    - A ReLU in the epilogue: no bytes, 16 flop, no launch; eagerly its own 64 B kernel.
    - ``repeat: 3``: three copies of a layer, three rows' worth (count 3)."""
    spec = LayeredSpec.model_validate({
        "key": "Misc", "name": "Misc", "architecture": "test", "group": "Tiny",
        "published_parameters": 3 * 8, "family": "layers", "source": "test", "as_of": "2026",
        "blocks": [{"name": "b", "layers": [
            {"op": "norm", "name": "gn", "c": 4, "out": 2, "repeat": 3},
            {"op": "pool", "name": "pool", "c": 4, "out": 2, "stride": 2, "repeat": 3},
            {"op": "upsample", "name": "up", "c": 4, "out": 4},
            {"op": "act", "name": "relu", "c": 4, "out": 2},
            {"op": "attention", "name": "attn", "tokens": 2, "heads": 1, "head_dim": 2,
             "repeat": 3},
            {"op": "embedding", "name": "emb", "rows": 10, "dim": 2, "lookups": 1,
             "repeat": 3}]}]})
    t = lower(spec, phase="forward", seq_len=1, e=2.0)
    assert _row(t, "b.gn") == dict(kind=OpKind.NORM, count=3.0, flops=128.0, weights=16.0,
                                   acts=64.0)
    assert _row(t, "b.pool") == dict(kind=OpKind.ELEMENTWISE, count=3.0, flops=64.0,
                                     weights=0.0, acts=160.0)
    assert _row(t, "b.up") == dict(kind=OpKind.ELEMENTWISE, count=1.0, flops=64.0,
                                   weights=0.0, acts=256.0)
    assert _row(t, "b.relu") == dict(kind=OpKind.ELEMENTWISE, count=1.0, flops=16.0,
                                     weights=0.0, acts=0.0)
    assert _row(t, "b.attn")["count"] == 3.0 and _row(t, "b.emb")["count"] == 3.0
    eager = lower(spec, phase="forward", seq_len=1, e=2.0, eager=True)
    assert _row(eager, "b.relu") == dict(kind=OpKind.ELEMENTWISE, count=1.0, flops=16.0,
                                         weights=0.0, acts=64.0)


def test_training_a_layered_model_by_hand():
    """DistributedModel on the spec above, fp16, batch 4 on one H100. Each operator stores its
    output for the backward: half the bytes it moves forward, (2,560 + 144 + 256 + 48 + 2 x 16)
    / 2 = 1,520 B per sample, 6,080 B for a micro-batch of 4; full recomputation keeps only
    the largest activation set of one kernel (the conv's 2,560 B per sample). Model flops are
    3 x the forward (the data and weight gradients cost 2x): (27,648 + 768 + 480 + 24 + 2 x
    32) x 3 x 4 = 347,808."""
    from mlsysim.solvers.distributed import DistributedModel

    kw = dict(batch_size=4, precision="fp16", microbatch_size=4)
    r = DistributedModel().solve(SPEC, "H100", **kw)
    assert r.memory.activations == 6_080.0
    assert r.model_flops == 347_808.0
    full = DistributedModel().solve(SPEC, "H100", activation_recomputation="full", **kw)
    assert full.memory.activations == 4 * 2_560.0


@pytest.mark.parametrize("op", ["upsample", "concat"])
def test_a_copy_reads_one_input_per_output_whatever_its_stride(op):
    """Only pooling reads stride^2 inputs per output; an upsample or concat with stride 2 set
    is still a copy: c = 4 over a 4 x 4 output (64 elements), (1 + 1) x 64 x 2 B = 256 B and
    64 flop, where a stride-2 pool of the same size reads 4: (4 + 1) x 64 x 2 B = 640 B and
    256 flop. (The 4 x 4 fc is there for the spec's parameter count, 16.)"""
    spec = LayeredSpec.model_validate({
        "key": "Copy", "name": "Copy", "architecture": "test", "group": "Tiny",
        "published_parameters": 16, "family": "layers", "source": "test", "as_of": "2026",
        "blocks": [{"name": "b", "layers": [
            {"op": "fc", "name": "fc", "cin": 4, "cout": 4},
            {"op": op, "name": "copy", "c": 4, "out": 4, "stride": 2},
            {"op": "pool", "name": "pool", "c": 4, "out": 4, "stride": 2}]}]})
    t = lower(spec, phase="forward", seq_len=1, e=2.0)
    assert _row(t, "b.copy") == dict(kind=OpKind.ELEMENTWISE, count=1.0, flops=64.0,
                                     weights=0.0, acts=256.0)
    assert _row(t, "b.pool") == dict(kind=OpKind.ELEMENTWISE, count=1.0, flops=256.0,
                                     weights=0.0, acts=640.0)
