"""quantized_kernels: the 8-bit GEMM speed of a software generation (zoo QuantizedKernels),
fitted to its engine's published FP8-over-FP16 speed-ups, slowing both roofs of the GEMMs that
compute in 8 bits and nothing else."""

from dataclasses import replace

import numpy as np
import pytest

from mlsysim import ServingConfig, ServingModel
from mlsysim.core.costmodel import evaluate, prepare
from mlsysim.core.engine import efficiency_for
from mlsysim.errors import SpecError, UnknownNameError, ValidationError
from mlsysim.specs.serving import QuantizedKernelSpec
from mlsysim.validation.adapters import row_quantized_kernels
from mlsysim.validation.quantized_fit import fit_measurement, fit_speed
from mlsysim.validation.reference import ReferenceRow
from mlsysim.workloads.operators import OpKind
from mlsysim.workloads.transformer import Segment, lower_segments
from mlsysim.zoo import Hardware, Models, QuantizedKernels

TRT = QuantizedKernels.get("tensorrt_llm_2024")
H100 = Hardware.get("H100")


@pytest.mark.parametrize("key", QuantizedKernels.names())
def test_the_stored_speed_is_the_fit_of_its_measurements(key):
    """The YAML's speed and speed_range are the median and extremes of the four single fits
    (stored to three decimals): refit with scripts/fit_quantized_kernels.py when the model or
    the measurements change."""
    spec = QuantizedKernels.get(key)
    speed, (lo, hi), fits = fit_speed(spec)
    assert spec.speed == pytest.approx(speed, abs=6e-4)
    assert spec.speed_range == pytest.approx((lo, hi), abs=6e-4)
    assert len(fits) == 4 and lo < speed < hi
    # The blog's speed-ups are 1.30-1.51x where today's kernels give the model ~1.8x.
    assert all(1.75 < f.model_speedup_at_1 < 1.9 for f in fits)


def test_the_fp8_and_int8_generations_are_the_blogs_two_columns():
    """FP8 1.40-1.51x and INT8 SmoothQuant 1.30-1.47x over FP16: INT8 fits slower (0.69 vs
    0.73 of the microbenchmarked 8-bit GEMM speed)."""
    int8 = QuantizedKernels.get("tensorrt_llm_2024_int8")
    assert [m["speedup"] for m in TRT.measurements] == [1.40, 1.44, 1.51, 1.40]
    assert [m["speedup"] for m in int8.measurements] == [1.40, 1.30, 1.47, 1.32]
    assert int8.speed < TRT.speed and int8.precisions == ["int8"]


@pytest.mark.parametrize("m", TRT.measurements, ids=lambda m: f"{m['model']}-b{m['batch']}")
def test_each_measurement_is_reproduced_at_its_own_fit(m):
    """At its fitted speed the model's e2e(fp16) / e2e(fp8) is the published speed-up."""
    fit = fit_measurement(TRT, m)
    trial = TRT.model_copy(update={"speed": fit.speed, "speed_range": (fit.speed, fit.speed)})
    kw = dict(seq_len=m["prompt_len"], output_len=m["output_len"], batch_size=m["batch"])
    fp16 = ServingModel().solve(m["model"], "H100", precision="fp16", **kw).e2e_latency
    fp8 = ServingModel().solve(m["model"], "H100", precision="fp8", quantized_kernels=trial,
                               **kw).e2e_latency
    assert float(fp16 / fp8) == pytest.approx(m["speedup"], rel=2e-3)


def _prepared(precision, speed):
    model = Models.get("Llama2_7B")
    table = lower_segments(model, [Segment(2048, 0)], e=2, kv_e=1, we=1)
    eff = replace(efficiency_for(H100, precision), quantized_gemm_speed=speed)
    return table, prepare(table, H100, precision, eff)


def test_gemm_rows_run_at_the_speed_on_both_roofs_and_nothing_else_does():
    """Speed 0.5: every GEMM row's compute constant and memory times double; attention and
    vector rows are untouched."""
    table, slow = _prepared("fp8", 0.5)
    _, fast = _prepared("fp8", 1.0)
    gemm = table.kind == OpKind.GEMM
    assert gemm.any() and (~gemm).any()
    for field in ("k_tc", "tm_w", "tm_a"):
        a, b = getattr(slow, field), getattr(fast, field)
        np.testing.assert_allclose(a[gemm], 2 * b[gemm], rtol=1e-12)
        np.testing.assert_allclose(a[~gemm], b[~gemm], rtol=1e-12)


