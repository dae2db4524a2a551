"""Eager execution (``Engine.solve(eager=True)``): the pass as PyTorch runs it uncompiled.

An inference compiler folds BatchNorm into the convolution and runs activations and residual
adds in the producing kernel's epilogue; an eager framework launches each as a kernel that
reads and writes its tensors. The validation rows measured in eager PyTorch are predicted
this way; rows whose time the device does not set are skipped as host-bound.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsysim import Engine, Models
from mlsysim.errors import ValidationError
from mlsysim.specs.model import LayeredSpec
from mlsysim.validation.adapters import predict_row
from mlsysim.validation.reference import load_reference
from mlsysim.workloads import OpKind, lower

# One conv (3 -> 8 channels, 3x3, 4x4 output) with BN, then a residual add and a ReLU.
TINY = LayeredSpec.model_validate({
    "key": "Tiny", "name": "Tiny", "architecture": "CNN", "group": "Tiny",
    "published_parameters": 3 * 8 * 9 + 16, "family": "layers", "source": "test",
    "as_of": "2026", "input": [3, 4, 4],
    "blocks": [{"name": "b", "layers": [
        {"op": "conv", "cin": 3, "cout": 8, "k": 3, "out": 4, "bn": True},
        {"op": "add", "c": 8, "out": 4},
        {"op": "act", "c": 8, "out": 4}]}]})


def _rows(table):
    return {n.split(".", 1)[1]: i for i, n in enumerate(table.names)}


def test_eager_table_unfuses_by_hand():
    """y = 8 channels x 16 positions = 128 elements, 2 bytes each (fp16).

    Compiled: the add reads its second operand (128 x 2 = 256 B) in the conv's epilogue and
    the ReLU costs nothing; neither launches. Eager: BN and the ReLU it implies read and
    write y (2 x 256 = 512 B each), the add reads two operands and writes one (768 B), the
    explicit ReLU reads and writes (512 B); every row launches once. Without ``bn`` the
    convolution is followed by its activation only."""
    fused = lower(TINY, phase="forward", seq_len=1, e=2.0)
    eager = lower(TINY, phase="forward", seq_len=1, e=2.0, eager=True)
    f, g = _rows(fused), _rows(eager)
    assert set(f) == {"conv", "add", "act"}
    assert set(g) == {"conv", "conv.bn", "conv.act", "add", "act"}
    assert fused.act_bytes_per_sample[f["add"]] == 256 and fused.launches[f["add"]] == 0
    assert fused.act_bytes_per_sample[f["act"]] == 0 and fused.launches[f["act"]] == 0
    expect = {"conv.bn": 512, "conv.act": 512, "add": 768, "act": 512}
    for name, nbytes in expect.items():
        assert eager.act_bytes_per_sample[g[name]] == nbytes, name
        assert eager.launches[g[name]] == 1, name
    assert eager.kind[g["conv.bn"]] == OpKind.NORM
    assert eager.flops_per_sample[g["conv.bn"]] == 2 * 128      # a scale and a shift each
    # BN's four per-channel tensors (mean, variance, scale, shift): 4 x 8 x 2 B.
    assert eager.weight_bytes[g["conv.bn"]] == 64
    # The convolution itself is the same kernel either way.
    assert eager.act_bytes_per_sample[g["conv"]] == fused.act_bytes_per_sample[f["conv"]]
    plain = TINY.model_copy(update={"blocks": [TINY.blocks[0].model_copy(update={
        "layers": [TINY.blocks[0].layers[0].model_copy(update={"bn": False})]})]})
    assert set(_rows(lower(plain, phase="forward", seq_len=1, e=2.0, eager=True))) == \
        {"conv", "conv.act"}


def test_resnet50_eager_traffic_by_hand():
    """ResNet-50's 53 BN convolutions write 11,113,984 output elements per image and its 16
    residual adds 5,519,360. Eager adds, per image in fp16: BN + ReLU read and write each
    conv output (4 x 11,113,984 x 2 B = 88.91 MB) and each add reads one more operand and
    writes its result (2 x 5,519,360 x 2 B = 22.08 MB): 110.99 MB on the fused pass's
    57.01 MB; plus each BN kernel's four per-channel tensors, read once per batch (4 x
    26,560 channels x 2 B; ResNet-50 has 53,120 BN affine parameters = 2 x 26,560). On a
    V100 at batch 256 that traffic makes the pass memory-bound and 2.16x as long (8,001 ->
    3,705 images/s; measured in eager PyTorch: 3,382, REF-059)."""
    fused = Engine.solve("ResNet50", "V100", batch_size=256)
    eager = Engine.solve("ResNet50", "V100", batch_size=256, eager=True)
    extra = (eager.bytes_total - fused.bytes_total) / 256
    assert extra == pytest.approx((4 * 11_113_984 + 2 * 5_519_360) * 2
                                  + 4 * 26_560 * 2 / 256, rel=1e-9)
    assert fused.bytes_total / 256 == pytest.approx(57.01e6, rel=1e-3)
    assert eager.flops_total > fused.flops_total
    assert eager.latency_s / fused.latency_s == pytest.approx(2.16, rel=0.01)
    assert eager.bottleneck == "Memory" and fused.bottleneck == "Compute"
    assert eager.eager and not fused.eager
    assert any("eager execution" in a for a in eager.assumptions)
    assert any("compiled execution" in a for a in fused.assumptions)
    assert eager.headline()["eager"] is True


def test_eager_kernels_are_launched():
    """53 conv + 53 BN + 53 implied ReLU + 16 add + 2 pools + fc = 178 launches (the zoo's
    implied ReLU after every convolution counts 4 more than torchvision's 49: see the torch
    import test)."""
    table = lower(Models.ResNet50, phase="forward", seq_len=1, e=2.0, eager=True)
    assert float(table.launches @ table.count) == 178
    fused = lower(Models.ResNet50, phase="forward", seq_len=1, e=2.0)
    assert float(fused.launches @ fused.count) == 53 + 2 + 1


@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0])
def test_eager_must_be_a_bool(bad):
    with pytest.raises(ValidationError, match="'eager'.*must be True or False"):
        Engine.solve("ResNet50", "A100", eager=bad)


@pytest.mark.parametrize("model", ["Llama3_8B", "BERT_Base", "Mamba_2_8B"])
def test_eager_refused_for_engine_lowered_models(model):
    with pytest.raises(ValidationError, match="eager.*layer-list models.*Leave eager=False"):
        Engine.solve(model, "H100", eager=True)


LAYERED = ["ResNet50", "MobileNetV2", "EfficientNet_B0", "YOLOv8n", "AlexNet", "RetinaNet",
           "SDXL"]


@settings(max_examples=60, deadline=None)  # a first solve builds its plan (~0.1 s)
@given(model=st.sampled_from(LAYERED), batch=st.integers(1, 512),
       hw=st.sampled_from(["A100", "H100", "T4", "JetsonAGXOrin"]))
def test_unfusing_never_speeds_a_pass_up(model, batch, hw):
    """Eager adds kernels and turns fused ones into launched ones with more traffic: each
    operator's time is a max of non-negative terms, so the pass can only get longer."""
    fused = Engine.solve(model, hw, batch_size=batch)
    eager = Engine.solve(model, hw, batch_size=batch, eager=True)
    assert eager.latency_s >= fused.latency_s
    assert eager.bytes_total > fused.bytes_total


