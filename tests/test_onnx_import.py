"""ONNX import (issue #13): graphs built here with ``onnx.helper`` (nothing downloaded), their
operator tables checked against hand counts, and solved by ``Engine.solve``."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import mlsysim  # noqa: E402
from mlsysim import Engine, Models  # noqa: E402
from mlsysim.errors import MLSysimError, SpecError, ValidationError  # noqa: E402
from mlsysim.workloads import lower  # noqa: E402
from mlsysim.workloads.imported import ImportedWorkload  # noqa: E402
from mlsysim.workloads.operators import OpKind  # noqa: E402


def _init(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _model(nodes, inputs, outputs, inits, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


IN, HID, OUT = 64, 256, 10


def mlp(batch="N"):
    """x[N, 64] -> Gemm(64->256, bias) -> Relu -> Gemm(256->10, bias)."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1, name="fc2")]
    inits = [_init("w1", HID, IN), _init("b1", HID), _init("w2", OUT, HID), _init("b2", OUT)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, IN])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, OUT])],
                  inits, name="mlp")


def cnn():
    """x[N,3,32,32] -> Conv 3->16 k3 pad1 -> Relu -> MaxPool 2 -> Flatten -> Gemm(4096->10)."""
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                              name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc")]
    inits = [_init("cw", 16, 3, 3, 3), _init("cb", 16), _init("fw", 10, 16 * 16 * 16),
             _init("fb", 10)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                        ["N", 3, 32, 32])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                  inits, name="cnn")