def test_moe_expert_traffic_slows_with_the_gemms():
    """Mixtral's expert GEMMs read the weights the batch routes to (a batch-dependent
    traffic): at speed 0.5 those rows' memory time doubles too, the attention rows' not."""
    from mlsysim.core.costmodel import op_times
    model = Models.get("Mixtral_8x7B")
    table = lower_segments(model, [Segment(1, 1024)], e=2, kv_e=1, we=1)
    assert table.has_moe
    eff = efficiency_for(H100, "fp8")
    slow = prepare(table, H100, "fp8", replace(eff, quantized_gemm_speed=0.5))
    fast = prepare(table, H100, "fp8", eff)
    gemm = table.kind == OpKind.GEMM
    tm_slow, tm_fast = op_times(slow, 8)[1], op_times(fast, 8)[1]
    np.testing.assert_allclose(tm_slow[gemm], 2 * tm_fast[gemm], rtol=1e-12)
    np.testing.assert_allclose(tm_slow[~gemm], tm_fast[~gemm], rtol=1e-12)


def test_a_compute_bound_prefill_slows_by_its_gemm_time():
    """A 2,048-token prompt of Llama-2 7B is GEMM-bound (the GEMMs are ~3/4 of it, attention
    in 16 bits most of the rest): at speed 0.5 its latency grows by exactly the GEMM rows'
    time at speed 1 (each takes twice as long, the rest the same)."""
    table, slow = _prepared("fp8", 0.5)
    _, fast = _prepared("fp8", 1.0)
    gemm = table.kind == OpKind.GEMM
    fast_rows = np.maximum(np.maximum(*_row_times(fast)), fast.launch_floor)
    gemm_time = float(fast_rows[gemm] @ fast.count[gemm])
    grew = float(evaluate(slow, 1).latency) - float(evaluate(fast, 1).latency)
    assert grew == pytest.approx(gemm_time, rel=1e-9)
    assert gemm_time > 0.7 * float(evaluate(fast, 1).latency)


def _row_times(p):
    from mlsysim.core.costmodel import op_times
    tc, tm, _ = op_times(p, 1)
    return tc, tm


def test_sixteen_bit_compute_ignores_the_generation():
    table, slow = _prepared("fp16", 0.5)
    _, fast = _prepared("fp16", 1.0)
    assert float(evaluate(slow, 1).latency) == float(evaluate(fast, 1).latency)
    kw = dict(seq_len=1024, output_len=128, batch_size=8, precision="fp16")
    with_k = ServingModel().solve("Llama2_7B", "H100", quantized_kernels=TRT.key, **kw)
    assert with_k.e2e_latency == ServingModel().solve("Llama2_7B", "H100", **kw).e2e_latency
    assert "not applied: fp16 computes in 16 bits" in with_k.explain()


def test_the_serving_model_is_slower_by_the_generation_and_its_band_spans_the_fits():
    """Llama-2 7B, batch 8, 1024/128 on H100 in fp8: the generation's kernels lengthen the
    step (the GEMMs are most of it); the band's edges run the GEMMs at the range's ends."""
    kw = dict(seq_len=1024, output_len=128, batch_size=8, precision="fp8")
    now = ServingModel().solve("Llama2_7B", "H100", **kw)
    then = ServingModel().solve("Llama2_7B", "H100", quantized_kernels="tensorrt_llm_2024", **kw)
    ratio = float(then.itl / now.itl)
    assert 1.0 / TRT.speed * 0.8 < ratio < 1.0 / TRT.speed
    lo, hi = (q.to("ms").magnitude for q in then.band["itl"])
    assert lo < then.itl.to("ms").magnitude < hi
    eff = replace(efficiency_for(H100, "fp8"), quantized_gemm_speed=TRT.speed,
                  quantized_gemm_spread=(TRT.speed_range[0] / TRT.speed,
                                         TRT.speed_range[1] / TRT.speed))
    assert eff.variant("fast").quantized_gemm_speed == pytest.approx(TRT.speed_range[1])
    assert eff.variant("slow").quantized_gemm_speed == pytest.approx(TRT.speed_range[0])
    line = next(ln for ln in then.explain().splitlines() if "8-bit GEMM kernels of" in ln)
    assert line.strip() == (f"8-bit GEMM kernels of {TRT.name}: {TRT.speed:.3g} of the "
                            f"microbenchmarked speed (band {TRT.speed_range[0]:.3g}-"
                            f"{TRT.speed_range[1]:.3g})")
    # serving_efficiency hands the band's edges the range's ends.
    from mlsysim.solvers.serving import serving_efficiency
    for variant, want in (("nominal", TRT.speed), ("fast", TRT.speed_range[1]),
                          ("slow", TRT.speed_range[0])):
        got = serving_efficiency(H100, "fp8", True, variant, TRT).quantized_gemm_speed
        assert got == pytest.approx(want, rel=1e-12)
    # The config form reaches the same plan.
    cfg = ServingModel().solve("Llama2_7B", "H100",
                               ServingConfig(quantized_kernels="trtllm_2024", **kw))
    assert cfg.itl == then.itl