def test_validation_solves_eager_rows_unfused_and_skips_host_bound_ones():
    rows = {r.id: r for r in load_reference()}
    for rid in ("REF-057", "REF-059"):        # eager PyTorch at batch 256: device-bound
        p = predict_row(rows[rid])
        assert p.status == "ok" and "eager" in p.method, rid
        assert abs(p.value / rows[rid].value - 1) < 0.15, rid
    for rid in ("REF-050", "REF-051", "REF-052", "REF-053", "REF-054", "REF-055",
                "REF-056", "REF-058", "REF-060"):
        p = predict_row(rows[rid])
        assert p.status == "skipped" and p.code == "host-bound", rid
    # A compiled engine's batch-1 row is still scored.
    assert predict_row(rows["REF-035"]).status == "ok"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mlsysim", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_eager():
    out = _cli("eval", "ResNet50", "V100", "-b", "256", "--eager", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["eager"] is True
    assert d["throughput"]["value"] == pytest.approx(
        float(Engine.solve("ResNet50", "V100", batch_size=256, eager=True).throughput),
        rel=1e-9)
    out = _cli("eval", "ResNet50,MobileNetV2", "V100", "--eager")
    assert out.returncode == 2 and "--eager: give one configuration" in out.stderr
    out = _cli("eval", "Llama3_8B", "H100", "--eager")
    assert out.returncode == 2 and "layer-list models" in out.stderr


def test_eager_band_brackets_the_nominal():
    p = Engine.solve("ResNet50", "T4", batch_size=64, eager=True)
    lo, hi = (q.to("s").magnitude for q in p.band)
    assert lo < p.latency_s < hi
    assert np.isfinite([lo, hi]).all()



def test_launch_floors_by_hand_compiled_eager_and_graphs():
    """TINY is a few kB of work: every kernel is launch-bound, so a pass costs kernels x the
    per-kernel floor. The floors are the launch microbenchmarks' median, 8.1 us (framework
    dispatch), and their smallest, 3.0 us (MIC-152, a raw cuLaunchKernel: what a CUDA-graph
    replay costs). Compiled: 1 kernel (the add and ReLU in the conv's epilogue); eager: 5
    (conv, BN, implied ReLU, add, ReLU). The fused add's 256 B read adds 0.2 ns (< 1e-4)."""
    from mlsysim.core.calibration import calibration
    cal = calibration()
    assert cal.kernel_overhead_s == pytest.approx(8.1e-6)
    assert cal.graph_kernel_s == pytest.approx(3.0e-6)
    cases = {(False, False): 1 * 8.1e-6, (False, True): 1 * 3.0e-6,
             (True, False): 5 * 8.1e-6, (True, True): 5 * 3.0e-6}
    for (eager, graphs), seconds in cases.items():
        p = Engine.solve(TINY, "A100", eager=eager, cuda_graphs=graphs)
        assert p.latency_s == pytest.approx(seconds, rel=1e-4), (eager, graphs)
        assert p.cuda_graphs is graphs and p.headline()["cuda_graphs"] is graphs
    assert any("CUDA graph" in a for a in p.assumptions)


def test_cuda_graphs_must_be_a_bool():
    with pytest.raises(ValidationError, match="'cuda_graphs'.*must be True or False"):
        Engine.solve("ResNet50", "A100", cuda_graphs="yes")


def test_mlperf_single_stream_rows_replay_graphs_as_the_submitter_configured():
    rows = {r.id: r for r in load_reference()}
    for rid in ("REF-035", "REF-037"):       # ResNet-50 and BERT SingleStream on A100
        assert "cuda_graphs" in predict_row(rows[rid]).method, rid
    # RetinaNet's SingleStream base sets use_graphs = False, its Orin class True.
    assert "cuda_graphs" in predict_row(rows["REF-044"]).method       # RetinaNet on AGX Orin
    on_a100 = rows["REF-044"].model_copy(update={"hardware": "A100"})
    assert "cuda_graphs" not in predict_row(on_a100).method
    assert "cuda_graphs" not in predict_row(rows["REF-036"]).method   # Offline


def test_cli_cuda_graphs():
    out = _cli("eval", "ResNet50", "A100", "-p", "int8", "--cuda-graphs", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["cuda_graphs"] is True and d["eager"] is False
    expect = Engine.solve("ResNet50", "A100", precision="int8", cuda_graphs=True)
    assert d["latency"]["value"] == pytest.approx(expect.latency_s * 1e3, rel=1e-9)