def seq_model(d=512):
    """x[batch, seq, 512] -> MatMul(512x512) -> LayerNorm -> Gelu-ish (Sigmoid * x) + an
    unsupported TopK."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
             helper.make_node("LayerNormalization", ["h", "g", "b"], ["n"], axis=-1,
                              name="ln"),
             helper.make_node("Sigmoid", ["n"], ["s"], name="sig"),
             helper.make_node("Mul", ["n", "s"], ["y"], name="silu")]
    inits = [_init("w", d, d), _init("g", d), _init("b", d)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                        ["batch", "seq", d])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", d])],
                  inits, name="seqblock")


def _flops(w, seq=None, e=2.0):
    t = w.table(seq_len=seq, e=e)
    return float(t.flops_per_sample @ t.count), t


def test_mlp_flops_and_parameters_by_hand(tmp_path):
    w = Models.from_onnx(_save(tmp_path, mlp()))
    assert isinstance(w, ImportedWorkload) and w.name == "mlp"
    # 64*256 + 256 + 256*10 + 10 weights and biases
    assert w.parameter_count == IN * HID + HID + HID * OUT + OUT == 19_210
    flops, t = _flops(w)
    gemm = float(t.flops_per_sample[t.kind == OpKind.GEMM] @ t.count[t.kind == OpKind.GEMM])
    assert gemm == 2 * (IN * HID + HID * OUT) == 37_888       # 2 M N K, M = 1 per sample
    assert flops == gemm + HID                                 # + one flop per ReLU output
    assert t.weight_total_bytes == 19_210 * 2.0                # fp16 elements
    assert w.unmodeled == () and not w.seq_axis


def test_conv_flops_by_hand(tmp_path):
    w = Models.from_onnx(_save(tmp_path, cnn()))
    _, t = _flops(w)
    conv = t.flops_per_sample[t.kind == OpKind.CONV]
    # 2 * Cout * Cin/groups * kH * kW * Hout * Wout = 2 * 16 * 3 * 3 * 3 * 32 * 32
    assert conv.tolist() == [2 * 16 * 3 * 3 * 3 * 32 * 32] == [884_736]
    names = dict(zip(t.names, t.flops_per_sample))
    assert names["MaxPool pool"] == 4 * 16 * 16 * 16           # 2x2 window per output
    assert names["Gemm fc"] == 2 * 4096 * 10
    assert not any(n.startswith("Flatten") for n in t.names)   # a view: no kernel
    assert w.parameter_count == 16 * 27 + 16 + 40960 + 10


def test_pointwise_ops_fuse_into_the_producing_kernel(tmp_path):
    """Conv -> Relu and Gemm -> Relu: the ReLU is the conv's (or fc1's) only use, so it runs in
    that kernel's epilogue: no launch, its 16 x 32 x 32 (or 256) flops kept, no bytes of its
    own. A Relu after a Reshape of the conv output looks through the view. An Add of two
    branches fed by the same tensor is not the sole use of either: it stays a kernel."""
    for model, relu, flops in ((cnn(), "Relu relu", 16 * 32 * 32), (mlp(), "Relu relu", HID)):
        t = Models.from_onnx(_save(tmp_path, model)).table(seq_len=None, e=2.0)
        i = list(t.names).index(relu)
        assert t.launches[i] == 0 and t.act_bytes_per_sample[i] == 0
        assert t.flops_per_sample[i] == flops
    # x -> Gemm(w) -> y; y used by Relu and by the output: two uses, no fusion.
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc"),
             helper.make_node("Relu", ["y"], ["r"], name="relu")]
    g = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", HID]),
                helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", HID])],
               [_init("w", HID, IN)])
    t = Models.from_onnx(_save(tmp_path, g, "two_uses.onnx")).table(seq_len=None, e=2.0)
    i = list(t.names).index("Relu relu")
    assert t.launches[i] == 1 and t.act_bytes_per_sample[i] == 2 * HID * 2.0


def test_an_identity_of_an_initializer_is_a_weight(tmp_path):
    """Exporters deduplicate equal initializers and feed each user an Identity copy: the
    Gemm's bias b (256 elements) through Identity is still read once per kernel as a weight,
    not per sample as an activation: weight elements 64 x 256 + 256."""
    nodes = [helper.make_node("Identity", ["b"], ["b_copy"], name="dedup"),
             helper.make_node("Gemm", ["x", "w", "b_copy"], ["y"], transB=1, name="fc")]
    g = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", HID])],
               [_init("w", HID, IN), _init("b", HID)])
    t = Models.from_onnx(_save(tmp_path, g, "dedup.onnx")).table(seq_len=None, e=1.0)
    i = list(t.names).index("Gemm fc")
    assert t.weight_bytes[i] == IN * HID + HID
    assert t.act_bytes_per_sample[i] == IN + HID


def test_engine_solves_an_imported_graph(tmp_path):
    w = Models.from_onnx(_save(tmp_path, cnn()))
    p = Engine.solve(w, "A100", batch_size=8)
    assert p.latency_s > 0 and p.feasible and p.phase == "forward" and p.seq_len is None
    assert p.flops_total == pytest.approx(8 * _flops(w)[0])
    assert p.model is w
    json.dumps(p.to_dict())
    assert p.trace()["model"]["parameters"] == w.parameter_count
    assert "cnn" in repr(p) and "cnn" in p.explain()
    assert Engine.solve(w, "A100", batch_size=8) .latency_s == p.latency_s


def test_same_mlp_as_a_layered_zoo_model_gives_the_same_flops(tmp_path):
    from mlsysim.specs.model import LayeredSpec
    spec = LayeredSpec.model_validate({
        "key": "MLP", "name": "MLP", "architecture": "MLP", "group": "Tiny",
        "published_parameters": 19_210, "family": "layers", "source": "test", "as_of": "2025",
        "blocks": [{"name": "mlp", "layers": [
            {"op": "fc", "cin": IN, "cout": HID, "bias": True},
            {"op": "act", "c": HID, "tokens": 1},
            {"op": "fc", "cin": HID, "cout": OUT, "bias": True}]}]})
    w = Models.from_onnx(_save(tmp_path, mlp()))
    assert spec.parameter_count == w.parameter_count
    zoo = Engine.solve(spec, "A100", batch_size=8)
    imp = Engine.solve(w, "A100", batch_size=8)
    assert imp.flops_total == zoo.flops_total == 8 * (37_888 + HID)
    assert imp.weights_bytes == zoo.weights_bytes


def test_unsupported_op_is_reported_unmodeled(tmp_path):
    m = seq_model()
    m.graph.node.append(helper.make_node("NonMaxSuppression", ["y", "y"], ["z"], name="nms"))
    m.graph.node.append(helper.make_node("NonMaxSuppression", ["y", "y"], ["z2"], name="nms2"))
    w = Models.from_onnx(_save(tmp_path, m))
    assert w.unmodeled == (("NonMaxSuppression", 2),)
    assert w.unmodeled_nodes == 2
    assert w.unmodeled_bytes(16, 2.0) > 0
    t = w.table(seq_len=16, e=2.0)
    assert not any("NonMaxSuppression" in n for n in t.names)


def test_symbolic_batch_and_seq_axes(tmp_path):
    d = 512
    w = Models.from_onnx(_save(tmp_path, seq_model(d)))
    assert w.seq_axis
    f128, _ = _flops(w, 128)
    # MatMul 2*seq*d*d; LayerNorm 8 per element; Sigmoid and Mul 1 each.
    assert f128 == 128 * (2 * d * d + 8 * d + 2 * d)
    short = Engine.solve(w, "A100", batch_size=8, seq_len=128)
    long = Engine.solve(w, "A100", batch_size=8, seq_len=2048)
    assert long.latency_s > short.latency_s and long.seq_len == 2048
    assert long.flops_total == pytest.approx(16 * short.flops_total)
    assert Engine.solve(w, "A100", batch_size=8).seq_len == w.default_seq_len


def test_seq_len_rejected_where_the_graph_has_none(tmp_path):
    w = Models.from_onnx(_save(tmp_path, mlp()))
    with pytest.raises(ValidationError):
        Engine.solve(w, "A100", seq_len=0)
    assert Engine.solve(w, "A100", seq_len=64).seq_len is None
    with pytest.raises(ValidationError, match="phase"):
        Engine.solve(w, "A100", phase="decode")


def test_fixed_batch_export_is_divided_per_sample(tmp_path):
    w = Models.from_onnx(_save(tmp_path, mlp(batch=4)))
    assert _flops(w)[0] == 37_888 + HID
    assert any("fixed batch of 4" in n for n in w.notes)


def test_precision_sets_the_element_size(tmp_path):
    w = Models.from_onnx(_save(tmp_path, mlp()))
    t32 = lower(w, phase="forward", seq_len=1, e=4.0)
    t16 = lower(w, phase="forward", seq_len=1, e=2.0)
    assert t32.weight_total_bytes == 2 * t16.weight_total_bytes
    assert lower(w, phase="forward", seq_len=1, e=2.0) is t16       # cached per precision
    with pytest.raises(ValidationError, match="imported graph"):
        lower(w, phase="forward", seq_len=1, e=2.0, tp=2)


def test_bad_files_raise_typed_errors(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        Models.from_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf at all" * 10)
    with pytest.raises(MLSysimError):
        Models.from_onnx(junk)
    good = _save(tmp_path, cnn())
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SpecError):
        Models.from_onnx(cut)


def test_resolve_still_rejects_other_objects():
    with pytest.raises(ValidationError, match="imported workload"):
        Engine.solve(object(), "A100")


def test_inspect_cli(tmp_path, capsys):
    from mlsysim.cli import main
    m = seq_model()
    m.graph.node.append(helper.make_node("TopK", ["y", "k"], ["v", "i"], axis=-1, name="topk"))
    m.graph.initializer.append(numpy_helper.from_array(np.array([4], dtype=np.int64), "k"))
    path = _save(tmp_path, m)
    assert main(["inspect", str(path), "--json", "--seq-len", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unmodeled"] == [{"op": "TopK", "count": 1}]
    assert out["flops_per_sample"] == 64 * (2 * 512 * 512 + 8 * 512 + 2 * 512)
    assert out["kinds"]["gemm"]["count"] == 1
    assert 0 < out["unmodeled_share"]["bytes"] < 1
    assert main(["inspect", str(path)]) == 0
    assert "TopK" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "nope.onnx"), "--json"]) == 2
    assert mlsysim.Models.from_onnx is not None


def test_eager_runs_the_relu_as_its_own_kernel(tmp_path):
    """mlp(): compiled, the Relu runs in fc1's epilogue (no launch, no bytes: its input is
    fc1's output in registers). Eager (every node its own kernel) it reads and writes the
    256-wide hidden vector: 2 x 256 x 2 B = 1,024 B per sample in fp16, one more launch."""
    w = Models.from_onnx(_save(tmp_path, mlp()))
    fused, eager = w.table(seq_len=None, e=2.0), w.table(seq_len=None, e=2.0, eager=True)
    assert float(eager.launches @ eager.count) == float(fused.launches @ fused.count) + 1 == 3
    relu = [i for i, n in enumerate(eager.names) if n.startswith("Relu")]
    assert [eager.act_bytes_per_sample[i] for i in relu] == [2 * HID * 2]
    a = Engine.solve(w, "A100", batch_size=8)
    b = Engine.solve(w, "A100", batch_size=8, eager=True)
    assert b.bytes_total - a.bytes_total == 8 * 2 * HID * 2
