"""Pins found unguarded by mutmut in workloads/ and solvers/serving, topology: the SSM scan's
state round trip, the KV cache's default element size and encoder-decoder cross cache, an
encoder-only model's tensor-parallel split, the optimizer row's name, the refusals of an
unknown recomputation, of a tensor-parallel imported graph, of a draft for an SSM target and
of a torus shape that does not multiply to the node count, and a one-group dragonfly's
bisection."""

import pytest

import mlsysim
from mlsysim.errors import ValidationError
from mlsysim.specs.model import SSMSpec, TransformerSpec
from mlsysim.workloads import kv_cache_bytes, lower
from mlsysim.workloads.imported import ImportedWorkload
from mlsysim.workloads.operators import OperatorBuilder, OpKind
from mlsysim.workloads.training import training_table

_BASE = dict(architecture="Transformer", group="Language", published_parameters=1e3,
             source="test", as_of="2024")


def _tf(key, **kw):
    return TransformerSpec(key=key, name=key, **{**_BASE, **kw})


# Tiny SSM: d_model 4, d_inner 2 x 4 = 8, d_state 2, d_conv 4 (default), 2 layers.
TINY_SSM = SSMSpec(key="TinySSM", name="TinySSM", architecture="Mamba", group="Language",
                   layers=2, d_model=4, d_state=2, vocab=10, published_parameters=1e3,
                   source="test", as_of="2024")
# Tiny decoder: 2 layers, 2 heads of 8 / 2 = 4 dims (MHA): 2 x 2 x 4 = 16 elements per token
# and layer.
TINY_DEC = _tf("TinyDec", kind="decoder", layers=2, hidden=8, heads=2, ffn=16, vocab=10,
               max_context=64)


# ------------------------------------------------------------------------------ ssm lowering

def test_ssm_decode_scan_round_trips_the_layer_state():
    """Decode (t = 1) at e = 2 B: state = L x (di x n x 4 B + di x (d_conv - 1) x e)
    = 2 x (8 x 2 x 4 + 8 x 3 x 2) = 2 x (64 + 48) = 224 B. The scan row per layer reads
    x, dt, B, C and writes y, t x (3 di + 2 n) x e = 1 x (24 + 4) x 2 = 56 B, and reads and
    writes its layer's state once, 2 x 224 / 2 = 224 B: 280 B (exact)."""
    t = lower(TINY_SSM, phase="decode", seq_len=100, e=2.0)
    assert t.state_bytes_per_sample == 224.0
    assert t.act_bytes_per_sample[t.names.index("layer.scan")] == 280.0


# ------------------------------------------------------------------------------- KV cache

def test_kv_cache_bytes_default_element_is_two_bytes():
    """16 elements per token and layer x 2 B (the default) x 2 layers x 5 tokens = 320 B
    (a 3 B default would give 480)."""
    assert kv_cache_bytes(TINY_DEC, 5) == 320.0
    assert kv_cache_bytes(TINY_DEC, 5, 4.0) == 640.0


def test_encoder_decoder_cache_adds_the_cross_attention_cache_per_encoder_token():
    """per layer and token: 2 x 2 heads x 4 dims x 2 B = 32 B. Self-attention over 5 tokens
    on 2 decoder layers: 32 x 2 x 5 = 320 B; cross-attention over the 10 encoder tokens on
    each decoder layer: 2 x 32 x 10 = 640 B. Total 960 B (exact)."""
    ed = _tf("TinyED", kind="encoder_decoder", layers=2, encoder_layers=2, encoder_tokens=10,
             hidden=8, heads=2, ffn=16, vocab=10, max_context=64)
    assert kv_cache_bytes(ed, 5, 2.0) == 960.0


# ----------------------------------------------------------------------- transformer lowering

