"""Invariants of the cost model, checked by hypothesis over models, devices and configs."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlsysim
from mlsysim import Engine
from mlsysim.specs.hardware import HardwareSpec

MODELS = ["ResNet50", "MobileNetV2", "BERT_Base", "Llama3_8B", "Mixtral_8x7B", "Mamba_2_8B",
          "ViT_B16", "GPT2"]
DEVICES = ["A100", "H100", "L4", "T4", "MI300X"]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _phase(model, prefill):
    m = mlsysim.Models.get(model)
    if m.family == "layers" or getattr(m, "kind", None) == "encoder":
        return None
    return "prefill" if prefill else "decode"


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 512),
       st.integers(1, 64), st.booleans())
def test_latency_never_decreases_with_batch(model, device, batch, extra, prefill):
    kw = dict(phase=_phase(model, prefill), seq_len=512 if _phase(model, prefill) else None)
    a = Engine.solve(model, device, batch_size=batch, **kw)
    b = Engine.solve(model, device, batch_size=batch + extra, **kw)
    assert b.latency_s >= a.latency_s


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 1024))
def test_throughput_never_exceeds_the_compute_roof(model, device, batch):
    p = Engine.solve(model, device, batch_size=batch)
    assert p.flops_total / p.latency_s <= p.peak_flops.to("flop/s").magnitude


def _scaled(hw: HardwareSpec, bw_factor=1.0, flops_factor=1.0) -> HardwareSpec:
    data = hw.model_dump(mode="json")
    data["key"] = hw.key  # same calibration as the original device
    data["memory"]["bandwidth"] = str(hw.memory.bandwidth * bw_factor)
    data["compute"]["dense"] = {k: str(v * flops_factor) for k, v in hw.compute.dense.items()}
    data["compute"]["sparse"] = {k: str(v * flops_factor) for k, v in hw.compute.sparse.items()}
    return HardwareSpec(**data)


@pytest.fixture(scope="module")
def faster_devices():
    return {d: (mlsysim.Hardware.get(d), _scaled(mlsysim.Hardware.get(d), bw_factor=2.0),
                _scaled(mlsysim.Hardware.get(d), flops_factor=2.0)) for d in DEVICES}


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 256))
def test_more_bandwidth_or_flops_is_never_slower(faster_devices, model, device, batch):
    base, more_bw, more_flops = faster_devices[device]
    t = Engine.solve(model, base, batch_size=batch).latency_s
    assert Engine.solve(model, more_bw, batch_size=batch).latency_s <= t
    assert Engine.solve(model, more_flops, batch_size=batch).latency_s <= t


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 256))
def test_results_have_the_right_dimensions(model, device, batch):
    p = Engine.solve(model, device, batch_size=batch)
    assert p.latency.check("[time]")
    assert p.throughput.quantity.check("[sample] / [time]")
    assert p.arithmetic_intensity.check("[flop] / [information]")
    assert p.memory_footprint.check("[information]")
    assert float(p.throughput) == pytest.approx(batch / p.latency_s)


LLMS = ["Llama3_8B", "Mistral_7B", "Mixtral_8x7B", "Gemma2_9B", "Qwen2_5_7B", "Mamba_2_8B"]


@SETTINGS
@given(st.sampled_from(LLMS), st.sampled_from(["H100", "A100", "MI300X"]),
       st.integers(1, 64), st.integers(1, 64), st.integers(64, 2048), st.integers(2, 512))
def test_serving_latencies_grow_with_batch_and_prompt(model, device, batch, extra, prompt, out):
    s = mlsysim.ServingModel()
    base = s.solve(model, device, seq_len=prompt, output_len=out, batch_size=batch)
    more = s.solve(model, device, seq_len=prompt, output_len=out, batch_size=batch + extra)
    longer = s.solve(model, device, seq_len=prompt + 64, output_len=out, batch_size=batch)
    assert more.ttft_s >= base.ttft_s and more.itl_s >= base.itl_s
    assert longer.ttft_s >= base.ttft_s and longer.itl_s >= base.itl_s * (1 - 1e-12)
    # A decode step streams every weight but the embedding table (one row is gathered):
    # never faster than those bytes at the spec bandwidth (MoE reads only picked experts).
    hw, m = mlsysim.Hardware.get(device), mlsysim.Models.get(model)
    if model != "Mixtral_8x7B":
        width = getattr(m, "hidden", None) or m.d_model
        streamed = base.weights_bytes - m.vocab * width * 2
        assert base.itl_s > streamed / hw.memory.bandwidth.to("B/s").magnitude
    assert float(base.tokens_per_s) == pytest.approx(batch / base.itl_s)
    assert base.memory_per_device_bytes > base.weights_bytes