def test_bad_generations_are_refused_with_the_names_to_use():
    with pytest.raises(UnknownNameError, match="tensorrt_llm_2024"):
        ServingModel().solve("Llama3_8B", "H100", seq_len=128, precision="fp8",
                             quantized_kernels="trtllm_2023")
    with pytest.raises(ValidationError) as info:
        ServingModel().solve("Llama3_8B", "A100", seq_len=128, precision="int8",
                             quantized_kernels="tensorrt_llm_2024")
    assert info.value.field == "quantized_kernels"
    assert str(info.value) == (
        "The 'quantized_kernels' parameter of ServingModel tensorrt_llm_2024 was measured on "
        "H100, H200; A100 has no such measurement. Leave quantized_kernels out for the "
        "device's own GEMM microbenchmarks.")
    with pytest.raises(SpecError, match="speed_range"):
        QuantizedKernelSpec(**{**TRT.model_dump(), "speed_range": (0.9, 0.5)})
    with pytest.raises(SpecError, match="speed"):
        QuantizedKernelSpec(**{**TRT.model_dump(), "speed": 1.2})


def _row(framework, hardware="H100", precision="fp8"):
    return ReferenceRow(id="REF-T1", category="llm_inference", model="Llama3_8B",
                        hardware=hardware, num_devices=1, precision=precision, batch_size=64,
                        prompt_len=128, output_len=8, scenario="s",
                        metric="output_tokens_per_s", value=1.0, unit="tokens/s",
                        framework=framework, source_key="x")


@pytest.mark.parametrize(("framework", "hardware", "precision", "expected"), [
    ("TensorRT-LLM v0.12", "H100", "fp8", "tensorrt_llm_2024"),
    ("TensorRT-LLM v0.5", "H200", "fp8", "tensorrt_llm_2024"),
    ("TensorRT-LLM v0.16.0", "H100", "fp8", None),     # after the covered releases
    ("TensorRT-LLM v0.12", "A100", "fp16", None),      # 16-bit compute
    ("TensorRT-LLM v0.12", "L40S", "fp8", None),       # no measurement on that device
    ("TensorRT-LLM", "H100", "fp8", None),             # release not stated
    ("vLLM", "H100", "fp8", None),
    ("TensorRT-LLM v0.9", "H100", "int8", "tensorrt_llm_2024_int8"),
])
def test_reference_rows_choose_the_generation_by_release_and_device(framework, hardware,
                                                                      precision, expected):
    notes: list[str] = []
    hw = Hardware.get(hardware)
    assert row_quantized_kernels(_row(framework, hardware, precision), hw, precision,
                                 notes) == expected
    assert bool(notes) == (expected is not None)


def test_the_serve_command_takes_the_generation():
    """`serve --quantized-kernels` reaches ServingModel (same ITL as the API); a bad name is
    exit 2 with one line naming the known generations."""
    import json
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mlsysim", "serve", "Llama3_8B", "H100",
                               "-p", "fp8", *args], capture_output=True, text=True, timeout=120)

    out = run("--quantized-kernels", "tensorrt_llm_2024", "--json")
    assert out.returncode == 0, out.stderr
    want = ServingModel().solve("Llama3_8B", "H100", seq_len=1024, output_len=256,
                                precision="fp8", quantized_kernels="tensorrt_llm_2024").itl
    assert json.loads(out.stdout)["itl"]["value"] == pytest.approx(want.to("ms").magnitude)
    bad = run("--quantized-kernels", "foo")
    assert bad.returncode == 2 and "tensorrt_llm_2024" in bad.stderr
    assert "Traceback" not in bad.stderr