def test_encoder_only_model_splits_its_layers_over_tensor_parallel_devices():
    """hidden 8, 2 heads, MHA: attention weights 4 x 8 x 8 = 256, of which o_proj is
    2 x 4 x 8 = 64, so QKV is 192 weights, 96 per device at tp = 2. Over 4 tokens the QKV
    GEMM is 2 x 4 x 96 = 768 flop per device (1,536 unsplit); the MLP's up projection
    8 x 16 / 2 = 64 weights: 2 x 4 x 64 = 512 flop (1,024 unsplit)."""
    enc = _tf("TinyEnc", kind="encoder", layers=1, hidden=8, heads=2, ffn=16, vocab=10,
              max_context=64)
    t1 = lower(enc, phase="forward", seq_len=4, e=2.0, tp=1)
    t2 = lower(enc, phase="forward", seq_len=4, e=2.0, tp=2)
    assert t1.flops_per_sample[t1.names.index("encoder.qkv")] == 1536.0
    assert t2.flops_per_sample[t2.names.index("encoder.qkv")] == 768.0
    assert t2.flops_per_sample[t2.names.index("encoder.mlp.up")] == 512.0
    assert t2.weight_bytes[t2.names.index("encoder.qkv")] == 96 * 2.0


def test_imported_graph_refuses_tensor_parallelism_with_the_exact_message():
    b = OperatorBuilder()
    b.add("fc", OpKind.GEMM, flops=10.0)
    w = ImportedWorkload(name="G", key="G", parameter_count=1,
                         build=lambda seq, e: b.build(weight_total_bytes=0.0))
    with pytest.raises(ValidationError) as err:
        lower(w, phase="forward", seq_len=1, e=2.0, tp=2)
    assert str(err.value) == ("The 'model' parameter G is an imported graph: it lowers to one "
                              "device at one precision (tp=1, pp=1, weights at the compute "
                              "precision).")


# ------------------------------------------------------------------------------- training

def _forward():
    b = OperatorBuilder()
    b.add("fc", OpKind.GEMM, flops=10.0, weight_bytes=4.0, act_bytes=2.0)
    return b.build(weight_total_bytes=4.0)


def test_training_table_names_the_optimizer_row():
    """Rows: fc (forward), fc.dgrad, fc.wgrad, then the optimizer row moving 10 params x 16 B
    = 160 B, named optimizer.update."""
    t = training_table(_forward(), params=10.0, optimizer_bytes_per_param=16.0)
    assert t.names == ("fc", "fc.dgrad", "fc.wgrad", "optimizer.update")
    assert t.weight_bytes[-1] == 160.0


def test_training_table_refuses_an_unknown_recomputation_with_the_exact_message():
    with pytest.raises(ValidationError) as err:
        training_table(_forward(), recompute="partial")
    assert str(err.value) == ("The 'activation_recomputation' parameter must be one of none, "
                              "selective, full. Got 'partial' instead.")


# -------------------------------------------------------------------------------- serving

def test_draft_model_for_an_ssm_target_is_refused_naming_the_solver():
    """A transformer draft with Mamba-2.8B's vocabulary (50,280 tokens) passes the vocabulary
    and head checks and is refused because the target is not a transformer."""
    draft = _tf("TinyDraft", kind="decoder", layers=1, hidden=8, heads=2, ffn=16,
                vocab=50280, max_context=4096)
    with pytest.raises(ValidationError) as err:
        mlsysim.ServingModel().solve("Mamba_2_8B", "H100", seq_len=128, draft_model=draft,
                                     draft_acceptance_rate=0.8)
    assert str(err.value) == ("The 'draft_model' parameter of ServingModel needs a "
                              "transformer target.")


# ------------------------------------------------------------------------------- topology

def test_torus_shape_that_does_not_multiply_to_the_nodes_is_refused_with_the_exact_message():
    with pytest.raises(ValidationError) as err:
        mlsysim.TopologyModel().solve("TPU_v4_ICI", "torus", 8, torus_shape=(2, 2, 3))
    assert str(err.value) == ("The 'torus_shape' parameter of TopologyModel must multiply to "
                              "num_nodes (=8). Got (2, 2, 3) instead.")


def test_one_group_dragonfly_bisection_cuts_the_group_in_half():
    """Dragonfly (p, a, h) = (2, 4, 2) with 8 terminals: ceil(8 / (4 x 2)) = 1 group. Its 4
    routers are all-to-all; halving them cuts (4 // 2) x (4 - 4 // 2) = 2 x 2 = 4 links of
    50 GB/s (InfiniBand NDR): 200 GB/s."""
    r = mlsysim.TopologyModel().solve("InfiniBand_NDR", "dragonfly", 8, dragonfly_shape=(2, 4, 2))
    assert r.bisection_links == 4.0
    assert r.bisection_bw.to("GB/s").magnitude == pytest.approx(200.0, rel=1e-12)
