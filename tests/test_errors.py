"""Bad input gets a clear MLSysimError naming the field, never a deep traceback."""

import math

import pytest

import mlsysim
from mlsysim import Engine
from mlsysim.errors import (
    DimensionError,
    MLSysimError,
    SpecError,
    UnknownNameError,
    UnsupportedPrecisionError,
    ValidationError,
)
from mlsysim.specs.hardware import HardwareSpec

A100 = mlsysim.Hardware.Cloud.A100


@pytest.mark.parametrize("batch", [0, -1, 1.5, math.nan, math.inf, "8", True, None])
def test_bad_batch_size_names_the_field(batch):
    with pytest.raises(ValidationError, match="batch_size"):
        Engine.solve(mlsysim.Models.ResNet50, A100, batch_size=batch)


def test_unknown_precision_lists_supported():
    with pytest.raises(UnsupportedPrecisionError) as err:
        Engine.solve(mlsysim.Models.ResNet50, A100, precision="fp12")
    assert "fp16" in str(err.value) and "bf16" in str(err.value)


def test_precision_the_device_lacks_is_an_error_not_fp16():
    # The A100 has no fp8 tensor cores.
    with pytest.raises(UnsupportedPrecisionError, match="fp8"):
        Engine.solve(mlsysim.Models.ResNet50, A100, precision="fp8")


def test_unknown_names_suggest_closest():
    with pytest.raises(UnknownNameError, match="ResNet50"):
        Engine.solve("ResNet5O", "A100")


def test_seq_len_beyond_context():
    with pytest.raises(ValidationError, match="seq_len"):
        Engine.solve(mlsysim.Models.Llama3_8B, A100, seq_len=100_000)


def test_phase_not_for_cnn():
    with pytest.raises(ValidationError, match="phase"):
        Engine.solve(mlsysim.Models.ResNet50, A100, phase="decode")


def _hw(**memory):
    return dict(key="X", name="X", group="Cloud", vendor="Y",
                compute={"dense": {"fp16": "100 TFLOP/s"}},
                memory={"capacity": "10 GB", "bandwidth": "1 TB/s", **memory},
                source="test", as_of="2024")


def test_bandwidth_in_tflops_is_a_dimension_error():
    with pytest.raises(DimensionError, match="memory.bandwidth"):
        HardwareSpec(**_hw(bandwidth="2 TFLOP/s"))


@pytest.mark.parametrize("bad", ["-1 GB", "nan GB", "0 GB", 80, "lots"])
def test_bad_capacity_rejected(bad):
    with pytest.raises(SpecError, match="memory.capacity"):
        HardwareSpec(**_hw(capacity=bad))


def test_unknown_field_rejected():
    with pytest.raises(SpecError, match="colour"):
        HardwareSpec(**_hw(), colour="green")


def test_estimate_needs_notes():
    with pytest.raises(SpecError, match="estimate"):
        HardwareSpec(**_hw(), estimate=True)


def test_user_yaml_round_trip_and_errors(tmp_path):
    good = tmp_path / "my_gpu.yaml"
    good.write_text(
        "key: MyGPU\nname: My GPU\ngroup: Cloud\nvendor: Me\n"
        "compute: {dense: {fp16: 100 TFLOP/s}}\n"
        "memory: {capacity: 24 GB, bandwidth: 1 TB/s}\nsource: my datasheet\nas_of: '2025'\n")
    hw = mlsysim.load_hardware(good)
    p = Engine.solve(mlsysim.Models.ResNet50, hw)
    assert p.latency_s > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: [unclosed\n")
    with pytest.raises(MLSysimError, match="bad.yaml, line"):
        mlsysim.load_hardware(bad)


def test_model_cross_field_validation():
    from mlsysim.specs.model import TransformerSpec
    base = dict(key="T", name="T", architecture="Transformer", group="Language",
                kind="decoder", layers=2, hidden=4096, heads=32, ffn=1024, vocab=10,
                max_context=128, published_parameters=1e6, source="x", as_of="2024")
    with pytest.raises(SpecError, match="kv_heads"):
        TransformerSpec(**{**base, "kv_heads": 5})
    with pytest.raises(SpecError, match="must divide hidden"):
        TransformerSpec(**{**base, "hidden": 4000, "heads": 3})


def test_all_errors_share_the_root():
    for cls in (ValidationError, UnknownNameError, UnsupportedPrecisionError, SpecError,
                DimensionError):
        assert issubclass(cls, MLSysimError)


def test_yaml_with_wrong_unit_is_a_dimension_error_naming_file_and_field(tmp_path):
    from mlsysim.errors import DimensionError
    f = tmp_path / "gpu.yaml"
    f.write_text("key: G\nname: G\ngroup: Cloud\nvendor: V\ncompute: {dense: {fp16: 1 TFLOP/s}}\n"
                 "memory: {capacity: 8 GB, bandwidth: 2 TFLOP/s}\nsource: s\nas_of: '2024'\n")
    with pytest.raises(DimensionError, match=r"(?s)gpu.yaml entry G.*memory.bandwidth"):
        mlsysim.load_hardware(f)


def test_load_model_yaml_and_unknown_family(tmp_path):
    f = tmp_path / "tiny_lm.yaml"
    f.write_text("key: TinyLM\nname: Tiny LM\narchitecture: Transformer\ngroup: Language\n"
                 "family: transformer\nkind: decoder\nlayers: 2\nhidden: 256\nheads: 4\n"
                 "ffn: 1024\nvocab: 1000\nmax_context: 512\npublished_parameters: 2.1e6\n"
                 "source: test\nas_of: '2024'\n")
    m = mlsysim.load_model(f)
    # 1000*256 embedding + 1000*256 head + 2 layers * (4*256*256 attention + 2*256*1024 MLP
    # + 2*256 RMSNorm weights) + 256 final norm = 512,000 + 1,573,888 + 256 = 2,086,144.
    assert m.parameter_count == 2_086_144
    assert Engine.solve(m, "H100", seq_len=128).latency_s > 0
    f.write_text("key: X\nfamily: rnn\n")
    with pytest.raises(SpecError, match="'family' must be one of"):
        mlsysim.load_model(f)


def test_model_copy_revalidates_and_recomputes():
    a100 = mlsysim.Hardware.A100
    faster = a100.model_copy(update={"memory": a100.memory.model_copy(
        update={"bandwidth": mlsysim.Q_("4.078 TB/s")})})
    # Twice the bandwidth: a memory-bound decode step gets faster (not a stale cached peak).
    assert Engine.solve("Llama3_8B", faster).latency_s < \
        0.6 * Engine.solve("Llama3_8B", a100).latency_s
    deeper = mlsysim.Models.Llama3_8B.model_copy(update={"layers": 64})
    assert deeper.parameter_count > 1.8 * mlsysim.Models.Llama3_8B.parameter_count
    with pytest.raises(SpecError, match="layers"):
        mlsysim.Models.Llama3_8B.model_copy(update={"layers": -5})


def test_solver_keyword_clashes_are_named():
    from mlsysim.solvers.compression import CompressionModel
    with pytest.raises(ValidationError, match="weight_precision"):
        CompressionModel().solve("Llama3_8B", "H100", "int4_weight_only",
                                 serving={"weight_precision": "int8"})
    with pytest.raises(ValidationError, match="batch_size"):
        mlsysim.InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=128,
                                              reasoning_steps=1, serving={"batch_size": 4})
    with pytest.raises(ValidationError, match="kv_precison.*not a ServingModel option"):
        mlsysim.BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=128, sla_latency_ms=10,
                                          arrival_rate_qps=1, serving={"kv_precison": "fp8"})
    with pytest.raises(ValidationError, match="serving"):
        mlsysim.BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=128, sla_latency_ms=10,
                                          arrival_rate_qps=1, serving=["fp8"])
